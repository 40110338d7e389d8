//! Messages handed to a consumer and not yet finished (Go's `inFlightMessages` map plus `inFlightPqueue`).
//!
//! An indexed binary min-heap on the deadline, over a slab of entries, with an id -> slot map. FIN, REQ and
//! TOUCH remove or move an entry in O(log n) without leaving stale heap entries behind, which matters because a
//! busy channel finishes hundreds of thousands of messages a second with a 60 s timeout.

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use crate::error::Error;
use crate::message::Message;
use nsq_protocol::MessageId;

/// One in-flight message.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) msg: Message,
    pub(crate) client_id: u64,
    pub(crate) delivered_at: Instant,
    pub(crate) deadline: Instant,
    heap_pos: usize,
}

#[derive(Debug, Default)]
pub(crate) struct InFlightQueue {
    slots: Vec<Option<InFlight>>,
    free: Vec<usize>,
    by_id: FxHashMap<MessageId, usize>,
    /// Slot indexes ordered as a min-heap on the slot's deadline.
    heap: Vec<usize>,
}

impl InFlightQueue {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn insert(&mut self, msg: Message, client_id: u64, now: Instant, deadline: Instant) {
        let id = msg.id;
        if let Some(slot) = self.by_id.get(&id).copied() {
            // An id can only be in flight once; a duplicate replaces the old entry (cannot happen in practice).
            self.remove_slot(slot);
        }
        let entry = InFlight {
            msg,
            client_id,
            delivered_at: now,
            deadline,
            heap_pos: self.heap.len(),
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some(entry);
                s
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        self.by_id.insert(id, slot);
        self.heap.push(slot);
        self.sift_up(self.heap.len() - 1);
    }

    /// Removes the entry if `client_id` owns it (Go's `popInFlightMessage`).
    pub(crate) fn remove(&mut self, id: &MessageId, client_id: u64) -> Result<InFlight, Error> {
        let slot = *self.by_id.get(id).ok_or(Error::NotInFlight)?;
        if self.entry(slot).client_id != client_id {
            return Err(Error::NotOwned);
        }
        Ok(self.remove_slot(slot))
    }

    /// Moves the deadline of an owned entry (TOUCH).
    pub(crate) fn touch(
        &mut self,
        id: &MessageId,
        client_id: u64,
        deadline_for: impl FnOnce(Instant) -> Instant,
    ) -> Result<(), Error> {
        let slot = *self.by_id.get(id).ok_or(Error::NotInFlight)?;
        let entry = self.entry_mut(slot);
        if entry.client_id != client_id {
            return Err(Error::NotOwned);
        }
        entry.deadline = deadline_for(entry.delivered_at);
        let pos = entry.heap_pos;
        self.sift_down(pos);
        let pos = self.entry(slot).heap_pos;
        self.sift_up(pos);
        Ok(())
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|&s| self.entry(s).deadline)
    }

    /// Removes the earliest entry if its deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<InFlight> {
        let &slot = self.heap.first()?;
        if self.entry(slot).deadline > now {
            return None;
        }
        Some(self.remove_slot(slot))
    }

    /// Removes everything.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = InFlight> + '_ {
        self.by_id.clear();
        self.heap.clear();
        self.free.clear();
        std::mem::take(&mut self.slots).into_iter().flatten()
    }

    fn remove_slot(&mut self, slot: usize) -> InFlight {
        let pos = self.entry(slot).heap_pos;
        let last = self.heap.len() - 1;
        self.swap(pos, last);
        self.heap.pop();
        if pos < self.heap.len() {
            self.sift_down(pos);
            let moved = self.heap[pos];
            let moved_pos = self.entry(moved).heap_pos;
            self.sift_up(moved_pos);
        }
        let entry = self.slots[slot]
            .take()
            .unwrap_or_else(|| unreachable!("slot {slot} indexed but empty"));
        self.by_id.remove(&entry.msg.id);
        self.free.push(slot);
        entry
    }

    fn entry(&self, slot: usize) -> &InFlight {
        self.slots[slot]
            .as_ref()
            .unwrap_or_else(|| unreachable!("slot {slot} indexed but empty"))
    }

    fn entry_mut(&mut self, slot: usize) -> &mut InFlight {
        self.slots[slot]
            .as_mut()
            .unwrap_or_else(|| unreachable!("slot {slot} indexed but empty"))
    }

    fn deadline_at(&self, pos: usize) -> Instant {
        self.entry(self.heap[pos]).deadline
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        let (sa, sb) = (self.heap[a], self.heap[b]);
        self.entry_mut(sa).heap_pos = a;
        self.entry_mut(sb).heap_pos = b;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.deadline_at(pos) >= self.deadline_at(parent) {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * pos + 1, 2 * pos + 2);
            let mut smallest = pos;
            if l < n && self.deadline_at(l) < self.deadline_at(smallest) {
                smallest = l;
            }
            if r < n && self.deadline_at(r) < self.deadline_at(smallest) {
                smallest = r;
            }
            if smallest == pos {
                break;
            }
            self.swap(pos, smallest);
            pos = smallest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn msg(n: u64) -> Message {
        Message::new(MessageId::from_guid(n), Bytes::from_static(b"x"))
    }

    #[test]
    fn expires_in_deadline_order_and_respects_removals() {
        let now = Instant::now();
        let mut q = InFlightQueue::default();
        let order = [5u64, 3, 9, 1, 7, 2, 8, 6, 4];
        for &n in &order {
            q.insert(msg(n), 1, now, now + Duration::from_millis(n));
        }
        assert_eq!(
            q.remove(&MessageId::from_guid(7), 2).unwrap_err(),
            Error::NotOwned
        );
        q.remove(&MessageId::from_guid(7), 1).unwrap();
        q.remove(&MessageId::from_guid(1), 1).unwrap();
        assert_eq!(
            q.remove(&MessageId::from_guid(1), 1).unwrap_err(),
            Error::NotInFlight
        );
        q.touch(&MessageId::from_guid(2), 1, |d| {
            d + Duration::from_millis(100)
        })
        .unwrap();
        let mut got = Vec::new();
        while let Some(e) = q.pop_expired(now + Duration::from_secs(1)) {
            got.push(e.msg.id);
        }
        let want: Vec<_> = [3u64, 4, 5, 6, 8, 9, 2]
            .iter()
            .map(|&n| MessageId::from_guid(n))
            .collect();
        assert_eq!(got, want);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn pop_expired_stops_at_future_deadlines() {
        let now = Instant::now();
        let mut q = InFlightQueue::default();
        q.insert(msg(1), 1, now, now + Duration::from_secs(5));
        assert!(q.pop_expired(now).is_none());
        assert_eq!(q.next_deadline(), Some(now + Duration::from_secs(5)));
    }
}
