//! Maps a request's method and path to a route: its swagger-style template and operation id
//! (used by the ledger and fault rules), the subscription and cluster it concerns, and what
//! handles it. Paths compare without case, as ARM's do.

/// Which api-version allow-list applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFamily {
    Subscriptions,
    ResourceGroups,
    ManagedClusters,
    Registries,
    RoleAssignments,
    RoleDefinitions,
    /// Microsoft.Resources' generic resource list (Resources_List), which az CLI uses to find a
    /// registry by name.
    Resources,
    /// Azure Resource Graph's query (`POST /providers/Microsoft.ResourceGraph/resources`).
    ResourceGraph,
}

impl ApiFamily {
    pub fn resource_type(self) -> &'static str {
        match self {
            ApiFamily::Subscriptions => "Microsoft.Resources/subscriptions",
            ApiFamily::ResourceGroups => "Microsoft.Resources/resourceGroups",
            ApiFamily::ManagedClusters => "Microsoft.ContainerService/managedClusters",
            ApiFamily::Registries => "Microsoft.ContainerRegistry/registries",
            ApiFamily::RoleAssignments => "Microsoft.Authorization/roleAssignments",
            ApiFamily::RoleDefinitions => "Microsoft.Authorization/roleDefinitions",
            ApiFamily::Resources => "Microsoft.Resources/resources",
            ApiFamily::ResourceGraph => "Microsoft.ResourceGraph/resources",
        }
    }

    /// Resource-provider types answer an unknown api-version with NoRegisteredProviderFound,
    /// ARM's own types with InvalidApiVersionParameter.
    pub fn is_resource_provider(self) -> bool {
        matches!(self, ApiFamily::ManagedClusters | ApiFamily::Registries)
    }

    pub fn default_versions(self) -> &'static [&'static str] {
        match self {
            ApiFamily::Subscriptions => &[
                "2014-04-01",
                "2015-01-01",
                "2016-06-01",
                "2018-06-01",
                "2019-06-01",
                "2019-11-01",
                "2020-01-01",
                "2021-01-01",
                "2022-12-01",
            ],
            ApiFamily::ResourceGroups | ApiFamily::Resources => &[
                "2019-05-01",
                "2019-10-01",
                "2020-06-01",
                "2021-04-01",
                "2022-09-01",
                "2023-07-01",
                "2024-03-01",
                "2024-07-01",
                "2024-11-01",
                "2025-04-01",
            ],
            ApiFamily::ManagedClusters => &[
                "2024-01-01",
                "2024-02-01",
                "2024-05-01",
                "2024-07-01",
                "2024-08-01",
                "2024-09-01",
                "2024-10-01",
                "2025-01-01",
                "2025-02-01",
                "2025-03-01",
                "2025-04-01",
                "2025-05-01",
                "2025-06-01",
                "2025-07-01",
                "2025-08-01",
                "2025-09-01",
                "2025-10-01",
                "2026-01-01",
                "2026-02-01",
                "2026-03-01",
                "2026-04-01",
                // What az CLI 2.91.0's azure-mgmt-containerservice sends.
                "2026-06-01",
                "2026-07-01",
                "2026-08-01",
                "2026-10-01",
            ],
            ApiFamily::Registries => &[
                "2019-05-01",
                "2021-09-01",
                "2022-12-01",
                "2023-01-01-preview",
                "2023-06-01-preview",
                "2023-07-01",
                "2023-08-01-preview",
                "2023-11-01-preview",
                "2024-11-01-preview",
                "2025-04-01",
                "2025-11-01",
                // What az CLI 2.91.0's `az acr` sends.
                "2026-09-01-preview",
            ],
            ApiFamily::RoleAssignments => &[
                "2015-07-01",
                "2018-01-01-preview",
                "2018-09-01-preview",
                "2020-03-01-preview",
                "2020-04-01-preview",
                "2020-08-01-preview",
                "2020-10-01-preview",
                "2022-01-01-preview",
                "2022-04-01",
                "2026-08-01",
            ],
            ApiFamily::RoleDefinitions => &["2015-07-01", "2018-01-01-preview", "2022-04-01", "2022-05-01-preview"],
            // The stable versions; the query contract is the same in all of them.
            ApiFamily::ResourceGraph => &["2019-04-01", "2021-03-01", "2022-10-01", "2024-04-01"],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAction {
    User,
    Admin,
    Monitoring,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryPart {
    Itself,
    ListCredentials,
    RegenerateCredential,
    GenerateCredentials,
    ScopeMaps(Option<String>),
    Tokens(Option<String>),
    /// `.../operationStatuses/{id}` under the registry, a scope map or a token.
    Operation(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Token {
        tenant: String,
    },
    OpenId {
        tenant: String,
    },
    InstanceDiscovery,
    Keys,
    Metadata,
    Kube {
        subscription: String,
        resource_group: String,
        cluster: String,
        rest: String,
    },
    Subscriptions,
    Subscription {
        subscription: String,
    },
    ResourceGroups {
        subscription: String,
    },
    ResourceGroup {
        subscription: String,
        resource_group: String,
    },
    Clusters {
        subscription: String,
        resource_group: Option<String>,
    },
    Cluster {
        subscription: String,
        resource_group: String,
        name: String,
        action: Option<ClusterAction>,
    },
    /// An AKS long-running operation's status (`.../locations/{l}/operations/{id}`).
    ClusterOperation {
        id: String,
    },
    /// Resources_List: every resource of a subscription or resource group.
    Resources {
        subscription: String,
        resource_group: Option<String>,
    },
    /// Microsoft Graph (`/v1.0/...`), the few directory reads az CLI makes.
    Graph {
        rest: Vec<String>,
    },
    Registries {
        subscription: String,
        resource_group: Option<String>,
    },
    Registry {
        subscription: String,
        resource_group: String,
        name: String,
        part: RegistryPart,
    },
    RoleAssignments {
        scope: String,
        name: Option<String>,
    },
    RoleDefinitions {
        scope: String,
        id: Option<String>,
    },
    /// Azure Resource Graph: one query over the tables the emulator holds.
    ResourceGraph,
    /// GitHub Actions' ID-token service.
    GithubIdToken,
    /// Azure Pipelines' OIDC token endpoint.
    PipelinesIdToken,
    /// The Instance Metadata Service's managed-identity token endpoint.
    Imds,
    /// App Service's managed-identity endpoint (`IDENTITY_ENDPOINT`).
    AppServiceIdentity,
    /// Azure Arc's identity service (`IDENTITY_ENDPOINT` with `IMDS_ENDPOINT`).
    ArcIdentity,
    /// A provider or type the emulator does not serve.
    UnknownType {
        namespace: String,
        resource_type: String,
    },
    /// A registry's data plane (`/v2/`, `/oauth2/...`), found by Host header or `/acr/` prefix.
    RegistryData {
        login_server: String,
    },
    NotFound,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub template: &'static str,
    pub operation: &'static str,
    pub family: Option<ApiFamily>,
    pub subscription: Option<String>,
    pub cluster: Option<String>,
    /// Login server, for registry data-plane routes.
    pub registry: Option<String>,
    pub target: Target,
}

fn route(template: &'static str, operation: &'static str, family: Option<ApiFamily>, target: Target) -> Route {
    Route { template, operation, family, subscription: None, cluster: None, registry: None, target }
}

const RA_LIST: &str = "/{scope}/providers/Microsoft.Authorization/roleAssignments";
const RA_ONE: &str = "/{scope}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}";
const RD_LIST: &str = "/{scope}/providers/Microsoft.Authorization/roleDefinitions";
const RD_ONE: &str = "/{scope}/providers/Microsoft.Authorization/roleDefinitions/{roleDefinitionId}";
const MC_SUB: &str = "/subscriptions/{subscriptionId}/providers/Microsoft.ContainerService/managedClusters";
const MC_RG: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService/managedClusters";
const MC_ONE: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService/managedClusters/{resourceName}";
const MC_USER: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService/managedClusters/{resourceName}/listClusterUserCredential";
const MC_ADMIN: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService/managedClusters/{resourceName}/listClusterAdminCredential";
const MC_MON: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService/managedClusters/{resourceName}/listClusterMonitoringUserCredential";
const CR_SUB: &str = "/subscriptions/{subscriptionId}/providers/Microsoft.ContainerRegistry/registries";
const CR_RG: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries";
const CR_ONE: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}";
const CR_LISTCRED: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}/listCredentials";
const CR_REGEN: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}/regenerateCredential";
const CR_GEN: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}/generateCredentials";
const CR_MAPS: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}/scopeMaps";
const CR_MAP: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}/scopeMaps/{scopeMapName}";
const CR_TOKENS: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}/tokens";
const CR_TOKEN: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}/tokens/{tokenName}";
const CR_OP: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}/.../operationStatuses/{operationId}";

