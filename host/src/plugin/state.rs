//! What a plugin's `Store` holds, and the host imports it can call: log,
//! metrics, small keyed state and, when the connector grants one, a SQL
//! connection. The services outlive any one instance so that state and
//! metrics survive instance recycling after a trap.

use super::bindings::Level;
use super::bindings::converter::rmq_openmldb::plugin::{host, types};
use super::bindings::sql::{self, ResultSet, SqlError, SqlErrorKind, SqlValue};
use super::error::TrapKind;
use super::sandbox::{Limits, MAX_INSTANCES, MAX_MEMORIES, MAX_TABLE_ELEMENTS, MAX_TABLES, Sandbox};
use crate::sql::SqlConnection;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

/// Longest log line a plugin may write; longer ones are cut.
pub const MAX_LOG_LINE: usize = 4096;
/// Limits of the keyed state (documented in the WIT).
pub const MAX_STATE_KEY: usize = 256;
pub const MAX_STATE_VALUE: usize = 64 * 1024;
pub const MAX_STATE_TOTAL: usize = 1024 * 1024;
/// Distinct metric names one plugin may create.
pub const MAX_METRIC_NAMES: usize = 128;
/// How much of a plugin's stderr is kept to explain a trap.
pub const STDERR_TAIL: usize = 8 * 1024;

/// Per (connector task, plugin) services: labels, limits and grants,
/// metrics and state.
#[derive(Debug, Default)]
pub struct PluginServices {
    /// Plugin name, for log lines and metric labels.
    pub plugin: String,
    /// Connector name, or a label such as "plugin-test".
    pub connector: String,
    /// What the plugin may use (limits, grants).
    pub sandbox: Sandbox,
    metrics: Mutex<PluginMetrics>,
    state: Mutex<KeyedState>,
    /// The SQL connection the connector grants this plugin, if any.
    sql: Option<SqlConnection>,
    log_bucket: Mutex<LogBucket>,
    calls: CallFigures,
}

/// What the host measures of a plugin's calls, for `/metrics`.
#[derive(Debug, Default)]
pub struct CallFigures {
    pub calls: AtomicU64,
    pub call_nanos: AtomicU64,
    pub traps_deadline: AtomicU64,
    pub traps_memory: AtomicU64,
    pub traps_panic: AtomicU64,
    pub traps_other: AtomicU64,
    pub memory_high_water: AtomicU64,
    pub log_lines_dropped: AtomicU64,
}

/// A token bucket: `rate` lines a second, bursts of twice that.
#[derive(Debug, Default)]
struct LogBucket {
    tokens: f64,
    refilled: Option<Instant>,
}

impl LogBucket {
    fn admit(&mut self, rate: u32) -> bool {
        let now = Instant::now();
        let burst = f64::from(rate) * 2.0;
        let tokens = match self.refilled {
            None => burst,
            Some(at) => (self.tokens + now.duration_since(at).as_secs_f64() * f64::from(rate)).min(burst),
        };
        self.refilled = Some(now);
        if tokens >= 1.0 {
            self.tokens = tokens - 1.0;
            true
        } else {
            self.tokens = tokens;
            false
        }
    }
}

/// Every live plugin's services, for `/metrics`.
static LIVE: Mutex<Vec<Weak<PluginServices>>> = Mutex::new(Vec::new());

/// The services of every plugin instance alive in this process.
pub fn live_plugins() -> Vec<Arc<PluginServices>> {
    let mut live = lock(&LIVE);
    live.retain(|w| w.strong_count() > 0);
    live.iter().filter_map(Weak::upgrade).collect()
}

/// A histogram as count, sum, min and max; exported by the metrics layer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HistogramSummary {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Default, Clone)]
pub struct PluginMetrics {
    pub counters: BTreeMap<String, u64>,
    pub histograms: BTreeMap<String, HistogramSummary>,
}

