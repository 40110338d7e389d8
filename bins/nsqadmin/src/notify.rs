//! Admin action notifications: after each privileged action nsqadmin POSTs a JSON description to
//! `--notification-http-endpoint` (Go's `nsqadmin/notify.go`). Sending happens on a background task, so a
//! slow or dead endpoint never delays the API answer.

use serde::Serialize;
use tokio::sync::mpsc;

use crate::http_client::HttpClient;

/// One admin action, with Go's field names, order and omissions.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdminAction {
    /// `create_topic`, `pause_channel`, `tombstone_topic_producer`, ...
    pub action: String,
    /// The topic acted on.
    pub topic: String,
    /// The channel, when the action is on one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel: String,
    /// The node, for a tombstone.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// The basic-auth user of the request, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// The client's `ip:port`.
    pub remote_ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// The URL of the request that caused the action.
    pub url: String,
    /// This nsqadmin's hostname.
    pub via: String,
}

/// Starts the sender task; actions sent to the returned channel are POSTed to `endpoint` one by one.
pub fn start(endpoint: String, client: HttpClient) -> mpsc::UnboundedSender<AdminAction> {
    let (tx, mut rx) = mpsc::unbounded_channel::<AdminAction>();
    tokio::spawn(async move {
        while let Some(action) = rx.recv().await {
            let body = match nsq_protocol::to_go_json(&action) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("failed to serialize admin action - {e}");
                    continue;
                }
            };
            tracing::info!("POSTing notification to {endpoint}");
            match client
                .request("POST", &endpoint, Some(("application/json", &body)))
                .await
            {
                Ok(_) => {}
                Err(e) => tracing::error!("failed to POST notification - {e}"),
            }
        }
    });
    tx
}

/// The user name of an `Authorization: Basic ...` header, empty when there is none.
pub fn basic_auth_user(header: Option<&str>) -> String {
    let Some(value) = header else {
        return String::new();
    };
    let Some(("Basic", encoded)) = value.split_once(' ') else {
        return String::new();
    };
    let Some(decoded) = base64_decode(encoded) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&decoded);
    match text.split_once(':') {
        Some((user, _)) => user.to_owned(),
        None => String::new(),
    }
}

/// Standard base64 with padding, `None` when malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let chunks = s.as_bytes().chunks_exact(4);
    if !chunks.remainder().is_empty() {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for chunk in chunks {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_user_is_read_like_go() {
        // "alice:secret"
        assert_eq!(basic_auth_user(Some("Basic YWxpY2U6c2VjcmV0")), "alice");
        assert_eq!(basic_auth_user(Some("Bearer xyz")), "");
        assert_eq!(basic_auth_user(Some("Basic !!!!")), "");
        assert_eq!(basic_auth_user(None), "");
    }

    #[test]
    fn empty_fields_are_left_out() {
        let a = AdminAction {
            action: "create_topic".into(),
            topic: "t".into(),
            channel: String::new(),
            node: String::new(),
            timestamp: 5,
            user: String::new(),
            remote_ip: "127.0.0.1:1".into(),
            user_agent: "ua".into(),
            url: "http://h/api/topics".into(),
            via: "host".into(),
        };
        assert_eq!(
            String::from_utf8(nsq_protocol::to_go_json(&a).unwrap()).unwrap(),
            r#"{"action":"create_topic","topic":"t","timestamp":5,"remote_ip":"127.0.0.1:1","user_agent":"ua","url":"http://h/api/topics","via":"host"}"#
        );
    }
}
