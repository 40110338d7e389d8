//! `GET /channels?topic=` on each lookupd when a topic is created (Go's `ClusterInfo.GetLookupdTopicChannels`
//! through `http_api.Client.GETV1`), so the channels consumers use elsewhere exist before the first message.
//!
//! A minimal HTTP/1.1 client over a tokio `TcpStream`: one request per connection, sent with Go's headers in
//! Go's order, and a response read by `Content-Length`, chunked encoding or end of stream, never more than
//! `--max-body-size` bytes of body.

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::Limits;

/// The longest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Asks every lookupd in `addrs` concurrently; merges, sorts and deduplicates the channels of those that
/// answered. Each failure is logged.
pub(super) async fn query_all(topic: &str, addrs: Vec<String>, limits: &Limits) -> Vec<String> {
    let total = addrs.len();
    let mut set = JoinSet::new();
    for addr in addrs {
        let topic = topic.to_owned();
        let limits = *limits;
        set.spawn(async move {
            let result = get_channels(&addr, &topic, &limits).await;
            (addr, result)
        });
    }
    let mut channels = Vec::new();
    let mut failed = 0;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((_, Ok(found))) => channels.extend(found),
            Ok((addr, Err(err))) => {
                failed += 1;
                tracing::warn!(
                    "CI: failed to query nsqlookupd {addr} for channels of topic {topic} - {err}"
                );
            }
            Err(err) => {
                failed += 1;
                tracing::warn!("CI: channel query task failed - {err}");
            }
        }
    }
    if failed == total && total > 0 {
        tracing::warn!(
            "failed to query nsqlookupd for channels to pre-create for topic {topic} - no nsqlookupd answered"
        );
    }
    channels.sort();
    channels.dedup();
    channels
}

/// What `/channels` answers.
#[derive(Deserialize)]
struct ChannelsBody {
    #[serde(default)]
    channels: Option<Vec<String>>,
}

/// One `GET http://<addr>/channels?topic=<topic>`.
async fn get_channels(addr: &str, topic: &str, limits: &Limits) -> Result<Vec<String>, String> {
    let request = request(addr, &format!("/channels?topic={}", query_escape(topic)));
    let exchange = async {
        let mut stream = timeout(limits.http_connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("dial tcp {addr}: i/o timeout"))?
            .map_err(|e| format!("dial tcp {addr}: {e}"))?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let limit = usize::try_from(limits.max_body_size.max(0)).unwrap_or(usize::MAX);
        read_response(&mut stream, limit).await
    };
    let (status, body) = timeout(limits.http_request_timeout, exchange)
        .await
        .map_err(|_| "request timed out".to_owned())??;
    if !status.starts_with("200") {
        return Err(format!(
            "got response {status} {:?}",
            String::from_utf8_lossy(&body)
        ));
    }
    let parsed: ChannelsBody = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok(parsed.channels.unwrap_or_default())
}

/// The request Go's `http.Client` writes for `GETV1` (header order as on the wire).
fn request(addr: &str, target: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Go-http-client/1.1\r\n\
         Accept: application/vnd.nsq; version=1.0\r\nAccept-Encoding: gzip\r\n\r\n"
    )
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
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

/// Buffered reading from the socket.
struct Reader<'a> {
    stream: &'a mut TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Reader<'_> {
    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 8192];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Takes bytes up to and including `delim`, reading at most `max` bytes.
    async fn take_until(&mut self, delim: &[u8], max: usize) -> Result<Vec<u8>, String> {
        loop {
            if let Some(at) = self.buf.windows(delim.len()).position(|w| w == delim) {
                return Ok(self.buf.drain(..at + delim.len()).collect());
            }
            if self.buf.len() > max {
                return Err("response head too long".to_owned());
            }
            if self.eof {
                return Err("unexpected EOF".to_owned());
            }
            self.fill().await?;
        }
    }

    async fn take(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            if self.eof {
                return Err("unexpected EOF".to_owned());
            }
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }
}

