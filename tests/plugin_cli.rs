//! `rmq-openmldb plugin ...` run as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rmq_openmldb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
        .args(args)
        .current_dir(root())
        .env("RMQ_OPENMLDB_CACHE_DIR", std::env::temp_dir().join("rmq-openmldb-cli-test-cache"))
        .env_remove("RMQ_OPENMLDB_PLUGINS_DIR")
        .output()
        .expect("run rmq-openmldb")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    assert!(!output.status.success(), "expected failure, got: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8(output.stderr.clone()).unwrap()
}

const INPUT: &str = "examples/plugin-test/employee_test.jsonl";
const SCHEMA: &str = "examples/plugin-test/employee_test.schema.json";

#[test]
fn plugin_test_prints_rows_and_failures_as_json_lines() {
    let out = stdout(&rmq_openmldb(&["plugin", "test", "json-converter", "--input", INPUT, "--table-schema", SCHEMA]));
    let expected = [
        r#"{"line":1,"row":{"id":2,"name":"name-02","howold":19,"male":7,"company":"company","money":32232.0,"begin_time":1640764800000}}"#,
        r#"{"line":2,"row":{"id":12,"name":"name-06","howold":19,"male":3,"company":null,"money":null,"begin_time":null}}"#,
        r#"{"line":3,"row":{"id":4,"name":"gjk","howold":25,"male":8,"company":"company","money":3232.0,"begin_time":1640378616000}}"#,
        r#"{"line":4,"row":{"id":14,"name":"name-08","howold":25,"male":15,"company":"company","money":32255.0,"begin_time":1644347199000}}"#,
        r#"{"line":5,"failure":{"stage":"converter json-converter","kind":"out-of-range","message":"field \"howold\": value 3000000000 does not fit int (-2147483648..2147483647)"}}"#,
        r#"{"line":6,"failure":{"stage":"converter json-converter","kind":"missing-field","message":"field \"id\": no value for a NOT NULL bigint column"}}"#,
        r#"{"line":7,"failure":{"stage":"converter json-converter","kind":"decode","message":"body is not valid JSON: expected ident at line 1 column 2"}}"#,
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn plugin_test_gives_each_config_to_the_plugin_named_before_it() {
    let out = stdout(&rmq_openmldb(&[
        "plugin",
        "test",
        "json-converter",
        "--input",
        INPUT,
        "--table-schema",
        SCHEMA,
        "--config",
        "timezone=Asia/Shanghai",
        "--transform",
        "filter",
        "--config",
        "field=howold",
        "--config",
        "op=ge",
        "--config",
        "value=20",
        "--transform",
        "mask",
        "--config",
        "fields=name",
        "--config",
        "keep.last=2",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], r#"{"line":1,"dropped":true}"#);
    assert_eq!(lines[1], r#"{"line":2,"dropped":true}"#);
    // 2021-12-24 20:43:36 read in Asia/Shanghai, the name masked but its last two letters.
    assert_eq!(
        lines[2],
        r#"{"line":3,"row":{"id":4,"name":"*jk","howold":25,"male":8,"company":"company","money":3232.0,"begin_time":1640349816000}}"#
    );
}

#[test]
fn plugin_list_shows_builtins_and_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = Path::new(env!("RMQ_OPENMLDB_TEST_COMPONENTS")).join("hostile.wasm");
    std::fs::copy(&hostile, dir.path().join("hostile.wasm")).unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"not wasm").unwrap();
    let out = stdout(&rmq_openmldb(&["plugin", "list", "--plugins-dir", dir.path().to_str().unwrap()]));
    for (name, role) in [
        ("json-converter", "converter"),
        ("filter", "transform"),
        ("rename", "transform"),
        ("drop", "transform"),
        ("cast", "transform"),
        ("insert-field", "transform"),
        ("mask", "transform"),
        ("hostile", "transform"),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"));
        assert!(line.contains(role) && line.contains("rmq-openmldb:plugin@0.1.0"), "{line}");
    }
    let broken = out.lines().find(|l| l.starts_with("broken ")).unwrap();
    assert!(broken.contains("refused:") && broken.contains("not a WebAssembly component"), "{broken}");
}

#[test]
fn plugin_inspect_shows_world_imports_and_exports() {
    let hostile = Path::new(env!("RMQ_OPENMLDB_TEST_COMPONENTS")).join("hostile.wasm");
    let out = stdout(&rmq_openmldb(&["plugin", "inspect", hostile.to_str().unwrap()]));
    assert!(
        out.contains("role:     transform (world transform-plugin, exports rmq-openmldb:plugin/transform@0.1.0)"),
        "{out}"
    );
    assert!(out.contains(&format!("size:     {} bytes", std::fs::metadata(&hostile).unwrap().len())), "{out}");
    assert!(out.contains("imports:\n") && out.contains("  rmq-openmldb:plugin/host@0.1.0"), "{out}");
    assert!(out.contains("exports:\n  rmq-openmldb:plugin/transform@0.1.0"), "{out}");
}

#[test]
fn plugin_errors_say_what_is_wrong() {
    let unknown =
        stderr(&rmq_openmldb(&["plugin", "test", "xml-converter", "--input", INPUT, "--table-schema", SCHEMA]));
    assert!(unknown.contains("no plugin named \"xml-converter\""), "{unknown}");
    let wrong_role = stderr(&rmq_openmldb(&["plugin", "test", "filter", "--input", INPUT, "--table-schema", SCHEMA]));
    assert!(wrong_role.contains("expected a converter"), "{wrong_role}");
    let bad_config = stderr(&rmq_openmldb(&[
        "plugin",
        "test",
        "json-converter",
        "--input",
        INPUT,
        "--table-schema",
        SCHEMA,
        "--transform",
        "filter",
        "--config",
        "field=salary",
    ]));
    assert!(bad_config.contains("column \"salary\" is not in the schema"), "{bad_config}");

    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, r#"{"table": "t", "columns": [{"name": "a", "type": "money"}]}"#).unwrap();
    let bad_type = stderr(&rmq_openmldb(&[
        "plugin",
        "test",
        "json-converter",
        "--input",
        INPUT,
        "--table-schema",
        schema.to_str().unwrap(),
    ]));
    assert!(bad_type.contains("field \"columns\"[0].type: unknown type \"money\""), "{bad_type}");
}

/// `rmq-openmldb ARGS` run in `dir`, as a plugin author would.
fn rmq_openmldb_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
        .args(args)
        .current_dir(dir)
        .env("RMQ_OPENMLDB_CACHE_DIR", std::env::temp_dir().join("rmq-openmldb-cli-test-cache"))
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run rmq-openmldb")
}

#[test]
fn a_new_rust_transform_builds_as_scaffolded_tests_and_runs_on_its_sample() {
    let work = tempfile::tempdir().unwrap();
    let created =
        stdout(&rmq_openmldb_in(work.path(), &["plugin", "new", "shout", "--lang", "rust", "--role", "transform"]));
    assert!(created.contains("created shout"), "{created}");
    let project = work.path().join("shout");
    for file in
        ["Cargo.toml", "wit/plugin.wit", "src/lib.rs", "sample/messages.jsonl", "sample/table.json", "README.md"]
    {
        assert!(project.join(file).is_file(), "{file} is scaffolded");
    }
    assert_eq!(
        std::fs::read_to_string(project.join("wit/plugin.wit")).unwrap(),
        std::fs::read_to_string(root().join("wit/plugin.wit")).unwrap(),
        "the project carries the contract this binary implements"
    );

    let built = stdout(&rmq_openmldb_in(&project, &["plugin", "build"]));
    assert!(built.contains("built ./shout.wasm (transform,"), "{built}");
    let rows = stdout(&rmq_openmldb_in(
        &project,
        &[
            "plugin",
            "test",
            "json-converter",
            "--input",
            "sample/messages.jsonl",
            "--table-schema",
            "sample/table.json",
            "--transform",
            "./shout.wasm",
            "--config",
            "fields=name",
        ],
    ));
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        [
            r#"{"line":1,"row":{"id":2,"name":"NAME-02","howold":19,"company":"company"}}"#,
            r#"{"line":2,"row":{"id":4,"name":"GJK","howold":25,"company":null}}"#,
            r#"{"line":3,"row":{"id":12,"name":null,"howold":19,"company":"company"}}"#,
        ]
    );
    // Its own unit test passes natively.
    let tested = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--quiet"])
        .current_dir(&project)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(tested.status.success(), "cargo test: {}", String::from_utf8_lossy(&tested.stderr));

    // Installed into a plugins folder, it is listed there.
    let plugins = work.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    stdout(&rmq_openmldb_in(&project, &["plugin", "build", ".", "--install", plugins.to_str().unwrap()]));
    let listed = stdout(&rmq_openmldb_in(&project, &["plugin", "list", "--plugins-dir", plugins.to_str().unwrap()]));
    assert!(listed.lines().any(|l| l.starts_with("shout") && l.contains("transform")), "{listed}");
}
