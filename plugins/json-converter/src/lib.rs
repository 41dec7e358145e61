//! The built-in JSON converter.
//!
//! It reads two shapes of message body and maps fields onto the target
//! table's columns by name (exact match first, then case-insensitive):
//! - RocketMQ Connect's JsonConverter envelope `{"schema": …, "payload": …}`,
//!   whose schema's logical types (Timestamp, Date, Time, Decimal) decide how
//!   numbers are read;
//! - plain JSON objects (or arrays of objects, one row each).
//!
//! Missing nullable columns become NULL, explicit `null` stays NULL, and a
//! value that cannot be converted fails only its own message, with the
//! field, the value and the reason.
//!
//! Config: `json.format` = auto | envelope | plain (default auto);
//! `timezone` (or `db.timezone`) for date-time strings without an offset
//! (default UTC); `unknown.fields` = ignore | fail (default ignore).

use rmq_openmldb_sdk::coerce::{CellError, CoerceOptions, Logical, json_to_cell, null_cell};
use rmq_openmldb_sdk::prelude::*;
use rmq_openmldb_sdk::time::Zone;
use serde_json::{Map, Value};
use std::collections::HashMap;

const LOGICAL_TIMESTAMP: &str = "io.openmessaging.connector.api.data.logical.Timestamp";
const LOGICAL_DATE: &str = "io.openmessaging.connector.api.data.logical.Date";
const LOGICAL_TIME: &str = "io.openmessaging.connector.api.data.logical.Time";
const LOGICAL_DECIMAL: &str = "io.openmessaging.connector.api.data.logical.Decimal";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Auto,
    Envelope,
    Plain,
}

/// The converter's state for one instance.
pub struct JsonConverter {
    columns: Vec<Column>,
    by_name: HashMap<String, usize>,
    by_lower_name: HashMap<String, usize>,
    opts: CoerceOptions,
    format: Format,
    fail_on_unknown: bool,
    /// The last envelope schema seen, and the per-column logical types it
    /// implies: JsonConverter producers repeat one schema per table.
    cached_schema: Option<Value>,
    cached_logicals: Vec<Logical>,
}

