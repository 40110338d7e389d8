//! The IDENTIFY request body and the feature-negotiation reply.
//!
//! A client describes itself with a JSON object; nsqd decodes it the way Go's `json.Unmarshal` fills a zeroed
//! struct, and, when the client asked for feature negotiation, answers with a JSON object whose key order is
//! part of what clients and the golden captures see.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::{ClientError, ErrorCode};
use crate::json::to_go_json;

/// IDENTIFY request body. Unknown fields ignored; missing fields take the zero value (as Go's json.Unmarshal into a
/// zeroed struct; JSON null also leaves the zero value). Wrong JSON types are an error.
///
/// Use [`parse_identify`] to decode it: that also matches keys case-insensitively, as Go does.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct IdentifyData {
    /// The client's name for itself; nsqd uses the remote IP when empty.
    #[serde(deserialize_with = "nullable")]
    pub client_id: String,
    /// The client's host name; nsqd uses the remote IP when empty.
    #[serde(deserialize_with = "nullable")]
    pub hostname: String,
    /// Milliseconds between heartbeats: -1 disables them, 0 keeps the server default.
    #[serde(deserialize_with = "nullable")]
    pub heartbeat_interval: i64,
    /// Bytes buffered before a flush: -1 unbuffered, 0 default.
    #[serde(deserialize_with = "nullable")]
    pub output_buffer_size: i64,
    /// Milliseconds between flushes: -1 never on a timer, 0 default.
    #[serde(deserialize_with = "nullable")]
    pub output_buffer_timeout: i64,
    /// Whether the client wants the JSON reply instead of a bare OK.
    #[serde(deserialize_with = "nullable")]
    pub feature_negotiation: bool,
    /// Whether the client wants to upgrade to TLS.
    #[serde(deserialize_with = "nullable")]
    pub tls_v1: bool,
    /// Whether the client wants raw DEFLATE compression.
    #[serde(deserialize_with = "nullable")]
    pub deflate: bool,
    /// The DEFLATE level asked for, 1 to 9; 0 means the default.
    #[serde(deserialize_with = "nullable")]
    pub deflate_level: i64,
    /// Whether the client wants snappy framing compression.
    #[serde(deserialize_with = "nullable")]
    pub snappy: bool,
    /// The percentage of messages to deliver, 0 (all) to 99.
    #[serde(deserialize_with = "nullable")]
    pub sample_rate: i64,
    /// Free text naming the client library, shown in stats.
    #[serde(deserialize_with = "nullable")]
    pub user_agent: String,
    /// The in-flight timeout in milliseconds for this client; 0 means the server default.
    #[serde(deserialize_with = "nullable")]
    pub msg_timeout: i64,
    /// The client's region, for topology-aware delivery.
    #[serde(deserialize_with = "nullable")]
    pub topology_region: String,
    /// The client's zone, for topology-aware delivery.
    #[serde(deserialize_with = "nullable")]
    pub topology_zone: String,
}

/// Decodes an IDENTIFY body; bad JSON -> fatal E_BAD_BODY "IDENTIFY failed to decode JSON body".
///
/// Like Go: object keys match field names ignoring ASCII case (Go also folds a few non-ASCII letters such as
/// the Kelvin sign; those are not matched here), a later duplicate key wins, `null` leaves the zero value,
/// a top-level `null` gives all zero values, and bytes that are not UTF-8 inside strings become U+FFFD.
pub fn parse_identify(body: &[u8]) -> Result<IdentifyData, ClientError> {
    decode(body).ok_or_else(|| {
        ClientError::fatal(ErrorCode::BadBody, "IDENTIFY failed to decode JSON body")
    })
}

fn decode(body: &[u8]) -> Option<IdentifyData> {
    let text = String::from_utf8_lossy(body);
    let Top(entries) = serde_json::from_str::<Top>(&text).ok()?;
    let mut folded = Map::with_capacity(entries.len());
    for (key, value) in entries {
        // Go leaves a field untouched for null, so an earlier value for the same key survives.
        if !value.is_null() {
            folded.insert(key.to_ascii_lowercase(), value);
        }
    }
    IdentifyData::deserialize(Value::Object(folded)).ok()
}

