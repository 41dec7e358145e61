//! What the C and Go builds share: reading the project's WIT world, and
//! turning a core module into a component with the WASI preview 1 reactor
//! adapter built into this binary (no `wasm-tools` needed).

use anyhow::{Context, Result};
use std::path::Path;
use wit_bindgen_core::wit_parser::{Resolve, WorldId};

/// The project's `wit/` folder and the id of `world` in it.
pub(super) fn resolve_world(wit: &Path, world: &str) -> Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(wit).with_context(|| format!("cannot read the WIT in {}", wit.display()))?;
    let world_id = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("{}: no world \"{world}\"", wit.display()))?;
    Ok((resolve, world_id))
}

/// A core module (with its component-type section) into a component, its
/// WASI preview 1 imports served by the reactor adapter.
pub(super) fn componentize(module: &[u8]) -> Result<Vec<u8>> {
    use wasi_preview1_component_adapter_provider::{
        WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    };
    wit_component::ComponentEncoder::default()
        .module(module)?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)?
        .validate(true)
        .encode()
}
