//! The plugin runtime with real components: the built-ins, a hostile
//! component, and components that do not fit the contract.

use rmq_openmldb::plugin::bindings::{Cell, Column, ColumnType, Message, Row, RowBatch, TableSchema};
use rmq_openmldb::plugin::{
    CacheOutcome, CallError, ChainError, ConverterInstance, LoadError, PluginCatalog, PluginChain, PluginEngine,
    PluginOrigin, PluginServices, Role, RuntimeConfig, SourceInstance, StageSpec, TransformInstance, TrapKind,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn test_component(name: &str) -> PathBuf {
    PathBuf::from(env!("RMQ_OPENMLDB_TEST_COMPONENTS")).join(format!("{name}.wasm"))
}

fn engine() -> PluginEngine {
    PluginEngine::new(RuntimeConfig {
        memory_cap_bytes: 32 * 1024 * 1024,
        call_timeout: Duration::from_millis(300),
        cache_dir: None,
    })
    .expect("engine")
}

fn builtin(engine: &PluginEngine, name: &str, role: Role) -> Arc<rmq_openmldb::plugin::LoadedPlugin> {
    let origin = PluginCatalog::default().resolve(name).expect("built-in exists");
    engine.load(origin, Some(role)).expect("built-in loads")
}

fn col(name: &str, type_: ColumnType, nullable: bool) -> Column {
    Column { name: name.into(), type_, nullable }
}

fn employee_table() -> TableSchema {
    TableSchema {
        database: "demo".into(),
        table: "employee_test".into(),
        columns: vec![
            col("id", ColumnType::Bigint, false),
            col("name", ColumnType::String, true),
            col("howold", ColumnType::Int, true),
            col("male", ColumnType::Int, true),
            col("company", ColumnType::String, true),
            col("money", ColumnType::Double, true),
            col("begin_time", ColumnType::Timestamp, true),
        ],
    }
}

fn message(offset: i64, body: &str) -> Message {
    Message {
        topic: "employee_test".into(),
        queue_id: 1,
        queue_offset: offset,
        born_timestamp: 1_700_000_000_000,
        store_timestamp: 1_700_000_000_001,
        message_id: None,
        keys: None,
        tags: None,
        properties: None,
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn every_builtin_loads_with_its_declared_role() {
    let engine = engine();
    for builtin in PluginCatalog::builtins() {
        let origin = PluginOrigin::Builtin { name: builtin.name, bytes: builtin.bytes };
        let plugin = engine.load(origin, None).unwrap_or_else(|e| panic!("{}: {e}", builtin.name));
        assert_eq!(plugin.role.name(), builtin.role, "{}", builtin.name);
    }
}

#[test]
fn a_component_of_another_role_is_refused_with_file_and_expectation() {
    let engine = engine();
    let path = test_component("hostile");
    let err = engine.load(PluginOrigin::File(path.clone()), Some(Role::Converter)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("expected a converter (exporting rmq-openmldb:plugin/converter@0.1.0)"), "{text}");
    assert!(text.contains("exports rmq-openmldb:plugin/transform@0.1.0 (a transform)"), "{text}");
}

#[test]
fn a_component_built_for_another_contract_version_is_refused() {
    let err = engine().load(PluginOrigin::File(test_component("future_version")), None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LoadError::IncompatibleVersion { .. }), "{text}");
    assert!(text.contains("rmq-openmldb:plugin/converter@0.2.0"), "{text}");
    assert!(text.contains("implements rmq-openmldb:plugin@0.1.0"), "{text}");
}

#[test]
fn core_modules_and_garbage_are_not_components() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = engine().load(PluginOrigin::File(core.clone()), None).unwrap_err().to_string();
    assert!(err.contains("core.wasm") && err.contains("core WebAssembly module"), "{err}");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"hello").unwrap();
    let err = engine().load(PluginOrigin::File(junk), None).unwrap_err().to_string();
    assert!(err.contains("junk.wasm: not a WebAssembly component"), "{err}");
    let missing = engine().load(PluginOrigin::File(dir.path().join("none.wasm")), None).unwrap_err().to_string();
    assert!(missing.contains("none.wasm: cannot read the file"), "{missing}");
}

#[test]
fn components_are_compiled_once_and_then_loaded_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig { cache_dir: Some(cache.path().to_path_buf()), ..RuntimeConfig::default() };
    let first = PluginEngine::new(config.clone()).unwrap();
    let cold = first.load(PluginOrigin::File(test_component("hostile")), None).unwrap();
    assert_eq!(cold.cache, CacheOutcome::Compiled);
    let artifacts: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(artifacts.len(), 1);
    assert!(artifacts[0].to_string_lossy().starts_with(&cold.content_hash), "{artifacts:?}");
    // A new engine (a restarted host) finds the artifact.
    let second = PluginEngine::new(config).unwrap();
    let warm = second.load(PluginOrigin::File(test_component("hostile")), None).unwrap();
    assert_eq!(warm.cache, CacheOutcome::Hit);
    // A corrupt artifact is replaced, not fatal. (Replaced by rename, as the
    // cache itself does: truncating a mapped artifact in place is never safe.)
    drop(warm);
    let artifact = cache.path().join(&artifacts[0]);
    let corrupt = cache.path().join("corrupt.tmp");
    std::fs::write(&corrupt, b"garbage").unwrap();
    std::fs::rename(&corrupt, &artifact).unwrap();
    let third = second.load(PluginOrigin::File(test_component("hostile")), None).unwrap();
    assert_eq!(third.cache, CacheOutcome::Compiled);
}

