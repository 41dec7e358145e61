use super::*;
use serde_json::json;

fn employee_schema() -> TableSchema {
    let col = |name: &str, type_| Column { name: name.into(), type_, nullable: true };
    TableSchema {
        database: "demo".into(),
        table: "employee_test".into(),
        columns: vec![
            Column { name: "id".into(), type_: ColumnType::Bigint, nullable: false },
            col("name", ColumnType::String),
            col("howold", ColumnType::Int),
            col("male", ColumnType::Int),
            col("company", ColumnType::String),
            col("money", ColumnType::Double),
            col("begin_time", ColumnType::Timestamp),
        ],
    }
}

fn message(body: Value) -> Message {
    Message {
        topic: "employee_test".into(),
        queue_id: 0,
        queue_offset: 0,
        born_timestamp: 0,
        store_timestamp: 0,
        message_id: None,
        keys: None,
        tags: None,
        properties: None,
        body: body.to_string().into_bytes(),
    }
}

fn converter(pairs: &[(&str, &str)]) -> JsonConverter {
    let config = PluginConfig::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    JsonConverter::new(&config, employee_schema()).unwrap()
}

/// The JsonConverter envelope of rocketmq-connect.md §4.2.
fn envelope(payload: Value) -> Value {
    json!({
        "schema": {
            "type": "struct",
            "fields": [
                {"type": "int64", "optional": true, "field": "id"},
                {"type": "string", "optional": true, "field": "name"},
                {"type": "int32", "optional": true, "field": "howold"},
                {"type": "int32", "optional": true, "field": "male"},
                {"type": "string", "optional": true, "field": "company"},
                {"type": "double", "optional": true, "field": "money"},
                {"type": "int64", "optional": true, "name": LOGICAL_TIMESTAMP, "version": 1, "field": "begin_time"}
            ],
            "optional": true,
            "name": "employee_test"
        },
        "payload": payload
    })
}

#[test]
fn envelope_rows_follow_the_target_schema() {
    let mut c = converter(&[]);
    let out = c.convert_batch(&[message(envelope(json!({
        "id": 2, "name": "name-02", "howold": 19, "male": 7,
        "company": "company", "money": 32232.0, "begin_time": 1640764800000i64
    })))]);
    assert_eq!(out.failures, vec![]);
    assert_eq!(
        out.rows,
        vec![Row {
            source_index: 0,
            cells: vec![
                Cell::Bigint(2),
                Cell::String("name-02".into()),
                Cell::Int(19),
                Cell::Int(7),
                Cell::String("company".into()),
                Cell::Double(32232.0),
                Cell::Timestamp(1640764800000),
            ],
        }]
    );
}

#[test]
fn explicit_nulls_stay_null_and_are_not_zeroed() {
    // Row 12 of the guide: RocketMQ Connect would have written money = 0.0.
    let mut c = converter(&[]);
    let out = c.convert_batch(&[message(envelope(json!({
        "id": 12, "name": "name-06", "howold": 19, "male": 3,
        "company": null, "money": null, "begin_time": null
    })))]);
    assert_eq!(out.failures, vec![]);
    assert_eq!(&out.rows[0].cells[4..], &[Cell::Null, Cell::Null, Cell::Null]);
}

#[test]
fn plain_objects_map_by_name_and_missing_columns_are_null() {
    let mut c = converter(&[]);
    let out =
        c.convert_batch(&[message(json!({"ID": 4, "name": "gjk", "begin_time": "2021-12-24 20:43:36", "extra": 1}))]);
    assert_eq!(out.failures, vec![]);
    assert_eq!(
        out.rows[0].cells,
        vec![
            Cell::Bigint(4),
            Cell::String("gjk".into()),
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Timestamp(1640378616000),
        ]
    );
}

#[test]
fn string_timestamps_use_the_configured_zone() {
    let mut c = converter(&[("timezone", "Asia/Shanghai")]);
    let out = c.convert_batch(&[message(json!({"id": 1, "begin_time": "2021-12-29 16:00:00"}))]);
    assert_eq!(out.rows[0].cells[6], Cell::Timestamp(1640764800000));
}

