//! Replays every golden nsqlookupd TCP transcript (`shared/golden/tcp/lookupd_*.json`) against our
//! nsqlookupd, byte for byte.
//!
//! The only values normalised are those the golden README says vary between runs: the lookupd's own ports
//! and its OS hostname inside the IDENTIFY answer (the expected JSON gets ours, keys and order unchanged,
//! then the whole frame is compared as bytes). Every recv window is checked for the exact frames, and for
//! whether the server closed the connection. Deliberate differences are listed in [`DEVIATIONS`].

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nsq_tests::golden::{render_text, StepKind, Transcript};
use nsq_tests::golden_dir;
use nsq_tests::lookupd::{Nsqlookupd, V1Conn, V1Event};
use serde_json::Value;

/// Transcripts where we answer differently from Go on purpose, with the answer we give instead.
const DEVIATIONS: &[(&str, &[u8], &str)] = &[(
    "lookupd_identify_negative_size",
    b"E_BAD_BODY IDENTIFY invalid body size -1",
    "Go's whole process panics on a negative IDENTIFY size; we answer E_BAD_BODY and close only that \
     connection (the test then checks that the daemon still serves)",
)];

/// How long to wait for each expected frame or close.
const FRAME_WAIT: Duration = Duration::from_secs(3);
/// How long to listen for unexpected bytes after a window that should leave the connection open.
const QUIET_WINDOW: Duration = Duration::from_millis(200);

fn transcripts() -> Vec<Transcript> {
    let dir = golden_dir().join("tcp");
    let all = Transcript::load_dir(&dir).unwrap_or_else(|e| panic!("{e:#}"));
    let lookupd: Vec<Transcript> = all
        .into_iter()
        .filter(|t| t.name.starts_with("lookupd_"))
        .collect();
    assert!(
        lookupd.len() >= 18,
        "expected the lookupd transcripts in {}",
        dir.display()
    );
    lookupd
}

#[test]
fn golden_lookupd_tcp_transcripts() {
    let transcripts = transcripts();
    for (name, _, _) in DEVIATIONS {
        assert!(
            transcripts.iter().any(|t| t.name == *name),
            "deviation table names unknown transcript {name}"
        );
    }
    let mut lookupd = Nsqlookupd::start(&[]).unwrap_or_else(|e| panic!("{e:#}"));
    let hostname = os_hostname();
    let mut failures = Vec::new();
    for t in &transcripts {
        assert_eq!(t.daemon, "nsqlookupd", "{}", t.name);
        let deviation = DEVIATIONS.iter().find(|(n, _, _)| *n == t.name);
        match replay(
            &lookupd,
            t,
            &hostname,
            deviation.map(|(_, answer, _)| *answer),
        ) {
            Ok(()) => match deviation {
                Some((_, _, reason)) => println!("ok*  {} (deviation: {reason})", t.name),
                None => println!("ok   {}", t.name),
            },
            Err(e) => {
                println!("FAIL {}", t.name);
                failures.push(format!("{}: {e:#}", t.name));
            }
        }
        if !lookupd.is_running() {
            failures.push(format!("{}: nsqlookupd exited", t.name));
            break;
        }
    }
    // The daemon must still be serving after every transcript, the negative-size one included.
    let mut probe = V1Conn::connect(lookupd.tcp_addr()).expect("connect after replay");
    probe.send(b"  V1").unwrap();
    if let Err(e) = probe.exchange(b"PING\n", b"OK") {
        failures.push(format!("PING after all transcripts: {e:#}"));
    }
    println!(
        "{} lookupd transcripts, {} failing",
        transcripts.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} golden lookupd transcripts mismatch:\n{}\n--- nsqlookupd output (tail) ---\n{}",
        failures.len(),
        failures.join("\n"),
        lookupd.log_tail()
    );
}

