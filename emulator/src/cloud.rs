//! The Azure cloud a world lives in, and everything that differs per cloud: the audiences ARM
//! accepts, the registries' login-server suffix, Microsoft Graph's resource id and the name in
//! the metadata document. One table, so a world's cloud changes them all at once.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum CloudName {
    #[default]
    AzureCloud,
    AzureChinaCloud,
    AzureUSGovernment,
}

/// What differs per cloud (az CLI's cloud table; `shared/docs/azure-contracts.md` §6.3, §16).
#[derive(Debug)]
pub struct Profile {
    pub name: &'static str,
    /// Audiences of tokens ARM accepts, and so resources Entra issues tokens for.
    pub arm_audiences: &'static [&'static str],
    /// `<registry>.<suffix>` when a registry has no explicit login server.
    pub acr_suffix: &'static str,
    pub graph_resource: &'static str,
}

const PUBLIC: Profile = Profile {
    name: "AzureCloud",
    arm_audiences: &[
        "https://management.core.windows.net/",
        "https://management.core.windows.net",
        "https://management.azure.com/",
        "https://management.azure.com",
    ],
    acr_suffix: "azurecr.io",
    graph_resource: "https://graph.microsoft.com",
};

const CHINA: Profile = Profile {
    name: "AzureChinaCloud",
    arm_audiences: &[
        "https://management.core.chinacloudapi.cn/",
        "https://management.core.chinacloudapi.cn",
        "https://management.chinacloudapi.cn/",
        "https://management.chinacloudapi.cn",
    ],
    acr_suffix: "azurecr.cn",
    graph_resource: "https://microsoftgraph.chinacloudapi.cn",
};

const US_GOVERNMENT: Profile = Profile {
    name: "AzureUSGovernment",
    arm_audiences: &[
        "https://management.core.usgovcloudapi.net/",
        "https://management.core.usgovcloudapi.net",
        "https://management.usgovcloudapi.net/",
        "https://management.usgovcloudapi.net",
    ],
    acr_suffix: "azurecr.us",
    graph_resource: "https://graph.microsoft.us",
};

impl CloudName {
    pub fn profile(self) -> &'static Profile {
        match self {
            CloudName::AzureCloud => &PUBLIC,
            CloudName::AzureChinaCloud => &CHINA,
            CloudName::AzureUSGovernment => &US_GOVERNMENT,
        }
    }

    pub fn is_public(&self) -> bool {
        *self == CloudName::AzureCloud
    }

    /// Whether ARM in this cloud accepts a token for `audience`.
    pub fn accepts_arm_audience(self, audience: &str) -> bool {
        self.profile().arm_audiences.contains(&audience)
    }
}