#[test]
fn a_bad_message_fails_alone_with_field_value_and_reason() {
    let mut c = converter(&[]);
    let batch = [
        message(json!({"id": 1, "howold": 20})),
        message(json!({"id": 2, "howold": 3000000000i64})),
        Message { body: b"{not json".to_vec(), ..message(json!({})) },
        message(json!({"name": "no id"})),
        message(json!({"id": 5})),
    ];
    let out = c.convert_batch(&batch);
    assert_eq!(out.rows.iter().map(|r| r.source_index).collect::<Vec<_>>(), vec![0, 4]);
    let failures: Vec<(u32, FailureKind, &str)> =
        out.failures.iter().map(|f| (f.index, f.kind, f.message.as_str())).collect();
    assert_eq!(
        failures[0],
        (1, FailureKind::OutOfRange, "field \"howold\": value 3000000000 does not fit int (-2147483648..2147483647)")
    );
    assert_eq!(failures[1].0, 2);
    assert_eq!(failures[1].1, FailureKind::Decode);
    assert!(failures[1].2.starts_with("body is not valid JSON"), "{}", failures[1].2);
    assert_eq!(failures[2], (3, FailureKind::MissingField, "field \"id\": no value for a NOT NULL bigint column"));
}

#[test]
fn arrays_of_objects_give_one_row_each_from_the_same_message() {
    let mut c = converter(&[]);
    let out = c.convert_batch(&[message(json!([{"id": 1}, {"id": 2}]))]);
    assert_eq!(out.rows.len(), 2);
    assert!(out.rows.iter().all(|r| r.source_index == 0));
    let bad = c.convert_batch(&[message(json!([{"id": 1}, 7]))]);
    assert!(bad.rows.is_empty());
    assert_eq!(bad.failures[0].message, "array element 1 is not a JSON object");
}

#[test]
fn format_and_unknown_field_policies() {
    let mut envelope_only = converter(&[("json.format", "envelope")]);
    let out = envelope_only.convert_batch(&[message(json!({"id": 1}))]);
    assert_eq!(out.failures[0].kind, FailureKind::Decode);

    let mut strict = converter(&[("unknown.fields", "fail")]);
    let out = strict.convert_batch(&[message(json!({"id": 1, "salary": 5}))]);
    assert_eq!(out.failures[0].message, "field \"salary\" is not a column of the table (unknown.fields=fail)");

    let mut plain = converter(&[("json.format", "plain")]);
    // In plain mode an object that looks like an envelope is just an object.
    let out = plain.convert_batch(&[message(envelope(json!({"id": 1})))]);
    assert_eq!(out.failures[0].kind, FailureKind::MissingField);
}

#[test]
fn bad_config_names_the_key_and_value() {
    let config = PluginConfig::new(vec![("timezone".into(), "Mars/Base".into())]);
    let err = JsonConverter::new(&config, employee_schema()).err().unwrap();
    assert_eq!(err.kind, ErrorKind::InvalidConfig);
    assert!(err.message.contains("timezone") && err.message.contains("Mars/Base"), "{}", err.message);
    let config = PluginConfig::new(vec![("json.format".into(), "xml".into())]);
    assert!(JsonConverter::new(&config, employee_schema()).err().unwrap().message.contains("\"xml\""));
}

#[test]
fn logical_date_time_and_decimal_fields() {
    let target = TableSchema {
        database: String::new(),
        table: "t".into(),
        columns: vec![
            Column { name: "d".into(), type_: ColumnType::Date, nullable: true },
            Column { name: "t".into(), type_: ColumnType::String, nullable: true },
            Column { name: "amount".into(), type_: ColumnType::Double, nullable: true },
        ],
    };
    let mut c = JsonConverter::new(&PluginConfig::default(), target).unwrap();
    let body = json!({
        "schema": {"type": "struct", "fields": [
            {"type": "int32", "name": LOGICAL_DATE, "field": "d"},
            {"type": "int32", "name": LOGICAL_TIME, "field": "t"},
            {"type": "bytes", "name": LOGICAL_DECIMAL, "parameters": {"scale": "2"}, "field": "amount"}
        ]},
        "payload": {"d": 18990, "t": 3723004, "amount": "MDk="}
    });
    let out = c.convert_batch(&[message(body)]);
    assert_eq!(out.failures, vec![]);
    assert_eq!(
        out.rows[0].cells,
        vec![
            Cell::Date(Date { year: 2021, month: 12, day: 29 }),
            Cell::String("01:02:03.004".into()),
            Cell::Double(123.45),
        ]
    );
}

