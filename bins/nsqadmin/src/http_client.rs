//! The small HTTP/1.1 client nsqadmin talks to nsqlookupd, nsqd and the notification endpoint with.
//!
//! Every request opens a fresh connection and sends `Connection: close`, so the response ends where the
//! connection does; a chunked body is de-chunked. The connect step and the whole exchange have separate
//! deadlines (Go's `--http-client-connect-timeout` and `--http-client-request-timeout`), so an upstream that
//! is down or hangs becomes an error string instead of a stuck request. Errors read like Go's `net/http` ones
//! (`Get "http://...": dial tcp ...: ...`), because nsqadmin shows them to the user in `message`.
//!
//! `https://` URLs go over rustls with the settings of `--http-client-tls-*` ([`tls_config`], Go's
//! nsqadmin `buildTLSConfig`). Like Go's `http_api` client, [`HttpClient::get_json`] and
//! [`HttpClient::post`] answer a plain-http `403` that carries `https_port` (nsqd with `--tls-required`) by
//! repeating the request once over `https://<same host>:<https_port>`.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Responses larger than this are refused (stats of a big cluster stay far below it).
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// The timeouts and TLS settings every upstream request runs with. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct HttpClient {
    /// How long connecting (the TLS handshake included) may take.
    pub connect_timeout: Duration,
    /// How long the whole exchange may take, connecting included.
    pub request_timeout: Duration,
    /// The rustls settings of `https://` requests.
    tls: Arc<rustls::ClientConfig>,
}

/// A response: status code, Go-style status text (`404 Not Found`) and the body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The status line after the protocol, as Go's `resp.Status` prints it.
    pub status_text: String,
    /// The (de-chunked) body.
    pub body: Vec<u8>,
}

/// Where a URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// Whether the scheme is `https`.
    tls: bool,
    /// `host:port` to dial (the scheme's default port filled in).
    addr: String,
    /// The host alone, brackets of an IPv6 literal removed (the TLS server name).
    host: String,
    /// `/path?query`.
    path: String,
}

/// Builds the rustls client settings of Go nsqadmin's `buildTLSConfig`: the client certificate of
/// `cert`/`key` when both are set, only the certificates of `root_ca_file` as roots when it is set (the
/// system roots otherwise), and no server verification at all with `insecure_skip_verify`.
pub fn tls_config(
    insecure_skip_verify: bool,
    root_ca_file: &str,
    cert: &str,
    key: &str,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
    } else if root_ca_file.is_empty() {
        builder.with_root_certificates(system_roots())
    } else {
        builder.with_root_certificates(load_root_ca(root_ca_file)?)
    };
    if cert.is_empty() || key.is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let chain = {
        let pem = std::fs::read(cert).map_err(|e| format!("open {cert}: {e}"))?;
        rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("tls: failed to read {cert}: {e}"))?
    };
    if chain.is_empty() {
        return Err(format!(
            "tls: failed to find any PEM data in certificate input ({cert})"
        ));
    }
    let private_key = {
        let pem = std::fs::read(key).map_err(|e| format!("open {key}: {e}"))?;
        rustls_pemfile::private_key(&mut pem.as_slice())
            .map_err(|e| format!("tls: failed to read {key}: {e}"))?
            .ok_or_else(|| format!("tls: failed to find any PEM data in key input ({key})"))?
    };
    builder
        .with_client_auth_cert(chain, private_key)
        .map_err(|e| format!("tls: {e}"))
}

/// The certificates of a root CA file; like Go's `AppendCertsFromPEM`, unparsable ones are skipped and
/// a file without any is an error.
fn load_root_ca(path: &str) -> Result<rustls::RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| format!("open {path}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("failed to append certificates from Certificate Authority file".to_owned());
    }
    Ok(roots)
}

/// The operating system's trusted roots; whatever cannot be read is left out.
fn system_roots() -> rustls::RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        tracing::warn!("failed to load a system root certificate - {err}");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (_added, _skipped) = roots.add_parsable_certificates(found.certs);
    roots
}

/// Accepts any server certificate (`--http-client-tls-insecure-skip-verify`, Go's `InsecureSkipVerify`);
/// handshake signatures are still checked, so the session keys stay bound to the presented key.
#[derive(Debug)]
struct SkipVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl HttpClient {
    /// A client with these timeouts and TLS settings.
    pub fn new(
        connect_timeout: Duration,
        request_timeout: Duration,
        tls: rustls::ClientConfig,
    ) -> Self {
        Self {
            connect_timeout,
            request_timeout,
            tls: Arc::new(tls),
        }
    }

