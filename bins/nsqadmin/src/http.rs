//! nsqadmin's HTTP API (Go's `nsqadmin/http.go`): `/ping`, the `/api/*` routes and `/config/:opt`, all under
//! `--base-path`, answering in nsq's V1 format with Go's JSON shapes and `message` field. Other paths go to
//! the web UI and history routes ([`crate::ui`]).
//!
//! Routing is a small table walked per request (two of the routes have two parameters, which the shared
//! `nsq_http::router` does not take); an unknown path is `404 NOT_FOUND`, a known path with another method
//! `405` with an `Allow` header, and `OPTIONS` is answered with `Allow`, as httprouter does. httprouter's
//! trailing-slash and case redirects are not reproduced.

#![allow(
    clippy::result_large_err,
    reason = "handlers return their error answer directly; it goes straight back to hyper once per request"
)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use hyper::{HeaderMap, Method, StatusCode};
use nsq_http::response::{self, v1_error, v1_json_value, v1_text};
use serde::{Deserialize, Serialize};

use crate::cluster::{Gathered, Outcome};
use crate::notify::{basic_auth_user, AdminAction};
use crate::types::{ChannelStats, Producer, TopicStats};
use crate::Context;

/// The peer address of a request's connection, stored in the request's extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Largest request body read.
const MAX_BODY: usize = 1024 * 1024;

/// The HTTP API as an axum `Router`.
pub fn router(ctx: Arc<Context>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(ctx)
}

/// One of nsqadmin's routes, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Ping,
    Topics,
    Topic(String),
    Channel(String, String),
    Nodes,
    Node(String),
    Counter,
    Graphite,
    /// Graphite's `/render`, proxied only with `--proxy-graphite`.
    Render,
    Config(String),
}

impl Route {
    /// The methods the route answers, sorted as httprouter lists them in `Allow` (with `OPTIONS`).
    fn allow(&self) -> &'static str {
        match self {
            Route::Ping | Route::Nodes | Route::Counter | Route::Graphite | Route::Render => {
                "GET, OPTIONS"
            }
            Route::Topics => "GET, OPTIONS, POST",
            Route::Topic(_) | Route::Channel(..) => "DELETE, GET, OPTIONS, POST",
            Route::Node(_) => "DELETE, GET, OPTIONS",
            Route::Config(_) => "GET, OPTIONS, PUT",
        }
    }
}

/// Matches a decoded path (already without the base path) against the route table.
fn match_route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let own = |s: &str| s.to_owned();
    Some(match segments.as_slice() {
        ["ping"] => Route::Ping,
        ["api", "topics"] => Route::Topics,
        ["api", "topics", t] => Route::Topic(own(t)),
        ["api", "topics", t, c] => Route::Channel(own(t), own(c)),
        ["api", "nodes"] => Route::Nodes,
        ["api", "nodes", n] => Route::Node(own(n)),
        ["api", "counter"] => Route::Counter,
        ["api", "graphite"] => Route::Graphite,
        ["render"] => Route::Render,
        ["config", opt] => Route::Config(own(opt)),
        _ => return None,
    })
}

/// Strips `--base-path` (Go joins it in front of every route) from a request path.
fn strip_base<'a>(base: &str, path: &'a str) -> Option<&'a str> {
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(base)?;
    rest.starts_with('/').then_some(rest)
}

/// What a handler needs from the request besides its body.
struct Incoming {
    method: Method,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    raw_path: String,
    raw_query: Option<String>,
    body: Vec<u8>,
}

