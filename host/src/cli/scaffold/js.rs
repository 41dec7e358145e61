//! JavaScript plugins: `app.js` made into a component by componentize-js
//! (SpiderMonkey). Built without its default `wasi:http` import, which the
//! host does not offer.

use super::toolchain;
use super::{Names, Project, ProjectFile, Template, sample_files};
use crate::plugin::Role;
use anyhow::Result;
use std::path::Path;
use std::process::Command;

const TRANSFORM: &str = include_str!("templates/js/transform.js");
const CONVERTER: &str = include_str!("templates/js/converter.js");
const SINK: &str = include_str!("templates/js/sink.js");
const SOURCE: &str = include_str!("templates/js/source.js");

pub(super) fn template(names: &Names) -> Template {
    let source = match names.role {
        Role::Converter => CONVERTER,
        Role::Transform => TRANSFORM,
        Role::Sink => SINK,
        Role::Source => SOURCE,
    };
    let mut files = vec![
        ProjectFile { path: "app.js", content: names.fill(source) },
        ProjectFile { path: ".gitignore", content: "/*.wasm\n".into() },
    ];
    files.extend(sample_files(names.role, "messages.jsonl"));
    let steps = format!("    {}\n", names.test_command(&format!("{}.wasm", names.name), "messages.jsonl"));
    Template { files, steps }
}

pub(super) fn build(project: &Project, component: &Path) -> Result<()> {
    let tool = toolchain::find(
        "componentize-js",
        "js/node_modules/.bin/componentize-js",
        "`npm install @bytecodealliance/componentize-js@0.23.0` or scripts/plugin-toolchains.sh js",
    )?;
    let mut command = Command::new(tool);
    command
        .args(["app.js", "--wit", "wit", "-n", &project.world(), "-d", "http", "-d", "fetch-event", "-o"])
        .arg(component);
    toolchain::run(command, &project.dir, "componentize-js")
}
