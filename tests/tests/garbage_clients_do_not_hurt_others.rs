//! Bad input never takes down the daemon or another client's connection: while 64 connections send seeded
//! random garbage (some after a valid magic, some after a valid command), a producer and a consumer on the
//! same topic exchange 2,000 messages, every one delivered once, and nsqd is still running afterwards.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use anyhow::{ensure, Result};
use nsq_tests::wire::{command, command_with_body, FrameConn};
use nsq_tests::Nsqd;

const MESSAGES: usize = 2000;

/// Seeded xorshift, so a failure reproduces.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 8 {
                0 => b'\n',
                1 => b' ',
                2 => 0xff,
                _ => (x >> 8) as u8,
            }
        })
        .collect()
}

fn spray(addr: std::net::SocketAddr, seed: u64) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let prefix: &[u8] = match seed % 3 {
        0 => b"",
        1 => b"  V2",
        _ => b"  V2PUB garbage_topic\n\x00\x00\x00\x02ok",
    };
    let _ = s.write_all(prefix);
    let _ = s.write_all(&garbage(seed, 4096 + (seed as usize % 4096)));
}

#[test]
fn garbage_on_many_connections_leaves_the_daemon_and_other_clients_alone() -> Result<()> {
    let mut nsqd = Nsqd::start(&[])?;
    let addr = nsqd.tcp_addr();

    let mut consumer = FrameConn::connect(addr)?;
    consumer.send(b"  V2")?;
    consumer.send(&command("SUB survivors ch"))?;
    consumer.expect_ok("SUB")?;
    consumer.send(&command("RDY 100"))?;
    let mut producer = FrameConn::connect(addr)?;
    producer.send(b"  V2")?;

    let sprayers: Vec<_> = (0..64u64)
        .map(|seed| thread::spawn(move || spray(addr, seed * 7919 + 1)))
        .collect();
    let mut received = vec![false; MESSAGES];
    for i in 0..MESSAGES {
        producer.send(&command_with_body(
            "PUB survivors",
            format!("{i}").as_bytes(),
        ))?;
        producer.expect_ok(&format!("PUB #{i}"))?;
        if i % 50 == 49 {
            // Drain what has arrived so far, finishing each message.
            while let Ok(m) = consumer.expect_message(Duration::from_millis(1)) {
                record(&mut received, &m.body)?;
                consumer.send(&command(&format!("FIN {}", m.id_text())))?;
            }
        }
    }
    for t in sprayers {
        let _ = t.join();
    }
    while received.iter().any(|r| !r) {
        let m = consumer.expect_message(Duration::from_secs(5))?;
        record(&mut received, &m.body)?;
        consumer.send(&command(&format!("FIN {}", m.id_text())))?;
    }
    ensure!(nsqd.is_running(), "nsqd died; log:\n{}", nsqd.log_tail());
    // A panicking connection task would not stop the daemon, but it is still a bug.
    ensure!(
        !nsqd.log_tail().contains("panicked"),
        "a task panicked; log:\n{}",
        nsqd.log_tail()
    );
    Ok(())
}

fn record(received: &mut [bool], body: &[u8]) -> Result<()> {
    let n: usize = std::str::from_utf8(body)?.parse()?;
    ensure!(!received[n], "message {n} delivered twice");
    received[n] = true;
    Ok(())
}
