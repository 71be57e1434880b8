//! Views of a plan, a drift report and an apply report: Terraform-like text, versioned JSON,
//! and Markdown for pull-request comments. All built from the same typed model, sorted by
//! address so output is deterministic.

use std::fmt::Write as _;

use super::shift::{Shift, Tag, shifts};
use super::style;
use crate::apply::{ApplyReport, Status};
use crate::model::{Address, Grantee};
use crate::plan::{Action, Change, Finding, Plan, Resource};

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
    }
}

fn paint(action: Action, text: &str) -> String {
    match action {
        Action::Create => style::added(text),
        Action::Update | Action::Replace => style::changed(text),
        Action::Delete => style::removed(text),
    }
}

/// A lifetime in the largest unit that states it exactly: "90 days", "10 minutes".
fn lifetime(seconds: u64) -> String {
    let units = [(86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second")];
    let (count, unit) = units
        .iter()
        .find(|(size, _)| seconds >= *size && seconds.is_multiple_of(*size))
        .map_or((seconds, "second"), |(size, unit)| (seconds / size, *unit));
    if count == 1 { format!("1 {unit}") } else { format!("{count} {unit}s") }
}

fn describe(change: &Change) -> String {
    match &change.resource {
        Resource::RoleAssignment { role_name, cluster, registry, spec, .. } => {
            let condition = if spec.condition.is_some() { " (repository condition)" } else { "" };
            match &change.address {
                Address::RoleAssignment { grantee: Grantee::Principal(principal), .. } => {
                    format!("{role_name}{condition} for principal {principal} (no cluster in the fleet) on {registry}")
                }
                _ => format!(
                    "{role_name}{condition} for the kubelet identity {} of {cluster} on {registry}",
                    spec.principal_id
                ),
            }
        }
        Resource::Namespace { cluster, name } => format!("namespace {name} in cluster {}", cluster.key),
        Resource::ScopeMap { registry, actions, .. } => {
            format!("ACR scope map on {registry}: {}", actions.join(", "))
        }
        Resource::RegistryToken { registry, scope_map_id, generate, .. } => {
            let map = scope_map_id.rsplit('/').next().unwrap_or_default();
            match generate {
                Some(g) => format!(
                    "ACR token on {registry} (scope map {map}); new password in {}, valid {}",
                    g.slot,
                    lifetime(g.ttl_seconds)
                ),
                None => format!("ACR token on {registry} (scope map {map})"),
            }
        }
        Resource::PullSecret { cluster, namespace, entries, sensitive_change, .. } => {
            if entries.is_empty() {
                return format!("pull Secret in {}/{namespace}", cluster.key);
            }
            let registries: Vec<String> = entries
                .iter()
                .map(|e| {
                    let kind = match &e.credential {
                        crate::plan::CredentialPlan::Admin { .. } => "admin",
                        crate::plan::CredentialPlan::RegistryToken { .. } => "token",
                        crate::plan::CredentialPlan::ServicePrincipal { .. } => "service principal",
                    };
                    format!("{} ({kind})", e.login_server)
                })
                .collect();
            let sensitive = if *sensitive_change { " (sensitive value changed)" } else { "" };
            format!("pull Secret in {}/{namespace} for {}{sensitive}", cluster.key, registries.join(", "))
        }
        Resource::ServiceAccountPullSecrets { cluster, namespace, name, add, remove } => {
            let mut parts = Vec::new();
            if !add.is_empty() {
                parts.push(format!("+ {}", add.join(", ")));
            }
            if !remove.is_empty() {
                parts.push(format!("- {}", remove.join(", ")));
            }
            format!("imagePullSecrets of {}/{namespace}/{name}: {}", cluster.key, parts.join("; "))
        }
    }
}

/// The fields an in-place change changes, old → new; multi-line values as a line diff.
fn shift_text(out: &mut String, change: &Change, indent: &str) {
    let (Some(before), Some(after)) = (&change.before, &change.after) else { return };
    for shift in shifts(before, after) {
        match shift {
            Shift::One { name, before, after } => {
                let _ = writeln!(out, "{indent}{name}: {} → {}", style::removed(&before), style::added(&after));
            }
            Shift::Lines { name, lines } => {
                let _ = writeln!(out, "{indent}{name}:");
                for (tag, line) in lines {
                    let line = match tag {
                        Tag::Same => format!("    {line}"),
                        Tag::Removed => style::removed(&format!("  - {line}")),
                        Tag::Added => style::added(&format!("  + {line}")),
                        Tag::Gap => style::dim("    ⋯"),
                    };
                    let _ = writeln!(out, "{indent}{line}");
                }
            }
        }
    }
}

/// The same as a `diff` code block, folded under the change's address.
fn shift_markdown(out: &mut String, change: &Change) {
    let (Some(before), Some(after)) = (&change.before, &change.after) else { return };
    let shifts = shifts(before, after);
    if shifts.is_empty() {
        return;
    }
    let _ = writeln!(out, "<details><summary><code>{}</code> changes</summary>\n\n```diff", change.address);
    for shift in shifts {
        match shift {
            Shift::One { name, before, after } => {
                let _ = writeln!(out, "- {name}: {before}\n+ {name}: {after}");
            }
            Shift::Lines { name, lines } => {
                let _ = writeln!(out, "  {name}:");
                for (tag, line) in lines {
                    let _ = match tag {
                        Tag::Same => writeln!(out, "      {line}"),
                        Tag::Removed => writeln!(out, "-     {line}"),
                        Tag::Added => writeln!(out, "+     {line}"),
                        Tag::Gap => writeln!(out, "      ⋯"),
                    };
                }
            }
        }
    }
    out.push_str("```\n\n</details>\n\n");
}

/// How plan output heads bindings acrlink cannot satisfy: errors, though apply does the rest.
const BLOCKED_ERRORS: &str = "Errors: bindings acrlink cannot satisfy (apply does everything else):";

pub fn summary_line(plan: &Plan) -> String {
    // Without live state there is no plan to count: "0 to add" would read as "nothing to do".
    if plan.changes.is_empty() && !plan.errors.is_empty() {
        return format!("No plan: {} error(s) must be fixed first.", plan.errors.len());
    }
    format!(
        "Plan: {} to add, {} to change, {} to destroy.",
        plan.summary.add, plan.summary.change, plan.summary.destroy
    )
}

fn findings(out: &mut String, title: &str, items: &[Finding], error: bool) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", style::bold(title));
    for item in items {
        let mark = if error { style::error("✗") } else { style::warning("!") };
        let _ = writeln!(out, "  {mark} {}: {}", item.subject, item.message);
        if let Some(hint) = &item.hint {
            let _ = writeln!(out, "      {} {hint}", style::hint("hint:"));
        }
    }
    out.push('\n');
}

pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.changes.is_empty() && plan.errors.is_empty() && plan.blocked.is_empty() {
        let _ = writeln!(out, "{} The live fleet matches {}.", style::success("No changes."), plan.config_path);
    } else if !plan.changes.is_empty() {
        let _ = writeln!(out, "acrlink will perform the following actions:\n");
        for change in &plan.changes {
            let _ = writeln!(
                out,
                "  {} {}",
                paint(change.action, symbol(change.action)),
                style::bold(&change.address.to_string())
            );
            let _ = writeln!(out, "      {}", describe(change));
            let _ =
                writeln!(out, "      {}", style::dim(&format!("reason: {}", super::reason::reason(&change.reason))));
            shift_text(&mut out, change, "      ");
        }
        out.push('\n');
    }
    if !plan.unchanged.is_empty() {
        let _ = writeln!(out, "{}", style::dim(&format!("{} already in place:", plan.unchanged.len())));
        for item in &plan.unchanged {
            let _ = writeln!(
                out,
                "  {} {} {}",
                style::dim("="),
                item.address,
                style::dim(&format!("({})", super::reason::in_place(&item.reason)))
            );
        }
        out.push('\n');
    }
    findings(&mut out, "Warnings:", &plan.warnings, false);
    findings(&mut out, "Errors (apply refuses this plan until they are fixed):", &plan.errors, true);
    findings(&mut out, BLOCKED_ERRORS, &plan.blocked, true);
    let _ = writeln!(out, "{}", style::bold(&summary_line(plan)));
    out
}

pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"
}

pub fn markdown(plan: &Plan) -> String {
    let mut out = String::from("### acrlink plan\n\n");
    let _ = writeln!(out, "**{}**\n", summary_line(plan));
    if !plan.changes.is_empty() {
        out.push_str("| | Resource | What | Why |\n|---|---|---|---|\n");
        for change in &plan.changes {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} |",
                symbol(change.action),
                change.address,
                cell(&describe(change)),
                cell(&super::reason::reason(&change.reason))
            );
        }
        out.push('\n');
        for change in &plan.changes {
            shift_markdown(&mut out, change);
        }
    } else if plan.errors.is_empty() && plan.blocked.is_empty() {
        let _ = writeln!(out, "No changes: the live fleet matches `{}`.\n", plan.config_path);
    }
    if !plan.unchanged.is_empty() {
        let _ = writeln!(out, "<details><summary>{} already in place</summary>\n", plan.unchanged.len());
        for item in &plan.unchanged {
            let _ = writeln!(out, "- `{}`: {}", item.address, cell(&super::reason::in_place(&item.reason)));
        }
        out.push_str("\n</details>\n\n");
    }
    markdown_findings(&mut out, plan);
    out
}

/// Errors first (they block), then unmet bindings, then warnings, each with its hint.
fn markdown_findings(out: &mut String, plan: &Plan) {
    let blocked = "Blocked: bindings acrlink cannot satisfy";
    for (title, items) in [("Errors", &plan.errors), (blocked, &plan.blocked), ("Warnings", &plan.warnings)] {
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "**{title}**\n");
        for item in items {
            let _ = writeln!(out, "- `{}`: {}", item.subject, cell(&item.message));
            if let Some(hint) = &item.hint {
                let _ = writeln!(out, "  - hint: {}", cell(hint));
            }
        }
        out.push('\n');
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Drift: what changed outside acrlink, phrased as missing / changed / extra.
pub fn drift_text(plan: &Plan) -> String {
    let mut out = String::new();
    findings(&mut out, "Blocked: bindings acrlink cannot satisfy:", &plan.blocked, true);
    if plan.changes.is_empty() && plan.errors.is_empty() && plan.blocked.is_empty() {
        let _ = writeln!(out, "{} The live fleet matches {}.", style::success("No drift."), plan.config_path);
    } else if !plan.changes.is_empty() {
        let _ = writeln!(out, "{} live state differs from {}:\n", style::warning("Drift detected:"), plan.config_path);
        for change in &plan.changes {
            let kind = match change.action {
                Action::Create => "missing",
                Action::Update | Action::Replace => "changed",
                Action::Delete => "extra",
            };
            let _ = writeln!(
                out,
                "  {} {} {}",
                paint(change.action, &format!("{kind:>7}")),
                style::bold(&change.address.to_string()),
                describe(change)
            );
            shift_text(&mut out, change, "          ");
        }
        out.push('\n');
        let _ = writeln!(out, "Run `acrlink apply` to repair it.");
    }
    findings(&mut out, "Warnings:", &plan.warnings, false);
    findings(&mut out, "Errors:", &plan.errors, true);
    out
}

#[derive(serde::Serialize)]
struct DriftJson<'a> {
    format_version: u32,
    drift: bool,
    missing: Vec<&'a Change>,
    changed: Vec<&'a Change>,
    extra: Vec<&'a Change>,
    /// Bindings acrlink cannot satisfy: drift too, though no change repairs them.
    blocked: &'a [Finding],
    warnings: &'a [Finding],
    errors: &'a [Finding],
}

