//! Converter throughput: the built-in JSON converter as a WASM component in
//! the real runtime, against the same converter code compiled natively, in
//! one run, for batches of 1, 64 and 1024 messages shaped like the
//! `employee_test` row (rocketmq-connect.md §4.2), both as JsonConverter
//! envelopes and as plain JSON objects.
//!
//! Run: `cargo bench -p rmq-openmldb --bench converter` (add `-- --quick`
//! for a shorter run). Prints rows/s and the WASM/native ratio.

use rmq_openmldb::plugin::bindings as host;
use rmq_openmldb::plugin::{ConverterInstance, PluginCatalog, PluginEngine, PluginServices, Role, RuntimeConfig};
use rmq_openmldb_sdk as sdk;
use std::time::{Duration, Instant};

const ENVELOPE_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"int64","optional":true,"field":"id"},{"type":"string","optional":true,"field":"name"},{"type":"int32","optional":true,"field":"howold"},{"type":"int32","optional":true,"field":"male"},{"type":"string","optional":true,"field":"company"},{"type":"double","optional":true,"field":"money"},{"type":"int64","optional":true,"name":"io.openmessaging.connector.api.data.logical.Timestamp","version":1,"field":"begin_time"}],"optional":true,"name":"employee_test"}"#;

fn payload(i: usize) -> String {
    format!(
        r#"{{"id":{i},"name":"name-{i:05}","howold":{},"male":{},"company":"company","money":{}.5,"begin_time":{}}}"#,
        18 + i % 50,
        i % 2,
        30000 + i % 7000,
        1_640_764_800_000u64 + i as u64 * 1000
    )
}

fn bodies(envelope: bool, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            if envelope {
                format!(r#"{{"schema":{ENVELOPE_SCHEMA},"payload":{}}}"#, payload(i)).into_bytes()
            } else {
                payload(i).into_bytes()
            }
        })
        .collect()
}

fn columns() -> Vec<(&'static str, host::ColumnType, sdk::ColumnType)> {
    use host::ColumnType as H;
    use sdk::ColumnType as S;
    vec![
        ("id", H::Bigint, S::Bigint),
        ("name", H::String, S::String),
        ("howold", H::Int, S::Int),
        ("male", H::Int, S::Int),
        ("company", H::String, S::String),
        ("money", H::Double, S::Double),
        ("begin_time", H::Timestamp, S::Timestamp),
    ]
}

fn host_message(body: &[u8], offset: usize) -> host::Message {
    host::Message {
        topic: "employee_test".into(),
        queue_id: 0,
        queue_offset: offset as i64,
        born_timestamp: 0,
        store_timestamp: 0,
        message_id: None,
        keys: None,
        tags: None,
        properties: None,
        body: body.to_vec(),
    }
}

fn sdk_message(body: &[u8], offset: usize) -> sdk::Message {
    sdk::Message {
        topic: "employee_test".into(),
        queue_id: 0,
        queue_offset: offset as i64,
        born_timestamp: 0,
        store_timestamp: 0,
        message_id: None,
        keys: None,
        tags: None,
        properties: None,
        body: body.to_vec(),
    }
}

/// Rows per second of `run` over batches, measured for at least `budget`.
fn measure(budget: Duration, batches: usize, mut run: impl FnMut(usize) -> usize) -> f64 {
    // Warm up (first calls include instantiation and cache fills).
    for b in 0..batches.min(3) {
        run(b);
    }
    let started = Instant::now();
    let mut rows = 0usize;
    let mut b = 0;
    while started.elapsed() < budget {
        rows += run(b % batches);
        b += 1;
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });
    let engine = PluginEngine::new(RuntimeConfig::default()).expect("plugin engine");
    let plugin = engine
        .load(PluginCatalog::default().resolve("json-converter").expect("built-in"), Some(Role::Converter))
        .expect("load json-converter");
    let host_schema = host::TableSchema {
        database: "demo".into(),
        table: "employee_test".into(),
        columns: columns()
            .iter()
            .map(|(n, h, _)| host::Column { name: n.to_string(), type_: *h, nullable: true })
            .collect(),
    };
    let sdk_schema = sdk::TableSchema {
        database: "demo".into(),
        table: "employee_test".into(),
        columns: columns()
            .iter()
            .map(|(n, _, s)| sdk::Column { name: n.to_string(), type_: *s, nullable: true })
            .collect(),
    };

    println!("JSON converter throughput, employee_test rows ({} ms per figure)", budget.as_millis());
    println!(
        "{:<9} {:>6} {:>16} {:>16} {:>8} {:>14}",
        "format", "batch", "native rows/s", "wasm rows/s", "ratio", "wasm µs/call"
    );
    for envelope in [true, false] {
        let all = bodies(envelope, 8192);
        for batch in [1usize, 64, 1024] {
            let batches = all.len() / batch;
            let host_batches: Vec<Vec<host::Message>> = (0..batches)
                .map(|b| (0..batch).map(|i| host_message(&all[b * batch + i], b * batch + i)).collect())
                .collect();
            let sdk_batches: Vec<Vec<sdk::Message>> = (0..batches)
                .map(|b| (0..batch).map(|i| sdk_message(&all[b * batch + i], b * batch + i)).collect())
                .collect();

            let mut native =
                json_converter::JsonConverter::new(&sdk::PluginConfig::default(), sdk_schema.clone()).expect("native");
            let native_rate = measure(budget, batches, |b| {
                let out = native.convert_batch(&sdk_batches[b]);
                assert!(out.failures.is_empty());
                out.rows.len()
            });

            let services = PluginServices::new("json-converter", "bench");
            let mut wasm = ConverterInstance::new(&engine, plugin.clone(), vec![], host_schema.clone(), services)
                .expect("instance");
            let wasm_rate = measure(budget, batches, |b| {
                let out = wasm.convert(&host_batches[b]).expect("convert");
                assert!(out.failures.is_empty());
                out.rows.len()
            });
            println!(
                "{:<9} {:>6} {:>16.0} {:>16.0} {:>7.2}x {:>14.1}",
                if envelope { "envelope" } else { "plain" },
                batch,
                native_rate,
                wasm_rate,
                wasm_rate / native_rate,
                batch as f64 / wasm_rate * 1e6
            );
        }
    }
}
