//! `acrlink verify`: can every bound cluster pull, and if not, why. Loads the file, runs the
//! layers up to --probe, prints the report and exits 0 (all pull), 2 (something cannot) or 1.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::fleet::{AzureArgs, Connection, OutputFormat, load_config, log_request_counts, status};
use super::{Exit, interrupt, report_error};
use acrlink::config::model::ClusterSelector;
use acrlink::provider::registry::RegistryClient;
use acrlink::render;
use acrlink::verify::{self, Layer, Options};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub azure: AzureArgs,
    /// The deepest layer to run: azure (grants, policies, network; no cluster access), registry (also pull-secret credentials at the registry's token endpoint) or pod (also a probe pod per cluster and registry that the kubelet pulls, then deleted)
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
    /// How long the pod probe waits for a pull, role-propagation retries included ("90s", "5m")
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The probe image for --probe pod: REPOSITORY:TAG (looked up on every registry) or an image on one registry; overrides verify.image in the file
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    acrlink::config::names::duration_seconds(text).map(Duration::from_secs)
}

/// What verify says when stopped: its probe pods are deleted before it exits.
const STOPPED: interrupt::Wording = interrupt::Wording {
    first: "Interrupted: deleting the probe pods (signal again to stop at once)",
    second: "Stopped at once; probe pods may be left: the next `acrlink verify --probe pod` deletes them",
    overdue: "Probe pods were not deleted in time; stopped: the next `acrlink verify --probe pod` deletes them",
};

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
        let options = Options {
            probe: args.probe,
            clusters: args.clusters.clone(),
            parallelism: usize::from(args.parallelism),
            timeout: args.timeout,
            image: args.image.clone(),
            stop: Arc::default(),
        };
        interrupt::watch_worded(&connection.runtime, options.stop.clone(), &STOPPED, |line| {
            anstream::eprintln!("{}", render::style::warning(line));
        });
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
        Ok(if options.stop.load(Ordering::SeqCst) {
            report_error("verify was interrupted; its probe pods were deleted", None);
            Exit::Interrupted
        } else if !report.errors.is_empty() {
            Exit::Error
        } else if report.failed() {
            Exit::Changes
        } else {
            Exit::Ok
        })
    })();
    result.unwrap_or_else(|exit| exit)
}
