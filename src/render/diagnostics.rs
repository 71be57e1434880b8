//! Renders a validation report: compiler-style text with the offending source line, or a
//! versioned JSON document. Never quotes a source line that may hold a secret.

use std::fmt::Write as _;

use serde::Serialize;

use super::style;
use crate::config::{Config, Diagnostic, Report, Severity};

pub const REPORT_FORMAT_VERSION: u32 = 1;

pub fn text(report: &Report, config: Option<&Config>) -> String {
    let mut out = String::new();
    let file = report.path.display();
    let lines: Vec<&str> = report.source.lines().collect();
    for d in &report.diagnostics {
        let label = match d.severity {
            Severity::Error => style::error(&format!("error[{}]", d.code)),
            Severity::Warning => style::warning(&format!("warning[{}]", d.code)),
        };
        let _ = writeln!(out, "{label}: {}", style::bold(&d.message));
        let _ = writeln!(
            out,
            "  {} {file}:{}:{} {}",
            style::dim("-->"),
            d.line,
            d.column,
            style::dim(&format!("({})", d.path))
        );
        if let Some(line) = d.line.checked_sub(1).and_then(|i| lines.get(i)) {
            let gutter = d.line.to_string();
            let pad = " ".repeat(gutter.len());
            let shown = if d.redact_source { redact(line) } else { (*line).to_string() };
            let caret_len = if d.redact_source {
                1
            } else {
                d.length.clamp(1, shown.chars().count().saturating_sub(d.column - 1).max(1))
            };
            let _ = writeln!(out, "  {pad} {}", style::dim("|"));
            let _ = writeln!(out, "  {} {} {shown}", style::dim(&gutter), style::dim("|"));
            let marker = format!("{}{}", " ".repeat(d.column.saturating_sub(1)), "^".repeat(caret_len));
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

#[derive(Serialize)]
struct JsonReport<'a> {
    format_version: u32,
    file: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [Diagnostic],
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
    };
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}
