//! The command line: parses arguments, builds the concrete adapters, runs one command and maps
//! its outcome to an exit code (0 ok / no changes, 1 error, 2 changes or drift where asked).
//! Commands stay thin: the work happens in the engine modules.

#[cfg(feature = "emulator")]
mod demo;
mod docs;
mod emulator;
mod fleet;
mod import;
mod interrupt;
mod show;
mod validate;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Exit codes are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    Changes = 2,
    /// Stopped by SIGINT or SIGTERM (`interrupt::EXIT_CODE`).
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// `acrlink --version`: the package version and the commit it was built from (build.rs;
/// "unknown" outside a git checkout, e.g. from a source tarball).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("ACRLINK_GIT_COMMIT"), ")");

#[derive(Debug, Parser)]
#[command(
    name = "acrlink",
    version = VERSION,
    about = "Keep AKS clusters able to pull from Azure Container Registries, declaratively",
    long_about = "acrlink reads one desired-state file (acrlink.toml) listing which AKS clusters may pull \
from which Azure Container Registries, compares it with live Azure and Kubernetes state, and \
plans and applies only the differences: AcrPull role assignments for kubelet identities, and \
image pull Secrets with service-account imagePullSecrets.",
    after_help = "Exit codes: 0 ok (no changes), 1 error, 2 changes or drift (plan --detailed-exitcode, drift).\n\
Start with `acrlink validate -c acrlink.toml`; `acrlink schema` prints the file's JSON Schema."
)]
pub struct Cli {
    /// Desired-state file (.toml, or .yaml/.yml). Default: ./acrlink.toml, else ./acrlink.yaml
    #[arg(short = 'c', long = "config", global = true, env = "ACRLINK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Change to DIR before anything else (like git -C): files, -c FILE and ACRLINK_CONFIG are then read from there
    #[arg(short = 'C', long = "chdir", global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// More detail on stderr: -v info, -vv debug, -vvv trace (secrets are never logged)
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to colour output; NO_COLOR in the environment also turns it off
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the desired-state file and report every problem with file, line, column and field
    #[command(after_help = "Exits 0 when the file is valid (warnings allowed), 1 otherwise. Nothing is contacted.")]
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of the desired-state file (for editors and CI checks)
    #[command(after_help = "The same document is committed as schemas/acrlink.schema.json. In TOML, point editors \
(Taplo, Even Better TOML) at it with a first line `#:schema ./schemas/acrlink.schema.json`.")]
    Schema(SchemaArgs),
    /// Compare the file with live Azure state and show what apply would change
    #[command(after_help = "Exit codes: 0 no changes, 1 error, 2 changes (with --detailed-exitcode).\n\
Examples:\n  acrlink plan\n  acrlink plan --detailed-exitcode --format markdown > plan.md\n  acrlink plan --out plan.json && acrlink apply plan.json")]
    Plan(fleet::PlanArgs),
    /// Print a plan saved by `plan --out FILE` again, as text, JSON or Markdown, without contacting Azure
    #[command(after_help = "Exit codes: 0 shown, 1 the file cannot be read or is not a plan this acrlink reads.\n\
Example (a pull-request comment from a plan made in an earlier CI job):\n  \
acrlink plan --out plan.json\n  acrlink show plan.json --format markdown > plan.md")]
    Show(show::ShowArgs),
    /// Make live state match the file: apply a fresh plan, or a saved one
    #[command(
        after_help = "Asks for confirmation on a terminal; elsewhere needs --auto-approve. A saved plan is re-checked \
against live state first and refused when stale. Exit codes: 0 ok, 1 anything failed."
    )]
    Apply(fleet::ApplyArgs),
    /// Remove everything this file's owner made: grants, pull Secrets, service-account entries, tokens, scope maps
    #[command(
        after_help = "Plans the removal (what a file that binds nothing would prune) and applies it after the same \
confirmation as apply; nothing acrlink did not make is touched. --target/--cluster narrow it. \
Exit codes: 0 ok, 1 anything failed, 130 interrupted."
    )]
    Destroy(fleet::DestroyArgs),
    /// Report what changed outside acrlink: missing, changed and extra grants
    #[command(
        after_help = "Exit codes: 0 no drift, 2 drift, 1 error. Run it on a schedule; `acrlink apply` repairs it."
    )]
    Drift(fleet::DriftArgs),
    /// Check that every bound cluster can pull from its registries, and name the cause where one cannot
    #[command(after_help = "Exit codes: 0 every cluster can pull, 2 something cannot, 1 error.\n\
