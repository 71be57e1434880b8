//! The command line's own edges (issue 12): completions and man pages generated from the clap
//! definitions, `--version`, `-C/--chdir`, flags a command would ignore, `emulator
//! --print-env`/`--env-file` and `show PLANFILE`.

use std::path::Path;

use crate::support::{Emulated, Sandbox, acrlink, repo_root};

/// The subcommands `acrlink --help` lists (clap's own `help` left out), so a new command is
/// covered by these tests without editing them.
fn subcommands() -> Vec<String> {
    let help = acrlink(["--help"]);
    help.assert_exit(0);
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in help.stdout.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                break;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            // Wrapped description lines are indented further than names.
            if !line.starts_with("   ") && name != "help" {
                names.push(name.to_string());
            }
        }
    }
    assert!(names.len() >= 9, "found the subcommands in --help: {names:?}\n{}", help.stdout);
    names
}

#[test]
fn bash_completion_offers_every_subcommand() {
    let output = acrlink(["completions", "bash"]);
    output.assert_exit(0).assert_no_panic();
    assert!(output.stdout.contains("complete -F"), "a bash completion script\n{output}");
    for name in subcommands() {
        // The case arm bash takes once the word is typed, and the word offered before it is.
        assert!(output.stdout.contains(&format!("acrlink,{name})")), "bash completes `{name}`\n{}", output.stdout);
        let offered = output.stdout.lines().find(|l| l.contains("opts=") && l.contains("validate")).unwrap_or_default();
        assert!(offered.split_whitespace().any(|w| w == name), "bash offers `{name}` at the top level: {offered}");
    }
}

#[test]
fn completions_for_the_other_shells_and_usage_errors() {
    for shell in ["zsh", "fish", "powershell"] {
        let output = acrlink(["completions", shell]);
        output.assert_exit(0).assert_no_panic();
        for name in subcommands() {
            assert!(output.stdout.contains(&name), "{shell} completes `{name}`");
        }
    }
    // A usage error exits 1, as every usage error does (2 means changes).
    let unknown = acrlink(["completions", "tcsh"]);
    unknown.assert_exit(1);
    assert!(unknown.stderr.contains("tcsh") && unknown.stderr.contains("bash"), "{unknown}");
}

#[test]
fn the_man_page_names_every_subcommand() {
    let output = acrlink(["man"]);
    output.assert_exit(0).assert_no_panic();
    assert!(output.stdout.contains(".TH acrlink 1"), "{}", output.stdout);
    for name in subcommands() {
        // roff escapes the hyphen: acrlink\-plan(1).
        assert!(
            output.stdout.contains(&format!("acrlink\\-{name}(1)")),
            "the man page names `{name}`\n{}",
            output.stdout
        );
    }
}

#[test]
fn man_out_writes_one_page_per_subcommand() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path().join("man")).unwrap();
    sandbox.run(["man", "--out", "man"]).assert_exit(0);
    let page = |name: &str| std::fs::read_to_string(sandbox.path().join("man").join(name));
    assert!(page("acrlink.1").unwrap().contains(".TH acrlink 1"));
    for name in subcommands() {
        let text = page(&format!("acrlink-{name}.1")).unwrap_or_else(|e| panic!("acrlink-{name}.1: {e}"));
        assert!(text.contains(&format!(".TH acrlink-{name} 1")), "acrlink-{name}.1:\n{text}");
    }
    let missing = sandbox.run(["man", "--out", "nowhere"]);
    missing.assert_exit(1);
    assert!(missing.stderr.contains("nowhere") && missing.stderr.contains("hint"), "{missing}");
}

/// What build.rs records: the short hash of HEAD when the crate is the top of a git checkout.
fn expected_commit() -> String {
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git").arg("-C").arg(repo_root()).args(args).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let top = git(&["rev-parse", "--show-toplevel"]).map(std::path::PathBuf::from);
    if top.and_then(|t| t.canonicalize().ok()) == repo_root().canonicalize().ok() {
        git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into())
    } else {
        "unknown".into()
    }
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let expected = format!("acrlink {} (commit {})\n", env!("CARGO_PKG_VERSION"), expected_commit());
    for flag in ["--version", "-V"] {
        let output = acrlink([flag]);
        output.assert_exit(0);
        assert_eq!(output.stdout, expected, "{output}");
    }
}

