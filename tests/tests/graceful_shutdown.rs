//! SIGTERM and SIGINT stop nsqd the way ARCHITECTURE.md says: every publish that was sent before the signal
//! gets its reply, subscribed consumers are disconnected, the listeners stop, and the process exits 0 within
//! the drain deadline.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use nsq_tests::wire::{command, command_with_body, Event, FrameConn};
use nsq_tests::Nsqd;

const PIPELINED_PUBS: usize = 2000;

fn wait_closed(conn: &mut FrameConn, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        match conn.next_event(deadline) {
            Event::Closed { .. } => return Ok(()),
            // Heartbeats or messages still buffered before the close are fine.
            Event::Frame(_) => continue,
            Event::Timeout => anyhow::bail!("connection still open {within:?} after the signal"),
        }
    }
}

fn shuts_down_cleanly_on(signal: &str) -> Result<()> {
    let mut nsqd = Nsqd::start(&[])?;
    let tcp = nsqd.tcp_addr();

    let mut consumer = FrameConn::connect(tcp)?;
    consumer.send(b"  V2")?;
    consumer.send(&command("SUB shutdown_topic ch"))?;
    consumer.expect_ok("SUB")?;
    consumer.send(&command("RDY 1"))?;

    // A producer pipelines many PUBs in one write; every one must be answered.
    let mut producer = FrameConn::connect(tcp)?;
    let mut burst = b"  V2".to_vec();
    for i in 0..PIPELINED_PUBS {
        burst.extend(command_with_body(
            "PUB shutdown_topic",
            format!("msg-{i}").as_bytes(),
        ));
    }
    producer.send(&burst)?;
    for i in 0..PIPELINED_PUBS {
        producer.expect_ok(&format!("PUB #{i}"))?;
    }
    let first = consumer.expect_message(Duration::from_secs(5))?;
    ensure!(
        first.body == b"msg-0",
        "first delivery was {:?}",
        String::from_utf8_lossy(&first.body)
    );

    let status = nsqd.signal_and_wait(signal, Duration::from_secs(10))?;
    ensure!(
        status.success(),
        "nsqd exited with {status} after SIG{signal}; log:\n{}",
        nsqd.log_tail()
    );
    wait_closed(&mut consumer, Duration::from_secs(2))?;
    wait_closed(&mut producer, Duration::from_secs(2))?;
    ensure!(
        TcpStream::connect_timeout(&tcp, Duration::from_secs(1)).is_err(),
        "the TCP port still accepts connections after exit"
    );
    Ok(())
}

#[test]
fn sigterm_answers_publishes_closes_clients_and_exits_zero() -> Result<()> {
    shuts_down_cleanly_on("TERM")
}

#[test]
fn sigint_does_the_same() -> Result<()> {
    shuts_down_cleanly_on("INT")
}
