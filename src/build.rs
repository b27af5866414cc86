//! Build script: links the `ferry` binary statically and position-dependent where it can, and
//! turns the renderer's strategic-merge schema (`src/overlay/schema.txt`) into static tables.
//!
//! Start-up is most of a short command such as `ferry build DIR`, which scripts run once per
//! overlay. Two parts of it are the dynamic loader's:
//!
//! - A position-independent executable is relocated at every start: for this binary some
//!   77,000 pointers, spread over enough pages that writing them cost more than half of a
//!   one-overlay build (5.6 ms as PIE, 3.9 ms without). The code is still compiled
//!   position-independent, so only the executable's own load address stops being randomized.
//! - Loading the C library and resolving its symbols cost another third: a one-overlay build
//!   took 3.4 ms linked dynamically and 2.1 ms statically. When the C toolchain has the C
//!   library's static archives (Debian's and Ubuntu's `libc6-dev` do), the binary is linked
//!   against them; otherwise it is linked dynamically, as before.
//!
//! See docs/decisions.md. The schema tables were built from the text at the first strategic
//! merge of every process (a tenth of a one-overlay build); generated here, they are constant
//! data the process only reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
        if let Some(dir) = static_c_library(&out) {
            // Only the binaries: the test harnesses stay dynamic, as cargo builds them.
            println!("cargo:rustc-link-arg-bins=-static");
            println!("cargo:rustc-link-arg-bins=-L{dir}");
        }
    }
    println!("cargo:rerun-if-changed=src/build.rs");
    println!("cargo:rerun-if-env-changed=FERRY_DYNAMIC");

    let schema = "src/overlay/schema.txt";
    println!("cargo:rerun-if-changed={schema}");
    let text =
        std::fs::read_to_string(schema).unwrap_or_else(|err| panic!("cannot read {schema}: {err}"));
    let generated = schema_tables(schema, &text);
    std::fs::write(format!("{out}/schema_tables.rs"), generated)
        .unwrap_or_else(|err| panic!("cannot write the schema tables: {err}"));
}

/// The C libraries rustc links the standard library against, by the name it asks for, and
/// the static archive each is taken from (the unwinder's static form for `gcc_s`).
const C_LIBRARIES: &[(&str, &[&str])] = &[
    ("gcc_s", &["libgcc_eh.a", "libgcc.a"]),
    ("util", &["libutil.a"]),
    ("rt", &["librt.a"]),
    ("pthread", &["libpthread.a"]),
    ("m", &["libm.a"]),
    ("dl", &["libdl.a"]),
    ("c", &["libc.a"]),
];

/// A directory of stand-ins that make rustc's `-lc`, `-lgcc_s`, … find the static archives
/// of the C toolchain, or `None` (link dynamically) when an archive is missing or
/// `FERRY_DYNAMIC` is set. rustc asks for these libraries as shared ones whenever the target
/// feature `crt-static` is off, which only a flag outside the manifest could turn on; each
/// stand-in is a one-line linker script naming the archive, and the linker looks in this
/// directory before the system's.
fn static_c_library(out: &str) -> Option<String> {
    if std::env::var_os("FERRY_DYNAMIC").is_some() {
        return None;
    }
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".to_string());
    let archive = |name: &str| -> Option<String> {
        let output = std::process::Command::new(&linker)
            .arg(format!("-print-file-name={name}"))
            .output()
            .ok()?;
        let path = String::from_utf8(output.stdout).ok()?.trim().to_string();
        let found = std::path::Path::new(&path);
        (found.is_absolute() && found.is_file()).then_some(path)
    };
    let dir = format!("{out}/static-c");
    std::fs::create_dir_all(&dir).ok()?;
    for (library, archives) in C_LIBRARIES {
        let paths = archives
            .iter()
            .map(|name| archive(name))
            .collect::<Option<Vec<_>>>()?;
        let script = format!("GROUP ( {} )\n", paths.join(" "));
        std::fs::write(format!("{dir}/lib{library}.a"), script).ok()?;
    }
    Some(dir)
}

/// One field line of the schema: its shape, target type and merge keys, as Rust source.
struct FieldLine<'a> {
    shape: &'static str,
    target: Option<&'a str>,
    keys: Vec<&'a str>,
}

/// Rust source for `schema.txt`: the types sorted by name, each type's fields sorted by name,
/// and the roots sorted by apiVersion and kind, so that the renderer finds them by binary
/// search. A malformed or repeated line stops the build, naming the line.
fn schema_tables(path: &str, text: &str) -> String {
    let mut types: BTreeMap<&str, BTreeMap<&str, FieldLine>> = BTreeMap::new();
    let mut roots: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{path}:{}", number + 1);
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[..] {
            ["root", api_version, kind, ty] => {
                if roots.insert((api_version, kind), ty).is_some() {
                    panic!("{}: {api_version} {kind} is already a root", at());
                }
            }
            [ty, field, shape, target, keys] => {
                let shape = match shape {
                    "obj" => "Object",
                    "map" => "Map",
                    "list" => "List",
                    other => panic!("{}: unknown shape {other:?} (obj, map or list)", at()),
                };
                let line = FieldLine {
                    shape,
                    target: (target != "-").then_some(target),
                    keys: match keys {
                        "*" | "-" => Vec::new(),
                        keys => keys.split(',').collect(),
                    },
                };
                if types.entry(ty).or_default().insert(field, line).is_some() {
                    panic!("{}: {ty}.{field} is already defined", at());
                }
            }
            _ => panic!("{}: expected a root or a field line", at()),
        }
    }
    for ((api_version, kind), ty) in &roots {
        if !types.contains_key(ty) {
            panic!("{path}: the root {api_version} {kind} names the undefined type {ty}");
        }
    }

    let mut out = String::from("// Generated by src/build.rs from src/overlay/schema.txt.\n");
    out.push_str("static BUILTIN_TYPES: &[Type] = &[\n");
    for (name, fields) in &types {
        writeln!(out, "    Type {{ name: {name:?}, fields: &[").unwrap();
        for (field, line) in fields {
            let target = match line.target {
                Some(target) => format!("Some({target:?})"),
                None => "None".to_string(),
            };
            writeln!(
                out,
                "        Field {{ name: {field:?}, shape: Shape::{}, target: {target}, keys: &{:?} }},",
                line.shape, line.keys
            )
            .unwrap();
        }
        out.push_str("    ] },\n");
    }
    out.push_str("];\n\nstatic BUILTIN_ROOTS: &[((&str, &str), &str)] = &[\n");
    for ((api_version, kind), ty) in &roots {
        writeln!(out, "    (({api_version:?}, {kind:?}), {ty:?}),").unwrap();
    }
    out.push_str("];\n");
    out
}
