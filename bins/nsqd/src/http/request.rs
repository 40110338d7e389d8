//! The request side of the API: a request body reader that never holds more than the caller's limit and that reproduces what Go's server does with a body the
//! handler left unread.
//!
//! That last part is visible to clients: Go discards up to 256 KiB of leftover body so the connection can be
//! reused, and closes it (adding `Connection: close`) when more is left, for example after a 413 on a
//! `Content-Length` that is too big. Closing a socket with unread data makes the kernel send a reset that can
//! destroy the response before the client reads it; Go avoids that with a delayed close, we avoid it by
//! discarding the rest of such a body (bounded in bytes and time) before answering.

use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use hyper::body::Body as _;

/// Reading the request body failed (the client went away or sent a broken chunked encoding).
#[derive(Debug)]
pub(crate) struct BodyError;

/// What Go's server reads of a leftover body before it gives up and closes the connection.
const MAX_POST_HANDLER_READ: u64 = 256 << 10;
/// How much of a too-large leftover body is discarded, at most, to spare the client a reset.
const RESET_AVOIDANCE_MAX_BYTES: u64 = 64 << 20;
/// How long discarding a leftover body may take.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(3);

/// The request body with the accounting Go's server keeps.
#[derive(Debug)]
pub(crate) struct BodyReader {
    body: Body,
    /// The request's `Content-Length`; `None` for a chunked body.
    declared: Option<u64>,
    /// Bytes taken from the stream so far.
    consumed: u64,
    /// The stream has ended (or the request has no body).
    done: bool,
    /// The client sent `Expect: 100-continue`; hyper answers it when the body is first read.
    expect_continue: bool,
    /// The body has been read from at least once.
    polled: bool,
}

impl BodyReader {
    /// Wraps a request body. `has_body` is false for a request with neither a length nor chunked encoding.
    /// `expect_continue` tells that the client waits for `100 Continue` before it sends the body.
    pub(crate) fn new(
        body: Body,
        declared: Option<u64>,
        has_body: bool,
        expect_continue: bool,
    ) -> Self {
        let done = !has_body || declared == Some(0);
        Self {
            body,
            declared,
            consumed: 0,
            done,
            expect_continue,
            polled: false,
        }
    }

    /// The request's `Content-Length`, if it gave one.
    pub(crate) fn declared(&self) -> Option<u64> {
        self.declared
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        loop {
            if self.done {
                return Ok(None);
            }
            self.polled = true;
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_frame(cx)).await;
            match frame {
                None => {
                    self.done = true;
                    return Ok(None);
                }
                Some(Err(_)) => {
                    self.done = true;
                    return Err(BodyError);
                }
                Some(Ok(frame)) => {
                    // Trailers carry nothing for us.
                    if let Ok(data) = frame.into_data() {
                        self.consumed += data.len() as u64;
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Reads at most `limit` bytes (Go's `io.LimitReader` + `ReadAll`). Only `limit` bytes are ever buffered,
    /// whatever the client declared or sends.
    pub(crate) async fn read_capped(&mut self, limit: usize) -> Result<Bytes, BodyError> {
        let hint = self
            .declared
            .map_or(0, |d| usize::try_from(d).unwrap_or(usize::MAX));
        let mut buf = BytesMut::with_capacity(hint.min(limit).min(1 << 20));
        while buf.len() < limit {
            let Some(chunk) = self.next_chunk().await? else {
                break;
            };
            let take = chunk.len().min(limit - buf.len());
            buf.extend_from_slice(&chunk[..take]);
        }
        Ok(buf.freeze())
    }

    /// Discards up to `max` bytes; true when the body ended within them.
    async fn discard(&mut self, max: u64) -> Result<bool, BodyError> {
        let start = self.consumed;
        while self.consumed - start < max {
            if self.next_chunk().await?.is_none() {
                return Ok(true);
            }
        }
        Ok(self.done)
    }

    /// What Go's server does after the handler: returns true when the connection must close. A leftover
    /// body of 256 KiB or more closes it; a smaller one is discarded so the connection stays usable. A client
    /// that asked for `100-continue` and was not sent it never sends the body: the connection just closes (Go
    /// does not reuse a connection whose expected body it did not finish either).
    pub(crate) async fn finish(&mut self) -> bool {
        if self.done {
            return false;
        }
        if self.expect_continue && !self.polled {
            return true;
        }
        let too_big = match self.declared {
            Some(declared) => declared.saturating_sub(self.consumed) >= MAX_POST_HANDLER_READ,
            None => false,
        };
        if !too_big {
            match tokio::time::timeout(DISCARD_TIMEOUT, self.discard(MAX_POST_HANDLER_READ + 1))
                .await
            {
                Ok(Ok(true)) => return false,
                Ok(Ok(false)) => {}
                Ok(Err(BodyError)) | Err(_) => return true,
            }
        }
        let _ =
            tokio::time::timeout(DISCARD_TIMEOUT, self.discard(RESET_AVOIDANCE_MAX_BYTES)).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_capped_never_exceeds_the_limit() {
        let mut body = BodyReader::new(Body::from(vec![7u8; 100]), Some(100), true, false);
        let got = body.read_capped(11).await.unwrap();
        assert_eq!(got.len(), 11);
        let mut body = BodyReader::new(Body::from("hello"), Some(5), true, false);
        assert_eq!(&body.read_capped(6).await.unwrap()[..], b"hello");
        assert!(!body.finish().await);
    }

    #[tokio::test]
    async fn large_leftover_closes_the_connection() {
        let size = (MAX_POST_HANDLER_READ + 10) as usize;
        let mut body = BodyReader::new(Body::from(vec![1u8; size]), Some(size as u64), true, false);
        assert!(body.finish().await);
        let mut body = BodyReader::new(Body::from(vec![1u8; 1000]), Some(1000), true, false);
        assert!(!body.finish().await);
        let mut body = BodyReader::new(Body::empty(), None, false, false);
        assert!(!body.finish().await);
        // An expected body that was never asked for: close without reading.
        let mut body = BodyReader::new(Body::from("abc"), Some(3), true, true);
        assert!(body.finish().await);
        assert!(!body.polled);
    }
}
