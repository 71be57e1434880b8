//! Pull Secrets: `kubernetes.io/dockerconfigjson` Secrets holding every registry bound to them.
//! Diff compares credentials by keyed fingerprints only; a Secret acrlink did not make is never
//! touched unless the binding says `adopt = true`; only acrlink's own Secrets are removed.
//! Apply fetches or generates each credential at the last moment, keeps it in memory only and
//! writes it straight into the Secret.

use std::collections::{BTreeMap, BTreeSet};

use super::dockerconfig::{self, Credential, CredentialNote, Notes};
use super::registry_token::{TokenPlan, TokenPlans, token_entry, token_key};
use super::{ApplyContext, Diff, Done, Failed, Found, Inputs};
use crate::apply::Status;
use crate::config::model::{Owner, SecretReference};
use crate::model::{
    Address, CredentialKind, EntryChange, Finding, Grantee, InPlace, PasswordSlot, Precondition, Reason,
    RegistryCredential, State,
};
use crate::ownership;
use crate::plan::{Action, Change, CredentialPlan, Resource, SecretEntry, TokenSource, Unchanged};
use crate::provider::kubernetes::{
    CREDENTIALS_ANNOTATION, ClusterTarget, DOCKER_CONFIG_JSON_TYPE, KubeError, Kubernetes, LiveSecret, SecretWrite,
};
use crate::provider::{AdminCredentials, Azure};
use crate::sensitive::Sensitive;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Admin,
    Token { name: String },
    ServicePrincipal { client_id: String, secret: SecretReference },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredEntry {
    pub registry: String,
    pub registry_id: String,
    pub login_server: String,
    pub binding: String,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct DesiredSecret {
    pub cluster: ClusterTarget,
    pub namespace: String,
    pub name: String,
    pub adopt: bool,
    /// By lowercased login server.
    pub entries: BTreeMap<String, DesiredEntry>,
}

impl DesiredSecret {
    /// The bindings that put an entry in this Secret, each once, sorted.
    pub fn bindings(&self) -> Vec<String> {
        let names: std::collections::BTreeSet<&str> = self.entries.values().map(|e| e.binding.as_str()).collect();
        names.into_iter().map(str::to_string).collect()
    }
}

pub type SecretKey = (ClusterTarget, String, String);

/// Made by acrlink for this owner.
pub fn is_managed(secret: &LiveSecret, owner: &Owner) -> bool {
    ownership::secret_is_owned(&secret.labels, owner)
}

/// Why a live admin or service-principal entry cannot stay as it is, or None when it is current.
fn stale_entry(
    inputs: &Inputs<'_>,
    desired: &DesiredEntry,
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

pub(super) struct SecretView<'a> {
    live: Option<&'a LiveSecret>,
    pub(super) notes: dockerconfig::Notes,
    pub(super) payload: BTreeMap<String, Credential>,
}

pub(super) fn view<'a>(inputs: &'a Inputs<'_>, secret: &DesiredSecret) -> SecretView<'a> {
    let live = inputs
        .clusters
        .get(&secret.cluster)
        .and_then(|state| state.secrets.iter().find(|s| s.namespace == secret.namespace && s.name == secret.name));
    let notes = live.map(|s| dockerconfig::parse_notes(s.annotations.get(CREDENTIALS_ANNOTATION))).unwrap_or_default();
    let payload = live.and_then(|s| s.docker_config.as_ref()).map(dockerconfig::parse).unwrap_or_default();
    SecretView { live, notes, payload }
}

/// What a live Secret holds, read without a desired one (for a delete).
fn live_view(live: &LiveSecret) -> SecretView<'_> {
    SecretView {
        live: Some(live),
        notes: dockerconfig::parse_notes(live.annotations.get(CREDENTIALS_ANNOTATION)),
        payload: live.docker_config.as_ref().map(dockerconfig::parse).unwrap_or_default(),
    }
}

pub fn expect_secret(live: Option<&LiveSecret>) -> Precondition {
    live.map_or(Precondition::Absent, |s| Precondition::Kubernetes {
        uid: s.uid.clone(),
        resource_version: s.resource_version.clone(),
    })
}

