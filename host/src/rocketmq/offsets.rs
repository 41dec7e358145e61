//! Which offset of a queue may be committed: the first offset whose
//! message is not yet acknowledged. Messages of a queue can be
//! acknowledged out of order (batches finish in any order), and the
//! client can even hand out a queue's pull batches out of order; the
//! committed offset only moves over a contiguous prefix of acknowledged
//! messages, so a restart redelivers exactly the unacknowledged window.
//!
//! It also decides which pulled messages are new. The client can hand out
//! a batch twice around a seek (its seek clears the cache before it stops
//! the pull task): an offset already handed out, or below the commit
//! point, is dropped. A hole (offsets never handed out below acknowledged
//! ones) holds the commit point back until it fills; one that stays
//! unfilled for [`HOLE_WAIT`] is offsets the broker no longer has
//! (expired, or corrected), and the commit point moves past it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a hole below acknowledged offsets may hold the commit point
/// back before it counts as offsets the broker skipped.
pub const HOLE_WAIT: Duration = Duration::from_secs(30);

/// Whether a pulled message goes on to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Not handed out before: tracked and passed on.
    New,
    /// Handed out already, or below the commit point: dropped.
    Stale,
}

/// Progress of one queue.
#[derive(Debug, Clone, Default)]
pub struct QueueProgress {
    /// Next offset to commit (RocketMQ's convention: the next to consume).
    committable: Option<i64>,
    /// What was last sent to the broker.
    committed: Option<i64>,
    /// Offsets handed out and not yet acknowledged (value: acknowledged?).
    in_flight: BTreeMap<i64, bool>,
    /// How many of `in_flight` are not acknowledged (asked of every pulled
    /// message, so kept rather than counted).
    unacknowledged: usize,
    /// The queue's end at the broker, as the last pull reported it.
    broker_end: Option<i64>,
    /// Since when offsets below the first handed-out one are missing.
    hole_since: Option<Instant>,
}

impl QueueProgress {
    /// A queue read from `offset`, which the broker holds as committed.
    pub fn starting_at(offset: i64) -> Self {
        QueueProgress { committable: Some(offset), committed: Some(offset), ..QueueProgress::default() }
    }

    /// Forget what was handed out and not acknowledged: it is read again
    /// from the returned offset (the first unacknowledged one).
    pub fn rewind(&mut self) -> Option<i64> {
        self.in_flight.clear();
        self.unacknowledged = 0;
        self.hole_since = None;
        self.committable
    }

    /// Whether the pulled message at `offset` is new; a new one is tracked.
    pub fn admit(&mut self, offset: i64) -> Admission {
        match self.committable {
            // Nothing known yet (no start offset): start here; an earlier
            // offset arriving later lowers the start, as nothing is
            // committed yet.
            None => self.committable = Some(offset),
            Some(c) if offset < c && self.committed.is_none() && self.unacknowledged == self.in_flight.len() => {
                self.committable = Some(offset)
            }
            Some(c) if offset < c => return Admission::Stale,
            Some(_) => {}
        }
        if self.in_flight.contains_key(&offset) {
            return Admission::Stale;
        }
        self.in_flight.insert(offset, false);
        self.unacknowledged += 1;
        Admission::New
    }

    /// The message at `offset` is stored or dead-lettered.
    pub fn ack(&mut self, offset: i64) {
        self.ack_at(offset, Instant::now())
    }

    fn ack_at(&mut self, offset: i64, now: Instant) {
        if let Some(done) = self.in_flight.get_mut(&offset)
            && !*done
        {
            *done = true;
            self.unacknowledged -= 1;
        }
        let Some(mut committable) = self.committable else { return };
        while let Some((&first, &done)) = self.in_flight.first_key_value() {
            if first <= committable {
                self.hole_since = None;
            }
            if !done {
                break;
            }
            if first > committable {
                // A hole: offsets not handed out yet (a batch still on its
                // way) or never again (skipped by the broker).
                let since = *self.hole_since.get_or_insert(now);
                if now.duration_since(since) < HOLE_WAIT {
                    break;
                }
                tracing::warn!(from = committable, to = first, "offsets never delivered; committing past them");
            }
            self.hole_since = None;
            self.in_flight.remove(&first);
            committable = first + 1;
        }
        self.committable = Some(committable);
    }

    /// The broker's end of the queue (next offset it will write), as seen.
    pub fn saw_broker_end(&mut self, end: i64) {
        self.broker_end = Some(self.broker_end.map_or(end, |e| e.max(end)));
    }

