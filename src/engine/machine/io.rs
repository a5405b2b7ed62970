//! What goes into the engine ([`Input`]) and what comes out ([`Decision`]). Inputs are
//! deliveries, the periodic jobs, and the results of earlier decisions; a decision that
//! reads something carries the context its answer needs (`then`, `purpose`), so that the
//! engine keeps no half-done work between two inputs and a decision in the outbox can be
//! executed again after a crash with the same meaning.

use serde::{Deserialize, Serialize};

use crate::domain::{
    Actor, InstallationId, IssueRef, IssueSnapshot, Permission, PullRequestLink, RepoName,
    RunRecord, SubIssueCounts, User,
};
use crate::engine::repo_config::RepoOverrides;
use crate::events::DomainEvent;

/// Something the engine reacts to.
// One input exists at a time (made, handled, dropped), so its size does not add up.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Input {
    /// A webhook delivery, decoded.
    Delivery(Box<DomainEvent>),
    /// The periodic reconciliation found these repositories in these installations
    /// (`None`: token mode, where the repositories are those the engine already knows).
    Reconcile {
        /// Installations and their repositories.
        targets: Option<Vec<(InstallationId, Vec<RepoName>)>>,
    },
    /// Runs were followed: launches a crash interrupted were settled, runs ended.
    RunsFollowed {
        /// The latest record of each issue whose interrupted launch was settled.
        recovered: Vec<RunRecord>,
        /// Runs that ended since the last time.
        ended: Vec<RunRecord>,
    },
    /// The result of a read or an action the engine asked for.
    Result(Outcome),
}

/// The result of a [`Decision`], reported by the effects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// A repository's configuration file was read.
    RepoConfigRead {
        /// Which repository.
        repo: RepoName,
        /// What the file says.
        file: RepoFile,
        /// Where to report an invalid file.
        report_on: Option<IssueRef>,
        /// What to do once it is known.
        then: AfterConfig,
    },
    /// Who applied the trigger label, from the issue's events.
    LabelActorRead {
        /// The installation.
        installation: InstallationId,
        /// The issue as it was when the read was asked for.
        issue: IssueSnapshot,
        /// Who applied it.
        actor: Actor,
    },
    /// A user's permission on a repository.
    PermissionRead {
        /// The installation.
        installation: InstallationId,
        /// Whose.
        user: User,
        /// What they may do.
        permission: Permission,
        /// What it was asked for.
        then: AfterPermission,
    },
    /// An issue's native `blocked_by` list (those the App can read).
    NativeBlockersRead {
        /// The installation.
        installation: InstallationId,
        /// The blocked issue.
        issue: IssueRef,
        /// Its listed blockers.
        blockers: Vec<IssueSnapshot>,
        /// What its summary counts as open blockers, when known.
        open_blockers: Option<u32>,
    },
    /// An issue's sub-issues were read (those the App can read).
    SubIssuesRead {
        /// The installation.
        installation: InstallationId,
        /// The parent issue.
        issue: IssueRef,
        /// Its listed sub-issues.
        children: Vec<IssueSnapshot>,
        /// What its summary counts, when known.
        counts: Option<SubIssueCounts>,
        /// Whether open sub-issues are taken under management on the parent's authority
        /// (the parent has just been put under management by someone who may).
        adopt: bool,
    },
    /// A native "blocked by" link was written or removed (`failure`: why not).
    NativeDependencySynced {
        /// The installation.
        installation: InstallationId,
        /// The blocked issue.
        issue: IssueRef,
        /// The blocker.
        blocker: IssueRef,
        /// Written (`true`) or removed.
        add: bool,
        /// Why it was not done, when it was not.
        failure: Option<String>,
        /// Whether that failure is GitHub's lasting refusal (not tried again) rather than
        /// GitHub failing until the retries ran out.
        #[serde(default)]
        lasting: bool,
    },
    /// An issue was read (`None`: the App cannot see it; it counts as unknown).
    IssueRead {
        /// The installation.
        installation: InstallationId,
        /// Which issue.
        issue: IssueRef,
        /// What it is.
        snapshot: Option<IssueSnapshot>,
        /// Why it was read.
        purpose: ReadPurpose,
    },
    /// A project item moved; its issue and whether it now sits in the `queued` option.
    ProjectItemRead {
        /// The installation.
        installation: InstallationId,
        /// The issue it stands for, when the App could read it.
        issue: Option<IssueSnapshot>,
        /// Whether the item now shows the option mapped to `queued`.
        moved_to_queued: bool,
        /// Who moved it.
        sender: Option<User>,
    },
    /// An installation's repositories were listed.
    RepositoriesListed {
        /// The installation.
        installation: InstallationId,
        /// Its repositories.
        repos: Vec<RepoName>,
    },
    /// A repository's open issues carrying the trigger label were listed.
    LabelledListed {
        /// The installation.
        installation: InstallationId,
        /// Which repository.
        repo: RepoName,
        /// The issues.
        issues: Vec<IssueSnapshot>,
    },
    /// A launch was settled; the issue's latest run as recorded (`None`: none is).
    Launched {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
        /// Its latest run.
        latest: Option<RunRecord>,
        /// Codegen's quota is used up (its message): launches pause.
        quota_exhausted: Option<String>,
    },
    /// An issue's latest run changed (cancelled, recovered).
    RunRecorded {
        /// The installation.
        installation: InstallationId,
        /// The run.
        run: RunRecord,
    },
    /// A pull request of an agent was merged and its issue closed.
    Merged {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
        /// The pull request.
        pull: PullRequestLink,
    },
    /// A status was given up on (GitHub kept failing): what it would have changed is
    /// taken as not done, and it is decided again at the next tick.
    StatusNotPublished {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
        /// The state label it was to add (the one it was to remove is still there).
        add_label: Option<String>,
        /// The state label it was to remove.
        remove_label: Option<String>,
        /// Whether it was to set the Projects field.
        project: bool,
    },
    /// None of an issue's pull requests could be merged yet.
    NotMergeable {
        /// The issue.
        issue: IssueRef,
    },
    /// Publishing the Projects field left notes for the status comment.
    ProjectNotes {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
        /// What to say, once.
        notes: Vec<String>,
    },
}

