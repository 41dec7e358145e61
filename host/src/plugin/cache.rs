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
            // SAFETY: the file was written by `store` below, into a folder we
            // own, and is only ever replaced by an atomic rename, never
            // modified in place; wasmtime checks its header and engine
            // compatibility and refuses a mismatched artifact.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "compiled artifact unusable, recompiling: {e:#}")
                }
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
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| cache_error(e.to_string()))?;
        temp.write_all(&artifact).map_err(|e| cache_error(e.to_string()))?;
        temp.persist(path).map_err(|e| cache_error(e.to_string()))?;
        Ok(())
    }
}