#[derive(Debug, Default)]
struct KeyedState {
    entries: HashMap<String, Vec<u8>>,
    bytes: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PluginServices {
    /// Services with the default sandbox (nothing granted).
    pub fn new(plugin: impl Into<String>, connector: impl Into<String>) -> Arc<Self> {
        Self::sandboxed(plugin, connector, Sandbox::default(), None)
    }

    /// Services that include a granted SQL connection.
    pub fn with_sql(plugin: impl Into<String>, connector: impl Into<String>, sql: SqlConnection) -> Arc<Self> {
        Self::sandboxed(plugin, connector, Sandbox::default(), Some(sql))
    }

    /// Services with the connector's limits and grants for this plugin.
    pub fn sandboxed(
        plugin: impl Into<String>,
        connector: impl Into<String>,
        sandbox: Sandbox,
        sql: Option<SqlConnection>,
    ) -> Arc<Self> {
        let services = Arc::new(PluginServices {
            plugin: plugin.into(),
            connector: connector.into(),
            sandbox,
            sql,
            ..Default::default()
        });
        let mut live = lock(&LIVE);
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&services));
        services
    }

    pub fn limits(&self) -> &Limits {
        &self.sandbox.limits
    }

    pub fn figures(&self) -> &CallFigures {
        &self.calls
    }

    /// Count one finished call.
    pub(crate) fn record_call(&self, elapsed: Duration, trap: Option<TrapKind>, memory_bytes: usize) {
        let c = &self.calls;
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.call_nanos.fetch_add(elapsed.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
        c.memory_high_water.fetch_max(memory_bytes as u64, Ordering::Relaxed);
        let counter = match trap {
            None => return,
            Some(TrapKind::Deadline) => &c.traps_deadline,
            Some(TrapKind::MemoryLimit) => &c.traps_memory,
            Some(TrapKind::Panic) => &c.traps_panic,
            Some(TrapKind::Other) => &c.traps_other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn sql(&self) -> Result<&SqlConnection, SqlError> {
        self.sql.as_ref().ok_or_else(|| SqlError {
            kind: SqlErrorKind::NotGranted,
            code: None,
            message: format!(
                "plugin \"{}\" of connector \"{}\" has no SQL connection: the connector's config grants one with connection.url",
                self.plugin, self.connector
            ),
        })
    }

    /// A copy of the plugin's metrics so far.
    pub fn metrics(&self) -> PluginMetrics {
        lock(&self.metrics).clone()
    }

    fn log(&self, level: Level, message: &str) {
        if !lock(&self.log_bucket).admit(self.sandbox.limits.log_lines_per_second) {
            let dropped = self.calls.log_lines_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One line in 1000 dropped ones says so, so the flood is visible
            // without being repeated.
            if dropped % 1000 == 1 {
                tracing::warn!(
                    plugin = %self.plugin,
                    connector = %self.connector,
                    dropped,
                    "plugin logs faster than plugin.log.max.lines.per.second ({}); lines are dropped",
                    self.sandbox.limits.log_lines_per_second
                );
            }
            return;
        }
        let message = truncate(message, MAX_LOG_LINE);
        let (plugin, connector) = (self.plugin.as_str(), self.connector.as_str());
        match level {
            Level::Trace => tracing::trace!(plugin, connector, "{message}"),
            Level::Debug => tracing::debug!(plugin, connector, "{message}"),
            Level::Info => tracing::info!(plugin, connector, "{message}"),
            Level::Warn => tracing::warn!(plugin, connector, "{message}"),
            Level::Error => tracing::error!(plugin, connector, "{message}"),
        }
    }

    fn counter_add(&self, name: &str, delta: u64) {
        let mut metrics = lock(&self.metrics);
        if let Some(name) = admit_metric(name, metrics.counters.len(), metrics.counters.contains_key(name)) {
            let counter = metrics.counters.entry(name).or_default();
            *counter = counter.saturating_add(delta);
        }
    }

    fn histogram_record(&self, name: &str, value: f64) {
        if !value.is_finite() {
            return;
        }
        let mut metrics = lock(&self.metrics);
        if let Some(name) = admit_metric(name, metrics.histograms.len(), metrics.histograms.contains_key(name)) {
            let h = metrics.histograms.entry(name).or_insert(HistogramSummary {
                count: 0,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            });
            h.count += 1;
            h.sum += value;
            h.min = h.min.min(value);
            h.max = h.max.max(value);
        }
    }

    pub fn state_get(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.state).entries.get(key).cloned()
    }

    pub fn state_put(&self, key: String, value: Vec<u8>) -> bool {
        if key.len() > MAX_STATE_KEY || value.len() > MAX_STATE_VALUE {
            return false;
        }
        let mut state = lock(&self.state);
        let replaced = state.entries.get(&key).map(|old| key.len() + old.len()).unwrap_or(0);
        let after = state.bytes - replaced + key.len() + value.len();
        if after > MAX_STATE_TOTAL {
            return false;
        }
        state.bytes = after;
        state.entries.insert(key, value);
        true
    }

    pub fn state_delete(&self, key: &str) {
        let mut state = lock(&self.state);
        if let Some(old) = state.entries.remove(key) {
            state.bytes -= key.len() + old.len();
        }
    }
}

/// The metric name to use, or None when the plugin has too many names.
/// Names are restricted to Prometheus' alphabet.
fn admit_metric(name: &str, known: usize, exists: bool) -> Option<String> {
    if !exists && known >= MAX_METRIC_NAMES {
        return None;
    }
    let clean: String =
        name.chars().take(64).map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    (!clean.is_empty()).then_some(clean)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The clock of the current call: when it started and what bounds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallClock {
    pub started: Instant,
    pub timeout: Duration,
    pub max_wall: Duration,
    /// Time the call spent blocked in the SQL import; the compute deadline
    /// is extended by it (a slow database is not a runaway plugin), the
    /// wall deadline is not.
    pub host_wait: Duration,
}

impl CallClock {
    fn new(limits: &Limits) -> Self {
        CallClock {
            started: Instant::now(),
            timeout: limits.call_timeout,
            max_wall: limits.call_max_wall,
            host_wait: Duration::ZERO,
        }
    }

    pub fn wall_deadline(&self) -> Instant {
        self.started + self.max_wall
    }

    /// Until when a blocking import may wait: the compute deadline (time
    /// asleep counts), and never past the wall deadline.
    pub fn host_wait_deadline(&self) -> Instant {
        (self.started + self.timeout + self.host_wait).min(self.wall_deadline())
    }
}

/// The memory, table and instance limits of one store. Memory is counted
/// over all the instance's linear memories together, so more memories do
/// not multiply the cap.
pub(crate) struct SandboxLimiter {
    memory_cap: usize,
    memory_total: usize,
    pub(crate) memory_high_water: usize,
}

impl ResourceLimiter for SandboxLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let after = self.memory_total - current.min(self.memory_total) + desired;
        if after > self.memory_cap {
            return Err(wasmtime::format_err!(
                "forcing trap when growing memory to {desired} bytes: the instance's memories would hold {after} bytes, over its {} byte cap",
                self.memory_cap
            ));
        }
        self.memory_total = after;
        self.memory_high_water = self.memory_high_water.max(after);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        Ok(())
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::format_err!(
                "table growth to {desired} elements refused: a plugin table holds at most {MAX_TABLE_ELEMENTS}"
            ));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }
    fn tables(&self) -> usize {
        MAX_TABLES
    }
    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// The data of one plugin `Store`.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: SandboxLimiter,
    pub(crate) services: Arc<PluginServices>,
    pub(crate) stderr: TailPipe,
    pub(crate) clock: CallClock,
}

