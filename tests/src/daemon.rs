//! Starting and stopping a real `nsqd` process for a test.
//!
//! Each test gets its own daemon on fresh loopback ports with a fresh data directory, so tests can
//! run in parallel and never see each other's topics. The binary is found (or built once per test
//! process) by [`nsqd_binary`]. Startup failures are errors with the daemon's own output attached,
//! because a silent "connection refused" is the least useful way for these tests to fail.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};

use crate::http;

/// How long a fresh nsqd may take to answer `GET /ping`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running nsqd, killed when dropped.
#[derive(Debug)]
pub struct Nsqd {
    child: Child,
    tcp_addr: SocketAddr,
    http_addr: SocketAddr,
    data_path: PathBuf,
    log_path: PathBuf,
    // Holds the data directory and the log file; removed on drop after the process is gone.
    _workdir: tempfile::TempDir,
}

impl Nsqd {
    /// Starts nsqd with the common golden flags plus `extra_flags`, and waits until `/ping`
    /// answers. A bind failure (another process took a port between our probe and nsqd's bind) is
    /// retried with new ports a couple of times.
    pub fn start(extra_flags: &[String]) -> Result<Nsqd> {
        Nsqd::start_with(None, extra_flags)
    }

    /// Like [`Nsqd::start`], on an existing `--data-path` that the caller owns (for restarts and for
    /// taking over a data directory).
    pub fn start_on(data_path: &Path, extra_flags: &[String]) -> Result<Nsqd> {
        Nsqd::start_with(Some(data_path), extra_flags)
    }

    fn start_with(data_path: Option<&Path>, extra_flags: &[String]) -> Result<Nsqd> {
        let binary = nsqd_binary()?;
        let mut last_error = anyhow!("nsqd was never started");
        for _attempt in 0..3 {
            match Nsqd::start_once(&binary, data_path, extra_flags) {
                Ok(nsqd) => return Ok(nsqd),
                Err(StartError::PortTaken(e)) => last_error = e,
                Err(StartError::Fatal(e)) => return Err(e),
            }
        }
        Err(last_error)
    }