/// Classifies a request. `segments` are the decoded, non-empty path segments.
pub fn classify(method: &str, segments: &[String]) -> Route {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let lower: Vec<String> = s.iter().map(|x| x.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    front_door(method, &s, &l)
        .or_else(|| authorization_route(method, &s, &l))
        .unwrap_or_else(|| resource_route(method, &s, &l))
}

/// Entra, discovery, metadata, Microsoft Graph and the clusters' Kubernetes APIs.
fn front_door(method: &str, s: &[&str], l: &[&str]) -> Option<Route> {
    match l {
        [_, "oauth2", "v2.0", "token"] => {
            return Some(route(
                "/{tenant}/oauth2/v2.0/token",
                "Token",
                None,
                Target::Token { tenant: s[0].to_string() },
            ));
        }
        [_, "v2.0", ".well-known", "openid-configuration"] => {
            return Some(route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                "OpenIdConfiguration",
                None,
                Target::OpenId { tenant: s[0].to_string() },
            ));
        }
        ["common", "discovery", "instance"] => {
            return Some(route("/common/discovery/instance", "InstanceDiscovery", None, Target::InstanceDiscovery));
        }
        [_, "discovery", "v2.0", "keys"] => {
            return Some(route("/{tenant}/discovery/v2.0/keys", "Keys", None, Target::Keys));
        }
        ["providers", "microsoft.resourcegraph", "resources"] => {
            return Some(route(
                "/providers/Microsoft.ResourceGraph/resources",
                post(method, "Resources"),
                Some(ApiFamily::ResourceGraph),
                Target::ResourceGraph,
            ));
        }
        ["actions", "idtoken"] => {
            return Some(route("/actions/idtoken", "GitHub_IdToken", None, Target::GithubIdToken));
        }
        ["pipelines", "oidctoken"] => {
            return Some(route("/pipelines/oidctoken", "Pipelines_OidcToken", None, Target::PipelinesIdToken));
        }
        ["metadata", "identity", "oauth2", "token"] => {
            return Some(route("/metadata/identity/oauth2/token", "Imds_Token", None, Target::Imds));
        }
        ["msi", "token"] => {
            return Some(route("/msi/token", "AppService_Token", None, Target::AppServiceIdentity));
        }
        ["azcmagent", "metadata", "identity", "oauth2", "token"] => {
            return Some(route("/azcmagent/metadata/identity/oauth2/token", "Arc_Token", None, Target::ArcIdentity));
        }
        ["metadata", "endpoints"] => {
            return Some(route("/metadata/endpoints", "Metadata_Endpoints", None, Target::Metadata));
        }
        ["v1.0", ..] => return Some(graph_route(method, &s[1..], &l[1..])),
        ["k8s", sub, _, _, ..] => {
            let rest: Vec<&str> = s[4..].to_vec();
            let (template, operation) = crate::kube::routes::ledger_names(method, &rest, false);
            let mut r = route(
                template,
                operation,
                None,
                Target::Kube {
                    subscription: sub.to_string(),
                    resource_group: s[2].to_string(),
                    cluster: s[3].to_string(),
                    rest: s[4..].join("/"),
                },
            );
            r.subscription = Some(sub.to_string());
            r.cluster = Some(s[3].to_string());
            return Some(r);
        }
        _ => {}
    }

    None
}

