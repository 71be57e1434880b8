//! Signing in to Azure the way Azure's own tools do. `--auth auto` is a chain (environment →
//! workload identity → GitHub Actions OIDC → Azure Pipelines OIDC → managed identity → Azure
//! CLI / Azure Developer CLI): each method is tried only when its inputs exist (managed
//! identity: when the endpoint answers a short probe), the first that gets a token wins, and a
//! total failure names every method with the reason it was not used.
//!
//! The environment is read once, at the CLI edge, into an [`Environment`]; secrets from it stay
//! in [`Sensitive`] until handed to azure_identity's own `Secret`.

mod chain;
mod explain;
pub use explain::advice;
pub mod imds;
pub mod oidc;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::ClientOptions;
use azure_identity::{
    AzurePipelinesCredential, AzurePipelinesCredentialOptions, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions, DeveloperToolsCredential,
    ManagedIdentityCredential, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

pub use chain::ChainCredential;

use crate::config::model::Cloud;
use crate::sensitive::Sensitive;

/// How long `--auth auto` waits for IMDS to answer before it moves on.
pub const IMDS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMethod {
    /// Each method below in turn, where its inputs exist; the first that signs in wins (-v says which)
    Auto,
    /// AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET
    ServicePrincipal,
    /// AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID (AKS workload identity)
    WorkloadIdentity,
    /// GitHub Actions OIDC: ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN (`permissions: id-token: write`), AZURE_CLIENT_ID, AZURE_TENANT_ID
    GithubOidc,
    /// Azure Pipelines OIDC: SYSTEM_OIDCREQUESTURI, SYSTEM_ACCESSTOKEN, AZURESUBSCRIPTION_SERVICE_CONNECTION_ID, AZURESUBSCRIPTION_CLIENT_ID/_TENANT_ID
    AzurePipelinesOidc,
    /// The machine's managed identity: App Service (IDENTITY_ENDPOINT + IDENTITY_HEADER), Azure Arc (IDENTITY_ENDPOINT + IMDS_ENDPOINT) or IMDS; AZURE_CLIENT_ID picks a user-assigned one
    ManagedIdentity,
    /// `az login`, then `azd auth login`
    AzureCli,
}

impl AuthMethod {
    /// The method's name as `--auth` spells it.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Auto => "auto",
            AuthMethod::ServicePrincipal => "service-principal",
            AuthMethod::WorkloadIdentity => "workload-identity",
            AuthMethod::GithubOidc => "github-oidc",
            AuthMethod::AzurePipelinesOidc => "azure-pipelines-oidc",
            AuthMethod::ManagedIdentity => "managed-identity",
            AuthMethod::AzureCli => "azure-cli",
        }
    }

    /// The order `--auth auto` tries them in.
    pub const CHAIN: [AuthMethod; 6] = [
        AuthMethod::ServicePrincipal,
        AuthMethod::WorkloadIdentity,
        AuthMethod::GithubOidc,
        AuthMethod::AzurePipelinesOidc,
        AuthMethod::ManagedIdentity,
        AuthMethod::AzureCli,
    ];
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("--auth {method} cannot be used: {reason}")]
    Unavailable { method: &'static str, reason: String },
}

/// The process environment, read once at the edge. Empty values count as unset.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

