//! Starting and stopping a real daemon process (`nsqd`, or `nsqlookupd` through [`crate::lookupd`]) for a
//! test.
//!
//! Each test gets its own daemon on fresh loopback ports with a fresh temporary directory, so tests can run in
//! parallel and never see each other's state. [`Daemon`] is the part both daemons share: the process, its
//! ports, its captured output, the start-up wait and the signals; a [`Kind`] says which binary it is and how
//! to find or build it. [`Nsqd`] adds nsqd's data directory. Startup failures are errors with the daemon's
//! own output attached, because a silent "connection refused" is the least useful way for these tests to fail.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::http;

/// How long a fresh daemon may take to answer `GET /ping`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// What differs between the daemons a test can start.
#[derive(Debug)]
pub struct Kind {
    /// The binary and its Cargo package.
    pub name: &'static str,
    /// The environment variable that names a binary to use instead of looking for one.
    pub env_var: &'static str,
    /// The prefix of each instance's temporary directory.
    pub workdir_prefix: &'static str,
    /// Directories (from the workspace root) whose sources the binary is built from, to warn when it is older.
    pub sources: &'static [&'static str],
}

/// nsqd.
pub const NSQD: Kind = Kind {
    name: "nsqd",
    env_var: "NSQD_BIN",
    workdir_prefix: "nsq-golden-",
    sources: &["bins/nsqd/src", "crates"],
};

/// A running daemon, killed when dropped.
#[derive(Debug)]
pub struct Daemon {
    name: &'static str,
    child: Child,
    tcp_addr: SocketAddr,
    http_addr: SocketAddr,
    log_path: PathBuf,
    // Holds the log file (and nsqd's default data directory); removed on drop after the process is gone.
    workdir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `binary` with `--tcp-address`, `--http-address` and `--broadcast-address=127.0.0.1`, then the
    /// flags `more_flags` returns for the instance's temporary directory, then `extra_flags`, and waits until
    /// `/ping` answers and the TCP port accepts. Without `ports`, free ones are picked, and a port taken
    /// between our probe and the daemon's bind is retried with new ports a couple of times.
    pub fn start(
        kind: &Kind,
        binary: &Path,
        ports: Option<(u16, u16)>,
        extra_flags: &[String],
        more_flags: &dyn Fn(&Path) -> Result<Vec<String>>,
    ) -> Result<Daemon> {
        if ports.is_some() {
            return Daemon::start_once(kind, binary, ports, extra_flags, more_flags)
                .map_err(|(_, e)| e);
        }
        let mut last_error = anyhow!("{} was never started", kind.name);
        for _attempt in 0..3 {
            match Daemon::start_once(kind, binary, None, extra_flags, more_flags) {
                Ok(daemon) => return Ok(daemon),
                Err((true, e)) => last_error = e,
                Err((false, e)) => return Err(e),
            }
        }
        Err(last_error)
    }

