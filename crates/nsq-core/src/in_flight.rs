//! Messages handed to a consumer and not yet finished (Go's `inFlightMessages` map plus `inFlightPqueue`).
//!
//! Go keeps a binary heap on the deadline. Deliveries and FINs mostly happen in the same order, so with a heap
//! nearly every FIN removes the minimum and pays a full-depth sift. Here deadlines are kept in *lanes*: all
//! messages delivered with the same msg_timeout get deadlines in delivery order, so a lane is a FIFO where a
//! delivery appends and the oldest deadline is at the front. Removing a message marks its lane entry stale
//! (an id map finds the message itself in O(1)); stale entries are dropped when they reach the front, and a
//! lane whose stale entries outnumber its live ones is compacted, so memory stays proportional to what is in
//! flight. Deadlines that fit no lane (TOUCH capped by `--max-msg-timeout`, more distinct timeouts than
//! lanes) go to one heap with the same lazy deletion.
//!
//! Invariant: the front of every lane and the top of the heap are live, so the next deadline is the smallest
//! of those fronts.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use crate::error::Error;
use crate::message::Message;
use nsq_protocol::MessageId;

/// Distinct msg_timeouts that get a FIFO lane of their own; more are rare and share the heap.
const MAX_LANES: usize = 8;
/// Stale entries tolerated before a lane or the heap is compacted (when they also outnumber live ones).
const COMPACT_AFTER: usize = 64;

/// One in-flight message.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) msg: Message,
    pub(crate) client_id: u64,
    pub(crate) delivered_at: Instant,
    pub(crate) deadline: Instant,
    /// The ticket currently queued for this message.
    seq: u64,
    place: Place,
}

/// Where a message's ticket is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Lane(usize),
    Heap,
}

/// A queued deadline. Ordered by deadline, then by issue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Ticket {
    deadline: Instant,
    seq: u64,
    slot: usize,
}

#[derive(Debug)]
struct Lane {
    timeout: Duration,
    fifo: VecDeque<Ticket>,
    stale: usize,
}

#[derive(Debug, Default)]
pub(crate) struct InFlightQueue {
    slots: Vec<Option<InFlight>>,
    free: Vec<usize>,
    by_id: FxHashMap<MessageId, usize>,
    lanes: Vec<Lane>,
    heap: BinaryHeap<Reverse<Ticket>>,
    heap_stale: usize,
    next_seq: u64,
}

impl InFlightQueue {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Records a delivery at `now` that times out at `deadline`.
    pub(crate) fn insert(&mut self, msg: Message, client_id: u64, now: Instant, deadline: Instant) {
        if let Some(slot) = self.by_id.get(&msg.id).copied() {
            // An id can only be in flight once; a duplicate replaces the old entry (cannot happen in practice).
            self.take_slot(slot);
        }
        let id = msg.id;
        let entry = InFlight {
            msg,
            client_id,
            delivered_at: now,
            deadline,
            seq: 0,
            place: Place::Heap,
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
        self.enqueue(slot, deadline.saturating_duration_since(now));
    }

    /// Removes the entry if `client_id` owns it (Go's `popInFlightMessage`).
    pub(crate) fn remove(&mut self, id: &MessageId, client_id: u64) -> Result<InFlight, Error> {
        let slot = self.owned_slot(id, client_id)?;
        Ok(self.take_slot(slot))
    }

    /// TOUCH: the deadline becomes `now + msg_timeout`, capped at delivery + `max_msg_timeout`.
    pub(crate) fn touch(
        &mut self,
        id: &MessageId,
        client_id: u64,
        now: Instant,
        msg_timeout: Duration,
        max_msg_timeout: Duration,
    ) -> Result<(), Error> {
        let slot = self.owned_slot(id, client_id)?;
        let old_place = self.entry(slot).place;
        let delivered = self.entry(slot).delivered_at;
        let wanted = now + msg_timeout;
        let (deadline, lane_timeout) =
            if wanted.saturating_duration_since(delivered) >= max_msg_timeout {
                // Capped: not in step with any lane.
                (delivered + max_msg_timeout, None)
            } else {
                (wanted, Some(msg_timeout))
            };
        self.entry_mut(slot).deadline = deadline;
        // Issue the new ticket first: only then is the old one stale and can be cleaned away.
        match lane_timeout {
            Some(t) => self.enqueue(slot, t),
            None => self.push_heap(slot),
        }
        self.retire(old_place);
        Ok(())
    }

    /// The earliest deadline of anything in flight.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.fronts().map(|(t, _)| t.deadline).min()
    }

