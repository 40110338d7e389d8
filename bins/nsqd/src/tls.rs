//! TLS for nsqd's TCP upgrade (IDENTIFY `tls_v1`) and its HTTPS listener, built once from the flags the way
//! Go's `buildTLSConfig` builds its `tls.Config`.
//!
//! Go's client-certificate policies map onto rustls as follows:
//! - no `--tls-client-auth-policy`: no certificate is asked for (Go's `NoClientCert`);
//! - `require`: a certificate must be sent but is not checked against any CA (Go's `RequireAnyClientCert`); the
//!   handshake signature made with it is still verified, so the client must hold its key;
//! - `require-verify`: a certificate chaining to `--tls-root-ca-file` (the system roots without it) must be sent
//!   (Go's `RequireAndVerifyClientCert`).
//!
//! rustls implements TLS 1.2 and 1.3 only, so `--tls-min-version` of `tls1.0` or `tls1.1` (Go's default is
//! `tls1.0`) offers 1.2 and 1.3, and `tls1.3` offers 1.3 alone.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, ServerConnection, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, ProtocolVersion, RootCertStore, SignatureScheme,
};

use crate::options::Options;

/// `tls_min_version` value of TLS 1.3 (Go's `tls.VersionTLS13`).
const VERSION_TLS13: u16 = 0x0304;

/// The server side of TLS, shared by every upgraded connection and the HTTPS listener.
pub type ServerTls = Arc<ServerConfig>;

/// Builds the server configuration, or `None` when neither `--tls-cert` nor `--tls-key` is set (TLS is then
/// not offered). Errors name the file or setting at fault.
pub fn server_config(opts: &Options) -> Result<Option<ServerTls>, String> {
    if opts.tls_cert.is_empty() && opts.tls_key.is_empty() {
        return Ok(None);
    }
    let provider = Arc::new(go_preference(rustls::crypto::ring::default_provider()));
    let versions: &[&rustls::SupportedProtocolVersion] = if opts.tls_min_version >= VERSION_TLS13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS configuration failed - {e}"))?;
    let builder = match opts.tls_client_auth_policy.as_str() {
        "require" => builder.with_client_cert_verifier(Arc::new(AnyClientCert { provider })),
        "require-verify" => {
            let roots = if opts.tls_root_ca_file.is_empty() {
                system_roots()
            } else {
                root_store(&opts.tls_root_ca_file)?
            };
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("TLS client verification setup failed - {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let certs = load_certs(&opts.tls_cert)?;
    let key = load_key(&opts.tls_key)?;
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("failed to use --tls-cert/--tls-key - {e}"))?;
    // Like Go's server, pick by our preference rather than the client's.
    config.ignore_client_order = true;
    Ok(Some(Arc::new(config)))
}

/// Orders the cipher suites as Go's server prefers them on hardware with AES instructions: AES-128-GCM,
/// then AES-256-GCM, then ChaCha20-Poly1305 (TLS 1.3 before TLS 1.2), so the same clients negotiate the same
/// suite as with Go nsqd (`Unknown 4865` in `/stats` for a TLS 1.3 client).
fn go_preference(mut provider: CryptoProvider) -> CryptoProvider {
    provider.cipher_suites.sort_by_key(|s| {
        let name = format!("{:?}", s.suite());
        let tls12 = u8::from(name.starts_with("TLS_ECDHE"));
        let strength = if name.contains("AES_128") {
            0
        } else if name.contains("AES_256") {
            1
        } else {
            2
        };
        (tls12, strength)
    });
    provider
}

/// Builds the client side used for `https://` auth servers: `--tls-root-ca-file` when given, else the system
/// roots (Go's `http_api` client does the same).
pub fn client_config(opts: &Options) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = if opts.tls_root_ca_file.is_empty() {
        system_roots()
    } else {
        root_store(&opts.tls_root_ca_file)?
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration failed - {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("failed to read --tls-cert {path} - {e}"))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("failed to parse --tls-cert {path} - {e}"))?;
    if certs.is_empty() {
        return Err(format!("--tls-cert {path} holds no certificate"));
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("failed to read --tls-key {path} - {e}"))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("failed to parse --tls-key {path} - {e}"))?
        .ok_or_else(|| format!("--tls-key {path} holds no private key"))
}

