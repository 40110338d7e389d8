//! `GET /channels?topic=` on each lookupd when a topic is created (Go's `ClusterInfo.GetLookupdTopicChannels`
//! through `http_api.Client.GETV1`), so the channels consumers use elsewhere exist before the first message.
//!
//! The request goes through [`crate::http_client`], which writes Go's headers in Go's order and reads no
//! more than `--max-body-size` bytes of body.

use serde::Deserialize;
use tokio::task::JoinSet;

use super::Limits;
use crate::http_client::{query_escape, HttpClient};

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

/// One `GET http://<addr>/channels?topic=<topic>` (Go's `GETV1`).
async fn get_channels(addr: &str, topic: &str, limits: &Limits) -> Result<Vec<String>, String> {
    let client = HttpClient {
        connect_timeout: limits.http_connect_timeout,
        request_timeout: limits.http_request_timeout,
        max_body_size: usize::try_from(limits.max_body_size.max(0)).unwrap_or(usize::MAX),
        // Go's ClusterInfo client has no TLS configuration either; lookupds are asked over plain http.
        tls: None,
    };
    let url = format!("http://{addr}/channels?topic={}", query_escape(topic));
    let body = client.get_v1(&url).await.map_err(|e| e.to_string())?;
    let parsed: ChannelsBody = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok(parsed.channels.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn limits(max_body_size: i64) -> Limits {
        Limits {
            max_body_size,
            http_connect_timeout: Duration::from_secs(1),
            http_request_timeout: Duration::from_secs(2),
        }
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
