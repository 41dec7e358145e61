//! JavaScript plugins: `app.js` made into a component by componentize-js
//! (SpiderMonkey). Built without its default `wasi:http` import, which the
//! host does not offer.

use super::toolchain;
use super::{Names, Project, RoleSources, Template};
use anyhow::Result;
use std::path::Path;
use std::process::Command;

/// The example of each role.
const SOURCES: RoleSources = RoleSources {
    converter: include_str!("templates/js/converter.js"),
    transform: include_str!("templates/js/transform.js"),
    sink: include_str!("templates/js/sink.js"),
    source: include_str!("templates/js/source.js"),
};

pub(super) fn template(names: &Names) -> Template {
    SOURCES.project(names, "app.js", "/*.wasm\n", "messages.jsonl")
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
