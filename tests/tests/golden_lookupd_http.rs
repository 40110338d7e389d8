//! Replays the golden nsqlookupd HTTP exchanges (`shared/golden/http/nsqlookupd.json`) against our
//! nsqlookupd.
//!
//! The capture registered a real Go nsqd (instance `nsqd_registered`) and drove it over its own HTTP API. This
//! test does not depend on our nsqd: a fake producer connects to lookupd's TCP port and sends exactly the
//! bytes Go nsqd sends (the IDENTIFY of `tcp/nsqd_to_lookupd.json`, with the fake's ports), and each
//! `nsqd_registered` exchange is replaced by the REGISTER/UNREGISTER lines Go nsqd sends for that action (see
//! [`NSQD_ACTIONS`]). Every other exchange is sent as recorded and checked: status line, header names in wire
//! order and case, every header value except `Date` (and `Content-Length` where the body holds run-specific
//! values), and the body, byte-exact where nothing in it varies, else as JSON (keys, key order, null versus
//! `[]`, values) after normalising ports, the producer's address, timestamps and Go's map order.
//!
//! Not replayed as recorded, each with its reason: [`NSQD_ACTIONS`] (nsqd's own answers), [`DEVIATIONS`]
//! (Go's pprof). One flag differs from the capture: `--tombstone-lifetime` is 3 s instead of 45 s, so the
//! "after the tombstone lifetime" exchanges wait 3 s instead of 46 s.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use nsq_tests::golden::{
    decode_hex, render_text, Exchange, HttpGolden, HttpResponseGolden, StepKind, Transcript,
};
use nsq_tests::golden_dir;
use nsq_tests::http::{self, HttpResponse};
use nsq_tests::json_diff::{diff, type_placeholder, walk_mut};
use nsq_tests::lookupd::{identify_command, Nsqlookupd, V1Conn, MAGIC_V1};
use serde_json::Value;

/// The tombstone lifetime used here instead of Go's default 45 s.
const TOMBSTONE_LIFETIME: Duration = Duration::from_secs(3);

/// `time.Time{}.UnixNano()`: `/debug`'s `tombstoned_at` for a producer never tombstoned (not run-specific).
const GO_ZERO_TIME_UNIX_NANO: i64 = -6_795_364_578_871_345_152;

