//! `GET /metrics`: Prometheus's text format. Per connector and task:
//! messages, rows written, dead letters, batches, writer retries, plugin
//! traps, restarts, consumer lag per queue, and batch / plugin / write time
//! histograms; per connector its state; and the process's own figures.

use crate::telemetry::{HistogramSnapshot, process_figures};
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
