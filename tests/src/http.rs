//! A minimal HTTP/1.1 client over `std::net::TcpStream` that keeps what real HTTP crates hide.
//!
//! The golden HTTP tests assert the header order and the exact case of header names on the wire
//! (`X-Nsq-Content-Type`), and whether a body was sent chunked. Client crates normalise all of
//! that away, so this module writes requests byte for byte and parses responses by hand.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How the response body was delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// A `Content-Length` header.
    ContentLength,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body runs to the close of the connection (or is absent).
    None,
}

impl Transfer {
    /// The name the golden files use: `content-length`, `chunked` or `none`.
    pub fn golden_name(self) -> &'static str {
        match self {
            Transfer::ContentLength => "content-length",
            Transfer::Chunked => "chunked",
            Transfer::None => "none",
        }
    }
}

/// A parsed response, headers in wire order and wire case.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// For example `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// The status code.
    pub status: u16,
    /// Header names and values as they appeared.
    pub headers: Vec<(String, String)>,
    /// The body after de-chunking.
    pub body: Vec<u8>,
    /// How the body was delimited.
    pub transfer: Transfer,
}

impl HttpResponse {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How long one exchange may take before it counts as hung.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends one request on a fresh connection and reads the response.
///
/// `headers` are written in the given order after the request line; nothing is added, so callers
/// must include `Host` (and `Content-Length` when they send a body). Large bodies are written from
/// a helper thread so that a server which answers early (413) and stops reading cannot deadlock us.
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<HttpResponse> {
    exchange_with_timeout(addr, method, target, headers, body, EXCHANGE_TIMEOUT)
}

/// [`exchange`] with a custom limit for each socket read and write (startup probes use a short one).
pub fn exchange_with_timeout(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse> {
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut writer = stream.try_clone()?;
    let mut request = head.into_bytes();
    let writer_thread = if body.len() <= 64 * 1024 {
        request.extend_from_slice(body);
        writer.write_all(&request).context("writing request")?;
        None
    } else {
        let body = body.to_vec();
        Some(std::thread::spawn(move || {
            // Errors are expected when the server rejects the body early and closes.
            let _ = writer
                .write_all(&request)
                .and_then(|()| writer.write_all(&body));
        }))
    };
    let response = read_response(stream, method == "HEAD");
    if let Some(handle) = writer_thread {
        let _ = handle.join();
    }
    response
}

/// A `GET` with the headers the capture sent.
pub fn get(addr: SocketAddr, target: &str) -> Result<HttpResponse> {
    exchange(addr, "GET", target, &default_headers(addr, None), b"")
}

/// A `POST` with the headers the capture sent.
pub fn post(addr: SocketAddr, target: &str, body: &[u8]) -> Result<HttpResponse> {
    exchange(
        addr,
        "POST",
        target,
        &default_headers(addr, Some(body.len())),
        body,
    )
}

/// The request headers the capture tool used: Host, User-Agent, Accept and (with a body length)
/// Content-Length.
pub fn default_headers(addr: SocketAddr, content_length: Option<usize>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("Host".to_string(), addr.to_string()),
        ("User-Agent".to_string(), "golden-capture/1.0".to_string()),
        ("Accept".to_string(), "*/*".to_string()),
    ];
    if let Some(len) = content_length {
        headers.push(("Content-Length".to_string(), len.to_string()));
    }
    headers
}

/// Writes raw bytes to a port and reads until the server closes (or `timeout` passes).
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.write_all(bytes)?;
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "server did not close within {timeout:?}; read so far: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Buffered reader state over a stream.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Reader {
    /// Reads more bytes; returns false at EOF.
    fn fill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    self.eof = true;
                    return Ok(false);
                }
                Err(e) => return Err(e).context("reading response"),
            }
        }
    }

    /// Returns the bytes up to (not including) `delim`, consuming the delimiter too.
    fn take_until(&mut self, delim: &[u8]) -> Result<Vec<u8>> {
        loop {
            if let Some(pos) = self.buf.windows(delim.len()).position(|w| w == delim) {
                let out = self.buf[..pos].to_vec();
                self.buf.drain(..pos + delim.len());
                return Ok(out);
            }
            if !self.fill()? {
                bail!(
                    "connection closed before {:?}; have {:?}",
                    String::from_utf8_lossy(delim),
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// Returns exactly `n` bytes.
    fn take_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill()? {
                bail!(
                    "connection closed after {} of {n} body bytes",
                    self.buf.len()
                );
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Returns everything until EOF.
    fn take_rest(&mut self) -> Result<Vec<u8>> {
        while self.fill()? {}
        Ok(std::mem::take(&mut self.buf))
    }
}

/// Parses one response from the stream.
fn read_response(stream: TcpStream, head_request: bool) -> Result<HttpResponse> {
    let mut reader = Reader {
        stream,
        buf: Vec::new(),
        eof: false,
    };
    let head = reader.take_until(b"\r\n\r\n")?;
    let head = String::from_utf8(head).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_string();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .with_context(|| format!("bad header line {line:?}"))?;
        headers.push((k.to_string(), v.trim_start().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let chunked = find("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length = find("Content-Length");
    let (body, transfer) = if chunked {
        (read_chunked(&mut reader)?, Transfer::Chunked)
    } else if let Some(len) = length {
        let len: usize = len
            .trim()
            .parse()
            .with_context(|| format!("bad Content-Length {len:?}"))?;
        let no_body =
            head_request || status == 204 || status == 304 || (100..200).contains(&status);
        let body = if no_body {
            Vec::new()
        } else {
            reader.take_exact(len)?
        };
        (body, Transfer::ContentLength)
    } else if head_request {
        (Vec::new(), Transfer::None)
    } else {
        (reader.take_rest()?, Transfer::None)
    };
    let _ = reader.stream.shutdown(Shutdown::Both);
    Ok(HttpResponse {
        status_line,
        status,
        headers,
        body,
        transfer,
    })
}

/// De-chunks a chunked body (trailers are read and dropped).
fn read_chunked(reader: &mut Reader) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = reader.take_until(b"\r\n")?;
        let line = String::from_utf8(line).context("chunk size line is not UTF-8")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {line:?}"))?;
        if size == 0 {
            loop {
                if reader.take_until(b"\r\n")?.is_empty() {
                    return Ok(body);
                }
            }
        }
        body.extend_from_slice(&reader.take_exact(size)?);
        let crlf = reader.take_exact(2)?;
        if crlf != b"\r\n" {
            bail!("chunk not followed by CRLF");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves one canned response to one connection and returns the request bytes it saw.
    fn serve_once(response: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut chunk = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut chunk).unwrap();
                seen.extend_from_slice(&chunk[..n]);
            }
            s.write_all(response).unwrap();
            seen
        });
        (addr, handle)
    }

    #[test]
    fn chunked_bodies_are_joined_and_header_case_is_kept() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nX-Nsq-Content-Type: nsq; version=1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        let r = get(addr, "/stats").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.headers[0].0, "X-Nsq-Content-Type");
        assert_eq!(r.body, b"abcde");
        assert_eq!(r.transfer, Transfer::Chunked);
        let request = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            request.starts_with("GET /stats HTTP/1.1\r\nHost: 127.0.0.1:"),
            "{request}"
        );
    }

    #[test]
    fn head_responses_have_no_body_despite_content_length() {
        let (addr, _server) =
            serve_once(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 32\r\n\r\n");
        let r = exchange(addr, "HEAD", "/ping", &default_headers(addr, None), b"").unwrap();
        assert_eq!(
            (r.status, r.body.len(), r.transfer),
            (405, 0, Transfer::ContentLength)
        );
    }
}
