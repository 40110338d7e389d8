//! Replays the golden nsqd HTTP exchanges (`shared/golden/http/nsqd.json`) against our nsqd.
//!
//! The exchanges of one instance run in order against one daemon, because state carries over
//! (topics created early are paused, emptied and deleted later). For every exchange the test
//! checks the status line, the header names in wire order and case, every header value except
//! `Date` (and `Content-Length` where the body has run-specific parts), and the body: byte-exact
//! when nothing in it varies between runs, otherwise as JSON (same keys, key order, null versus
//! `[]`, values) or as text after masking the run-specific values.
//!
//! The `/stats` snapshots depend on TCP clients the capture had connected; the test reproduces
//! them with raw TCP connections at the same point of the sequence (see [`SETUPS`]). Deliberate
//! differences and skipped instances are listed in [`DEVIATIONS`] and [`SKIPPED_INSTANCES`].

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use nsq_tests::golden::{
    decode_hex, extra_nsqd_flags, render_text, Exchange, HttpGolden, HttpResponseGolden,
};
use nsq_tests::http::{self, HttpResponse};
use nsq_tests::json_diff::{diff, mask_leaves, type_placeholder, walk_mut};
use nsq_tests::negotiation::NEGOTIATION_HTTP_INSTANCES;
use nsq_tests::wire::{self, FrameConn, Message, FRAME_ERROR, FRAME_MESSAGE, FRAME_RESPONSE};
use nsq_tests::{golden_dir, Nsqd};
use serde_json::Value;

/// Instances of `http/nsqd.json` that need features of later issues.
const SKIPPED_INSTANCES: &[(&str, &str)] = &[(
    "topology",
    "the topology-aware-consumption experiment is a later issue",
)];

/// How an exchange is judged when it is not compared as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deviation {
    /// Go's pprof handlers answer with runtime-specific bodies. We accept either Go's status (the
    /// route is served; the body is not compared) or exactly Go's answer to an unknown route,
    /// which the `not_found` exchange records.
    PprofOrUnknownRoute,
}

/// Exchanges judged differently from the recording, with the reason.
const DEVIATIONS: &[(&str, Deviation, &str)] = &[
    (
        "debug_pprof_no_slash",
        Deviation::PprofOrUnknownRoute,
        "/debug/pprof need not exist; if absent it must answer like an unknown route",
    ),
    (
        "debug_pprof_index",
        Deviation::PprofOrUnknownRoute,
        "pprof body is Go-runtime specific; /debug/pprof need not exist",
    ),
    (
        "debug_pprof_cmdline",
        Deviation::PprofOrUnknownRoute,
        "pprof body is Go-runtime specific; /debug/pprof need not exist",
    ),
    (
        "debug_pprof_symbol_get",
        Deviation::PprofOrUnknownRoute,
        "pprof body is Go-runtime specific; /debug/pprof need not exist",
    ),
    (
        "debug_pprof_symbol_post",
        Deviation::PprofOrUnknownRoute,
        "pprof body is Go-runtime specific; /debug/pprof need not exist",
    ),
    (
        "debug_pprof_profile",
        Deviation::PprofOrUnknownRoute,
        "pprof body is Go-runtime specific; /debug/pprof need not exist",
    ),
    (
        "debug_pprof_heap",
        Deviation::PprofOrUnknownRoute,
        "pprof body is Go-runtime specific; /debug/pprof need not exist",
    ),
    (
        "debug_pprof_goroutine",
        Deviation::PprofOrUnknownRoute,
        "pprof body is Go-runtime specific; /debug/pprof need not exist",
    ),
    (
        "debug_pprof_block",
        Deviation::PprofOrUnknownRoute,
        "pprof body is Go-runtime specific; /debug/pprof need not exist",
    ),
    (
        "debug_pprof_threadcreate",
        Deviation::PprofOrUnknownRoute,
        "pprof body is Go-runtime specific; /debug/pprof need not exist",
    ),
];

