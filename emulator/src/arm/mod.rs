//! Azure Resource Manager's front door: bearer-token authentication with ARM's 401 codes,
//! api-version allow-lists, per-principal throttling, RBAC authorization, then dispatch to the
//! resource providers (subscriptions, AKS, ACR, Microsoft.Authorization).

mod acr;
mod aks;
mod generic;
mod kql;

pub(crate) use aks::{kubeconfig, static_token};
mod rbac;
mod resource_graph;
mod resources;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::json;
use time::OffsetDateTime;

use crate::entra::verify;
use crate::http::{Reply, Req, arm_error, page_of};
use crate::roles::RoleDef;
use crate::route::{ApiFamily, Route, Target};
use crate::server::Shared;
use crate::state::{State, SubscriptionRec, allowed, touches};
use crate::throttle::{Decision, Kind};

/// Who is calling, from a valid token.
pub(crate) struct Caller {
    pub object_id: String,
    pub client_id: String,
}

pub(crate) fn handle(shared: &Shared, req: &Req, route: &Route) -> Reply {
    if route.target == Target::NotFound {
        return arm_error(404, "NotFound", format!("The requested resource '{}' was not found.", req.path));
    }
    let caller = match authenticate(shared, req) {
        Ok(caller) => caller,
        Err(reply) => return reply,
    };
    let Some(version) = req.query("api-version").map(str::to_string) else {
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    };
    if let Target::UnknownType { namespace, resource_type } = &route.target {
        return arm_error(
            404,
            "InvalidResourceType",
            format!(
                "The resource type '{resource_type}' could not be found in the namespace '{namespace}' for api version '{version}'."
            ),
        );
    }
    if let Some(family) = route.family
        && let Err(reply) = check_api_version(shared, family, &version)
    {
        return reply;
    }
    if route.operation == "MethodNotAllowed" {
        return arm_error(
            405,
            "HttpMethodNotAllowed",
            format!("The HTTP method '{}' is not supported at '{}'.", req.method, req.path),
        );
    }

    let kind = Kind::for_method(&req.method);
    let bucket = route.subscription.clone().unwrap_or_else(|| "tenant".into());
    let level = if route.subscription.is_some() { "subscription" } else { "tenant" };
    let remaining = match shared.throttle().take(&caller.object_id, &bucket, kind) {
        Decision::Allowed(remaining) => remaining,
        Decision::Throttled(retry_after) => {
            return arm_error(
                429,
                "TooManyRequests",
                format!(
                    "The request is being throttled as the limit has been reached for operation type - '{}'. For more information, see - https://aka.ms/msdn-throttling",
                    kind.operation_type()
                ),
            )
            .with_header("Retry-After", retry_after.to_string())
            .with_header(&format!("x-ms-ratelimit-remaining-{level}-{}", kind.plural()), "0");
        }
    };

    let ctx = Ctx { shared, req, caller: &caller, version: &version };
    let reply = match &route.target {
        Target::Subscriptions
        | Target::Subscription { .. }
        | Target::ResourceGroups { .. }
        | Target::ResourceGroup { .. } => resources::handle(&ctx, &route.target),
        Target::Clusters { .. } | Target::Cluster { .. } | Target::ClusterOperation { .. } => {
            aks::handle(&ctx, &route.target)
        }
        Target::Resources { subscription, resource_group } => {
            generic::list(&ctx, subscription, resource_group.as_deref())
        }
        Target::Registries { .. } | Target::Registry { .. } => acr::handle(&ctx, &route.target),
        Target::RoleAssignments { scope, name } => rbac::assignments(&ctx, scope, name.as_deref()),
        Target::RoleDefinitions { scope, id } => rbac::definitions(&ctx, scope, id.as_deref()),
        Target::ResourceGraph => resource_graph::query(&ctx),
        _ => arm_error(404, "NotFound", format!("The requested resource '{}' was not found.", req.path)),
    };
    reply.with_header(&format!("x-ms-ratelimit-remaining-{level}-{}", kind.plural()), remaining.to_string())
}

/// What every provider handler gets.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub req: &'a Req,
    pub caller: &'a Caller,
    pub version: &'a str,
}

/// A caller's role assignments: scope and role.
type Grants = Vec<(String, RoleDef)>;

