//! The nsqd endpoints (Go's `nsqd/http.go` handlers), with Go's order of checks and error codes.
//!
//! Each handler turns a request into a response; errors are [`ApiError`]s, which render as nsq's
//! `{"message":"<CODE>"}` with the status Go uses. The order of checks matters to clients and is Go's: `/pub`
//! reads and checks the body before it looks at the topic, `/mpub` creates the topic before it parses the
//! body, `/channel/*` report `INVALID_ARG_TOPIC` where `/topic/create` and `/pub` report `INVALID_TOPIC`, and
//! `/topic/delete` does not validate the name at all.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use nsq_core::{Channel, Topic};
use nsq_protocol::{is_valid_channel_name, is_valid_topic_name};
use serde::Serialize;

use super::request::BodyReader;
use super::router::Endpoint;
use super::stats::{self, StatsParams};
use super::{stats_json, stats_text};
use crate::context::Context;
use crate::options::{ConfigValue, LogLevel};
use nsq_http::query::Query;
use nsq_http::response::{plain_text, v1_empty, v1_error, v1_json, v1_json_value, v1_text};

/// An nsq HTTP error: the status and the code that becomes `{"message":"<code>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
}

impl ApiError {
    const fn new(status: StatusCode, code: &'static str) -> Self {
        Self { status, code }
    }

    fn into_response(self) -> Response {
        v1_error(self.status, self.code)
    }
}

const fn bad_request(code: &'static str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code)
}

const fn not_found(code: &'static str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, code)
}

const fn too_large(code: &'static str) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code)
}

const INVALID_REQUEST: ApiError = bad_request("INVALID_REQUEST");
const MISSING_ARG_TOPIC: ApiError = bad_request("MISSING_ARG_TOPIC");
const TOPIC_NOT_FOUND: ApiError = not_found("TOPIC_NOT_FOUND");
const CHANNEL_NOT_FOUND: ApiError = not_found("CHANNEL_NOT_FOUND");
const INTERNAL_ERROR: ApiError = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
const EXITING: ApiError = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "EXITING");
const INVALID_OPTION: ApiError = bad_request("INVALID_OPTION");

type ApiResult = Result<Response, ApiError>;

/// A routed request, as the handlers see it.
#[derive(Debug)]
pub(crate) struct ApiRequest {
    /// The request method (only `/config` looks at it).
    pub(crate) method: Method,
    /// The raw query string.
    pub(crate) query: Option<String>,
    /// The `:opt` route parameter.
    pub(crate) param: Option<String>,
    /// The body; handlers that need it read it with a limit.
    pub(crate) body: BodyReader,
}

impl ApiRequest {
    fn query(&self) -> Result<Query, ApiError> {
        Query::parse(self.query.as_deref()).map_err(|_| INVALID_REQUEST)
    }
}

