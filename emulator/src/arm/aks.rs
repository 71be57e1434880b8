//! Microsoft.ContainerService/managedClusters: get, list (subscription, resource group) and the
//! credential actions, whose kubeconfigs point at the emulator's per-cluster Kubernetes path
//! (`/k8s/{subscription}/{resourceGroup}/{cluster}`, served by the `kube` module).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use serde_json::{Value, json};

use super::{Ctx, list_prefix, resource_group_not_found, resource_not_found, subscription_not_found, under};
use crate::http::{Reply, flat_error, now_azure};
use crate::ids::derived_guid;
use crate::route::{ClusterAction, Target};
use crate::server::Shared;
use crate::state::{ClusterRec, Completion, Operation, PollStyle, Readable, State, cluster_id};
use crate::world::{ClusterIdentity, LroMode};

const READ: &str = "Microsoft.ContainerService/managedClusters/read";

/// The one node pool every emulated cluster has.
fn agent_pool_json(c: &ClusterRec) -> Value {
    json!({
        "name": "nodepool1",
        "count": c.node_count,
        "vmSize": "Standard_D4ds_v5",
        "osDiskSizeGB": 128,
        "osDiskType": "Ephemeral",
        "kubeletDiskType": "OS",
        "maxPods": 110,
        "type": "VirtualMachineScaleSets",
        "availabilityZones": ["1", "2", "3"],
        "enableAutoScaling": false,
        "provisioningState": c.provisioning_state,
        "powerState": {"code": c.power_state},
        "orchestratorVersion": c.kubernetes_version,
        "currentOrchestratorVersion": c.kubernetes_version,
        "mode": "System",
        "osType": "Linux",
        "osSKU": "Ubuntu",
        "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202510.03.0",
        "upgradeSettings": {"maxSurge": "10%"},
        "enableFIPS": false,
        "eTag": derived_guid(&format!("pool-etag:{}", c.id)),
    })
}

fn network_profile_json(c: &ClusterRec) -> Value {
    json!({
        "networkPlugin": "azure",
        "networkPluginMode": "overlay",
        "networkPolicy": "none",
        "loadBalancerSku": "standard",
        "loadBalancerProfile": {
            "managedOutboundIPs": {"count": 1},
            "effectiveOutboundIPs": [{"id": format!("/subscriptions/{}/resourceGroups/MC_{}_{}_{}/providers/Microsoft.Network/publicIPAddresses/{}", c.subscription, c.resource_group, c.name, c.location, derived_guid(&format!("pip:{}", c.id)))}],
            "allocatedOutboundPorts": 0,
            "idleTimeoutInMinutes": 30,
        },
        "podCidr": "10.244.0.0/16",
        "serviceCidr": "10.0.0.0/16",
        "dnsServiceIP": "10.0.0.10",
        "outboundType": "loadBalancer",
        "podCidrs": ["10.244.0.0/16"],
        "serviceCidrs": ["10.0.0.0/16"],
        "ipFamilies": ["IPv4"],
    })
}

/// The cluster's id as AKS answers it. Live AKS answers with a lowercase `resourcegroups` in
/// its ids; clients must compare ids without case, so the emulator does the same.
pub(crate) fn cluster_json_id(c: &ClusterRec) -> String {
    format!(
        "/subscriptions/{}/resourcegroups/{}/providers/Microsoft.ContainerService/managedClusters/{}",
        c.subscription, c.resource_group, c.name
    )
}