/// A repository's configuration file, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepoFile {
    /// There is none, or the App may not read it: the global settings apply.
    Absent,
    /// It sets these.
    Overrides(Box<RepoOverrides>),
    /// It is invalid: the problem, and the defaults apply.
    Invalid(String),
}

/// What to do once a repository's configuration is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AfterConfig {
    /// Nothing more.
    Nothing,
    /// Give the engine the input that needed it again (the processor holds it).
    Retry,
    /// List its labelled issues (reconciliation).
    Reconcile(InstallationId),
}

/// What a permission was read for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AfterPermission {
    /// The user applied the trigger label to this issue.
    Label(IssueSnapshot),
    /// The user commented these commands on this issue.
    Commands(CommandRequest),
    /// The user moved this issue's card to the `queued` option.
    ProjectMove(IssueSnapshot),
    /// The user attached this sub-issue to this managed parent.
    SubIssue {
        /// The parent.
        parent: IssueRef,
        /// The sub-issue as the delivery showed it.
        child: IssueSnapshot,
    },
}

/// A comment with commands, waiting for its author's permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRequest {
    /// The issue as the delivery showed it.
    pub issue: IssueSnapshot,
    /// The comment's id (for reactions).
    pub comment: u64,
    /// Its body.
    pub body: String,
    /// The body before an edit, when the comment was edited.
    pub old_body: Option<String>,
    /// Whether it was edited with no old body known (every command counts).
    pub edited: bool,
    /// Whether a trusted App wrote it (no permission read is needed).
    pub trusted_app: bool,
}

/// Why an issue was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadPurpose {
    /// A blocker seen for the first time.
    Blocker,
    /// A tracked issue read again (an unmanaged blocker that still holds work).
    Reread,
    /// A managed issue the reconciler did not find among the labelled ones.
    Recheck,
}

