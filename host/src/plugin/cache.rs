//! The on-disk cache of compiled components. A component is compiled once
//! per (content, engine) pair: the file name is the SHA-256 of the
//! component's bytes plus a hash of everything in the engine that affects
//! machine code (wasmtime version, target, settings). Loading a cached
//! artifact memory-maps it (well under a millisecond); compiling takes
//! 0.1 s for a Rust plugin and seconds for Python or JavaScript.

use super::error::LoadError;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a load used the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a compiled artifact on disk.
    Hit,
    /// Compiled now and stored for next time.
    Compiled,
    /// Compiled now; no cache folder is configured.
    Uncached,
}

#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl CompileCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    /// The SHA-256 of a component, hex encoded.
    pub fn content_hash(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn artifact_path(&self, dir: &Path, content_hash: &str) -> PathBuf {
        dir.join(format!("{content_hash}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for `bytes`, from the cache when possible.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        origin: &str,
        bytes: &[u8],
        content_hash: &str,
    ) -> Result<(Component, CacheOutcome), LoadError> {
        let compile = || {
            Component::new(engine, bytes)
                .map_err(|e| LoadError::NotAComponent { origin: origin.to_string(), reason: format!("{e:#}") })
        };
        let Some(dir) = &self.dir else {
            return Ok((compile()?, CacheOutcome::Uncached));
        };
        let path = self.artifact_path(dir, content_hash);
        if path.exists() {
            match trusted(dir, &path) {
                Err(why) => tracing::warn!(path = %path.display(), "compiled artifact not trusted, recompiling: {why}"),
                // SAFETY: the file and its folder belong to this user and no
                // one else may write them (checked just above); `store`
                // writes it (mode 0600) and replaces it only by an atomic
                // rename; wasmtime checks its header and engine
                // compatibility and refuses a mismatched artifact.
                Ok(()) => match unsafe { Component::deserialize_file(engine, &path) } {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "compiled artifact unusable, recompiling: {e:#}")
                    }
                },
            }
        }
        let component = compile()?;
        self.store(dir, &path, &component)?;
        Ok((component, CacheOutcome::Compiled))
    }

    fn store(&self, dir: &Path, path: &Path, component: &Component) -> Result<(), LoadError> {
        let cache_error = |reason: String| LoadError::Cache { path: path.to_path_buf(), reason };
        let artifact = component.serialize().map_err(|e| cache_error(format!("cannot serialize: {e:#}")))?;
        std::fs::create_dir_all(dir).map_err(|e| cache_error(format!("cannot create the folder: {e}")))?;
        restrict(dir, 0o700).map_err(|e| cache_error(format!("cannot restrict the folder to its owner: {e}")))?;
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| cache_error(e.to_string()))?;
        temp.write_all(&artifact).map_err(|e| cache_error(e.to_string()))?;
        temp.persist(path).map_err(|e| cache_error(e.to_string()))?;
        Ok(())
    }
}

/// Machine code is mapped and run as is, so it is used only when no one but
/// this user can have written it: the file and its folder belong to this
/// user, and neither is writable by the group or others.
#[cfg(unix)]
fn trusted(dir: &Path, file: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc_geteuid() };
    for path in [dir, file] {
        let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.file_type().is_symlink() {
            return Err(format!("{} is a symbolic link", path.display()));
        }
        if meta.uid() != me {
            return Err(format!("{} belongs to user {}, not to this process's user {me}", path.display(), meta.uid()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!("{} is writable by others (mode {:o})", path.display(), meta.mode() & 0o777));
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn trusted(_dir: &Path, _file: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(unix)]
unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn artifacts_others_could_have_written_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cache");
        std::fs::create_dir(&folder).unwrap();
        restrict(&folder, 0o700).unwrap();
        let file = folder.join("a.cwasm");
        std::fs::write(&file, b"x").unwrap();
        restrict(&file, 0o600).unwrap();
        assert_eq!(trusted(&folder, &file), Ok(()));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(trusted(&folder, &file).unwrap_err().contains("writable by others"));
        restrict(&file, 0o600).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(trusted(&folder, &file).unwrap_err().contains("writable by others"));
    }
}