    fn start_once(
        binary: &Path,
        data_path: Option<&Path>,
        extra_flags: &[String],
    ) -> Result<Nsqd, StartError> {
        let fatal = StartError::Fatal;
        let tcp_port = free_port().map_err(fatal)?;
        let http_port = free_port().map_err(fatal)?;
        let workdir = tempfile::Builder::new()
            .prefix("nsq-golden-")
            .tempdir()
            .map_err(|e| fatal(e.into()))?;
        let data_path = match data_path {
            Some(path) => path.to_path_buf(),
            None => {
                let path = workdir.path().join("data");
                std::fs::create_dir(&path).map_err(|e| fatal(e.into()))?;
                path
            }
        };
        let log_path = workdir.path().join("nsqd.log");
        let log = File::create(&log_path).map_err(|e| fatal(e.into()))?;
        let log_err = log.try_clone().map_err(|e| fatal(e.into()))?;
        let mut command = Command::new(binary);
        command
            .arg(format!("--tcp-address=127.0.0.1:{tcp_port}"))
            .arg(format!("--http-address=127.0.0.1:{http_port}"))
            .arg("--broadcast-address=127.0.0.1")
            .arg("--node-id=1")
            .arg(format!("--data-path={}", data_path.display()))
            .args(extra_flags)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = command
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))
            .map_err(fatal)?;
        let mut nsqd = Nsqd {
            child,
            tcp_addr: SocketAddr::from(([127, 0, 0, 1], tcp_port)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], http_port)),
            data_path,
            log_path,
            _workdir: workdir,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = nsqd.child.try_wait() {
                let log = nsqd.log_tail();
                let error = anyhow!("nsqd exited during startup with {status}; flags {extra_flags:?}; its output:\n{log}");
                let lower = log.to_lowercase();
                return Err(
                    if lower.contains("already in use") || lower.contains("addrinuse") {
                        StartError::PortTaken(error)
                    } else {
                        StartError::Fatal(error)
                    },
                );
            }
            let probe = http::exchange_with_timeout(
                nsqd.http_addr,
                "GET",
                "/ping",
                &http::default_headers(nsqd.http_addr, None),
                b"",
                Duration::from_secs(1),
            );
            if let Ok(response) = probe {
                if response.status == 200 && TcpStream::connect(nsqd.tcp_addr).is_ok() {
                    return Ok(nsqd);
                }
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(StartError::Fatal(anyhow!(
                    "nsqd did not answer GET /ping on {} within {STARTUP_TIMEOUT:?}; its output:\n{}",
                    nsqd.http_addr,
                    nsqd.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TCP (protocol V2) address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The `--data-path` the daemon was started with.
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// The last few KiB of the daemon's stdout and stderr.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log_path).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (a `kill` name such as `TERM` or `INT`) and waits up to `timeout` for the process to
    /// exit, returning its exit status.
    pub fn signal_and_wait(
        &mut self,
        signal: &str,
        timeout: Duration,
    ) -> Result<std::process::ExitStatus> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "nsqd still running {timeout:?} after SIG{signal}; log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nsqd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why one startup attempt failed.
enum StartError {
    /// Worth retrying with other ports.
    PortTaken(anyhow::Error),
    /// Retrying will not help.
    Fatal(anyhow::Error),
}

/// Asks the kernel for a free loopback port. The listener is dropped before nsqd binds, so another
/// process could take the port in between; [`Nsqd::start`] retries in that case.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a probe listener")?;
    Ok(listener.local_addr()?.port())
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The nsqd binary to test: `$NSQD_BIN` if set, else the newest of `target/{debug,release}/nsqd`,
/// else one built on demand (once per test process).
///
/// The on-demand build uses its own target directory (`target/nsq-tests-build`): the `cargo test`
/// that runs us holds the lock on `target/` for the whole run, so building there would wait
/// forever.
pub fn nsqd_binary() -> Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| locate_or_build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("no nsqd binary: {e}"))
}

fn locate_or_build() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("NSQD_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("NSQD_BIN={} is not a file", path.display());
        }
        return Ok(path);
    }
    let ws = workspace_dir();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    let build_dir = ws.join("target").join("nsq-tests-build");
    let candidates = [
        target.join("debug").join("nsqd"),
        target.join("release").join("nsqd"),
        build_dir.join("debug").join("nsqd"),
    ];
    let newest = candidates
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p.clone())))
        .max();
    if let Some((modified, path)) = newest {
        warn_if_stale(&path, modified, &ws);
        return Ok(path);
    }
    eprintln!(
        "nsq-tests: no nsqd binary found; running `cargo build -p nsqd` into {}",
        build_dir.display()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "-p", "nsqd"])
        .env("CARGO_TARGET_DIR", &build_dir)
        .current_dir(&ws)
        .status()
        .context("running cargo build -p nsqd")?;
    if !status.success() {
        bail!("`cargo build -p nsqd` failed with {status}");
    }
    let built = build_dir.join("debug").join("nsqd");
    if !built.is_file() {
        bail!(
            "`cargo build -p nsqd` succeeded but {} does not exist",
            built.display()
        );
    }
    Ok(built)
}

/// Prints a warning when nsqd's sources are newer than the binary under test, which usually means
/// someone forgot `cargo build -p nsqd` before running these tests.
fn warn_if_stale(binary: &Path, built: SystemTime, ws: &Path) {
    let newest_source = [ws.join("bins").join("nsqd").join("src"), ws.join("crates")]
        .iter()
        .filter_map(|dir| newest_mtime(dir))
        .max();
    if let Some(source) = newest_source {
        if source > built {
            eprintln!(
                "nsq-tests: WARNING: {} is older than nsqd's sources; run `cargo build -p nsqd` for current results",
                binary.display()
            );
        }
    }
    eprintln!("nsq-tests: using nsqd binary {}", binary.display());
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_mtime(&path)
        } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
            entry.metadata().ok().and_then(|m| m.modified().ok())
        } else {
            None
        };
        newest = newest.max(time);
    }
    newest
}