/// Runs `endpoint` for `req`.
pub(crate) async fn handle(
    ctx: &Arc<Context>,
    endpoint: Endpoint,
    req: &mut ApiRequest,
) -> Response {
    let result = match endpoint {
        Endpoint::Ping => Ok(plain_text(StatusCode::OK, "OK")),
        Endpoint::Info => Ok(info(ctx)),
        Endpoint::Pub => publish(ctx, req).await,
        Endpoint::Mpub => multi_publish(ctx, req).await,
        Endpoint::Stats => match req.query() {
            Ok(query) => stats(ctx, StatsParams::from_query(&query)).await,
            Err(err) => Err(err),
        },
        Endpoint::Metrics => Ok(super::metrics::handle(ctx).await),
        Endpoint::TopicCreate => topic_create(ctx, req).await,
        Endpoint::TopicDelete => topic_delete(ctx, req).await,
        Endpoint::TopicEmpty => topic_empty(ctx, req),
        Endpoint::TopicPause => topic_pause(ctx, req, true),
        Endpoint::TopicUnpause => topic_pause(ctx, req, false),
        Endpoint::ChannelCreate => channel_create(ctx, req),
        Endpoint::ChannelDelete => channel_delete(ctx, req).await,
        Endpoint::ChannelEmpty => with_channel(ctx, req, |c| c.empty()),
        Endpoint::ChannelPause => with_channel(ctx, req, |c| {
            c.pause();
            ctx.metadata_changed();
        }),
        Endpoint::ChannelUnpause => with_channel(ctx, req, |c| {
            c.unpause();
            ctx.metadata_changed();
        }),
        Endpoint::Config => config(ctx, req).await,
        Endpoint::SetBlockRate => set_block_rate(req),
        // Go frees memory, then its PlainText decorator fails on the nil result and answers 500.
        Endpoint::FreeMemory => Ok(v1_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
        )),
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// The `GET /info` document, in Go's key order. Durations are nanoseconds, as Go encodes `time.Duration`.
#[derive(Debug, Serialize)]
struct InfoDoc<'a> {
    version: &'static str,
    broadcast_address: &'a str,
    hostname: &'a str,
    http_port: i32,
    tcp_port: i32,
    start_time: i64,
    max_heartbeat_interval: i64,
    max_output_buffer_size: i64,
    max_output_buffer_timeout: i64,
    max_deflate_level: i64,
    topology_zone: &'a str,
    topology_region: &'a str,
}

fn info(ctx: &Context) -> Response {
    let opts = &ctx.opts;
    let http_port = ctx
        .http_port()
        .unwrap_or_else(|| i32::from(port_of(&opts.http_address)));
    v1_json_value(
        StatusCode::OK,
        &InfoDoc {
            version: crate::NSQ_VERSION,
            broadcast_address: &opts.broadcast_address,
            hostname: &ctx.hostname,
            http_port,
            tcp_port: ctx.tcp_port(),
            start_time: ctx.start_time,
            max_heartbeat_interval: nanos(opts.max_heartbeat_interval),
            max_output_buffer_size: opts.max_output_buffer_size,
            max_output_buffer_timeout: nanos(opts.max_output_buffer_timeout),
            max_deflate_level: opts.max_deflate_level,
            topology_zone: &opts.topology_zone,
            topology_region: &opts.topology_region,
        },
    )
}

/// `POST /pub?topic=<t>[&defer=<ms>]`.
async fn publish(ctx: &Context, req: &mut ApiRequest) -> ApiResult {
    let max = ctx.opts.max_msg_size;
    if declared_over(&req.body, max) {
        return Err(too_large("MSG_TOO_BIG"));
    }
    let read_max = limit_plus_one(max);
    let body = req
        .body
        .read_capped(read_max)
        .await
        .map_err(|_| INTERNAL_ERROR)?;
    if body.len() == read_max {
        return Err(too_large("MSG_TOO_BIG"));
    }
    if body.is_empty() {
        return Err(bad_request("MSG_EMPTY"));
    }
    let query = req.query()?;
    let name = topic_to_publish(&query)?;
    let topic = get_topic_for_publish(ctx, name).await?;

    let mut defer = Duration::ZERO;
    if let Some(ds) = query.get("defer") {
        let invalid = bad_request("INVALID_DEFER");
        let ms: i64 = ds.parse().map_err(|_| invalid)?;
        let ms = u64::try_from(ms).map_err(|_| invalid)?;
        defer = Duration::from_millis(ms);
        if defer > ctx.opts.max_req_timeout {
            return Err(invalid);
        }
    }
    let topic = topic.ok_or(EXITING)?;
    ctx.publish(&topic, [body], defer)
        .await
        .map_err(|_| EXITING)?;
    Ok(v1_text("OK"))
}

