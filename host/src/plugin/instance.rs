//! Warm plugin instances. Each (connector task, plugin) pair keeps one
//! instance alive across batches; a call that traps discards it, and the
//! next call builds a fresh one (and runs `init` again) from the
//! pre-linked component. Every call runs under the engine's deadline and
//! memory cap, and what a plugin returns is checked against the contract
//! before anyone uses it.

use super::bindings::{
    self, Cell, Column, ColumnType, Converted, FailureKind, Message, PluginError as GuestError, PluginInfo,
    RecordFailure, Row, RowBatch, SourcePosition, SourceRecord, TableSchema, Transformed,
};
use super::engine::{EPOCH_TICK, LoadedPlugin, PluginEngine, RolePre};
use super::error::{CallError, TrapKind};
use super::lift_budget::{Budgeted, OutputTooLarge, with_budget};
use super::sandbox::Limits;
use super::state::{PluginServices, PluginState};
use super::wasi::HostWaitDeadline;
use std::sync::Arc;
use wasmtime::component::{ComponentNamedList, Func, Instance, Lift, Lower};
use wasmtime::{Store, Trap, UpdateDeadline};

/// Plugin configuration as it crosses the boundary.
pub type PluginConfig = Vec<(String, String)>;

const CONVERTER_EXPORTS: &[&str] = &["init", "convert", "infer-schema"];
const TRANSFORM_EXPORTS: &[&str] = &["init", "process"];
const SINK_EXPORTS: &[&str] = &["init", "write", "flush"];
const SOURCE_EXPORTS: &[&str] = &["init", "poll"];

/// The functions an instance exports for its role, looked up once. Calls
/// go through them rather than the generated bindings so that results are
/// lifted within the plugin's output budget (`lift_budget`).
struct Exports {
    funcs: Vec<(&'static str, Func)>,
}

impl Exports {
    /// Instantiate `pre` and find `names` in its `interface` export.
    fn instantiate(
        pre: &wasmtime::component::InstancePre<PluginState>,
        store: &mut Store<PluginState>,
        interface: &str,
        names: &[&'static str],
    ) -> wasmtime::Result<Exports> {
        let instance = pre.instantiate(&mut *store)?;
        Exports::load(store, &instance, interface, names)
    }

    fn load(
        store: &mut Store<PluginState>,
        instance: &Instance,
        interface: &str,
        names: &[&'static str],
    ) -> wasmtime::Result<Exports> {
        let qualified = format!("{}/{interface}@{}", bindings::CONTRACT_PACKAGE, bindings::CONTRACT_VERSION);
        let scope = instance
            .get_export_index(&mut *store, None, &qualified)
            .ok_or_else(|| wasmtime::format_err!("no export {qualified}"))?;
        let mut funcs = Vec::with_capacity(names.len());
        for name in names {
            let func = instance
                .get_export_index(&mut *store, Some(&scope), name)
                .and_then(|index| instance.get_func(&mut *store, index))
                .ok_or_else(|| wasmtime::format_err!("no function {name} in {qualified}"))?;
            funcs.push((*name, func));
        }
        Ok(Exports { funcs })
    }

    /// Call export `name`; its result is charged to the plugin's output
    /// budget (its memory cap) before it is copied out.
    fn call<P, R>(&self, store: &mut Store<PluginState>, name: &str, params: P) -> wasmtime::Result<R>
    where
        P: ComponentNamedList + Lower,
        R: Lift + 'static,
    {
        let func = self
            .funcs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| wasmtime::format_err!("no function {name}"))?;
        let typed = func.typed::<P, (Budgeted<R>,)>(&*store)?;
        let budget = store.data().services.limits().memory_max_bytes as u64;
        let (Budgeted(result),) = with_budget(budget, || typed.call(&mut *store, params))?;
        Ok(result)
    }
}

struct Live<B> {
    store: Store<PluginState>,
    bindings: B,
}

/// The role-independent part: store creation, deadlines, trap handling.
struct Warm<B> {
    plugin: Arc<LoadedPlugin>,
    services: Arc<PluginServices>,
    engine: wasmtime::Engine,
    deadline_ticks: u64,
    live: Option<Live<B>>,
    /// Fresh instances created after the first (one per trap).
    recycled: u64,
}

impl<B> Warm<B> {
    fn new(engine: &PluginEngine, plugin: Arc<LoadedPlugin>, services: Arc<PluginServices>) -> Self {
        let timeout = services.limits().call_timeout;
        let deadline_ticks = timeout.as_millis().div_ceil(EPOCH_TICK.as_millis()).max(1) as u64;
        Warm { plugin, services, engine: engine.engine.clone(), deadline_ticks, live: None, recycled: 0 }
    }

