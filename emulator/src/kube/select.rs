//! Label and field selectors as the apiserver parses them (`a=b,c!=d,e in (x,y),!f`), with
//! its error text for unsupported field labels.

use serde_json::Value;

use super::resources::ResourceType;
use super::status::{Failure, bad_request};

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Splits on commas outside parentheses.
fn split_terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => terms.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    terms.push(current);
    terms.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()
}

fn set_values(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).collect())
}

fn parse(text: &str, labels: bool) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    for term in split_terms(text) {
        let requirement = if let Some((k, v)) = term.split_once("!=") {
            Requirement::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = term.split_once("==") {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = term.split_once('=') {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if labels && let Some((k, v)) = term.split_once(" notin ") {
            Requirement::NotIn(
                k.trim().into(),
                set_values(v).ok_or_else(|| format!("unable to parse requirement: {term}"))?,
            )
        } else if labels && let Some((k, v)) = term.split_once(" in ") {
            Requirement::In(
                k.trim().into(),
                set_values(v).ok_or_else(|| format!("unable to parse requirement: {term}"))?,
            )
        } else if labels && let Some(k) = term.strip_prefix('!') {
            Requirement::NotExists(k.trim().into())
        } else if labels {
            Requirement::Exists(term.clone())
        } else {
            return Err(format!("invalid selector: '{text}'; can't understand '{term}'"));
        };
        out.push(requirement);
    }
    Ok(out)
}

fn holds(requirement: &Requirement, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    match requirement {
        Requirement::Equals(k, v) => lookup(k).as_deref() == Some(v.as_str()),
        Requirement::NotEquals(k, v) => lookup(k).as_deref() != Some(v.as_str()),
        Requirement::In(k, vs) => lookup(k).is_some_and(|x| vs.contains(&x)),
        Requirement::NotIn(k, vs) => lookup(k).is_none_or(|x| !vs.contains(&x)),
        Requirement::Exists(k) => lookup(k).is_some(),
        Requirement::NotExists(k) => lookup(k).is_none(),
    }
}

/// A compiled `labelSelector` + `fieldSelector` pair.
pub(crate) struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl Selector {
    pub fn parse(res: &ResourceType, label: Option<&str>, field: Option<&str>) -> Result<Selector, Failure> {
        let labels = parse(label.unwrap_or(""), true).map_err(bad_request)?;
        let fields = parse(field.unwrap_or(""), false).map_err(bad_request)?;
        for f in &fields {
            let key = match f {
                Requirement::Equals(k, _) | Requirement::NotEquals(k, _) => k,
                _ => continue,
            };
            if key != "metadata.name" && key != "metadata.namespace" && !res.field_labels.contains(&key.as_str()) {
                return Err(bad_request(format!(
                    "Unable to find \"/v1, Resource={}\" that match label selector \"{}\", field selector \"{}\": field label not supported: {key}",
                    res.plural,
                    label.unwrap_or(""),
                    field.unwrap_or("")
                )));
            }
        }
        Ok(Selector { labels, fields })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let label = |k: &str| object["metadata"]["labels"][k].as_str().map(str::to_string);
        let field = |k: &str| {
            let mut at = object;
            for part in k.split('.') {
                at = &at[part];
            }
            match at {
                Value::String(s) => Some(s.clone()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(n.to_string()),
                // An absent field compares as the empty string, as the real field sets do.
                _ => Some(String::new()),
            }
        };
        self.labels.iter().all(|r| holds(r, &label)) && self.fields.iter().all(|r| holds(r, &field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::{PODS, SECRETS};
    use serde_json::json;

    #[test]
    fn label_and_field_selectors() {
        let object = json!({"metadata": {"name": "a", "labels": {"app": "web", "tier": "fe"}}, "type": "Opaque"});
        let s = |l: &str, f: &str| Selector::parse(SECRETS, Some(l), Some(f)).map(|s| s.matches(&object));
        assert_eq!(s("app=web", "").ok(), Some(true));
        assert_eq!(s("app in (db, web),!missing", "type=Opaque").ok(), Some(true));
        assert_eq!(s("tier notin (fe)", "").ok(), Some(false));
        assert_eq!(s("app", "metadata.name!=a").ok(), Some(false));
        assert_eq!(s("", "type==kubernetes.io/tls").ok(), Some(false));
        let bad = Selector::parse(PODS, None, Some("spec.image=x")).err().map(|f| f.message);
        assert_eq!(
            bad.as_deref(),
            Some(
                "Unable to find \"/v1, Resource=pods\" that match label selector \"\", field selector \"spec.image=x\": field label not supported: spec.image"
            )
        );
    }
}
