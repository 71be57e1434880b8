//! What the apiserver checks and fills in before it stores an object: names, Secret data and
//! types (with the exact field errors of `ValidateSecret` / `ValidateSecretUpdate`),
//! `stringData` folded into `data`, ConfigMap keys, Pod basics and immutable Pod specs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::gojson;
use super::resources::ResourceType;
use super::status::{Failure, FieldError, bad_request, invalid};

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const CONFIG_KEY: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

fn is_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

fn is_subdomain(text: &str) -> bool {
    text.split('.').all(is_label)
}

fn name_errors(res: &ResourceType, name: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required("metadata.name", "name or generateName is required")];
    }
    let mut errors = Vec::new();
    // Events are named `<object>.<hex>` by their reporters; they follow the subdomain rule too.
    if res.plural == "namespaces" {
        if !is_label(name) {
            errors.push(FieldError::invalid("metadata.name", name, LABEL));
        }
        if name.len() > 63 {
            errors.push(FieldError::invalid("metadata.name", name, "must be no more than 63 characters"));
        }
    } else {
        if !is_subdomain(name) {
            errors.push(FieldError::invalid("metadata.name", name, SUBDOMAIN));
        }
        if name.len() > 253 {
            errors.push(FieldError::invalid("metadata.name", name, "must be no more than 253 characters"));
        }
    }
    errors
}

fn is_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        && key != "."
        && key != ".."
}

/// Go's `illegal base64 data at input byte N` for a value that is not standard base64.
fn base64_error(text: &str) -> Option<String> {
    match STANDARD.decode(text) {
        Ok(_) => None,
        Err(base64::DecodeError::InvalidByte(at, _)) | Err(base64::DecodeError::InvalidLastSymbol(at, _)) => {
            Some(format!("illegal base64 data at input byte {at}"))
        }
        Err(_) => Some(format!("illegal base64 data at input byte {}", text.len() - text.len() % 4)),
    }
}

/// Folds `stringData` into `data` (it wins on the same key) and defaults `type`, as the
/// Secret strategy does before validation; bad base64 fails decoding (400).
pub(crate) fn normalize_secret(object: &mut Value) -> Result<(), Failure> {
    if let Some(data) = object.get("data").and_then(Value::as_object) {
        for value in data.values() {
            let text = value.as_str().unwrap_or_default();
            if let Some(e) = base64_error(text) {
                return Err(bad_request(format!("Secret in version \"v1\" cannot be handled as a Secret: {e}")));
            }
        }
    }
    if let Some(Value::Object(string_data)) = object.as_object_mut().and_then(|o| o.remove("stringData")) {
        if !object["data"].is_object() {
            object["data"] = json!({});
        }
        for (k, v) in string_data {
            object["data"][k.as_str()] = json!(STANDARD.encode(v.as_str().unwrap_or_default()));
        }
    }
    if object["type"].as_str().is_none_or(str::is_empty) {
        object["type"] = json!("Opaque");
    }
    Ok(())
}

fn data_bytes(object: &Value, key: &str) -> Option<Vec<u8>> {
    object["data"][key].as_str().and_then(|v| STANDARD.decode(v).ok())
}

