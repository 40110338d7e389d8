//! Starting and stopping a real `nsqadmin` process for a test.
//!
//! nsqadmin has only an HTTP listener and no `--tcp-address` or `--broadcast-address`, so it is started here
//! rather than through [`crate::daemon::Daemon`]; the binary is located (or built) the same way: `$NSQADMIN_BIN`,
//! else the newest `target/{debug,release}/nsqadmin`, else one built on demand.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::daemon::{binary_once, Kind};
use crate::http;

/// nsqadmin.
pub const NSQADMIN: Kind = Kind {
    name: "nsqadmin",
    env_var: "NSQADMIN_BIN",
    workdir_prefix: "nsqadmin-test-",
    sources: &["bins/nsqadmin", "crates"],
};

/// How long a fresh nsqadmin may take to answer `GET /ping`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running nsqadmin, killed when dropped.
#[derive(Debug)]
pub struct Nsqadmin {
    child: Child,
    http_addr: SocketAddr,
    log_path: PathBuf,
    _workdir: tempfile::TempDir,
}

impl Nsqadmin {
    /// Starts nsqadmin on a free loopback port with `flags` (which must name the lookupd or nsqd addresses)
    /// and waits until `<base_path>/ping` answers.
    pub fn start(flags: &[String]) -> Result<Nsqadmin> {
        let base = flags
            .iter()
            .find_map(|f| f.strip_prefix("--base-path="))
            .unwrap_or("/")
            .trim_end_matches('/')
            .to_owned();
        let binary = nsqadmin_binary()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let workdir = tempfile::Builder::new()
            .prefix(NSQADMIN.workdir_prefix)
            .tempdir()?;
        let log_path = workdir.path().join("nsqadmin.log");
        let log = File::create(&log_path)?;
        let child = Command::new(&binary)
            .arg(format!("--http-address=127.0.0.1:{port}"))
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut admin = Nsqadmin {
            child,
            http_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log_path,
            _workdir: workdir,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = admin.child.try_wait() {
                return Err(anyhow!(
                    "nsqadmin exited during startup with {status}; its output:\n{}",
                    admin.log_tail()
                ));
            }
            let probe = http::exchange_with_timeout(
                admin.http_addr,
                "GET",
                &format!("{base}/ping"),
                &http::default_headers(admin.http_addr, None),
                b"",
                Duration::from_secs(1),
            );
            if probe.is_ok_and(|r| r.status == 200) {
                return Ok(admin);
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(anyhow!(
                    "nsqadmin did not answer /ping within {STARTUP_TIMEOUT:?}; its output:\n{}",
                    admin.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The last few KiB of its output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log_path).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }
}

impl Drop for Nsqadmin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nsqadmin binary to test, found or built once per test process.
pub fn nsqadmin_binary() -> Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    binary_once(&BINARY, &NSQADMIN)
}