    fn fresh_store(&self) -> Result<Store<PluginState>, CallError> {
        let state = PluginState::new(self.services.clone()).map_err(|e| CallError::Instantiate {
            plugin: self.plugin.name.clone(),
            reason: format!("cannot set up its grants: {e}"),
        })?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(self.deadline_ticks);
        // At the deadline, time spent waiting on the host (a SQL query)
        // is given back, up to the call's wall deadline; a plugin that
        // computes past it is interrupted.
        store.epoch_deadline_callback(|mut ctx| {
            let clock = &mut ctx.data_mut().clock;
            let waited = std::mem::take(&mut clock.host_wait);
            let left = clock.wall_deadline().saturating_duration_since(std::time::Instant::now());
            let ticks = waited.min(left).as_millis().div_ceil(EPOCH_TICK.as_millis()) as u64;
            Ok(if ticks > 0 { UpdateDeadline::Continue(ticks) } else { UpdateDeadline::Interrupt })
        });
        Ok(store)
    }

    /// Run `call` on the live instance, creating it first with `create`
    /// (instantiate + init) when there is none.
    fn call<R>(
        &mut self,
        create: impl FnOnce(&RolePre, &mut Store<PluginState>) -> wasmtime::Result<Result<B, GuestError>>,
        call: impl FnOnce(&B, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        if self.live.is_none() {
            let mut store = self.fresh_store()?;
            store.data_mut().start_call();
            let bindings = match create(&self.plugin.pre, &mut store) {
                Ok(Ok(bindings)) => bindings,
                Ok(Err(guest)) => return Err(CallError::from_guest(&self.plugin.name, guest)),
                Err(e) => {
                    let error = classify(&self.plugin.name, self.services.limits(), e, &store);
                    self.record(&store, Some(&error));
                    return Err(error);
                }
            };
            self.live = Some(Live { store, bindings });
        }
        let Some(live) = self.live.as_mut() else {
            return Err(CallError::Instantiate { plugin: self.plugin.name.clone(), reason: "no instance".into() });
        };
        live.store.set_epoch_deadline(self.deadline_ticks);
        live.store.data_mut().start_call();
        match call(&live.bindings, &mut live.store) {
            Ok(result) => {
                let (services, data) = (&self.services, live.store.data());
                services.record_call(data.clock.started.elapsed(), None, data.limiter.memory_high_water);
                Ok(result)
            }
            Err(e) => {
                let error = classify(&self.plugin.name, self.services.limits(), e, &live.store);
                let store = &live.store;
                self.services.record_call(
                    store.data().clock.started.elapsed(),
                    trap_kind(&error),
                    store.data().limiter.memory_high_water,
                );
                // A trapped instance is poisoned; the next call gets a fresh one.
                self.live = None;
                self.recycled += 1;
                tracing::warn!(plugin = %self.plugin.name, connector = %self.services.connector, "{error}");
                Err(error)
            }
        }
    }

    fn record(&self, store: &Store<PluginState>, error: Option<&CallError>) {
        let data = store.data();
        self.services.record_call(
            data.clock.started.elapsed(),
            error.and_then(trap_kind),
            data.limiter.memory_high_water,
        );
    }
}

fn trap_kind(error: &CallError) -> Option<TrapKind> {
    match error {
        CallError::Trap { kind, .. } => Some(*kind),
        _ => None,
    }
}

fn classify(plugin: &str, limits: &Limits, error: wasmtime::Error, store: &Store<PluginState>) -> CallError {
    let stderr = store.data().stderr.contents();
    let panic_line = store.data().stderr.panic_line();
    let text = format!("{error:#}");
    let waited = error.downcast_ref::<HostWaitDeadline>().map(|w| w.import);
    if let Some(too_large) = error.downcast_ref::<OutputTooLarge>() {
        return CallError::Trap {
            plugin: plugin.to_string(),
            kind: TrapKind::MemoryLimit,
            detail: format!("{too_large} (the budget is the plugin's memory cap, plugin.memory.max.bytes)"),
        };
    }
    let kind = match error.downcast_ref::<Trap>() {
        _ if waited.is_some() => TrapKind::Deadline,
        Some(Trap::Interrupt) => TrapKind::Deadline,
        _ if text.contains("forcing trap when growing memory") => TrapKind::MemoryLimit,
        _ if stderr.contains("panicked at") || panic_line.is_some() => TrapKind::Panic,
        _ if stderr.contains("memory allocation of") => TrapKind::MemoryLimit,
        Some(_) => TrapKind::Other,
        None if text.contains("instantiat") => {
            return CallError::Instantiate { plugin: plugin.to_string(), reason: text };
        }
        None if text.contains("table growth") || text.contains("resource limit exceeded") => TrapKind::MemoryLimit,
        None => TrapKind::Other,
    };
    let mut detail = match (kind, waited) {
        (TrapKind::Deadline, Some(import)) => format!(
            "call waited in {import} past its {} ms deadline (plugin.call.timeout.ms) and was stopped",
            limits.call_timeout.as_millis()
        ),
        (TrapKind::Deadline, None) => format!(
            "call ran longer than {} ms (plugin.call.timeout.ms; at most {} ms with host waits, plugin.call.max.wall.ms) and was stopped",
            limits.call_timeout.as_millis(),
            limits.call_max_wall.as_millis()
        ),
        (TrapKind::MemoryLimit, _) => format!(
            "instance needed more than its {} byte memory cap (plugin.memory.max.bytes) or more memories, tables or instances than a plugin may have: {}",
            limits.memory_max_bytes,
            text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(&text).trim()
        ),
        // The trap itself ("wasm trap: wasm `unreachable` instruction
        // executed"), not the backtrace header that leads the chain.
        _ => match error.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(&text).trim().to_string(),
        },
    };
    if !stderr.is_empty() {
        let mut tail: Vec<&str> = stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
        // Go prints the panic first and its stack trace after: keep the
        // line that says what happened.
        if let Some(line) = panic_line.as_deref()
            && !tail.iter().any(|l| l.trim() == line)
        {
            tail.insert(0, line);
            tail.insert(1, "…");
        }
        detail.push_str(&format!("; plugin stderr: {}", tail.join(" | ")));
    }
    CallError::Trap { plugin: plugin.to_string(), kind, detail }
}

fn contract(plugin: &LoadedPlugin, reason: String) -> CallError {
    CallError::Contract { plugin: plugin.name.clone(), reason }
}

fn wrong_role(plugin: &LoadedPlugin, want: &str) -> wasmtime::Error {
    wasmtime::format_err!("plugin {} is a {}, not a {want}", plugin.name, plugin.role)
}

/// Check a row against `columns`: arity, and each cell of the column's type
/// or NULL where allowed. `Err` says what is wrong, naming the column.
pub fn check_row(row: &Row, columns: &[Column]) -> Result<(), String> {
    if row.cells.len() != columns.len() {
        return Err(format!("row has {} cells, the schema has {} columns", row.cells.len(), columns.len()));
    }
    for (cell, column) in row.cells.iter().zip(columns) {
        let fits = match (cell, column.type_) {
            (Cell::Null, _) => column.nullable,
            (Cell::Bool(_), ColumnType::Bool)
            | (Cell::Smallint(_), ColumnType::Smallint)
            | (Cell::Int(_), ColumnType::Int)
            | (Cell::Bigint(_), ColumnType::Bigint)
            | (Cell::Float(_), ColumnType::Float)
            | (Cell::Double(_), ColumnType::Double)
            | (Cell::String(_), ColumnType::String)
            | (Cell::Date(_), ColumnType::Date)
            | (Cell::Timestamp(_), ColumnType::Timestamp) => true,
            _ => false,
        };
        if !fits {
            return Err(format!(
                "column \"{}\" ({}{}) got {}",
                column.name,
                column_type_name(column.type_),
                if column.nullable { "" } else { " NOT NULL" },
                cell_description(cell)
            ));
        }
    }
    Ok(())
}

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

fn cell_description(cell: &Cell) -> String {
    match cell {
        Cell::Null => "NULL".into(),
        Cell::Bool(v) => format!("bool {v}"),
        Cell::Smallint(v) => format!("smallint {v}"),
        Cell::Int(v) => format!("int {v}"),
        Cell::Bigint(v) => format!("bigint {v}"),
        Cell::Float(v) => format!("float {v}"),
        Cell::Double(v) => format!("double {v}"),
        Cell::String(v) => format!("string {v:?}"),
        Cell::Date(d) => format!("date {}-{}-{}", d.year, d.month, d.day),
        Cell::Timestamp(v) => format!("timestamp {v}"),
    }
}

/// Rows that break the schema become failures of their source record: a
/// plugin bug costs those records (dead-lettered with the reason), not the
/// batch.
fn quarantine_bad_rows(
    plugin: &LoadedPlugin,
    rows: &mut Vec<Row>,
    failures: &mut Vec<RecordFailure>,
    columns: &[Column],
    failure_index: impl Fn(&Row) -> u32,
) {
    rows.retain(|row| match check_row(row, columns) {
        Ok(()) => true,
        Err(reason) => {
            failures.push(RecordFailure {
                index: failure_index(row),
                kind: FailureKind::Rejected,
                message: format!("plugin {} broke the schema: {reason}", plugin.name),
            });
            false
        }
    });
}

/// A warm converter instance.
pub struct ConverterInstance {
    warm: Warm<Exports>,
    config: PluginConfig,
    target: TableSchema,
    info: PluginInfo,
}

impl ConverterInstance {
    /// Instantiate and `init` now, so a bad config fails the connector at start.
    pub fn new(
        engine: &PluginEngine,
        plugin: Arc<LoadedPlugin>,
        config: PluginConfig,
        target: TableSchema,
        services: Arc<PluginServices>,
    ) -> Result<Self, CallError> {
        let mut instance = ConverterInstance {
            warm: Warm::new(engine, plugin, services),
            config,
            target,
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                max_batch: None,
                needs: bindings::Needs::empty(),
            },
        };
        let ((), fresh) = instance.with_instance(|_, _| Ok(()))?;
        if let Some(info) = fresh {
            instance.info = info;
        }
        Ok(instance)
    }

