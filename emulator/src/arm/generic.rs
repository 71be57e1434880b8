//! Microsoft.Resources' generic resource list (Resources_List, Resources_ListByResourceGroup):
//! every cluster and registry of a subscription or group as `GenericResourceExpanded` items
//! (no `properties`), with `$filter` on `resourceType`, `name`, `resourceGroup` and `location`.
//! az CLI finds a registry by name this way (`az acr … -n`, `--attach-acr`, `az acr token create`).

use serde_json::{Value, json};

use super::Ctx;
use crate::http::{Reply, arm_error, page};
use crate::state::{ClusterRec, RegistryRec, State, allowed};
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
struct Generic {
    id: String,
    resource_type: &'static str,
    resource_group: String,
    location: String,
    item: Value,
}

fn cluster_item(state: &State, c: &ClusterRec) -> Generic {
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
    Generic {
        id: c.id.clone(),
        resource_type: CLUSTER_TYPE,
        resource_group: c.resource_group.clone(),
        location: c.location.clone(),
        item,
    }
}

fn registry_item(r: &RegistryRec) -> Generic {
    Generic {
        id: r.id.clone(),
        resource_type: REGISTRY_TYPE,
        resource_group: r.resource_group.clone(),
        location: r.location.clone(),
        item: json!({
            "id": r.id,
            "name": r.name,
            "type": REGISTRY_TYPE,
            "sku": {"name": r.sku, "tier": r.sku},
            "location": r.location,
            "tags": r.tags,
        }),
    }
}

impl Generic {
    fn matches(&self, clause: &Clause) -> bool {
        let value = clause.value.as_str();
        match clause.field {
            Field::ResourceType => self.resource_type.eq_ignore_ascii_case(value),
            Field::Name => self.item["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(value)),
            Field::ResourceGroup => self.resource_group.eq_ignore_ascii_case(value),
            Field::Location => self.location.eq_ignore_ascii_case(value),
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
    let clusters = state.clusters.values().filter(|c| c.subscription == sub.id).map(|c| cluster_item(state, c));
    let registries = state.registries.values().filter(|r| r.subscription == sub.id).map(registry_item);
    let items = clusters
        .chain(registries)
        .filter(|g| resource_group.is_none_or(|rg| g.resource_group.eq_ignore_ascii_case(rg)))
        .filter(|g| clauses.iter().all(|c| g.matches(c)))
        .filter(|g| allowed(&grants, &g.id, &format!("{}/read", g.resource_type)))
        .map(|g| g.item)
        .collect();
    page(ctx.req, items, ctx.page_size(state)).map(|body| Reply::json(200, &body))
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
