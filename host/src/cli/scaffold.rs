//! `plugin new` and `plugin build`: the plugin author's toolkit. `new`
//! writes a project that builds as it is: the WIT contract this binary
//! implements (so the project needs nothing from this repository), a
//! working example of the role, a native unit test, and a sample input for
//! `plugin test`. `build` turns a project into a component and checks it
//! with the same loader the worker uses.

use crate::plugin::{PluginEngine, PluginOrigin, Role, RuntimeConfig};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The contract, as compiled into this binary.
const WIT: &str = include_str!("../../../wit/plugin.wit");

/// Languages `plugin new` scaffolds and `plugin build` builds.
pub const LANGUAGES: &[&str] = &["rust"];
/// Roles `plugin new` has a template for.
pub const TEMPLATE_ROLES: &[&str] = &["transform", "converter"];

const RUST_CARGO_TOML: &str = r#"[package]
name = "@NAME@"
version = "0.1.0"
edition = "2024"

# A project of its own, even inside another Cargo workspace.
[workspace]

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
wit-bindgen = { version = "0.63", default-features = false, features = ["macros", "realloc", "std", "bitflags"] }
@EXTRA@
[profile.release]
opt-level = 3
lto = true
strip = true
"#;

const RUST_TRANSFORM: &str = r##"//! @NAME@: an rmq-openmldb transform. It upper-cases the string columns
//! named in its `fields` config key and passes every other column through.
//! Replace `process_row` with your own logic; `rmq-openmldb plugin build`
//! makes the component, `rmq-openmldb plugin test` runs it on sample data.

wit_bindgen::generate!({ path: "wit", world: "transform-plugin", additional_derives: [PartialEq] });

use exports::rmq_openmldb::plugin::transform::{Guest, TransformInfo, Transformed};
use rmq_openmldb::plugin::types::{Cell, Column, ColumnType, ErrorKind, Needs, PluginError, PluginInfo, Row, RowBatch};
use std::cell::RefCell;

thread_local! {
    /// Indexes of the columns to upper-case, set by `init`.
    static FIELDS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Plugin;

impl Guest for Plugin {
    /// `output` is the schema this transform must produce; it answers with
    /// the schema it needs as input (here the same).
    fn init(config: Vec<(String, String)>, output: Vec<Column>) -> Result<TransformInfo, PluginError> {
        let fields = config.iter().find(|(key, _)| key == "fields").map(|(_, value)| value.as_str()).unwrap_or("");
        let mut indexes = Vec::new();
        for column in fields.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match output.iter().position(|c| c.name == column) {
                Some(i) if output[i].type_ == ColumnType::String => indexes.push(i),
                Some(_) => return Err(config_error(format!("config key \"fields\": column \"{column}\" is not a string column"))),
                None => return Err(config_error(format!("config key \"fields\": the table has no column \"{column}\""))),
            }
        }
        FIELDS.with(|f| *f.borrow_mut() = indexes);
        let info = PluginInfo { name: "@NAME@".into(), version: env!("CARGO_PKG_VERSION").into(), max_batch: None, needs: Needs::empty() };
        Ok(TransformInfo { info, input: output })
    }

    fn process(batch: RowBatch) -> Result<Transformed, PluginError> {
        let rows = FIELDS.with(|f| {
            let fields = f.borrow();
            batch.rows.into_iter().map(|row| process_row(row, &fields)).collect()
        });
        Ok(Transformed { rows, failures: Vec::new() })
    }
}

/// The transform itself, free of WIT plumbing, so it is unit-tested natively.
fn process_row(mut row: Row, fields: &[usize]) -> Row {
    for &i in fields {
        if let Some(Cell::String(text)) = row.cells.get_mut(i) {
            *text = text.to_uppercase();
        }
    }
    row
}

fn config_error(message: String) -> PluginError {
    PluginError { kind: ErrorKind::InvalidConfig, message }
}

// Exported only in the component; native builds (cargo test) skip it.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_string_columns_are_upper_cased_and_nulls_kept() {
        let row = Row { source_index: 0, cells: vec![Cell::Bigint(1), Cell::String("gjk".into()), Cell::Null] };
        let out = process_row(row, &[1, 2]);
        assert_eq!(out.cells[1], Cell::String("GJK".into()));
        assert_eq!(out.cells[2], Cell::Null);
    }
}
"##;

const RUST_CONVERTER: &str = r##"//! @NAME@: an rmq-openmldb converter. It reads each message body as a
//! plain JSON object and maps its fields to the table's columns by name
//! (missing or null fields become NULL). Replace `convert_body` with your
//! own format; `rmq-openmldb plugin build` makes the component,
//! `rmq-openmldb plugin test` runs it on sample data.

wit_bindgen::generate!({ path: "wit", world: "converter-plugin", additional_derives: [PartialEq] });

