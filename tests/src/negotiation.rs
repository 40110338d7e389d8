//! Which golden captures need the feature-negotiation harness, and how their placeholder flags become real
//! ones.
//!
//! The captures of TLS, snappy, deflate and AUTH cannot be replayed by the plain transcript and HTTP
//! replays: their bytes continue inside TLS or a compressed stream, or their flags name a certificate, an
//! HTTPS port or an auth server that has to exist first. `tests/tests/golden_negotiation.rs` replays them;
//! the plain replays ask [`replayed_by_negotiation_suite`] and [`NEGOTIATION_HTTP_INSTANCES`] which ones to
//! leave to it, so both sides agree on one rule.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::golden::{extra_nsqd_flags, Transcript};
use crate::http;

/// The instances of `http/nsqd.json` that `golden_negotiation.rs` replays.
pub const NEGOTIATION_HTTP_INSTANCES: &[&str] = &["tls", "tls_required", "auth"];

/// Whether a transcript is replayed by `golden_negotiation.rs`: it continues after a TLS or compression
/// upgrade, or its flags need a certificate, an HTTPS port or an auth server.
pub fn replayed_by_negotiation_suite(t: &Transcript) -> bool {
    t.is_nsqd_v2()
        && (t.steps.iter().any(|s| s.transport.is_some())
            || t.daemon_flags.iter().any(|f| is_negotiation_placeholder(f)))
}

fn is_negotiation_placeholder(flag: &str) -> bool {
    flag.contains('<')
        && [
            "--tls-cert=",
            "--tls-key=",
            "--https-address=",
            "--auth-http-address=",
        ]
        .iter()
        .any(|p| flag.starts_with(p))
}

/// The real values for a capture's placeholders.
#[derive(Debug, Clone, Default)]
pub struct FlagValues {
    /// The certificate and key nsqd serves (`--tls-cert`, `--tls-key`).
    pub tls_cert_and_key: Option<(String, String)>,
    /// The port for `--https-address`.
    pub https_port: Option<u16>,
    /// The test auth server for `--auth-http-address`.
    pub auth_server: Option<SocketAddr>,
}

/// The capture's flags beyond the common ones, with the negotiation placeholders filled in. Fails when a
/// placeholder has no value.
pub fn resolve_flags(flags: &[String], values: &FlagValues) -> Result<Vec<String>> {
    let mut resolved = Vec::new();
    for flag in flags {
        if !is_negotiation_placeholder(flag) {
            resolved.push(flag.clone());
            continue;
        }
        let (name, _) = flag.split_once('=').unwrap_or((flag.as_str(), ""));
        let value = match (name, values) {
            (
                "--tls-cert",
                FlagValues {
                    tls_cert_and_key: Some((cert, _)),
                    ..
                },
            ) => cert.clone(),
            (
                "--tls-key",
                FlagValues {
                    tls_cert_and_key: Some((_, key)),
                    ..
                },
            ) => key.clone(),
            (
                "--https-address",
                FlagValues {
                    https_port: Some(port),
                    ..
                },
            ) => format!("127.0.0.1:{port}"),
            (
                "--auth-http-address",
                FlagValues {
                    auth_server: Some(addr),
                    ..
                },
            ) => addr.to_string(),
            _ => bail!("no value for the placeholder in {flag:?}"),
        };
        resolved.push(format!("{name}={value}"));
    }
    extra_nsqd_flags(&resolved)
}

/// An nsqd started with `--tls-required`, killed when dropped.
///
/// [`crate::Nsqd::start`] waits for `GET /ping` to answer 200, but with `--tls-required` plain HTTP
/// answers 403 `TLS_REQUIRED` (as Go's does), so that wait never ends. This launcher counts any HTTP
/// answer on the HTTP port, together with an accepting TCP port, as ready. It uses the same binary and the
/// same common flags.
#[derive(Debug)]
pub struct TlsRequiredNsqd {
    child: Child,
    tcp_addr: SocketAddr,
    http_addr: SocketAddr,
    log_path: PathBuf,
    // Holds the data directory and the log; removed after the process is gone.
    _workdir: tempfile::TempDir,
}

impl TlsRequiredNsqd {
    /// Starts nsqd on fresh ports with the common golden flags plus `extra_flags`.
    pub fn start(extra_flags: &[String]) -> Result<TlsRequiredNsqd> {
        let binary = crate::nsqd_binary()?;
        let port = || -> Result<u16> { Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()) };
        let (tcp_port, http_port) = (port()?, port()?);
        let workdir = tempfile::Builder::new()
            .prefix("nsq-golden-tls-")
            .tempdir()?;
        let data = workdir.path().join("data");
        std::fs::create_dir(&data)?;
        let log_path = workdir.path().join("nsqd.log");
        let log = File::create(&log_path)?;
        let child = Command::new(&binary)
            .arg(format!("--tcp-address=127.0.0.1:{tcp_port}"))
            .arg(format!("--http-address=127.0.0.1:{http_port}"))
            .arg("--broadcast-address=127.0.0.1")
            .arg("--node-id=1")
            .arg(format!("--data-path={}", data.display()))
            .args(extra_flags)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut nsqd = TlsRequiredNsqd {
            child,
            tcp_addr: SocketAddr::from(([127, 0, 0, 1], tcp_port)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], http_port)),
            log_path,
            _workdir: workdir,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = nsqd.child.try_wait() {
                bail!(
                    "nsqd exited during startup with {status}; its output:\n{}",
                    nsqd.log_tail()
                );
            }
            let answered = http::exchange_with_timeout(
                nsqd.http_addr,
                "GET",
                "/ping",
                &http::default_headers(nsqd.http_addr, None),
                b"",
                Duration::from_secs(1),
            )
            .is_ok();
            if answered && TcpStream::connect(nsqd.tcp_addr).is_ok() {
                return Ok(nsqd);
            }
            if started.elapsed() > Duration::from_secs(15) {
                bail!(
                    "nsqd did not answer on {} within 15 s; its output:\n{}",
                    nsqd.http_addr,
                    nsqd.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TCP address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The last few KiB of nsqd's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log_path).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }
}

impl Drop for TlsRequiredNsqd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_common_flags_dropped() {
        let flags: Vec<String> = [
            "--tcp-address=127.0.0.1:<tcp_port>",
            "--tls-cert=<self-signed RSA-2048 cert, CN=golden-nsqd>",
            "--tls-key=<its key>",
            "--https-address=127.0.0.1:<https_port>",
            "--tls-required=true",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let values = FlagValues {
            tls_cert_and_key: Some(("/c.pem".into(), "/c.key".into())),
            https_port: Some(4433),
            auth_server: None,
        };
        assert_eq!(
            resolve_flags(&flags, &values).unwrap(),
            vec![
                "--tls-cert=/c.pem",
                "--tls-key=/c.key",
                "--https-address=127.0.0.1:4433",
                "--tls-required=true"
            ]
        );
        let auth = vec!["--auth-http-address=127.0.0.1:<auth_server_port>".to_string()];
        assert!(resolve_flags(&auth, &values).is_err());
    }
}
