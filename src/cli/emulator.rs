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
    let result = runtime.block_on(acrlink_emulator::run_command(
        args.world.clone(),
        args.listen,
        args.generate.clone(),
        args.out.clone(),
    ));
    match result {
        Ok(()) => Exit::Ok,
        Err(e) => {
            report_error(&e.to_string(), None);
            Exit::Error
        }
    }
}