    /// Sends one request to an `http://` or `https://` URL (`scheme://host[:port]/path?query`).
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Reply, String> {
        let verb = go_verb(method);
        let target =
            split_url(url).ok_or_else(|| format!("{verb} {url:?}: unsupported protocol scheme"))?;
        let mut head = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: nsqadmin/{}\r\n\
             Accept: application/vnd.nsq; version=1.0\r\nConnection: close\r\n",
            target.path,
            target.addr,
            crate::NSQ_VERSION
        );
        let payload = body.map(|(_, b)| b).unwrap_or_default();
        if let Some((content_type, b)) = body {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        } else if method != "GET" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(payload);
        let exchange = async {
            let host = &target.addr;
            let stream =
                match tokio::time::timeout(self.connect_timeout, TcpStream::connect(host)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return Err(format!("dial tcp {host}: {}", io_reason(&e))),
                    Err(_) => return Err(format!("dial tcp {host}: i/o timeout")),
                };
            let raw = if target.tls {
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|e| format!("tls: invalid server name: {e}"))?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
                let tls = match tokio::time::timeout(
                    self.connect_timeout,
                    connector.connect(name, stream),
                )
                .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return Err(tls_reason(&e)),
                    Err(_) => return Err("net/http: TLS handshake timeout".to_owned()),
                };
                send_and_read(tls, &out).await?
            } else {
                send_and_read(stream, &out).await?
            };
            parse_response(&raw)
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(reason)) => Err(format!("{verb} {url:?}: {reason}")),
            Err(_) => Err(format!(
                "{verb} {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )),
        }
    }

    /// [`HttpClient::request`], repeated once over https when a plain-http request is answered `403` with
    /// an `https_port` (Go's `httpsEndpoint` retry).
    async fn request_v1(&self, method: &str, url: &str) -> Result<Reply, String> {
        let reply = self.request(method, url, None).await?;
        if reply.status == 403 && url.starts_with("http://") {
            if let Some(https) = https_endpoint(url, &reply.body) {
                return self.request(method, &https, None).await;
            }
        }
        Ok(reply)
    }

    /// A GET whose 200 body is JSON of type `T` (Go's `NegotiateV1`/`GETV1`); any other status is an error.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let reply = self.request_v1("GET", url).await?;
        if reply.status != 200 {
            return Err(status_error(&reply));
        }
        serde_json::from_slice(&reply.body).map_err(|e| e.to_string())
    }

    /// A POST without a body that must answer 200 (Go's `POSTV1`).
    pub async fn post(&self, url: &str) -> Result<(), String> {
        let reply = self.request_v1("POST", url).await?;
        if reply.status != 200 {
            return Err(status_error(&reply));
        }
        Ok(())
    }
}

/// Writes the request and reads the response until the server closes the connection. A TLS peer that
/// closes without `close_notify` (Go's servers often do) ends the response like a plain close does.
async fn send_and_read<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    out: &[u8],
) -> Result<Vec<u8>, String> {
    stream
        .write_all(out)
        .await
        .map_err(|e| io_reason(&e).to_owned())?;
    stream.flush().await.map_err(|e| io_reason(&e).to_owned())?;
    let mut raw = Vec::new();
    match (&mut stream).take(MAX_RESPONSE).read_to_end(&mut raw).await {
        Ok(_) => Ok(raw),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw),
        Err(e) => Err(io_reason(&e).to_owned()),
    }
}

/// The https URL a `403` body such as `{"message":"TLS_REQUIRED","https_port":4152}` points to: the same
/// host, path and query on `https_port`. `None` when the body names no usable port (the 403 then stands).
fn https_endpoint(url: &str, body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Forbidden {
        https_port: u16,
    }
    let forbidden: Forbidden = serde_json::from_slice(body).ok()?;
    if forbidden.https_port == 0 {
        return None;
    }
    let target = split_url(url)?;
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host
    };
    Some(format!(
        "https://{host}:{}{}",
        forbidden.https_port, target.path
    ))
}

/// A failed TLS handshake in words close to Go's (`tls: ...`, `x509: ...`).
fn tls_reason(e: &std::io::Error) -> String {
    let inner = e
        .get_ref()
        .map_or_else(|| e.to_string(), ToString::to_string);
    if inner.contains("UnknownIssuer") || inner.contains("unknown issuer") {
        "tls: failed to verify certificate: x509: certificate signed by unknown authority"
            .to_owned()
    } else if e.kind() == std::io::ErrorKind::InvalidData {
        format!("tls: {inner}")
    } else {
        format!("remote error: tls: {inner}")
    }
}

/// Go's error for an unexpected status: `got response 404 Not Found "{...}"`.
fn status_error(reply: &Reply) -> String {
    format!(
        "got response {} {:?}",
        reply.status_text,
        String::from_utf8_lossy(&reply.body)
    )
}

