//! `GET /metrics`: Prometheus's text format. Per connector and task:
//! messages, rows written, dead letters, batches, writer retries, plugin
//! traps, restarts, consumer lag per queue, and batch / plugin / write time
//! histograms; per connector its state; and the process's own figures.

use crate::telemetry::{HistogramSnapshot, STAGE_CPU, Stage, process_figures};
use crate::worker::Worker;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write;
use std::sync::Arc;

const PREFIX: &str = "rmq_openmldb";

/// Reads one counter of a task.
type ReadCounter = fn(&crate::worker::TaskMetrics) -> u64;
/// Reads one counter of a task's destination table.
type ReadTableCounter = fn(&crate::connector::TableCounts) -> u64;

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {PREFIX}_{name} {help}\n# TYPE {PREFIX}_{name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{PREFIX}_{name} {value}");
    } else {
        let _ = writeln!(out, "{PREFIX}_{name}{{{labels}}} {value}");
    }
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot) {
    for (bound, count) in &h.buckets {
        sample(out, &format!("{name}_bucket"), &format!("{labels},le=\"{bound}\""), count);
    }
    sample(out, &format!("{name}_bucket"), &format!("{labels},le=\"+Inf\""), h.count);
    sample(out, &format!("{name}_sum"), labels, h.sum_seconds);
    sample(out, &format!("{name}_count"), labels, h.count);
}

/// Per plugin (connector and plugin name, summed over the connector's
/// tasks): calls, call time, traps by kind, memory high-water mark, log
/// lines dropped, and the counters and histograms the plugin records.
fn plugin_families(out: &mut String) {
    use std::collections::BTreeMap;
    use std::sync::atomic::Ordering::Relaxed;
    #[derive(Default)]
    struct Sum {
        calls: u64,
        nanos: u64,
        traps: [u64; 4],
        high_water: u64,
        dropped: u64,
        counters: BTreeMap<String, u64>,
        histograms: BTreeMap<String, crate::plugin::HistogramSummary>,
    }
    let mut sums: BTreeMap<(String, String), Sum> = BTreeMap::new();
    for services in crate::plugin::live_plugins() {
        let f = services.figures();
        let sum = sums.entry((services.connector.clone(), services.plugin.clone())).or_default();
        sum.calls += f.calls.load(Relaxed);
        sum.nanos += f.call_nanos.load(Relaxed);
        for (slot, counter) in [&f.traps_deadline, &f.traps_memory, &f.traps_panic, &f.traps_other].iter().enumerate() {
            sum.traps[slot] += counter.load(Relaxed);
        }
        sum.high_water = sum.high_water.max(f.memory_high_water.load(Relaxed));
        sum.dropped += f.log_lines_dropped.load(Relaxed);
        let own = services.metrics();
        for (name, value) in own.counters {
            *sum.counters.entry(name).or_default() += value;
        }
        for (name, h) in own.histograms {
            let entry = sum.histograms.entry(name).or_insert(crate::plugin::HistogramSummary {
                count: 0,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            });
            entry.count += h.count;
            entry.sum += h.sum;
            entry.min = entry.min.min(h.min);
            entry.max = entry.max.max(h.max);
        }
    }
    let labels = |(connector, plugin): &(String, String)| {
        format!("connector=\"{}\",plugin=\"{}\"", escape(connector), escape(plugin))
    };
    family(out, "plugin_calls_total", "counter", "Calls into the plugin.");
    for (key, sum) in &sums {
        sample(out, "plugin_calls_total", &labels(key), sum.calls);
    }
    family(out, "plugin_call_seconds_total", "counter", "Time spent in calls into the plugin.");
    for (key, sum) in &sums {
        sample(out, "plugin_call_seconds_total", &labels(key), sum.nanos as f64 / 1e9);
    }
    family(out, "plugin_traps_by_kind_total", "counter", "Calls that trapped, by kind.");
    for (key, sum) in &sums {
        for (kind, count) in ["deadline", "memory", "panic", "other"].iter().zip(sum.traps) {
            sample(out, "plugin_traps_by_kind_total", &format!("{},kind=\"{kind}\"", labels(key)), count);
        }
    }
    family(out, "plugin_memory_high_water_bytes", "gauge", "Largest memory one instance of the plugin held.");
    for (key, sum) in &sums {
        sample(out, "plugin_memory_high_water_bytes", &labels(key), sum.high_water);
    }
    family(out, "plugin_log_lines_dropped_total", "counter", "log lines over plugin.log.max.lines.per.second.");
    for (key, sum) in &sums {
        sample(out, "plugin_log_lines_dropped_total", &labels(key), sum.dropped);
    }
    family(out, "plugin_counter_total", "counter", "Counters the plugin records through host.counter-add.");
    for (key, sum) in &sums {
        for (name, value) in &sum.counters {
            sample(out, "plugin_counter_total", &format!("{},name=\"{}\"", labels(key), escape(name)), value);
        }
    }
    family(out, "plugin_histogram", "summary", "Histograms the plugin records through host.histogram-record.");
    for (key, sum) in &sums {
        for (name, h) in &sum.histograms {
            let labels = format!("{},name=\"{}\"", labels(key), escape(name));
            sample(out, "plugin_histogram_sum", &labels, h.sum);
            sample(out, "plugin_histogram_count", &labels, h.count);
        }
    }
}

