//! Loads the desired-state file: text → position tree → structure check against the schema →
//! typed raw config → semantic checks → validated `Config`. Reports every problem found, each
//! with line, column and field path. Does no network I/O.

pub mod check;
pub mod diagnostic;
pub mod model;
pub mod names;
pub mod raw;
pub mod reach;
pub mod selector;
pub mod source;
pub mod structure;
mod toml_sections;

use diagnostic::Segment;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use diagnostic::{Diagnostic, FieldPath, Severity};
pub use model::Config;
pub use source::Format;

/// Everything validation found in one file.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not UTF-8 text (invalid byte at line {line}, column {column}); save it as UTF-8")]
    NotUtf8 { path: PathBuf, line: usize, column: usize },
    #[error("{path} is not a valid desired-state file ({count} problem{s})", s = if *count == 1 { "" } else { "s" })]
    Invalid { path: PathBuf, count: usize },
}

fn schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(raw::json_schema)
}

/// Validates text as if read from `path` (the extension picks TOML or YAML).
pub fn validate_text(text: &str, path: &Path) -> (Option<Config>, Vec<Diagnostic>) {
    let root = match source::parse(text, Format::from_path(path)) {
        Ok(root) => root,
        Err(syntax) => {
            let format = match Format::from_path(path) {
                Format::Toml => "TOML",
                Format::Yaml => "YAML",
            };
            // A file refused for its size is not a syntax problem, nor read again as the other format.
            if syntax.code == source::TOO_LARGE {
                let diagnostic = Diagnostic::error(syntax.code, syntax.path, syntax.position, syntax.message);
                return (None, vec![diagnostic.with_hint(syntax.hint.unwrap_or_default())]);
            }
            let mut diagnostic = Diagnostic::error(
                syntax.code,
                syntax.path,
                syntax.position,
                format!("invalid {format}: {}", syntax.message),
            );
            diagnostic.hint = other_format_hint(text, path).or(syntax.hint);
            return (None, vec![diagnostic]);
        }
    };
    let mut collections = Collections::default();
    let (pruned, mut diagnostics) = {
        let mut sink =
            |collection: &str, at: Segment, value: serde_json::Value| collections.take(collection, at, value);
        structure::StructureCheck::run_streaming(schema(), &root, &Collections::NAMES, &mut sink)
    };
    // TOML text in a .yaml file is often one long YAML string: the document is not a table.
    if let Some(not_a_table) = diagnostics.iter_mut().find(|d| d.code == "wrong-type" && d.path.0.is_empty())
        && let Some(hint) = other_format_hint(text, path)
    {
        not_a_table.hint = Some(hint);
    }
    // A file whose top level cannot be typed (no `version`) is checked as empty, as before.
    let typed = match pruned {
        Some(pruned) => serde_json::from_value::<raw::PartialConfig>(pruned).and_then(|raw| collections.into(raw)),
        None => Ok(raw::PartialConfig::default()),
    };
    let config = match Some(typed) {
        Some(Ok(raw)) => {
            let (config, semantic) = check::check(raw, &root, path, &diagnostics);
            diagnostics.extend(semantic);
            config
        }
        Some(Err(err)) if diagnostics.is_empty() => {
            // The schema and serde disagree: a bug in acrlink, but still reported, never a panic.
            diagnostics.push(Diagnostic::error(
                "internal",
                FieldPath::root(),
                root.position,
                format!("cannot read the file: {err}"),
            ));
            None
        }
        _ => None,
    };
    diagnostics.sort_by(|a, b| (a.line, a.column, &a.path, a.code).cmp(&(b.line, b.column, &b.path, b.code)));
    diagnostics.dedup();
    let config = if diagnostics.iter().any(|d| d.severity == Severity::Error) { None } else { config };
    (config, diagnostics)
}

/// The file's large collections, typed entry by entry while the structure check hands them
/// over: a fleet's file is never held whole as JSON, whose maps cost hundreds of bytes each.
#[derive(Default)]
struct Collections {
    registries: std::collections::BTreeMap<String, Option<raw::RawRegistry>>,
    clusters: std::collections::BTreeMap<String, Option<Box<raw::RawCluster>>>,
    cluster_sets: Vec<Option<raw::RawClusterSet>>,
    bindings: Vec<Option<raw::RawBinding>>,
    /// The first entry serde could not type although the schema passed it (a bug in acrlink).
    error: Option<serde_json::Error>,
}

