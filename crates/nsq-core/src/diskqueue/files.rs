//! The on-disk format of go-diskqueue v1.1.0: file names, the metadata text, and the blocking reader and
//! writer of length-prefixed records.
//!
//! Everything here does blocking file I/O and runs only on [`IoPool`](super::IoPool) threads. It keeps no
//! locks and knows nothing of scheduling: [`queue`](super::queue) decides when to call it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes, BytesMut};

/// How many bytes the reader asks the OS for at a time. Records are split out of these chunks without a
/// copy, so a record kept alive elsewhere keeps its chunk alive: this is small enough that a few stragglers
/// cost little.
const READ_CHUNK: usize = 64 * 1024;

/// The write buffer of a queue's current data file; flushed at the end of every batch.
const WRITE_BUFFER: usize = 64 * 1024;

/// A position in the queue's files: a file number and a byte offset inside it. Ordered by file, then offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    pub(crate) file: i64,
    pub(crate) offset: i64,
}

impl Pos {
    pub(crate) fn new(file: i64, offset: i64) -> Pos {
        Pos { file, offset }
    }
}

/// The paths of one queue's files.
#[derive(Debug)]
pub(crate) struct Paths {
    dir: PathBuf,
    name: String,
}

impl Paths {
    pub(crate) fn new(dir: &Path, name: &str) -> Paths {
        Paths {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
        }
    }

    /// `<name>.diskqueue.%06d.dat`.
    pub(crate) fn data(&self, file_num: i64) -> PathBuf {
        self.dir
            .join(format!("{}.diskqueue.{:06}.dat", self.name, file_num))
    }

    /// `<name>.diskqueue.meta.dat`.
    pub(crate) fn meta(&self) -> PathBuf {
        self.dir.join(format!("{}.diskqueue.meta.dat", self.name))
    }
}

/// The five numbers of a metadata file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Meta {
    pub(crate) depth: i64,
    pub(crate) read: Pos,
    pub(crate) write: Pos,
}

impl Meta {
    /// Go's `"%d\n%d,%d\n%d,%d\n"`.
    pub(crate) fn to_text(self) -> String {
        format!(
            "{}\n{},{}\n{},{}\n",
            self.depth, self.read.file, self.read.offset, self.write.file, self.write.offset
        )
    }

    /// Parses what [`Meta::to_text`] writes. Like Go's `Fscanf`, separators are newlines and commas; anything
    /// else, or fewer than five numbers, is an error.
    pub(crate) fn parse(text: &str) -> Option<Meta> {
        let mut nums = text
            .split(['\n', ','])
            .filter(|s| !s.is_empty())
            .map(|s| s.trim().parse::<i64>());
        let mut next = || nums.next()?.ok();
        let depth = next()?;
        let read = Pos::new(next()?, next()?);
        let write = Pos::new(next()?, next()?);
        Some(Meta { depth, read, write })
    }

    /// Loads the metadata file: `Ok(None)` when it does not exist (a fresh queue).
    pub(crate) fn load(path: &Path) -> io::Result<Option<Meta>> {
        match fs::read_to_string(path) {
            Ok(text) => Meta::parse(&text).map(Some).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad metadata {text:?}"))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the metadata atomically: a temporary file in the same directory, fsynced, then renamed over
    /// the old one (Go's `persistMetaData`).
    pub(crate) fn persist(self, path: &Path) -> io::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", rand::random::<u32>()));
        let tmp = PathBuf::from(tmp);
        let result = (|| {
            let mut f = open_options_create().open(&tmp)?;
            f.write_all(self.to_text().as_bytes())?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

fn open_options_create() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The size of a file, `None` when it does not exist.
pub(crate) fn file_size(path: &Path) -> io::Result<Option<i64>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(i64::try_from(m.len()).unwrap_or(i64::MAX))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The write side: the current write file and the position its next record goes to.
#[derive(Debug)]
pub(crate) struct Writer {
    file: Option<BufWriter<File>>,
    /// Where the next record will be written (Go's writeFileNum, writePos).
    pub(crate) pos: Pos,
    /// Set after a failed write: the file may hold a partial record past `pos`, cut it off when reopening.
    truncate_on_open: bool,
}

impl Writer {
    pub(crate) fn new(pos: Pos) -> Writer {
        Writer {
            file: None,
            pos,
            truncate_on_open: false,
        }
    }

    /// Whether a record of `len` payload bytes must go to a new file (the v1.1.0 rule: roll before a write
    /// that would take a non-empty file past the limit).
    pub(crate) fn must_roll(&self, len: usize, max_bytes_per_file: i64) -> bool {
        self.pos.offset > 0 && self.pos.offset + 4 + len as i64 > max_bytes_per_file
    }

    /// Appends one record to the write buffer; the bytes reach the file at the latest on [`Writer::flush`].
    pub(crate) fn append(&mut self, paths: &Paths, record: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            let mut f = open_options_create().open(paths.data(self.pos.file))?;
            if self.truncate_on_open {
                f.set_len(self.pos.offset as u64)?;
                self.truncate_on_open = false;
            }
            if self.pos.offset > 0 {
                f.seek(SeekFrom::Start(self.pos.offset as u64))?;
            }
            tracing::debug!(file = %paths.data(self.pos.file).display(), "diskqueue opened write file");
            self.file = Some(BufWriter::with_capacity(WRITE_BUFFER, f));
        }
        let w = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("write file not open"))?;
        let len = i32::try_from(record.len()).map_err(io::Error::other)?;
        w.write_all(&len.to_be_bytes())?;
        w.write_all(record)?;
        self.pos.offset += 4 + record.len() as i64;
        Ok(())
    }

    /// Pushes buffered bytes to the OS.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }

    /// Flushes and fsyncs the current file.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(w) => {
                w.flush()?;
                w.get_ref().sync_data()
            }
            None => Ok(()),
        }
    }

