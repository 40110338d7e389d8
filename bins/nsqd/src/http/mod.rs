//! nsqd's HTTP API, answering as Go's nsqd does: same routes, statuses, bodies, header order and router quirks.
//!
//! Clients such as go-nsq, pynsq, nsqjs and nsqadmin parse these answers, and the golden captures in
//! `shared/golden/http` are the reference. The pieces:
//! - [`router()`] builds the axum `Router`; its single handler routes by itself (the `router` module holds
//!   nsqd's table, matched by `nsq_http::router`) because httprouter's 405, OPTIONS and redirect behaviour is
//!   part of what clients see;
//! - `api` holds the endpoints, `stats*` the `/stats` snapshot and its JSON and text renderings, `metrics`
//!   the same snapshot as Prometheus text for `/metrics`;
//! - `request` parses queries and reads bodies with limits; responses are laid out in Go's header order by
//!   `nsq_http::response`, shared with nsqlookupd;
//! - `nsq_http::serve` runs the router on hyper: title-case header names, a graceful shutdown, and
//!   Go's own `400 Bad Request` bytes for a request line Go could not parse.
//!
//! Debug routes (`/debug/pprof*`, `/debug/setblockrate`, `/debug/freememory`) are Go runtime tools and are not
//! provided; they answer 404 like any unknown path.

mod api;
mod metrics;
mod request;
mod router;
pub(crate) mod stats;
mod stats_json;
mod stats_text;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use hyper::{header, StatusCode};
use nsq_http::response::{self, GoResponse, JSON, NSQ_CONTENT_TYPE, NSQ_V1};

use crate::context::Context;
use request::BodyReader;

/// The HTTP API as an axum `Router` for the plain HTTP listener (for `nsq_http::serve`, and for tests with
/// `oneshot`). With `--tls-required=true` it answers every request with Go's 403 `TLS_REQUIRED`.
pub fn router(ctx: Arc<Context>) -> axum::Router {
    axum::Router::new()
        .fallback(dispatch)
        .with_state(Served { ctx, https: false })
}

/// The same API for the HTTPS listener, where TLS is by definition in place.
pub fn https_router(ctx: Arc<Context>) -> axum::Router {
    axum::Router::new()
        .fallback(dispatch)
        .with_state(Served { ctx, https: true })
}

/// A router's state: the daemon and which listener it serves.
#[derive(Debug, Clone)]
struct Served {
    ctx: Arc<Context>,
    https: bool,
}

/// Routes one request, runs it, and then treats the unread rest of the body as Go's server does.
async fn dispatch(State(Served { ctx, https }): State<Served>, req: Request) -> Response {
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

    let (mut res, mut body) = if !https && ctx.opts.tls_required == crate::options::TLS_REQUIRED {
        let https_port = ctx
            .https_addr
            .map_or_else(|| api::port_of(&ctx.opts.https_address), |a| a.port());
        (tls_required(https_port), body)
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
    let path = nsq_http::router::decode_path(parts.uri.path());
    let query = parts.uri.query().map(str::to_owned);
    match router::resolve(&parts.method, &path, query.as_deref()).into_endpoint(&parts.method) {
        Ok((endpoint, param)) => {
            let mut req = api::ApiRequest {
                method: parts.method,
                query,
                param,
                body,
            };
            let res = api::handle(ctx, endpoint, &mut req).await;
            (res, req.body)
        }
        Err(answer) => (answer, body),
    }
}

/// The plain-HTTP answer of an nsqd started with `--tls-required=true`; Go formats this body by hand.
fn tls_required(https_port: u16) -> Response {
    let body = format!("{{\"message\": \"TLS_REQUIRED\", \"https_port\": {https_port}}}");
    GoResponse::new(StatusCode::FORBIDDEN)
        .header(header::CONTENT_TYPE, JSON)
        .header(NSQ_CONTENT_TYPE, NSQ_V1)
        .typed_body(body)
        .build()
}

#[cfg(test)]
mod tests;
