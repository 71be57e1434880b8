//! The command line's own edges (issue 12): completions and man pages generated from the clap
//! definitions, `--version`, `-C/--chdir`, flags a command would ignore, `emulator
//! --print-env`/`--env-file` and `show PLANFILE`.

use crate::support::{Sandbox, acrlink};

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
