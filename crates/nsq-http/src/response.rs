//! Responses laid out exactly as Go's `net/http` writes nsq's `http_api` answers, for both daemons.
//!
//! Clients see the header order, so it is reproduced here rather than left to hyper. Go writes the handler's
//! headers sorted by name, then `Date`, then `Content-Length`, then the headers it adds itself: a sniffed
//! `Content-Type` for untyped bodies and `Connection: close`. A body larger than Go's 2 KiB write buffer goes
//! out chunked. hyper writes a `HeaderMap` in insertion order and keeps a `Date` it is given, so building the
//! map in Go's order (with our own `Date`) gives Go's bytes; hyper adds `Transfer-Encoding: chunked` last, which
//! is also where Go puts it. The server enables title-case header names, which turns `x-nsq-content-type` into
//! Go's canonical `X-Nsq-Content-Type`. [`GoResponse`] is public so that a daemon can build an answer of its
//! own (nsqd's `TLS_REQUIRED`) with the same layout.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::Frame;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::StatusCode;
use serde::Serialize;

use crate::gofmt;

/// nsq's marker that a body is in the V1 format (go-nsq reads top-level JSON only when it is present).
pub const NSQ_CONTENT_TYPE: HeaderName = HeaderName::from_static("x-nsq-content-type");
/// The value of [`NSQ_CONTENT_TYPE`] on every V1 answer.
pub const NSQ_V1: HeaderValue = HeaderValue::from_static("nsq; version=1.0");
/// The `Content-Type` of nsq's JSON answers.
pub const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
const TEXT_HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");

/// Go's `bufferBeforeChunkingSize`: a handler that writes more than this in one go gets a chunked response.
const CHUNKING_THRESHOLD: usize = 2048;

/// What Go's `net/http` sends when it cannot parse a request at all (the first request line is malformed).
pub const GO_BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; \
charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request";

/// A response under construction: the handler-set headers (sorted at the end, as Go does) and the body.
#[derive(Debug)]
pub struct GoResponse {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    /// Whether Go would sniff a `Content-Type` for the body (the handler set none).
    sniff: bool,
}

impl GoResponse {
    /// An empty response with `status` and no headers yet.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            sniff: false,
        }
    }

    /// Adds a handler-set header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets a body whose type Go would detect from its bytes.
    pub fn sniffed_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.sniff = true;
        self
    }

    /// Sets a body whose `Content-Type` the handler already gave.
    pub fn typed_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.sniff = false;
        self
    }

    /// Builds the response with Go's header order.
    pub fn build(mut self) -> Response {
        self.headers
            .sort_by_cached_key(|(name, _)| canonical_name(name.as_str()));
        let mut res = Response::new(Body::empty());
        *res.status_mut() = self.status;
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // Go's status text for 413 is the older RFC 2616 one; hyper would write "Payload Too Large".
            res.extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(
                    b"Request Entity Too Large",
                ));
        }
        let map = res.headers_mut();
        for (name, value) in self.headers {
            map.append(name, value);
        }
        if let Ok(date) = HeaderValue::try_from(gofmt::http_date(now_secs())) {
            map.insert(header::DATE, date);
        }
        let chunked = self.body.len() > CHUNKING_THRESHOLD;
        if !chunked {
            map.insert(header::CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        }
        if self.sniff && !self.body.is_empty() && !map.contains_key(header::CONTENT_TYPE) {
            map.insert(header::CONTENT_TYPE, sniff_content_type(&self.body));
        }
        *res.body_mut() = if chunked {
            Body::new(Unsized(Some(self.body)))
        } else if self.body.is_empty() {
            Body::new(ZeroLength)
        } else {
            Body::from(self.body)
        };
        res
    }
}

/// Go's `http_api.RespondV1` for a JSON value: `Content-Type`, `X-Nsq-Content-Type`, `Date`, length.
pub fn v1_json(status: StatusCode, body: Vec<u8>) -> Response {
    GoResponse::new(status)
        .header(header::CONTENT_TYPE, JSON)
        .header(NSQ_CONTENT_TYPE, NSQ_V1)
        .typed_body(body)
        .build()
}