    /// Forgets a failed write: the position goes back to `pos` and the file is reopened (and cut there) on
    /// the next append. The buffered bytes are discarded without being written.
    pub(crate) fn reset_after_error(&mut self, pos: Pos) {
        if let Some(w) = self.file.take() {
            // Dropping a BufWriter flushes it; take the file out without flushing instead.
            let (_file, _discarded) = w.into_parts();
        }
        self.pos = pos;
        self.truncate_on_open = true;
    }

    /// Moves on to the next file (after a roll or a bad write file), closing the current one.
    pub(crate) fn next_file(&mut self) {
        self.close();
        self.pos = Pos::new(self.pos.file + 1, 0);
        self.truncate_on_open = false;
    }

    /// Closes the current file. Buffered bytes are flushed first; callers that care flush explicitly.
    pub(crate) fn close(&mut self) {
        if let Some(mut w) = self.file.take() {
            let _ = w.flush();
        }
    }
}

/// Why reading stopped at a record that cannot be delivered: each of these makes the queue skip the file
/// (Go's `handleReadError`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("invalid message read size ({0})")]
    BadLength(i32),
    #[error("record at {0} runs past the end of the file ({1} bytes)")]
    Truncated(i64, i64),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One record read back, with the position just after it (where the read position moves once it is popped).
#[derive(Debug)]
pub(crate) struct ReadRecord {
    pub(crate) data: Bytes,
    pub(crate) end: Pos,
}

/// The read side: reads records from the position the read-ahead has reached (Go's nextReadFileNum,
/// nextReadPos).
#[derive(Debug)]
pub(crate) struct Reader {
    /// The start of the next record not yet handed out.
    pub(crate) pos: Pos,
    file: Option<File>,
    /// The OS file offset of `file` (where its next `read` starts).
    file_offset: i64,
    /// The size of the file at `pos.file` once it is no longer the write file (Go's maxBytesPerFileRead).
    end: Option<i64>,
    /// Bytes read from the file starting at `pos.offset` and not yet split into records.
    buf: BytesMut,
}

impl Reader {
    pub(crate) fn new(pos: Pos) -> Reader {
        Reader {
            pos,
            file: None,
            file_offset: 0,
            end: None,
            buf: BytesMut::new(),
        }
    }

    /// Whether every written byte up to `write` has been handed out.
    pub(crate) fn caught_up(&self, write: Pos) -> bool {
        self.pos >= write
    }

    /// Jumps to `pos` (after a fast-path hand-off from memory, a bad file or an empty). Buffered bytes are
    /// dropped; the file handle is kept only if it is still the right file.
    pub(crate) fn jump_to(&mut self, pos: Pos) {
        if pos.file != self.pos.file {
            self.file = None;
            self.end = None;
        }
        self.buf.clear();
        self.pos = pos;
    }

    /// Whether the next record can be handed over from memory instead of read back (nothing is buffered).
    pub(crate) fn buffer_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Reads records into `out` until `want_bytes` of payload were read (at least one record), or until the
    /// write position is reached. `write` is the writer's position; every byte before it is in the file.
    /// Records are zero-copy slices of the read chunks.
    pub(crate) fn read(
        &mut self,
        paths: &Paths,
        write: Pos,
        limits: (i32, i32),
        want_bytes: usize,
        out: &mut Vec<ReadRecord>,
    ) -> Result<(), ReadError> {
        let mut got = 0usize;
        loop {
            // A complete file whose end was reached: go on with the next one.
            if self.pos.file < write.file {
                let end = self.file_end(paths)?;
                if self.pos.offset >= end && self.buf.is_empty() {
                    self.jump_to(Pos::new(self.pos.file + 1, 0));
                    continue;
                }
            }
            if self.caught_up(write) || (got >= want_bytes && !out.is_empty()) {
                return Ok(());
            }
            let limit = if self.pos.file < write.file {
                self.file_end(paths)?
            } else {
                write.offset
            };
            // Split every whole record out of the buffer.
            while self.buf.len() >= 4 {
                let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if len < limits.0.max(0) || len > limits.1 {
                    return Err(ReadError::BadLength(len));
                }
                let total = 4 + len as usize;
                if self.pos.offset + total as i64 > limit {
                    return Err(ReadError::Truncated(self.pos.offset, limit));
                }
                if self.buf.len() < total {
                    break;
                }
                self.buf.advance(4);
                let data = self.buf.split_to(len as usize).freeze();
                self.pos.offset += total as i64;
                got += data.len();
                // The last record of a complete file moves the read position to the next file, as Go's
                // readOne does, so popping it is what deletes the file.
                let end = if self.pos.file < write.file && self.pos.offset >= limit {
                    Pos::new(self.pos.file + 1, 0)
                } else {
                    self.pos
                };
                out.push(ReadRecord { data, end });
                if got >= want_bytes || self.pos.offset >= limit {
                    break;
                }
            }
            if self.pos.offset >= limit || got >= want_bytes {
                continue;
            }
            // Need more bytes of this file.
            let buffered_to = self.pos.offset + self.buf.len() as i64;
            let available = limit - buffered_to;
            if available <= 0 {
                return Err(ReadError::Truncated(self.pos.offset, limit));
            }
            self.fill_buf(paths, buffered_to, available)?;
        }
    }