fn root_store(path: &str) -> Result<RootCertStore, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("failed to read --tls-root-ca-file {path} - {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| format!("failed to parse --tls-root-ca-file {path} - {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("failed to append certificate to pool - {e}"))?;
    }
    if roots.is_empty() {
        return Err("failed to append certificate to pool".to_owned());
    }
    Ok(roots)
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        tracing::warn!("TLS: could not load a system root certificate - {err}");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    tracing::debug!("TLS: {added} system root certificates");
    roots
}

/// Go's `RequireAnyClientCert`: a certificate is required, any certificate is accepted.
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for AnyClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnyClientCert")
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What `/stats` and the auth server are told about a connection's TLS session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// Go's `GetVersion` name: `TLS1.2`, `TLS1.3`.
    pub version: String,
    /// Go's `GetCipherSuite` name: a name from Go's short table, else `Unknown <number>`.
    pub cipher_suite: String,
    /// The common name of the client certificate's subject, or empty.
    pub common_name: String,
}

impl TlsInfo {
    /// Reads the negotiated session of a finished handshake.
    pub fn of(conn: &ServerConnection) -> Self {
        let version = match conn.protocol_version() {
            Some(ProtocolVersion::SSLv3) => "SSL30".to_owned(),
            Some(ProtocolVersion::TLSv1_0) => "TLS1.0".to_owned(),
            Some(ProtocolVersion::TLSv1_1) => "TLS1.1".to_owned(),
            Some(ProtocolVersion::TLSv1_2) => "TLS1.2".to_owned(),
            Some(ProtocolVersion::TLSv1_3) => "TLS1.3".to_owned(),
            Some(other) => format!("Unknown {}", u16::from(other)),
            None => String::new(),
        };
        let cipher_suite = conn
            .negotiated_cipher_suite()
            .map(|s| go_cipher_suite_name(u16::from(s.suite())))
            .unwrap_or_default();
        let common_name = conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| subject_common_name(cert.as_ref()))
            .unwrap_or_default();
        Self {
            version,
            cipher_suite,
            common_name,
        }
    }
}

/// Go nsqd's cipher suite names: its table covers a few TLS 1.0-1.2 suites; everything else, TLS 1.3 suites
/// included, is reported as `Unknown <number>` (the golden `/stats` shows `Unknown 4865` for
/// TLS_AES_128_GCM_SHA256).
fn go_cipher_suite_name(id: u16) -> String {
    let name = match id {
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0xc007 => "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc011 => "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        0xc012 => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        _ => return format!("Unknown {id}"),
    };
    name.to_owned()
}

