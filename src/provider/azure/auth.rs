//! The cloud's endpoints. The credential is chosen in `crate::auth` (the way Azure tools do);
//! tokens stay inside azure_identity's types and are only ever written into an Authorization
//! header.

pub use crate::auth::{AuthError, AuthMethod};
use crate::config::model::Cloud;

/// Every endpoint and audience acrlink uses in one cloud. Values from az CLI's cloud table and
/// the Azure SDKs' (`shared/docs/azure-contracts.md` §6.3, §16).
#[derive(Debug, PartialEq, Eq)]
pub struct CloudProfile {
    /// The name `azure.cloud` takes and az CLI uses.
    pub name: &'static str,
    /// Entra's authority host.
    pub authority_host: &'static str,
    /// Azure Resource Manager.
    pub arm_endpoint: &'static str,
    /// The audience of ARM tokens (scope: audience + `/.default`); fixed per cloud, whatever
    /// host ARM is reached at. Registries take the same tokens at `/oauth2/exchange`.
    pub arm_audience: &'static str,
    /// Registries' login servers end in it (acrlink reads `loginServer` from ARM instead of
    /// building names).
    pub acr_login_suffix: &'static str,
    /// Microsoft Graph's resource id.
    pub graph: &'static str,
    /// The audience of federated assertions (CI ID tokens). Azure China has been reported to
    /// use `api://AzureADTokenExchangeChina` for some issuers; federated credentials name the
    /// audience, so this is only what acrlink asks the CI token services for.
    pub token_exchange_audience: &'static str,
    /// The AKS AAD server application (kubelogin's `--server-id`): the same in every cloud.
    pub aks_server_app: &'static str,
}

const AKS_SERVER_APP: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

pub const CLOUDS: [CloudProfile; 3] = [
    CloudProfile {
        name: "AzureCloud",
        authority_host: "https://login.microsoftonline.com",
        arm_endpoint: "https://management.azure.com",
        arm_audience: "https://management.azure.com",
        acr_login_suffix: "azurecr.io",
        graph: "https://graph.microsoft.com",
        token_exchange_audience: "api://AzureADTokenExchange",
        aks_server_app: AKS_SERVER_APP,
    },
    CloudProfile {
        name: "AzureChinaCloud",
        authority_host: "https://login.chinacloudapi.cn",
        arm_endpoint: "https://management.chinacloudapi.cn",
        arm_audience: "https://management.chinacloudapi.cn",
        acr_login_suffix: "azurecr.cn",
        graph: "https://microsoftgraph.chinacloudapi.cn",
        token_exchange_audience: "api://AzureADTokenExchange",
        aks_server_app: AKS_SERVER_APP,
    },
    CloudProfile {
        name: "AzureUSGovernment",
        authority_host: "https://login.microsoftonline.us",
        arm_endpoint: "https://management.usgovcloudapi.net",
        arm_audience: "https://management.usgovcloudapi.net",
        acr_login_suffix: "azurecr.us",
        graph: "https://graph.microsoft.us",
        token_exchange_audience: "api://AzureADTokenExchange",
        aks_server_app: AKS_SERVER_APP,
    },
];

/// The profile of `cloud`.
pub fn profile(cloud: Cloud) -> &'static CloudProfile {
    match cloud {
        Cloud::AzureCloud => &CLOUDS[0],
        Cloud::AzureChinaCloud => &CLOUDS[1],
        Cloud::AzureUsGovernment => &CLOUDS[2],
    }
}

/// Endpoints of one Azure cloud; `arm_override` (ACRLINK_ARM_ENDPOINT) replaces ARM's (for the
/// emulator, proxies).
#[derive(Debug, Clone)]
pub struct CloudEndpoints {
    pub arm_endpoint: String,
    /// The token scope for ARM: fixed per cloud, whatever host ARM is reached at.
    pub arm_scope: String,
}

impl CloudEndpoints {
    pub fn for_cloud(cloud: Cloud, arm_override: Option<&str>) -> CloudEndpoints {
        let profile = profile(cloud);
        let arm_endpoint = arm_override.unwrap_or(profile.arm_endpoint);
        CloudEndpoints {
            arm_endpoint: arm_endpoint.trim_end_matches('/').to_string(),
            arm_scope: format!("{}/.default", profile.arm_audience),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cloud_has_its_own_hosts_and_the_same_aks_server_app() {
        for cloud in [Cloud::AzureCloud, Cloud::AzureChinaCloud, Cloud::AzureUsGovernment] {
            let p = profile(cloud);
            assert!(p.authority_host.starts_with("https://") && p.arm_endpoint.starts_with("https://"), "{p:?}");
            assert_eq!(p.aks_server_app, AKS_SERVER_APP);
        }
        assert_eq!(
            CloudEndpoints::for_cloud(Cloud::AzureChinaCloud, None).arm_scope,
            "https://management.chinacloudapi.cn/.default"
        );
        let emulated = CloudEndpoints::for_cloud(Cloud::AzureUsGovernment, Some("https://127.0.0.1:1/"));
        assert_eq!(emulated.arm_endpoint, "https://127.0.0.1:1");
        assert_eq!(
            emulated.arm_scope, "https://management.usgovcloudapi.net/.default",
            "the audience stays the cloud's"
        );
    }
}
