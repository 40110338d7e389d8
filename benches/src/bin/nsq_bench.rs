//! `nsq_bench`: throughput and latency benchmarks against a running nsqd.
//!
//! It reproduces NSQ's Go `bench/bench_writer` and `bench/bench_reader` so a Rust nsqd and a Go
//! nsqd can be measured with the same workload on the same machine:
//!
//! - `writer`: one connection per core, each sending MPUB batches of `--batch-size` messages of
//!   `--size` bytes for `--runfor` or until `--count` messages in total, with up to `--pipeline`
//!   batches awaiting their `OK` (`--pipeline 1` is exactly Go's behaviour). Counts acknowledged
//!   messages.
//! - `reader`: one connection per core on `--topic`/`--channel` with `RDY --rdy`, FINning every
//!   message (one write per socket read), for `--runfor` or until `--count` messages arrived.
//! - `all`: `writer`, then `reader` on the same topic, stopping the reader once it has drained
//!   everything the writer published (like NSQ's `bench.py` pub+sub runs).
//! - `latency`: PUBs at `--rate` msgs/s with the send time in each body, and measures
//!   publish-to-receive latency once per `--rdy` value (default `1,2500`).
//!
//! `--tls`, `--snappy` and `--deflate` (with `--deflate-level`) make every connection negotiate
//! TLS and/or stream compression in IDENTIFY, as Go's clients can.
//!
//! Every mode prints Go's line shape, `duration: 10.00s - 104.3MB/s - 546815.9ops/s -
//! 1.829us/op`, or with `--json` exactly one JSON object on one line. `--mem-pid PID` samples
//! `/proc/PID/status` during the run and reports nsqd's peak RSS.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use nsq_bench::clock::{parse_deadline, parse_duration};
use nsq_bench::conn::Features;
use nsq_bench::latency::{self, LatencyConfig};
use nsq_bench::mem::{MemPeak, MemSampler};
use nsq_bench::reader::{self, ReaderConfig};
use nsq_bench::writer::{self, WriterConfig};
use nsq_bench::StartAt;
use nsq_protocol::compress::Codec;
use serde_json::json;

/// Throughput and latency benchmarks for nsqd (Go's bench_writer/bench_reader workload).
#[derive(Debug, Parser)]
#[command(name = "nsq_bench", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
    /// Print the result as one JSON line instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Sample /proc/PID/status (VmRSS, VmHWM) during the run and report the peak.
    #[arg(long, global = true, value_name = "PID")]
    mem_pid: Option<u32>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Publish MPUB batches as fast as nsqd acknowledges them.
    Writer(WriterArgs),
    /// Consume with a large RDY, FINning every message.
    Reader(ReaderArgs),
    /// Writer, then reader on the same topic until the backlog is drained.
    All(AllArgs),
    /// Publish-to-receive latency at a steady rate, once per RDY value.
    Latency(LatencyArgs),
}

/// Flags shared by every mode.
#[derive(Debug, Args)]
struct Common {
    /// nsqd TCP address.
    #[arg(long, default_value = "127.0.0.1:4150")]
    nsqd_tcp_address: String,
    /// Duration of the run (Go syntax: 10s, 1m30s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    runfor: Duration,
    /// Size of each message body in bytes.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=64 << 20))]
    size: u32,
    /// Skip IDENTIFY after the protocol magic.
    #[arg(long)]
    no_identify: bool,
    #[command(flatten)]
    features: FeatureArgs,
}

/// What every connection negotiates in IDENTIFY.
#[derive(Debug, Args)]
struct FeatureArgs {
    /// Upgrade every connection to TLS (nsqd's certificate is not verified).
    #[arg(long, conflicts_with = "no_identify")]
    tls: bool,
    /// Compress every connection with snappy (after TLS, if --tls is given too).
    #[arg(long, conflicts_with_all = ["deflate", "no_identify"])]
    snappy: bool,
    /// Compress every connection with raw DEFLATE (after TLS, if --tls is given too).
    #[arg(long, conflicts_with = "no_identify")]
    deflate: bool,
    /// DEFLATE level to ask for with --deflate (nsqd caps it at its --max-deflate-level).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    deflate_level: u32,
}

impl FeatureArgs {
    fn features(&self) -> Features {
        let compression = if self.snappy {
            Some(Codec::Snappy)
        } else if self.deflate {
            Some(Codec::Deflate {
                level: self.deflate_level,
            })
        } else {
            None
        };
        Features {
            tls: self.tls,
            compression,
        }
    }
}

/// Flags of the throughput modes.
#[derive(Debug, Args)]
struct Throughput {
    #[command(flatten)]
    common: Common,
    /// Topic to publish to / read from.
    #[arg(long, default_value = "sub_bench")]
    topic: String,
    /// Connections to open (default: number of cores, like Go's GOMAXPROCS).
    #[arg(long)]
    workers: Option<usize>,
    /// Start at this UTC time, "YYYY-MM-DD HH:MM:SS", once connected (to sync several tools).
    #[arg(long, value_parser = parse_deadline)]
    deadline: Option<std::time::SystemTime>,
}

#[derive(Debug, Args)]
struct WriterArgs {
    #[command(flatten)]
    tp: Throughput,
    #[command(flatten)]
    pub_opts: PubOpts,
}

/// Writer-only flags.
#[derive(Debug, Args)]
struct PubOpts {
    /// Messages per MPUB.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// MPUBs a connection may have in flight before waiting for an OK (1 = Go's bench_writer).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pipeline: u32,
    /// Stop after publishing this many messages in total instead of waiting for --runfor.
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Debug, Args)]
struct ReaderArgs {
    #[command(flatten)]
    tp: Throughput,
    #[command(flatten)]
    sub_opts: SubOpts,
    /// Stop after this many messages in total instead of waiting for --runfor.
    #[arg(long)]
    count: Option<u64>,
}