/// Reads a response: its status (`"200 OK"`) and body.
async fn read_response(stream: &mut TcpStream, limit: usize) -> Result<(String, Vec<u8>), String> {
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
        .split_once(' ')
        .map(|(_, s)| s.to_owned())
        .ok_or_else(|| format!("malformed HTTP response {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(value.parse::<usize>().map_err(|e| e.to_string())?);
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "content-encoding" if !value.eq_ignore_ascii_case("identity") => {
                return Err(format!("unsupported Content-Encoding {value}"));
            }
            _ => {}
        }
    }
    let too_big = || format!("response body is larger than {limit} bytes");
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let size_line = r.take_until(b"\r\n", MAX_HEAD).await?;
            let text = String::from_utf8_lossy(&size_line);
            let hex = text.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
            if size == 0 {
                break;
            }
            if body.len() + size > limit {
                return Err(too_big());
            }
            body.extend(r.take(size).await?);
            r.take(2).await?;
        }
        body
    } else if let Some(n) = length {
        if n > limit {
            return Err(too_big());
        }
        r.take(n).await?
    } else {
        while !r.eof {
            if r.buf.len() > limit {
                return Err(too_big());
            }
            r.fill().await?;
        }
        std::mem::take(&mut r.buf)
    };
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::net::TcpListener;

    fn limits(max_body_size: i64) -> Limits {
        Limits {
            max_body_size,
            http_connect_timeout: Duration::from_secs(1),
            http_request_timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn query_escape_like_go() {
        assert_eq!(query_escape("lk_eph#ephemeral"), "lk_eph%23ephemeral");
        assert_eq!(query_escape("a.b-c_d~ e"), "a.b-c_d~+e");
    }

    /// Serves one connection: records the request head and writes `response`.
    async fn serve_once(response: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
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
            s.write_all(response).await.unwrap();
            String::from_utf8(head).unwrap()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn sends_go_headers_and_reads_a_sized_body() {
        let (addr, task) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\
              Content-Length: 32\r\n\r\n{\"channels\":[\"b\",\"a#ephemeral\"]}",
        )
        .await;
        let got = get_channels(&addr, "t#ephemeral", &limits(1024)).await;
        assert_eq!(got, Ok(vec!["b".to_owned(), "a#ephemeral".to_owned()]));
        assert_eq!(
            task.await.unwrap(),
            format!(
                "GET /channels?topic=t%23ephemeral HTTP/1.1\r\nHost: {addr}\r\n\
                 User-Agent: Go-http-client/1.1\r\nAccept: application/vnd.nsq; version=1.0\r\n\
                 Accept-Encoding: gzip\r\n\r\n"
            )
        );
    }

    #[tokio::test]
    async fn reads_chunked_bodies() {
        let (addr, _task) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\n{\"cha\r\n10\r\nnnels\":[\"x\"]}   \r\n0\r\n\r\n",
        )
        .await;
        assert_eq!(
            get_channels(&addr, "t", &limits(1024)).await,
            Ok(vec!["x".to_owned()])
        );
    }

    #[tokio::test]
    async fn refuses_bodies_over_the_limit_and_non_200_answers() {
        let (addr, _task) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"channels\":[]}").await;
        assert!(get_channels(&addr, "t", &limits(50)).await.is_err());
        let (addr, _task) =
            serve_once(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!")
                .await;
        let err = get_channels(&addr, "t", &limits(1024)).await.unwrap_err();
        assert_eq!(err, "got response 500 Internal Server Error \"oops!\"");
    }

    #[tokio::test]
    async fn merges_sorts_and_skips_failed_lookupds() {
        let (a, _t1) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"channels\":[\"z\",\"a\"]}",
        )
        .await;
        let (b, _t2) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"channels\":[\"a\",\"m\"]}",
        )
        .await;
        // Nothing listens here.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let got = query_all("t", vec![a, dead, b], &limits(1024)).await;
        assert_eq!(got, ["a", "m", "z"]);
    }
}
