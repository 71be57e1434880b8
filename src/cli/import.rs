//! `acrlink import`: reads the fleet in scope and writes the desired-state file whose first plan
//! is empty. The clock (SOURCE_DATE_EPOCH, else now) and the output are the CLI's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::fleet::{AzureArgs, Connection, log_request_counts, status};
use super::{Exit, report_error};
use acrlink::import::grants::Unexpressed;
use acrlink::import::write::{Format, Header, describe};
use acrlink::import::{self, Outcome, Scope};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub azure: AzureArgs,
    /// A subscription to read (repeatable); default: every subscription the identity can see
    #[arg(long = "subscription", value_name = "ID")]
    pub subscriptions: Vec<String>,
    /// Only clusters and registries in this resource group (repeatable: any of them)
    #[arg(long = "resource-group", value_name = "RG")]
    pub resource_groups: Vec<String>,
    /// Only clusters carrying this Azure tag (repeatable: all of them); registries are not filtered by tags
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Also read each cluster's kubernetes.io/dockerconfigjson Secrets and the ServiceAccounts naming them (through AKS credentials, as plan does): acrlink's own become pull-secret bindings, the rest comments naming their registries and credential kinds (never a value)
    #[arg(long)]
    pub pull_secrets: bool,
    /// File format; default: yaml when --out ends in .yaml or .yml, else toml
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FileFormat>,
    /// Where to write the file; "-" (the default) is stdout
    #[arg(long, value_name = "FILE|-", default_value = "-")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    Toml,
    Yaml,
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE (e.g. --tag team=payments)")),
    }
}

impl ImportArgs {
    fn to_stdout(&self) -> bool {
        self.out.as_os_str() == "-"
    }

    fn file_format(&self) -> Format {
        let yaml_name = !self.to_stdout()
            && self.out.extension().and_then(|e| e.to_str()).is_some_and(|e| e == "yaml" || e == "yml");
        match self.format {
            Some(FileFormat::Yaml) => Format::Yaml,
            Some(FileFormat::Toml) => Format::Toml,
            None if yaml_name => Format::Yaml,
            None => Format::Toml,
        }
    }

    fn scope(&self, subscriptions: Vec<String>) -> Scope {
        Scope {
            subscriptions,
            resource_groups: self.resource_groups.clone(),
            tags: self.tags.iter().cloned().collect::<BTreeMap<_, _>>(),
        }
    }
}

pub fn run(args: &ImportArgs) -> Exit {
    let result = (|| -> Result<Exit, Exit> {
        let connection = Connection::open(None, &args.azure)?;
        let clients = &connection.clients;
        status("Reading the fleet…");
        let subscriptions = match args.subscriptions.is_empty() {
            false => args.subscriptions.clone(),
            true => connection.runtime.block_on(clients.azure.list_subscriptions()).map_err(|e| {
                report_error(&format!("cannot list subscriptions: {e}"), Some("name them with --subscription ID"));
                Exit::Error
            })?,
        };
        let scope = args.scope(subscriptions);
        let live = connection.runtime.block_on(import::read(&scope, &*clients.azure)).map_err(|e| {
            report_error(&e.to_string(), Some("the identity needs Reader on the clusters and registries in scope"));
            Exit::Error
        })?;
        let secrets = match args.pull_secrets {
            false => None,
            true => {
                status("Reading the clusters' pull Secrets…");
                let keys = import::layout::keys(&live);
                let read = import::secrets::read(&live, &keys, &*clients.azure, &clients.kube);
                Some(connection.runtime.block_on(read).map_err(|e| {
                    report_error(
                        &e.to_string(),
                        Some("--pull-secrets lists secrets and serviceaccounts in every cluster in scope (Azure Kubernetes Service Cluster User Role, and read on them in Kubernetes)"),
                    );
                    Exit::Error
                })?)
            }
        };
        log_request_counts(clients);
        let outcome = Outcome::decide(live, secrets.as_ref());
        let text = written(&outcome, &scope, args.file_format())?;
        checked(&text, args)?;
        output(&text, args)?;
        warn_unexpressed(&outcome);
        Ok(Exit::Ok)
    })();
    result.unwrap_or_else(|exit| exit)
}

/// The file's text, under a header dated SOURCE_DATE_EPOCH (reproducible output) or now.
fn written(outcome: &Outcome, scope: &Scope, format: Format) -> Result<String, Exit> {
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    let imported_at = now
        .replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let header = Header { version: super::VERSION, imported_at: &imported_at, scope };
    outcome.file(&header, format).map_err(|e| {
        report_error(&e.to_string(), None);
        Exit::Error
    })
}

/// The written file must validate: a file acrlink itself refuses is a bug, never output.
fn checked(text: &str, args: &ImportArgs) -> Result<(), Exit> {
    let name = match args.file_format() {
        Format::Toml => "imported.toml",
        Format::Yaml => "imported.yaml",
    };
    let (config, diagnostics) = acrlink::config::validate_text(text, Path::new(name));
    if config.is_some() {
        return Ok(());
    }
    let problems: Vec<String> = diagnostics.iter().map(|d| format!("{}: {}", d.path, d.message)).collect();
    report_error(
        &format!("the imported file does not validate (a bug in acrlink import): {}", problems.join("; ")),
        Some("please report it with the output of `acrlink import -vv`"),
    );
    Err(Exit::Error)
}

fn output(text: &str, args: &ImportArgs) -> Result<(), Exit> {
    if args.to_stdout() {
        anstream::print!("{text}");
        return Ok(());
    }
    std::fs::write(&args.out, text).map_err(|e| {
        report_error(
            &format!("cannot write {}: {e}", args.out.display()),
            Some("choose an --out path in a directory that exists and can be written"),
        );
        Exit::Error
    })?;
    status(&format!("Wrote {}; check it with `acrlink plan -c {}`.", args.out.display(), args.out.display()));
    Ok(())
}

/// What the file cannot say is in its comments; stderr says how much, and each plan would touch.
fn warn_unexpressed(outcome: &Outcome) {
    let unexpressed = &outcome.grants.unexpressed;
    if unexpressed.is_empty() {
        return;
    }
    status(&format!(
        "{} thing(s) acrlink cannot express: listed in comments at the top of the file.",
        unexpressed.len()
    ));
    for note in
        unexpressed.iter().filter(|u| matches!(u, Unexpressed::PlanWould { .. } | Unexpressed::Unreadable { .. }))
    {
        anstream::eprintln!("{} {}", acrlink::render::style::warning("warning:"), describe(note));
    }
}
