//! What our nsqd sends to nsqlookupd, compared with what Go nsqd sent in `tcp/nsqd_to_lookupd.json`.
//!
//! A recording fake lookupd written here (TCP protocol V1 answering like nsqlookupd, plus an HTTP `/channels`
//! endpoint) stands where the capture's fake stood. nsqd starts on a data directory holding the capture's
//! topics, then the capture's HTTP actions (its notes) are replayed against our nsqd, and the lines and HTTP
//! requests each one produced are compared with the capture's after normalising ports and the hostname: the
//! IDENTIFY bytes (key order, presence, values), the startup REGISTER burst and its duplicate, the lines of
//! each create and delete, the `/channels` request with its headers, and the PING 15 s after connecting.
//! A second test proves that the channels lookupd lists exist before a new topic delivers its first message.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nsq_tests::golden::{decode_hex, Transcript};
use nsq_tests::wire::{command, command_with_body, FrameConn};
use nsq_tests::{golden_dir, http, Nsqd};
use serde_json::Value;

/// Something the fake lookupd saw.
#[derive(Debug, Clone)]
enum Seen {
    /// A TCP connection was accepted.
    Connected,
    /// One command from nsqd (its line, and for IDENTIFY the size and body too).
    Tcp(Vec<u8>),
    /// nsqd closed the TCP connection.
    Closed,
    /// An HTTP request: target and headers in wire order.
    Http(String, Vec<(String, String)>),
}

type Log = Arc<Mutex<Vec<(Instant, Seen)>>>;

/// A recording stand-in for nsqlookupd.
struct FakeLookupd {
    tcp: SocketAddr,
    http: SocketAddr,
    log: Log,
}