/// Role assignments and definitions at any scope: finds `providers/Microsoft.Authorization/...`.
fn authorization_route(method: &str, s: &[&str], l: &[&str]) -> Option<Route> {
    if let Some(at) = (0..l.len().saturating_sub(2)).rev().find(|&i| {
        l[i] == "providers"
            && l[i + 1] == "microsoft.authorization"
            && matches!(l[i + 2], "roleassignments" | "roledefinitions")
    }) {
        let scope = format!("/{}", s[..at].join("/"));
        let scope = if scope.len() > 1 { scope } else { "/".to_string() };
        let rest = &s[at + 3..];
        let assignments = l[at + 2] == "roleassignments";
        let mut r = match (assignments, rest, method) {
            (true, [], "GET") => route(
                RA_LIST,
                "RoleAssignments_ListForScope",
                Some(ApiFamily::RoleAssignments),
                Target::RoleAssignments { scope, name: None },
            ),
            (true, [name], m) => {
                let operation = match m {
                    "GET" => "RoleAssignments_Get",
                    "PUT" => "RoleAssignments_Create",
                    "DELETE" => "RoleAssignments_Delete",
                    _ => "MethodNotAllowed",
                };
                route(
                    RA_ONE,
                    operation,
                    Some(ApiFamily::RoleAssignments),
                    Target::RoleAssignments { scope, name: Some(name.to_string()) },
                )
            }
            (false, [], "GET") => route(
                RD_LIST,
                "RoleDefinitions_List",
                Some(ApiFamily::RoleDefinitions),
                Target::RoleDefinitions { scope, id: None },
            ),
            (false, [id], "GET") => route(
                RD_ONE,
                "RoleDefinitions_Get",
                Some(ApiFamily::RoleDefinitions),
                Target::RoleDefinitions { scope, id: Some(id.to_string()) },
            ),
            (true, [], _) => route(
                RA_LIST,
                "MethodNotAllowed",
                Some(ApiFamily::RoleAssignments),
                Target::RoleAssignments { scope, name: None },
            ),
            (false, [_], _) | (false, [], _) => route(
                RD_LIST,
                "MethodNotAllowed",
                Some(ApiFamily::RoleDefinitions),
                Target::RoleDefinitions { scope, id: None },
            ),
            _ => route("(unknown)", "Unknown", None, Target::NotFound),
        };
        if let Target::RoleAssignments { scope, .. } | Target::RoleDefinitions { scope, .. } = &r.target {
            r.subscription = crate::ids::subscription_of(scope);
        }
        return Some(r);
    }
    None
}

