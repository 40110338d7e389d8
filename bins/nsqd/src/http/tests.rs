//! Router-level tests of the HTTP API against the golden captures of Go nsqd (`shared/golden/http/nsqd.json`).
//!
//! The exchanges that need only HTTP are replayed in capture order through `router(ctx).oneshot(..)` and must
//! match status, header names and order (values too, except `Date`) and body. `/stats` snapshots that involve
//! TCP clients are rebuilt here with fake clients: the `no_e2e` instance exactly, the `main` instance by JSON
//! shape (key order, omitempty keys, null versus `[]`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use nsq_core::stats::ClientStats;
use nsq_core::{Consumer, CoreConfig, QueueScan, Topics};
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tower::ServiceExt;

use super::router;
use crate::context::{ClientInfo, Context};
use crate::lookup::{Identity, Limits, Lookup};
use crate::options::{LogLevel, Options};

// ---------------------------------------------------------------------------------------------------------
// Harness.

/// The options of the golden `main` instance (its ports included, so `/info` and `statsd_prefix` match).
fn main_options() -> Options {
    Options {
        tcp_address: "127.0.0.1:40655".to_owned(),
        http_address: "127.0.0.1:54637".to_owned(),
        broadcast_address: "127.0.0.1".to_owned(),
        node_id: 1,
        e2e_processing_latency_percentiles: vec![0.99, 0.5],
        ..Options::default()
    }
}

fn no_e2e_options() -> Options {
    Options {
        e2e_processing_latency_percentiles: Vec::new(),
        ..main_options()
    }
}

fn context(opts: Options, start_time: i64) -> Arc<Context> {
    let core = CoreConfig {
        node_id: opts.node_id,
        e2e_percentiles: opts.e2e_processing_latency_percentiles.clone(),
        ..CoreConfig::default()
    };
    Arc::new(Context {
        topics: Arc::new(Topics::new(core, QueueScan::new())),
        clients: Mutex::new(BTreeMap::new()),
        start_time,
        tcp_addr: "127.0.0.1:40655".parse().unwrap(),
        http_addr: Some("127.0.0.1:54637".parse().unwrap()),
        https_addr: None,
        hostname: "vm".to_owned(),
        log_level: RwLock::new(opts.log_level),
        nsqlookupd_tcp_addresses: RwLock::new(opts.nsqlookupd_tcp_addresses.clone()),
        lookup: Arc::new(Lookup::new(
            Identity {
                broadcast_address: opts.broadcast_address.clone(),
                tcp_port: 40655,
                http_port: 54637,
                hostname: "vm".to_owned(),
                topology_region: String::new(),
                topology_zone: String::new(),
            },
            Limits {
                max_body_size: opts.max_body_size,
                http_connect_timeout: opts.http_client_connect_timeout,
                http_request_timeout: opts.http_client_request_timeout,
            },
            &opts.nsqlookupd_tcp_addresses,
        )),
        persistence: None,
        tls: None,
        auth: None,
        opts: Arc::new(opts),
    })
}

/// The golden main instance's start time.
const MAIN_START: i64 = 1_795_277_361;

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Header names in wire order, canonical case.
    fn header_names(&self) -> Vec<String> {
        self.headers.keys().map(|k| canonical(k.as_str())).collect()
    }
}

fn canonical(name: &str) -> String {
    name.split('-')
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

async fn call(ctx: &Arc<Context>, method: Method, target: &str, body: impl Into<Bytes>) -> Answer {
    let body = body.into();
    let mut req = Request::builder().method(method.clone()).uri(target);
    if method != Method::GET && method != Method::HEAD && method != Method::OPTIONS {
        req = req.header("content-length", body.len());
    }
    let res = router(Arc::clone(ctx))
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(ctx: &Arc<Context>, target: &str) -> Answer {
    call(ctx, Method::GET, target, Bytes::new()).await
}

async fn post(ctx: &Arc<Context>, target: &str, body: impl Into<Bytes>) -> Answer {
    call(ctx, Method::POST, target, body).await
}

fn assert_error(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "body {}", a.text());
    assert_eq!(a.text(), format!("{{\"message\":\"{code}\"}}"));
}

// ---------------------------------------------------------------------------------------------------------
// Golden data.

fn golden_file() -> PathBuf {
    let dir = std::env::var_os("NSQ_GOLDEN_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden"),
        PathBuf::from,
    );
    dir.join("http").join("nsqd.json")
}