/// Routes one request and runs it.
async fn dispatch(State(ctx): State<Arc<Context>>, req: Request) -> Response {
    let decoded = nsq_http::router::decode_path(req.uri().path());
    let base = ctx.opts().base_path;
    let stripped = strip_base(&base, &decoded);
    // `/render` exists only when graphite is proxied, as Go registers it only then.
    let proxied = ctx.opts().proxy_graphite;
    let route = stripped
        .and_then(match_route)
        .filter(|r| *r != Route::Render || proxied);
    let Some(route) = route else {
        if let Some(res) = stripped.and_then(|p| crate::ui::answer(&ctx, req.method(), p)) {
            return res;
        }
        return v1_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    let method = req.method().clone();
    let allowed = route.allow().split(", ").any(|m| m == method.as_str());
    if method == Method::OPTIONS {
        return response::options(route.allow());
    }
    if !allowed {
        return response::method_not_allowed(route.allow());
    }
    let peer = req.extensions().get::<Peer>().map(|p| p.0);
    let raw_path = req.uri().path().to_owned();
    let raw_query = req.uri().query().map(str::to_owned);
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY + 1).await {
        Ok(b) => b.to_vec(),
        Err(_) => return v1_error(StatusCode::PAYLOAD_TOO_LARGE, "INVALID_VALUE"),
    };
    let inc = Incoming {
        method,
        headers,
        peer,
        raw_path,
        raw_query,
        body,
    };
    match handle(&ctx, route, &inc).await {
        Ok(res) | Err(res) => res,
    }
}

type Answer = Result<Response, Response>;

async fn handle(ctx: &Context, route: Route, inc: &Incoming) -> Answer {
    let get = inc.method == Method::GET;
    let post = inc.method == Method::POST;
    let delete = inc.method == Method::DELETE;
    match route {
        Route::Ping => Ok(response::plain_text(StatusCode::OK, "OK")),
        Route::Topics if get => topics(ctx, inc).await,
        Route::Topics => create_topic_channel(ctx, inc).await,
        Route::Topic(t) if get => topic(ctx, &t).await,
        Route::Topic(t) if post => action(ctx, inc, &t, "").await,
        Route::Topic(t) => delete_topic_or_channel(ctx, inc, &t, "").await,
        Route::Channel(t, c) if get => channel(ctx, &t, &c).await,
        Route::Channel(t, c) if post => action(ctx, inc, &t, &c).await,
        Route::Channel(t, c) => delete_topic_or_channel(ctx, inc, &t, &c).await,
        Route::Nodes => nodes(ctx).await,
        Route::Node(n) if delete => tombstone(ctx, inc, &n).await,
        Route::Node(n) => node(ctx, &n).await,
        Route::Counter => counter(ctx).await,
        Route::Graphite => graphite(ctx, inc).await,
        Route::Render => render(ctx, inc).await,
        Route::Config(opt) => config(ctx, inc, &opt).await,
    }
}

/// Go's `maybeWarnMsg`: empty, or `WARNING: ` and the messages joined by `; `.
fn warn_message(messages: &[String]) -> String {
    if messages.is_empty() {
        String::new()
    } else {
        format!("WARNING: {}", messages.join("; "))
    }
}

/// Takes a gathered value, adding its partial errors (as one message) to `messages`; a total failure is
/// Go's `502 UPSTREAM_ERROR: ...`.
fn take<T>(outcome: Outcome<T>, messages: &mut Vec<String>, what: &str) -> Result<T, Response> {
    match outcome {
        Ok(Gathered { value, errors }) => {
            if !errors.is_empty() {
                let text = errors.join("\n");
                tracing::warn!("{text}");
                messages.push(text);
            }
            Ok(value)
        }
        Err(e) => {
            tracing::error!("failed to {what} - {e}");
            Err(v1_error(
                StatusCode::BAD_GATEWAY,
                &format!("UPSTREAM_ERROR: {e}"),
            ))
        }
    }
}

/// Like [`take`] for an action's list of partial errors.
fn take_errors(
    outcome: Result<Vec<String>, String>,
    messages: &mut Vec<String>,
    what: &str,
) -> Result<(), Response> {
    take(
        outcome.map(|errors| Gathered { value: (), errors }),
        messages,
        what,
    )
}

#[derive(Serialize)]
struct MessageOnly {
    message: String,
}

fn ok_message(messages: &[String]) -> Answer {
    Ok(v1_json_value(
        StatusCode::OK,
        &MessageOnly {
            message: warn_message(messages),
        },
    ))
}