    /// Removes the entry with the earliest deadline if that deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<InFlight> {
        let (ticket, _) = self.fronts().min_by_key(|(t, _)| *t)?;
        if ticket.deadline > now {
            return None;
        }
        Some(self.take_slot(ticket.slot))
    }

    /// Removes everything.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = InFlight> + '_ {
        self.by_id.clear();
        self.free.clear();
        self.lanes.clear();
        self.heap.clear();
        self.heap_stale = 0;
        std::mem::take(&mut self.slots).into_iter().flatten()
    }

    fn owned_slot(&self, id: &MessageId, client_id: u64) -> Result<usize, Error> {
        let slot = *self.by_id.get(id).ok_or(Error::NotInFlight)?;
        if self.entry(slot).client_id != client_id {
            return Err(Error::NotOwned);
        }
        Ok(slot)
    }

    /// The live front ticket of each lane and the heap's top.
    fn fronts(&self) -> impl Iterator<Item = (Ticket, Place)> + '_ {
        let lanes = self
            .lanes
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.fifo.front().map(|t| (*t, Place::Lane(i))));
        lanes.chain(self.heap.peek().map(|t| (t.0, Place::Heap)))
    }

    /// Queues a fresh ticket for `slot` in the lane for `timeout`, or in the heap when no lane fits.
    fn enqueue(&mut self, slot: usize, timeout: Duration) {
        let deadline = self.entry(slot).deadline;
        let lane = match self.lanes.iter().position(|l| l.timeout == timeout) {
            Some(i) => Some(i),
            None if self.lanes.len() < MAX_LANES => {
                self.lanes.push(Lane {
                    timeout,
                    fifo: VecDeque::new(),
                    stale: 0,
                });
                Some(self.lanes.len() - 1)
            }
            None => None,
        };
        // A lane only takes deadlines in order; one computed from a slightly older clock reading goes to the heap.
        match lane.filter(|&i| {
            self.lanes[i]
                .fifo
                .back()
                .is_none_or(|b| b.deadline <= deadline)
        }) {
            Some(i) => {
                let ticket = self.issue(slot, Place::Lane(i));
                self.lanes[i].fifo.push_back(ticket);
            }
            None => self.push_heap(slot),
        }
    }

    fn push_heap(&mut self, slot: usize) {
        let ticket = self.issue(slot, Place::Heap);
        self.heap.push(Reverse(ticket));
    }

    fn issue(&mut self, slot: usize, place: Place) -> Ticket {
        self.next_seq += 1;
        let seq = self.next_seq;
        let entry = self.entry_mut(slot);
        entry.seq = seq;
        entry.place = place;
        Ticket {
            deadline: entry.deadline,
            seq,
            slot,
        }
    }

    fn take_slot(&mut self, slot: usize) -> InFlight {
        let entry = self.slots[slot]
            .take()
            .unwrap_or_else(|| unreachable!("slot {slot} indexed but empty"));
        self.by_id.remove(&entry.msg.id);
        self.free.push(slot);
        self.retire(entry.place);
        entry
    }

    /// Counts one ticket queued at `place` as stale (its slot was emptied or re-ticketed, which the caller
    /// did first) and restores the live-front invariant there.
    fn retire(&mut self, place: Place) {
        match place {
            Place::Lane(i) => {
                self.lanes[i].stale += 1;
                self.clean_lane(i);
            }
            Place::Heap => {
                self.heap_stale += 1;
                self.clean_heap();
            }
        }
    }

    fn is_live(&self, t: &Ticket) -> bool {
        self.slots
            .get(t.slot)
            .and_then(Option::as_ref)
            .is_some_and(|e| e.seq == t.seq)
    }

    fn clean_lane(&mut self, i: usize) {
        while let Some(front) = self.lanes[i].fifo.front().copied() {
            if self.is_live(&front) {
                break;
            }
            self.lanes[i].fifo.pop_front();
            self.lanes[i].stale -= 1;
        }
        let lane = &self.lanes[i];
        if lane.stale > COMPACT_AFTER && lane.stale * 2 > lane.fifo.len() {
            let mut fifo = std::mem::take(&mut self.lanes[i].fifo);
            fifo.retain(|t| self.is_live(t));
            self.lanes[i].fifo = fifo;
            self.lanes[i].stale = 0;
        }
    }

    fn clean_heap(&mut self) {
        while let Some(top) = self.heap.peek().map(|t| t.0) {
            if self.is_live(&top) {
                break;
            }
            self.heap.pop();
            self.heap_stale -= 1;
        }
        if self.heap_stale > COMPACT_AFTER && self.heap_stale * 2 > self.heap.len() {
            let heap = std::mem::take(&mut self.heap);
            self.heap = heap.into_iter().filter(|t| self.is_live(&t.0)).collect();
            self.heap_stale = 0;
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::collections::BTreeMap;

    fn msg(n: u64) -> Message {
        Message::new(MessageId::from_guid(n), Bytes::from_static(b"x"))
    }

    const MAX: Duration = Duration::from_secs(900);

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
        q.touch(
            &MessageId::from_guid(2),
            1,
            now,
            Duration::from_millis(100),
            MAX,
        )
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

    #[test]
    fn stale_entries_stay_bounded_when_an_old_message_is_held() {
        let start = Instant::now();
        let timeout = Duration::from_secs(60);
        let mut q = InFlightQueue::default();
        // One message is never finished while 200,000 others are delivered and finished behind it.
        q.insert(msg(0), 1, start, start + timeout);
        for n in 1..200_000u64 {
            let now = start + Duration::from_nanos(n);
            q.insert(msg(n), 1, now, now + timeout);
            q.remove(&MessageId::from_guid(n), 1).unwrap();
        }
        assert_eq!(q.len(), 1);
        let queued: usize = q.lanes.iter().map(|l| l.fifo.len()).sum();
        assert!(
            queued <= 2 * COMPACT_AFTER + 2,
            "{queued} lane entries for 1 message in flight"
        );
        assert_eq!(q.next_deadline(), Some(start + timeout));
    }

    /// Tiny deterministic generator for the model test.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Random deliveries (several timeouts, out-of-order clock readings), FINs, TOUCHes (some capped) and
    /// expiries, checked step by step against a plain ordered map.
    #[test]
    fn behaves_like_a_sorted_map() {
        let base = Instant::now();
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let mut q = InFlightQueue::default();
        // id -> (deadline, delivered_at, client, order of the deadline's last change)
        let mut model: BTreeMap<u64, (Instant, Instant, u64, u64)> = BTreeMap::new();
        let mut clock = 0u64;
        let mut order = 0u64;
        let mut next_id = 0u64;
        for _ in 0..30_000 {
            clock += rng.below(3);
            let now = base + Duration::from_millis(clock);
            order += 1;
            match rng.below(10) {
                0..=3 => {
                    let timeout = Duration::from_millis(
                        [1000, 2000, 60_000, 5, 7, 11, 13, 17, 19, 23][rng.below(10) as usize],
                    );
                    // Occasionally a clock reading from a little earlier, as with two pumps racing for the lock.
                    let at = now - Duration::from_millis(rng.below(2));
                    let client = rng.below(3);
                    q.insert(msg(next_id), client, at, at + timeout);
                    model.insert(next_id, (at + timeout, at, client, order));
                    next_id += 1;
                }
                4..=6 if next_id > 0 => {
                    let id = rng.below(next_id);
                    let client = rng.below(3);
                    let got = q
                        .remove(&MessageId::from_guid(id), client)
                        .map(|e| e.msg.id);
                    let want = match model.get(&id) {
                        None => Err(Error::NotInFlight),
                        Some(m) if m.2 != client => Err(Error::NotOwned),
                        Some(_) => {
                            model.remove(&id);
                            Ok(MessageId::from_guid(id))
                        }
                    };
                    assert_eq!(got, want);
                }
                7 if next_id > 0 => {
                    let id = rng.below(next_id);
                    if let Some(&(_, delivered, client, _)) = model.get(&id) {
                        let t = Duration::from_millis(rng.below(3000));
                        let max = Duration::from_millis(2500);
                        q.touch(&MessageId::from_guid(id), client, now, t, max)
                            .unwrap();
                        let wanted = now + t;
                        let d = if wanted.saturating_duration_since(delivered) >= max {
                            delivered + max
                        } else {
                            wanted
                        };
                        model.insert(id, (d, delivered, client, order));
                    }
                }
                _ => {
                    while let Some(e) = q.pop_expired(now) {
                        let id = u64::from_str_radix(e.msg.id.as_str(), 16).unwrap();
                        let (d, _, _, _) =
                            model.remove(&id).expect("expired an id the model lacks");
                        assert!(d <= now);
                        assert_eq!(e.deadline, d);
                        // Nothing with an earlier deadline may remain.
                        assert!(model.values().all(|m| m.0 >= d), "expired out of order");
                    }
                    assert!(
                        model.values().all(|m| m.0 > now),
                        "an expired message was not returned"
                    );
                }
            }
            assert_eq!(q.len(), model.len());
            assert_eq!(q.next_deadline(), model.values().map(|m| m.0).min());
        }
    }
}
