//! `rmq-openmldb plugin list | inspect | test`: the plugin author's loop.

use crate::plugin::bindings::sql::SqlValue;
use crate::plugin::bindings::{
    Cell, Column, ColumnType, Message, Row, RowBatch, SourcePosition, TableSchema, failure_kind_name,
};
use crate::plugin::sandbox::{Sandbox, is_sandbox_key};
use crate::plugin::{
    CacheOutcome, MessageFailure, PluginCatalog, PluginChain, PluginEngine, PluginOrigin, PluginServices, Role,
    RuntimeConfig, SinkInstance, SourceInstance, StageSpec, default_cache_dir,
};
use crate::sql::{RecordedCall, SqlConnection};
use anyhow::{Context, Result, bail};
use clap::{ArgMatches, Args, Subcommand};
use serde_json::{Map, Value, json};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Options every plugin command shares.
#[derive(Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// Folder of user plugins (`*.wasm`).
    #[arg(long, env = "RMQ_OPENMLDB_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Compiled-component cache folder [default: ~/.cache/rmq-openmldb/components].
    #[arg(long, env = "RMQ_OPENMLDB_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the compile cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Memory cap of one plugin instance, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_mib: usize,
    /// Deadline of one call into a plugin, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub call_timeout_ms: u64,
}

impl RuntimeArgs {
    fn engine(&self) -> Result<PluginEngine> {
        let cache_dir = if self.no_cache { None } else { self.cache_dir.clone().or_else(default_cache_dir) };
        Ok(PluginEngine::new(RuntimeConfig { cache_dir })?)
    }

    /// A stage's sandbox: the limits from the flags, then any `plugin.*`
    /// limit or grant among the stage's `--config` entries (which the
    /// plugin itself does not see).
    fn stage(&self, plugin: &str, config: &[(String, String)]) -> Result<StageSpec> {
        let mut keys: std::collections::BTreeMap<String, String> = [
            ("plugin.memory.max.bytes".to_string(), (self.memory_mib * 1024 * 1024).to_string()),
            ("plugin.call.timeout.ms".to_string(), self.call_timeout_ms.to_string()),
        ]
        .into_iter()
        .collect();
        keys.extend(config.iter().filter(|(k, _)| is_sandbox_key(k)).cloned());
        let sandbox = Sandbox::from_config(&keys, None).map_err(|e| anyhow::anyhow!("--config {e}"))?;
        let config = config.iter().filter(|(k, _)| !is_sandbox_key(k)).cloned().collect();
        Ok(StageSpec { plugin: plugin.to_string(), config, sandbox })
    }