#[test]
fn infer_schema_reads_the_envelope() {
    let body = envelope(json!({"id": 1})).to_string();
    let columns = infer_columns(body.as_bytes()).unwrap();
    let summary: Vec<(&str, ColumnType)> = columns.iter().map(|c| (c.name.as_str(), c.type_)).collect();
    assert_eq!(
        summary,
        vec![
            ("id", ColumnType::Bigint),
            ("name", ColumnType::String),
            ("howold", ColumnType::Int),
            ("male", ColumnType::Int),
            ("company", ColumnType::String),
            ("money", ColumnType::Double),
            ("begin_time", ColumnType::Timestamp),
        ]
    );
    let err = infer_columns(br#"{"id": 1}"#).unwrap_err();
    assert!(err.message.contains("plain JSON carries no schema"), "{}", err.message);
}

/// Property tests: every input is converted or reported, never a panic;
/// values round-trip bit for bit.
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn typed_schema() -> TableSchema {
        let col = |name: &str, type_| Column { name: name.into(), type_, nullable: true };
        TableSchema {
            database: "demo".into(),
            table: "typed".into(),
            columns: vec![
                col("b", ColumnType::Bool),
                col("s", ColumnType::Smallint),
                col("i", ColumnType::Int),
                col("l", ColumnType::Bigint),
                col("f", ColumnType::Float),
                col("d", ColumnType::Double),
                col("t", ColumnType::String),
                col("ts", ColumnType::Timestamp),
            ],
        }
    }

    fn raw(body: Vec<u8>) -> Message {
        Message { body, ..message(Value::Null) }
    }

    fn finite_f32() -> impl Strategy<Value = f32> {
        any::<u32>().prop_map(f32::from_bits).prop_filter("finite", |f| f.is_finite())
    }

    fn finite_f64() -> impl Strategy<Value = f64> {
        any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |f| f.is_finite())
    }

    /// Arbitrary JSON, nested a little.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            finite_f64().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            prop::sample::select(vec!["NaN", "Infinity", "-Inf", "1e400", "2021-02-31", " 7 ", "true"])
                .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec!["b", "s", "i", "l", "f", "d", "t", "ts", "schema", "payload", "x"]),
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn any_body_is_converted_or_reported_never_a_panic(bodies in prop::collection::vec(
            prop_oneof![
                json_value().prop_map(|v| v.to_string().into_bytes()),
                prop::collection::vec(any::<u8>(), 0..64),
            ],
            1..8,
        )) {
            let mut converter = JsonConverter::new(&PluginConfig::new(vec![]), typed_schema()).unwrap();
            let batch: Vec<Message> = bodies.into_iter().map(raw).collect();
            let out = converter.convert_batch(&batch);
            for row in &out.rows {
                prop_assert!((row.source_index as usize) < batch.len());
                prop_assert_eq!(row.cells.len(), 8);
            }
            for failure in &out.failures {
                prop_assert!((failure.index as usize) < batch.len());
                prop_assert!(!failure.message.is_empty());
            }
            // Each message yields rows, or one failure, never both.
            for index in 0..batch.len() as u32 {
                let rows = out.rows.iter().filter(|r| r.source_index == index).count();
                let failures = out.failures.iter().filter(|f| f.index == index).count();
                prop_assert!(failures <= 1 && (rows == 0 || failures == 0), "message {}: {} rows, {} failures", index, rows, failures);
            }
        }

        #[test]
        fn typed_values_round_trip_bit_for_bit(
            b in any::<bool>(), s in any::<i16>(), i in any::<i32>(), l in any::<i64>(),
            f in finite_f32(), d in finite_f64(), t in any::<String>(), ts in 0i64..=i64::MAX,
        ) {
            // The producer's JSON: serde's shortest text for each number
            // (a float as its own shortest 32-bit text).
            let body = format!(
                r#"{{"b":{b},"s":{s},"i":{i},"l":{l},"f":{f:?},"d":{},"t":{},"ts":{ts}}}"#,
                serde_json::to_string(&d).unwrap(),
                serde_json::to_string(&t).unwrap(),
            );
            let mut converter = JsonConverter::new(&PluginConfig::new(vec![]), typed_schema()).unwrap();
            let out = converter.convert_batch(&[raw(body.clone().into_bytes())]);
            prop_assert!(out.failures.is_empty(), "{:?} for {}", out.failures, body);
            let cells = &out.rows[0].cells;
            prop_assert_eq!(&cells[0], &Cell::Bool(b));
            prop_assert_eq!(&cells[1], &Cell::Smallint(s));
            prop_assert_eq!(&cells[2], &Cell::Int(i));
            prop_assert_eq!(&cells[3], &Cell::Bigint(l));
            let Cell::Float(got_f) = cells[4] else { return Err(TestCaseError::fail("no float")) };
            prop_assert_eq!(got_f.to_bits(), f.to_bits(), "float {} from {}", got_f, body);
            let Cell::Double(got_d) = cells[5] else { return Err(TestCaseError::fail("no double")) };
            prop_assert_eq!(got_d.to_bits(), d.to_bits(), "double {} from {}", got_d, body);
            prop_assert_eq!(&cells[6], &Cell::String(t));
            prop_assert_eq!(&cells[7], &Cell::Timestamp(ts));
        }
    }
}