#[test]
fn the_json_converter_runs_in_the_runtime() {
    let engine = engine();
    let plugin = builtin(&engine, "json-converter", Role::Converter);
    let services = PluginServices::new("json-converter", "test");
    let mut converter = ConverterInstance::new(&engine, plugin, vec![], employee_table(), services).unwrap();
    assert_eq!(converter.info().name, "json-converter");
    let batch = [
        message(
            0,
            r#"{"id": 2, "name": "name-02", "howold": 19, "male": 7, "company": "company", "money": 32232, "begin_time": "2021-12-29 08:00:00"}"#,
        ),
        message(1, r#"{"id": 3, "howold": "old"}"#),
    ];
    let out = converter.convert(&batch).unwrap();
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
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].index, 1);
    assert_eq!(out.failures[0].message, "field \"howold\": value \"old\" is not an integer");
}

#[test]
fn infer_schema_reads_a_json_converter_envelope() {
    let engine = engine();
    let plugin = builtin(&engine, "json-converter", Role::Converter);
    let body =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plugin-test/employee_test.jsonl"))
            .unwrap();
    let sample = message(0, body.lines().next().unwrap());
    let columns =
        ConverterInstance::infer_schema(&engine, plugin, &vec![], &sample, PluginServices::new("c", "t")).unwrap();
    let mut expected = employee_table().columns;
    expected[0].nullable = true; // the envelope declares every field optional
    assert_eq!(columns, expected);
}

fn hostile_transform(engine: &PluginEngine, services: Arc<PluginServices>) -> TransformInstance {
    let plugin = engine.load(PluginOrigin::File(test_component("hostile")), Some(Role::Transform)).unwrap();
    TransformInstance::new(engine, plugin, vec![], vec![col("command", ColumnType::String, true)], services).unwrap()
}

fn command_batch(command: &str) -> RowBatch {
    RowBatch { rows: vec![Row { source_index: 0, cells: vec![Cell::String(command.into())] }], origins: vec![] }
}

