//! The process-wide wasmtime engine: its configuration, the epoch ticker
//! that enforces call deadlines, the linker with the host imports, and the
//! loading and checking of components.

use super::bindings::{self, CONTRACT_PACKAGE, CONTRACT_VERSION};
use super::cache::{CacheOutcome, CompileCache};
use super::error::LoadError;
use super::state::PluginState;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

/// How often the epoch advances; deadlines are rounded up to it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Places of the plugin runtime. Limits are per plugin (its
/// [`Sandbox`](super::sandbox::Sandbox)), not per engine.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig { cache_dir: default_cache_dir() }
    }
}

/// `$XDG_CACHE_HOME/rmq-openmldb/components`, or `~/.cache/...`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("rmq-openmldb").join("components"))
}

/// The role a component plays, named after the interface it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Converter,
    Transform,
    Sink,
    Source,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Converter, Role::Transform, Role::Sink, Role::Source];

    pub fn name(self) -> &'static str {
        match self {
            Role::Converter => "converter",
            Role::Transform => "transform",
            Role::Sink => "sink",
            Role::Source => "source",
        }
    }

    /// The export a component of this role must have.
    pub fn interface(self) -> String {
        format!("{CONTRACT_PACKAGE}/{}@{CONTRACT_VERSION}", self.name())
    }

    fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a component comes from.
#[derive(Debug, Clone)]
pub enum PluginOrigin {
    /// Shipped inside the host binary.
    Builtin { name: &'static str, bytes: &'static [u8] },
    /// A `.wasm` file (from the plugins folder or given on the command line).
    File(PathBuf),
    /// A plugins-folder file as it was when last validated.
    Pinned { path: PathBuf, bytes: Arc<[u8]> },
}

impl PluginOrigin {
    /// How errors and listings name it.
    pub fn describe(&self) -> String {
        match self {
            PluginOrigin::Builtin { name, .. } => format!("built-in plugin \"{name}\""),
            PluginOrigin::File(path) | PluginOrigin::Pinned { path, .. } => path.display().to_string(),
        }
    }
}

/// The role-specific pre-instantiated form of a component.
pub(crate) enum RolePre {
    Converter(bindings::converter::ConverterPluginPre<PluginState>),
    Transform(bindings::transform::TransformPluginPre<PluginState>),
    Sink(bindings::sink::SinkPluginPre<PluginState>),
    Source(bindings::source::SourcePluginPre<PluginState>),
}

/// A checked, compiled and linked component, ready to instantiate.
pub struct LoadedPlugin {
    /// Built-in name, or the file stem.
    pub name: String,
    pub origin: PluginOrigin,
    pub role: Role,
    /// SHA-256 of the component bytes.
    pub content_hash: String,
    pub size_bytes: usize,
    pub cache: CacheOutcome,
    /// Time to read, compile or deserialize, and link.
    pub load_time: Duration,
    pub(crate) component: Component,
    pub(crate) pre: RolePre,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("origin", &self.origin.describe())
            .finish()
    }
}

/// Advances the engine's epoch every tick until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One per process: compiles, checks and links plugins.
pub struct PluginEngine {
    pub(crate) engine: Engine,
    linker: Linker<PluginState>,
    pub(crate) config: RuntimeConfig,
    cache: CompileCache,
    _ticker: EpochTicker,
}

impl PluginEngine {
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let engine_error = |reason: String| LoadError::Unlinkable { origin: "plugin engine".into(), reason };
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            // Sync exports only: component-model concurrency triples call cost.
            .concurrency_support(false)
            .parallel_compilation(true);
        let engine = Engine::new(&wasm).map_err(|e| engine_error(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        super::wasi::add_to_linker(&mut linker).map_err(|e| engine_error(format!("{e:#}")))?;
        bindings::converter::ConverterPlugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)
            .map_err(|e| engine_error(format!("{e:#}")))?;
        bindings::sql::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)
            .map_err(|e| engine_error(format!("{e:#}")))?;
        let cache = CompileCache::new(&engine, config.cache_dir.clone());
        let ticker = EpochTicker::start(engine.clone()).map_err(|e| engine_error(format!("epoch thread: {e}")))?;
        Ok(PluginEngine { engine, linker, config, cache, _ticker: ticker })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Load, check and link a component. With `expected`, a component of
    /// another role is refused.
    pub fn load(&self, origin: PluginOrigin, expected: Option<Role>) -> Result<Arc<LoadedPlugin>, LoadError> {
        let started = Instant::now();
        let described = origin.describe();
        let (name, bytes): (String, std::borrow::Cow<'static, [u8]>) = match &origin {
            PluginOrigin::Builtin { name, bytes } => (name.to_string(), (*bytes).into()),
            PluginOrigin::File(path) => {
                let bytes =
                    std::fs::read(path).map_err(|source| LoadError::Read { origin: described.clone(), source })?;
                let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                (name, bytes.into())
            }
            PluginOrigin::Pinned { path, bytes } => {
                let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                (name, bytes.to_vec().into())
            }
        };
        if is_core_module(&bytes) {
            return Err(LoadError::NotAComponent {
                origin: described,
                reason: "this is a core WebAssembly module; plugins must be components (build for wasm32-wasip2, or run `wasm-tools component new`)".into(),
            });
        }
        let content_hash = CompileCache::content_hash(&bytes);
        let (component, cache) = self.cache.load_or_compile(&self.engine, &described, &bytes, &content_hash)?;
        let role = self.role_of(&component, &described, expected)?;
        let pre = self.link(&component, role, &described)?;
        let loaded = LoadedPlugin {
            name,
            origin,
            role,
            content_hash,
            size_bytes: bytes.len(),
            cache,
            load_time: started.elapsed(),
            component,
            pre,
        };
        tracing::debug!(plugin = %loaded.name, role = %role, cache = ?cache, ms = loaded.load_time.as_secs_f64() * 1e3, "plugin loaded");
        Ok(Arc::new(loaded))
    }