/// Replays one transcript on a fresh connection. `deviation` replaces the golden answer of a window in
/// which Go sent nothing but closed.
fn replay(
    lookupd: &Nsqlookupd,
    t: &Transcript,
    hostname: &str,
    deviation: Option<&[u8]>,
) -> Result<()> {
    let mut conn = V1Conn::connect(lookupd.tcp_addr())?;
    for (i, step) in t.steps.iter().enumerate() {
        match step.kind() {
            StepKind::Send => conn.send(&step.send_bytes()?)?,
            StepKind::Recv => {
                let mut want = split_v1(&step.recv_bytes()?)
                    .with_context(|| format!("step {i}: golden recv_hex"))?;
                for frame in &mut want {
                    *frame = expected_frame(frame, lookupd, hostname)?;
                }
                let closed_after = step.closed_after.unwrap_or(false);
                if let Some(answer) = deviation.filter(|_| want.is_empty() && closed_after) {
                    want.push(answer.to_vec());
                }
                check_window(&mut conn, &want, closed_after)
                    .with_context(|| format!("step {i}"))?;
            }
            StepKind::Note => {}
        }
    }
    Ok(())
}

/// Reads the expected frames, then requires a close (or, for an open connection, a quiet moment).
fn check_window(conn: &mut V1Conn, want: &[Vec<u8>], closed_after: bool) -> Result<()> {
    for expected in want {
        match conn.next_event(Instant::now() + FRAME_WAIT) {
            V1Event::Frame(got) if &got == expected => {}
            V1Event::Frame(got) => bail!(
                "got {:?}, expected {:?}",
                render_text(&got),
                render_text(expected)
            ),
            other => bail!("expected {:?}, got {other:?}", render_text(expected)),
        }
    }
    if closed_after {
        match conn.next_event(Instant::now() + FRAME_WAIT) {
            V1Event::Closed { partial: 0, .. } => Ok(()),
            other => bail!("expected the server to close, got {other:?}"),
        }
    } else {
        match conn.next_event(Instant::now() + QUIET_WINDOW) {
            V1Event::Timeout => Ok(()),
            other => bail!("expected nothing more on an open connection, got {other:?}"),
        }
    }
}

/// Splits `[u32 size][data]...` into the data parts.
fn split_v1(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 4 {
            bail!("truncated size field");
        }
        let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if bytes.len() < 4 + size {
            bail!("truncated frame");
        }
        frames.push(bytes[4..4 + size].to_vec());
        bytes = &bytes[4 + size..];
    }
    Ok(frames)
}

/// The golden frame with this run's values: in the IDENTIFY answer, our ports and our hostname. Keys keep
/// their golden order, and the JSON is written compactly as Go writes it.
fn expected_frame(golden: &[u8], lookupd: &Nsqlookupd, hostname: &str) -> Result<Vec<u8>> {
    if !golden.starts_with(b"{") {
        return Ok(golden.to_vec());
    }
    let mut value: Value = serde_json::from_slice(golden).context("golden JSON frame")?;
    let object = value
        .as_object_mut()
        .context("golden JSON is not an object")?;
    for (key, v) in object.iter_mut() {
        match key.as_str() {
            "hostname" => *v = Value::from(hostname),
            "tcp_port" => *v = Value::from(lookupd.tcp_addr().port()),
            "http_port" => *v = Value::from(lookupd.http_addr().port()),
            _ => {}
        }
    }
    Ok(serde_json::to_vec(&value)?)
}

/// What Go's `os.Hostname()` reads on Linux.
fn os_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn golden_lookupd_frames_decode_consistently() {
    for t in transcripts() {
        for step in t.steps.iter().filter(|s| s.kind() == StepKind::Recv) {
            let frames = split_v1(&step.recv_bytes().unwrap()).unwrap();
            let golden = step.recv_frames.as_ref().unwrap();
            assert_eq!(frames.len(), golden.len(), "{}", t.name);
            for (f, g) in frames.iter().zip(golden) {
                assert_eq!(render_text(f), g.data_text, "{}", t.name);
                assert_eq!(f.len() as u32, g.size, "{}", t.name);
            }
        }
    }
}

/// Go's nsqlookupd exits with status 0 on SIGTERM and on SIGINT; so must ours, with a client connected.
#[test]
fn sigterm_and_sigint_exit_zero() {
    for signal in ["TERM", "INT"] {
        let mut lookupd = Nsqlookupd::start(&[]).unwrap_or_else(|e| panic!("{e:#}"));
        let mut conn = V1Conn::connect(lookupd.tcp_addr()).unwrap();
        conn.send(b"  V1").unwrap();
        conn.exchange(b"PING\n", b"OK").unwrap();
        let status = lookupd
            .signal_and_wait(signal, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(status.code(), Some(0), "SIG{signal}: {status}");
    }
}