/// Out-of-band actions the capture performed right before an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// The producer and consumer TCP clients described by `stats_json`.
    MainClients,
    /// A TCP `MPUB mpub_zero_topic` with message count 0 (described by `mpub_zero_creates_topic`).
    MpubZeroMessages,
    /// The single subscribing-and-publishing client described by `stats_json_no_e2e`.
    NoE2eClient,
}

/// (exchange, setup to run before it).
const SETUPS: &[(&str, Setup)] = &[
    ("stats_json", Setup::MainClients),
    ("mpub_zero_creates_topic", Setup::MpubZeroMessages),
    ("stats_json_no_e2e", Setup::NoE2eClient),
];

/// In the unfiltered main-instance stats, Go lists one `pub_counts` entry picked by map order for
/// the producer that published to two topics. Either entry is correct.
const MAIN_PUB_COUNT_CHOICES: &[(&str, u64)] = &[("alpha", 1), ("beta", 3)];

fn load() -> HttpGolden {
    let path = golden_dir().join("http").join("nsqd.json");
    HttpGolden::load(&path).unwrap_or_else(|e| panic!("cannot load {}: {e:#}", path.display()))
}

#[test]
fn tables_match_the_golden_exchanges() {
    let golden = load();
    let names: Vec<&str> = golden.exchanges.iter().map(|e| e.name.as_str()).collect();
    for (name, _, _) in DEVIATIONS {
        assert!(
            names.contains(name),
            "deviation table names unknown exchange {name}"
        );
    }
    for (name, _) in SETUPS {
        assert!(
            names.contains(name),
            "setup table names unknown exchange {name}"
        );
    }
    for (instance, _) in SKIPPED_INSTANCES {
        assert!(
            golden.instances.contains_key(*instance),
            "skip table names unknown instance {instance}"
        );
    }
    for instance in golden.instances.keys() {
        // The TLS and auth instances are replayed by golden_negotiation.rs.
        let replayed = instance == "main"
            || instance == "no_e2e"
            || NEGOTIATION_HTTP_INSTANCES.contains(&instance.as_str());
        assert!(
            replayed || SKIPPED_INSTANCES.iter().any(|(i, _)| i == instance),
            "instance {instance} is neither replayed nor in the skip table"
        );
    }
    // Every pprof exchange except the router 404 one must be in the deviation table.
    for name in names
        .iter()
        .filter(|n| n.starts_with("debug_pprof") && **n != "debug_pprof_unknown_profile")
    {
        assert!(
            DEVIATIONS.iter().any(|(n, _, _)| n == name),
            "{name} is not in the deviation table"
        );
    }
}

#[test]
fn golden_http_main() {
    run_instance("main");
}

#[test]
fn golden_http_no_e2e() {
    run_instance("no_e2e");
}

/// Run-specific facts used to turn the golden answer into the one expected from this run.
struct RunCtx<'a> {
    nsqd: &'a Nsqd,
    instance: &'a str,
    golden_http_port: Option<u16>,
}

