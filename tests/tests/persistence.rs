//! nsqd on disk, judged from outside the process: a Go nsqd's data directory taken over in place, the files
//! we write read back with an independent reader of the format, restarts after SIGTERM and SIGKILL, corrupt
//! files, the data-path lock and `nsqd.dat`.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nsq_tests::client::{drain, publish_all};
use nsq_tests::diskfiles::{data_file, parse_meta, read_meta, read_records, unread_messages};
use nsq_tests::json_diff::diff;
use nsq_tests::wire::{command, FrameConn};
use nsq_tests::{golden_dir, http, Nsqd};
use serde_json::Value;

const QUIET: Duration = Duration::from_millis(700);

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn post_ok(nsqd: &Nsqd, target: &str) -> Result<()> {
    let r = http::post(nsqd.http_addr(), target, b"")?;
    ensure!(
        r.status == 200,
        "POST {target}: {} {}",
        r.status,
        r.body_text()
    );
    Ok(())
}

fn stats_json(nsqd: &Nsqd) -> Result<Value> {
    let r = http::get(nsqd.http_addr(), "/stats?format=json")?;
    ensure!(r.status == 200, "GET /stats: {}", r.status);
    Ok(serde_json::from_slice(&r.body)?)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        fs::write(&target, fs::read(entry.path())?)?;
    }
    Ok(())
}

fn term(nsqd: &mut Nsqd) -> Result<()> {
    let status = nsqd.signal_and_wait("TERM", Duration::from_secs(20))?;
    ensure!(status.success(), "exit {status}; log:\n{}", nsqd.log_tail());
    Ok(())
}

fn bodies(msgs: &[nsq_tests::wire::Message]) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

/// Polls `check` until it passes or `within` runs out, returning its last error.
fn eventually(within: Duration, mut check: impl FnMut() -> Result<()>) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn go_data_directory_is_taken_over_in_place() -> Result<()> {
    let golden = golden_dir();
    let expected: Value = serde_json::from_slice(&fs::read(golden.join("datadir.expected.json"))?)?;
    let dir = tempfile::tempdir()?;
    copy_dir(&golden.join("datadir"), dir.path())?;
    let nsqd = Nsqd::start_on(
        dir.path(),
        &flags(&["--mem-queue-size=0", "--max-bytes-per-file=4096"]),
    )?;

    // /stats before any client: depths, backend depths, paused flags as Go reported them.
    let mut stats = stats_json(&nsqd)?;
    let mut want = expected["stats_right_after_restart"].clone();
    stats["start_time"] = Value::from(0);
    want["start_time"] = Value::from(0);
    if let Some(obj) = stats.as_object_mut() {
        obj.remove("memory");
    }
    let differences = diff(&want, &stats);
    ensure!(
        differences.is_empty(),
        "/stats after takeover differs: {differences:#?}"
    );

    post_ok(&nsqd, "/channel/unpause?topic=orders&channel=shipping")?;
    let plan = [
        (
            "orders",
            "billing",
            &expected["expected_after_restart"]["orders"]["channels"]["billing"],
        ),
        (
            "orders",
            "shipping",
            &expected["expected_after_restart"]["orders"]["channels"]["shipping"],
        ),
        (
            "big",
            "c",
            &expected["expected_after_restart"]["big"]["channels"]["c"],
        ),
        (
            "events",
            "verify",
            &expected["expected_after_restart"]["events"],
        ),
    ];
    for (topic, channel, want) in plan {
        let got = drain(nsqd.tcp_addr(), topic, channel, 1, QUIET)?;
        let want = want["messages"].as_array().context("messages")?;
        let got_view: Vec<(String, u64, String, i64)> = got
            .iter()
            .map(|m| {
                (
                    String::from_utf8_lossy(&m.body).into_owned(),
                    u64::from(m.attempts),
                    m.id_text(),
                    m.timestamp_ns,
                )
            })
            .collect();
        let want_view: Vec<(String, u64, String, i64)> = want
            .iter()
            .map(|m| {
                (
                    m["body_text"].as_str().unwrap_or_default().to_owned(),
                    m["attempts_when_delivered"].as_u64().unwrap_or_default(),
                    m["id"].as_str().unwrap_or_default().to_owned(),
                    m["timestamp_ns"].as_i64().unwrap_or_default(),
                )
            })
            .collect();
        ensure!(
            got_view == want_view,
            "{topic}/{channel}: got {} messages, want {}; first difference at {:?}",
            got_view.len(),
            want_view.len(),
            got_view.iter().zip(&want_view).position(|(a, b)| a != b)
        );
    }
    Ok(())
}