/// Serializes `value` as Go's `json.Marshal` would and answers it with [`v1_json`].
pub fn v1_json_value<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match nsq_protocol::to_go_json(value) {
        Ok(body) => v1_json(status, body),
        Err(err) => {
            tracing::error!("encoding a JSON response failed: {err}");
            v1_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR")
        }
    }
}

/// The body of every nsq HTTP error: `{"message":"<CODE>"}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// The error code, such as `TOPIC_NOT_FOUND`.
    pub message: &'a str,
}

/// An nsq error answer: `status` with `{"message":"<code>"}`.
pub fn v1_error(status: StatusCode, code: &str) -> Response {
    v1_error_response(status, code).build()
}

fn v1_error_response(status: StatusCode, code: &str) -> GoResponse {
    // A struct of one plain string cannot fail to serialize.
    let body = nsq_protocol::to_go_json(&ErrorBody { message: code }).unwrap_or_default();
    GoResponse::new(status)
        .header(header::CONTENT_TYPE, JSON)
        .header(NSQ_CONTENT_TYPE, NSQ_V1)
        .typed_body(body)
}

/// A V1 success whose value is a string: written raw, typed by sniffing (empty: no `Content-Type`).
pub fn v1_text(body: impl Into<Bytes>) -> Response {
    GoResponse::new(StatusCode::OK)
        .header(NSQ_CONTENT_TYPE, NSQ_V1)
        .sniffed_body(body)
        .build()
}

/// A V1 success without a value: `X-Nsq-Content-Type`, `Date`, `Content-Length: 0`.
pub fn v1_empty() -> Response {
    v1_text(Bytes::new())
}

/// nsq's `PlainText` decorator (only `/ping` uses it): no `X-Nsq-Content-Type`.
pub fn plain_text(status: StatusCode, body: impl Into<Bytes>) -> Response {
    GoResponse::new(status).sniffed_body(body).build()
}

/// httprouter's automatic answer to `OPTIONS` on a known path: 200, `Allow`, empty body.
pub fn options(allow: &str) -> Response {
    let mut res = GoResponse::new(StatusCode::OK);
    if let Ok(allow) = HeaderValue::try_from(allow) {
        res = res.header(header::ALLOW, allow);
    }
    res.build()
}

