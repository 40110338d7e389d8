//! The stream compression a V2 connection can switch on with IDENTIFY, as sans-IO encoders and decoders.
//!
//! A client that sends IDENTIFY with `feature_negotiation` and `snappy: true` or `deflate: true` gets the plain
//! JSON reply, and from then on every byte in both directions goes through the negotiated codec (Go nsqd wraps
//! the socket; the `OK` that follows the JSON reply is already compressed). The formats are fixed by Go:
//!
//! - **snappy** is the snappy *framing* format of `golang/snappy`'s `NewReader`/`NewWriter`, not raw snappy
//!   blocks: a stream identifier chunk, then data chunks of at most 64 KiB of plaintext, each with the masked
//!   CRC-32C of its plaintext (the chunk layout is drawn in the private `snappy` submodule).
//! - **deflate** is *raw* DEFLATE (no zlib header) as Go's `compress/flate` writes it, with a sync flush
//!   (`00 00 ff ff`) at every flush point so the peer can decode everything sent so far.
//!
//! Like the rest of this crate the codecs do no I/O: a connection keeps one [`Decoder`] for its read side and
//! one [`Encoder`] for its write side, feeds socket bytes in and takes plaintext out (and the reverse). Both
//! keep their scratch buffers between calls, so the hot path allocates only when the caller's output buffer
//! has to grow. The decoder never produces more than a caller-given limit per call, so a small compressed
//! input that expands enormously (a decompression bomb) cannot make it allocate without bound.

mod deflate;
mod snappy;

use bytes::BytesMut;

use self::deflate::{DeflateDecoder, DeflateEncoder};
use self::snappy::{SnappyDecoder, SnappyEncoder};

pub use self::snappy::{MAX_SNAPPY_BLOCK, SNAPPY_STREAM_IDENTIFIER};

/// The compression a connection negotiated with IDENTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// The snappy framing format (IDENTIFY `snappy: true`).
    Snappy,
    /// Raw DEFLATE (IDENTIFY `deflate: true`); `level` is the negotiated `deflate_level`. Only the writing side
    /// uses it, and values outside 1..=9 are clamped into that range.
    Deflate {
        /// Compression level, 1 (fastest) to 9 (smallest).
        level: u32,
    },
}

