//! The I/O half of a queue: one round of file work on a pool thread (see the [`queue`](super) docs for
//! what a round does and how it publishes results to the caller side).

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Front, QueueInner};
use crate::diskqueue::files::{self, Meta, Pos, ReadError, ReadRecord, Reader, Writer};

/// The most record bytes one round writes before letting other queues have the thread (a close writes
/// everything at once). The same as the default read-ahead, so a queue whose reader lags behind a steady
/// writer gets reads and writes in about equal shares, as Go's I/O loop alternates them.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// The first and the longest wait before writing again after a failed write (doubling in between).
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The I/O side, touched only inside a round.
pub(super) struct Back {
    writer: Writer,
    reader: Reader,
    /// The records being written this round (kept to reuse its allocation).
    batch: VecDeque<Bytes>,
    /// The write position after each record of the current segment.
    ends: Vec<Pos>,
    read_out: Vec<ReadRecord>,
    /// Files below this number have been deleted.
    deleted_below: i64,
    retry_wait: Duration,
}

impl Back {
    /// Bytes of the batch a round took and has not written yet.
    pub(super) fn batch_bytes(&self) -> usize {
        self.batch.iter().map(Bytes::len).sum()
    }

    pub(super) fn new() -> Back {
        Back {
            writer: Writer::new(Pos::default()),
            reader: Reader::new(Pos::default()),
            batch: VecDeque::new(),
            ends: Vec::new(),
            read_out: Vec::new(),
            deleted_below: 0,
            retry_wait: RETRY_FIRST,
        }
    }
}

impl QueueInner {
    pub(crate) fn run_round(self: &Arc<Self>) {
        let mut back = self.back.lock();
        let back = &mut *back;
        let (loaded, delete, empty) = {
            let f = self.front.lock();
            if f.shut {
                return;
            }
            (f.loaded, f.delete_requested, f.empty_requested)
        };
        if !loaded {
            self.load(back);
        }
        if delete {
            self.finish_delete(back);
            return;
        }
        if empty {
            self.do_empty(back);
        }
        let write_error = self.write_pending(back);
        self.fill(back);
        self.cleanup_and_sync(back);

        let mut f = self.front.lock();
        if f.close_requested && (f.pending.is_empty() || write_error.is_some()) {
            drop(f);
            self.finish_close(back, write_error);
            return;
        }
        self.park_or_requeue(&mut f, back);
    }

    /// Decides whether the queue needs another round now; otherwise clears `scheduled` and arms a timer for
    /// what is due later (a sync, a write retry).
    fn park_or_requeue(self: &Arc<Self>, f: &mut Front, back: &Back) {
        let now = Instant::now();
        let can_write = f.close_requested || f.retry_at.is_none_or(|at| at <= now);
        let more = (!f.pending.is_empty() && can_write)
            || f.empty_requested
            || f.delete_requested
            || f.wants_fill(self.read_ahead_limit())
            || f.need_sync
            || f.committed.file > back.deleted_below
            || self.sync_every_reached(f)
            || (f.dirty() && f.sync_deadline.is_some_and(|d| d <= now));
        if more {
            self.pool.enqueue(Arc::clone(self));
            return;
        }
        f.scheduled = false;
        if f.dirty() && f.sync_deadline.is_none() {
            f.sync_deadline = Some(now + self.sync_timeout());
        }
        let sync_at = if f.dirty() { f.sync_deadline } else { None };
        let retry_at = if f.pending.is_empty() {
            None
        } else {
            f.retry_at
        };
        if let Some(at) = sync_at.into_iter().chain(retry_at).min() {
            self.arm_timer_locked(f, at);
        }
    }