impl Ctx<'_> {
    /// 403 AuthorizationFailed unless the caller may do `action` at `scope`.
    pub fn authorize(&self, state: &State, scope: &str, action: &str) -> Result<(), Reply> {
        let grants = state.grants_of(&self.caller.object_id);
        if allowed(&grants, scope, action) { Ok(()) } else { Err(self.forbidden(action, scope)) }
    }

    pub fn forbidden(&self, action: &str, scope: &str) -> Reply {
        arm_error(
            403,
            "AuthorizationFailed",
            format!(
                "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                self.caller.client_id, self.caller.object_id
            ),
        )
    }

    /// The subscription and the caller's grants for a list at subscription or resource-group
    /// scope, as ARM checks them: 404 for an unknown subscription or resource group, 403 unless
    /// the caller may read somewhere at or below the scope.
    pub fn list_scope<'s>(
        &self,
        state: &'s State,
        subscription: &str,
        resource_group: Option<&str>,
        action: &str,
    ) -> Result<(&'s SubscriptionRec, Grants), Reply> {
        let sub = state.subscription(subscription).ok_or_else(|| subscription_not_found(subscription))?;
        let grants = state.grants_of(&self.caller.object_id);
        let scope = match resource_group {
            Some(rg) => format!("/subscriptions/{}/resourceGroups/{rg}", sub.id),
            None => format!("/subscriptions/{}", sub.id),
        };
        if !touches(&grants, &scope) {
            return Err(self.forbidden(action, &scope));
        }
        if let Some(rg) = resource_group
            && state.resource_group(&sub.id, rg).is_none()
        {
            return Err(resource_group_not_found(rg));
        }
        Ok((sub, grants))
    }

    pub fn page_size(&self, state: &State) -> usize {
        state.settings.page_size
    }

    /// A list answer: the page the request asks for, rendering (and counting) only its items.
    pub fn page<T>(
        &self,
        state: &State,
        items: impl Iterator<Item = T>,
        mut render: impl FnMut(T) -> serde_json::Value,
    ) -> Result<Reply, Reply> {
        let mut rendered = 0u64;
        let body = page_of(self.req, items, self.page_size(state), |item| {
            rendered += 1;
            render(item)
        })?;
        self.shared.rendered.fetch_add(rendered, Ordering::Relaxed);
        Ok(Reply::json(200, &body))
    }
}

/// The key prefix of everything in a subscription or one of its resource groups, as the
/// resource maps (keyed by lowercase id) hold it: `/subscriptions/{s}/` or
/// `/subscriptions/{s}/resourcegroups/{rg}/`.
pub(crate) fn list_prefix(subscription: &str, resource_group: Option<&str>) -> String {
    match resource_group {
        Some(rg) => format!("/subscriptions/{subscription}/resourcegroups/{rg}/").to_ascii_lowercase(),
        None => format!("/subscriptions/{subscription}/").to_ascii_lowercase(),
    }
}

/// The entries of a map keyed by lowercase id whose keys start with `prefix`, in key order.
pub(crate) fn under<'m, 'p, V>(
    map: &'m BTreeMap<String, V>,
    prefix: &'p str,
) -> impl Iterator<Item = (&'m String, &'m V)> + use<'m, 'p, V> {
    map.range::<str, _>((Bound::Included(prefix), Bound::Unbounded)).take_while(move |(k, _)| k.starts_with(prefix))
}

pub(crate) fn subscription_not_found(sub: &str) -> Reply {
    arm_error(404, "SubscriptionNotFound", format!("The subscription '{sub}' could not be found."))
}

pub(crate) fn resource_group_not_found(rg: &str) -> Reply {
    arm_error(404, "ResourceGroupNotFound", format!("Resource group '{rg}' could not be found."))
}

pub(crate) fn resource_not_found(kind: &str, name: &str, rg: &str) -> Reply {
    arm_error(
        404,
        "ResourceNotFound",
        format!(
            "The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

fn check_api_version(shared: &Shared, family: ApiFamily, version: &str) -> Result<(), Reply> {
    let state = shared.state();
    let configured = state
        .settings
        .api_versions
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(family.resource_type()))
        .map(|(_, v)| v.clone());
    let accepted: Vec<String> =
        configured.unwrap_or_else(|| family.default_versions().iter().map(|v| v.to_string()).collect());
    if accepted.iter().any(|v| v.eq_ignore_ascii_case(version)) {
        return Ok(());
    }
    let list = accepted.join(", ");
    let resource_type = family.resource_type();
    Err(if family.is_resource_provider() {
        arm_error(
            400,
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for location 'global' and API version '{version}' for type '{}'. The supported api-versions are '{list}'.",
                resource_type.split_once('/').map(|(_, t)| t).unwrap_or(resource_type)
            ),
        )
    } else {
        arm_error(
            400,
            "InvalidApiVersionParameter",
            format!("The api-version '{version}' is invalid. The supported versions are '{list}'."),
        )
    })
}

fn unauthorized(shared: &Shared, code: &str, message: String, description: &str) -> Reply {
    let tenant = shared.state().tenant_id.clone();
    arm_error(401, code, message).with_header(
        "WWW-Authenticate",
        format!(
            "Bearer authorization_uri=\"{}/{tenant}\", error=\"invalid_token\", error_description=\"{description}\"",
            shared.endpoint
        ),
    )
}

/// ARM's wording for times in token errors: `11/28/2026 7:41:00 PM`.
fn arm_clock(unix: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (hour, half) = match at.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{}/{}/{} {}:{:02}:{:02} {}",
        u8::from(at.month()),
        at.day(),
        at.year(),
        hour,
        at.minute(),
        at.second(),
        half
    )
}

