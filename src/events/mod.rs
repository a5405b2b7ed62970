//! Domain events: what a webhook delivery means, in the project's own types. `decode` is
//! the only place that reads GitHub's JSON; nothing after it sees a payload.

mod payload;

use crate::domain::{InstallationId, IssueRef, RepoName, User};

pub use payload::{DecodeError, decode, decode_payload};

/// The `X-GitHub-Event` names the app understands; every other event is acknowledged and
/// ignored at the door without being stored.
pub const SUPPORTED_EVENTS: &[&str] = &[
    "issues",
    "issue_comment",
    "label",
    "pull_request",
    "projects_v2_item",
    "installation",
    "installation_repositories",
    "issue_dependencies",
    "sub_issues",
    "push",
    "ping",
];

/// Whether deliveries of this event are stored and processed.
pub fn is_supported(event: &str) -> bool {
    SUPPORTED_EVENTS.contains(&event)
}

/// What decoding a delivery produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// An event the app acts on.
    Event(Box<DomainEvent>),
    /// A well-formed delivery the app has no use for (an `issues.pinned`, say), and why.
    Ignored(&'static str),
}

/// One event with who caused it and for which installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEvent {
    /// The App installation the delivery was for; absent for repository webhooks.
    pub installation: Option<InstallationId>,
    /// Who caused it.
    pub sender: Option<User>,
    /// What happened.
    pub kind: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Something happened to an issue.
    Issue {
        /// What.
        action: IssueAction,
        /// The issue as it is after the change.
        issue: Issue,
    },
    /// A comment on an issue or pull request.
    IssueComment {
        /// What.
        action: CommentAction,
        /// The issue commented on.
        issue: Issue,
        /// The comment as it is after the change.
        comment: Comment,
    },
    /// A repository label was created, renamed or deleted.
    Label {
        /// What.
        action: LabelAction,
        /// The repository.
        repo: RepoName,
        /// The label's name after the change.
        name: String,
    },
    /// Something happened to a pull request.
    PullRequest {
        /// What.
        action: PullRequestAction,
        /// The pull request after the change.
        pull: PullRequest,
    },
    /// An item of a Projects v2 board changed.
    ProjectItem {
        /// What.
        action: ProjectItemAction,
        /// The item.
        item: ProjectItem,
    },
    /// The App was installed, uninstalled, suspended or unsuspended.
    Installation {
        /// What.
        action: InstallationAction,
        /// Which installation.
        installation: InstallationId,
        /// The account it is installed on.
        account: String,
        /// Repositories listed in the payload (those selected at install time).
        repos: Vec<RepoName>,
    },
    /// Repositories were added to or removed from an installation.
    InstallationRepositories {
        /// Which installation.
        installation: InstallationId,
        /// Repositories added.
        added: Vec<RepoName>,
        /// Repositories removed.
        removed: Vec<RepoName>,
    },
    /// A native "blocked by" link between two issues changed.
    IssueDependency {
        /// Added or removed.
        action: DependencyAction,
        /// The issue that is (or was) blocked.
        blocked: Issue,
        /// The issue that blocks (or blocked) it.
        blocking: Issue,
    },
    /// An issue was attached to or detached from a parent issue (GitHub's sub-issues).
    SubIssue {
        /// Attached or detached.
        action: SubIssueAction,
        /// The parent issue.
        parent: Issue,
        /// The sub-issue.
        child: Issue,
    },
    /// Commits were pushed to a branch.
    Push {
        /// The repository.
        repo: RepoName,
        /// Whether the branch is the repository's default branch.
        default_branch: bool,
        /// Paths added, modified or removed by the pushed commits.
        paths: Vec<String>,
    },
    /// GitHub checks that the webhook works.
    Ping {
        /// The hook's id.
        hook_id: Option<u64>,
    },
}

/// What happened to an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueAction {
    /// Opened.
    Opened,
    /// Title or body edited; the old body when it changed.
    Edited {
        /// The body before the edit, if the body changed.
        old_body: Option<String>,
    },
    /// A label was added.
    Labeled {
        /// Its name.
        label: String,
    },
    /// A label was removed.
    Unlabeled {
        /// Its name.
        label: String,
    },
    /// Closed, with GitHub's reason.
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// Reopened.
    Reopened,
    /// Deleted.
    Deleted,
    /// Moved to another repository.
    Transferred {
        /// Where it went, when the payload says.
        to: Option<IssueRef>,
    },
}

