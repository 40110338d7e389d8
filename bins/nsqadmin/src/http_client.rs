//! The small HTTP/1.1 client nsqadmin talks to nsqlookupd, nsqd and the notification endpoint with.
//!
//! Every request opens a fresh TCP connection and sends `Connection: close`, so the response ends where the
//! connection does; a chunked body is de-chunked. The connect step and the whole exchange have separate
//! deadlines (Go's `--http-client-connect-timeout` and `--http-client-request-timeout`), so an upstream that
//! is down or hangs becomes an error string instead of a stuck request. Errors read like Go's `net/http` ones
//! (`Get "http://...": dial tcp ...: ...`), because nsqadmin shows them to the user in `message`.

use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Responses larger than this are refused (stats of a big cluster stay far below it).
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// The timeouts every upstream request runs with.
#[derive(Debug, Clone, Copy)]
pub struct HttpClient {
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long the whole exchange may take, connecting included.
    pub request_timeout: Duration,
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

impl HttpClient {
    /// Sends one request to an `http://host:port/path?query` URL.
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Reply, String> {
        let verb = go_verb(method);
        let (host, target) = split_url(url).ok_or_else(|| {
            format!("{verb} {url:?}: unsupported protocol scheme (only http:// is supported)")
        })?;
        let exchange = async {
            let mut stream =
                match tokio::time::timeout(self.connect_timeout, TcpStream::connect(&host)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return Err(format!("dial tcp {host}: {}", io_reason(&e))),
                    Err(_) => return Err(format!("dial tcp {host}: i/o timeout")),
                };
            let mut head = format!(
                "{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: nsqadmin/{}\r\n\
                 Accept: application/vnd.nsq; version=1.0\r\nConnection: close\r\n",
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
            stream
                .write_all(&out)
                .await
                .map_err(|e| io_reason(&e).to_owned())?;
            let mut raw = Vec::new();
            (&mut stream)
                .take(MAX_RESPONSE)
                .read_to_end(&mut raw)
                .await
                .map_err(|e| io_reason(&e).to_owned())?;
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

    /// A GET whose 200 body is JSON of type `T` (Go's `NegotiateV1`); any other status is an error.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let reply = self.request("GET", url, None).await?;
        if reply.status != 200 {
            return Err(status_error(&reply));
        }
        serde_json::from_slice(&reply.body).map_err(|e| e.to_string())
    }

    /// A POST without a body that must answer 200 (Go's `POSTV1`).
    pub async fn post(&self, url: &str) -> Result<(), String> {
        let reply = self.request("POST", url, None).await?;
        if reply.status != 200 {
            return Err(status_error(&reply));
        }
        Ok(())
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

/// Splits `http://host:port/path?q` into `host:port` and `/path?q`.
fn split_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, target) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => match rest.find('?') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        },
    };
    if host.is_empty() {
        return None;
    }
    let host = if host.contains(':') && !host.ends_with(']') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let target = if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_owned()
    };
    Some((host, target))
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

    #[test]
    fn urls_split_into_host_and_target() {
        assert_eq!(
            split_url("http://127.0.0.1:4151/stats?format=json"),
            Some(("127.0.0.1:4151".to_owned(), "/stats?format=json".to_owned()))
        );
        assert_eq!(
            split_url("http://example.com"),
            Some(("example.com:80".to_owned(), "/".to_owned()))
        );
        assert_eq!(split_url("https://x:1/"), None);
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

    #[tokio::test]
    async fn refused_connections_read_like_go() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = HttpClient {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
        };
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