    fn catalog(&self) -> PluginCatalog {
        PluginCatalog::new(self.plugins_dir.clone())
    }
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// List the built-in plugins and those in the plugins folder.
    List {
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Show a component's role, imports, exports and size.
    Inspect {
        /// A `.wasm` file or a plugin name.
        file: String,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Run a converter (and transforms) over sample messages; print the rows
    /// and the failures as JSON lines.
    Test(TestArgs),
    /// Scaffold a plugin project that builds as it is, with a sample input
    /// and a test.
    New {
        /// The plugin's name (lower case, digits, '-'); also the folder.
        name: String,
        /// The language of the project.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// converter, transform, sink or source.
        #[arg(long)]
        role: String,
        /// Where to create it [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a plugin project into a component (DIR/NAME.wasm) and check it
    /// as the worker would.
    Build {
        /// The project folder [default: the current one].
        dir: Option<PathBuf>,
        /// Also copy the component into this plugins folder (a running
        /// worker picks it up).
        #[arg(long)]
        install: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// The converter (a built-in name, a plugins-folder name or a `.wasm`
    /// file), or a source plugin: then its records are printed.
    pub converter: String,
    /// One message body per line (a JSON value, or any text); not for sources.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// `{"table": "...", "columns": [{"name": "...", "type": "bigint", "nullable": true}, ...]}`; not for sources.
    #[arg(long)]
    pub table_schema: Option<PathBuf>,
    /// A transform to apply after the converter; repeat for a chain.
    #[arg(long = "transform", action = clap::ArgAction::Append)]
    pub transforms: Vec<String>,
    /// A sink plugin to hand the rows to. Its `sql` calls reach no
    /// database: each is printed (and answered as a success) instead.
    #[arg(long)]
    pub sink: Option<String>,
    /// `key=value` for the plugin named last before it (the converter when
    /// it comes before any --transform or --sink).
    #[arg(long = "config", action = clap::ArgAction::Append)]
    pub configs: Vec<String>,
    /// Sources: `PARTITION=POSITION`, a position stored before (as after a
    /// restart); repeat for several partitions.
    #[arg(long = "position", action = clap::ArgAction::Append)]
    pub positions: Vec<String>,
    /// Sources: poll at most this many times (it stops earlier at the
    /// first poll that returns nothing).
    #[arg(long, default_value_t = 100)]
    pub polls: u32,
    /// Topic the sample messages claim to come from.
    #[arg(long, default_value = "plugin-test")]
    pub topic: String,
    /// Born and store timestamp of the sample messages (epoch ms).
    #[arg(long, default_value_t = 0)]
    pub timestamp: i64,
    /// Messages per call into the plugins (records per poll for sources).
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
    /// A file of the JSON lines the run must print (what `plugin test`
    /// printed before, checked by hand): fail at the first difference.
    #[arg(long)]
    pub expect: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Which plugin each --config belongs to (filled from the argument
    /// order): 0 the converter, 1..=n the transforms, n+1 the sink.
    #[arg(skip)]
    pub config_owner: Vec<usize>,
}

impl TestArgs {
    /// Attach each `--config` to the plugin named before it, by position on
    /// the command line.
    pub fn assign_configs(&mut self, matches: &ArgMatches) {
        let transform_positions: Vec<usize> = matches.indices_of("transforms").map(|i| i.collect()).unwrap_or_default();
        let sink_position = matches.index_of("sink");
        let sink_owner = self.transforms.len() + 1;
        self.config_owner = matches
            .indices_of("configs")
            .map(|indices| {
                indices
                    .map(|at| match sink_position {
                        Some(sink) if sink < at => sink_owner,
                        _ => transform_positions.iter().filter(|t| **t < at).count(),
                    })
                    .collect()
            })
            .unwrap_or_default();
    }

    fn required(&self, path: &Option<PathBuf>, flag: &str) -> Result<PathBuf> {
        path.clone().with_context(|| format!("{flag} is required to test the converter {}", self.converter))
    }
}

pub fn run(command: PluginCommand) -> Result<()> {
    match command {
        PluginCommand::List { runtime } => list(&runtime),
        PluginCommand::Inspect { file, runtime } => inspect(&file, &runtime),
        PluginCommand::Test(args) => test(&args),
        PluginCommand::New { name, lang, role, dir } => {
            let root = super::scaffold::new_project(&name, &lang, &role, dir.as_deref())?;
            println!(
                "created {} ({lang} {role} plugin \"{name}\"); next: cd {} && rmq-openmldb plugin build",
                root.display(),
                root.display()
            );
            Ok(())
        }
        PluginCommand::Build { dir, install } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let built = super::scaffold::build_project(&dir)?;
            println!("built {} ({}, {} bytes)", built.component.display(), built.role, built.size_bytes);
            if let Some(folder) = install {
                let name = built.component.file_name().map(PathBuf::from).unwrap_or_default();
                let target = folder.join(name);
                // Copy then rename, so a watching worker never sees half a file.
                let partial = folder.join(".installing.partial");
                std::fs::copy(&built.component, &partial)?;
                std::fs::rename(&partial, &target)?;
                println!("installed {}", target.display());
            }
            Ok(())
        }
    }
}

fn list(runtime: &RuntimeArgs) -> Result<()> {
    let engine = runtime.engine()?;
    let catalog = runtime.catalog();
    let files = catalog.folder_files()?;
    let contract = format!("rmq-openmldb:plugin@{}", crate::plugin::bindings::CONTRACT_VERSION);
    let mut out = std::io::stdout().lock();
    let mut line = |name: &str, role: &str, contract: &str, version: &str, source: &str| {
        writeln!(out, "{name:<16} {role:<10} {contract:<26} {version:<9} {source}")
    };
    line("NAME", "ROLE", "CONTRACT", "VERSION", "SOURCE")?;
    for builtin in PluginCatalog::builtins() {
        let overridden = files.iter().any(|f| f.file_stem().is_some_and(|s| s == builtin.name));
        let source = if overridden {
            "built-in (overridden by the plugins folder)".to_string()
        } else {
            format!("built-in: {}", builtin.description)
        };
        line(builtin.name, builtin.role, &contract, env!("CARGO_PKG_VERSION"), &source)?;
    }
    for file in files {
        let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match engine.load(PluginOrigin::File(file.clone()), None) {
            Ok(plugin) => {
                let source = format!(
                    "{} ({} KiB, sha256 {})",
                    file.display(),
                    plugin.size_bytes / 1024,
                    &plugin.content_hash[..12]
                );
                line(&name, plugin.role.name(), &contract, "-", &source)?;
            }
            Err(e) => line(&name, "-", "-", "-", &format!("refused: {e}"))?,
        }
    }
    Ok(())
}

fn inspect(file: &str, runtime: &RuntimeArgs) -> Result<()> {
    let engine = runtime.engine()?;
    let origin = runtime.catalog().resolve(file)?;
    let plugin = engine.load(origin, None)?;
    let (imports, exports) = plugin.interface_names(&engine);
    let mut out = std::io::stdout().lock();
    writeln!(out, "plugin:   {}", plugin.name)?;
    writeln!(out, "source:   {}", plugin.origin.describe())?;
    writeln!(out, "role:     {} (world {}-plugin, exports {})", plugin.role, plugin.role, plugin.role.interface())?;
    writeln!(out, "size:     {} bytes", plugin.size_bytes)?;
    writeln!(out, "sha256:   {}", plugin.content_hash)?;
    let cache = match plugin.cache {
        CacheOutcome::Hit => "loaded from the compile cache",
        CacheOutcome::Compiled => "compiled now and cached",
        CacheOutcome::Uncached => "compiled now (cache off)",
    };
    writeln!(out, "load:     {:.1} ms, {cache}", plugin.load_time.as_secs_f64() * 1e3)?;
    writeln!(out, "imports:")?;
    for name in imports {
        writeln!(out, "  {name}")?;
    }
    writeln!(out, "exports:")?;
    for name in exports {
        writeln!(out, "  {name}")?;
    }
    Ok(())
}

/// The schema file of `plugin test`.
pub fn read_table_schema(path: &PathBuf) -> Result<TableSchema> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the table schema {}", path.display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
    let field = |name: &str| format!("{}: field \"{name}\"", path.display());
    let table = value
        .get("table")
        .and_then(Value::as_str)
        .with_context(|| format!("{} is missing (a string)", field("table")))?;
    let database = value.get("database").and_then(Value::as_str).unwrap_or("");
    let columns = value
        .get("columns")
        .and_then(Value::as_array)
        .with_context(|| format!("{} is missing (a list)", field("columns")))?;
    let mut parsed = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let name = column
            .get("name")
            .and_then(Value::as_str)
            .with_context(|| format!("{}[{i}].name is missing", field("columns")))?;
        let ty = column
            .get("type")
            .and_then(Value::as_str)
            .with_context(|| format!("{}[{i}].type is missing", field("columns")))?;
        let type_ = parse_openmldb_type(ty).with_context(|| {
            format!(
                "{}[{i}].type: unknown type \"{ty}\" (use bool, smallint, int, bigint, float, double, string, date or timestamp)",
                field("columns")
            )
        })?;
        let nullable = match column.get("nullable") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => bail!("{}[{i}].nullable: expected true or false, got {other}", field("columns")),
        };
        parsed.push(Column { name: name.to_string(), type_, nullable });
    }
    if parsed.is_empty() {
        bail!("{} is empty", field("columns"));
    }
    Ok(TableSchema { database: database.to_string(), table: table.to_string(), columns: parsed })
}

/// OpenMLDB's type names, in SQL (`bigint`) and APIServer (`kBigInt`) spelling.
pub fn parse_openmldb_type(name: &str) -> Option<ColumnType> {
    Some(match name.trim().to_ascii_lowercase().trim_start_matches('k') {
        "bool" | "boolean" => ColumnType::Bool,
        "smallint" | "int16" => ColumnType::Smallint,
        "int" | "int32" | "integer" => ColumnType::Int,
        "bigint" | "int64" => ColumnType::Bigint,
        "float" => ColumnType::Float,
        "double" => ColumnType::Double,
        "string" | "varchar" => ColumnType::String,
        "date" => ColumnType::Date,
        "timestamp" => ColumnType::Timestamp,
        _ => return None,
    })
}

fn split_config(entry: &str) -> Result<(String, String)> {
    match entry.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => bail!("--config \"{entry}\": expected key=value"),
    }
}