    /// One attempt; the error says whether another attempt could help (a port was taken).
    fn start_once(
        kind: &Kind,
        binary: &Path,
        ports: Option<(u16, u16)>,
        extra_flags: &[String],
        more_flags: &dyn Fn(&Path) -> Result<Vec<String>>,
    ) -> std::result::Result<Daemon, (bool, anyhow::Error)> {
        let fatal = |e: anyhow::Error| (false, e);
        let (tcp_port, http_port) = match ports {
            Some(p) => p,
            None => (free_port().map_err(fatal)?, free_port().map_err(fatal)?),
        };
        let workdir = tempfile::Builder::new()
            .prefix(kind.workdir_prefix)
            .tempdir()
            .map_err(|e| fatal(e.into()))?;
        let more = more_flags(workdir.path()).map_err(fatal)?;
        let log_path = workdir.path().join(format!("{}.log", kind.name));
        let log = File::create(&log_path).map_err(|e| fatal(e.into()))?;
        let log_err = log.try_clone().map_err(|e| fatal(e.into()))?;
        let child = Command::new(binary)
            .arg(format!("--tcp-address=127.0.0.1:{tcp_port}"))
            .arg(format!("--http-address=127.0.0.1:{http_port}"))
            .arg("--broadcast-address=127.0.0.1")
            .args(more)
            .args(extra_flags)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))
            .map_err(fatal)?;
        let mut daemon = Daemon {
            name: kind.name,
            child,
            tcp_addr: SocketAddr::from(([127, 0, 0, 1], tcp_port)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], http_port)),
            log_path,
            workdir,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                let log = daemon.log_tail();
                let lower = log.to_lowercase();
                let retry = lower.contains("already in use") || lower.contains("addrinuse");
                return Err((
                    retry,
                    anyhow!(
                        "{} exited during startup with {status}; flags {extra_flags:?}; its output:\n{log}",
                        kind.name
                    ),
                ));
            }
            let probe = http::exchange_with_timeout(
                daemon.http_addr,
                "GET",
                "/ping",
                &http::default_headers(daemon.http_addr, None),
                b"",
                Duration::from_secs(1),
            );
            // With --tls-required, plain HTTP answers every request with 403 TLS_REQUIRED (as Go): ready too.
            let answered = probe.is_ok_and(|r| {
                r.status == 200
                    || (r.status == 403
                        && String::from_utf8_lossy(&r.body).contains("TLS_REQUIRED"))
            });
            if answered && TcpStream::connect(daemon.tcp_addr).is_ok() {
                return Ok(daemon);
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(fatal(anyhow!(
                    "{} did not answer GET /ping on {} within {STARTUP_TIMEOUT:?}; its output:\n{}",
                    kind.name,
                    daemon.http_addr,
                    daemon.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TCP address (protocol V2 for nsqd, V1 for nsqlookupd).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// This instance's temporary directory.
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
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
    pub fn signal_and_wait(&mut self, signal: &str, timeout: Duration) -> Result<ExitStatus> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .context("running kill")?;
        ensure!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            ensure!(
                Instant::now() < deadline,
                "{} still running {timeout:?} after SIG{signal}; log:\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running nsqd, killed when dropped; [`Daemon`]'s methods apply to it.
#[derive(Debug)]
pub struct Nsqd {
    daemon: Daemon,
    data_path: PathBuf,
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
        // Without a data path of the caller's, each attempt gets a fresh one in its temporary directory.
        let data_path_in = |workdir: &Path| match data_path {
            Some(path) => path.to_path_buf(),
            None => workdir.join("data"),
        };
        let more_flags = |workdir: &Path| -> Result<Vec<String>> {
            let path = data_path_in(workdir);
            if data_path.is_none() {
                std::fs::create_dir(&path)?;
            }
            Ok(vec![
                "--node-id=1".to_owned(),
                format!("--data-path={}", path.display()),
            ])
        };
        let daemon = Daemon::start(&NSQD, &binary, None, extra_flags, &more_flags)?;
        let data_path = data_path_in(daemon.workdir());
        Ok(Nsqd { daemon, data_path })
    }

    /// The `--data-path` the daemon was started with.
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }
}

impl Deref for Nsqd {
    type Target = Daemon;

    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl DerefMut for Nsqd {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

/// Asks the kernel for a free loopback port. The listener is dropped before the daemon binds, so another
/// process could take the port in between; [`Daemon::start`] retries in that case.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a probe listener")?;
    Ok(listener.local_addr()?.port())
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The nsqd binary to test (see [`locate_or_build`]), found or built once per test process.
pub fn nsqd_binary() -> Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    binary_once(&BINARY, &NSQD)
}

/// The binary of `kind` from `cell`, located (or built) the first time.
pub(crate) fn binary_once(
    cell: &OnceLock<Result<PathBuf, String>>,
    kind: &Kind,
) -> Result<PathBuf> {
    cell.get_or_init(|| locate_or_build(kind).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("no {} binary: {e}", kind.name))
}

/// The binary of `kind` to test: the file its environment variable names if set, else the newest of
/// `target/{debug,release}/<name>`, else one built on demand.
///
/// The on-demand build uses its own target directory (`target/nsq-tests-build`): the `cargo test`
/// that runs us holds the lock on `target/` for the whole run, so building there would wait
/// forever.
fn locate_or_build(kind: &Kind) -> Result<PathBuf> {
    let name = kind.name;
    if let Ok(path) = std::env::var(kind.env_var) {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "{}={} is not a file",
            kind.env_var,
            path.display()
        );
        return Ok(path);
    }
    let ws = workspace_dir();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    let build_dir = ws.join("target").join("nsq-tests-build");
    let candidates = [
        target.join("debug").join(name),
        target.join("release").join(name),
        build_dir.join("debug").join(name),
    ];
    let newest = candidates
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p.clone())))
        .max();
    if let Some((built, path)) = newest {
        let newest_source = kind
            .sources
            .iter()
            .filter_map(|dir| newest_mtime(&ws.join(dir)))
            .max();
        if newest_source > Some(built) {
            eprintln!(
                "nsq-tests: WARNING: {} is older than {name}'s sources; run `cargo build -p {name}` for current results",
                path.display()
            );
        }
        eprintln!("nsq-tests: using {name} binary {}", path.display());
        return Ok(path);
    }
    eprintln!(
        "nsq-tests: no {name} binary found; running `cargo build -p {name}` into {}",
        build_dir.display()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "-p", name])
        .env("CARGO_TARGET_DIR", &build_dir)
        .current_dir(&ws)
        .status()
        .with_context(|| format!("running cargo build -p {name}"))?;
    if !status.success() {
        bail!("`cargo build -p {name}` failed with {status}");
    }
    let built = build_dir.join("debug").join(name);
    ensure!(
        built.is_file(),
        "`cargo build -p {name}` succeeded but {} does not exist",
        built.display()
    );
    Ok(built)
}

/// The newest modification time of a `.rs` or `.toml` file under `dir`.
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
