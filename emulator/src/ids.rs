//! ARM identifiers: GUID checks, scope parsing and comparison (case-insensitive, segment-wise),
//! ancestry (at / above / below) and deterministic names.

use uuid::Uuid;

pub fn is_guid(text: &str) -> bool {
    text.len() == 36 && Uuid::parse_str(text).is_ok()
}

/// The namespace ARM templates' and Bicep's `guid()` use.
const BICEP_GUID_NAMESPACE: Uuid = Uuid::from_u128(0x11fb06fb_712d_4ddd_98c7_e71bbd588830);

/// A GUID derived from parts the way Bicep's `guid(a, b, c)` derives it.
pub fn bicep_guid(parts: &[&str]) -> String {
    Uuid::new_v5(&BICEP_GUID_NAMESPACE, parts.join("-").as_bytes()).to_string()
}

/// A stable GUID for emulator-made identities (kubelet identities, system scope maps, ...).
pub fn derived_guid(label: &str) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("acrlink-emulator:{label}").as_bytes()).to_string()
}

/// A scope in canonical form: leading `/`, no trailing `/`, `/` for the root.
pub fn normalize_scope(scope: &str) -> String {
    let trimmed = scope.trim().trim_matches('/');
    if trimmed.is_empty() { "/".to_string() } else { format!("/{trimmed}") }
}

/// The key scopes are compared by.
pub fn scope_key(scope: &str) -> String {
    normalize_scope(scope).to_ascii_lowercase()
}

/// Whether `ancestor` is `scope` itself or one of its parents (segment-aligned).
pub fn is_at_or_above(ancestor: &str, scope: &str) -> bool {
    let a = scope_key(ancestor);
    let s = scope_key(scope);
    a == "/" || a == s || s.starts_with(&format!("{a}/"))
}

/// The subscription id in a scope, if it is under one (lowercase).
pub fn subscription_of(scope: &str) -> Option<String> {
    let segments: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [first, id, ..] if first.eq_ignore_ascii_case("subscriptions") => Some(id.to_ascii_lowercase()),
        _ => None,
    }
}

/// The resource group in a scope, if it is under one.
pub fn resource_group_of(scope: &str) -> Option<String> {
    let segments: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [s, _, rg, name, ..]
            if s.eq_ignore_ascii_case("subscriptions") && rg.eq_ignore_ascii_case("resourceGroups") =>
        {
            Some(name.to_string())
        }
        _ => None,
    }
}

/// Whether a scope has a shape ARM accepts for role assignments: the root, a management group,
/// a subscription, a resource group or a resource (with optional child resources).
pub fn is_valid_scope(scope: &str) -> bool {
    let segments: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match lower.as_slice() {
        [] => true,
        ["providers", "microsoft.management", "managementgroups", _] => true,
        ["subscriptions", sub] => is_guid(sub),
        ["subscriptions", sub, "resourcegroups", _] => is_guid(sub),
        ["subscriptions", sub, "resourcegroups", _, "providers", _namespace, rest @ ..] => {
            is_guid(sub) && !rest.is_empty() && rest.len() % 2 == 0
        }
        _ => false,
    }
}

/// Percent-decodes a URL path or query piece (`%2F`, `%20`, ...); invalid escapes stay as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The GUID at the end of a role definition id (`/subscriptions/S/providers/.../roleDefinitions/GUID`
/// or a bare GUID), lowercase.
pub fn trailing_guid(id: &str) -> Option<String> {
    let last = id.trim_end_matches('/').rsplit('/').next()?;
    is_guid(last).then(|| last.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_compare_by_segment_and_ignore_case() {
        let sub = "/subscriptions/11111111-1111-1111-1111-111111111111";
        let rg = format!("{sub}/resourceGroups/RG");
        let rg2 = format!("{sub}/resourceGroups/RG2");
        assert!(is_at_or_above("/", &rg));
        assert!(is_at_or_above(sub, &rg.to_uppercase()));
        assert!(is_at_or_above(&rg, &rg.to_lowercase()));
        assert!(!is_at_or_above(&rg, &rg2), "a sibling with a common prefix is not an ancestor");
        assert!(!is_at_or_above(&rg, sub));
    }

    #[test]
    fn scope_shapes() {
        assert!(is_valid_scope("/"));
        assert!(is_valid_scope(
            "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr1"
        ));
        assert!(!is_valid_scope("/subscriptions/not-a-guid"));
        assert!(!is_valid_scope(
            "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries"
        ));
        assert!(!is_valid_scope("/foo/bar"));
    }

    #[test]
    fn bicep_guid_is_stable_and_order_sensitive() {
        let a = bicep_guid(&["x", "y"]);
        assert_eq!(a, bicep_guid(&["x", "y"]));
        assert_ne!(a, bicep_guid(&["y", "x"]));
        assert!(is_guid(&a));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("roleName%20eq%20%27AcrPull%27"), "roleName eq 'AcrPull'");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
