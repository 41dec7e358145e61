//! CPU per row for the benches: the process's CPU time and the worker's
//! per-stage CPU clock (`rmq_openmldb_stage_cpu_seconds_total`), read at
//! the start and the end of a measured span, from this process or from a
//! worker's `/metrics`.

use rmq_openmldb::telemetry::{STAGE_CPU, Stage, process_figures};

/// CPU seconds at one moment: the whole process, and each stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuReading {
    process: f64,
    stages: [f64; 5],
}

impl CpuReading {
    /// This process's clocks.
    pub fn here() -> CpuReading {
        let mut stages = [0.0; 5];
        for stage in Stage::ALL {
            stages[stage as usize] = STAGE_CPU.get(stage).as_secs_f64();
        }
        CpuReading { process: process_figures().cpu_seconds, stages }
    }

    /// A worker's clocks, from the text of its `/metrics`.
    pub fn from_metrics(text: &str) -> CpuReading {
        let mut reading = CpuReading::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.parse::<f64>() else { continue };
            if name == "rmq_openmldb_process_cpu_seconds_total" {
                reading.process = value;
            }
            for stage in Stage::ALL {
                if name == format!("rmq_openmldb_stage_cpu_seconds_total{{stage=\"{}\"}}", stage.name()) {
                    reading.stages[stage as usize] = value;
                }
            }
        }
        reading
    }

    /// A worker's clocks, read over HTTP from `base` (`http://host:port`).
    pub async fn of_worker(http: &reqwest::Client, base: &str) -> CpuReading {
        match http.get(format!("{base}/metrics")).send().await {
            Ok(reply) => CpuReading::from_metrics(&reply.text().await.unwrap_or_default()),
            Err(_) => CpuReading::default(),
        }
    }
}

/// Microseconds of CPU per row over a span: in all, per stage, and the
/// rest (runtime, network I/O, the clients' own tasks).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuPerRow {
    pub total: f64,
    pub stages: [f64; 5],
}

impl CpuPerRow {
    pub fn between(start: &CpuReading, end: &CpuReading, rows: usize) -> CpuPerRow {
        let per_row = |seconds: f64| if rows == 0 { 0.0 } else { seconds * 1e6 / rows as f64 };
        let mut stages = [0.0; 5];
        for (i, stage) in stages.iter_mut().enumerate() {
            *stage = per_row(end.stages[i] - start.stages[i]);
        }
        CpuPerRow { total: per_row(end.process - start.process), stages }
    }

    pub fn other(&self) -> f64 {
        (self.total - self.stages.iter().sum::<f64>()).max(0.0)
    }

    /// Column headings matching [`cells`](Self::cells).
    pub fn headings() -> String {
        let mut out = format!("{:>8}", "CPU µs");
        for short in ["consume", "convert", "transfrm", "write", "ack", "other"] {
            out.push_str(&format!(" {short:>8}"));
        }
        out
    }

    pub fn cells(&self) -> String {
        let mut out = format!("{:>8.2}", self.total);
        for stage in self.stages {
            out.push_str(&format!(" {stage:>8.2}"));
        }
        out.push_str(&format!(" {:>8.2}", self.other()));
        out
    }
}
