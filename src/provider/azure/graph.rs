//! Azure Resource Graph: one query reads a resource type across up to 1,000 subscriptions, so a
//! fleet spread over many subscriptions is read in a handful of requests instead of a list per
//! subscription. Answers are paged by `$skipToken`; a token that repeats is an error at once.

use std::collections::HashSet;

use reqwest::Method;
use serde::Deserialize;

use super::arm::ArmClient;
use crate::provider::AzureError;

const API_VERSION: &str = "2022-10-01";
/// Subscriptions per query, as the service allows.
const SUBSCRIPTIONS_PER_QUERY: usize = 1_000;
/// Rows per page, the most the service returns.
const PAGE: u32 = 1_000;

pub const CLUSTERS: &str = "resources | where type =~ 'microsoft.containerservice/managedclusters' | project id, name, location, tags, properties";
pub const REGISTRIES: &str =
    "resources | where type =~ 'microsoft.containerregistry/registries' | project id, name, location, tags, properties";

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<serde_json::Value>,
    #[serde(default, rename = "$skipToken")]
    skip_token: Option<String>,
}

/// Every row `query` gives over `subscriptions`.
pub async fn rows(
    arm: &ArmClient,
    subscriptions: &[String],
    query: &str,
) -> Result<Vec<serde_json::Value>, AzureError> {
    let url = arm.url(&format!("/providers/Microsoft.ResourceGraph/resources?api-version={API_VERSION}"));
    let mut rows = Vec::new();
    for chunk in subscriptions.chunks(SUBSCRIPTIONS_PER_QUERY) {
        let mut seen = HashSet::new();
        let mut skip_token: Option<String> = None;
        loop {
            let mut options = serde_json::json!({ "$top": PAGE, "resultFormat": "objectArray" });
            if let Some(token) = &skip_token {
                options["$skipToken"] = token.clone().into();
            }
            let body = serde_json::json!({ "subscriptions": chunk, "query": query, "options": options });
            let answer = arm.send(Method::POST, &url, Some(&body)).await?;
            if answer.status.as_u16() != 200 {
                return Err(answer.into_error());
            }
            let page: Page = answer.json()?;
            rows.extend(page.data);
            match page.skip_token {
                Some(token) if !seen.insert(token.clone()) => {
                    return Err(AzureError::Decode("Resource Graph repeated a $skipToken; refused to loop".into()));
                }
                Some(token) => skip_token = Some(token),
                None => break,
            }
        }
    }
    Ok(rows)
}
