//! The diskqueue against its contract: Go's file format byte for byte, files written by Go nsqd, corruption
//! recovery, empty/delete, syncing without close, publisher backpressure, and concurrent use.

// The helpers below are fixture code outside `#[test]` functions; a panic there fails the test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nsq_core::diskqueue::{DiskQueue, DiskQueueError, DiskQueueOptions, IoPool};

const DEADLINE: Duration = Duration::from_secs(20);

fn options(dir: &Path, max_bytes_per_file: i64) -> DiskQueueOptions {
    DiskQueueOptions {
        data_path: dir.to_path_buf(),
        max_bytes_per_file,
        min_msg_size: 1,
        max_msg_size: 1024 * 1024,
        sync_every: 2500,
        sync_timeout: Duration::from_secs(2),
        read_ahead_bytes: 1024 * 1024,
    }
}

fn open(name: &str, opts: &DiskQueueOptions, pool: &Arc<IoPool>) -> DiskQueue {
    let q = DiskQueue::open(
        name,
        Arc::new(opts.clone()),
        Arc::clone(pool),
        Box::new(|| {}),
    );
    q.wait_loaded();
    q
}

/// Pops one record, waiting for the pool to read it (fails the test after a generous deadline).
fn pop_wait(q: &DiskQueue) -> Bytes {
    let start = Instant::now();
    loop {
        if let Some(r) = q.pop() {
            return r;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no record from {q:?} within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn pop_n(q: &DiskQueue, n: usize) -> Vec<Bytes> {
    (0..n).map(|_| pop_wait(q)).collect()
}

/// Waits until `cond` holds (a poll with a deadline, not a sleep standing in for an assertion).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Asserts that no record shows up for a short while (nothing more is on disk).
fn assert_drained(q: &DiskQueue) {
    for _ in 0..50 {
        assert_eq!(q.pop(), None);
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn record(i: usize) -> Bytes {
    // Sizes vary from 10 to 69 bytes so files roll at different record counts.
    let mut s = format!("rec-{i:06}-");
    while s.len() < 10 + (i * 7) % 60 {
        s.push('x');
    }
    Bytes::from(s)
}

fn files_of(dir: &Path, name: &str) -> Vec<String> {
    let prefix = format!("{name}.diskqueue.");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    v.sort();
    v
}

fn data_path(dir: &Path, name: &str, n: i64) -> PathBuf {
    dir.join(format!("{name}.diskqueue.{n:06}.dat"))
}

fn meta_text(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.diskqueue.meta.dat"))).unwrap_or_default()
}

fn encode(records: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(&(r.len() as i32).to_be_bytes());
        out.extend_from_slice(r);
    }
    out
}

fn roundtrip_with_read_ahead(read_ahead_bytes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(2, 1 << 20);
    let mut opts = options(dir.path(), 256);
    opts.read_ahead_bytes = read_ahead_bytes;
    let q = open("t", &opts, &pool);
    for i in 0..500 {
        q.put(record(i)).unwrap();
    }
    assert_eq!(q.depth(), 500);
    for (i, r) in pop_n(&q, 200).into_iter().enumerate() {
        assert_eq!(r, record(i));
    }
    assert_eq!(q.depth(), 300);
    q.close_blocking().unwrap();
    assert_eq!(q.put(record(0)), Err(DiskQueueError::Closed));
    assert!(
        files_of(dir.path(), "t").len() > 10,
        "records were spread over many files"
    );

    // Records that sat in the read-ahead without being popped come back; popped ones do not.
    let q = open("t", &opts, &pool);
    assert_eq!(q.depth(), 300);
    for (i, r) in pop_n(&q, 300).into_iter().enumerate() {
        assert_eq!(r, record(200 + i));
    }
    assert_drained(&q);
    assert_eq!(q.depth(), 0);
    q.close_blocking().unwrap();
    // Every fully read file was deleted: only the write file (and the metadata) remain.
    assert_eq!(
        files_of(dir.path(), "t").len(),
        2,
        "{:?}",
        files_of(dir.path(), "t")
    );
    pool.shutdown();
}

#[test]
fn put_pop_across_rolled_files_and_reopen() {
    roundtrip_with_read_ahead(1024 * 1024);
}

#[test]
fn put_pop_with_a_tiny_read_ahead_reads_back_from_files() {
    roundtrip_with_read_ahead(100);
}

#[test]
fn files_follow_the_v1_1_0_layout_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let q = open("lay:out", &options(dir.path(), 100), &pool);
    let sizes = [10usize, 20, 50, 5, 90, 200, 1, 30];
    let recs: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| vec![b'a' + i as u8; n])
        .collect();
    for r in &recs {
        q.put(Bytes::from(r.clone())).unwrap();
    }
    q.close_blocking().unwrap();

    // By hand, with the rule "roll before a write when writePos > 0 and writePos + 4 + len > 100":
    // file 0: 14 + 24 + 54 = 92 (the 5-byte record would make 101); file 1: 9 (the 90-byte one would make
    // 103); file 2: 94; file 3: 204 (an empty file takes an oversized record); file 4: 5 + 34 = 39.
    let expected: [(i64, Vec<&[u8]>); 5] = [
        (0, vec![&recs[0], &recs[1], &recs[2]]),
        (1, vec![&recs[3]]),
        (2, vec![&recs[4]]),
        (3, vec![&recs[5]]),
        (4, vec![&recs[6], &recs[7]]),
    ];
    let mut names: Vec<String> = expected
        .iter()
        .map(|(n, _)| format!("lay:out.diskqueue.{n:06}.dat"))
        .collect();
    names.push("lay:out.diskqueue.meta.dat".to_owned());
    assert_eq!(files_of(dir.path(), "lay:out"), names);
    let sizes_on_disk: Vec<u64> = expected
        .iter()
        .map(|(n, _)| {
            std::fs::metadata(data_path(dir.path(), "lay:out", *n))
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes_on_disk, [92, 9, 94, 204, 39]);
    for (n, records) in &expected {
        let bytes = std::fs::read(data_path(dir.path(), "lay:out", *n)).unwrap();
        assert_eq!(bytes, encode(records), "file {n}");
    }
    assert_eq!(meta_text(dir.path(), "lay:out"), "8\n0,0\n4,39\n");
    pool.shutdown();
}

/// The golden data directory: `$NSQ_GOLDEN_DIR`, else `<workspace>/../shared/golden` (as the e2e tests).
fn golden_dir() -> PathBuf {
    match std::env::var_os("NSQ_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden"),
    }
}

fn copy_golden_datadir() -> tempfile::TempDir {
    let src = golden_dir().join("datadir");
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let to = dir.path().join(e.file_name());
        std::fs::copy(e.path(), &to).unwrap();
        let mut perm = std::fs::metadata(&to).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&to, perm).unwrap();
    }
    dir
}

