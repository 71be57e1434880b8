//! Compares desired pull Secrets, ServiceAccount entries, tokens and scope maps with the live
//! ones. Pure. Credentials are compared by keyed fingerprints only. A Secret acrlink did not
//! make is never touched unless the binding says `adopt = true`; only acrlink's Secrets, its
//! own ServiceAccount entries and its own tokens and scope maps are ever removed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::desired::{Desired, DesiredSecret, DesiredToken, Source};
use super::dockerconfig::{self, Credential, CredentialNote};
use super::naming;
use super::observe::{ClusterState, RegistryState};
use crate::config::model::{Owner, SecretReference};
use crate::model::{
    Address, CredentialKind, EntryChange, Finding, InPlace, PasswordSlot, Precondition, Reason, TokenChange, version_of,
};
use crate::ownership;
use crate::plan::{Action, Change, CredentialPlan, PasswordGeneration, Resource, SecretEntry, TokenSource, Unchanged};
use crate::provider::kubernetes::LiveServiceAccount;
use crate::provider::kubernetes::{CREDENTIALS_ANNOTATION, ClusterTarget, DOCKER_CONFIG_JSON_TYPE, LiveSecret};
use crate::provider::{LiveScopeMap, LiveToken, normalize_id};

pub struct Inputs<'a> {
    pub desired: &'a Desired,
    pub clusters: &'a BTreeMap<ClusterTarget, ClusterState>,
    pub registries: &'a BTreeMap<String, RegistryState>,
    /// Service-principal credentials read from the environment or files, by client id.
    pub service_principals: &'a BTreeMap<String, Credential>,
    /// Registry keys whose tokens and scope maps were read (pruning happens only there).
    pub token_registries: &'a BTreeSet<String>,
    pub owner: &'a Owner,
    pub now: OffsetDateTime,
}

#[derive(Debug, Default)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub unchanged: Vec<Unchanged>,
    pub warnings: Vec<Finding>,
    /// Bindings that cannot be met: a Secret of their name that acrlink does not own.
    pub blocked: Vec<Finding>,
}