/// Why an issue was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Done (also GitHub's answer for issues closed before reasons existed).
    Completed,
    /// Closed as not planned.
    NotPlanned,
    /// Closed as a duplicate.
    Duplicate,
}

/// Whether an issue is open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueState {
    /// Open.
    Open,
    /// Closed, and why.
    Closed(CloseReason),
}

/// An issue as a delivery shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where it is.
    pub reference: IssueRef,
    /// GitHub's numeric database id (what the dependencies API takes).
    pub id: u64,
    /// GitHub's GraphQL node id.
    pub node_id: String,
    /// Title.
    pub title: String,
    /// Body Markdown; empty when there is none.
    pub body: String,
    /// Open or closed.
    pub state: IssueState,
    /// Label names.
    pub labels: Vec<String>,
    /// Who opened it (`None` for a deleted account: GitHub sends `user: null`).
    pub author: Option<User>,
    /// Whether this "issue" is a pull request.
    pub is_pull_request: bool,
    /// The page on GitHub.
    pub html_url: String,
    /// When it was opened (RFC 3339).
    pub created_at: String,
    /// Open issues GitHub counts as blocking it, including those the App cannot read
    /// (`issue_dependencies_summary.blocked_by`); `None` when the payload has no summary.
    pub open_blockers: Option<u32>,
    /// Its sub-issues as GitHub counts them, including those the App cannot read
    /// (`sub_issues_summary`); `None` when the payload has no summary.
    pub sub_issues: Option<crate::domain::SubIssueCounts>,
    /// The GitHub App that opened it, when one did (an agent declaring follow-up work).
    pub via_app: Option<crate::domain::AppIdentity>,
}

/// What happened to a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentAction {
    /// Posted.
    Created,
    /// Edited; the body before the edit, when the payload carries it.
    Edited {
        /// The old body.
        old_body: Option<String>,
    },
    /// Deleted.
    Deleted,
}

/// An issue comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Its id.
    pub id: u64,
    /// Body Markdown.
    pub body: String,
    /// Who wrote it.
    pub author: User,
    /// Set when it was posted through a GitHub App (that App; a person typing in Slack
    /// or Teams posts through theirs).
    pub via_app: Option<crate::domain::AppIdentity>,
}

/// What happened to a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelAction {
    /// Created.
    Created,
    /// Edited; its old name when it was renamed.
    Edited {
        /// The name before the rename.
        old_name: Option<String>,
    },
    /// Deleted.
    Deleted,
}

/// What happened to a pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestAction {
    /// Opened.
    Opened,
    /// Title or body edited.
    Edited,
    /// Closed, merged or not.
    Closed {
        /// Whether it was merged.
        merged: bool,
    },
    /// Reopened.
    Reopened,
}

/// A pull request as a delivery shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Where it is.
    pub reference: IssueRef,
    /// Title.
    pub title: String,
    /// Body Markdown; empty when there is none.
    pub body: String,
    /// The branch it merges from.
    pub head_ref: String,
    /// The branch it merges into.
    pub base_ref: String,
    /// The page on GitHub.
    pub html_url: String,
    /// Who opened it (`None` for a deleted account: GitHub sends `user: null`).
    pub author: Option<User>,
}

/// What happened to a project item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectItemAction {
    /// Added to the project.
    Created,
    /// A field changed; the field's node id when the payload says.
    Edited {
        /// The field that changed.
        field_node_id: Option<String>,
    },
    /// Archived.
    Archived,
    /// Restored from the archive.
    Restored,
    /// Removed from the project.
    Deleted,
}

/// A Projects v2 item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectItem {
    /// The item's node id.
    pub node_id: String,
    /// The project's node id.
    pub project_node_id: String,
    /// The node id of what the item shows (an issue, a pull request, a draft).
    pub content_node_id: String,
    /// `Issue`, `PullRequest` or `DraftIssue`.
    pub content_type: String,
}

/// What happened to an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallationAction {
    /// Installed.
    Created,
    /// Uninstalled.
    Deleted,
    /// Suspended by the account.
    Suspended,
    /// Unsuspended.
    Unsuspended,
}

/// What happened to a parent/sub-issue link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubIssueAction {
    /// The sub-issue was attached to the parent.
    Added,
    /// The sub-issue was detached from the parent.
    Removed,
}

impl SubIssueAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
        }
    }
}

