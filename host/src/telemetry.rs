//! What the host measures about itself for `/metrics`: fixed-bucket
//! histograms cheap enough for every batch, the CPU time each stage of the
//! data path costs, and the process's own figures read from `/proc`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The stages of the data path whose CPU time is counted, in path order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The consumer's bookkeeping of pulled messages (the client's own
    /// decoding runs on its tasks and is not in here).
    Consume,
    /// Messages made ready for the converter, and the converter's calls.
    Convert,
    /// The transforms' calls.
    Transform,
    /// Rows checked against the table and turned into requests (the
    /// network I/O runs on the runtime and is not in here).
    Write,
    /// Each message's disposition, and the consumer's acknowledgement
    /// bookkeeping.
    Acknowledge,
}

impl Stage {
    pub const ALL: [Stage; 5] = [Stage::Consume, Stage::Convert, Stage::Transform, Stage::Write, Stage::Acknowledge];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Consume => "consume",
            Stage::Convert => "convert",
            Stage::Transform => "transform",
            Stage::Write => "write",
            Stage::Acknowledge => "acknowledge",
        }
    }
}

/// CPU time spent in each stage, counted on the thread that did the work
/// (its own clock, so time the thread was not running is not counted).
/// One per process, beside the process's CPU time, whose remainder is the
/// runtime, the network and the clients' own tasks.
#[derive(Debug, Default)]
pub struct StageCpu {
    nanos: [AtomicU64; 5],
}

/// The process's stage clock.
pub static STAGE_CPU: StageCpu = StageCpu { nanos: [const { AtomicU64::new(0) }; 5] };

impl StageCpu {
    pub fn add(&self, stage: Stage, cpu: Duration) {
        self.nanos[stage as usize].fetch_add(cpu.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn get(&self, stage: Stage) -> Duration {
        Duration::from_nanos(self.nanos[stage as usize].load(Ordering::Relaxed))
    }

    /// Run `work` (which must not yield to other tasks) and count its CPU
    /// time to `stage`.
    pub fn measure<T>(&self, stage: Stage, work: impl FnOnce() -> T) -> T {
        let started = thread_cpu_time();
        let result = work();
        self.add(stage, thread_cpu_time().saturating_sub(started));
        result
    }
}

/// CPU time of the calling thread.
pub fn thread_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec; the clock ids used are
    // ones Linux always has, and on failure `now` stays zero.
    unsafe { libc::clock_gettime(clock, &mut now) };
    Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Upper bounds, in seconds, of the latency buckets (1 ms to 30 s).
pub const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A latency histogram in Prometheus's cumulative form.
#[derive(Debug)]
pub struct Histogram {
    /// Observations at or under each bound (not cumulative; summed when read).
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: LATENCY_BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// A histogram read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, cumulative count)
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// The process's resident memory, its peak, CPU time and open files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessFigures {
    pub resident_bytes: u64,
    pub peak_resident_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: u64,
    pub threads: u64,
}

/// Read from `/proc/self` (Linux); zeros elsewhere.
pub fn process_figures() -> ProcessFigures {
    let mut figures = ProcessFigures::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            let value = |l: &str| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            if line.starts_with("VmRSS:") {
                figures.resident_bytes = value(line) * 1024;
            } else if line.starts_with("VmHWM:") {
                figures.peak_resident_bytes = value(line) * 1024;
            } else if line.starts_with("Threads:") {
                figures.threads = value(line);
            }
        }
    }
    // User and system time of every thread, to the nanosecond (the
    // clock ticks of /proc/self/stat are 10 ms).
    figures.cpu_seconds = cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID).as_secs_f64();
    figures.open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.001, 1));
        assert_eq!(s.buckets[4], (0.025, 2));
        assert_eq!(s.buckets.last(), Some(&(30.0, 2)), "60 s is only in +Inf");
        assert!((s.sum_seconds - 60.0205).abs() < 1e-9);
    }

    #[test]
    fn stages_count_the_cpu_time_of_their_work() {
        let clock = StageCpu::default();
        let spin = |until: Duration| {
            let started = thread_cpu_time();
            let mut x = 0u64;
            while thread_cpu_time() - started < until {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        };
        clock.measure(Stage::Convert, || spin(Duration::from_millis(20)));
        clock.measure(Stage::Write, || std::thread::sleep(Duration::from_millis(50)));
        assert!(clock.get(Stage::Convert) >= Duration::from_millis(20), "{:?}", clock.get(Stage::Convert));
        assert!(
            clock.get(Stage::Write) < Duration::from_millis(20),
            "sleeping costs no CPU: {:?}",
            clock.get(Stage::Write)
        );
        assert_eq!(clock.get(Stage::Consume), Duration::ZERO);
    }

    #[test]
    fn this_process_has_figures() {
        let f = process_figures();
        assert!(f.resident_bytes > 0 && f.peak_resident_bytes >= f.resident_bytes && f.threads > 0);
    }
}