fn test(args: &TestArgs) -> Result<()> {
    let engine = args.runtime.engine()?;
    let catalog = args.runtime.catalog();
    let mut stage_configs: Vec<Vec<(String, String)>> = vec![Vec::new(); args.transforms.len() + 2];
    for (i, entry) in args.configs.iter().enumerate() {
        let owner = args.config_owner.get(i).copied().unwrap_or(0);
        stage_configs[owner].push(split_config(entry)?);
    }
    let first = engine.load(catalog.resolve(&args.converter)?, None)?;
    if first.role == Role::Source {
        return test_source(args, &engine, first, &stage_configs[0]);
    }
    let table_schema = args.required(&args.table_schema, "--table-schema")?;
    let input_path = args.required(&args.input, "--input")?;
    let table = read_table_schema(&table_schema)?;
    let converter = args.runtime.stage(&args.converter, &stage_configs[0])?;
    let transforms: Vec<StageSpec> = args
        .transforms
        .iter()
        .zip(&stage_configs[1..])
        .map(|(plugin, config)| args.runtime.stage(plugin, config))
        .collect::<Result<_>>()?;
    let mut chain = PluginChain::new(&engine, &catalog, &converter, &transforms, table.clone(), "plugin-test")?;
    let needs = chain.converter_needs();
    tracing::debug!(stages = ?chain.stage_names(), ?needs, "chain ready");
    let mut sink = match &args.sink {
        Some(name) => Some(RecordingSink::start(
            args,
            &engine,
            &catalog,
            name,
            &stage_configs[args.transforms.len() + 1],
            &table,
        )?),
        None => None,
    };

    let input =
        std::fs::File::open(&input_path).with_context(|| format!("cannot read the input {}", input_path.display()))?;
    let mut lines = std::io::BufReader::new(input).lines().enumerate();
    let mut out = std::io::stdout().lock();
    let mut expected = args.expect.as_deref().map(Expected::read).transpose()?;
    let mut emit = |out: &mut std::io::StdoutLock, line: Value| -> Result<()> {
        writeln!(out, "{line}")?;
        match expected.as_mut() {
            Some(expected) => expected.check(&line),
            None => Ok(()),
        }
    };
    let (mut messages, mut rows, mut failures, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let mut batch: Vec<(usize, Message)> = Vec::with_capacity(args.batch_size);
        for (number, line) in lines.by_ref() {
            let line = line.with_context(|| format!("{}: line {}", input_path.display(), number + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            batch.push((number + 1, sample_message(args, number, line)));
            if batch.len() == args.batch_size.max(1) {
                break;
            }
        }
        if batch.is_empty() {
            break;
        }
        let bodies: Vec<Message> = batch.iter().map(|(_, m)| m.clone()).collect();
        let output = chain.run(&bodies)?;
        messages += batch.len() as u64;
        if let Some(sink) = sink.as_mut() {
            // The sink's statements are the output; the chain's failures
            // and drops are still shown, by line.
            let lines: Vec<usize> = batch.iter().map(|(line, _)| *line).collect();
            for failure in &output.failures {
                failures += 1;
                emit(&mut out, failure_json(lines[failure.source_index as usize], failure))?;
            }
            rows += output.rows.len() as u64;
            for line in sink.write(&output.rows, &lines)? {
                emit(&mut out, line)?;
            }
            continue;
        }
        for (index, (line, _)) in batch.iter().enumerate() {
            let index = index as u32;
            let mut produced = false;
            for row in output.rows.iter().filter(|r| r.source_index == index) {
                produced = true;
                rows += 1;
                emit(&mut out, json!({"line": line, "row": row_json(&row.cells, &table.columns)}))?;
            }
            for failure in output.failures.iter().filter(|f| f.source_index == index) {
                produced = true;
                failures += 1;
                emit(&mut out, failure_json(*line, failure))?;
            }
            if !produced {
                dropped += 1;
                emit(&mut out, json!({"line": line, "dropped": true}))?;
            }
        }
    }
    if let Some(sink) = sink.as_mut() {
        for line in sink.flush()? {
            emit(&mut out, line)?;
        }
    }
    eprintln!("{messages} messages: {rows} rows, {failures} failures, {dropped} dropped");
    report_calls();
    if let Some(expected) = expected {
        expected.finish()?;
        eprintln!("output matches {}", expected.path.display());
    }
    Ok(())
}

/// `plugin test --sink`: a sink plugin whose `sql` calls are recorded,
/// each printed as `{"execute": STATEMENT, "params": [[...], ...]}` or
/// `{"query": STATEMENT, "params": [...]}`.
struct RecordingSink {
    instance: SinkInstance,
    calls: Arc<Mutex<Vec<RecordedCall>>>,
    stage: String,
}

impl RecordingSink {
    fn start(
        args: &TestArgs,
        engine: &PluginEngine,
        catalog: &PluginCatalog,
        name: &str,
        config: &[(String, String)],
        table: &TableSchema,
    ) -> Result<RecordingSink> {
        let stage = args.runtime.stage(name, config)?;
        let loaded = engine.load(catalog.resolve(name)?, Some(Role::Sink))?;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let connection = SqlConnection::recording(Arc::clone(&calls)).context("cannot start the recording")?;
        let services = PluginServices::sandboxed(loaded.name.clone(), "plugin-test", stage.sandbox, Some(connection));
        let stage_name = format!("sink {}", loaded.name);
        let instance = SinkInstance::new(engine, loaded, stage.config, table.clone(), services)?;
        Ok(RecordingSink { instance, calls, stage: stage_name })
    }

    /// Hand the rows to the sink: its statements, then the rows it
    /// refused (by input line).
    fn write(&mut self, rows: &[Row], lines: &[usize]) -> Result<Vec<Value>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let batch = RowBatch { rows: rows.to_vec(), origins: Vec::new() };
        let failures = self.instance.write(&batch)?;
        let mut out = self.recorded();
        for failure in failures {
            let line = lines[rows[failure.index as usize].source_index as usize];
            out.push(json!({"line": line, "failure": {
                "stage": self.stage, "kind": failure_kind_name(failure.kind), "message": failure.message,
            }}));
        }
        Ok(out)
    }

    fn flush(&mut self) -> Result<Vec<Value>> {
        self.instance.flush()?;
        Ok(self.recorded())
    }

    fn recorded(&self) -> Vec<Value> {
        let calls = std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()));
        calls
            .into_iter()
            .map(|call| match call {
                RecordedCall::Execute { statement, params } => json!({
                    "execute": statement,
                    "params": params.iter().map(|row| row.iter().map(sql_value_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
                }),
                RecordedCall::Query { statement, params } => {
                    json!({"query": statement, "params": params.iter().map(sql_value_json).collect::<Vec<_>>()})
                }
            })
            .collect()
    }
}

/// A statement parameter as JSON: numbers and text as themselves, dates
/// and date-times in MySQL's text form, bytes and times tagged.
fn sql_value_json(value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Int(n) => json!(n),
        SqlValue::Uint(n) => json!(n),
        SqlValue::Float(f) => cell_json(&Cell::Float(*f)),
        SqlValue::Double(f) => cell_json(&Cell::Double(*f)),
        SqlValue::Decimal(text) | SqlValue::Text(text) => json!(text),
        SqlValue::Bytes(bytes) => json!({"bytes": hex::encode(bytes)}),
        SqlValue::Date(d) => json!(format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)),
        SqlValue::Datetime(t) => json!(format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
            t.date.year, t.date.month, t.date.day, t.hour, t.minute, t.second, t.microsecond
        )),
        SqlValue::Time(micros) => json!({"time_us": micros}),
    }
}