/// Made by acrlink for this owner.
pub fn is_managed(secret: &LiveSecret, owner: &Owner) -> bool {
    ownership::secret_is_owned(&secret.labels, owner)
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

fn live_token<'a>(inputs: &'a Inputs<'_>, registry: &str, name: &str) -> Option<&'a LiveToken> {
    inputs.registries.get(registry)?.tokens.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// Why a live admin or service-principal entry cannot stay as it is, or None when it is current.
fn stale_entry(
    inputs: &Inputs<'_>,
    desired: &super::desired::DesiredEntry,
    note: Option<&CredentialNote>,
    live: Option<&Credential>,
) -> Option<EntryChange> {
    let registry = desired.registry.clone();
    let (Some(note), Some(live)) = (note, live) else {
        return Some(EntryChange::AddsRegistry { registry });
    };
    if live.fingerprint(&desired.login_server) != note.fingerprint {
        return Some(EntryChange::EditedOutside { registry });
    }
    match &desired.source {
        Source::Admin => {
            let admin = inputs.registries.get(&registry).and_then(|r| r.admin.as_ref())?;
            let current = Credential { username: admin.username.clone(), password: admin.password.clone() };
            (note.kind != CredentialKind::Admin || current.fingerprint(&desired.login_server) != note.fingerprint)
                .then_some(EntryChange::AdminPasswordChanged { registry })
        }
        Source::ServicePrincipal { client_id, .. } => {
            let current = inputs.service_principals.get(client_id)?;
            (note.kind != CredentialKind::ServicePrincipal
                || current.fingerprint(&desired.login_server) != note.fingerprint)
                .then_some(EntryChange::ServicePrincipalSecretChanged { registry })
        }
        Source::Token { .. } => None,
    }
}

/// What a live Secret's entry for a token is worth.
struct TokenEntry {
    /// Untouched since acrlink wrote it, and its password slot is the one ACR still has.
    intact: bool,
    fingerprint: String,
    slot: Option<PasswordSlot>,
    expiry: Option<OffsetDateTime>,
    /// Why it cannot stay, when it cannot.
    problem: Option<EntryChange>,
}

fn same_instant(a: Option<&str>, b: Option<&str>) -> bool {
    match (a.and_then(parse_time), b.and_then(parse_time)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

fn token_entry(
    inputs: &Inputs<'_>,
    registry: &str,
    name: &str,
    note: Option<&CredentialNote>,
    live: Option<&Credential>,
    login: &str,
) -> TokenEntry {
    let broken = |problem: EntryChange| TokenEntry {
        intact: false,
        fingerprint: String::new(),
        slot: None,
        expiry: None,
        problem: Some(problem),
    };
    let (registry, token_name) = (registry.to_string(), name.to_string());
    let (Some(note), Some(live)) = (note, live) else {
        return broken(EntryChange::AddsRegistry { registry });
    };
    if live.fingerprint(login) != note.fingerprint {
        return broken(EntryChange::EditedOutside { registry });
    }
    if note.kind != CredentialKind::RegistryToken || note.token.as_deref() != Some(name) {
        return broken(EntryChange::SwitchesToken { registry, token: token_name });
    }
    let Some(token) = live_token(inputs, &registry, name) else {
        return broken(EntryChange::TokenGone { registry, token: token_name });
    };
    let Some(slot) =
        token.passwords.iter().find(|p| PasswordSlot::from_acr(&p.name).is_some_and(|s| note.slot == Some(s)))
    else {
        return broken(EntryChange::PasswordGone { token: token_name });
    };
    if !same_instant(slot.creation_time.as_deref(), note.created.as_deref()) {
        return broken(EntryChange::PasswordRegenerated { token: token_name });
    }
    TokenEntry {
        intact: true,
        fingerprint: note.fingerprint.clone(),
        slot: PasswordSlot::from_acr(&slot.name),
        expiry: slot.expiry.as_deref().and_then(parse_time),
        problem: None,
    }
}

/// How a token's Secrets get their password this run. A password that works and is not due
/// for rotation is copied into the Secrets that lack it (a new namespace, an edited Secret);
/// a new one is generated only when none is left, and only into a slot no working Secret
/// uses, so no pod ever holds a password acrlink just invalidated.
enum TokenPlan {
    Copy {
        namespace: String,
        name: String,
        fingerprint: String,
        /// Set when a rotation is due but both slots hold working passwords: the Secrets are
        /// first brought onto the newer one, and the rotation waits for the next run.
        postponed: Option<String>,
    },
    Generate {
        slot: PasswordSlot,
        reason: EntryChange,
    },
}

fn token_plan(inputs: &Inputs<'_>, token: &DesiredToken) -> TokenPlan {
    let live = live_token(inputs, &token.registry, &token.name);
    let generate = |slot: PasswordSlot, reason: EntryChange| TokenPlan::Generate { slot, reason };
    if live.is_none() {
        return generate(PasswordSlot::Password1, EntryChange::NewToken);
    }
    // Every intact, unexpired entry of this token in the Secrets that will exist.
    let mut working: Vec<(&DesiredSecret, TokenEntry)> = Vec::new();
    let mut problems = Vec::new();
    let holds_token = |entry: &super::desired::DesiredEntry| {
        entry.registry == token.registry && matches!(&entry.source, Source::Token { name } if *name == token.name)
    };
    // Only the Secrets of this token are parsed: a fleet has a token per cluster binding.
    for secret in inputs.desired.secrets.values().filter(|s| s.entries.values().any(holds_token)) {
        let view = view(inputs, secret);
        for (login, entry) in &secret.entries {
            if !holds_token(entry) {
                continue;
            }
            let state = token_entry(
                inputs,
                &token.registry,
                &token.name,
                view.notes.get(login),
                view.payload.get(login),
                login,
            );
            match state.expiry {
                _ if !state.intact => problems.extend(state.problem.clone()),
                Some(expiry) if expiry <= inputs.now => problems.push(EntryChange::PasswordExpired),
                _ => working.push((secret, state)),
            }
        }
    }
    let due = |state: &TokenEntry| {
        state.expiry.is_some_and(|e| {
            e - inputs.now < time::Duration::seconds(token.rotate_before_seconds.min(i64::MAX as u64) as i64)
        })
    };
    let latest = working.iter().max_by_key(|(_, s)| s.expiry);
    if let Some((secret, state)) = latest.filter(|(_, s)| !due(s)) {
        return TokenPlan::Copy {
            namespace: secret.namespace.clone(),
            name: secret.name.clone(),
            fingerprint: state.fingerprint.clone(),
            postponed: None,
        };
    }
    let in_use: BTreeSet<PasswordSlot> = working.iter().filter_map(|(_, s)| s.slot).collect();
    let reason = match latest {
        Some((_, state)) => {
            EntryChange::Rotation { expiry: state.expiry.and_then(|e| e.format(&Rfc3339).ok()).unwrap_or_default() }
        }
        None => problems.into_iter().next().unwrap_or(EntryChange::NoWorkingPassword),
    };
    match PasswordSlot::BOTH.into_iter().find(|slot| !in_use.contains(slot)) {
        Some(free) => generate(free, reason),
        None => {
            let (secret, state) = latest.expect("both slots in use means a working entry");
            TokenPlan::Copy {
                namespace: secret.namespace.clone(),
                name: secret.name.clone(),
                fingerprint: state.fingerprint.clone(),
                postponed: Some(format!(
                    "rotation of token {} waits: both its passwords are still in use; this run moves every Secret onto the newer one",
                    token.name
                )),
            }
        }
    }
}

struct SecretView<'a> {
    live: Option<&'a LiveSecret>,
    notes: dockerconfig::Notes,
    payload: BTreeMap<String, Credential>,
}

fn view<'a>(inputs: &'a Inputs<'_>, secret: &DesiredSecret) -> SecretView<'a> {
    let live = inputs
        .clusters
        .get(&secret.cluster)
        .and_then(|state| state.secrets.iter().find(|s| s.namespace == secret.namespace && s.name == secret.name));
    let notes = live.map(|s| dockerconfig::parse_notes(s.annotations.get(CREDENTIALS_ANNOTATION))).unwrap_or_default();
    let payload = live.and_then(|s| s.docker_config.as_ref()).map(dockerconfig::parse).unwrap_or_default();
    SecretView { live, notes, payload }
}

/// What a saved plan expects of a token: its scope map, status and passwords (a password
/// regenerated behind acrlink's back changes its creation time).
pub fn token_version(token: &LiveToken) -> String {
    let mut passwords: Vec<String> = token
        .passwords
        .iter()
        .map(|p| format!("{}={}", p.name, p.creation_time.as_deref().unwrap_or_default()))
        .collect();
    passwords.sort();
    let enabled = token.enabled.to_string();
    let scope_map = normalize_id(&token.scope_map_id);
    let mut fields = vec![scope_map.as_str(), enabled.as_str()];
    fields.extend(passwords.iter().map(String::as_str));
    version_of(&fields)
}

/// What a saved plan expects of a scope map: its actions.
pub fn scope_map_version(map: &LiveScopeMap) -> String {
    let mut actions: Vec<&str> = map.actions.iter().map(String::as_str).collect();
    actions.sort_unstable();
    version_of(&actions)
}

fn expect_token(live: Option<&LiveToken>) -> Precondition {
    live.map_or(Precondition::Absent, |t| Precondition::Arm { id: t.id.clone(), version: token_version(t) })
}

fn expect_scope_map(live: Option<&LiveScopeMap>) -> Precondition {
    live.map_or(Precondition::Absent, |m| Precondition::Arm { id: m.id.clone(), version: scope_map_version(m) })
}

pub fn expect_secret(live: Option<&LiveSecret>) -> Precondition {
    live.map_or(Precondition::Absent, |s| Precondition::Kubernetes {
        uid: s.uid.clone(),
        resource_version: s.resource_version.clone(),
    })
}

/// A service account made moments from now (with its namespace) is expected absent.
pub fn expect_service_account(live: &LiveServiceAccount) -> Precondition {
    if live.resource_version.is_empty() {
        return Precondition::Absent;
    }
    Precondition::Kubernetes { uid: live.uid.clone(), resource_version: live.resource_version.clone() }
}

pub fn diff(inputs: &Inputs<'_>) -> Diff {
    let mut out = Diff::default();
    scope_maps(inputs, &mut out);
    let plans = tokens(inputs, &mut out);
    namespaces(inputs, &mut out);
    for secret in inputs.desired.secrets.values() {
        self::secret(inputs, secret, &plans, &mut out);
    }
    prune_secrets(inputs, &mut out);
    service_accounts(inputs, &mut out);
    prune_registry_objects(inputs, &mut out);
    out.changes.sort_by(|a, b| (&a.address, a.action).cmp(&(&b.address, b.action)));
    out.unchanged.sort_by(|a, b| a.address.cmp(&b.address));
    out
}

/// Scope maps: acrlink's own, with exactly the binding's actions.
fn scope_maps(inputs: &Inputs<'_>, out: &mut Diff) {
    for map in inputs.desired.scope_maps.values() {
        let address = naming::scope_map_address(&map.registry, &map.name);
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
        out.changes.push(Change {
            address,
            action,
            reason,
            precondition: expect_scope_map(live),
            depends_on: Vec::new(),
            resource: Resource::ScopeMap {
                registry: map.registry.clone(),
                registry_id: map.registry_id.clone(),
                name: map.name.clone(),
                actions: map.actions.clone(),
            },
        });
    }
}

type TokenPlans = BTreeMap<(String, String), TokenPlan>;

/// Tokens, and which password their Secrets get this run (see `TokenPlan`).
fn tokens(inputs: &Inputs<'_>, out: &mut Diff) -> TokenPlans {
    let mut plans = TokenPlans::new();
    for (key, token) in &inputs.desired.tokens {
        let plan = token_plan(inputs, token);
        token_change(inputs, token, &plan, out);
        plans.insert(key.clone(), plan);
    }
    plans
}

fn token_change(inputs: &Inputs<'_>, token: &DesiredToken, plan: &TokenPlan, out: &mut Diff) {
    let address = naming::token_address(&token.registry, &token.name);
    let live = live_token(inputs, &token.registry, &token.name);
    let scope_map_id = format!("{}/scopeMaps/{}", token.registry_id, token.scope_map);
    let mut changes = Vec::new();
    if live.is_some_and(|t| normalize_id(&t.scope_map_id) != normalize_id(&scope_map_id)) {
        changes.push(TokenChange::ScopeMapChanged);
    }
    if live.is_some_and(|t| !t.enabled) {
        changes.push(TokenChange::DisabledOutside);
    }
    let generate = match plan {
        TokenPlan::Generate { slot, reason } => {
            changes.push(TokenChange::NewPassword { because: reason.clone() });
            Some(PasswordGeneration { slot: *slot, ttl_seconds: token.ttl_seconds })
        }
        TokenPlan::Copy { postponed: Some(why), .. } => {
            out.warnings.push(Finding {
                subject: address.to_string(),
                message: why.clone(),
                hint: Some("run apply again once this one has succeeded".into()),
            });
            None
        }
        TokenPlan::Copy { .. } => None,
    };
    let (action, reason) = match live {
        None => (Action::Create, Reason::TokenNeeded),
        Some(_) if !changes.is_empty() => (Action::Update, Reason::TokenChanged { changes }),
        Some(_) => {
            out.unchanged.push(Unchanged { address, reason: InPlace::TokenInPlace });
            return;
        }
    };
    let depends_on = if ownership::acr_object_is_owned(&token.scope_map, inputs.owner) {
        vec![naming::scope_map_address(&token.registry, &token.scope_map)]
    } else {
        Vec::new()
    };
    out.changes.push(Change {
        address,
        action,
        reason,
        precondition: expect_token(live),
        depends_on,
        resource: Resource::RegistryToken {
            registry: token.registry.clone(),
            registry_id: token.registry_id.clone(),
            name: token.name.clone(),
            scope_map_id,
            generate,
        },
    });
}

/// Namespaces a binding creates (`create_namespaces = true`).
fn namespaces(inputs: &Inputs<'_>, out: &mut Diff) {
    for (cluster, namespace) in &inputs.desired.namespaces {
        out.changes.push(Change {
            address: naming::namespace_address(&cluster.key, namespace),
            action: Action::Create,
            reason: Reason::NamespaceMissing,
            precondition: Precondition::Absent,
            depends_on: Vec::new(),
            resource: Resource::Namespace { cluster: cluster.clone(), name: namespace.clone() },
        });
    }
}

/// Where one token entry of a Secret gets its password, and why the entry changes if it does.
fn token_source(
    inputs: &Inputs<'_>,
    secret: &DesiredSecret,
    entry: &super::desired::DesiredEntry,
    name: &str,
    (note, live, login): (Option<&CredentialNote>, Option<&Credential>, &str),
    plans: &TokenPlans,
) -> (TokenSource, Option<EntryChange>) {
    let state = token_entry(inputs, &entry.registry, name, note, live, login);
    match plans.get(&(entry.registry.clone(), name.to_string())) {
        Some(TokenPlan::Copy { namespace, name: from, fingerprint, .. }) => {
            let own = *namespace == secret.namespace && *from == secret.name;
            let current = state.intact && state.fingerprint == *fingerprint;
            let change = (!current).then(|| {
                state.problem.unwrap_or_else(|| EntryChange::AddsRegistry { registry: entry.registry.clone() })
            });
            let source = if own || current {
                TokenSource::Keep { fingerprint: fingerprint.clone() }
            } else {
                TokenSource::Copy { namespace: namespace.clone(), name: from.clone(), fingerprint: fingerprint.clone() }
            };
            (source, change)
        }
        Some(TokenPlan::Generate { reason, .. }) => (TokenSource::Generated, Some(reason.clone())),
        None => (TokenSource::Generated, None),
    }
}

/// The entries a Secret should hold, and what changes in the live one.
fn secret_entries(
    inputs: &Inputs<'_>,
    secret: &DesiredSecret,
    view: &SecretView<'_>,
    usable: bool,
    plans: &TokenPlans,
) -> (Vec<SecretEntry>, Vec<EntryChange>) {
    let mut changes = Vec::new();
    let mut entries = Vec::new();
    for (login, entry) in &secret.entries {
        let note = view.notes.get(login).filter(|_| usable);
        let live = view.payload.get(login).filter(|_| usable);
        let credential = match &entry.source {
            Source::Admin => {
                changes.extend(stale_entry(inputs, entry, note, live));
                CredentialPlan::Admin { registry_id: entry.registry_id.clone() }
            }
            Source::ServicePrincipal { client_id, secret } => {
                changes.extend(stale_entry(inputs, entry, note, live));
                let (secret_env, secret_file) = match secret {
                    SecretReference::Environment(v) => (Some(v.clone()), None),
                    SecretReference::File(p) => (None, Some(p.display().to_string())),
                };
                CredentialPlan::ServicePrincipal { client_id: client_id.clone(), secret_env, secret_file }
            }
            Source::Token { name } => {
                let (source, change) = token_source(inputs, secret, entry, name, (note, live, login), plans);
                changes.extend(change);
                CredentialPlan::RegistryToken { registry_id: entry.registry_id.clone(), token: name.clone(), source }
            }
        };
        entries.push(SecretEntry {
            registry: entry.registry.clone(),
            login_server: entry.login_server.clone(),
            credential,
        });
    }
    changes.dedup();
    let wanted: BTreeSet<&String> = secret.entries.keys().collect();
    for extra in view.payload.keys().chain(view.notes.keys()).collect::<BTreeSet<_>>() {
        if !wanted.contains(extra) {
            changes.push(EntryChange::Removes { login_server: extra.clone() });
        }
    }
    (entries, changes)
}

/// A Secret waits for the tokens whose passwords it carries and the namespace it lives in.
fn secret_dependencies(inputs: &Inputs<'_>, secret: &DesiredSecret) -> Vec<Address> {
    let mut depends_on: Vec<Address> = secret
        .entries
        .values()
        .filter_map(|e| match &e.source {
            Source::Token { name } => Some(naming::token_address(&e.registry, name)),
            _ => None,
        })
        .collect();
    if inputs.desired.namespaces.contains(&(secret.cluster.clone(), secret.namespace.clone())) {
        depends_on.push(naming::namespace_address(&secret.cluster.key, &secret.namespace));
    }
    depends_on.sort();
    depends_on.dedup();
    depends_on
}

fn secret(inputs: &Inputs<'_>, secret: &DesiredSecret, plans: &TokenPlans, out: &mut Diff) {
    let address = naming::secret_address(&secret.cluster.key, &secret.namespace, &secret.name);
    let view = view(inputs, secret);
    let usable =
        view.live.is_some_and(|s| (is_managed(s, inputs.owner) || secret.adopt) && s.type_ == DOCKER_CONFIG_JSON_TYPE);
    let (entries, changes) = secret_entries(inputs, secret, &view, usable, plans);
    let sensitive_change = changes.iter().any(EntryChange::is_sensitive);
    let (action, reason) = match view.live {
        None => (
            Action::Create,
            Reason::SecretNeeded { registries: secret.entries.values().map(|e| e.registry.clone()).collect() },
        ),
        // Someone else's Secret: taken over only with adopt = true, and never an immutable one.
        Some(live) if !is_managed(live, inputs.owner) && (!secret.adopt || live.immutable) => {
            out.blocked.push(foreign_secret(&address, secret, live.immutable));
            return;
        }
        Some(live) if live.type_ != DOCKER_CONFIG_JSON_TYPE => {
            (Action::Replace, Reason::SecretTypeWrong { live_type: live.type_.clone() })
        }
        Some(live) if !is_managed(live, inputs.owner) => (Action::Update, Reason::SecretAdopted),
        // The API refuses any change to an immutable Secret's data: delete, then create.
        Some(live) if live.immutable && !changes.is_empty() => (Action::Replace, Reason::SecretImmutable { changes }),
        Some(_) if !changes.is_empty() => (Action::Update, Reason::SecretChanged { changes }),
        Some(_) => {
            out.unchanged.push(Unchanged { address, reason: InPlace::SecretInPlace });
            return;
        }
    };
    out.changes.push(Change {
        address,
        action,
        reason,
        precondition: expect_secret(view.live),
        depends_on: secret_dependencies(inputs, secret),
        resource: Resource::PullSecret {
            cluster: secret.cluster.clone(),
            namespace: secret.namespace.clone(),
            name: secret.name.clone(),
            entries,
            sensitive_change: sensitive_change && action == Action::Update,
        },
    });
}

/// A binding blocked by a Secret of its name that acrlink did not make.
fn foreign_secret(address: &Address, secret: &DesiredSecret, immutable: bool) -> Finding {
    let (what, hint) = if immutable {
        (
            "is immutable and was not made by acrlink",
            "choose another secret_name, or delete it so acrlink can make its own",
        )
    } else {
        ("was not made by acrlink", "choose another secret_name, or set adopt = true on the binding to take it over")
    };
    Finding {
        subject: address.to_string(),
        message: format!(
            "a Secret named {} already exists in {}/{} and {what}; it is left alone",
            secret.name, secret.cluster.key, secret.namespace
        ),
        hint: Some(hint.into()),
    }
}

/// acrlink's Secrets nobody wants, in the clusters that were read.
fn prune_secrets(inputs: &Inputs<'_>, out: &mut Diff) {
    for (cluster, state) in inputs.clusters {
        for live in state.secrets.iter().filter(|s| is_managed(s, inputs.owner)) {
            let key = (cluster.clone(), live.namespace.clone(), live.name.clone());
            if inputs.desired.secrets.contains_key(&key) {
                continue;
            }
            out.changes.push(Change {
                address: naming::secret_address(&cluster.key, &live.namespace, &live.name),
                action: Action::Delete,
                reason: Reason::SecretUnwanted,
                precondition: expect_secret(Some(live)),
                depends_on: Vec::new(),
                resource: Resource::PullSecret {
                    cluster: cluster.clone(),
                    namespace: live.namespace.clone(),
                    name: live.name.clone(),
                    entries: Vec::new(),
                    sensitive_change: false,
                },
            });
        }
    }
}

type AccountKey = (ClusterTarget, String, String);

/// Every ServiceAccount a binding names or this owner patched before.
fn account_keys(inputs: &Inputs<'_>) -> BTreeSet<AccountKey> {
    let mut keys: BTreeSet<AccountKey> = inputs.desired.service_accounts.keys().cloned().collect();
    for (cluster, state) in inputs.clusters {
        for account in &state.service_accounts {
            if ownership::service_account_patched_by(&account.annotations, inputs.owner) {
                keys.insert((cluster.clone(), account.namespace.clone(), account.name.clone()));
            }
        }
    }
    keys
}

/// The live account, or the `default` one the controller will make in a namespace acrlink
/// creates this run.
fn live_account(
    inputs: &Inputs<'_>,
    index: &HashMap<(&ClusterTarget, &str, &str), &LiveServiceAccount>,
    (cluster, namespace, name): &AccountKey,
) -> Option<LiveServiceAccount> {
    if let Some(live) = index.get(&(cluster, namespace.as_str(), name.as_str())) {
        return Some((*live).clone());
    }
    let namespace_created = inputs.desired.namespaces.contains(&(cluster.clone(), namespace.clone()));
    (namespace_created && name == "default").then(|| LiveServiceAccount {
        uid: String::new(),
        namespace: namespace.clone(),
        name: name.clone(),
        resource_version: String::new(),
        image_pull_secrets: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    })
}

fn service_accounts(inputs: &Inputs<'_>, out: &mut Diff) {
    let index: HashMap<(&ClusterTarget, &str, &str), &LiveServiceAccount> = inputs
        .clusters
        .iter()
        .flat_map(|(cluster, state)| {
            state.service_accounts.iter().map(move |a| ((cluster, a.namespace.as_str(), a.name.as_str()), a))
        })
        .collect();
    // Secrets that will exist after this run, by address: an account names only those.
    let planned: HashSet<Address> = out
        .changes
        .iter()
        .filter(|c| c.action != Action::Delete)
        .map(|c| c.address.clone())
        .chain(out.unchanged.iter().map(|u| u.address.clone()))
        .collect();
    for key in account_keys(inputs) {
        service_account(inputs, &key, live_account(inputs, &index, &key), &planned, out);
    }
}

fn service_account(
    inputs: &Inputs<'_>,
    key: &AccountKey,
    live: Option<LiveServiceAccount>,
    planned: &HashSet<Address>,
    out: &mut Diff,
) {
    let (cluster, namespace, name) = key;
    let address = naming::service_account_address(&cluster.key, namespace, name);
    let wanted = inputs.desired.service_accounts.get(key).cloned().unwrap_or_default();
    let Some(live) = live else {
        if !wanted.is_empty() {
            out.warnings.push(Finding {
                subject: address.to_string(),
                message: format!(
                    "service account {name} does not exist in {}/{namespace}; it is not patched",
                    cluster.key
                ),
                hint: Some("create it, or remove it from the binding's service_accounts".into()),
            });
        }
        return;
    };
    let listed: BTreeSet<String> = live.image_pull_secrets.clone().unwrap_or_default().into_iter().collect();
    let ours = ownership::recorded_entries(&live.annotations, inputs.owner);
    // Only Secrets that will exist are added: a foreign Secret left alone is not named.
    let add: Vec<String> = wanted
        .iter()
        .filter(|s| !listed.contains(*s))
        .filter(|s| {
            let secret_key = (cluster.clone(), namespace.clone(), (*s).clone());
            planned.contains(&naming::secret_address(&cluster.key, namespace, s))
                || !inputs.desired.secrets.contains_key(&secret_key)
        })
        .cloned()
        .collect();
    let remove: Vec<String> = ours.iter().filter(|s| !wanted.contains(*s) && listed.contains(*s)).cloned().collect();
    if add.is_empty() && remove.is_empty() {
        if !wanted.is_empty() {
            let names = wanted.iter().cloned().collect();
            out.unchanged.push(Unchanged { address, reason: InPlace::ServiceAccountLists { names } });
        }
        return;
    }
    let mut depends_on: Vec<Address> = add.iter().map(|s| naming::secret_address(&cluster.key, namespace, s)).collect();
    if inputs.desired.namespaces.contains(&(cluster.clone(), namespace.clone())) {
        depends_on.push(naming::namespace_address(&cluster.key, namespace));
    }
    order_secret_deletes_after(out, &cluster.key, namespace, &remove, &address);
    out.changes.push(Change {
        address,
        action: Action::Update,
        reason: Reason::ServiceAccountEntries { add: add.clone(), remove: remove.clone() },
        precondition: expect_service_account(&live),
        depends_on,
        resource: Resource::ServiceAccountPullSecrets {
            cluster: cluster.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            add,
            remove,
        },
    });
}

/// A Secret this account stops naming is deleted only once the account no longer names it:
/// were the patch to fail, pods admitted later would name a Secret that is gone.
fn order_secret_deletes_after(out: &mut Diff, cluster: &str, namespace: &str, removed: &[String], account: &Address) {
    for name in removed {
        let secret = naming::secret_address(cluster, namespace, name);
        for change in out.changes.iter_mut().filter(|c| c.address == secret && c.action == Action::Delete) {
            change.depends_on.push(account.clone());
        }
    }
}

/// Addresses of the live Secrets (this owner's) whose entries hold a password of `token`.
fn secrets_holding(inputs: &Inputs<'_>, token: &str) -> Vec<Address> {
    let mut holders = Vec::new();
    for (cluster, state) in inputs.clusters {
        for secret in state.secrets.iter().filter(|s| is_managed(s, inputs.owner)) {
            let notes = dockerconfig::parse_notes(secret.annotations.get(CREDENTIALS_ANNOTATION));
            if notes.values().any(|n| n.token.as_deref() == Some(token)) {
                holders.push(naming::secret_address(&cluster.key, &secret.namespace, &secret.name));
            }
        }
    }
    holders
}

fn prune_registry_objects(inputs: &Inputs<'_>, out: &mut Diff) {
    let desired = inputs.desired;
    for registry in inputs.token_registries {
        let Some(state) = inputs.registries.get(registry) else { continue };
        let registry_id = state
            .tokens
            .first()
            .map(|t| t.id.split("/tokens/").next().unwrap_or_default().to_string())
            .or_else(|| {
                state.scope_maps.first().map(|m| m.id.split("/scopeMaps/").next().unwrap_or_default().to_string())
            })
            .unwrap_or_default();
        for token in state.tokens.iter().filter(|t| ownership::acr_object_is_owned(&t.name, inputs.owner)) {
            let key = (registry.clone(), token.name.clone());
            if desired.tokens.contains_key(&key) || desired.reserved.contains(&key) {
                continue;
            }
            // The Secrets that hold this token's password move off it (or go) first: until then
            // pods may still pull with it.
            let address = naming::token_address(registry, &token.name);
            let depends_on: Vec<Address> = secrets_holding(inputs, &token.name)
                .into_iter()
                .filter(|holder| out.changes.iter().any(|c| &c.address == holder))
                .collect();
            out.changes.push(Change {
                address,
                action: Action::Delete,
                reason: Reason::RegistryObjectUnwanted,
                precondition: expect_token(Some(token)),
                depends_on,
                resource: Resource::RegistryToken {
                    registry: registry.clone(),
                    registry_id: registry_id.clone(),
                    name: token.name.clone(),
                    scope_map_id: token.scope_map_id.clone(),
                    generate: None,
                },
            });
        }
        for map in state.scope_maps.iter().filter(|m| ownership::acr_object_is_owned(&m.name, inputs.owner)) {
            let key = (registry.clone(), map.name.clone());
            if desired.scope_maps.contains_key(&key) || desired.reserved.contains(&key) {
                continue;
            }
            // Tokens that switch to another scope map, or go, do so before this one goes.
            let movers: Vec<Address> = state
                .tokens
                .iter()
                .filter(|t| t.scope_map_id.rsplit('/').next() == Some(map.name.as_str()))
                .map(|t| naming::token_address(registry, &t.name))
                .filter(|a| out.changes.iter().any(|c| &c.address == a))
                .collect();
            out.changes.push(Change {
                address: naming::scope_map_address(registry, &map.name),
                action: Action::Delete,
                reason: Reason::RegistryObjectUnwanted,
                precondition: expect_scope_map(Some(map)),
                depends_on: movers,
                resource: Resource::ScopeMap {
                    registry: registry.clone(),
                    registry_id: registry_id.clone(),
                    name: map.name.clone(),
                    actions: map.actions.clone(),
                },
            });
        }
    }
}
