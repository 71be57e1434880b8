//! `acrlink validate`: load and check the file, print the report.

use std::path::Path;

use super::{Exit, report_error};
use acrlink::config::{self, LoadError};
use acrlink::render::diagnostics;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The file to check (the same as -c FILE)
    #[arg(value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// Report format: text for people, json for scripts (versioned)
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

pub fn run(path: &Path, args: &ValidateArgs) -> Exit {
    let path = args.file.as_deref().unwrap_or(path);
    let (config, report) = match config::load(path) {
        Ok(loaded) => loaded,
        Err(err) => {
            let hint = match &err {
                LoadError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    Some("pass the file with -c FILE, or run acrlink where acrlink.toml is")
                }
                _ => None,
            };
            if args.format == ReportFormat::Json {
                anstream::print!("{}", diagnostics::unreadable_json(path, &err.to_string(), hint));
            }
            report_error(&err.to_string(), hint);
            return Exit::Error;
        }
    };
    match args.format {
        ReportFormat::Text => anstream::print!("{}", diagnostics::text(&report, config.as_ref())),
        ReportFormat::Json => anstream::print!("{}", diagnostics::json(&report)),
    }
    if report.has_errors() { Exit::Error } else { Exit::Ok }
}
