//! Raw DEFLATE (RFC 1951, no zlib header or trailer) with a sync flush after every write, which is what Go's
//! `compress/flate` writer produces on a connection that negotiated `deflate`.
//!
//! A sync flush ends the current block and adds an empty stored block (`00 00 ff ff`), so the peer can inflate
//! everything written so far without waiting for the stream to end. The stream itself never ends while the
//! connection lives: the dictionary carries over from one write to the next.

use bytes::{Buf, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::CodecError;

/// The most the scratch buffers grow to; bigger inputs and outputs are handled in several steps.
const SCRATCH_MAX: usize = 64 * 1024;

/// The smallest scratch buffer, so that tiny writes do not need many steps.
const SCRATCH_MIN: usize = 4 * 1024;

/// Wraps one `flate2::Compress` for the whole connection.
pub(super) struct DeflateEncoder {
    raw: Compress,
    /// Compressed output lands here before it is copied to the caller's buffer; zeroed once, then reused.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for DeflateEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeflateEncoder")
            .field("total_in", &self.raw.total_in())
            .field("total_out", &self.raw.total_out())
            .finish_non_exhaustive()
    }
}

impl DeflateEncoder {
    /// Go accepts levels 1 (best speed) to 9 (best compression) from IDENTIFY; anything else is clamped.
    pub(super) fn new(level: u32) -> Self {
        Self {
            raw: Compress::new(Compression::new(level.clamp(1, 9)), false),
            scratch: Vec::new(),
        }
    }

    pub(super) fn encode(&mut self, plain: &[u8], out: &mut BytesMut) {
        if plain.is_empty() {
            return;
        }
        // Room for the input as stored blocks plus the flush marker, so incompressible data needs one step.
        let want = (plain.len() + plain.len() / 16 + 64).clamp(SCRATCH_MIN, SCRATCH_MAX);
        if self.scratch.len() < want {
            self.scratch.resize(want, 0);
        }
        out.reserve(plain.len() / 2 + 16);
        let mut rest = plain;
        loop {
            let before_in = self.raw.total_in();
            let before_out = self.raw.total_out();
            // Compressing into a plain slice only fails on misuse of the zlib API (a changed flush mode in
            // the middle of a finish, for example), which this loop never does; stopping keeps the stream
            // as it is.
            if self
                .raw
                .compress(rest, &mut self.scratch, FlushCompress::Sync)
                .is_err()
            {
                return;
            }
            let used = counter_delta(before_in, self.raw.total_in());
            let written = counter_delta(before_out, self.raw.total_out());
            rest = &rest[used.min(rest.len())..];
            out.extend_from_slice(&self.scratch[..written]);
            // zlib's rule: a flush is complete once the compressor returns with output space left over.
            if rest.is_empty() && written < self.scratch.len() {
                return;
            }
        }
    }
}

/// Inflates a raw DEFLATE stream incrementally with one `flate2::Decompress` for the whole connection.
pub(super) struct DeflateDecoder {
    raw: Decompress,
    /// Inflated output lands here before it is copied to the caller's buffer; zeroed once, then reused.
    scratch: Vec<u8>,
    /// The stream's final block has been decoded; Go's reader reports end of stream after it.
    finished: bool,
}

impl std::fmt::Debug for DeflateDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeflateDecoder")
            .field("total_in", &self.raw.total_in())
            .field("total_out", &self.raw.total_out())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl DeflateDecoder {
    pub(super) fn new() -> Self {
        Self {
            raw: Decompress::new(false),
            scratch: Vec::new(),
            finished: false,
        }
    }

    pub(super) fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
        limit: usize,
    ) -> Result<usize, CodecError> {
        let mut produced = 0;
        while produced < limit {
            if self.finished {
                if !input.is_empty() {
                    return Err(CodecError::DeflateAfterEnd { len: input.len() });
                }
                break;
            }
            let room = (limit - produced).min(SCRATCH_MAX);
            if self.scratch.len() < room {
                self.scratch.resize(room.max(SCRATCH_MIN), 0);
            }
            let before_in = self.raw.total_in();
            let before_out = self.raw.total_out();
            let status = self
                .raw
                .decompress(input, &mut self.scratch[..room], FlushDecompress::None)
                .map_err(CodecError::Deflate)?;
            let used = counter_delta(before_in, self.raw.total_in());
            let written = counter_delta(before_out, self.raw.total_out());
            input.advance(used.min(input.len()));
            out.extend_from_slice(&self.scratch[..written]);
            produced += written;
            if status == Status::StreamEnd {
                self.finished = true;
                continue;
            }
            // No progress means the inflater has handed out all it can and needs more input. (It may hold
            // output back only when the output space ran out, and then the loop comes around again.)
            if used == 0 && written == 0 {
                break;
            }
        }
        Ok(produced)
    }
}

/// How far a `total_in`/`total_out` counter moved during one call; one call never moves it by more than the
/// length of a slice, so the value fits in `usize`.
fn counter_delta(before: u64, after: u64) -> usize {
    usize::try_from(after.saturating_sub(before)).unwrap_or(usize::MAX)
}
