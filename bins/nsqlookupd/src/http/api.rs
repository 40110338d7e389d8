//! The endpoints (Go's `nsqlookupd/http.go`): query checks in Go's order, with Go's error codes, and the JSON
//! shapes Go writes, key order and `[]`-never-`null` included.

use std::collections::BTreeMap;

use axum::response::Response;
use hyper::StatusCode;
use serde::Serialize;

use super::router::Endpoint;
use crate::db::Peer;
use crate::{now_ns, Context, NSQ_VERSION};
use nsq_http::query::Query;
use nsq_http::response::{plain_text, v1_empty, v1_error, v1_json_value};

/// `time.Time{}.UnixNano()` in Go: what `/debug` shows as `tombstoned_at` for a producer never tombstoned.
const GO_ZERO_TIME_UNIX_NANO: i64 = -6_795_364_578_871_345_152;

/// Runs one endpoint.
pub(crate) fn handle(ctx: &Context, endpoint: Endpoint, raw_query: Option<&str>) -> Response {
    let result = match endpoint {
        Endpoint::Ping => return plain_text(StatusCode::OK, "OK"),
        Endpoint::Info => Ok(v1_json_value(
            StatusCode::OK,
            &Info {
                version: NSQ_VERSION,
            },
        )),
        Endpoint::Topics => Ok(v1_json_value(
            StatusCode::OK,
            &Topics {
                topics: ctx.db.topics(),
            },
        )),
        Endpoint::Nodes => Ok(nodes(ctx)),
        Endpoint::Metrics => Ok(super::metrics::handle(ctx)),
        Endpoint::Debug => Ok(debug(ctx)),
        Endpoint::Channels => parse_query(raw_query).and_then(|q| {
            let topic = require(&q, "topic", "MISSING_ARG_TOPIC")?;
            Ok(v1_json_value(
                StatusCode::OK,
                &Channels {
                    channels: ctx.db.channels(topic),
                },
            ))
        }),
        Endpoint::Lookup => parse_query(raw_query).and_then(|q| lookup(ctx, &q)),
        Endpoint::TopicCreate => parse_query(raw_query).and_then(|q| {
            let topic = require(&q, "topic", "MISSING_ARG_TOPIC")?;
            if !nsq_protocol::is_valid_topic_name(topic) {
                return Err(bad_request("INVALID_ARG_TOPIC"));
            }
            tracing::info!("DB: adding topic({topic})");
            ctx.db.create_topic(topic);
            Ok(v1_empty())
        }),
        Endpoint::TopicDelete => parse_query(raw_query).and_then(|q| {
            // Go does not validate the name here.
            let topic = require(&q, "topic", "MISSING_ARG_TOPIC")?;
            tracing::info!("DB: removing topic({topic}) and its channels");
            ctx.db.delete_topic(topic);
            Ok(v1_empty())
        }),
        Endpoint::TopicTombstone => parse_query(raw_query).and_then(|q| {
            let topic = require(&q, "topic", "MISSING_ARG_TOPIC")?;
            let node = require(&q, "node", "MISSING_ARG_NODE")?;
            tracing::info!("DB: setting tombstone for producer@{node} of topic({topic})");
            ctx.db.tombstone(topic, node, now_ns());
            Ok(v1_empty())
        }),
        Endpoint::ChannelCreate => parse_query(raw_query).and_then(|q| {
            let (topic, channel) = topic_channel_args(&q)?;
            tracing::info!("DB: adding channel({channel}) in topic({topic})");
            ctx.db.create_channel(topic, channel);
            Ok(v1_empty())
        }),
        Endpoint::ChannelDelete => parse_query(raw_query).and_then(|q| {
            let (topic, channel) = topic_channel_args(&q)?;
            if !ctx.db.delete_channel(topic, channel) {
                return Err(ApiError {
                    status: StatusCode::NOT_FOUND,
                    code: "CHANNEL_NOT_FOUND",
                });
            }
            tracing::info!("DB: removed channel({channel}) from topic({topic})");
            Ok(v1_empty())
        }),
    };
    result.unwrap_or_else(|err| v1_error(err.status, err.code))
}

/// An nsq HTTP error: the status and the `message` code of the `{"message":"<code>"}` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
}

fn bad_request(code: &'static str) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code,
    }
}

fn lookup(ctx: &Context, q: &Query) -> Result<Response, ApiError> {
    let topic = require(q, "topic", "MISSING_ARG_TOPIC")?;
    let Some(found) = ctx.db.lookup(topic, now_ns(), ctx.visibility()) else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            code: "TOPIC_NOT_FOUND",
        });
    };
    Ok(v1_json_value(
        StatusCode::OK,
        &LookupBody {
            channels: found.channels,
            producers: found.producers.iter().map(|p| PeerJson::new(p)).collect(),
        },
    ))
}

fn nodes(ctx: &Context) -> Response {
    let nodes = ctx.db.nodes(now_ns(), ctx.visibility());
    let producers = nodes
        .iter()
        .map(|n| NodeJson {
            peer: PeerJson::new(&n.peer),
            tombstones: n.topics.iter().map(|(_, t)| *t).collect(),
            topics: n.topics.iter().map(|(name, _)| name.as_str()).collect(),
        })
        .collect();
    v1_json_value(StatusCode::OK, &Nodes { producers })
}