    /// Reads the metadata and checks it against the files (Go's retrieveMetaData, plus its sanity checks).
    fn load(&self, back: &mut Back) {
        let name = &self.name;
        let mut meta = match Meta::load(&self.paths.meta()) {
            Ok(Some(m)) => m,
            Ok(None) => Meta::default(),
            Err(e) => {
                tracing::error!(queue = %name, "failed to retrieveMetaData - {e}; starting empty");
                Meta::default()
            }
        };
        let mut need_sync = false;
        if meta.read.file < 0
            || meta.read.offset < 0
            || meta.write.file < 0
            || meta.write.offset < 0
        {
            tracing::error!(queue = %name, ?meta, "negative positions in metadata; starting empty");
            meta = Meta::default();
        }
        if meta.read > meta.write {
            tracing::error!(
                queue = %name, read = ?meta.read, write = ?meta.write,
                "read position past write position, corruption, skipping to next file and resetting 0"
            );
            for n in meta.read.file..=meta.write.file {
                self.remove_data_file(n);
            }
            let next = Pos::new(meta.read.file.max(meta.write.file) + 1, 0);
            meta = Meta {
                depth: 0,
                read: next,
                write: next,
            };
            need_sync = true;
        }
        // go-diskqueue #31: metadata not synced at the last shutdown can be behind the write file. Writing
        // goes on in a new file, and the reader salvages the old one up to its real size. A write file
        // shorter than the metadata says (or missing) also gets a new file, so no write leaves a hole.
        match files::file_size(&self.paths.data(meta.write.file)) {
            Ok(size) if size.unwrap_or(0) != meta.write.offset => {
                tracing::warn!(
                    queue = %name, write_pos = meta.write.offset, file_size = ?size,
                    "metadata writePos does not match the write file size, skipping to new file"
                );
                meta.write = Pos::new(meta.write.file + 1, 0);
                need_sync = true;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(queue = %name, "failed to stat write file - {e}"),
        }
        back.writer = Writer::new(meta.write);
        back.reader = Reader::new(meta.read);
        back.deleted_below = meta.read.file;
        let mut f = self.front.lock();
        f.loaded = true;
        f.disk_depth = meta.depth;
        f.committed = meta.read;
        f.written_end = meta.write;
        f.disk_unread = meta.read < meta.write;
        f.need_sync |= need_sync;
        f.check_tail(name);
        drop(f);
        self.loaded.set(());
    }

    /// Go's deleteAllFiles without removing the metadata (it is rewritten at the end of the round): every
    /// data file goes, and reading and writing start over in the next file number.
    fn do_empty(&self, back: &mut Back) {
        back.writer.next_file();
        back.reader.close();
        for n in back.deleted_below..back.writer.pos.file {
            self.remove_data_file(n);
        }
        let next = back.writer.pos;
        back.reader.jump_to(next);
        back.deleted_below = next.file;
        let mut f = self.front.lock();
        f.empty_requested = false;
        f.read_ahead = VecDeque::new();
        f.read_ahead_bytes = 0;
        // Nothing written since `empty()` has reached a file yet (the records put since are still pending),
        // and a load that ran in this same round may have set the depth from the old metadata.
        f.disk_depth = 0;
        f.committed = next;
        f.written_end = next;
        f.disk_unread = false;
        f.need_sync = true;
        f.changes += 1;
    }

    /// Writes one batch of pending records (all of them when closing). Returns the error that stopped it.
    fn write_pending(self: &Arc<Self>, back: &mut Back) -> Option<io::Error> {
        loop {
            let epoch;
            {
                let mut f = self.front.lock();
                // An `empty()` since this round began: its records were dropped, and records put after it
                // must not go into the files the next round deletes.
                if f.pending.is_empty() || f.empty_requested {
                    return None;
                }
                if !f.close_requested && f.retry_at.is_some_and(|at| Instant::now() < at) {
                    return None;
                }
                if f.pending_bytes <= MAX_BATCH_BYTES || f.close_requested {
                    std::mem::swap(&mut f.pending, &mut back.batch);
                    f.pending_bytes = 0;
                } else {
                    let mut bytes = 0;
                    while let Some(r) = f.pending.front() {
                        if bytes > 0 && bytes + r.len() > MAX_BATCH_BYTES {
                            break;
                        }
                        bytes += r.len();
                        if let Some(r) = f.pending.pop_front() {
                            back.batch.push_back(r);
                        }
                    }
                    f.pending_bytes -= bytes;
                }
                f.writing += back.batch.len() as i64;
                epoch = f.epoch;
                if f.pending.is_empty() && f.pending.capacity() > 65536 {
                    f.pending = VecDeque::new();
                }
            }
            let result = self.write_batch(back, epoch);
            back.batch.clear();
            if back.batch.capacity() > 65536 {
                back.batch = VecDeque::new();
            }
            match result {
                Ok(()) => {
                    back.retry_wait = RETRY_FIRST;
                    let mut f = self.front.lock();
                    f.retry_at = None;
                    if !f.close_requested {
                        return None;
                    }
                }
                Err(e) => return Some(e),
            }
        }
    }

    /// Writes `back.batch` in segments that end where the v1.1.0 roll rule moves to a new file. Each segment
    /// is flushed and published before the roll; a failed segment goes back to the front of `pending`.
    fn write_batch(self: &Arc<Self>, back: &mut Back, epoch: u64) -> io::Result<()> {
        let max_bytes = self.opts.max_bytes_per_file;
        let mut seg_start = 0;
        let mut seg_pos = back.writer.pos;
        back.ends.clear();
        for i in 0..back.batch.len() {
            let len = back.batch[i].len();
            if back.writer.must_roll(len, max_bytes) {
                if let Err(e) = self.commit_segment(back, seg_start..i, seg_pos, epoch) {
                    return Err(self.segment_failed(back, seg_start, seg_pos, epoch, e));
                }
                self.roll(back);
                seg_start = i;
                seg_pos = back.writer.pos;
            }
            if let Err(e) = back.writer.append(&self.paths, &back.batch[i]) {
                return Err(self.segment_failed(back, seg_start, seg_pos, epoch, e));
            }
            back.ends.push(back.writer.pos);
        }
        let n = back.batch.len();
        if let Err(e) = self.commit_segment(back, seg_start..n, seg_pos, epoch) {
            return Err(self.segment_failed(back, seg_start, seg_pos, epoch, e));
        }
        Ok(())
    }

    /// Flushes the records `range` of the batch (written from `seg_pos` on) and publishes them: they count
    /// in the on-disk depth, and when the reader is caught up they go straight into the read-ahead.
    fn commit_segment(
        self: &Arc<Self>,
        back: &mut Back,
        range: std::ops::Range<usize>,
        seg_pos: Pos,
        epoch: u64,
    ) -> io::Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        back.writer.flush()?;
        let n = range.len();
        let bytes: usize = back.batch.range(range.clone()).map(Bytes::len).sum();
        let limit = self.read_ahead_limit();
        let mut notify = false;
        {
            let mut f = self.front.lock();
            if f.epoch == epoch {
                f.writing -= n as i64;
                f.disk_depth += n as i64;
                f.changes += n as u64;
                f.written_end = back.writer.pos;
                let fast = back.reader.pos == seg_pos && back.reader.buffer_empty() && !f.closing;
                if fast {
                    let was_empty = f.read_ahead.is_empty();
                    let mut moved_to = None;
                    for (k, i) in range.clone().enumerate() {
                        if !f.read_ahead.is_empty() && f.read_ahead_bytes >= limit {
                            break;
                        }
                        let data = std::mem::take(&mut back.batch[i]);
                        f.read_ahead_bytes += data.len();
                        f.read_ahead.push_back(ReadRecord {
                            data,
                            end: back.ends[k],
                        });
                        moved_to = Some(back.ends[k]);
                    }
                    if let Some(p) = moved_to {
                        back.reader.jump_to(p);
                    }
                    notify = was_empty && !f.read_ahead.is_empty();
                }
                f.disk_unread = !back.reader.caught_up(back.writer.pos);
            }
        }
        back.ends.clear();
        self.records_left_pending(bytes);
        if notify {
            (self.on_readable)();
        }
        Ok(())
    }

