//! The `acrlink` executable: process setup, then `cli::main`. The command line lives here, in
//! the binary, not in the library's API.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Every TLS client in the process uses ring; without this, azure_identity and kube panic
    // when they build their first client (no process-level crypto provider).
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        eprintln!(
            "error: acrlink hit an internal error{location}: {message}\n  = hint: this is a bug in acrlink; please report it with the command you ran"
        );
    }));
    match std::panic::catch_unwind(cli::main) {
        Ok(code) => code,
        Err(_) => ExitCode::from(1),
    }
}
