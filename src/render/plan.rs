//! Views of a plan, a drift report and an apply report: Terraform-like text, versioned JSON,
//! and Markdown for pull-request comments. All built from the same typed model, sorted by
//! address so output is deterministic.

use std::collections::BTreeMap;
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
                Address::RoleAssignment { grantee: Grantee::ServicePrincipal(client_id), .. } => format!(
                    "{role_name}{condition} for the service principal of application {client_id} ({}) on {registry}",
                    spec.principal_id
                ),
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
fn shift_markdown(change: &Change) -> Option<String> {
    let (Some(before), Some(after)) = (&change.before, &change.after) else { return None };
    let shifts = shifts(before, after);
    if shifts.is_empty() {
        return None;
    }
    let mut out = String::new();
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
    Some(out)
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

/// What the human formats show besides the changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// List the resources already in place (by default only counted).
    pub show_unchanged: bool,
}

/// The plan as `plan` prints it by default.
pub fn text(plan: &Plan) -> String {
    text_with(plan, View::default())
}

pub fn text_with(plan: &Plan, view: View) -> String {
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
    unchanged_text(&mut out, plan, view);
    findings(&mut out, "Warnings:", &plan.warnings, false);
    findings(&mut out, "Errors (apply refuses this plan until they are fixed):", &plan.errors, true);
    findings(&mut out, BLOCKED_ERRORS, &plan.blocked, true);
    let _ = writeln!(out, "{}", style::bold(&summary_line(plan)));
    out
}

/// The resources already in place: listed with `--show-unchanged`, else only counted.
fn unchanged_text(out: &mut String, plan: &Plan, view: View) {
    if plan.unchanged.is_empty() {
        return;
    }
    if !view.show_unchanged {
        let _ = writeln!(out, "{}\n", style::dim(&hidden_unchanged(plan.unchanged.len())));
        return;
    }
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

fn hidden_unchanged(count: usize) -> String {
    format!("… and {count} unchanged (--show-unchanged lists them)")
}

pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"
}

/// The plan as `plan --format markdown` prints it by default.
pub fn markdown(plan: &Plan) -> String {
    markdown_with(plan, View::default())
}

/// A pull-request comment: the totals, a table per cluster (or registry), then the details
/// folded, all within GitHub's comment limit; errors, blocked bindings and warnings always.
pub fn markdown_with(plan: &Plan, view: View) -> String {
    let mut head = String::from("### acrlink plan\n\n");
    let _ = writeln!(head, "**{}**\n", summary_line(plan));
    let mut tail = String::new();
    markdown_findings(&mut tail, plan);
    let mut body = Folded::new(&head, &tail);
    if !plan.changes.is_empty() {
        body.groups(plan, Columns::Plan);
        let rows = plan.changes.iter().map(|change| {
            format!(
                "| `{}` | `{}` | {} | {} |\n",
                symbol(change.action),
                change.address,
                cell(&describe(change)),
                cell(&super::reason::reason(&change.reason))
            )
        });
        body.folded_table(&changes_title(plan.changes.len()), "| | Resource | What | Why |\n|---|---|---|---|\n", rows);
        body.shifts(plan);
    } else if plan.errors.is_empty() && plan.blocked.is_empty() {
        let _ = writeln!(body.out, "No changes: the live fleet matches `{}`.\n", plan.config_path);
    }
    body.unchanged(plan, view);
    head + &body.out + &tail
}

fn changes_title(count: usize) -> String {
    if count == 1 { "1 change".into() } else { format!("{count} changes") }
}

/// GitHub refuses a comment longer than this many characters; bytes, counted here, are never
/// fewer.
pub const MARKDOWN_LIMIT: usize = 65_536;

/// Room kept for the notices that say what was left out.
const NOTICE_ROOM: usize = 1_024;

/// What a summary table counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Columns {
    Plan,
    Drift,
}

/// The body of a Markdown report, filled section by section while it fits: whatever does
/// not fit is counted in a notice instead.
struct Folded {
    out: String,
    room: usize,
}

impl Folded {
    fn new(head: &str, tail: &str) -> Folded {
        Folded { out: String::new(), room: MARKDOWN_LIMIT.saturating_sub(head.len() + tail.len() + NOTICE_ROOM) }
    }

    /// Adds `text` if it fits; once something does not, nothing more is added.
    fn fits(&mut self, text: &str) -> bool {
        if text.len() > self.room {
            self.room = 0;
            return false;
        }
        self.room -= text.len();
        self.out.push_str(text);
        true
    }