/// The subject common name (OID 2.5.4.3) of a DER certificate, found by walking just enough of the X.509
/// structure: Certificate → tbsCertificate → (version) serial, signature, issuer, validity, subject.
fn subject_common_name(der: &[u8]) -> Option<String> {
    const CN_OID: &[u8] = &[0x55, 0x04, 0x03];
    let (cert, _) = der_element(der, 0x30)?;
    let (mut tbs, _) = der_element(cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = der_element(tbs, 0xa0)?.1;
    }
    let rest = der_element(tbs, 0x02)?.1; // serial number
    let rest = der_element(rest, 0x30)?.1; // signature algorithm
    let rest = der_element(rest, 0x30)?.1; // issuer
    let rest = der_element(rest, 0x30)?.1; // validity
    let (mut subject, _) = der_element(rest, 0x30)?;
    let mut found = None;
    while !subject.is_empty() {
        let (mut set, after) = der_element(subject, 0x31)?;
        subject = after;
        while !set.is_empty() {
            let (attr, after) = der_element(set, 0x30)?;
            set = after;
            let (oid, value) = der_element(attr, 0x06)?;
            if oid == CN_OID {
                let (&tag, _) = value.split_first()?;
                let (text, _) = der_element(value, tag)?;
                // Go reports the last CN when there are several.
                found = Some(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    found
}

/// Splits one DER element with tag `tag` off the front of `input`: its contents and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len_byte, rest) = rest.split_first()?;
    let (len, rest) = if len_byte < 0x80 {
        (usize::from(len_byte), rest)
    } else {
        let n = usize::from(len_byte & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_names_for_cipher_suites() {
        assert_eq!(go_cipher_suite_name(4865), "Unknown 4865");
        assert_eq!(
            go_cipher_suite_name(0xc02f),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
        assert_eq!(go_cipher_suite_name(0xc030), "Unknown 49200");
    }

    fn cert_path(name: &str) -> String {
        format!("{}/../../tests/certs/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn common_name_of_the_test_client_certificate() {
        let certs = load_certs(&cert_path("client.pem")).unwrap();
        assert_eq!(
            subject_common_name(certs[0].as_ref()).as_deref(),
            Some("test-client")
        );
        let certs = load_certs(&cert_path("server.pem")).unwrap();
        assert_eq!(
            subject_common_name(certs[0].as_ref()).as_deref(),
            Some("nsqd-test")
        );
    }

    #[test]
    fn server_config_for_each_client_policy_and_clear_errors() {
        let base = Options {
            tls_cert: cert_path("server.pem"),
            tls_key: cert_path("server.key"),
            ..Options::default()
        };
        assert!(server_config(&Options::default()).unwrap().is_none());
        for policy in ["", "require", "require-verify"] {
            let opts = Options {
                tls_client_auth_policy: policy.to_owned(),
                tls_root_ca_file: cert_path("ca.pem"),
                ..base.clone()
            };
            let config = server_config(&opts).unwrap().unwrap();
            assert!(config.ignore_client_order);
        }
        let missing = Options {
            tls_key: "/nonexistent/key.pem".to_owned(),
            ..base.clone()
        };
        let err = server_config(&missing).unwrap_err();
        assert!(err.contains("--tls-key /nonexistent/key.pem"), "{err}");
        let bad_ca = Options {
            tls_client_auth_policy: "require-verify".to_owned(),
            tls_root_ca_file: cert_path("README.md"),
            ..base
        };
        let err = server_config(&bad_ca).unwrap_err();
        assert!(
            err.contains("failed to append certificate to pool"),
            "{err}"
        );
    }

    #[test]
    fn go_cipher_preference_puts_aes_128_first() {
        let provider = go_preference(rustls::crypto::ring::default_provider());
        let names: Vec<String> = provider
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(names[0], "TLS13_AES_128_GCM_SHA256", "{names:?}");
        assert!(names[1].starts_with("TLS13_AES_256"), "{names:?}");
        let first_tls12 = names
            .iter()
            .position(|n| n.starts_with("TLS_ECDHE"))
            .unwrap();
        assert!(names[first_tls12].contains("AES_128"), "{names:?}");
        assert!(names[..first_tls12].iter().all(|n| n.starts_with("TLS13")));
    }

    #[test]
    fn der_walk_rejects_truncated_input() {
        assert_eq!(der_element(&[0x30, 0x05, 1, 2], 0x30), None);
        assert_eq!(der_element(&[0x30, 0x82, 0x01], 0x30), None);
        assert_eq!(der_element(&[0x31, 0x00], 0x30), None);
        assert_eq!(
            der_element(&[0x30, 0x01, 7, 9], 0x30),
            Some((&[7u8][..], &[9u8][..]))
        );
        assert_eq!(subject_common_name(&[0x30, 0x00]), None);
    }
}
