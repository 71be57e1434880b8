//! Every mark acrlink leaves on what it owns, written and read here only: role-assignment
//! descriptions, Secret labels, the service-account label and annotation, and the name prefix
//! of ACR tokens and scope maps (ACR objects carry no description). Nothing else parses them.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::config::model::Owner;

/// Marks what acrlink owns: assignments whose description starts with this are acrlink's to
/// change or delete; nothing else is ever touched.
pub const MANAGED_MARKER: &str = "Managed by acrlink";
/// Label on everything acrlink creates or patches in a cluster.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "acrlink";
/// Label naming the owner (the file's `owner`, or "default") of what acrlink made.
pub const OWNER_LABEL: &str = "acrlink.io/owner";
/// Label acrlink puts on ServiceAccounts it patched, so pruning finds them in one request.
pub const PATCHED_LABEL: &str = "acrlink.io/patched";
/// Every ACR name acrlink gives starts with this; `acr_prefix` adds the owner's tag.
pub const ACR_NAME_PREFIX: &str = "acrlink-";
/// The description acrlink gives the scope maps it makes.
pub const SCOPE_MAP_DESCRIPTION: &str = "Managed by acrlink: read access for pull-secret tokens";

/// The description prefix of an assignment made for `owners` (first is the one that made it):
/// "Managed by acrlink: …" for the default owner alone, "Managed by acrlink for OWNER: …" for
/// another, and "Managed by acrlink for A, B: …" for a grant several owners' files want
/// (a shared pair: every owner that wants it is listed, and it is deleted only by the last).
fn description_prefix<S: AsRef<str>>(owners: &[S]) -> String {
    match owners {
        [only] if only.as_ref() == "default" => format!("{MANAGED_MARKER}:"),
        _ => {
            let names: Vec<&str> = owners.iter().map(AsRef::as_ref).collect();
            format!("{MANAGED_MARKER} for {}:", names.join(", "))
        }
    }
}

/// The description of a role assignment acrlink makes for a binding and cluster.
pub fn assignment_description(owner: &Owner, binding: &str, cluster_id: &str) -> String {
    format!("{} binding {binding} lets cluster {cluster_id} pull", description_prefix(&[owner.name()]))
}

/// The description of a role assignment acrlink makes for a pull-secret binding's service
/// principal (by its application's client id).
pub fn service_principal_description(owner: &Owner, binding: &str, client_id: &str) -> String {
    format!("{} binding {binding} lets service principal {client_id} pull", description_prefix(&[owner.name()]))
}

/// The service principal (client id) an acrlink assignment's description says it was made for.
pub fn described_service_principal(description: &str) -> Option<&str> {
    description_owners(description)?;
    let rest = description.split(" lets service principal ").nth(1)?;
    Some(rest.strip_suffix(" pull").unwrap_or(rest))
}

/// Every owner named in an assignment's description (the one that made it first), or None
/// when acrlink did not make it.
pub fn description_owners(description: &str) -> Option<Vec<String>> {
    let rest = description.strip_prefix(MANAGED_MARKER)?;
    if rest.starts_with(':') {
        return Some(vec!["default".into()]);
    }
    let owners = rest.strip_prefix(" for ")?.split(':').next()?;
    Some(owners.split(", ").map(str::to_string).collect())
}

/// The owner that made an assignment (the first named), or None when acrlink did not make it.
pub fn description_owner(description: &str) -> Option<String> {
    description_owners(description)?.into_iter().next()
}

/// `description` with `owner` added to its owners (unchanged when already there).
pub fn with_owner(description: &str, owner: &Owner) -> String {
    let mut owners = description_owners(description).unwrap_or_default();
    if !owners.iter().any(|o| o == owner.name()) {
        owners.push(owner.name().to_string());
    }
    rewrite_owners(description, &owners)
}