fn run_instance(instance: &str) {
    let golden = load();
    let flags = golden.instance_flags(instance).expect("instance flags");
    let extra = extra_nsqd_flags(&flags).expect("instance flags must not need placeholders");
    let nsqd = Nsqd::start(&extra).unwrap_or_else(|e| panic!("nsqd cannot start: {e:#}"));
    let exchanges: Vec<&Exchange> = golden
        .exchanges
        .iter()
        .filter(|e| e.instance.as_deref() == Some(instance))
        .collect();
    let golden_http_port = exchanges
        .iter()
        .filter_map(|e| e.request.as_ref())
        .flat_map(|r| r.headers.iter())
        .find(|(k, _)| k == "Host")
        .and_then(|(_, v)| v.rsplit(':').next()?.parse().ok());
    let unknown_route = golden
        .exchanges
        .iter()
        .find(|e| e.name == "not_found")
        .and_then(|e| e.response.clone())
        .expect("the golden file records the not_found exchange");
    let ctx = RunCtx {
        nsqd: &nsqd,
        instance,
        golden_http_port,
    };

    let mut clients: Vec<FrameConn> = Vec::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for ex in &exchanges {
        if let Some((_, setup)) = SETUPS.iter().find(|(n, _)| *n == ex.name) {
            match run_setup(*setup, &nsqd) {
                Ok(mut conns) => clients.append(&mut conns),
                Err(e) => failures.push(format!("{}: setup {setup:?} failed: {e:#}", ex.name)),
            }
        }
        let outcome = if let Some(raw) = &ex.raw_exchange {
            check_raw(&nsqd, &raw.send_hex, &raw.recv_hex)
        } else if let (Some(_), Some(response)) = (&ex.request, &ex.response) {
            check_exchange(&ctx, ex, response, &unknown_route)
        } else {
            continue;
        };
        count += 1;
        let deviation = DEVIATIONS.iter().find(|(n, _, _)| *n == ex.name);
        match outcome {
            Ok(problems) if problems.is_empty() => match deviation {
                Some((_, _, reason)) => {
                    println!("ok*  {instance}/{} (deviation: {reason})", ex.name)
                }
                None => println!("ok   {instance}/{}", ex.name),
            },
            Ok(problems) => {
                println!("FAIL {instance}/{}", ex.name);
                failures.push(format!("{}:\n    {}", ex.name, problems.join("\n    ")));
            }
            Err(e) => {
                println!("FAIL {instance}/{}", ex.name);
                failures.push(format!("{}: exchange failed: {e:#}", ex.name));
            }
        }
    }
    for (skipped, reason) in SKIPPED_INSTANCES {
        let n = golden
            .exchanges
            .iter()
            .filter(|e| e.instance.as_deref() == Some(*skipped))
            .count();
        println!("SKIP instance {skipped} ({n} exchanges): {reason}");
    }
    println!(
        "{instance}: {count} exchanges, {} mismatching",
        failures.len()
    );
    drop(clients);
    assert!(
        failures.is_empty(),
        "{} of {count} golden HTTP exchanges of instance {instance} mismatch:\n{}\n--- nsqd output (tail) ---\n{}",
        failures.len(),
        failures.join("\n"),
        nsqd.log_tail()
    );
}

