//! Where plugins come from: the built-ins compiled into this binary and
//! the `.wasm` files of the plugins folder. A file in the folder with a
//! built-in's name overrides the built-in. A worker that watches the folder
//! pins the last valid version of each file, so a broken or half-copied
//! replacement never reaches a task.

use super::engine::PluginOrigin;
use super::error::LoadError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// A plugin shipped inside the host binary.
#[derive(Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub role: &'static str,
    pub description: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// Folder plugins by name: the file and the bytes last validated.
type PinnedPlugins = BTreeMap<String, (PathBuf, Arc<[u8]>)>;

/// Built-ins plus an optional plugins folder.
#[derive(Debug, Clone, Default)]
pub struct PluginCatalog {
    folder: Option<PathBuf>,
    /// Folder plugins as last validated (shared by all clones).
    pinned: Arc<RwLock<PinnedPlugins>>,
}

impl PluginCatalog {
    pub fn new(folder: Option<PathBuf>) -> Self {
        PluginCatalog { folder, pinned: Arc::default() }
    }

    /// From now on `name` resolves to these validated bytes of `path`.
    pub fn pin(&self, name: &str, path: PathBuf, bytes: Arc<[u8]>) {
        self.pinned.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), (path, bytes));
    }

    /// `name` no longer has a pinned version (its file was removed).
    pub fn unpin(&self, name: &str) {
        self.pinned.write().unwrap_or_else(|e| e.into_inner()).remove(name);
    }

    pub fn builtins() -> &'static [Builtin] {
        BUILTINS
    }

    pub fn builtin(name: &str) -> Option<&'static Builtin> {
        BUILTINS.iter().find(|b| b.name == name)
    }

    pub fn folder(&self) -> Option<&Path> {
        self.folder.as_deref()
    }

    /// The `.wasm` files of the plugins folder, sorted by name. A missing
    /// folder has no files.
    pub fn folder_files(&self) -> std::io::Result<Vec<PathBuf>> {
        let Some(folder) = &self.folder else {
            return Ok(Vec::new());
        };
        let entries = match std::fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// A path to a `.wasm` file, a plugin in the folder (by file stem; its
    /// pinned version when the folder is watched), or a built-in, in that
    /// order.
    pub fn resolve(&self, name_or_file: &str) -> Result<PluginOrigin, LoadError> {
        let as_path = Path::new(name_or_file);
        if name_or_file.ends_with(".wasm") || name_or_file.contains(std::path::MAIN_SEPARATOR) {
            return Ok(PluginOrigin::File(as_path.to_path_buf()));
        }
        if let Some((path, bytes)) = self.pinned.read().unwrap_or_else(|e| e.into_inner()).get(name_or_file) {
            return Ok(PluginOrigin::Pinned { path: path.clone(), bytes: bytes.clone() });
        }
        if let Some(folder) = &self.folder {
            let candidate = folder.join(format!("{name_or_file}.wasm"));
            if candidate.is_file() {
                return Ok(PluginOrigin::File(candidate));
            }
        }
        if let Some(builtin) = Self::builtin(name_or_file) {
            return Ok(PluginOrigin::Builtin { name: builtin.name, bytes: builtin.bytes });
        }
        Err(LoadError::NotFound {
            name: name_or_file.to_string(),
            builtins: BUILTINS.iter().map(|b| b.name).collect::<Vec<_>>().join(", "),
            folder: self
                .folder
                .as_ref()
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| "(no plugins folder set)".into()),
        })
    }
}
