//! Discovery end to end with the real binaries: two nsqlookupd and three nsqd.
//!
//! Registrations appear in `/lookup` of every lookupd with Go's shape; a consumer that discovers producers
//! through `/lookup` receives every message published to every nsqd; a killed nsqd disappears; a restarted
//! lookupd gets everything registered again; a tombstoned producer is hidden until its nsqd UNREGISTERs the
//! topic; `PUT /config/nsqlookupd_tcp_addresses` moves an nsqd to other lookupds at run time. A last test
//! shows `--inactive-producer-timeout` hiding a producer that stopped talking without closing its connection.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use nsq_tests::client::{drain, publish_all};
use nsq_tests::lookupd::{identify_command, Nsqlookupd, V1Conn, MAGIC_V1};
use nsq_tests::{http, Nsqd};
use serde_json::Value;

const TOPIC: &str = "topo";

/// The keys of a `/lookup` producer, in Go's order.
const PRODUCER_KEYS: [&str; 8] = [
    "remote_address",
    "hostname",
    "broadcast_address",
    "tcp_port",
    "http_port",
    "version",
    "topology_zone",
    "topology_region",
];

/// `/lookup?topic=`: the producers (empty on 404) and the channels.
fn lookup(l: &Nsqlookupd, topic: &str) -> Result<(Vec<Value>, Vec<String>)> {
    let r = http::get(l.http_addr(), &format!("/lookup?topic={topic}"))?;
    if r.status == 404 {
        return Ok((Vec::new(), Vec::new()));
    }
    ensure!(r.status == 200, "/lookup: {} {}", r.status, r.body_text());
    let v: Value = serde_json::from_slice(&r.body)?;
    let producers = v["producers"].as_array().context("producers")?.clone();
    let channels = v["channels"]
        .as_array()
        .context("channels")?
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    Ok((producers, channels))
}

/// The TCP ports of the producers `/lookup` lists.
fn producer_ports(l: &Nsqlookupd, topic: &str) -> Result<BTreeSet<u16>> {
    Ok(lookup(l, topic)?
        .0
        .iter()
        .filter_map(|p| p["tcp_port"].as_u64())
        .map(|p| p as u16)
        .collect())
}

fn ports(nsqds: &[&Nsqd]) -> BTreeSet<u16> {
    nsqds.iter().map(|n| n.tcp_addr().port()).collect()
}