/// Reader-only flags.
#[derive(Debug, Args)]
struct SubOpts {
    /// Channel to read from.
    #[arg(long, default_value = "ch")]
    channel: String,
    /// RDY count of each connection.
    #[arg(long, default_value_t = 2500)]
    rdy: u32,
}

#[derive(Debug, Args)]
struct AllArgs {
    #[command(flatten)]
    tp: Throughput,
    #[command(flatten)]
    pub_opts: PubOpts,
    #[command(flatten)]
    sub_opts: SubOpts,
}

#[derive(Debug, Args)]
struct LatencyArgs {
    #[command(flatten)]
    common: Common,
    /// Topic to publish to (each phase reads through its own ephemeral channel).
    #[arg(long, default_value = "latency_bench")]
    topic: String,
    /// Messages per second.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// RDY values to measure, one phase each.
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 2500])]
    rdy: Vec<u32>,
}

impl Throughput {
    fn workers(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
            .max(1)
    }

    fn start_at(&self) -> StartAt {
        self.deadline.map_or(StartAt::Now, StartAt::At)
    }

    fn writer(&self, p: &PubOpts) -> WriterConfig {
        WriterConfig {
            addr: self.common.nsqd_tcp_address.clone(),
            topic: self.topic.clone(),
            runfor: self.common.runfor,
            size: self.common.size as usize,
            batch_size: p.batch_size as usize,
            workers: self.workers(),
            pipeline: p.pipeline as usize,
            identify: !self.common.no_identify,
            start_at: self.start_at(),
            count: p.count,
        }
    }

    fn reader(&self, s: &SubOpts, count: Option<u64>) -> ReaderConfig {
        ReaderConfig {
            addr: self.common.nsqd_tcp_address.clone(),
            topic: self.topic.clone(),
            channel: s.channel.clone(),
            runfor: self.common.runfor,
            size: self.common.size as usize,
            rdy: s.rdy,
            workers: self.workers(),
            identify: !self.common.no_identify,
            start_at: self.start_at(),
            count,
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let sampler = cli
        .mem_pid
        .map(MemSampler::start)
        .transpose()
        .context("reading /proc/PID/status for --mem-pid")?;

    let (text, mut value) = run_mode(&cli.mode, cli.json).await?;

    let mem = match sampler {
        Some(s) => Some(s.finish().await.context("finishing the memory sampler")?),
        None => None,
    };
    if cli.json {
        if let Some(mem) = mem {
            value["mem"] = serde_json::to_value(mem)?;
        }
        println!("{value}");
    } else {
        print!("{text}");
        if let Some(mem) = mem {
            print_mem(&mem);
        }
    }
    Ok(())
}

/// Runs the chosen mode and returns its remaining text lines and its JSON object. In text
/// mode, `all` prints the writer's line as soon as the writer is done.
async fn run_mode(mode: &Mode, json: bool) -> Result<(String, serde_json::Value)> {
    Ok(match mode {
        Mode::Writer(a) => {
            let cfg = a.tp.writer(&a.pub_opts);
            let features = a.tp.common.features.features();
            let t = writer::run_with(&cfg, features)
                .await
                .with_context(|| format!("writer against {}", cfg.addr))?;
            (
                format!("[bench_writer] {t}\n"),
                json!({ "mode": "writer", "transport": features.label(), "writer": t }),
            )
        }
        Mode::Reader(a) => {
            let cfg = a.tp.reader(&a.sub_opts, a.count);
            let features = a.tp.common.features.features();
            let t = reader::run_with(&cfg, features)
                .await
                .with_context(|| format!("reader against {}", cfg.addr))?;
            (
                format!("[bench_reader] {t}\n"),
                json!({ "mode": "reader", "transport": features.label(), "reader": t }),
            )
        }
        Mode::All(a) => {
            let wcfg = a.tp.writer(&a.pub_opts);
            let features = a.tp.common.features.features();
            let w = writer::run_with(&wcfg, features)
                .await
                .with_context(|| format!("writer against {}", wcfg.addr))?;
            if !json {
                println!("[bench_writer] {w}");
            }
            let rcfg = a.tp.reader(&a.sub_opts, Some(w.msgs));
            let r = reader::run_with(&rcfg, features)
                .await
                .with_context(|| format!("reader against {}", rcfg.addr))?;
            let drained = if r.msgs >= w.msgs {
                "drained"
            } else {
                "not drained"
            };
            (
                format!(
                    "[bench_reader] {r} ({}/{} msgs, {drained})\n",
                    r.msgs, w.msgs
                ),
                json!({ "mode": "all", "transport": features.label(), "writer": w, "reader": r }),
            )
        }
        Mode::Latency(a) => {
            let cfg = LatencyConfig {
                addr: a.common.nsqd_tcp_address.clone(),
                topic: a.topic.clone(),
                runfor: a.common.runfor,
                rate: a.rate,
                size: a.common.size as usize,
                rdys: a.rdy.clone(),
                identify: !a.common.no_identify,
            };
            let features = a.common.features.features();
            let reports = latency::run_with(&cfg, features)
                .await
                .with_context(|| format!("latency against {}", cfg.addr))?;
            let text = reports.iter().map(|r| format!("{r}\n")).collect();
            (
                text,
                json!({
                    "mode": "latency",
                    "transport": features.label(),
                    "rate": a.rate,
                    "latency": reports,
                }),
            )
        }
    })
}

fn print_mem(mem: &MemPeak) {
    println!("[mem] {mem}");
}
