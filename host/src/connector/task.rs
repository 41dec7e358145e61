//! The handle between a running task and whoever supervises it: a cancel
//! token, a pause switch, and live counters the worker reports (status,
//! REST, metrics) without asking the task.

use crate::telemetry::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
        *self.lag.lock().unwrap_or_else(|e| e.into_inner()) = lag;
    }
    pub fn lag(&self) -> BTreeMap<String, i64> {
        self.lag.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