/// `POST /mpub?topic=<t>[&binary=true]`.
async fn multi_publish(ctx: &Context, req: &mut ApiRequest) -> ApiResult {
    let max_body = ctx.opts.max_body_size;
    if declared_over(&req.body, max_body) {
        return Err(too_large("BODY_TOO_BIG"));
    }
    let query = req.query()?;
    let name = topic_to_publish(&query)?;
    // Go creates the topic before it looks at the body, so a bad body still leaves the topic behind.
    let topic = get_topic_for_publish(ctx, name).await?;
    // Text is the default; an unrecognised value means binary (Go logs a deprecation warning).
    let binary = match query.get("binary") {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            tracing::warn!("deprecated value '{other}' used for /mpub binary param");
            true
        }
    };
    let read_max = limit_plus_one(max_body);
    let body = req
        .body
        .read_capped(read_max)
        .await
        .map_err(|_| INTERNAL_ERROR)?;
    let messages = if binary {
        if body.len() == read_max {
            return Err(too_large("BODY_TOO_BIG"));
        }
        parse_binary_mpub(&body, ctx.opts.max_msg_size, max_body).map_err(too_large)?
    } else {
        split_text_mpub(&body, read_max, ctx.opts.max_msg_size)?
    };
    let topic = topic.ok_or(EXITING)?;
    ctx.publish(&topic, messages, Duration::ZERO)
        .await
        .map_err(|_| EXITING)?;
    Ok(v1_text("OK"))
}

/// Text `/mpub`: one message per `\n`-terminated line, empty lines dropped. The checks run line by line in Go's
/// order, so an over-long line is reported before the body's total size is.
fn split_text_mpub(
    body: &Bytes,
    read_max: usize,
    max_msg_size: i64,
) -> Result<Vec<Bytes>, ApiError> {
    let mut messages = Vec::new();
    let mut start = 0;
    while start < body.len() {
        let end = body[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| start + i + 1);
        if end == read_max {
            return Err(too_large("BODY_TOO_BIG"));
        }
        let line_end = if body[end - 1] == b'\n' { end - 1 } else { end };
        let len = line_end - start;
        if len > 0 {
            if i64::try_from(len).unwrap_or(i64::MAX) > max_msg_size {
                return Err(too_large("MSG_TOO_BIG"));
            }
            messages.push(body.slice(start..line_end));
        }
        start = end;
    }
    Ok(messages)
}

/// Binary `/mpub`: `[i32 count]([i32 size][size bytes])*`, with the checks (and codes, minus `E_`) of the TCP
/// MPUB. The messages share `body`'s memory.
fn parse_binary_mpub(
    body: &Bytes,
    max_msg_size: i64,
    max_body_size: i64,
) -> Result<Vec<Bytes>, &'static str> {
    let read_i32 = |at: usize| -> Option<i32> {
        let b = body.get(at..at + 4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let count = read_i32(0).ok_or("BAD_BODY")?;
    let max_messages = (max_body_size - 4) / 5;
    if count <= 0 || i64::from(count) > max_messages {
        return Err("BAD_BODY");
    }
    // The count is bounded by the body limit, and each message needs at least 5 bytes of the body.
    let mut messages = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(body.len() / 5));
    let mut pos = 4usize;
    for _ in 0..count {
        let size = read_i32(pos).ok_or("BAD_MESSAGE")?;
        if size <= 0 || i64::from(size) > max_msg_size {
            return Err("BAD_MESSAGE");
        }
        let start = pos + 4;
        let end = start + usize::try_from(size).map_err(|_| "BAD_MESSAGE")?;
        if end > body.len() {
            return Err("BAD_MESSAGE");
        }
        messages.push(body.slice(start..end));
        pos = end;
    }
    Ok(messages)
}

/// `/pub` and `/mpub` topic argument: `MISSING_ARG_TOPIC` or `INVALID_TOPIC`.
fn topic_to_publish(query: &Query) -> Result<&str, ApiError> {
    let name = query.get("topic").ok_or(MISSING_ARG_TOPIC)?;
    if !is_valid_topic_name(name) {
        return Err(bad_request("INVALID_TOPIC"));
    }
    Ok(name)
}

/// Gets or creates the topic, except while the daemon shuts down (then `None`: the publish answers
/// `EXITING` once its other checks have passed, and no topic is created).
async fn get_topic_for_publish(ctx: &Context, name: &str) -> Result<Option<Arc<Topic>>, ApiError> {
    if ctx.is_exiting() {
        return Ok(None);
    }
    Ok(Some(ctx.get_topic(name).await))
}

