//! The commands that talk to Azure: plan, apply, drift and graph. Each loads the file, builds
//! the Azure client from the environment, runs the engine and renders the result.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Exit, report_error};
use acrlink::apply::{self, ApplyOptions};
use acrlink::auth::{self, AuthMethod};
use acrlink::check;
use acrlink::config::{self, Config};
use acrlink::engine;
use acrlink::methods::pull_secret;
use acrlink::plan::{self, Plan};
use acrlink::provider::azure::AzureClient;
use acrlink::provider::azure::arm::ArmClient;
use acrlink::provider::azure::auth::CloudEndpoints;
use acrlink::provider::kubernetes::live::KubeClients;
use acrlink::render::{self, style};
use acrlink::settings::Settings;
use acrlink::subset::Subset;

#[derive(Debug, Clone, clap::Args)]
pub struct AzureArgs {
    /// How to sign in to Azure. auto tries, in order and where their variables exist: service principal (AZURE_CLIENT_SECRET), workload identity (AZURE_FEDERATED_TOKEN_FILE), GitHub Actions OIDC, Azure Pipelines OIDC, managed identity (App Service, or IMDS if it answers within 1 s), Azure CLI / azd; the first that signs in wins (-v names it), and if none does the error says why each was not used
    #[arg(long, value_enum, default_value_t = AuthMethod::Auto, env = "ACRLINK_AUTH")]
    pub auth: AuthMethod,
    /// The identity to sign in as, where a method takes one: a user-assigned managed identity, or the application or identity of a federated credential (workload identity, GitHub and Azure Pipelines OIDC). Overrides AZURE_CLIENT_ID
    #[arg(long, value_name = "CLIENT_ID")]
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Markdown,
}

/// Subset runs: the whole fleet is read, and only the selected changes (with what they depend
/// on) are planned, shown and applied.
#[derive(Debug, clap::Args)]
pub struct SubsetArgs {
    /// Only this resource and the changes it depends on; repeatable; globs over addresses, e.g. 'role_assignment[aks-dev-*/*]' or 'secret[aks1/*/*]'
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// Only the clusters this selects (a key, a glob or labels such as env=dev, as in bindings), with what their changes depend on; repeatable
    #[arg(long = "cluster", value_name = "SELECTOR")]
    pub clusters: Vec<String>,
}

