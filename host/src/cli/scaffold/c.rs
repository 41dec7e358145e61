//! C plugins: bindings from the project's `wit/` by wit-bindgen's C
//! generator (built into this binary), compiled by clang for wasm32-wasi
//! against wasi-libc (Debian's packages are preview 1 only), then made a
//! component with the WASI preview 1 reactor adapter, also built in. So a
//! C plugin needs clang, lld and wasi-libc, and nothing from crates.io.

use super::toolchain;
use super::{Names, Project, RoleSources, Template, component};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where generated bindings go; rewritten by every build.
const BINDINGS_DIR: &str = "gen";

const CLANG_INSTALL: &str =
    "`apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32` or scripts/plugin-toolchains.sh c";

/// The example of each role.
const SOURCES: RoleSources = RoleSources {
    converter: include_str!("templates/c/converter.c"),
    transform: include_str!("templates/c/transform.c"),
    sink: include_str!("templates/c/sink.c"),
    source: include_str!("templates/c/source.c"),
};

pub(super) fn template(names: &Names) -> Template {
    SOURCES.project(names, "plugin.c", "/gen\n/target\n/*.wasm\n", "messages.csv")
}

pub(super) fn build(project: &Project, component: &Path) -> Result<()> {
    let world = project.world();
    let bindings = project.dir.join(BINDINGS_DIR);
    generate_bindings(&project.dir.join("wit"), &world, &bindings)?;

    let clang = toolchain::find_any(&["clang-19", "clang"], CLANG_INSTALL)?;
    let sources = c_sources(&project.dir)?;
    let target = project.dir.join("target");
    std::fs::create_dir_all(&target).with_context(|| format!("cannot create {}", target.display()))?;
    let core_module = target.join(format!("{}.core.wasm", project.name));
    let stem = world.replace('-', "_");
    let mut command = Command::new(clang);
    command
        .args(["--target=wasm32-wasi", "-O2", "-s", "-Wall", "-mexec-model=reactor"])
        .arg(format!("-I{BINDINGS_DIR}"))
        .arg("-o")
        .arg(&core_module)
        .args(&sources)
        .arg(format!("{BINDINGS_DIR}/{stem}.c"))
        .arg(format!("{BINDINGS_DIR}/{stem}_component_type.o"));
    toolchain::run(command, &project.dir, &format!("clang (wasm32-wasi; needs {CLANG_INSTALL})"))?;

    let module = std::fs::read(&core_module).with_context(|| format!("cannot read {}", core_module.display()))?;
    let bytes = component::componentize(&module)
        .with_context(|| format!("cannot make a component of {}", core_module.display()))?;
    std::fs::write(component, bytes).with_context(|| format!("cannot write {}", component.display()))
}

/// The project's C files: every `*.c` at its top level, in name order.
fn c_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "c") && path.is_file())
        .map(|path| PathBuf::from(path.file_name().unwrap_or_default()))
        .collect();
    sources.sort();
    if sources.is_empty() {
        bail!("{}: no .c files to compile", dir.display());
    }
    Ok(sources)
}

/// wit-bindgen's C generator, as `wit-bindgen c WIT --world WORLD --out-dir OUT`.
fn generate_bindings(wit: &Path, world: &str, out: &Path) -> Result<()> {
    let (mut resolve, world_id) = component::resolve_world(wit, world)?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default().build().generate(&mut resolve, world_id, &mut files)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
