//! The cloud's endpoints. The credential is chosen in `crate::auth` (the way Azure tools do);
//! tokens stay inside azure_identity's types and are only ever written into an Authorization
//! header.

pub use crate::auth::{AuthError, AuthMethod};
use crate::config::model::Cloud;

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