use exports::rmq_openmldb::plugin::converter::{Converted, Guest};
use rmq_openmldb::plugin::types::{
    Cell, Column, ColumnType, ErrorKind, FailureKind, Message, Needs, PluginError, PluginInfo, RecordFailure, Row,
    TableSchema,
};
use std::cell::RefCell;

thread_local! {
    static COLUMNS: RefCell<Vec<Column>> = const { RefCell::new(Vec::new()) };
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Plugin;

impl Guest for Plugin {
    fn init(_config: Vec<(String, String)>, target: TableSchema) -> Result<PluginInfo, PluginError> {
        COLUMNS.with(|c| *c.borrow_mut() = target.columns);
        Ok(PluginInfo { name: "@NAME@".into(), version: env!("CARGO_PKG_VERSION").into(), max_batch: None, needs: Needs::empty() })
    }

    fn convert(batch: Vec<Message>) -> Result<Converted, PluginError> {
        COLUMNS.with(|columns| {
            let columns = columns.borrow();
            let (mut rows, mut failures) = (Vec::new(), Vec::new());
            for (index, message) in batch.iter().enumerate() {
                match convert_body(&message.body, &columns) {
                    Ok(cells) => rows.push(Row { source_index: index as u32, cells }),
                    Err((kind, message)) => failures.push(RecordFailure { index: index as u32, kind, message }),
                }
            }
            Ok(Converted { rows, failures })
        })
    }

    fn infer_schema(_config: Vec<(String, String)>, _sample: Message) -> Result<Vec<Column>, PluginError> {
        Err(PluginError { kind: ErrorKind::SchemaMismatch, message: "plain JSON carries no schema: create the table first".into() })
    }
}

/// One body into cells in column order, or why not (naming field and value).
fn convert_body(body: &[u8], columns: &[Column]) -> Result<Vec<Cell>, (FailureKind, String)> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| (FailureKind::Decode, format!("the body is not JSON: {e}")))?;
    let object = value.as_object().ok_or((FailureKind::Decode, "the body is not a JSON object".to_string()))?;
    columns
        .iter()
        .map(|column| {
            let field = object.get(&column.name).unwrap_or(&serde_json::Value::Null);
            let mismatch = || (FailureKind::TypeMismatch, format!("field \"{}\": value {field} does not fit a {:?} column", column.name, column.type_));
            Ok(match (field, column.type_) {
                (serde_json::Value::Null, _) if column.nullable => Cell::Null,
                (serde_json::Value::Null, _) => return Err((FailureKind::MissingField, format!("field \"{}\" is missing", column.name))),
                (serde_json::Value::Bool(b), ColumnType::Bool) => Cell::Bool(*b),
                (serde_json::Value::Number(n), ColumnType::Smallint) => Cell::Smallint(n.as_i64().and_then(|v| i16::try_from(v).ok()).ok_or_else(mismatch)?),
                (serde_json::Value::Number(n), ColumnType::Int) => Cell::Int(n.as_i64().and_then(|v| i32::try_from(v).ok()).ok_or_else(mismatch)?),
                (serde_json::Value::Number(n), ColumnType::Bigint) => Cell::Bigint(n.as_i64().ok_or_else(mismatch)?),
                (serde_json::Value::Number(n), ColumnType::Timestamp) => Cell::Timestamp(n.as_i64().ok_or_else(mismatch)?),
                (serde_json::Value::Number(n), ColumnType::Float) => Cell::Float(n.as_f64().ok_or_else(mismatch)? as f32),
                (serde_json::Value::Number(n), ColumnType::Double) => Cell::Double(n.as_f64().ok_or_else(mismatch)?),
                (serde_json::Value::String(s), ColumnType::String) => Cell::String(s.clone()),
                _ => return Err(mismatch()),
            })
        })
        .collect()
}

// Exported only in the component; native builds (cargo test) skip it.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_by_name_and_bad_values_name_the_field() {
        let columns = vec![
            Column { name: "id".into(), type_: ColumnType::Bigint, nullable: false },
            Column { name: "name".into(), type_: ColumnType::String, nullable: true },
        ];
        assert_eq!(convert_body(br#"{"id": 2, "name": null}"#, &columns).unwrap(), vec![Cell::Bigint(2), Cell::Null]);
        let (kind, message) = convert_body(br#"{"id": "two"}"#, &columns).unwrap_err();
        assert_eq!(kind, FailureKind::TypeMismatch);
        assert!(message.contains("field \"id\""), "{message}");
    }
}
"##;

const SAMPLE_MESSAGES: &str = r#"{"id": 2, "name": "name-02", "howold": 19, "company": "company"}
{"id": 4, "name": "gjk", "howold": 25, "company": null}
{"id": 12, "name": null, "howold": 19, "company": "company"}
"#;

const SAMPLE_TABLE: &str = r#"{
  "table": "employee_test",
  "columns": [
    {"name": "id", "type": "bigint", "nullable": false},
    {"name": "name", "type": "string"},
    {"name": "howold", "type": "int"},
    {"name": "company", "type": "string"}
  ]
}
"#;

