//! ACR tokens of registry-token bindings, one per (cluster, binding, registry), and which of
//! their two password slots the Secrets use. A new password is generated only into a slot no
//! working Secret uses; a working password is copied to the Secrets that lack it instead.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::dockerconfig::{self, Credential, CredentialNote};
use super::pull_secret::{self, DesiredEntry, DesiredSecret, Source, is_managed};
use super::{ApplyContext, Diff, Done, Failed, Found, Inputs, registry_id_of};
use crate::model::{
    Address, CredentialKind, EntryChange, Finding, InPlace, PasswordSlot, Precondition, Reason, State, TokenChange,
    TokenPassword, version_of,
};
use crate::ownership;
use crate::plan::{Action, Change, PasswordGeneration, Resource, Unchanged};
use crate::provider::kubernetes::CREDENTIALS_ANNOTATION;
use crate::provider::{Azure, LiveToken, normalize_id};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredToken {
    pub registry: String,
    pub registry_id: String,
    pub name: String,
    pub scope_map: String,
    pub ttl_seconds: u64,
    pub rotate_before_seconds: u64,
}

pub(super) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

fn live_token<'a>(inputs: &'a Inputs<'_>, registry: &str, name: &str) -> Option<&'a LiveToken> {
    inputs.registries.get(registry)?.tokens.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// What a live Secret's entry for a token is worth.
pub(super) struct TokenEntry {
    /// Untouched since acrlink wrote it, and its password slot is the one ACR still has.
    pub(super) intact: bool,
    pub(super) fingerprint: String,
    slot: Option<PasswordSlot>,
    expiry: Option<OffsetDateTime>,
    /// Why it cannot stay, when it cannot.
    pub(super) problem: Option<EntryChange>,
}

pub(super) fn same_instant(a: Option<&str>, b: Option<&str>) -> bool {
    match (a.and_then(parse_time), b.and_then(parse_time)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

pub(super) fn token_entry(
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
pub(super) enum TokenPlan {
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
    let holds_token = |entry: &DesiredEntry| {
        entry.registry == token.registry && matches!(&entry.source, Source::Token { name } if *name == token.name)
    };
    // Only the Secrets of this token are parsed: a fleet has a token per cluster binding.
    for secret in inputs.desired.secrets.values().filter(|s| s.entries.values().any(holds_token)) {
        let view = pull_secret::view(inputs, secret);
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

/// What a saved plan expects of a token: its scope map, status and passwords (a password
/// regenerated behind acrlink's back changes its creation time).
/// Tokens (and scope maps) a registry of this SKU holds at most, from ACR's SKU table; None for
/// an unknown SKU.
pub fn sku_token_limit(sku: &str) -> Option<usize> {
    match sku.to_ascii_lowercase().as_str() {
        "basic" => Some(100),
        "standard" => Some(500),
        "premium" => Some(50_000),
        _ => None,
    }
}

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

fn expect_token(live: Option<&LiveToken>) -> Precondition {
    live.map_or(Precondition::Absent, |t| Precondition::Arm { id: t.id.clone(), version: token_version(t) })
}

pub(super) type TokenPlans = BTreeMap<(String, String), TokenPlan>;

/// Tokens, and which password their Secrets get this run (see `TokenPlan`).
pub(super) fn diff(inputs: &Inputs<'_>, out: &mut Diff) -> TokenPlans {
    let mut plans = TokenPlans::new();
    for (key, token) in &inputs.desired.tokens {
        let plan = token_plan(inputs, token);
        token_change(inputs, token, &plan, out);
        plans.insert(key.clone(), plan);
    }
    plans
}

fn token_change(inputs: &Inputs<'_>, token: &DesiredToken, plan: &TokenPlan, out: &mut Diff) {
    let address = Address::token(&token.registry, &token.name);
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
        vec![Address::scope_map(&token.registry, &token.scope_map)]
    } else {
        Vec::new()
    };
    let before = live.map(live_state);
    let after = planned_state(before.as_ref(), token, generate.as_ref());
    let change = Change {
        address,
        action,
        reason,
        precondition: expect_token(live),
        depends_on,
        before: None,
        after: None,
        resource: Resource::RegistryToken {
            registry: token.registry.clone(),
            registry_id: token.registry_id.clone(),
            name: token.name.clone(),
            scope_map_id,
            generate,
        },
    };
    out.changes.push(change.states(before, Some(after)));
}

/// A live token as the plan shows it.
fn live_state(live: &LiveToken) -> State {
    let passwords = live
        .passwords
        .iter()
        .filter_map(|p| {
            let slot = PasswordSlot::from_acr(&p.name)?;
            Some(TokenPassword { slot, expiry: p.expiry.clone(), generated: false })
        })
        .collect();
    State::RegistryToken {
        scope_map: live.scope_map_id.rsplit('/').next().unwrap_or_default().to_string(),
        enabled: live.enabled,
        passwords,
    }
}

/// The token as the change leaves it: enabled, on the binding's scope map, with a new password
/// in the generated slot.
fn planned_state(before: Option<&State>, token: &DesiredToken, generate: Option<&PasswordGeneration>) -> State {
    let mut passwords = match before {
        Some(State::RegistryToken { passwords, .. }) => passwords.clone(),
        _ => Vec::new(),
    };
    if let Some(generation) = generate {
        passwords.retain(|p| p.slot != generation.slot);
        passwords.push(TokenPassword { slot: generation.slot, expiry: None, generated: true });
        passwords.sort_by_key(|p| p.slot);
    }
    State::RegistryToken { scope_map: token.scope_map.clone(), enabled: true, passwords }
}

/// The live Secrets (this owner's) holding a password of each token, by token name: read once
/// for the whole prune, not once per token.
fn holders_by_token(inputs: &Inputs<'_>) -> HashMap<String, Vec<Address>> {
    let mut holders: HashMap<String, Vec<Address>> = HashMap::new();
    for (cluster, state) in inputs.clusters {
        for secret in state.secrets.iter().filter(|s| is_managed(s, inputs.owner)) {
            let notes = dockerconfig::parse_notes(secret.annotations.get(CREDENTIALS_ANNOTATION));
            let tokens: BTreeSet<String> = notes.into_values().filter_map(|n| n.token).collect();
            for token in tokens {
                holders.entry(token).or_default().push(Address::secret(&cluster.key, &secret.namespace, &secret.name));
            }
        }
    }
    holders
}

/// acrlink's tokens nobody wants, in the registries whose objects were read. The Secrets that
/// hold a token's password move off it (or go) first: until then pods may still pull with it.
pub(super) fn prune(inputs: &Inputs<'_>, out: &mut Diff) {
    let mut holders: Option<HashMap<String, Vec<Address>>> = None;
    let changed: HashSet<Address> = out.changes.iter().map(|c| c.address.clone()).collect();
    for registry in inputs.token_registries {
        let Some(state) = inputs.registries.get(registry) else { continue };
        let registry_id = registry_id_of(state);
        for token in state.tokens.iter().filter(|t| ownership::acr_object_is_owned(&t.name, inputs.owner)) {
            let key = (registry.clone(), token.name.clone());
            if inputs.desired.tokens.contains_key(&key) || inputs.desired.reserved.contains(&key) {
                continue;
            }
            let holders = holders.get_or_insert_with(|| holders_by_token(inputs));
            let depends_on: Vec<Address> = holders
                .get(&token.name)
                .into_iter()
                .flatten()
                .filter(|holder| changed.contains(*holder))
                .cloned()
                .collect();
            out.changes.push(
                Change {
                    address: Address::token(registry, &token.name),
                    action: Action::Delete,
                    reason: Reason::RegistryObjectUnwanted,
                    precondition: expect_token(Some(token)),
                    depends_on,
                    before: None,
                    after: None,
                    resource: Resource::RegistryToken {
                        registry: registry.clone(),
                        registry_id: registry_id.clone(),
                        name: token.name.clone(),
                        scope_map_id: token.scope_map_id.clone(),
                        generate: None,
                    },
                }
                .states(Some(live_state(token)), None),
            );
        }
    }
}

/// Key of a generated password in the apply context.
pub(super) fn token_key(registry_id: &str, token: &str) -> String {
    format!("{}/tokens/{}", registry_id.to_ascii_lowercase(), token.to_ascii_lowercase())
}

fn expiry_after(ttl_seconds: u64) -> String {
    let now = OffsetDateTime::now_utc();
    let ttl = time::Duration::seconds(ttl_seconds.min(i64::MAX as u64) as i64);
    // A TTL beyond what a date can hold means "as long as possible".
    let expiry = now.checked_add(ttl).unwrap_or(time::macros::datetime!(9999-12-31 23:59:59 UTC));
    expiry.replace_nanosecond(0).unwrap_or(expiry).format(&Rfc3339).unwrap_or_default()
}

/// The token a registry-token change writes.
pub(super) struct Target<'a> {
    pub registry: &'a str,
    pub registry_id: &'a str,
    pub name: &'a str,
    pub scope_map_id: &'a str,
}

pub(super) async fn apply<A: Azure>(
    action: Action,
    token: &Target<'_>,
    generate: Option<&PasswordGeneration>,
    azure: &A,
    context: &ApplyContext,
) -> Result<Done, Failed> {
    let Target { registry, registry_id, name, scope_map_id } = *token;
    if action == Action::Delete {
        azure.delete_token(registry_id, name).await?;
        return Ok(Done::as_planned(action, format!("removed token {name} from {registry}")));
    }
    if action == Action::Create {
        azure.put_token(registry_id, name, scope_map_id).await?;
    } else {
        azure.update_token(registry_id, name, scope_map_id).await?;
    }
    let Some(PasswordGeneration { slot, ttl_seconds }) = generate else {
        return Ok(Done::as_planned(action, format!("token {name} on {registry} updated")));
    };
    let generated =
        azure.generate_token_password(registry_id, name, slot.as_str(), &expiry_after(*ttl_seconds)).await?;
    let expiry = generated.expiry.clone().unwrap_or_default();
    context.generated.lock().await.insert(token_key(registry_id, name), generated);
    Ok(Done::as_planned(action, format!("token {name} on {registry}: new {slot}, valid until {expiry}")))
}

pub(super) fn found(
    lists: &BTreeMap<String, Result<Vec<LiveToken>, String>>,
    registry_id: &str,
    name: &str,
) -> Result<Found, String> {
    super::listed(lists, registry_id, name, |t| &t.name, token_version)
}
