//! Cluster and namespace selectors as written in bindings: "*", exact names, globs ("tiu-*")
//! and label selectors ("env=prod,wave!=canary,team,!legacy"). Pure matching, no I/O.

use std::collections::BTreeMap;
use std::fmt;

/// Where a selector reads labels: the file's clusters keep theirs in a small sorted vector,
/// Kubernetes objects in a map.
pub trait LabelSource {
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSource for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl LabelSource for litemap::LiteMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

/// All requirements must hold (Kubernetes' equality-based selector grammar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("empty requirement in label selector {text:?}"));
            }
            let requirement = if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(key.trim().to_string(), value.trim().to_string())
            } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(key.trim().to_string(), value.trim().to_string())
            } else if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_string())
            } else {
                Requirement::Exists(part.to_string())
            };
            let (key, value) = match &requirement {
                Requirement::Equals(k, v) | Requirement::NotEquals(k, v) => (k, Some(v)),
                Requirement::Exists(k) | Requirement::NotExists(k) => (k, None),
            };
            super::names::label_key(key).map_err(|why| format!("label key {key:?}: {why}"))?;
            if let Some(value) = value {
                super::names::label_value(value).map_err(|why| format!("label value {value:?}: {why}"))?;
            }
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }

    pub fn matches<L: LabelSource + ?Sized>(&self, labels: &L) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => labels.label(k) != Some(v.as_str()),
            Requirement::Exists(k) => labels.label(k).is_some(),
            Requirement::NotExists(k) => labels.label(k).is_none(),
        })
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::Exists(k) => k.clone(),
                Requirement::NotExists(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[derive(Debug, Clone)]
pub enum ClusterSelector {
    All,
    Name(String),
    Glob { pattern: String, matcher: globset::GlobMatcher },
    Labels(LabelSelector),
}

impl PartialEq for ClusterSelector {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl ClusterSelector {
    pub fn parse(text: &str) -> Result<ClusterSelector, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty selector matches nothing".into());
        }
        if text == "*" {
            return Ok(ClusterSelector::All);
        }
        if text.contains('=') || text.starts_with('!') || text.contains(',') {
            return LabelSelector::parse(text).map(ClusterSelector::Labels);
        }
        if text.contains(['*', '?', '[']) {
            let matcher =
                globset::Glob::new(text).map_err(|e| format!("invalid glob {text:?}: {}", e.kind()))?.compile_matcher();
            return Ok(ClusterSelector::Glob { pattern: text.to_string(), matcher });
        }
        Ok(ClusterSelector::Name(text.to_string()))
    }

    pub fn matches<L: LabelSource + ?Sized>(&self, name: &str, labels: &L) -> bool {
        match self {
            ClusterSelector::All => true,
            ClusterSelector::Name(n) => n == name,
            ClusterSelector::Glob { matcher, .. } => matcher.is_match(name),
            ClusterSelector::Labels(selector) => selector.matches(labels),
        }
    }
}

impl fmt::Display for ClusterSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterSelector::All => f.write_str("*"),
            ClusterSelector::Name(n) => f.write_str(n),
            ClusterSelector::Glob { pattern, .. } => f.write_str(pattern),
            ClusterSelector::Labels(s) => write!(f, "{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selector_kinds() {
        let prod = labels(&[("env", "prod"), ("wave", "2")]);
        assert!(ClusterSelector::parse("env=prod").unwrap().matches("x", &prod));
        assert!(!ClusterSelector::parse("env=prod,wave!=2").unwrap().matches("x", &prod));
        assert!(ClusterSelector::parse("!legacy").unwrap().matches("x", &prod));
        assert_eq!(ClusterSelector::parse("wave").unwrap(), ClusterSelector::Name("wave".into()));
        assert!(ClusterSelector::parse("tiu-*").unwrap().matches("tiu-01", &prod));
        assert!(!ClusterSelector::parse("tiu-*").unwrap().matches("abc", &prod));
        assert!(ClusterSelector::parse("*").unwrap().matches("anything", &BTreeMap::new()));
        assert!(ClusterSelector::parse("aks1").unwrap().matches("aks1", &BTreeMap::new()));
    }

    #[test]
    fn bad_selectors_are_errors() {
        assert!(ClusterSelector::parse("").is_err());
        assert!(ClusterSelector::parse("env=,").is_err());
        assert!(ClusterSelector::parse("en v=prod").is_err());
        assert!(ClusterSelector::parse("tiu-[").is_err());
    }
}
