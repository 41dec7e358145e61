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

use rmq_openmldb_sdk::coerce::{
    CellError, CoerceOptions, Logical, float_cell_from_number_text, json_to_cell, null_cell,
};
use rmq_openmldb_sdk::prelude::*;
use rmq_openmldb_sdk::time::Zone;
use serde::de::{Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;

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
    opts: CoerceOptions,
    format: Format,
    fail_on_unknown: bool,
    /// The raw text of the last envelope schema seen, and the per-column
    /// logical types it implies: JsonConverter producers repeat one schema
    /// per table, so a string comparison replaces parsing it again.
    cached_schema: Option<String>,
    cached_logicals: Vec<Logical>,
}

impl JsonConverter {
    pub fn new(config: &PluginConfig, target: TableSchema) -> Result<Self, PluginError> {
        let format = match config.choice_or("json.format", &["auto", "envelope", "plain"], "auto")? {
            "envelope" => Format::Envelope,
            "plain" => Format::Plain,
            _ => Format::Auto,
        };
        let zone = match config.get("timezone").or_else(|| config.get("db.timezone")) {
            None => Zone::default(),
            Some(spec) => {
                Zone::parse(spec).map_err(|e| PluginError::invalid_config(format!("config key \"timezone\": {e}")))?
            }
        };
        let fail_on_unknown = config.choice_or("unknown.fields", &["ignore", "fail"], "ignore")? == "fail";
        if target.columns.is_empty() {
            return Err(PluginError::schema_mismatch(format!("table \"{}\" has no columns", target.table)));
        }
        Ok(JsonConverter {
            columns: target.columns,
            opts: CoerceOptions { zone },
            format,
            fail_on_unknown,
            cached_schema: None,
            cached_logicals: Vec::new(),
        })
    }

    /// The column a field feeds: the column after the previous field's
    /// first (producers usually follow the table's order), then any column
    /// of that name, then one whose name differs only in case. Tables are
    /// narrow enough that a scan beats hashing, above all in WebAssembly.
    fn column_of(&self, field: &str, hint: usize) -> Option<usize> {
        if self.columns.get(hint).is_some_and(|c| c.name == field) {
            return Some(hint);
        }
        self.columns
            .iter()
            .position(|c| c.name == field)
            .or_else(|| self.columns.iter().position(|c| c.name.to_lowercase() == field.to_lowercase()))
    }

    /// Convert a batch; never fails as a whole.
    pub fn convert_batch(&mut self, batch: &[Message]) -> Converted {
        let mut out = Converted { rows: Vec::with_capacity(batch.len()), failures: Vec::new() };
        for (index, message) in batch.iter().enumerate() {
            let index = index as u32;
            match self.convert_one(&message.body, index, &mut out.rows) {
                Ok(()) => {}
                Err(e) => out.failures.push(e.into_failure(index)),
            }
        }
        out
    }