/// Why compressed input could not be decoded. Every variant means the peer sent something that is not a valid
/// stream; the connection cannot recover from it and should be closed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The first snappy chunk was not the stream identifier (Go's reader demands it before anything else).
    #[error("snappy: chunk type {chunk_type:#04x} before the stream identifier")]
    SnappyMissingStreamIdentifier {
        /// The type byte of the offending chunk.
        chunk_type: u8,
    },
    /// A stream identifier chunk had the wrong length or did not spell `sNaPpY`.
    #[error("snappy: malformed stream identifier chunk")]
    SnappyBadStreamIdentifier,
    /// A chunk type in the reserved unskippable range 0x02..=0x7f.
    #[error("snappy: reserved unskippable chunk type {chunk_type:#04x}")]
    SnappyReservedChunk {
        /// The type byte of the offending chunk.
        chunk_type: u8,
    },
    /// A data chunk too short to hold its 4-byte checksum.
    #[error("snappy: data chunk of {len} bytes is too short for its checksum")]
    SnappyChunkTooShort {
        /// The chunk length from the chunk header.
        len: usize,
    },
    /// A data chunk longer than any valid encoding of a 64 KiB block.
    #[error(
        "snappy: chunk type {chunk_type:#04x} of {len} bytes is longer than the maximum {max}"
    )]
    SnappyChunkTooLong {
        /// The type byte of the offending chunk.
        chunk_type: u8,
        /// The chunk length from the chunk header.
        len: usize,
        /// The largest length accepted for this chunk type.
        max: usize,
    },
    /// A data chunk whose plaintext would be larger than the 64 KiB the format allows.
    #[error("snappy: chunk decodes to {len} bytes, more than the maximum {MAX_SNAPPY_BLOCK}")]
    SnappyBlockTooLarge {
        /// The decoded length the chunk announced.
        len: usize,
    },
    /// A data chunk's plaintext does not match its checksum.
    #[error("snappy: checksum mismatch (chunk says {expected:#010x}, data gives {actual:#010x})")]
    SnappyChecksum {
        /// The masked CRC-32C stored in the chunk.
        expected: u32,
        /// The masked CRC-32C of the decoded data.
        actual: u32,
    },
    /// A compressed chunk's body is not a valid snappy block.
    #[error("snappy: corrupt compressed block")]
    SnappyCorrupt(#[source] snap::Error),
    /// The raw DEFLATE stream is invalid.
    #[error("deflate: corrupt stream")]
    Deflate(#[source] flate2::DecompressError),
    /// Bytes arrived after the DEFLATE stream's final block, where Go's reader would see end of stream.
    #[error("deflate: {len} bytes after the end of the stream")]
    DeflateAfterEnd {
        /// How many bytes were waiting after the final block.
        len: usize,
    },
}

/// The read side of a compressed connection: turns wire bytes into plaintext.
#[derive(Debug)]
pub struct Decoder {
    inner: DecoderKind,
}

#[derive(Debug)]
enum DecoderKind {
    Snappy(SnappyDecoder),
    Deflate(DeflateDecoder),
}

impl Decoder {
    /// A decoder for a stream that starts now (snappy: the next chunk must be the stream identifier).
    pub fn new(codec: Codec) -> Self {
        let inner = match codec {
            Codec::Snappy => DecoderKind::Snappy(SnappyDecoder::new()),
            Codec::Deflate { .. } => DecoderKind::Deflate(DeflateDecoder::new()),
        };
        Self { inner }
    }

    /// Decodes what `input` holds into plaintext appended to `out`, and returns how many bytes it appended.
    ///
    /// Whatever was used is removed from the front of `input`; an incomplete snappy chunk stays there until the
    /// rest arrives (deflate consumes everything it is given). At most `limit` plaintext bytes are produced per
    /// call. A result below `limit` means everything decodable has been handed over and the decoder needs more
    /// input; a result equal to `limit` means more plaintext may be ready, so call again before waiting on the
    /// socket.
    ///
    /// After an error the stream is broken: the connection should be closed and the decoder dropped.
    pub fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
        limit: usize,
    ) -> Result<usize, CodecError> {
        match &mut self.inner {
            DecoderKind::Snappy(d) => d.decode(input, out, limit),
            DecoderKind::Deflate(d) => d.decode(input, out, limit),
        }
    }
}

/// The write side of a compressed connection: turns plaintext into wire bytes.
#[derive(Debug)]
pub struct Encoder {
    inner: EncoderKind,
}

#[derive(Debug)]
enum EncoderKind {
    // Boxed because snap's encoder carries a 2 KiB hash table inline; the box is allocated once per connection.
    Snappy(Box<SnappyEncoder>),
    Deflate(DeflateEncoder),
}

impl Encoder {
    /// An encoder for a stream that starts now (snappy: the first output carries the stream identifier).
    pub fn new(codec: Codec) -> Self {
        let inner = match codec {
            Codec::Snappy => EncoderKind::Snappy(Box::new(SnappyEncoder::new())),
            Codec::Deflate { level } => EncoderKind::Deflate(DeflateEncoder::new(level)),
        };
        Self { inner }
    }

    /// Compresses `plain` and flushes, appending the wire bytes to `out`: the peer can decode all of `plain`
    /// from what has been appended so far (snappy: one or more whole chunks; deflate: ends in a sync flush).
    /// An empty `plain` appends nothing.
    pub fn encode(&mut self, plain: &[u8], out: &mut BytesMut) {
        match &mut self.inner {
            EncoderKind::Snappy(e) => e.encode(plain, out),
            EncoderKind::Deflate(e) => e.encode(plain, out),
        }
    }
}