/// Subscriptions, resource groups, generic resources, AKS and ACR.
fn resource_route(method: &str, s: &[&str], l: &[&str]) -> Route {
    let mut r = match l {
        ["subscriptions"] => {
            route("/subscriptions", "Subscriptions_List", Some(ApiFamily::Subscriptions), Target::Subscriptions)
        }
        ["subscriptions", sub] => route(
            "/subscriptions/{subscriptionId}",
            "Subscriptions_Get",
            Some(ApiFamily::Subscriptions),
            Target::Subscription { subscription: sub.to_string() },
        ),
        ["subscriptions", sub, "resourcegroups"] => route(
            "/subscriptions/{subscriptionId}/resourcegroups",
            "ResourceGroups_List",
            Some(ApiFamily::ResourceGroups),
            Target::ResourceGroups { subscription: sub.to_string() },
        ),
        ["subscriptions", sub, "resourcegroups", _] => route(
            "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}",
            "ResourceGroups_Get",
            Some(ApiFamily::ResourceGroups),
            Target::ResourceGroup { subscription: sub.to_string(), resource_group: s[3].to_string() },
        ),
        ["subscriptions", sub, "resources"] => route(
            "/subscriptions/{subscriptionId}/resources",
            "Resources_List",
            Some(ApiFamily::Resources),
            Target::Resources { subscription: sub.to_string(), resource_group: None },
        ),
        ["subscriptions", sub, "resourcegroups", _, "resources"] => route(
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/resources",
            "Resources_ListByResourceGroup",
            Some(ApiFamily::Resources),
            Target::Resources { subscription: sub.to_string(), resource_group: Some(s[3].to_string()) },
        ),
        ["subscriptions", _, "providers", "microsoft.containerservice", "locations", _, "operations", _] => route(
            "/subscriptions/{subscriptionId}/providers/Microsoft.ContainerService/locations/{location}/operations/{operationId}",
            get(method, "ManagedClusterOperations_Get"),
            Some(ApiFamily::ManagedClusters),
            Target::ClusterOperation { id: s[7].to_string() },
        ),
        ["subscriptions", sub, "providers", "microsoft.containerservice", "managedclusters"] => route(
            MC_SUB,
            "ManagedClusters_List",
            Some(ApiFamily::ManagedClusters),
            Target::Clusters { subscription: sub.to_string(), resource_group: None },
        ),
        ["subscriptions", sub, "providers", "microsoft.containerregistry", "registries"] => route(
            CR_SUB,
            "Registries_List",
            Some(ApiFamily::Registries),
            Target::Registries { subscription: sub.to_string(), resource_group: None },
        ),
        [
            "subscriptions",
            sub,
            "resourcegroups",
            _,
            "providers",
            "microsoft.containerservice",
            "managedclusters",
            rest @ ..,
        ] => cluster_route(method, sub, s[3], &s[7..], rest),
        [
            "subscriptions",
            sub,
            "resourcegroups",
            _,
            "providers",
            "microsoft.containerregistry",
            "registries",
            rest @ ..,
        ] => registry_route(method, sub, s[3], &s[7..], rest),
        ["subscriptions", _, "resourcegroups", _, "providers", _, kind, ..] => route(
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/{namespace}/{type}",
            "Unknown",
            None,
            Target::UnknownType { namespace: s[5].to_string(), resource_type: kind.to_string() },
        ),
        ["subscriptions", _, "providers", _, kind, ..] => route(
            "/subscriptions/{subscriptionId}/providers/{namespace}/{type}",
            "Unknown",
            None,
            Target::UnknownType { namespace: s[3].to_string(), resource_type: kind.to_string() },
        ),
        _ => route("(unknown)", "Unknown", None, Target::NotFound),
    };
    if let ["subscriptions", sub, ..] = l {
        r.subscription = Some(sub.to_string());
    }
    if let Target::Cluster { name, .. } = &r.target {
        r.cluster = Some(name.clone());
    }
    if method_mismatch(method, &r) {
        r.operation = "MethodNotAllowed";
    }
    r
}