    fn convert_one(&mut self, body: &[u8], index: u32, rows: &mut Vec<Row>) -> Result<(), CellError> {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {
                let parsed = self.parse_object(body, None)?;
                if let (Some(schema), Some(payload)) = (parsed.schema, parsed.payload)
                    && parsed.fields == 2
                    && schema.get().starts_with('{')
                {
                    return self.convert_envelope(schema.get(), payload.get(), index, rows);
                }
                if self.format == Format::Envelope {
                    return Err(not_an_envelope());
                }
                rows.push(self.finish_row(parsed, index)?);
                Ok(())
            }
            Some(b'[') if self.format != Format::Envelope => {
                let items: Vec<&RawValue> =
                    serde_json::from_slice(body).map_err(|e| decode(&format!("body is not valid JSON: {e}")))?;
                let mut built = Vec::with_capacity(items.len());
                for (position, item) in items.iter().enumerate() {
                    if !item.get().starts_with('{') {
                        return Err(decode(&format!("array element {position} is not a JSON object")));
                    }
                    let in_element =
                        |e: CellError| CellError { message: format!("array element {position}: {}", e.message), ..e };
                    let parsed = self.parse_object(item.get().as_bytes(), Some(&[])).map_err(in_element)?;
                    built.push(self.finish_row(parsed, index).map_err(in_element)?);
                }
                rows.extend(built);
                Ok(())
            }
            _ => {
                let value: Value =
                    serde_json::from_slice(body).map_err(|e| decode(&format!("body is not valid JSON: {e}")))?;
                if self.format == Format::Envelope {
                    return Err(not_an_envelope());
                }
                Err(decode(&format!("body is a JSON {}, expected an object", json_kind(&value))))
            }
        }
    }

    fn convert_envelope(
        &mut self,
        schema: &str,
        payload: &str,
        index: u32,
        rows: &mut Vec<Row>,
    ) -> Result<(), CellError> {
        if !payload.starts_with('{') {
            let kind = serde_json::from_str::<Value>(payload).map(|v| json_kind(&v)).unwrap_or("value");
            return Err(decode(&format!("envelope payload is a JSON {kind}, expected an object")));
        }
        if self.cached_schema.as_deref() != Some(schema) {
            let parsed: Value = serde_json::from_str(schema).map_err(|e| decode(&format!("envelope schema: {e}")))?;
            self.cached_logicals = self.plan_for(&parsed)?;
            self.cached_schema = Some(schema.to_string());
        }
        let parsed = self.parse_object(payload.as_bytes(), Some(&self.cached_logicals))?;
        rows.push(self.finish_row(parsed, index)?);
        Ok(())
    }

    /// One pass over a JSON object, converting each field that names a
    /// column straight into its cell. `logicals` is `None` at the top of a
    /// body, where `schema` and `payload` are kept raw in case the body is
    /// an envelope.
    fn parse_object<'de>(&self, json: &'de [u8], logicals: Option<&[Logical]>) -> Result<ParsedObject<'de>, CellError> {
        let seed = ObjectSeed {
            converter: self,
            logicals: logicals.filter(|l| !l.is_empty()),
            capture_envelope: logicals.is_none() && self.format != Format::Plain,
        };
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let parsed = seed.deserialize(&mut deserializer).and_then(|p| deserializer.end().map(|()| p));
        parsed.map_err(|e| decode(&format!("body is not valid JSON: {e}")))
    }

    /// The row of a parsed object: its first conversion error, or its cells
    /// with NULL (or `missing-field`) for columns it did not have.
    fn finish_row(&self, mut parsed: ParsedObject<'_>, index: u32) -> Result<Row, CellError> {
        // A body that only looked like half an envelope: its `schema` and
        // `payload` fields are ordinary fields after all.
        for (name, raw) in [("schema", parsed.schema.take()), ("payload", parsed.payload.take())] {
            if let (Some(raw), Some(position)) = (raw, self.column_of(name, 0)) {
                let value: Value =
                    serde_json::from_str(raw.get()).map_err(|e| decode(&format!("field \"{name}\": {e}")))?;
                parsed.cells[position] =
                    Some(json_to_cell(&value, &self.columns[position], Logical::None, &self.opts)?);
            } else if raw.is_some() && self.fail_on_unknown {
                return Err(unknown_field(name));
            }
        }
        if let Some(error) = parsed.error {
            return Err(error);
        }
        let cells = parsed
            .cells
            .into_iter()
            .zip(&self.columns)
            .map(|(cell, column)| match cell {
                Some(cell) => Ok(cell),
                None => null_cell(column),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Row { source_index: index, cells })
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
                return Err(decode("envelope schema has a field without a \"field\" name"));
            };
            match self.column_of(name, 0) {
                Some(position) => logicals[position] = logical_of(field)?,
                None if self.fail_on_unknown => {
                    return Err(CellError {
                        kind: FailureKind::Rejected,
                        message: format!("field \"{name}\" is not a column of the table (unknown.fields=fail)"),
                    });
                }
                None => {}
            }
        }
        Ok(logicals)
    }
}

/// What one pass over a JSON object found.
struct ParsedObject<'de> {
    cells: Vec<Option<Cell>>,
    /// The first field that could not be converted.
    error: Option<CellError>,
    fields: usize,
    schema: Option<&'de RawValue>,
    payload: Option<&'de RawValue>,
}