/// Polls until `l` lists exactly `want` as producers of `topic`.
fn wait_producers(
    l: &Nsqlookupd,
    topic: &str,
    want: &BTreeSet<u16>,
    within: Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let have = producer_ports(l, topic)?;
        if &have == want {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "lookupd {} lists {have:?} for {topic}, expected {want:?}",
            l.http_addr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post_ok(addr: std::net::SocketAddr, target: &str) -> Result<()> {
    let r = http::post(addr, target, b"")?;
    ensure!(
        r.status == 200,
        "POST {target}: {} {}",
        r.status,
        r.body_text()
    );
    Ok(())
}

fn lookupd_flags(ls: &[&Nsqlookupd]) -> Vec<String> {
    ls.iter()
        .map(|l| format!("--lookupd-tcp-address={}", l.tcp_addr()))
        .collect()
}

#[test]
fn three_nsqd_two_lookupd() -> Result<()> {
    let l1 = Nsqlookupd::start(&[])?;
    let l2 = Nsqlookupd::start(&[])?;
    let flags = lookupd_flags(&[&l1, &l2]);
    let n1 = Nsqd::start(&flags)?;
    let n2 = Nsqd::start(&flags)?;
    let mut n3 = Nsqd::start(&flags)?;
    let all = [&n1, &n2, &n3];

    // Registration, with Go's producer shape.
    for n in all {
        post_ok(n.http_addr(), &format!("/topic/create?topic={TOPIC}"))?;
    }
    for l in [&l1, &l2] {
        wait_producers(l, TOPIC, &ports(&all), Duration::from_secs(5))?;
        for p in lookup(l, TOPIC)?.0 {
            let keys: Vec<&str> = p
                .as_object()
                .context("producer")?
                .keys()
                .map(String::as_str)
                .collect();
            ensure!(keys == PRODUCER_KEYS, "producer keys {keys:?}");
            ensure!(
                p["broadcast_address"] == "127.0.0.1" && p["version"] == "1.3.0",
                "{p}"
            );
            let n = all
                .iter()
                .find(|n| Some(u64::from(n.tcp_addr().port())) == p["tcp_port"].as_u64())
                .context("unknown producer")?;
            ensure!(
                p["http_port"].as_u64() == Some(u64::from(n.http_addr().port())),
                "{p}"
            );
        }
    }

    // Publish to each nsqd, discover through lookupd, consume from every producer.
    let mut expected = BTreeSet::new();
    for (i, n) in all.iter().enumerate() {
        let bodies: Vec<Vec<u8>> = (0..50).map(|k| format!("n{i}-{k}").into_bytes()).collect();
        expected.extend(
            bodies
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        );
        publish_all(n.tcp_addr(), TOPIC, &bodies, 10)?;
    }
    let (producers, _) = lookup(&l1, TOPIC)?;
    let mut got = BTreeSet::new();
    let mut count = 0;
    for p in &producers {
        let addr = format!(
            "{}:{}",
            p["broadcast_address"].as_str().context("address")?,
            p["tcp_port"]
        );
        for m in drain(addr.parse()?, TOPIC, "ch", 50, Duration::from_millis(700))? {
            count += 1;
            got.insert(String::from_utf8_lossy(&m.body).into_owned());
        }
    }
    ensure!(
        count == expected.len() && got == expected,
        "consumed {count}: {:?}",
        got.symmetric_difference(&expected)
            .take(5)
            .collect::<Vec<_>>()
    );
    // The consumers' channel is registered too.
    for l in [&l1, &l2] {
        let deadline = Instant::now() + Duration::from_secs(5);
        while lookup(l, TOPIC)?.1 != ["ch"] {
            ensure!(
                Instant::now() < deadline,
                "channels {:?}",
                lookup(l, TOPIC)?.1
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // A killed nsqd disappears when its connections close.
    n3.signal_and_wait("KILL", Duration::from_secs(5))?;
    for l in [&l1, &l2] {
        wait_producers(l, TOPIC, &ports(&[&n1, &n2]), Duration::from_secs(5))?;
    }

    // A restarted lookupd gets everything registered again.
    let (tcp1, http1) = (l1.tcp_addr(), l1.http_addr());
    drop(l1);
    let l1 = Nsqlookupd::start_on(tcp1.port(), http1.port(), &[])?;
    let restarted = Instant::now();
    wait_producers(&l1, TOPIC, &ports(&[&n1, &n2]), Duration::from_secs(10))?;
    eprintln!(
        "re-registered {:?} after the lookupd restart",
        restarted.elapsed()
    );

    // Tombstone: hidden from /lookup until nsqd UNREGISTERs the topic.
    post_ok(
        l2.http_addr(),
        &format!(
            "/topic/tombstone?topic={TOPIC}&node=127.0.0.1:{}",
            n1.http_addr().port()
        ),
    )?;
    wait_producers(&l2, TOPIC, &ports(&[&n2]), Duration::from_secs(1))?;
    post_ok(n1.http_addr(), &format!("/topic/delete?topic={TOPIC}"))?;
    publish_all(n1.tcp_addr(), TOPIC, &[b"again".to_vec()], 1)?;
    // Well within the 45 s tombstone lifetime: only the UNREGISTER can have cleared it.
    wait_producers(&l2, TOPIC, &ports(&[&n1, &n2]), Duration::from_secs(5))?;

    // PUT /config/nsqlookupd_tcp_addresses: n2 leaves l2 and joins a new l3.
    let l3 = Nsqlookupd::start(&[])?;
    let body = serde_json::to_vec(&[l1.tcp_addr().to_string(), l3.tcp_addr().to_string()])?;
    let r = http::exchange(
        n2.http_addr(),
        "PUT",
        "/config/nsqlookupd_tcp_addresses",
        &http::default_headers(n2.http_addr(), Some(body.len())),
        &body,
    )?;
    ensure!(r.status == 200, "PUT: {} {}", r.status, r.body_text());
    wait_producers(&l3, TOPIC, &ports(&[&n2]), Duration::from_secs(5))?;
    wait_producers(&l2, TOPIC, &ports(&[&n1]), Duration::from_secs(5))?;
    wait_producers(&l1, TOPIC, &ports(&[&n1, &n2]), Duration::from_secs(1))?;
    Ok(())
}

/// A producer that stops talking without closing its connection is hidden after
/// `--inactive-producer-timeout` (nsqd's PINGs every 15 s are what keep a live one listed).
#[test]
fn hung_producer_expires() -> Result<()> {
    let l = Nsqlookupd::start(&["--inactive-producer-timeout=1s".to_owned()])?;
    let mut conn = V1Conn::connect(l.tcp_addr())?;
    conn.send(MAGIC_V1)?;
    let body = br#"{"broadcast_address":"127.0.0.1","hostname":"hung","http_port":1,"tcp_port":2,"version":"1.3.0"}"#;
    conn.send(&identify_command(body))?;
    match conn.next_event(Instant::now() + Duration::from_secs(5)) {
        nsq_tests::lookupd::V1Event::Frame(_) => {}
        other => anyhow::bail!("IDENTIFY: {other:?}"),
    }
    conn.exchange(b"REGISTER hung_topic\n", b"OK")?;
    ensure!(
        producer_ports(&l, "hung_topic")? == BTreeSet::from([2]),
        "not listed"
    );
    std::thread::sleep(Duration::from_millis(1500));
    ensure!(producer_ports(&l, "hung_topic")?.is_empty(), "still listed");
    // A PING makes it active again.
    conn.exchange(b"PING\n", b"OK")?;
    ensure!(
        producer_ports(&l, "hung_topic")? == BTreeSet::from([2]),
        "not listed after PING"
    );
    Ok(())
}
