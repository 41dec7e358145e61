//! Host-side bindings of the WIT contract (`wit/plugin.wit`), one module per
//! world. `types` and `host` are generated once (in `converter`) and shared,
//! so a `Message` or a `Cell` is one Rust type whatever the role.

pub mod converter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "converter-plugin",
        additional_derives: [PartialEq],
    });
}

pub mod transform {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transform-plugin",
        with: {
            "rmq-openmldb:plugin/types@0.1.0": super::converter::rmq_openmldb::plugin::types,
            "rmq-openmldb:plugin/host@0.1.0": super::converter::rmq_openmldb::plugin::host,
        },
    });
}

pub mod sink {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sink-plugin",
        additional_derives: [PartialEq],
        with: {
            "rmq-openmldb:plugin/types@0.1.0": super::converter::rmq_openmldb::plugin::types,
            "rmq-openmldb:plugin/host@0.1.0": super::converter::rmq_openmldb::plugin::host,
        },
    });
}

pub mod source {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "source-plugin",
        with: {
            "rmq-openmldb:plugin/types@0.1.0": super::converter::rmq_openmldb::plugin::types,
            "rmq-openmldb:plugin/host@0.1.0": super::converter::rmq_openmldb::plugin::host,
            "rmq-openmldb:plugin/sql@0.1.0": super::sink::rmq_openmldb::plugin::sql,
        },
    });
}

/// The SQL capability's types (generated once, with the sink world).
pub use sink::rmq_openmldb::plugin::sql;

pub use converter::exports::rmq_openmldb::plugin::converter::Converted;
pub use converter::rmq_openmldb::plugin::host::Level;
pub use converter::rmq_openmldb::plugin::types::{
    Cell, Column, ColumnType, Date, ErrorKind, FailureKind, Message, Needs, Origin, PluginError, PluginInfo, Property,
    RecordFailure, Row, RowBatch, TableSchema,
};
pub use source::exports::rmq_openmldb::plugin::source::{SourcePosition, SourceRecord};
pub use transform::exports::rmq_openmldb::plugin::transform::{TransformInfo, Transformed};

/// The WIT package every plugin must be built against.
pub const CONTRACT_PACKAGE: &str = "rmq-openmldb:plugin";
/// The contract version this host implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The WIT spelling of a failure kind (`out-of-range`), as users see it in
/// `plugin test` output and dead-letter properties.
pub fn failure_kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Decode => "decode",
        FailureKind::MissingField => "missing-field",
        FailureKind::TypeMismatch => "type-mismatch",
        FailureKind::OutOfRange => "out-of-range",
        FailureKind::InvalidValue => "invalid-value",
        FailureKind::Rejected => "rejected",
    }
}
