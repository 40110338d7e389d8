//! `nsq-bench`: the throughput and latency benchmark tool for nsqd, plus (in `benches/`)
//! criterion micro-benchmarks of the protocol and core crates.
//!
//! The tool (`src/bin/nsq_bench.rs`) reproduces the workload of NSQ's Go `bench/bench_writer`
//! and `bench/bench_reader` so our nsqd can be compared with Go's on the same machine, and adds
//! a latency mode. It talks to nsqd only over TCP (optionally upgraded to TLS and/or snappy or
//! deflate compression, see [`conn`]) and carries its own small client codec ([`wire`]) instead
//! of using `nsq-protocol`'s commands and frames, so it measures any nsqd as a black box and
//! keeps working while the server crates change; only the compression formats, which Go fixes,
//! come from `nsq_protocol::compress`. The library exists so the integration tests can
//! drive each mode against a fake nsqd in-process.
//!
//! Modules: [`wire`] (encoders and frame decoders), [`conn`] (one buffered connection),
//! [`writer`], [`reader`] and [`latency`] (the three workloads), [`mem`] (RSS sampling of
//! another process), [`report`] (result types and their printed form) and [`clock`] (flag
//! parsing for durations and start deadlines).

pub mod clock;
pub mod conn;
pub mod latency;
pub mod mem;
pub mod reader;
pub mod report;
pub mod wire;
pub mod writer;

pub use clock::StartAt;
