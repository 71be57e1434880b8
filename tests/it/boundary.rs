//! The crate's boundaries, checked on the source: the engine (every library module) never
//! imports the emulator or the command line, and never writes to the terminal; only the
//! binary's `cli` does. A new module that breaks this fails here, naming the file and line.

use std::path::{Path, PathBuf};

use crate::support::repo_root;

/// What no library module may contain, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("acrlink_emulator", "the engine reaches the emulator only over HTTP, like Azure"),
    ("crate::cli", "the command line belongs to the binary"),
    ("println!", "only the CLI writes to the terminal"),
    ("print!", "only the CLI writes to the terminal"),
    ("eprintln!", "only the CLI writes to the terminal"),
    ("eprint!", "only the CLI writes to the terminal"),
    ("anstream::print", "only the CLI writes to the terminal"),
    ("anstream::eprint", "only the CLI writes to the terminal"),
    ("io::stdout", "only the CLI writes to the terminal"),
    ("io::stderr", "only the CLI writes to the terminal"),
    ("indicatif", "progress bars are the CLI's"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every library source file: all of `src/` but the binary (`main.rs` and `cli/`).
fn library_files() -> Vec<PathBuf> {
    let src = repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|f| f != &src.join("main.rs") && !f.starts_with(src.join("cli")));
    files.sort();
    files
}

/// The forbidden uses in one file's text, as `file:line: what (why)`.
fn violations(name: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for (pattern, why) in FORBIDDEN {
            if code.contains(pattern) {
                found.push(format!("{name}:{}: {pattern} ({why})", number + 1));
            }
        }
    }
    found
}

#[test]
fn engine_modules_never_import_the_emulator_or_the_cli_nor_write_to_the_terminal() {
    let files = library_files();
    assert!(files.len() > 30, "the library's files were found: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        let name = file.strip_prefix(repo_root()).unwrap_or(file).display().to_string();
        found.extend(violations(&name, &text));
    }
    assert!(found.is_empty(), "boundary violations:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_each_kind_of_violation() {
    for (pattern, _) in FORBIDDEN {
        let text = format!("fn f() {{\n    let _ = {pattern}(\"x\");\n}}\n");
        assert!(!violations("x.rs", &text).is_empty(), "{pattern} is caught");
    }
    assert!(violations("x.rs", "// println! in a comment is fine\n").is_empty());
}

#[test]
fn the_library_is_linted_against_terminal_output_and_unwrap() {
    let lib = std::fs::read_to_string(repo_root().join("src/lib.rs")).unwrap();
    for lint in ["clippy::print_stdout", "clippy::print_stderr", "clippy::unwrap_used"] {
        assert!(lib.contains(lint), "src/lib.rs denies {lint}");
    }
    let clippy = std::fs::read_to_string(repo_root().join("clippy.toml")).unwrap();
    assert!(clippy.contains("too-many-lines-threshold = 100"), "{clippy}");
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    assert!(ci.contains("cargo clippy --workspace --all-targets"), "CI runs clippy on everything");
    assert!(ci.contains("--no-default-features"), "CI builds acrlink without the emulator");
}