fn golden_expected() -> serde_json::Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/datadir.expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn nsqd_options(dir: &Path) -> DiskQueueOptions {
    DiskQueueOptions {
        min_msg_size: 26,
        max_msg_size: 1024 * 1024 + 26,
        ..options(dir, 4096)
    }
}

#[test]
fn go_written_big_c_yields_its_180_records_in_order() {
    let dir = copy_golden_datadir();
    let expected = golden_expected();
    let messages = expected["expected_after_restart"]["big"]["channels"]["c"]["messages"]
        .as_array()
        .unwrap();
    assert_eq!(messages.len(), 180);
    let pool = IoPool::new(2, 1 << 20);
    let q = open("big:c", &nsqd_options(dir.path()), &pool);
    assert_eq!(q.depth(), 180);
    for (i, m) in messages.iter().enumerate() {
        let r = pop_wait(&q);
        assert_eq!(
            std::str::from_utf8(&r[26..]).unwrap(),
            m["body_text"].as_str().unwrap(),
            "record {i}"
        );
        assert_eq!(
            &r[10..26],
            m["id"].as_str().unwrap().as_bytes(),
            "record {i}"
        );
        assert_eq!(
            i64::from_be_bytes(r[..8].try_into().unwrap()),
            m["timestamp_ns"].as_i64().unwrap()
        );
    }
    assert_drained(&q);
    assert_eq!(q.depth(), 0);
    q.close_blocking().unwrap();
    assert_eq!(meta_text(dir.path(), "big:c"), "0\n6,1820\n6,1820\n");
    assert_eq!(
        files_of(dir.path(), "big:c"),
        ["big:c.diskqueue.000006.dat", "big:c.diskqueue.meta.dat"]
    );
    pool.shutdown();
}