    /// Handles a failed append or flush: the segment's records go back to the front of `pending` (nothing
    /// acknowledged is dropped) and the next attempt waits a little; the file is cut back on reopen.
    fn segment_failed(
        &self,
        back: &mut Back,
        seg_start: usize,
        seg_pos: Pos,
        epoch: u64,
        e: io::Error,
    ) -> io::Error {
        back.writer.reset_after_error(seg_pos);
        back.ends.clear();
        let wait = back.retry_wait;
        back.retry_wait = (wait * 2).min(RETRY_MAX);
        let mut f = self.front.lock();
        let n = back.batch.len() - seg_start;
        if f.epoch == epoch {
            let mut bytes = 0;
            for r in back.batch.drain(seg_start..).rev() {
                bytes += r.len();
                f.pending.push_front(r);
            }
            f.pending_bytes += bytes;
            f.writing -= n as i64;
            f.retry_at = Some(Instant::now() + wait);
        } else {
            let bytes: usize = back.batch.drain(seg_start..).map(|r| r.len()).sum();
            self.records_left_pending(bytes);
        }
        drop(f);
        tracing::error!(
            queue = %self.name, file = %self.paths.data(seg_pos.file).display(), records = n,
            "diskqueue write failed, keeping the records and retrying in {wait:?} - {e}"
        );
        e
    }

