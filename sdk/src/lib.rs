//! The Rust SDK for rmq-openmldb plugins.
//!
//! It owns the guest side of the WIT contract (`wit/plugin.wit`): the
//! generated bindings, a `&mut self` trait per role with an export macro that
//! keeps the plugin's state between calls, row builders, and the JSON-to-cell
//! coercion rules every converter needs.
//!
//! A converter in a few lines (this one stores each body as text in a
//! one-column table):
//!
//! ```no_run
//! use rmq_openmldb_sdk::prelude::*;
//!
//! struct BodyAsText;
//!
//! impl Converter for BodyAsText {
//!     fn init(_config: PluginConfig, target: TableSchema) -> Result<(Self, PluginInfo), PluginError> {
//!         match target.columns.as_slice() {
//!             [c] if c.type_ == ColumnType::String => Ok((BodyAsText, plugin_info("body-as-text", "0.1.0"))),
//!             _ => Err(PluginError::schema_mismatch("the table must have exactly one string column")),
//!         }
//!     }
//!
//!     fn convert(&mut self, batch: Vec<Message>) -> Result<Converted, PluginError> {
//!         let rows = batch.into_iter().enumerate().map(|(i, m)| Row {
//!             source_index: i as u32,
//!             cells: vec![Cell::String(String::from_utf8_lossy(&m.body).into_owned())],
//!         });
//!         Ok(Converted { rows: rows.collect(), failures: vec![] })
//!     }
//! }
//!
//! rmq_openmldb_sdk::export_converter!(BodyAsText);
//! ```

pub mod coerce;
pub mod config;
mod export;
pub mod row;
pub mod time;

/// Generated bindings, one module per world. The `types` and `host`
/// interfaces are generated once (in `converter`) and shared by the others,
/// so a `Cell` is the same Rust type in every role; `sql` is generated with
/// `sink` and shared with `source`.
pub mod bindings {
    pub mod converter {
        wit_bindgen::generate!({
            path: "../wit",
            world: "converter-plugin",
            pub_export_macro: true,
            export_macro_name: "__export_converter_world",
            default_bindings_module: "rmq_openmldb_sdk::bindings::converter",
            additional_derives: [PartialEq],
        });
    }
    pub mod transform {
        wit_bindgen::generate!({
            path: "../wit",
            world: "transform-plugin",
            pub_export_macro: true,
            export_macro_name: "__export_transform_world",
            default_bindings_module: "rmq_openmldb_sdk::bindings::transform",
            with: {
                "rmq-openmldb:plugin/types@0.1.0": crate::bindings::converter::rmq_openmldb::plugin::types,
                "rmq-openmldb:plugin/host@0.1.0": crate::bindings::converter::rmq_openmldb::plugin::host,
            },
        });
    }
    pub mod sink {
        wit_bindgen::generate!({
            path: "../wit",
            world: "sink-plugin",
            pub_export_macro: true,
            export_macro_name: "__export_sink_world",
            default_bindings_module: "rmq_openmldb_sdk::bindings::sink",
            additional_derives: [PartialEq],
            with: {
                "rmq-openmldb:plugin/types@0.1.0": crate::bindings::converter::rmq_openmldb::plugin::types,
                "rmq-openmldb:plugin/host@0.1.0": crate::bindings::converter::rmq_openmldb::plugin::host,
            },
        });
    }
    pub mod source {
        wit_bindgen::generate!({
            path: "../wit",
            world: "source-plugin",
            pub_export_macro: true,
            export_macro_name: "__export_source_world",
            default_bindings_module: "rmq_openmldb_sdk::bindings::source",
            with: {
                "rmq-openmldb:plugin/types@0.1.0": crate::bindings::converter::rmq_openmldb::plugin::types,
                "rmq-openmldb:plugin/host@0.1.0": crate::bindings::converter::rmq_openmldb::plugin::host,
                "rmq-openmldb:plugin/sql@0.1.0": crate::bindings::sink::rmq_openmldb::plugin::sql,
            },
        });
    }
}

pub use bindings::converter::exports::rmq_openmldb::plugin::converter::Converted;
pub use bindings::converter::rmq_openmldb::plugin::host;
pub use bindings::converter::rmq_openmldb::plugin::types::{
    Cell, Column, ColumnType, Date, ErrorKind, FailureKind, Message, Needs, Origin, PluginError, PluginInfo, Property,
    RecordFailure, Row, RowBatch, TableSchema,
};
/// The SQL capability (sources and sinks whose connector grants a connection).
pub use bindings::sink::rmq_openmldb::plugin::sql;
pub use bindings::source::exports::rmq_openmldb::plugin::source::{SourcePosition, SourceRecord};
pub use bindings::transform::exports::rmq_openmldb::plugin::transform::{TransformInfo, Transformed};
pub use config::PluginConfig;
#[doc(hidden)]
pub use export::not_initialised as __not_initialised;
pub use export::{Converter, Sink, Source, Transform};
pub use row::{ColumnIndex, RowBuilder};

/// The version of the WIT contract this SDK implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Everything a plugin usually needs, in one import.
pub mod prelude {
    pub use crate::coerce::{CellError, CoerceOptions, json_to_cell};
    pub use crate::{
        Cell, Column, ColumnIndex, ColumnType, Converted, Converter, Date, ErrorKind, FailureKind, Message, Needs,
        Origin, PluginConfig, PluginError, PluginInfo, RecordFailure, Row, RowBatch, RowBuilder, Sink, Source,
        SourcePosition, SourceRecord, TableSchema, Transform, TransformInfo, Transformed, log, plugin_info,
    };
}

/// A `PluginInfo` with no batch limit and no optional message fields.
pub fn plugin_info(name: &str, version: &str) -> PluginInfo {
    PluginInfo { name: name.to_string(), version: version.to_string(), max_batch: None, needs: Needs::empty() }
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError { kind, message: message.into() }
    }
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }
    pub fn schema_mismatch(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::SchemaMismatch, message)
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Fatal, message)
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(column_type_name(*self))
    }
}

/// OpenMLDB's SQL name of a column type.
pub fn column_type_name(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Bool => "bool",
        ColumnType::Smallint => "smallint",
        ColumnType::Int => "int",
        ColumnType::Bigint => "bigint",
        ColumnType::Float => "float",
        ColumnType::Double => "double",
        ColumnType::String => "string",
        ColumnType::Date => "date",
        ColumnType::Timestamp => "timestamp",
    }
}

/// Parse an OpenMLDB type name (`int`, `int32`, `bigint`, `varchar`, ...).
pub fn parse_column_type(name: &str) -> Option<ColumnType> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "bool" | "boolean" => ColumnType::Bool,
        "smallint" | "int16" | "int2" => ColumnType::Smallint,
        "int" | "int32" | "integer" | "int4" => ColumnType::Int,
        "bigint" | "int64" | "long" | "int8" => ColumnType::Bigint,
        "float" | "float32" | "real" => ColumnType::Float,
        "double" | "float64" => ColumnType::Double,
        "string" | "varchar" | "text" => ColumnType::String,
        "date" => ColumnType::Date,
        "timestamp" => ColumnType::Timestamp,
        _ => return None,
    })
}

/// Logging through the host (`host.log`), tagged with plugin and connector.
pub mod log {
    use crate::host::{Level, log};
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}