/// Go's `net/http` names methods like this in its errors.
fn go_verb(method: &str) -> String {
    let lower = method.to_ascii_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The reason of an I/O error in Go's words where they differ.
fn io_reason(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused",
        std::io::ErrorKind::ConnectionReset => "read: connection reset by peer",
        std::io::ErrorKind::TimedOut => "i/o timeout",
        std::io::ErrorKind::NotFound => "no such host",
        _ => "connection failed",
    }
}

/// Splits `http://host:port/path?q` (or `https://...`) into what to dial and what to ask for.
fn split_url(url: &str) -> Option<Target> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        (true, url.strip_prefix("https://")?)
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    let has_port = authority.contains(':') && !authority.ends_with(']');
    let addr = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    let bare = if has_port {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    } else {
        authority
    };
    let host = bare
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Some(Target {
        tls,
        addr,
        host,
        path,
    })
}

/// Parses a whole response read until the server closed the connection.
fn parse_response(raw: &[u8]) -> Result<Reply, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "malformed HTTP response".to_owned())?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status_text = status_line
        .split_once(' ')
        .map(|(_, s)| s.to_owned())
        .unwrap_or_default();
    let status = status_text
        .get(..3)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("malformed HTTP status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            }
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| "unexpected EOF".to_owned())?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Reply {
        status,
        status_text,
        body,
    })
}

/// Decodes a chunked body.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| "unexpected EOF".to_owned())?;
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| "malformed chunked encoding".to_owned())?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| "unexpected EOF".to_owned())?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(tls: bool, addr: &str, host: &str, path: &str) -> Target {
        Target {
            tls,
            addr: addr.to_owned(),
            host: host.to_owned(),
            path: path.to_owned(),
        }
    }

    #[test]
    fn urls_split_into_host_and_target() {
        assert_eq!(
            split_url("http://127.0.0.1:4151/stats?format=json"),
            Some(target(
                false,
                "127.0.0.1:4151",
                "127.0.0.1",
                "/stats?format=json"
            ))
        );
        assert_eq!(
            split_url("http://example.com"),
            Some(target(false, "example.com:80", "example.com", "/"))
        );
        assert_eq!(
            split_url("https://example.com?x=1"),
            Some(target(true, "example.com:443", "example.com", "/?x=1"))
        );
        assert_eq!(
            split_url("https://[::1]:4152/info"),
            Some(target(true, "[::1]:4152", "::1", "/info"))
        );
        assert_eq!(split_url("ftp://x:1/"), None);
        assert_eq!(split_url("https:///x"), None);
    }

    #[test]
    fn tls_required_403_points_at_the_https_port() {
        let body = br#"{"message":"TLS_REQUIRED","https_port":4152}"#;
        assert_eq!(
            https_endpoint("http://127.0.0.1:4151/stats?format=json&topic=t", body).as_deref(),
            Some("https://127.0.0.1:4152/stats?format=json&topic=t")
        );
        assert_eq!(
            https_endpoint("http://[::1]:4151/info", body).as_deref(),
            Some("https://[::1]:4152/info")
        );
        assert_eq!(
            https_endpoint("http://localhost:4151", body).as_deref(),
            Some("https://localhost:4152/")
        );
        // A 403 without a port (an ACL refusal, say) is not retried.
        assert_eq!(
            https_endpoint("http://127.0.0.1:4151/info", br#"{"message":"FORBIDDEN"}"#),
            None
        );
        assert_eq!(
            https_endpoint("http://127.0.0.1:4151/info", br#"{"https_port":0}"#),
            None
        );
        assert_eq!(https_endpoint("http://127.0.0.1:4151/info", b"nope"), None);
    }

    #[test]
    fn responses_parse_with_length_and_chunks() {
        let r =
            parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((r.status, r.status_text.as_str()), (404, "404 Not Found"));
        assert_eq!(r.body, b"abc");
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn tls_settings_load_the_test_certificates() {
        let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/certs");
        let ca = format!("{certs}/ca.pem");
        let cert = format!("{certs}/client.pem");
        let key = format!("{certs}/client.key");
        assert!(tls_config(false, &ca, &cert, &key)
            .unwrap()
            .client_auth_cert_resolver
            .has_certs());
        assert!(!tls_config(false, &ca, "", "")
            .unwrap()
            .client_auth_cert_resolver
            .has_certs());
        assert!(tls_config(true, "", "", "").is_ok());
        assert!(tls_config(false, &format!("{certs}/missing.pem"), "", "").is_err());
        // A key file is no CA file.
        assert!(tls_config(false, &key, "", "").is_err());
    }

    #[tokio::test]
    async fn refused_connections_read_like_go() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = HttpClient::new(
            Duration::from_secs(1),
            Duration::from_secs(2),
            tls_config(true, "", "", "").unwrap(),
        );
        let err = client
            .get_json::<serde_json::Value>(&format!("http://{addr}/ping"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            format!("Get \"http://{addr}/ping\": dial tcp {addr}: connect: connection refused")
        );
    }
}