impl JsonConverter {
    pub fn new(config: &PluginConfig, target: TableSchema) -> Result<Self, PluginError> {
        let format =
            match config.choice_or("json.format", &["auto", "envelope", "plain"], "auto")? {
                "envelope" => Format::Envelope,
                "plain" => Format::Plain,
                _ => Format::Auto,
            };
        let zone = match config.get("timezone").or_else(|| config.get("db.timezone")) {
            None => Zone::default(),
            Some(spec) => Zone::parse(spec).map_err(|e| {
                PluginError::invalid_config(format!("config key \"timezone\": {e}"))
            })?,
        };
        let fail_on_unknown =
            config.choice_or("unknown.fields", &["ignore", "fail"], "ignore")? == "fail";
        if target.columns.is_empty() {
            return Err(PluginError::schema_mismatch(format!(
                "table \"{}\" has no columns",
                target.table
            )));
        }
        let by_name = target
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let by_lower_name = target
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.to_lowercase(), i))
            .collect();
        Ok(JsonConverter {
            columns: target.columns,
            by_name,
            by_lower_name,
            opts: CoerceOptions { zone },
            format,
            fail_on_unknown,
            cached_schema: None,
            cached_logicals: Vec::new(),
        })
    }

    fn column_of(&self, field: &str) -> Option<usize> {
        self.by_name
            .get(field)
            .or_else(|| self.by_lower_name.get(&field.to_lowercase()))
            .copied()
    }

    /// Convert a batch; never fails as a whole.
    pub fn convert_batch(&mut self, batch: &[Message]) -> Converted {
        let mut out = Converted {
            rows: Vec::with_capacity(batch.len()),
            failures: Vec::new(),
        };
        for (index, message) in batch.iter().enumerate() {
            let index = index as u32;
            match self.convert_one(&message.body, index, &mut out.rows) {
                Ok(()) => {}
                Err(e) => out.failures.push(e.into_failure(index)),
            }
        }
        out
    }

    fn convert_one(
        &mut self,
        body: &[u8],
        index: u32,
        rows: &mut Vec<Row>,
    ) -> Result<(), CellError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| CellError {
            kind: FailureKind::Decode,
            message: format!("body is not valid JSON: {e}"),
        })?;
        match (self.format, value) {
            (Format::Envelope | Format::Auto, Value::Object(mut top)) if is_envelope(&top) => {
                let schema = top.remove("schema").unwrap_or(Value::Null);
                let payload = top.remove("payload").unwrap_or(Value::Null);
                self.convert_envelope(schema, payload, index, rows)
            }
            (Format::Envelope, _) => Err(decode(
                "body is not a JsonConverter envelope {\"schema\": …, \"payload\": …}",
            )),
            (_, Value::Object(object)) => {
                rows.push(self.row_from_object(&object, None, index)?);
                Ok(())
            }
            (_, Value::Array(items)) => {
                let mut built = Vec::with_capacity(items.len());
                for (position, item) in items.iter().enumerate() {
                    let Value::Object(object) = item else {
                        return Err(decode(&format!(
                            "array element {position} is not a JSON object"
                        )));
                    };
                    built.push(self.row_from_object(object, None, index).map_err(|e| {
                        CellError {
                            message: format!("array element {position}: {}", e.message),
                            ..e
                        }
                    })?);
                }
                rows.extend(built);
                Ok(())
            }
            (_, other) => Err(decode(&format!(
                "body is a JSON {}, expected an object",
                json_kind(&other)
            ))),
        }
    }

    fn convert_envelope(
        &mut self,
        schema: Value,
        payload: Value,
        index: u32,
        rows: &mut Vec<Row>,
    ) -> Result<(), CellError> {
        let Value::Object(payload) = payload else {
            return Err(decode(&format!(
                "envelope payload is a JSON {}, expected an object",
                json_kind(&payload)
            )));
        };
        if self.cached_schema.as_ref() != Some(&schema) {
            self.cached_logicals = self.plan_for(&schema)?;
            self.cached_schema = Some(schema);
        }
        rows.push(self.row_from_object(&payload, Some(&self.cached_logicals), index)?);
        Ok(())
    }

    /// Per target column, the logical type its envelope field declares.
    fn plan_for(&self, schema: &Value) -> Result<Vec<Logical>, CellError> {
        let fields = schema
            .get("fields")
            .and_then(Value::as_array)
            .ok_or_else(|| decode("envelope schema is not a struct with \"fields\""))?;
        let mut logicals = vec![Logical::None; self.columns.len()];
        for field in fields {
            let Some(name) = field.get("field").and_then(Value::as_str) else {
                return Err(decode(
                    "envelope schema has a field without a \"field\" name",
                ));
            };
            match self.column_of(name) {
                Some(position) => logicals[position] = logical_of(field)?,
                None if self.fail_on_unknown => {
                    return Err(CellError {
                        kind: FailureKind::Rejected,
                        message: format!(
                            "field \"{name}\" is not a column of the table (unknown.fields=fail)"
                        ),
                    });
                }
                None => {}
            }
        }
        Ok(logicals)
    }

    fn row_from_object(
        &self,
        object: &Map<String, Value>,
        logicals: Option<&[Logical]>,
        index: u32,
    ) -> Result<Row, CellError> {
        let mut cells: Vec<Option<Cell>> = vec![None; self.columns.len()];
        for (field, value) in object {
            let Some(position) = self.column_of(field) else {
                if self.fail_on_unknown {
                    return Err(CellError {
                        kind: FailureKind::Rejected,
                        message: format!(
                            "field \"{field}\" is not a column of the table (unknown.fields=fail)"
                        ),
                    });
                }
                continue;
            };
            let logical = logicals.map(|l| l[position]).unwrap_or_default();
            cells[position] = Some(json_to_cell(
                value,
                &self.columns[position],
                logical,
                &self.opts,
            )?);
        }
        let cells = cells
            .into_iter()
            .zip(&self.columns)
            .map(|(cell, column)| match cell {
                Some(cell) => Ok(cell),
                None => null_cell(column),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Row {
            source_index: index,
            cells,
        })
    }
}