    /// A table of the items' rows as far as they fit, then how many were left out.
    fn rows(&mut self, header: &str, rows: impl ExactSizeIterator<Item = String>, left_out: &str) {
        let total = rows.len();
        if !self.fits(header) {
            let _ = writeln!(self.out, "_{total} {left_out} not shown: the comment would be too long._\n");
            return;
        }
        let mut shown = 0;
        for row in rows {
            if !self.fits(&row) {
                break;
            }
            shown += 1;
        }
        if shown < total {
            let _ = writeln!(
                self.out,
                "\n_… and {} more {left_out}, left out to keep the comment under {MARKDOWN_LIMIT} characters (`--format json` has them all)._",
                total - shown
            );
        }
        self.out.push('\n');
    }

    fn folded_table(&mut self, title: &str, header: &str, rows: impl ExactSizeIterator<Item = String>) {
        let _ = write!(self.out, "<details><summary>{title}</summary>\n\n");
        self.rows(header, rows, "rows");
        self.out.push_str("</details>\n\n");
    }

    /// A row per cluster (or registry, for ACR objects) with changes, with its counts.
    fn groups(&mut self, plan: &Plan, columns: Columns) {
        let mut groups: BTreeMap<String, [usize; 4]> = BTreeMap::new();
        for change in &plan.changes {
            let counts = groups.entry(group(&change.address)).or_default();
            match (change.action, columns) {
                (Action::Create, _) => counts[0] += 1,
                (Action::Update, _) | (Action::Replace, Columns::Drift) => counts[1] += 1,
                (Action::Replace, Columns::Plan) => {
                    counts[0] += 1;
                    counts[2] += 1;
                }
                (Action::Delete, _) => counts[2] += 1,
            }
        }
        for item in &plan.unchanged {
            if let Some(counts) = groups.get_mut(&group(&item.address)) {
                counts[3] += 1;
            }
        }
        let header = match columns {
            Columns::Plan => {
                "| Cluster / registry | To add | To change | To destroy | Unchanged |\n|---|---|---|---|---|\n"
            }
            Columns::Drift => "| Cluster / registry | Missing | Changed | Extra | In place |\n|---|---|---|---|---|\n",
        };
        let rows = groups.into_iter().map(|(name, [a, b, c, d])| format!("| {name} | {a} | {b} | {c} | {d} |\n"));
        // At most half the room: the details that follow get the rest.
        let kept = self.room / 2;
        self.room -= kept;
        self.rows(header, rows.collect::<Vec<_>>().into_iter(), "clusters and registries");
        self.room += kept;
    }

    /// What each in-place change changes, folded per change, as far as it fits.
    fn shifts(&mut self, plan: &Plan) {
        let blocks: Vec<String> = plan.changes.iter().filter_map(shift_markdown).collect();
        let total = blocks.len();
        let shown = blocks.iter().take_while(|block| self.fits(block)).count();
        if shown < total {
            let _ = writeln!(
                self.out,
                "_… and {} more in-place change(s) whose fields are not shown here (`--format json` has them)._\n",
                total - shown
            );
        }
    }

    /// The resources already in place: folded with `--show-unchanged`, else only counted.
    fn unchanged(&mut self, plan: &Plan, view: View) {
        if plan.unchanged.is_empty() {
            return;
        }
        if !view.show_unchanged {
            let _ = writeln!(self.out, "_{}_\n", hidden_unchanged(plan.unchanged.len()));
            return;
        }
        let _ = write!(self.out, "<details><summary>{} already in place</summary>\n\n", plan.unchanged.len());
        let rows = plan
            .unchanged
            .iter()
            .map(|item| format!("- `{}`: {}\n", item.address, cell(&super::reason::in_place(&item.reason))));
        self.rows("", rows, "resources in place");
        self.out.push_str("</details>\n\n");
    }
}

/// The cluster (or, for ACR objects, the registry) a change belongs to, for summary tables.
fn group(address: &Address) -> String {
    match address {
        Address::Cluster(key)
        | Address::RoleAssignment { grantee: Grantee::Cluster(key), .. }
        | Address::Namespace { cluster: key, .. }
        | Address::Secret { cluster: key, .. }
        | Address::ServiceAccount { cluster: key, .. } => format!("`{key}`"),
        Address::RoleAssignment { grantee: Grantee::Principal(id), .. } => format!("principal `{id}` (no cluster)"),
        Address::RoleAssignment { grantee: Grantee::ServicePrincipal(client_id), .. } => {
            format!("service principal `{client_id}`")
        }
        Address::Registry(registry) | Address::RegistryToken { registry, .. } | Address::ScopeMap { registry, .. } => {
            format!("registry `{registry}`")
        }
    }
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

fn drift_kind(action: Action) -> &'static str {
    match action {
        Action::Create => "missing",
        Action::Update | Action::Replace => "changed",
        Action::Delete => "extra",
    }
}

