//! Finding and running the external tools a language's build needs:
//! on PATH first, then in the folder `scripts/plugin-toolchains.sh`
//! installs into, and an error that says how to install what is missing.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `scripts/plugin-toolchains.sh` puts the Python and JS tools.
pub fn toolchains_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RMQ_OPENMLDB_TOOLCHAINS") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/rmq-openmldb/toolchains"))
}

/// `program` on PATH, else `<toolchains>/<private>`; `install` says how to
/// get it when neither exists.
pub fn find(program: &str, private: &str, install: &str) -> Result<PathBuf> {
    if let Some(found) = on_path(program) {
        return Ok(found);
    }
    if let Some(candidate) = toolchains_dir().map(|dir| dir.join(private))
        && candidate.is_file()
    {
        return Ok(candidate);
    }
    bail!("{program} was not found on PATH or in {}; install it with {install}", describe_toolchains_dir())
}

/// The first of `programs` found on PATH.
pub fn find_any(programs: &[&str], install: &str) -> Result<PathBuf> {
    programs
        .iter()
        .find_map(|program| on_path(program))
        .with_context(|| format!("none of {} is on PATH; install one with {install}", programs.join(", ")))
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn describe_toolchains_dir() -> String {
    toolchains_dir().map(|d| d.display().to_string()).unwrap_or_else(|| "$RMQ_OPENMLDB_TOOLCHAINS".into())
}

/// Run a build step in `dir`, its output going to the user's terminal.
pub fn run(mut command: Command, dir: &Path, what: &str) -> Result<()> {
    tracing::debug!(?command, "running");
    let status = command
        .current_dir(dir)
        .status()
        .with_context(|| format!("cannot run {what} ({:?})", command.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status}) in {}", dir.display());
    }
    Ok(())
}
