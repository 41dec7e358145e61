//! `plugin new` and `plugin build`: the plugin author's toolkit, for every
//! language the host has a toolchain recipe for. `new` writes a project
//! that builds as it is: `plugin.toml` (name, language, role), the WIT
//! contract this binary implements (so the project needs nothing from this
//! repository), a working example of the role, and a sample input with the
//! output it must give (`plugin test --expect`). `build` turns a project
//! into a component with its language's toolchain and checks it with the
//! same loader the worker uses.

mod c;
mod component;
mod go;
mod js;
mod python;
mod rust;
mod toolchain;

use crate::plugin::{PluginEngine, PluginOrigin, Role, RuntimeConfig, default_cache_dir};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The contract, as compiled into this binary.
const WIT: &str = include_str!("../../../../wit/plugin.wit");

/// The file naming a project's language and role.
const MANIFEST: &str = "plugin.toml";

const README: &str = include_str!("templates/README.md");
const SAMPLE_MESSAGES: &str = include_str!("templates/sample/messages.jsonl");
const SAMPLE_CSV: &str = include_str!("templates/sample/messages.csv");
const SAMPLE_TABLE: &str = include_str!("templates/sample/table.json");
const EXPECTED_TRANSFORM: &str = include_str!("templates/sample/expected-transform.jsonl");
const EXPECTED_CONVERTER: &str = include_str!("templates/sample/expected-converter.jsonl");
const EXPECTED_SINK: &str = include_str!("templates/sample/expected-sink.jsonl");
const EXPECTED_SOURCE: &str = include_str!("templates/sample/expected-source.jsonl");

/// A language `plugin new` scaffolds and `plugin build` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    C,
    Go,
}

impl Language {
    pub const ALL: [Language; 5] = [Language::Rust, Language::Python, Language::JavaScript, Language::C, Language::Go];

    /// The name used by `--lang` and `plugin.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "js",
            Language::C => "c",
            Language::Go => "go",
        }
    }

    fn display(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
            Language::C => "C",
            Language::Go => "Go",
        }
    }

    pub fn parse(name: &str) -> Result<Language> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Language::Rust,
            "python" | "py" => Language::Python,
            "js" | "javascript" => Language::JavaScript,
            "c" => Language::C,
            "go" | "golang" => Language::Go,
            _ => bail!("--lang {name}: expected one of {}", Language::ALL.map(Language::name).join(", ")),
        })
    }
}

/// One file of a new project.
struct ProjectFile {
    path: &'static str,
    content: String,
}

/// What a language module gives `plugin new`.
struct Template {
    files: Vec<ProjectFile>,
    /// README lines after `plugin build`: how to test.
    steps: String,
}

/// A language's example of each role, as template text.
struct RoleSources {
    converter: &'static str,
    transform: &'static str,
    sink: &'static str,
    source: &'static str,
}

impl RoleSources {
    /// A project of one source file, `file`, filled from the role's
    /// example, beside the sample and a `.gitignore` of `ignored`; its
    /// README tests it with the role's `plugin test` line. A converter
    /// reads `converter_input`, every other role the JSON sample.
    fn project(&self, names: &Names, file: &'static str, ignored: &str, converter_input: &'static str) -> Template {
        let (source, input) = match names.role {
            Role::Converter => (self.converter, converter_input),
            Role::Transform => (self.transform, "messages.jsonl"),
            Role::Sink => (self.sink, "messages.jsonl"),
            Role::Source => (self.source, "messages.jsonl"),
        };
        let mut files = vec![
            ProjectFile { path: file, content: names.fill(source) },
            ProjectFile { path: ".gitignore", content: ignored.to_string() },
        ];
        files.extend(sample_files(names.role, input));
        let steps = format!("    {}\n", names.test_command(&format!("{}.wasm", names.name), input));
        Template { files, steps }
    }
}

/// The names a template fills in.
struct Names<'a> {
    name: &'a str,
    role: Role,
}

