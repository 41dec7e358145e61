//! Hot reload: the worker watches its plugins folder. A new or changed
//! `.wasm` is validated and compiled first; only then is it pinned in the
//! catalog and the connectors that use it restarted gracefully (their
//! tasks finish the batch in hand and commit, and the new tasks load the
//! new version), so no message is converted by a half-loaded plugin. An
//! invalid file is refused with its error while the last good version keeps
//! running. A removed plugin pauses the connectors that need it, with a
//! status that says why; when it comes back they run again.
//!
//! In a cluster, a connector is pinned to the exact plugins of the worker
//! it was put on ([`PluginPins`]): a worker whose file differs holds the
//! connector (its tasks leave the consumer group, the status names both
//! versions) until it has that exact file again, or the config is put again
//! to pin the version now in the folders.

use super::store::TargetState;
use super::{Worker, lock};
use crate::connector::{ConnectorDefinition, ConnectorKind, SinkSettings, SourceSettings};
use crate::plugin::{CompileCache, PluginCatalog, PluginOrigin};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the folder is looked at.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// What the watcher knows of each file, by plugin name (file stem).
#[derive(Debug, Default)]
pub(super) struct FolderState {
    files: Mutex<BTreeMap<String, FileState>>,
}

#[derive(Debug, Clone)]
struct FileState {
    /// Size and modification time: a file whose metadata is unchanged is
    /// not read again (a Python component is 17 MiB).
    len: u64,
    modified: Option<std::time::SystemTime>,
    content_hash: String,
    /// Why the file's current content cannot be used (the pinned version,
    /// if any, keeps running).
    error: Option<String>,
}

/// What a rescan found for one plugin name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderChange {
    /// A new or changed file that validated; now pinned.
    Updated(String),
    /// A file whose new content was refused.
    Refused { name: String, error: String },
    /// The file is gone.
    Removed(String),
}

/// Plugin name → the exact version a connector runs: `sha256:<hex>` of a
/// plugins-folder file, or `builtin` for a plugin compiled into the host
/// (any version of the host's built-in, so a rolling upgrade of the host
/// does not hold every connector).
pub type PluginPins = BTreeMap<String, String>;

/// The plugins a connector's tasks load, by name.
pub fn plugins_of(definition: &ConnectorDefinition, namesrv: &str) -> Vec<String> {
    match definition.kind {
        ConnectorKind::Sink => match SinkSettings::from_definition(definition, namesrv) {
            Ok(s) => s.plugins().into_iter().map(|(plugin, _)| plugin).collect(),
            Err(_) => Vec::new(),
        },
        ConnectorKind::Source => match SourceSettings::for_tasks(definition, namesrv) {
            Ok(s) => s.into_iter().take(1).map(|s| s.plugin).collect(),
            Err(_) => Vec::new(),
        },
    }
}

impl Worker {
    /// Cluster mode: what each of the connector's plugins resolves to on
    /// this worker (standalone: nothing is pinned).
    pub(super) fn plugin_pins(&self, definition: &ConnectorDefinition) -> PluginPins {
        if self.config.cluster.is_none() {
            return PluginPins::new();
        }
        let catalog = &self.environment.catalog;
        plugins_of(definition, &self.config.namesrv_addr)
            .into_iter()
            .filter_map(|plugin| {
                let pin = match catalog.resolve(&plugin).ok()? {
                    PluginOrigin::Builtin { .. } => "builtin".to_string(),
                    PluginOrigin::Pinned { bytes, .. } => format!("sha256:{}", CompileCache::content_hash(&bytes)),
                    PluginOrigin::File(path) => {
                        format!("sha256:{}", CompileCache::content_hash(&std::fs::read(path).ok()?))
                    }
                };
                Some((plugin, pin))
            })
            .collect()
    }

    /// Why this worker cannot run a connector pinned to `pins`: the first
    /// plugin whose version here is another.
    pub(super) fn pin_mismatch(&self, definition: &ConnectorDefinition, pins: &PluginPins) -> Option<String> {
        if pins.is_empty() {
            return None;
        }
        let here = self.plugin_pins(definition);
        pins.iter().find_map(|(plugin, pinned)| {
            let local = here.get(plugin).map(String::as_str).unwrap_or("missing");
            (local != pinned).then(|| {
                format!(
                    "held: plugin \"{plugin}\" on this worker is {}, but the connector runs {} (pinned where it \
                     was put); its tasks left the consumer group to workers that have it; copy that exact file \
                     here, or put the config again to pin the version now in the plugins folder",
                    short_pin(local),
                    short_pin(pinned)
                )
            })
        })
    }

    /// Errors of folder files whose content was refused, by file name.
    pub fn refused_plugins(&self) -> BTreeMap<String, String> {
        lock(&self.plugin_folder.files)
            .iter()
            .filter_map(|(name, state)| state.error.clone().map(|e| (name.clone(), e)))
            .collect()
    }

    /// Look at the folder now: validate what is new or changed, pin it,
    /// and restart, pause or resume the connectors concerned.
    pub async fn rescan_plugins(&self) -> Vec<FolderChange> {
        let _changing = self.changes.lock().await;
        let changes = self.scan_folder();
        for change in &changes {
            match change {
                FolderChange::Updated(name) => {
                    tracing::info!(plugin = %name, "plugin updated in the plugins folder");
                    for connector in self.connectors_using(name) {
                        match self.pin_mismatch_of(&connector) {
                            Some(reason) => self.hold(&connector, reason).await,
                            None => self.release_and_restart(&connector).await,
                        }
                    }
                }
                FolderChange::Refused { name, error } => {
                    tracing::error!(plugin = %name, "plugin file refused; the last good version keeps running: {error}");
                }
                FolderChange::Removed(name) => {
                    let builtin = PluginCatalog::builtin(name).is_some();
                    tracing::warn!(plugin = %name, builtin, "plugin removed from the plugins folder");
                    for connector in self.connectors_using(name) {
                        let mismatch = self.pin_mismatch_of(&connector);
                        if builtin && mismatch.is_none() {
                            // The built-in of that name takes over.
                            self.release_and_restart(&connector).await;
                        } else {
                            let reason = mismatch.unwrap_or_else(|| self.removed_reason(name));
                            self.hold(&connector, reason).await;
                        }
                    }
                }
            }
        }
        changes
    }