/// Names only: the values include secrets.
impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl Environment {
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Environment {
        Environment { vars: vars.into_iter().filter(|(_, v)| !v.trim().is_empty()).collect() }
    }

    /// The same environment with `name` set to `value` (a command-line flag over a variable).
    pub fn with(mut self, name: &str, value: &str) -> Environment {
        if !value.trim().is_empty() {
            self.vars.insert(name.to_string(), value.to_string());
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    fn first(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.get(n))
    }

    /// A secret variable, kept sensitive.
    fn secret(&self, name: &str) -> Option<Sensitive<String>> {
        self.get(name).map(|v| Sensitive::new(v.to_string()))
    }

    /// Whether `program` is an executable file in a PATH directory.
    fn on_path(&self, program: &str) -> bool {
        self.get("PATH").is_some_and(|path| std::env::split_paths(path).any(|dir| is_executable(&dir.join(program))))
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file() || path.with_extension("cmd").is_file() || path.with_extension("exe").is_file()
}

/// What the credentials need besides the environment.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub cloud: Cloud,
    /// The tenant from the file, used when AZURE_TENANT_ID is not set.
    pub tenant: Option<&'a str>,
}

/// AZURE_AUTHORITY_HOST wins, as in every Azure SDK; else the cloud's from the one table.
fn authority_host(cloud: Cloud, env: &Environment) -> String {
    env.get("AZURE_AUTHORITY_HOST")
        .unwrap_or(crate::provider::azure::auth::profile(cloud).authority_host)
        .trim_end_matches('/')
        .to_string()
}

fn client_options(cloud: Cloud, env: &Environment) -> ClientOptions {
    use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
    use azure_core::http::{ExponentialRetryOptions, RetryOptions};
    let mut custom = CustomConfiguration::default();
    custom.authority_host = authority_host(cloud, env);
    // A sign-in that cannot reach Entra (refused, reset, 5xx) fails within seconds, not after
    // the SDK's default minute of retries: nothing else can happen before it.
    let retry = RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: time::Duration::milliseconds(500),
        max_retries: 3,
        max_total_elapsed: time::Duration::seconds(15),
        max_delay: time::Duration::seconds(4),
    });
    ClientOptions { cloud: Some(Arc::new(CloudConfiguration::Custom(custom))), retry, ..Default::default() }
}

/// A reason a method cannot be used here.
type Unavailable = String;

fn need<'e>(env: &'e Environment, names: &[&str], what: &str) -> Result<&'e str, Unavailable> {
    env.first(names).ok_or_else(|| match names {
        [one] => format!("{one} is not set ({what})"),
        _ => format!("none of {} is set ({what})", names.join(", ")),
    })
}

fn tenant<'e>(env: &'e Environment, context: &Context<'e>, names: &[&str]) -> Result<String, Unavailable> {
    env.first(names)
        .or(context.tenant)
        .map(str::to_string)
        .ok_or_else(|| format!("{} is not set and the file has no azure.tenant_id", names[0]))
}

fn setup(e: azure_core::Error) -> Unavailable {
    format!("cannot set up the credential: {e}")
}

/// The credential of one method, or why it cannot be used here. `in_chain`: managed identity
/// probes IMDS briefly instead of waiting for it. Methods that sign in at Entra explain its
/// refusals (host, AADSTS code, what to check).
pub fn method_credential(
    method: AuthMethod,
    context: &Context<'_>,
    env: &Environment,
    in_chain: bool,
) -> Result<Arc<dyn TokenCredential>, Unavailable> {
    let credential = unexplained(method, context, env, in_chain)?;
    Ok(match method {
        AuthMethod::ServicePrincipal
        | AuthMethod::WorkloadIdentity
        | AuthMethod::GithubOidc
        | AuthMethod::AzurePipelinesOidc => explain::Explained::wrap(credential, &authority_host(context.cloud, env)),
        _ => credential,
    })
}