impl PluginState {
    /// A sandbox with only what the connector grants (by default no files,
    /// no network, no environment); stdout and stderr go to a bounded tail
    /// kept to explain traps.
    pub fn new(services: Arc<PluginServices>) -> std::io::Result<Self> {
        let stderr = TailPipe::new(STDERR_TAIL);
        let wasi = super::wasi::context(&services.sandbox.grants, stderr.clone())?;
        let limits = &services.sandbox.limits;
        let limiter = SandboxLimiter { memory_cap: limits.memory_max_bytes, memory_total: 0, memory_high_water: 0 };
        let clock = CallClock::new(limits);
        Ok(PluginState { wasi, table: ResourceTable::new(), limiter, services, stderr, clock })
    }

    pub(crate) fn table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Start the clock of a new call.
    pub(crate) fn start_call(&mut self) {
        self.clock = CallClock::new(&self.services.sandbox.limits);
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: Level, message: String) {
        self.services.log(level, &message)
    }
    fn counter_add(&mut self, name: String, delta: u64) {
        self.services.counter_add(&name, delta)
    }
    fn histogram_record(&mut self, name: String, value: f64) {
        self.services.histogram_record(&name, value)
    }
    fn state_get(&mut self, key: String) -> Option<Vec<u8>> {
        self.services.state_get(&key)
    }
    fn state_put(&mut self, key: String, value: Vec<u8>) -> bool {
        self.services.state_put(key, value)
    }
    fn state_delete(&mut self, key: String) {
        self.services.state_delete(&key)
    }
}

