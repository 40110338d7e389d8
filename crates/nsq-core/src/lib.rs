//! The nsqd domain: topics, channels, messages and the queues that hold them.
//!
//! This crate is the part of nsqd that a reader of Go's `nsqd/topic.go`, `nsqd/channel.go`, `nsqd/message.go`,
//! `nsqd/guid.go` and `nsqd/in_flight_pqueue.go` should look at. It owns the delivery semantics (fan-out from a
//! topic to its channels, RDY-driven hand-off to consumers, in-flight timeouts, deferred requeues) and nothing
//! else: it never touches sockets, HTTP or JSON, and it knows connected clients only through the [`Consumer`]
//! trait, which mirrors Go's `Consumer` interface.
//!
//! The shared pieces:
//! - [`Topics`] is the registry (Go's `NSQD.topicMap`): get-or-create, lookup and delete of topics, plus the
//!   cascade that removes ephemeral channels and topics when their last consumer goes.
//! - [`Topic`] fans every published message out to each [`Channel`], sharing the body `Bytes` (no copy per
//!   channel). With no channel, or while paused, messages wait in the topic's own queue.
//! - [`Channel`] holds the memory queue, the overflow backend, the in-flight and the deferred queues.
//! - [`QueueScan`] wakes channels exactly when their earliest in-flight or deferred deadline is due, so idle
//!   channels cost nothing (Go polls random channels every 100 ms instead).

mod backend;
mod channel;
mod config;
mod consumer;
mod deferred;
pub mod diskqueue;
mod error;
mod events;
mod guid;
mod in_flight;
mod message;
mod quantile;
mod scan;
mod shared;
pub mod stats;
mod topic;
mod topics;

pub use backend::{
    BackendQueue, DiskBackend, DiskStorage, DummyBackend, MemoryBackend, Storage, WriteReceipt,
    WriteTicket,
};
pub use channel::Channel;
pub use config::CoreConfig;
pub use consumer::Consumer;
pub use error::Error;
pub use events::{Event, EventSink};
pub use guid::GuidFactory;
pub use message::{now_ns, Message, DISK_HEADER_LEN};
pub use nsq_protocol::MessageId;
pub use scan::QueueScan;
pub use topic::Topic;
pub use topics::Topics;