/// Drift as `drift` prints it by default.
pub fn drift_text(plan: &Plan) -> String {
    drift_text_with(plan, View::default())
}

/// Drift: what changed outside acrlink, phrased as missing / changed / extra.
pub fn drift_text_with(plan: &Plan, view: View) -> String {
    let mut out = String::new();
    findings(&mut out, "Blocked: bindings acrlink cannot satisfy:", &plan.blocked, true);
    if plan.changes.is_empty() && plan.errors.is_empty() && plan.blocked.is_empty() {
        let _ = writeln!(out, "{} The live fleet matches {}.", style::success("No drift."), plan.config_path);
    } else if !plan.changes.is_empty() {
        let _ = writeln!(out, "{} live state differs from {}:\n", style::warning("Drift detected:"), plan.config_path);
        for change in &plan.changes {
            let kind = drift_kind(change.action);
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
    if !plan.unchanged.is_empty() {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        unchanged_text(&mut out, plan, view);
    }
    findings(&mut out, "Warnings:", &plan.warnings, false);
    findings(&mut out, "Errors:", &plan.errors, true);
    out
}

/// `drift --format json`: what differs from the file, in three lists, plus what blocks a binding.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct DriftJson<'a> {
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

/// Drift as `drift --format markdown` prints it by default.
pub fn drift_markdown(plan: &Plan) -> String {
    drift_markdown_with(plan, View::default())
}

pub fn drift_markdown_with(plan: &Plan, view: View) -> String {
    let head = String::from("### acrlink drift\n\n");
    let mut tail = String::new();
    markdown_findings(&mut tail, plan);
    let mut body = Folded::new(&head, &tail);
    if plan.changes.is_empty() && plan.errors.is_empty() && plan.blocked.is_empty() {
        body.out.push_str("No drift.\n\n");
    } else if plan.changes.is_empty() && !plan.errors.is_empty() {
        let _ = writeln!(body.out, "Drift could not be checked: {} error(s) below.\n", plan.errors.len());
    } else if !plan.changes.is_empty() {
        body.groups(plan, Columns::Drift);
        let rows = plan.changes.iter().map(|change| {
            format!("| {} | `{}` | {} |\n", drift_kind(change.action), change.address, cell(&describe(change)))
        });
        body.folded_table(&changes_title(plan.changes.len()), "| Kind | Resource | What |\n|---|---|---|\n", rows);
        body.shifts(plan);
    }
    body.unchanged(plan, view);
    head + &body.out + &tail
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

/// `apply --format json`: what each change did; `errors` when the plan had errors and nothing
/// was changed.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ApplyJson<'a> {
    format_version: u32,
    succeeded: usize,
    failed: usize,
    skipped: usize,
    not_started: usize,
    interrupted: bool,
    outcomes: &'a [crate::apply::Outcome],
    errors: &'a [Finding],
}

pub fn apply_json(report: &ApplyReport) -> String {
    apply_json_with_errors(report, &[])
}

/// An apply refused for the plan's errors: JSON still, so a pipeline parsing it sees why.
pub fn apply_json_with_errors(report: &ApplyReport, errors: &[Finding]) -> String {
    let document = ApplyJson {
        format_version: 1,
        succeeded: report.succeeded(),
        failed: report.failed(),
        skipped: report.skipped(),
        not_started: report.not_started(),
        interrupted: report.interrupted(),
        outcomes: &report.outcomes,
        errors,
    };
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

/// The JSON Schemas of `drift --format json` and `apply --format json`.
pub fn drift_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(DriftJson<'static>)).unwrap_or_default()
}

pub fn apply_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ApplyJson<'static>)).unwrap_or_default()
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

    /// A fleet of `clusters` clusters with a grant each: the first `changed` of them are
    /// created, the rest already in place; every finding kind present once.
    fn fleet_plan(clusters: usize, changed: usize) -> Plan {
        use crate::model::{InPlace, Precondition, Reason};
        use crate::plan::{Marks, Unchanged};
        use crate::provider::RoleAssignmentSpec;
        let address = |i: usize| Address::role_assignment(&format!("aks-{i:05}"), "sharedacr");
        let changes: Vec<Change> = (0..changed)
            .map(|i| Change {
                address: address(i),
                action: Action::Create,
                reason: Reason::GrantMissing {
                    binding: "shared".into(),
                    cluster: format!("aks-{i:05}"),
                    registry: "sharedacr".into(),
                },
                precondition: Precondition::Absent,
                depends_on: Vec::new(),
                resource: Resource::RoleAssignment {
                    role_name: "AcrPull".into(),
                    cluster: format!("aks-{i:05}"),
                    registry: "sharedacr".into(),
                    spec: RoleAssignmentSpec {
                        scope: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/sharedacr".into(),
                        name: format!("{i:08}-0000-0000-0000-000000000000"),
                        role_definition_id: "/providers/Microsoft.Authorization/roleDefinitions/7f951dda".into(),
                        principal_id: format!("{i:08}-1111-1111-1111-111111111111"),
                        principal_type: "ServicePrincipal".into(),
                        description: String::new(),
                        condition: None,
                    },
                    marks: Marks::Write,
                },
                before: None,
                after: None,
            })
            .collect();
        let unchanged =
            (changed..clusters).map(|i| Unchanged { address: address(i), reason: InPlace::GrantedByAcrlink }).collect();
        let mut plan = failed_plan();
        plan.errors[0].subject = "clusters.aks-gone".into();
        plan.blocked = vec![Finding {
            subject: "secret[aks-00001/default/pull]".into(),
            message: "a Secret named pull already exists and was not made by acrlink".into(),
            hint: Some("set adopt = true".into()),
        }];
        plan.summary = Plan::summarize(&changes);
        plan.changes = changes;
        plan.unchanged = unchanged;
        plan
    }

    #[test]
    fn unchanged_resources_are_counted_by_default_and_listed_on_request() {
        let plan = fleet_plan(306, 1);
        for (format, default, shown) in [
            ("text", text(&plan), text_with(&plan, View { show_unchanged: true })),
            ("markdown", markdown(&plan), markdown_with(&plan, View { show_unchanged: true })),
            ("drift", drift_text(&plan), drift_text_with(&plan, View { show_unchanged: true })),
            ("drift markdown", drift_markdown(&plan), drift_markdown_with(&plan, View { show_unchanged: true })),
        ] {
            let default = anstream::adapter::strip_str(&default).to_string();
            assert!(default.contains("… and 305 unchanged"), "{format}:\n{default}");
            assert!(!default.contains("aks-00305"), "{format} lists an unchanged resource:\n{default}");
            assert!(default.lines().count() < 40, "{format}: {} lines", default.lines().count());
            let shown = anstream::adapter::strip_str(&shown).to_string();
            assert!(shown.contains("305 already in place") && shown.contains("aks-00305"), "{format}:\n{shown}");
        }
    }

    #[test]
    fn markdown_stays_under_the_comment_limit_however_large_the_fleet_and_keeps_every_finding() {
        for (clusters, changed) in [(50_000, 50_000), (50_000, 1), (3, 3)] {
            let plan = fleet_plan(clusters, changed);
            for view in [View::default(), View { show_unchanged: true }] {
                for (format, text) in
                    [("plan", markdown_with(&plan, view)), ("drift", drift_markdown_with(&plan, view))]
                {
                    assert!(text.len() < MARKDOWN_LIMIT, "{format} {clusters}/{changed}: {} characters", text.len());
                    for expected in [
                        "AKS cluster aks9 was not found",
                        "check name, resource_group",
                        "worth knowing",
                        "look",
                        "was not made by acrlink",
                        "set adopt = true",
                    ] {
                        assert!(text.contains(expected), "{format} {clusters}/{changed} lacks {expected:?}");
                    }
                    assert!(text.contains("<details>"), "{format}: the details are folded");
                    let truncated = text.contains("left out to keep the comment under");
                    assert_eq!(
                        truncated,
                        changed == 50_000 || (view.show_unchanged && clusters > 3),
                        "{format} {clusters}/{changed}"
                    );
                }
            }
        }
        let huge = markdown(&fleet_plan(50_000, 50_000));
        assert!(huge.contains("**Plan: 50000 to add, 0 to change, 0 to destroy.**"), "the totals count everything");
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