#[test]
fn every_go_written_queue_yields_its_unread_records() {
    let dir = copy_golden_datadir();
    let expected = golden_expected();
    let pool = IoPool::new(2, 1 << 20);
    for (name, queue) in expected["queues_on_disk"].as_object().unwrap() {
        let unread: Vec<&serde_json::Value> = queue["data_files"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["records"].as_array().unwrap())
            .filter(|r| !r["already_read"].as_bool().unwrap())
            .collect();
        let q = open(name, &nsqd_options(dir.path()), &pool);
        assert_eq!(
            q.depth(),
            queue["meta"]["depth"].as_i64().unwrap(),
            "{name}"
        );
        for (i, rec) in unread.iter().enumerate() {
            let r = pop_wait(&q);
            assert_eq!(
                r.len() as i64,
                rec["record_len"].as_i64().unwrap(),
                "{name} {i}"
            );
            assert_eq!(
                i64::from(u16::from_be_bytes([r[8], r[9]])),
                rec["attempts"].as_i64().unwrap()
            );
            assert_eq!(
                std::str::from_utf8(&r[26..]).unwrap(),
                rec["body_text"].as_str().unwrap(),
                "{name} {i}"
            );
        }
        assert_drained(&q);
        assert_eq!(q.depth(), 0, "{name}");
        q.close_blocking().unwrap();
    }
    pool.shutdown();
}

#[test]
fn v1_0_0_file_larger_than_max_bytes_is_read_fully() {
    let dir = tempfile::tempdir().unwrap();
    let recs: Vec<Vec<u8>> = (0..7u8).map(|i| vec![b'0' + i; 30]).collect();
    let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
    // v1.0.0 rolled after writePos >= max, so file 0 holds 5 records = 170 bytes with a 100-byte limit.
    std::fs::write(data_path(dir.path(), "old", 0), encode(&refs[..5])).unwrap();
    std::fs::write(data_path(dir.path(), "old", 1), encode(&refs[5..])).unwrap();
    std::fs::write(dir.path().join("old.diskqueue.meta.dat"), "7\n0,0\n1,68\n").unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let q = open("old", &options(dir.path(), 100), &pool);
    assert_eq!(q.depth(), 7);
    for r in &recs {
        assert_eq!(pop_wait(&q), &r[..]);
    }
    q.put(Bytes::from_static(b"after")).unwrap();
    assert_eq!(pop_wait(&q), "after");
    assert_eq!(q.depth(), 0);
    q.close_blocking().unwrap();
    assert!(
        !data_path(dir.path(), "old", 0).exists(),
        "the fully read old file was deleted"
    );
    pool.shutdown();
}

/// Writes 12 records of 20 bytes with a 100-byte limit: files 0, 1 and 2 hold four records (96 bytes) each.
fn three_full_files(dir: &Path, pool: &Arc<IoPool>) -> Vec<Bytes> {
    let recs: Vec<Bytes> = (0..12)
        .map(|i| Bytes::from(format!("record-number-{i:06}")))
        .collect();
    let q = open("c", &options(dir, 100), pool);
    q.put_batch(recs.clone()).unwrap();
    q.close_blocking().unwrap();
    for n in 0..3 {
        assert_eq!(std::fs::metadata(data_path(dir, "c", n)).unwrap().len(), 96);
    }
    assert_eq!(meta_text(dir, "c"), "12\n0,0\n2,96\n");
    recs
}