impl sql::Host for PluginState {
    fn query(&mut self, statement: String, params: Vec<SqlValue>) -> Result<ResultSet, SqlError> {
        let started = Instant::now();
        let deadline = Some(self.clock.wall_deadline());
        let result = self.services.sql().and_then(|c| c.query_by(statement, params, deadline));
        self.clock.host_wait += started.elapsed();
        result
    }

    fn execute(&mut self, statement: String, params: Vec<Vec<SqlValue>>) -> Result<Vec<u64>, SqlError> {
        let started = Instant::now();
        let deadline = Some(self.clock.wall_deadline());
        let result = self.services.sql().and_then(|c| c.execute_by(statement, params, deadline));
        self.clock.host_wait += started.elapsed();
        result
    }
}

/// An output stream that never fails and keeps the last `capacity` bytes.
/// A plugin that prints a lot loses old output, never its ability to run.
/// It also keeps the first panic line (Go's `panic: …`), which a long
/// stack trace after it would push out of the tail.
#[derive(Clone)]
pub struct TailPipe {
    capacity: usize,
    buffer: Arc<Mutex<VecDeque<u8>>>,
    lines: Arc<Mutex<PanicLine>>,
}

/// The line being written and the first panic line seen.
#[derive(Default)]
struct PanicLine {
    current: Vec<u8>,
    first_panic: Option<String>,
}

/// The longest panic line kept, in bytes.
const PANIC_LINE_MAX: usize = 1024;

impl PanicLine {
    fn push(&mut self, bytes: &[u8]) {
        if self.first_panic.is_some() {
            return;
        }
        for &byte in bytes {
            if byte == b'\n' {
                self.end_line();
                if self.first_panic.is_some() {
                    return;
                }
            } else if self.current.len() < PANIC_LINE_MAX {
                self.current.push(byte);
            }
        }
    }

    fn end_line(&mut self) {
        let line = String::from_utf8_lossy(&self.current).trim().to_string();
        self.current.clear();
        if line.starts_with("panic: ") || line.starts_with("fatal error: ") {
            self.first_panic = Some(line);
        }
    }
}

impl TailPipe {
    pub fn new(capacity: usize) -> Self {
        TailPipe { capacity, buffer: Arc::new(Mutex::new(VecDeque::with_capacity(capacity))), lines: Arc::default() }
    }

    fn push(&self, bytes: &[u8]) {
        lock(&self.lines).push(bytes);
        let mut buffer = lock(&self.buffer);
        let keep = bytes.len().min(self.capacity);
        let overflow = (buffer.len() + keep).saturating_sub(self.capacity);
        buffer.drain(..overflow);
        buffer.extend(&bytes[bytes.len() - keep..]);
    }

    /// The kept output as text, trimmed.
    pub fn contents(&self) -> String {
        let buffer = lock(&self.buffer);
        let (a, b) = buffer.as_slices();
        let mut bytes = Vec::with_capacity(buffer.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).trim().to_string()
    }