/// `plugin test SOURCE`: init with the `--position`s, then poll until a
/// poll returns nothing (or `--polls`), printing each record.
fn test_source(
    args: &TestArgs,
    engine: &PluginEngine,
    plugin: Arc<crate::plugin::LoadedPlugin>,
    config: &[(String, String)],
) -> Result<()> {
    if args.input.is_some() || args.sink.is_some() || !args.transforms.is_empty() {
        bail!("{} is a source: it takes no --input, --transform or --sink (it makes the messages)", args.converter);
    }
    let stage = args.runtime.stage(&args.converter, config)?;
    let positions = args
        .positions
        .iter()
        .map(|entry| match entry.split_once('=') {
            Some((partition, position)) if !partition.is_empty() => {
                Ok(SourcePosition { partition: partition.to_string(), position: position.to_string() })
            }
            _ => bail!("--position \"{entry}\": expected PARTITION=POSITION"),
        })
        .collect::<Result<Vec<_>>>()?;
    let services = PluginServices::sandboxed(plugin.name.clone(), "plugin-test", stage.sandbox, None);
    let mut source = SourceInstance::new(engine, plugin, stage.config, positions, services)?;
    let mut out = std::io::stdout().lock();
    let mut expected = args.expect.as_deref().map(Expected::read).transpose()?;
    let max = u32::try_from(args.batch_size.max(1)).unwrap_or(u32::MAX);
    let mut records = 0u64;
    for _ in 0..args.polls {
        let polled = source.poll(max)?;
        if polled.is_empty() {
            break;
        }
        for record in polled {
            records += 1;
            let line = json!({
                "topic": record.topic,
                "keys": record.keys,
                "tags": record.tags,
                "properties": record.properties.iter().map(|p| json!([p.key, p.value])).collect::<Vec<_>>(),
                "body": String::from_utf8_lossy(&record.body),
                "partition": record.partition,
                "position": record.position,
            });
            writeln!(out, "{line}")?;
            if let Some(expected) = expected.as_mut() {
                expected.check(&line)?;
            }
        }
    }
    eprintln!("{records} records");
    report_calls();
    if let Some(expected) = expected {
        expected.finish()?;
        eprintln!("output matches {}", expected.path.display());
    }
    Ok(())
}