/// Where one token entry of a Secret gets its password, and why the entry changes if it does.
fn token_source(
    inputs: &Inputs<'_>,
    secret: &DesiredSecret,
    entry: &DesiredEntry,
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
    // A service principal's Secret is of use only once the principal may pull: grant first.
    let mut depends_on: Vec<Address> = secret
        .entries
        .values()
        .filter_map(|e| match &e.source {
            Source::Token { name } => Some(Address::token(&e.registry, name)),
            Source::ServicePrincipal { client_id, .. } => Some(Address::RoleAssignment {
                grantee: Grantee::ServicePrincipal(client_id.clone()),
                registry: e.registry.clone(),
                role: None,
            }),
            Source::Admin => None,
        })
        .collect();
    if inputs.desired.namespaces.contains(&(secret.cluster.clone(), secret.namespace.clone())) {
        depends_on.push(Address::namespace(&secret.cluster.key, &secret.namespace));
    }
    depends_on.sort();
    depends_on.dedup();
    depends_on
}

fn secret(inputs: &Inputs<'_>, secret: &DesiredSecret, plans: &TokenPlans, out: &mut Diff) {
    let address = Address::secret(&secret.cluster.key, &secret.namespace, &secret.name);
    let view = view(inputs, secret);
    let usable =
        view.live.is_some_and(|s| (is_managed(s, inputs.owner) || secret.adopt) && s.type_ == DOCKER_CONFIG_JSON_TYPE);
    let (entries, changes) = secret_entries(inputs, secret, &view, usable, plans);
    let sensitive_change = changes.iter().any(EntryChange::is_sensitive);
    let (action, reason) = match view.live {
        None => (
            Action::Create,
            Reason::SecretNeeded {
                bindings: secret.bindings(),
                registries: secret.entries.values().map(|e| e.registry.clone()).collect(),
            },
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
    let before = view.live.map(|live| secret_state(live, &view));
    let after = planned_state(inputs, &entries);
    let change = Change {
        address,
        action,
        reason,
        precondition: expect_secret(view.live),
        depends_on: secret_dependencies(inputs, secret),
        before: None,
        after: None,
        resource: Resource::PullSecret {
            cluster: secret.cluster.clone(),
            namespace: secret.namespace.clone(),
            name: secret.name.clone(),
            entries,
            sensitive_change: sensitive_change && action == Action::Update,
        },
    };
    out.changes.push(change.states(before, Some(after)));
}

/// A live Secret as the plan shows it: its registries with the kind and fingerprint of each
/// credential, never the credential.
fn secret_state(live: &LiveSecret, view: &SecretView<'_>) -> State {
    let logins: BTreeSet<&String> = view.payload.keys().chain(view.notes.keys()).collect();
    let registries = logins
        .into_iter()
        .map(|login| {
            let note = view.notes.get(login);
            RegistryCredential {
                login_server: login.clone(),
                credential: note.map(|n| n.kind),
                token: note.and_then(|n| n.token.clone()),
                fingerprint: view.payload.get(login).map(|c| c.fingerprint(login)),
            }
        })
        .collect();
    State::PullSecret { secret_type: live.type_.clone(), immutable: live.immutable, registries }
}

/// The Secret this change writes, in the same terms: a credential made at apply time (a new
/// token password) has no fingerprint yet.
fn planned_state(inputs: &Inputs<'_>, entries: &[SecretEntry]) -> State {
    let registries = entries
        .iter()
        .map(|entry| {
            let login = entry.login_server.to_ascii_lowercase();
            let (credential, token, fingerprint) = match &entry.credential {
                CredentialPlan::Admin { .. } => {
                    let admin = inputs.registries.get(&entry.registry).and_then(|r| r.admin.as_ref());
                    let fingerprint = admin.map(|a| {
                        Credential { username: a.username.clone(), password: a.password.clone() }.fingerprint(&login)
                    });
                    (CredentialKind::Admin, None, fingerprint)
                }
                CredentialPlan::ServicePrincipal { client_id, .. } => {
                    let fingerprint = inputs.service_principals.get(client_id).map(|c| c.fingerprint(&login));
                    (CredentialKind::ServicePrincipal, None, fingerprint)
                }
                CredentialPlan::RegistryToken { token, source, .. } => {
                    let fingerprint = match source {
                        TokenSource::Generated => None,
                        TokenSource::Keep { fingerprint } | TokenSource::Copy { fingerprint, .. } => {
                            Some(fingerprint.clone())
                        }
                    };
                    (CredentialKind::RegistryToken, Some(token.clone()), fingerprint)
                }
            };
            RegistryCredential { login_server: login, credential: Some(credential), token, fingerprint }
        })
        .collect();
    State::PullSecret { secret_type: DOCKER_CONFIG_JSON_TYPE.to_string(), immutable: false, registries }
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
fn prune(inputs: &Inputs<'_>, out: &mut Diff) {
    for (cluster, state) in inputs.clusters {
        for live in state.secrets.iter().filter(|s| is_managed(s, inputs.owner)) {
            let key = (cluster.clone(), live.namespace.clone(), live.name.clone());
            if inputs.desired.secrets.contains_key(&key) {
                continue;
            }
            out.changes.push(
                Change {
                    address: Address::secret(&cluster.key, &live.namespace, &live.name),
                    action: Action::Delete,
                    reason: Reason::SecretUnwanted,
                    precondition: expect_secret(Some(live)),
                    depends_on: Vec::new(),
                    before: None,
                    after: None,
                    resource: Resource::PullSecret {
                        cluster: cluster.clone(),
                        namespace: live.namespace.clone(),
                        name: live.name.clone(),
                        entries: Vec::new(),
                        sensitive_change: false,
                    },
                }
                .states(Some(secret_state(live, &live_view(live))), None),
            );
        }
    }
}

pub(super) fn diff(inputs: &Inputs<'_>, plans: &TokenPlans, out: &mut Diff) {
    for secret in inputs.desired.secrets.values() {
        self::secret(inputs, secret, plans, out);
    }
    prune(inputs, out);
}

/// Reads a service principal's secret from where the file says; the message never has it.
pub fn read_client_secret(reference: &SecretReference) -> Result<Sensitive<String>, String> {
    match reference {
        SecretReference::Environment(name) => match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => Ok(Sensitive::new(value.trim().to_string())),
            _ => Err(format!("environment variable {name} (client_secret_env) is not set")),
        },
        SecretReference::File(path) => match std::fs::read_to_string(path) {
            Ok(value) if !value.trim().is_empty() => Ok(Sensitive::new(value.trim().to_string())),
            Ok(_) => Err(format!("{} (client_secret_file) is empty", path.display())),
            Err(e) => Err(format!("cannot read {} (client_secret_file): {}", path.display(), e.kind())),
        },
    }
}

impl ApplyContext {
    /// The admin credential of a registry, read once per apply however many Secrets need it.
    async fn admin<A: Azure>(&self, azure: &A, registry_id: &str) -> Result<AdminCredentials, Failed> {
        let cell = self.admin.lock().await.entry(registry_id.to_ascii_lowercase()).or_default().clone();
        let credentials = cell.get_or_try_init(|| azure.registry_admin_credentials(registry_id)).await?;
        Ok(credentials.clone())
    }

    /// The credential and annotation note for one entry of a Secret.
    async fn materialize<A: Azure, K: Kubernetes>(
        &self,
        azure: &A,
        entry: &SecretEntry,
        live: Option<(&Notes, &BTreeMap<String, Credential>)>,
        copy_from: Option<(&ClusterTarget, &K)>,
    ) -> Result<(Credential, CredentialNote), Failed> {
        let login = &entry.login_server;
        match &entry.credential {
            CredentialPlan::Admin { registry_id } => {
                let admin = self.admin(azure, registry_id).await?;
                let credential = Credential { username: admin.username, password: admin.password };
                let note =
                    CredentialNote::new(CredentialKind::Admin, &credential.username, credential.fingerprint(login));
                Ok((credential, note))
            }
            CredentialPlan::ServicePrincipal { client_id, .. } => {
                // Read where the file says, whatever the plan says.
                let reference = self.secret_sources.get(client_id).ok_or_else(|| Failed {
                    message: format!("the desired-state file names no client secret for {client_id}"),
                    hint: Some("plan again with the file that binds this service principal".into()),
                })?;
                let password = read_client_secret(reference).map_err(|message| Failed { message, hint: None })?;
                let credential = Credential { username: client_id.clone(), password };
                let note =
                    CredentialNote::new(CredentialKind::ServicePrincipal, client_id, credential.fingerprint(login));
                Ok((credential, note))
            }
            CredentialPlan::RegistryToken { registry_id, token, source: TokenSource::Generated } => {
                let generated =
                    self.generated.lock().await.get(&token_key(registry_id, token)).cloned().ok_or_else(|| Failed {
                        message: format!("token {token} has no new password in this apply"),
                        hint: Some("its registry_token change did not run; plan again".into()),
                    })?;
                let credential = Credential { username: generated.username.clone(), password: generated.password };
                let note = CredentialNote {
                    kind: CredentialKind::RegistryToken,
                    username: generated.username,
                    fingerprint: credential.fingerprint(login),
                    token: Some(token.clone()),
                    slot: PasswordSlot::from_acr(&generated.slot),
                    created: generated.creation_time,
                    expires: generated.expiry,
                };
                Ok((credential, note))
            }
            CredentialPlan::RegistryToken {
                token, source: TokenSource::Copy { namespace, name, fingerprint }, ..
            } => {
                let (cluster, kube) = copy_from.ok_or_else(|| Failed {
                    message: format!("no cluster to copy token {token}'s password from"),
                    hint: None,
                })?;
                let source = kube.get_secret(cluster, namespace, name).await?;
                let notes =
                    source.as_ref().map(|s| dockerconfig::parse_notes(s.annotations.get(CREDENTIALS_ANNOTATION)));
                let payload = source.as_ref().and_then(|s| s.docker_config.as_ref()).map(dockerconfig::parse);
                let kept = notes.as_ref().zip(payload.as_ref()).and_then(|(n, p)| Some((n.get(login)?, p.get(login)?)));
                match kept {
                    Some((note, credential)) if &credential.fingerprint(login) == fingerprint => {
                        Ok((credential.clone(), note.clone()))
                    }
                    _ => Err(Failed {
                        message: format!(
                            "Secret {namespace}/{name}, which holds token {token}'s password, changed since the plan"
                        ),
                        hint: Some("plan again".into()),
                    }),
                }
            }
            CredentialPlan::RegistryToken { token, source: TokenSource::Keep { fingerprint }, .. } => {
                let kept = live.and_then(|(notes, payload)| Some((notes.get(login)?, payload.get(login)?)));
                match kept {
                    Some((note, credential)) if &credential.fingerprint(login) == fingerprint => {
                        Ok((credential.clone(), note.clone()))
                    }
                    _ => Err(Failed {
                        message: format!("the Secret's entry for token {token} changed since the plan"),
                        hint: Some("plan again".into()),
                    }),
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn build<A: Azure, K: Kubernetes>(
        &self,
        azure: &A,
        kube: &K,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
        entries: &[SecretEntry],
        live: Option<&LiveSecret>,
    ) -> Result<SecretWrite, Failed> {
        let live_notes = live.map(|s| dockerconfig::parse_notes(s.annotations.get(CREDENTIALS_ANNOTATION)));
        let live_payload = live.and_then(|s| s.docker_config.as_ref()).map(dockerconfig::parse);
        let live_view = live_notes.as_ref().zip(live_payload.as_ref());
        let mut credentials = BTreeMap::new();
        let mut notes = Notes::new();
        for entry in entries {
            let (credential, note) = self.materialize(azure, entry, live_view, Some((cluster, kube))).await?;
            credentials.insert(entry.login_server.clone(), credential);
            notes.insert(entry.login_server.clone(), note);
        }
        let mut labels = live.map(|s| s.labels.clone()).unwrap_or_default();
        labels.extend(ownership::secret_labels(&self.owner));
        let mut annotations = live.map(|s| s.annotations.clone()).unwrap_or_default();
        annotations.insert(CREDENTIALS_ANNOTATION.into(), dockerconfig::render_notes(&notes));
        // kubectl's last-applied copy would hold the old payload in clear text.
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        Ok(SecretWrite {
            namespace: namespace.to_string(),
            name: name.to_string(),
            labels,
            annotations,
            docker_config_json: dockerconfig::build(&credentials),
        })
    }
}

/// The Secret a pull-secret change writes, and the uid its precondition names.
pub(super) struct Target<'a> {
    pub cluster: &'a ClusterTarget,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: Option<&'a str>,
}

pub(super) async fn found<K: Kubernetes>(
    cluster: &ClusterTarget,
    namespace: &str,
    name: &str,
    kube: &K,
) -> Result<Found, String> {
    let live = kube.get_secret(cluster, namespace, name).await.map_err(|e| e.to_string())?;
    Ok(live.map_or(Found::Absent, |s| Found::Kubernetes { uid: s.uid, resource_version: s.resource_version }))
}

pub(super) async fn apply<A: Azure, K: Kubernetes>(
    action: Action,
    target: &Target<'_>,
    entries: &[SecretEntry],
    azure: &A,
    kube: &K,
    context: &ApplyContext,
) -> Result<Done, Failed> {
    write_secret(action, target, entries, azure, kube, context).await
}

async fn write_secret<A: Azure, K: Kubernetes>(
    action: Action,
    target: &Target<'_>,
    entries: &[SecretEntry],
    azure: &A,
    kube: &K,
    context: &ApplyContext,
) -> Result<Done, Failed> {
    let done = |message: String| Ok(Done::as_planned(action, message));
    let Target { cluster, namespace, name, uid: live_uid } = *target;
    let place = format!("{}/{namespace}", cluster.key);
    let stale = |what: &str| Failed {
        message: format!("Secret {name} in {place} {what} since the plan; nothing was changed"),
        hint: Some("plan again".into()),
    };
    match action {
        Action::Delete => {
            kube.delete_secret(cluster, namespace, name, live_uid.unwrap_or_default()).await?;
            done(format!("removed Secret {name} from {place}"))
        }
        Action::Create => {
            let write = context.build(azure, kube, cluster, namespace, name, entries, None).await?;
            still_current(azure, entries, &write, None).await?;
            match kube.create_secret(cluster, &write).await {
                Ok(()) => done(format!("created Secret {name} in {place}")),
                Err(KubeError::Conflict { .. }) => Err(stale("appeared")),
                Err(error) => Err(redacted(error.into(), &write)),
            }
        }
        Action::Replace => {
            // Entries kept as they are (a token password) come from the Secret being replaced.
            let live = kube.get_secret(cluster, namespace, name).await?;
            let write = context.build(azure, kube, cluster, namespace, name, entries, live.as_ref()).await?;
            still_current(azure, entries, &write, live.as_ref()).await?;
            kube.delete_secret(cluster, namespace, name, live_uid.unwrap_or_default()).await?;
            kube.create_secret(cluster, &write).await.map_err(|e| {
                let failed = Failed {
                    message: format!("deleted the old Secret {name} in {place} but could not create the new one: {e}"),
                    hint: Some("run apply again: the plan will create it".into()),
                };
                redacted(failed, &write)
            })?;
            done(format!("replaced Secret {name} in {place} (type changed)"))
        }
        Action::Update => {
            // Another writer between the read and the write (a resourceVersion conflict, which
            // Kubernetes expects clients to handle): read again and rebuild; the entries kept from
            // the live Secret are checked against the plan's fingerprints each time.
            for _attempt in 0..3 {
                let live = kube.get_secret(cluster, namespace, name).await?.ok_or_else(|| stale("disappeared"))?;
                if live_uid.is_some_and(|uid| uid != live.uid) {
                    return Err(stale("was recreated"));
                }
                let write = context.build(azure, kube, cluster, namespace, name, entries, Some(&live)).await?;
                still_current(azure, entries, &write, Some(&live)).await?;
                match kube.replace_secret(cluster, &write, &live.resource_version).await {
                    // `adopt = true` over a Secret acrlink did not make: it is acrlink's from now on.
                    Ok(()) if !is_managed(&live, &context.owner) => {
                        return Ok(Done::new(Status::Adopted, format!("adopted Secret {name} in {place}")));
                    }
                    Ok(()) => return done(format!("updated Secret {name} in {place}")),
                    Err(KubeError::Conflict { .. }) => continue,
                    Err(other) => return Err(redacted(other.into(), &write)),
                }
            }
            Err(stale("kept changing"))
        }
    }
}

/// Right before a Secret carrying token passwords is written: each password must still be the
/// one ACR holds in its slot, and the live Secret must not already hold a newer password of the
/// same token. Two applies rotating one token at once generate into the same slot, so the later
/// one kills the earlier one's password; this keeps the earlier run from writing it (it fails
/// as stale instead), while the later run's writes go through. The write itself is guarded by
/// the resourceVersion read here, so no newer password can land in between unseen.
async fn still_current<A: Azure>(
    azure: &A,
    entries: &[SecretEntry],
    write: &SecretWrite,
    live: Option<&LiveSecret>,
) -> Result<(), Failed> {
    let ours = dockerconfig::parse_notes(write.annotations.get(CREDENTIALS_ANNOTATION));
    let theirs = live.map(|s| dockerconfig::parse_notes(s.annotations.get(CREDENTIALS_ANNOTATION))).unwrap_or_default();
    for entry in entries {
        let CredentialPlan::RegistryToken { registry_id, token, .. } = &entry.credential else { continue };
        let Some(note) = ours.get(&entry.login_server) else { continue };
        if theirs.get(&entry.login_server).is_some_and(|held| held.token == note.token && newer(held, note)) {
            return Err(regenerated(token, "the Secret already holds a newer password of it"));
        }
        let live_token = azure.get_token(registry_id, token).await?;
        let slot = live_token.as_ref().and_then(|t| {
            t.passwords.iter().find(|p| PasswordSlot::from_acr(&p.name).is_some_and(|s| note.slot == Some(s)))
        });
        let current = slot
            .is_some_and(|p| super::registry_token::same_instant(p.creation_time.as_deref(), note.created.as_deref()));
        if !current {
            return Err(regenerated(token, "the password this run holds was regenerated at the registry"));
        }
    }
    Ok(())
}

/// Whether `held` was created after `ours` (both token passwords).
fn newer(held: &CredentialNote, ours: &CredentialNote) -> bool {
    let time = |n: &CredentialNote| n.created.as_deref().and_then(super::registry_token::parse_time);
    matches!((time(held), time(ours)), (Some(held), Some(ours)) if held > ours)
}

fn regenerated(token: &str, what: &str) -> Failed {
    Failed {
        message: format!(
            "token {token}: {what} since this apply got it (another apply is probably rotating it too); the Secret was left as it is"
        ),
        hint: Some("run apply again once the other run has finished".into()),
    }
}

/// The API server redacts Secret data from its own messages, but an admission webhook may
/// quote what it was sent: every form of the credentials just sent is cut out of the error.
fn redacted(mut failed: Failed, write: &SecretWrite) -> Failed {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let payload = write.docker_config_json.expose();
    let mut secrets = vec![payload.clone(), engine.encode(payload)];
    for credential in dockerconfig::parse(&Sensitive::new(payload.as_bytes().to_vec())).values() {
        let password = credential.password.expose();
        secrets.push(password.clone());
        secrets.push(engine.encode(format!("{}:{password}", credential.username)));
        secrets.push(engine.encode(password));
    }
    secrets.retain(|s| s.len() >= 4);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in &secrets {
        failed.message = failed.message.replace(secret.as_str(), "<redacted>");
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_that_quotes_the_secret_is_redacted() {
        use base64::Engine as _;
        let credentials = BTreeMap::from([(
            "a.azurecr.io".to_string(),
            Credential { username: "tok".into(), password: Sensitive::new("CANARY-pw-1".into()) },
        )]);
        let write = SecretWrite {
            namespace: "n".into(),
            name: "s".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            docker_config_json: dockerconfig::build(&credentials),
        };
        let auth = base64::engine::general_purpose::STANDARD.encode("tok:CANARY-pw-1");
        let message = format!(
            "admission webhook denied: password CANARY-pw-1, auth {auth}, payload {}",
            write.docker_config_json.expose()
        );
        let failed = redacted(Failed { message, hint: None }, &write);
        assert!(!failed.message.contains("CANARY") && !failed.message.contains(&auth), "{}", failed.message);
        assert!(failed.message.contains("<redacted>"));
    }
}