#[test]
fn garbage_length_in_a_finished_file_sets_it_aside_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let recs = three_full_files(dir.path(), &pool);
    let mut bytes = std::fs::read(data_path(dir.path(), "c", 1)).unwrap();
    bytes[48..52].copy_from_slice(&0x7fff_ffffi32.to_be_bytes());
    std::fs::write(data_path(dir.path(), "c", 1), bytes).unwrap();

    let q = open("c", &options(dir.path(), 100), &pool);
    let want: Vec<Bytes> = [0, 1, 2, 3, 4, 5, 8, 9, 10, 11]
        .iter()
        .map(|&i| recs[i].clone())
        .collect();
    assert_eq!(pop_n(&q, want.len()), want);
    assert_drained(&q);
    // The metadata said 12; reaching the tail with 2 left resets the depth (Go's checkTailCorruption).
    assert_eq!(q.depth(), 0);
    assert!(dir.path().join("c.diskqueue.000001.dat.bad").exists());
    q.put(Bytes::from_static(b"still works")).unwrap();
    assert_eq!(pop_wait(&q), "still works");
    q.close_blocking().unwrap();
    pool.shutdown();
}

#[test]
fn truncated_record_in_a_finished_file_sets_it_aside() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let recs = three_full_files(dir.path(), &pool);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(data_path(dir.path(), "c", 1))
        .unwrap();
    f.set_len(86).unwrap();
    drop(f);

    let q = open("c", &options(dir.path(), 100), &pool);
    let want: Vec<Bytes> = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11]
        .iter()
        .map(|&i| recs[i].clone())
        .collect();
    assert_eq!(pop_n(&q, want.len()), want);
    assert_drained(&q);
    assert_eq!(q.depth(), 0);
    assert!(dir.path().join("c.diskqueue.000001.dat.bad").exists());
    q.close_blocking().unwrap();
    pool.shutdown();
}

#[test]
fn truncated_last_record_of_the_write_file_is_set_aside_and_writing_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let recs: Vec<Bytes> = (0..4)
        .map(|i| Bytes::from(format!("record-number-{i:06}")))
        .collect();
    let q = open("w", &options(dir.path(), 1000), &pool);
    q.put_batch(recs.clone()).unwrap();
    q.close_blocking().unwrap();
    assert_eq!(meta_text(dir.path(), "w"), "4\n0,0\n0,96\n");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(data_path(dir.path(), "w", 0))
        .unwrap();
    f.set_len(86).unwrap();
    drop(f);

    let q = open("w", &options(dir.path(), 1000), &pool);
    assert_eq!(pop_n(&q, 3), recs[..3].to_vec());
    assert_drained(&q);
    assert!(dir.path().join("w.diskqueue.000000.dat.bad").exists());
    q.put(Bytes::from_static(b"new")).unwrap();
    assert_eq!(pop_wait(&q), "new");
    assert_eq!(q.depth(), 0);
    q.close_blocking().unwrap();
    assert!(
        meta_text(dir.path(), "w").ends_with("\n1,7\n"),
        "{:?}",
        meta_text(dir.path(), "w")
    );
    pool.shutdown();
}

#[test]
fn metadata_behind_the_write_file_starts_a_new_write_file_and_keeps_old_records() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let old: Vec<Bytes> = (0..5)
        .map(|i| Bytes::from(format!("old-record-{i:02}")))
        .collect();
    let q = open("m", &options(dir.path(), 1 << 20), &pool);
    q.put_batch(old.clone()).unwrap();
    q.close_blocking().unwrap();
    // As if nsqd died after syncing three of the five writes (go-diskqueue #31).
    std::fs::write(dir.path().join("m.diskqueue.meta.dat"), "3\n0,0\n0,51\n").unwrap();

    let q = open("m", &options(dir.path(), 1 << 20), &pool);
    q.put(Bytes::from_static(b"new-0")).unwrap();
    q.put(Bytes::from_static(b"new-1")).unwrap();
    eventually("new records written to file 1", || {
        std::fs::metadata(data_path(dir.path(), "m", 1)).is_ok_and(|m| m.len() == 18)
    });
    assert_eq!(
        std::fs::metadata(data_path(dir.path(), "m", 0))
            .unwrap()
            .len(),
        85,
        "file 0 untouched"
    );
    let mut want = old.clone();
    want.push(Bytes::from_static(b"new-0"));
    want.push(Bytes::from_static(b"new-1"));
    assert_eq!(pop_n(&q, 7), want);
    assert_drained(&q);
    assert_eq!(q.depth(), 0);
    q.close_blocking().unwrap();
    pool.shutdown();
}