fn method_mismatch(method: &str, r: &Route) -> bool {
    match &r.target {
        Target::Subscriptions
        | Target::Subscription { .. }
        | Target::ResourceGroups { .. }
        | Target::ResourceGroup { .. } => method != "GET",
        Target::Clusters { .. } | Target::Registries { .. } | Target::Resources { .. } => method != "GET",
        _ => false,
    }
}

fn cluster_route(method: &str, sub: &str, rg: &str, original: &[&str], rest: &[&str]) -> Route {
    let target = |name: &str, action| Target::Cluster {
        subscription: sub.to_string(),
        resource_group: rg.to_string(),
        name: name.to_string(),
        action,
    };
    match (rest, method) {
        ([], _) => route(
            MC_RG,
            "ManagedClusters_ListByResourceGroup",
            Some(ApiFamily::ManagedClusters),
            Target::Clusters { subscription: sub.to_string(), resource_group: Some(rg.to_string()) },
        ),
        ([_], "GET") => {
            route(MC_ONE, "ManagedClusters_Get", Some(ApiFamily::ManagedClusters), target(original[0], None))
        }
        ([_], "PUT") => {
            route(MC_ONE, "ManagedClusters_CreateOrUpdate", Some(ApiFamily::ManagedClusters), target(original[0], None))
        }
        ([_], _) => route(MC_ONE, "MethodNotAllowed", Some(ApiFamily::ManagedClusters), target(original[0], None)),
        ([_, "listclusterusercredential"], "POST") => route(
            MC_USER,
            "ManagedClusters_ListClusterUserCredentials",
            Some(ApiFamily::ManagedClusters),
            target(original[0], Some(ClusterAction::User)),
        ),
        ([_, "listclusteradmincredential"], "POST") => route(
            MC_ADMIN,
            "ManagedClusters_ListClusterAdminCredentials",
            Some(ApiFamily::ManagedClusters),
            target(original[0], Some(ClusterAction::Admin)),
        ),
        ([_, "listclustermonitoringusercredential"], "POST") => route(
            MC_MON,
            "ManagedClusters_ListClusterMonitoringUserCredentials",
            Some(ApiFamily::ManagedClusters),
            target(original[0], Some(ClusterAction::Monitoring)),
        ),
        ([_, kind, ..], _) => route(
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/{namespace}/{type}",
            "Unknown",
            None,
            Target::UnknownType {
                namespace: "Microsoft.ContainerService".into(),
                resource_type: format!("managedClusters/{kind}"),
            },
        ),
    }
}

