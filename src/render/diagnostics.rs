//! Renders a validation report: compiler-style text with the offending source line, or a
//! versioned JSON document. Never quotes a source line that may hold a secret.

use std::fmt::Write as _;

use serde::Serialize;

use super::style;
use crate::config::{Config, Diagnostic, Report, Severity};

pub const REPORT_FORMAT_VERSION: u32 = 1;

/// Source lines wider than this are shown as a window around the column.
const MAX_SHOWN_LINE: usize = 160;

pub fn text(report: &Report, config: Option<&Config>) -> String {
    let mut out = String::new();
    let file = report.path.display();
    let lines: Vec<&str> = report.source.lines().collect();
    // A line that one diagnostic must not quote is not quoted by any other either.
    let secret_lines: std::collections::BTreeSet<usize> =
        report.diagnostics.iter().filter(|d| d.redact_source).map(|d| d.line).collect();
    for d in &report.diagnostics {
        let label = match d.severity {
            Severity::Error => style::error(&format!("error[{}]", d.code)),
            Severity::Warning => style::warning(&format!("warning[{}]", d.code)),
        };
        let _ = writeln!(out, "{label}: {}", style::bold(&d.message));
        // The document itself has no field path worth showing.
        let field =
            if d.path.0.is_empty() { String::new() } else { format!(" {}", style::dim(&format!("({})", d.path))) };
        let _ = writeln!(out, "  {} {file}:{}:{}{field}", style::dim("-->"), d.line, d.column);
        if let Some(line) = d.line.checked_sub(1).and_then(|i| lines.get(i)) {
            let gutter = d.line.to_string();
            let pad = " ".repeat(gutter.len());
            let redacted = d.redact_source || secret_lines.contains(&d.line) || may_hold_secret(line);
            let (shown, column) = if redacted {
                (redact(line), d.column.min(line.find(['=', ':']).map_or(1, |at| at + 1)).max(1))
            } else {
                window(line.trim_end_matches('\r'), d.column.max(1))
            };
            let caret_len =
                if redacted { 1 } else { d.length.clamp(1, shown.chars().count().saturating_sub(column - 1).max(1)) };
            let _ = writeln!(out, "  {pad} {}", style::dim("|"));
            let _ = writeln!(out, "  {} {} {shown}", style::dim(&gutter), style::dim("|"));
            let marker = format!("{}{}", " ".repeat(column - 1), "^".repeat(caret_len));
            let marker = if d.severity == Severity::Error { style::error(&marker) } else { style::warning(&marker) };
            let _ = writeln!(out, "  {pad} {} {marker}", style::dim("|"));
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "  {} {}", style::hint("= hint:"), hint);
        }
        out.push('\n');
    }
    let errors = report.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = report.diagnostics.len() - errors;
    match config {
        Some(config) if errors == 0 => {
            let summary = format!(
                "{file} is valid: {} registr{}, {} cluster{}, {} cluster set{}, {} binding{}",
                config.registries.len(),
                if config.registries.len() == 1 { "y" } else { "ies" },
                config.clusters.len(),
                plural(config.clusters.len()),
                config.cluster_sets.len(),
                plural(config.cluster_sets.len()),
                config.bindings.len(),
                plural(config.bindings.len()),
            );
            let _ = write!(out, "{} {summary}", style::success("ok:"));
            if warnings > 0 {
                let _ = write!(out, " ({warnings} warning{})", plural(warnings));
            }
            out.push('\n');
        }
        _ => {
            let _ = writeln!(
                out,
                "{} {file}: {errors} error{}, {warnings} warning{}; nothing was changed",
                style::error("invalid:"),
                plural(errors),
                plural(warnings)
            );
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Keeps the key, masks everything from the value on.
fn redact(line: &str) -> String {
    match line.find(['=', ':']) {
        Some(at) => format!("{} <redacted>", &line[..=at]),
        None => "<redacted>".to_string(),
    }
}

/// Whether a line assigns a field whose name says it holds a secret (`client_secret = ...`,
/// `password: ...`), even inside an inline table, so that no diagnostic (a syntax error on
/// that line, say) quotes it.
fn may_hold_secret(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    crate::config::structure::INLINE_SECRET_FIELDS.iter().any(|field| {
        lower.match_indices(field).any(|(at, _)| {
            let before = lower[..at].chars().next_back();
            let after = lower[at + field.len()..].trim_start_matches(['"', '\'', ' ', '\t']);
            before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
                && (after.starts_with('=') || after.starts_with(':'))
        })
    })
}

/// The part of a long line around `column`, and the column within what is shown.
fn window(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= MAX_SHOWN_LINE {
        return (line.to_string(), column);
    }
    let start = column.saturating_sub(1).min(chars.len()).saturating_sub(MAX_SHOWN_LINE / 2);
    let end = (start + MAX_SHOWN_LINE).min(chars.len());
    let mut shown = String::new();
    let mut column = column - start;
    if start > 0 {
        shown.push('…');
        column += 1;
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, column)
}

/// `validate --format json`.
#[derive(Serialize, schemars::JsonSchema)]
pub struct JsonReport<'a> {
    format_version: u32,
    file: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [Diagnostic],
    /// Why the file could not be read at all (then `diagnostics` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Unreadable>,
}

/// A file that could not be read: missing, a directory, not UTF-8.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Unreadable {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

pub fn json(report: &Report) -> String {
    let errors = report.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let document = JsonReport {
        format_version: REPORT_FORMAT_VERSION,
        file: report.path.display().to_string(),
        valid: errors == 0,
        errors,
        warnings: report.diagnostics.len() - errors,
        diagnostics: &report.diagnostics,
        error: None,
    };
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

/// The JSON report of a file that could not be read.
pub fn unreadable_json(path: &std::path::Path, message: &str, hint: Option<&str>) -> String {
    let document = JsonReport {
        format_version: REPORT_FORMAT_VERSION,
        file: path.display().to_string(),
        valid: false,
        errors: 1,
        warnings: 0,
        diagnostics: &[],
        error: Some(Unreadable { message: message.to_string(), hint: hint.map(str::to_string) }),
    };
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

/// The JSON Schema of `validate --format json`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(JsonReport<'static>)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_assignments_are_recognised() {
        assert!(may_hold_secret("client_secret = \"x\""));
        assert!(may_hold_secret("  password: hunter2"));
        assert!(may_hold_secret("b = [{ clusters = [], \"client_secret\" = \"x\" }]"));
        assert!(!may_hold_secret("client_secret_env = \"VAR\""));
        assert!(!may_hold_secret("# keep the password elsewhere"));
        assert!(!may_hold_secret("namespace_secret_name = \"x\""));
    }

    #[test]
    fn long_lines_are_windowed_around_the_column() {
        assert_eq!(window("short", 3), ("short".to_string(), 3));
        let line = format!("{}X{}", "a".repeat(500), "b".repeat(500));
        let (shown, column) = window(&line, 501);
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert_eq!(shown.chars().nth(column - 1), Some('X'));
        let (shown, column) = window(&line, 1);
        assert_eq!((shown.chars().next(), column), (Some('a'), 1));
    }
}