impl SubsetArgs {
    /// Parsed before anything is read, so a typo fails at once.
    fn subset(&self) -> Result<Subset, Exit> {
        Subset::new(&self.targets, &self.clusters).map_err(|e| {
            report_error(
                &e.to_string(),
                Some("--target takes an address or a glob over addresses (`acrlink plan --show-unchanged` lists them); --cluster a cluster key, glob or label selector"),
            );
            Exit::Error
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub azure: AzureArgs,
    #[command(flatten)]
    pub subset: SubsetArgs,
    /// Exit 2 when the plan has changes (0 none, 1 error)
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan (JSON, no secrets) for `acrlink apply FILE`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// text (Terraform-like), json (schemas/plan.schema.json) or markdown (pull-request comments)
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// List the resources already in place too (by default text and markdown only count them)
    #[arg(long)]
    pub show_unchanged: bool,
}

/// How changes are made: the same for apply and destroy.
#[derive(Debug, clap::Args)]
pub struct Execution {
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long)]
    pub auto_approve: bool,
    /// How many changes to apply at once
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Report format
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub azure: AzureArgs,
    #[command(flatten)]
    pub subset: SubsetArgs,
    /// A plan saved by `acrlink plan --out FILE`; without it, apply plans first
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub run: Execution,
    /// In the plan printed before applying, list the resources already in place too (by default only counted)
    #[arg(long)]
    pub show_unchanged: bool,
}

#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub azure: AzureArgs,
    #[command(flatten)]
    pub subset: SubsetArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// List the resources already in place too (by default text and markdown only count them)
    #[arg(long)]
    pub show_unchanged: bool,
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// Loads and validates the file; on problems prints them to stderr.
pub(super) fn load_config(path: &Path) -> Result<(Config, String), Exit> {
    match config::load(path) {
        Ok((Some(config), report)) => {
            for diagnostic in report.diagnostics.iter() {
                tracing::warn!(path = %diagnostic.path, line = diagnostic.line, "{}", diagnostic.message);
            }
            Ok((config, engine::digest(report.source.as_bytes())))
        }
        Ok((None, report)) => {
            anstream::eprint!("{}", render::diagnostics::text(&report, None));
            Err(Exit::Error)
        }
        Err(err) => {
            report_error(&err.to_string(), Some("pass the file with -c FILE, or run acrlink where acrlink.toml is"));
            Err(Exit::Error)
        }
    }
}

/// The Azure client and, sharing its credential, the Kubernetes clients reached through AKS.
pub(super) struct Clients {
    pub(super) azure: Arc<AzureClient>,
    pub(super) kube: KubeClients,
}

fn clients(config: Option<&Config>, args: &AzureArgs, settings: &Settings) -> Result<Clients, Exit> {
    let cloud = config.map(|c| c.cloud).unwrap_or_default();
    let context = auth::Context { cloud, tenant: config.and_then(|c| c.tenant_id.as_deref()) };
    let mut environment = auth::Environment::from_vars(std::env::vars());
    if let Some(client_id) = &args.client_id {
        environment = environment.with("AZURE_CLIENT_ID", client_id).with("AZURESUBSCRIPTION_CLIENT_ID", client_id);
    }
    let credential = auth::credential(args.auth, &context, &environment).map_err(|e| {
        report_error(&e.to_string(), Some("see `acrlink plan --help` for the sign-in methods and their variables"));
        Exit::Error
    })?;
    if args.auth != AuthMethod::Auto {
        tracing::info!(method = args.auth.name(), "signing in to Azure with {}", args.auth.name());
    }
    let endpoints = CloudEndpoints::for_cloud(cloud, settings.arm_endpoint.as_deref());
    let arm =
        ArmClient::new(&endpoints.arm_endpoint, &endpoints.arm_scope, credential.clone(), settings).map_err(|e| {
            report_error(&e.to_string(), None);
            Exit::Error
        })?;
    let (graph_endpoint, graph_scope) =
        acrlink::provider::azure::directory::endpoint(cloud, settings.graph_endpoint.as_deref());
    let graph = ArmClient::new(&graph_endpoint, &graph_scope, credential.clone(), settings).map_err(|e| {
        report_error(&e.to_string(), None);
        Exit::Error
    })?;
    let azure = Arc::new(AzureClient::new(arm).reading_via(settings.read_via).with_graph(graph));
    let mut kube = KubeClients::new(azure.clone(), credential, settings.retry.clone());
    if let Some(dir) = &settings.cache_dir {
        kube = kube.with_cache(acrlink::provider::kubernetes::cache::KubeconfigCache::new(dir));
    }
    Ok(Clients { azure, kube })
}

/// What every command that reads live state opens with: the file, the settings, the clients,
/// the runtime and a signed-in credential.
struct Session {
    config: Config,
    digest: String,
    connection: Connection,
}

/// Settings, clients, runtime and a signed-in credential.
pub(super) struct Connection {
    pub(super) settings: Settings,
    pub(super) clients: Clients,
    pub(super) runtime: tokio::runtime::Runtime,
}

impl Connection {
    pub(super) fn open(config: Option<&Config>, args: &AzureArgs) -> Result<Connection, Exit> {
        let settings = Settings::from_variables(|name| std::env::var(name).ok());
        let clients = clients(config, args, &settings)?;
        let runtime = runtime()?;
        sign_in(&runtime, &clients.azure)?;
        Ok(Connection { settings, clients, runtime })
    }
}

impl Session {
    fn open(config_path: &Path, args: &AzureArgs) -> Result<Session, Exit> {
        let (config, digest) = load_config(config_path)?;
        let connection = Connection::open(Some(&config), args)?;
        Ok(Session { config, digest, connection })
    }

    /// Reads live state and plans.
    fn plan(&self) -> engine::PlanRun {
        self.plan_for(Intent::Converge)
    }

