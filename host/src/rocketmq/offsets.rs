//! Which offset of a queue may be committed: the first offset whose
//! message is not yet acknowledged. Messages of a queue can be
//! acknowledged out of order (batches finish in any order); the committed
//! offset only moves over a contiguous prefix of acknowledged messages,
//! so a restart redelivers exactly the unacknowledged window.
//!
//! It also decides which pulled messages are new. The client can hand
//! out a batch pulled before a seek after the seek (its seek clears the
//! cache before it stops the pull task), so a queue read again from an
//! offset would see some messages twice: after a seek only the sought
//! offset opens the queue, and offsets already handed out are dropped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a queue waits for its sought offset before it takes what the
/// broker sends (the offset may have expired from the broker meanwhile).
const SEEK_WAIT: Duration = Duration::from_secs(30);

/// Whether a pulled message goes on to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The next message of the queue.
    New,
    /// Ahead of what was expected: the broker skipped offsets (expired or
    /// corrected); taken, and worth a warning.
    AfterGap { expected: i64 },
    /// Handed out already, or pulled before the last seek: dropped.
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
    /// The queue's end at the broker, as the last pull reported it.
    broker_end: Option<i64>,
    /// The next offset to hand out.
    next: Option<i64>,
    /// Set by a seek: nothing is handed out until this offset arrives.
    sought: Option<(i64, Instant)>,
}

impl QueueProgress {
    /// A queue read from `offset`, which the broker holds as committed.
    pub fn starting_at(offset: i64) -> Self {
        QueueProgress {
            committable: Some(offset),
            committed: Some(offset),
            next: Some(offset),
            sought: Some((offset, Instant::now())),
            ..QueueProgress::default()
        }
    }

    /// Forget what was handed out and not acknowledged: it is read again
    /// from the returned offset (the first unacknowledged one), which the
    /// caller seeks to.
    pub fn rewind(&mut self) -> Option<i64> {
        self.in_flight.clear();
        let from = self.committable?;
        self.next = Some(from);
        self.sought = Some((from, Instant::now()));
        Some(from)
    }

    /// Whether the pulled message at `offset` is new; a new one is tracked.
    pub fn admit(&mut self, offset: i64) -> Admission {
        self.admit_at(offset, Instant::now())
    }

    fn admit_at(&mut self, offset: i64, now: Instant) -> Admission {
        if let Some((sought, since)) = self.sought {
            if offset != sought && now.duration_since(since) < SEEK_WAIT {
                return Admission::Stale;
            }
            self.sought = None;
        }
        let admission = match self.next {
            Some(next) if offset < next => return Admission::Stale,
            Some(next) if offset > next => Admission::AfterGap { expected: next },
            _ => Admission::New,
        };
        self.next = Some(offset + 1);
        self.track(offset);
        admission
    }

    /// A message at `offset` was handed to the pipeline.
    fn track(&mut self, offset: i64) {
        if self.committable.is_none() {
            self.committable = Some(offset);
        }
        if self.committable.is_some_and(|c| offset >= c) {
            self.in_flight.entry(offset).or_insert(false);
        }
    }

    /// The message at `offset` is stored or dead-lettered.
    pub fn ack(&mut self, offset: i64) {
        if let Some(done) = self.in_flight.get_mut(&offset) {
            *done = true;
        }
        while let Some((&first, &done)) = self.in_flight.first_key_value() {
            if !done {
                break;
            }
            self.in_flight.remove(&first);
            self.committable = Some(first + 1);
        }
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
        self.in_flight.values().filter(|done| !**done).count()
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
        self.committed = Some(offset);
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
            q.track(offset);
        }
        assert_eq!(q.pending_commit(), Some(10), "nothing acknowledged: commit where we started");
        q.mark_committed(10);
        q.ack(12);
        q.ack(11);
        assert_eq!(q.pending_commit(), None, "10 is not acknowledged yet");
        assert_eq!(q.in_flight(), 3);
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
        assert_eq!(q.admit(32), Admission::New);
        assert_eq!(q.in_flight(), 33);
    }

    #[test]
    fn after_a_rewind_only_the_sought_offset_opens_the_queue() {
        let mut q = QueueProgress::starting_at(10);
        for offset in 10..20 {
            q.admit(offset);
        }
        q.ack(10);
        assert_eq!(q.rewind(), Some(11));
        // A pull started before the rewind brings offsets ahead of it.
        assert_eq!(q.admit(20), Admission::Stale);
        assert_eq!(q.admit(11), Admission::New);
        assert_eq!(q.admit(12), Admission::New);
        assert_eq!(q.in_flight(), 2);
    }

    #[test]
    fn a_sought_offset_that_never_comes_stops_blocking_the_queue() {
        let mut q = QueueProgress::starting_at(5);
        let later = Instant::now() + SEEK_WAIT;
        assert_eq!(q.admit_at(9, later), Admission::AfterGap { expected: 5 });
        assert_eq!(q.admit(10), Admission::New);
        assert_eq!(q.pending_commit(), None, "5 is committed; 9 is not acknowledged");
    }

    #[test]
    fn redelivered_offsets_below_the_commit_point_are_ignored() {
        let mut q = QueueProgress::default();
        q.track(5);
        q.ack(5);
        q.mark_committed(6);
        q.track(5);
        assert_eq!(q.in_flight(), 0);
        q.track(6);
        q.ack(6);
        assert_eq!(q.pending_commit(), Some(7));
    }
}