fn secret_errors(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut total = 0usize;
    if let Some(data) = object["data"].as_object() {
        for (key, value) in data {
            if !is_config_key(key) {
                errors.push(FieldError::invalid(&format!("data[{key}]"), key, CONFIG_KEY));
            }
            total += STANDARD.decode(value.as_str().unwrap_or_default()).map(|v| v.len()).unwrap_or(0);
        }
    }
    if total > 1024 * 1024 {
        errors.push(FieldError {
            field: "data".into(),
            reason: "FieldValueTooLong",
            message: "Too long: must have at most 1048576 bytes".into(),
        });
    }
    let has = |key: &str| object["data"].get(key).is_some();
    match object["type"].as_str().unwrap_or("Opaque") {
        "kubernetes.io/dockerconfigjson" | "kubernetes.io/dockercfg" => {
            let key = if object["type"] == "kubernetes.io/dockercfg" { ".dockercfg" } else { ".dockerconfigjson" };
            match data_bytes(object, key) {
                None if !has(key) => errors.push(FieldError::required(&format!("data[{key}]"), "")),
                bytes => {
                    if let Err(e) = gojson::check(&bytes.unwrap_or_default()) {
                        errors.push(FieldError::invalid(&format!("data[{key}]"), "<secret contents redacted>", &e));
                    }
                }
            }
        }
        "kubernetes.io/tls" => {
            for key in ["tls.key", "tls.crt"] {
                if !has(key) {
                    errors.push(FieldError::required(&format!("data[{key}]"), ""));
                }
            }
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => {
            errors.push(FieldError::required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errors.push(FieldError::required("data[username]", ""));
            errors.push(FieldError::required("data[password]", ""));
        }
        "kubernetes.io/service-account-token"
            if object["metadata"]["annotations"]["kubernetes.io/service-account.name"].as_str().is_none() =>
        {
            errors.push(FieldError::required("metadata.annotations[kubernetes.io/service-account.name]", ""));
        }
        _ => {}
    }
    errors
}

fn secret_update_errors(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if old["type"] != new["type"] {
        errors.push(FieldError::invalid("type", new["type"].as_str().unwrap_or_default(), "field is immutable"));
    }
    if old["immutable"] == json!(true) {
        if new["immutable"] != json!(true) {
            errors.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
        }
        let empty = json!({});
        let data = |o: &Value| if o["data"].is_object() { o["data"].clone() } else { empty.clone() };
        if data(old) != data(new) {
            errors.push(FieldError::forbidden("data", IMMUTABLE_SET));
        }
    }
    errors
}

fn config_map_errors(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for field in ["data", "binaryData"] {
        if let Some(map) = object[field].as_object() {
            for key in map.keys().filter(|k| !is_config_key(k)) {
                errors.push(FieldError::invalid(&format!("{field}[{key}]"), key, CONFIG_KEY));
            }
        }
    }
    errors
}

fn pod_errors(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match object["spec"]["containers"].as_array() {
        Some(list) if !list.is_empty() => {
            for (i, c) in list.iter().enumerate() {
                if c["name"].as_str().is_none_or(str::is_empty) {
                    errors.push(FieldError::required(&format!("spec.containers[{i}].name"), ""));
                }
                if c["image"].as_str().is_none_or(str::is_empty) {
                    errors.push(FieldError::required(&format!("spec.containers[{i}].image"), ""));
                }
            }
        }
        _ => errors.push(FieldError::required("spec.containers", "")),
    }
    errors
}

/// A Pod spec with the fields an update may change blanked out.
fn pod_spec_frozen(spec: &Value) -> Value {
    let mut spec = spec.clone();
    for list in ["containers", "initContainers"] {
        if let Some(items) = spec[list].as_array_mut() {
            for c in items {
                if let Some(c) = c.as_object_mut() {
                    c.remove("image");
                }
            }
        }
    }
    if let Some(s) = spec.as_object_mut() {
        for free in ["activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"] {
            s.remove(free);
        }
    }
    spec
}

const POD_UPDATE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Normalizes `object` and checks it; `old` is the stored version on updates.
pub(crate) fn admit(res: &ResourceType, old: Option<&Value>, object: &mut Value) -> Result<(), Failure> {
    if res.kind == "Secret" {
        normalize_secret(object)?;
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let mut errors = if old.is_none() { name_errors(res, &name) } else { Vec::new() };
    match (res.kind, old) {
        ("Secret", Some(old)) => {
            errors.extend(secret_update_errors(old, object));
            errors.extend(secret_errors(object));
        }
        ("Secret", None) => errors.extend(secret_errors(object)),
        ("ConfigMap", _) => errors.extend(config_map_errors(object)),
        ("Pod", old) => {
            errors.extend(pod_errors(object));
            if let Some(old) = old
                && pod_spec_frozen(&old["spec"]) != pod_spec_frozen(&object["spec"])
            {
                errors.push(FieldError::forbidden("spec", POD_UPDATE));
            }
        }
        _ => {}
    }
    if errors.is_empty() { Ok(()) } else { Err(invalid(res.kind, None, &name, &errors)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::{NAMESPACES, SECRETS};

    fn secret(kind: &str, data: Value) -> Value {
        json!({"metadata": {"name": "regcred"}, "type": kind, "data": data})
    }

    #[test]
    fn secret_type_is_immutable_with_the_real_message() {
        let old = secret("kubernetes.io/dockerconfigjson", json!({".dockerconfigjson": STANDARD.encode("{}")}));
        let mut new = secret("Opaque", json!({}));
        let failure = admit(SECRETS, Some(&old), &mut new).err().map(|f| (f.code, f.message));
        assert_eq!(
            failure,
            Some((422, "Secret \"regcred\" is invalid: type: Invalid value: \"Opaque\": field is immutable".into()))
        );
    }

    #[test]
    fn dockerconfigjson_must_be_json() {
        let mut missing = secret("kubernetes.io/dockerconfigjson", json!({}));
        assert_eq!(
            admit(SECRETS, None, &mut missing).err().map(|f| f.message).as_deref(),
            Some("Secret \"regcred\" is invalid: data[.dockerconfigjson]: Required value")
        );
        let mut bad = secret("kubernetes.io/dockerconfigjson", json!({".dockerconfigjson": STANDARD.encode("no")}));
        assert_eq!(
            admit(SECRETS, None, &mut bad).err().map(|f| f.message).as_deref(),
            Some(
                "Secret \"regcred\" is invalid: data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'o' in literal null (expecting 'u')"
            )
        );
    }

    #[test]
    fn immutable_secrets_and_string_data() {
        let mut frozen = json!({"metadata": {"name": "frozen"}, "immutable": true, "stringData": {"a": "x"}});
        admit(SECRETS, None, &mut frozen).expect("valid");
        assert_eq!(frozen["data"]["a"], json!(STANDARD.encode("x")));
        assert_eq!(frozen["type"], "Opaque");
        let mut changed = frozen.clone();
        changed["data"]["a"] = json!(STANDARD.encode("y"));
        changed["immutable"] = json!(false);
        assert_eq!(
            admit(SECRETS, Some(&frozen), &mut changed).err().map(|f| f.message).as_deref(),
            Some(
                "Secret \"frozen\" is invalid: [immutable: Forbidden: field is immutable when `immutable` is set, data: Forbidden: field is immutable when `immutable` is set]"
            )
        );
        let mut bad = json!({"metadata": {"name": "b"}, "data": {"a": "!!"}});
        assert_eq!(
            admit(SECRETS, None, &mut bad).err().map(|f| (f.code, f.message)),
            Some((
                400,
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0".into()
            ))
        );
    }

    #[test]
    fn names() {
        let mut ns = json!({"metadata": {"name": "Team_A"}});
        let message = admit(NAMESPACES, None, &mut ns).err().map(|f| f.message).unwrap_or_default();
        assert!(
            message.starts_with(
                "Namespace \"Team_A\" is invalid: metadata.name: Invalid value: \"Team_A\": a lowercase RFC 1123 label"
            ),
            "{message}"
        );
    }
}