pub fn render(worker: &Worker) -> String {
    let mut out = String::new();
    let tasks = worker.task_metrics();
    let labels = |connector: &str, task: u32| format!("connector=\"{}\",task=\"{task}\"", escape(connector));

    family(&mut out, "connector_state", "gauge", "1 for the connector's current state.");
    for view in worker.connectors() {
        let labels = format!("connector=\"{}\",state=\"{}\"", escape(&view.name), view.state.name());
        sample(&mut out, "connector_state", &labels, 1);
    }
    family(&mut out, "task_state", "gauge", "1 for the task's current state.");
    for t in &tasks {
        sample(&mut out, "task_state", &format!("{},state=\"{}\"", labels(&t.connector, t.task), t.state.name()), 1);
    }
    let counters: [(&str, &str, ReadCounter); 7] = [
        ("messages_total", "Messages taken from RocketMQ and acknowledged.", |t| t.progress.messages()),
        ("rows_written_total", "Rows stored (in OpenMLDB, or by the sink plugin).", |t| t.progress.rows_written()),
        ("dead_lettered_total", "Messages sent to the dead-letter topic (or skipped).", |t| t.progress.dead_lettered()),
        ("batches_total", "Batches through the pipeline.", |t| t.progress.batches()),
        ("writer_retries_total", "OpenMLDB requests retried.", |t| t.progress.writer_retries()),
        ("plugin_traps_total", "WebAssembly traps in the task's plugins.", |t| t.progress.plugin_traps()),
        ("task_restarts_total", "Restarts of the task after failures.", |t| t.restarts.into()),
    ];
    for (name, help, read) in counters {
        family(&mut out, name, "counter", help);
        for t in &tasks {
            sample(&mut out, name, &labels(&t.connector, t.task), read(t));
        }
    }
    family(
        &mut out,
        "consumer_lag_messages",
        "gauge",
        "Messages behind the broker's end of each queue, as of the last pull.",
    );
    for t in &tasks {
        for (queue, lag) in t.progress.lag() {
            sample(
                &mut out,
                "consumer_lag_messages",
                &format!("{},queue=\"{}\"", labels(&t.connector, t.task), escape(&queue)),
                lag,
            );
        }
    }
    family(
        &mut out,
        "task_seconds_since_commit",
        "gauge",
        "Seconds the task's oldest waiting messages have gone without a commit (0 when none wait).",
    );
    for t in &tasks {
        sample(&mut out, "task_seconds_since_commit", &labels(&t.connector, t.task), t.progress.seconds_since_commit());
    }
    family(&mut out, "task_degraded", "gauge", "1 while the task keeps retrying a batch it cannot store.");
    for t in &tasks {
        sample(&mut out, "task_degraded", &labels(&t.connector, t.task), u8::from(t.progress.degraded().is_some()));
    }
    let per_table: [(&str, &str, ReadTableCounter); 2] = [
        ("table_rows_written_total", "Rows stored, per destination table.", |c| c.rows_written),
        ("table_dead_lettered_total", "Messages dead-lettered, per destination table.", |c| c.dead_lettered),
    ];
    for (name, help, read) in per_table {
        family(&mut out, name, "counter", help);
        for t in &tasks {
            for (table, counts) in t.progress.tables() {
                let labels = format!("{},table=\"{}\"", labels(&t.connector, t.task), escape(&table));
                sample(&mut out, name, &labels, read(&counts));
            }
        }
    }
    let histograms = [
        ("batch_seconds", "From taking a batch from the consumer to acknowledging it."),
        ("plugin_seconds", "Time in the converter and transforms per batch."),
        ("write_seconds", "Time writing a batch to OpenMLDB, retries included."),
        ("delivery_seconds", "Per message, from the producer's send (born timestamp) to stored or dead-lettered."),
    ];
    for (name, help) in histograms {
        family(&mut out, name, "histogram", help);
        for t in &tasks {
            let snapshot = match name {
                "batch_seconds" => t.progress.batch_time.snapshot(),
                "plugin_seconds" => t.progress.plugin_time.snapshot(),
                "write_seconds" => t.progress.write_time.snapshot(),
                _ => t.progress.delivery_time.snapshot(),
            };
            histogram(&mut out, name, &labels(&t.connector, t.task), &snapshot);
        }
    }
    plugin_families(&mut out);
    family(
        &mut out,
        "stage_cpu_seconds_total",
        "counter",
        "CPU time of each stage of the data path, on the threads that did the work (the rest of the process's CPU \
         time is the runtime, network I/O and the clients' own tasks).",
    );
    for stage in Stage::ALL {
        sample(
            &mut out,
            "stage_cpu_seconds_total",
            &format!("stage=\"{}\"", stage.name()),
            STAGE_CPU.get(stage).as_secs_f64(),
        );
    }
    let process = process_figures();
    let gauges = [
        ("process_resident_memory_bytes", "gauge", "Resident memory.", process.resident_bytes as f64),
        ("process_peak_resident_memory_bytes", "gauge", "Peak resident memory.", process.peak_resident_bytes as f64),
        ("process_cpu_seconds_total", "counter", "CPU time, user and system.", process.cpu_seconds),
        ("process_open_fds", "gauge", "Open file descriptors.", process.open_fds as f64),
        ("process_threads", "gauge", "Threads.", process.threads as f64),
        ("uptime_seconds", "gauge", "Seconds since the worker started.", worker.uptime().as_secs_f64()),
    ];
    for (name, kind, help, value) in gauges {
        family(&mut out, name, kind, help);
        sample(&mut out, name, "", value);
    }
    out
}

pub async fn metrics(State(worker): State<Arc<Worker>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render(&worker))
}