/// What the engine decided; the effects carry it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Read a repository's configuration file.
    ReadRepoConfig {
        /// The installation.
        installation: InstallationId,
        /// Which repository.
        repo: RepoName,
        /// Where to report an invalid file.
        report_on: Option<IssueRef>,
        /// What follows.
        then: AfterConfig,
    },
    /// Find out who applied the trigger label, from the issue's events.
    ReadLabelActor {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueSnapshot,
        /// The label.
        trigger: String,
    },
    /// Read a user's permission on a repository.
    CheckPermission {
        /// The installation.
        installation: InstallationId,
        /// Which repository.
        repo: RepoName,
        /// Whose.
        user: User,
        /// What it is for.
        then: AfterPermission,
    },
    /// Read an issue's native blockers.
    ReadNativeBlockers {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
        /// What its summary counts as open blockers, when known.
        open_blockers: Option<u32>,
    },
    /// Read an issue's sub-issues.
    ReadSubIssues {
        /// The installation.
        installation: InstallationId,
        /// The parent issue.
        issue: IssueRef,
        /// What its summary counts, when known.
        counts: Option<SubIssueCounts>,
        /// Whether open sub-issues are to be managed on the parent's authority.
        adopt: bool,
    },
    /// Write (`add`) or remove a native "blocked by" link.
    SyncNativeDependency {
        /// The installation.
        installation: InstallationId,
        /// The blocked issue.
        issue: IssueRef,
        /// The blocker.
        blocker: IssueRef,
        /// Write it (`true`) or remove it.
        add: bool,
    },
    /// Read an issue.
    ReadIssue {
        /// The installation.
        installation: InstallationId,
        /// Which.
        issue: IssueRef,
        /// Why.
        purpose: ReadPurpose,
    },
    /// Read the issue behind a moved project card, and where the card now is.
    ReadProjectItem {
        /// The installation.
        installation: InstallationId,
        /// A repository of the installation (token mode reaches GraphQL through one).
        repo: Option<RepoName>,
        /// The item's node id.
        item: String,
        /// The issue's node id.
        content: String,
        /// The Projects field.
        field: String,
        /// The option mapped to `queued`.
        queued: String,
        /// Who moved it.
        sender: Option<User>,
    },
    /// List an installation's repositories.
    ListRepositories {
        /// The installation.
        installation: InstallationId,
    },
    /// List a repository's open issues carrying the trigger label.
    ListLabelled {
        /// The installation.
        installation: InstallationId,
        /// Which repository.
        repo: RepoName,
        /// The label.
        trigger: String,
    },
    /// Start an agent (exactly once per issue and attempt).
    Launch {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
        /// Which attempt.
        attempt: u32,
        /// The agent's instructions.
        prompt: String,
        /// Stacked work: the branch to make from the blocker's (base, new).
        stack: Option<(String, String)>,
    },
    /// Stop the issue's unfinished run, if it has one.
    Cancel {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
    },
    /// Launches may go ahead again after a quota pause.
    ResumeAgents {
        /// The installation.
        installation: InstallationId,
    },
    /// Show an issue's status: its state label, its Projects option, its status comment.
    PublishStatus {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
        /// The status comment.
        body: String,
        /// The state label to add, if it changes.
        add_label: Option<String>,
        /// The state label to remove, if it changes.
        remove_label: Option<String>,
        /// The Projects field and option to set, if it changes.
        project: Option<(String, String)>,
    },
    /// Post a comment on an issue.
    Reply {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
        /// What to say.
        body: String,
    },
    /// React to a comment.
    React {
        /// The installation.
        installation: InstallationId,
        /// Where the comment is.
        repo: RepoName,
        /// The comment.
        comment: u64,
        /// The reaction (`eyes`, `rocket`, `confused`).
        reaction: String,
    },
    /// Merge the first of these pull requests that GitHub reports clean, and close the
    /// issue.
    TryMerge {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
        /// Its agent's pull requests.
        pulls: Vec<PullRequestLink>,
    },
    /// Close an issue as completed.
    CloseIssue {
        /// The installation.
        installation: InstallationId,
        /// The issue.
        issue: IssueRef,
    },
}

