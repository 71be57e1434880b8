//! The naming rules Azure and Kubernetes enforce, so a bad name fails at validate time rather
//! than half-way through an apply. Each rule returns the reason a name is rejected.

pub fn registry_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(5..=50).contains(&len) || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("a registry name is 5 to 50 letters and digits (no dashes or dots)".into());
    }
    Ok(())
}

pub fn cluster_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(1..=63).contains(&len) || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("an AKS cluster name is 1 to 63 letters, digits, '-' and '_'".into());
    }
    Ok(())
}

pub fn resource_group_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    let allowed = |c: char| c.is_alphanumeric() || "-_.()".contains(c);
    if !(1..=90).contains(&len) || !name.chars().all(allowed) || name.ends_with('.') {
        return Err(
            "a resource group name is 1 to 90 letters, digits, '-', '_', '.', '(' and ')', not ending in '.'".into()
        );
    }
    Ok(())
}

pub fn guid(value: &str) -> Result<(), String> {
    let groups: Vec<&str> = value.split('-').collect();
    let shape = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups.iter().zip(shape).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok { Ok(()) } else { Err("expected a GUID such as 1d6c45e0-bd9f-4771-bb67-36616452f239".into()) }
}

/// RFC 1123 label: what Kubernetes requires of namespace names.
pub fn dns1123_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 || !is_dns_label(name) {
        return Err("must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit".into());
    }
    Ok(())
}

/// RFC 1123 subdomain: what Kubernetes requires of Secret and ServiceAccount names.
pub fn dns1123_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 || !name.split('.').all(is_dns_label) {
        return Err("must be a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit".into());
    }
    Ok(())
}

fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Kubernetes label keys (optional DNS prefix + '/' + name) and values.
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty() && name.len() <= 63 && is_label_text(name);
    let prefix_ok = prefix.is_none_or(|p| dns1123_subdomain(p).is_ok());
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err("a label key is an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit".into())
    }
}

pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || (value.len() <= 63 && is_label_text(value)) {
        Ok(())
    } else {
        Err("a label value is at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
            .into())
    }
}

fn is_label_text(text: &str) -> bool {
    let first_last_ok = text.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && text.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    first_last_ok && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// An environment variable name as a POSIX shell accepts it.
pub fn env_var(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err("an environment variable name is letters, digits and '_', not starting with a digit".into())
    }
}

/// "90d", "720h", "30m", "45s" → seconds.
pub fn duration_seconds(text: &str) -> Result<u64, String> {
    let unit_at = text.char_indices().last().map_or(0, |(i, _)| i);
    let (digits, unit) = text.split_at(unit_at);
    let multiplier = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err("a duration is a whole number and a unit: s, m, h or d (for example \"90d\")".into()),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|n| *n > 0)
        .ok_or_else(|| "a duration is a positive whole number and a unit: s, m, h or d (for example \"90d\")".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_names() {
        assert!(registry_name("axcoeyjacr").is_ok());
        assert!(registry_name("acr").is_err());
        assert!(registry_name("my-acr01").is_err());
        assert!(registry_name(&"a".repeat(51)).is_err());
        assert!(cluster_name("tiu-aks_01").is_ok());
        assert!(cluster_name(&"a".repeat(64)).is_err());
        assert!(cluster_name("bad.name").is_err());
        assert!(resource_group_name("rg-(prod).eu").is_ok());
        assert!(resource_group_name("rg.").is_err());
        assert!(resource_group_name("").is_err());
        assert!(guid("1d6c45e0-bd9f-4771-bb67-36616452f239").is_ok());
        assert!(guid("1d6c45e0bd9f477").is_err());
    }

    #[test]
    fn kubernetes_names() {
        assert!(dns1123_label("kube-system").is_ok());
        assert!(dns1123_label("Apps").is_err());
        assert!(dns1123_label("-apps").is_err());
        assert!(dns1123_label("a.b").is_err());
        assert!(dns1123_subdomain("acr-pull.v2").is_ok());
        assert!(dns1123_subdomain("acr_pull").is_err());
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("-x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("a b").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration_seconds("90d"), Ok(90 * 86_400));
        assert_eq!(duration_seconds("2h"), Ok(7200));
        assert!(duration_seconds("0d").is_err());
        assert!(duration_seconds("d").is_err());
        assert!(duration_seconds("10w").is_err());
        assert!(duration_seconds("").is_err());
        assert!(duration_seconds("9é").is_err());
        assert!(duration_seconds("99999999999999999999d").is_err());
    }
}
