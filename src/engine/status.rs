//! What a managed issue's status is, and the status comment that shows it. Pure: the
//! caller gathers the facts into a [`StatusView`]; [`render`] turns it into Markdown that
//! only changes when the facts do (no ticking clocks), so an unchanged status is never
//! edited again.

use std::fmt::Write;

use crate::domain::{IssueRef, IssueStatus};

/// The hidden marker the status comment is found by.
pub const STATUS_MARKER: &str = "<!-- codegen-orchestrator:status -->";

/// Where a managed issue stands; each has a state label `<prefix><name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkState {
    /// Waiting for blockers (or held back by a cycle).
    Blocked,
    /// Ready, waiting for a free agent.
    Queued,
    /// An agent is working on it.
    Running,
    /// Done: the agent succeeded, or the issue was closed as completed.
    Done,
    /// The last attempt failed, timed out or was cancelled.
    Failed,
}

impl WorkState {
    /// Every state, in label order.
    pub const ALL: [WorkState; 5] = [
        Self::Blocked,
        Self::Queued,
        Self::Running,
        Self::Done,
        Self::Failed,
    ];

    /// The state's name, as in labels and `projects.status_options`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// The state label: `codegen:` + name.
    pub fn label(self, prefix: &str) -> String {
        format!("{prefix}{}", self.name())
    }

    fn emoji(self) -> &'static str {
        match self {
            Self::Blocked => "⏸️",
            Self::Queued => "⏳",
            Self::Running => "🤖",
            Self::Done => "✅",
            Self::Failed => "❌",
        }
    }
}

/// Where an agent run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    /// Being created.
    Launching,
    /// Working.
    Running,
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed,
    /// Stopped after the run timeout.
    TimedOut,
    /// Stopped on request.
    Cancelled,
}

/// The latest run of an issue, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    /// Which attempt.
    pub attempt: u32,
    /// Where it stands.
    pub phase: RunPhase,
    /// The run's page.
    pub web_url: Option<String>,
    /// Pull requests it opened.
    pub pull_requests: Vec<String>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Unix ms it started.
    pub started_at: Option<i64>,
    /// Unix ms it ended.
    pub finished_at: Option<i64>,
}

/// A blocker as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockerView {
    /// Which issue.
    pub issue: IssueRef,
    /// Its title, when known.
    pub title: Option<String>,
    /// Its state.
    pub state: IssueStatus,
    /// Whether it no longer blocks.
    pub satisfied: bool,
    /// Pull requests linked to it.
    pub pull_requests: Vec<String>,
}

/// Everything the status comment shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusView {
    /// The issue.
    pub issue: IssueRef,
    /// Its state.
    pub state: WorkState,
    /// Its direct blockers.
    pub blockers: Vec<BlockerView>,
    /// 1-based place in the launch queue while queued.
    pub queue_position: Option<usize>,
    /// Its latest run.
    pub run: Option<RunView>,
    /// Pull requests that close it.
    pub pull_requests: Vec<String>,
    /// A refused dependency's cycle, when it is held back.
    pub cycle: Option<String>,
    /// Launching is paused (repository paused, or the Codegen quota is used up), and why.
    pub paused: Option<String>,
    /// Things to report once (a missing Projects field, an invalid repository file, ...).
    pub notes: Vec<String>,
    /// Open blockers GitHub counts that the App cannot read (in repositories it is not
    /// installed on): they block like any other.
    pub unseen_blockers: u32,
}

/// The state of a managed issue from its facts. `started`: the current attempt was
/// launched (a retry clears it, and the last run no longer decides).
pub fn work_state(
    status: IssueStatus,
    unsatisfied_blockers: usize,
    held: bool,
    started: bool,
    run: Option<&RunView>,
) -> WorkState {
    if status == IssueStatus::ClosedCompleted {
        return WorkState::Done;
    }
    if started {
        match run.map(|r| r.phase) {
            Some(RunPhase::Succeeded) => return WorkState::Done,
            Some(RunPhase::Failed | RunPhase::TimedOut | RunPhase::Cancelled) => {
                return WorkState::Failed;
            }
            // Launching, running, or launched and not yet recorded.
            _ => return WorkState::Running,
        }
    }
    if held || unsatisfied_blockers > 0 {
        WorkState::Blocked
    } else {
        WorkState::Queued
    }
}

