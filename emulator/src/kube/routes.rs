//! Paths of the Kubernetes API below a cluster's prefix: what a request addresses, and the
//! route template and OpenAPI operation id the ledger and fault rules use for it.

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::resources::{ResourceType, by_plural};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Discovery {
    Version,
    Api,
    ApiV1,
    Apis,
    OpenApiV3Root,
    OpenApiV3,
    OpenApiV3Apps,
    AppsGroup,
    AppsV1,
    OpenApiV2,
    OpenApi,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KubePath {
    Discovery(Discovery),
    /// A collection (`name` empty) or one object, optionally a subresource (`status`).
    Resource {
        res: &'static ResourceType,
        namespace: String,
        name: String,
        subresource: Option<String>,
    },
    Unknown,
}

pub(crate) fn parse(rest: &[&str]) -> KubePath {
    match rest {
        ["version"] => KubePath::Discovery(Discovery::Version),
        ["api"] => KubePath::Discovery(Discovery::Api),
        ["api", "v1"] => KubePath::Discovery(Discovery::ApiV1),
        ["apis"] => KubePath::Discovery(Discovery::Apis),
        ["apis", "apps"] => KubePath::Discovery(Discovery::AppsGroup),
        ["apis", "apps", "v1"] => KubePath::Discovery(Discovery::AppsV1),
        ["openapi", "v3"] => KubePath::Discovery(Discovery::OpenApiV3Root),
        ["openapi", "v3", "api", "v1"] => KubePath::Discovery(Discovery::OpenApiV3),
        ["openapi", "v3", "apis", "apps", "v1"] => KubePath::Discovery(Discovery::OpenApiV3Apps),
        ["openapi", "v2"] => KubePath::Discovery(Discovery::OpenApiV2),
        ["openapi", ..] => KubePath::Discovery(Discovery::OpenApi),
        ["api", "v1", rest @ ..] => resource_path("", rest),
        ["apis", "apps", "v1", rest @ ..] => resource_path("apps", rest),
        _ => KubePath::Unknown,
    }
}

/// A resource path below `/api/v1` (group "") or `/apis/apps/v1`.
fn resource_path(group: &str, rest: &[&str]) -> KubePath {
    let resource = |plural: &str, namespace: &str, name: &str, sub: Option<&str>| match by_plural(plural) {
        Some(res) if res.group == group && (res.namespaced || namespace.is_empty()) => KubePath::Resource {
            res,
            namespace: namespace.to_string(),
            name: name.to_string(),
            subresource: sub.map(str::to_string),
        },
        _ => KubePath::Unknown,
    };
    match rest {
        [plural] => resource(plural, "", "", None),
        ["namespaces", ns, plural] if by_plural(plural).is_some_and(|r| r.namespaced) => resource(plural, ns, "", None),
        ["namespaces", name, sub @ ("status" | "finalize")] => resource("namespaces", "", name, Some(sub)),
        [plural, name] => resource(plural, "", name, None),
        ["namespaces", ns, plural, name] => resource(plural, ns, name, None),
        ["namespaces", ns, plural, name, sub] => resource(plural, ns, name, Some(sub)),
        _ => KubePath::Unknown,
    }
}

/// Kubernetes' verb for a request on a resource path.
pub(crate) fn verb(method: &str, named: bool, watch: bool) -> &'static str {
    match (method, named) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

// Templates and operation ids are built from a closed set of resource names, so interning
// them leaks a bounded amount of memory once.
static INTERNED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

fn intern(text: String) -> &'static str {
    let mut set = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = set.get(text.as_str()) {
        return existing;
    }
    let leaked: &'static str = Box::leak(text.into_boxed_str());
    set.insert(leaked);
    leaked
}

const PREFIX: &str = "/k8s/{subscriptionId}/{resourceGroupName}/{clusterName}";

