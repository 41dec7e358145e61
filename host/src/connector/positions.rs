//! Source positions in standalone mode: per connector, the position each
//! partition (e.g. `db.table`) reached, in
//! `<data_dir>/source-positions/<connector>.json`, rewritten atomically
//! after every acknowledged batch. The tasks of one connector share one
//! store (each owns different partitions). Positions outlive a deleted
//! connector, as RocketMQ Connect's do: a connector created again under
//! the same name resumes.

use crate::worker::store::write_atomically;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
#[error("source positions {path}: {reason}")]
pub struct PositionError {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct PositionStore {
    path: PathBuf,
    /// Serialises read-merge-write among the connector's tasks.
    lock: Arc<Mutex<()>>,
}

impl PositionStore {
    pub fn open(data_dir: &Path, connector: &str) -> Result<PositionStore, PositionError> {
        let folder = data_dir.join("source-positions");
        std::fs::create_dir_all(&folder).map_err(|e| PositionError {
            path: folder.display().to_string(),
            reason: format!("cannot create the folder: {e}"),
        })?;
        Ok(PositionStore { path: folder.join(format!("{connector}.json")), lock: Arc::new(Mutex::new(())) })
    }

    fn error(&self, reason: impl Into<String>) -> PositionError {
        PositionError { path: self.path.display().to_string(), reason: reason.into() }
    }

    /// Partition → position; empty before the first acknowledged record.
    pub fn load(&self) -> Result<BTreeMap<String, String>, PositionError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.read()
    }

    fn read(&self) -> Result<BTreeMap<String, String>, PositionError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.error(format!("unreadable: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(self.error(e.to_string())),
        }
    }

    /// Merge `reached` into the stored positions (durably); returns them all.
    pub fn save(&self, reached: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, PositionError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read()?;
        if reached.is_empty() {
            return Ok(all);
        }
        all.extend(reached.iter().map(|(k, v)| (k.clone(), v.clone())));
        let text = serde_json::to_vec_pretty(&all).map_err(|e| self.error(e.to_string()))?;
        write_atomically(&self.path, &text).map_err(|e| self.error(e.to_string()))?;
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_merge_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = PositionStore::open(dir.path(), "src").unwrap();
        assert!(store.load().unwrap().is_empty());
        store.save(&[("db.a".to_string(), "{\"incrementing\":3}".to_string())].into()).unwrap();
        store.save(&[("db.b".to_string(), "{\"incrementing\":9}".to_string())].into()).unwrap();
        store.save(&[("db.a".to_string(), "{\"incrementing\":4}".to_string())].into()).unwrap();
        let again = PositionStore::open(dir.path(), "src").unwrap().load().unwrap();
        assert_eq!(again["db.a"], "{\"incrementing\":4}");
        assert_eq!(again["db.b"], "{\"incrementing\":9}");
    }
}
