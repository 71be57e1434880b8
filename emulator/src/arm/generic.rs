//! Microsoft.Resources' generic resource list (Resources_List, Resources_ListByResourceGroup):
//! every cluster and registry of a subscription or group as `GenericResourceExpanded` items
//! (no `properties`), with `$filter` on `resourceType`, `name`, `resourceGroup` and `location`.
//! az CLI finds a registry by name this way (`az acr … -n`, `--attach-acr`, `az acr token create`).

use serde_json::{Value, json};

use super::{Ctx, list_prefix, under};
use crate::http::{Reply, arm_error};
use crate::state::{ClusterRec, Readable, RegistryRec, State};
use crate::world::ClusterIdentity;

const READ: &str = "Microsoft.Resources/subscriptions/resources/read";
const CLUSTER_TYPE: &str = "Microsoft.ContainerService/managedClusters";
const REGISTRY_TYPE: &str = "Microsoft.ContainerRegistry/registries";

/// One `field eq 'value'` clause; clauses are AND-ed.
#[derive(Debug, PartialEq, Eq)]
struct Clause {
    field: Field,
    value: String,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Field {
    ResourceType,
    Name,
    ResourceGroup,
    Location,
}

/// Parses the `$filter` forms a client finds a resource with; None when it is not one of them.
fn parse_filter(filter: &str) -> Option<Vec<Clause>> {
    let mut clauses = Vec::new();
    for part in split_and(filter) {
        let (field, value) = part.trim().split_once(" eq ")?;
        let field = match field.trim().to_ascii_lowercase().as_str() {
            "resourcetype" => Field::ResourceType,
            "name" => Field::Name,
            "resourcegroup" => Field::ResourceGroup,
            "location" => Field::Location,
            _ => return None,
        };
        let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?.replace("''", "'");
        clauses.push(Clause { field, value });
    }
    Some(clauses)
}

/// Splits on ` and ` in any case, outside quotes.
fn split_and(filter: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            quoted = !quoted;
        }
        let rest: String = chars[i..chars.len().min(i + 5)].iter().collect();
        if !quoted && rest.eq_ignore_ascii_case(" and ") {
            parts.push(std::mem::take(&mut current));
            i += 5;
            continue;
        }
        current.push(c);
        i += 1;
    }
    parts.push(current);
    parts
}

/// A resource as the generic list shows it: what it has in common with every other resource.
#[derive(Clone, Copy)]
enum Generic<'a> {
    Cluster(&'a ClusterRec),
    Registry(&'a RegistryRec),
}

fn cluster_item(state: &State, c: &ClusterRec) -> Value {
    let mut item = json!({
        "id": c.id,
        "name": c.name,
        "type": CLUSTER_TYPE,
        "sku": {"name": "Base", "tier": c.sku_tier},
        "kind": "Base",
        "location": c.location,
        "tags": c.tags,
    });
    match (&c.identity, &c.control_plane) {
        (ClusterIdentity::SystemAssigned, Some(cp)) => {
            item["identity"] =
                json!({"principalId": cp.object_id, "tenantId": state.tenant_id, "type": "SystemAssigned"});
        }
        (ClusterIdentity::UserAssigned, Some(cp)) => {
            let mut identities = serde_json::Map::new();
            identities.insert(cp.resource_id.clone(), json!({"principalId": cp.object_id, "clientId": cp.client_id}));
            item["identity"] = json!({"type": "UserAssigned", "userAssignedIdentities": identities});
        }
        _ => {}
    }
    item
}

fn registry_item(r: &RegistryRec) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "type": REGISTRY_TYPE,
        "sku": {"name": r.sku, "tier": r.sku},
        "location": r.location,
        "tags": r.tags,
    })
}

impl<'a> Generic<'a> {
    /// Its type, and its name, resource group and location.
    fn fields(self) -> (&'static str, (&'a str, &'a str, &'a str)) {
        match self {
            Generic::Cluster(c) => (CLUSTER_TYPE, (&c.name, &c.resource_group, &c.location)),
            Generic::Registry(r) => (REGISTRY_TYPE, (&r.name, &r.resource_group, &r.location)),
        }
    }

    fn matches(self, clause: &Clause) -> bool {
        let value = clause.value.as_str();
        let (resource_type, (name, resource_group, location)) = self.fields();
        match clause.field {
            Field::ResourceType => resource_type.eq_ignore_ascii_case(value),
            Field::Name => name.eq_ignore_ascii_case(value),
            Field::ResourceGroup => resource_group.eq_ignore_ascii_case(value),
            Field::Location => location.eq_ignore_ascii_case(value),
        }
    }

    fn render(self, state: &State) -> Value {
        match self {
            Generic::Cluster(c) => cluster_item(state, c),
            Generic::Registry(r) => registry_item(r),
        }
    }
}

pub(super) fn list(ctx: &Ctx<'_>, subscription: &str, resource_group: Option<&str>) -> Reply {
    let state = ctx.shared.state();
    listed(ctx, &state, subscription, resource_group).unwrap_or_else(|reply| reply)
}

fn listed(ctx: &Ctx<'_>, state: &State, subscription: &str, resource_group: Option<&str>) -> Result<Reply, Reply> {
    let clauses = match ctx.req.query("$filter") {
        None => Vec::new(),
        Some(filter) => parse_filter(filter).ok_or_else(|| {
            arm_error(400, "InvalidFilterParameter", format!("The $filter '{filter}' is not supported."))
        })?,
    };
    let (sub, grants) = ctx.list_scope(state, subscription, resource_group, READ)?;
    let prefix = list_prefix(&sub.id, resource_group);
    let scope = prefix.trim_end_matches('/');
    let clusters_readable = Readable::new(&grants, scope, &format!("{CLUSTER_TYPE}/read"));
    let registries_readable = Readable::new(&grants, scope, &format!("{REGISTRY_TYPE}/read"));
    let clusters = under(&state.clusters, &prefix)
        .filter(|(key, _)| clusters_readable.allows(key))
        .map(|(_, c)| Generic::Cluster(c));
    let registries = under(&state.registries, &prefix)
        .filter(|(key, _)| registries_readable.allows(key))
        .map(|(_, r)| Generic::Registry(r));
    let items = clusters.chain(registries).filter(|g| clauses.iter().all(|c| g.matches(c)));
    ctx.page(state, items, |g| g.render(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_clients_send() {
        let clauses = parse_filter("resourceType eq 'Microsoft.ContainerRegistry/registries'").unwrap_or_default();
        assert_eq!(clauses, vec![Clause { field: Field::ResourceType, value: REGISTRY_TYPE.into() }]);
        let clauses = parse_filter("resourceType eq 'A/b' AND name eq 'x and y'").unwrap_or_default();
        assert_eq!(clauses.len(), 2);
        assert_eq!(clauses[1], Clause { field: Field::Name, value: "x and y".into() });
        assert_eq!(parse_filter("substringof('a', name)"), None);
    }
}