/// (route template, operation id) for the ledger, e.g.
/// `/k8s/.../api/v1/namespaces/{namespace}/secrets/{name}` and `readCoreV1NamespacedSecret`.
pub(crate) fn ledger_names(method: &str, rest: &[&str], watch: bool) -> (&'static str, &'static str) {
    match parse(rest) {
        KubePath::Discovery(d) => match d {
            Discovery::Version => (intern(format!("{PREFIX}/version")), "getCodeVersion"),
            Discovery::Api => (intern(format!("{PREFIX}/api")), "getCoreAPIVersions"),
            Discovery::ApiV1 => (intern(format!("{PREFIX}/api/v1")), "getCoreV1APIResources"),
            Discovery::Apis => (intern(format!("{PREFIX}/apis")), "getAPIVersions"),
            Discovery::OpenApiV3Root => (intern(format!("{PREFIX}/openapi/v3")), "getOpenAPIV3"),
            Discovery::OpenApiV3 => (intern(format!("{PREFIX}/openapi/v3/api/v1")), "getOpenAPIV3CoreV1"),
            Discovery::OpenApiV2 => (intern(format!("{PREFIX}/openapi/v2")), "getOpenAPIV2"),
            Discovery::OpenApiV3Apps => (intern(format!("{PREFIX}/openapi/v3/apis/apps/v1")), "getOpenAPIV3AppsV1"),
            Discovery::AppsGroup => (intern(format!("{PREFIX}/apis/apps")), "getAppsAPIGroup"),
            Discovery::AppsV1 => (intern(format!("{PREFIX}/apis/apps/v1")), "getAppsV1APIResources"),
            Discovery::OpenApi => (intern(format!("{PREFIX}/openapi/{{path}}")), "getOpenAPI"),
        },
        KubePath::Unknown => (intern(format!("{PREFIX}/{{path}}")), "Kubernetes"),
        KubePath::Resource { res, namespace, name, subresource } => {
            let namespaced = !namespace.is_empty();
            let mut template = String::from(PREFIX);
            template.push_str(res.path_prefix());
            if namespaced {
                template.push_str("/namespaces/{namespace}");
            }
            template.push('/');
            template.push_str(res.plural);
            if !name.is_empty() {
                template.push_str("/{name}");
            }
            if let Some(sub) = &subresource {
                template.push('/');
                template.push_str(sub);
            }
            let verb = verb(method, !name.is_empty(), watch);
            let action = match verb {
                "get" => "read",
                "update" => "replace",
                "deletecollection" => "deleteCollection",
                other => other,
            };
            let scope = if namespaced || (res.namespaced && !name.is_empty()) { "Namespaced" } else { "" };
            let all = if res.namespaced && !namespaced && name.is_empty() { "ForAllNamespaces" } else { "" };
            let sub = subresource
                .as_deref()
                .map(|s| {
                    let mut c = s.chars();
                    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
                })
                .unwrap_or_default();
            (intern(template), intern(format!("{action}{}{scope}{}{sub}{all}", res.operation_group(), res.operation)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_the_openapi_names() {
        assert_eq!(
            ledger_names("GET", &["api", "v1", "namespaces", "a", "secrets", "x"], false).1,
            "readCoreV1NamespacedSecret"
        );
        assert_eq!(ledger_names("GET", &["api", "v1", "secrets"], false).1, "listCoreV1SecretForAllNamespaces");
        assert_eq!(ledger_names("POST", &["api", "v1", "namespaces"], false).1, "createCoreV1Namespace");
        let (template, operation) =
            ledger_names("POST", &["apis", "apps", "v1", "namespaces", "a", "deployments"], false);
        assert_eq!(operation, "createAppsV1NamespacedDeployment");
        assert_eq!(
            template,
            "/k8s/{subscriptionId}/{resourceGroupName}/{clusterName}/apis/apps/v1/namespaces/{namespace}/deployments"
        );
        assert_eq!(
            parse(&["api", "v1", "namespaces", "a", "deployments"]),
            KubePath::Unknown,
            "apps kinds are not core"
        );
        assert_eq!(ledger_names("GET", &["api", "v1", "namespaces", "a", "pods"], true).1, "watchCoreV1NamespacedPod");
        assert_eq!(
            ledger_names("PUT", &["api", "v1", "namespaces", "a", "pods", "p", "status"], false).1,
            "replaceCoreV1NamespacedPodStatus"
        );
        let (template, _) = ledger_names("PATCH", &["api", "v1", "namespaces", "a", "serviceaccounts", "d"], false);
        assert_eq!(
            template,
            "/k8s/{subscriptionId}/{resourceGroupName}/{clusterName}/api/v1/namespaces/{namespace}/serviceaccounts/{name}"
        );
        assert_eq!(
            parse(&["api", "v1", "namespaces", "x", "status"]),
            KubePath::Resource {
                res: super::super::resources::NAMESPACES,
                namespace: String::new(),
                name: "x".into(),
                subresource: Some("status".into())
            }
        );
    }
}
