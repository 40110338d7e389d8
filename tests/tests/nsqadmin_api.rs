//! nsqadmin's API against real daemons: one nsqlookupd and two nsqd registered with it, nsqadmin in front.
//! Checks Go's JSON shapes and sums over nodes, that actions reach every nsqd (and lookupd), the
//! `--admin-user` check, notifications, that an nsqd that is down or hangs is reported, not waited for, and
//! that an nsqd with `--tls-required` is reached over https with the `--http-client-tls-*` settings.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nsq_tests::daemon::Nsqd;
use nsq_tests::http::{self, HttpResponse};
use nsq_tests::lookupd::Nsqlookupd;
use nsq_tests::nsqadmin::Nsqadmin;
use serde_json::{json, Value};

/// One lookupd and two nsqd registered with it.
struct Cluster {
    lookupd: Nsqlookupd,
    nsqd: [Nsqd; 2],
}

impl Cluster {
    fn start() -> Cluster {
        let lookupd = Nsqlookupd::start(&[]).expect("test setup");
        let flag = format!("--lookupd-tcp-address={}", lookupd.tcp_addr());
        let nsqd = [
            Nsqd::start(std::slice::from_ref(&flag)).expect("test setup"),
            Nsqd::start(std::slice::from_ref(&flag)).expect("test setup"),
        ];
        Cluster { lookupd, nsqd }
    }

    fn lookupd_flag(&self) -> String {
        format!("--lookupd-http-address={}", self.lookupd.http_addr())
    }

    /// Publishes `n` messages of `topic` to nsqd `i`.
    fn publish(&self, i: usize, topic: &str, n: usize) {
        for k in 0..n {
            let r = http::post(
                self.nsqd[i].http_addr(),
                &format!("/pub?topic={topic}"),
                format!("m{k}").as_bytes(),
            )
            .expect("test setup");
            assert_eq!(r.status, 200, "{}", r.body_text());
        }
    }

    /// Creates `topic` and its `channel` on nsqd `i`.
    fn create_channel(&self, i: usize, topic: &str, channel: &str) {
        let r = http::post(
            self.nsqd[i].http_addr(),
            &format!("/topic/create?topic={topic}"),
            b"",
        )
        .expect("test setup");
        assert_eq!(r.status, 200, "{}", r.body_text());
        let r = http::post(
            self.nsqd[i].http_addr(),
            &format!("/channel/create?topic={topic}&channel={channel}"),
            b"",
        )
        .expect("test setup");
        assert_eq!(r.status, 200, "{}", r.body_text());
    }

    /// Waits until lookupd lists both nsqd as producers of `topic`.
    fn await_producers(&self, topic: &str, want: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = http::get(self.lookupd.http_addr(), &format!("/lookup?topic={topic}"))
                .expect("test setup");
            if r.status == 200 {
                let v = json_of(&r);
                if v["producers"].as_array().map_or(0, Vec::len) == want {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "lookupd never listed {want} producers of {topic}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// nsqd `i`'s JSON stats of `topic`, or `None` when it has no such topic.
    fn nsqd_topic(&self, i: usize, topic: &str) -> Option<Value> {
        let stats = json_of(
            &http::get(self.nsqd[i].http_addr(), "/stats?format=json").expect("test setup"),
        );
        stats["topics"]
            .as_array()
            .and_then(|l| l.iter().find(|t| t["topic_name"] == topic).cloned())
    }

    fn node_name(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nsqd[i].http_addr().port())
    }
}

fn json_of(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body_text()))
}

fn get(addr: SocketAddr, target: &str) -> (u16, Value) {
    let r = http::get(addr, target).expect("test setup");
    (r.status, json_of(&r))
}

/// A request with a JSON body and extra headers.
fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut headers = http::default_headers(addr, Some(body.len()));
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let r = http::exchange(addr, method, target, &headers, body.as_bytes()).expect("test setup");
    (r.status, json_of(&r))
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().expect("test setup").keys().cloned().collect()
}

const TOPIC_KEYS: &[&str] = &[
    "node",
    "hostname",
    "topic_name",
    "depth",
    "memory_depth",
    "backend_depth",
    "message_count",
    "nodes",
    "channels",
    "paused",
    "e2e_processing_latency",
];