/// Sends the recorded request (with our Host) and compares the response.
fn check_exchange(
    ctx: &RunCtx<'_>,
    ex: &Exchange,
    golden: &HttpResponseGolden,
    unknown_route: &HttpResponseGolden,
) -> Result<Vec<String>> {
    let request = ex.request.as_ref().context("no request")?;
    let addr = ctx.nsqd.http_addr();
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| {
            if k == "Host" {
                (k.clone(), addr.to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let body = request.body()?;
    let actual = http::exchange(addr, &request.method, &request.target, &headers, &body)?;

    let deviation = DEVIATIONS
        .iter()
        .find(|(n, _, _)| *n == ex.name)
        .map(|(_, d, _)| *d);
    if deviation == Some(Deviation::PprofOrUnknownRoute) {
        if actual.status == golden.status {
            return Ok(Vec::new());
        }
        let mut problems = compare_response(ctx, ex, unknown_route, &actual);
        if !problems.is_empty() {
            problems.insert(
                0,
                format!(
                    "neither Go's pprof answer ({}) nor Go's unknown-route answer:",
                    golden.status_line
                ),
            );
        }
        return Ok(problems);
    }
    Ok(compare_response(ctx, ex, golden, &actual))
}

/// Compares status line, headers and body.
fn compare_response(
    ctx: &RunCtx<'_>,
    ex: &Exchange,
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
    let (body_problems, volatile) = compare_body(ctx, ex, golden, actual);

    let want_names: Vec<&str> = golden.headers.iter().map(|(k, _)| k.as_str()).collect();
    let got_names: Vec<&str> = actual.headers.iter().map(|(k, _)| k.as_str()).collect();
    if want_names != got_names {
        problems.push(format!(
            "header names {got_names:?}, expected {want_names:?}"
        ));
    }
    for (name, want) in &golden.headers {
        if name == "Date" || (name == "Content-Length" && volatile) {
            continue;
        }
        let got = actual
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        if got != Some(want.as_str()) {
            problems.push(format!("header {name}: {got:?}, expected {want:?}"));
        }
    }
    problems.extend(body_problems);
    problems
}

/// Compares bodies; also says whether the expected body had run-specific parts.
fn compare_body(
    ctx: &RunCtx<'_>,
    ex: &Exchange,
    golden: &HttpResponseGolden,
    actual: &HttpResponse,
) -> (Vec<String>, bool) {
    let method = ex
        .request
        .as_ref()
        .map(|r| r.method.as_str())
        .unwrap_or_default();
    if method == "HEAD" {
        return (Vec::new(), false);
    }
    let Some(want_text) = golden.body_text.as_deref() else {
        return (
            vec!["golden body was elided and this exchange is not in the deviation table".into()],
            false,
        );
    };
    let target = ex
        .request
        .as_ref()
        .map(|r| r.target.as_str())
        .unwrap_or_default();
    let pub_count_choices = if ctx.instance == "main" && !target.contains("topic=") {
        MAIN_PUB_COUNT_CHOICES
    } else {
        &[]
    };

    if let Some(want_json) = &golden.body_json {
        let mut want = want_json.clone();
        normalise_json(&mut want, ctx, true, pub_count_choices);
        let volatile = &want != want_json;
        let mut got: Value = match serde_json::from_slice(&actual.body) {
            Ok(v) => v,
            Err(_) => {
                return (
                    vec![format!("body is not JSON: {:?}", short(&actual.body))],
                    volatile,
                )
            }
        };
        normalise_json(&mut got, ctx, false, pub_count_choices);
        let mut problems: Vec<String> = diff(&want, &got)
            .into_iter()
            .map(|d| format!("body {d}"))
            .collect();
        if problems.is_empty() && !volatile && actual.body != want_text.as_bytes() {
            problems.push(format!(
                "same JSON but different bytes: {:?}, expected {:?}",
                short(&actual.body),
                want_text
            ));
        }
        return (problems, volatile);
    }

    let mut want = want_text.to_string();
    let mut got = actual.body_text();
    if ex.name == "config_get_data_path" {
        want = ctx.nsqd.data_path().display().to_string();
    }
    if let Some(port) = ctx.golden_http_port {
        want = want.replace(
            &format!("127_0_0_1_{port}"),
            &format!("127_0_0_1_{}", ctx.nsqd.http_addr().port()),
        );
    }
    if target.starts_with("/stats") {
        want = normalise_stats_text(&want, pub_count_choices);
        got = normalise_stats_text(&got, pub_count_choices);
    }
    let volatile = want != want_text;
    if want == got {
        (Vec::new(), volatile)
    } else {
        (
            vec![format!("body differs:\n{}", line_diff(&want, &got))],
            volatile,
        )
    }
}

/// Masks the run-specific JSON values (see the module docs). `expected` says which side this is:
/// golden ports are replaced by ours there.
fn normalise_json(
    value: &mut Value,
    ctx: &RunCtx<'_>,
    expected: bool,
    pub_count_choices: &[(&str, u64)],
) {
    let http_port = ctx.nsqd.http_addr().port();
    let tcp_port = ctx.nsqd.tcp_addr().port();
    walk_mut(value, &mut |path, v| {
        let leaf = path.rsplit('.').next().unwrap_or(path);
        match path {
            "start_time" | "hostname" => *v = type_placeholder(v),
            "memory" => mask_leaves(v),
            "http_port" if expected => *v = Value::from(http_port),
            "tcp_port" if expected => *v = Value::from(tcp_port),
            _ if leaf == "connect_ts" => *v = type_placeholder(v),
            _ if leaf == "remote_address" => {
                if let Some(text) = v.as_str() {
                    let host = text.rsplit_once(':').map_or(text, |(h, _)| h);
                    *v = Value::String(format!("{host}:<port>"));
                }
            }
            // A zero means "no samples" and must stay zero; other values are latencies.
            _ if path.ends_with("e2e_processing_latency.percentiles[].value")
                && v.as_f64() != Some(0.0) =>
            {
                *v = type_placeholder(v);
            }
            _ if leaf == "pub_counts" => {
                if let Some([entry]) = v.as_array().map(Vec::as_slice) {
                    let topic = entry.get("topic").and_then(Value::as_str);
                    let count = entry.get("count").and_then(Value::as_u64);
                    let keys: Vec<&str> = entry
                        .as_object()
                        .map(|o| o.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    if keys == ["topic", "count"]
                        && pub_count_choices
                            .iter()
                            .any(|(t, c)| Some(*t) == topic && Some(*c) == count)
                    {
                        *v = Value::String("<one of the producer's pub_counts entries>".into());
                    }
                }
            }
            _ => {}
        }
    });
}

/// Masks the run-specific parts of `/stats?format=text`: the build named after the version on the first line
/// (Go names its toolchain, we name our build: a deliberate difference in docs/compatibility.md), start time,
/// uptime, memory figures,
/// client ports (digit for digit, so the padding stays comparable), connection ages, non-zero
/// e2e percentiles, and the map-ordered single `pub_counts` entry.
fn normalise_stats_text(text: &str, pub_count_choices: &[(&str, u64)]) -> String {
    let mut out = Vec::new();
    let mut in_memory = false;
    for line in text.split('\n') {
        let mut l = line.to_string();
        if l.starts_with("nsqd v1.3.0 (built w/") && l.ends_with(')') {
            l = "nsqd v1.3.0 (built w/<build>)".into();
        } else if l.starts_with("start_time ") {
            l = "start_time <time>".into();
        } else if l.starts_with("uptime ") {
            l = "uptime <duration>".into();
        }
        if l == "Memory:" {
            in_memory = true;
        } else if l.is_empty() {
            in_memory = false;
        } else if in_memory {
            if let Some((name, _)) = l.split_once('\t') {
                l = format!("{name}\t<n>");
            }
        }
        if let Some(pos) = l.find("e2e%: ") {
            let (head, values) = l.split_at(pos + "e2e%: ".len());
            let masked: Vec<&str> = values
                .split(", ")
                .map(|t| {
                    if t.is_empty() || t == "0.0ns" {
                        t
                    } else {
                        "<d>"
                    }
                })
                .collect();
            l = format!("{head}{}", masked.join(", "));
        }
        if let Some(pos) = l.find("connected: ") {
            let start = pos + "connected: ".len();
            let end = l[start..].find(' ').map_or(l.len(), |e| start + e);
            l.replace_range(start..end, "<d>");
        }
        if let Some(bracket) = l.find("[V2 ") {
            if let Some(colon) = l[bracket..].find(':').map(|c| bracket + c + 1) {
                let digits = l[colon..].bytes().take_while(u8::is_ascii_digit).count();
                l.replace_range(colon..colon + digits, &"#".repeat(digits));
            }
        }
        // Go's producer line counts the messages of the one entry it lists, so both go together.
        for (topic, count) in pub_count_choices {
            l = l.replace(
                &format!("msgs: {count:<8} topics: {topic}={count} "),
                "msgs: <n>      topics: <one pub_counts entry> ",
            );
        }
        out.push(l);
    }
    out.join("\n")
}

/// Sends raw bytes and compares everything read until the server closes.
fn check_raw(nsqd: &Nsqd, send_hex: &str, recv_hex: &str) -> Result<Vec<String>> {
    let want = decode_hex(recv_hex)?;
    let got = http::raw_exchange(
        nsqd.http_addr(),
        &decode_hex(send_hex)?,
        Duration::from_secs(5),
    )?;
    if want == got {
        Ok(Vec::new())
    } else {
        Ok(vec![format!(
            "raw reply {:?}, expected {:?}",
            render_text(&got),
            render_text(&want)
        )])
    }
}

/// Reproduces the TCP clients behind a `/stats` snapshot; returns connections to keep open.
fn run_setup(setup: Setup, nsqd: &Nsqd) -> Result<Vec<FrameConn>> {
    let addr = nsqd.tcp_addr();
    match setup {
        Setup::MainClients => main_clients(addr),
        Setup::MpubZeroMessages => {
            let mut conn = FrameConn::connect(addr)?;
            conn.send(wire::MAGIC_V2)?;
            conn.send(&wire::command_with_body(
                "MPUB mpub_zero_topic",
                &0u32.to_be_bytes(),
            ))?;
            let frame = conn.expect_frame(Duration::from_secs(5))?;
            ensure!(
                frame.frame_type == FRAME_ERROR,
                "MPUB with count 0 answered {:?}",
                render_text(&frame.data)
            );
            Ok(Vec::new())
        }
        Setup::NoE2eClient => {
            let mut conn = FrameConn::connect(addr)?;
            conn.send(wire::MAGIC_V2)?;
            conn.send(&wire::command_with_body(
                "IDENTIFY",
                br#"{"feature_negotiation":true}"#,
            ))?;
            let frame = conn.expect_frame(Duration::from_secs(5))?;
            ensure!(
                frame.frame_type == FRAME_RESPONSE && frame.data.starts_with(b"{"),
                "IDENTIFY answered {:?}",
                render_text(&frame.data)
            );
            conn.send(&wire::command("SUB t1 c1"))?;
            conn.expect_ok("SUB t1 c1")?;
            conn.send(&wire::command("RDY 1"))?;
            conn.send(&wire::command_with_body("PUB t1", b"x"))?;
            // The PUB's OK and the delivery may come in either order.
            let mut ok = false;
            let mut message = None;
            while !(ok && message.is_some()) {
                let frame = conn.expect_frame(Duration::from_secs(5))?;
                match frame.frame_type {
                    FRAME_RESPONSE if frame.data == b"OK" => ok = true,
                    FRAME_MESSAGE => message = Message::parse(&frame.data),
                    _ => bail!("unexpected frame {:?}", render_text(&frame.data)),
                }
            }
            let message = message.context("short message frame")?;
            conn.send(&wire::command(&format!("FIN {}", message.id_text())))?;
            // FIN has no reply; give it a moment to be processed before the snapshot.
            std::thread::sleep(Duration::from_millis(100));
            Ok(vec![conn])
        }
    }
}

/// The `stats_json` description: producer-1 publishes 1 message to alpha and 3 to beta (PUB and
/// MPUB); consumer-1 (msg_timeout 3000) on alpha/ch1 does RDY 2, FIN of the 1st, REQ of the 2nd
/// with 30 s, FIN of the 3rd, RDY 1, lets the 4th time out, and keeps the next one in flight.
/// Body lengths match the recorded `message_bytes` (alpha 51 in total, beta 27).
fn main_clients(addr: SocketAddr) -> Result<Vec<FrameConn>> {
    let mut producer = FrameConn::connect(addr)?;
    producer.send(wire::MAGIC_V2)?;
    producer.send(&wire::command_with_body(
        "IDENTIFY",
        br#"{"client_id":"producer-1","hostname":"producer-host","user_agent":"golden-producer/1.0"}"#,
    ))?;
    producer.expect_ok("producer IDENTIFY")?;
    producer.send(&wire::command_with_body("PUB alpha", b"from-producer-1"))?;
    producer.expect_ok("producer PUB alpha")?;
    producer.send(&wire::command_with_body("PUB beta", b"beta-pub1"))?;
    producer.expect_ok("producer PUB beta")?;
    producer.send(&wire::command_with_body(
        "MPUB beta",
        &wire::mpub_body(&[b"beta-mp-1", b"beta-mp-2"]),
    ))?;
    producer.expect_ok("producer MPUB beta")?;

    let mut consumer = FrameConn::connect(addr)?;
    consumer.send(wire::MAGIC_V2)?;
    consumer.send(&wire::command_with_body(
        "IDENTIFY",
        br#"{"client_id":"consumer-1","hostname":"consumer-host","user_agent":"golden-consumer/1.0","msg_timeout":3000}"#,
    ))?;
    consumer.expect_ok("consumer IDENTIFY")?;
    consumer.send(&wire::command("SUB alpha ch1"))?;
    consumer.expect_ok("consumer SUB")?;
    consumer.send(&wire::command("RDY 2"))?;
    let wait = Duration::from_secs(5);
    let first = expect_body(&mut consumer, wait, "hello-1", 1)?;
    let second = expect_body(&mut consumer, wait, "m-a", 1)?;
    consumer.send(&wire::command(&format!("FIN {}", first.id_text())))?;
    consumer.send(&wire::command(&format!("REQ {} 30000", second.id_text())))?;
    let third = expect_body(&mut consumer, wait, "m-b", 1)?;
    let _fourth = expect_body(&mut consumer, wait, "m-c", 1)?;
    // FIN and RDY 1 in one write: sent apart, the FIN could free a slot under the old RDY 2 and let
    // bin-1 out before RDY 1 arrives (Go races the same way; the capture did not hit it).
    let mut fin_then_rdy = wire::command(&format!("FIN {}", third.id_text()));
    fin_then_rdy.extend(wire::command("RDY 1"));
    consumer.send(&fin_then_rdy)?;
    // m-c times out after 3 s and goes back to the queue; the next delivery is bin-1.
    expect_body(&mut consumer, Duration::from_secs(12), "bin-1", 1)?;
    Ok(vec![producer, consumer])
}

fn expect_body(
    conn: &mut FrameConn,
    timeout: Duration,
    body: &str,
    attempts: u16,
) -> Result<Message> {
    let m = conn.expect_message(timeout)?;
    ensure!(
        m.body == body.as_bytes() && m.attempts == attempts,
        "expected message {body:?} (attempts {attempts}), got {:?} (attempts {})",
        render_text(&m.body),
        m.attempts
    );
    Ok(m)
}

fn short(bytes: &[u8]) -> String {
    let text = render_text(bytes);
    if text.chars().count() > 300 {
        format!("{}...", text.chars().take(300).collect::<String>())
    } else {
        text
    }
}

/// The differing lines of two texts, for readable failure messages.
fn line_diff(want: &str, got: &str) -> String {
    let want_lines: Vec<&str> = want.split('\n').collect();
    let got_lines: Vec<&str> = got.split('\n').collect();
    let mut out = Vec::new();
    for i in 0..want_lines.len().max(got_lines.len()) {
        let (w, g) = (want_lines.get(i), got_lines.get(i));
        if w != g {
            out.push(format!(
                "      line {}: expected {:?}\n              got {:?}",
                i + 1,
                w.copied().unwrap_or("<none>"),
                g.copied().unwrap_or("<none>")
            ));
        }
        if out.len() >= 12 {
            out.push("      ...".into());
            break;
        }
    }
    out.join("\n")
}

#[test]
fn stats_text_normalisation_masks_only_run_specific_parts() {
    let text = "nsqd v1.3.0 (built w/go1.19.8)\nstart_time 2026-11-21T16:09:21Z\nuptime 7.5s\n\nMemory:\n   heap_objects             \t3537\n\nTopics:\n   [alpha          ] depth: 0     be-depth: 0     msgs: 8        e2e%: 3.5s, 0.0ns\n        [V2 consumer-host:60530 golden-consumer/1.0] state: 3 connected: 5s\n   [V2 producer-host:60192 golden-producer/1.0] msgs: 3        topics: beta=3 connected: 7s\n";
    let n = normalise_stats_text(text, MAIN_PUB_COUNT_CHOICES);
    assert!(n.contains("start_time <time>\nuptime <duration>"), "{n}");
    assert!(n.contains("heap_objects             \t<n>"), "{n}");
    assert!(n.contains("e2e%: <d>, 0.0ns"), "{n}");
    assert!(
        n.contains("[V2 consumer-host:##### golden-consumer/1.0] state: 3 connected: <d>"),
        "{n}"
    );
    assert!(
        n.contains("msgs: <n>      topics: <one pub_counts entry> connected: <d>"),
        "{n}"
    );
    assert!(n.contains("msgs: 8 "), "{n}");
    assert_eq!(normalise_stats_text(text, &[]).matches("beta=3").count(), 1);
}