fn unexplained(
    method: AuthMethod,
    context: &Context<'_>,
    env: &Environment,
    in_chain: bool,
) -> Result<Arc<dyn TokenCredential>, Unavailable> {
    let options = || client_options(context.cloud, env);
    match method {
        AuthMethod::ServicePrincipal => {
            let Some(secret) = env.secret("AZURE_CLIENT_SECRET") else {
                return Err(if env.get("AZURE_CLIENT_CERTIFICATE_PATH").is_some() {
                    "AZURE_CLIENT_CERTIFICATE_PATH is set, but acrlink signs in with a client secret or a federated credential, not a certificate".into()
                } else {
                    "AZURE_CLIENT_SECRET is not set (a service principal's secret)".into()
                });
            };
            let client_id = need(env, &["AZURE_CLIENT_ID"], "the service principal's application id")?;
            let tenant = tenant(env, context, &["AZURE_TENANT_ID"])?;
            let options = ClientSecretCredentialOptions { client_options: options() };
            let credential = ClientSecretCredential::new(
                &tenant,
                client_id.to_string(),
                Secret::new(secret.expose().clone()),
                Some(options),
            )
            .map_err(setup)?;
            Ok(credential)
        }
        AuthMethod::WorkloadIdentity => {
            let file = need(env, &["AZURE_FEDERATED_TOKEN_FILE"], "set by AKS workload identity")?;
            let client_id = need(env, &["AZURE_CLIENT_ID"], "the identity's client id")?;
            let mut workload = WorkloadIdentityCredentialOptions::default();
            workload.credential_options.client_options = options();
            workload.client_id = Some(client_id.to_string());
            workload.tenant_id = Some(tenant(env, context, &["AZURE_TENANT_ID"])?);
            workload.token_file_path = Some(file.into());
            Ok(WorkloadIdentityCredential::new(Some(workload)).map_err(setup)?)
        }
        AuthMethod::GithubOidc => {
            let url = need(
                env,
                &["ACTIONS_ID_TOKEN_REQUEST_URL"],
                "set in GitHub Actions jobs with `permissions: id-token: write`",
            )?;
            let token = env
                .secret("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
                .ok_or("ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set (set with ACTIONS_ID_TOKEN_REQUEST_URL)")?;
            let client_id =
                need(env, &["AZURE_CLIENT_ID"], "the application or identity federated with the repository")?;
            let tenant = tenant(env, context, &["AZURE_TENANT_ID"])?;
            let audience = crate::provider::azure::auth::profile(context.cloud).token_exchange_audience;
            let assertion = oidc::GithubAssertion::new(url, token, audience)?;
            let options = ClientAssertionCredentialOptions { client_options: options() };
            Ok(ClientAssertionCredential::new(tenant, client_id.to_string(), assertion, Some(options))
                .map_err(setup)?)
        }
        AuthMethod::AzurePipelinesOidc => {
            need(env, &["SYSTEM_OIDCREQUESTURI"], "set in Azure Pipelines jobs")?;
            let token = env
                .secret("SYSTEM_ACCESSTOKEN")
                .ok_or("SYSTEM_ACCESSTOKEN is not set (map it in the pipeline: `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`)")?;
            let connection = need(
                env,
                &["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"],
                "the service connection's id; the AzureCLI@2 task sets it",
            )?;
            let client_id = need(
                env,
                &["AZURESUBSCRIPTION_CLIENT_ID", "AZURE_CLIENT_ID"],
                "the service connection's application id",
            )?;
            let tenant = tenant(env, context, &["AZURESUBSCRIPTION_TENANT_ID", "AZURE_TENANT_ID"])?;
            let options = AzurePipelinesCredentialOptions {
                credential_options: ClientAssertionCredentialOptions { client_options: options() },
            };
            let credential = AzurePipelinesCredential::new(
                tenant,
                client_id.to_string(),
                connection,
                Secret::new(token.expose().clone()),
                Some(options),
            )
            .map_err(setup)?;
            Ok(credential)
        }
        AuthMethod::ManagedIdentity => managed_identity(context, env, in_chain),
        AuthMethod::AzureCli => {
            if !env.on_path("az") && !env.on_path("azd") {
                return Err("neither az nor azd is on PATH".into());
            }
            Ok(DeveloperToolsCredential::new(None).map_err(setup)?)
        }
        AuthMethod::Auto => Err("auto is not one method".into()),
    }
}

fn managed_identity(
    context: &Context<'_>,
    env: &Environment,
    in_chain: bool,
) -> Result<Arc<dyn TokenCredential>, Unavailable> {
    // A user-assigned identity is chosen by AZURE_CLIENT_ID, as the Azure SDKs do.
    let client_id = env.get("AZURE_CLIENT_ID").map(str::to_string);
    if env.get("IDENTITY_ENDPOINT").is_some() && env.get("IDENTITY_HEADER").is_some() {
        let options = azure_identity::ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.map(azure_identity::UserAssignedId::ClientId),
            client_options: client_options(context.cloud, env),
        };
        return Ok(ManagedIdentityCredential::new(Some(options)).map_err(setup)?);
    }
    if let (Some(endpoint), Some(_)) = (env.get("IDENTITY_ENDPOINT"), env.get("IMDS_ENDPOINT")) {
        if let Some(id) = client_id {
            return Err(format!(
                "Azure Arc (IDENTITY_ENDPOINT and IMDS_ENDPOINT are set) has only the machine's system-assigned identity; unset AZURE_CLIENT_ID / --client-id ({id})"
            ));
        }
        // ACRLINK_ARC_KEY_DIRECTORY: where the agent writes its keys, when not the default.
        let directory = env
            .get("ACRLINK_ARC_KEY_DIRECTORY")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| imds::default_arc_key_directory(env.get("ProgramData")));
        return Ok(Arc::new(imds::ImdsCredential::arc(endpoint, directory)?));
    }
    let endpoint = env.get("ACRLINK_IMDS_ENDPOINT").unwrap_or(imds::DEFAULT_ENDPOINT);
    let probe = in_chain.then_some(IMDS_PROBE_TIMEOUT);
    Ok(Arc::new(imds::ImdsCredential::new(endpoint, client_id, probe)?))
}