/// `description` without `owner`, or None when no owner would be left (the grant may go).
pub fn without_owner(description: &str, owner: &Owner) -> Option<String> {
    let mut owners = description_owners(description)?;
    owners.retain(|o| o != owner.name());
    (!owners.is_empty()).then(|| rewrite_owners(description, &owners))
}

fn rewrite_owners(description: &str, owners: &[String]) -> String {
    let rest = match description.strip_prefix(MANAGED_MARKER) {
        Some(rest) => rest.split_once(':').map_or("", |(_, after)| after),
        None => "",
    };
    format!("{}{rest}", description_prefix(owners))
}

/// Made by acrlink, for any owner.
pub fn assignment_is_managed(description: Option<&str>) -> bool {
    description.and_then(description_owners).is_some()
}

/// Made by acrlink for this owner, alone or shared: the only assignments a run may change.
pub fn assignment_is_owned(description: Option<&str>, owner: &Owner) -> bool {
    description.and_then(description_owners).is_some_and(|owners| owners.iter().any(|o| o == owner.name()))
}

/// Other acrlink owners recorded on an assignment besides `owner`.
pub fn other_owners(description: Option<&str>, owner: &Owner) -> Vec<String> {
    let owners = description.and_then(description_owners).unwrap_or_default();
    owners.into_iter().filter(|o| o != owner.name()).collect()
}

/// The cluster (ARM id) an acrlink assignment's description says it was made for.
pub fn described_cluster(description: &str) -> Option<&str> {
    description_owner(description)?;
    let rest = description.split(" lets cluster ").nth(1)?;
    Some(rest.strip_suffix(" pull").unwrap_or(rest))
}

/// Labels of a Secret acrlink makes for `owner`.
pub fn secret_labels(owner: &Owner) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
        (OWNER_LABEL.to_string(), owner.name().to_string()),
    ])
}

/// Made by acrlink for this owner (a Secret without an owner label belongs to "default").
pub fn secret_is_owned(labels: &BTreeMap<String, String>, owner: &Owner) -> bool {
    labels.get(MANAGED_BY_LABEL).is_some_and(|v| v == MANAGED_BY_VALUE)
        && labels.get(OWNER_LABEL).map_or("default", String::as_str) == owner.name()
}

/// Annotation on a patched ServiceAccount: the imagePullSecrets entries acrlink added, one
/// annotation per owner.
pub fn patched_annotation(owner: &Owner) -> String {
    if owner.is_default() {
        "acrlink.io/image-pull-secrets".into()
    } else {
        format!("acrlink.io/image-pull-secrets.{}", owner.name())
    }
}

/// Whether `owner` has ever recorded entries on a ServiceAccount with these annotations.
pub fn service_account_patched_by(annotations: &BTreeMap<String, String>, owner: &Owner) -> bool {
    annotations.contains_key(&patched_annotation(owner))
}

/// Whether any owner still records entries (the patched label goes with the last of them).
pub fn any_owner_recorded(annotations: &BTreeMap<String, String>) -> bool {
    annotations.keys().any(|k| k.starts_with("acrlink.io/image-pull-secrets"))
}

