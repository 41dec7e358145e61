//! What a plugin costs, per language: the examples' orders transform
//! (`examples/plugins/orders-transform/{rust,python,js,c,go}`) built with
//! `rmq-openmldb plugin build` (the toolchains of
//! `scripts/plugin-toolchains.sh`), then, in the worker's runtime: component
//! size, first load (compile), load from the compile cache, first call
//! (instantiate + init), and per-batch cost for batches of 1, 16 and 256
//! rows.
//!
//! Run: `cargo bench -p rmq-openmldb --bench plugin_languages` (add
//! `-- --quick` for a shorter run).

use rmq_openmldb::plugin::bindings::{Cell, Column, ColumnType, Row, RowBatch};
use rmq_openmldb::plugin::{PluginEngine, PluginOrigin, PluginServices, Role, RuntimeConfig, TransformInstance};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const LANGUAGES: [&str; 5] = ["rust", "c", "go", "python", "js"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Copy an example project's sources (not its build output).
fn copy_project(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if ["target", "gen", "__pycache__"].contains(&name.as_str()) || name.ends_with(".wasm") {
            continue;
        }
        if path.is_dir() {
            copy_project(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// Build the example in `lang`; the component's path and the build time.
fn build(lang: &str, work: &Path) -> (PathBuf, Duration) {
    let project = work.join(lang);
    copy_project(&root().join("examples/plugins/orders-transform").join(lang), &project);
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
        .args(["plugin", "build"])
        .current_dir(&project)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run rmq-openmldb plugin build");
    assert!(
        output.status.success(),
        "building the {lang} example failed (run scripts/plugin-toolchains.sh):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (project.join(format!("orders-{lang}.wasm")), started.elapsed())
}

fn output_columns() -> Vec<Column> {
    let column = |name: &str, type_| Column { name: name.into(), type_, nullable: true };
    vec![
        column("id", ColumnType::Bigint),
        column("customer", ColumnType::String),
        column("card", ColumnType::String),
        column("quantity", ColumnType::Int),
        column("unit_price", ColumnType::Double),
        column("total", ColumnType::Double),
        column("ts", ColumnType::Timestamp),
    ]
}

/// Input rows (the output's columns without `total`); one in ten is dropped.
fn batch(size: usize) -> RowBatch {
    let rows = (0..size)
        .map(|i| Row {
            source_index: i as u32,
            cells: vec![
                Cell::Bigint(i as i64),
                Cell::String(format!("customer-{i}")),
                Cell::String(format!("{:016}", 4_111_111_111_111_111u64 + i as u64)),
                Cell::Int(if i % 10 == 0 { 0 } else { (i % 7) as i32 + 1 }),
                Cell::Double(9.5 + i as f64),
                Cell::Timestamp(1_700_000_000_000 + i as i64),
            ],
        })
        .collect();
    RowBatch { rows, origins: Vec::new() }
}

struct Figures {
    lang: &'static str,
    build: Duration,
    size: usize,
    compile: Duration,
    cached: Duration,
    first_call: Duration,
    per_batch: Vec<(usize, Duration)>,
}

fn measure(lang: &'static str, work: &Path, quick: bool) -> Figures {
    let (component, build) = build(lang, work);
    let cache = work.join(format!("cache-{lang}"));
    let engine = |cache: &Path| PluginEngine::new(RuntimeConfig { cache_dir: Some(cache.to_path_buf()) }).unwrap();
    let cold = engine(&cache).load(PluginOrigin::File(component.clone()), Some(Role::Transform)).unwrap();
    // A new engine, as a restarted worker: the compile cache answers.
    let engine = engine(&cache);
    let warm = engine.load(PluginOrigin::File(component), Some(Role::Transform)).unwrap();
    let services = PluginServices::new("bench", "bench");
    let started = Instant::now();
    let mut instance =
        TransformInstance::new(&engine, warm.clone(), vec![("keep".into(), "4".into())], output_columns(), services)
            .unwrap();
    let first_call = started.elapsed();
    let budget = Duration::from_millis(if quick { 300 } else { 2000 });
    let mut per_batch = Vec::new();
    for size in [1usize, 16, 256] {
        let input = batch(size);
        let expected = size - size.div_ceil(10);
        let out = instance.process(&input).unwrap();
        assert_eq!(out.rows.len(), expected, "{lang}: rows out of a batch of {size}");
        let started = Instant::now();
        let mut calls = 0u32;
        while started.elapsed() < budget {
            instance.process(&input).unwrap();
            calls += 1;
        }
        per_batch.push((size, started.elapsed() / calls));
    }
    Figures {
        lang,
        build,
        size: cold.size_bytes,
        compile: cold.load_time,
        cached: warm.load_time,
        first_call,
        per_batch,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let work = tempfile::tempdir().unwrap();
    println!(
        "orders transform per language (examples/plugins/orders-transform), {} run",
        if quick { "quick" } else { "full" }
    );
    println!(
        "{:<7} {:>9} {:>10} {:>12} {:>11} {:>11} {:>12} {:>12} {:>13} {:>11}",
        "lang",
        "build s",
        "size KiB",
        "compile ms",
        "cached ms",
        "1st call ms",
        "batch 1 µs",
        "batch 16 µs",
        "batch 256 µs",
        "rows/s"
    );
    for lang in LANGUAGES {
        let f = measure(lang, work.path(), quick);
        let micros = |size: usize| {
            f.per_batch.iter().find(|(s, _)| *s == size).map(|(_, d)| d.as_secs_f64() * 1e6).unwrap_or(0.0)
        };
        println!(
            "{:<7} {:>9.1} {:>10.0} {:>12.1} {:>11.2} {:>11.2} {:>12.1} {:>12.1} {:>13.1} {:>11.0}",
            f.lang,
            f.build.as_secs_f64(),
            f.size as f64 / 1024.0,
            f.compile.as_secs_f64() * 1e3,
            f.cached.as_secs_f64() * 1e3,
            f.first_call.as_secs_f64() * 1e3,
            micros(1),
            micros(16),
            micros(256),
            256.0 / (micros(256) / 1e6),
        );
    }
}
