//! Starting and stopping a real `nsqlookupd` process for a test, as [`crate::daemon`] does for nsqd.
//!
//! Each test gets its own lookupd on fresh loopback ports. The binary is `$NSQLOOKUPD_BIN`, else the newest
//! `target/{debug,release}/nsqlookupd`, else one built on demand (once per test process). Startup failures
//! carry the daemon's own output.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::{http, workspace_dir};

/// How long a fresh nsqlookupd may take to answer `GET /ping`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running nsqlookupd, killed when dropped.
#[derive(Debug)]
pub struct Nsqlookupd {
    child: Child,
    tcp_addr: SocketAddr,
    http_addr: SocketAddr,
    log_path: PathBuf,
    // Holds the log file; removed on drop after the process is gone.
    _workdir: tempfile::TempDir,
}

impl Nsqlookupd {
    /// Starts nsqlookupd with the golden flags (loopback addresses, `--broadcast-address=127.0.0.1`) plus
    /// `extra_flags`, and waits until `/ping` answers. A port taken between our probe and the daemon's bind is
    /// retried with new ports.
    pub fn start(extra_flags: &[String]) -> Result<Nsqlookupd> {
        let binary = nsqlookupd_binary()?;
        let mut last_error = anyhow!("nsqlookupd was never started");
        for _attempt in 0..3 {
            match Nsqlookupd::start_once(&binary, None, extra_flags) {
                Ok(daemon) => return Ok(daemon),
                Err((true, e)) => last_error = e,
                Err((false, e)) => return Err(e),
            }
        }
        Err(last_error)
    }

    /// Starts nsqlookupd on the given TCP and HTTP ports (for example to restart one that nsqd knows), with
    /// the golden flags plus `extra_flags`.
    pub fn start_on(tcp_port: u16, http_port: u16, extra_flags: &[String]) -> Result<Nsqlookupd> {
        let binary = nsqlookupd_binary()?;
        Nsqlookupd::start_once(&binary, Some((tcp_port, http_port)), extra_flags)
            .map_err(|(_, e)| e)
    }

    /// One attempt, on `ports` or free ones; the error says whether another attempt could help (a port was
    /// taken).
    fn start_once(
        binary: &Path,
        ports: Option<(u16, u16)>,
        extra_flags: &[String],
    ) -> std::result::Result<Nsqlookupd, (bool, anyhow::Error)> {
        let fatal = |e: anyhow::Error| (false, e);
        let (tcp_port, http_port) = match ports {
            Some(p) => p,
            None => (free_port().map_err(fatal)?, free_port().map_err(fatal)?),
        };
        let workdir = tempfile::Builder::new()
            .prefix("nsqlookupd-test-")
            .tempdir()
            .map_err(|e| fatal(e.into()))?;
        let log_path = workdir.path().join("nsqlookupd.log");
        let log = File::create(&log_path).map_err(|e| fatal(e.into()))?;
        let log_err = log.try_clone().map_err(|e| fatal(e.into()))?;
        let child = Command::new(binary)
            .arg(format!("--tcp-address=127.0.0.1:{tcp_port}"))
            .arg(format!("--http-address=127.0.0.1:{http_port}"))
            .arg("--broadcast-address=127.0.0.1")
            .args(extra_flags)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))
            .map_err(fatal)?;
        let mut daemon = Nsqlookupd {
            child,
            tcp_addr: SocketAddr::from(([127, 0, 0, 1], tcp_port)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], http_port)),
            log_path,
            _workdir: workdir,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                let log = daemon.log_tail();
                let lower = log.to_lowercase();
                let retry = lower.contains("already in use") || lower.contains("addrinuse");
                return Err((
                    retry,
                    anyhow!("nsqlookupd exited during startup with {status}; its output:\n{log}"),
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
            if probe.is_ok_and(|r| r.status == 200) && TcpStream::connect(daemon.tcp_addr).is_ok() {
                return Ok(daemon);
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(fatal(anyhow!(
                    "nsqlookupd did not answer GET /ping on {} within {STARTUP_TIMEOUT:?}; its output:\n{}",
                    daemon.http_addr,
                    daemon.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TCP (protocol V1) address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The last few KiB of the daemon's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log_path).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (a `kill` name such as `TERM`) and waits up to `timeout` for the exit status.
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
                "nsqlookupd still running {timeout:?} after SIG{signal}; log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nsqlookupd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a probe listener")?;
    Ok(listener.local_addr()?.port())
}

/// The nsqlookupd binary to test: `$NSQLOOKUPD_BIN` if set, else the newest of
/// `target/{debug,release}/nsqlookupd`, else one built on demand into `target/nsq-tests-build` (the `cargo
/// test` running us holds the lock on `target/`).
pub fn nsqlookupd_binary() -> Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| locate_or_build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("no nsqlookupd binary: {e}"))
}

fn locate_or_build() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("NSQLOOKUPD_BIN") {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "NSQLOOKUPD_BIN={} is not a file",
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
        target.join("debug").join("nsqlookupd"),
        target.join("release").join("nsqlookupd"),
        build_dir.join("debug").join("nsqlookupd"),
    ];
    let newest = candidates
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p.clone())))
        .max();
    if let Some((built, path)) = newest {
        let sources = [ws.join("bins").join("nsqlookupd"), ws.join("crates")];
        if sources.iter().filter_map(|d| newest_source(d)).max() > Some(built) {
            eprintln!(
                "nsq-tests: WARNING: {} is older than nsqlookupd's sources; run `cargo build -p nsqlookupd`",
                path.display()
            );
        }
        eprintln!("nsq-tests: using nsqlookupd binary {}", path.display());
        return Ok(path);
    }
    eprintln!(
        "nsq-tests: no nsqlookupd binary found; running `cargo build -p nsqlookupd` into {}",
        build_dir.display()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "-p", "nsqlookupd"])
        .env("CARGO_TARGET_DIR", &build_dir)
        .current_dir(&ws)
        .status()
        .context("running cargo build -p nsqlookupd")?;
    if !status.success() {
        bail!("`cargo build -p nsqlookupd` failed with {status}");
    }
    let built = build_dir.join("debug").join("nsqlookupd");
    ensure!(
        built.is_file(),
        "the build did not produce {}",
        built.display()
    );
    Ok(built)
}