/// build.rs compiled on its own (it uses std only) and run as cargo would run it.
fn run_build_script(sandbox: &Sandbox, manifest_dir: &Path) -> String {
    let exe = sandbox.path().join("build-script");
    if !exe.exists() {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let status = std::process::Command::new(rustc)
            .args(["--edition", "2024", "-o"])
            .arg(&exe)
            .arg(repo_root().join("build.rs"))
            .status()
            .expect("run rustc");
        assert!(status.success(), "build.rs compiles on its own");
    }
    let output = std::process::Command::new(&exe)
        .env("CARGO_MANIFEST_DIR", manifest_dir)
        .current_dir(manifest_dir)
        .output()
        .expect("run the build script");
    assert!(output.status.success(), "the build script never fails the build: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_build_script_says_unknown_outside_a_checkout_and_watches_only_files_that_exist() {
    let sandbox = Sandbox::new();
    // A source tarball: no .git anywhere above (the temporary directory is in no checkout).
    let tarball = sandbox.path().join("acrlink-0.1.0");
    std::fs::create_dir(&tarball).unwrap();
    let lines = run_build_script(&sandbox, &tarball);
    assert!(lines.contains("cargo:rustc-env=ACRLINK_GIT_COMMIT=unknown\n"), "{lines}");
    let watched: Vec<&str> = lines.lines().filter_map(|l| l.strip_prefix("cargo:rerun-if-changed=")).collect();
    assert_eq!(watched, ["build.rs"], "{lines}");

    // This checkout: the commit, and HEAD plus the ref it points to, watched only if they exist.
    let lines = run_build_script(&sandbox, &repo_root());
    assert!(lines.contains(&format!("cargo:rustc-env=ACRLINK_GIT_COMMIT={}\n", expected_commit())), "{lines}");
    if expected_commit() != "unknown" {
        let watched: Vec<&str> = lines.lines().filter_map(|l| l.strip_prefix("cargo:rerun-if-changed=")).collect();
        assert!(watched.iter().any(|p| p.ends_with("HEAD")), "HEAD is watched: {lines}");
        for path in watched.iter().filter(|p| **p != "build.rs") {
            assert!(Path::new(path).is_file(), "{path} exists (cargo reruns forever on a missing path)");
        }
    }
}

/// A sandbox with a valid desired-state file at `sub/acrlink.toml` and `sub/other.toml`.
fn sandbox_with_sub() -> Sandbox {
    let sandbox = Sandbox::new();
    let example = std::fs::read_to_string(repo_root().join("examples/attach.toml")).unwrap();
    sandbox.write("sub/acrlink.toml", &example);
    sandbox.write("sub/other.toml", &example);
    sandbox
}

#[test]
fn chdir_changes_directory_before_any_file_is_read() {
    let sandbox = sandbox_with_sub();
    for args in [
        &["-C", "sub", "validate"][..],
        &["--chdir", "sub", "validate"],
        &["--chdir=sub", "validate"],
        // Global, as -c is: after the command too.
        &["validate", "-C", "sub"],
    ] {
        let output = sandbox.run(args);
        output.assert_exit(0).assert_no_panic();
        assert!(output.stdout.contains("acrlink.toml is valid"), "{args:?}\n{output}");
    }
    // -c, a positional FILE and ACRLINK_CONFIG are read relative to the new directory.
    let output = sandbox.run(["-C", "sub", "validate", "-c", "other.toml"]);
    assert!(output.assert_exit(0).stdout.contains("other.toml is valid"), "{output}");
    let output = sandbox.run(["-C", "sub", "validate", "other.toml"]);
    assert!(output.assert_exit(0).stdout.contains("other.toml is valid"), "{output}");
    let sandbox = sandbox.env("ACRLINK_CONFIG", "other.toml");
    let output = sandbox.run(["-C", "sub", "validate"]);
    assert!(output.assert_exit(0).stdout.contains("other.toml is valid"), "{output}");
}

#[test]
fn chdir_to_a_missing_directory_or_a_file_is_an_error_naming_it() {
    let sandbox = sandbox_with_sub();
    for (dir, why) in [("no-such-dir", "No such file or directory"), ("sub/acrlink.toml", "Not a directory")] {
        let output = sandbox.run(["-C", dir, "validate"]);
        output.assert_exit(1).assert_no_panic();
        assert!(output.stdout.is_empty(), "{output}");
        assert!(output.stderr.contains(&format!("cannot change to directory {dir}")), "{output}");
        assert!(output.stderr.contains(why) && output.stderr.contains("hint:"), "{output}");
    }
}

#[test]
fn config_on_a_command_that_reads_no_desired_state_file_is_an_error() {
    let sandbox = sandbox_with_sub();
    for args in [
        &["schema", "-c", "sub/acrlink.toml"][..],
        &["-c", "sub/acrlink.toml", "schema", "plan"],
        &["--config", "sub/acrlink.toml", "demo"],
        &["demo", "--config=sub/acrlink.toml"],
        &["emulator", "-c", "sub/acrlink.toml", "--world", "sub/world.toml"],
        &["completions", "bash", "-c", "sub/acrlink.toml"],
        &["man", "-c", "sub/acrlink.toml"],
    ] {
        let output = sandbox.run(args);
        // A usage error: 1, as every usage error is here (2 means changes).
        output.assert_exit(1).assert_no_panic();
        let command = args.iter().find(|a| !a.starts_with('-') && !a.contains('/')).unwrap();
        assert!(output.stdout.is_empty(), "{args:?} did nothing\n{output}");
        assert!(
            output.stderr.contains(&format!("-c/--config does not apply to `acrlink {command}`")),
            "{args:?}\n{output}"
        );
        assert!(output.stderr.contains("hint: leave out -c"), "{args:?}\n{output}");
    }
    // ACRLINK_CONFIG in the environment is no flag given to the command: it stays harmless.
    let sandbox = sandbox.env("ACRLINK_CONFIG", "sub/acrlink.toml");
    sandbox.run(["schema"]).assert_exit(0);
    sandbox.run(["completions", "bash"]).assert_exit(0);
    sandbox.run(["validate"]).assert_exit(0);
}

/// `acrlink emulator ARGS` running in the background in `dir`, killed when dropped.
struct Background {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Background {
    fn start(dir: &Path, args: &[&std::ffi::OsStr]) -> Background {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_acrlink"))
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start acrlink emulator");
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        Background { child, stdout }
    }

    /// The next line on stdout; None once the process has closed it (it ended).
    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut self.stdout, &mut line).expect("read stdout");
        (read > 0).then(|| line.trim_end_matches('\n').to_string())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const READY_KEYS: [&str; 8] = [
    "admin_endpoint",
    "arm_endpoint",
    "authority_host",
    "ca_file",
    "env",
    "kubernetes_endpoint",
    "registry_endpoint",
    "tenant_id",
];

/// The ready line: one JSON object with the keys outside checks rely on.
#[track_caller]
fn ready_line(line: Option<String>) -> serde_json::Map<String, serde_json::Value> {
    let line = line.expect("the emulator prints its ready line");
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let ready = ready.as_object().expect("an object").clone();
    assert_eq!(ready.keys().map(String::as_str).collect::<Vec<_>>(), READY_KEYS, "{line}");
    ready
}

#[test]
fn emulator_print_env_and_env_file_export_what_targets_it() {
    let sandbox = Sandbox::new();
    let world = repo_root().join("examples/demo/world.toml");
    let args = ["emulator".as_ref(), "--world".as_ref(), world.as_os_str()];
    // Without the flags: the ready line alone, as before.
    let ready = ready_line(Background::start(sandbox.path(), &args).line());
    let plain_env: Vec<String> = ready["env"].as_object().unwrap().keys().cloned().collect();

    let flags = ["--print-env".as_ref(), "--env-file".as_ref(), "emulator.env".as_ref()];
    let mut emulator = Background::start(sandbox.path(), &[&args[..], &flags[..]].concat());
    let ready = ready_line(emulator.line());
    let env = ready["env"].as_object().unwrap();
    assert_eq!(env.keys().cloned().collect::<Vec<_>>(), plain_env, "the same environment");
    let expected: Vec<String> =
        env.iter().map(|(name, value)| format!("export {name}='{}'", value.as_str().unwrap())).collect();
    let printed: Vec<String> = expected.iter().map(|_| emulator.line().unwrap_or_default()).collect();
    assert_eq!(printed, expected, "--print-env prints an export line per variable after the ready line");
    for name in
        ["ACRLINK_ARM_ENDPOINT", "AZURE_AUTHORITY_HOST", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "AZURE_CLIENT_ID"]
    {
        assert!(env.contains_key(name), "{name} is exported");
    }
    let file = sandbox.path().join("emulator.env");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected.iter().map(|l| format!("{l}\n")).collect::<String>());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the file holds the emulator's client secret: yours only");
    }

    // Sourced in a shell, the file is all acrlink needs to plan against the emulator.
    let mut shell = std::process::Command::new("sh");
    shell
        .args(["-c", r#". ./emulator.env && exec "$0" -c "$1" plan --detailed-exitcode --color never"#])
        .arg(env!("CARGO_BIN_EXE_acrlink"))
        .arg(repo_root().join("examples/demo/acrlink.toml"))
        .current_dir(sandbox.path());
    for var in
        ["ACRLINK_CONFIG", "ACRLINK_LOG", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT"]
    {
        shell.env_remove(var);
    }
    let plan = shell.output().expect("run sh");
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{stdout}\n{}", String::from_utf8_lossy(&plan.stderr));
    assert!(stdout.contains("Plan:"), "{stdout}");

    // SIGTERM (as `kill %1` sends) stops it cleanly: exit 0.
    #[cfg(unix)]
    {
        let pid = emulator.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        assert_eq!(emulator.child.wait().unwrap().code(), Some(0), "exit 0 when stopped");
    }
}

#[test]
fn emulator_env_flags_fail_cleanly() {
    let sandbox = Sandbox::new();
    let world = repo_root().join("examples/demo/world.toml");
    let world = world.to_str().unwrap();
    let output = sandbox.run(["emulator", "--world", world, "--env-file", "no-such-dir/emulator.env"]);
    output.assert_exit(1).assert_no_panic();
    assert!(output.stdout.is_empty(), "no ready line for an emulator that is not serving\n{output}");
    assert!(output.stderr.contains("cannot write the environment to no-such-dir/emulator.env"), "{output}");
    assert!(output.stderr.contains("hint:"), "{output}");
    assert!(!sandbox.path().join("no-such-dir").exists());

    let output = sandbox.run(["emulator", "--generate", "clusters=1", "--print-env"]);
    output.assert_exit(1).assert_no_panic();
    assert!(output.stderr.contains("--print-env") && output.stderr.contains("--generate"), "{output}");
}

#[test]
fn show_re_renders_a_saved_plan_in_every_format_without_azure() {
    let azure = Emulated::start(&std::fs::read_to_string(repo_root().join("examples/demo/world.toml")).unwrap());
    let sandbox = azure.sandbox_with(&std::fs::read_to_string(repo_root().join("examples/demo/acrlink.toml")).unwrap());
    let made = sandbox.run(["--color", "never", "plan", "--out", "plan.json"]);
    made.assert_exit(0);
    let saved = std::fs::read_to_string(sandbox.path().join("plan.json")).unwrap();

    // Elsewhere (another CI job): no Azure environment, no desired-state file, only the plan.
    let elsewhere = Sandbox::new();
    elsewhere.write("plan.json", &saved);
    let show = |format: &str| {
        let output = elsewhere.run(["--color", "never", "show", "plan.json", "--format", format]);
        output.assert_exit(0).assert_no_panic();
        output.stdout
    };
    assert_eq!(show("text"), made.stdout, "text is what plan printed");
    assert_eq!(elsewhere.run(["--color", "never", "show", "plan.json"]).stdout, made.stdout, "text by default");
    assert_eq!(show("json"), saved, "json is the saved document");
    let markdown = sandbox.run(["--color", "never", "plan", "--format", "markdown"]);
    assert_eq!(show("markdown"), markdown.assert_exit(0).stdout, "markdown is what plan --format markdown prints");

    // With the emulator's environment at hand, show still sends it nothing.
    azure.emulator().reset_ledger();
    sandbox.run(["show", "plan.json", "--format", "markdown"]).assert_exit(0);
    assert!(azure.emulator().ledger().entries.is_empty(), "show contacted the emulator");
}

#[test]
fn show_refuses_what_is_not_a_plan_as_apply_does() {
    let sandbox = sandbox_with_sub();
    sandbox.write("old.json", r#"{"format_version": 1, "changes": []}"#);
    sandbox.write("other.json", r#"{"format_version": 2, "hello": "world"}"#);
    for file in ["sub/acrlink.toml", "old.json", "other.json", "missing.json", "sub"] {
        let show = sandbox.run(["--color", "never", "show", file]);
        show.assert_exit(1).assert_no_panic();
        assert!(show.stdout.is_empty(), "{show}");
        assert!(show.stderr.contains(file), "names the file\n{show}");
        // The same words as apply's saved-plan loader.
        let apply = sandbox.run(["--color", "never", "apply", file]);
        assert_eq!(show.stderr, apply.stderr, "{file}");
    }
    let output = sandbox.run(["show", "old.json", "-c", "sub/acrlink.toml"]);
    output.assert_exit(1);
    assert!(output.stderr.contains("-c/--config does not apply to `acrlink show`"), "{output}");
}