    /// Validate and pin what changed in the folder (no connector touched).
    pub(super) fn scan_folder(&self) -> Vec<FolderChange> {
        let catalog = &self.environment.catalog;
        let files = match catalog.folder_files() {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!("cannot list the plugins folder: {e}");
                return Vec::new();
            }
        };
        let mut changes = Vec::new();
        let mut seen = Vec::new();
        for path in files {
            let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else { continue };
            seen.push(name.clone());
            let Ok(metadata) = std::fs::metadata(&path) else { continue };
            let (len, modified) = (metadata.len(), metadata.modified().ok());
            let known = lock(&self.plugin_folder.files).get(&name).cloned();
            if known.as_ref().is_some_and(|k| k.len == len && k.modified == modified) {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let content_hash = CompileCache::content_hash(&bytes);
            if let Some(known) = known.filter(|k| k.content_hash == content_hash) {
                // Touched, not changed.
                lock(&self.plugin_folder.files).insert(name, FileState { len, modified, ..known });
                continue;
            }
            let bytes: Arc<[u8]> = bytes.into();
            let origin = PluginOrigin::Pinned { path: path.clone(), bytes: bytes.clone() };
            let checked = tokio::task::block_in_place(|| self.environment.engine.load(origin, None));
            let error = match checked {
                Ok(_) => {
                    catalog.pin(&name, path.clone(), bytes);
                    changes.push(FolderChange::Updated(name.clone()));
                    None
                }
                Err(e) => {
                    changes.push(FolderChange::Refused { name: name.clone(), error: e.to_string() });
                    Some(e.to_string())
                }
            };
            lock(&self.plugin_folder.files).insert(name, FileState { len, modified, content_hash, error });
        }
        let gone: Vec<String> =
            lock(&self.plugin_folder.files).keys().filter(|name| !seen.contains(name)).cloned().collect();
        for name in gone {
            lock(&self.plugin_folder.files).remove(&name);
            catalog.unpin(&name);
            changes.push(FolderChange::Removed(name));
        }
        changes
    }

    fn connectors_using(&self, plugin: &str) -> Vec<String> {
        lock(&self.connectors)
            .iter()
            .filter(|(_, c)| plugins_of(&c.definition, &self.config.namesrv_addr).iter().any(|p| p == plugin))
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn pin_mismatch_of(&self, connector: &str) -> Option<String> {
        let connectors = lock(&self.connectors);
        let c = connectors.get(connector)?;
        self.pin_mismatch(&c.definition, &c.pins)
    }

    fn removed_reason(&self, plugin: &str) -> String {
        if self.config.cluster.is_some() {
            format!(
                "held: plugin \"{plugin}\" was removed from this worker's plugins folder; its tasks left the \
                 consumer group to workers that have it; put it back to run here again"
            )
        } else {
            format!("paused: plugin \"{plugin}\" was removed from the plugins folder; put it back to resume")
        }
    }

    /// Hold a connector because a plugin it needs is gone, or is not the
    /// pinned version. Standalone, its tasks pause (keeping their queues:
    /// no other worker could take them). In a cluster they stop, so the
    /// connector's consumer group gives their queues to workers that have
    /// the plugin.
    async fn hold(&self, connector: &str, reason: String) {
        let clustered = self.config.cluster.is_some();
        let stopped = {
            let mut connectors = lock(&self.connectors);
            let Some(c) = connectors.get_mut(connector) else { return };
            tracing::warn!(connector, "{reason}");
            c.held = Some(reason);
            if clustered {
                std::mem::take(&mut c.tasks)
            } else {
                for task in &c.tasks {
                    let _ = task.pause.send(true);
                }
                Vec::new()
            }
        };
        super::stop_tasks(stopped).await;
    }

    /// Restart a connector's tasks (gracefully) so they load what the
    /// catalog now pins, lifting a hold.
    async fn release_and_restart(&self, connector: &str) {
        let target = {
            let mut connectors = lock(&self.connectors);
            let Some(c) = connectors.get_mut(connector) else { return };
            let was_held = c.held.take().is_some();
            // Tasks stopped by a hold (cluster mode) start again.
            let stopped_by_hold = was_held && c.tasks.is_empty() && c.target != TargetState::Stopped;
            if c.fault.is_some() || (c.tasks.is_empty() && !stopped_by_hold) {
                return;
            }
            c.target
        };
        tracing::info!(connector, "restarting the connector's tasks with the new plugin version");
        self.replace_tasks(connector, target).await;
    }
}

/// A pin as a status shows it: the kind and the first 12 hex digits.
fn short_pin(pin: &str) -> String {
    match pin.strip_prefix("sha256:") {
        Some(hex) => format!("sha256:{}…", &hex[..hex.len().min(12)]),
        None => pin.to_string(),
    }
}

/// Rescan the folder every [`WATCH_INTERVAL`] until the worker is dropped.
pub(super) fn spawn_watcher(worker: &Arc<Worker>) {
    let weak = Arc::downgrade(worker);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(WATCH_INTERVAL).await;
            let Some(worker) = weak.upgrade() else { return };
            if worker.is_shutting_down() {
                return;
            }
            worker.rescan_plugins().await;
        }
    });
}
