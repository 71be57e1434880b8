//! What validation reports: a problem with its severity, stable code, field path, position and
//! hint. Rendering lives in `render::diagnostics`.

use std::fmt;

use serde::Serialize;

use super::source::Position;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A field's path in the file, written as `bindings[1].namespaces[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }
    pub fn key(&self, key: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.to_string()));
        next
    }
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare { f.write_str(k)? } else { write!(f, "{k:?}")? }
                }
            }
        }
        Ok(())
    }
}

impl schemars::JsonSchema for FieldPath {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FieldPath".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "the field in the file, e.g. bindings[1].namespaces[0] (empty for the whole file)"
        })
    }
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable identifier of the kind of problem, for scripts and tests.
    pub code: &'static str,
    pub path: FieldPath,
    pub line: usize,
    pub column: usize,
    #[serde(skip)]
    pub length: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The source line may hold a secret: renderers must not quote it.
    #[serde(skip)]
    pub redact_source: bool,
}

impl Diagnostic {
    pub fn error(code: &'static str, path: FieldPath, position: Position, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            path,
            line: position.line as usize,
            column: position.column as usize,
            length: position.length as usize,
            message: message.into(),
            hint: None,
            redact_source: false,
        }
    }
    pub fn warning(code: &'static str, path: FieldPath, position: Position, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, path, position, message) }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Problems kept per check: past this many they are counted, not kept. A hostile file could
/// otherwise hold millions in memory (a misspelt name costs a few hundred bytes), and nobody
/// reads past the first screens of them.
pub const MAX_DIAGNOSTICS: usize = 1_000;

/// Diagnostics of one check, up to `MAX_DIAGNOSTICS`, with a count of all errors.
#[derive(Debug, Default)]
pub struct Collector {
    kept: Vec<Diagnostic>,
    errors: usize,
    dropped_errors: usize,
    dropped_warnings: usize,
    /// Where the first problem not kept is: the summary points there.
    first_dropped: Option<(usize, usize)>,
    /// Whether the last problem pushed was kept, so that its hint goes with it.
    last_kept: bool,
}

impl Collector {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        let error = diagnostic.severity == Severity::Error;
        self.errors += usize::from(error);
        self.last_kept = self.kept.len() < MAX_DIAGNOSTICS;
        if self.last_kept {
            self.kept.push(diagnostic);
            return;
        }
        self.first_dropped.get_or_insert((diagnostic.line, diagnostic.column));
        if error {
            self.dropped_errors += 1;
        } else {
            self.dropped_warnings += 1;
        }
    }

    /// Keeps `diagnostic` past the limit too: for a problem that stops a check (at most one
    /// per file), which a flood of earlier ones must not hide.
    pub fn push_always(&mut self, diagnostic: Diagnostic) {
        self.errors += usize::from(diagnostic.severity == Severity::Error);
        self.last_kept = true;
        self.kept.push(diagnostic);
    }

    pub fn extend(&mut self, diagnostics: impl IntoIterator<Item = Diagnostic>) {
        for diagnostic in diagnostics {
            self.push(diagnostic);
        }
    }

    /// Sets the hint of the problem pushed last, unless it was not kept.
    pub fn hint(&mut self, hint: String) {
        if self.last_kept
            && let Some(last) = self.kept.last_mut()
        {
            last.hint = Some(hint);
        }
    }

    /// Errors pushed so far, kept or not.
    pub fn errors(&self) -> usize {
        self.errors
    }

    pub fn kept(&self) -> &[Diagnostic] {
        &self.kept
    }

    /// The problems kept, then one that counts those that were not.
    pub fn into_vec(mut self) -> Vec<Diagnostic> {
        let dropped = self.dropped_errors + self.dropped_warnings;
        if let Some((line, column)) = self.first_dropped {
            let position = super::source::Position {
                line: super::source::narrow(line),
                column: super::source::narrow(column),
                length: 0,
            };
            let message = format!(
                "{dropped} more problems are not listed ({} errors, {} warnings): only the first {MAX_DIAGNOSTICS} are",
                self.dropped_errors, self.dropped_warnings
            );
            let mut summary = Diagnostic::error("too-many-problems", FieldPath::root(), position, message)
                .with_hint("fix the problems listed, then validate again");
            if self.dropped_errors == 0 {
                summary.severity = Severity::Warning;
            }
            self.kept.push(summary);
        }
        self.kept
    }
}

/// The closest of `candidates` to a misspelt `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_the_file() {
        let p = FieldPath::root().key("bindings").index(1).key("namespaces").index(0);
        assert_eq!(p.to_string(), "bindings[1].namespaces[0]");
        assert_eq!(FieldPath::root().key("labels").key("a.b/c").to_string(), "labels.\"a.b/c\"");
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(did_you_mean("namespacez", ["namespaces", "clusters"]), Some("namespaces"));
        assert_eq!(did_you_mean("zzz", ["namespaces", "clusters"]), None);
    }
}
