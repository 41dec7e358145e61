//! The handle between a running task and whoever supervises it: a cancel
//! token, a pause switch, and live counters the worker reports (status,
//! REST, metrics) without asking the task.

use crate::openmldb::WriteObserver;
use crate::telemetry::{Histogram, STAGE_CPU, Stage};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What a task reads to know whether to run, pause or stop.
#[derive(Debug, Clone)]
pub struct TaskControl {
    pub cancel: CancellationToken,
    pub paused: watch::Receiver<bool>,
    pub progress: Arc<TaskProgress>,
}

impl TaskControl {
    /// A control that never pauses; stops when `cancel` fires.
    pub fn unpaused(cancel: CancellationToken) -> TaskControl {
        let (_, paused) = watch::channel(false);
        TaskControl { cancel, paused, progress: Arc::new(TaskProgress::default()) }
    }
}

/// Counters a task updates as it goes.
#[derive(Debug, Default)]
pub struct TaskProgress {
    messages: AtomicU64,
    rows_written: AtomicU64,
    dead_lettered: AtomicU64,
    batches: AtomicU64,
    writer_retries: AtomicU64,
    plugin_traps: AtomicU64,
    /// Time in the plugins (converter and transforms) per batch.
    pub plugin_time: Histogram,
    /// Time writing a batch to OpenMLDB (retries included).
    pub write_time: Histogram,
    /// From taking a batch from the consumer to acknowledging it.
    pub batch_time: Histogram,
    /// Per message, from the producer's send (its born timestamp, so clocks
    /// must agree) to its rows stored or dead-lettered.
    pub delivery_time: Histogram,
    /// Messages behind the broker's newest, per queue ("topic/broker/queue"),
    /// as of the last pull.
    lag: Mutex<BTreeMap<String, i64>>,
    /// The task has seen the pause switch and stopped polling.
    paused: AtomicBool,
    /// Why the task is not making progress right now (a destination that
    /// keeps failing), and since when; cleared by the next stored batch.
    degraded: Mutex<Option<Degraded>>,
    /// When work was last committed, and whether any is waiting.
    commits: Mutex<CommitClock>,
    /// Per destination table: rows written and messages dead-lettered.
    tables: Mutex<BTreeMap<String, TableCounts>>,
}

/// A task that runs but does not get its batch stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Degraded {
    pub since: Instant,
    pub reason: String,
    /// When the last warning was logged (they are rate-limited).
    warned: Option<Instant>,
}

#[derive(Debug)]
struct CommitClock {
    last: Instant,
    waiting: bool,
}

impl Default for CommitClock {
    fn default() -> Self {
        CommitClock { last: Instant::now(), waiting: false }
    }
}

/// What a task did for one destination table.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TableCounts {
    pub rows_written: u64,
    pub dead_lettered: u64,
}

/// How often a task that keeps retrying says so in the log.
const DEGRADED_WARNING_INTERVAL: Duration = Duration::from_secs(10);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl TaskProgress {
    pub fn add_messages(&self, n: u64) {
        self.messages.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_rows_written(&self, n: u64) {
        self.rows_written.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_dead_lettered(&self, n: u64) {
        self.dead_lettered.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_batch(&self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add_writer_retries(&self, n: u64) {
        self.writer_retries.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_plugin_traps(&self, n: u64) {
        self.plugin_traps.fetch_add(n, Ordering::Relaxed);
    }
    pub fn set_lag(&self, lag: BTreeMap<String, i64>) {
        *lock(&self.lag) = lag;
    }
    pub fn lag(&self) -> BTreeMap<String, i64> {
        lock(&self.lag).clone()
    }

    /// The task is stuck on `reason` (it keeps retrying); logged at warn at
    /// most every ten seconds.
    pub fn degrade(&self, reason: String) {
        let mut degraded = lock(&self.degraded);
        let now = Instant::now();
        let state = degraded.get_or_insert_with(|| Degraded { since: now, reason: String::new(), warned: None });
        state.reason = reason;
        if state.warned.is_none_or(|at| now.duration_since(at) >= DEGRADED_WARNING_INTERVAL) {
            state.warned = Some(now);
            tracing::warn!(
                stalled_seconds = now.duration_since(state.since).as_secs(),
                "not making progress, retrying: {}",
                state.reason
            );
        }
    }

    /// A batch was stored: whatever held the task up has passed.
    pub fn recovered(&self) {
        if let Some(was) = lock(&self.degraded).take() {
            tracing::warn!(
                stalled_seconds = was.since.elapsed().as_secs(),
                "making progress again after: {}",
                was.reason
            );
        }
    }

    pub fn degraded(&self) -> Option<Degraded> {
        lock(&self.degraded).clone()
    }

    /// Messages were taken and wait to be committed.
    pub fn work_taken(&self) {
        let mut clock = lock(&self.commits);
        if !clock.waiting {
            clock.waiting = true;
            clock.last = Instant::now();
        }
    }

    /// Messages were committed; `more_waiting` if some are still open.
    pub fn committed(&self, more_waiting: bool) {
        let mut clock = lock(&self.commits);
        clock.last = Instant::now();
        clock.waiting = more_waiting;
    }

    /// Seconds the oldest waiting work has gone without a commit; 0 when
    /// nothing waits.
    pub fn seconds_since_commit(&self) -> f64 {
        let clock = lock(&self.commits);
        if clock.waiting { clock.last.elapsed().as_secs_f64() } else { 0.0 }
    }

    pub fn add_table(&self, table: &str, rows_written: u64, dead_lettered: u64) {
        let mut tables = lock(&self.tables);
        let counts = match tables.get_mut(table) {
            Some(counts) => counts,
            None => tables.entry(table.to_string()).or_default(),
        };
        counts.rows_written += rows_written;
        counts.dead_lettered += dead_lettered;
    }

    pub fn tables(&self) -> BTreeMap<String, TableCounts> {
        lock(&self.tables).clone()
    }
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }
    pub fn writer_retries(&self) -> u64 {
        self.writer_retries.load(Ordering::Relaxed)
    }
    pub fn plugin_traps(&self) -> u64 {
        self.plugin_traps.load(Ordering::Relaxed)
    }
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
    }
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }
    pub fn rows_written(&self) -> u64 {
        self.rows_written.load(Ordering::Relaxed)
    }
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }
}

/// Every retry of a writer counts at once and marks the task degraded
/// until a batch is stored again.
impl WriteObserver for TaskProgress {
    fn retrying(&self, table: &str, attempt: u32, error: &str, delay: Duration) {
        self.add_writer_retries(1);
        self.degrade(format!(
            "writing to {table}: attempt {attempt} failed, next in {} ms: {error}",
            delay.as_millis()
        ));
    }

    fn built(&self, cpu: Duration) {
        STAGE_CPU.add(Stage::Write, cpu);
    }
}
