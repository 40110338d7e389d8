//! The one outgoing HTTP/1.1 client nsqd needs: `/channels` queries to nsqlookupd ([`crate::lookup`]) and
//! auth-server queries ([`crate::auth`]). Go uses `net/http` through `internal/http_api.Client`; we only need
//! one request per connection, so a small hand-written client keeps hyper's client stack out of the daemon.
//!
//! What it reproduces from Go, because auth servers and lookupds may look at it:
//! - the request head: `Host`, `User-Agent: Go-http-client/1.1`, `Content-Length` (with a body), the
//!   caller's headers sorted by name (Go's `Header.Write`), then `Accept-Encoding: gzip` (added by Go's
//!   transport);
//! - `http_api`'s "V1" convention: `Accept: application/vnd.nsq; version=1.0`, and any status other than
//!   200 is the error `got response <status> <quoted body>`;
//! - two timeouts: the connect timeout bounds the dial, the request timeout bounds the whole exchange
//!   (dial, TLS handshake, request and the complete body), like Go's `Dialer.Timeout` and `Client.Timeout`.
//!
//! Bodies are read by `Content-Length`, chunked encoding or to the end of the stream, and never beyond
//! the caller's size limit (Go reads them whole; a limit keeps a misbehaving peer from filling memory).
//! Not supported, and reported as errors: gzip-encoded answers (Go decodes them transparently; NSQ's
//! peers never compress), redirects, and user info in URLs. Go's http_api also retries a plain-http 403
//! over https on the port named in the body; nsqd's own peers never answer that way, so it is left out.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The `Accept` header of Go's `GETV1`/`POSTV1`.
pub(crate) const ACCEPT_V1: &str = "application/vnd.nsq; version=1.0";

/// The longest response head (status line, headers, a chunk-size line) accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Why a request failed. The texts follow Go's where a log reader would compare them.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// The URL could not be used.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The TCP connection could not be opened.
    #[error("dial tcp {addr}: {source}")]
    Dial {
        /// `host:port` dialled.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TCP connection was not open within the connect timeout.
    #[error("dial tcp {addr}: i/o timeout")]
    DialTimeout {
        /// `host:port` dialled.
        addr: String,
    },
    /// An https URL, but this client has no TLS configuration.
    #[error("https is not configured for this client")]
    NoTls,
    /// The TLS handshake failed.
    #[error("TLS handshake with {addr}: {source}")]
    Tls {
        /// `host:port` dialled.
        addr: String,
        /// What rustls reported.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The whole exchange took longer than the request timeout.
    #[error("request timed out after {0:?} (Client.Timeout exceeded)")]
    Timeout(Duration),
    /// The peer's answer is not HTTP/1.x this client understands.
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
    /// The body is larger than the caller allows.
    #[error("response body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// A V1 request answered with a status other than 200 (Go's exact wording).
    #[error("got response {status} {body:?}")]
    Status {
        /// Code and reason, as in `"500 Internal Server Error"`.
        status: String,
        /// The body, lossily decoded.
        body: String,
    },
}

/// A response: its status and whole body.
#[derive(Debug)]
pub(crate) struct Response {
    /// The numeric status code.
    pub(crate) code: u16,
    /// Code and reason phrase, as in `"200 OK"` (Go's `Response.Status`).
    pub(crate) status: String,
    /// The decoded (de-chunked) body.
    pub(crate) body: Vec<u8>,
}

/// A client: timeouts, a body limit and, for https URLs, a TLS configuration. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    /// Bounds the TCP dial.
    pub(crate) connect_timeout: Duration,
    /// Bounds the whole exchange.
    pub(crate) request_timeout: Duration,
    /// The largest body accepted.
    pub(crate) max_body_size: usize,
    /// Used for https URLs; without it they fail with [`HttpError::NoTls`].
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl HttpClient {
    /// Go's `http_api.Client.GETV1`: a GET with the V1 `Accept` header; the body of a 200 answer.
    pub(crate) async fn get_v1(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        let response = self
            .send("GET", url, &[("Accept", ACCEPT_V1)], None)
            .await?;
        v1_body(response)
    }

    /// Go's `http_api.Client.POSTV1` with a JSON body; the body of a 200 answer.
    pub(crate) async fn post_v1_json(&self, url: &str, json: &[u8]) -> Result<Vec<u8>, HttpError> {
        let headers = [("Accept", ACCEPT_V1), ("Content-Type", "application/json")];
        let response = self.send("POST", url, &headers, Some(json)).await?;
        v1_body(response)
    }

    /// Sends one request and reads the whole answer, whatever its status. `url` is `http://…`,
    /// `https://…` or a bare `host:port[/path]` (taken as http). `headers` go out sorted by name, between
    /// Go's fixed headers; a `body` (even empty) adds `Content-Length`.
    pub(crate) async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let target = Target::parse(url)?;
        let head = request_head(method, &target, headers, body.map(<[u8]>::len));
        let exchange = async {
            let tcp = self.dial(&target.addr).await?;
            if target.https {
                let config = self.tls.clone().ok_or(HttpError::NoTls)?;
                let name = rustls::pki_types::ServerName::try_from(target.server_name.clone())
                    .map_err(|_| HttpError::InvalidUrl {
                        url: url.to_owned(),
                        reason: "the host is not a valid TLS server name",
                    })?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|source| HttpError::Tls {
                        addr: target.addr.clone(),
                        source,
                    })?;
                exchange(tls, &head, body, self.max_body_size).await
            } else {
                exchange(tcp, &head, body, self.max_body_size).await
            }
        };
        timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(self.request_timeout))?
    }

    async fn dial(&self, addr: &str) -> Result<TcpStream, HttpError> {
        match timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => Err(HttpError::DialTimeout {
                addr: addr.to_owned(),
            }),
            Ok(Err(source)) => Err(HttpError::Dial {
                addr: addr.to_owned(),
                source,
            }),
            Ok(Ok(stream)) => Ok(stream),
        }
    }
}

