//! Builds the built-in plugins (and the test components) for
//! wasm32-wasip2 with a nested cargo, and embeds the built-ins in the host
//! binary so `rmq-openmldb` works without the user building any plugin.
//! The nested build uses its own target folder, so it never contends for
//! the outer build's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (built-in name = package name, role)
const BUILTINS: &[(&str, &str)] = &[
    ("json-converter", "converter"),
    ("filter", "transform"),
    ("rename", "transform"),
    ("drop", "transform"),
    ("cast", "transform"),
    ("insert-field", "transform"),
    ("mask", "transform"),
    ("mysql-source", "source"),
    ("mysql-sink", "sink"),
];

/// Components only the tests load.
const TEST_COMPONENTS: &[&str] = &["hostile", "future-version", "trap-converter"];

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ has a parent").to_path_buf();
    for watched in ["wit", "sdk", "plugins", "tests/components", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let out_dir = PathBuf::from(env("OUT_DIR"));
    let wasm_target_dir = nested_target_dir(&out_dir);
    build_components(&root, &wasm_target_dir);

    let artifacts = wasm_target_dir.join(WASM_TARGET).join("release");
    let mut generated =
        String::from("/// Plugins compiled into the host binary.\npub static BUILTINS: &[Builtin] = &[\n");
    for (name, role) in BUILTINS {
        let wasm = artifacts.join(format!("{}.wasm", name.replace('-', "_")));
        let description = package_description(&root.join("plugins").join(name).join("Cargo.toml"));
        generated.push_str(&format!(
            "    Builtin {{ name: {name:?}, role: {role:?}, description: {description:?}, bytes: include_bytes!({:?}) }},\n",
            wasm.display().to_string()
        ));
    }
    generated.push_str("];\n");
    std::fs::write(out_dir.join("builtins.rs"), generated).expect("write builtins.rs");
    println!("cargo:rustc-env=RMQ_OPENMLDB_TEST_COMPONENTS={}", artifacts.display());
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("cargo sets {key} for build scripts"))
}

/// `<target>/<profile>/wasm-plugins`, next to the outer build's artifacts.
fn nested_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent)
        .map(|profile| profile.join("wasm-plugins"))
        .unwrap_or_else(|| out_dir.join("wasm-plugins"))
}

fn build_components(root: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--target", WASM_TARGET, "--target-dir"])
        .arg(target_dir)
        // Small, fast components: one codegen unit, LTO, no debug info.
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
        // SIMD lets memchr (inside serde_json) scan JSON 16 bytes at a time;
        // wasmtime supports it everywhere it runs. Flags meant for the host
        // must not leak into the wasm build, so this replaces them.
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+simd128")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR");
    for (name, _) in BUILTINS {
        cmd.args(["-p", name]);
    }
    for name in TEST_COMPONENTS {
        cmd.args(["-p", name]);
    }
    let status = cmd.status().expect("run cargo for the wasm plugins");
    if !status.success() {
        panic!(
            "building the built-in plugins for {WASM_TARGET} failed (see above). \
             If the target is missing, run `rustup target add {WASM_TARGET}` (scripts/test.sh does)."
        );
    }
}

/// The `description = "..."` line of a package manifest.
fn package_description(manifest: &Path) -> String {
    std::fs::read_to_string(manifest)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("description = \"").and_then(|rest| rest.strip_suffix('"')).map(String::from)
            })
        })
        .unwrap_or_default()
}
