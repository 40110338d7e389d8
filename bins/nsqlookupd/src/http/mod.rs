//! nsqlookupd's HTTP API, answering as Go's does: routes, statuses, JSON bodies, header order and
//! httprouter's quirks. The golden captures in `shared/golden/http/nsqlookupd.json` are the reference.
//!
//! - [`router()`] builds the axum `Router`; one fallback handler routes by itself (`router` module), because
//!   httprouter's 405, OPTIONS and redirect behaviour is part of what clients see;
//! - `api` holds the endpoints, `response` lays answers out in Go's header order;
//! - [`serve`] runs it on hyper with title-case header names, Go's answer to a request line it cannot
//!   parse, and a graceful shutdown.
//!
//! Request bodies are never read: no lookupd endpoint uses one (Go reads and ignores them).

mod api;
mod response;
mod router;
mod server;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use hyper::StatusCode;

pub use server::serve;

use crate::Context;
use router::Resolved;

/// The HTTP API as an axum `Router`.
pub fn router(ctx: Arc<Context>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(ctx)
}

/// Routes one request and runs it.
async fn dispatch(State(ctx): State<Arc<Context>>, req: Request) -> Response {
    let path = router::decode_path(req.uri().path());
    let query = req.uri().query();
    match router::resolve(req.method(), &path, query) {
        Resolved::Handle(endpoint) => api::handle(&ctx, endpoint, query),
        Resolved::Redirect { status, location } => {
            response::redirect(status, &location, req.method())
        }
        Resolved::Options { allow } => response::options(&allow),
        Resolved::MethodNotAllowed { allow } => response::method_not_allowed(&allow),
        Resolved::NotFound => response::v1_error(StatusCode::NOT_FOUND, "NOT_FOUND"),
    }
}