#[test]
fn written_files_follow_the_format_and_roll_by_the_v1_1_rule() -> Result<()> {
    let mut nsqd = Nsqd::start(&flags(&["--mem-queue-size=0", "--max-bytes-per-file=1000"]))?;
    post_ok(&nsqd, "/topic/create?topic=fmt")?;
    post_ok(&nsqd, "/channel/create?topic=fmt&channel=c")?;
    // 100-byte bodies: 26 + 100 = 126-byte payloads, 130 bytes a record; a file takes 7 (910 bytes) since an
    // eighth would end past 1000.
    let sent: Vec<Vec<u8>> = (0..50).map(|i| format!("{i:0>100}").into_bytes()).collect();
    publish_all(nsqd.tcp_addr(), "fmt", &sent, 10)?;
    term(&mut nsqd)?;

    let dir = nsqd.data_path().to_path_buf();
    let meta_text = fs::read_to_string(dir.join("fmt:c.diskqueue.meta.dat"))?;
    ensure!(meta_text == "50\n0,0\n7,130\n", "meta {meta_text:?}");
    for num in 0..=7 {
        let records = read_records(&data_file(&dir, "fmt:c", num))?;
        let want = if num < 7 { 7 } else { 1 };
        ensure!(
            records.len() == want,
            "file {num} has {} records",
            records.len()
        );
        ensure!(
            records.iter().all(|(_, payload)| payload.len() == 126),
            "record sizes in file {num}"
        );
    }
    ensure!(!data_file(&dir, "fmt:c", 8).exists(), "no ninth file");
    let msgs = unread_messages(&dir, "fmt:c")?;
    ensure!(bodies(&msgs) == bodies_of(&sent), "bodies in file order");
    ensure!(msgs.iter().all(|m| m.attempts == 0), "attempts on disk");
    let ids: HashSet<_> = msgs.iter().map(|m| m.id).collect();
    ensure!(ids.len() == 50, "ids are unique");
    // The topic fanned everything out to its channel: its own queue is empty but has its meta file.
    ensure!(parse_meta(&fs::read_to_string(dir.join("fmt.diskqueue.meta.dat"))?)?.depth == 0);
    let dat = fs::read_to_string(dir.join("nsqd.dat"))?;
    ensure!(
        dat == r#"{"topics":[{"name":"fmt","paused":false,"channels":[{"name":"c","paused":false}]}],"version":"1.3.0"}"#,
        "nsqd.dat {dat}"
    );
    Ok(())
}

fn bodies_of(sent: &[Vec<u8>]) -> Vec<String> {
    sent.iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

#[test]
fn sigterm_then_restart_keeps_every_message_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let opts = flags(&["--mem-queue-size=1000"]);
    let mut nsqd = Nsqd::start_on(dir.path(), &opts)?;
    post_ok(&nsqd, "/topic/create?topic=many")?;
    post_ok(&nsqd, "/channel/create?topic=many&channel=c")?;
    let sent: Vec<Vec<u8>> = (0..100_000)
        .map(|i| format!("m-{i}").into_bytes())
        .collect();
    publish_all(nsqd.tcp_addr(), "many", &sent, 1000)?;
    // 300 messages in flight (never finished) and the consumer still connected at SIGTERM.
    let mut holder = FrameConn::connect(nsqd.tcp_addr())?;
    holder.send(b"  V2")?;
    holder.send(&command("SUB many c"))?;
    holder.expect_ok("SUB")?;
    holder.send(&command("RDY 300"))?;
    for _ in 0..300 {
        holder.expect_message(Duration::from_secs(5))?;
    }
    term(&mut nsqd)?;
    drop(holder);

    let nsqd = Nsqd::start_on(dir.path(), &opts)?;
    let got = drain(nsqd.tcp_addr(), "many", "c", 2500, QUIET)?;
    let mut seen = HashSet::new();
    let mut doubled = 0;
    for m in &got {
        if !seen.insert(m.body.clone()) {
            doubled += 1;
        }
    }
    let lost = sent.iter().filter(|b| !seen.contains(*b)).count();
    ensure!(
        lost == 0 && doubled == 0,
        "{lost} lost, {doubled} delivered twice, {} delivered",
        got.len()
    );
    let redelivered = got.iter().filter(|m| m.attempts == 2).count();
    ensure!(
        redelivered == 300,
        "the 300 in-flight messages come back as second attempts, got {redelivered}"
    );
    Ok(())
}

