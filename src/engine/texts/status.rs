//! The status comment, in its three forms: the status of a managed issue, the refusal of
//! a trigger label applied by someone who may not start agents, and the note left when an
//! issue leaves management. All three carry [`STATUS_MARKER`], so each replaces the other.
//! Nothing here reads a clock: a status that has not changed renders the same, so it is
//! never edited again.

use std::fmt::Write;

use super::{STATUS_MARKER, one_line, plural};
use crate::domain::{Actor, IssueStatus};
use crate::engine::status::{BlockerView, QUEUE_POSITIONS_SHOWN, StatusView, WorkState};

/// The status comment's Markdown, marker included. `command` is the command prefix.
pub fn status_comment(view: &StatusView, command: &str) -> String {
    let mut out = String::with_capacity(1024);
    let _ = writeln!(out, "{STATUS_MARKER}");
    let _ = writeln!(
        out,
        "### {} codegen-orchestrator: **{}**\n",
        emoji(view.state),
        view.state.name()
    );
    let _ = writeln!(out, "{}\n", headline(view));
    if let Some(start) = view.expected_start {
        let _ = writeln!(
            out,
            "🕒 Expected to start around {}.\n",
            utc(round_to_ten_minutes(start))
        );
    }
    if let Some(parent) = &view.parent {
        let _ = writeln!(out, "Part of {parent}.\n");
    }
    if let Some(attempt) = view.retry_after_discovery {
        let _ = writeln!(
            out,
            "🔁 Attempt {attempt} did not succeed while a prerequisite discovered during it was \
             open; a new attempt starts once it is done.\n"
        );
    }
    if let Some(cycle) = &view.cycle {
        let _ = writeln!(
            out,
            "⚠️ A dependency was refused because it would close a cycle: `{cycle}`. \
             Remove it (edit the body or `{command} unblock`) to let work continue.\n"
        );
    }
    if let Some(paused) = &view.paused {
        let _ = writeln!(out, "⏸️ Launching is paused: {paused}\n");
    }
    if view.unseen_blockers > 0 {
        let n = view.unseen_blockers as usize;
        let _ = writeln!(
            out,
            "🔒 GitHub lists {n} more open {} of this issue that the App cannot see (in \
             repositories it is not installed on). {} until {} closed; install the App \
             there to see {}.\n",
            plural(n, "blocker", "blockers"),
            plural(n, "It blocks", "They block"),
            plural(n, "it is", "they are"),
            plural(n, "it", "them"),
        );
    }
    if view.unseen_children > 0 {
        let n = view.unseen_children as usize;
        let _ = writeln!(
            out,
            "🔒 GitHub lists {n} more unfinished {} of this issue that the App cannot see. {} \
             until {} done; install the App there to see {}.\n",
            plural(n, "sub-issue", "sub-issues"),
            plural(n, "It blocks", "They block"),
            plural(n, "it is", "they are"),
            plural(n, "it", "them"),
        );
    }
    for (heading, sub_issues) in [("Sub-issues", true), ("Dependencies", false)] {
        let listed: Vec<_> = view
            .blockers
            .iter()
            .filter(|b| b.sub_issue == sub_issues)
            .collect();
        if listed.is_empty() {
            continue;
        }
        let _ = writeln!(out, "**{heading}**\n");
        for blocker in listed {
            blocker_line(&mut out, blocker);
        }
        out.push('\n');
    }
    if let Some(run) = &view.run {
        let _ = write!(out, "**Agent run** — attempt {}", run.attempt);
        if let Some(url) = &run.web_url {
            let _ = write!(out, " · [open the run]({url})");
        }
        if let (Some(start), Some(end)) = (run.started_at, run.finished_at) {
            let _ = write!(out, " · took {}", duration_text(end - start));
        } else if let Some(start) = run.started_at {
            let _ = write!(out, " · started {}", utc(start));
        }
        out.push('\n');
        if let Some(failure) = &run.failure {
            let _ = writeln!(out, "\nFailure: {}", one_line(failure));
        }
        out.push('\n');
    }
    let mut pulls: Vec<&String> = view.pull_requests.iter().collect();
    if let Some(run) = &view.run {
        pulls.extend(
            run.pull_requests
                .iter()
                .filter(|pr| !view.pull_requests.contains(pr)),
        );
    }
    if !pulls.is_empty() {
        let _ = writeln!(out, "**Pull requests**\n");
        for pr in pulls {
            let _ = writeln!(out, "- {pr}");
        }
        out.push('\n');
    }
    for note in &view.notes {
        let _ = writeln!(out, "ℹ️ {note}\n");
    }
    out.push_str("<sub>");
    applicable_commands(&mut out, view.state, command);
    out.push_str("</sub>\n");
    out
}

/// One blocker's line, written to `out`: ticked when it no longer blocks, its state, its
/// pull requests, and the attempt during which it was discovered. (Written in place: a
/// status is rendered at every change of what it shows, many times per launch.)
fn blocker_line(out: &mut String, blocker: &BlockerView) {
    let tick = if blocker.satisfied { "x" } else { " " };
    let _ = write!(out, "- [{tick}] {}", blocker.issue);
    if let Some(title) = blocker.title.as_deref() {
        let _ = write!(out, " {}", one_line(title));
    }
    let _ = write!(out, " — {}", describe(blocker.state));
    for pr in &blocker.pull_requests {
        let _ = write!(out, " · PR {pr}");
    }
    if let Some(attempt) = blocker.discovered_in {
        let _ = write!(out, " · discovered while attempt {attempt} ran");
    }
    out.push('\n');
}