impl Collections {
    const NAMES: [&'static str; 4] = ["registries", "clusters", "cluster_sets", "bindings"];

    fn take(&mut self, collection: &str, at: Segment, value: serde_json::Value) {
        match (collection, at) {
            ("registries", Segment::Key(key)) => {
                let entry = self.typed(value);
                self.registries.insert(key, entry);
            }
            ("clusters", Segment::Key(key)) => {
                let entry = self.typed(value);
                self.clusters.insert(key, entry);
            }
            ("cluster_sets", Segment::Index(_)) => {
                let entry = self.typed(value);
                self.cluster_sets.push(entry);
            }
            ("bindings", Segment::Index(_)) => {
                let entry = self.typed(value);
                self.bindings.push(entry);
            }
            _ => {}
        }
    }

    fn typed<T: serde::de::DeserializeOwned>(&mut self, value: serde_json::Value) -> Option<T> {
        serde_json::from_value::<Option<T>>(value).unwrap_or_else(|err| {
            self.error.get_or_insert(err);
            None
        })
    }

    /// The rest of the file, typed, with the collections put back.
    fn into(self, mut raw: raw::PartialConfig) -> Result<raw::PartialConfig, serde_json::Error> {
        if let Some(err) = self.error {
            return Err(err);
        }
        raw.registries = self.registries;
        raw.clusters = self.clusters;
        raw.cluster_sets = self.cluster_sets;
        raw.bindings = self.bindings;
        Ok(raw)
    }
}

/// For a file that does not parse in the format its extension names: a hint to rename it when
/// it parses in the other one (YAML saved as acrlink.toml, or TOML as acrlink.yaml). Only a
/// non-empty table counts: almost any text is a valid YAML scalar.
fn other_format_hint(text: &str, path: &Path) -> Option<String> {
    let (other, name, extension) = match Format::from_path(path) {
        Format::Toml => (Format::Yaml, "YAML", "yaml"),
        Format::Yaml => (Format::Toml, "TOML", "toml"),
    };
    let parsed = source::parse(text, other).ok()?;
    if !matches!(&parsed.value, source::NodeValue::Table(entries) if !entries.is_empty()) {
        return None;
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).filter(|s| !s.is_empty()).unwrap_or("acrlink");
    Some(format!("this looks like {name}; rename to {stem}.{extension}"))
}

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<(Option<Config>, Report), LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    let source = String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        // The prefix is valid UTF-8 by definition; lossy conversion never changes it.
        let valid = String::from_utf8_lossy(valid);
        let line = valid.matches('\n').count() + 1;
        let column = valid.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        LoadError::NotUtf8 { path: path.to_path_buf(), line, column }
    })?;
    let (config, diagnostics) = validate_text(&source, path);
    Ok((config, Report { path: path.to_path_buf(), source, diagnostics }))
}

/// The file used when none is given: acrlink.toml, else acrlink.yaml or acrlink.yml.
pub fn default_path() -> PathBuf {
    ["acrlink.toml", "acrlink.yaml", "acrlink.yml"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("acrlink.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &str, file: &str) -> Vec<(&'static str, usize, String)> {
        validate_text(text, Path::new(file)).1.into_iter().map(|d| (d.code, d.line, d.path.to_string())).collect()
    }

    const GOOD: &str = r#"version = 1
[azure]
subscription_id = "1d6c45e0-bd9f-4771-bb67-36616452f239"
[registries.axcoeyjacr]
resource_group = "axcoe-yj-rg"
[clusters.axcoeyjaks]
resource_group = "axcoe-yj-rg"
labels = { env = "dev" }
[[bindings]]
clusters = ["axcoeyjaks"]
registries = ["axcoeyjacr"]
"#;

    #[test]
    fn minimal_file_is_valid() {
        let (config, diagnostics) = validate_text(GOOD, Path::new("acrlink.toml"));
        assert_eq!(diagnostics, vec![]);
        let config = config.unwrap();
        assert_eq!(config.bindings[0].registries, vec!["axcoeyjacr".to_string()]);
        assert_eq!(config.clusters["axcoeyjaks"].subscription_id, "1d6c45e0-bd9f-4771-bb67-36616452f239");
    }

    #[test]
    fn every_problem_is_reported_in_one_run() {
        let text = GOOD
            .replace(
                "resource_group = \"axcoe-yj-rg\"\nlabels",
                "resource_groop = \"x\"\nresource_group = \"rg.\"\nlabels",
            )
            .replace("registries = [\"axcoeyjacr\"]", "registries = [\"axcoeyjacx\"]\nnamespaces = [\"default\"]");
        let found = codes(&text, "acrlink.toml");
        let kinds: Vec<&str> = found.iter().map(|(c, _, _)| *c).collect();
        assert!(kinds.contains(&"unknown-field"), "{found:?}");
        assert!(kinds.contains(&"invalid-name"), "{found:?}");
        assert!(kinds.contains(&"undefined-registry"), "{found:?}");
        assert!(kinds.contains(&"field-not-for-method"), "{found:?}");
    }

    #[test]
    fn a_file_in_the_other_format_gets_a_rename_hint() {
        let yaml = "version: 1\nazure:\n  subscription_id: 1d6c45e0-bd9f-4771-bb67-36616452f239\n";
        let (_, found) = validate_text(yaml, Path::new("fleet/acrlink.toml"));
        assert_eq!(found[0].hint.as_deref(), Some("this looks like YAML; rename to acrlink.yaml"), "{found:?}");
        let toml = "version = 1\n[azure]\nsubscription_id = \"1d6c45e0-bd9f-4771-bb67-36616452f239\"\n";
        let (_, found) = validate_text(toml, Path::new("prod.yml"));
        assert_eq!(found[0].hint.as_deref(), Some("this looks like TOML; rename to prod.toml"), "{found:?}");
        // TOML that YAML reads as one long string.
        let (_, found) = validate_text("version = 1\n[azure]\ncloud = \"AzureCloud\"\n", Path::new("a.yaml"));
        assert_eq!(found[0].hint.as_deref(), Some("this looks like TOML; rename to a.toml"), "{found:?}");
        // Broken in both formats (a YAML scalar is not a file): no rename hint.
        let (_, found) = validate_text("version = [1\n", Path::new("acrlink.toml"));
        assert!(found[0].hint.as_deref().is_none_or(|h| !h.contains("rename")), "{found:?}");
    }

    #[test]
    fn yaml_positions_match_the_yaml_file() {
        let text = "version: 1\nazure:\n  subscription_id: 1d6c45e0-bd9f-4771-bb67-36616452f239\nregistries:\n  bad-name:\n    resource_group: rg\n";
        let found = codes(text, "acrlink.yaml");
        assert_eq!(found, vec![("invalid-name", 5, "registries.bad-name".to_string())]);
    }
}
