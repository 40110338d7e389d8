//! Which golden captures need the feature-negotiation harness, and how their placeholder flags become real
//! ones.
//!
//! The captures of TLS, snappy, deflate and AUTH cannot be replayed by the plain transcript and HTTP
//! replays: their bytes continue inside TLS or a compressed stream, or their flags name a certificate, an
//! HTTPS port or an auth server that has to exist first. `tests/tests/golden_negotiation.rs` replays them;
//! the plain replays ask [`replayed_by_negotiation_suite`] and [`NEGOTIATION_HTTP_INSTANCES`] which ones to
//! leave to it, so both sides agree on one rule.

use std::net::SocketAddr;

use anyhow::{bail, Result};

use crate::golden::{extra_nsqd_flags, Transcript};

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
