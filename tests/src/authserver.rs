//! A test auth server for nsqd's `--auth-http-address`: answers each AUTH secret with a canned status
//! and JSON body and records every request exactly as it arrived.
//!
//! The golden `auth_*` transcripts were captured against a small local auth server. Each file holds the
//! answer per secret (`auth_server_responses_by_secret`) and the requests Go nsqd made
//! (`auth_server_received`). Replaying them needs the same answers and a record of our requests with the
//! header order and case intact, which an HTTP framework would hide, so this server parses requests by
//! hand on std sockets, one thread per connection, with keep-alive like Go's client expects.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// How long a connection may sit idle before the server drops it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer to one secret.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthAnswer {
    /// HTTP status code.
    pub status: u16,
    /// The JSON body, written with its keys in the recorded order.
    pub json: serde_json::Value,
}

/// A request the capture's auth server received from Go nsqd.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldenAuthRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers in wire order.
    pub headers: Vec<(String, String)>,
    /// The body, absent when there was none.
    pub body_text: Option<String>,
}

/// The auth-server parts of an `auth_*` transcript file (the rest is read by [`crate::golden`]).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthScript {
    /// The answer per secret.
    #[serde(default)]
    pub auth_server_responses_by_secret: BTreeMap<String, AuthAnswer>,
    /// The requests Go nsqd made, in order.
    #[serde(default)]
    pub auth_server_received: Option<Vec<GoldenAuthRequest>>,
}

impl AuthScript {
    /// Reads the auth-server fields of a transcript file.
    pub fn load(path: &Path) -> Result<AuthScript> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// One request as our auth server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// The method.
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Headers in wire order and case.
    pub headers: Vec<(String, String)>,
    /// The body (empty when none was sent).
    pub body: Vec<u8>,
}

/// A running auth server; stops accepting when dropped.
#[derive(Debug)]
pub struct AuthServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl AuthServer {
    /// Starts listening on a free loopback port with these answers. A secret without an answer gets
    /// 404 `{"message":"NOT_FOUND"}`.
    pub fn start(answers: BTreeMap<String, AuthAnswer>) -> Result<AuthServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the auth server")?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(answers);
        let acceptor = {
            let received = Arc::clone(&received);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let received = Arc::clone(&received);
                    let answers = Arc::clone(&answers);
                    std::thread::spawn(move || serve(conn, &answers, &received));
                }
            })
        };
        Ok(AuthServer {
            addr,
            received,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// The address to pass as `--auth-http-address`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

/// Answers requests on one connection until the peer closes it or stays idle.
fn serve(
    mut conn: TcpStream,
    answers: &BTreeMap<String, AuthAnswer>,
    received: &Mutex<Vec<ReceivedRequest>>,
) {
    if conn.set_read_timeout(Some(IDLE_TIMEOUT)).is_err() {
        return;
    }
    let mut buf = Vec::new();
    loop {
        let request = match read_request(&mut conn, &mut buf) {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => return,
        };
        let secret = secret_of(&request);
        if let Ok(mut list) = received.lock() {
            list.push(request);
        }
        let (status, body) = match secret.as_deref().and_then(|s| answers.get(s)) {
            Some(answer) => (answer.status, answer.json.to_string()),
            None => (404, r#"{"message":"NOT_FOUND"}"#.to_owned()),
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            500 => "Internal Server Error",
            _ => "Status",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if conn.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads one request; `Ok(None)` when the peer closed between requests.
fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<ReceivedRequest>> {
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if !fill(conn, buf)? {
            if buf.is_empty() {
                return Ok(None);
            }
            bail!("connection closed inside a request head");
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).context("request head is not UTF-8")?;
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .with_context(|| format!("bad header line {line:?}"))?;
        headers.push((k.to_owned(), v.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.parse::<usize>())
        .transpose()
        .context("bad Content-Length")?
        .unwrap_or(0);
    while buf.len() < length {
        if !fill(conn, buf)? {
            bail!("connection closed inside a request body");
        }
    }
    let body: Vec<u8> = buf.drain(..length).collect();
    Ok(Some(ReceivedRequest {
        method,
        target,
        headers,
        body,
    }))
}

/// Reads more bytes; false at EOF.
fn fill(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<bool> {
    let mut chunk = [0u8; 8192];
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The secret a request asks about: the `secret` query parameter, or for a POST the first `secret`
/// value of its JSON body (Go's `url.Values` as JSON: `{"secret":["..."]}`).
fn secret_of(request: &ReceivedRequest) -> Option<String> {
    if let Some((_, query)) = request.target.split_once('?') {
        for pair in query.split('&') {
            if let Some(value) = pair.strip_prefix("secret=") {
                return Some(percent_decode(value));
            }
        }
    }
    let body: serde_json::Value = serde_json::from_slice(&request.body).ok()?;
    match body.get("secret")? {
        serde_json::Value::Array(values) => values.first()?.as_str().map(str::to_owned),
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Decodes a query-string value (`%XX` and `+` for space).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| char::from(b).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Bb+c%zz"), "a+b c%zz");
        assert_eq!(percent_decode("ends%2"), "ends%2");
    }

    #[test]
    fn answers_per_secret_and_records_the_request() {
        let mut answers = BTreeMap::new();
        answers.insert(
            "good".to_owned(),
            AuthAnswer {
                status: 200,
                json: serde_json::json!({"ttl": 1}),
            },
        );
        let server = AuthServer::start(answers).unwrap();
        let addr = server.addr();
        let ok = crate::http::get(addr, "/auth?secret=good&tls=false").unwrap();
        assert_eq!((ok.status, ok.body_text().as_str()), (200, r#"{"ttl":1}"#));
        let missing = crate::http::post(addr, "/auth", br#"{"secret":["other"]}"#).unwrap();
        assert_eq!(missing.status, 404);
        let got = server.received();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].method.as_str(), got[0].target.as_str()),
            ("GET", "/auth?secret=good&tls=false")
        );
        assert_eq!(got[0].headers[0], ("Host".to_owned(), addr.to_string()));
        assert_eq!(got[1].body, br#"{"secret":["other"]}"#);
    }
}