async fn topics(ctx: &Context, inc: &Incoming) -> Answer {
    let query = nsq_http::query::Query::parse(inc.raw_query.as_deref())
        .map_err(|_| v1_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST"))?;
    let opts = ctx.opts();
    let mut messages = Vec::new();
    let outcome = if opts.nsqlookupd_http_addresses.is_empty() {
        ctx.cluster.nsqd_topics(&opts.nsqd_http_addresses).await
    } else {
        ctx.cluster
            .lookupd_topics(&opts.nsqlookupd_http_addresses)
            .await
    };
    let topics = take(outcome, &mut messages, "get topics")?;
    if query.get("inactive") == Some("true") {
        let mut map: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        let lookupds = &opts.nsqlookupd_http_addresses;
        if !lookupds.is_empty() {
            for topic in &topics {
                let producers = ctx
                    .cluster
                    .lookupd_topic_producers(topic, lookupds)
                    .await
                    .map(|g| g.value)
                    .unwrap_or_default();
                if producers.is_empty() {
                    let channels = ctx
                        .cluster
                        .lookupd_topic_channels(topic, lookupds)
                        .await
                        .map(|g| g.value)
                        .unwrap_or_default();
                    map.insert(topic.clone(), (!channels.is_empty()).then_some(channels));
                }
            }
        }
        #[derive(Serialize)]
        struct Inactive {
            topics: BTreeMap<String, Option<Vec<String>>>,
            message: String,
        }
        return Ok(v1_json_value(
            StatusCode::OK,
            &Inactive {
                topics: map,
                message: warn_message(&messages),
            },
        ));
    }
    #[derive(Serialize)]
    struct Topics {
        topics: Option<Vec<String>>,
        message: String,
    }
    Ok(v1_json_value(
        StatusCode::OK,
        &Topics {
            topics: (!topics.is_empty()).then_some(topics),
            message: warn_message(&messages),
        },
    ))
}

async fn topic(ctx: &Context, name: &str) -> Answer {
    let opts = ctx.opts();
    let mut messages = Vec::new();
    let producers = take(
        ctx.cluster
            .topic_producers(
                name,
                &opts.nsqlookupd_http_addresses,
                &opts.nsqd_http_addresses,
            )
            .await,
        &mut messages,
        "get topic producers",
    )?;
    let (per_node, _) = take(
        ctx.cluster.nsqd_stats(&producers, name).await,
        &mut messages,
        "get topic metadata",
    )?;
    let mut sum = TopicStats {
        topic_name: name.to_owned(),
        ..TopicStats::default()
    };
    for t in per_node {
        sum.add(t);
    }
    #[derive(Serialize)]
    struct Body {
        #[serde(flatten)]
        stats: TopicStats,
        message: String,
    }
    Ok(v1_json_value(
        StatusCode::OK,
        &Body {
            stats: sum,
            message: warn_message(&messages),
        },
    ))
}

async fn channel(ctx: &Context, topic: &str, channel: &str) -> Answer {
    let opts = ctx.opts();
    let mut messages = Vec::new();
    let producers = take(
        ctx.cluster
            .topic_producers(
                topic,
                &opts.nsqlookupd_http_addresses,
                &opts.nsqd_http_addresses,
            )
            .await,
        &mut messages,
        "get topic producers",
    )?;
    let (_, mut channels) = take(
        ctx.cluster.nsqd_stats(&producers, topic).await,
        &mut messages,
        "get channel metadata",
    )?;
    #[derive(Serialize)]
    struct Body {
        // Go embeds a pointer that is nil for an unknown channel: then only `message` is written.
        #[serde(flatten)]
        stats: Option<ChannelStats>,
        message: String,
    }
    Ok(v1_json_value(
        StatusCode::OK,
        &Body {
            stats: channels.remove(channel),
            message: warn_message(&messages),
        },
    ))
}

async fn nodes(ctx: &Context) -> Answer {
    let opts = ctx.opts();
    let mut messages = Vec::new();
    let producers = take(
        ctx.cluster
            .producers(&opts.nsqlookupd_http_addresses, &opts.nsqd_http_addresses)
            .await,
        &mut messages,
        "get nodes",
    )?;
    #[derive(Serialize)]
    struct Body {
        nodes: Option<Vec<Producer>>,
        message: String,
    }
    Ok(v1_json_value(
        StatusCode::OK,
        &Body {
            nodes: (!producers.is_empty()).then_some(producers),
            message: warn_message(&messages),
        },
    ))
}

async fn node(ctx: &Context, node: &str) -> Answer {
    let opts = ctx.opts();
    let mut messages = Vec::new();
    let producers = take(
        ctx.cluster
            .producers(&opts.nsqlookupd_http_addresses, &opts.nsqd_http_addresses)
            .await,
        &mut messages,
        "get producers",
    )?;
    let Some(producer) = producers.into_iter().find(|p| p.http_address() == node) else {
        return Err(v1_error(StatusCode::NOT_FOUND, "NODE_NOT_FOUND"));
    };
    let (topics, _) = match ctx.cluster.nsqd_stats(&[producer], "").await {
        Ok(g) if g.errors.is_empty() => g.value,
        Ok(g) => return Err(upstream_error(&g.errors.join("\n"))),
        Err(e) => return Err(upstream_error(&e)),
    };
    let total_clients: i64 = topics
        .iter()
        .flat_map(|t| t.channels.iter().flatten())
        .map(|c| c.clients.as_ref().map_or(0, |l| l.len() as i64))
        .sum();
    let total_messages: i64 = topics.iter().map(|t| t.message_count).sum();
    #[derive(Serialize)]
    struct Body {
        node: String,
        topics: Option<Vec<TopicStats>>,
        total_messages: i64,
        total_clients: i64,
        message: String,
    }
    Ok(v1_json_value(
        StatusCode::OK,
        &Body {
            node: node.to_owned(),
            topics: (!topics.is_empty()).then_some(topics),
            total_messages,
            total_clients,
            message: warn_message(&messages),
        },
    ))
}

fn upstream_error(e: &str) -> Response {
    tracing::error!("failed to get nsqd stats - {e}");
    v1_error(StatusCode::BAD_GATEWAY, &format!("UPSTREAM_ERROR: {e}"))
}

async fn counter(ctx: &Context) -> Answer {
    let opts = ctx.opts();
    let mut messages = Vec::new();
    let producers = take(
        ctx.cluster
            .producers(&opts.nsqlookupd_http_addresses, &opts.nsqd_http_addresses)
            .await,
        &mut messages,
        "get counter producer list",
    )?;
    let (_, channels) = take(
        ctx.cluster.nsqd_stats(&producers, "").await,
        &mut messages,
        "get nsqd stats",
    )?;
    #[derive(Serialize)]
    struct Counter {
        node: String,
        topic_name: String,
        channel_name: String,
        message_count: i64,
    }
    let mut stats: BTreeMap<String, Counter> = BTreeMap::new();
    for c in channels.values() {
        for n in c.nodes.iter().flatten() {
            let key = format!("{}:{}:{}", c.topic_name, c.channel_name, n.node);
            stats
                .entry(key)
                .or_insert_with(|| Counter {
                    node: n.node.clone(),
                    topic_name: c.topic_name.clone(),
                    channel_name: c.channel_name.clone(),
                    message_count: 0,
                })
                .message_count += n.message_count;
        }
    }
    #[derive(Serialize)]
    struct Body {
        stats: BTreeMap<String, Counter>,
        message: String,
    }
    Ok(v1_json_value(
        StatusCode::OK,
        &Body {
            stats,
            message: warn_message(&messages),
        },
    ))
}

async fn graphite(ctx: &Context, inc: &Incoming) -> Answer {
    let query = nsq_http::query::Query::parse(inc.raw_query.as_deref())
        .map_err(|_| v1_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST"))?;
    if query.get("metric") != Some("rate") {
        return Err(v1_error(StatusCode::BAD_REQUEST, "INVALID_ARG_METRIC"));
    }
    let Some(target) = query.get("target") else {
        return Err(v1_error(StatusCode::BAD_REQUEST, "INVALID_ARG_TARGET"));
    };
    let opts = ctx.opts();
    let interval = opts.statsd_interval.as_secs();
    let url = format!(
        "{}/render?format=json&from=-{}sec&target={}&until=-{}sec",
        opts.graphite_url,
        interval * 2,
        crate::cluster::query_escape(target),
        interval
    );
    tracing::info!("GRAPHITE: {url}");
    #[derive(Deserialize)]
    struct Series {
        datapoints: Vec<Vec<Option<f64>>>,
    }
    let internal = || v1_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    let series: Vec<Series> = ctx.cluster.client.get_json(&url).await.map_err(|e| {
        tracing::error!("graphite request failed - {e}");
        internal()
    })?;
    let rate = series
        .first()
        .and_then(|s| s.datapoints.first())
        .and_then(|p| p.first().copied().flatten())
        .ok_or_else(internal)?;
    let text = if rate < 0.0 || interval == 0 {
        "N/A".to_owned()
    } else {
        format!("{:.2}", rate / interval as f64)
    };
    #[derive(Serialize)]
    struct Body {
        rate: String,
    }
    Ok(v1_json_value(StatusCode::OK, &Body { rate: text }))
}

/// Go's `--proxy-graphite` reverse proxy: `GET /render?<query>` is sent on to graphite's `/render` with the
/// same query, and graphite's status and body come back. Failing to reach graphite is `502 Bad Gateway`, as
/// Go's `httputil.ReverseProxy` answers.
async fn render(ctx: &Context, inc: &Incoming) -> Answer {
    let opts = ctx.opts();
    let mut url = format!("{}/render", opts.graphite_url.trim_end_matches('/'));
    if let Some(q) = inc.raw_query.as_deref() {
        url.push('?');
        url.push_str(q);
    }
    let reply = ctx
        .cluster
        .client
        .request("GET", &url, None)
        .await
        .map_err(|e| {
            tracing::error!("graphite proxy request failed - {e}");
            let mut res = Response::new(axum::body::Body::empty());
            *res.status_mut() = StatusCode::BAD_GATEWAY;
            res
        })?;
    let mut res = Response::new(axum::body::Body::from(reply.body));
    *res.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    // The client keeps no response headers, so the type is named from graphite's `format` parameter.
    let format = nsq_http::query::Query::parse(inc.raw_query.as_deref())
        .ok()
        .and_then(|q| q.get("format").map(str::to_owned))
        .unwrap_or_default();
    let content_type = render_content_type(&format);
    if let Ok(v) = content_type.parse() {
        res.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    Ok(res)
}

/// The content type graphite answers `/render` with for a `format` parameter (PNG when none is given).
fn render_content_type(format: &str) -> &'static str {
    match format {
        "json" => "application/json",
        "csv" => "text/csv",
        "svg" => "image/svg+xml",
        "raw" | "dygraph" | "rickshaw" => "text/plain",
        "pickle" => "application/pickle",
        _ => "image/png",
    }
}

/// Go's `isAuthorizedAdminRequest`: with no `--admin-user`, everyone is; otherwise the ACL header must name
/// one of them.
fn authorize(ctx: &Context, inc: &Incoming) -> Result<(), Response> {
    let opts = ctx.opts();
    if opts.admin_users.is_empty() {
        return Ok(());
    }
    let user = inc
        .headers
        .get(opts.acl_http_header.as_str())
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if opts.admin_users.iter().any(|u| u == user) {
        Ok(())
    } else {
        Err(v1_error(StatusCode::FORBIDDEN, "FORBIDDEN"))
    }
}

/// Queues a notification of an admin action, when an endpoint is configured.
fn notify(ctx: &Context, inc: &Incoming, action: &str, topic: &str, channel: &str, node: &str) {
    let Some(tx) = &ctx.notifications else {
        return;
    };
    let header = |name: &str| {
        inc.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let scheme = if header("X-Scheme").as_deref() == Some("https") {
        "https"
    } else {
        "http"
    };
    let mut url = format!(
        "{scheme}://{}{}",
        header("Host").unwrap_or_default(),
        inc.raw_path
    );
    if let Some(q) = &inc.raw_query {
        url.push('?');
        url.push_str(q);
    }
    let _ = tx.send(AdminAction {
        action: action.to_owned(),
        topic: topic.to_owned(),
        channel: channel.to_owned(),
        node: node.to_owned(),
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        user: basic_auth_user(header("Authorization").as_deref()),
        remote_ip: inc.peer.map(|p| p.to_string()).unwrap_or_default(),
        user_agent: header("User-Agent").unwrap_or_default(),
        url,
        via: ctx.hostname.clone(),
    });
}

/// Decodes a JSON request body as Go's `json.Decoder.Decode` would accept it; the error is its text.
fn decode_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("EOF".to_owned());
    }
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<T>();
    match stream.next() {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("EOF".to_owned()),
    }
}

async fn create_topic_channel(ctx: &Context, inc: &Incoming) -> Answer {
    authorize(ctx, inc)?;
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Body {
        topic: String,
        channel: String,
    }
    let body: Body = decode_body(&inc.body).map_err(|e| v1_error(StatusCode::BAD_REQUEST, &e))?;
    if !nsq_protocol::is_valid_topic_name(&body.topic) {
        return Err(v1_error(StatusCode::BAD_REQUEST, "INVALID_TOPIC"));
    }
    if !body.channel.is_empty() && !nsq_protocol::is_valid_channel_name(&body.channel) {
        return Err(v1_error(StatusCode::BAD_REQUEST, "INVALID_CHANNEL"));
    }
    let opts = ctx.opts();
    let mut messages = Vec::new();
    let errors = ctx
        .cluster
        .create_topic_channel(&body.topic, &body.channel, &opts.nsqlookupd_http_addresses)
        .await;
    take_errors(Ok(errors), &mut messages, "create topic/channel")?;
    notify(ctx, inc, "create_topic", &body.topic, "", "");
    if !body.channel.is_empty() {
        notify(ctx, inc, "create_channel", &body.topic, &body.channel, "");
    }
    ok_message(&messages)
}

async fn delete_topic_or_channel(
    ctx: &Context,
    inc: &Incoming,
    topic: &str,
    channel: &str,
) -> Answer {
    authorize(ctx, inc)?;
    let opts = ctx.opts();
    let lookupds = &opts.nsqlookupd_http_addresses;
    let nsqds = &opts.nsqd_http_addresses;
    let mut messages = Vec::new();
    if channel.is_empty() {
        let outcome = ctx.cluster.delete_topic(topic, lookupds, nsqds).await;
        take_errors(outcome, &mut messages, "delete topic")?;
        notify(ctx, inc, "delete_topic", topic, "", "");
    } else {
        let outcome = ctx
            .cluster
            .delete_channel(topic, channel, lookupds, nsqds)
            .await;
        take_errors(outcome, &mut messages, "delete channel")?;
        notify(ctx, inc, "delete_channel", topic, channel, "");
    }
    ok_message(&messages)
}

async fn action(ctx: &Context, inc: &Incoming, topic: &str, channel: &str) -> Answer {
    authorize(ctx, inc)?;
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Body {
        action: String,
    }
    let body: Body = decode_body(&inc.body).map_err(|e| v1_error(StatusCode::BAD_REQUEST, &e))?;
    let kind = if channel.is_empty() {
        "topic"
    } else {
        "channel"
    };
    if !matches!(body.action.as_str(), "pause" | "unpause" | "empty") {
        return Err(v1_error(StatusCode::BAD_REQUEST, "INVALID_ACTION"));
    }
    let opts = ctx.opts();
    let path = format!("{kind}/{}", body.action);
    let mut messages = Vec::new();
    let outcome = ctx
        .cluster
        .producer_action(
            topic,
            channel,
            &path,
            &opts.nsqlookupd_http_addresses,
            &opts.nsqd_http_addresses,
        )
        .await;
    notify(
        ctx,
        inc,
        &format!("{}_{kind}", body.action),
        topic,
        channel,
        "",
    );
    take_errors(
        outcome,
        &mut messages,
        &format!("{} topic/channel", body.action),
    )?;
    ok_message(&messages)
}

async fn tombstone(ctx: &Context, inc: &Incoming, node: &str) -> Answer {
    authorize(ctx, inc)?;
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Body {
        topic: String,
    }
    let body: Body =
        decode_body(&inc.body).map_err(|_| v1_error(StatusCode::BAD_REQUEST, "INVALID_BODY"))?;
    if !nsq_protocol::is_valid_topic_name(&body.topic) {
        return Err(v1_error(StatusCode::BAD_REQUEST, "INVALID_TOPIC"));
    }
    let opts = ctx.opts();
    let mut messages = Vec::new();
    let errors = ctx
        .cluster
        .tombstone_node_for_topic(&body.topic, node, &opts.nsqlookupd_http_addresses)
        .await;
    take_errors(Ok(errors), &mut messages, "tombstone node for topic")?;
    notify(ctx, inc, "tombstone_topic_producer", &body.topic, "", node);
    ok_message(&messages)
}

/// Whether `ip` lies in `cidr` (`addr/bits`); an unparsable CIDR admits nobody.
fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// An option's value as Go's `/config/:opt` answers it: strings raw, the rest as JSON.
enum ConfigValue {
    Text(String),
    Json(serde_json::Value),
}

/// The option named by its config key (Go's `getOptByCfgName`), `None` for an unknown name.
fn config_value(opts: &crate::Options, name: &str) -> Option<ConfigValue> {
    use serde_json::json;
    let text = |s: &str| Some(ConfigValue::Text(s.to_owned()));
    let nanos = |d: std::time::Duration| Some(ConfigValue::Json(json!(d.as_nanos() as u64)));
    match name {
        // Go's option holds a numeric log level (debug=1 ... fatal=5), written as a number.
        "log_level" => {
            let n = match opts.log_level.as_str() {
                "debug" => 1,
                "info" => 2,
                "warn" => 3,
                "error" => 4,
                _ => 5,
            };
            Some(ConfigValue::Json(json!(n)))
        }
        "log_prefix" => text(&opts.log_prefix),
        "http_address" => text(&opts.http_address),
        "base_path" => text(&opts.base_path),
        "dev_static_dir" => text(&opts.dev_static_dir),
        "graphite_url" => text(&opts.graphite_url),
        "proxy_graphite" => Some(ConfigValue::Json(json!(opts.proxy_graphite))),
        "statsd_counter_format" => text(&opts.statsd_counter_format),
        "statsd_gauge_format" => text(&opts.statsd_gauge_format),
        "statsd_prefix" => text(&opts.statsd_prefix),
        "statsd_interval" => nanos(opts.statsd_interval),
        "notification_http_endpoint" => text(&opts.notification_http_endpoint),
        "http_client_connect_timeout" => nanos(opts.http_client_connect_timeout),
        "http_client_request_timeout" => nanos(opts.http_client_request_timeout),
        "http_client_tls_insecure_skip_verify" => Some(ConfigValue::Json(json!(
            opts.http_client_tls_insecure_skip_verify
        ))),
        "http_client_tls_root_ca_file" => text(&opts.http_client_tls_root_ca_file),
        "http_client_tls_cert" => text(&opts.http_client_tls_cert),
        "http_client_tls_key" => text(&opts.http_client_tls_key),
        "allow_config_from_cidr" => text(&opts.allow_config_from_cidr),
        "acl_http_header" => text(&opts.acl_http_header),
        "admin_users" => Some(ConfigValue::Json(json!(nil_list(&opts.admin_users)))),
        "nsqlookupd_http_addresses" => Some(ConfigValue::Json(json!(nil_list(
            &opts.nsqlookupd_http_addresses
        )))),
        "nsqd_http_addresses" => Some(ConfigValue::Json(json!(nil_list(
            &opts.nsqd_http_addresses
        )))),
        _ => None,
    }
}

/// A list as Go writes a nil slice: `null` when empty.
fn nil_list(list: &[String]) -> Option<&[String]> {
    (!list.is_empty()).then_some(list)
}

async fn config(ctx: &Context, inc: &Incoming, opt: &str) -> Answer {
    let cidr = ctx.opts().allow_config_from_cidr;
    if !cidr.is_empty() {
        let Some(peer) = inc.peer else {
            return Err(v1_error(StatusCode::BAD_REQUEST, "INVALID_REMOTE_ADDR"));
        };
        if !cidr_contains(&cidr, peer.ip()) {
            return Err(v1_error(StatusCode::FORBIDDEN, "FORBIDDEN"));
        }
    }
    if inc.method == Method::PUT {
        if inc.body.is_empty() || inc.body.len() > MAX_BODY {
            return Err(v1_error(StatusCode::PAYLOAD_TOO_LARGE, "INVALID_VALUE"));
        }
        let mut opts = ctx.opts();
        match opt {
            "nsqlookupd_http_addresses" => {
                opts.nsqlookupd_http_addresses = serde_json::from_slice(&inc.body)
                    .map_err(|_| v1_error(StatusCode::BAD_REQUEST, "INVALID_VALUE"))?;
            }
            "log_level" => {
                let level = String::from_utf8_lossy(&inc.body).to_string();
                if !crate::options::is_log_level(&level) {
                    return Err(v1_error(StatusCode::BAD_REQUEST, "INVALID_VALUE"));
                }
                opts.log_level = level.to_ascii_lowercase();
                nsq_http::daemon::set_log_level(&opts.log_level);
            }
            _ => return Err(v1_error(StatusCode::BAD_REQUEST, "INVALID_OPTION")),
        }
        ctx.swap_opts(opts);
    }
    match config_value(&ctx.opts(), opt) {
        Some(ConfigValue::Text(s)) => Ok(v1_text(s)),
        Some(ConfigValue::Json(v)) => Ok(v1_json_value(StatusCode::OK, &v)),
        None => Err(v1_error(StatusCode::BAD_REQUEST, "INVALID_OPTION")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_route_and_content_types() {
        assert_eq!(match_route("/render"), Some(Route::Render));
        assert_eq!(Route::Render.allow(), "GET, OPTIONS");
        assert_eq!(render_content_type("json"), "application/json");
        assert_eq!(render_content_type(""), "image/png");
        assert_eq!(render_content_type("svg"), "image/svg+xml");
    }

    #[test]
    fn routes_and_base_path() {
        assert_eq!(match_route("/api/topics"), Some(Route::Topics));
        assert_eq!(
            match_route("/api/topics/a/b"),
            Some(Route::Channel("a".into(), "b".into()))
        );
        assert_eq!(match_route("/api/topics/a/b/c"), None);
        assert_eq!(match_route("/api/topics/"), None);
        assert_eq!(strip_base("/", "/ping"), Some("/ping"));
        assert_eq!(strip_base("/admin/", "/admin/ping"), Some("/ping"));
        assert_eq!(strip_base("/admin", "/adminx/ping"), None);
        assert_eq!(strip_base("/admin", "/ping"), None);
    }

    #[test]
    fn cidrs_match_like_go() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("127.0.0.1/8", ip("127.9.9.9")));
        assert!(!cidr_contains("127.0.0.1/8", ip("10.0.0.1")));
        assert!(cidr_contains("0.0.0.0/0", ip("10.0.0.1")));
        assert!(cidr_contains("127.0.0.1/8", ip("::ffff:127.0.0.1")));
        assert!(!cidr_contains("junk", ip("127.0.0.1")));
    }

    #[test]
    fn bodies_decode_like_gos_decoder() {
        #[derive(Deserialize, Default, Debug)]
        #[serde(default)]
        struct B {
            action: String,
        }
        assert_eq!(decode_body::<B>(b"").unwrap_err(), "EOF");
        assert_eq!(
            decode_body::<B>(br#"{"action":"pause"} trailing"#)
                .unwrap()
                .action,
            "pause"
        );
        assert!(decode_body::<B>(b"nope").is_err());
    }

    #[test]
    fn warnings_join_like_go() {
        assert_eq!(warn_message(&[]), "");
        assert_eq!(
            warn_message(&["a\nb".to_owned(), "c".to_owned()]),
            "WARNING: a\nb; c"
        );
    }
}
