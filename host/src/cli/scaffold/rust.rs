//! Rust plugins: a cdylib built by cargo for wasm32-wasip2 (already a
//! component), with `wit-bindgen` as its only required dependency and its
//! own target folder. The template's logic is free of WIT plumbing, so
//! `cargo test` checks it natively.

use super::toolchain;
use super::{Names, Project, ProjectFile, Template, sample_files};
use crate::plugin::Role;
use anyhow::{Context, Result};
use std::path::Path;
use std::process::Command;

const CARGO_TOML: &str = include_str!("templates/rust/Cargo.toml");
const TRANSFORM: &str = include_str!("templates/rust/transform.rs");
const CONVERTER: &str = include_str!("templates/rust/converter.rs");
const SINK: &str = include_str!("templates/rust/sink.rs");
const SOURCE: &str = include_str!("templates/rust/source.rs");

pub(super) fn template(names: &Names) -> Template {
    let (source, extra) = match names.role {
        // float_roundtrip: JSON numbers parse correctly rounded, bit for bit.
        Role::Converter => (CONVERTER, "serde_json = { version = \"1\", features = [\"float_roundtrip\"] }\n"),
        Role::Transform => (TRANSFORM, ""),
        Role::Sink => (SINK, ""),
        Role::Source => (SOURCE, ""),
    };
    let mut files = vec![
        ProjectFile { path: "Cargo.toml", content: names.fill(CARGO_TOML).replace("@EXTRA@", extra) },
        ProjectFile { path: "src/lib.rs", content: names.fill(source) },
        ProjectFile { path: ".gitignore", content: "/target\n/*.wasm\n".into() },
    ];
    files.extend(sample_files(names.role, "messages.jsonl"));
    let mut steps = String::from("    cargo test                      # the logic, natively\n");
    steps.push_str(&format!("    {}\n", names.test_command(&format!("{}.wasm", names.name), "messages.jsonl")));
    Template { files, steps }
}

/// A Rust project without `plugin.toml`: name from Cargo.toml; the role is
/// whatever the component turns out to export.
pub(super) fn project_from_cargo(dir: &Path) -> Result<Project> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let package: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", manifest.display()))?;
    let name = package
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .with_context(|| format!("{}: no [package] name", manifest.display()))?
        .to_string();
    let role = guess_role(&dir.join("src/lib.rs"));
    Ok(Project { dir: dir.to_path_buf(), name, language: super::Language::Rust, role })
}

/// The world named in `generate!`, for projects without a manifest.
fn guess_role(lib: &Path) -> Role {
    let text = std::fs::read_to_string(lib).unwrap_or_default();
    Role::ALL.into_iter().find(|role| text.contains(&format!("\"{}-plugin\"", role.name()))).unwrap_or(Role::Transform)
}

pub(super) fn build(project: &Project, component: &Path) -> Result<()> {
    let manifest = project.dir.join("Cargo.toml");
    // The project's own target folder, whatever CARGO_TARGET_DIR says.
    let target_dir = project.dir.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    toolchain::run(
        command,
        &project.dir,
        "cargo build (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)",
    )?;
    let artifact = target_dir.join("wasm32-wasip2/release").join(format!("{}.wasm", project.name.replace('-', "_")));
    std::fs::copy(&artifact, component)
        .with_context(|| format!("cannot copy {} to {}", artifact.display(), component.display()))?;
    Ok(())
}
