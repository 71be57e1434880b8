//! Which pull Secrets a pull-secret binding can stand for so that plan finds them in place:
//! those acrlink made for the file's owner from a registry's admin user, or from a token whose
//! binding name its scope map's name gives back exactly (token and scope-map names hash the
//! binding's name, so a guess is checked against both). A Secret made outside acrlink, by another
//! owner, from a service principal (whose secret's source the file must name) or from an Entra
//! token is listed instead. A Secret is bound whole or not at all. Pure.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::Live;
use super::grants::{SecretWhy, Unexpressed};
use super::layout::Keys;
use super::secrets::{FoundSecret, Held, SecretsLive};
use crate::config::model::Owner;
use crate::methods::acr_names::{ALL_REPOSITORIES_SCOPE_MAP, scope_map_name, token_name};
use crate::model::CredentialKind;
use crate::ownership::acr_prefix;

/// A pull-secret binding of the imported file; clusters and registries by index into `Live`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretBinding {
    pub name: Option<String>,
    pub credential: CredentialKind,
    pub secret_name: String,
    pub clusters: BTreeSet<usize>,
    pub registries: BTreeSet<usize>,
    pub namespaces: BTreeSet<String>,
    pub service_accounts: BTreeSet<String>,
    pub repositories: Vec<String>,
}

/// Where one Secret's registries go: the admin group of its name, or a token binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Admin { secret_name: String },
    Token { binding: String, secret_name: String, repositories: Vec<String> },
}

/// Registries by index, and names (namespaces or ServiceAccounts).
type Indices = BTreeSet<usize>;
type Names = BTreeSet<String>;
/// (cluster, namespace) → the registries the Secret holds and the ServiceAccounts naming it.
type Places = BTreeMap<(usize, String), (Indices, Names)>;
type Placed = BTreeMap<Group, Places>;
/// What clusters share to share a binding (registries, namespaces) → clusters, and the
/// ServiceAccounts that name the Secret in every one of those namespaces.
type Shapes = BTreeMap<(Indices, Names), (Indices, Option<Names>)>;

pub fn decide(
    live: &Live,
    keys: &Keys,
    found: &SecretsLive,
    owner: &Owner,
) -> (Vec<SecretBinding>, BTreeSet<Unexpressed>) {
    let mut unexpressed: BTreeSet<Unexpressed> = found
        .unreadable
        .iter()
        .map(|f| Unexpressed::Unreadable { cluster: f.subject.clone(), message: f.message.clone() })
        .collect();
    let mut placed = Placed::new();
    let mut secrets_of: BTreeMap<Group, Vec<&FoundSecret>> = BTreeMap::new();
    for secret in &found.secrets {
        match groups_of(live, keys, found, owner, secret) {
            Ok(groups) => {
                for (group, registry) in groups {
                    let slot = placed.entry(group.clone()).or_default();
                    let (registries, accounts) = slot.entry((secret.cluster, secret.namespace.clone())).or_default();
                    registries.insert(registry);
                    accounts.extend(secret.service_accounts.iter().cloned());
                    secrets_of.entry(group).or_default().push(secret);
                }
            }
            Err(why) => {
                unexpressed.insert(note(keys, secret, why));
            }
        }
    }
    let mut bindings = Vec::new();
    for (group, places) in placed {
        let made = bindings_of(&group, &places);
        if matches!(group, Group::Token { .. }) && made.len() != 1 {
            // One token binding name, but its clusters differ in namespaces or registries: it
            // was more than one binding, or it was edited; no single binding says it.
            for secret in secrets_of.get(&group).into_iter().flatten() {
                unexpressed.insert(note(keys, secret, SecretWhy::Uneven));
            }
            continue;
        }
        bindings.extend(made);
    }
    bindings.sort();
    (bindings, unexpressed)
}

fn note(keys: &Keys, secret: &FoundSecret, why: SecretWhy) -> Unexpressed {
    let holds = secret
        .entries
        .iter()
        .map(|e| {
            let registry = e.registry.map_or(e.login_server.clone(), |j| keys.registries[j].clone());
            let what = match &e.held {
                Held::Admin => "admin user".to_string(),
                Held::Token(name) => format!("token {name}"),
                Held::ServicePrincipal(client) => format!("service principal {client}"),
                Held::EntraToken => "an Entra token".to_string(),
                Held::User(name) => format!("user {name}"),
            };
            format!("{registry} ({what})")
        })
        .collect();
    Unexpressed::Secret {
        cluster: keys.clusters[secret.cluster].clone(),
        namespace: secret.namespace.clone(),
        name: secret.name.clone(),
        holds,
        why,
    }
}

