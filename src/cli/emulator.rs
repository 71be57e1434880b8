//! `acrlink emulator`: runs the local Azure emulator (a separate crate) in the foreground, or
//! writes a generated world. The only command besides `demo` that starts the emulator.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{Exit, report_error};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["world", "generate"])))]
pub struct EmulatorArgs {
    /// World file describing tenant, subscriptions, clusters, registries, principals and faults
    #[arg(long, value_name = "FILE")]
    pub world: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free one
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Write a large consistent world instead of serving, e.g. clusters=1000,registries=20,subscriptions=5
    #[arg(long, value_name = "SPEC")]
    pub generate: Option<String>,
    /// With --generate: write the world here instead of stdout
    #[arg(long, value_name = "FILE", requires = "generate")]
    pub out: Option<PathBuf>,
    /// After the ready line, print the environment that targets the emulator as `export NAME='value'` lines
    #[arg(long, conflicts_with = "generate")]
    pub print_env: bool,
    /// Write those `export` lines to FILE (readable by you only) before the ready line, for `. FILE` in another shell
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    pub env_file: Option<PathBuf>,
}

/// `export NAME='value'` lines (POSIX shell quoting) for an environment, sorted by name.
#[cfg(feature = "emulator")]
pub fn export_lines(env: &std::collections::BTreeMap<String, String>) -> String {
    env.iter().map(|(name, value)| format!("export {name}='{}'\n", value.replace('\'', r"'\''"))).collect()
}

#[cfg(not(feature = "emulator"))]
pub fn run(_: &EmulatorArgs) -> Exit {
    not_built_in("emulator")
}

/// The command needs the emulator, which this build left out.
#[cfg(not(feature = "emulator"))]
pub fn not_built_in(command: &str) -> Exit {
    report_error(
        &format!("`acrlink {command}` needs the built-in emulator, and this acrlink was built without it"),
        Some("install the default build: cargo install --locked --path . (the `emulator` feature is on by default)"),
    );
    Exit::Error
}

#[cfg(feature = "emulator")]
pub fn run(args: &EmulatorArgs) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            report_error(&format!("cannot start the async runtime: {e}"), None);
            return Exit::Error;
        }
    };
    let result = match (&args.world, args.print_env || args.env_file.is_some()) {
        (Some(world), true) => runtime.block_on(serve_with_env(world, args)),
        _ => runtime
            .block_on(acrlink_emulator::run_command(
                args.world.clone(),
                args.listen,
                args.generate.clone(),
                args.out.clone(),
            ))
            .map_err(|e| (e.to_string(), None)),
    };
    match result {
        Ok(()) => Exit::Ok,
        Err((message, hint)) => {
            report_error(&message, hint);
            Exit::Error
        }
    }
}

/// An error message and what to do about it.
#[cfg(feature = "emulator")]
type Failure = (String, Option<&'static str>);

/// `acrlink_emulator::run_command` with the environment also written to --env-file (before the
/// ready line, so whoever waits for that line finds the file complete) and printed after the
/// ready line with --print-env. The ready line itself is the same JSON line, first on stdout.
#[cfg(feature = "emulator")]
async fn serve_with_env(world: &std::path::Path, args: &EmulatorArgs) -> Result<(), Failure> {
    use std::io::Write;
    let plain = |e: acrlink_emulator::EmulatorError| (e.to_string(), None);
    let world = acrlink_emulator::World::from_file(world).map_err(plain)?;
    let emulator = acrlink_emulator::Emulator::start(world, args.listen).await.map_err(plain)?;
    let ready = emulator.ready_info();
    let exports = export_lines(&ready.env);
    if let Some(path) = &args.env_file {
        write_env_file(path, &exports)?;
    }
    let line = serde_json::to_string(&ready).map_err(|e| (format!("cannot write the ready line: {e}"), None))?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")
            .and_then(|()| if args.print_env { stdout.write_all(exports.as_bytes()) } else { Ok(()) })
            .and_then(|()| stdout.flush())
            .map_err(|e| (format!("cannot write to stdout: {e}"), None))?;
    }
    // Serves until SIGINT or SIGTERM, as `acrlink_emulator::run_command` does.
    acrlink_emulator::wait_for_signal().await;
    emulator.shutdown().await;
    Ok(())
}

/// Writes the export lines whole (a temporary file renamed into place), readable by the user
/// only: they hold the emulator's client secret.
#[cfg(feature = "emulator")]
fn write_env_file(path: &std::path::Path, exports: &str) -> Result<(), Failure> {
    use std::io::Write;
    let failed = |e: std::io::Error| {
        (
            format!("cannot write the environment to {}: {e}", path.display()),
            Some("choose a --env-file path in a directory that exists and can be written"),
        )
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&temporary)
        .and_then(|mut file| file.write_all(exports.as_bytes()).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(failed(e));
    }
    Ok(())
}