    /// Messages between what may be committed and the broker's end.
    pub fn lag(&self) -> Option<i64> {
        Some((self.broker_end? - self.committable?).max(0))
    }

    /// Offsets handed out and not acknowledged.
    pub fn in_flight(&self) -> usize {
        self.unacknowledged
    }

    /// The offset to commit, when it moved past the last `committed`.
    pub fn pending_commit(&self) -> Option<i64> {
        let next = self.committable?;
        match self.committed {
            Some(done) if next <= done => None,
            _ => Some(next),
        }
    }

    pub fn mark_committed(&mut self, offset: i64) {
        self.committed = Some(self.committed.map_or(offset, |done| done.max(offset)));
    }

    pub fn committed(&self) -> Option<i64> {
        self.committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_contiguous_acknowledged_prefix_is_committable() {
        let mut q = QueueProgress::default();
        for offset in 10..15 {
            q.admit(offset);
        }
        assert_eq!(q.pending_commit(), Some(10), "nothing acknowledged: commit where we started");
        q.mark_committed(10);
        q.ack(12);
        q.ack(11);
        q.ack(12);
        q.ack(99);
        assert_eq!(q.pending_commit(), None, "10 is not acknowledged yet");
        assert_eq!(q.in_flight(), 3, "acknowledging twice, or what was never handed out, counts nothing");
        q.ack(10);
        assert_eq!(q.pending_commit(), Some(13));
        q.mark_committed(13);
        assert_eq!(q.pending_commit(), None);
        q.ack(14);
        assert_eq!(q.pending_commit(), None, "13 still open");
        q.ack(13);
        assert_eq!(q.pending_commit(), Some(15));
        assert_eq!(q.in_flight(), 0);
    }

    #[test]
    fn a_message_handed_out_already_is_stale() {
        let mut q = QueueProgress::starting_at(0);
        for offset in 0..32 {
            assert_eq!(q.admit(offset), Admission::New);
        }
        // The client's pre-seek batch, handed out again after the seek.
        for offset in 0..32 {
            assert_eq!(q.admit(offset), Admission::Stale);
        }
        for offset in 0..32 {
            q.ack(offset);
        }
        assert_eq!(q.admit(5), Admission::Stale, "below the commit point");
        assert_eq!(q.admit(32), Admission::New);
        assert_eq!(q.pending_commit(), Some(32));
    }

    #[test]
    fn batches_handed_out_of_order_are_all_taken_and_committed_in_order() {
        let mut q = QueueProgress::starting_at(0);
        // The second pull batch of the queue arrives first, and is done first.
        for offset in 4..8 {
            assert_eq!(q.admit(offset), Admission::New);
            q.ack(offset);
        }
        assert_eq!(q.pending_commit(), None, "0..4 are not handed out yet: the commit point stays at 0");
        for offset in 0..4 {
            assert_eq!(q.admit(offset), Admission::New, "the late first batch is not dropped");
        }
        for offset in 0..4 {
            q.ack(offset);
        }
        assert_eq!(q.pending_commit(), Some(8));
    }

    #[test]
    fn a_hole_that_never_fills_stops_holding_the_commit_point_back() {
        let mut q = QueueProgress::starting_at(5);
        let start = Instant::now();
        q.admit(9);
        q.ack_at(9, start);
        assert_eq!(q.pending_commit(), None);
        q.admit(10);
        q.ack_at(10, start + HOLE_WAIT);
        assert_eq!(q.pending_commit(), Some(11), "5..9 are gone from the broker");
    }

    #[test]
    fn a_rewound_queue_takes_its_unacknowledged_offsets_again() {
        let mut q = QueueProgress::starting_at(10);
        for offset in 10..20 {
            q.admit(offset);
        }
        q.ack(10);
        assert_eq!(q.rewind(), Some(11));
        assert_eq!(q.admit(11), Admission::New);
        assert_eq!(q.admit(11), Admission::Stale);
        assert_eq!(q.in_flight(), 1);
    }

    #[test]
    fn redelivered_offsets_below_the_commit_point_are_ignored() {
        let mut q = QueueProgress::default();
        q.admit(5);
        q.ack(5);
        q.mark_committed(6);
        q.admit(5);
        assert_eq!(q.in_flight(), 0);
        q.admit(6);
        q.ack(6);
        assert_eq!(q.pending_commit(), Some(7));
    }
}