/// Go rejects a body by its `Content-Length` before reading any of it.
fn declared_over(body: &BodyReader, max: i64) -> bool {
    body.declared()
        .is_some_and(|n| i64::try_from(n).unwrap_or(i64::MAX) > max)
}

/// Go reads `max + 1` bytes so that reading exactly `max + 1` means "too big".
fn limit_plus_one(max: i64) -> usize {
    usize::try_from(max.max(0))
        .unwrap_or(usize::MAX)
        .saturating_add(1)
}

/// `GET /stats`. The snapshot and its rendering run on the blocking pool: with many topics and clients they
/// take a while, and they take short domain locks.
async fn stats(ctx: &Arc<Context>, params: StatsParams) -> ApiResult {
    let ctx = Arc::clone(ctx);
    let rendered = tokio::task::spawn_blocking(move || {
        let snap = stats::snapshot(&ctx, &params);
        if params.json {
            stats_json::render(&snap).map(Rendered::Json)
        } else {
            Ok(Rendered::Text(stats_text::render(&snap)))
        }
    })
    .await;
    match rendered {
        Ok(Ok(Rendered::Json(body))) => Ok(v1_json(StatusCode::OK, body)),
        Ok(Ok(Rendered::Text(body))) => Ok(v1_text(body)),
        Ok(Err(err)) => {
            tracing::error!("encoding /stats failed: {err}");
            Err(INTERNAL_ERROR)
        }
        Err(err) => {
            tracing::error!("/stats task failed: {err}");
            Err(INTERNAL_ERROR)
        }
    }
}

enum Rendered {
    Json(Vec<u8>),
    Text(String),
}

/// `POST /topic/create?topic=<t>`.
async fn topic_create(ctx: &Context, req: &mut ApiRequest) -> ApiResult {
    let query = req.query()?;
    let name = topic_to_publish(&query)?;
    ctx.get_topic(name).await;
    Ok(v1_empty())
}

/// `PUT /debug/setblockrate?rate=<n>`: Go validates the rate with `strconv.Atoi`, then (there being no block
/// profiler here to configure) answers 500 exactly as Go's decorator does for its nil result.
fn set_block_rate(req: &ApiRequest) -> ApiResult {
    let query = req.query()?;
    let rate = query.get("rate").unwrap_or("");
    let digits = rate.strip_prefix(['+', '-']).unwrap_or(rate);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || rate.parse::<i64>().is_err()
    {
        let why = if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            "invalid syntax"
        } else {
            "value out of range"
        };
        let body = format!(
            "invalid block rate : strconv.Atoi: parsing {}: {why}",
            nsq_protocol::go_quote(rate.as_bytes())
        );
        return Ok(plain_text(StatusCode::BAD_REQUEST, body));
    }
    Ok(v1_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
    ))
}

/// `POST /topic/delete?topic=<t>`: the name is not validated, an unknown (or invalid) one is a 404.
/// The reply waits until the files are gone, as Go's does, so a topic created again right after does not
/// find the old messages.
async fn topic_delete(ctx: &Context, req: &mut ApiRequest) -> ApiResult {
    let query = req.query()?;
    let name = query.get("topic").ok_or(MISSING_ARG_TOPIC)?;
    let queues = ctx
        .topics
        .get_existing_topic(name)
        .map(|t| t.disk_queues())
        .unwrap_or_default();
    ctx.topics
        .delete_existing_topic(name)
        .map_err(|_| TOPIC_NOT_FOUND)?;
    for queue in queues {
        queue.delete().await;
    }
    Ok(v1_empty())
}

/// `POST /topic/empty?topic=<t>`.
fn topic_empty(ctx: &Context, req: &ApiRequest) -> ApiResult {
    let query = req.query()?;
    let name = topic_to_publish(&query)?;
    let topic = ctx.topics.get_existing_topic(name).ok_or(TOPIC_NOT_FOUND)?;
    topic.empty();
    Ok(v1_empty())
}

