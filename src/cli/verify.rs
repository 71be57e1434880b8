//! `acrlink verify`: can every bound cluster pull, and if not, why. Loads the file, runs the
//! layers up to --probe, prints the report and exits 0 (all pull), 2 (something cannot) or 1.

use std::path::Path;

use super::fleet::{AzureArgs, Connection, OutputFormat, load_config, log_request_counts, status};
use super::{Exit, report_error};
use acrlink::config::model::ClusterSelector;
use acrlink::provider::registry::RegistryClient;
use acrlink::render;
use acrlink::verify::{self, Layer, Options};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub azure: AzureArgs,
    /// The deepest layer to run: azure (grants, policies, network; no cluster access) or registry (also pull-secret credentials at the registry's token endpoint)
    #[arg(long, value_enum, default_value_t = Layer::Registry)]
    pub probe: Layer,
    /// Only these clusters: a key, a glob ("aks-dev-*"), labels ("env=prod") or "*"
    #[arg(long, value_name = "SELECTOR", value_parser = parse_selector)]
    pub clusters: Option<ClusterSelector>,
    /// text (a table per cluster), json (schemas/verify.schema.json) or markdown (pull-request comments)
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// How many clusters and registries to check at once
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

fn parse_selector(text: &str) -> Result<ClusterSelector, String> {
    ClusterSelector::parse(text)
}

pub fn run(config_path: &Path, args: &VerifyArgs) -> Exit {
    let result = (|| -> Result<Exit, Exit> {
        let (config, _) = load_config(config_path)?;
        let connection = Connection::open(Some(&config), &args.azure)?;
        let registries = RegistryClient::new(connection.settings.registry_endpoint.as_deref()).map_err(|e| {
            report_error(&e.to_string(), None);
            Exit::Error
        })?;
        let options =
            Options { probe: args.probe, clusters: args.clusters.clone(), parallelism: usize::from(args.parallelism) };
        status("Verifying that every bound cluster can pull…");
        let clients = &connection.clients;
        let report =
            connection.runtime.block_on(verify::verify(&config, &*clients.azure, &clients.kube, &registries, &options));
        log_request_counts(clients);
        tracing::info!(
            registry_requests = registries.requests.load(std::sync::atomic::Ordering::Relaxed),
            "registry requests"
        );
        let text = match args.format {
            OutputFormat::Text => render::verify::text(&report),
            OutputFormat::Json => render::verify::json(&report),
            OutputFormat::Markdown => render::verify::markdown(&report),
        };
        anstream::print!("{text}");
        Ok(if !report.errors.is_empty() {
            Exit::Error
        } else if report.failed() {
            Exit::Changes
        } else {
            Exit::Ok
        })
    })();
    result.unwrap_or_else(|exit| exit)
}
