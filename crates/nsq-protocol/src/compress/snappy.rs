//! The snappy framing format as `golang/snappy`'s stream reader and writer speak it, which is what Go nsqd puts
//! on a connection that negotiated `snappy`.
//!
//! ```text
//! chunk:  +---------+------------------+=================+
//!         | u8 type | u24 LE length    | length bytes    |
//!         +---------+------------------+=================+
//!
//! 0xff  stream identifier   body is "sNaPpY"; first in the stream, may repeat
//! 0x00  compressed data     u32 LE masked CRC-32C of the plaintext, then a raw snappy block
//! 0x01  uncompressed data   u32 LE masked CRC-32C of the plaintext, then the plaintext
//! 0x02-0x7f                 reserved, unskippable: an error
//! 0x80-0xfe                 skippable (0xfe is padding): ignored
//! ```
//!
//! A data chunk holds at most 64 KiB of plaintext. The checksum mask is `((crc >> 15) | (crc << 17)) +
//! 0xa282ead8`. The writer sends a block uncompressed when compression saves less than an eighth, exactly like
//! Go's, so for inputs Go also leaves uncompressed our bytes are identical to Go's.

use bytes::{Buf, BufMut, BytesMut};

use super::CodecError;

/// The stream identifier chunk that opens every snappy stream.
pub const SNAPPY_STREAM_IDENTIFIER: [u8; 10] = *b"\xff\x06\x00\x00sNaPpY";

/// The most plaintext one data chunk may carry.
pub const MAX_SNAPPY_BLOCK: usize = 65536;

const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;
const CHUNK_STREAM_IDENTIFIER: u8 = 0xff;
const CHUNK_HEADER_LEN: usize = 4;
const CHECKSUM_LEN: usize = 4;

/// The longest compressed chunk Go's reader accepts: a checksum plus the worst-case encoding of a full block
/// (snappy's `MaxEncodedLen(65536)`, the same formula as `snap::raw::max_compress_len`).
const MAX_COMPRESSED_CHUNK: usize = CHECKSUM_LEN + 32 + MAX_SNAPPY_BLOCK + MAX_SNAPPY_BLOCK / 6;

/// The longest uncompressed chunk: a checksum plus a full block.
const MAX_UNCOMPRESSED_CHUNK: usize = CHECKSUM_LEN + MAX_SNAPPY_BLOCK;

/// Go's encoder emits blocks shorter than this as one literal, which never saves an eighth, so such blocks are
/// sent uncompressed without trying.
const MIN_COMPRESSIBLE_BLOCK: usize = 17;

/// The checksum the framing format stores: CRC-32C, rotated and offset so that checksumming data that contains
/// checksums does not degenerate.
fn masked_crc(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

fn put_chunk_header(out: &mut BytesMut, chunk_type: u8, len: usize) {
    // The caller keeps `len` below 2^24 (at most MAX_COMPRESSED_CHUNK), so the three low bytes are the length.
    let len = len as u32;
    out.put_u8(chunk_type);
    out.put_slice(&len.to_le_bytes()[..3]);
}

/// Writes the framing format; one per connection, so the stream identifier goes out once.
pub(super) struct SnappyEncoder {
    raw: snap::raw::Encoder,
    wrote_identifier: bool,
    /// Where blocks are compressed before we know whether the compressed form is worth sending; it grows once
    /// to the largest block seen and is reused.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for SnappyEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnappyEncoder")
            .field("wrote_identifier", &self.wrote_identifier)
            .field("scratch_len", &self.scratch.len())
            .finish_non_exhaustive()
    }
}

impl SnappyEncoder {
    pub(super) fn new() -> Self {
        Self {
            raw: snap::raw::Encoder::new(),
            wrote_identifier: false,
            scratch: Vec::new(),
        }
    }

