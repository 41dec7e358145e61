//! Standalone persistence: every connector's posted config and target
//! state in `<data_dir>/connectors.json`, rewritten atomically (temporary
//! file, fsync, rename) on each change, so a worker restart brings back
//! what was running (RocketMQ Connect's standalone mode forgets it).

use crate::openmldb::ConnectorConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the user asked a connector to be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TargetState {
    Started,
    Paused,
    /// Stopped by the user, config kept.
    Stopped,
}

impl TargetState {
    pub fn name(self) -> &'static str {
        match self {
            TargetState::Started => "started",
            TargetState::Paused => "paused",
            TargetState::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredConnector {
    pub config: ConnectorConfig,
    pub target: TargetState,
    /// Cluster mode: the exact plugins it runs (`plugin name → pin`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pins: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    connectors: BTreeMap<String, StoredConnector>,
}

const STORE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("connector store {path}: {reason}")]
pub struct StoreError {
    pub path: String,
    pub reason: String,
}

#[derive(Debug)]
pub struct ConnectorStore {
    path: PathBuf,
}

impl ConnectorStore {
    /// The store in `data_dir`, which is created if missing.
    pub fn open(data_dir: &Path) -> Result<ConnectorStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError {
            path: data_dir.display().to_string(),
            reason: format!("cannot create the data folder: {e}"),
        })?;
        Ok(ConnectorStore { path: data_dir.join("connectors.json") })
    }

    fn error(&self, reason: impl Into<String>) -> StoreError {
        StoreError { path: self.path.display().to_string(), reason: reason.into() }
    }

    pub fn load(&self) -> Result<BTreeMap<String, StoredConnector>, StoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.error(e.to_string())),
        };
        let file: StoreFile = serde_json::from_str(&text).map_err(|e| self.error(format!("unreadable: {e}")))?;
        if file.version != STORE_VERSION {
            return Err(
                self.error(format!("version {} is not {STORE_VERSION}, written by another release", file.version))
            );
        }
        Ok(file.connectors)
    }

    pub fn save(&self, connectors: &BTreeMap<String, StoredConnector>) -> Result<(), StoreError> {
        let file = StoreFile { version: STORE_VERSION, connectors: connectors.clone() };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| self.error(e.to_string()))?;
        write_atomically(&self.path, &text).map_err(|e| self.error(e.to_string()))
    }
}

/// Replace `path` with `bytes` so that a crash leaves the old or the new
/// file, never a torn one: temporary file, fsync, rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::NamedTempFile::new_in(folder)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_connectors() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConnectorStore::open(&dir.path().join("nested")).unwrap();
        assert!(store.load().unwrap().is_empty());
        let mut connectors = BTreeMap::new();
        let config: ConnectorConfig = [("connector.class".to_string(), "openmldb-sink".to_string())].into();
        connectors
            .insert("a".to_string(), StoredConnector { config, target: TargetState::Paused, pins: BTreeMap::new() });
        store.save(&connectors).unwrap();
        assert_eq!(store.load().unwrap(), connectors);
        std::fs::write(dir.path().join("nested/connectors.json"), "{").unwrap();
        assert!(store.load().unwrap_err().to_string().contains("unreadable"));
    }
}
