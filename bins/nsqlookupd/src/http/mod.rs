//! nsqlookupd's HTTP API, answering as Go's does: routes, statuses, JSON bodies, header order and
//! httprouter's quirks. The golden captures in `shared/golden/http/nsqlookupd.json` are the reference.
//!
//! - [`router()`] builds the axum `Router`; one fallback handler routes by itself (the `router` module holds
//!   lookupd's table, matched by `nsq_http::router`), because httprouter's 405, OPTIONS and redirect behaviour
//!   is part of what clients see;
//! - `api` holds the endpoints (`metrics` the Prometheus `/metrics` one); `nsq_http::response`, shared with nsqd, lays answers out in Go's header order;
//! - `nsq_http::serve` runs it on hyper: title-case header names, Go's answer to a request line it
//!   cannot parse, and a graceful shutdown.
//!
//! Request bodies are never read: no lookupd endpoint uses one (Go reads and ignores them).

mod api;
mod metrics;
mod router;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;

use crate::Context;

/// The HTTP API as an axum `Router` (for `nsq_http::serve`).
pub fn router(ctx: Arc<Context>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(ctx)
}

/// Routes one request and runs it.
async fn dispatch(State(ctx): State<Arc<Context>>, req: Request) -> Response {
    let path = nsq_http::router::decode_path(req.uri().path());
    let query = req.uri().query();
    match router::resolve(req.method(), &path, query).into_endpoint(req.method()) {
        Ok((endpoint, _)) => api::handle(&ctx, endpoint, query),
        Err(answer) => answer,
    }
}
