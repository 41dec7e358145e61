//! @NAME@: an rmq-openmldb transform. It upper-cases the string columns
//! named in its `fields` config key and passes every other column through.
//! Replace `process_row` with your own logic; `rmq-openmldb plugin build`
//! makes the component, `rmq-openmldb plugin test` runs it on sample data.

wit_bindgen::generate!({ path: "wit", world: "transform-plugin", additional_derives: [PartialEq] });

use exports::rmq_openmldb::plugin::transform::{Guest, TransformInfo, Transformed};
use rmq_openmldb::plugin::types::{Cell, Column, ColumnType, ErrorKind, Needs, PluginError, PluginInfo, Row, RowBatch};
use std::cell::RefCell;

thread_local! {
    /// Indexes of the columns to upper-case, set by `init`.
    static FIELDS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Plugin;

impl Guest for Plugin {
    /// `output` is the schema this transform must produce; it answers with
    /// the schema it needs as input (here the same).
    fn init(config: Vec<(String, String)>, output: Vec<Column>) -> Result<TransformInfo, PluginError> {
        let fields = config.iter().find(|(key, _)| key == "fields").map(|(_, value)| value.as_str()).unwrap_or("");
        let mut indexes = Vec::new();
        for column in fields.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match output.iter().position(|c| c.name == column) {
                Some(i) if output[i].type_ == ColumnType::String => indexes.push(i),
                Some(_) => return Err(config_error(format!("config key \"fields\": column \"{column}\" is not a string column"))),
                None => return Err(config_error(format!("config key \"fields\": the table has no column \"{column}\""))),
            }
        }
        FIELDS.with(|f| *f.borrow_mut() = indexes);
        let info = PluginInfo { name: "@NAME@".into(), version: env!("CARGO_PKG_VERSION").into(), max_batch: None, needs: Needs::empty() };
        Ok(TransformInfo { info, input: output })
    }

    fn process(batch: RowBatch) -> Result<Transformed, PluginError> {
        let rows = FIELDS.with(|f| {
            let fields = f.borrow();
            batch.rows.into_iter().map(|row| process_row(row, &fields)).collect()
        });
        Ok(Transformed { rows, failures: Vec::new() })
    }
}

/// The transform itself, free of WIT plumbing, so it is unit-tested natively.
fn process_row(mut row: Row, fields: &[usize]) -> Row {
    for &i in fields {
        if let Some(Cell::String(text)) = row.cells.get_mut(i) {
            *text = text.to_uppercase();
        }
    }
    row
}

fn config_error(message: String) -> PluginError {
    PluginError { kind: ErrorKind::InvalidConfig, message }
}

// Exported only in the component; native builds (cargo test) skip it.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_string_columns_are_upper_cased_and_nulls_kept() {
        let row = Row { source_index: 0, cells: vec![Cell::Bigint(1), Cell::String("gjk".into()), Cell::Null] };
        let out = process_row(row, &[1, 2]);
        assert_eq!(out.cells[1], Cell::String("GJK".into()));
        assert_eq!(out.cells[2], Cell::Null);
    }
}
