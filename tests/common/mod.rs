//! Helpers the end-to-end tests share: unique names on a shared broker, and
//! `employee_test` rows as RocketMQ Connect's JDBC source writes them.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use serde_json::{Value, json};

/// A name no other test run uses (topics and groups outlive a test).
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// An `employee_test` row in RocketMQ Connect's JsonConverter envelope.
pub fn envelope(payload: Value) -> String {
    let field = |name: &str, ty: &str| json!({"type": ty, "optional": true, "field": name});
    let mut begin_time = field("begin_time", "int64");
    begin_time["name"] = json!("io.openmessaging.connector.api.data.logical.Timestamp");
    begin_time["version"] = json!(1);
    json!({
        "schema": {
            "type": "struct",
            "fields": [field("id", "int64"), field("name", "string"), field("howold", "int32"), field("male", "int32"),
                       field("company", "string"), field("money", "double"), begin_time],
            "optional": true,
            "name": "employee_test"
        },
        "payload": payload
    })
    .to_string()
}