/// Calls and traps per plugin of the run: a trap is retried on a fresh
/// instance, so the printed lines alone would not show it.
fn report_calls() {
    use std::sync::atomic::Ordering::Relaxed;
    for services in crate::plugin::live_plugins() {
        let f = services.figures();
        let traps = [&f.traps_deadline, &f.traps_memory, &f.traps_panic, &f.traps_other].map(|c| c.load(Relaxed));
        eprintln!(
            "{}: {} calls, {} traps (deadline {}, memory {}, panic {}, other {})",
            services.plugin,
            f.calls.load(Relaxed),
            traps.iter().sum::<u64>(),
            traps[0],
            traps[1],
            traps[2],
            traps[3]
        );
    }
}

/// `plugin test --expect FILE`: the lines the run must print, compared as
/// JSON values (so spacing and key order in the file do not matter).
struct Expected {
    path: PathBuf,
    lines: Vec<(usize, Value)>,
    next: usize,
}

impl Expected {
    fn read(path: &std::path::Path) -> Result<Expected> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the expected output {}", path.display()))?;
        let mut lines = Vec::new();
        for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let value: Value = serde_json::from_str(line)
                .with_context(|| format!("{}: line {} is not JSON", path.display(), number + 1))?;
            lines.push((number + 1, value));
        }
        Ok(Expected { path: path.to_path_buf(), lines, next: 0 })
    }

    fn check(&mut self, actual: &Value) -> Result<()> {
        let Some((number, want)) = self.lines.get(self.next) else {
            bail!("{} has {} lines, but the run printed more: {actual}", self.path.display(), self.lines.len());
        };
        if !json_equal(want, actual) {
            bail!("{} line {number}: expected {want}, got {actual}", self.path.display());
        }
        self.next += 1;
        Ok(())
    }

    fn finish(&self) -> Result<()> {
        if let Some((number, want)) = self.lines.get(self.next) {
            bail!("{} line {number}: expected {want}, but the run printed nothing more", self.path.display());
        }
        Ok(())
    }
}