fn registry_route(method: &str, sub: &str, rg: &str, original: &[&str], rest: &[&str]) -> Route {
    let target = |part| Target::Registry {
        subscription: sub.to_string(),
        resource_group: rg.to_string(),
        name: original[0].to_string(),
        part,
    };
    let family = Some(ApiFamily::Registries);
    let one = |get: &'static str, put: &'static str, patch: &'static str, delete: &'static str| match method {
        "GET" => get,
        "PUT" => put,
        "PATCH" => patch,
        "DELETE" => delete,
        _ => "MethodNotAllowed",
    };
    match rest {
        [] => route(
            CR_RG,
            if method == "GET" { "Registries_ListByResourceGroup" } else { "MethodNotAllowed" },
            family,
            Target::Registries { subscription: sub.to_string(), resource_group: Some(rg.to_string()) },
        ),
        [_] => {
            let operation = match method {
                "GET" => "Registries_Get",
                "PATCH" => "Registries_Update",
                _ => "MethodNotAllowed",
            };
            route(CR_ONE, operation, family, target(RegistryPart::Itself))
        }
        [_, "listcredentials"] => route(
            CR_LISTCRED,
            post(method, "Registries_ListCredentials"),
            family,
            target(RegistryPart::ListCredentials),
        ),
        [_, "regeneratecredential"] => route(
            CR_REGEN,
            post(method, "Registries_RegenerateCredential"),
            family,
            target(RegistryPart::RegenerateCredential),
        ),
        [_, "generatecredentials"] => route(
            CR_GEN,
            post(method, "Registries_GenerateCredentials"),
            family,
            target(RegistryPart::GenerateCredentials),
        ),
        [_, "scopemaps"] => {
            route(CR_MAPS, get(method, "ScopeMaps_List"), family, target(RegistryPart::ScopeMaps(None)))
        }
        [_, "scopemaps", _] => route(
            CR_MAP,
            one("ScopeMaps_Get", "ScopeMaps_Create", "ScopeMaps_Update", "ScopeMaps_Delete"),
            family,
            target(RegistryPart::ScopeMaps(Some(original[2].to_string()))),
        ),
        [_, "tokens"] => route(CR_TOKENS, get(method, "Tokens_List"), family, target(RegistryPart::Tokens(None))),
        [_, "tokens", _] => route(
            CR_TOKEN,
            one("Tokens_Get", "Tokens_Create", "Tokens_Update", "Tokens_Delete"),
            family,
            target(RegistryPart::Tokens(Some(original[2].to_string()))),
        ),
        [_, "operationstatuses", _] | [_, "scopemaps" | "tokens", _, "operationstatuses", _] => route(
            CR_OP,
            get(method, "OperationStatuses_Get"),
            family,
            target(RegistryPart::Operation(original[original.len() - 1].to_string())),
        ),
        [_, kind, ..] => route(
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/{namespace}/{type}",
            "Unknown",
            None,
            Target::UnknownType {
                namespace: "Microsoft.ContainerRegistry".into(),
                resource_type: format!("registries/{kind}"),
            },
        ),
    }
}

