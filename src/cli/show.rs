//! `acrlink show PLANFILE`: re-renders a plan saved by `acrlink plan --out FILE` (for a
//! pull-request comment from a plan made in an earlier CI job). Reads the file only: no
//! desired-state file, no Azure.

use std::path::PathBuf;

use super::Exit;
use super::fleet::{self, OutputFormat};

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A plan saved by `acrlink plan --out FILE`
    #[arg(value_name = "PLANFILE")]
    pub plan_file: PathBuf,
    /// text (as plan prints it), json (the saved document) or markdown (pull-request comments)
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// List the resources already in place too (by default text and markdown only count them)
    #[arg(long)]
    pub show_unchanged: bool,
}

pub fn run(args: &ShowArgs) -> Exit {
    match fleet::read_saved_plan(&args.plan_file) {
        Ok(plan) => {
            anstream::print!("{}", fleet::render_plan(&plan, args.format, args.show_unchanged));
            Exit::Ok
        }
        Err(exit) => exit,
    }
}