#[test]
fn empty_deletes_the_files_and_keeps_records_put_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(2, 1 << 20);
    let q = open("e", &options(dir.path(), 200), &pool);
    for i in 0..100 {
        q.put(record(i)).unwrap();
    }
    assert_eq!(pop_wait(&q), record(0));
    eventually("records written", || pool.pending_bytes() == 0);
    assert!(files_of(dir.path(), "e").len() > 5);
    q.empty();
    assert_eq!(q.depth(), 0);
    q.put(Bytes::from_static(b"kept-1")).unwrap();
    q.put(Bytes::from_static(b"kept-2")).unwrap();
    assert_eq!(q.depth(), 2);
    assert_eq!(
        pop_n(&q, 2),
        [Bytes::from_static(b"kept-1"), Bytes::from_static(b"kept-2")]
    );
    assert_drained(&q);
    q.close_blocking().unwrap();
    let files = files_of(dir.path(), "e");
    assert_eq!(files.len(), 2, "one write file and the metadata: {files:?}");
    let meta = meta_text(dir.path(), "e");
    let lines: Vec<&str> = meta.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(lines[1], lines[2], "reader at the writer: {meta:?}");

    let q = open("e", &options(dir.path(), 200), &pool);
    assert_eq!(q.depth(), 0);
    assert_drained(&q);
    q.close_blocking().unwrap();
    pool.shutdown();
}

#[tokio::test]
async fn delete_removes_data_and_metadata_files() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let q = DiskQueue::open(
        "d",
        Arc::new(options(dir.path(), 200)),
        Arc::clone(&pool),
        Box::new(|| {}),
    );
    q.loaded().await;
    for i in 0..50 {
        q.put(record(i)).unwrap();
    }
    q.close().await.unwrap();
    assert!(files_of(dir.path(), "d").len() > 3);

    let q = DiskQueue::open(
        "d",
        Arc::new(options(dir.path(), 200)),
        Arc::clone(&pool),
        Box::new(|| {}),
    );
    q.loaded().await;
    q.put(record(50)).unwrap();
    q.delete().await;
    assert_eq!(files_of(dir.path(), "d"), Vec::<String>::new());
    assert_eq!(q.put(record(0)), Err(DiskQueueError::Closed));
    assert_eq!(q.pop(), None);
    pool.shutdown();
}

#[test]
fn sync_timeout_persists_metadata_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let mut opts = options(dir.path(), 1 << 20);
    opts.sync_every = 1_000_000;
    opts.sync_timeout = Duration::from_millis(100);
    let q = open("s", &opts, &pool);
    for _ in 0..3 {
        q.put(Bytes::from_static(b"0123456789")).unwrap();
    }
    eventually("metadata with 3 writes", || {
        meta_text(dir.path(), "s") == "3\n0,0\n0,42\n"
    });
    assert_eq!(pop_wait(&q), "0123456789");
    eventually("metadata with 1 pop", || {
        meta_text(dir.path(), "s") == "2\n0,14\n0,42\n"
    });
    q.close_blocking().unwrap();
    pool.shutdown();
}

#[test]
fn sync_every_persists_metadata_after_that_many_writes() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let mut opts = options(dir.path(), 1 << 20);
    opts.sync_every = 5;
    opts.sync_timeout = Duration::from_secs(3600);
    let q = open("se", &opts, &pool);
    for _ in 0..5 {
        q.put(Bytes::from_static(b"0123456789")).unwrap();
    }
    eventually("metadata with 5 writes", || {
        meta_text(dir.path(), "se") == "5\n0,0\n0,70\n"
    });
    q.close_blocking().unwrap();
    pool.shutdown();
}