/// Deserializes an object field by field into the converter's columns.
struct ObjectSeed<'c> {
    converter: &'c JsonConverter,
    logicals: Option<&'c [Logical]>,
    capture_envelope: bool,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = ParsedObject<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = ParsedObject<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let converter = self.converter;
        let mut parsed = ParsedObject {
            cells: vec![None; converter.columns.len()],
            error: None,
            fields: 0,
            schema: None,
            payload: None,
        };
        let mut hint = 0;
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            parsed.fields += 1;
            if self.capture_envelope && (name == "schema" || name == "payload") {
                let raw = map.next_value::<&'de RawValue>()?;
                if name == "schema" {
                    parsed.schema = Some(raw)
                } else {
                    parsed.payload = Some(raw)
                }
                continue;
            }
            let Some(position) = converter.column_of(&name, hint) else {
                map.next_value::<IgnoredAny>()?;
                if converter.fail_on_unknown && parsed.error.is_none() {
                    parsed.error = Some(unknown_field(&name));
                }
                continue;
            };
            hint = position + 1;
            let column = &converter.columns[position];
            let logical = self.logicals.map(|l| l[position]).unwrap_or_default();
            if column.type_ == ColumnType::Float && logical == Logical::None {
                // A number's own text, rounded once to 32 bits.
                let raw = map.next_value::<&'de RawValue>()?;
                if parsed.error.is_none() {
                    match float_cell(raw, column, &converter.opts) {
                        Ok(cell) => parsed.cells[position] = Some(cell),
                        Err(e) => parsed.error = Some(e),
                    }
                }
                continue;
            }
            let value: Value = map.next_value()?;
            if parsed.error.is_some() {
                continue;
            }
            match into_cell(value, column, logical, &converter.opts) {
                Ok(cell) => parsed.cells[position] = Some(cell),
                Err(e) => parsed.error = Some(e),
            }
        }
        Ok(parsed)
    }
}

/// A float column's cell from the field's raw JSON: a number from its own
/// text (through `Value` it would be rounded to f64 first, then to f32),
/// anything else by the shared rules.
fn float_cell(raw: &RawValue, column: &Column, opts: &CoerceOptions) -> Result<Cell, CellError> {
    let text = raw.get();
    if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return float_cell_from_number_text(text, column);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| decode(&format!("field \"{}\": {e}", column.name)))?;
    json_to_cell(&value, column, Logical::None, opts)
}

/// `json_to_cell`, moving a string into a string column instead of copying it.
fn into_cell(value: Value, column: &Column, logical: Logical, opts: &CoerceOptions) -> Result<Cell, CellError> {
    match (value, column.type_, logical) {
        (Value::String(s), ColumnType::String, Logical::None | Logical::Bytes) => Ok(Cell::String(s)),
        (value, _, _) => json_to_cell(&value, column, logical, opts),
    }
}

/// An object key, borrowed from the body unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

fn unknown_field(name: &str) -> CellError {
    CellError {
        kind: FailureKind::Rejected,
        message: format!("field \"{name}\" is not a column of the table (unknown.fields=fail)"),
    }
}

fn not_an_envelope() -> CellError {
    decode("body is not a JsonConverter envelope {\"schema\": …, \"payload\": …}")
}

fn decode(message: &str) -> CellError {
    CellError { kind: FailureKind::Decode, message: message.to_string() }
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
                .and_then(|s| s.as_u64().or_else(|| s.as_str().and_then(|t| t.parse().ok())))
                .ok_or_else(|| decode("decimal field has no \"scale\" parameter"))?;
            Logical::Decimal { scale: scale as u32 }
        }
        _ if ty == "bytes" => Logical::Bytes,
        _ => Logical::None,
    })
}

/// The OpenMLDB column a JsonConverter field schema maps to.
fn column_of_field(field: &Value) -> Result<Column, String> {
    let name = field.get("field").and_then(Value::as_str).ok_or("a schema field has no \"field\" name")?;
    let optional = field.get("optional").and_then(Value::as_bool).unwrap_or(true);
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
    Ok(Column { name: name.to_string(), type_, nullable: optional })
}

/// The columns an envelope message declares (for `auto.create`).
pub fn infer_columns(body: &[u8]) -> Result<Vec<Column>, PluginError> {
    let top: Value = serde_json::from_slice(body)
        .map_err(|e| PluginError::schema_mismatch(format!("sample body is not valid JSON: {e}")))?;
    let schema = match &top {
        Value::Object(fields)
            if fields.len() == 2
                && fields.get("schema").is_some_and(Value::is_object)
                && fields.contains_key("payload") =>
        {
            &fields["schema"]
        }
        _ => {
            return Err(PluginError::schema_mismatch(
                "plain JSON carries no schema: create the table first, or produce JsonConverter envelopes {\"schema\": …, \"payload\": …}",
            ));
        }
    };
    let columns = schema
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| PluginError::schema_mismatch("envelope schema is not a struct with \"fields\""))?;
    columns.iter().map(|f| column_of_field(f).map_err(PluginError::schema_mismatch)).collect()
}

impl Converter for JsonConverter {
    fn init(config: PluginConfig, target: TableSchema) -> Result<(Self, PluginInfo), PluginError> {
        let converter = JsonConverter::new(&config, target)?;
        Ok((converter, plugin_info("json-converter", env!("CARGO_PKG_VERSION"))))
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
