//! Chooses the Entra credential the way Azure tools do, and the cloud's endpoints. Tokens stay
//! inside azure_identity's types and are only ever written into an Authorization header.

use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::ClientOptions;
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, DeveloperToolsCredential, ManagedIdentityCredential,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::config::model::Cloud;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMethod {
    /// Service principal secret, then workload identity, then managed identity, then Azure CLI
    Auto,
    /// AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET
    ServicePrincipal,
    /// AZURE_FEDERATED_TOKEN_FILE (GitHub Actions OIDC, AKS workload identity)
    WorkloadIdentity,
    /// The managed identity of the machine (IDENTITY_ENDPOINT or IMDS)
    ManagedIdentity,
    /// `az login`, then `azd auth login`
    AzureCli,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("--auth {method} needs {missing} in the environment")]
    Missing { method: &'static str, missing: &'static str },
    #[error("cannot set up the {method} credential: {message}")]
    Setup { method: &'static str, message: String },
}

/// Endpoints of one Azure cloud; `arm_override` (ACRLINK_ARM_ENDPOINT) replaces ARM's (for the
/// emulator, proxies).
#[derive(Debug, Clone)]
pub struct CloudEndpoints {
    pub arm_endpoint: String,
    /// The token audience for ARM: fixed per cloud, whatever host ARM is reached at.
    pub arm_scope: String,
}

impl CloudEndpoints {
    pub fn for_cloud(cloud: Cloud, arm_override: Option<&str>) -> CloudEndpoints {
        let default = match cloud {
            Cloud::AzureCloud => "https://management.azure.com",
            Cloud::AzureChinaCloud => "https://management.chinacloudapi.cn",
            Cloud::AzureUsGovernment => "https://management.usgovcloudapi.net",
        };
        let arm_endpoint = arm_override.unwrap_or(default);
        CloudEndpoints {
            arm_endpoint: arm_endpoint.trim_end_matches('/').to_string(),
            arm_scope: format!("{default}/.default"),
        }
    }
}

fn client_options(cloud: Cloud) -> ClientOptions {
    use azure_core::cloud::CloudConfiguration;
    // AZURE_AUTHORITY_HOST wins, as in every Azure SDK; azure_identity reads it when no cloud is set.
    let configuration = if std::env::var_os("AZURE_AUTHORITY_HOST").is_some() {
        None
    } else {
        match cloud {
            Cloud::AzureCloud => None,
            Cloud::AzureChinaCloud => Some(Arc::new(CloudConfiguration::AzureChina)),
            Cloud::AzureUsGovernment => Some(Arc::new(CloudConfiguration::AzureGovernment)),
        }
    };
    ClientOptions { cloud: configuration, ..Default::default() }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn credential(
    method: AuthMethod,
    cloud: Cloud,
    tenant: Option<&str>,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let method = match method {
        AuthMethod::Auto if env("AZURE_CLIENT_SECRET").is_some() => AuthMethod::ServicePrincipal,
        AuthMethod::Auto if env("AZURE_FEDERATED_TOKEN_FILE").is_some() => AuthMethod::WorkloadIdentity,
        AuthMethod::Auto if env("IDENTITY_ENDPOINT").is_some() || env("MSI_ENDPOINT").is_some() => {
            AuthMethod::ManagedIdentity
        }
        AuthMethod::Auto => AuthMethod::AzureCli,
        other => other,
    };
    let setup = |method: &'static str| move |e: azure_core::Error| AuthError::Setup { method, message: e.to_string() };
    match method {
        AuthMethod::ServicePrincipal => {
            let tenant = env("AZURE_TENANT_ID")
                .or(tenant.map(str::to_string))
                .ok_or(AuthError::Missing { method: "service-principal", missing: "AZURE_TENANT_ID" })?;
            let client_id = env("AZURE_CLIENT_ID")
                .ok_or(AuthError::Missing { method: "service-principal", missing: "AZURE_CLIENT_ID" })?;
            let secret = env("AZURE_CLIENT_SECRET")
                .ok_or(AuthError::Missing { method: "service-principal", missing: "AZURE_CLIENT_SECRET" })?;
            let options = ClientSecretCredentialOptions { client_options: client_options(cloud) };
            let credential = ClientSecretCredential::new(&tenant, client_id, Secret::new(secret), Some(options))
                .map_err(setup("service-principal"))?;
            Ok(credential)
        }
        AuthMethod::WorkloadIdentity => {
            if env("AZURE_FEDERATED_TOKEN_FILE").is_none() {
                return Err(AuthError::Missing { method: "workload-identity", missing: "AZURE_FEDERATED_TOKEN_FILE" });
            }
            let mut options = WorkloadIdentityCredentialOptions::default();
            options.credential_options.client_options = client_options(cloud);
            if options.tenant_id.is_none() && env("AZURE_TENANT_ID").is_none() {
                options.tenant_id = tenant.map(str::to_string);
            }
            Ok(WorkloadIdentityCredential::new(Some(options)).map_err(setup("workload-identity"))?)
        }
        AuthMethod::ManagedIdentity => {
            // A user-assigned identity is chosen by AZURE_CLIENT_ID, as the Azure SDKs do.
            let options = azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id: env("AZURE_CLIENT_ID").map(azure_identity::UserAssignedId::ClientId),
                client_options: client_options(cloud),
            };
            Ok(ManagedIdentityCredential::new(Some(options)).map_err(setup("managed-identity"))?)
        }
        AuthMethod::AzureCli | AuthMethod::Auto => Ok(DeveloperToolsCredential::new(None).map_err(setup("azure-cli"))?),
    }
}