/// The credential `--auth METHOD` asks for: one method, or for `auto` the chain.
pub fn credential(
    method: AuthMethod,
    context: &Context<'_>,
    env: &Environment,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    if method == AuthMethod::Auto {
        let links = AuthMethod::CHAIN.iter().map(|&m| (m, method_credential(m, context, env, true))).collect();
        return Ok(Arc::new(ChainCredential::new(links)));
    }
    method_credential(method, context, env, false)
        .map_err(|reason| AuthError::Unavailable { method: method.name(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Environment {
        Environment::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    const CONTEXT: Context<'static> = Context { cloud: Cloud::AzureCloud, tenant: Some("t") };

    fn reason(method: AuthMethod, vars: &[(&str, &str)]) -> String {
        method_credential(method, &CONTEXT, &env(vars), true).err().unwrap_or_default()
    }

    #[test]
    fn each_method_names_what_it_lacks() {
        // The binary installs it first thing; building the IMDS client needs it.
        rustls::crypto::ring::default_provider().install_default().ok();
        assert!(reason(AuthMethod::ServicePrincipal, &[]).contains("AZURE_CLIENT_SECRET is not set"));
        assert!(
            reason(AuthMethod::ServicePrincipal, &[("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pem")])
                .contains("certificate")
        );
        assert!(reason(AuthMethod::WorkloadIdentity, &[]).contains("AZURE_FEDERATED_TOKEN_FILE"));
        assert!(reason(AuthMethod::GithubOidc, &[]).contains("ACTIONS_ID_TOKEN_REQUEST_URL"));
        assert!(
            reason(AuthMethod::GithubOidc, &[("ACTIONS_ID_TOKEN_REQUEST_URL", "https://x/?a=1")])
                .contains("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        );
        assert!(reason(AuthMethod::AzurePipelinesOidc, &[]).contains("SYSTEM_OIDCREQUESTURI"));
        assert!(
            reason(
                AuthMethod::AzurePipelinesOidc,
                &[("SYSTEM_OIDCREQUESTURI", "https://x"), ("SYSTEM_ACCESSTOKEN", "a")]
            )
            .contains("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID")
        );
        assert!(reason(AuthMethod::AzureCli, &[("PATH", "/nonexistent")]).contains("neither az nor azd"));
        // Managed identity has no inputs to lack: IMDS is probed when the token is asked for.
        assert!(method_credential(AuthMethod::ManagedIdentity, &CONTEXT, &env(&[]), true).is_ok());
    }

    #[test]
    fn empty_values_count_as_unset_and_secrets_stay_sensitive() {
        let e = env(&[("AZURE_CLIENT_SECRET", " "), ("SYSTEM_ACCESSTOKEN", "s3cret-canary")]);
        assert!(e.get("AZURE_CLIENT_SECRET").is_none());
        assert_eq!(format!("{:?}", e.secret("SYSTEM_ACCESSTOKEN")), "Some(<sensitive>)");
    }
}