fn expect_trap(result: Result<rmq_openmldb::plugin::bindings::Transformed, CallError>) -> (TrapKind, String) {
    match result {
        Err(CallError::Trap { kind, detail, .. }) => (kind, detail),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn a_trap_is_a_typed_error_and_the_next_call_gets_a_fresh_instance() {
    let engine = engine();
    let services = PluginServices::new("hostile", "test");
    let mut t = hostile_transform(&engine, services.clone());
    assert_eq!(t.process(&command_batch("ok")).unwrap().rows.len(), 1);
    let (kind, detail) = expect_trap(t.process(&command_batch("trap")));
    assert_eq!(kind, TrapKind::Other);
    assert!(detail.contains("unreachable"), "{detail}");
    assert_eq!(t.process(&command_batch("ok")).unwrap().rows.len(), 1, "fresh instance after the trap");
    // Keyed state and metrics belong to the task, not the instance.
    assert_eq!(services.state_get("calls"), Some(3u64.to_le_bytes().to_vec()));
    assert_eq!(services.metrics().counters["hostile_calls"], 3);
}

#[test]
fn a_panic_reports_the_plugins_message() {
    let engine = engine();
    let mut t = hostile_transform(&engine, PluginServices::new("hostile", "test"));
    let (kind, detail) = expect_trap(t.process(&command_batch("panic")));
    assert_eq!(kind, TrapKind::Panic);
    assert!(detail.contains("hostile plugin was asked to panic"), "{detail}");
    assert!(t.process(&command_batch("ok")).is_ok());
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let engine = engine();
    let mut t = hostile_transform(&engine, PluginServices::new("hostile", "test"));
    let (kind, detail) = expect_trap(t.process(&command_batch("alloc")));
    assert_eq!(kind, TrapKind::MemoryLimit, "{detail}");
    assert!(detail.contains("33554432 byte memory cap"), "{detail}");
    assert!(t.process(&command_batch("ok")).is_ok());
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline() {
    let engine = engine();
    let mut t = hostile_transform(&engine, PluginServices::new("hostile", "test"));
    let started = Instant::now();
    let (kind, detail) = expect_trap(t.process(&command_batch("loop")));
    let took = started.elapsed();
    assert_eq!(kind, TrapKind::Deadline);
    assert!(detail.contains("longer than 300 ms"), "{detail}");
    assert!(took >= Duration::from_millis(290) && took < Duration::from_secs(5), "{took:?}");
    assert!(t.process(&command_batch("ok")).is_ok());
}

#[test]
fn contract_violations_are_caught_by_the_host() {
    let engine = engine();
    let mut t = hostile_transform(&engine, PluginServices::new("hostile", "test"));
    let out = t.process(&command_batch("break-schema")).unwrap();
    assert!(out.rows.is_empty());
    assert_eq!(out.failures[0].message, "plugin hostile broke the schema: column \"command\" (string) got bool true");
    let err = t.process(&command_batch("bad-index")).unwrap_err().to_string();
    assert!(err.contains("failure index 4294967295 is outside the batch of 1 rows"), "{err}");
}

#[test]
fn a_chain_negotiates_schemas_backwards_and_runs_forwards() {
    let engine = engine();
    let table = TableSchema {
        database: "demo".into(),
        table: "people".into(),
        columns: vec![
            col("id", ColumnType::Bigint, false),
            col("name", ColumnType::String, true),
            col("howold", ColumnType::Smallint, true),
            col("src_offset", ColumnType::Bigint, true),
        ],
    };
    let stage = |plugin: &str, config: &[(&str, &str)]| StageSpec {
        plugin: plugin.into(),
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    let transforms = [
        stage("filter", &[("field", "status"), ("value", "active")]),
        stage("drop", &[("fields", "status")]),
        stage("rename", &[("renames", "emp_name:name")]),
        stage("cast", &[("fields", "howold:string")]),
        stage("insert-field", &[("queue.offset.field", "src_offset")]),
    ];
    let mut chain =
        PluginChain::new(&engine, &PluginCatalog::default(), &stage("json-converter", &[]), &transforms, table, "test")
            .unwrap();
    let names: Vec<(&str, ColumnType)> = chain.converter_columns().iter().map(|c| (c.name.as_str(), c.type_)).collect();
    assert_eq!(
        names,
        vec![
            ("id", ColumnType::Bigint),
            ("emp_name", ColumnType::String),
            ("howold", ColumnType::String),
            ("status", ColumnType::String)
        ]
    );
    let out = chain
        .run(&[
            message(40, r#"{"id": 1, "emp_name": "ann", "howold": "42", "status": "active"}"#),
            message(41, r#"{"id": 2, "emp_name": "bob", "howold": "43", "status": "gone"}"#),
            message(42, r#"{"id": 3, "emp_name": "cy", "howold": 70000, "status": "active"}"#),
        ])
        .unwrap();
    assert_eq!(
        out.rows,
        vec![Row {
            source_index: 0,
            cells: vec![Cell::Bigint(1), Cell::String("ann".into()), Cell::Smallint(42), Cell::Bigint(40)]
        }]
    );
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].source_index, 2);
    assert_eq!(out.failures[0].stage, "transform cast");
    assert!(out.failures[0].message.contains("does not fit smallint"), "{}", out.failures[0].message);
}

#[test]
fn a_chain_retries_a_trap_once_then_reports_the_stage() {
    let engine = engine();
    let table = TableSchema {
        database: String::new(),
        table: "t".into(),
        columns: vec![col("command", ColumnType::String, true)],
    };
    let hostile = StageSpec { plugin: test_component("hostile").display().to_string(), config: vec![] };
    let converter = StageSpec { plugin: "json-converter".into(), config: vec![] };
    let mut chain =
        PluginChain::new(&engine, &PluginCatalog::default(), &converter, &[hostile], table, "test").unwrap();
    let err = chain.run(&[message(0, r#"{"command": "trap"}"#)]).unwrap_err();
    assert!(
        matches!(&err, ChainError::Call { stage, source } if stage == "transform hostile" && source.is_trap()),
        "{err}"
    );
    let ok = chain.run(&[message(1, r#"{"command": "fine"}"#)]).unwrap();
    assert_eq!(ok.rows.len(), 1);
}

#[test]
fn a_plugin_whose_connector_grants_no_sql_connection_cannot_query() {
    let engine = engine();
    let plugin = builtin(&engine, "mysql-source", Role::Source);
    let config = vec![
        ("mode".to_string(), "incrementing".to_string()),
        ("incrementing.column.name".to_string(), "id".to_string()),
        ("table.whitelist".to_string(), "shop.orders".to_string()),
    ];
    // Services without a SQL grant: the plugin's first query is refused.
    let refused = SourceInstance::new(&engine, plugin, config, vec![], PluginServices::new("mysql-source", "no-grant"))
        .err()
        .expect("init must fail without a grant")
        .to_string();
    assert!(refused.contains("invalid-config"), "{refused}");
    assert!(
        refused.contains("plugin \"mysql-source\" of connector \"no-grant\" has no SQL connection"),
        "the reason names plugin, connector and what grants one: {refused}"
    );
}
