//! Replays the golden captures of feature negotiation against our nsqd: the TCP transcripts that continue
//! inside TLS or a snappy/deflate stream, the ones that need `--tls-required` or an auth server, and the
//! `tls`, `tls_required` and `auth` instances of `http/nsqd.json`.
//!
//! The plain replays (`golden_tcp.rs`, `golden_http.rs`) leave these to this file; which ones is decided by
//! [`nsq_tests::negotiation`]. The replay follows the client Go's capture used:
//!
//! - After an IDENTIFY JSON reply that enables snappy or deflate, both directions are compressed from the
//!   next byte on. Compressed `send` steps are written as Go's client wrote them (`send_hex` verbatim); what
//!   comes back is decoded with `nsq_protocol::compress` and compared frame by frame with Go's decoded
//!   frames. The compressed bytes themselves are compared only where Go's were snappy uncompressed chunks
//!   (our deflate encoder is not Go's, but an uncompressed snappy chunk has one possible encoding).
//! - After an IDENTIFY JSON reply with `tls_v1: true`, the client does the TLS handshake (trusting the test
//!   CA in `tests/certs/`) and later steps are plaintext inside TLS.
//! - For AUTH captures a test auth server answers each secret as recorded, and the requests our nsqd sent it
//!   are compared with Go's: method, path and query, header names and values in order (Host names our
//!   port), and body.
//!
//! Frames are compared by type and data; JSON responses must be the same JSON and the same bytes. Whether
//! the server closed the connection is checked per window. Timing is not judged here.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::BytesMut;
use nsq_protocol::compress::{Codec, Decoder};
use nsq_tests::authserver::{AuthScript, AuthServer};
use nsq_tests::golden::{
    describe, render_text, HttpGolden, HttpResponseGolden, Step, StepKind, Transcript,
};
use nsq_tests::http::{self, HttpResponse};
use nsq_tests::json_diff::{diff, type_placeholder, walk_mut};
use nsq_tests::negotiation::{
    replayed_by_negotiation_suite, resolve_flags, FlagValues, NEGOTIATION_HTTP_INSTANCES,
};
use nsq_tests::transport::{certs_dir, client_config, https_raw_request, Transport};
use nsq_tests::wire::{self, Event, Frame, Message, FRAME_MESSAGE, FRAME_RESPONSE};
use nsq_tests::{golden_dir, Nsqd};
use rustls::ClientConfig;
use serde_json::Value;

/// The transcripts this file must find among the captures. The rule in `nsq_tests::negotiation` picks
/// them; listing them here makes a change in the golden data or in the rule visible.
const EXPECTED_TRANSCRIPTS: &[&str] = &[
    "auth_after_sub",
    "auth_empty_secret",
    "auth_identify_auth_required",
    "auth_ok_pub_sub",
    "auth_post_method",
    "auth_pub_before_auth",
    "auth_pub_channel_regex_must_match_empty",
    "auth_secret_badperm",
    "auth_secret_denied",
    "auth_secret_empty",
    "auth_secret_zerottl",
    "auth_sub_without_subscribe_permission",
    "auth_twice",
    "auth_unauthorized_topic",
    "identify_deflate",
    "identify_snappy",
    "tls_identify_upgrade",
    "tls_required_nop_before_tls",
    "tls_required_pub_before_tls",
];

/// How long to listen in a window the capture recorded without a length (the TLS windows).
const DEFAULT_LISTEN: Duration = Duration::from_millis(400);
/// Extra patience for expected frames on a loaded machine.
const SLACK: Duration = Duration::from_millis(2000);

/// The `tls_cipher_suite` names Go's nsqd gives the three TLS 1.3 suites: it knows no names for them and
/// prints `Unknown <id>`. Go's client picked 4865 (AES-128-GCM); any of the three is a correct TLS 1.3
/// answer as long as it is in this format.
const TLS13_SUITE_NAMES: &[&str] = &["Unknown 4865", "Unknown 4866", "Unknown 4867"];