#[test]
fn bad_sizes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let mut opts = options(dir.path(), 1 << 20);
    opts.min_msg_size = 4;
    opts.max_msg_size = 8;
    let q = open("b", &opts, &pool);
    assert!(matches!(
        q.put(Bytes::from_static(b"abc")),
        Err(DiskQueueError::InvalidSize { len: 3, .. })
    ));
    assert!(matches!(
        q.put(Bytes::from_static(b"123456789")),
        Err(DiskQueueError::InvalidSize { len: 9, .. })
    ));
    let batch = [
        Bytes::from_static(b"good"),
        Bytes::from_static(b"x"),
        Bytes::from_static(b"fine"),
    ];
    assert!(q.put_batch(batch).is_err());
    assert_eq!(q.depth(), 2);
    assert_eq!(
        pop_n(&q, 2),
        [Bytes::from_static(b"good"), Bytes::from_static(b"fine")]
    );
    q.close_blocking().unwrap();
    pool.shutdown();
}

/// Holds an `IoPool`'s only thread: the first `on_readable` of the queue it is given blocks until
/// [`Hostage::release`], so work queued meanwhile waits and the test controls the order.
struct Hostage {
    entered: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

impl Hostage {
    fn take(dir: &Path, pool: &Arc<IoPool>) -> (Hostage, DiskQueue) {
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let entered_tx = Mutex::new(entered_tx);
        let first = AtomicBool::new(true);
        let callback = Box::new(move || {
            if first.swap(false, Ordering::SeqCst) {
                entered_tx.lock().unwrap().send(()).unwrap();
                let _ = release_rx.lock().unwrap().recv();
            }
        });
        let q = DiskQueue::open(
            "hostage",
            Arc::new(options(dir, 1 << 20)),
            Arc::clone(pool),
            callback,
        );
        q.put(Bytes::from_static(b"take the thread")).unwrap();
        (
            Hostage {
                entered: entered_rx,
                release: release_tx,
            },
            q,
        )
    }

    fn wait_taken(&self) {
        self.entered.recv_timeout(DEADLINE).unwrap();
    }

    fn release(&self) {
        self.release.send(()).unwrap();
    }
}

/// A pool with a 100-byte write budget whose only thread is held inside queue `a`'s `on_readable`, and an
/// empty queue `b` to put into: nothing `b` gets is written until the hostage is released.
async fn budget_of_100_with_the_thread_held(
    dir: &Path,
) -> (Arc<IoPool>, DiskQueue, DiskQueue, Hostage) {
    let pool = IoPool::new(1, 100);
    let b = DiskQueue::open(
        "b",
        Arc::new(options(dir, 1 << 20)),
        Arc::clone(&pool),
        Box::new(|| {}),
    );
    b.loaded().await;
    let (hostage, a) = Hostage::take(dir, &pool);
    let hostage = tokio::task::spawn_blocking(move || {
        hostage.wait_taken();
        hostage
    })
    .await
    .unwrap();
    (pool, a, b, hostage)
}

#[tokio::test]
async fn writable_waits_while_pending_bytes_exceed_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, a, b, hostage) = budget_of_100_with_the_thread_held(dir.path()).await;

    assert!(pool.pending_bytes() < 100);
    pool.writable().await;
    b.put(Bytes::from(vec![7u8; 150])).unwrap();
    assert_eq!(pool.pending_bytes(), 150);
    let mut writable = std::pin::pin!(pool.writable());
    assert!(writable
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending());

    hostage.release();
    tokio::time::timeout(DEADLINE, writable)
        .await
        .expect("writable() completes once B's record is written");
    assert_eq!(pool.pending_bytes(), 0);
    assert_eq!(b.depth(), 1);
    a.close().await.unwrap();
    b.close().await.unwrap();
    pool.shutdown();
}

#[test]
fn empty_before_the_load_finished_empties_what_the_load_found() {
    let dir = copy_golden_datadir();
    let pool = IoPool::new(1, 1 << 20);
    let (hostage, h) = Hostage::take(dir.path(), &pool);
    hostage.wait_taken();
    // The pool's thread is held, so this queue's load cannot have run yet.
    let q = DiskQueue::open(
        "big:c",
        Arc::new(nsqd_options(dir.path())),
        Arc::clone(&pool),
        Box::new(|| {}),
    );
    q.empty();
    let record = Bytes::from(vec![b'r'; 30]);
    q.put(record.clone()).unwrap();
    hostage.release();
    q.wait_loaded();
    eventually("the new record written", || pool.pending_bytes() == 0);
    assert_eq!(q.depth(), 1);
    assert_eq!(pop_wait(&q), record);
    assert_drained(&q);
    assert_eq!(q.depth(), 0);
    q.close_blocking().unwrap();
    h.close_blocking().unwrap();
    assert!(!data_path(dir.path(), "big:c", 0).exists());
    assert!(!data_path(dir.path(), "big:c", 6).exists());
    pool.shutdown();
}

