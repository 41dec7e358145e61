//! A transform for testing the host's defences. The first cell of each row,
//! when it is a string, says what to do:
//! - "trap": execute `unreachable`;
//! - "panic": panic with a message;
//! - "alloc": allocate without bound;
//! - "loop": spin forever;
//! - "break-schema": return a row whose cell has the wrong type;
//! - "bad-index": report a failure for a row that does not exist;
//! - anything else: pass the row through.
//!
//! Every call counts itself in keyed state ("calls") and a counter.

use rmq_openmldb_sdk::host;
use rmq_openmldb_sdk::prelude::*;

pub struct Hostile;

fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl Transform for Hostile {
    fn init(_config: PluginConfig, output: Vec<Column>) -> Result<(Self, TransformInfo), PluginError> {
        Ok((Hostile, TransformInfo { info: plugin_info("hostile", "0.0.1"), input: output }))
    }

    fn process(&mut self, batch: RowBatch) -> Result<Transformed, PluginError> {
        let calls = host::state_get("calls").map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).unwrap_or(0);
        host::state_put("calls", &(calls + 1).to_le_bytes());
        host::counter_add("hostile_calls", 1);
        let mut out = Transformed { rows: Vec::new(), failures: Vec::new() };
        for row in batch.rows {
            let command = match row.cells.first() {
                Some(Cell::String(s)) => s.clone(),
                _ => String::new(),
            };
            match command.as_str() {
                "trap" => {
                    #[cfg(target_family = "wasm")]
                    core::arch::wasm32::unreachable();
                    #[cfg(not(target_family = "wasm"))]
                    std::process::abort();
                }
                "panic" => panic!("hostile plugin was asked to panic"),
                "alloc" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(vec![1u8; 8 << 20]);
                        std::hint::black_box(&hoard);
                    }
                }
                "loop" => spin_forever(),
                "break-schema" => out
                    .rows
                    .push(Row { source_index: row.source_index, cells: vec![Cell::Bool(true); row.cells.len()] }),
                "bad-index" => out.failures.push(RecordFailure {
                    index: u32::MAX,
                    kind: FailureKind::Rejected,
                    message: "no such row".into(),
                }),
                _ => out.rows.push(row),
            }
        }
        Ok(out)
    }
}

rmq_openmldb_sdk::export_transform!(Hostile);