fn load_transcripts() -> Vec<Transcript> {
    let dir = golden_dir().join("tcp");
    Transcript::load_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot load transcripts from {}: {e:#}", dir.display()))
        .into_iter()
        .filter(replayed_by_negotiation_suite)
        .collect()
}

fn load_http() -> HttpGolden {
    let path = golden_dir().join("http").join("nsqd.json");
    HttpGolden::load(&path).unwrap_or_else(|e| panic!("cannot load {}: {e:#}", path.display()))
}

fn tls_config() -> Arc<ClientConfig> {
    client_config(&certs_dir().join("ca.pem"))
        .unwrap_or_else(|e| panic!("cannot build the TLS client configuration: {e:#}"))
}

fn cert_and_key() -> (String, String) {
    let dir = certs_dir();
    (
        dir.join("server.pem").display().to_string(),
        dir.join("server.key").display().to_string(),
    )
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts nsqd with a capture's flags, the placeholders filled in (a fresh HTTPS port per attempt, because
/// another process may take a probed port before nsqd binds it). Returns the HTTPS port when there is one.
fn start_nsqd(flags: &[String], auth: Option<SocketAddr>) -> Result<(Nsqd, Option<u16>)> {
    let mut last = None;
    for _ in 0..3 {
        let https_port = free_port()?;
        let values = FlagValues {
            tls_cert_and_key: Some(cert_and_key()),
            https_port: Some(https_port),
            auth_server: auth,
        };
        let extra = resolve_flags(flags, &values)?;
        let uses_https = extra.iter().any(|f| f.starts_with("--https-address="));
        match Nsqd::start(&extra) {
            Ok(nsqd) => return Ok((nsqd, uses_https.then_some(https_port))),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("nsqd never started")))
}

#[test]
fn the_suite_covers_the_negotiation_captures() {
    let transcripts = load_transcripts();
    let mut names: Vec<&str> = transcripts.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, EXPECTED_TRANSCRIPTS);
    let auth = Some(SocketAddr::from(([127, 0, 0, 1], 1)));
    let values = FlagValues {
        tls_cert_and_key: Some(cert_and_key()),
        https_port: Some(1),
        auth_server: auth,
    };
    for t in &transcripts {
        resolve_flags(&t.daemon_flags, &values)
            .unwrap_or_else(|e| panic!("{}: flags do not resolve: {e:#}", t.name));
        let script = AuthScript::load(&transcript_path(&t.name)).unwrap();
        let needs_auth = t
            .daemon_flags
            .iter()
            .any(|f| f.starts_with("--auth-http-address="));
        assert_eq!(
            needs_auth,
            !script.auth_server_responses_by_secret.is_empty(),
            "{}: an auth capture must record its auth server's answers",
            t.name
        );
    }
    let golden = load_http();
    for instance in NEGOTIATION_HTTP_INSTANCES {
        let flags = golden.instance_flags(instance).unwrap();
        resolve_flags(&flags, &values)
            .unwrap_or_else(|e| panic!("instance {instance}: flags do not resolve: {e:#}"));
    }
    for path in ["ca.pem", "server.pem", "server.key"] {
        assert!(
            certs_dir().join(path).is_file(),
            "missing test certificate file tests/certs/{path}"
        );
    }
}

fn transcript_path(name: &str) -> std::path::PathBuf {
    golden_dir().join("tcp").join(format!("{name}.json"))
}

#[test]
fn golden_negotiation_transcripts() {
    let transcripts = load_transcripts();
    assert!(!transcripts.is_empty(), "no negotiation transcripts found");
    let config = tls_config();
    let jobs: usize = std::env::var("NSQ_GOLDEN_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<ReplayResult>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(t) = transcripts.get(i) else { break };
                let started = Instant::now();
                let (problems, info) = match replay(t, &config) {
                    Ok(outcome) => outcome,
                    Err(e) => (vec![format!("harness error: {e:#}")], String::new()),
                };
                results
                    .lock()
                    .unwrap()
                    .push((t.name.clone(), problems, info, started.elapsed()));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut failures = Vec::new();
    for (name, problems, info, took) in &results {
        let info = if info.is_empty() {
            String::new()
        } else {
            format!(" [{info}]")
        };
        if problems.is_empty() {
            println!("ok    {name} ({} ms){info}", took.as_millis());
        } else {
            println!("FAIL  {name} ({} ms){info}", took.as_millis());
            failures.push(format!("{name}:\n    {}", problems.join("\n    ")));
        }
    }
    println!(
        "{} replayed, {} passed, 0 skipped",
        results.len(),
        results.len() - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} negotiation transcripts mismatch:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}

/// One replayed transcript: its name, the differences, a note on what was negotiated, and how long it took.
type ReplayResult = (String, Vec<String>, String, Duration);

/// Checks run after an instance's exchanges, each with a name for its report line.
type ExtraChecks<'a> = &'a dyn Fn(&Nsqd, Option<u16>) -> Vec<(String, Result<Vec<String>>)>;

/// What an IDENTIFY JSON reply switched on.
#[derive(Debug, Default, Clone, Copy)]
struct Upgrade {
    tls: bool,
    codec: Option<Codec>,
}

/// Reads the upgrades an IDENTIFY feature-negotiation reply announces (none for any other frame).
fn upgrade_of(frame: &Frame) -> Upgrade {
    if frame.frame_type != FRAME_RESPONSE || frame.data.first() != Some(&b'{') {
        return Upgrade::default();
    }
    let Ok(json) = serde_json::from_slice::<Value>(&frame.data) else {
        return Upgrade::default();
    };
    let on = |key: &str| json.get(key).and_then(Value::as_bool) == Some(true);
    let codec = if on("snappy") {
        Some(Codec::Snappy)
    } else if on("deflate") {
        let level = json
            .get("deflate_level")
            .and_then(Value::as_u64)
            .unwrap_or(6);
        Some(Codec::Deflate {
            level: u32::try_from(level).unwrap_or(6),
        })
    } else {
        None
    };
    Upgrade {
        tls: on("tls_v1"),
        codec,
    }
}

/// Go's side of the conversation, decoded with the same rule the client follows: plain frames until an
/// IDENTIFY reply turns compression on, then one decoder for the rest of the connection.
#[derive(Debug, Default)]
struct GoldenStream {
    plain: Vec<u8>,
    decoder: Option<Decoder>,
    codec: Option<Codec>,
}

/// Go's frames of one window, and the compressed bytes that carried them.
struct GoldenWindow {
    frames: Vec<Frame>,
    compressed: Vec<u8>,
    /// Whether `compressed` is snappy.
    snappy: bool,
}

impl GoldenStream {
    fn window(&mut self, bytes: &[u8]) -> Result<GoldenWindow> {
        let mut frames = Vec::new();
        let mut compressed = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() && self.decoder.is_none() {
            let (frame, used) = take_frame(rest)?.context("Go's plain bytes end inside a frame")?;
            rest = &rest[used..];
            if let Some(codec) = upgrade_of(&frame).codec {
                self.decoder = Some(Decoder::new(codec));
                self.codec = Some(codec);
            }
            frames.push(frame);
        }
        if let Some(decoder) = &mut self.decoder {
            compressed.extend_from_slice(rest);
            let mut input = BytesMut::from(rest);
            let mut out = BytesMut::new();
            while decoder
                .decode(&mut input, &mut out, 64 * 1024)
                .context("decoding Go's compressed bytes")?
                == 64 * 1024
            {}
            self.plain.extend_from_slice(&out);
            while let Some((frame, used)) = take_frame(&self.plain)? {
                self.plain.drain(..used);
                frames.push(frame);
            }
        }
        Ok(GoldenWindow {
            frames,
            compressed,
            snappy: self.codec == Some(Codec::Snappy),
        })
    }
}

fn take_frame(bytes: &[u8]) -> Result<Option<(Frame, usize)>> {
    if bytes.len() < 4 {
        return Ok(None);
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if bytes.len() < 4 + size {
        return Ok(None);
    }
    let frames = wire::split_frames(&bytes[..4 + size])?;
    let frame = frames.into_iter().next().context("empty frame")?;
    Ok(Some((frame, 4 + size)))
}

/// Whether every chunk of a snappy framing-format byte string is the stream identifier or an
/// uncompressed data chunk: such bytes have exactly one correct encoding.
fn snappy_only_uncompressed(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = usize::from(rest[1]) | usize::from(rest[2]) << 8 | usize::from(rest[3]) << 16;
        if !matches!(rest[0], 0xff | 0x01) || rest.len() < 4 + len {
            return false;
        }
        rest = &rest[4 + len..];
    }
    rest.is_empty()
}

/// Replays one transcript; returns the differences and a note on what was negotiated.
fn replay(t: &Transcript, config: &Arc<ClientConfig>) -> Result<(Vec<String>, String)> {
    let script = AuthScript::load(&transcript_path(&t.name))?;
    let auth = if script.auth_server_responses_by_secret.is_empty() {
        None
    } else {
        Some(AuthServer::start(
            script.auth_server_responses_by_secret.clone(),
        )?)
    };
    let (nsqd, _) = start_nsqd(&t.daemon_flags, auth.as_ref().map(AuthServer::addr))?;
    let mut conn = Transport::connect(nsqd.tcp_addr())?;
    let mut problems = Vec::new();
    let mut info = String::new();
    let mut golden = GoldenStream::default();
    let mut tls_pending = false;
    let mut window_index = 0;
    let mut last_closed_after = false;
    for step in &t.steps {
        if tls_pending {
            tls_pending = false;
            let negotiated = conn
                .start_tls(Arc::clone(config), "127.0.0.1")
                .context("TLS handshake after IDENTIFY")?;
            info = format!("{} {}", negotiated.version, negotiated.cipher_suite);
        }
        let transport = step.transport.as_deref();
        match step.kind() {
            StepKind::Note => {}
            StepKind::Send => {
                let layer_ok = match transport {
                    Some("tls") => conn.is_tls(),
                    Some("snappy" | "deflate") => conn.is_compressed(),
                    _ => !conn.is_tls() && !conn.is_compressed(),
                };
                if !layer_ok {
                    problems.push(format!(
                        "Go sent {:?} with transport {transport:?}, but our connection is {}",
                        step.send_text.as_deref().unwrap_or_default(),
                        describe_layers(&conn)
                    ));
                    break;
                }
                if let Err(e) = conn.send_raw(&step.send_bytes()?) {
                    problems.push(format!(
                        "sending {:?} failed: {e:#}",
                        step.send_text.as_deref().unwrap_or_default()
                    ));
                    break;
                }
            }
            StepKind::Recv => {
                let expected = golden.window(&step.recv_bytes()?)?;
                let upgrade = window(
                    &mut conn,
                    step,
                    &expected,
                    &format!("window {window_index}"),
                    &mut problems,
                )?;
                tls_pending = upgrade.tls;
                last_closed_after = step.closed_after.unwrap_or(false);
                window_index += 1;
                if conn.is_closed() && !last_closed_after {
                    break;
                }
            }
        }
    }
    if !last_closed_after && !conn.is_closed() {
        match conn.next_event(Instant::now() + Duration::from_millis(200))? {
            Event::Frame(f) => problems.push(format!(
                "after the last window: unexpected {}",
                describe(&f.frame)
            )),
            Event::Closed { .. } => {
                problems.push("after the last window: the server closed the connection".into())
            }
            Event::Timeout => {}
        }
    }
    if let Some(server) = &auth {
        problems.extend(compare_auth_requests(&script, server));
    }
    if !problems.is_empty() {
        problems.push(format!("nsqd output (tail):\n{}", nsqd.log_tail()));
    }
    Ok((problems, info))
}

fn describe_layers(conn: &Transport) -> &'static str {
    match (conn.is_tls(), conn.is_compressed()) {
        (false, false) => "plain",
        (true, false) => "inside TLS",
        (false, true) => "compressed",
        (true, true) => "compressed inside TLS",
    }
}

/// Checks one recv window: the frames, the compressed bytes where they have one encoding, and the close.
/// Turns compression on as soon as an IDENTIFY reply announces it, and reports a TLS upgrade to the
/// caller (the handshake comes after the window, as in the capture).
fn window(
    conn: &mut Transport,
    step: &Step,
    expected: &GoldenWindow,
    label: &str,
    problems: &mut Vec<String>,
) -> Result<Upgrade> {
    let start = Instant::now();
    let listen = step
        .listened_ms
        .map_or(DEFAULT_LISTEN, Duration::from_millis);
    let closed_after = step.closed_after.unwrap_or(false);
    let mut upgrade = Upgrade::default();
    let mut got = Vec::new();
    let mut closed = conn.is_closed();
    let deadline = start + listen + SLACK;
    while got.len() < expected.frames.len() {
        match conn.next_event(deadline) {
            Ok(Event::Frame(f)) => {
                let seen = upgrade_of(&f.frame);
                if let Some(codec) = seen.codec {
                    conn.start_compression(codec)?;
                }
                upgrade.tls |= seen.tls;
                got.push(f.frame);
            }
            Ok(Event::Closed { .. }) => {
                closed = true;
                break;
            }
            Ok(Event::Timeout) => break,
            Err(e) => {
                problems.push(format!("{label}: {e:#}"));
                closed = true;
                break;
            }
        }
    }
    for (i, want) in expected.frames.iter().enumerate() {
        match got.get(i) {
            Some(g) => {
                if let Some(problem) = compare_frame(want, g) {
                    problems.push(format!("{label} frame {i}: {problem}"));
                }
            }
            None => problems.push(format!(
                "{label} frame {i}: expected {} but {}",
                describe(want),
                if closed {
                    "the connection was closed"
                } else {
                    "nothing arrived"
                }
            )),
        }
    }

    if closed_after {
        if !closed {
            loop {
                match conn.next_event(start + listen + SLACK) {
                    Ok(Event::Frame(f)) => {
                        problems.push(format!("{label}: unexpected extra {}", describe(&f.frame)))
                    }
                    Ok(Event::Closed { .. }) | Err(_) => break,
                    Ok(Event::Timeout) => {
                        problems.push(format!("{label}: the server did not close the connection"));
                        break;
                    }
                }
            }
        }
    } else if closed {
        problems.push(format!(
            "{label}: the server closed the connection, Go kept it open"
        ));
    } else if expected.frames.is_empty() {
        match conn.next_event(start + listen)? {
            Event::Frame(f) => problems.push(format!(
                "{label}: expected nothing, got {}",
                describe(&f.frame)
            )),
            Event::Closed { .. } => problems.push(format!(
                "{label}: the server closed the connection, Go kept it open"
            )),
            Event::Timeout => {}
        }
    }

    // Our compressed bytes of this window must equal Go's where Go's have only one possible encoding.
    if conn.is_compressed() {
        let ours = conn.take_compressed_log();
        if expected.snappy
            && !expected.compressed.is_empty()
            && snappy_only_uncompressed(&expected.compressed)
            && ours != expected.compressed
        {
            problems.push(format!(
                "{label}: snappy bytes {:?}, Go sent {:?} (uncompressed chunks have one encoding)",
                render_text(&ours),
                render_text(&expected.compressed)
            ));
        }
    }
    Ok(upgrade)
}

/// Compares one frame; returns a description of the difference.
fn compare_frame(expected: &Frame, actual: &Frame) -> Option<String> {
    if expected.frame_type != actual.frame_type {
        return Some(format!(
            "expected {}, got {}",
            describe(expected),
            describe(actual)
        ));
    }
    if expected.frame_type == FRAME_MESSAGE {
        let want = Message::parse(&expected.data)?;
        let Some(got) = Message::parse(&actual.data) else {
            return Some("message frame too short".into());
        };
        if (want.attempts, &want.body) != (got.attempts, &got.body) {
            return Some(format!(
                "expected {}, got {}",
                describe(expected),
                describe(actual)
            ));
        }
        return None;
    }
    if expected.frame_type == FRAME_RESPONSE && expected.data.first() == Some(&b'{') {
        let want: Value = serde_json::from_slice(&expected.data).ok()?;
        let Ok(got) = serde_json::from_slice::<Value>(&actual.data) else {
            return Some(format!(
                "expected JSON {:?}, got {:?}",
                render_text(&expected.data),
                render_text(&actual.data)
            ));
        };
        let diffs = diff(&want, &got);
        if !diffs.is_empty() {
            return Some(format!("JSON differs: {}", diffs.join("; ")));
        }
    }
    if expected.data != actual.data {
        return Some(format!(
            "expected {:?}, got {:?}",
            render_text(&expected.data),
            render_text(&actual.data)
        ));
    }
    None
}

/// Compares the requests our nsqd sent the auth server with the ones Go's sent.
fn compare_auth_requests(script: &AuthScript, server: &AuthServer) -> Vec<String> {
    let mut problems = Vec::new();
    let want = script.auth_server_received.clone().unwrap_or_default();
    let got = server.received();
    if want.len() != got.len() {
        problems.push(format!(
            "the auth server received {} requests, Go's received {}: {:?}",
            got.len(),
            want.len(),
            got.iter()
                .map(|r| format!("{} {}", r.method, r.target))
                .collect::<Vec<_>>()
        ));
    }
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        let label = format!("auth request {i}");
        if (w.method.as_str(), w.path.as_str()) != (g.method.as_str(), g.target.as_str()) {
            problems.push(format!(
                "{label}: {} {}, expected {} {}",
                g.method, g.target, w.method, w.path
            ));
        }
        let want_headers: Vec<(String, String)> = w
            .headers
            .iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case("Host") {
                    (k.clone(), server.addr().to_string())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        if want_headers != g.headers {
            problems.push(format!(
                "{label}: headers {:?}, expected {want_headers:?}",
                g.headers
            ));
        }
        let want_body = w.body_text.clone().unwrap_or_default();
        if want_body.as_bytes() != g.body.as_slice() {
            problems.push(format!(
                "{label}: body {:?}, expected {want_body:?}",
                render_text(&g.body)
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------------------
// The HTTP instances.

/// Runs the exchanges of one instance after `setup` (which returns connections to keep open), printing a
/// line per exchange, and fails on any mismatch.
fn run_http_instance(
    instance: &str,
    auth: Option<&AuthServer>,
    setup: &dyn Fn(&Nsqd) -> Result<Vec<Transport>>,
    extra_checks: ExtraChecks<'_>,
) {
    let golden = load_http();
    let flags = golden
        .instance_flags(instance)
        .unwrap_or_else(|e| panic!("instance {instance}: {e:#}"));
    let (nsqd, https_port) = start_nsqd(&flags, auth.map(AuthServer::addr))
        .unwrap_or_else(|e| panic!("nsqd cannot start: {e:#}"));
    let clients = setup(&nsqd).unwrap_or_else(|e| {
        panic!(
            "instance {instance}: setup failed: {e:#}\nnsqd output:\n{}",
            nsqd.log_tail()
        )
    });
    let mut outcomes = Vec::new();
    for ex in golden
        .exchanges
        .iter()
        .filter(|e| e.instance.as_deref() == Some(instance))
    {
        let (Some(request), Some(response)) = (&ex.request, &ex.response) else {
            continue;
        };
        let outcome = (|| -> Result<Vec<String>> {
            let addr = nsqd.http_addr();
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
            let actual = http::exchange(
                addr,
                &request.method,
                &request.target,
                &headers,
                &request.body()?,
            )?;
            Ok(compare_http(https_port, response, &actual))
        })();
        outcomes.push((ex.name.clone(), outcome));
    }
    outcomes.extend(extra_checks(&nsqd, https_port));
    drop(clients);
    let mut failures = Vec::new();
    for (name, outcome) in &outcomes {
        match outcome {
            Ok(problems) if problems.is_empty() => println!("ok   {instance}/{name}"),
            Ok(problems) => {
                println!("FAIL {instance}/{name}");
                failures.push(format!("{name}:\n    {}", problems.join("\n    ")));
            }
            Err(e) => {
                println!("FAIL {instance}/{name}");
                failures.push(format!("{name}: exchange failed: {e:#}"));
            }
        }
    }
    println!(
        "{instance}: {} exchanges, {} mismatching",
        outcomes.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} exchanges of instance {instance} mismatch:\n{}\n--- nsqd output (tail) ---\n{}",
        failures.len(),
        outcomes.len(),
        failures.join("\n"),
        nsqd.log_tail()
    );
}

/// Compares a response with Go's: status line, header names in order, header values except `Date` (and
/// `Content-Length` of bodies with run-specific values), and the body as JSON after masking, or as text
/// with the HTTPS port put in.
fn compare_http(
    https_port: Option<u16>,
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
    let mut want_text = golden.body_text.clone().unwrap_or_default();
    // The TLS_REQUIRED body names the HTTPS port, ours instead of Go's.
    if let (Some(port), Some(go_port)) = (
        https_port,
        golden
            .body_json
            .as_ref()
            .and_then(|j| j.get("https_port"))
            .and_then(Value::as_u64),
    ) {
        want_text = want_text.replace(
            &format!("\"https_port\": {go_port}"),
            &format!("\"https_port\": {port}"),
        );
    }
    let masked_json = golden.body_json.is_some() && want_text.contains("\"start_time\"");
    for (name, want) in &golden.headers {
        if name == "Date" || (name == "Content-Length" && masked_json) {
            continue;
        }
        let want = if name == "Content-Length" {
            want_text.len().to_string()
        } else {
            want.clone()
        };
        let got = actual.header(name);
        if got != Some(want.as_str()) {
            problems.push(format!("header {name}: {got:?}, expected {want:?}"));
        }
    }
    if masked_json {
        let mut want: Value = match serde_json::from_str(&want_text) {
            Ok(v) => v,
            Err(e) => return vec![format!("golden body is not JSON: {e}")],
        };
        let mut got: Value = match serde_json::from_slice(&actual.body) {
            Ok(v) => v,
            Err(_) => {
                problems.push(format!("body is not JSON: {:?}", render_text(&actual.body)));
                return problems;
            }
        };
        normalise_stats(&mut want);
        normalise_stats(&mut got);
        problems.extend(diff(&want, &got).into_iter().map(|d| format!("body {d}")));
    } else if actual.body != want_text.as_bytes() {
        problems.push(format!(
            "body {:?}, expected {:?}",
            render_text(&actual.body),
            want_text
        ));
    }
    problems
}

/// Masks the run-specific values of a `/stats` body: times, client ports, and which TLS 1.3 suite
/// was negotiated (see [`TLS13_SUITE_NAMES`]).
fn normalise_stats(value: &mut Value) {
    walk_mut(value, &mut |path, v| {
        let leaf = path.rsplit('.').next().unwrap_or(path);
        match leaf {
            "start_time" | "connect_ts" => *v = type_placeholder(v),
            "remote_address" => {
                if let Some(text) = v.as_str() {
                    let host = text.rsplit_once(':').map_or(text, |(h, _)| h);
                    *v = Value::String(format!("{host}:<port>"));
                }
            }
            "tls_cipher_suite" if v.as_str().is_some_and(|s| TLS13_SUITE_NAMES.contains(&s)) => {
                *v = Value::String("<a TLS 1.3 suite in Go's format>".into());
            }
            _ => {}
        }
    });
}

/// Connects, sends the magic and an IDENTIFY, and returns the connection with the IDENTIFY reply.
fn identify(nsqd: &Nsqd, body: &str) -> Result<(Transport, Frame)> {
    let mut conn = Transport::connect(nsqd.tcp_addr())?;
    conn.send(wire::MAGIC_V2)?;
    conn.send(&wire::command_with_body("IDENTIFY", body.as_bytes()))?;
    let reply = conn.expect_frame(Duration::from_secs(5))?;
    ensure!(
        reply.frame_type == FRAME_RESPONSE,
        "IDENTIFY answered {}",
        describe(&reply)
    );
    Ok((conn, reply))
}

/// PUBs one message and SUBscribes without RDY on `conn`.
fn pub_and_sub(conn: &mut Transport, topic: &str, body: &[u8]) -> Result<()> {
    conn.send(&wire::command_with_body(&format!("PUB {topic}"), body))?;
    conn.expect_ok("PUB")?;
    conn.send(&wire::command(&format!("SUB {topic} ch")))?;
    conn.expect_ok("SUB")
}

#[test]
fn golden_negotiation_http_tls() {
    let config = tls_config();
    // The `stats_json_tls_client` description: a TLS client that published and subscribed, as in the
    // tls_identify_upgrade transcript (message_bytes 8 is "over tls").
    let setup = |nsqd: &Nsqd| -> Result<Vec<Transport>> {
        let (mut conn, reply) = identify(
            nsqd,
            r#"{"client_id":"tls-client","hostname":"tls-host","feature_negotiation":true,"tls_v1":true}"#,
        )?;
        ensure!(upgrade_of(&reply).tls, "IDENTIFY did not offer TLS");
        conn.start_tls(Arc::clone(&config), "127.0.0.1")?;
        conn.expect_ok("the OK inside TLS")?;
        pub_and_sub(&mut conn, "tls_topic", b"over tls")?;
        Ok(vec![conn])
    };
    run_http_instance("tls", None, &setup, &|_, _| Vec::new());
}

#[test]
fn golden_negotiation_http_tls_required() {
    let config = tls_config();
    // Not a golden exchange: the HTTPS port the 403 names must serve the API (Go answers /ping with OK).
    let https_ping = |_: &Nsqd, port: Option<u16>| {
        let outcome = (|| -> Result<Vec<String>> {
            let port = port.context("the instance has no --https-address")?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let raw = https_raw_request(
                addr,
                Arc::clone(&config),
                format!("GET /ping HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )?;
            let text = String::from_utf8_lossy(&raw).into_owned();
            let mut problems = Vec::new();
            if !text.starts_with("HTTP/1.1 200 OK\r\n") || !text.ends_with("\r\n\r\nOK") {
                problems.push(format!("HTTPS GET /ping answered {text:?}"));
            }
            Ok(problems)
        })();
        vec![("https_ping (not captured)".to_owned(), outcome)]
    };
    run_http_instance("tls_required", None, &|_| Ok(Vec::new()), &https_ping);
}

#[test]
fn golden_negotiation_http_auth() {
    // The auth instance answered secret 'good' the way every auth capture records it.
    let script = AuthScript::load(&transcript_path("auth_ok_pub_sub")).unwrap();
    let server = AuthServer::start(script.auth_server_responses_by_secret.clone()).unwrap();
    // The `stats_json_authed_client` description: AUTH 'good', then PUB (14 bytes) and SUB, as in the
    // auth_ok_pub_sub transcript.
    let setup = |nsqd: &Nsqd| -> Result<Vec<Transport>> {
        let (mut conn, reply) = identify(
            nsqd,
            r#"{"client_id":"authed-client","hostname":"h","feature_negotiation":true}"#,
        )?;
        ensure!(
            reply.data.starts_with(b"{"),
            "IDENTIFY answered {}",
            describe(&reply)
        );
        conn.send(&wire::command_with_body("AUTH", b"good"))?;
        let auth = conn.expect_frame(Duration::from_secs(5))?;
        if !(auth.frame_type == FRAME_RESPONSE && auth.data.starts_with(b"{\"identity\"")) {
            bail!("AUTH answered {}", describe(&auth));
        }
        pub_and_sub(&mut conn, "auth_topic", b"secret message")?;
        Ok(vec![conn])
    };
    run_http_instance("auth", Some(&server), &setup, &|_, _| Vec::new());
}

#[test]
fn snappy_chunk_classification() {
    let id = [0xff, 6, 0, 0, b's', b'N', b'a', b'P', b'p', b'Y'];
    let mut uncompressed = id.to_vec();
    uncompressed.extend_from_slice(&[0x01, 5, 0, 0, 1, 2, 3, 4, b'x']);
    assert!(snappy_only_uncompressed(&uncompressed));
    let mut compressed = id.to_vec();
    compressed.extend_from_slice(&[0x00, 5, 0, 0, 1, 2, 3, 4, b'x']);
    assert!(!snappy_only_uncompressed(&compressed));
    assert!(!snappy_only_uncompressed(
        &uncompressed[..uncompressed.len() - 1]
    ));
}