    /// Reads live state and plans what `intent` asks for.
    fn plan_for(&self, intent: Intent) -> engine::PlanRun {
        status("Reading live state…");
        let clients = &self.connection.clients;
        let (azure, kube) = (&*clients.azure, &clients.kube);
        let run = self.connection.runtime.block_on(async {
            match intent {
                Intent::Converge => engine::plan(&self.config, &self.digest, azure, kube).await,
                Intent::Destroy => engine::plan_removal(&self.config, &self.digest, azure, kube).await,
            }
        });
        log_request_counts(clients);
        run
    }
}

fn sign_in(runtime: &tokio::runtime::Runtime, client: &AzureClient) -> Result<(), Exit> {
    runtime.block_on(client.arm.sign_in()).map_err(|e| {
        // Advice for Entra's code is the hint; the menu of methods only when there is none.
        let menu = "choose a method with --auth (auto, service-principal, workload-identity, github-oidc, azure-pipelines-oidc, managed-identity, azure-cli); `acrlink plan --help` lists the variables each needs";
        report_error(&format!("cannot sign in to Azure: {e}"), Some(e.advice.unwrap_or(menu)));
        Exit::Error
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        report_error(&format!("cannot start the async runtime: {e}"), None);
        Exit::Error
    })
}

pub(super) fn log_request_counts(clients: &Clients) {
    use std::sync::atomic::Ordering;
    let stats = &clients.azure.arm.stats;
    tracing::info!(
        requests = stats.requests.load(Ordering::Relaxed),
        retries = stats.retries.load(Ordering::Relaxed),
        throttled = stats.throttled.load(Ordering::Relaxed),
        kubernetes_requests = clients.kube.requests.load(Ordering::Relaxed),
        "requests"
    );
}

pub(super) fn render_plan(plan: &Plan, format: OutputFormat, show_unchanged: bool) -> String {
    let view = render::plan::View { show_unchanged };
    match format {
        OutputFormat::Text => render::plan::text_with(plan, view),
        OutputFormat::Json => render::plan::json(plan),
        OutputFormat::Markdown => render::plan::markdown_with(plan, view),
    }
}

pub(super) fn status(message: &str) {
    anstream::eprintln!("{}", style::dim(message));
}

pub fn plan(config_path: &Path, args: &PlanArgs) -> Exit {
    let result = (|| -> Result<Exit, Exit> {
        let subset = args.subset.subset()?;
        // Found out before live state is read, not after.
        let mut out_file = match &args.out {
            Some(out) => Some(open_for_plan(out)?),
            None => None,
        };
        let session = Session::open(config_path, &args.azure).inspect_err(|_| {
            // No plan was made: leave no empty plan file behind.
            if let Some(out) = &args.out {
                let _ = std::fs::remove_file(out);
            }
        })?;
        let run = session.plan();
        let plan = subset.restrict(run.plan, &run.inventory);
        anstream::print!("{}", render_plan(&plan, args.format, args.show_unchanged));
        if let (Some(out), Some(file)) = (&args.out, out_file.as_mut()) {
            let text = render::plan::json(&plan);
            std::io::Write::write_all(file, text.as_bytes()).map_err(|e| {
                report_error(&format!("cannot write the plan to {}: {e}", out.display()), None);
                Exit::Error
            })?;
            status(&format!("Saved the plan to {}; apply it with `acrlink apply {}`.", out.display(), out.display()));
        }
        // A binding acrlink cannot satisfy fails the plan: a pipeline must not pass with it.
        Ok(if !plan.errors.is_empty() || !plan.blocked.is_empty() {
            Exit::Error
        } else if args.detailed_exitcode && plan.has_changes() {
            Exit::Changes
        } else {
            Exit::Ok
        })
    })();
    result.unwrap_or_else(|exit| exit)
}

pub fn drift(config_path: &Path, args: &DriftArgs) -> Exit {
    let result = (|| -> Result<Exit, Exit> {
        let subset = args.subset.subset()?;
        let run = Session::open(config_path, &args.azure)?.plan();
        let plan = subset.restrict(run.plan, &run.inventory);
        let view = render::plan::View { show_unchanged: args.show_unchanged };
        let text = match args.format {
            OutputFormat::Text => render::plan::drift_text_with(&plan, view),
            OutputFormat::Json => render::plan::drift_json(&plan),
            OutputFormat::Markdown => render::plan::drift_markdown_with(&plan, view),
        };
        anstream::print!("{text}");
        Ok(if !plan.errors.is_empty() {
            Exit::Error
        } else if plan.has_changes() || !plan.blocked.is_empty() {
            Exit::Changes
        } else {
            Exit::Ok
        })
    })();
    result.unwrap_or_else(|exit| exit)
}

pub fn graph(config_path: &Path, args: &GraphArgs) -> Exit {
    let result = (|| -> Result<Exit, Exit> {
        let run = Session::open(config_path, &args.azure)?.plan();
        anstream::print!("{}", run.graph.to_dot());
        Ok(if run.plan.errors.is_empty() { Exit::Ok } else { Exit::Error })
    })();
    result.unwrap_or_else(|exit| exit)
}

/// The file `plan --out` writes, opened (and emptied) before anything is read from Azure.
fn open_for_plan(path: &Path) -> Result<std::fs::File, Exit> {
    std::fs::File::create(path).map_err(|e| {
        report_error(
            &format!("cannot write the plan to {}: {e}", path.display()),
            Some("choose a path in a directory that exists and can be written"),
        );
        Exit::Error
    })
}

pub(super) fn read_saved_plan(path: &Path) -> Result<Plan, Exit> {
    plan::load_saved(path).map_err(|e| {
        report_error(&e.to_string(), e.hint());
        Exit::Error
    })
}

fn confirm(auto_approve: bool) -> Result<(), Exit> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        report_error(
            "refusing to apply without confirmation: stdin is not a terminal",
            Some("review the plan, then run apply with --auto-approve (or apply a saved plan file)"),
        );
        return Err(Exit::Error);
    }
    anstream::eprint!("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        report_error("apply cancelled; nothing was changed", None);
        Err(Exit::Error)
    }
}