    /// Moves writing to the next file: fsync of the finished file, then metadata (Go syncs on every roll).
    fn roll(&self, back: &mut Back) {
        if let Err(e) = back.writer.sync() {
            tracing::error!(queue = %self.name, "failed to sync - {e}");
        }
        let old = back.writer.pos;
        let caught_up = back.reader.pos == old && back.reader.buffer_empty();
        back.writer.next_file();
        if caught_up {
            back.reader.jump_to(back.writer.pos);
        }
        {
            let mut f = self.front.lock();
            f.written_end = back.writer.pos;
            f.need_sync = true;
            if caught_up {
                // Everything up to the end of the finished file was read: the read position that goes into
                // the metadata must be the start of the new file, as Go's reader moves on at a file's end
                // (a Go nsqd reading `old` again would hit its end and set the file aside as `.bad`).
                let new = back.writer.pos;
                if f.committed == old {
                    f.committed = new;
                } else if let Some(last) = f.read_ahead.back_mut().filter(|r| r.end == old) {
                    last.end = new;
                }
            }
        }
        self.sync(back);
    }

    /// Refills the read-ahead from the files when it is below half its size.
    fn fill(self: &Arc<Self>, back: &mut Back) {
        let limit = self.read_ahead_limit();
        let (want, epoch) = {
            let f = self.front.lock();
            if !f.wants_fill(limit) || f.empty_requested {
                return;
            }
            (limit.saturating_sub(f.read_ahead_bytes).max(1), f.epoch)
        };
        let mut out = std::mem::take(&mut back.read_out);
        let result = back
            .reader
            .read(&self.paths, back.writer.pos, self.limits(), want, &mut out);
        let mut notify = false;
        {
            let mut f = self.front.lock();
            if f.epoch == epoch {
                notify = f.read_ahead.is_empty() && !out.is_empty();
                for rec in out.drain(..) {
                    f.read_ahead_bytes += rec.data.len();
                    f.read_ahead.push_back(rec);
                }
                f.disk_unread = !back.reader.caught_up(back.writer.pos);
            }
        }
        out.clear();
        back.read_out = out;
        if notify {
            (self.on_readable)();
        }
        if let Err(e) = result {
            self.handle_read_error(back, e);
        }
    }

    /// Go's handleReadError: the file is renamed `.bad` and reading goes on in the next file. When it is the
    /// write file, writing moves to a new file too.
    fn handle_read_error(&self, back: &mut Back, e: ReadError) {
        let bad = back.reader.pos.file;
        let path = self.paths.data(bad);
        tracing::error!(queue = %self.name, file = %path.display(), pos = back.reader.pos.offset, "reading - {e}");
        back.reader.close();
        if bad == back.writer.pos.file {
            back.writer.next_file();
        }
        let mut bad_path = path.clone().into_os_string();
        bad_path.push(".bad");
        tracing::warn!(queue = %self.name, "jump to next file and saving bad file as {}", bad_path.to_string_lossy());
        if let Err(re) = std::fs::rename(&path, &bad_path) {
            tracing::error!(queue = %self.name, "failed to rename bad diskqueue file {} - {re}", path.display());
        }
        let next = Pos::new(bad + 1, 0);
        back.reader.jump_to(next);
        let mut f = self.front.lock();
        f.written_end = back.writer.pos;
        f.disk_unread = !back.reader.caught_up(back.writer.pos);
        f.need_sync = true;
        if f.read_ahead.is_empty() && f.committed.file <= bad {
            // Nothing read from the bad file waits to be popped: the read position skips it now, as in Go.
            f.committed = next;
            f.check_tail(&self.name);
        }
    }

