//! `acrlink completions SHELL` and `acrlink man`: shell completions and man pages, generated
//! from the same clap definitions that parse the command line, so they cannot fall behind it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::{Cli, Exit, report_error};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write acrlink.1 and one page per command (acrlink-plan.1, …) into this directory
    /// instead of printing acrlink.1 on stdout
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn completions(args: &CompletionsArgs) -> Exit {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "acrlink", &mut script);
    write_stdout(&script)
}

pub fn man(args: &ManArgs) -> Exit {
    match &args.out {
        Some(dir) => write_pages(dir),
        None => {
            let mut page = Vec::new();
            if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut page) {
                report_error(&format!("cannot render the man page: {e}"), None);
                return Exit::Error;
            }
            write_stdout(&page)
        }
    }
}

fn write_pages(dir: &Path) -> Exit {
    if !dir.is_dir() {
        report_error(
            &format!("cannot write the man pages to {}: not a directory", dir.display()),
            Some("create the directory first, e.g. mkdir -p man && acrlink man --out man"),
        );
        return Exit::Error;
    }
    match clap_mangen::generate_to(Cli::command(), dir) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            report_error(&format!("cannot write the man pages to {}: {e}", dir.display()), None);
            Exit::Error
        }
    }
}

/// Writes bytes to stdout; a closed pipe (`acrlink man | head`) is not an error worth a panic.
fn write_stdout(bytes: &[u8]) -> Exit {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
        Err(e) => {
            report_error(&format!("cannot write to stdout: {e}"), None);
            Exit::Error
        }
    }
}