/// Go's `url.QueryEscape`: everything but unreserved bytes as `%XX`, and space as `+`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The body of a 200 answer, or Go's `got response …` error.
fn v1_body(response: Response) -> Result<Vec<u8>, HttpError> {
    if response.code == 200 {
        Ok(response.body)
    } else {
        Err(HttpError::Status {
            status: response.status,
            body: String::from_utf8_lossy(&response.body).into_owned(),
        })
    }
}

/// Where a URL points.
#[derive(Debug, PartialEq)]
struct Target {
    https: bool,
    /// The authority as written, sent as `Host` (Go does not drop a default port either).
    host_header: String,
    /// `host:port` to dial, with the scheme's default port filled in.
    addr: String,
    /// The host without port or IPv6 brackets, for TLS.
    server_name: String,
    /// Path and query, `/` when the URL has no path.
    request_uri: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, HttpError> {
        let invalid = |reason| HttpError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let (https, rest) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            Some(_) => return Err(invalid("the scheme is neither http nor https")),
            None => (false, url),
        };
        // A fragment is never sent.
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, uri) = rest.split_at(split);
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        if authority.contains('@') {
            return Err(invalid("user info in URLs is not supported"));
        }
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let (host, after) = inner
                .split_once(']')
                .ok_or_else(|| invalid("unclosed IPv6 bracket"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) if !p.is_empty() => p.parse::<u16>().map_err(|_| invalid("bad port"))?,
            _ if https => 443,
            _ => 80,
        };
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let request_uri = if uri.starts_with('/') {
            uri.to_owned()
        } else {
            format!("/{uri}")
        };
        Ok(Self {
            https,
            host_header: authority.to_owned(),
            addr,
            server_name: host.to_owned(),
            request_uri,
        })
    }
}

/// The request line and headers, in the order Go's `http.Client` writes them.
fn request_head(
    method: &str,
    target: &Target,
    headers: &[(&str, &str)],
    body_len: Option<usize>,
) -> String {
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: Go-http-client/1.1\r\n",
        target.request_uri, target.host_header
    );
    if let Some(len) = body_len {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    let mut sorted = headers.to_vec();
    sorted.sort_by_key(|&(name, _)| name);
    for (name, value) in sorted {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Accept-Encoding: gzip\r\n\r\n");
    head
}

/// Writes the request and reads the answer on an open connection.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &str,
    body: Option<&[u8]>,
    limit: usize,
) -> Result<Response, HttpError> {
    let mut request = Vec::with_capacity(head.len() + body.map_or(0, <[u8]>::len));
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&request).await?;
    stream.flush().await?;
    read_response(&mut stream, limit).await
}