fn is_envelope(top: &Map<String, Value>) -> bool {
    top.len() == 2 && top.get("schema").is_some_and(Value::is_object) && top.contains_key("payload")
}

fn decode(message: &str) -> CellError {
    CellError {
        kind: FailureKind::Decode,
        message: message.to_string(),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The logical type a JsonConverter field schema declares.
fn logical_of(field: &Value) -> Result<Logical, CellError> {
    let name = field.get("name").and_then(Value::as_str).unwrap_or("");
    let ty = field.get("type").and_then(Value::as_str).unwrap_or("");
    Ok(match name {
        LOGICAL_TIMESTAMP => Logical::Timestamp,
        LOGICAL_DATE => Logical::Date,
        LOGICAL_TIME => Logical::Time,
        LOGICAL_DECIMAL => {
            let scale = field
                .get("parameters")
                .and_then(|p| p.get("scale"))
                .and_then(|s| {
                    s.as_u64()
                        .or_else(|| s.as_str().and_then(|t| t.parse().ok()))
                })
                .ok_or_else(|| decode("decimal field has no \"scale\" parameter"))?;
            Logical::Decimal {
                scale: scale as u32,
            }
        }
        _ if ty == "bytes" => Logical::Bytes,
        _ => Logical::None,
    })
}

/// The OpenMLDB column a JsonConverter field schema maps to.
fn column_of_field(field: &Value) -> Result<Column, String> {
    let name = field
        .get("field")
        .and_then(Value::as_str)
        .ok_or("a schema field has no \"field\" name")?;
    let optional = field
        .get("optional")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let ty = field.get("type").and_then(Value::as_str).unwrap_or("");
    let logical = logical_of(field).map_err(|e| format!("field \"{name}\": {}", e.message))?;
    let type_ = match (logical, ty) {
        (Logical::Timestamp, _) => ColumnType::Timestamp,
        (Logical::Date, _) => ColumnType::Date,
        (Logical::Time, _) => ColumnType::Int,
        (Logical::Decimal { .. }, _) => ColumnType::Double,
        (_, "boolean") => ColumnType::Bool,
        (_, "int8" | "int16") => ColumnType::Smallint,
        (_, "int32") => ColumnType::Int,
        (_, "int64") => ColumnType::Bigint,
        (_, "float") => ColumnType::Float,
        (_, "double") => ColumnType::Double,
        (_, "string" | "bytes" | "array" | "map" | "struct") => ColumnType::String,
        (_, other) => return Err(format!("field \"{name}\": unknown schema type \"{other}\"")),
    };
    Ok(Column {
        name: name.to_string(),
        type_,
        nullable: optional,
    })
}

/// The columns an envelope message declares (for `auto.create`).
pub fn infer_columns(body: &[u8]) -> Result<Vec<Column>, PluginError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| PluginError::schema_mismatch(format!("sample body is not valid JSON: {e}")))?;
    let schema = match &value {
        Value::Object(top) if is_envelope(top) => &top["schema"],
        _ => {
            return Err(PluginError::schema_mismatch(
                "plain JSON carries no schema: create the table first, or produce JsonConverter envelopes {\"schema\": …, \"payload\": …}",
            ));
        }
    };
    let fields = schema
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            PluginError::schema_mismatch("envelope schema is not a struct with \"fields\"")
        })?;
    fields
        .iter()
        .map(|f| column_of_field(f).map_err(PluginError::schema_mismatch))
        .collect()
}

impl Converter for JsonConverter {
    fn init(config: PluginConfig, target: TableSchema) -> Result<(Self, PluginInfo), PluginError> {
        let converter = JsonConverter::new(&config, target)?;
        Ok((
            converter,
            plugin_info("json-converter", env!("CARGO_PKG_VERSION")),
        ))
    }

    fn convert(&mut self, batch: Vec<Message>) -> Result<Converted, PluginError> {
        Ok(self.convert_batch(&batch))
    }

    fn infer_schema(_config: PluginConfig, sample: Message) -> Result<Vec<Column>, PluginError> {
        infer_columns(&sample.body)
    }
}

rmq_openmldb_sdk::export_converter!(JsonConverter);

#[cfg(test)]
mod tests;