/// httprouter's 405: an `Allow` header (sorted first, as Go sorts header names) and nsq's body.
pub fn method_not_allowed(allow: &str) -> Response {
    let mut res = v1_error_response(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    if let Ok(allow) = HeaderValue::try_from(allow) {
        res = res.header(header::ALLOW, allow);
    }
    res.build()
}

/// Go's `http.Redirect` to an absolute path: `Content-Type` and a small HTML body only for GET (the type also for
/// HEAD), `Location`, then the usual `Date` and length.
pub fn redirect(status: StatusCode, location: &str, method: &hyper::Method) -> Response {
    let Ok(value) = HeaderValue::try_from(location) else {
        return v1_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    let mut res = GoResponse::new(status).header(header::LOCATION, value);
    if method == hyper::Method::GET || method == hyper::Method::HEAD {
        res = res.header(header::CONTENT_TYPE, TEXT_HTML);
    }
    if method == hyper::Method::GET {
        let reason = status.canonical_reason().unwrap_or("");
        res = res.typed_body(format!(
            "<a href=\"{}\">{reason}</a>.\n\n",
            html_escape(location)
        ));
    }
    res.build()
}

/// Appends `Connection: close`, which Go adds (after the length) when it gives up reading a large request body.
pub fn close_connection(res: &mut Response) {
    res.headers_mut()
        .append(header::CONNECTION, HeaderValue::from_static("close"));
}

/// Go's `CanonicalMIMEHeaderKey`, used as the sort key because Go sorts the canonical names.
fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// The part of Go's `http.DetectContentType` that our plain bodies can reach: text, or binary data.
fn sniff_content_type(body: &[u8]) -> HeaderValue {
    let head = &body[..body.len().min(512)];
    let binary = head
        .iter()
        .any(|&b| matches!(b, 0x00..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f));
    if binary {
        HeaderValue::from_static("application/octet-stream")
    } else {
        HeaderValue::from_static("text/plain; charset=utf-8")
    }
}

/// Go's `htmlEscape` in `http.Redirect`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Unix seconds now, for the `Date` header.
fn now_secs() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// A body that yields its bytes in one frame but does not announce its size, so hyper sends it chunked.
#[derive(Debug)]
struct Unsized(Option<Bytes>);

impl hyper::body::Body for Unsized {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

/// An empty body that hyper treats as "known length 0" rather than "no body": hyper then writes our
/// `Content-Length: 0` where we put it instead of appending its own after a `Connection: close` it adds.
#[derive(Debug)]
struct ZeroLength;

impl hyper::body::Body for ZeroLength {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(None)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(res: &Response) -> Vec<String> {
        res.headers()
            .keys()
            .map(|k| canonical_name(k.as_str()))
            .collect()
    }

    #[test]
    fn json_header_order_is_gos() {
        let res = v1_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        assert_eq!(
            names(&res),
            [
                "Content-Type",
                "X-Nsq-Content-Type",
                "Date",
                "Content-Length"
            ]
        );
        assert_eq!(res.headers()[header::CONTENT_LENGTH], "23");
    }

    #[test]
    fn text_header_order_is_gos() {
        let res = v1_text("OK");
        assert_eq!(
            names(&res),
            [
                "X-Nsq-Content-Type",
                "Date",
                "Content-Length",
                "Content-Type"
            ]
        );
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        let res = v1_empty();
        assert_eq!(
            names(&res),
            ["X-Nsq-Content-Type", "Date", "Content-Length"]
        );
        assert_eq!(res.headers()[header::CONTENT_LENGTH], "0");
        let res = plain_text(StatusCode::OK, "OK");
        assert_eq!(names(&res), ["Date", "Content-Length", "Content-Type"]);
    }

    #[test]
    fn allow_goes_first_and_options_is_bare() {
        let res = method_not_allowed("GET, OPTIONS");
        assert_eq!(
            names(&res),
            [
                "Allow",
                "Content-Type",
                "X-Nsq-Content-Type",
                "Date",
                "Content-Length"
            ]
        );
        let res = options("OPTIONS, POST");
        assert_eq!(names(&res), ["Allow", "Date", "Content-Length"]);
    }

    #[test]
    fn redirects_match_go() {
        let res = redirect(
            StatusCode::MOVED_PERMANENTLY,
            "/stats?format=json",
            &hyper::Method::GET,
        );
        assert_eq!(
            names(&res),
            ["Content-Type", "Location", "Date", "Content-Length"]
        );
        assert_eq!(res.headers()[header::CONTENT_LENGTH], "53");
        let res = redirect(
            StatusCode::TEMPORARY_REDIRECT,
            "/pub?topic=alpha",
            &hyper::Method::POST,
        );
        assert_eq!(names(&res), ["Location", "Date", "Content-Length"]);
        assert_eq!(res.headers()[header::CONTENT_LENGTH], "0");
        assert_eq!(html_escape("/a?b=1&c=\"2\""), "/a?b=1&amp;c=&#34;2&#34;");
    }

    #[test]
    fn large_bodies_are_chunked() {
        let res = v1_json(StatusCode::OK, vec![b'x'; CHUNKING_THRESHOLD]);
        assert!(res.headers().contains_key(header::CONTENT_LENGTH));
        let res = v1_json(StatusCode::OK, vec![b'x'; CHUNKING_THRESHOLD + 1]);
        assert!(!res.headers().contains_key(header::CONTENT_LENGTH));
        assert_eq!(names(&res), ["Content-Type", "X-Nsq-Content-Type", "Date"]);
    }

    #[test]
    fn binary_text_is_sniffed_as_octet_stream() {
        assert_eq!(
            sniff_content_type(b"127.0.0.1"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff_content_type(b"\x00\x01"), "application/octet-stream");
    }
}
