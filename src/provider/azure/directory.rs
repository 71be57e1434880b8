//! Microsoft Graph: the one directory read acrlink makes, the object id of a pull-secret
//! binding's service principal (to grant it pull), when the file does not give it.

use serde::Deserialize;

use super::arm::ArmClient;
use crate::config::raw::Cloud;
use crate::provider::AzureError;

/// Graph's endpoint for a cloud (or `override`, e.g. the emulator) and its token audience,
/// which is the cloud's own whatever host Graph is reached at.
pub fn endpoint(cloud: Cloud, override_endpoint: Option<&str>) -> (String, String) {
    let default = match cloud {
        Cloud::AzureCloud => "https://graph.microsoft.com",
        Cloud::AzureChinaCloud => "https://microsoftgraph.chinacloudapi.cn",
        Cloud::AzureUsGovernment => "https://graph.microsoft.us",
    };
    let endpoint = override_endpoint.unwrap_or(default).trim_end_matches('/').to_string();
    (endpoint, format!("{default}/.default"))
}

#[derive(Deserialize)]
struct ServicePrincipal {
    id: String,
}

/// The object id of the service principal of application `client_id`, or None when the tenant
/// has none.
pub async fn service_principal_id(graph: &ArmClient, client_id: &str) -> Result<Option<String>, AzureError> {
    let escaped = client_id.replace('\'', "''");
    let url = graph.url(&format!("/v1.0/servicePrincipals(appId='{escaped}')?$select=id"));
    Ok(graph.get::<ServicePrincipal>(&url).await?.map(|sp| sp.id))
}
