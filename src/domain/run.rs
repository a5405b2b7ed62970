//! Codegen agent runs: their ids, the status Codegen reports, the state the app records
//! and the pull requests they open.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{InstallationId, IssueRef, RepoName};

/// A Codegen agent run's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an agent run stands, from Codegen's free-text `status`, compared without regard to
/// case: `COMPLETE`/`completed` succeeded; `FAILED`, `ERROR`, `CANCELLED`, `STOPPED`,
/// `TIMEOUT`, `MAX_ITERATIONS_REACHED`, `OUT_OF_TOKENS` failed; anything else, unknown values
/// included, is still running (a new status must never be taken for an ending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Not finished.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished without success.
    Failed,
}

impl AgentStatus {
    /// Classifies a Codegen status string (`None`: not reported yet, so running).
    pub fn from_codegen(status: Option<&str>) -> Self {
        const SUCCESS: &[&str] = &["complete", "completed"];
        const FAILURE: &[&str] = &[
            "failed",
            "error",
            "cancelled",
            "canceled",
            "stopped",
            "timeout",
            "max_iterations_reached",
            "out_of_tokens",
        ];
        let Some(status) = status.map(str::trim) else {
            return Self::Running;
        };
        if SUCCESS.iter().any(|s| status.eq_ignore_ascii_case(s)) {
            Self::Succeeded
        } else if FAILURE.iter().any(|s| status.eq_ignore_ascii_case(s)) {
            Self::Failed
        } else {
            Self::Running
        }
    }
}

/// Where an agent run stands: one enum for the store, the engine and the effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// The intent is recorded; its holder is asking Codegen (or crashed doing so).
    Launching,
    /// Codegen accepted it and it has not ended.
    Running,
    /// The agent reported success.
    Succeeded,
    /// The agent reported failure, or Codegen refused the launch.
    Failed,
    /// It ran longer than `codegen.run_timeout_secs` and was stopped.
    TimedOut,
    /// Stopped by `/codegen cancel` or because the issue left management.
    Cancelled,
}

impl RunState {
    /// Every state, in the order a run goes through them.
    pub const ALL: [RunState; 6] = [
        Self::Launching,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Cancelled,
    ];

    /// The name stored in the database and shown in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Launching => "launching",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Launching | Self::Running)
    }

    /// Whether it ended without success (a retry may follow).
    pub fn ended_badly(self) -> bool {
        self.is_final() && self != Self::Succeeded
    }
}

/// One attempt at an issue, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The row's key.
    pub row: i64,
    /// The installation the issue belongs to.
    pub installation: InstallationId,
    /// The issue.
    pub issue: IssueRef,
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// Where it stands.
    pub state: RunState,
    /// The agent's instructions.
    pub prompt: String,
    /// Codegen's id, once it accepted the run.
    pub run_id: Option<RunId>,
    /// The run's page on codegen.com.
    pub web_url: Option<String>,
    /// The agent's summary, once ended.
    pub summary: Option<String>,
    /// Pull requests the agent opened.
    pub pull_requests: Vec<PullRequestLink>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Unix ms the intent was recorded.
    pub created_at: i64,
    /// Unix ms Codegen accepted it.
    pub started_at: Option<i64>,
    /// Unix ms it ended.
    pub finished_at: Option<i64>,
}

/// A pull request by its page: the URL as GitHub or Codegen gave it, and the pull request
/// it names when the URL is a GitHub pull request page (`https://host/owner/repo/pull/12`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct PullRequestLink {
    /// The page.
    pub url: String,
    /// The pull request, when the URL names one.
    pub pull: Option<IssueRef>,
}

impl PullRequestLink {
    /// The link for `url`, parsed once.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let pull = pull_of(&url);
        Self { url, pull }
    }
}

impl From<String> for PullRequestLink {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

impl From<PullRequestLink> for String {
    fn from(link: PullRequestLink) -> Self {
        link.url
    }
}

impl fmt::Display for PullRequestLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// The pull request a GitHub URL names (`https://host/owner/repo/pull/12`).
fn pull_of(url: &str) -> Option<IssueRef> {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let number = parts.next()?.parse().ok()?;
    (parts.next()? == "pull").then_some(())?;
    let name = parts.next()?;
    let owner = parts.next()?;
    Some(IssueRef::new(RepoName::new(owner, name).ok()?, number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codegen_statuses_are_classified_without_regard_to_case() {
        for s in ["COMPLETE", "completed", "Complete"] {
            assert_eq!(
                AgentStatus::from_codegen(Some(s)),
                AgentStatus::Succeeded,
                "{s}"
            );
        }
        for s in [
            "FAILED",
            "failed",
            "ERROR",
            "CANCELLED",
            "STOPPED",
            "TIMEOUT",
            "MAX_ITERATIONS_REACHED",
            "OUT_OF_TOKENS",
            "out_of_tokens",
        ] {
            assert_eq!(
                AgentStatus::from_codegen(Some(s)),
                AgentStatus::Failed,
                "{s}"
            );
        }
        for s in [
            "ACTIVE",
            "RUNNING",
            "PENDING",
            "EVALUATION",
            "PAUSED",
            "queued",
            "in_progress",
            "SOMETHING_NEW",
            "",
        ] {
            assert_eq!(
                AgentStatus::from_codegen(Some(s)),
                AgentStatus::Running,
                "{s}"
            );
        }
        assert_eq!(AgentStatus::from_codegen(None), AgentStatus::Running);
    }

    #[test]
    fn a_pull_request_link_names_its_pull_request_when_it_is_a_github_pull_page() {
        let link = PullRequestLink::new("https://github.com/acme/api/pull/12/");
        assert_eq!(link.pull.unwrap().to_string(), "acme/api#12");
        assert_eq!(
            PullRequestLink::new("https://github.com/acme/api/issues/12").pull,
            None
        );
        assert_eq!(PullRequestLink::new("not a url").pull, None);
    }

    #[test]
    fn run_states_round_trip_through_their_stored_names() {
        for state in RunState::ALL {
            assert_eq!(RunState::parse(state.as_str()), Some(state));
        }
        assert_eq!(RunState::parse("sleeping"), None);
        assert!(RunState::Failed.ended_badly() && RunState::Cancelled.ended_badly());
        assert!(!RunState::Succeeded.ended_badly() && !RunState::Running.ended_badly());
    }
}
