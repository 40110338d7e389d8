//! nsqd's HTTP API, answering as Go's nsqd does: same routes, statuses, bodies, header order and router quirks.
//!
//! Clients such as go-nsq, pynsq, nsqjs and nsqadmin parse these answers, and the golden captures in
//! `shared/golden/http` are the reference. The pieces:
//! - [`router()`] builds the axum `Router`; its single handler routes by itself (the `router` module) because
//!   httprouter's 405, OPTIONS and redirect behaviour is part of what clients see;
//! - `api` holds the endpoints, `stats*` the `/stats` snapshot and its JSON and text renderings;
//! - `response` lays responses out in Go's header order, `request` parses queries and reads bodies with limits;
//! - [`serve`] runs the router on hyper with title-case header names and a graceful shutdown, and answers a
//!   request line Go could not parse with Go's own `400 Bad Request` bytes.
//!
//! Debug routes (`/debug/pprof*`, `/debug/setblockrate`, `/debug/freememory`) are Go runtime tools and are not
//! provided; they answer 404 like any unknown path.

mod api;
mod gofmt;
mod request;
mod response;
mod router;
mod server;
mod stats;
mod stats_json;
mod stats_text;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use hyper::header;

pub use server::serve;

use crate::context::Context;
use request::BodyReader;
use router::Resolved;

/// The HTTP API as an axum `Router` (for `serve`, and for tests with `oneshot`).
pub fn router(ctx: Arc<Context>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(ctx)
}

/// Routes one request, runs it, and then treats the unread rest of the body as Go's server does.
async fn dispatch(State(ctx): State<Arc<Context>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let has_body =
        declared.is_some_and(|n| n > 0) || parts.headers.contains_key(header::TRANSFER_ENCODING);
    let expect_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let body = BodyReader::new(body, declared, has_body, expect_continue);

    let (mut res, mut body) = if ctx.opts.tls_required == crate::options::TLS_REQUIRED {
        (
            response::tls_required(api::port_of(&ctx.opts.https_address)),
            body,
        )
    } else {
        route(&ctx, parts, body).await
    };
    if body.finish().await {
        response::close_connection(&mut res);
    }
    res
}

/// Applies the router's decision; returns the response and the body (as far as the handler read it).
async fn route(
    ctx: &Arc<Context>,
    parts: hyper::http::request::Parts,
    body: BodyReader,
) -> (Response, BodyReader) {
    let path = router::decode_path(parts.uri.path());
    let query = parts.uri.query().map(str::to_owned);
    match router::resolve(&parts.method, &path, query.as_deref()) {
        Resolved::Handle { endpoint, param } => {
            let mut req = api::ApiRequest {
                method: parts.method,
                query,
                param,
                body,
            };
            let res = api::handle(ctx, endpoint, &mut req).await;
            (res, req.body)
        }
        Resolved::Redirect { status, location } => {
            (response::redirect(status, &location, &parts.method), body)
        }
        Resolved::Options { allow } => (response::options(&allow), body),
        Resolved::MethodNotAllowed { allow } => (response::method_not_allowed(&allow), body),
        Resolved::NotFound => (
            response::v1_error(hyper::StatusCode::NOT_FOUND, "NOT_FOUND"),
            body,
        ),
    }
}

#[cfg(test)]
mod tests;