/// What an apply makes live state match: the file, or nothing of this owner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Converge,
    Destroy,
}

#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub azure: AzureArgs,
    #[command(flatten)]
    pub subset: SubsetArgs,
    #[command(flatten)]
    pub run: Execution,
}

/// Plans the removal of everything this file's owner made, and applies it as apply does.
pub fn destroy(config_path: &Path, args: DestroyArgs) -> Exit {
    let as_apply =
        ApplyArgs { azure: args.azure, subset: args.subset, plan_file: None, run: args.run, show_unchanged: false };
    apply_for(config_path, &as_apply, Intent::Destroy)
}

pub fn apply(config_path: &Path, args: &ApplyArgs) -> Exit {
    apply_for(config_path, args, Intent::Converge)
}

fn apply_for(config_path: &Path, args: &ApplyArgs, intent: Intent) -> Exit {
    let result = (|| -> Result<Exit, Exit> {
        let subset = args.subset.subset()?;
        let (plan, connection, config) = match &args.plan_file {
            Some(_) if !subset.is_everything() => {
                report_error(
                    "--target and --cluster do not apply to a saved plan: it holds what it was made with",
                    Some("make the saved plan with them: acrlink plan --target … --out FILE"),
                );
                return Err(Exit::Error);
            }
            Some(file) => saved_plan(file, config_path, &args.azure)?,
            None => {
                let session = Session::open(config_path, &args.azure)?;
                let run = session.plan_for(intent);
                (subset.restrict(run.plan, &run.inventory), session.connection, session.config)
            }
        };
        if args.run.format == OutputFormat::Text || args.plan_file.is_none() {
            let view = render::plan::View { show_unchanged: args.show_unchanged };
            anstream::eprint!("{}", render::plan::text_with(&plan, view));
        }
        if !plan.errors.is_empty() {
            if args.run.format == OutputFormat::Json {
                let nothing = apply::ApplyReport { outcomes: Vec::new() };
                anstream::print!("{}", render::plan::apply_json_with_errors(&nothing, &plan.errors));
            }
            report_error(
                "the plan has errors; nothing was changed",
                Some("fix the errors listed above and run apply again"),
            );
            return Err(Exit::Error);
        }
        if !plan.has_changes() {
            let nothing = apply::ApplyReport { outcomes: Vec::new() };
            match args.run.format {
                OutputFormat::Json => anstream::print!("{}", render::plan::apply_json(&nothing)),
                OutputFormat::Markdown => anstream::print!("{}", render::plan::apply_markdown(&nothing)),
                OutputFormat::Text => {}
            }
            return Ok(unmet(&plan).unwrap_or(Exit::Ok));
        }
        // A saved plan was reviewed when it was made (as with `terraform apply PLANFILE`).
        confirm(args.run.auto_approve || args.plan_file.is_some())?;
        let report = execute(&plan, &connection, &config, args);
        match args.run.format {
            OutputFormat::Json => anstream::print!("{}", render::plan::apply_json(&report)),
            OutputFormat::Markdown => anstream::print!("{}", render::plan::apply_markdown(&report)),
            OutputFormat::Text => anstream::print!("{}", render::plan::apply_text(&report)),
        }
        if report.interrupted() {
            report_error(
                &format!("apply was interrupted: {} change(s) were not started", report.not_started()),
                Some("run apply again (or plan first): it picks up where this one stopped"),
            );
            return Ok(Exit::Interrupted);
        }
        let unmet = unmet(&plan);
        Ok(if report.failed() > 0 || report.skipped() > 0 { Exit::Error } else { unmet.unwrap_or(Exit::Ok) })
    })();
    result.unwrap_or_else(|exit| exit)
}

