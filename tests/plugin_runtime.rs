//! The plugin runtime with real components: the built-ins, a hostile
//! component, and components that do not fit the contract.

use rmq_openmldb::plugin::bindings::{Cell, Column, ColumnType, Message, Row, RowBatch, TableSchema};
use rmq_openmldb::plugin::{
    CacheOutcome, CallError, ConverterInstance, LoadError, PluginCatalog, PluginChain, PluginEngine, PluginOrigin,
    PluginServices, Role, RuntimeConfig, Sandbox, SourceInstance, StageSpec, TransformInstance, TrapKind,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn test_component(name: &str) -> PathBuf {
    PathBuf::from(env!("RMQ_OPENMLDB_TEST_COMPONENTS")).join(format!("{name}.wasm"))
}

fn engine() -> PluginEngine {
    PluginEngine::new(RuntimeConfig { cache_dir: None }).expect("engine")
}

/// The tests' sandbox: a 32 MiB cap and a 300 ms deadline, plus `keys`
/// (`plugin.grant.*`, …).
fn sandbox(keys: &[(&str, &str)]) -> Sandbox {
    let mut config: std::collections::BTreeMap<String, String> =
        [("plugin.memory.max.bytes", "33554432"), ("plugin.call.timeout.ms", "300")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    config.extend(keys.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Sandbox::from_config(&config, None).expect("sandbox keys")
}

/// Services with the tests' sandbox and `keys` on top.
fn limited(plugin: &str, keys: &[(&str, &str)]) -> Arc<PluginServices> {
    PluginServices::sandboxed(plugin, "test", sandbox(keys), None)
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
    let config = RuntimeConfig { cache_dir: Some(cache.path().to_path_buf()) };
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
    let services = limited("json-converter", &[]);
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
    let columns = ConverterInstance::infer_schema(&engine, plugin, &vec![], &sample, limited("c", &[])).unwrap();
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
    let services = limited("hostile", &[]);
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
    let mut t = hostile_transform(&engine, limited("hostile", &[]));
    let (kind, detail) = expect_trap(t.process(&command_batch("panic")));
    assert_eq!(kind, TrapKind::Panic);
    assert!(detail.contains("hostile plugin was asked to panic"), "{detail}");
    assert!(t.process(&command_batch("ok")).is_ok());
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let engine = engine();
    let mut t = hostile_transform(&engine, limited("hostile", &[]));
    let (kind, detail) = expect_trap(t.process(&command_batch("alloc")));
    assert_eq!(kind, TrapKind::MemoryLimit, "{detail}");
    assert!(detail.contains("33554432 byte memory cap"), "{detail}");
    assert!(t.process(&command_batch("ok")).is_ok());
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline() {
    let engine = engine();
    let mut t = hostile_transform(&engine, limited("hostile", &[]));
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
    let mut t = hostile_transform(&engine, limited("hostile", &[]));
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
        sandbox: sandbox(&[]),
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
fn a_chain_retries_a_trap_once_then_isolates_the_message_that_traps() {
    let engine = engine();
    let table = TableSchema {
        database: String::new(),
        table: "t".into(),
        columns: vec![col("command", ColumnType::String, true)],
    };
    let hostile =
        StageSpec { plugin: test_component("hostile").display().to_string(), config: vec![], sandbox: sandbox(&[]) };
    let converter = StageSpec { plugin: "json-converter".into(), config: vec![], sandbox: sandbox(&[]) };
    let mut chain =
        PluginChain::new(&engine, &PluginCatalog::default(), &converter, &[hostile], table, "test").unwrap();
    let out = chain
        .run(&[message(0, r#"{"command": "fine"}"#), message(1, r#"{"command": "trap"}"#), message(2, "{}")])
        .unwrap();
    assert_eq!(out.rows.iter().map(|r| r.source_index).collect::<Vec<_>>(), [0, 2], "the others go on");
    assert_eq!(out.failures.len(), 1);
    let failure = &out.failures[0];
    assert_eq!((failure.source_index, failure.stage.as_str(), failure.kind), (1, "transform hostile", "trap"));
    assert!(failure.message.contains("unreachable"), "{}", failure.message);
    assert!(out.traps >= 2, "tried on a fresh instance before it was split: {}", out.traps);
    let ok = chain.run(&[message(3, r#"{"command": "fine"}"#)]).unwrap();
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

/// The first cell of the one row the hostile transform passed on.
fn outcome(t: &mut TransformInstance, command: &str) -> String {
    let out = t.process(&command_batch(command)).unwrap_or_else(|e| panic!("{command}: {e}"));
    match &out.rows[0].cells[0] {
        Cell::String(s) => s.clone(),
        other => panic!("{command}: {other:?}"),
    }
}

#[test]
fn a_result_whose_strings_overlap_is_refused_before_it_is_copied() {
    let engine = engine();
    let services = limited("hostile", &[]);
    let mut t = hostile_transform(&engine, services.clone());
    let started = Instant::now();
    let (kind, detail) = expect_trap(t.process(&command_batch("oversized")));
    assert_eq!(kind, TrapKind::MemoryLimit, "{detail}");
    assert!(detail.contains("output too large") && detail.contains("33554432 bytes"), "{detail}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused without copying 32 GiB");
    assert_eq!(outcome(&mut t, "ok"), "ok", "a fresh instance serves the next call");
}

#[test]
fn a_large_result_that_really_is_in_the_plugins_memory_is_copied_whole() {
    let engine = engine();
    let mut t = hostile_transform(&engine, limited("hostile", &[]));
    let out = t.process(&command_batch("large")).unwrap();
    assert_eq!(out.rows.len(), 100);
    let bytes: usize = out.rows.iter().map(|r| if let Cell::String(s) = &r.cells[0] { s.len() } else { 0 }).sum();
    assert_eq!(bytes, 100 * (128 << 10));
}

#[test]
fn sleeping_in_a_host_call_ends_at_the_deadline() {
    let engine = engine();
    let mut t = hostile_transform(&engine, limited("hostile", &[]));
    let started = Instant::now();
    let (kind, detail) = expect_trap(t.process(&command_batch("sleep")));
    let took = started.elapsed();
    assert_eq!(kind, TrapKind::Deadline, "{detail}");
    assert!(detail.contains("wasi:io/poll") && detail.contains("300 ms deadline"), "{detail}");
    assert!(took >= Duration::from_millis(290) && took < Duration::from_millis(800), "{took:?}");
    assert_eq!(outcome(&mut t, "ok"), "ok", "a fresh instance serves the next call");
}

#[test]
fn files_are_out_of_reach_unless_a_folder_is_granted_and_then_only_that_folder() {
    let engine = engine();
    let mut t = hostile_transform(&engine, limited("hostile", &[]));
    assert!(outcome(&mut t, "read:/etc/passwd").starts_with("denied"));
    assert!(outcome(&mut t, "write:/tmp/hostile-was-here").starts_with("denied"));
    assert!(!Path::new("/tmp/hostile-was-here").exists());

    let granted = tempfile::tempdir().unwrap();
    std::fs::write(granted.path().join("lookup.csv"), "a,1\n").unwrap();
    let folder = granted.path().to_str().unwrap();
    let mut read_only = hostile_transform(&engine, limited("hostile", &[("plugin.grant.folder", folder)]));
    assert_eq!(outcome(&mut read_only, "read:/data/lookup.csv"), "allowed: 4 bytes");
    assert!(outcome(&mut read_only, "write:/data/new.txt").starts_with("denied"), "read-only by default");
    assert!(outcome(&mut read_only, "read:/etc/passwd").starts_with("denied"));
    assert!(outcome(&mut read_only, "read:/data/../../../etc/passwd").starts_with("denied"));

    let mut writable = hostile_transform(
        &engine,
        limited("hostile", &[("plugin.grant.folder", folder), ("plugin.grant.folder.writable", "true")]),
    );
    assert_eq!(outcome(&mut writable, "write:/data/new.txt"), "allowed: written");
    assert!(granted.path().join("new.txt").exists());
    assert!(outcome(&mut writable, "write:/tmp/hostile-was-here").starts_with("denied"), "only inside the grant");
}

#[test]
fn outbound_tcp_reaches_only_granted_addresses() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed = listener.local_addr().unwrap().to_string();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let not_allowed = other.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut line = [0u8; 5];
            if std::io::Read::read_exact(&mut stream, &mut line).is_ok() {
                let _ = std::io::Write::write_all(&mut stream, b"pong");
            }
        }
    });
    let engine = engine();
    let mut denied = hostile_transform(&engine, limited("hostile", &[]));
    assert!(outcome(&mut denied, &format!("connect:{allowed}")).starts_with("denied"));
    let mut granted = hostile_transform(&engine, limited("hostile", &[("plugin.grant.tcp", &allowed)]));
    assert_eq!(outcome(&mut granted, &format!("connect:{allowed}")), "allowed: pong");
    assert!(outcome(&mut granted, &format!("connect:{not_allowed}")).starts_with("denied"));
}

#[test]
fn the_environment_holds_only_granted_variables() {
    let engine = engine();
    let mut denied = hostile_transform(&engine, limited("hostile", &[]));
    assert!(outcome(&mut denied, "env:HOME").starts_with("denied"));
    assert!(outcome(&mut denied, "env:PATH").starts_with("denied"));
    let mut granted = hostile_transform(&engine, limited("hostile", &[("plugin.grant.env", "HOME")]));
    assert_eq!(outcome(&mut granted, "env:HOME"), format!("allowed: {}", std::env::var("HOME").unwrap()));
    assert!(outcome(&mut granted, "env:PATH").starts_with("denied"));
}

#[test]
fn printing_and_logging_megabytes_is_bounded_and_counted() {
    let engine = engine();
    let services = limited("hostile", &[("plugin.log.max.lines.per.second", "100")]);
    let mut t = hostile_transform(&engine, services.clone());
    assert_eq!(outcome(&mut t, "flood"), "flood");
    let dropped = services.figures().log_lines_dropped.load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped >= 99_000, "at most a burst of 200 of 100,000 lines pass: {dropped} dropped");
}

#[test]
fn a_plugin_that_panics_every_fifth_call_loses_only_those_calls() {
    let engine = engine();
    let mut t = hostile_transform(&engine, limited("hostile", &[]));
    let mut trapped = 0;
    for _ in 0..12 {
        match t.process(&command_batch("panic-every-fifth")) {
            Ok(out) => assert_eq!(out.rows.len(), 1),
            Err(e) => {
                assert!(e.is_trap(), "{e}");
                trapped += 1;
            }
        }
    }
    // Each fresh instance counts from one again: overall calls 5 and 10
    // trap (the fifth of the first and of the second instance).
    assert_eq!(trapped, 2);
}

#[test]
fn calls_traps_and_memory_are_measured_per_plugin() {
    let engine = engine();
    let services = limited("hostile", &[]);
    let mut t = hostile_transform(&engine, services.clone());
    let _ = t.process(&command_batch("ok"));
    let _ = t.process(&command_batch("alloc"));
    let _ = t.process(&command_batch("ok"));
    let f = services.figures();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load(&f.calls), 4, "init and three batches");
    assert_eq!(load(&f.traps_memory), 1);
    assert!(load(&f.memory_high_water) > 16 << 20, "the allocation grew memory to near the cap");
    assert!(load(&f.memory_high_water) <= 32 << 20, "never past it");
}