/// The newest modification time of a `.rs` or `.toml` file under `dir`.
fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_source(&path)
        } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
            entry.metadata().ok().and_then(|m| m.modified().ok())
        } else {
            None
        };
        newest = newest.max(time);
    }
    newest
}

/// The magic a lookupd client sends first.
pub const MAGIC_V1: &[u8] = b"  V1";

/// What a lookupd connection produced next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V1Event {
    /// One `[u32 size][data]` response (lookupd frames have no type field).
    Frame(Vec<u8>),
    /// The server closed the connection (`reset` when it came as an RST); `partial` bytes of an unfinished
    /// frame were left.
    Closed {
        /// Whether the close was a reset.
        reset: bool,
        /// Bytes of an incomplete frame left over.
        partial: usize,
    },
    /// The deadline passed with no complete frame.
    Timeout,
}

/// A client connection to lookupd's TCP port that reads whole V1 responses with deadlines.
#[derive(Debug)]
pub struct V1Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: Option<bool>,
}

impl V1Conn {
    /// Connects (no magic is sent).
    pub fn connect(addr: SocketAddr) -> Result<V1Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(V1Conn {
            stream,
            buf: Vec::new(),
            closed: None,
        })
    }

    /// Writes all bytes in one call.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        self.stream
            .write_all(bytes)
            .context("writing to nsqlookupd")
    }

    /// The local address (what lookupd reports as the peer's `remote_address`).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.stream.local_addr()?)
    }

    /// Waits for the next response, the close of the connection, or the deadline.
    pub fn next_event(&mut self, deadline: Instant) -> V1Event {
        use std::io::{ErrorKind, Read};
        loop {
            if self.buf.len() >= 4 {
                let size = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                let end = 4 + usize::try_from(size).unwrap_or(usize::MAX);
                if self.buf.len() >= end {
                    let frame = self.buf[4..end].to_vec();
                    self.buf.drain(..end);
                    return V1Event::Frame(frame);
                }
            }
            if let Some(reset) = self.closed {
                return V1Event::Closed {
                    reset,
                    partial: self.buf.len(),
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return V1Event::Timeout;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            if self.stream.set_read_timeout(Some(wait)).is_err() {
                self.closed = Some(false);
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = Some(false),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.closed = Some(e.kind() == ErrorKind::ConnectionReset),
            }
        }
    }

    /// Sends `bytes` and requires the response `want` within a few seconds.
    pub fn exchange(&mut self, bytes: &[u8], want: &[u8]) -> Result<()> {
        self.send(bytes)?;
        match self.next_event(Instant::now() + Duration::from_secs(5)) {
            V1Event::Frame(data) if data == want => Ok(()),
            other => bail!(
                "sent {:?}: expected {:?}, got {other:?}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(want)
            ),
        }
    }
}

/// `IDENTIFY\n[i32 size][body]`.
pub fn identify_command(body: &[u8]) -> Vec<u8> {
    let mut out = b"IDENTIFY\n".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_commands_are_size_prefixed() {
        assert_eq!(identify_command(b"{}"), b"IDENTIFY\n\x00\x00\x00\x02{}");
    }
}