fn golden() -> Value {
    let path = golden_file();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} unreadable ({e}); set NSQ_GOLDEN_DIR",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn exchange<'a>(g: &'a Value, name: &str) -> &'a Value {
    g["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no golden exchange {name}"))
}

fn golden_body(e: &Value) -> &str {
    e["response"]["body_text"].as_str().unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The request body of a golden exchange; elided big bodies are rebuilt from their summary.
fn request_body(req: &Value) -> Vec<u8> {
    if let Some(t) = req["body_text"].as_str() {
        return t.as_bytes().to_vec();
    }
    if let Some(h) = req["body_hex"].as_str() {
        return hex(h);
    }
    if let Some(s) = req.get("body_summary").filter(|s| s.is_object()) {
        let len = s["length"].as_u64().unwrap() as usize;
        let fill = s["first_bytes_text"].as_str().unwrap().as_bytes()[0];
        let mut body = vec![fill; len];
        if s["last_bytes_text"].as_str().unwrap().ends_with('\n') {
            body[len - 1] = b'\n';
        }
        return body;
    }
    Vec::new()
}

/// Exchanges of the `main` instance that this replay leaves out, and why.
fn skipped(name: &str) -> bool {
    // Snapshots that need the capture's TCP clients (rebuilt by the stats tests below instead).
    name.starts_with("stats_") && !matches!(name, "stats_json_empty" | "stats_json_empty_no_mem" | "stats_text_empty")
        // A topic created by a TCP MPUB, and its deletion.
        || name == "mpub_zero_creates_topic"
        || name == "topic_delete_mpub_zero_topic"
        // Go's runtime debug endpoints are not provided (they answer 404, tested separately).
        || name.starts_with("debug_")
        || name == "method_not_allowed_get_debug_freememory"
        // The capture's temporary data directory.
        || name == "config_get_data_path"
}

// ---------------------------------------------------------------------------------------------------------
// Replay of the HTTP-only golden exchanges.

#[tokio::test]
async fn golden_main_exchanges_replay_exactly() {
    let g = golden();
    let ctx = context(main_options(), MAIN_START);
    let mut replayed = 0;
    for e in g["exchanges"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        if e["instance"] != "main" || e.get("request").is_none() || skipped(name) {
            continue;
        }
        let req = &e["request"];
        let method = Method::from_bytes(req["method"].as_str().unwrap().as_bytes()).unwrap();
        let got = call(
            &ctx,
            method.clone(),
            req["target"].as_str().unwrap(),
            request_body(req),
        )
        .await;
        let want = &e["response"];
        assert_eq!(
            u64::from(got.status.as_u16()),
            want["status"].as_u64().unwrap(),
            "{name}: {}",
            got.text()
        );

        let want_headers: Vec<(&str, &str)> = want["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap(), h[1].as_str().unwrap()))
            .filter(|(k, _)| *k != "Transfer-Encoding")
            .collect();
        let got_headers: Vec<(String, String)> = got
            .headers
            .iter()
            .map(|(k, v)| (canonical(k.as_str()), v.to_str().unwrap().to_owned()))
            .collect();
        let want_names: Vec<&str> = want_headers.iter().map(|(k, _)| *k).collect();
        assert_eq!(got.header_names(), want_names, "{name}: header order");
        for ((gk, gv), (_, wv)) in got_headers.iter().zip(&want_headers) {
            // Memory figures change the length of the stats; the Date is the clock.
            if gk != "Date" && !(name.starts_with("stats_") && gk == "Content-Length") {
                assert_eq!(gv, wv, "{name}: header {gk}");
            }
        }
        if want["transfer"] == "chunked" {
            assert!(
                !got.headers.contains_key("content-length"),
                "{name}: must be chunked"
            );
        }
        if name == "stats_json_empty" {
            assert_eq!(
                shape(&got.json()),
                shape(&serde_json::from_str(golden_body(e)).unwrap())
            );
        } else if name == "stats_text_empty" {
            assert_eq!(
                normalise_text(got.text()),
                normalise_text(golden_body(e)),
                "{name}"
            );
        } else if method != Method::HEAD {
            assert_eq!(got.text(), golden_body(e), "{name}: body");
        }
        replayed += 1;
    }
    assert!(replayed > 90, "only {replayed} exchanges replayed");
}

#[tokio::test]
async fn pprof_endpoints_answer_like_unknown_paths() {
    let ctx = context(main_options(), MAIN_START);
    for (method, target) in [
        (Method::GET, "/debug/pprof"),
        (Method::GET, "/debug/pprof/"),
        (Method::GET, "/debug/pprof/heap"),
        (Method::POST, "/debug/pprof/symbol"),
    ] {
        let a = call(&ctx, method, target, Bytes::new()).await;
        assert_error(&a, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}

#[tokio::test]
async fn debug_actions_answer_as_go() {
    let ctx = context(main_options(), MAIN_START);
    let a = call(
        &ctx,
        Method::PUT,
        "/debug/setblockrate?rate=0",
        Bytes::new(),
    )
    .await;
    assert_error(&a, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    let a = call(&ctx, Method::POST, "/debug/freememory", Bytes::new()).await;
    assert_error(&a, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR");
    let a = call(&ctx, Method::GET, "/debug/freememory", Bytes::new()).await;
    assert_error(&a, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    let a = call(
        &ctx,
        Method::PUT,
        "/debug/setblockrate?rate=abc",
        Bytes::new(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        &a.body[..],
        &b"invalid block rate : strconv.Atoi: parsing \"abc\": invalid syntax"[..]
    );
}

// ---------------------------------------------------------------------------------------------------------
// Endpoint behaviour beyond the capture.

#[tokio::test]
async fn publishing_while_exiting_is_503() {
    let ctx = context(main_options(), MAIN_START);
    ctx.topics.close_all();
    assert_error(
        &post(&ctx, "/pub?topic=late", "x").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "EXITING",
    );
    assert_error(
        &post(&ctx, "/mpub?topic=late", "x\ny").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "EXITING",
    );
    // The checks before it still come first, and no topic is created.
    assert_error(
        &post(&ctx, "/pub?topic=late", "").await,
        StatusCode::BAD_REQUEST,
        "MSG_EMPTY",
    );
    assert!(ctx.topics.get_existing_topic("late").is_none());
}

#[tokio::test]
async fn publish_reaches_channels_with_defer_and_mpub_counts() {
    let ctx = context(main_options(), MAIN_START);
    assert_eq!(
        post(&ctx, "/topic/create?topic=t", "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        post(&ctx, "/channel/create?topic=t&channel=c", "")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(post(&ctx, "/pub?topic=t", "one").await.text(), "OK");
    assert_eq!(
        post(&ctx, "/pub?topic=t&defer=3600000", "later")
            .await
            .text(),
        "OK"
    );
    assert_eq!(post(&ctx, "/mpub?topic=t", "a\n\nb\n").await.text(), "OK");
    let mut bin = vec![0, 0, 0, 1, 0, 0, 0, 2];
    bin.extend_from_slice(b"hi");
    assert_eq!(
        post(&ctx, "/mpub?topic=t&binary=yes", bin).await.text(),
        "OK"
    );
    let c = ctx
        .topics
        .get_existing_topic("t")
        .unwrap()
        .stats(None, false);
    assert_eq!(c.message_count, 5);
    assert_eq!(c.channels[0].depth, 4);
    assert_eq!(c.channels[0].deferred_count, 1);
    assert_error(
        &post(&ctx, "/pub?topic=t&defer=1;2", "x").await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
    );
}

#[tokio::test]
async fn small_limits_give_the_size_errors() {
    let opts = Options {
        max_msg_size: 10,
        max_body_size: 30,
        ..main_options()
    };
    let ctx = context(opts, MAIN_START);
    let a = post(&ctx, "/pub?topic=t", vec![b'x'; 11]).await;
    assert_error(&a, StatusCode::PAYLOAD_TOO_LARGE, "MSG_TOO_BIG");
    // A small leftover body is read away; the connection stays open.
    assert!(!a.headers.contains_key("connection"));
    assert_eq!(
        post(&ctx, "/pub?topic=t", vec![b'x'; 10]).await.text(),
        "OK"
    );
    assert_error(
        &post(&ctx, "/mpub?topic=t", vec![b'x'; 31]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "BODY_TOO_BIG",
    );
    let a = post(&ctx, "/mpub?topic=t", "0123456789\n0123456789a\n").await;
    assert_error(&a, StatusCode::PAYLOAD_TOO_LARGE, "MSG_TOO_BIG");
    let a = call(&ctx, Method::PUT, "/config/log_level", vec![b'x'; 11]).await;
    assert_error(&a, StatusCode::PAYLOAD_TOO_LARGE, "INVALID_VALUE");
}

#[tokio::test]
async fn config_puts_reach_the_context() {
    let ctx = context(main_options(), MAIN_START);
    let a = call(&ctx, Method::PUT, "/config/log_level", "WARN").await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "3"));
    assert_eq!(*ctx.log_level.read(), LogLevel::Warn);
    assert_eq!(get(&ctx, "/config/log_level").await.text(), "3");
    let a = call(
        &ctx,
        Method::PUT,
        "/config/nsqlookupd_tcp_addresses",
        r#"["a:1","b:2"]"#,
    )
    .await;
    assert_eq!(a.text(), r#"["a:1","b:2"]"#);
    assert_eq!(*ctx.nsqlookupd_tcp_addresses.read(), ["a:1", "b:2"]);
    let a = call(&ctx, Method::PUT, "/config/mem_queue_size", "").await;
    assert_error(&a, StatusCode::PAYLOAD_TOO_LARGE, "INVALID_VALUE");
    // An empty string option is an empty 200 without a Content-Type.
    let a = get(&ctx, "/config/tls_cert").await;
    assert_eq!(
        (a.status, a.header_names()),
        (
            StatusCode::OK,
            vec![
                "X-Nsq-Content-Type".to_owned(),
                "Date".to_owned(),
                "Content-Length".to_owned()
            ]
        )
    );
}

#[tokio::test]
async fn deleting_the_last_channel_of_an_ephemeral_topic_deletes_it() {
    let ctx = context(main_options(), MAIN_START);
    post(&ctx, "/topic/create?topic=e%23ephemeral", "").await;
    post(&ctx, "/channel/create?topic=e%23ephemeral&channel=c", "").await;
    assert_eq!(
        post(&ctx, "/channel/delete?topic=e%23ephemeral&channel=c", "")
            .await
            .status,
        StatusCode::OK
    );
    assert!(ctx.topics.get_existing_topic("e#ephemeral").is_none());
}

#[tokio::test]
async fn plain_http_is_refused_when_tls_is_required() {
    let opts = Options {
        tls_required: 2,
        https_address: "127.0.0.1:42159".to_owned(),
        ..main_options()
    };
    let ctx = context(opts, MAIN_START);
    let a = get(&ctx, "/ping").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        a.text(),
        r#"{"message": "TLS_REQUIRED", "https_port": 42159}"#
    );
    assert_eq!(
        a.header_names(),
        [
            "Content-Type",
            "X-Nsq-Content-Type",
            "Date",
            "Content-Length"
        ]
    );
}

#[tokio::test]
async fn oversized_upload_closes_the_connection() {
    let ctx = context(main_options(), MAIN_START);
    let a = post(&ctx, "/pub?topic=t", vec![b'x'; 2 << 20]).await;
    assert_error(&a, StatusCode::PAYLOAD_TOO_LARGE, "MSG_TOO_BIG");
    assert_eq!(
        a.header_names().last().map(String::as_str),
        Some("Connection")
    );
    // A handler that ignores a large body (here a 400 before reading) closes too, as Go does.
    let a = post(&ctx, "/topic/create", vec![b'x'; 300 << 10]).await;
    assert_error(&a, StatusCode::BAD_REQUEST, "MISSING_ARG_TOPIC");
    assert_eq!(a.headers["connection"], "close");
}

// ---------------------------------------------------------------------------------------------------------
// /stats.

/// A TCP client as `/stats` sees it: consumer (via the channel) and producer (via the context).
#[derive(Debug)]
struct FakeClient {
    id: u64,
    stats: ClientStats,
}

impl Consumer for FakeClient {
    fn id(&self) -> u64 {
        self.id
    }
    fn timed_out_message(&self) {}
    fn empty(&self) {}
    fn pause(&self) {}
    fn unpause(&self) {}
    fn close(&self) {}
    fn stats(&self, _topic_name: &str) -> ClientStats {
        self.stats.clone()
    }
}

impl ClientInfo for FakeClient {
    fn producer_stats(&self, _topic: &str) -> Option<ClientStats> {
        (!self.stats.pub_counts.is_empty()).then(|| self.stats.clone())
    }
}

fn register(ctx: &Context, client: &Arc<FakeClient>) {
    ctx.clients
        .lock()
        .insert(client.id, Arc::clone(client) as Arc<dyn ClientInfo>);
}

/// Delivers one message of `topic/channel` to `client` and finishes it.
fn deliver_and_finish(ctx: &Context, topic: &str, channel: &str, client: u64) {
    let channel = ctx
        .topics
        .get_existing_topic(topic)
        .unwrap()
        .get_existing_channel(channel)
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        channel.take(client, 1, Duration::from_secs(60), 0, &mut out),
        1
    );
    channel.finish(client, &out[0].id).unwrap();
}

/// Rebuilds the golden `no_e2e` instance: topic t1 with channel c1 and one client that subscribed to it,
/// published one message to t1 and finished it; topic t2 without channels.
async fn no_e2e_state() -> Arc<Context> {
    let ctx = context(no_e2e_options(), 1_795_277_371);
    post(&ctx, "/topic/create?topic=t1", "").await;
    post(&ctx, "/channel/create?topic=t1&channel=c1", "").await;
    post(&ctx, "/topic/create?topic=t2", "").await;
    let client = Arc::new(FakeClient {
        id: 1,
        stats: ClientStats {
            version: "V2".to_owned(),
            remote_address: "127.0.0.1:59118".to_owned(),
            state: 3,
            ready_count: 1,
            message_count: 1,
            finish_count: 1,
            connect_ts: 1_795_277_371,
            pub_counts: vec![("t1".to_owned(), 1)],
            ..ClientStats::default()
        },
    });
    register(&ctx, &client);
    let c1 = ctx
        .topics
        .get_existing_topic("t1")
        .unwrap()
        .get_existing_channel("c1")
        .unwrap();
    c1.add_client(Arc::clone(&client) as Arc<dyn Consumer>)
        .unwrap();
    post(&ctx, "/pub?topic=t1", "x").await;
    deliver_and_finish(&ctx, "t1", "c1", 1);
    ctx
}

#[tokio::test]
async fn stats_json_no_e2e_matches_golden_exactly() {
    let g = golden();
    let ctx = no_e2e_state().await;
    let a = get(&ctx, "/stats?format=json&include_mem=false").await;
    assert_eq!(a.text(), golden_body(exchange(&g, "stats_json_no_e2e")));
    assert_eq!(
        a.header_names(),
        [
            "Content-Type",
            "X-Nsq-Content-Type",
            "Date",
            "Content-Length"
        ]
    );
}

#[tokio::test]
async fn stats_text_no_e2e_matches_golden() {
    let g = golden();
    let ctx = no_e2e_state().await;
    let a = get(&ctx, "/stats?format=text&include_mem=false").await;
    let want = golden_body(exchange(&g, "stats_text_no_e2e"));
    assert_eq!(normalise_text(a.text()), normalise_text(want));
    assert_eq!(
        a.header_names(),
        [
            "X-Nsq-Content-Type",
            "Date",
            "Content-Length",
            "Content-Type"
        ]
    );
}

/// Rebuilds the golden `main` instance's stats state in outline: alpha (ch1 with a consumer holding one message
/// in flight, ch2 paused), beta (eph#ephemeral), and a producer that published to alpha.
async fn main_state() -> Arc<Context> {
    let ctx = context(main_options(), MAIN_START);
    post(&ctx, "/topic/create?topic=alpha", "").await;
    post(&ctx, "/topic/create?topic=beta", "").await;
    post(&ctx, "/channel/create?topic=alpha&channel=ch1", "").await;
    post(&ctx, "/channel/create?topic=alpha&channel=ch2", "").await;
    post(
        &ctx,
        "/channel/create?topic=beta&channel=eph%23ephemeral",
        "",
    )
    .await;
    post(&ctx, "/channel/pause?topic=alpha&channel=ch2", "").await;
    post(&ctx, "/mpub?topic=alpha", "hello-1\nm-a\nm-b\n").await;
    post(&ctx, "/mpub?topic=beta", "b1\nb2\nb3\n").await;
    let consumer = Arc::new(FakeClient {
        id: 2,
        stats: ClientStats {
            client_id: "consumer-1".to_owned(),
            hostname: "consumer-host".to_owned(),
            version: "V2".to_owned(),
            remote_address: "127.0.0.1:60530".to_owned(),
            state: 3,
            user_agent: "golden-consumer/1.0".to_owned(),
            ..ClientStats::default()
        },
    });
    let ch1 = ctx
        .topics
        .get_existing_topic("alpha")
        .unwrap()
        .get_existing_channel("ch1")
        .unwrap();
    ch1.add_client(Arc::clone(&consumer) as Arc<dyn Consumer>)
        .unwrap();
    deliver_and_finish(&ctx, "alpha", "ch1", 2);
    let mut out = Vec::new();
    ch1.take(2, 1, Duration::from_secs(60), 0, &mut out);
    let producer = Arc::new(FakeClient {
        id: 1,
        stats: ClientStats {
            client_id: "producer-1".to_owned(),
            hostname: "producer-host".to_owned(),
            version: "V2".to_owned(),
            remote_address: "127.0.0.1:60192".to_owned(),
            user_agent: "golden-producer/1.0".to_owned(),
            pub_counts: vec![("alpha".to_owned(), 1)],
            ..ClientStats::default()
        },
    });
    register(&ctx, &producer);
    ctx
}

/// The JSON "shape": keys in order with the shapes of their values, arrays by their first element, and
/// scalars by type, so null versus `[]`, omitted keys and key order are compared but not the numbers.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => match a.first() {
            None => Value::String("[]".to_owned()),
            Some(first) => Value::Array(vec![shape(first)]),
        },
        Value::Null => Value::String("null".to_owned()),
        Value::Bool(_) => Value::String("bool".to_owned()),
        Value::Number(_) => Value::String("number".to_owned()),
        Value::String(_) => Value::String("string".to_owned()),
    }
}

#[tokio::test]
async fn stats_json_shapes_match_golden() {
    let g = golden();
    let ctx = main_state().await;
    for name in [
        "stats_json",
        "stats_json_no_clients",
        "stats_json_no_clients_0",
        "stats_json_include_clients_bogus",
        "stats_json_topic",
        "stats_json_topic_channel",
        "stats_json_topic_missing_channel",
        "stats_json_nonexistent_topic",
        "stats_json_channel_only",
        "stats_json_no_mem",
    ] {
        let e = exchange(&g, name);
        let got = get(&ctx, e["request"]["target"].as_str().unwrap()).await;
        let want: Value = serde_json::from_str(golden_body(e)).unwrap();
        assert_eq!(shape(&got.json()), shape(&want), "{name}: {}", got.text());
        // Bodies over 2 KiB go out chunked, as Go's do.
        assert_eq!(
            got.headers.contains_key("content-length"),
            e["response"]["transfer"] != "chunked",
            "{name}"
        );
    }
}

#[tokio::test]
async fn stats_null_rules() {
    let ctx = main_state().await;
    let j = get(&ctx, "/stats?format=json&topic=nosuch").await.json();
    assert!(j["topics"].is_null() && j["producers"].is_null());
    let j = get(&ctx, "/stats?format=json&topic=alpha&channel=nosuch")
        .await
        .json();
    assert_eq!(j["topics"], Value::Array(vec![]));
    let j = get(
        &ctx,
        "/stats?format=json&include_clients=false&include_mem=0",
    )
    .await
    .json();
    assert!(j["producers"].is_null() && j.get("memory").is_none());
    assert!(j["topics"][0]["channels"][0]["clients"].is_null());
    assert_eq!(j["topics"][0]["channels"][0]["client_count"], 1);
    let j = get(&ctx, "/stats?format=json").await.json();
    assert_eq!(
        j["topics"][0]["channels"][1]["clients"],
        Value::Array(vec![])
    );
    assert_eq!(
        j["topics"][0]["channels"][1]["e2e_processing_latency"],
        serde_json::json!({"count": 0, "percentiles": [{"quantile": 0.99, "value": 0}, {"quantile": 0.5, "value": 0}]})
    );
    // The consumer finished one message: count 1, values in whole nanoseconds.
    let e2e = &j["topics"][0]["channels"][0]["e2e_processing_latency"];
    assert_eq!(e2e["count"], 1);
    assert!(e2e["percentiles"][0]["value"].is_u64());
    // A topic without channels reports null percentiles even when they are configured.
    post(&ctx, "/topic/create?topic=lonely", "").await;
    let j = get(&ctx, "/stats?format=json&topic=lonely").await.json();
    assert_eq!(j["topics"][0]["channels"], Value::Array(vec![]));
    assert!(j["topics"][0]["e2e_processing_latency"]["percentiles"].is_null());
    // Text: paused channel and paused topic prefixes.
    post(&ctx, "/topic/pause?topic=beta", "").await;
    let t = get(&ctx, "/stats?include_mem=false").await;
    assert!(t.text().contains("\n   *P [ch2                      ] depth: 3     be-depth: 0     inflt: 0    def: 0    re-q: 0     timeout: 0     msgs: 3        e2e%: 0.0ns, 0.0ns\n"), "{}", t.text());
    assert!(t.text().contains("\n*P [beta           ] depth: 0     be-depth: 0     msgs: 3        e2e%: 0.0ns, 0.0ns\n"), "{}", t.text());
    assert!(t.text().contains("\nProducers:\n   [V2 producer-host:60192 golden-producer/1.0] msgs: 1        topics: alpha=1 connected: "));
}

/// Masks what differs between runs in the text stats: the toolchain, uptime, connection ages and memory figures.
fn normalise_text(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("nsqd v") {
                "nsqd v<version>".to_owned()
            } else if line.starts_with("uptime ") {
                "uptime <d>".to_owned()
            } else if let Some(i) = line.find("connected: ") {
                format!("{}connected: <d>", &line[..i])
            } else if let Some((name, _)) = line.split_once('\t') {
                format!("{name}\t<n>")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------------------
// On the wire, through `serve`.

struct Server {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(ctx: Arc<Context>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(nsq_http::serve(listener, router(ctx), async move {
        let _ = stopped.await;
    }));
    Server { addr, stop, task }
}

/// Sends `request` on a fresh connection and collects what comes back until the server closes or goes
/// quiet; the flag tells whether the server closed the connection.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let closed = loop {
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Replaces the value of the `Date` header.
fn mask_date(response: &str) -> String {
    response
        .split("\r\n")
        .map(|l| {
            if l.starts_with("Date: ") {
                "Date: <date>"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[tokio::test]
async fn wire_bytes_match_go() {
    let g = golden();
    let server = start(context(main_options(), MAIN_START)).await;
    let addr = server.addr;

    // Header names in Go's canonical case and order, and the exact body.
    let (got, _) = raw(addr, b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let want = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nX-Nsq-Content-Type: nsq; \
         version=1.0\r\nDate: <date>\r\nContent-Length: 296\r\n\r\n{}",
        golden_body(exchange(&g, "info"))
    );
    assert_eq!(mask_date(&got), want);

    // HEAD: 405, the JSON error's length, no body.
    let (got, _) = raw(addr, b"HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(
        mask_date(&got),
        "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, OPTIONS\r\nContent-Type: application/json; \
         charset=utf-8\r\nX-Nsq-Content-Type: nsq; version=1.0\r\nDate: <date>\r\nContent-Length: 32\r\n\r\n"
    );

    // The nsqd TCP magic sent to the HTTP port: Go's own 400, then the connection closes.
    let e = exchange(&g, "http_port_receives_tcp_magic");
    let (got, closed) = raw(addr, &hex(e["raw_exchange"]["send_hex"].as_str().unwrap())).await;
    assert_eq!(
        got.as_bytes(),
        &hex(e["raw_exchange"]["recv_hex"].as_str().unwrap())[..]
    );
    assert!(closed);

    // An upload over --max-msg-size: 413 with Connection: close after the length, then the close.
    let mut req =
        b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n".to_vec();
    req.resize(req.len() + 1_048_577, b'x');
    let (got, closed) = raw(addr, &req).await;
    assert_eq!(
        mask_date(&got),
        "HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json; charset=utf-8\r\n\
         X-Nsq-Content-Type: nsq; version=1.0\r\nDate: <date>\r\nContent-Length: 25\r\nConnection: close\r\n\r\n\
         {\"message\":\"MSG_TOO_BIG\"}"
    );
    assert!(closed);

    // The same with `Expect: 100-continue` and no body sent: no 100, the 413 at once, then the close.
    let req = b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n";
    let (got, closed) = raw(addr, req).await;
    assert!(
        got.starts_with("HTTP/1.1 413 Request Entity Too Large\r\n"),
        "{got}"
    );
    assert!(got.contains("\r\nConnection: close\r\n") && closed);

    // A JSON body over 2 KiB goes out chunked, with Transfer-Encoding last.
    for i in 0..30 {
        let req = format!(
            "POST /topic/create?topic=topic_{i:02} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        );
        let (got, _) = raw(addr, req.as_bytes()).await;
        assert!(
            got.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"),
            "{got}"
        );
    }
    let (got, _) = raw(
        addr,
        b"GET /stats?format=json&include_mem=false HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(
        mask_date(&got).starts_with(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nX-Nsq-Content-Type: nsq; \
             version=1.0\r\nDate: <date>\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        "{got}"
    );
    assert!(got.ends_with("\r\n0\r\n\r\n"));

    // Shutdown: the server stops accepting and returns.
    server.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