#[test]
fn a_second_nsqd_on_the_same_data_path_refuses_to_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let _first = Nsqd::start_on(dir.path(), &[])?;
    match Nsqd::start_on(dir.path(), &[]) {
        Ok(_) => bail!("a second nsqd started on a locked data path"),
        Err(e) => {
            let text = format!("{e:#}");
            ensure!(
                text.contains("(possibly in use by another instance of nsqd)"),
                "error: {text}"
            );
        }
    }
    Ok(())
}

fn write_record(out: &mut Vec<u8>, id: u64, body: &str) {
    let mut payload = Vec::new();
    payload.extend_from_slice(&1_795_277_300_000_000_000i64.to_be_bytes());
    payload.extend_from_slice(&0u16.to_be_bytes());
    payload.extend_from_slice(format!("{id:016x}").as_bytes());
    payload.extend_from_slice(body.as_bytes());
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(&payload);
}

#[test]
fn corrupt_files_are_set_aside_and_the_rest_is_delivered() -> Result<()> {
    let dir = tempfile::tempdir()?;
    fs::write(
        dir.path().join("nsqd.dat"),
        r#"{"topics":[{"name":"bad","paused":false,"channels":[{"name":"c","paused":false}]}],"version":"1.3.0"}"#,
    )?;
    // File 0: three records, then a length no message can have, then junk.
    let mut f0 = Vec::new();
    for i in 0..3 {
        write_record(&mut f0, i, &format!("a{i}"));
    }
    f0.extend_from_slice(&0x7fff_ff00i32.to_be_bytes());
    f0.extend_from_slice(b"junk junk junk");
    // File 1: three good records.
    let mut f1 = Vec::new();
    for i in 0..3 {
        write_record(&mut f1, 10 + i, &format!("b{i}"));
    }
    // File 2 (being written): two records, then a record cut short.
    let mut f2 = Vec::new();
    for i in 0..2 {
        write_record(&mut f2, 20 + i, &format!("c{i}"));
    }
    let mut cut = Vec::new();
    write_record(&mut cut, 22, "cut-short-record");
    f2.extend_from_slice(&cut[..cut.len() - 5]);
    let name = "bad:c";
    fs::write(data_file(dir.path(), name, 0), &f0)?;
    fs::write(data_file(dir.path(), name, 1), &f1)?;
    fs::write(data_file(dir.path(), name, 2), &f2)?;
    fs::write(
        dir.path().join(format!("{name}.diskqueue.meta.dat")),
        format!("9\n0,0\n2,{}\n", f2.len()),
    )?;

    let mut nsqd = Nsqd::start_on(dir.path(), &[])?;
    let got = drain(nsqd.tcp_addr(), "bad", "c", 10, QUIET)?;
    ensure!(
        bodies(&got) == ["a0", "a1", "a2", "b0", "b1", "b2", "c0", "c1"],
        "delivered {:?}",
        bodies(&got)
    );
    for num in [0, 2] {
        let bad = format!("{}.bad", data_file(dir.path(), name, num).display());
        ensure!(Path::new(&bad).exists(), "{bad} missing");
    }
    ensure!(nsqd.is_running(), "nsqd is still up");
    // The queue keeps working after the corruption. (Wait for the first consumer to be gone, or the
    // message could go to its closing connection.)
    eventually(Duration::from_secs(5), || {
        let stats = stats_json(&nsqd)?;
        ensure!(stats["topics"][0]["channels"][0]["client_count"] == 0);
        Ok(())
    })?;
    publish_all(nsqd.tcp_addr(), "bad", &[b"after".to_vec()], 1)?;
    let after = drain(nsqd.tcp_addr(), "bad", "c", 10, QUIET)?;
    ensure!(
        bodies(&after) == ["after"],
        "after: {:?}; stats {}; log {}",
        bodies(&after),
        stats_json(&nsqd)?,
        nsqd.log_tail()
    );
    term(&mut nsqd)?;
    Ok(())
}