/// `POST /topic/pause` and `/topic/unpause`: no name validation, like Go.
fn topic_pause(ctx: &Context, req: &ApiRequest, pause: bool) -> ApiResult {
    let query = req.query()?;
    let name = query.get("topic").ok_or(MISSING_ARG_TOPIC)?;
    let topic = ctx.topics.get_existing_topic(name).ok_or(TOPIC_NOT_FOUND)?;
    if pause {
        topic.pause();
    } else {
        topic.unpause();
    }
    ctx.metadata_changed();
    Ok(v1_empty())
}

/// Go's `getExistingTopicFromQuery`: validates `topic` and `channel` (the `*_ARG_*` codes) and finds the topic.
fn existing_topic_and_channel(
    ctx: &Context,
    req: &ApiRequest,
) -> Result<(Arc<Topic>, String), ApiError> {
    let query = req.query()?;
    let topic = query.get("topic").ok_or(MISSING_ARG_TOPIC)?;
    if !is_valid_topic_name(topic) {
        return Err(bad_request("INVALID_ARG_TOPIC"));
    }
    let channel = query
        .get("channel")
        .ok_or(bad_request("MISSING_ARG_CHANNEL"))?;
    if !is_valid_channel_name(channel) {
        return Err(bad_request("INVALID_ARG_CHANNEL"));
    }
    let topic = ctx
        .topics
        .get_existing_topic(topic)
        .ok_or(TOPIC_NOT_FOUND)?;
    Ok((topic, channel.to_owned()))
}

/// `POST /channel/create?topic=<t>&channel=<c>`: the topic must exist.
fn channel_create(ctx: &Context, req: &ApiRequest) -> ApiResult {
    let (topic, channel) = existing_topic_and_channel(ctx, req)?;
    topic.get_channel(&channel);
    Ok(v1_empty())
}

/// `POST /channel/delete`; an ephemeral topic left without channels goes too.
/// Waits for the files to be gone, like `topic_delete`.
async fn channel_delete(ctx: &Context, req: &mut ApiRequest) -> ApiResult {
    let (topic, channel) = existing_topic_and_channel(ctx, req)?;
    let queue = topic
        .get_existing_channel(&channel)
        .and_then(|c| c.disk_queue());
    let topic_now_unused = topic
        .delete_existing_channel(&channel)
        .map_err(|_| CHANNEL_NOT_FOUND)?;
    if topic_now_unused {
        let _ = ctx.topics.delete_existing_topic(topic.name());
    }
    if let Some(queue) = queue {
        queue.delete().await;
    }
    Ok(v1_empty())
}

/// `POST /channel/{empty,pause,unpause}`: runs `action` on an existing channel.
fn with_channel(ctx: &Context, req: &ApiRequest, action: impl FnOnce(&Channel)) -> ApiResult {
    let (topic, channel) = existing_topic_and_channel(ctx, req)?;
    let channel = topic
        .get_existing_channel(&channel)
        .ok_or(CHANNEL_NOT_FOUND)?;
    action(&channel);
    Ok(v1_empty())
}

