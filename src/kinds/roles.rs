//! The Azure roles that let a principal pull from a registry, and the names and conditions of
//! the grants acrlink makes: shared by every binding method that grants pull.

use uuid::Uuid;

use crate::provider::{RoleAssignmentMode, normalize_id};

pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
pub const REPOSITORY_READER: &str = "b93aa761-3e63-49ed-ac28-beffa264f7ac";
/// The namespace ARM templates and Bicep use in `guid()`.
const ARM_GUID_NAMESPACE: Uuid = Uuid::from_u128(0x11fb06fb_712d_4ddd_98c7_e71bbd588830);

pub fn role_name(role_guid: &str) -> &'static str {
    match role_guid {
        ACR_PULL => "AcrPull",
        REPOSITORY_READER => "Container Registry Repository Reader",
        "8311e382-0749-4cb8-b61a-304f252e45ec" => "AcrPush",
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635" => "Owner",
        "b24988ac-6180-42a0-ab88-20f7382dd24c" => "Contributor",
        _ => "another role",
    }
}

/// Roles whose grant lets a kubelet identity pull from a registry in the given mode. In doubt a
/// role does not count: a redundant grant costs nothing, a wrongly trusted one breaks pulls.
pub fn grants_pull(role_guid: &str, mode: RoleAssignmentMode) -> bool {
    const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
    const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
    const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";
    const REPOSITORY_WRITER: &str = "2a1e307c-b015-4ebd-883e-5b7698a07328";
    const REPOSITORY_CONTRIBUTOR: &str = "2efddaa5-3f1f-4df3-97df-af3f13818f4c";
    match mode {
        // Legacy mode: the registry-wide ACR roles and the privileged roles carry pull.
        RoleAssignmentMode::Legacy => [ACR_PULL, ACR_PUSH, OWNER, CONTRIBUTOR, READER].contains(&role_guid),
        // ABAC mode ignores the legacy ACR roles; only the repository roles carry data actions.
        RoleAssignmentMode::Abac => [REPOSITORY_READER, REPOSITORY_WRITER, REPOSITORY_CONTRIBUTOR].contains(&role_guid),
    }
}

/// The deterministic assignment name: ARM/Bicep `guid(scope, principalId, roleGuid)`, i.e.
/// UUIDv5 in namespace 11fb06fb-712d-4ddd-98c7-e71bbd588830 over the lowercased scope
/// (no trailing '/'), principal object id and role-definition GUID, joined by '-'.
pub fn role_assignment_name(scope: &str, principal_id: &str, role_guid: &str) -> String {
    let input =
        format!("{}-{}-{}", normalize_id(scope), principal_id.to_ascii_lowercase(), role_guid.to_ascii_lowercase());
    Uuid::new_v5(&ARM_GUID_NAMESPACE, input.as_bytes()).to_string()
}

/// An ABAC condition allowing reads only of the given repositories ("team/*" = prefix).
pub fn repository_condition(repositories: &[String]) -> String {
    let tests: Vec<String> = repositories
        .iter()
        .map(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => {
                format!("@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase '{prefix}'")
            }
            None => format!("@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase '{pattern}'"),
        })
        .collect();
    format!(
        "((!(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/content/read'}}) AND !(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'}})) OR ({}))",
        tests.join(" OR ")
    )
}

/// The repositories of a condition `repository_condition` wrote, or None for any other
/// condition (hand-written, another shape): only an exact round trip counts, since a grant
/// satisfies a binding only when their conditions are equal to the character.
pub fn condition_repositories(condition: &str) -> Option<Vec<String>> {
    const HEAD: &str = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR (";
    const SUBJECT: &str = "@Request[Microsoft.ContainerRegistry/registries/repositories:name] ";
    let tests = condition.strip_prefix(HEAD)?.strip_suffix("))")?;
    let repositories = tests
        .split(" OR ")
        .map(|test| {
            let test = test.strip_prefix(SUBJECT)?;
            let quoted = |operator: &str| test.strip_prefix(operator)?.strip_prefix(" '")?.strip_suffix('\'');
            match quoted("StringStartsWithIgnoreCase") {
                Some(prefix) => Some(format!("{prefix}*")),
                None => quoted("StringEqualsIgnoreCase").map(str::to_string),
            }
        })
        .collect::<Option<Vec<String>>>()?;
    (repository_condition(&repositories) == condition).then_some(repositories)
}

/// The role that lets a principal pull every repository of a registry in `mode`.
pub fn pull_role(mode: RoleAssignmentMode) -> &'static str {
    match mode {
        RoleAssignmentMode::Legacy => ACR_PULL,
        RoleAssignmentMode::Abac => REPOSITORY_READER,
    }
}

/// The role assignment that lets `principal_id` pull from `registry` with `role_guid`, under
/// the deterministic name every binding method uses.
pub fn pull_grant(
    registry: &crate::provider::LiveRegistry,
    principal_id: &str,
    role_guid: &str,
    description: String,
    condition: Option<String>,
) -> crate::provider::RoleAssignmentSpec {
    crate::provider::RoleAssignmentSpec {
        scope: registry.id.clone(),
        name: role_assignment_name(&registry.id, principal_id, role_guid),
        role_definition_id: format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
            registry.subscription_id
        ),
        principal_id: principal_id.to_string(),
        principal_type: "ServicePrincipal".into(),
        description,
        condition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_case_insensitive() {
        let a = role_assignment_name(
            "/subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerRegistry/registries/R",
            "ABC",
            ACR_PULL,
        );
        let b = role_assignment_name(
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.containerregistry/registries/r/",
            "abc",
            ACR_PULL,
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            role_assignment_name(
                "/subscriptions/s/resourcegroups/rg/providers/x/registries/r",
                "abc",
                REPOSITORY_READER
            )
        );
        // Pinned (computed independently with Python's uuid.uuid5): names already in Azure
        // depend on these exact inputs.
        assert_eq!(
            role_assignment_name("/subscriptions/s/resourcegroups/rg", "p", ACR_PULL),
            "5f637d5b-3226-5e07-99ae-715f02f5e975"
        );
    }

    #[test]
    fn conditions_read_back_into_their_repositories_and_nothing_else_does() {
        let repositories = vec!["team/*".to_string(), "base/nginx".to_string()];
        assert_eq!(condition_repositories(&repository_condition(&repositories)), Some(repositories));
        let hand_written =
            repository_condition(&["team/*".into()]).replace("StringStartsWithIgnoreCase", "StringStartsWith");
        assert_eq!(condition_repositories(&hand_written), None);
        assert_eq!(condition_repositories("@Resource[x] StringEquals 'y'"), None);
        // A quote inside a repository would not round-trip: refused rather than misread.
        let odd = repository_condition(&["a' OR 'b".into()]);
        assert_eq!(condition_repositories(&odd), None);
    }

    #[test]
    fn conditions_cover_each_repository() {
        let condition = repository_condition(&["team/*".into(), "base/nginx".into()]);
        assert!(condition.contains("StringStartsWithIgnoreCase 'team/'"));
        assert!(condition.contains("StringEqualsIgnoreCase 'base/nginx'"));
    }
}
