//! Python plugins: `app.py` made into a component by componentize-py,
//! which bundles CPython and the project's modules.

use super::toolchain;
use super::{Names, Project, ProjectFile, Template, sample_files};
use crate::plugin::Role;
use anyhow::Result;
use std::path::Path;
use std::process::Command;

const TRANSFORM: &str = include_str!("templates/python/transform.py");
const CONVERTER: &str = include_str!("templates/python/converter.py");
const SINK: &str = include_str!("templates/python/sink.py");
const SOURCE: &str = include_str!("templates/python/source.py");

pub(super) fn template(names: &Names) -> Template {
    let source = match names.role {
        Role::Converter => CONVERTER,
        Role::Transform => TRANSFORM,
        Role::Sink => SINK,
        Role::Source => SOURCE,
    };
    let mut files = vec![
        ProjectFile { path: "app.py", content: names.fill(source) },
        ProjectFile { path: ".gitignore", content: "/*.wasm\n__pycache__/\n".into() },
    ];
    files.extend(sample_files(names.role, "messages.jsonl"));
    let steps = format!("    {}\n", names.test_command(&format!("{}.wasm", names.name), "messages.jsonl"));
    Template { files, steps }
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