fn debug(ctx: &Context) -> Response {
    let dump = ctx.db.debug();
    let body: BTreeMap<&str, Vec<DebugEntry<'_>>> = dump
        .iter()
        .map(|(key, producers)| {
            let entries = producers
                .iter()
                .map(|p| DebugEntry {
                    broadcast_address: &p.peer.broadcast_address,
                    hostname: &p.peer.hostname,
                    http_port: p.peer.http_port,
                    id: &p.peer.id,
                    last_update: p.peer.last_update(),
                    tcp_port: p.peer.tcp_port,
                    tombstoned: p.tombstoned_at.is_some(),
                    tombstoned_at: p.tombstoned_at.unwrap_or(GO_ZERO_TIME_UNIX_NANO),
                    topology_region: &p.peer.topology_region,
                    topology_zone: &p.peer.topology_zone,
                    version: &p.peer.version,
                })
                .collect();
            (key.as_str(), entries)
        })
        .collect();
    v1_json_value(StatusCode::OK, &body)
}

/// Go's `http_api.GetTopicChannelArgs`.
fn topic_channel_args(q: &Query) -> Result<(&str, &str), ApiError> {
    let topic = require(q, "topic", "MISSING_ARG_TOPIC")?;
    if !nsq_protocol::is_valid_topic_name(topic) {
        return Err(bad_request("INVALID_ARG_TOPIC"));
    }
    let channel = require(q, "channel", "MISSING_ARG_CHANNEL")?;
    if !nsq_protocol::is_valid_channel_name(channel) {
        return Err(bad_request("INVALID_ARG_CHANNEL"));
    }
    Ok((topic, channel))
}

/// Parses the query string; 400 `INVALID_REQUEST` when Go would refuse it.
fn parse_query(raw: Option<&str>) -> Result<Query, ApiError> {
    Query::parse(raw).map_err(|_| bad_request("INVALID_REQUEST"))
}

/// The first value of `key` (present but empty is `""`), or 400 `missing` when the key is absent.
fn require<'q>(q: &'q Query, key: &str, missing: &'static str) -> Result<&'q str, ApiError> {
    q.get(key).ok_or_else(|| bad_request(missing))
}

#[derive(Debug, Serialize)]
struct Info {
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct Topics {
    topics: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Channels {
    channels: Vec<String>,
}

/// Go builds `/lookup` from a map, so its two keys are sorted.
#[derive(Debug, Serialize)]
struct LookupBody<'a> {
    channels: Vec<String>,
    producers: Vec<PeerJson<'a>>,
}

/// Go's `PeerInfo` as JSON, fields in struct order.
#[derive(Debug, Serialize)]
struct PeerJson<'a> {
    remote_address: &'a str,
    hostname: &'a str,
    broadcast_address: &'a str,
    tcp_port: i64,
    http_port: i64,
    version: &'a str,
    topology_zone: &'a str,
    topology_region: &'a str,
}

impl<'a> PeerJson<'a> {
    fn new(p: &'a Peer) -> Self {
        Self {
            remote_address: &p.remote_address,
            hostname: &p.hostname,
            broadcast_address: &p.broadcast_address,
            tcp_port: p.tcp_port,
            http_port: p.http_port,
            version: &p.version,
            topology_zone: &p.topology_zone,
            topology_region: &p.topology_region,
        }
    }
}

#[derive(Debug, Serialize)]
struct Nodes<'a> {
    producers: Vec<NodeJson<'a>>,
}

/// Go's `node`: the peer's fields, then `tombstones[i]` for `topics[i]`.
#[derive(Debug, Serialize)]
struct NodeJson<'a> {
    #[serde(flatten)]
    peer: PeerJson<'a>,
    tombstones: Vec<bool>,
    topics: Vec<&'a str>,
}

/// One `/debug` producer; Go builds it from a map, so the keys are sorted.
#[derive(Debug, Serialize)]
struct DebugEntry<'a> {
    broadcast_address: &'a str,
    hostname: &'a str,
    http_port: i64,
    id: &'a str,
    last_update: i64,
    tcp_port: i64,
    tombstoned: bool,
    tombstoned_at: i64,
    topology_region: &'a str,
    topology_zone: &'a str,
    version: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_like_go() {
        let q = Query::parse(Some("topic=a+b&topic=c&node=1.2.3.4%3A1&empty=")).unwrap();
        assert_eq!(require(&q, "topic", "M").ok(), Some("a b"));
        assert_eq!(require(&q, "node", "M").ok(), Some("1.2.3.4:1"));
        assert_eq!(require(&q, "empty", "M").ok(), Some(""));
        assert!(require(&q, "channel", "M").is_err());
        assert!(Query::parse(Some("a=1;b=2")).is_err());
        assert!(Query::parse(Some("a=%zz")).is_err());
        assert!(Query::parse(None).is_ok());
    }

    #[test]
    fn node_json_has_gos_key_order() {
        let peer = Peer::new(1, "127.0.0.1:5".into(), crate::db::PeerFields::default(), 0);
        let node = NodeJson {
            peer: PeerJson::new(&peer),
            tombstones: vec![],
            topics: vec![],
        };
        let json = String::from_utf8(nsq_protocol::to_go_json(&node).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"remote_address":"127.0.0.1:5","hostname":"","broadcast_address":"","tcp_port":0,"http_port":0,"version":"","topology_zone":"","topology_region":"","tombstones":[],"topics":[]}"#
        );
    }
}
