//! Go plugins, with stock Go (no TinyGo): bindings from the project's
//! `wit/` by wit-bindgen's Go generator (built into this binary), the Go
//! support module shipped with this binary (patched so that no garbage
//! collection can start inside `cabi_realloc`), `GOOS=wasip1` compiled as a
//! reactor, then made a component with the WASI preview 1 reactor adapter.
//! So a Go plugin needs Go ≥ 1.25 and nothing downloaded.
//!
//! The project holds only the user's `*.go` files, in the package of the
//! role's export (`export_rmq_openmldb_plugin_<role>`). The build assembles
//! a module in `target/go/`: the generated bindings, the support module
//! and those files.

use super::toolchain;
use super::{Names, Project, RoleSources, Template, component};
use crate::plugin::Role;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use wit_bindgen_core::wit_parser::Resolve;

/// `go.bytecodealliance.org/pkg` as the wit-bindgen-go 0.63.0 crate carries
/// it, with `go 1.25` instead of `go 1.27.1` (nothing in it needs more) and
/// the collection rule of `wit/runtime/runtime.go` (see its comments).
const SUPPORT_MODULE: &[(&str, &str)] = &[
    ("LICENSE", include_str!("templates/go/support/LICENSE")),
    ("go.mod", include_str!("templates/go/support/go.mod")),
    ("wit/runtime/runtime.go", include_str!("templates/go/support/wit/runtime/runtime.go")),
    ("wit/runtime/empty.s", include_str!("templates/go/support/wit/runtime/empty.s")),
    ("wit/async/async.go", include_str!("templates/go/support/wit/async/async.go")),
    ("wit/async/empty.s", include_str!("templates/go/support/wit/async/empty.s")),
    ("wit/types/future.go", include_str!("templates/go/support/wit/types/future.go")),
    ("wit/types/option.go", include_str!("templates/go/support/wit/types/option.go")),
    ("wit/types/result.go", include_str!("templates/go/support/wit/types/result.go")),
    ("wit/types/stream.go", include_str!("templates/go/support/wit/types/stream.go")),
    ("wit/types/tuple.go", include_str!("templates/go/support/wit/types/tuple.go")),
    ("wit/types/unit.go", include_str!("templates/go/support/wit/types/unit.go")),
];

/// The staged module's go.mod: the generated imports are
/// `wit_component/...`, and the support module comes from the copy beside
/// it, so nothing is fetched (no go.sum either).
const STAGED_GO_MOD: &str = "module wit_component\n\ngo 1.25\n\nrequire go.bytecodealliance.org/pkg v0.4.0\n\n\
                             replace go.bytecodealliance.org/pkg => ./support\n";

/// The oldest Go whose `//go:wasmexport` and wasip1 reactors this needs.
const MINIMUM_GO: (u32, u32) = (1, 25);

const GO_INSTALL: &str = "Go 1.25 or later from https://go.dev/dl (or scripts/plugin-toolchains.sh go)";

/// The example of each role.
const SOURCES: RoleSources = RoleSources {
    converter: include_str!("templates/go/converter.go"),
    transform: include_str!("templates/go/transform.go"),
    sink: include_str!("templates/go/sink.go"),
    source: include_str!("templates/go/source.go"),
};

pub(super) fn template(names: &Names) -> Template {
    SOURCES.project(names, "plugin.go", "/target\n/*.wasm\n", "messages.jsonl")
}

/// The package a role's export lives in, as the Go generator names it.
fn export_package(role: Role) -> String {
    format!("export_rmq_openmldb_plugin_{}", role.name())
}

pub(super) fn build(project: &Project, component_path: &Path) -> Result<()> {
    let go = toolchain::find("go", "go/bin/go", GO_INSTALL)?;
    check_version(&go)?;
    let stage = project.dir.join("target/go");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("cannot clear {}", stage.display()))?;
    }
    let world = project.world();
    let (resolve, world_id) = component::resolve_world(&project.dir.join("wit"), &world)?;
    generate_bindings(&resolve, world_id, &stage)?;
    for (path, content) in SUPPORT_MODULE {
        write(&stage.join("support").join(path), content)?;
    }
    let package = stage.join(export_package(project.role));
    for source in go_sources(&project.dir)? {
        let target = package.join(source.file_name().unwrap_or_default());
        std::fs::create_dir_all(&package).with_context(|| format!("cannot create {}", package.display()))?;
        std::fs::copy(&source, &target)
            .with_context(|| format!("cannot copy {} to {}", source.display(), target.display()))?;
    }

    let core_module = stage.join("core.wasm");
    let mut command = Command::new(&go);
    command
        // Run in the staged module, so the output path is relative to it.
        .args(["build", "-trimpath", "-buildmode=c-shared", "-ldflags=-s -w -checklinkname=0", "-o", "core.wasm", "."])
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        // The project's own Go, and nothing from the network.
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod");
    toolchain::run(command, &stage, &format!("go build (GOOS=wasip1; needs {GO_INSTALL})"))?;

    let mut module = std::fs::read(&core_module).with_context(|| format!("cannot read {}", core_module.display()))?;
    // The Go generator writes no component-type section (the C one does):
    // embed the world, as `wasm-tools component embed` would.
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world_id,
        wit_component::StringEncoding::UTF8,
        false,
    )?;
    let bytes = component::componentize(&module)
        .with_context(|| format!("cannot make a component of {}", core_module.display()))?;
    write_bytes(component_path, &bytes)
}

/// Go's version from `go env GOVERSION` ("go1.26.8"), refused below 1.25.
fn check_version(go: &Path) -> Result<()> {
    let output = Command::new(go)
        .args(["env", "GOVERSION"])
        .env("GOTOOLCHAIN", "local")
        .output()
        .with_context(|| format!("cannot run {} env GOVERSION", go.display()))?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let numbers: Vec<u32> = text
        .trim_start_matches("go")
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .filter_map(|part| part.parse().ok())
        .collect();
    match numbers[..] {
        [major, minor] if (major, minor) >= MINIMUM_GO => Ok(()),
        _ => bail!("{} is {text:?}; Go plugins need Go 1.25 or later: install {GO_INSTALL}", go.display()),
    }
}

/// The project's Go files: every `*.go` at its top level, in name order.
fn go_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "go") && path.is_file())
        .collect();
    sources.sort();
    if sources.is_empty() {
        bail!("{}: no .go files to compile", dir.display());
    }
    Ok(sources)
}

/// wit-bindgen's Go generator, as `wit-bindgen go WIT --world WORLD --out-dir OUT`,
/// with the project's go.mod in place of the generated one.
fn generate_bindings(resolve: &Resolve, world: wit_bindgen_core::wit_parser::WorldId, out: &Path) -> Result<()> {
    let mut resolve = resolve.clone();
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_go::Opts::default().build().generate(&mut resolve, world, &mut files)?;
    for (name, contents) in files.iter() {
        if name == "go.mod" {
            continue;
        }
        write_bytes(&out.join(name), contents)?;
    }
    write(&out.join("go.mod"), STAGED_GO_MOD)
}

fn write(path: &Path, content: &str) -> Result<()> {
    write_bytes(path, content.as_bytes())
}

fn write_bytes(path: &Path, content: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))
}