/// A topic's name, paused flag, and its channels' names and paused flags.
type TopicView = (String, bool, Vec<(String, bool)>);

#[test]
fn nsqd_dat_follows_creates_pauses_and_deletes_and_comes_back() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut nsqd = Nsqd::start_on(dir.path(), &[])?;
    post_ok(&nsqd, "/topic/create?topic=t1")?;
    post_ok(&nsqd, "/channel/create?topic=t1&channel=a")?;
    post_ok(&nsqd, "/channel/create?topic=t1&channel=b")?;
    post_ok(&nsqd, "/channel/create?topic=t1&channel=e%23ephemeral")?;
    post_ok(&nsqd, "/topic/create?topic=t2")?;
    post_ok(&nsqd, "/topic/create?topic=t3%23ephemeral")?;
    post_ok(&nsqd, "/topic/pause?topic=t2")?;
    post_ok(&nsqd, "/channel/pause?topic=t1&channel=b")?;
    let want = r#"{"topics":[{"name":"t1","paused":false,"channels":[{"name":"a","paused":false},{"name":"b","paused":true}]},{"name":"t2","paused":true,"channels":null}],"version":"1.3.0"}"#;
    let path = dir.path().join("nsqd.dat");
    eventually(Duration::from_secs(5), || {
        let text = fs::read_to_string(&path)?;
        ensure!(text == want, "nsqd.dat is {text}");
        Ok(())
    })?;
    post_ok(&nsqd, "/channel/delete?topic=t1&channel=a")?;
    let want = r#"{"topics":[{"name":"t1","paused":false,"channels":[{"name":"b","paused":true}]},{"name":"t2","paused":true,"channels":null}],"version":"1.3.0"}"#;
    eventually(Duration::from_secs(5), || {
        let text = fs::read_to_string(&path)?;
        ensure!(text == want, "nsqd.dat is {text}");
        Ok(())
    })?;
    term(&mut nsqd)?;

    let nsqd = Nsqd::start_on(dir.path(), &[])?;
    let stats = stats_json(&nsqd)?;
    let topics: Vec<TopicView> = stats["topics"]
        .as_array()
        .context("topics")?
        .iter()
        .map(|t| {
            (
                t["topic_name"].as_str().unwrap_or_default().to_owned(),
                t["paused"].as_bool().unwrap_or_default(),
                t["channels"]
                    .as_array()
                    .map(|cs| {
                        cs.iter()
                            .map(|c| {
                                (
                                    c["channel_name"].as_str().unwrap_or_default().to_owned(),
                                    c["paused"].as_bool().unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
        .collect();
    ensure!(
        topics
            == vec![
                ("t1".to_owned(), false, vec![("b".to_owned(), true)]),
                ("t2".to_owned(), true, vec![]),
            ],
        "after restart: {topics:?}"
    );
    Ok(())
}

#[test]
fn empty_and_delete_remove_their_files() -> Result<()> {
    let nsqd = Nsqd::start(&flags(&["--mem-queue-size=0"]))?;
    post_ok(&nsqd, "/topic/create?topic=gone")?;
    post_ok(&nsqd, "/channel/create?topic=gone&channel=c")?;
    let sent: Vec<Vec<u8>> = (0..20).map(|i| format!("x{i}").into_bytes()).collect();
    publish_all(nsqd.tcp_addr(), "gone", &sent, 20)?;
    let dir = nsqd.data_path().to_path_buf();
    let first = data_file(&dir, "gone:c", 0);
    eventually(Duration::from_secs(5), || {
        ensure!(first.exists(), "{} not written", first.display());
        Ok(())
    })?;
    post_ok(&nsqd, "/channel/empty?topic=gone&channel=c")?;
    eventually(Duration::from_secs(5), || {
        ensure!(
            !first.exists(),
            "{} still there after empty",
            first.display()
        );
        Ok(())
    })?;
    let stats = stats_json(&nsqd)?;
    ensure!(
        stats["topics"][0]["channels"][0]["depth"] == 0,
        "depth after empty"
    );
    publish_all(nsqd.tcp_addr(), "gone", &sent, 20)?;
    post_ok(&nsqd, "/topic/delete?topic=gone")?;
    eventually(Duration::from_secs(5), || {
        let left: Vec<String> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()?;
        let left: Vec<_> = left.into_iter().filter(|n| n.starts_with("gone")).collect();
        ensure!(left.is_empty(), "files left after delete: {left:?}");
        Ok(())
    })?;
    Ok(())
}

#[test]
fn meta_of_a_running_queue_is_synced_without_exit() -> Result<()> {
    let nsqd = Nsqd::start(&flags(&["--mem-queue-size=0", "--sync-timeout=200ms"]))?;
    post_ok(&nsqd, "/topic/create?topic=sync")?;
    post_ok(&nsqd, "/channel/create?topic=sync&channel=c")?;
    let sent: Vec<Vec<u8>> = (0..5).map(|i| format!("s{i}").into_bytes()).collect();
    publish_all(nsqd.tcp_addr(), "sync", &sent, 5)?;
    let dir = nsqd.data_path().to_path_buf();
    eventually(Duration::from_secs(5), || {
        let meta = read_meta(&dir, "sync:c")?;
        ensure!(meta.depth == 5, "meta {meta:?}");
        Ok(())
    })
}

#[test]
fn sigkill_under_load_loses_at_most_what_was_held_in_memory() -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    const MEM_QUEUE_SIZE: usize = 100;
    let dir = tempfile::tempdir()?;
    let opts = flags(&["--mem-queue-size=100"]);
    let mut nsqd = Nsqd::start_on(dir.path(), &opts)?;
    post_ok(&nsqd, "/topic/create?topic=crash")?;
    post_ok(&nsqd, "/channel/create?topic=crash&channel=c")?;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let tcp = nsqd.tcp_addr();
    let producer = {
        let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
        std::thread::spawn(move || -> Result<()> {
            let mut conn = FrameConn::connect(tcp)?;
            conn.send(b"  V2")?;
            let mut next = 0usize;
            while !stop.load(Ordering::Acquire) {
                let batch: Vec<Vec<u8>> = (next..next + 100)
                    .map(|i| format!("k-{i}").into_bytes())
                    .collect();
                let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                let sent = conn.send(&nsq_tests::wire::command_with_body(
                    "MPUB crash",
                    &nsq_tests::wire::mpub_body(&refs),
                ));
                if sent.is_err() || conn.expect_ok("MPUB").is_err() {
                    break; // nsqd was killed mid-batch
                }
                next += 100;
                acked.store(next, Ordering::Release);
            }
            Ok(())
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let status = nsqd.signal_and_wait("KILL", Duration::from_secs(10))?;
    ensure!(!status.success(), "nsqd was killed");
    stop.store(true, Ordering::Release);
    let _ = producer.join();
    let acked = acked.load(Ordering::Acquire);
    ensure!(
        acked > 10_000,
        "the producer got going ({acked} acknowledged)"
    );

    let mut nsqd = Nsqd::start_on(dir.path(), &opts)?;
    let got = drain(nsqd.tcp_addr(), "crash", "c", 2500, Duration::from_secs(1))?;
    let mut seen = HashSet::new();
    for m in &got {
        let body = String::from_utf8_lossy(&m.body).into_owned();
        let n: usize = body
            .strip_prefix("k-")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("unexpected body {body:?}"))?;
        ensure!(seen.insert(n), "{body} delivered twice");
    }
    let lost = (0..acked).filter(|n| !seen.contains(n)).count();
    eprintln!(
        "SIGKILL after {acked} acknowledged: {} delivered after restart, {lost} lost",
        got.len()
    );
    // A publish is acknowledged once its records are in a file (as Go's diskqueue Put), so a kill can only
    // lose what sat in the channel's memory queue.
    ensure!(
        lost <= MEM_QUEUE_SIZE,
        "{lost} of {acked} acknowledged messages lost"
    );
    // The directory is usable: the queue takes and delivers new messages.
    publish_all(nsqd.tcp_addr(), "crash", &[b"after-crash".to_vec()], 1)?;
    eventually(Duration::from_secs(5), || {
        let stats = stats_json(&nsqd)?;
        ensure!(stats["topics"][0]["channels"][0]["client_count"] == 0);
        Ok(())
    })?;
    let after = drain(nsqd.tcp_addr(), "crash", "c", 10, QUIET)?;
    ensure!(
        bodies(&after) == ["after-crash"],
        "after: {:?}",
        bodies(&after)
    );
    term(&mut nsqd)?;
    Ok(())
}