/// The status comment's Markdown, marker included. `command` is the command prefix.
pub fn render(view: &StatusView, command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{STATUS_MARKER}");
    let _ = writeln!(
        out,
        "### {} codegen-orchestrator: **{}**\n",
        view.state.emoji(),
        view.state.name()
    );
    let _ = writeln!(out, "{}\n", headline(view));
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
    if !view.blockers.is_empty() {
        let _ = writeln!(out, "**Dependencies**\n");
        for blocker in &view.blockers {
            let tick = if blocker.satisfied { "x" } else { " " };
            let title = blocker
                .title
                .as_deref()
                .map(|t| format!(" {}", one_line(t)))
                .unwrap_or_default();
            let mut line = format!(
                "- [{tick}] {}{title} — {}",
                blocker.issue,
                describe(blocker.state)
            );
            for pr in &blocker.pull_requests {
                let _ = write!(line, " · PR {pr}");
            }
            let _ = writeln!(out, "{line}");
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
    let _ = writeln!(
        out,
        "<sub>{}</sub>",
        applicable_commands(view.state, command)
    );
    out
}

/// The status note for project boards GitHub refused the App (`FORBIDDEN`), so that their
/// `field` was not set: `named` the boards GitHub named, `unnamed` how many it hid
/// entirely, `reason` its message.
pub fn unreachable_projects_note(
    field: &str,
    named: &[String],
    unnamed: usize,
    reason: &str,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !named.is_empty() {
        let quoted: Vec<String> = named
            .iter()
            .map(|n| format!("\"{}\"", one_line(n)))
            .collect();
        let list = match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => quoted.concat(),
        };
        parts.push(format!(
            "the {} {list}",
            plural(named.len(), "project", "projects")
        ));
    }
    if unnamed > 0 {
        parts.push(format!(
            "{unnamed} {} that GitHub does not name",
            plural(unnamed, "project", "projects")
        ));
    }
    let boards = named.len() + unnamed;
    format!(
        "The field \"{field}\" is not updated on {}: GitHub does not let the App reach {} (\"{}\"). \
         Other projects of this issue are updated; give the App access to {} to include {}.",
        parts.join(", and on "),
        plural(boards, "it", "them"),
        one_line(reason),
        plural(boards, "that project", "those projects"),
        plural(boards, "it", "them"),
    )
}

fn headline(view: &StatusView) -> String {
    match view.state {
        WorkState::Blocked => {
            let waiting = view.blockers.iter().filter(|b| !b.satisfied).count()
                + view.unseen_blockers as usize;
            if waiting == 0 {
                "Held back until the dependency cycle is resolved.".to_owned()
            } else {
                format!(
                    "Waiting for {waiting} {}.",
                    plural(waiting, "dependency", "dependencies")
                )
            }
        }
        WorkState::Queued => match view.queue_position {
            Some(position) => format!("Ready; number {position} in the queue for a free agent."),
            None => "Ready; waiting for a free agent.".to_owned(),
        },
        WorkState::Running => "An agent is working on this issue.".to_owned(),
        WorkState::Done => "Done.".to_owned(),
        WorkState::Failed => {
            "The last attempt did not succeed; dependents stay blocked.".to_owned()
        }
    }
}

fn applicable_commands(state: WorkState, command: &str) -> String {
    let verbs: &[&str] = match state {
        WorkState::Blocked | WorkState::Queued => {
            &["status", "depends on #N", "unblock #N", "graph"]
        }
        WorkState::Running => &["cancel", "status", "graph"],
        WorkState::Done => &["status", "graph"],
        WorkState::Failed => &["retry", "status", "graph"],
    };
    let listed: Vec<String> = verbs.iter().map(|v| format!("`{command} {v}`")).collect();
    format!("Commands: {} · `{command} help`", listed.join(" · "))
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

fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 200 {
        line.chars().take(200).collect::<String>() + "…"
    } else {
        line
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn duration_text(ms: i64) -> String {
    let minutes = (ms.max(0) + 30_000) / 60_000;
    if minutes < 60 {
        format!("{minutes} min")
    } else {
        format!("{} h {} min", minutes / 60, minutes % 60)
    }
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> IssueRef {
        text.parse().unwrap()
    }

    fn run(phase: RunPhase) -> RunView {
        RunView {
            attempt: 2,
            phase,
            web_url: Some("https://codegen.com/agent/trace/7".into()),
            pull_requests: vec!["https://github.com/acme/api/pull/9".into()],
            failure: (phase == RunPhase::Failed)
                .then(|| "the agent run ended with status ERROR".into()),
            started_at: Some(1_800_000_000_000),
            finished_at: (phase != RunPhase::Running).then_some(1_800_000_000_000 + 14 * 60_000),
        }
    }

    #[test]
    fn the_state_follows_the_facts() {
        use WorkState::*;
        let open = IssueStatus::Open;
        assert_eq!(work_state(open, 1, false, false, None), Blocked);
        assert_eq!(work_state(open, 0, true, false, None), Blocked);
        assert_eq!(work_state(open, 0, false, false, None), Queued);
        assert_eq!(
            work_state(open, 0, false, true, Some(&run(RunPhase::Running))),
            Running
        );
        assert_eq!(
            work_state(open, 0, false, true, Some(&run(RunPhase::Succeeded))),
            Done
        );
        assert_eq!(
            work_state(open, 0, false, true, Some(&run(RunPhase::TimedOut))),
            Failed
        );
        // A retry was asked for: the failed run no longer decides.
        assert_eq!(
            work_state(open, 0, false, false, Some(&run(RunPhase::Failed))),
            Queued
        );
        assert_eq!(
            work_state(IssueStatus::ClosedCompleted, 1, false, false, None),
            Done
        );
    }

    #[test]
    fn the_comment_shows_blockers_run_and_commands() {
        let view = StatusView {
            issue: r("acme/api#4"),
            state: WorkState::Failed,
            blockers: vec![
                BlockerView {
                    issue: r("acme/api#2"),
                    title: Some("Schema".into()),
                    state: IssueStatus::ClosedCompleted,
                    satisfied: true,
                    pull_requests: vec!["https://github.com/acme/api/pull/5".into()],
                },
                BlockerView {
                    issue: r("other/lib#5"),
                    title: None,
                    state: IssueStatus::ClosedNotPlanned,
                    satisfied: false,
                    pull_requests: vec![],
                },
            ],
            queue_position: None,
            run: Some(run(RunPhase::Failed)),
            pull_requests: vec![],
            cycle: None,
            paused: None,
            notes: vec!["The project \"Roadmap\" has no field \"Status\".".into()],
            unseen_blockers: 0,
        };
        insta::assert_snapshot!(render(&view, "/codegen"));
    }

    #[test]
    fn boards_the_app_cannot_reach_are_named_in_one_note() {
        let reason = "Resource not accessible by integration";
        let notes = [
            unreachable_projects_note("Status", &["Sprint 12".into()], 0, reason),
            unreachable_projects_note("Status", &[], 1, reason),
            unreachable_projects_note("Stage", &["A".into(), "B".into(), "C".into()], 2, reason),
        ];
        insta::assert_snapshot!(notes.join("\n\n"));
    }

    #[test]
    fn blockers_the_app_cannot_see_are_counted_and_explained() {
        let view = StatusView {
            issue: r("acme/api#4"),
            state: WorkState::Blocked,
            blockers: vec![BlockerView {
                issue: r("acme/api#2"),
                title: Some("Schema".into()),
                state: IssueStatus::ClosedCompleted,
                satisfied: true,
                pull_requests: vec![],
            }],
            queue_position: None,
            run: None,
            pull_requests: vec![],
            cycle: None,
            paused: None,
            notes: vec![],
            unseen_blockers: 2,
        };
        insta::assert_snapshot!(render(&view, "/codegen"));
    }

    #[test]
    fn a_queued_issue_shows_its_place() {
        let view = StatusView {
            issue: r("acme/api#4"),
            state: WorkState::Queued,
            blockers: vec![],
            queue_position: Some(3),
            run: None,
            pull_requests: vec![],
            cycle: Some("acme/api#4 -> acme/api#6 -> acme/api#4".into()),
            paused: Some("the repository is paused (`/codegen resume` restarts it)".into()),
            notes: vec![],
            unseen_blockers: 0,
        };
        let text = render(&view, "/codegen");
        assert!(text.starts_with(STATUS_MARKER));
        assert!(text.contains("number 3 in the queue"));
        assert!(text.contains("`acme/api#4 -> acme/api#6 -> acme/api#4`"));
        assert!(text.contains("Launching is paused"));
        assert_eq!(WorkState::Queued.label("codegen:"), "codegen:queued");
    }
}