#[test]
fn concurrent_puts_and_a_popper_deliver_everything_exactly_once() {
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: u32 = 5000;
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(2, 256 * 1024);
    let mut opts = options(dir.path(), 64 * 1024);
    opts.read_ahead_bytes = 4096;
    opts.sync_every = 1000;
    let q = open("stress", &opts, &pool);
    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || {
                for seq in 0..PER_PRODUCER {
                    let mut r = vec![p as u8];
                    r.extend_from_slice(&seq.to_be_bytes());
                    r.resize(16 + (seq as usize % 48), b'.');
                    q.put(Bytes::from(r)).unwrap();
                }
            })
        })
        .collect();
    let popper = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut next = HashMap::new();
            let total = PRODUCERS * PER_PRODUCER as usize;
            for _ in 0..total {
                let r = pop_wait(&q);
                let p = r[0] as usize;
                let seq = u32::from_be_bytes(r[1..5].try_into().unwrap());
                let want = next.entry(p).or_insert(0u32);
                assert_eq!(seq, *want, "producer {p} out of order or duplicated");
                *want += 1;
            }
            next
        })
    };
    for p in producers {
        p.join().unwrap();
    }
    let next = popper.join().unwrap();
    let elapsed = start.elapsed();
    for p in 0..PRODUCERS {
        assert_eq!(next[&p], PER_PRODUCER);
    }
    assert_drained(&q);
    assert_eq!(q.depth(), 0);
    q.close_blocking().unwrap();
    eprintln!(
        "stress: {} records through the disk in {elapsed:?}",
        PRODUCERS * PER_PRODUCER as usize
    );
    pool.shutdown();
}

#[test]
fn failed_writes_keep_their_records_and_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let q = open("f", &options(dir.path(), 1 << 20), &pool);
    // A directory where the write file should be makes every open of it fail.
    std::fs::create_dir(data_path(dir.path(), "f", 0)).unwrap();
    let recs: Vec<Bytes> = (0..3).map(record).collect();
    q.put_batch(recs.clone()).unwrap();
    // Give the pool time for a few failed attempts; the records must still be there afterwards.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(q.pop(), None);
    assert_eq!(q.depth(), 3);
    assert_eq!(
        pool.pending_bytes(),
        recs.iter().map(Bytes::len).sum::<usize>()
    );
    std::fs::remove_dir(data_path(dir.path(), "f", 0)).unwrap();
    assert_eq!(pop_n(&q, 3), recs);
    q.close_blocking().unwrap();

    // A close that cannot write reports it instead of hanging.
    let g = open("g", &options(dir.path(), 1 << 20), &pool);
    std::fs::create_dir(data_path(dir.path(), "g", 0)).unwrap();
    g.put(record(0)).unwrap();
    assert!(g.close_blocking().is_err());
    assert_eq!(pool.pending_bytes(), 0);
    pool.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_completes_once_the_records_are_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20);
    let pool = IoPool::new(1, 1 << 30);
    let q = open("tickets", &opts, &pool);
    q.loaded().await;
    let records: Vec<Bytes> = (0..500).map(record).collect();
    q.put_batch(records.clone()).unwrap();
    let ticket = q.accepted();
    assert_eq!(ticket, 500);
    q.written(ticket).await;
    // Written means handed to the kernel: the file already holds every record, before any close or sync.
    let on_disk = std::fs::read(data_path(dir.path(), "tickets", 0)).unwrap();
    assert_eq!(
        on_disk,
        encode(&records.iter().map(|r| &r[..]).collect::<Vec<_>>())
    );
    // A ticket of an emptied queue completes too (its records were dropped on purpose).
    q.put(record(1)).unwrap();
    let later = q.accepted();
    q.empty();
    q.written(later).await;
    q.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_when_writable_runs_once_the_budget_has_room() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, a, b, hostage) = budget_of_100_with_the_thread_held(dir.path()).await;
    b.put(Bytes::from(vec![7u8; 150])).unwrap();
    assert!(pool.is_full());
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool.call_when_writable(Box::new(move || {
        let _ = tx.send(());
    }));
    let mut rx = std::pin::pin!(rx);
    assert!(
        rx.as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending(),
        "not called while the budget is full"
    );
    hostage.release();
    tokio::time::timeout(DEADLINE, rx)
        .await
        .expect("called once B's record is written")
        .unwrap();
    assert!(!pool.is_full());
    a.close().await.unwrap();
    b.close().await.unwrap();
    pool.shutdown();
}