impl Decision {
    /// The installation the decision acts in (whose token its effect uses).
    pub fn installation(&self) -> InstallationId {
        match self {
            Decision::ReadRepoConfig { installation, .. }
            | Decision::ReadLabelActor { installation, .. }
            | Decision::CheckPermission { installation, .. }
            | Decision::ReadNativeBlockers { installation, .. }
            | Decision::ReadSubIssues { installation, .. }
            | Decision::SyncNativeDependency { installation, .. }
            | Decision::ReadIssue { installation, .. }
            | Decision::ReadProjectItem { installation, .. }
            | Decision::ListRepositories { installation }
            | Decision::ListLabelled { installation, .. }
            | Decision::Launch { installation, .. }
            | Decision::Cancel { installation, .. }
            | Decision::ResumeAgents { installation }
            | Decision::PublishStatus { installation, .. }
            | Decision::Reply { installation, .. }
            | Decision::React { installation, .. }
            | Decision::TryMerge { installation, .. }
            | Decision::CloseIssue { installation, .. } => *installation,
        }
    }

    /// The issue this decision acts on, when it acts on one: decisions for one issue are
    /// carried out in the order they were made.
    pub fn issue(&self) -> Option<&IssueRef> {
        match self {
            Self::ReadLabelActor { issue, .. } => Some(&issue.reference),
            Self::ReadNativeBlockers { issue, .. }
            | Self::ReadSubIssues { issue, .. }
            | Self::SyncNativeDependency { issue, .. }
            | Self::ReadIssue { issue, .. }
            | Self::Launch { issue, .. }
            | Self::Cancel { issue, .. }
            | Self::PublishStatus { issue, .. }
            | Self::Reply { issue, .. }
            | Self::TryMerge { issue, .. }
            | Self::CloseIssue { issue, .. } => Some(issue),
            Self::CheckPermission { then, .. } => Some(match then {
                AfterPermission::Label(issue) | AfterPermission::ProjectMove(issue) => {
                    &issue.reference
                }
                AfterPermission::Commands(request) => &request.issue.reference,
                AfterPermission::SubIssue { child, .. } => &child.reference,
            }),
            Self::ReadRepoConfig { .. }
            | Self::ReadProjectItem { .. }
            | Self::ListRepositories { .. }
            | Self::ListLabelled { .. }
            | Self::ResumeAgents { .. }
            | Self::React { .. } => None,
        }
    }

    /// Whether it only reads (GitHub's answer changes nothing, so reading twice is
    /// harmless): such a decision may be carried out before the step that made it is
    /// committed.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Self::ReadRepoConfig { .. }
                | Self::ReadLabelActor { .. }
                | Self::CheckPermission { .. }
                | Self::ReadNativeBlockers { .. }
                | Self::ReadSubIssues { .. }
                | Self::ReadIssue { .. }
                | Self::ReadProjectItem { .. }
                | Self::ListRepositories { .. }
                | Self::ListLabelled { .. }
        )
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ReadRepoConfig { .. } => "read_repo_config",
            Self::ReadLabelActor { .. } => "read_label_actor",
            Self::CheckPermission { .. } => "check_permission",
            Self::ReadNativeBlockers { .. } => "read_native_blockers",
            Self::ReadSubIssues { .. } => "read_sub_issues",
            Self::SyncNativeDependency { .. } => "sync_native_dependency",
            Self::ReadIssue { .. } => "read_issue",
            Self::ReadProjectItem { .. } => "read_project_item",
            Self::ListRepositories { .. } => "list_repositories",
            Self::ListLabelled { .. } => "list_labelled",
            Self::Launch { .. } => "launch",
            Self::Cancel { .. } => "cancel",
            Self::ResumeAgents { .. } => "resume_agents",
            Self::PublishStatus { .. } => "publish_status",
            Self::Reply { .. } => "reply",
            Self::React { .. } => "react",
            Self::TryMerge { .. } => "try_merge",
            Self::CloseIssue { .. } => "close_issue",
        }
    }
}
