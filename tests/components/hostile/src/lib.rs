//! A transform for testing the host's defences. The first cell of each row,
//! when it is a string, says what to do:
//! - "trap": execute `unreachable`;
//! - "panic": panic with a message;
//! - "alloc": allocate without bound;
//! - "loop": spin forever;
//! - "break-schema": return a row whose cell has the wrong type;
//! - "bad-index": report a failure for a row that does not exist;
//! - "sleep": sleep for an hour (a blocking wait in a host import);
//! - "flood": print 8 MiB to stdout and stderr and log 100,000 lines;
//! - "panic-every-fifth": panic when this is the instance's fifth call
//!   (tenth, …), pass the row otherwise;
//! - "oversized": return 4096 rows whose strings all alias one 8 MiB
//!   buffer (32 GiB once copied out, though it fits in 8 MiB here);
//! - "large": return 100 rows of distinct 128 KiB strings (12.5 MiB that
//!   really is in the plugin's memory);
//! - "read:PATH", "write:PATH", "connect:HOST:PORT", "env:NAME": try it,
//!   and pass the row on with its first cell replaced by "allowed: …" or
//!   "denied: …";
//! - anything else: pass the row through.
//!
//! Every call counts itself in keyed state ("calls") and a counter.

use rmq_openmldb_sdk::host;
use rmq_openmldb_sdk::prelude::*;
use std::io::{Read, Write};

pub struct Hostile {
    calls: u64,
}

/// What happened when the plugin tried something the sandbox may refuse.
fn attempt(command: &str) -> Option<String> {
    let (verb, target) = command.split_once(':')?;
    let outcome: Result<String, String> = match verb {
        "read" => {
            std::fs::read_to_string(target).map(|text| format!("{} bytes", text.len())).map_err(|e| e.to_string())
        }
        "write" => std::fs::write(target, b"written by the hostile plugin")
            .map(|()| "written".to_string())
            .map_err(|e| e.to_string()),
        "connect" => std::net::TcpStream::connect(target)
            .and_then(|mut stream| {
                stream.write_all(b"ping\n")?;
                let mut reply = [0u8; 4];
                stream.read_exact(&mut reply)?;
                Ok(String::from_utf8_lossy(&reply).into_owned())
            })
            .map_err(|e| e.to_string()),
        "env" => std::env::var(target).map_err(|e| e.to_string()),
        _ => return None,
    };
    Some(match outcome {
        Ok(detail) => format!("allowed: {detail}"),
        Err(reason) => format!("denied: {reason}"),
    })
}

fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl Transform for Hostile {
    fn init(_config: PluginConfig, output: Vec<Column>) -> Result<(Self, TransformInfo), PluginError> {
        Ok((Hostile { calls: 0 }, TransformInfo { info: plugin_info("hostile", "0.0.1"), input: output }))
    }

    fn process(&mut self, batch: RowBatch) -> Result<Transformed, PluginError> {
        let calls = host::state_get("calls").map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).unwrap_or(0);
        host::state_put("calls", &(calls + 1).to_le_bytes());
        host::counter_add("hostile_calls", 1);
        self.calls += 1;
        let mut out = Transformed { rows: Vec::new(), failures: Vec::new() };
        for row in batch.rows {
            let command = match row.cells.first() {
                Some(Cell::String(s)) => s.clone(),
                _ => String::new(),
            };
            if let Some(outcome) = attempt(&command) {
                let mut row = row;
                row.cells[0] = Cell::String(outcome);
                out.rows.push(row);
                continue;
            }
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
                "sleep" => {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                    out.rows.push(row);
                }
                "flood" => {
                    let chunk = vec![b'x'; 1 << 20];
                    for _ in 0..8 {
                        let _ = std::io::stdout().write_all(&chunk);
                        let _ = std::io::stderr().write_all(&chunk);
                    }
                    for i in 0..100_000 {
                        host::log(host::Level::Error, &format!("flood line {i}"));
                    }
                    out.rows.push(row);
                }
                "panic-every-fifth" if self.calls % 5 == 0 => panic!("hostile plugin panics on its fifth call"),
                "panic-every-fifth" => out.rows.push(row),

                "oversized" => {
                    let shared: &'static mut [u8] = Box::leak(vec![b'x'; 8 << 20].into_boxed_slice());
                    for _ in 0..4096 {
                        // SAFETY: none in the Rust sense: every string
                        // aliases `shared`, on purpose. The host must refuse
                        // the result before copying it, and the instance is
                        // then discarded, so nothing here frees them.
                        let alias = unsafe { String::from_raw_parts(shared.as_mut_ptr(), shared.len(), shared.len()) };
                        out.rows.push(Row { source_index: row.source_index, cells: vec![Cell::String(alias)] });
                    }
                }
                "large" => {
                    for i in 0..100u8 {
                        let text = String::from_utf8(vec![b'a' + i % 26; 128 << 10]).unwrap_or_default();
                        out.rows.push(Row { source_index: row.source_index, cells: vec![Cell::String(text)] });
                    }
                }
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
