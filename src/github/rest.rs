//! GitHub's REST payloads the app reads, and their translation into the project's types.
//! Lean on purpose: only the fields used, so that GitHub adding or dropping others never
//! breaks a read.

use serde::Deserialize;

use crate::domain::{IssueRef, IssueSnapshot, IssueStatus, RepoName, SubIssueCounts};

/// One issue as the GitHub REST API lists it (`GET /repos/{o}/{r}/issues`); only the fields
/// `plan` reads.
#[derive(Debug, Deserialize)]
pub struct RestIssue {
    /// GitHub's database id (what the dependencies API takes), when the payload has it.
    #[serde(default)]
    pub id: Option<u64>,
    /// Number within its repository.
    pub number: u64,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Body Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// `completed`, `not_planned`, `duplicate`, `reopened` or null.
    #[serde(default)]
    pub state_reason: Option<String>,
    /// Labels (objects with a `name`, or plain names).
    #[serde(default)]
    pub labels: Vec<RestLabel>,
    /// `https://api.github.com/repos/{o}/{r}`.
    #[serde(default)]
    pub repository_url: Option<String>,
    /// `https://github.com/{o}/{r}/issues/{n}`.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde::de::IgnoredAny>,
    /// Counts of its native dependencies, including issues the App cannot read.
    #[serde(default)]
    pub issue_dependencies_summary: Option<DependenciesSummary>,
    /// Counts of its sub-issues, including issues the App cannot read.
    #[serde(default)]
    pub sub_issues_summary: Option<SubIssuesSummary>,
}

/// `sub_issues_summary` of a REST or webhook issue object.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct SubIssuesSummary {
    /// Every sub-issue.
    #[serde(default)]
    pub total: u32,
    /// Sub-issues completed.
    #[serde(default)]
    pub completed: u32,
}

impl From<SubIssuesSummary> for SubIssueCounts {
    fn from(summary: SubIssuesSummary) -> Self {
        Self {
            total: summary.total,
            completed: summary.completed,
        }
    }
}

/// `issue_dependencies_summary` of a REST or webhook issue object.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct DependenciesSummary {
    /// Open issues blocking it.
    #[serde(default)]
    pub blocked_by: u32,
    /// Every issue blocking it, open or closed.
    #[serde(default)]
    pub total_blocked_by: u32,
}

/// A label as the REST API gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RestLabel {
    /// `{"name": "codegen", ...}`
    Object {
        /// The label's name.
        name: String,
    },
    /// `"codegen"`
    Name(String),
}

impl RestLabel {
    /// The label's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Object { name } | Self::Name(name) => name,
        }
    }
}

impl RestIssue {
    /// The issue in the project's terms; `None` when no URL names its repository.
    pub fn into_snapshot(self) -> Option<IssueSnapshot> {
        let repo = self
            .repository_url
            .as_deref()
            .and_then(RepoName::from_api_url)
            .or_else(|| self.html_url.as_deref().and_then(RepoName::from_html_url))?;
        Some(IssueSnapshot {
            reference: IssueRef::new(repo, self.number),
            status: IssueStatus::from_github(&self.state, self.state_reason.as_deref()),
            labels: self.labels.iter().map(|l| l.name().to_owned()).collect(),
            title: self.title,
            body: self.body.unwrap_or_default(),
            open_blockers: self.issue_dependencies_summary.map(|s| s.blocked_by),
            sub_issues: self.sub_issues_summary.map(SubIssueCounts::from),
        })
    }

    /// Whether this "issue" is a pull request (the issues API lists both).
    pub fn is_pull_request(&self) -> bool {
        self.pull_request.is_some()
    }
}
