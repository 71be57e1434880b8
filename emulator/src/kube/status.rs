//! Kubernetes `Status` bodies with the reasons, messages and details a real kube-apiserver
//! (v1.28) sends; see docs/kubernetes-behaviour.md in the project's shared notes.

use serde_json::{Value, json};

use crate::http::Reply;

/// A failed call as the apiserver answers it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

impl Failure {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Failure {
        Failure { code, reason, message: message.into(), details: None, retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> Failure {
        self.details = Some(details);
        self
    }

    pub fn reply(&self) -> Reply {
        let mut body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(details) = &self.details {
            body["details"] = details.clone();
        }
        let reply = Reply::json(self.code, &body);
        match self.retry_after {
            Some(seconds) => reply.with_header("Retry-After", seconds.to_string()),
            None => reply,
        }
    }
}

/// `details` naming an object: `kind` is the plural resource, as the real server sends it.
fn named(resource: &str, name: &str) -> Value {
    let mut details = json!({"kind": resource});
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    details
}

pub(crate) fn not_found(resource: &str, name: &str) -> Failure {
    Failure::new(404, "NotFound", format!("{resource} \"{name}\" not found")).with_details(named(resource, name))
}

/// A create in a namespace being deleted (the NamespaceLifecycle admission plugin).
pub(crate) fn namespace_terminating(resource: &str, name: &str, namespace: &str) -> Failure {
    let mut details = named(resource, name);
    details["causes"] = json!([{
        "reason": "NamespaceTerminating",
        "message": format!("namespace {namespace} is being terminated"),
        "field": "metadata.namespace",
    }]);
    Failure::new(
        403,
        "Forbidden",
        format!(
            "{resource} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated"
        ),
    )
    .with_details(details)
}

/// The answer for a path no resource lives at.
pub(crate) fn no_such_path() -> Failure {
    Failure::new(404, "NotFound", "the server could not find the requested resource").with_details(json!({}))
}

pub(crate) fn already_exists(resource: &str, name: &str) -> Failure {
    Failure::new(409, "AlreadyExists", format!("{resource} \"{name}\" already exists"))
        .with_details(named(resource, name))
}

pub(crate) fn conflict(resource: &str, name: &str) -> Failure {
    Failure::new(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
    )
    .with_details(named(resource, name))
}

pub(crate) fn precondition_failed(resource: &str, name: &str, what: &str) -> Failure {
    Failure::new(409, "Conflict", format!("Operation cannot be fulfilled on {resource} \"{name}\": {what}"))
        .with_details(named(resource, name))
}

pub(crate) fn bad_request(message: impl Into<String>) -> Failure {
    Failure::new(400, "BadRequest", message)
}

pub(crate) fn unauthorized() -> Failure {
    Failure::new(401, "Unauthorized", "Unauthorized")
}

pub(crate) fn method_not_allowed(message: impl Into<String>) -> Failure {
    Failure::new(405, "MethodNotAllowed", message).with_details(json!({}))
}

pub(crate) fn unsupported_media_type() -> Failure {
    Failure::new(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
    )
}

/// RBAC's denial: `secrets "x" is forbidden: User "u" cannot get resource "secrets" in API
/// group "" in the namespace "ns"` (or `at the cluster scope`).
pub(crate) fn forbidden(user: &str, verb: &str, resource: &str, namespace: &str, name: &str) -> Failure {
    let place = if namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{namespace}\"")
    };
    let subject = if name.is_empty() { resource.to_string() } else { format!("{resource} \"{name}\"") };
    Failure::new(
        403,
        "Forbidden",
        format!(
            "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"\" {place}"
        ),
    )
    .with_details(named(resource, name))
}

/// One field problem, as `field.ErrorList` renders it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub field: String,
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`, ...
    pub reason: &'static str,
    /// The message without the field, e.g. `Invalid value: "Opaque": field is immutable`.
    pub message: String,
}

impl FieldError {
    pub fn invalid(field: &str, value: &str, detail: &str) -> FieldError {
        FieldError {
            field: field.into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {}: {detail}", go_quote(value)),
        }
    }
    pub fn required(field: &str, detail: &str) -> FieldError {
        let message =
            if detail.is_empty() { "Required value".to_string() } else { format!("Required value: {detail}") };
        FieldError { field: field.into(), reason: "FieldValueRequired", message }
    }
    pub fn forbidden(field: &str, detail: &str) -> FieldError {
        FieldError { field: field.into(), reason: "FieldValueForbidden", message: format!("Forbidden: {detail}") }
    }
}

/// Go's `%q` for the strings we quote (printable ASCII and UTF-8 pass; quotes, backslashes
/// and control characters are escaped).
pub(crate) fn go_quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// 422 Invalid: `Secret "x" is invalid: type: Invalid value: ...`, several errors in brackets.
pub(crate) fn invalid(kind: &str, group: Option<&str>, name: &str, errors: &[FieldError]) -> Failure {
    let rendered: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
    let list = if rendered.len() == 1 { rendered[0].clone() } else { format!("[{}]", rendered.join(", ")) };
    let qualified = match group {
        Some(g) if !g.is_empty() => format!("{kind}.{g}"),
        _ => kind.to_string(),
    };
    let mut details = json!({
        "kind": kind,
        "causes": errors.iter().map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field})).collect::<Vec<_>>(),
    });
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    if let Some(g) = group {
        details["group"] = json!(g);
    }
    Failure::new(422, "Invalid", format!("{qualified} \"{name}\" is invalid: {list}")).with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_renders_like_field_error_lists() {
        let one = invalid("Secret", None, "regcred", &[FieldError::invalid("type", "Opaque", "field is immutable")]);
        assert_eq!(one.message, "Secret \"regcred\" is invalid: type: Invalid value: \"Opaque\": field is immutable");
        let two = invalid(
            "Secret",
            None,
            "x",
            &[FieldError::required("data[.dockerconfigjson]", ""), FieldError::forbidden("data", "no")],
        );
        assert_eq!(
            two.message,
            "Secret \"x\" is invalid: [data[.dockerconfigjson]: Required value, data: Forbidden: no]"
        );
    }

    #[test]
    fn forbidden_names_the_scope() {
        assert_eq!(
            forbidden("developer", "list", "secrets", "realk8s-test", "").message,
            "secrets is forbidden: User \"developer\" cannot list resource \"secrets\" in API group \"\" in the namespace \"realk8s-test\""
        );
        assert!(forbidden("u", "get", "namespaces", "", "a").message.ends_with("at the cluster scope"));
    }
}