/// What happened to a native issue dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyAction {
    /// A "blocked by" link was added.
    Added,
    /// A "blocked by" link was removed.
    Removed,
}

impl DomainEvent {
    /// The issue (or pull request) the event is about, if it is about one.
    pub fn issue(&self) -> Option<&IssueRef> {
        match &self.kind {
            Event::Issue { issue, .. } | Event::IssueComment { issue, .. } => {
                Some(&issue.reference)
            }
            Event::PullRequest { pull, .. } => Some(&pull.reference),
            Event::IssueDependency { blocked, .. } => Some(&blocked.reference),
            Event::SubIssue { parent, .. } => Some(&parent.reference),
            _ => None,
        }
    }

    /// A one-line description for logs: `issues.labeled octo/repo#12 label=codegen`.
    pub fn summary(&self) -> String {
        match &self.kind {
            Event::Issue { action, issue } => {
                let detail = match action {
                    IssueAction::Labeled { label } | IssueAction::Unlabeled { label } => {
                        format!(" label={label}")
                    }
                    IssueAction::Closed { reason } => format!(" reason={}", reason.name()),
                    IssueAction::Transferred { to: Some(to) } => format!(" to={to}"),
                    _ => String::new(),
                };
                format!("issues.{} {}{detail}", action.name(), issue.reference)
            }
            Event::IssueComment {
                action,
                issue,
                comment,
            } => format!(
                "issue_comment.{} {} comment={} by={}",
                action.name(),
                issue.reference,
                comment.id,
                comment.author.login
            ),
            Event::Label { action, repo, name } => {
                format!("label.{} {repo} name={name}", action.name())
            }
            Event::PullRequest { action, pull } => {
                let merged = if matches!(action, PullRequestAction::Closed { merged: true }) {
                    " merged"
                } else {
                    ""
                };
                format!("pull_request.{} {}{merged}", action.name(), pull.reference)
            }
            Event::ProjectItem { action, item } => format!(
                "projects_v2_item.{} item={} content={}",
                action.name(),
                item.node_id,
                item.content_node_id
            ),
            Event::Installation {
                action,
                installation,
                account,
                ..
            } => {
                format!(
                    "installation.{} {installation} account={account}",
                    action.name()
                )
            }
            Event::InstallationRepositories {
                installation,
                added,
                removed,
            } => format!(
                "installation_repositories {installation} added={} removed={}",
                added.len(),
                removed.len()
            ),
            Event::IssueDependency {
                action,
                blocked,
                blocking,
            } => format!(
                "issue_dependencies.{} {} blocked by {}",
                action.name(),
                blocked.reference,
                blocking.reference
            ),
            Event::SubIssue {
                action,
                parent,
                child,
            } => format!(
                "sub_issues.{} {} sub-issue {}",
                action.name(),
                parent.reference,
                child.reference
            ),
            Event::Push {
                repo,
                default_branch,
                paths,
            } => format!(
                "push {repo} default_branch={default_branch} paths={}",
                paths.len()
            ),
            Event::Ping {
                hook_id: Some(hook),
            } => format!("ping hook={hook}"),
            Event::Ping { hook_id: None } => "ping".to_owned(),
        }
    }
}

impl IssueAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Edited { .. } => "edited",
            Self::Labeled { .. } => "labeled",
            Self::Unlabeled { .. } => "unlabeled",
            Self::Closed { .. } => "closed",
            Self::Reopened => "reopened",
            Self::Deleted => "deleted",
            Self::Transferred { .. } => "transferred",
        }
    }
}

// The names GitHub gives the actions in its payloads, for log lines.

impl CloseReason {
    fn name(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::NotPlanned => "not_planned",
            Self::Duplicate => "duplicate",
        }
    }
}

impl LabelAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Edited { .. } => "edited",
            Self::Deleted => "deleted",
        }
    }
}

impl PullRequestAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Edited => "edited",
            Self::Closed { .. } => "closed",
            Self::Reopened => "reopened",
        }
    }
}

impl ProjectItemAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Edited { .. } => "edited",
            Self::Archived => "archived",
            Self::Restored => "restored",
            Self::Deleted => "deleted",
        }
    }
}

impl InstallationAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Deleted => "deleted",
            Self::Suspended => "suspend",
            Self::Unsuspended => "unsuspend",
        }
    }
}

impl DependencyAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
        }
    }
}

impl CommentAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Edited { .. } => "edited",
            Self::Deleted => "deleted",
        }
    }
}