Examples:\n  acrlink verify\n  acrlink verify --probe azure --clusters env=prod\n  acrlink verify --format markdown > verify.md")]
    Verify(verify::VerifyArgs),
    /// Print the dependency graph of the fleet's resources as Graphviz DOT
    #[command(after_help = "Example: acrlink graph | dot -Tsvg > graph.svg")]
    Graph(fleet::GraphArgs),
    /// Write the desired-state file of a live fleet, so that its first plan is empty
    #[command(
        after_help = "Reads the clusters and registries in scope and the role assignments that let kubelet identities \
pull (made by acrlink, by `az aks update --attach-acr` or by hand, at any covering scope), and writes a file that \
validates and whose `acrlink plan` shows no changes. What acrlink cannot express is listed as comments at its top.\n\
Exit codes: 0 written, 1 error (nothing written).\n\
Examples:\n  acrlink import --subscription SUB --out acrlink.toml && acrlink plan --detailed-exitcode\n  \
acrlink import --subscription SUB --resource-group platform-rg --tag env=prod --format yaml --out acrlink.yaml"
    )]
    Import(import::ImportArgs),
    /// Run the local Azure emulator (Entra, ARM for AKS/ACR/role assignments) on loopback
    #[command(
        after_help = "Prints one JSON line when ready: {\"arm_endpoint\", \"authority_host\", \"tenant_id\", \"env\": {...}}.\n\
Export its `env` and acrlink (or any Azure SDK client) talks to the emulator. Serves until interrupted.\n\
--print-env prints that environment as `export` lines after the ready line; --env-file FILE writes them \
to FILE before it, for `. FILE` in another shell.\n\
Examples:\n  acrlink emulator --world examples/demo/world.toml\n  \
acrlink emulator --world examples/demo/world.toml --env-file emulator.env &  # then: . ./emulator.env\n  acrlink emulator --generate clusters=1000,registries=20,subscriptions=5 --out big.toml"
    )]
    Emulator(emulator::EmulatorArgs),
    /// A guided tour on the built-in emulator: plan, apply, plan, drift behind acrlink's back, apply, drift, then verify naming why a cluster cannot pull and passing after the fix
    Demo,
    /// Print a shell completion script (bash, zsh, fish, powershell or elvish)
    #[command(
        after_help = "Examples:\n  acrlink completions bash > ~/.local/share/bash-completion/completions/acrlink\n  \
acrlink completions zsh > \"${fpath[1]}/_acrlink\"\n  acrlink completions fish > ~/.config/fish/completions/acrlink.fish\n  \
acrlink completions powershell >> $PROFILE"
    )]
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff), or write one page per command with --out DIR
    #[command(after_help = "Examples:\n  acrlink man | man -l -\n  acrlink man --out /usr/local/share/man/man1")]
    Man(docs::ManArgs),
}

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Which document: the desired-state file (default), the JSON plan, or the JSON output of
    /// apply, drift, validate or verify
    #[arg(value_enum, default_value_t = SchemaKind::Config)]
    pub kind: SchemaKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    Config,
    Plan,
    /// `apply --format json`
    Apply,
    /// `drift --format json`
    Drift,
    /// `validate --format json`
    Validate,
    /// The JSON report of `acrlink verify --format json`
    Verify,
}

impl Command {
    /// For a command that reads no desired-state file: its name and what to do instead of -c.
    fn ignores_config(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Command::Validate(_)
            | Command::Plan(_)
            | Command::Apply(_)
            | Command::Destroy(_)
            | Command::Drift(_)
            | Command::Graph(_)
            | Command::Verify(_) => None,
            Command::Schema(_) => {
                Some(("schema", "leave out -c; to check a file against the schema, run `acrlink validate -c FILE`"))
            }
            Command::Import(_) => {
                Some(("import", "leave out -c: import writes a file, given with --out FILE, and reads none"))
            }
            Command::Emulator(_) => Some((
                "emulator",
                "leave out -c: the emulator serves the world given with --world FILE; run `acrlink -c FILE plan` against it from another shell",
            )),
            Command::Demo => Some(("demo", "leave out -c: the demo brings its own file and world (examples/demo/)")),
            Command::Completions(_) => Some(("completions", "leave out -c: completions do not depend on a file")),
            Command::Man(_) => Some(("man", "leave out -c: the man page does not depend on a file")),
            Command::Show(_) => {
                Some(("show", "leave out -c: the saved plan is shown as it was made, whatever the file says now"))
            }
        }
    }
}

