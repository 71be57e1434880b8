//! Microsoft.Resources: subscriptions (list and get, what `az account list` shows) and
//! resource groups, each filtered to what the caller may see.

use serde_json::{Value, json};

use super::{Ctx, resource_group_not_found, subscription_not_found};
use crate::http::Reply;
use crate::route::Target;
use crate::state::{ResourceGroupRec, State, SubscriptionRec, allowed, touches};

fn subscription_json(state: &State, sub: &SubscriptionRec) -> Value {
    json!({
        "id": format!("/subscriptions/{}", sub.id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "tags": sub.tags,
        "subscriptionId": sub.id,
        "tenantId": state.tenant_id,
        "displayName": sub.name,
        "state": sub.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    })
}

fn group_json(group: &ResourceGroupRec) -> Value {
    json!({
        "id": format!("/subscriptions/{}/resourceGroups/{}", group.subscription, group.name),
        "name": group.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": group.location,
        "tags": group.tags,
        "properties": {"provisioningState": "Succeeded"},
    })
}

pub(super) fn handle(ctx: &Ctx<'_>, target: &Target) -> Reply {
    let state = ctx.shared.state();
    let grants = state.grants_of(&ctx.caller.object_id);
    let result = match target {
        Target::Subscriptions => {
            let items = state.subscriptions.iter().filter(|s| touches(&grants, &format!("/subscriptions/{}", s.id)));
            ctx.page(&state, items, |s| subscription_json(&state, s))
        }
        Target::Subscription { subscription } => match state.subscription(subscription) {
            None => Err(subscription_not_found(subscription)),
            Some(sub) if !touches(&grants, &format!("/subscriptions/{}", sub.id)) => {
                Err(ctx.forbidden("Microsoft.Resources/subscriptions/read", &format!("/subscriptions/{}", sub.id)))
            }
            Some(sub) => Ok(Reply::json(200, &subscription_json(&state, sub))),
        },
        Target::ResourceGroups { subscription } => match state.subscription(subscription) {
            None => Err(subscription_not_found(subscription)),
            Some(sub) => {
                let scope = format!("/subscriptions/{}", sub.id);
                if !touches(&grants, &scope) {
                    Err(ctx.forbidden("Microsoft.Resources/subscriptions/resourceGroups/read", &scope))
                } else {
                    let items = state.resource_groups.iter().filter(|g| g.subscription == sub.id).filter(|g| {
                        allowed(
                            &grants,
                            &format!("/subscriptions/{}/resourceGroups/{}", g.subscription, g.name),
                            "Microsoft.Resources/subscriptions/resourceGroups/read",
                        )
                    });
                    ctx.page(&state, items, group_json)
                }
            }
        },
        Target::ResourceGroup { subscription, resource_group } => match state.subscription(subscription) {
            None => Err(subscription_not_found(subscription)),
            Some(sub) => {
                let scope = format!("/subscriptions/{}/resourceGroups/{resource_group}", sub.id);
                match ctx.authorize(&state, &scope, "Microsoft.Resources/subscriptions/resourceGroups/read") {
                    Err(reply) => Err(reply),
                    Ok(()) => match state.resource_group(&sub.id, resource_group) {
                        None => Err(resource_group_not_found(resource_group)),
                        Some(group) => Ok(Reply::json(200, &group_json(group))),
                    },
                }
            }
        },
        _ => Err(crate::http::arm_error(404, "NotFound", "Not found.")),
    };
    result.unwrap_or_else(|reply| reply)
}