/// Equal JSON, with numbers compared by value (19 and 19.0 are the same).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn sample_message(args: &TestArgs, number: usize, line: String) -> Message {
    Message {
        topic: args.topic.clone(),
        queue_id: 0,
        queue_offset: number as i64,
        born_timestamp: args.timestamp,
        store_timestamp: args.timestamp,
        message_id: None,
        keys: None,
        tags: None,
        properties: None,
        body: line.into_bytes(),
    }
}

fn failure_json(line: usize, failure: &MessageFailure) -> Value {
    json!({"line": line, "failure": {"stage": failure.stage, "kind": failure.kind, "message": failure.message}})
}

/// A row as a JSON object in column order.
pub fn row_json(cells: &[Cell], columns: &[Column]) -> Value {
    let mut object = Map::with_capacity(columns.len());
    for (cell, column) in cells.iter().zip(columns) {
        object.insert(column.name.clone(), cell_json(cell));
    }
    Value::Object(object)
}

/// A cell as JSON: dates as "yyyy-MM-dd", timestamps as epoch ms, NaN and
/// infinities as strings.
pub fn cell_json(cell: &Cell) -> Value {
    let float = |f: f64| {
        serde_json::Number::from_f64(f).map(Value::Number).unwrap_or_else(|| {
            Value::String(
                if f.is_nan() {
                    "NaN"
                } else if f > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .into(),
            )
        })
    };
    match cell {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(*b),
        Cell::Smallint(n) => json!(n),
        Cell::Int(n) => json!(n),
        Cell::Bigint(n) => json!(n),
        // Through f32's shortest text, so 0.1f32 prints as 0.1.
        Cell::Float(f) => float(f.to_string().parse::<f64>().unwrap_or(f64::NAN)),
        Cell::Double(f) => float(*f),
        Cell::String(s) => Value::String(s.clone()),
        Cell::Date(d) => Value::String(format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)),
        Cell::Timestamp(ms) => json!(ms),
    }
}