/// Buffered reading from the connection.
struct Reader<'a, S> {
    stream: &'a mut S,
    buf: Vec<u8>,
    eof: bool,
}

impl<S: AsyncRead + Unpin> Reader<'_, S> {
    async fn fill(&mut self) -> Result<(), HttpError> {
        let mut chunk = [0u8; 8192];
        let n = match self.stream.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS peer that closes without close_notify ends the body, as in Go.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Takes bytes up to and including `delim`, buffering at most `max` bytes while looking.
    async fn take_until(&mut self, delim: &[u8], max: usize) -> Result<Vec<u8>, HttpError> {
        loop {
            if let Some(at) = self.buf.windows(delim.len()).position(|w| w == delim) {
                return Ok(self.buf.drain(..at + delim.len()).collect());
            }
            if self.buf.len() > max {
                return Err(HttpError::Malformed("response head too long".to_owned()));
            }
            if self.eof {
                return Err(unexpected_eof());
            }
            self.fill().await?;
        }
    }

    async fn take(&mut self, n: usize) -> Result<Vec<u8>, HttpError> {
        while self.buf.len() < n {
            if self.eof {
                return Err(unexpected_eof());
            }
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }
}

fn unexpected_eof() -> HttpError {
    HttpError::Io(std::io::ErrorKind::UnexpectedEof.into())
}

/// Reads one response: status line, headers and body.
async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
) -> Result<Response, HttpError> {
    let mut r = Reader {
        stream,
        buf: Vec::new(),
        eof: false,
    };
    let head = r.take_until(b"\r\n\r\n", MAX_HEAD).await?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.split_once(' '))
        .map(|(_, s)| s.trim().to_owned())
        .ok_or_else(|| HttpError::Malformed(format!("status line {status_line:?}")))?;
    let code = status
        .get(..3)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| HttpError::Malformed(format!("status line {status_line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| HttpError::Malformed(format!("Content-Length {value:?}")))?;
                length = Some(n);
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "content-encoding" if !value.eq_ignore_ascii_case("identity") => {
                return Err(HttpError::Malformed(format!(
                    "unsupported Content-Encoding {value}"
                )));
            }
            _ => {}
        }
    }
    // These statuses never carry a body, whatever the headers say.
    let body = if code / 100 == 1 || code == 204 || code == 304 {
        Vec::new()
    } else if chunked {
        let mut body = Vec::new();
        loop {
            let size_line = r.take_until(b"\r\n", MAX_HEAD).await?;
            let text = String::from_utf8_lossy(&size_line);
            let hex = text.trim().split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| HttpError::Malformed(format!("chunk size {hex:?}")))?;
            if size == 0 {
                break;
            }
            if body.len().saturating_add(size) > limit {
                return Err(HttpError::BodyTooLarge(limit));
            }
            body.extend(r.take(size).await?);
            if r.take(2).await? != b"\r\n" {
                return Err(HttpError::Malformed(
                    "chunk not followed by CRLF".to_owned(),
                ));
            }
        }
        body
    } else if let Some(n) = length {
        if n > limit {
            return Err(HttpError::BodyTooLarge(limit));
        }
        r.take(n).await?
    } else {
        while !r.eof {
            if r.buf.len() > limit {
                return Err(HttpError::BodyTooLarge(limit));
            }
            r.fill().await?;
        }
        if r.buf.len() > limit {
            return Err(HttpError::BodyTooLarge(limit));
        }
        std::mem::take(&mut r.buf)
    };
    Ok(Response { code, status, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn client(max_body_size: usize) -> HttpClient {
        HttpClient {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            max_body_size,
            tls: None,
        }
    }

    /// Serves one connection: records the request head plus `body_len` bytes, then writes `response`
    /// and closes.
    async fn serve_once(
        response: &'static [u8],
        body_len: usize,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).await.unwrap();
                head.push(b[0]);
            }
            let mut body = vec![0u8; body_len];
            s.read_exact(&mut body).await.unwrap();
            head.extend(body);
            s.write_all(response).await.unwrap();
            String::from_utf8(head).unwrap()
        });
        (addr, task)
    }

    #[test]
    fn query_escape_like_go() {
        assert_eq!(query_escape("lk_eph#ephemeral"), "lk_eph%23ephemeral");
        assert_eq!(query_escape("a.b-c_d~ e"), "a.b-c_d~+e");
        assert_eq!(query_escape("é/&="), "%C3%A9%2F%26%3D");
    }

    #[test]
    fn targets_from_urls_and_bare_addresses() {
        let t = Target::parse("127.0.0.1:4161/channels?topic=a").unwrap();
        assert_eq!(
            t,
            Target {
                https: false,
                host_header: "127.0.0.1:4161".to_owned(),
                addr: "127.0.0.1:4161".to_owned(),
                server_name: "127.0.0.1".to_owned(),
                request_uri: "/channels?topic=a".to_owned(),
            }
        );
        let t = Target::parse("HTTPS://[::1]/auth#frag").unwrap();
        assert!(t.https);
        assert_eq!(t.addr, "[::1]:443");
        assert_eq!(t.server_name, "::1");
        assert_eq!(t.host_header, "[::1]");
        assert_eq!(t.request_uri, "/auth");
        let t = Target::parse("http://auth.example?x=1").unwrap();
        assert_eq!(t.addr, "auth.example:80");
        assert_eq!(t.request_uri, "/?x=1");
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("http://u:p@x/").is_err());
        assert!(Target::parse("http:///auth").is_err());
        assert!(Target::parse("http://x:99999/").is_err());
    }

    #[tokio::test]
    async fn post_sends_go_header_order_and_the_body() {
        let (addr, task) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 7).await;
        let got = client(1024)
            .post_v1_json(&format!("http://{addr}/x"), b"{\"a\":1}")
            .await
            .unwrap();
        assert_eq!(got, b"{}");
        assert_eq!(
            task.await.unwrap(),
            format!(
                "POST /x HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Go-http-client/1.1\r\n\
                 Content-Length: 7\r\nAccept: application/vnd.nsq; version=1.0\r\n\
                 Content-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n{{\"a\":1}}"
            )
        );
    }

    #[tokio::test]
    async fn reads_chunked_sized_and_until_eof_bodies() {
        let (addr, _t) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            0,
        )
        .await;
        assert_eq!(client(1024).get_v1(&addr).await.unwrap(), b"abcde");
        let (addr, _t) = serve_once(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", 0).await;
        assert_eq!(client(1024).get_v1(&addr).await.unwrap(), b"until the end");
        let (addr, _t) = serve_once(b"HTTP/1.1 204 No Content\r\n\r\n", 0).await;
        let response = client(1024).send("GET", &addr, &[], None).await.unwrap();
        assert_eq!((response.code, response.body.len()), (204, 0));
    }

    #[tokio::test]
    async fn enforces_the_body_limit_in_every_framing() {
        let (addr, _t) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n01234567890",
            0,
        )
        .await;
        let err = client(10).get_v1(&addr).await.unwrap_err();
        assert!(matches!(err, HttpError::BodyTooLarge(10)), "{err}");
        let (addr, _t) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n",
            0,
        )
        .await;
        let err = client(10).get_v1(&addr).await.unwrap_err();
        assert!(matches!(err, HttpError::BodyTooLarge(10)), "{err}");
        let (addr, _t) = serve_once(b"HTTP/1.1 200 OK\r\n\r\n01234567890", 0).await;
        let err = client(10).get_v1(&addr).await.unwrap_err();
        assert!(matches!(err, HttpError::BodyTooLarge(10)), "{err}");
    }

    #[tokio::test]
    async fn rejects_gzip_garbage_and_https_without_tls() {
        let (addr, _t) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx",
            0,
        )
        .await;
        assert!(client(10).get_v1(&addr).await.is_err());
        let (addr, _t) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n", 0).await;
        let err = client(10).get_v1(&addr).await.unwrap_err();
        assert!(matches!(err, HttpError::Malformed(_)), "{err}");
        let err = client(10).get_v1("https://127.0.0.1:1/").await.unwrap_err();
        // Dialling comes first, so a closed port reports the dial; with a listener it is NoTls.
        assert!(matches!(err, HttpError::Dial { .. }), "{err}");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let err = client(10)
            .get_v1(&format!("https://{addr}/"))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::NoTls), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let _hold = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        });
        let mut c = client(10);
        c.request_timeout = Duration::from_millis(150);
        let started = std::time::Instant::now();
        let err = c.get_v1(&addr).await.unwrap_err();
        assert!(matches!(err, HttpError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