const README: &str = r#"# @NAME@

An rmq-openmldb @ROLE@ plugin, written in Rust against `wit/plugin.wit`
(the contract of the rmq-openmldb that made this project).

    cargo test                                 # the logic, natively
    rmq-openmldb plugin build                  # -> @NAME@.wasm, checked like the worker checks it
    @TEST@

Drop `@NAME@.wasm` into a worker's plugins folder (`plugins_dir`); the worker
picks it up within a second. Use it in a connector as @USAGE@.
"#;

/// `plugin new NAME --lang LANG --role ROLE [--dir DIR]`.
pub fn new_project(name: &str, lang: &str, role: &str, dir: Option<&Path>) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        bail!("plugin name \"{name}\": use lower-case letters, digits and '-', starting with a letter");
    }
    if !LANGUAGES.contains(&lang) {
        bail!(
            "--lang {lang}: this build scaffolds {} plugins only (Python, JavaScript and C components load fine; \
             their templates are not written yet)",
            LANGUAGES.join(", ")
        );
    }
    let template = match role {
        "transform" => RUST_TRANSFORM,
        "converter" => RUST_CONVERTER,
        other if Role::ALL.iter().any(|r| r.name() == other) => {
            bail!("--role {other}: this build has templates for {} only", TEMPLATE_ROLES.join(", "))
        }
        other => bail!("--role {other}: expected converter, transform, sink or source"),
    };
    let root = dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(name));
    if root.exists() && std::fs::read_dir(&root).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", root.display());
    }
    let fill = |text: &str| text.replace("@NAME@", name).replace("@ROLE@", role);
    let extra = if role == "converter" { "serde_json = \"1\"\n" } else { "" };
    let (test_command, usage) = match role {
        "transform" => (
            format!(
                "rmq-openmldb plugin test json-converter --input sample/messages.jsonl --table-schema sample/table.json --transform ./{name}.wasm --config fields=name"
            ),
            format!("`\"transforms\": \"t\", \"transforms.t.type\": \"{name}\", \"transforms.t.fields\": \"name\"`"),
        ),
        _ => (
            format!(
                "rmq-openmldb plugin test ./{name}.wasm --input sample/messages.jsonl --table-schema sample/table.json"
            ),
            format!("`\"value.converter\": \"{name}\"`"),
        ),
    };
    let files: [(&str, String); 6] = [
        ("Cargo.toml", fill(RUST_CARGO_TOML).replace("@EXTRA@", extra)),
        ("wit/plugin.wit", WIT.to_string()),
        ("src/lib.rs", fill(template)),
        ("sample/messages.jsonl", SAMPLE_MESSAGES.to_string()),
        ("sample/table.json", SAMPLE_TABLE.to_string()),
        ("README.md", fill(README).replace("@TEST@", &test_command).replace("@USAGE@", &usage)),
    ];
    for (path, content) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(root)
}

/// What `plugin build` made.
#[derive(Debug)]
pub struct Built {
    pub component: PathBuf,
    pub role: Role,
    pub size_bytes: usize,
}

/// `plugin build [DIR]`: build the project into `DIR/<package>.wasm` and
/// load it as the worker would (component, contract version, role, links).
pub fn build_project(dir: &Path) -> Result<Built> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{}: no Cargo.toml; plugin build knows Rust projects (made with `rmq-openmldb plugin new NAME --lang rust`)",
            dir.display()
        );
    }
    let text = std::fs::read_to_string(&manifest)?;
    let package: toml::Value =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", manifest.display()))?;
    let name = package
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .with_context(|| format!("{}: no [package] name", manifest.display()))?
        .to_string();
    // The project's own target folder, whatever CARGO_TARGET_DIR says.
    let target_dir = dir.join("target");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .context("cannot run cargo (is Rust installed, with `rustup target add wasm32-wasip2`?)")?;
    if !status.success() {
        bail!("cargo build failed for {}", dir.display());
    }
    let artifact = target_dir.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
    let component = dir.join(format!("{name}.wasm"));
    std::fs::copy(&artifact, &component)
        .with_context(|| format!("cannot copy {} to {}", artifact.display(), component.display()))?;
    let engine = PluginEngine::new(RuntimeConfig { cache_dir: None, ..RuntimeConfig::default() })?;
    let loaded = engine.load(PluginOrigin::File(component.clone()), None)?;
    Ok(Built { component, role: loaded.role, size_bytes: loaded.size_bytes })
}
