//! An issue as the app reads it from GitHub, and where it stands for its dependents.

use serde::{Deserialize, Serialize};

use super::IssueRef;

/// Where an issue stands, as far as its dependents are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueStatus {
    /// Open.
    Open,
    /// Closed as completed: its dependents may go.
    ClosedCompleted,
    /// Closed as not planned (or as a duplicate): its dependents stay blocked.
    ClosedNotPlanned,
    /// Deleted: its dependents stay blocked.
    Deleted,
    /// Not fetched yet.
    Unknown,
}

impl IssueStatus {
    /// Whether a dependent of an issue in this state may start.
    pub fn satisfies(self) -> bool {
        self == Self::ClosedCompleted
    }

    /// The status GitHub's `state` and `state_reason` describe.
    pub fn from_github(state: &str, state_reason: Option<&str>) -> Self {
        match (state, state_reason) {
            ("open", _) => Self::Open,
            ("closed", Some("not_planned" | "duplicate")) => Self::ClosedNotPlanned,
            ("closed", _) => Self::ClosedCompleted,
            _ => Self::Unknown,
        }
    }
}

/// An issue as the bot reads it from GitHub: what the graph and the planner need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueSnapshot {
    /// Where it is.
    pub reference: IssueRef,
    /// Title.
    pub title: String,
    /// Body Markdown; empty when there is none.
    pub body: String,
    /// Open, closed (and how), or unknown.
    pub status: IssueStatus,
    /// Label names.
    pub labels: Vec<String>,
    /// How many open issues GitHub counts as blocking it (`issue_dependencies_summary.blocked_by`),
    /// including those the App cannot read; `None` when the payload has no summary.
    pub open_blockers: Option<u32>,
    /// Its sub-issues as GitHub counts them (`sub_issues_summary`), including those the App
    /// cannot read; `None` when the payload has no summary.
    #[serde(default)]
    pub sub_issues: Option<SubIssueCounts>,
}

/// An issue's sub-issues as GitHub counts them (`sub_issues_summary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubIssueCounts {
    /// Every sub-issue, open or closed.
    pub total: u32,
    /// Those closed as completed.
    pub completed: u32,
}

impl SubIssueCounts {
    /// Sub-issues not completed yet (open, or closed as not planned, which GitHub may not
    /// count as completed either).
    pub fn unfinished(self) -> u32 {
        self.total.saturating_sub(self.completed)
    }
}
