//! Built-in Azure role definitions the emulator knows (real GUIDs and permissions), and the
//! action matching Azure RBAC uses (`*` wildcards, notActions subtract).

/// A role definition's identity and permissions.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleDef {
    pub guid: String,
    pub name: String,
    pub description: String,
    pub built_in: bool,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
    pub assignable_scopes: Vec<String>,
}

pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";

struct BuiltIn {
    guid: &'static str,
    name: &'static str,
    description: &'static str,
    actions: &'static [&'static str],
    not_actions: &'static [&'static str],
    data_actions: &'static [&'static str],
}

// Permissions follow the built-in role pages of Microsoft's docs; only the parts that decide
// what acrlink and its emulator care about are guaranteed to be complete.
const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        guid: OWNER,
        name: "Owner",
        description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        guid: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        name: "Contributor",
        description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
        ],
        data_actions: &[],
    },
    BuiltIn {
        guid: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        name: "Reader",
        description: "View all resources, but does not allow you to make any changes.",
        actions: &["*/read"],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        guid: "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        name: "User Access Administrator",
        description: "Lets you manage user access to Azure resources.",
        actions: &["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        guid: "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        name: "Role Based Access Control Administrator",
        description: "Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.",
        actions: &[
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "*/read",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        guid: ACR_PULL,
        name: "AcrPull",
        description: "acr pull",
        actions: &["Microsoft.ContainerRegistry/registries/pull/read"],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        guid: "8311e382-0749-4cb8-b61a-304f252e45ec",
        name: "AcrPush",
        description: "acr push",
        actions: &[
            "Microsoft.ContainerRegistry/registries/pull/read",
            "Microsoft.ContainerRegistry/registries/push/write",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        guid: "c2f4ef07-c644-48eb-af81-4b1b4947fb11",
        name: "AcrDelete",
        description: "acr delete",
        actions: &["Microsoft.ContainerRegistry/registries/artifacts/delete"],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        guid: "b93aa761-3e63-49ed-ac28-beffa264f7ac",
        name: "Container Registry Repository Reader",
        description: "Allows read access to Azure Container Registry repositories, including read access to images and artifacts.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.ContainerRegistry/registries/repositories/content/read",
            "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
        ],
    },
    BuiltIn {
        guid: "2a1e307c-b015-4ebd-883e-5b7698a07328",
        name: "Container Registry Repository Writer",
        description: "Allows read, write, and update access to Azure Container Registry repositories.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.ContainerRegistry/registries/repositories/content/read",
            "Microsoft.ContainerRegistry/registries/repositories/content/write",
            "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
            "Microsoft.ContainerRegistry/registries/repositories/metadata/write",
        ],
    },
    BuiltIn {
        guid: "2efddaa5-3f1f-4df3-97df-af3f13818f4c",
        name: "Container Registry Repository Contributor",
        description: "Allows read, write, update, and delete access to Azure Container Registry repositories.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.ContainerRegistry/registries/repositories/content/read",
            "Microsoft.ContainerRegistry/registries/repositories/content/write",
            "Microsoft.ContainerRegistry/registries/repositories/content/delete",
            "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
            "Microsoft.ContainerRegistry/registries/repositories/metadata/write",
            "Microsoft.ContainerRegistry/registries/repositories/metadata/delete",
        ],
    },
    BuiltIn {
        guid: "bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7",
        name: "Container Registry Repository Catalog Lister",
        description: "Allows for listing all repositories in an Azure Container Registry.",
        actions: &[],
        not_actions: &[],
        data_actions: &["Microsoft.ContainerRegistry/registries/catalog/read"],
    },
    BuiltIn {
        guid: "f1a07417-d97a-45cb-824c-7a7467783830",
        name: "Managed Identity Operator",
        description: "Read and Assign User Assigned Identity",
        actions: &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        guid: "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
        name: "Azure Kubernetes Service Cluster User Role",
        description: "List cluster user credential action.",
        actions: &[
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
            "Microsoft.ContainerService/managedClusters/read",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltIn {
        guid: "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8",
        name: "Azure Kubernetes Service Cluster Admin Role",
        description: "List cluster admin credential action.",
        actions: &[
            "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
            "Microsoft.ContainerService/managedClusters/accessProfiles/listCredential/action",
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerService/managedClusters/runcommand/action",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    // Azure RBAC for Kubernetes authorization (AAD clusters with azure_rbac): data actions
    // `Microsoft.ContainerService/managedClusters/<resource>/<read|write|delete>`. The lists
    // are reduced to the core/v1 resources the emulated API serves.
    BuiltIn {
        guid: "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
        name: "Azure Kubernetes Service RBAC Cluster Admin",
        description: "Lets you manage all resources in the cluster.",
        actions: &[
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
            "Microsoft.ContainerService/managedClusters/read",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.ContainerService/managedClusters/*"],
    },
    BuiltIn {
        guid: "3498e952-d568-435e-9b2c-8d77e338d7f7",
        name: "Azure Kubernetes Service RBAC Admin",
        description: "Lets you manage all resources under cluster/namespace, except update or delete resource quotas and namespaces.",
        actions: &[
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
            "Microsoft.ContainerService/managedClusters/read",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.ContainerService/managedClusters/*"],
    },
    BuiltIn {
        guid: "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb",
        name: "Azure Kubernetes Service RBAC Writer",
        description: "Allows read/write access to most objects in a namespace.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.ContainerService/managedClusters/configmaps/*",
            "Microsoft.ContainerService/managedClusters/events/*",
            "Microsoft.ContainerService/managedClusters/namespaces/read",
            "Microsoft.ContainerService/managedClusters/pods/*",
            "Microsoft.ContainerService/managedClusters/secrets/*",
            "Microsoft.ContainerService/managedClusters/serviceaccounts/*",
        ],
    },
    BuiltIn {
        guid: "7f6c6a51-bcf8-42ba-9220-52d62157d7db",
        name: "Azure Kubernetes Service RBAC Reader",
        description: "Allows read-only access to see most objects in a namespace.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.ContainerService/managedClusters/configmaps/read",
            "Microsoft.ContainerService/managedClusters/events/read",
            "Microsoft.ContainerService/managedClusters/namespaces/read",
            "Microsoft.ContainerService/managedClusters/pods/read",
            "Microsoft.ContainerService/managedClusters/serviceaccounts/read",
        ],
    },
];

pub fn built_ins() -> Vec<RoleDef> {
    BUILT_INS
        .iter()
        .map(|b| RoleDef {
            guid: b.guid.to_string(),
            name: b.name.to_string(),
            description: b.description.to_string(),
            built_in: true,
            actions: b.actions.iter().map(|s| s.to_string()).collect(),
            not_actions: b.not_actions.iter().map(|s| s.to_string()).collect(),
            data_actions: b.data_actions.iter().map(|s| s.to_string()).collect(),
            not_data_actions: if b.guid == "3498e952-d568-435e-9b2c-8d77e338d7f7" {
                ["resourcequotas/write", "resourcequotas/delete", "namespaces/write", "namespaces/delete"]
                    .iter()
                    .map(|a| format!("Microsoft.ContainerService/managedClusters/{a}"))
                    .collect()
            } else {
                Vec::new()
            },
            assignable_scopes: vec!["/".into()],
        })
        .collect()
}

impl RoleDef {
    /// Whether this role grants a data action (dataActions minus notDataActions).
    pub fn allows_data(&self, action: &str) -> bool {
        self.data_actions.iter().any(|a| wildcard_match(a, action))
            && !self.not_data_actions.iter().any(|a| wildcard_match(a, action))
    }

    /// Whether this role grants a control-plane action (wildcards in either, case-insensitive).
    pub fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|a| wildcard_match(a, action))
            && !self.not_actions.iter().any(|a| wildcard_match(a, action))
    }
}

/// Azure's action patterns: `*` matches any run of characters, comparison ignores case.
pub fn wildcard_match(pattern: &str, action: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let action = action.to_ascii_lowercase();
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == action;
    }
    let mut rest = action.as_str();
    let first = parts[0];
    if !rest.starts_with(first) {
        return false;
    }
    rest = &rest[first.len()..];
    let last = parts[parts.len() - 1];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_azure_rbac() {
        assert!(wildcard_match("*", "Microsoft.Authorization/roleAssignments/write"));
        assert!(wildcard_match("*/read", "Microsoft.ContainerService/managedClusters/read"));
        assert!(!wildcard_match("*/read", "Microsoft.ContainerService/managedClusters/write"));
        assert!(wildcard_match("Microsoft.Authorization/*/Write", "microsoft.authorization/roleassignments/write"));
        assert!(!wildcard_match("Microsoft.Authorization/*/Write", "Microsoft.Compute/roleAssignments/write"));
        assert!(wildcard_match("Microsoft.Authorization/*", "Microsoft.Authorization/roleAssignments/delete"));
        assert!(!wildcard_match("a*b*b", "ab"));
    }

    #[test]
    fn contributor_cannot_write_role_assignments_but_owner_can() {
        let roles = built_ins();
        let by_name = |n: &str| roles.iter().find(|r| r.name == n).cloned().unwrap_or_else(|| panic!("{n}"));
        let write = "Microsoft.Authorization/roleAssignments/write";
        assert!(by_name("Owner").allows(write));
        assert!(by_name("User Access Administrator").allows(write));
        assert!(by_name("Role Based Access Control Administrator").allows(write));
        assert!(!by_name("Contributor").allows(write));
        assert!(by_name("Contributor").allows("Microsoft.ContainerRegistry/registries/listCredentials/action"));
        assert!(!by_name("Reader").allows(write));
        assert!(by_name("Reader").allows("Microsoft.ContainerService/managedClusters/read"));
    }
}