    pub(super) fn encode(&mut self, plain: &[u8], out: &mut BytesMut) {
        if plain.is_empty() {
            return;
        }
        let blocks = plain.len().div_ceil(MAX_SNAPPY_BLOCK);
        out.reserve(
            SNAPPY_STREAM_IDENTIFIER.len()
                + blocks * (CHUNK_HEADER_LEN + CHECKSUM_LEN)
                + plain.len(),
        );
        if !self.wrote_identifier {
            out.put_slice(&SNAPPY_STREAM_IDENTIFIER);
            self.wrote_identifier = true;
        }
        for block in plain.chunks(MAX_SNAPPY_BLOCK) {
            let crc = masked_crc(block);
            match self.compress(block) {
                Some(n) => {
                    put_chunk_header(out, CHUNK_COMPRESSED, CHECKSUM_LEN + n);
                    out.put_u32_le(crc);
                    out.put_slice(&self.scratch[..n]);
                }
                None => {
                    put_chunk_header(out, CHUNK_UNCOMPRESSED, CHECKSUM_LEN + block.len());
                    out.put_u32_le(crc);
                    out.put_slice(block);
                }
            }
        }
    }

    /// Compresses `block` into the scratch buffer and returns the compressed length, or `None` when the block
    /// should go out uncompressed (Go's rule: compression must save at least an eighth).
    fn compress(&mut self, block: &[u8]) -> Option<usize> {
        if block.len() < MIN_COMPRESSIBLE_BLOCK {
            return None;
        }
        let bound = snap::raw::max_compress_len(block.len());
        if self.scratch.len() < bound {
            self.scratch.resize(bound, 0);
        }
        // The scratch buffer is large enough and the block is at most 64 KiB, so snap cannot fail here; if it
        // ever did, sending the block uncompressed is still a valid stream.
        let n = self.raw.compress(block, &mut self.scratch[..bound]).ok()?;
        (n < block.len() - block.len() / 8).then_some(n)
    }
}

/// Reads the framing format incrementally, one whole chunk at a time.
pub(super) struct SnappyDecoder {
    raw: snap::raw::Decoder,
    seen_identifier: bool,
    /// Bytes of a skippable chunk still to be dropped; skippable chunks can be 16 MiB long, so they are dropped
    /// as they arrive instead of being buffered whole.
    skip_remaining: usize,
    /// Decompressed block, grown once to the largest block seen and reused.
    block: Vec<u8>,
    /// The part of `block` decoded but not yet handed out because of the caller's limit.
    pending: std::ops::Range<usize>,
}