    /// The first line the plugin wrote that starts with `panic: ` or
    /// `fatal error: ` (how Go reports a panic), even if unfinished.
    pub fn panic_line(&self) -> Option<String> {
        let lines = lock(&self.lines);
        if lines.first_panic.is_none() && !lines.current.is_empty() {
            let line = String::from_utf8_lossy(&lines.current).trim().to_string();
            if line.starts_with("panic: ") || line.starts_with("fatal error: ") {
                return Some(line);
            }
        }
        lines.first_panic.clone()
    }
}

impl IsTerminal for TailPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for TailPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for TailPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for TailPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for TailPipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module declaring `count` memories of `pages` 64 KiB pages.
    fn module_with_memories(count: u8, pages: u16) -> Vec<u8> {
        let mut limits = vec![0x00];
        let mut n = pages;
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                limits.push(byte);
                break;
            }
            limits.push(byte | 0x80);
        }
        let mut section = vec![count];
        for _ in 0..count {
            section.extend(&limits);
        }
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.push(0x05);
        module.push(section.len() as u8);
        module.extend(section);
        module
    }

    fn instantiate(bytes: &[u8]) -> Result<usize, String> {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, bytes).map_err(|e| format!("{e:#}"))?;
        let limiter = SandboxLimiter { memory_cap: 64 << 20, memory_total: 0, memory_high_water: 0 };
        let mut store = wasmtime::Store::new(&engine, limiter);
        store.limiter(|l| l);
        wasmtime::Linker::new(&engine).instantiate(&mut store, &module).map_err(|e| format!("{e:#}"))?;
        Ok(store.data().memory_total)
    }

    #[test]
    fn more_memories_do_not_multiply_the_cap() {
        assert_eq!(instantiate(&module_with_memories(2, 16)), Ok(2 << 20), "two 1 MiB memories are fine");
        let many = instantiate(&module_with_memories(MAX_MEMORIES as u8 + 1, 1)).unwrap_err();
        assert!(many.contains("memor"), "{many}");
        // Three memories of 25 MiB: each under the 64 MiB cap, together over it.
        let big = instantiate(&module_with_memories(3, 400)).unwrap_err();
        assert!(big.contains("over its 67108864 byte cap"), "{big}");
    }

    #[test]
    fn tail_pipe_keeps_the_last_bytes() {
        let pipe = TailPipe::new(8);
        pipe.push(b"hello ");
        pipe.push(b"world!");
        assert_eq!(pipe.contents(), "o world!");
        pipe.push(b"0123456789abc");
        assert_eq!(pipe.contents(), "56789abc");
    }

    #[test]
    fn keyed_state_enforces_its_limits() {
        let s = PluginServices::new("p", "c");
        assert!(s.state_put("k".into(), vec![1; 10]));
        assert_eq!(s.state_get("k"), Some(vec![1; 10]));
        assert!(!s.state_put("x".repeat(MAX_STATE_KEY + 1), vec![]));
        assert!(!s.state_put("big".into(), vec![0; MAX_STATE_VALUE + 1]));
        let stored = (0..20).filter(|i| s.state_put(format!("k{i:02}"), vec![0; MAX_STATE_VALUE])).count();
        assert_eq!(stored, 15, "16 full values would pass the 1 MiB total");
        s.state_delete("k00");
        assert!(s.state_put("k19".into(), vec![0; MAX_STATE_VALUE]), "deleting frees room");
    }

    #[test]
    fn metrics_accumulate_with_clean_names() {
        let s = PluginServices::new("p", "c");
        s.counter_add("rows.bad", 2);
        s.counter_add("rows.bad", 3);
        s.histogram_record("size", 4.0);
        s.histogram_record("size", 2.0);
        s.histogram_record("size", f64::NAN);
        let m = s.metrics();
        assert_eq!(m.counters["rows_bad"], 5);
        assert_eq!(m.histograms["size"], HistogramSummary { count: 2, sum: 6.0, min: 2.0, max: 4.0 });
    }
}