impl Names<'_> {
    fn fill(&self, text: &str) -> String {
        text.replace("@NAME@", self.name)
            .replace("@NAME_SNAKE@", &self.name.replace('-', "_"))
            .replace("@ROLE@", self.role.name())
    }

    /// The `plugin test` line that checks the project against its sample:
    /// a converter's rows, a transform's rows after the built-in converter,
    /// a sink's statements (its `sql` calls recorded, no database), a
    /// source's records resumed after a stored position.
    fn test_command(&self, component: &str, input: &str) -> String {
        let expect = "--expect sample/expected.jsonl";
        match self.role {
            Role::Transform => format!(
                "rmq-openmldb plugin test json-converter --input sample/{input} --table-schema sample/table.json \
                 --transform ./{component} --config fields=name {expect}"
            ),
            Role::Converter => format!(
                "rmq-openmldb plugin test ./{component} --input sample/{input} --table-schema sample/table.json {expect}"
            ),
            Role::Sink => format!(
                "rmq-openmldb plugin test json-converter --input sample/{input} --table-schema sample/table.json \
                 --sink ./{component} {expect}"
            ),
            Role::Source => format!(
                "rmq-openmldb plugin test ./{component} --config topic=demo --config count=5 \
                 --config records.per.poll=2 --position sequence=2 {expect}"
            ),
        }
    }

    fn usage(&self) -> String {
        match self.role {
            Role::Transform => format!(
                "`\"transforms\": \"t\", \"transforms.t.type\": \"{}\", \"transforms.t.fields\": \"name\"`",
                self.name
            ),
            Role::Converter => format!("`\"value.converter\": \"{}\"`", self.name),
            Role::Sink => {
                format!("`\"sink.plugin\": \"{}\"` with `connection.url` naming the database it writes", self.name)
            }
            Role::Source => format!("`\"connector.class\": \"{}\"` in a source connector", self.name),
        }
    }
}

/// The sample input and the output `plugin test` must give for it.
fn sample_files(role: Role, input: &'static str) -> Vec<ProjectFile> {
    let expected = match role {
        Role::Transform => EXPECTED_TRANSFORM,
        Role::Converter => EXPECTED_CONVERTER,
        Role::Sink => EXPECTED_SINK,
        // A source makes its own input.
        Role::Source => {
            return vec![ProjectFile { path: "sample/expected.jsonl", content: EXPECTED_SOURCE.to_string() }];
        }
    };
    let messages = if input.ends_with(".csv") { SAMPLE_CSV } else { SAMPLE_MESSAGES };
    vec![
        ProjectFile { path: sample_path(input), content: messages.to_string() },
        ProjectFile { path: "sample/table.json", content: SAMPLE_TABLE.to_string() },
        ProjectFile { path: "sample/expected.jsonl", content: expected.to_string() },
    ]
}

fn sample_path(input: &'static str) -> &'static str {
    match input {
        "messages.csv" => "sample/messages.csv",
        _ => "sample/messages.jsonl",
    }
}

/// `plugin new NAME --lang LANG --role ROLE [--dir DIR]`.
pub fn new_project(name: &str, lang: &str, role: &str, dir: Option<&Path>) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        bail!("plugin name \"{name}\": use lower-case letters, digits and '-', starting with a letter");
    }
    let language = Language::parse(lang)?;
    let Some(role) = Role::ALL.into_iter().find(|r| r.name() == role) else {
        bail!("--role {role}: expected converter, transform, sink or source");
    };
    let root = dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(name));
    if root.exists() && std::fs::read_dir(&root).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", root.display());
    }
    let names = Names { name, role };
    let template = match language {
        Language::Rust => rust::template(&names),
        Language::Python => python::template(&names),
        Language::JavaScript => js::template(&names),
        Language::C => c::template(&names),
        Language::Go => go::template(&names),
    };
    let manifest = format!(
        "# An rmq-openmldb plugin project; `rmq-openmldb plugin build` reads this.\n\
         name = \"{name}\"\nlanguage = \"{}\"\nrole = \"{}\"\n",
        language.name(),
        role.name()
    );
    let readme = names
        .fill(README)
        .replace("@LANGUAGE@", language.display())
        .replace("@STEPS@", &template.steps)
        .replace("@USAGE@", &names.usage());
    let common = [
        ProjectFile { path: MANIFEST, content: manifest },
        ProjectFile { path: "wit/plugin.wit", content: WIT.to_string() },
        ProjectFile { path: "README.md", content: readme },
    ];
    for file in common.into_iter().chain(template.files) {
        let path = root.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, file.content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(root)
}