/// What the Go nsqd of the capture did to lookupd for each `nsqd_registered` exchange (an HTTP call to nsqd,
/// whose answer is nsqd's, not lookupd's, so it is not compared here).
#[derive(Debug, Clone, Copy)]
enum NsqdAction {
    /// nsqd created a topic: `REGISTER topic`, then `GET /channels?topic=` from lookupd and a
    /// `REGISTER topic channel` for each non-ephemeral channel it lists (nsqd pre-creates them).
    CreateTopic(&'static str),
    /// nsqd created a channel: `REGISTER topic channel`.
    CreateChannel(&'static str, &'static str),
    /// nsqd deleted a topic: `UNREGISTER topic`, then `UNREGISTER topic channel` for each of its channels.
    DeleteTopic(&'static str),
}

/// (exchange, action, why it is not compared).
const NSQD_ACTIONS: &[(&str, NsqdAction)] = &[
    ("nsqd_topic_create_a", NsqdAction::CreateTopic("topic_a")),
    (
        "nsqd_channel_create_a_c1",
        NsqdAction::CreateChannel("topic_a", "c1"),
    ),
    (
        "nsqd_channel_create_a_c2",
        NsqdAction::CreateChannel("topic_a", "c2"),
    ),
    ("nsqd_topic_create_b", NsqdAction::CreateTopic("topic_b")),
    ("nsqd_topic_delete_a", NsqdAction::DeleteTopic("topic_a")),
    // Publishing re-creates the topic on nsqd.
    ("nsqd_pub_recreates_a", NsqdAction::CreateTopic("topic_a")),
];

/// Why `nsqd_registered` exchanges are not compared.
const NSQD_SKIP_REASON: &str =
    "answered by Go nsqd, not lookupd; replaced by the lines Go nsqd sends lookupd for that action";

/// Exchanges judged differently from the recording.
const DEVIATIONS: &[(&str, &str)] = &[
    ("debug_pprof", PPROF_REASON),
    ("debug_pprof_slash", PPROF_REASON),
    ("debug_pprof_cmdline", PPROF_REASON),
    ("debug_pprof_goroutine", PPROF_REASON),
];

/// pprof is a Go runtime tool; its routes need not exist, and if absent must answer like an unknown route.
const PPROF_REASON: &str = "Go runtime pprof: either Go's status or Go's unknown-route answer";

/// Exchanges that must wait for the tombstone lifetime to pass since the named exchange.
const WAIT_FOR_TOMBSTONE_EXPIRY: &[(&str, &str)] =
    &[("lookup_b_after_tombstone_lifetime", "tombstone_b")];

fn load() -> HttpGolden {
    let path = golden_dir().join("http").join("nsqlookupd.json");
    HttpGolden::load(&path).unwrap_or_else(|e| panic!("cannot load {}: {e:#}", path.display()))
}

#[test]
fn tables_match_the_golden_exchanges() {
    let golden = load();
    let names: Vec<&str> = golden.exchanges.iter().map(|e| e.name.as_str()).collect();
    for name in NSQD_ACTIONS
        .iter()
        .map(|(n, _)| *n)
        .chain(DEVIATIONS.iter().map(|(n, _)| *n))
        .chain(WAIT_FOR_TOMBSTONE_EXPIRY.iter().flat_map(|(a, b)| [*a, *b]))
    {
        assert!(
            names.contains(&name),
            "a table names unknown exchange {name}"
        );
    }
    for ex in &golden.exchanges {
        match ex.instance.as_deref() {
            Some("nsqd_registered") if ex.request.is_some() => assert!(
                NSQD_ACTIONS.iter().any(|(n, _)| *n == ex.name),
                "{} has no fake-nsqd action",
                ex.name
            ),
            _ if ex.name.starts_with("debug_pprof") => assert!(
                DEVIATIONS.iter().any(|(n, _)| *n == ex.name),
                "{} is not in the deviation table",
                ex.name
            ),
            _ => {}
        }
    }
}

/// Run-specific values: the golden ones and ours.
struct Subst {
    golden_nsqd_tcp_port: u64,
    golden_nsqd_http_port: u64,
    golden_remote: String,
    nsqd_tcp_port: u16,
    nsqd_http_port: u16,
    remote: String,
}

/// The fake nsqd: a lookupd TCP connection plus two reserved ports it reports as its own.
struct FakeNsqd {
    conn: V1Conn,
    tcp: TcpListener,
    http: TcpListener,
    /// Channels it has per topic, for the UNREGISTERs of a topic deletion.
    topics: Vec<(String, Vec<String>)>,
}

impl FakeNsqd {
    /// Connects and identifies with Go nsqd's recorded bytes, its ports replaced by the fake's.
    fn connect(lookupd: &Nsqlookupd) -> Result<FakeNsqd> {
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        let http = TcpListener::bind("127.0.0.1:0")?;
        let recorded = Transcript::load(&golden_dir().join("tcp").join("nsqd_to_lookupd.json"))?;
        let sends: Vec<Vec<u8>> = recorded
            .steps
            .iter()
            .filter(|s| s.kind() == StepKind::Send)
            .map(|s| s.send_bytes())
            .collect::<Result<_>>()?;
        ensure!(sends[0] == MAGIC_V1, "nsqd's first write is not the magic");
        let identify = &sends[1];
        ensure!(
            identify.starts_with(b"IDENTIFY\n"),
            "nsqd's second write is not IDENTIFY"
        );
        let mut body: Value = serde_json::from_slice(&identify[13..]).context("IDENTIFY body")?;
        body["tcp_port"] = Value::from(tcp.local_addr()?.port());
        body["http_port"] = Value::from(http.local_addr()?.port());
        let mut conn = V1Conn::connect(lookupd.tcp_addr())?;
        conn.send(MAGIC_V1)?;
        conn.send(&identify_command(&serde_json::to_vec(&body)?))?;
        match conn.next_event(Instant::now() + Duration::from_secs(5)) {
            nsq_tests::lookupd::V1Event::Frame(data) if data.starts_with(b"{") => {}
            other => anyhow::bail!("IDENTIFY answered {other:?}"),
        }
        Ok(FakeNsqd {
            conn,
            tcp,
            http,
            topics: Vec::new(),
        })
    }

    fn line(&mut self, line: &str) -> Result<()> {
        self.conn.exchange(format!("{line}\n").as_bytes(), b"OK")
    }

    fn act(&mut self, action: NsqdAction, lookupd_http: SocketAddr) -> Result<()> {
        match action {
            NsqdAction::CreateTopic(topic) => {
                self.line(&format!("REGISTER {topic}"))?;
                let answer = http::get(lookupd_http, &format!("/channels?topic={topic}"))?;
                let json: Value = serde_json::from_slice(&answer.body)?;
                let channels: Vec<String> = json["channels"]
                    .as_array()
                    .context("no channels array")?
                    .iter()
                    .filter_map(|c| c.as_str())
                    .filter(|c| !c.ends_with("#ephemeral"))
                    .map(str::to_owned)
                    .collect();
                for c in &channels {
                    self.line(&format!("REGISTER {topic} {c}"))?;
                }
                self.topics.push((topic.to_owned(), channels));
            }
            NsqdAction::CreateChannel(topic, channel) => {
                self.line(&format!("REGISTER {topic} {channel}"))?;
                match self.topics.iter_mut().find(|(t, _)| t == topic) {
                    Some((_, chans)) => chans.push(channel.to_owned()),
                    None => self
                        .topics
                        .push((topic.to_owned(), vec![channel.to_owned()])),
                }
            }
            NsqdAction::DeleteTopic(topic) => {
                self.line(&format!("UNREGISTER {topic}"))?;
                let channels = self
                    .topics
                    .iter()
                    .position(|(t, _)| t == topic)
                    .map(|i| self.topics.remove(i).1)
                    .unwrap_or_default();
                for c in channels {
                    self.line(&format!("UNREGISTER {topic} {c}"))?;
                }
            }
        }
        Ok(())
    }
}

#[test]
fn golden_lookupd_http() {
    let golden = load();
    let flags = vec![format!(
        "--tombstone-lifetime={}s",
        TOMBSTONE_LIFETIME.as_secs()
    )];
    let lookupd = Nsqlookupd::start(&flags).unwrap_or_else(|e| panic!("{e:#}"));
    let unknown_route = golden
        .exchanges
        .iter()
        .find(|e| e.name == "not_found")
        .and_then(|e| e.response.clone())
        .expect("the golden file records not_found");
    // Go nsqd dials lookupd lazily, on its first topic or channel event, so the fake connects at the first
    // `nsqd_registered` exchange (the `*_empty` exchanges before it see no producer).
    let mut nsqd: Option<FakeNsqd> = None;
    let mut subst = Subst {
        golden_nsqd_tcp_port: 40153,
        golden_nsqd_http_port: 48655,
        golden_remote: "127.0.0.1:51106".to_owned(),
        nsqd_tcp_port: 0,
        nsqd_http_port: 0,
        remote: String::new(),
    };
    let mut connected_once = false;
    let mut started_at: Vec<(&str, Instant)> = Vec::new();
    let mut failures = Vec::new();
    let mut compared = 0;
    for ex in &golden.exchanges {
        if let Some((_, action)) = NSQD_ACTIONS.iter().find(|(n, _)| *n == ex.name) {
            if !connected_once {
                connected_once = true;
                let fake =
                    FakeNsqd::connect(&lookupd).unwrap_or_else(|e| panic!("fake nsqd: {e:#}"));
                subst.nsqd_tcp_port = fake.tcp.local_addr().map(|a| a.port()).unwrap_or(0);
                subst.nsqd_http_port = fake.http.local_addr().map(|a| a.port()).unwrap_or(0);
                subst.remote = fake
                    .conn
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                nsqd = Some(fake);
            }
            let fake = nsqd
                .as_mut()
                .expect("the fake nsqd is connected until nsqd_shutdown");
            match fake.act(*action, lookupd.http_addr()) {
                Ok(()) => println!("skip {} ({NSQD_SKIP_REASON}): did {action:?}", ex.name),
                Err(e) => failures.push(format!("{}: fake nsqd {action:?} failed: {e:#}", ex.name)),
            }
            continue;
        }
        if ex.name == "nsqd_shutdown" {
            // Go nsqd sends nothing on shutdown; it just closes the connection.
            drop(nsqd.take());
            std::thread::sleep(Duration::from_millis(200));
            println!("note {}: fake nsqd disconnected", ex.name);
            continue;
        }
        if let Some((_, since)) = WAIT_FOR_TOMBSTONE_EXPIRY
            .iter()
            .find(|(n, _)| *n == ex.name)
        {
            let at = started_at.iter().find(|(n, _)| n == since).map(|(_, t)| *t);
            if let Some(at) = at {
                let until = at + TOMBSTONE_LIFETIME + Duration::from_millis(300);
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
            }
        }
        started_at.push((ex.name.as_str(), Instant::now()));
        let outcome = if let Some(raw) = &ex.raw_exchange {
            check_raw(&lookupd, &raw.send_hex, &raw.recv_hex)
        } else if let (Some(_), Some(response)) = (&ex.request, &ex.response) {
            check_exchange(&lookupd, &subst, ex, response, &unknown_route)
        } else {
            continue;
        };
        compared += 1;
        match outcome {
            Ok(problems) if problems.is_empty() => {
                match DEVIATIONS.iter().find(|(n, _)| *n == ex.name) {
                    Some((_, reason)) => println!("ok*  {} (deviation: {reason})", ex.name),
                    None => println!("ok   {}", ex.name),
                }
            }
            Ok(problems) => {
                println!("FAIL {}", ex.name);
                failures.push(format!("{}:\n    {}", ex.name, problems.join("\n    ")));
            }
            Err(e) => {
                println!("FAIL {}", ex.name);
                failures.push(format!("{}: exchange failed: {e:#}", ex.name));
            }
        }
    }
    println!(
        "{compared} lookupd exchanges compared, {} nsqd exchanges replaced by fake-nsqd actions, {} mismatching",
        NSQD_ACTIONS.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} golden lookupd HTTP exchanges mismatch:\n{}\n--- nsqlookupd output (tail) ---\n{}",
        failures.len(),
        failures.join("\n"),
        lookupd.log_tail()
    );
}

/// Sends the recorded request (our Host, the fake nsqd's port in a `node=` argument) and compares.
fn check_exchange(
    lookupd: &Nsqlookupd,
    subst: &Subst,
    ex: &Exchange,
    golden: &HttpResponseGolden,
    unknown_route: &HttpResponseGolden,
) -> Result<Vec<String>> {
    let request = ex.request.as_ref().context("no request")?;
    let addr = lookupd.http_addr();
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| {
            let v = if k == "Host" {
                addr.to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    let target = request.target.replace(
        &format!(":{}", subst.golden_nsqd_http_port),
        &format!(":{}", subst.nsqd_http_port),
    );
    let actual = http::exchange(addr, &request.method, &target, &headers, &request.body()?)?;
    if DEVIATIONS.iter().any(|(n, _)| *n == ex.name) {
        if actual.status == golden.status {
            return Ok(Vec::new());
        }
        let mut problems = compare(subst, &request.method, unknown_route, &actual);
        if !problems.is_empty() {
            problems.insert(
                0,
                format!(
                    "neither Go's pprof status ({}) nor Go's unknown-route answer:",
                    golden.status_line
                ),
            );
        }
        return Ok(problems);
    }
    Ok(compare(subst, &request.method, golden, &actual))
}

fn compare(
    subst: &Subst,
    method: &str,
    golden: &HttpResponseGolden,
    actual: &HttpResponse,
) -> Vec<String> {
    let mut problems = Vec::new();
    if golden.status_line != actual.status_line {
        problems.push(format!(
            "status line {:?}, expected {:?}",
            actual.status_line, golden.status_line
        ));
    }
    let want_names: Vec<&str> = golden.headers.iter().map(|(k, _)| k.as_str()).collect();
    let got_names: Vec<&str> = actual.headers.iter().map(|(k, _)| k.as_str()).collect();
    if want_names != got_names {
        problems.push(format!(
            "header names {got_names:?}, expected {want_names:?}"
        ));
    }
    let (body_problems, volatile) = if method == "HEAD" {
        (Vec::new(), false)
    } else {
        compare_body(subst, golden, actual)
    };
    for (name, want) in &golden.headers {
        if name == "Date" || (name == "Content-Length" && volatile) {
            continue;
        }
        let got = actual.header(name);
        if got != Some(want.as_str()) {
            problems.push(format!("header {name}: {got:?}, expected {want:?}"));
        }
    }
    problems.extend(body_problems);
    problems
}

/// Compares bodies; also says whether the expected body held run-specific values (so its length may differ).
fn compare_body(
    subst: &Subst,
    golden: &HttpResponseGolden,
    actual: &HttpResponse,
) -> (Vec<String>, bool) {
    let want_text = golden.body_text.clone().unwrap_or_default();
    let Some(want_json) = &golden.body_json else {
        let problems = if actual.body == want_text.as_bytes() {
            Vec::new()
        } else {
            vec![format!(
                "body {:?}, expected {:?}",
                render_text(&actual.body),
                want_text
            )]
        };
        return (problems, false);
    };
    let mut want = want_json.clone();
    substitute(&mut want, subst, true);
    let volatile = &want != want_json;
    sort_map_order(&mut want);
    let mut got: Value = match serde_json::from_slice(&actual.body) {
        Ok(v) => v,
        Err(_) => {
            return (
                vec![format!("body is not JSON: {:?}", render_text(&actual.body))],
                volatile,
            )
        }
    };
    substitute(&mut got, subst, false);
    sort_map_order(&mut got);
    let problems = diff(&want, &got)
        .into_iter()
        .map(|d| format!("body {d}"))
        .collect();
    (problems, volatile)
}

/// Puts this run's values into the expected side (ports, the producer's address) and masks the timestamps
/// on both sides, keeping Go's zero-time constant, which is not run-specific.
fn substitute(value: &mut Value, subst: &Subst, expected: bool) {
    walk_mut(value, &mut |path, v| {
        let leaf = path.rsplit('.').next().unwrap_or(path);
        match leaf {
            "last_update" => *v = type_placeholder(v),
            "tombstoned_at" if v.as_i64() != Some(GO_ZERO_TIME_UNIX_NANO) => {
                *v = type_placeholder(v)
            }
            "tcp_port" if expected && v.as_u64() == Some(subst.golden_nsqd_tcp_port) => {
                *v = Value::from(subst.nsqd_tcp_port);
            }
            "http_port" if expected && v.as_u64() == Some(subst.golden_nsqd_http_port) => {
                *v = Value::from(subst.nsqd_http_port);
            }
            "remote_address" | "id"
                if expected && v.as_str() == Some(subst.golden_remote.as_str()) =>
            {
                *v = Value::from(subst.remote.clone());
            }
            _ => {}
        }
    });
}

/// Sorts what Go lists in random map order: `/topics`, the channel lists, and each `/nodes` producer's
/// `topics` together with the parallel `tombstones`.
fn sort_map_order(value: &mut Value) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    for key in ["topics", "channels"] {
        if let Some(Value::Array(items)) = object.get_mut(key) {
            items.sort_by_key(|v| v.to_string());
        }
    }
    if let Some(Value::Array(producers)) = object.get_mut("producers") {
        for p in producers.iter_mut().filter_map(Value::as_object_mut) {
            let topics = p.get("topics").and_then(Value::as_array).cloned();
            let tombstones = p.get("tombstones").and_then(Value::as_array).cloned();
            if let (Some(topics), Some(tombstones)) = (topics, tombstones) {
                let mut pairs: Vec<(Value, Value)> = topics.into_iter().zip(tombstones).collect();
                pairs.sort_by_key(|(t, _)| t.to_string());
                let (t, s): (Vec<Value>, Vec<Value>) = pairs.into_iter().unzip();
                p.insert("topics".into(), Value::Array(t));
                p.insert("tombstones".into(), Value::Array(s));
            }
        }
    }
}

/// Sends raw bytes and compares everything read until the server closes.
fn check_raw(lookupd: &Nsqlookupd, send_hex: &str, recv_hex: &str) -> Result<Vec<String>> {
    let want = decode_hex(recv_hex)?;
    let got = http::raw_exchange(
        lookupd.http_addr(),
        &decode_hex(send_hex)?,
        Duration::from_secs(5),
    )?;
    Ok(if want == got {
        Vec::new()
    } else {
        vec![format!(
            "raw reply {:?}, expected {:?}",
            render_text(&got),
            render_text(&want)
        )]
    })
}

#[test]
fn map_order_normalisation_keeps_topics_and_tombstones_paired() {
    let mut v: Value = serde_json::from_str(
        r#"{"producers":[{"tombstones":[false,true],"topics":["topic_b","topic_a"]}]}"#,
    )
    .unwrap();
    sort_map_order(&mut v);
    assert_eq!(
        v.to_string(),
        r#"{"producers":[{"tombstones":[true,false],"topics":["topic_a","topic_b"]}]}"#
    );
}