/// Parses arguments and runs; usage errors exit 1 (not clap's 2, which means "changes" here).
pub fn main() -> ExitCode {
    let parsed = Cli::command().try_get_matches().and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            let _ = err.print();
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => Exit::Ok.into(),
                _ => Exit::Error.into(),
            };
        }
    };
    configure_output(&cli);
    // A flag the command would ignore is a usage error: the user meant something by it.
    // ACRLINK_CONFIG in the environment is not: it is set for every command alike.
    if let Some((command, hint)) = cli.command.ignores_config()
        && matches.value_source("config") == Some(clap::parser::ValueSource::CommandLine)
    {
        report_error(
            &format!("-c/--config does not apply to `acrlink {command}`: it reads no desired-state file"),
            Some(hint),
        );
        return Exit::Error.into();
    }
    if let Some(dir) = &cli.chdir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        report_error(
            &format!("cannot change to directory {}: {e}", dir.display()),
            Some("-C/--chdir DIR needs a directory that exists; relative paths start from where acrlink was run"),
        );
        return Exit::Error.into();
    }
    run(cli).into()
}

fn configure_output(cli: &Cli) {
    let choice = match cli.color {
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
        ColorWhen::Auto => anstream::ColorChoice::Auto,
    };
    choice.write_global();
    let level = match cli.verbose {
        // acrlink's own warnings only: libraries' log lines (kube's connection errors) would
        // repeat, less clearly, what acrlink reports once; -vvv and ACRLINK_LOG show them.
        0 => "acrlink=warn",
        1 => "acrlink=info",
        2 => "acrlink=debug",
        _ => "acrlink=trace,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ACRLINK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colour(cli.color))
        .without_time()
        .try_init();
}

/// Colour in log lines: asked for, or `auto` on a terminal without NO_COLOR (CI logs and
/// files get plain text).
fn log_colour(color: ColorWhen) -> bool {
    use std::io::IsTerminal;
    match color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

fn run(cli: Cli) -> Exit {
    let config_path = cli.config.clone().unwrap_or_else(acrlink::config::default_path);
    match cli.command {
        Command::Validate(args) => validate::run(&config_path, &args),
        Command::Plan(args) => fleet::plan(&config_path, &args),
        Command::Show(args) => show::run(&args),
        Command::Apply(args) => fleet::apply(&config_path, &args),
        Command::Destroy(args) => fleet::destroy(&config_path, args),
        Command::Drift(args) => fleet::drift(&config_path, &args),
        Command::Graph(args) => fleet::graph(&config_path, &args),
        Command::Import(args) => import::run(&args),
        Command::Verify(args) => verify::run(&config_path, &args),
        Command::Emulator(args) => emulator::run(&args),
        Command::Demo => run_demo(cli.color),
        Command::Completions(args) => docs::completions(&args),
        Command::Man(args) => docs::man(&args),
        Command::Schema(args) => {
            let schema = match args.kind {
                SchemaKind::Config => acrlink::config::raw::json_schema(),
                SchemaKind::Plan => acrlink::plan::json_schema(),
                SchemaKind::Apply => acrlink::render::plan::apply_json_schema(),
                SchemaKind::Drift => acrlink::render::plan::drift_json_schema(),
                SchemaKind::Validate => acrlink::render::diagnostics::json_schema(),
                SchemaKind::Verify => acrlink::verify::json_schema(),
            };
            anstream::println!("{}", serde_json::to_string_pretty(&schema).unwrap_or_default());
            Exit::Ok
        }
    }
}

#[cfg(feature = "emulator")]
fn run_demo(color: ColorWhen) -> Exit {
    demo::run(color)
}

#[cfg(not(feature = "emulator"))]
fn run_demo(_: ColorWhen) -> Exit {
    emulator::not_built_in("demo")
}

/// Prints an error for a person: what failed, then any hint, on stderr.
pub fn report_error(message: &str, hint: Option<&str>) {
    anstream::eprintln!("{} {message}", acrlink::render::style::error("error:"));
    if let Some(hint) = hint {
        anstream::eprintln!("  {} {hint}", acrlink::render::style::hint("= hint:"));
    }
}