/// A project as `plugin.toml` (or, for Rust projects made before it
/// existed, `Cargo.toml`) describes it.
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    pub name: String,
    pub language: Language,
    pub role: Role,
}

impl Project {
    pub fn open(dir: &Path) -> Result<Project> {
        let manifest = dir.join(MANIFEST);
        if !manifest.is_file() {
            if dir.join("Cargo.toml").is_file() {
                return rust::project_from_cargo(dir);
            }
            bail!(
                "{}: no {MANIFEST} (or Cargo.toml); plugin build knows projects made with `rmq-openmldb plugin new`",
                dir.display()
            );
        }
        let text = std::fs::read_to_string(&manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("{} is not valid TOML", manifest.display()))?;
        let field = |key: &str| -> Result<String> {
            table
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .with_context(|| format!("{}: key \"{key}\" is missing (a string)", manifest.display()))
        };
        let name = field("name")?;
        let language = Language::parse(&field("language")?)
            .with_context(|| format!("{}: key \"language\"", manifest.display()))?;
        let role_name = field("role")?;
        let role = Role::ALL.into_iter().find(|r| r.name() == role_name).with_context(|| {
            format!("{}: key \"role\": \"{role_name}\" is not converter, transform, sink or source", manifest.display())
        })?;
        Ok(Project { dir: dir.to_path_buf(), name, language, role })
    }

    /// The WIT world the project implements.
    fn world(&self) -> String {
        format!("{}-plugin", self.role.name())
    }

    /// Where the component goes: `DIR/NAME.wasm`.
    fn component_path(&self) -> PathBuf {
        self.dir.join(format!("{}.wasm", self.name))
    }
}

/// What `plugin build` made.
#[derive(Debug)]
pub struct Built {
    pub component: PathBuf,
    pub role: Role,
    pub size_bytes: usize,
}

/// `plugin build [DIR]`: build the project into `DIR/NAME.wasm` with its
/// language's toolchain, then load it as the worker would (component,
/// contract version, role, links).
pub fn build_project(dir: &Path) -> Result<Built> {
    let project = Project::open(dir)?;
    let component = project.component_path();
    let _span =
        tracing::info_span!("plugin_build", plugin = %project.name, language = project.language.name()).entered();
    match project.language {
        Language::Rust => rust::build(&project, &component)?,
        Language::Python => python::build(&project, &component)?,
        Language::JavaScript => js::build(&project, &component)?,
        Language::C => c::build(&project, &component)?,
        Language::Go => go::build(&project, &component)?,
    }
    // Checked through the compile cache the worker and `plugin test` use,
    // so the first load after a build does not compile again (seconds for
    // Python and JavaScript components).
    let cache_dir = std::env::var_os("RMQ_OPENMLDB_CACHE_DIR").map(PathBuf::from).or_else(default_cache_dir);
    let engine = PluginEngine::new(RuntimeConfig { cache_dir })?;
    let loaded = engine
        .load(PluginOrigin::File(component.clone()), None)
        .with_context(|| format!("{} was built but the worker would refuse it", component.display()))?;
    if loaded.role != project.role {
        bail!(
            "{}: {MANIFEST} says role \"{}\" but the component is a {} plugin",
            component.display(),
            project.role,
            loaded.role
        );
    }
    Ok(Built { component, role: loaded.role, size_bytes: loaded.size_bytes })
}
