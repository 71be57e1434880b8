//! ACR scope maps: the repository actions a registry-token binding's tokens may use. acrlink's
//! own maps carry its name prefix (`crate::ownership`); only those are changed or removed.

use std::collections::{BTreeMap, HashSet};

use super::{Diff, Found, Inputs, registry_id_of};
use crate::model::{Address, InPlace, Precondition, Reason, State, version_of};
use crate::ownership;
use crate::plan::{Action, Change, Resource, Unchanged};
use crate::provider::{Azure, LiveScopeMap};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredScopeMap {
    pub registry: String,
    pub registry_id: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// What a saved plan expects of a scope map: its actions.
pub fn scope_map_version(map: &LiveScopeMap) -> String {
    let mut actions: Vec<&str> = map.actions.iter().map(String::as_str).collect();
    actions.sort_unstable();
    version_of(&actions)
}

fn sorted(actions: &[String]) -> Vec<String> {
    let mut actions = actions.to_vec();
    actions.sort();
    actions
}

fn expect_scope_map(live: Option<&LiveScopeMap>) -> Precondition {
    live.map_or(Precondition::Absent, |m| Precondition::Arm { id: m.id.clone(), version: scope_map_version(m) })
}

/// Scope maps: acrlink's own, with exactly the binding's actions.
pub(super) fn diff(inputs: &Inputs<'_>, out: &mut Diff) {
    for map in inputs.desired.scope_maps.values() {
        let address = Address::scope_map(&map.registry, &map.name);
        let live = inputs.registries.get(&map.registry).and_then(|r| r.scope_maps.iter().find(|m| m.name == map.name));
        let mut live_actions = live.map(|m| m.actions.clone()).unwrap_or_default();
        live_actions.sort();
        let (action, reason) = match live {
            None => (Action::Create, Reason::ScopeMapNeeded),
            Some(_) if live_actions != map.actions => (Action::Update, Reason::ScopeMapActionsChanged),
            Some(_) => {
                out.unchanged.push(Unchanged { address, reason: InPlace::ScopeMapInPlace });
                continue;
            }
        };
        let change = Change {
            address,
            action,
            reason,
            precondition: expect_scope_map(live),
            depends_on: Vec::new(),
            before: None,
            after: None,
            resource: Resource::ScopeMap {
                registry: map.registry.clone(),
                registry_id: map.registry_id.clone(),
                name: map.name.clone(),
                actions: map.actions.clone(),
            },
        };
        out.changes.push(match live {
            Some(_) => change
                .shifting(State::ScopeMap { actions: live_actions }, State::ScopeMap { actions: map.actions.clone() }),
            None => change.states(None, Some(State::ScopeMap { actions: map.actions.clone() })),
        });
    }
}

/// acrlink's scope maps nobody wants, in the registries whose objects were read. Tokens that
/// switch to another scope map, or go, do so before the one they used goes.
pub(super) fn prune(inputs: &Inputs<'_>, out: &mut Diff) {
    let changed: HashSet<Address> = out.changes.iter().map(|c| c.address.clone()).collect();
    for registry in inputs.token_registries {
        let Some(state) = inputs.registries.get(registry) else { continue };
        let registry_id = registry_id_of(state);
        for map in state.scope_maps.iter().filter(|m| ownership::acr_object_is_owned(&m.name, inputs.owner)) {
            let key = (registry.clone(), map.name.clone());
            if inputs.desired.scope_maps.contains_key(&key) || inputs.desired.reserved.contains(&key) {
                continue;
            }
            let movers: Vec<Address> = state
                .tokens
                .iter()
                .filter(|t| t.scope_map_id.rsplit('/').next() == Some(map.name.as_str()))
                .map(|t| Address::token(registry, &t.name))
                .filter(|a| changed.contains(a))
                .collect();
            out.changes.push(
                Change {
                    address: Address::scope_map(registry, &map.name),
                    action: Action::Delete,
                    reason: Reason::RegistryObjectUnwanted,
                    precondition: expect_scope_map(Some(map)),
                    depends_on: movers,
                    before: None,
                    after: None,
                    resource: Resource::ScopeMap {
                        registry: registry.clone(),
                        registry_id: registry_id.clone(),
                        name: map.name.clone(),
                        actions: map.actions.clone(),
                    },
                }
                .states(Some(State::ScopeMap { actions: sorted(&map.actions) }), None),
            );
        }
    }
}

pub(super) async fn apply<A: Azure>(
    action: Action,
    (registry, registry_id, name): (&str, &str, &str),
    actions: &[String],
    azure: &A,
) -> Result<super::Done, super::Failed> {
    let message = if action == Action::Delete {
        azure.delete_scope_map(registry_id, name).await?;
        format!("removed scope map {name} from {registry}")
    } else {
        azure.put_scope_map(registry_id, name, ownership::SCOPE_MAP_DESCRIPTION, actions).await?;
        format!("scope map {name} on {registry} reads {} action(s)", actions.len())
    };
    Ok(super::Done::as_planned(action, message))
}

pub(super) fn found(
    lists: &BTreeMap<String, Result<Vec<LiveScopeMap>, String>>,
    registry_id: &str,
    name: &str,
) -> Result<Found, String> {
    super::listed(lists, registry_id, name, |m| &m.name, scope_map_version)
}