/// `empty()` while a round is running (here: held inside `on_readable`) must neither bring the emptied
/// records back nor lose records put after it.
#[test]
fn empty_during_a_round_drops_the_old_records_and_keeps_the_new() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let mut opts = options(dir.path(), 1 << 20);
    opts.read_ahead_bytes = 10;
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (
        parking_lot::Mutex::new(entered_tx),
        parking_lot::Mutex::new(release_rx),
    );
    let first = AtomicBool::new(true);
    let q = DiskQueue::open(
        "q",
        Arc::new(opts),
        Arc::clone(&pool),
        Box::new(move || {
            if first.swap(false, Ordering::SeqCst) {
                entered_tx.lock().send(()).unwrap();
                let _ = release_rx.lock().recv();
            }
        }),
    );
    q.wait_loaded();
    q.put_batch((0..6).map(|i| Bytes::from(format!("old-{i}"))))
        .unwrap();
    entered_rx.recv_timeout(DEADLINE).unwrap();
    q.empty();
    q.put(Bytes::from_static(b"new-0")).unwrap();
    release_tx.send(()).unwrap();
    assert_eq!(pop_wait(&q), Bytes::from_static(b"new-0"));
    eventually("the queue settles", || q.depth() == 0);
    assert_drained(&q);
    q.close_blocking().unwrap();
    let meta = meta_text(dir.path(), "q");
    assert!(
        meta.starts_with("0\n"),
        "meta depth after the empty: {meta:?}"
    );
    pool.shutdown();
}

/// A sync that keeps failing is retried with the next change, not in a loop that never lets the pool's
/// thread go idle (which also kept `shutdown` from ever returning).
#[test]
fn a_failing_sync_does_not_keep_the_pool_busy() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    let mut opts = options(dir.path(), 1 << 20);
    opts.sync_every = 1;
    let q = open("q", &opts, &pool);
    // A non-empty directory where the metadata goes: every metadata write (and so every sync) fails.
    let meta = dir.path().join("q.diskqueue.meta.dat");
    let _ = std::fs::remove_file(&meta);
    std::fs::create_dir(&meta).unwrap();
    std::fs::write(meta.join("x"), b"x").unwrap();
    q.put(Bytes::from_static(b"hello")).unwrap();
    assert_eq!(pop_wait(&q), Bytes::from_static(b"hello"));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let shutdown = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            pool.shutdown();
            let _ = done_tx.send(());
        })
    };
    done_rx
        .recv_timeout(DEADLINE)
        .expect("the pool goes idle and shuts down despite the failing sync");
    shutdown.join().unwrap();
}

/// A reader that had read everything when the writer rolled to a new file is recorded at the start of the
/// new file, not at the end of the finished one: go-diskqueue would try to read on from that end, hit EOF and
/// set the (fully read) file aside as `.bad`.
#[test]
fn a_roll_while_caught_up_moves_the_read_position_to_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let pool = IoPool::new(1, 1 << 20);
    // 10-byte records take 14 bytes on disk; a second one would pass 20, so every record gets its own file.
    let q = open("q", &options(dir.path(), 20), &pool);
    q.put(Bytes::from_static(b"record-0..")).unwrap();
    assert_eq!(pop_wait(&q), Bytes::from_static(b"record-0.."));
    q.put(Bytes::from_static(b"record-1..")).unwrap();
    q.close_blocking().unwrap();
    assert_eq!(meta_text(dir.path(), "q"), "1\n1,0\n1,14\n");
    pool.shutdown();
}
