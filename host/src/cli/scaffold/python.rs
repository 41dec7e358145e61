//! Python plugins: `app.py` made into a component by componentize-py,
//! which bundles CPython and the project's modules.

use super::toolchain;
use super::{Names, Project, RoleSources, Template};
use anyhow::Result;
use std::path::Path;
use std::process::Command;

/// The example of each role.
const SOURCES: RoleSources = RoleSources {
    converter: include_str!("templates/python/converter.py"),
    transform: include_str!("templates/python/transform.py"),
    sink: include_str!("templates/python/sink.py"),
    source: include_str!("templates/python/source.py"),
};

pub(super) fn template(names: &Names) -> Template {
    SOURCES.project(names, "app.py", "/*.wasm\n__pycache__/\n", "messages.jsonl")
}

pub(super) fn build(project: &Project, component: &Path) -> Result<()> {
    let tool = toolchain::find(
        "componentize-py",
        "python/bin/componentize-py",
        "`pip install componentize-py==0.25.1` or scripts/plugin-toolchains.sh python",
    )?;
    let mut command = Command::new(tool);
    command.args(["-d", "wit", "-w", &project.world(), "componentize", "app", "-o"]).arg(component);
    toolchain::run(command, &project.dir, "componentize-py")
}