/// Microsoft Graph: `servicePrincipals` (filtered list, by id, by `(appId='…')`) and
/// `directoryObjects/getByIds`. `original` and `lower` are the segments after `v1.0`.
fn graph_route(method: &str, original: &[&str], lower: &[&str]) -> Route {
    let (template, operation) = match (lower, method) {
        (["serviceprincipals"], "GET") => ("/v1.0/servicePrincipals", "ServicePrincipals_List"),
        ([one], "GET") if one.starts_with("serviceprincipals(") => {
            ("/v1.0/servicePrincipals(appId='{appId}')", "ServicePrincipals_GetByAppId")
        }
        (["serviceprincipals", _], "GET") => ("/v1.0/servicePrincipals/{id}", "ServicePrincipals_Get"),
        (["directoryobjects", "getbyids"], "POST") => ("/v1.0/directoryObjects/getByIds", "DirectoryObjects_GetByIds"),
        _ => ("/v1.0/{path}", "Graph_Unknown"),
    };
    route(template, operation, None, Target::Graph { rest: original.iter().map(|x| x.to_string()).collect() })
}

fn post(method: &str, operation: &'static str) -> &'static str {
    if method == "POST" { operation } else { "MethodNotAllowed" }
}

fn get(method: &str, operation: &'static str) -> &'static str {
    if method == "GET" { operation } else { "MethodNotAllowed" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()
    }

    #[test]
    fn role_assignment_scopes_of_every_depth() {
        let r = classify("GET", &segs("/providers/Microsoft.Authorization/roleAssignments"));
        assert_eq!(r.target, Target::RoleAssignments { scope: "/".into(), name: None });
        let r = classify(
            "PUT",
            &segs(
                "/subscriptions/S/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr/providers/Microsoft.Authorization/roleAssignments/abc",
            ),
        );
        assert_eq!(r.operation, "RoleAssignments_Create");
        assert_eq!(
            r.target,
            Target::RoleAssignments {
                scope: "/subscriptions/S/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr".into(),
                name: Some("abc".into())
            }
        );
        assert_eq!(r.subscription.as_deref(), Some("s"));
    }

    #[test]
    fn case_insensitive_paths() {
        let r = classify(
            "GET",
            &segs("/SUBSCRIPTIONS/s/RESOURCEGROUPS/Rg/PROVIDERS/microsoft.containerservice/MANAGEDCLUSTERS/Aks1"),
        );
        assert_eq!(r.operation, "ManagedClusters_Get");
        assert_eq!(r.cluster.as_deref(), Some("Aks1"));
    }

    #[test]
    fn wrong_methods_are_named() {
        assert_eq!(classify("POST", &segs("/subscriptions")).operation, "MethodNotAllowed");
        assert_eq!(classify("GET", &segs("/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerRegistry/registries/a/listCredentials")).operation, "MethodNotAllowed");
    }
}
