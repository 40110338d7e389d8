//! Responses laid out exactly as Go's `net/http` writes nsq's `http_api` answers.
//!
//! Clients and the golden captures see header order, so it is built here rather than left to hyper: the
//! handler's headers sorted by canonical name, then `Date`, then `Content-Length`, then a sniffed
//! `Content-Type` for untyped bodies. A body over Go's 2 KiB write buffer goes out chunked. hyper writes a
//! `HeaderMap` in insertion order and keeps the `Date` it is given; the server turns on title-case names, so
//! `x-nsq-content-type` leaves as Go's canonical `X-Nsq-Content-Type`.
//!
//! nsqd has the same layer (`bins/nsqd/src/http/response.rs`); the two should become one shared crate.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::Frame;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde::Serialize;

/// nsq's marker that a body is in the V1 format (go-nsq reads top-level JSON only when it is present).
const NSQ_CONTENT_TYPE: HeaderName = HeaderName::from_static("x-nsq-content-type");
const NSQ_V1: HeaderValue = HeaderValue::from_static("nsq; version=1.0");
const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
const TEXT_HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");

/// Go's `bufferBeforeChunkingSize`: a larger body is sent chunked.
const CHUNKING_THRESHOLD: usize = 2048;

/// Go's answer to a request line it cannot parse at all.
pub(crate) const GO_BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; \
charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request";

/// A response under construction.
#[derive(Debug)]
struct GoResponse {
    status: StatusCode,
    /// Headers the handler set; sorted by canonical name when built, as Go writes them.
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    /// Whether Go would sniff a `Content-Type` from the body (the handler set none).
    sniff: bool,
}