/// The top-level JSON value of an IDENTIFY body: the object's entries in document order, duplicates kept, or
/// no entries for `null`. Any other JSON type is an error, as in Go.
struct Top(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
        Ok(Top(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Value>()? {
            entries.push(entry);
        }
        Ok(Top(entries))
    }
}

/// Treats JSON `null` as the zero value, as Go does for non-pointer fields.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Feature-negotiation reply; serialize in exactly this field order (see golden identify_feature_negotiation.json).
#[derive(Debug, Clone, Serialize)]
pub struct IdentifyResponse {
    /// The server's `--max-rdy-count`.
    pub max_rdy_count: i64,
    /// The server version, `1.3.0` for the release we match.
    pub version: String,
    /// The server's `--max-msg-timeout` in milliseconds.
    pub max_msg_timeout: i64,
    /// The in-flight timeout this client got, in milliseconds.
    pub msg_timeout: i64,
    /// Whether the connection upgrades to TLS after this reply.
    pub tls_v1: bool,
    /// Whether the connection switches to DEFLATE after this reply.
    pub deflate: bool,
    /// The DEFLATE level in effect.
    pub deflate_level: i64,
    /// The server's `--max-deflate-level`.
    pub max_deflate_level: i64,
    /// Whether the connection switches to snappy after this reply.
    pub snappy: bool,
    /// The sample rate in effect.
    pub sample_rate: i64,
    /// Whether the client must AUTH before PUB or SUB.
    pub auth_required: bool,
    /// The output buffer size in effect, in bytes.
    pub output_buffer_size: i64,
    /// The output buffer timeout in effect, in milliseconds.
    pub output_buffer_timeout: i64,
    /// The server's `--topology-region`.
    pub topology_region: String,
    /// The server's `--topology-zone`.
    pub topology_zone: String,
}

impl IdentifyResponse {
    /// The reply frame payload: compact JSON, escaped as Go's `json.Marshal`.
    pub fn to_bytes(&self) -> Bytes {
        // Plain strings, integers and booleans always serialize.
        Bytes::from(to_go_json(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_matches_golden_bytes() {
        // The data of the JSON response frame in golden identify_feature_negotiation.json.
        let golden = br#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250,"topology_region":"","topology_zone":""}"#;
        let response = IdentifyResponse {
            max_rdy_count: 2500,
            version: "1.3.0".into(),
            max_msg_timeout: 900_000,
            msg_timeout: 60_000,
            tls_v1: false,
            deflate: false,
            deflate_level: 6,
            max_deflate_level: 6,
            snappy: false,
            sample_rate: 0,
            auth_required: false,
            output_buffer_size: 16384,
            output_buffer_timeout: 250,
            topology_region: String::new(),
            topology_zone: String::new(),
        };
        assert_eq!(&response.to_bytes()[..], &golden[..]);
        assert_eq!(
            golden.len() + 4,
            308,
            "frame size recorded in the golden file"
        );
    }

    #[test]
    fn golden_request_decodes() {
        // The IDENTIFY body sent in golden identify_feature_negotiation.json.
        let body = br#"{"client_id":"golden","hostname":"golden-host","user_agent":"golden/1.0","feature_negotiation":true,"heartbeat_interval":30000,"output_buffer_size":16384,"output_buffer_timeout":250,"tls_v1":false,"snappy":false,"deflate":false,"deflate_level":6,"sample_rate":0,"msg_timeout":0}"#;
        let data = parse_identify(body).unwrap();
        assert_eq!(
            data,
            IdentifyData {
                client_id: "golden".into(),
                hostname: "golden-host".into(),
                user_agent: "golden/1.0".into(),
                feature_negotiation: true,
                heartbeat_interval: 30000,
                output_buffer_size: 16384,
                output_buffer_timeout: 250,
                deflate_level: 6,
                ..IdentifyData::default()
            }
        );
    }

    #[test]
    fn missing_unknown_and_null_fields() {
        let data =
            parse_identify(br#"{"short_id":"x","long_id":"y","msg_timeout":null,"snappy":null}"#)
                .unwrap();
        assert_eq!(data, IdentifyData::default());
        assert_eq!(parse_identify(b"{}").unwrap(), IdentifyData::default());
        assert_eq!(parse_identify(b" null ").unwrap(), IdentifyData::default());
        // A null after a value leaves the earlier value, as Go does.
        let data = parse_identify(br#"{"sample_rate":5,"sample_rate":null}"#).unwrap();
        assert_eq!(data.sample_rate, 5);
        let data = parse_identify(br#"{"sample_rate":5,"sample_rate":7}"#).unwrap();
        assert_eq!(data.sample_rate, 7);
    }

    #[test]
    fn keys_match_case_insensitively() {
        let data = parse_identify(br#"{"Client_ID":"c","HEARTBEAT_INTERVAL":1000,"Tls_V1":true}"#)
            .unwrap();
        assert_eq!(data.client_id, "c");
        assert_eq!(data.heartbeat_interval, 1000);
        assert!(data.tls_v1);
    }

    #[test]
    fn bad_json_is_a_fatal_bad_body() {
        for body in [
            &b"not json"[..],
            b"",
            b"[]",
            b"\"text\"",
            b"true",
            b"{} trailing",
            br#"{"heartbeat_interval":"1000"}"#,
            br#"{"heartbeat_interval":1000.5}"#,
            br#"{"heartbeat_interval":1e3}"#,
            br#"{"heartbeat_interval":9223372036854775808}"#,
            br#"{"tls_v1":1}"#,
            br#"{"client_id":5}"#,
        ] {
            let err = parse_identify(body).unwrap_err();
            assert!(err.is_fatal());
            assert_eq!(
                err.to_string(),
                "E_BAD_BODY IDENTIFY failed to decode JSON body",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn invalid_utf8_in_strings_is_replaced() {
        let data = parse_identify(b"{\"user_agent\":\"a\xffb\"}").unwrap();
        assert_eq!(data.user_agent, "a\u{fffd}b");
    }

    #[test]
    fn response_strings_are_escaped_like_go() {
        let response = IdentifyResponse {
            max_rdy_count: 1,
            version: "1.3.0".into(),
            max_msg_timeout: 1,
            msg_timeout: 1,
            tls_v1: true,
            deflate: true,
            deflate_level: 1,
            max_deflate_level: 1,
            snappy: true,
            sample_rate: 1,
            auth_required: true,
            output_buffer_size: 1,
            output_buffer_timeout: -1,
            topology_region: "r<1>".into(),
            topology_zone: "z&".into(),
        };
        let text = String::from_utf8(response.to_bytes().to_vec()).unwrap();
        assert!(text.ends_with(r#""topology_region":"r\u003c1\u003e","topology_zone":"z\u0026"}"#));
        assert!(text.contains(r#""output_buffer_timeout":-1"#));
    }
}
