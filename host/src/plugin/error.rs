//! Errors of the plugin runtime. Each names the plugin (file or built-in)
//! and says what to do about it.

use super::bindings::{ErrorKind, PluginError as GuestError};
use std::path::PathBuf;

/// A plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{origin}: cannot read the file: {source}")]
    Read { origin: String, source: std::io::Error },

    #[error("{origin}: not a WebAssembly component: {reason}")]
    NotAComponent { origin: String, reason: String },

    #[error("{origin}: wrong plugin role: expected a {expected} (exporting {expected_interface}), but it {found}")]
    WrongWorld { origin: String, expected: String, expected_interface: String, found: String },

    #[error(
        "{origin}: built against {found}, but this host implements rmq-openmldb:plugin@{supported}; rebuild the plugin with the current SDK/WIT"
    )]
    IncompatibleVersion { origin: String, found: String, supported: String },

    #[error("{origin}: {reason}")]
    Unlinkable { origin: String, reason: String },

    #[error("no plugin named \"{name}\": not a built-in ({builtins}) and not a file in {folder}")]
    NotFound { name: String, builtins: String, folder: String },

    #[error("compile cache at {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
}

/// How a call into a plugin ended abnormally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// The call ran past its deadline (`plugin.call.timeout.ms`).
    Deadline,
    /// The instance tried to grow its memory past the cap (`plugin.memory.max.bytes`).
    MemoryLimit,
    /// The guest panicked (its message is in the captured stderr).
    Panic,
    /// Any other trap: unreachable, out-of-bounds access, stack overflow, …
    Other,
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrapKind::Deadline => "deadline exceeded",
            TrapKind::MemoryLimit => "memory limit exceeded",
            TrapKind::Panic => "panic",
            TrapKind::Other => "trap",
        })
    }
}

/// A call into a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The instance trapped; it has been discarded and the next call gets a
    /// fresh one.
    #[error("plugin {plugin}: {kind}: {detail}")]
    Trap { plugin: String, kind: TrapKind, detail: String },

    /// The plugin returned an error for the whole call.
    #[error("plugin {plugin}: {}: {message}", describe_error_kind(.kind))]
    Plugin { plugin: String, kind: ErrorKind, message: String },

    /// The instance could not be created.
    #[error("plugin {plugin}: cannot instantiate: {reason}")]
    Instantiate { plugin: String, reason: String },

    /// The plugin broke the contract (e.g. an index outside the batch).
    #[error("plugin {plugin}: contract violation: {reason}")]
    Contract { plugin: String, reason: String },
}

/// The WIT name of a whole-call error kind, as plugin authors wrote it.
fn describe_error_kind(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidConfig => "invalid-config",
        ErrorKind::SchemaMismatch => "schema-mismatch",
        ErrorKind::Retryable => "retryable",
        ErrorKind::Fatal => "fatal",
    }
}

impl CallError {
    pub(crate) fn from_guest(plugin: &str, error: GuestError) -> Self {
        CallError::Plugin { plugin: plugin.to_string(), kind: error.kind, message: error.message }
    }

    /// True when the instance was lost (trap): the batch may be retried once
    /// on the fresh instance the next call creates.
    pub fn is_trap(&self) -> bool {
        matches!(self, CallError::Trap { .. })
    }
}