pub fn drift_json(plan: &Plan) -> String {
    let pick = |action| plan.changes.iter().filter(|c| c.action == action).collect();
    let document = DriftJson {
        format_version: 1,
        drift: plan.has_changes() || !plan.blocked.is_empty(),
        missing: pick(Action::Create),
        changed: plan.changes.iter().filter(|c| matches!(c.action, Action::Update | Action::Replace)).collect(),
        extra: pick(Action::Delete),
        blocked: &plan.blocked,
        warnings: &plan.warnings,
        errors: &plan.errors,
    };
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

pub fn drift_markdown(plan: &Plan) -> String {
    let mut out = String::from("### acrlink drift\n\n");
    if plan.changes.is_empty() && plan.errors.is_empty() && plan.blocked.is_empty() {
        out.push_str("No drift.\n\n");
    } else if plan.changes.is_empty() && !plan.errors.is_empty() {
        let _ = writeln!(out, "Drift could not be checked: {} error(s) below.\n", plan.errors.len());
    } else if !plan.changes.is_empty() {
        out.push_str("| Kind | Resource | What |\n|---|---|---|\n");
        for change in &plan.changes {
            let kind = match change.action {
                Action::Create => "missing",
                Action::Update | Action::Replace => "changed",
                Action::Delete => "extra",
            };
            let _ = writeln!(out, "| {kind} | `{}` | {} |", change.address, cell(&describe(change)));
        }
        out.push('\n');
        for change in &plan.changes {
            shift_markdown(&mut out, change);
        }
    }
    markdown_findings(&mut out, plan);
    out
}

pub fn outcome_line(outcome: &crate::apply::Outcome) -> String {
    let mark = match outcome.status {
        Status::Created
        | Status::Updated
        | Status::Replaced
        | Status::Deleted
        | Status::Adopted
        | Status::AlreadyGone => style::success("✓"),
        Status::Failed => style::error("✗"),
        Status::Skipped | Status::NotStarted => style::warning("-"),
    };
    let mut line = format!("{mark} {} {}", outcome.address, outcome.message);
    if let Some(hint) = &outcome.hint {
        let _ = write!(line, "\n    {} {hint}", style::hint("hint:"));
    }
    line
}

/// "Apply complete: N added, …; N failed, N skipped."
fn apply_summary(report: &ApplyReport) -> String {
    let count = |status: Status| report.outcomes.iter().filter(|o| o.status == status).count();
    let (head, tail) = if report.interrupted() {
        ("Apply interrupted", format!("; {} not started", report.not_started()))
    } else {
        ("Apply complete", String::new())
    };
    format!(
        "{head}: {} added, {} changed, {} destroyed, {} adopted; {} failed, {} skipped{tail}.",
        count(Status::Created) + count(Status::Replaced),
        count(Status::Updated),
        count(Status::Deleted) + count(Status::AlreadyGone) + count(Status::Replaced),
        count(Status::Adopted),
        report.failed(),
        report.skipped()
    )
}

/// The report on stdout: every change already streamed to stderr as it landed, so only what
/// needs attention is repeated here, then the summary.
pub fn apply_text(report: &ApplyReport) -> String {
    let mut out = String::new();
    let attention =
        |o: &&crate::apply::Outcome| matches!(o.status, Status::Failed | Status::Skipped | Status::NotStarted);
    for outcome in report.outcomes.iter().filter(attention) {
        let _ = writeln!(out, "{}", outcome_line(outcome));
    }
    let line = apply_summary(report);
    let line = if report.failed() > 0 || report.interrupted() { style::error(&line) } else { style::success(&line) };
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{line}");
    out
}

/// The report for a pull request or a job summary: the totals, then every outcome.
pub fn apply_markdown(report: &ApplyReport) -> String {
    let mut out = String::from("### acrlink apply\n\n");
    let _ = writeln!(out, "**{}**\n", apply_summary(report));
    if report.outcomes.is_empty() {
        return out;
    }
    out.push_str("| | Resource | Outcome |\n|---|---|---|\n");
    for outcome in &report.outcomes {
        let mark = match outcome.status {
            Status::Failed => "✗",
            Status::Skipped | Status::NotStarted => "-",
            _ => "✓",
        };
        let mut what = cell(&outcome.message);
        if let Some(hint) = &outcome.hint {
            what.push_str(&format!(" (hint: {})", cell(hint)));
        }
        let _ = writeln!(out, "| {mark} | `{}` | {what} |", outcome.address);
    }
    out
}

pub fn apply_json(report: &ApplyReport) -> String {
    let document = serde_json::json!({
        "format_version": 1,
        "succeeded": report.succeeded(),
        "failed": report.failed(),
        "skipped": report.skipped(),
        "not_started": report.not_started(),
        "interrupted": report.interrupted(),
        "outcomes": report.outcomes,
    });
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_plan() -> Plan {
        Plan {
            format_version: crate::plan::PLAN_FORMAT_VERSION,
            acrlink_version: String::new(),
            config_path: "acrlink.toml".into(),
            config_digest: String::new(),
            owner: "default".into(),
            summary: Plan::summarize(&[]),
            changes: Vec::new(),
            unchanged: Vec::new(),
            warnings: vec![Finding { subject: "w".into(), message: "worth knowing".into(), hint: Some("look".into()) }],
            errors: vec![Finding {
                subject: "clusters.aks9".into(),
                message: "AKS cluster aks9 was not found".into(),
                hint: Some("check name, resource_group and subscription_id".into()),
            }],
            blocked: Vec::new(),
        }
    }

    #[test]
    fn apply_reports_in_markdown_list_every_outcome_with_its_hint() {
        use crate::apply::{Outcome, Status};
        let outcome = |address: &str, status, hint: Option<&str>| Outcome {
            address: address.parse().unwrap(),
            action: crate::plan::Action::Create,
            status,
            message: format!("{status:?}"),
            hint: hint.map(str::to_string),
        };
        let report = ApplyReport {
            outcomes: vec![
                outcome("secret[a/b/c]", Status::Created, None),
                outcome("secret[a/b/d]", Status::Failed, Some("grant the rights")),
                outcome("service_account[a/b/default]", Status::Skipped, None),
            ],
        };
        let text = apply_markdown(&report);
        assert!(text.starts_with("### acrlink apply"), "{text}");
        for expected in ["`secret[a/b/c]`", "`secret[a/b/d]`", "grant the rights", "1 failed, 1 skipped"] {
            assert!(text.contains(expected), "{expected}:\n{text}");
        }
        assert!(!text.contains('\u{1b}'), "{text}");
    }

    #[test]
    fn a_plan_that_could_not_read_live_state_prints_no_plan_summary() {
        let plan = failed_plan();
        for text in [anstream::adapter::strip_str(&text(&plan)).to_string(), markdown(&plan)] {
            assert!(!text.contains("Plan: 0 to add"), "{text}");
            assert!(text.contains("1 error"), "{text}");
        }
    }

    #[test]
    fn markdown_carries_every_error_warning_and_hint_and_never_says_all_is_well_beside_them() {
        let plan = failed_plan();
        for (format, text) in [("plan", markdown(&plan)), ("drift", drift_markdown(&plan))] {
            for expected in ["AKS cluster aks9 was not found", "check name, resource_group", "worth knowing", "look"] {
                assert!(text.contains(expected), "{format} lacks {expected:?}:\n{text}");
            }
            assert!(!text.contains("No changes") && !text.contains("No drift"), "{format}:\n{text}");
        }
    }

    #[test]
    fn token_lifetimes_shorter_than_a_day_are_not_shown_as_zero_days() {
        assert_eq!(lifetime(600), "10 minutes");
        assert_eq!(lifetime(7_776_000), "90 days");
        assert_eq!(lifetime(86_400), "1 day");
        assert_eq!(lifetime(7_200), "2 hours");
        assert_eq!(lifetime(3_700), "3700 seconds");
        assert_eq!(lifetime(1), "1 second");
    }
}