fn authenticate(shared: &Shared, req: &Req) -> Result<Caller, Reply> {
    let Some(header) = req.header("authorization") else {
        return Err(unauthorized(
            shared,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
            "The authentication failed because of missing 'Authorization' header.",
        ));
    };
    let Some(token) = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")) else {
        return Err(unauthorized(
            shared,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.".into(),
            "The authentication failed because of an invalid 'Authorization' header format.",
        ));
    };
    let invalid = || {
        unauthorized(
            shared,
            "InvalidAuthenticationToken",
            "The access token is invalid.".into(),
            "The access token is invalid.",
        )
    };
    let claims = verify(&shared.signing_key, token.trim()).ok_or_else(invalid)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if exp <= now {
        return Err(unauthorized(
            shared,
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                arm_clock(exp),
                arm_clock(now)
            ),
            "The access token has expired.",
        ));
    }
    let audience = claims["aud"].as_str().unwrap_or_default();
    if !shared.cloud.accepts_arm_audience(audience) {
        let allowed =
            shared.cloud.profile().arm_audiences.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(",");
        return Err(unauthorized(
            shared,
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{audience}'. It should exactly match with one of the allowed audiences {allowed}."
            ),
            "The access token has been obtained for wrong audience.",
        ));
    }
    let object_id = claims["oid"].as_str().unwrap_or_default().to_ascii_lowercase();
    let state = shared.state();
    if claims["tid"].as_str() != Some(state.tenant_id.as_str()) || state.visible(&object_id, Instant::now()).is_none() {
        drop(state);
        return Err(invalid());
    }
    Ok(Caller { object_id, client_id: claims["appid"].as_str().unwrap_or_default().to_string() })
}

/// `GET /metadata/endpoints`: the cloud metadata document Azure tools read to learn endpoints
/// (`az cloud register --endpoint-resource-manager`), with the key names ARM uses today.
/// Login, ARM and Microsoft Graph point at the emulator itself; services it does not emulate
/// keep the public cloud's values.
pub(crate) fn metadata(req: &Req, cloud: crate::cloud::CloudName) -> Reply {
    let base = &req.base_url;
    let profile = cloud.profile();
    let audiences: Vec<&str> = profile.arm_audiences.iter().copied().filter(|a| a.ends_with('/')).collect();
    Reply::json(
        200,
        &json!({
            "portal": format!("{base}/"),
            "authentication": {
                "loginEndpoint": format!("{base}/"),
                "audiences": audiences,
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "media": "https://rest.media.azure.net",
            // Azure AD Graph (retired); nothing here serves it.
            "graphAudience": "https://graph.windows.net/",
            "graph": "https://graph.windows.net/",
            "name": profile.name,
            "suffixes": {
                "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
                "acrLoginServer": profile.acr_suffix,
                "sqlServerHostname": "database.windows.net",
                "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
                "keyVaultDns": "vault.azure.net",
                "storage": "core.windows.net",
                "azureFrontDoorEndpointSuffix": "azurefd.net",
                "storageSyncEndpointSuffix": "afs.azure.net",
                "mhsmDns": "managedhsm.azure.net",
                "mysqlServerEndpoint": "mysql.database.azure.com",
                "postgresqlServerEndpoint": "postgres.database.azure.com",
                "mariadbServerEndpoint": "mariadb.database.azure.com",
                "synapseAnalytics": "dev.azuresynapse.net",
                "attestationEndpoint": "attest.azure.net",
            },
            "batch": "https://batch.core.windows.net/",
            "resourceManager": format!("{base}/"),
            "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/main/arm-compute/quickstart-templates/aliases.json",
            "activeDirectoryDataLake": "https://datalake.azure.net/",
            "sqlManagement": "https://management.core.windows.net:8443/",
            "microsoftGraphResourceId": format!("{base}/"),
            "appInsightsResourceId": "https://api.applicationinsights.io",
            "appInsightsTelemetryChannelResourceId": "https://dc.applicationinsights.azure.com/v2/track",
            "attestationResourceId": "https://attest.azure.net",
            "synapseAnalyticsResourceId": "https://dev.azuresynapse.net",
            "logAnalyticsResourceId": "https://api.loganalytics.io",
            "ossrdbmsResourceId": "https://ossrdbms-aad.database.windows.net",
            "gallery": format!("{base}/"),
        }),
    )
}