    /// The stat size of the current read file, cached while it stays the read file.
    fn file_end(&mut self, paths: &Paths) -> Result<i64, ReadError> {
        if let Some(end) = self.end {
            return Ok(end);
        }
        let end = match &self.file {
            Some(f) => i64::try_from(f.metadata()?.len()).unwrap_or(i64::MAX),
            None => {
                i64::try_from(fs::metadata(paths.data(self.pos.file))?.len()).unwrap_or(i64::MAX)
            }
        };
        self.end = Some(end);
        Ok(end)
    }

    /// Appends up to `available` bytes (at most one chunk, unless a record needs more) starting at file
    /// offset `at` to the buffer.
    fn fill_buf(&mut self, paths: &Paths, at: i64, available: i64) -> Result<(), ReadError> {
        if self.file.is_none() {
            let f = File::open(paths.data(self.pos.file))?;
            tracing::debug!(file = %paths.data(self.pos.file).display(), "diskqueue opened read file");
            self.file = Some(f);
            self.file_offset = 0;
        }
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("read file not open"))?;
        if self.file_offset != at {
            f.seek(SeekFrom::Start(at as u64))?;
            self.file_offset = at;
        }
        // A record larger than a chunk is read in one go.
        let need = if self.buf.len() >= 4 {
            let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
            (4 + len.max(0) as usize).saturating_sub(self.buf.len())
        } else {
            0
        };
        let n = (available as usize).min(READ_CHUNK.max(need));
        let start = self.buf.len();
        self.buf.resize(start + n, 0);
        let mut filled = 0;
        while filled < n {
            match f.read(&mut self.buf[start + filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(start);
                    self.file = None;
                    return Err(e.into());
                }
            }
        }
        self.buf.truncate(start + filled);
        self.file_offset += filled as i64;
        if filled == 0 {
            return Err(ReadError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("EOF at {at}, expected data up to {}", at + available),
            )));
        }
        Ok(())
    }

    /// Forgets the file handle and buffer (before the file is renamed or deleted).
    pub(crate) fn close(&mut self) {
        self.file = None;
        self.end = None;
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_text_round_trips() {
        let m = Meta {
            depth: 180,
            read: Pos::new(0, 2600),
            write: Pos::new(6, 1820),
        };
        assert_eq!(m.to_text(), "180\n0,2600\n6,1820\n");
        assert_eq!(Meta::parse(&m.to_text()), Some(m));
        assert_eq!(Meta::parse("1\n2,3\n"), None);
        assert_eq!(Meta::parse("x\n0,0\n0,0\n"), None);
    }

    #[test]
    fn v1_1_0_roll_rule() {
        let mut w = Writer::new(Pos::new(0, 0));
        // An empty file takes any record, even one larger than the limit.
        assert!(!w.must_roll(5000, 100));
        w.pos.offset = 90;
        assert!(!w.must_roll(6, 100));
        assert!(w.must_roll(7, 100));
    }

    #[test]
    fn reader_splits_records_and_reports_bad_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path(), "q");
        let mut bytes = Vec::new();
        for body in [&b"abc"[..], b"defg"] {
            bytes.extend_from_slice(&(body.len() as i32).to_be_bytes());
            bytes.extend_from_slice(body);
        }
        bytes.extend_from_slice(&1000i32.to_be_bytes());
        fs::write(paths.data(0), &bytes).unwrap();
        let mut r = Reader::new(Pos::new(0, 0));
        let mut out = Vec::new();
        let err = r
            .read(&paths, Pos::new(1, 0), (1, 10), usize::MAX, &mut out)
            .unwrap_err();
        assert!(matches!(err, ReadError::BadLength(1000)), "{err}");
        assert_eq!(out.len(), 2);
        assert_eq!(&out[1].data[..], b"defg");
        assert_eq!(out[1].end, Pos::new(0, 15));
    }
}