/// `GET` and `PUT /config/:opt`. Only `nsqlookupd_tcp_addresses` (a JSON array) and `log_level` (a bare word)
/// can be set; both are read back from the context, where the rest of the daemon watches them.
async fn config(ctx: &Context, req: &mut ApiRequest) -> ApiResult {
    let opt = req.param.clone().unwrap_or_default();
    if req.method == Method::PUT {
        let read_max = limit_plus_one(ctx.opts.max_msg_size);
        let body = req
            .body
            .read_capped(read_max)
            .await
            .map_err(|_| INTERNAL_ERROR)?;
        if body.len() == read_max || body.is_empty() {
            return Err(too_large("INVALID_VALUE"));
        }
        match opt.as_str() {
            "nsqlookupd_tcp_addresses" => {
                let addrs: Vec<String> =
                    serde_json::from_slice(&body).map_err(|_| bad_request("INVALID_VALUE"))?;
                *ctx.nsqlookupd_tcp_addresses.write() = addrs;
                ctx.lookup.addresses_changed();
            }
            "log_level" => {
                let text = std::str::from_utf8(&body).map_err(|_| bad_request("INVALID_VALUE"))?;
                let level = LogLevel::parse(text).ok_or(bad_request("INVALID_VALUE"))?;
                *ctx.log_level.write() = level;
                nsq_http::daemon::set_log_level(level.as_str());
            }
            _ => return Err(INVALID_OPTION),
        }
    }
    let value = match opt.as_str() {
        "nsqlookupd_tcp_addresses" => ConfigValue::Json(serde_json::Value::from(
            ctx.nsqlookupd_tcp_addresses.read().clone(),
        )),
        "log_level" => ConfigValue::Json(serde_json::Value::from(*ctx.log_level.read() as i64)),
        name => ctx.opts.config_value(name).ok_or(INVALID_OPTION)?,
    };
    Ok(match value {
        ConfigValue::Text(text) => v1_text(text),
        ConfigValue::Json(v) => v1_json_value(StatusCode::OK, &v),
    })
}

/// A duration as Go's JSON writes `time.Duration`: integer nanoseconds.
fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The port written in a `host:port` option (0 when there is none).
pub(crate) fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_mpub_splits_like_go() {
        let body = Bytes::from_static(b"m-a\nm-b\n\nm-c\n");
        let msgs = split_text_mpub(&body, 1000, 100).unwrap();
        assert_eq!(msgs, [&b"m-a"[..], b"m-b", b"m-c"]);
        let msgs = split_text_mpub(&Bytes::from_static(b"x\ny"), 1000, 100).unwrap();
        assert_eq!(msgs, [&b"x"[..], b"y"]);
        assert!(split_text_mpub(&Bytes::new(), 1000, 100)
            .unwrap()
            .is_empty());
        // A line over the message limit: 413 MSG_TOO_BIG.
        let err = split_text_mpub(&Bytes::from_static(b"ok\n123456\n"), 1000, 5).unwrap_err();
        assert_eq!(err.code, "MSG_TOO_BIG");
        // The body filled the read limit: 413 BODY_TOO_BIG.
        let err = split_text_mpub(&Bytes::from_static(b"a\nbcd"), 5, 100).unwrap_err();
        assert_eq!(err.code, "BODY_TOO_BIG");
    }

    #[test]
    fn binary_mpub_follows_the_tcp_rules() {
        let mut body = vec![0, 0, 0, 2, 0, 0, 0, 3];
        body.extend_from_slice(b"abc");
        body.extend_from_slice(&[0, 0, 0, 1]);
        body.push(b'z');
        let msgs = parse_binary_mpub(&Bytes::from(body.clone()), 100, 1000).unwrap();
        assert_eq!(msgs, [&b"abc"[..], b"z"]);
        assert_eq!(
            parse_binary_mpub(&Bytes::from_static(&[0, 0, 0, 0]), 100, 1000),
            Err("BAD_BODY")
        );
        assert_eq!(
            parse_binary_mpub(&Bytes::from_static(&[0, 0]), 100, 1000),
            Err("BAD_BODY")
        );
        assert_eq!(
            parse_binary_mpub(&Bytes::from(body[..10].to_vec()), 100, 1000),
            Err("BAD_MESSAGE")
        );
        assert_eq!(
            parse_binary_mpub(&Bytes::from(body), 2, 1000),
            Err("BAD_MESSAGE")
        );
        // (1000 - 4) / 5 = 199 messages at most.
        assert_eq!(
            parse_binary_mpub(&Bytes::from_static(&[0, 0, 0, 200]), 100, 1000),
            Err("BAD_BODY")
        );
    }

    #[test]
    fn ports_are_read_from_addresses() {
        assert_eq!(port_of("127.0.0.1:4152"), 4152);
        assert_eq!(port_of("[::1]:80"), 80);
        assert_eq!(port_of("nonsense"), 0);
    }
}