/// After an apply: bindings it could not satisfy make it fail, said once more at the end.
fn unmet(plan: &Plan) -> Option<Exit> {
    if plan.blocked.is_empty() {
        return None;
    }
    report_error(
        &format!("{} binding target(s) could not be met; everything else was applied", plan.blocked.len()),
        Some("see the blocked Secrets above: set adopt = true on the binding, or choose another secret_name"),
    );
    Some(Exit::Error)
}

/// A saved plan and a connection for it, once it is known to come from the file acrlink is
/// given and every change's precondition still holds.
fn saved_plan(file: &Path, config_path: &Path, azure: &AzureArgs) -> Result<(Plan, Connection, Config), Exit> {
    let plan = read_saved_plan(file)?;
    let (config, digest) = load_config(config_path)?;
    if digest != plan.config_digest {
        report_error(
            &format!(
                "{} differs from the file this plan was made from ({}); nothing was changed",
                config_path.display(),
                plan.config_path
            ),
            Some("plan again with this file, or pass the file the plan was made from with -c FILE"),
        );
        return Err(Exit::Error);
    }
    let connection = Connection::open(Some(&config), azure)?;
    status("Checking that the saved plan still matches live state…");
    let clients = &connection.clients;
    let mut stale = check::secret_sources(&plan, &pull_secret::secret_sources(&config));
    stale.extend(connection.runtime.block_on(check::stale_changes(&plan, &*clients.azure, &clients.kube)));
    if stale.is_empty() {
        return Ok((plan, connection, config));
    }
    for finding in &stale {
        report_error(&format!("{}: {}", finding.subject, finding.message), None);
    }
    report_error(
        &format!("the saved plan is stale ({} change(s) no longer match live state); nothing was changed", stale.len()),
        Some("run `acrlink plan --out FILE` again"),
    );
    Err(Exit::Error)
}

/// Applies the plan's changes with a progress bar on a terminal, a line per outcome elsewhere.
fn execute(plan: &Plan, connection: &Connection, config: &Config, args: &ApplyArgs) -> apply::ApplyReport {
    let options = ApplyOptions {
        parallelism: usize::from(args.run.parallelism),
        principal_wait: connection.settings.principal_wait,
        secret_sources: pull_secret::secret_sources(config),
        stop: Arc::default(),
    };
    let bar = progress_bar(plan.changes.len());
    let notice = {
        let bar = bar.clone();
        move |line: &str| {
            let line = render::style::warning(line);
            if bar.is_hidden() { anstream::eprintln!("{line}") } else { bar.println(line) }
        }
    };
    super::interrupt::watch(&connection.runtime, options.stop.clone(), notice);
    let progress = {
        let bar = bar.clone();
        move |outcome: &apply::Outcome| {
            let line = render::plan::outcome_line(outcome);
            if bar.is_hidden() {
                anstream::eprintln!("{line}");
            } else {
                bar.println(line);
                bar.inc(1);
            }
        }
    };
    let clients = &connection.clients;
    let report = connection.runtime.block_on(apply::apply(plan, &*clients.azure, &clients.kube, &options, &progress));
    bar.finish_and_clear();
    log_request_counts(clients);
    report
}

fn progress_bar(length: usize) -> Arc<indicatif::ProgressBar> {
    let bar = indicatif::ProgressBar::new(length as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} changes {elapsed}") {
        bar.set_style(style);
    }
    Arc::new(bar)
}