/// The status comment of an issue whose trigger label `label` was applied by `actor`, who
/// cannot start agents. `command` is the command prefix.
pub fn label_refusal(label: &str, actor: &Actor, command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{STATUS_MARKER}");
    let _ = writeln!(out, "### 🚫 codegen-orchestrator: **not started**\n");
    let who = actor_name(actor);
    let why = match actor {
        Actor::Person(_) => {
            "who cannot start agents (write, maintain or admin permission on the repository is needed)"
        }
        Actor::App { .. } => {
            "which cannot start agents (only Apps listed in `orchestrator.trusted_apps` can)"
        }
        Actor::Unknown => "which cannot start agents",
    };
    let _ = writeln!(out, "The `{label}` label was added by {who}, {why}.\n");
    let _ = writeln!(
        out,
        "Nothing runs for this issue until someone with write access adds the `{label}` label \
         again or comments `{command} run`."
    );
    out
}

/// How an actor is named to users: `@login`, `the App slug`, or "an account GitHub no
/// longer knows". The bot also stores it to say a refusal only once per actor, so a change
/// here makes every refusal be said once more.
pub fn actor_name(actor: &Actor) -> String {
    match actor {
        Actor::Person(user) => format!("@{}", user.login),
        Actor::App { app: Some(app), .. } if !app.slug.is_empty() => {
            format!("the App `{}`", app.slug)
        }
        Actor::App { login, .. } => format!("the bot `{login}`"),
        Actor::Unknown => "an account GitHub no longer knows".to_owned(),
    }
}

/// The status comment of an issue that left management; `status` is its issue state when
/// known (closed as not planned and deleted say so, anything else means the trigger label
/// was removed).
pub fn left_management(status: Option<IssueStatus>) -> String {
    let why = match status {
        Some(IssueStatus::ClosedNotPlanned) => "it was closed as not planned",
        Some(IssueStatus::Deleted) => "it was deleted or moved",
        _ => "the trigger label was removed",
    };
    format!(
        "{STATUS_MARKER}\n### codegen-orchestrator: not managed\n\nThis issue is no longer managed: {why}.\n"
    )
}

fn emoji(state: WorkState) -> &'static str {
    match state {
        WorkState::Blocked => "⏸️",
        WorkState::Queued => "⏳",
        WorkState::Running => "🤖",
        WorkState::Done => "✅",
        WorkState::Failed => "❌",
    }
}

fn headline(view: &StatusView) -> String {
    let umbrella = if view.umbrella {
        " It has no agent of its own: it is closed once its sub-issues are done."
    } else {
        ""
    };
    match view.state {
        WorkState::Blocked => {
            let open = |sub_issue: bool| {
                view.blockers
                    .iter()
                    .filter(|b| !b.satisfied && b.sub_issue == sub_issue)
                    .count()
            };
            let children = open(true) + view.unseen_children as usize;
            let dependencies = open(false) + view.unseen_blockers as usize;
            let mut waiting = Vec::new();
            if children > 0 {
                waiting.push(format!(
                    "{children} {}",
                    plural(children, "sub-issue", "sub-issues")
                ));
            }
            if dependencies > 0 {
                waiting.push(format!(
                    "{dependencies} {}",
                    plural(dependencies, "dependency", "dependencies")
                ));
            }
            if waiting.is_empty() {
                "Held back until the dependency cycle is resolved.".to_owned()
            } else {
                format!("Waiting for {}.{umbrella}", waiting.join(" and "))
            }
        }
        WorkState::Done if view.umbrella => "Done: every sub-issue is done.".to_owned(),
        WorkState::Queued => match view.queue_position {
            Some(position) if position <= QUEUE_POSITIONS_SHOWN => {
                format!("Ready; number {position} in the queue for a free agent.")
            }
            Some(_) => format!(
                "Ready; in the queue for a free agent, behind the first {QUEUE_POSITIONS_SHOWN}."
            ),
            None => "Ready; waiting for a free agent.".to_owned(),
        },
        WorkState::Running => "An agent is working on this issue.".to_owned(),
        WorkState::Done => "Done.".to_owned(),
        WorkState::Failed => {
            "The last attempt did not succeed; dependents stay blocked.".to_owned()
        }
    }
}

/// The commands that make sense in `state`, so the footer never offers `retry` to a
/// running issue.
fn applicable_commands(out: &mut String, state: WorkState, command: &str) {
    let verbs: &[&str] = match state {
        WorkState::Blocked | WorkState::Queued => {
            &["status", "depends on #N", "unblock #N", "graph"]
        }
        WorkState::Running => &["cancel", "status", "graph"],
        WorkState::Done => &["status", "graph"],
        WorkState::Failed => &["retry", "status", "graph"],
    };
    out.push_str("Commands: ");
    for verb in verbs {
        let _ = write!(out, "`{command} {verb}` · ");
    }
    let _ = write!(out, "`{command} help`");
}

fn describe(state: IssueStatus) -> &'static str {
    match state {
        IssueStatus::Open => "open",
        IssueStatus::ClosedCompleted => "closed as completed",
        IssueStatus::ClosedNotPlanned => "closed as not planned: still blocks",
        IssueStatus::Deleted => "deleted: still blocks",
        IssueStatus::Unknown => "not found or not accessible: still blocks",
    }
}

/// Rounded to the minute: the comment is rewritten only when the run ends, so seconds
/// would be noise.
fn duration_text(ms: i64) -> String {
    let minutes = (ms.max(0) + 30_000) / 60_000;
    if minutes < 60 {
        format!("{minutes} min")
    } else {
        format!("{} h {} min", minutes / 60, minutes % 60)
    }
}

/// The nearest ten minutes: a forecast is no finer than that, and a comment that names
/// the minute would look more certain than it is.
pub(super) fn round_to_ten_minutes(ms: i64) -> i64 {
    const TEN: i64 = 600_000;
    (ms + TEN / 2).div_euclid(TEN) * TEN
}

pub(super) fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