pub(crate) fn cluster_json(state: &State, c: &ClusterRec) -> Value {
    let id = cluster_json_id(c);
    let mut properties = json!({
        "provisioningState": c.provisioning_state,
        "powerState": {"code": c.power_state},
        "kubernetesVersion": c.kubernetes_version,
        "currentKubernetesVersion": c.kubernetes_version,
        "dnsPrefix": c.dns_prefix,
        "fqdn": c.fqdn,
        "azurePortalFQDN": c.fqdn.replacen(".hcp.", ".portal.hcp.", 1),
        "agentPoolProfiles": [agent_pool_json(c)],
        "linuxProfile": {
            "adminUsername": "azureuser",
            "ssh": {"publicKeys": [{"keyData": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC0emulator azureuser"}]},
        },
        "servicePrincipalProfile": {
            "clientId": c.service_principal_client_id.clone().unwrap_or_else(|| "msi".into()),
        },
        "addonProfiles": {},
        "nodeResourceGroup": format!("MC_{}_{}_{}", c.resource_group, c.name, c.location),
        "enableRBAC": true,
        "supportPlan": "KubernetesOfficial",
        "networkProfile": network_profile_json(c),
        "maxAgentPools": 100,
        "disableLocalAccounts": !c.local_accounts,
        "securityProfile": {},
        "oidcIssuerProfile": {"enabled": c.workload_identity},
        "apiServerAccessProfile": {"enablePrivateCluster": c.private_cluster},
        "upgradeSettings": {},
        "resourceUID": derived_guid(&format!("uid:{}", c.id)).replace('-', "")[..24].to_string(),
    });
    if c.workload_identity {
        properties["securityProfile"] = json!({"workloadIdentity": {"enabled": true}});
        properties["oidcIssuerProfile"]["issuerURL"] = json!(format!(
            "https://{}.oic.prod-aks.azure.com/{}/{}/",
            c.location,
            state.tenant_id,
            derived_guid(&c.id)
        ));
    }
    if c.private_cluster {
        properties["privateFQDN"] = json!(c.fqdn.replacen(".hcp.", ".privatelink.", 1));
    }
    if c.aad {
        properties["aadProfile"] = json!({
            "managed": true,
            "adminGroupObjectIDs": Value::Null,
            "enableAzureRBAC": c.azure_rbac,
            "tenantID": state.tenant_id,
        });
    }
    if let Some(k) = &c.kubelet {
        properties["identityProfile"] = json!({
            "kubeletidentity": {"resourceId": k.resource_id, "clientId": k.client_id, "objectId": k.object_id},
        });
    }
    let mut body = json!({
        "id": id,
        "location": c.location,
        "name": c.name,
        "tags": c.tags,
        "type": "Microsoft.ContainerService/ManagedClusters",
        "eTag": c.etag,
        "kind": "Base",
        "sku": {"name": "Base", "tier": c.sku_tier},
        "properties": properties,
    });
    match (&c.identity, &c.control_plane) {
        (ClusterIdentity::SystemAssigned, Some(cp)) => {
            body["identity"] =
                json!({"type": "SystemAssigned", "principalId": cp.object_id, "tenantId": state.tenant_id});
        }
        (ClusterIdentity::UserAssigned, Some(cp)) => {
            let mut identities = serde_json::Map::new();
            identities.insert(cp.resource_id.clone(), json!({"principalId": cp.object_id, "clientId": cp.client_id}));
            body["identity"] = json!({"type": "UserAssigned", "userAssignedIdentities": identities});
        }
        _ => {}
    }
    body
}

/// The static token a local-account kubeconfig carries; part 2's Kubernetes API accepts it.
pub(crate) fn static_token(key: &hmac::Key, cluster_key: &str, account: &str) -> String {
    let tag = hmac::sign(key, format!("kube:{cluster_key}:{account}").as_bytes());
    tag.as_ref().iter().take(32).map(|b| format!("{b:02x}")).collect()
}

/// The kubeconfig YAML a credential action returns (also served by the admin endpoint).
pub(crate) fn kubeconfig(shared: &Shared, state: &State, c: &ClusterRec, admin: bool, format: Option<&str>) -> String {
    let server = format!("{}/k8s/{}/{}/{}", shared.endpoint, c.subscription, c.resource_group, c.name);
    let ca = STANDARD.encode(&shared.ca_pem);
    let (context, user_name) = if admin {
        (format!("{}-admin", c.name), format!("clusterAdmin_{}_{}", c.resource_group, c.name))
    } else {
        (c.name.clone(), format!("clusterUser_{}_{}", c.resource_group, c.name))
    };
    let key = c.id.to_ascii_lowercase();
    let user = if !admin && c.aad {
        match format {
            Some(f) if f.eq_ignore_ascii_case("azure") => format!(
                "    auth-provider:\n      config:\n        apiserver-id: 6dae42f8-4368-4678-94ff-3960e28e3630\n        client-id: 80faf920-1908-4b52-b5ef-a8e7bedfc67a\n        config-mode: '1'\n        environment: AzurePublicCloud\n        tenant-id: {}\n      name: azure\n",
                state.tenant_id
            ),
            _ => format!(
                "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      args:\n      - get-token\n      - --environment\n      - AzurePublicCloud\n      - --server-id\n      - 6dae42f8-4368-4678-94ff-3960e28e3630\n      - --client-id\n      - 80faf920-1908-4b52-b5ef-a8e7bedfc67a\n      - --tenant-id\n      - {}\n      - --login\n      - devicecode\n      command: kubelogin\n      env: null\n      installHint: |2\n\n        kubelogin is not installed which is required to connect to AAD enabled cluster.\n      provideClusterInfo: false\n",
                state.tenant_id
            ),
        }
    } else {
        let account = if admin { "admin" } else { "user" };
        format!("    token: {}\n", static_token(&shared.signing_key, &key, account))
    };
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {name}\ncontexts:\n- context:\n    cluster: {name}\n    user: {user_name}\n  name: {context}\ncurrent-context: {context}\nkind: Config\npreferences: {{}}\nusers:\n- name: {user_name}\n  user:\n{user}",
        name = c.name
    )
}

pub(super) fn handle(ctx: &Ctx<'_>, target: &Target) -> Reply {
    let mut state = ctx.shared.state();
    let result = match target {
        Target::Clusters { subscription, resource_group } => list(ctx, &state, subscription, resource_group.as_deref()),
        Target::Cluster { subscription, resource_group, name, action: None } if ctx.req.method == "PUT" => {
            update(ctx, &mut state, subscription, resource_group, name)
        }
        Target::ClusterOperation { id } => Ok(poll(&mut state, id)),
        Target::Cluster { subscription, resource_group, name, action } => {
            one(ctx, &state, subscription, resource_group, name, action.as_ref())
        }
        _ => Err(crate::http::arm_error(404, "NotFound", "Not found.")),
    };
    result.unwrap_or_else(|reply| reply)
}

fn list(ctx: &Ctx<'_>, state: &State, subscription: &str, resource_group: Option<&str>) -> Result<Reply, Reply> {
    let (sub, grants) = ctx.list_scope(state, subscription, resource_group, READ)?;
    let prefix = list_prefix(&sub.id, resource_group);
    let readable = Readable::new(&grants, prefix.trim_end_matches('/'), READ);
    let items = under(&state.clusters, &prefix).filter(|(key, _)| readable.allows(key));
    ctx.page(state, items, |(_, c)| cluster_json(state, c))
}

fn one(
    ctx: &Ctx<'_>,
    state: &State,
    subscription: &str,
    resource_group: &str,
    name: &str,
    action: Option<&ClusterAction>,
) -> Result<Reply, Reply> {
    let sub = state.subscription(subscription).ok_or_else(|| subscription_not_found(subscription))?;
    let id = cluster_id(&sub.id, resource_group, name);
    let permission = match action {
        None => READ,
        Some(ClusterAction::User) => "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
        Some(ClusterAction::Admin) => "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
        Some(ClusterAction::Monitoring) => {
            "Microsoft.ContainerService/managedClusters/listClusterMonitoringUserCredential/action"
        }
    };
    ctx.authorize(state, &id, permission)?;
    if state.resource_group(&sub.id, resource_group).is_none() {
        return Err(resource_group_not_found(resource_group));
    }
    let cluster = state
        .clusters
        .get(&id.to_ascii_lowercase())
        .ok_or_else(|| resource_not_found("Microsoft.ContainerService/managedClusters", name, resource_group))?;
    let credential = |credential_name: &str, admin: bool| {
        let format = ctx.req.query("format");
        if let Some(f) = format
            && !f.eq_ignore_ascii_case("azure")
            && !f.eq_ignore_ascii_case("exec")
        {
            return Err(flat_error(
                400,
                "BadRequest",
                format!("Unsupported credential format '{f}'. Supported values are 'azure' and 'exec'."),
            ));
        }
        let config = kubeconfig(ctx.shared, state, cluster, admin, format);
        Ok(Reply::json(200, &json!({"kubeconfigs": [{"name": credential_name, "value": STANDARD.encode(config)}]})))
    };
    match action {
        None => Ok(Reply::json(200, &cluster_json(state, cluster))),
        Some(ClusterAction::User) => credential("clusterUser", false),
        Some(ClusterAction::Monitoring) => credential("clusterMonitoringUser", false),
        Some(ClusterAction::Admin) => {
            if !cluster.local_accounts {
                // The AKS resource provider answers this one without ARM's `error` wrapper.
                return Err(flat_error(
                    400,
                    "BadRequest",
                    "Getting static credential is not allowed because this cluster is set to disable local accounts.",
                ));
            }
            credential("clusterAdmin", true)
        }
    }
}

const CLUSTER_TYPE: &str = "Microsoft.ContainerService/managedClusters";
const WRITE: &str = "Microsoft.ContainerService/managedClusters/write";

/// `PUT managedClusters/{name}` on an existing cluster, as az CLI sends after `--attach-acr` /
/// `--detach-acr`: the body it read, read-only fields included (ignored, as AKS does). A
/// long-running operation: 200 with the cluster `Updating` and `Azure-AsyncOperation`, which
/// reports `InProgress` for the world's `lro.polls` polls, then `Succeeded` and the cluster is
/// `Succeeded` again with a new eTag. Nothing the emulator models changes: what a client could
/// change this way (node pools, versions, profiles) is not emulated.
fn update(
    ctx: &Ctx<'_>,
    state: &mut State,
    subscription: &str,
    resource_group: &str,
    name: &str,
) -> Result<Reply, Reply> {
    let sub = state.subscription(subscription).ok_or_else(|| subscription_not_found(subscription))?;
    let sub_id = sub.id.clone();
    let id = cluster_id(&sub_id, resource_group, name);
    ctx.authorize(state, &id, WRITE)?;
    if state.resource_group(&sub_id, resource_group).is_none() {
        return Err(resource_group_not_found(resource_group));
    }
    let body = match ctx.req.json_body() {
        Ok(Value::Object(map)) => map,
        Ok(_) | Err(_) => {
            return Err(crate::http::arm_error(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized.",
            ));
        }
    };
    let key = id.to_ascii_lowercase();
    let Some(cluster) = state.clusters.get_mut(&key) else {
        // Creating clusters is not emulated; AKS would start a create here.
        return Err(resource_not_found(CLUSTER_TYPE, name, resource_group));
    };
    if !body.get("location").and_then(Value::as_str).is_none_or(|l| l.eq_ignore_ascii_case(&cluster.location)) {
        return Err(flat_error(400, "BadRequest", "Changing property 'location' is not allowed."));
    }
    if cluster.provisioning_state != "Succeeded" {
        return Err(flat_error(
            409,
            "OperationNotAllowed",
            format!(
                "Operation is not allowed because there's an in progress update managed cluster operation on managed cluster {name}."
            ),
        ));
    }
    if let Some(tags) = body.get("tags").and_then(Value::as_object) {
        cluster.tags = tags.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect();
    }
    cluster.etag = uuid::Uuid::new_v4().to_string();
    let lro = state.settings.lro.clone();
    if lro.mode == LroMode::Sync || lro.polls == 0 {
        return Ok(Reply::json(200, &cluster_json(state, &state.clusters[&key])));
    }
    let cluster = state.clusters.get_mut(&key).ok_or_else(|| resource_not_found(CLUSTER_TYPE, name, resource_group))?;
    cluster.provisioning_state = "Updating".into();
    let location = cluster.location.clone();
    let operation = uuid::Uuid::new_v4().to_string();
    let (polls, retry_after) = (lro.polls, lro.retry_after_seconds);
    state.operations.insert(
        operation.clone(),
        Operation {
            style: PollStyle::AsyncOperation,
            polls_left: polls,
            started: now_azure(),
            completion: Completion::ClusterUpdated { cluster: key.clone() },
        },
    );
    let url = format!(
        "{}/subscriptions/{sub_id}/providers/Microsoft.ContainerService/locations/{location}/operations/{operation}?api-version={}",
        ctx.req.base_url, ctx.version
    );
    let cluster = &state.clusters[&key];
    Ok(Reply::json(200, &cluster_json(state, cluster))
        .with_header("Azure-AsyncOperation", url)
        .with_header("Retry-After", retry_after.to_string()))
}

/// `GET .../locations/{l}/operations/{id}`: AKS's operation status, `{name, status, startTime}`,
/// then `Succeeded` with `endTime` (and the cluster back to `Succeeded`).
fn poll(state: &mut State, id: &str) -> Reply {
    let retry_after = state.settings.lro.retry_after_seconds.to_string();
    let Some(op) = state.operations.get_mut(&id.to_ascii_lowercase()) else {
        return crate::http::arm_error(404, "NotFound", format!("Operation {id} not found."));
    };
    let started = op.started.clone();
    if op.polls_left > 0 {
        op.polls_left -= 1;
        return Reply::json(200, &json!({"name": id, "status": "InProgress", "startTime": started}))
            .with_header("Retry-After", retry_after);
    }
    if let Completion::ClusterUpdated { cluster } = &op.completion {
        let key = cluster.clone();
        if let Some(c) = state.clusters.get_mut(&key) {
            c.provisioning_state = "Succeeded".into();
        }
    }
    Reply::json(200, &json!({"name": id, "status": "Succeeded", "startTime": started, "endTime": now_azure()}))
}