    /// The role of a component, from its exports, checked against `expected`
    /// and the contract version.
    fn role_of(&self, component: &Component, origin: &str, expected: Option<Role>) -> Result<Role, LoadError> {
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&self.engine).map(|(name, _)| name.to_string()).collect();
        let mut roles = Vec::new();
        let mut other_versions = Vec::new();
        for export in &exports {
            let Some(rest) = export.strip_prefix(&format!("{CONTRACT_PACKAGE}/")) else {
                continue;
            };
            let (iface, version) = rest.split_once('@').unwrap_or((rest, "unversioned"));
            match Role::from_name(iface) {
                Some(role) if version == CONTRACT_VERSION => roles.push(role),
                Some(_) => other_versions.push(export.clone()),
                None => {}
            }
        }
        let found = match (roles.as_slice(), other_versions.first()) {
            ([role], _) => match expected {
                Some(want) if want != *role => format!("exports {} (a {role})", role.interface()),
                _ => return Ok(*role),
            },
            ([], Some(other)) => {
                return Err(LoadError::IncompatibleVersion {
                    origin: origin.to_string(),
                    found: other.clone(),
                    supported: CONTRACT_VERSION.to_string(),
                });
            }
            ([], None) if exports.is_empty() => "exports nothing".to_string(),
            ([], None) => format!("exports no {CONTRACT_PACKAGE} interface (its exports: {})", exports.join(", ")),
            (many, _) => {
                let names: Vec<&str> = many.iter().map(|r| r.name()).collect();
                format!("exports several roles ({}); a plugin must have exactly one", names.join(", "))
            }
        };
        let expected = expected.map(|r| r.name().to_string()).unwrap_or_else(|| "plugin".into());
        let expected_interface = match Role::from_name(&expected) {
            Some(role) => role.interface(),
            None => format!("one of {CONTRACT_PACKAGE}/{{converter,transform,sink,source}}@{CONTRACT_VERSION}"),
        };
        Err(LoadError::WrongWorld { origin: origin.to_string(), expected, expected_interface, found })
    }

    fn link(&self, component: &Component, role: Role, origin: &str) -> Result<RolePre, LoadError> {
        let unlinkable = |e: wasmtime::Error| LoadError::Unlinkable {
            origin: origin.to_string(),
            reason: explain_link_error(&format!("{e:#}")),
        };
        let pre = self.linker.instantiate_pre(component).map_err(unlinkable)?;
        Ok(match role {
            Role::Converter => {
                RolePre::Converter(bindings::converter::ConverterPluginPre::new(pre).map_err(unlinkable)?)
            }
            Role::Transform => {
                RolePre::Transform(bindings::transform::TransformPluginPre::new(pre).map_err(unlinkable)?)
            }
            Role::Sink => RolePre::Sink(bindings::sink::SinkPluginPre::new(pre).map_err(unlinkable)?),
            Role::Source => RolePre::Source(bindings::source::SourcePluginPre::new(pre).map_err(unlinkable)?),
        })
    }
}

/// A core module starts with the magic and version 1; a component with the
/// magic and layer 1 (`0d 00 01 00`).
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Say what a link failure means for a plugin author.
fn explain_link_error(raw: &str) -> String {
    if raw.contains("matching implementation was not found") {
        let hint = if raw.contains("wasi:http") {
            " (a JavaScript plugin built with componentize-js needs `-d http fetch-event`)"
        } else {
            ""
        };
        format!("imports something this host does not provide{hint}: {raw}")
    } else if raw.contains("type mismatch") || raw.contains("expected") {
        format!("its exports do not match the contract rmq-openmldb:plugin@{CONTRACT_VERSION}: {raw}")
    } else {
        raw.to_string()
    }
}

impl LoadedPlugin {
    /// Import and export names of the component (for `plugin inspect`).
    pub fn interface_names(&self, engine: &PluginEngine) -> (Vec<String>, Vec<String>) {
        let ty = self.component.component_type();
        let imports = ty.imports(&engine.engine).map(|(n, _)| n.to_string()).collect();
        let exports = ty.exports(&engine.engine).map(|(n, _)| n.to_string()).collect();
        (imports, exports)
    }
}
