//! What the host measures about itself for `/metrics`: fixed-bucket
//! histograms cheap enough for every batch, and the process's own figures
//! read from `/proc`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may contain spaces): utime
        // and stime are the 12th and 13th, in clock ticks (100 per second
        // on Linux).
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            figures.cpu_seconds = (ticks(11) + ticks(12)) / 100.0;
        }
    }
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
    fn this_process_has_figures() {
        let f = process_figures();
        assert!(f.resident_bytes > 0 && f.peak_resident_bytes >= f.resident_bytes && f.threads > 0);
    }
}