impl std::fmt::Debug for SnappyDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnappyDecoder")
            .field("seen_identifier", &self.seen_identifier)
            .field("skip_remaining", &self.skip_remaining)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl SnappyDecoder {
    pub(super) fn new() -> Self {
        Self {
            raw: snap::raw::Decoder::new(),
            seen_identifier: false,
            skip_remaining: 0,
            block: Vec::new(),
            pending: 0..0,
        }
    }

    pub(super) fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
        limit: usize,
    ) -> Result<usize, CodecError> {
        let mut produced = self.drain_pending(out, limit);
        while produced < limit {
            if self.skip_remaining > 0 {
                let n = self.skip_remaining.min(input.len());
                input.advance(n);
                self.skip_remaining -= n;
                if self.skip_remaining > 0 {
                    break;
                }
                continue;
            }
            if input.len() < CHUNK_HEADER_LEN {
                break;
            }
            let chunk_type = input[0];
            let len =
                usize::from(input[1]) | usize::from(input[2]) << 8 | usize::from(input[3]) << 16;
            // The header alone decides whether the chunk is acceptable, so a bad one fails before its body is
            // waited for.
            if !self.seen_identifier && chunk_type != CHUNK_STREAM_IDENTIFIER {
                return Err(CodecError::SnappyMissingStreamIdentifier { chunk_type });
            }
            match chunk_type {
                CHUNK_STREAM_IDENTIFIER => {
                    if len != SNAPPY_STREAM_IDENTIFIER.len() - CHUNK_HEADER_LEN {
                        return Err(CodecError::SnappyBadStreamIdentifier);
                    }
                    if input.len() < SNAPPY_STREAM_IDENTIFIER.len() {
                        break;
                    }
                    if input[..SNAPPY_STREAM_IDENTIFIER.len()] != SNAPPY_STREAM_IDENTIFIER {
                        return Err(CodecError::SnappyBadStreamIdentifier);
                    }
                    input.advance(SNAPPY_STREAM_IDENTIFIER.len());
                    self.seen_identifier = true;
                }
                CHUNK_COMPRESSED | CHUNK_UNCOMPRESSED => {
                    let max = if chunk_type == CHUNK_COMPRESSED {
                        MAX_COMPRESSED_CHUNK
                    } else {
                        MAX_UNCOMPRESSED_CHUNK
                    };
                    if len < CHECKSUM_LEN {
                        return Err(CodecError::SnappyChunkTooShort { len });
                    }
                    if len > max {
                        return Err(CodecError::SnappyChunkTooLong {
                            chunk_type,
                            len,
                            max,
                        });
                    }
                    if input.len() < CHUNK_HEADER_LEN + len {
                        break;
                    }
                    produced += self.data_chunk(
                        chunk_type,
                        &input[..CHUNK_HEADER_LEN + len],
                        out,
                        limit - produced,
                    )?;
                    input.advance(CHUNK_HEADER_LEN + len);
                }
                0x02..=0x7f => return Err(CodecError::SnappyReservedChunk { chunk_type }),
                _ => self.skip_remaining = CHUNK_HEADER_LEN + len,
            }
        }
        Ok(produced)
    }

    /// Hands out as much of the previously decoded block as `limit` allows.
    fn drain_pending(&mut self, out: &mut BytesMut, limit: usize) -> usize {
        let n = self.pending.len().min(limit);
        if n > 0 {
            out.extend_from_slice(&self.block[self.pending.start..self.pending.start + n]);
            self.pending.start += n;
        }
        n
    }

    /// Checks and decodes one whole data chunk (header included in `chunk`), appends up to `room` bytes of its
    /// plaintext to `out` and keeps the rest pending. Returns the bytes appended.
    fn data_chunk(
        &mut self,
        chunk_type: u8,
        chunk: &[u8],
        out: &mut BytesMut,
        room: usize,
    ) -> Result<usize, CodecError> {
        let expected = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        let body = &chunk[CHUNK_HEADER_LEN + CHECKSUM_LEN..];
        let plain: &[u8] = if chunk_type == CHUNK_COMPRESSED {
            let n = snap::raw::decompress_len(body).map_err(CodecError::SnappyCorrupt)?;
            if n > MAX_SNAPPY_BLOCK {
                return Err(CodecError::SnappyBlockTooLarge { len: n });
            }
            if self.block.len() < n {
                self.block.resize(n, 0);
            }
            let n = self
                .raw
                .decompress(body, &mut self.block[..n])
                .map_err(CodecError::SnappyCorrupt)?;
            &self.block[..n]
        } else {
            body
        };
        let actual = masked_crc(plain);
        if actual != expected {
            return Err(CodecError::SnappyChecksum { expected, actual });
        }
        let take = plain.len().min(room);
        out.extend_from_slice(&plain[..take]);
        if take < plain.len() {
            // The rest waits in `block` for the next call; an uncompressed chunk's plaintext is copied there
            // first, because its bytes leave `input` when this chunk is consumed.
            let len = plain.len();
            if chunk_type == CHUNK_UNCOMPRESSED {
                if self.block.len() < len {
                    self.block.resize(len, 0);
                }
                self.block[take..len].copy_from_slice(&body[take..]);
            }
            self.pending = take..len;
        }
        Ok(take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_compressed_chunk_matches_snap_bound() {
        assert_eq!(
            MAX_COMPRESSED_CHUNK,
            CHECKSUM_LEN + snap::raw::max_compress_len(MAX_SNAPPY_BLOCK)
        );
    }

    #[test]
    fn masked_crc_of_golden_ok_frame() {
        // The OK frame's chunk in the golden capture carries checksum bytes 26 98 2b cf.
        let ok = b"\x00\x00\x00\x06\x00\x00\x00\x00OK";
        assert_eq!(masked_crc(ok), u32::from_le_bytes([0x26, 0x98, 0x2b, 0xcf]));
    }
}
