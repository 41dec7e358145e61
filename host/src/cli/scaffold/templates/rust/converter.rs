//! @NAME@: an rmq-openmldb converter. It reads each message body as a
//! plain JSON object and maps its fields to the table's columns by name
//! (missing or null fields become NULL). Replace `convert_body` with your
//! own format; `rmq-openmldb plugin build` makes the component,
//! `rmq-openmldb plugin test` runs it on sample data.

wit_bindgen::generate!({ path: "wit", world: "converter-plugin", additional_derives: [PartialEq] });

use exports::rmq_openmldb::plugin::converter::{Converted, Guest};
use rmq_openmldb::plugin::types::{
    Cell, Column, ColumnType, ErrorKind, FailureKind, Message, Needs, PluginError, PluginInfo, RecordFailure, Row,
    TableSchema,
};
use std::cell::RefCell;

thread_local! {
    static COLUMNS: RefCell<Vec<Column>> = const { RefCell::new(Vec::new()) };
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Plugin;

impl Guest for Plugin {
    fn init(_config: Vec<(String, String)>, target: TableSchema) -> Result<PluginInfo, PluginError> {
        COLUMNS.with(|c| *c.borrow_mut() = target.columns);
        Ok(PluginInfo { name: "@NAME@".into(), version: env!("CARGO_PKG_VERSION").into(), max_batch: None, needs: Needs::empty() })
    }

    fn convert(batch: Vec<Message>) -> Result<Converted, PluginError> {
        COLUMNS.with(|columns| {
            let columns = columns.borrow();
            let (mut rows, mut failures) = (Vec::new(), Vec::new());
            for (index, message) in batch.iter().enumerate() {
                match convert_body(&message.body, &columns) {
                    Ok(cells) => rows.push(Row { source_index: index as u32, cells }),
                    Err((kind, message)) => failures.push(RecordFailure { index: index as u32, kind, message }),
                }
            }
            Ok(Converted { rows, failures })
        })
    }

    fn infer_schema(_config: Vec<(String, String)>, _sample: Message) -> Result<Vec<Column>, PluginError> {
        Err(PluginError { kind: ErrorKind::SchemaMismatch, message: "plain JSON carries no schema: create the table first".into() })
    }
}

/// One body into cells in column order, or why not (naming field and value).
fn convert_body(body: &[u8], columns: &[Column]) -> Result<Vec<Cell>, (FailureKind, String)> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| (FailureKind::Decode, format!("the body is not JSON: {e}")))?;
    let object = value.as_object().ok_or((FailureKind::Decode, "the body is not a JSON object".to_string()))?;
    columns
        .iter()
        .map(|column| {
            let field = object.get(&column.name).unwrap_or(&serde_json::Value::Null);
            let mismatch = || (FailureKind::TypeMismatch, format!("field \"{}\": value {field} does not fit a {:?} column", column.name, column.type_));
            Ok(match (field, column.type_) {
                (serde_json::Value::Null, _) if column.nullable => Cell::Null,
                (serde_json::Value::Null, _) => return Err((FailureKind::MissingField, format!("field \"{}\" is missing", column.name))),
                (serde_json::Value::Bool(b), ColumnType::Bool) => Cell::Bool(*b),
                (serde_json::Value::Number(n), ColumnType::Smallint) => Cell::Smallint(n.as_i64().and_then(|v| i16::try_from(v).ok()).ok_or_else(mismatch)?),
                (serde_json::Value::Number(n), ColumnType::Int) => Cell::Int(n.as_i64().and_then(|v| i32::try_from(v).ok()).ok_or_else(mismatch)?),
                (serde_json::Value::Number(n), ColumnType::Bigint) => Cell::Bigint(n.as_i64().ok_or_else(mismatch)?),
                (serde_json::Value::Number(n), ColumnType::Timestamp) => Cell::Timestamp(n.as_i64().ok_or_else(mismatch)?),
                (serde_json::Value::Number(n), ColumnType::Float) => Cell::Float(n.as_f64().ok_or_else(mismatch)? as f32),
                (serde_json::Value::Number(n), ColumnType::Double) => Cell::Double(n.as_f64().ok_or_else(mismatch)?),
                (serde_json::Value::String(s), ColumnType::String) => Cell::String(s.clone()),
                _ => return Err(mismatch()),
            })
        })
        .collect()
}

// Exported only in the component; native builds (cargo test) skip it.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_by_name_and_bad_values_name_the_field() {
        let columns = vec![
            Column { name: "id".into(), type_: ColumnType::Bigint, nullable: false },
            Column { name: "name".into(), type_: ColumnType::String, nullable: true },
        ];
        assert_eq!(convert_body(br#"{"id": 2, "name": null}"#, &columns).unwrap(), vec![Cell::Bigint(2), Cell::Null]);
        let (kind, message) = convert_body(br#"{"id": "two"}"#, &columns).unwrap_err();
        assert_eq!(kind, FailureKind::TypeMismatch);
        assert!(message.contains("field \"id\""), "{message}");
    }
}