impl FakeLookupd {
    /// Starts the listeners. `answers` maps a `/channels` request target to the channels listed and how long
    /// to wait before answering.
    fn start(answers: BTreeMap<String, (Vec<String>, Duration)>) -> Result<FakeLookupd> {
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        let http = TcpListener::bind("127.0.0.1:0")?;
        let (tcp_addr, http_addr) = (tcp.local_addr()?, http.local_addr()?);
        let log: Log = Arc::default();
        let tcp_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in tcp.incoming().flatten() {
                let log = Arc::clone(&tcp_log);
                std::thread::spawn(move || serve_v1(stream, &log, tcp_addr, http_addr));
            }
        });
        let http_log = Arc::clone(&log);
        let answers = Arc::new(answers);
        std::thread::spawn(move || {
            for stream in http.incoming().flatten() {
                let log = Arc::clone(&http_log);
                let answers = Arc::clone(&answers);
                std::thread::spawn(move || serve_http(stream, &log, &answers));
            }
        });
        Ok(FakeLookupd {
            tcp: tcp_addr,
            http: http_addr,
            log,
        })
    }

    fn seen(&self) -> Vec<(Instant, Seen)> {
        lock(&self.log).clone()
    }

    /// Waits until at least `n` records exist, then until nothing new came for `quiet`; returns them all.
    fn settle(&self, n: usize, quiet: Duration) -> Result<Vec<(Instant, Seen)>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last_len = 0;
        let mut last_change = Instant::now();
        loop {
            let len = lock(&self.log).len();
            if len != last_len {
                last_len = len;
                last_change = Instant::now();
            }
            if len >= n && last_change.elapsed() >= quiet {
                return Ok(self.seen());
            }
            ensure!(
                Instant::now() < deadline,
                "fake lookupd saw only {len} of {n} records: {:?}",
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn lock(log: &Log) -> std::sync::MutexGuard<'_, Vec<(Instant, Seen)>> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn record(log: &Log, seen: Seen) {
    lock(log).push((Instant::now(), seen));
}

/// nsqlookupd's side of protocol V1: `OK` to everything, its IDENTIFY JSON to IDENTIFY.
fn serve_v1(stream: TcpStream, log: &Log, tcp: SocketAddr, http: SocketAddr) {
    record(log, Seen::Connected);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut magic = [0u8; 4];
    if reader.read_exact(&mut magic).is_err() || &magic != b"  V1" {
        record(log, Seen::Closed);
        return;
    }
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let answer = if line == b"IDENTIFY\n" {
            let mut size = [0u8; 4];
            if reader.read_exact(&mut size).is_err() {
                break;
            }
            let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
            if reader.read_exact(&mut body).is_err() {
                break;
            }
            line.extend_from_slice(&size);
            line.extend_from_slice(&body);
            format!(
                "{{\"broadcast_address\":\"127.0.0.1\",\"hostname\":\"fake-lookupd\",\"http_port\":{},\
                 \"tcp_port\":{},\"version\":\"1.3.0\"}}",
                http.port(),
                tcp.port()
            )
        } else {
            "OK".to_owned()
        };
        record(log, Seen::Tcp(line));
        let mut out = (answer.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(answer.as_bytes());
        if writer.write_all(&out).is_err() {
            break;
        }
    }
    record(log, Seen::Closed);
}

/// nsqlookupd's `/channels`, answered from `answers` (unknown topics have no channels).
fn serve_http(stream: TcpStream, log: &Log, answers: &BTreeMap<String, (Vec<String>, Duration)>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let target = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(": ") {
            headers.push((k.to_owned(), v.to_owned()));
        }
    }
    record(log, Seen::Http(target.clone(), headers));
    let (channels, delay) = answers.get(&target).cloned().unwrap_or_default();
    std::thread::sleep(delay);
    let body = serde_json::json!({ "channels": channels }).to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nX-Nsq-Content-Type: nsq; \
         version=1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = writer.write_all(response.as_bytes());
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tcp_lines(seen: &[(Instant, Seen)]) -> Vec<String> {
    seen.iter()
        .filter_map(|(_, s)| match s {
            Seen::Tcp(b) => Some(text(b)),
            _ => None,
        })
        .collect()
}

/// An HTTP request target with its headers.
type Request = (String, Vec<(String, String)>);

fn http_requests(seen: &[(Instant, Seen)]) -> Vec<Request> {
    seen.iter()
        .filter_map(|(_, s)| match s {
            Seen::Http(t, h) => Some((t.clone(), h.clone())),
            _ => None,
        })
        .collect()
}

/// One replayable piece of the capture: an nsqd HTTP action and what Go nsqd sent because of it.
#[derive(Debug, Default)]
struct Segment {
    /// `POST /topic/create?topic=lk_t1`, or empty for the startup segment.
    action: String,
    lines: Vec<String>,
    /// `/channels` requests: target, headers, and the channels the capture's fake answered.
    requests: Vec<(Request, Vec<String>)>,
}

/// Splits the capture into its startup segment (magic and IDENTIFY excluded) and one segment per action, up
/// to the PING.
fn golden_segments(golden: &Value) -> Result<(Vec<u8>, Vec<Segment>)> {
    let mut identify = Vec::new();
    let mut segments = vec![Segment::default()];
    for step in golden["steps"].as_array().context("steps")? {
        let current = segments.last_mut().context("segment")?;
        if let Some(hex) = step["send_hex"].as_str() {
            let bytes = decode_hex(hex)?;
            if bytes.starts_with(b"IDENTIFY\n") {
                identify = bytes;
            } else if bytes != b"  V1" && bytes != b"PING\n" {
                current.lines.push(text(&bytes));
            }
        } else if let Some(req) = step.get("http_request") {
            let headers = req["headers"]
                .as_array()
                .context("headers")?
                .iter()
                .map(|h| {
                    let field = |i: usize| h[i].as_str().unwrap_or_default().to_owned();
                    (field(0), field(1))
                })
                .collect();
            let answered = step["fake_lookupd_answered"]["channels"]
                .as_array()
                .context("answered")?
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            current.requests.push((
                (
                    req["target"].as_str().context("target")?.to_owned(),
                    headers,
                ),
                answered,
            ));
        } else if let Some(note) = step["note"].as_str() {
            if let Some(rest) = note.strip_prefix("nsqd HTTP ") {
                let action = rest.split("  ").next().unwrap_or_default().to_owned();
                segments.push(Segment {
                    action,
                    ..Segment::default()
                });
            }
        }
    }
    ensure!(!identify.is_empty(), "no IDENTIFY in the capture");
    Ok((identify, segments))
}

/// Checks IDENTIFY: the size prefix, the keys in Go's order, and the values with the ports and hostname of
/// this run.
fn check_identify(ours: &[u8], golden: &[u8], nsqd: &Nsqd) -> Result<()> {
    let body = |b: &[u8]| -> Result<(u32, Value, Vec<String>)> {
        let size = u32::from_be_bytes(b[9..13].try_into()?);
        let v: Value = serde_json::from_slice(&b[13..])?;
        let keys = v.as_object().context("object")?.keys().cloned().collect();
        ensure!(size as usize == b.len() - 13, "size prefix {size} vs body");
        Ok((size, v, keys))
    };
    let (_, ov, okeys) = body(ours)?;
    let (_, gv, gkeys) = body(golden)?;
    ensure!(okeys == gkeys, "IDENTIFY keys {okeys:?}, Go sent {gkeys:?}");
    let mut want = gv.clone();
    want["tcp_port"] = nsqd.tcp_addr().port().into();
    want["http_port"] = nsqd.http_addr().port().into();
    want["hostname"] = ov["hostname"].clone();
    ensure!(
        ov["hostname"].as_str().is_some_and(|h| !h.is_empty()),
        "empty hostname"
    );
    ensure!(ov == want, "IDENTIFY {ov}, expected {want}");
    Ok(())
}

fn write_metadata(dir: &std::path::Path) -> Result<()> {
    std::fs::write(
        dir.join("nsqd.dat"),
        r#"{"topics":[{"channels":[{"name":"existing_ch","paused":false}],"name":"existing_topic","paused":false},{"channels":null,"name":"existing_empty_topic","paused":false}],"version":"1.3.0"}"#,
    )?;
    Ok(())
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

#[test]
fn nsqd_sends_what_go_nsqd_sends() -> Result<()> {
    let path = golden_dir().join("tcp").join("nsqd_to_lookupd.json");
    let golden: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    Transcript::load(&path)?; // The file is also a well-formed transcript.
    let (golden_identify, segments) = golden_segments(&golden)?;
    let answers = segments
        .iter()
        .flat_map(|s| &s.requests)
        .map(|((t, _), ch)| (t.clone(), (ch.clone(), Duration::ZERO)))
        .collect();
    let fake = FakeLookupd::start(answers)?;
    let data = tempfile::tempdir()?;
    write_metadata(data.path())?;
    let mut nsqd = Nsqd::start_on(
        data.path(),
        &[format!("--lookupd-tcp-address={}", fake.tcp)],
    )?;

    // Startup: IDENTIFY, one REGISTER per channel or empty topic, then the duplicates of the load events.
    let startup = &segments[0];
    let seen = fake.settle(2 + startup.lines.len(), Duration::from_millis(500))?;
    let connected_at = seen.first().context("no connection")?.0;
    ensure!(
        matches!(seen[0].1, Seen::Connected),
        "first record {:?}",
        seen[0].1
    );
    let lines = tcp_lines(&seen);
    let identify = match &seen[1].1 {
        Seen::Tcp(bytes) => bytes.clone(),
        other => bail!("second record {other:?}"),
    };
    check_identify(&identify, &golden_identify, &nsqd)?;
    let burst = &lines[1..];
    let first_burst = vec![
        "REGISTER existing_topic existing_ch\n".to_owned(),
        "REGISTER existing_empty_topic\n".to_owned(),
    ];
    ensure!(
        sorted(&startup.lines[..2]) == sorted(&first_burst),
        "capture's first burst changed: {:?}",
        startup.lines
    );
    ensure!(
        burst.len() == startup.lines.len(),
        "startup lines {burst:?}, Go sent {:?}",
        startup.lines
    );
    ensure!(
        sorted(&burst[..2]) == sorted(&first_burst),
        "first burst {burst:?}"
    );
    ensure!(
        sorted(&burst[2..]) == sorted(&startup.lines[2..]),
        "duplicate burst {:?}, Go sent {:?}",
        &burst[2..],
        &startup.lines[2..]
    );

    // Each action of the capture, replayed.
    for segment in &segments[1..] {
        let before = fake.seen().len();
        let (method, target) = segment.action.split_once(' ').context("action")?;
        ensure!(method == "POST", "unexpected action {}", segment.action);
        let r = http::post(nsqd.http_addr(), target, b"")?;
        ensure!(r.status == 200, "{}: {}", segment.action, r.status);
        let expected = segment.lines.len() + segment.requests.len();
        let seen = fake.settle(before + expected, Duration::from_millis(300))?;
        let new = &seen[before..];
        ensure!(
            tcp_lines(new) == segment.lines,
            "{}: sent {:?}, Go sent {:?}",
            segment.action,
            tcp_lines(new),
            segment.lines
        );
        let requests = http_requests(new);
        ensure!(
            requests.len() == segment.requests.len(),
            "{}: requests {requests:?}",
            segment.action
        );
        for ((target, headers), ((gtarget, gheaders), answered)) in
            requests.iter().zip(&segment.requests)
        {
            ensure!(target == gtarget, "{}: GET {target}", segment.action);
            let want: Vec<(String, String)> = gheaders
                .iter()
                .map(|(k, v)| {
                    let v = if k == "Host" {
                        fake.http.to_string()
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect();
            ensure!(
                *headers == want,
                "{}: headers {headers:?}, Go sent {want:?}",
                segment.action
            );
            // The listed non-ephemeral channels were created.
            let topic = target.rsplit('=').next().unwrap_or_default();
            let stats: Value = serde_json::from_slice(
                &http::get(
                    nsqd.http_addr(),
                    &format!("/stats?format=json&topic={topic}"),
                )?
                .body,
            )?;
            let have: Vec<&str> = stats["topics"][0]["channels"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["channel_name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            let want: Vec<&str> = answered
                .iter()
                .map(String::as_str)
                .filter(|c| !c.ends_with("#ephemeral"))
                .collect();
            ensure!(
                have == want,
                "{topic}: channels {have:?}, expected {want:?}"
            );
        }
    }

    // PING 15 s after connecting, and nothing else meanwhile.
    let before = fake.seen().len();
    let deadline = connected_at + Duration::from_secs(17);
    let ping_at = loop {
        let seen = fake.seen();
        if let Some((at, _)) = seen[before..]
            .iter()
            .find(|(_, s)| matches!(s, Seen::Tcp(b) if b == b"PING\n"))
        {
            break *at;
        }
        ensure!(Instant::now() < deadline, "no PING: {:?}", &seen[before..]);
        std::thread::sleep(Duration::from_millis(50));
    };
    let after = ping_at - connected_at;
    ensure!(
        after >= Duration::from_millis(14_500),
        "PING after {after:?}"
    );
    ensure!(
        tcp_lines(&fake.seen()[before..]) == ["PING\n"],
        "{:?}",
        &fake.seen()[before..]
    );

    // SIGTERM: the connection closes with nothing sent (no UNREGISTER).
    let before = fake.seen().len();
    let status = nsqd.signal_and_wait("TERM", Duration::from_secs(20))?;
    ensure!(status.success(), "exit {status}");
    let seen = fake.settle(before + 1, Duration::from_millis(200))?;
    let tail: Vec<_> = seen[before..].iter().map(|(_, s)| s.clone()).collect();
    ensure!(
        matches!(tail.as_slice(), [Seen::Closed]),
        "at exit nsqd sent {tail:?}"
    );
    Ok(())
}

/// A topic created while lookupd lists channels for it gets them before any message moves: messages
/// published by the creator and by a concurrent publisher (which lands in the unstarted topic's backlog while
/// `/channels` is slow) reach every listed channel.
#[test]
fn listed_channels_exist_before_the_first_message() -> Result<()> {
    let topic = "lk_first";
    let answers = BTreeMap::from([(
        format!("/channels?topic={topic}"),
        (
            vec![
                "pre".to_owned(),
                "pre2".to_owned(),
                "x#ephemeral".to_owned(),
            ],
            Duration::from_millis(700),
        ),
    )]);
    let fake = FakeLookupd::start(answers)?;
    let nsqd = Nsqd::start(&[format!("--lookupd-tcp-address={}", fake.tcp)])?;
    // Wait until nsqd identified (it knows lookupd's HTTP address only then).
    fake.settle(2, Duration::from_millis(200))?;

    let publish = |body: &'static str| -> Result<()> {
        let mut conn = FrameConn::connect(nsqd.tcp_addr())?;
        conn.send(b"  V2")?;
        conn.send(&command_with_body(&format!("PUB {topic}"), body.as_bytes()))?;
        conn.expect_ok("PUB")
    };
    let started = Instant::now();
    // The creating publisher waits for lookupd; its OK comes after the slow answer.
    std::thread::scope(|s| -> Result<()> {
        let creator = s.spawn(|| publish("one"));
        std::thread::sleep(Duration::from_millis(250));
        let second = s.spawn(|| publish("two"));
        second.join().unwrap()?;
        creator.join().unwrap()?;
        Ok(())
    })?;
    ensure!(
        started.elapsed() >= Duration::from_millis(600),
        "the creating PUB did not wait for /channels"
    );
    let stats: Value = serde_json::from_slice(
        &http::get(
            nsqd.http_addr(),
            &format!("/stats?format=json&topic={topic}"),
        )?
        .body,
    )?;
    let depths: Vec<(String, i64)> = stats["topics"][0]["channels"]
        .as_array()
        .context("channels")?
        .iter()
        .map(|c| {
            (
                c["channel_name"].as_str().unwrap_or_default().to_owned(),
                c["depth"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    ensure!(
        depths == [("pre".to_owned(), 2), ("pre2".to_owned(), 2)],
        "channels {depths:?}"
    );
    // Both reach a consumer of the second listed channel.
    let mut conn = FrameConn::connect(nsqd.tcp_addr())?;
    conn.send(b"  V2")?;
    conn.send(&command(&format!("SUB {topic} pre2")))?;
    conn.expect_ok("SUB")?;
    conn.send(&command("RDY 10"))?;
    let mut got = BTreeSet::new();
    for _ in 0..2 {
        let m = conn.expect_message(Duration::from_secs(5))?;
        got.insert(text(&m.body));
    }
    if got != BTreeSet::from(["one".to_owned(), "two".to_owned()]) {
        bail!("got {got:?}");
    }
    Ok(())
}
