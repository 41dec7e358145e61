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

/// The OpenMLDB guide's four employee_test rows as the APIServer returns
/// them (`SELECT *`, sorted by id): row 12 keeps its NULLs.
pub fn guide_rows_in_openmldb() -> Vec<Value> {
    vec![
        json!([2, "name-02", 19, 7, "company", 32232.0, 1640764800000i64]),
        json!([4, "gjk", 25, 8, "company", 3232.0, 1640378616000i64]),
        json!([12, "name-06", 19, 3, null, null, null]),
        json!([14, "name-08", 25, 15, "company", 32255.0, 1644347199000i64]),
    ]
}
