//! A converter for testing poison isolation: plain JSON objects, fields
//! mapped to columns by name with the SDK's coercion rules, except that a
//! body holding `"__trap__"` makes the whole call trap (`unreachable`), as
//! a converter with a bug would on one message.

use rmq_openmldb_sdk::coerce::{CoerceOptions, Logical, json_to_cell, null_cell};
use rmq_openmldb_sdk::prelude::*;

pub struct TrapConverter {
    columns: Vec<Column>,
}

impl Converter for TrapConverter {
    fn init(_config: PluginConfig, target: TableSchema) -> Result<(Self, PluginInfo), PluginError> {
        Ok((TrapConverter { columns: target.columns }, plugin_info("trap-converter", "0.0.1")))
    }

    fn convert(&mut self, batch: Vec<Message>) -> Result<Converted, PluginError> {
        let mut out = Converted { rows: Vec::new(), failures: Vec::new() };
        let opts = CoerceOptions::default();
        for (index, message) in batch.iter().enumerate() {
            let index = index as u32;
            if message.body.windows(8).any(|w| w == b"__trap__") {
                #[cfg(target_family = "wasm")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_family = "wasm"))]
                std::process::abort();
            }
            let object = match serde_json::from_slice::<serde_json::Value>(&message.body) {
                Ok(serde_json::Value::Object(object)) => object,
                Ok(_) | Err(_) => {
                    out.failures.push(RecordFailure {
                        index,
                        kind: FailureKind::Decode,
                        message: "body is not a JSON object".into(),
                    });
                    continue;
                }
            };
            let cells: Result<Vec<Cell>, _> = self
                .columns
                .iter()
                .map(|column| match object.get(&column.name) {
                    Some(value) => json_to_cell(value, column, Logical::None, &opts),
                    None => null_cell(column),
                })
                .collect();
            match cells {
                Ok(cells) => out.rows.push(Row { source_index: index, cells }),
                Err(e) => out.failures.push(e.into_failure(index)),
            }
        }
        Ok(out)
    }
}

rmq_openmldb_sdk::export_converter!(TrapConverter);