/// The imagePullSecrets entries `owner` recorded as its own on a ServiceAccount.
pub fn recorded_entries(annotations: &BTreeMap<String, String>, owner: &Owner) -> BTreeSet<String> {
    annotations
        .get(&patched_annotation(owner))
        .map(|a| a.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// The annotation value recording `entries` as `owner`'s.
pub fn record_entries<'a>(entries: impl IntoIterator<Item = &'a String>) -> String {
    entries.into_iter().map(String::as_str).collect::<Vec<_>>().join(",")
}

fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// `acrlink-<4 hex of the owner>-`: ACR tokens carry no description, so the name tells whose
/// a token is, and two files with different owners never prune each other's.
pub fn acr_prefix(owner: &Owner) -> String {
    format!("{ACR_NAME_PREFIX}{}-", &short_hash(owner.name())[..4])
}

/// Whether an ACR token or scope map of this name is `owner`'s.
pub fn acr_object_is_owned(name: &str, owner: &Owner) -> bool {
    name.starts_with(&acr_prefix(owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_descriptions_round_trip_for_every_owner() {
        for owner in [Owner::default(), Owner::named("payments")] {
            let text = assignment_description(&owner, "shared", "/subscriptions/s/x/managedClusters/aks1");
            assert_eq!(description_owner(&text).as_deref(), Some(owner.name()));
            assert!(assignment_is_owned(Some(&text), &owner));
            assert!(assignment_is_managed(Some(&text)));
            assert_eq!(described_cluster(&text), Some("/subscriptions/s/x/managedClusters/aks1"));
        }
        let theirs = assignment_description(&Owner::named("payments"), "b", "c");
        assert!(!assignment_is_owned(Some(&theirs), &Owner::default()));
        assert_eq!(description_owner("made by hand"), None);
        assert_eq!(described_cluster("made by hand; lets cluster x pull"), None);
        assert!(!assignment_is_managed(None));
    }

    #[test]
    fn service_principal_grants_name_their_application() {
        let text =
            service_principal_description(&Owner::named("apps"), "sp-pull", "11111111-2222-3333-4444-555555555555");
        assert!(assignment_is_owned(Some(&text), &Owner::named("apps")));
        assert_eq!(described_service_principal(&text), Some("11111111-2222-3333-4444-555555555555"));
        assert_eq!(described_cluster(&text), None);
        assert_eq!(described_service_principal(&assignment_description(&Owner::default(), "b", "/c")), None);
    }

    #[test]
    fn shared_grants_list_every_owner_and_lose_them_one_by_one() {
        let made = assignment_description(&Owner::default(), "shared", "/c/aks1");
        let shared = with_owner(&made, &Owner::named("payments"));
        assert_eq!(shared, "Managed by acrlink for default, payments: binding shared lets cluster /c/aks1 pull");
        assert_eq!(with_owner(&shared, &Owner::named("payments")), shared, "joining twice changes nothing");
        assert!(assignment_is_owned(Some(&shared), &Owner::default()));
        assert!(assignment_is_owned(Some(&shared), &Owner::named("payments")));
        assert_eq!(other_owners(Some(&shared), &Owner::default()), vec!["payments".to_string()]);
        assert_eq!(described_cluster(&shared), Some("/c/aks1"));
        let left = without_owner(&shared, &Owner::default()).unwrap();
        assert_eq!(left, "Managed by acrlink for payments: binding shared lets cluster /c/aks1 pull");
        assert_eq!(without_owner(&left, &Owner::named("payments")), None, "the last owner lets it go");
        let back = without_owner(&shared, &Owner::named("payments")).unwrap();
        assert_eq!(back, made, "the default owner alone reads as before");
    }

    #[test]
    fn secret_labels_and_service_account_records_round_trip() {
        for owner in [Owner::default(), Owner::named("platform")] {
            assert!(secret_is_owned(&secret_labels(&owner), &owner));
            let entries: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
            let annotations = BTreeMap::from([(patched_annotation(&owner), record_entries(&entries))]);
            assert_eq!(recorded_entries(&annotations, &owner), entries);
            assert!(service_account_patched_by(&annotations, &owner));
        }
        assert!(!secret_is_owned(&secret_labels(&Owner::named("x")), &Owner::default()));
        let unlabelled_owner = BTreeMap::from([(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string())]);
        assert!(secret_is_owned(&unlabelled_owner, &Owner::default()), "no owner label means default");
        assert!(recorded_entries(&BTreeMap::new(), &Owner::default()).is_empty());
    }

    #[test]
    fn acr_names_tell_owners_apart() {
        let ours = format!("{}aks1-0011", acr_prefix(&Owner::default()));
        assert!(acr_object_is_owned(&ours, &Owner::default()));
        assert!(!acr_object_is_owned(&ours, &Owner::named("payments")));
        assert!(!acr_object_is_owned("hand-made", &Owner::default()));
    }
}