    /// Run `call` on a ready instance; returns the `PluginInfo` when `init` ran.
    fn with_instance<R>(
        &mut self,
        call: impl FnOnce(&Exports, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<(R, Option<PluginInfo>), CallError> {
        let mut fresh_info = None;
        let (config, target) = (&self.config, &self.target);
        let plugin = self.warm.plugin.clone();
        let result = self.warm.call(
            |pre, store| {
                let RolePre::Converter(pre) = pre else {
                    return Err(wrong_role(&plugin, "converter"));
                };
                let exports = Exports::instantiate(pre.instance_pre(), store, "converter", CONVERTER_EXPORTS)?;
                let init: Result<PluginInfo, GuestError> = exports.call(store, "init", (config.as_slice(), target))?;
                Ok(init.map(|info| {
                    fresh_info = Some(info);
                    exports
                }))
            },
            call,
        )?;
        Ok((result, fresh_info))
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    pub fn plugin(&self) -> &LoadedPlugin {
        &self.warm.plugin
    }

    /// Instances created after a trap so far.
    pub fn recycled(&self) -> u64 {
        self.warm.recycled
    }

    /// Convert a batch. Whole-batch errors and traps are `Err`; rows that
    /// break the target schema come back as failures of their message.
    pub fn convert(&mut self, batch: &[Message]) -> Result<Converted, CallError> {
        let (result, fresh_info) =
            self.with_instance(|e, store| e.call::<_, Result<Converted, GuestError>>(store, "convert", (batch,)))?;
        if let Some(info) = fresh_info {
            self.info = info;
        }
        let mut converted = result.map_err(|e| CallError::from_guest(&self.warm.plugin.name, e))?;
        let plugin = &self.warm.plugin;
        let len = batch.len() as u32;
        if let Some(row) = converted.rows.iter().find(|r| r.source_index >= len) {
            return Err(contract(
                plugin,
                format!("row source-index {} is outside the batch of {len}", row.source_index),
            ));
        }
        if let Some(f) = converted.failures.iter().find(|f| f.index >= len) {
            return Err(contract(plugin, format!("failure index {} is outside the batch of {len}", f.index)));
        }
        quarantine_bad_rows(plugin, &mut converted.rows, &mut converted.failures, &self.target.columns, |r| {
            r.source_index
        });
        Ok(converted)
    }

    /// The columns `sample` would want (`auto.create`), from a short-lived instance.
    pub fn infer_schema(
        engine: &PluginEngine,
        plugin: Arc<LoadedPlugin>,
        config: &PluginConfig,
        sample: &Message,
        services: Arc<PluginServices>,
    ) -> Result<Vec<Column>, CallError> {
        let mut warm: Warm<Exports> = Warm::new(engine, plugin.clone(), services);
        let result = warm.call(
            |pre, store| {
                let RolePre::Converter(pre) = pre else {
                    return Err(wrong_role(&plugin, "converter"));
                };
                Exports::instantiate(pre.instance_pre(), store, "converter", CONVERTER_EXPORTS).map(Ok)
            },
            |e, store| e.call::<_, Result<Vec<Column>, GuestError>>(store, "infer-schema", (config.as_slice(), sample)),
        )?;
        result.map_err(|e| CallError::from_guest(&plugin.name, e))
    }
}

/// A warm transform instance.
pub struct TransformInstance {
    warm: Warm<Exports>,
    config: PluginConfig,
    output: Vec<Column>,
    input: Vec<Column>,
    info: PluginInfo,
}

impl TransformInstance {
    /// Instantiate and `init` with the schema this transform must produce;
    /// `input()` then tells what it needs from upstream.
    pub fn new(
        engine: &PluginEngine,
        plugin: Arc<LoadedPlugin>,
        config: PluginConfig,
        output: Vec<Column>,
        services: Arc<PluginServices>,
    ) -> Result<Self, CallError> {
        let mut instance = TransformInstance {
            warm: Warm::new(engine, plugin, services),
            config,
            output,
            input: Vec::new(),
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                max_batch: None,
                needs: bindings::Needs::empty(),
            },
        };
        let ((), fresh) = instance.with_instance(|_, _| Ok(()))?;
        if let Some(info) = fresh {
            instance.input = info.input;
            instance.info = info.info;
        }
        Ok(instance)
    }

    fn with_instance<R>(
        &mut self,
        call: impl FnOnce(&Exports, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<(R, Option<bindings::TransformInfo>), CallError> {
        let mut fresh_info = None;
        let (config, output) = (&self.config, &self.output);
        let plugin = self.warm.plugin.clone();
        let result = self.warm.call(
            |pre, store| {
                let RolePre::Transform(pre) = pre else {
                    return Err(wrong_role(&plugin, "transform"));
                };
                let exports = Exports::instantiate(pre.instance_pre(), store, "transform", TRANSFORM_EXPORTS)?;
                let init: Result<bindings::TransformInfo, GuestError> =
                    exports.call(store, "init", (config.as_slice(), output.as_slice()))?;
                Ok(init.map(|info| {
                    fresh_info = Some(info);
                    exports
                }))
            },
            call,
        )?;
        Ok((result, fresh_info))
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    pub fn plugin(&self) -> &LoadedPlugin {
        &self.warm.plugin
    }

    /// The columns this transform needs as input.
    pub fn input(&self) -> &[Column] {
        &self.input
    }

    pub fn output(&self) -> &[Column] {
        &self.output
    }

    /// Process a batch; failures index `batch.rows`.
    pub fn process(&mut self, batch: &RowBatch) -> Result<Transformed, CallError> {
        let (result, fresh) =
            self.with_instance(|e, store| e.call::<_, Result<Transformed, GuestError>>(store, "process", (batch,)))?;
        if let Some(fresh) = fresh
            && fresh.input != self.input
        {
            return Err(contract(&self.warm.plugin, "init after a restart asked for a different input schema".into()));
        }
        let mut transformed = result.map_err(|e| CallError::from_guest(&self.warm.plugin.name, e))?;
        let plugin = &self.warm.plugin;
        let len = batch.rows.len() as u32;
        if let Some(f) = transformed.failures.iter().find(|f| f.index >= len) {
            return Err(contract(plugin, format!("failure index {} is outside the batch of {len} rows", f.index)));
        }
        let known: std::collections::HashMap<u32, u32> =
            batch.rows.iter().enumerate().map(|(i, r)| (r.source_index, i as u32)).collect();
        if let Some(row) = transformed.rows.iter().find(|r| !known.contains_key(&r.source_index)) {
            return Err(contract(
                plugin,
                format!("output row has source-index {}, which no input row had", row.source_index),
            ));
        }
        quarantine_bad_rows(plugin, &mut transformed.rows, &mut transformed.failures, &self.output, |r| {
            known.get(&r.source_index).copied().unwrap_or(0)
        });
        Ok(transformed)
    }
}

/// A warm sink instance.
pub struct SinkInstance {
    warm: Warm<Exports>,
    config: PluginConfig,
    schema: TableSchema,
}

impl SinkInstance {
    pub fn new(
        engine: &PluginEngine,
        plugin: Arc<LoadedPlugin>,
        config: PluginConfig,
        schema: TableSchema,
        services: Arc<PluginServices>,
    ) -> Result<Self, CallError> {
        let mut instance = SinkInstance { warm: Warm::new(engine, plugin, services), config, schema };
        instance.call(|_, _| Ok(()))?;
        Ok(instance)
    }

    fn call<R>(
        &mut self,
        call: impl FnOnce(&Exports, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let (config, schema) = (&self.config, &self.schema);
        let plugin = self.warm.plugin.clone();
        self.warm.call(
            |pre, store| {
                let RolePre::Sink(pre) = pre else {
                    return Err(wrong_role(&plugin, "sink"));
                };
                let exports = Exports::instantiate(pre.instance_pre(), store, "sink", SINK_EXPORTS)?;
                let init: Result<PluginInfo, GuestError> = exports.call(store, "init", (config.as_slice(), schema))?;
                Ok(init.map(|_| exports))
            },
            call,
        )
    }

    /// Write a batch; failures name rows that can never be written.
    pub fn write(&mut self, batch: &RowBatch) -> Result<Vec<RecordFailure>, CallError> {
        let plugin = self.warm.plugin.clone();
        let failures = self
            .call(|e, store| e.call::<_, Result<Vec<RecordFailure>, GuestError>>(store, "write", (batch,)))?
            .map_err(|e| CallError::from_guest(&plugin.name, e))?;
        let len = batch.rows.len() as u32;
        match failures.iter().find(|f| f.index >= len) {
            Some(f) => Err(contract(&plugin, format!("failure index {} is outside the batch of {len} rows", f.index))),
            None => Ok(failures),
        }
    }

    pub fn flush(&mut self) -> Result<(), CallError> {
        let plugin = self.warm.plugin.clone();
        self.call(|e, store| e.call::<_, Result<(), GuestError>>(store, "flush", ()))?
            .map_err(|e| CallError::from_guest(&plugin.name, e))
    }
}

/// A warm source instance.
pub struct SourceInstance {
    warm: Warm<Exports>,
    config: PluginConfig,
    positions: Vec<SourcePosition>,
}

impl SourceInstance {
    pub fn new(
        engine: &PluginEngine,
        plugin: Arc<LoadedPlugin>,
        config: PluginConfig,
        positions: Vec<SourcePosition>,
        services: Arc<PluginServices>,
    ) -> Result<Self, CallError> {
        let mut instance = SourceInstance { warm: Warm::new(engine, plugin, services), config, positions };
        instance.call(|_, _| Ok(()))?;
        Ok(instance)
    }

    /// After a restart, `init` must see the positions acknowledged since.
    pub fn set_positions(&mut self, positions: Vec<SourcePosition>) {
        self.positions = positions;
    }

    fn call<R>(
        &mut self,
        call: impl FnOnce(&Exports, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let (config, positions) = (&self.config, &self.positions);
        let plugin = self.warm.plugin.clone();
        self.warm.call(
            |pre, store| {
                let RolePre::Source(pre) = pre else {
                    return Err(wrong_role(&plugin, "source"));
                };
                let exports = Exports::instantiate(pre.instance_pre(), store, "source", SOURCE_EXPORTS)?;
                let init: Result<PluginInfo, GuestError> =
                    exports.call(store, "init", (config.as_slice(), positions.as_slice()))?;
                Ok(init.map(|_| exports))
            },
            call,
        )
    }

    pub fn poll(&mut self, max: u32) -> Result<Vec<SourceRecord>, CallError> {
        let plugin = self.warm.plugin.clone();
        self.call(|e, store| e.call::<_, Result<Vec<SourceRecord>, GuestError>>(store, "poll", (max,)))?
            .map_err(|e| CallError::from_guest(&plugin.name, e))
    }
}