impl GoResponse {
    fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            sniff: false,
        }
    }

    fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn body(mut self, body: impl Into<Bytes>, sniff: bool) -> Self {
        self.body = body.into();
        self.sniff = sniff;
        self
    }

    fn build(mut self) -> Response {
        self.headers
            .sort_by_cached_key(|(name, _)| canonical_name(name.as_str()));
        let mut res = Response::new(Body::empty());
        *res.status_mut() = self.status;
        let map = res.headers_mut();
        for (name, value) in self.headers {
            map.append(name, value);
        }
        if let Ok(date) = HeaderValue::try_from(http_date(crate::now_ns() / 1_000_000_000)) {
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

/// Go's `http_api.RespondV1` with a value: Go's JSON encoding, `Content-Type` and `X-Nsq-Content-Type`.
pub(crate) fn v1_json<T: Serialize + ?Sized>(value: &T) -> Response {
    match nsq_protocol::to_go_json(value) {
        Ok(body) => GoResponse::new(StatusCode::OK)
            .header(header::CONTENT_TYPE, JSON)
            .header(NSQ_CONTENT_TYPE, NSQ_V1)
            .body(body, false)
            .build(),
        Err(err) => {
            tracing::error!("encoding a JSON response failed: {err}");
            v1_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR")
        }
    }
}

/// The body of every nsq HTTP error.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
}

fn v1_error_response(status: StatusCode, code: &str) -> GoResponse {
    // A struct of one string cannot fail to serialize.
    let body = nsq_protocol::to_go_json(&ErrorBody { message: code }).unwrap_or_default();
    GoResponse::new(status)
        .header(header::CONTENT_TYPE, JSON)
        .header(NSQ_CONTENT_TYPE, NSQ_V1)
        .body(body, false)
}

/// An nsq error answer: `status` with `{"message":"<code>"}`.
pub(crate) fn v1_error(status: StatusCode, code: &str) -> Response {
    v1_error_response(status, code).build()
}

/// A V1 success without a value (Go's handler returned `nil`): `X-Nsq-Content-Type`, `Date`,
/// `Content-Length: 0`.
pub(crate) fn v1_empty() -> Response {
    GoResponse::new(StatusCode::OK)
        .header(NSQ_CONTENT_TYPE, NSQ_V1)
        .build()
}

/// nsq's `PlainText` decorator (`/ping`): no `X-Nsq-Content-Type`, type sniffed.
pub(crate) fn plain_text(body: &'static str) -> Response {
    GoResponse::new(StatusCode::OK).body(body, true).build()
}

/// httprouter's automatic `OPTIONS` answer: 200, `Allow`, empty body.
pub(crate) fn options(allow: &str) -> Response {
    let mut res = GoResponse::new(StatusCode::OK);
    if let Ok(allow) = HeaderValue::try_from(allow) {
        res = res.header(header::ALLOW, allow);
    }
    res.build()
}

/// httprouter's 405 with nsq's body; `Allow` sorts first.
pub(crate) fn method_not_allowed(allow: &str) -> Response {
    let mut res = v1_error_response(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    if let Ok(allow) = HeaderValue::try_from(allow) {
        res = res.header(header::ALLOW, allow);
    }
    res.build()
}

/// Go's `http.Redirect` to a local path: `Location`, and for GET (type also for HEAD) a small HTML body.
pub(crate) fn redirect(status: StatusCode, location: &str, method: &Method) -> Response {
    let Ok(value) = HeaderValue::try_from(location) else {
        return v1_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    let mut res = GoResponse::new(status).header(header::LOCATION, value);
    if method == Method::GET || method == Method::HEAD {
        res = res.header(header::CONTENT_TYPE, TEXT_HTML);
    }
    if method == Method::GET {
        let reason = status.canonical_reason().unwrap_or("");
        let body = format!("<a href=\"{}\">{reason}</a>.\n\n", html_escape(location));
        res = res.body(body, false);
    }
    res.build()
}

/// Go's `CanonicalMIMEHeaderKey`, the key Go sorts headers by.
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

/// The part of Go's `http.DetectContentType` our bodies reach: text or binary.
fn sniff_content_type(body: &[u8]) -> HeaderValue {
    let head = &body[..body.len().min(512)];
    if head
        .iter()
        .any(|&b| matches!(b, 0x00..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f))
    {
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

/// An RFC 7231 date (`Sat, 21 Nov 2026 16:09:33 GMT`) for Unix seconds `secs`.
fn http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month_name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A body that does not announce its size, so hyper sends it chunked.
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

/// An empty body of known length 0, so hyper keeps our `Content-Length: 0` where we put it.
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
    fn header_order_is_gos() {
        let json = [
            "Content-Type",
            "X-Nsq-Content-Type",
            "Date",
            "Content-Length",
        ];
        assert_eq!(names(&v1_error(StatusCode::NOT_FOUND, "NOT_FOUND")), json);
        assert_eq!(names(&v1_json(&ErrorBody { message: "x" })), json);
        assert_eq!(
            names(&v1_empty()),
            ["X-Nsq-Content-Type", "Date", "Content-Length"]
        );
        assert_eq!(
            names(&plain_text("OK")),
            ["Date", "Content-Length", "Content-Type"]
        );
        assert_eq!(
            names(&method_not_allowed("GET, OPTIONS"))[0..2],
            ["Allow", "Content-Type"]
        );
        assert_eq!(
            names(&options("GET, OPTIONS")),
            ["Allow", "Date", "Content-Length"]
        );
        let res = redirect(
            StatusCode::MOVED_PERMANENTLY,
            "/lookup?topic=a",
            &Method::GET,
        );
        assert_eq!(
            names(&res),
            ["Content-Type", "Location", "Date", "Content-Length"]
        );
        assert_eq!(res.headers()[header::CONTENT_LENGTH], "50");
    }

    #[test]
    fn large_bodies_are_chunked() {
        let big = "x".repeat(CHUNKING_THRESHOLD);
        assert!(!v1_json(&big).headers().contains_key(header::CONTENT_LENGTH));
        let small = "x".repeat(CHUNKING_THRESHOLD - 2);
        assert!(v1_json(&small)
            .headers()
            .contains_key(header::CONTENT_LENGTH));
    }

    #[test]
    fn dates_are_rfc7231() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_795_277_373), "Sat, 21 Nov 2026 16:09:33 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