    /// Deletes fully read files and syncs when one is due.
    fn cleanup_and_sync(&self, back: &mut Back) {
        let now = Instant::now();
        let (committed_file, due) = {
            let f = self.front.lock();
            let due = f.need_sync
                || self.sync_every_reached(&f)
                || (f.dirty() && f.sync_deadline.is_some_and(|d| d <= now));
            (f.committed.file, due)
        };
        if committed_file > back.deleted_below {
            for n in back.deleted_below..committed_file {
                self.remove_data_file(n);
            }
            back.deleted_below = committed_file;
        }
        if due {
            self.sync(back);
        }
    }

    /// Go's sync: fsync of the write file, then the metadata. Errors are logged and retried at the next
    /// sync deadline.
    fn sync(&self, back: &mut Back) {
        let result = back.writer.sync().and_then(|()| {
            let (meta, changes) = {
                let f = self.front.lock();
                (
                    Meta {
                        depth: f.disk_depth,
                        read: f.committed,
                        write: back.writer.pos,
                    },
                    f.changes,
                )
            };
            meta.persist(&self.paths.meta()).map(|()| changes)
        });
        let mut f = self.front.lock();
        f.need_sync = false;
        f.sync_deadline = None;
        match result {
            Ok(changes) => {
                f.synced_changes = changes;
                f.sync_error = false;
            }
            Err(e) => {
                // As Go: the count starts over, so the next attempt comes with the next change (or the next
                // `--sync-timeout` after it), not in a tight loop; `close` reports the failure.
                tracing::error!(queue = %self.name, "failed to sync - {e}");
                f.synced_changes = f.changes;
                f.sync_error = true;
            }
        }
    }

    fn remove_data_file(&self, n: i64) {
        let path = self.paths.data(n);
        if let Err(e) = files::remove_if_exists(&path) {
            tracing::error!(queue = %self.name, "failed to Remove({}) - {e}", path.display());
        }
    }

    /// The end of a close: everything was written (or writing failed); sync, close the files, report.
    fn finish_close(&self, back: &mut Back, write_error: Option<io::Error>) {
        self.sync(back);
        let synced = {
            let f = self.front.lock();
            !f.dirty() && !f.sync_error
        };
        back.writer.close();
        back.reader.close();
        let mut f = self.front.lock();
        f.shut = true;
        f.scheduled = false;
        let lost = f.pending.len();
        self.records_left_pending(f.pending_bytes);
        f.pending = VecDeque::new();
        f.pending_bytes = 0;
        drop(f);
        let result = match write_error {
            Some(e) => {
                tracing::error!(queue = %self.name, records = lost, "diskqueue closed with records it could not write");
                Err((e.kind(), e.to_string()))
            }
            None if !synced => Err((io::ErrorKind::Other, "failed to sync at close".to_owned())),
            None => Ok(()),
        };
        self.closed.set(result);
    }

    /// The end of a delete: every data file and the metadata file go.
    fn finish_delete(&self, back: &mut Back) {
        back.writer.close();
        back.reader.close();
        for n in back.deleted_below..=back.writer.pos.file {
            self.remove_data_file(n);
        }
        if let Err(e) = files::remove_if_exists(&self.paths.meta()) {
            tracing::error!(queue = %self.name, "failed to remove metadata file - {e}");
        }
        let mut f = self.front.lock();
        f.shut = true;
        f.scheduled = false;
        drop(f);
        self.closed.set(Ok(()));
    }
}