/// The groups a Secret's entries belong to, or why it cannot be bound.
fn groups_of(
    live: &Live,
    keys: &Keys,
    found: &SecretsLive,
    owner: &Owner,
    secret: &FoundSecret,
) -> Result<Vec<(Group, usize)>, SecretWhy> {
    match &secret.owner {
        None => return Err(SecretWhy::MadeOutside),
        Some(made_by) if made_by != owner.name() => return Err(SecretWhy::OtherOwner(made_by.clone())),
        Some(_) => {}
    }
    let mut groups = Vec::new();
    for entry in &secret.entries {
        let Some(registry) = entry.registry else { return Err(SecretWhy::NotInScope) };
        let group = match &entry.held {
            Held::Admin => Group::Admin { secret_name: secret.name.clone() },
            Held::Token(token) => {
                let (binding, repositories) = token_binding(live, keys, found, owner, secret.cluster, registry, token)
                    .ok_or(SecretWhy::TokenBindingUnknown)?;
                Group::Token { binding, secret_name: secret.name.clone(), repositories }
            }
            Held::ServicePrincipal(_) => return Err(SecretWhy::ServicePrincipal),
            Held::EntraToken => return Err(SecretWhy::EntraToken),
            Held::User(_) => return Err(SecretWhy::NotInScope),
        };
        groups.push((group, registry));
    }
    Ok(groups)
}

/// The binding name and repositories behind an acrlink token: its scope map's name is
/// `acr_prefix + stem(binding) + "-" + hash(binding, registry)`; a stem that hashes back to
/// both the scope map's and the token's name is the binding's name.
fn token_binding(
    live: &Live,
    keys: &Keys,
    found: &SecretsLive,
    owner: &Owner,
    cluster: usize,
    registry: usize,
    token: &str,
) -> Option<(String, Vec<String>)> {
    let live_token = found.tokens.get(&registry)?.iter().find(|t| t.name.eq_ignore_ascii_case(token))?;
    let map_name = live_token.scope_map_id.rsplit('/').next()?;
    if map_name == ALL_REPOSITORIES_SCOPE_MAP {
        return None;
    }
    let rest = map_name.strip_prefix(&acr_prefix(owner))?;
    let (stem, _hash) = rest.rsplit_once('-')?;
    let registry_key = &keys.registries[registry];
    let cluster_live = &live.clusters[cluster];
    let exact = scope_map_name(owner, stem, registry_key) == map_name
        && token_name(owner, &keys.clusters[cluster], &cluster_live.id, stem, registry_key) == live_token.name;
    if !exact {
        return None;
    }
    let map = found.scope_maps.get(&registry)?.iter().find(|m| m.name == map_name)?;
    let repositories: BTreeSet<String> = map
        .actions
        .iter()
        .filter_map(|a| a.strip_prefix("repositories/")?.strip_suffix("/content/read").map(str::to_string))
        .collect();
    Some((stem.to_string(), repositories.into_iter().collect()))
}

/// A group's placements as bindings: clusters with the same namespaces and registries share one.
fn bindings_of(group: &Group, places: &Places) -> Vec<SecretBinding> {
    // Per cluster: its namespaces by registry set, and the ServiceAccounts every one names it in.
    let mut shapes = Shapes::new();
    let mut per_cluster: BTreeMap<(usize, Indices), (Names, Option<Names>)> = BTreeMap::new();
    for ((cluster, namespace), (registries, accounts)) in places {
        let (namespaces, common) = per_cluster.entry((*cluster, registries.clone())).or_default();
        namespaces.insert(namespace.clone());
        *common = Some(common.take().map_or_else(|| accounts.clone(), |c| &c & accounts));
    }
    for ((cluster, registries), (namespaces, accounts)) in per_cluster {
        let (clusters, common) = shapes.entry((registries, namespaces)).or_default();
        clusters.insert(cluster);
        let accounts = accounts.unwrap_or_default();
        *common = Some(common.take().map_or_else(|| accounts.clone(), |c| &c & &accounts));
    }
    let (name, credential, secret_name, repositories) = match group {
        Group::Admin { secret_name } => (None, CredentialKind::Admin, secret_name, Vec::new()),
        Group::Token { binding, secret_name, repositories } => {
            (Some(binding.clone()), CredentialKind::RegistryToken, secret_name, repositories.clone())
        }
    };
    shapes
        .into_iter()
        .map(|((registries, namespaces), (clusters, accounts))| SecretBinding {
            name: name.clone(),
            credential,
            secret_name: secret_name.clone(),
            clusters,
            registries,
            namespaces,
            service_accounts: accounts.unwrap_or_default(),
            repositories: repositories.clone(),
        })
        .collect()
}

/// Names for the admin bindings ("secret-NAME", numbered when met again), avoiding `taken`.
pub fn name_bindings(bindings: &mut [SecretBinding], taken: &mut HashSet<String>) {
    for binding in bindings.iter_mut() {
        let name = match &binding.name {
            Some(name) => name.clone(),
            None => {
                let base = format!("secret-{}", binding.secret_name);
                let mut name = base.clone();
                let mut n = 1;
                while taken.contains(&name) {
                    n += 1;
                    name = format!("{base}-{n}");
                }
                name
            }
        };
        taken.insert(name.clone());
        binding.name = Some(name);
    }
}