const CHANNEL_KEYS: &[&str] = &[
    "node",
    "hostname",
    "topic_name",
    "channel_name",
    "depth",
    "memory_depth",
    "backend_depth",
    "in_flight_count",
    "deferred_count",
    "requeue_count",
    "timeout_count",
    "message_count",
    "nodes",
    "clients",
    "paused",
    "e2e_processing_latency",
];

#[test]
fn topics_nodes_and_counter_sum_over_both_nsqd() {
    let cluster = Cluster::start();
    cluster.create_channel(0, "orders", "audit");
    cluster.create_channel(1, "orders", "audit");
    cluster.publish(0, "orders", 3);
    cluster.publish(1, "orders", 2);
    cluster.await_producers("orders", 2);
    let admin = Nsqadmin::start(&[cluster.lookupd_flag()]).unwrap();
    let a = admin.http_addr();

    assert_eq!(
        get(a, "/api/topics"),
        (200, json!({"topics":["orders"],"message":""}))
    );
    assert_eq!(
        get(a, "/api/topics?inactive=true"),
        (200, json!({"topics":{},"message":""}))
    );

    let (status, topic) = get(a, "/api/topics/orders");
    assert_eq!(status, 200, "{topic}");
    let mut want_keys: Vec<String> = TOPIC_KEYS.iter().map(|s| (*s).to_owned()).collect();
    want_keys.push("message".to_owned());
    assert_eq!(keys(&topic), want_keys);
    assert_eq!(topic["node"], "*");
    assert_eq!(topic["topic_name"], "orders");
    assert_eq!(topic["message_count"], 5);
    assert_eq!(topic["message"], "");
    let nodes = topic["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    let mut names: Vec<String> = nodes
        .iter()
        .map(|n| n["node"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    let mut want_names = vec![cluster.node_name(0), cluster.node_name(1)];
    want_names.sort();
    assert_eq!(names, want_names);
    for n in nodes {
        assert_eq!(keys(n), TOPIC_KEYS);
        assert_eq!(n["nodes"], Value::Null);
        let count = if n["node"] == cluster.node_name(0).as_str() {
            3
        } else {
            2
        };
        assert_eq!(n["message_count"], count);
    }
    let channels = topic["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0]["channel_name"], "audit");
    assert_eq!(channels[0]["depth"], 5);
    assert_eq!(channels[0]["nodes"].as_array().unwrap().len(), 2);

    let (status, channel) = get(a, "/api/topics/orders/audit");
    assert_eq!(status, 200, "{channel}");
    let mut want_keys: Vec<String> = CHANNEL_KEYS.iter().map(|s| (*s).to_owned()).collect();
    want_keys.push("message".to_owned());
    assert_eq!(keys(&channel), want_keys);
    assert_eq!(channel["node"], "*");
    assert_eq!(channel["depth"], 5);
    assert_eq!(channel["memory_depth"], 5);
    let rows = channel["nodes"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows.iter()
            .map(|r| r["depth"].as_i64().unwrap())
            .sum::<i64>(),
        5
    );
    assert_eq!(
        channel["e2e_processing_latency"],
        json!({"count":0,"percentiles":null,"topic":"orders","channel":"audit","host":"*"})
    );
    // Go embeds a nil pointer for a channel no node has: only the message is left.
    assert_eq!(
        get(a, "/api/topics/orders/nosuch"),
        (200, json!({"message":""}))
    );

    let (status, list) = get(a, "/api/nodes");
    assert_eq!(status, 200);
    assert_eq!(keys(&list), ["nodes", "message"]);
    let nodes = list["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    for n in nodes {
        assert_eq!(
            keys(n),
            [
                "remote_addresses",
                "remote_address",
                "hostname",
                "broadcast_address",
                "tcp_port",
                "http_port",
                "version",
                "topics",
                "out_of_date"
            ]
        );
        assert_eq!(n["topics"], json!([{"topic":"orders","tombstoned":false}]));
        let remote = n["remote_addresses"][0].as_str().unwrap();
        assert!(
            remote.starts_with(&format!("{}/127.0.0.1:", cluster.lookupd.http_addr())),
            "{remote}"
        );
        assert_eq!(n["out_of_date"], false);
    }

    let (status, node) = get(a, &format!("/api/nodes/{}", cluster.node_name(0)));
    assert_eq!(status, 200, "{node}");
    assert_eq!(
        keys(&node),
        [
            "node",
            "topics",
            "total_messages",
            "total_clients",
            "message"
        ]
    );
    assert_eq!(node["node"], cluster.node_name(0).as_str());
    assert_eq!(node["total_messages"], 3);
    assert_eq!(node["total_clients"], 0);
    assert_eq!(node["topics"][0]["node"], cluster.node_name(0).as_str());
    assert_eq!(
        node["topics"][0]["channels"][0]["node"],
        cluster.node_name(0).as_str()
    );
    assert_eq!(
        get(a, "/api/nodes/127.0.0.1:1"),
        (404, json!({"message":"NODE_NOT_FOUND"}))
    );

    let (status, counter) = get(a, "/api/counter");
    assert_eq!(status, 200);
    let key = format!("orders:audit:{}", cluster.node_name(1));
    assert_eq!(
        counter["stats"][&key],
        json!({"node":cluster.node_name(1),"topic_name":"orders","channel_name":"audit","message_count":2})
    );
    assert_eq!(counter["stats"].as_object().unwrap().len(), 2);

    assert_eq!(get(a, "/api/nosuch"), (404, json!({"message":"NOT_FOUND"})));
    let (status, body) = send(a, "PATCH", "/api/topics", "", &[]);
    assert_eq!(
        (status, body),
        (405, json!({"message":"METHOD_NOT_ALLOWED"}))
    );
}

#[test]
fn actions_reach_every_nsqd_and_lookupd() {
    let cluster = Cluster::start();
    for i in 0..2 {
        cluster.create_channel(i, "jobs", "work");
        cluster.publish(i, "jobs", 2);
    }
    cluster.await_producers("jobs", 2);
    let admin = Nsqadmin::start(&[cluster.lookupd_flag()]).unwrap();
    let a = admin.http_addr();
    let ok = json!({"message":""});

    assert_eq!(
        send(a, "POST", "/api/topics/jobs", r#"{"action":"pause"}"#, &[]),
        (200, ok.clone())
    );
    for i in 0..2 {
        assert_eq!(cluster.nsqd_topic(i, "jobs").unwrap()["paused"], true);
    }
    assert_eq!(
        send(
            a,
            "POST",
            "/api/topics/jobs",
            r#"{"action":"unpause"}"#,
            &[]
        ),
        (200, ok.clone())
    );
    for i in 0..2 {
        assert_eq!(cluster.nsqd_topic(i, "jobs").unwrap()["paused"], false);
    }
    assert_eq!(
        send(
            a,
            "POST",
            "/api/topics/jobs/work",
            r#"{"action":"pause"}"#,
            &[]
        ),
        (200, ok.clone())
    );
    for i in 0..2 {
        assert_eq!(
            cluster.nsqd_topic(i, "jobs").unwrap()["channels"][0]["paused"],
            true
        );
    }
    assert_eq!(
        send(
            a,
            "POST",
            "/api/topics/jobs/work",
            r#"{"action":"empty"}"#,
            &[]
        ),
        (200, ok.clone())
    );
    for i in 0..2 {
        assert_eq!(
            cluster.nsqd_topic(i, "jobs").unwrap()["channels"][0]["depth"],
            0
        );
    }
    assert_eq!(
        send(
            a,
            "POST",
            "/api/topics/jobs",
            r#"{"action":"explode"}"#,
            &[]
        ),
        (400, json!({"message":"INVALID_ACTION"}))
    );
    assert_eq!(
        send(a, "POST", "/api/topics/jobs", "", &[]),
        (400, json!({"message":"EOF"}))
    );

    // Create goes to lookupd only.
    assert_eq!(
        send(
            a,
            "POST",
            "/api/topics",
            r#"{"topic":"fresh","channel":"ch"}"#,
            &[]
        ),
        (200, ok.clone())
    );
    let (_, topics) = get(cluster.lookupd.http_addr(), "/topics");
    assert!(
        topics["topics"]
            .as_array()
            .unwrap()
            .contains(&json!("fresh")),
        "{topics}"
    );
    let (_, channels) = get(cluster.lookupd.http_addr(), "/channels?topic=fresh");
    assert_eq!(channels["channels"], json!(["ch"]));
    // The new topic has no producer: it is listed as inactive.
    assert_eq!(
        get(a, "/api/topics?inactive=true"),
        (200, json!({"topics":{"fresh":["ch"]},"message":""}))
    );
    assert_eq!(
        send(a, "POST", "/api/topics", r#"{"topic":"bad topic!"}"#, &[]),
        (400, json!({"message":"INVALID_TOPIC"}))
    );

    assert_eq!(
        send(a, "DELETE", "/api/topics/jobs/work", "", &[]),
        (200, ok.clone())
    );
    for i in 0..2 {
        assert_eq!(
            cluster.nsqd_topic(i, "jobs").unwrap()["channels"],
            json!([])
        );
    }
    assert_eq!(
        send(a, "DELETE", "/api/topics/jobs", "", &[]),
        (200, ok.clone())
    );
    for i in 0..2 {
        assert!(cluster.nsqd_topic(i, "jobs").is_none());
    }
    let (_, topics) = get(cluster.lookupd.http_addr(), "/topics");
    assert!(
        !topics["topics"]
            .as_array()
            .unwrap()
            .contains(&json!("jobs")),
        "{topics}"
    );
}

#[test]
fn admin_users_guard_privileged_actions() {
    let cluster = Cluster::start();
    cluster.publish(0, "guarded", 1);
    cluster.await_producers("guarded", 1);
    let admin = Nsqadmin::start(&[
        cluster.lookupd_flag(),
        "--admin-user=alice".to_owned(),
        "--base-path=/admin".to_owned(),
    ])
    .unwrap();
    let a = admin.http_addr();
    let forbidden = (403, json!({"message":"FORBIDDEN"}));
    let pause = r#"{"action":"pause"}"#;
    assert_eq!(
        send(a, "POST", "/admin/api/topics/guarded", pause, &[]),
        forbidden
    );
    assert_eq!(
        send(
            a,
            "POST",
            "/admin/api/topics/guarded",
            pause,
            &[("X-Forwarded-User", "mallory")]
        ),
        forbidden
    );
    assert_eq!(
        send(a, "DELETE", "/admin/api/topics/guarded", "", &[]),
        forbidden
    );
    assert_eq!(
        send(a, "POST", "/admin/api/topics", r#"{"topic":"x"}"#, &[]),
        forbidden
    );
    assert_eq!(
        send(
            a,
            "DELETE",
            &format!("/admin/api/nodes/{}", cluster.node_name(0)),
            r#"{"topic":"guarded"}"#,
            &[]
        ),
        forbidden
    );
    assert_eq!(cluster.nsqd_topic(0, "guarded").unwrap()["paused"], false);
    assert_eq!(
        send(
            a,
            "POST",
            "/admin/api/topics/guarded",
            pause,
            &[("X-Forwarded-User", "alice")]
        ),
        (200, json!({"message":""}))
    );
    assert_eq!(cluster.nsqd_topic(0, "guarded").unwrap()["paused"], true);
    // Tombstoning a node for a topic (in lookupd) also deletes the topic on that node.
    let node = format!("/admin/api/nodes/{}", cluster.node_name(0));
    assert_eq!(
        send(
            a,
            "DELETE",
            &node,
            r#"{"topic":"guarded"}"#,
            &[("X-Forwarded-User", "alice")]
        ),
        (200, json!({"message":""}))
    );
    assert!(cluster.nsqd_topic(0, "guarded").is_none());
    // Reads need no user; without the base path nothing is routed.
    assert_eq!(get(a, "/admin/api/topics").0, 200);
    assert_eq!(get(a, "/api/topics"), (404, json!({"message":"NOT_FOUND"})));
}

/// A one-shot-per-connection HTTP listener that hands each request body to the test.
fn notification_sink() -> (SocketAddr, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("test listener");
    let addr = listener.local_addr().expect("test listener");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body) = loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while raw.len() < end + 4 + len {
                        let n = stream.read(&mut buf).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        raw.extend_from_slice(&buf[..n]);
                    }
                    break (head, raw[end + 4..].to_vec());
                }
            };
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx.send((head, body)).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

#[test]
fn admin_actions_are_posted_to_the_notification_endpoint() {
    let cluster = Cluster::start();
    cluster.publish(0, "noisy", 1);
    cluster.await_producers("noisy", 1);
    let (sink, rx) = notification_sink();
    let admin = Nsqadmin::start(&[
        cluster.lookupd_flag(),
        format!("--notification-http-endpoint=http://{sink}/notify"),
    ])
    .unwrap();
    let a = admin.http_addr();
    let (status, _) = send(
        a,
        "POST",
        "/api/topics/noisy/ch1?x=1",
        r#"{"action":"empty"}"#,
        &[("Authorization", "Basic YWxpY2U6c2VjcmV0")],
    );
    assert_eq!(status, 200);
    let (head, body) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("no notification arrived");
    assert!(head.starts_with("POST /notify HTTP/1.1"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        keys(&v),
        [
            "action",
            "topic",
            "channel",
            "timestamp",
            "user",
            "remote_ip",
            "user_agent",
            "url",
            "via"
        ]
    );
    assert_eq!(v["action"], "empty_channel");
    assert_eq!(v["topic"], "noisy");
    assert_eq!(v["channel"], "ch1");
    assert_eq!(v["user"], "alice");
    assert_eq!(v["user_agent"], "golden-capture/1.0");
    assert_eq!(v["url"], format!("http://{a}/api/topics/noisy/ch1?x=1"));
    assert!(
        v["remote_ip"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{v}"
    );
    assert!(v["timestamp"].as_i64().unwrap() > 1_600_000_000);

    let (status, _) = send(
        a,
        "POST",
        "/api/topics",
        r#"{"topic":"made","channel":"c"}"#,
        &[],
    );
    assert_eq!(status, 200);
    let mut actions = Vec::new();
    for _ in 0..2 {
        let (_, body) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("missing notification");
        let v: Value = serde_json::from_slice(&body).unwrap();
        actions.push((
            v["action"].as_str().unwrap().to_owned(),
            v.get("channel").cloned(),
        ));
    }
    assert_eq!(
        actions,
        [
            ("create_topic".to_owned(), None),
            ("create_channel".to_owned(), Some(json!("c")))
        ]
    );
}

#[test]
fn dead_and_hung_nsqd_are_reported_not_waited_for() {
    let live = Nsqd::start(&[]).unwrap();
    let r = http::post(live.http_addr(), "/pub?topic=alive", b"x").unwrap();
    assert_eq!(r.status, 200);
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // Accepts connections and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_addr = hung.local_addr().unwrap();
    let admin = Nsqadmin::start(&[
        format!("--nsqd-http-address={}", live.http_addr()),
        format!("--nsqd-http-address={dead}"),
        format!("--nsqd-http-address={hung_addr}"),
        "--http-client-request-timeout=1s".to_owned(),
    ])
    .unwrap();
    let a = admin.http_addr();
    let started = Instant::now();
    let (status, nodes) = get(a, "/api/nodes");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status, 200, "{nodes}");
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(nodes["nodes"][0]["http_port"], live.http_addr().port());
    assert_eq!(nodes["nodes"][0]["remote_addresses"], Value::Null);
    let message = nodes["message"].as_str().unwrap();
    assert!(message.starts_with("WARNING: "), "{message}");
    assert!(
        message.contains(&format!(
            "Get \"http://{dead}/info\": dial tcp {dead}: connect: connection refused"
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!("http://{hung_addr}/info")),
        "{message}"
    );

    let (status, topics) = get(a, "/api/topics");
    assert_eq!(status, 200);
    assert_eq!(topics["topics"], json!(["alive"]));
    assert!(topics["message"].as_str().unwrap().starts_with("WARNING: "));
    drop(hung);

    // With every nsqd down the answer is Go's 502.
    let only_dead = Nsqadmin::start(&[format!("--nsqd-http-address={dead}")]).unwrap();
    let (status, body) = get(only_dead.http_addr(), "/api/nodes");
    assert_eq!(status, 502);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("UPSTREAM_ERROR: Failed to query any nsqd: "),
        "{body}"
    );
}

#[test]
fn config_reads_and_sets_options() {
    let live = Nsqd::start(&[]).unwrap();
    let admin = Nsqadmin::start(&[format!("--nsqd-http-address={}", live.http_addr())]).unwrap();
    let a = admin.http_addr();
    let r = http::get(a, "/config/acl_http_header").unwrap();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "X-Forwarded-User")
    );
    assert_eq!(
        get(a, "/config/nsqd_http_addresses"),
        (200, json!([live.http_addr().to_string()]))
    );
    assert_eq!(
        get(a, "/config/nsqlookupd_http_addresses"),
        (200, Value::Null)
    );
    assert_eq!(
        send(
            a,
            "PUT",
            "/config/nsqlookupd_http_addresses",
            r#"["127.0.0.1:4161"]"#,
            &[]
        ),
        (200, json!(["127.0.0.1:4161"]))
    );
    assert_eq!(
        send(a, "PUT", "/config/base_path", "/x", &[]),
        (400, json!({"message":"INVALID_OPTION"}))
    );
    assert_eq!(
        get(a, "/config/nosuch"),
        (400, json!({"message":"INVALID_OPTION"}))
    );
}

/// A file of `tests/certs`.
fn cert_file(name: &str) -> String {
    nsq_tests::daemon::workspace_dir()
        .join("tests/certs")
        .join(name)
        .display()
        .to_string()
}

/// An nsqd that answers plain HTTP with `403 TLS_REQUIRED` and serves https on its own port, holding topic
/// `secure` (3 messages) with channel `c`. The topic is made while the nsqd is still plain, then the nsqd
/// restarts on the same data with `--tls-required=true` plus `extra`.
fn tls_required_nsqd(dir: &std::path::Path, extra: &[&str]) -> (Nsqd, u16) {
    let mut plain = Nsqd::start_on(dir, &[]).expect("test setup");
    let r = http::post(plain.http_addr(), "/topic/create?topic=secure", b"").expect("test setup");
    assert_eq!(r.status, 200, "{}", r.body_text());
    let r = http::post(
        plain.http_addr(),
        "/channel/create?topic=secure&channel=c",
        b"",
    )
    .expect("test setup");
    assert_eq!(r.status, 200, "{}", r.body_text());
    for k in 0..3 {
        let r = http::post(
            plain.http_addr(),
            "/pub?topic=secure",
            format!("m{k}").as_bytes(),
        )
        .expect("test setup");
        assert_eq!(r.status, 200, "{}", r.body_text());
    }
    let status = plain
        .signal_and_wait("TERM", Duration::from_secs(20))
        .expect("test setup");
    assert!(status.success(), "{status}");
    let https_port = TcpListener::bind("127.0.0.1:0")
        .expect("test setup")
        .local_addr()
        .expect("test setup")
        .port();
    let mut flags = vec![
        "--tls-required=true".to_owned(),
        format!("--tls-cert={}", cert_file("server.pem")),
        format!("--tls-key={}", cert_file("server.key")),
        format!("--https-address=127.0.0.1:{https_port}"),
    ];
    flags.extend(extra.iter().map(|f| (*f).to_owned()));
    let nsqd = Nsqd::start_on(dir, &flags).expect("test setup");
    let r = http::get(nsqd.http_addr(), "/ping").expect("test setup");
    assert_eq!(r.status, 403, "{}", r.body_text());
    (nsqd, https_port)
}

/// Asserts that nsqadmin with `flags` in front of `nsqd` lists it and its topic `secure` (every answer
/// came over https: plain HTTP only ever answers 403).
fn admin_reaches_tls_nsqd(nsqd: &Nsqd, flags: &[String]) {
    let mut all = vec![format!("--nsqd-http-address={}", nsqd.http_addr())];
    all.extend_from_slice(flags);
    let admin = Nsqadmin::start(&all).expect("test setup");
    let a = admin.http_addr();
    let (status, nodes) = get(a, "/api/nodes");
    assert_eq!(status, 200, "{nodes}");
    assert_eq!(nodes["message"], "", "{nodes}");
    assert_eq!(
        nodes["nodes"].as_array().expect("test setup").len(),
        1,
        "{nodes}"
    );
    assert_eq!(
        nodes["nodes"][0]["http_port"],
        nsqd.http_addr().port(),
        "{nodes}"
    );
    assert_eq!(nodes["nodes"][0]["topics"][0]["topic"], "secure", "{nodes}");
    let (status, topics) = get(a, "/api/topics");
    assert_eq!(status, 200, "{topics}");
    assert_eq!(topics["topics"], json!(["secure"]));
    let (status, topic) = get(a, "/api/topics/secure");
    assert_eq!(status, 200, "{topic}");
    // The topic handed its 3 messages to channel `c`.
    assert_eq!(topic["channels"][0]["channel_name"], "c", "{topic}");
    assert_eq!(topic["channels"][0]["depth"], 3, "{topic}");
    assert_eq!(topic["message"], "", "{topic}");
}

#[test]
fn tls_required_nsqd_is_reached_over_https_with_the_root_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (nsqd, _) = tls_required_nsqd(dir.path(), &[]);
    admin_reaches_tls_nsqd(
        &nsqd,
        &[format!(
            "--http-client-tls-root-ca-file={}",
            cert_file("ca.pem")
        )],
    );
    // Without verification no CA is needed.
    admin_reaches_tls_nsqd(
        &nsqd,
        &["--http-client-tls-insecure-skip-verify=true".to_owned()],
    );
}

#[test]
fn tls_failures_are_reported_as_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let (nsqd, https_port) = tls_required_nsqd(dir.path(), &[]);
    let live = Nsqd::start(&[]).unwrap();
    // The rogue certificate signed nothing nsqd serves, so the handshake fails verification.
    let admin = Nsqadmin::start(&[
        format!("--nsqd-http-address={}", nsqd.http_addr()),
        format!("--nsqd-http-address={}", live.http_addr()),
        format!("--http-client-tls-root-ca-file={}", cert_file("rogue.pem")),
    ])
    .unwrap();
    let started = Instant::now();
    let (status, nodes) = get(admin.http_addr(), "/api/nodes");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status, 200, "{nodes}");
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 1, "{nodes}");
    assert_eq!(nodes["nodes"][0]["http_port"], live.http_addr().port());
    let message = nodes["message"].as_str().unwrap();
    assert!(message.starts_with("WARNING: "), "{message}");
    assert!(
        message.contains(&format!(
            "Get \"https://127.0.0.1:{https_port}/info\": tls: failed to verify certificate: \
             x509: certificate signed by unknown authority"
        )),
        "{message}"
    );
}

#[test]
fn client_certificate_is_presented_when_nsqd_requires_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = cert_file("ca.pem");
    let (nsqd, https_port) = tls_required_nsqd(
        dir.path(),
        &[
            "--tls-client-auth-policy=require-verify",
            &format!("--tls-root-ca-file={ca}"),
        ],
    );
    admin_reaches_tls_nsqd(
        &nsqd,
        &[
            format!("--http-client-tls-root-ca-file={ca}"),
            format!("--http-client-tls-cert={}", cert_file("client.pem")),
            format!("--http-client-tls-key={}", cert_file("client.key")),
        ],
    );
    // Without the certificate nsqd refuses the handshake and nothing is gathered.
    let admin = Nsqadmin::start(&[
        format!("--nsqd-http-address={}", nsqd.http_addr()),
        format!("--http-client-tls-root-ca-file={ca}"),
    ])
    .unwrap();
    let (status, body) = get(admin.http_addr(), "/api/nodes");
    assert_eq!(status, 502, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("UPSTREAM_ERROR: Failed to query any nsqd: "),
        "{message}"
    );
    assert!(
        message.contains(&format!("https://127.0.0.1:{https_port}/")),
        "{message}"
    );
}
