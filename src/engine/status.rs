//! What a managed issue's status is. Pure: the caller gathers the facts into a
//! [`StatusView`]; [`super::texts::status_comment`] words it.

use crate::domain::{IssueRef, IssueStatus, RunState};

/// Places in the launch queue a status comment names exactly. Further back it says only
/// that the issue waits behind them: every launch moves every queued issue up by one, and
/// naming each place would edit every queued issue's comment at every launch.
pub const QUEUE_POSITIONS_SHOWN: usize = 10;

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
}

/// The latest run of an issue, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    /// Which attempt.
    pub attempt: u32,
    /// Where it stands.
    pub phase: RunState,
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
    /// It is a sub-issue of the issue (GitHub's parent/child link).
    pub sub_issue: bool,
    /// The attempt during whose run it was discovered, when it was.
    pub discovered_in: Option<u32>,
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
    /// Unfinished sub-issues GitHub counts that the App cannot read.
    pub unseen_children: u32,
    /// A parent without an agent of its own: closed once its sub-issues are done.
    pub umbrella: bool,
    /// The parent it was taken under management with, as its sub-issue.
    pub parent: Option<IssueRef>,
    /// The failed attempt that gets a new one once the blockers discovered during it are
    /// done.
    pub retry_after_discovery: Option<u32>,
    /// When its agent is expected to start (unix ms), while it waits, from the forecast.
    pub expected_start: Option<i64>,
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
            Some(RunState::Succeeded) => return WorkState::Done,
            Some(RunState::Failed | RunState::TimedOut | RunState::Cancelled) => {
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

/// A run as the status tests show it: attempt 2, with a link and a pull request, failed
/// with a reason when `phase` is failed, ended 14 minutes after it started unless running.
#[cfg(test)]
pub(crate) fn sample_run(phase: RunState) -> RunView {
    RunView {
        attempt: 2,
        phase,
        web_url: Some("https://codegen.com/agent/trace/7".into()),
        pull_requests: vec!["https://github.com/acme/api/pull/9".into()],
        failure: (phase == RunState::Failed)
            .then(|| "the agent run ended with status ERROR".into()),
        started_at: Some(1_800_000_000_000),
        finished_at: (phase != RunState::Running).then_some(1_800_000_000_000 + 14 * 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(phase: RunState) -> RunView {
        sample_run(phase)
    }

    #[test]
    fn the_state_follows_the_facts() {
        use WorkState::*;
        let open = IssueStatus::Open;
        assert_eq!(work_state(open, 1, false, false, None), Blocked);
        assert_eq!(work_state(open, 0, true, false, None), Blocked);
        assert_eq!(work_state(open, 0, false, false, None), Queued);
        assert_eq!(
            work_state(open, 0, false, true, Some(&run(RunState::Running))),
            Running
        );
        assert_eq!(
            work_state(open, 0, false, true, Some(&run(RunState::Succeeded))),
            Done
        );
        assert_eq!(
            work_state(open, 0, false, true, Some(&run(RunState::TimedOut))),
            Failed
        );
        // A retry was asked for: the failed run no longer decides.
        assert_eq!(
            work_state(open, 0, false, false, Some(&run(RunState::Failed))),
            Queued
        );
        assert_eq!(
            work_state(IssueStatus::ClosedCompleted, 1, false, false, None),
            Done
        );
        assert_eq!(WorkState::Queued.label("codegen:"), "codegen:queued");
    }
}
