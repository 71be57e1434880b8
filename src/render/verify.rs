//! `acrlink verify`'s report: a compact table grouped by cluster (text), the versioned JSON
//! document (`schemas/verify.schema.json`), and Markdown for a pull-request comment.

use std::fmt::Write as _;

use super::style;
use crate::verify::{Check, Layer, Report, Verdict};

fn layer_name(layer: Layer) -> &'static str {
    match layer {
        Layer::Azure => "azure",
        Layer::Registry => "registry",
        Layer::Pod => "pod",
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Ok => "ok",
        Verdict::Fail => "fail",
        Verdict::Skipped => "skipped",
    }
}

/// What a check is about: `registry[/repository][ in namespace]`.
fn subject(check: &Check) -> String {
    let mut text = check.registry.clone();
    if let Some(repository) = &check.repository {
        let _ = write!(text, "/{repository}");
    }
    if let Some(namespace) = &check.namespace {
        let _ = write!(text, " in {namespace}");
    }
    text
}

fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    format!("{} can pull, {} cannot, {} skipped (probe: {})", s.ok, s.fail, s.skipped, layer_name(report.probe))
}

pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let mut cluster: Option<&str> = None;
    for check in &report.checks {
        if cluster != Some(check.cluster.as_str()) {
            let _ = writeln!(out, "{}", style::bold(&format!("cluster {}", check.cluster)));
            cluster = Some(check.cluster.as_str());
        }
        let verdict = match check.verdict {
            Verdict::Ok => style::success("ok     "),
            Verdict::Fail => style::error("FAIL   "),
            Verdict::Skipped => style::warning("skipped"),
        };
        let cause = check.cause.map(|c| format!("[{}] ", c.name())).unwrap_or_default();
        let _ = writeln!(out, "  {verdict} {}  {cause}{}", subject(check), check.message);
        if let Some(hint) = &check.hint {
            let _ = writeln!(out, "          {} {hint}", style::hint("= hint:"));
        }
        for note in &check.notes {
            let _ = writeln!(out, "          {}", style::dim(&format!("note: {note}")));
        }
    }
    for error in &report.errors {
        let _ = writeln!(out, "{} {}", style::error("error:"), error.message);
        if let Some(hint) = &error.hint {
            let _ = writeln!(out, "  {} {hint}", style::hint("= hint:"));
        }
    }
    if report.checks.is_empty() && report.errors.is_empty() {
        let _ = writeln!(out, "Nothing to verify: no binding selects a cluster.");
    }
    let _ = writeln!(out, "\n{}", summary_line(report));
    out
}

pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default() + "\n"
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::from("### acrlink verify\n\n");
    let _ = writeln!(out, "**{}**\n", summary_line(report));
    if !report.checks.is_empty() {
        out.push_str("| Cluster | Pulls from | Verdict | Cause | What | Hint |\n|---|---|---|---|---|---|\n");
        for check in &report.checks {
            let verdict = match check.verdict {
                Verdict::Fail => format!("**{}**", verdict_name(check.verdict)),
                v => verdict_name(v).to_string(),
            };
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {verdict} | {} | {} | {} |",
                check.cluster,
                cell(&subject(check)),
                check.cause.map(|c| format!("`{}`", c.name())).unwrap_or_default(),
                cell(&check.message),
                cell(check.hint.as_deref().unwrap_or_default())
            );
        }
        out.push('\n');
    }
    for error in &report.errors {
        let _ = writeln!(out, "- **error:** {}", cell(&error.message));
    }
    out
}
