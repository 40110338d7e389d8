//! The HTTP plumbing that nsqd and nsqlookupd both need in order to answer exactly as Go's daemons do.
//!
//! Both Go daemons serve their HTTP API through Go's `net/http` and `julienschmidt/httprouter` and answer with
//! nsq's `http_api` V1 helpers, so clients see the same wire details from either one. Those details live here
//! once; each daemon keeps its own endpoints, route table and handlers.
//!
//! - [`server`]: hyper's HTTP/1 server loop with title-case header names, Go's `400 Bad Request` for a request
//!   line it cannot parse, and a graceful shutdown; its [`Listener`] binds a TCP address or a unix socket path;
//! - [`router`]: httprouter's matching over a daemon's static route table, generic over the daemon's endpoint
//!   enum, with its redirects, 405 + `Allow` and automatic `OPTIONS`;
//! - [`response`]: responses in Go's header order, the V1 builders (`X-Nsq-Content-Type`) and the router's own
//!   answers;
//! - [`query`]: query strings parsed as Go's `url.ParseQuery` does;
//! - [`gofmt`]: Go's text renderings of times and durations that clients can see;
//! - [`daemon`]: the few lines of process start-up (logging, runtime, signals, command-line outcome) that
//!   both daemon binaries would otherwise repeat.

pub mod daemon;
pub mod gofmt;
pub mod prometheus;
pub mod query;
pub mod response;
pub mod router;
pub mod server;

pub use server::{is_unix_address, serve, serve_tls, Accepted, Listener};
