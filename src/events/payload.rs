//! GitHub's webhook payloads (only the fields the app reads) and their translation into
//! domain events. These types never leave this file.

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::{
    CloseReason, Comment, CommentAction, Decoded, DependencyAction, DomainEvent, Event,
    InstallationAction, Issue, IssueAction, IssueState, LabelAction, ProjectItem,
    ProjectItemAction, PullRequest, PullRequestAction,
};
use crate::domain::{InstallationId, IssueRef, RepoName, User};

/// A payload that does not have the shape its event promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event} payload, field `{path}`: {message}")]
pub struct DecodeError {
    event: String,
    path: String,
    message: String,
}

/// Turns a verified delivery body into a domain event, or says why it is ignored.
/// `action` is the payload's `action` field, which the door already read and the inbox keeps;
/// [`decode_payload`] finds it itself.
pub fn decode(event: &str, action: Option<&str>, body: &[u8]) -> Result<Decoded, DecodeError> {
    decode_event(event, action, body).map_err(|err| DecodeError {
        event: event.to_owned(),
        ..err
    })
}

/// [`decode`] for a body whose `action` has not been read yet.
pub fn decode_payload(event: &str, body: &[u8]) -> Result<Decoded, DecodeError> {
    let action = parse::<ActionOnly>(event, body)?.action;
    decode(event, action.as_deref(), body)
}

fn decode_event(event: &str, action: Option<&str>, body: &[u8]) -> Result<Decoded, DecodeError> {
    // Actions the app has no use for are ignored before the payload is read, so that their
    // (sometimes thinner) payloads are never held to the shape of the others.
    if let Some(handled) = handled_actions(event)
        && !action.is_some_and(|a| handled.contains(&a))
    {
        return Ok(Decoded::Ignored("action not handled"));
    }
    match event {
        "issues" => issues(parse(event, body)?),
        "issue_comment" => issue_comment(parse(event, body)?),
        "label" => label(parse(event, body)?),
        "pull_request" => pull_request(parse(event, body)?),
        "projects_v2_item" => project_item(parse(event, body)?),
        "installation" => installation(parse(event, body)?),
        "installation_repositories" => installation_repositories(parse(event, body)?),
        "issue_dependencies" => issue_dependencies(parse(event, body)?),
        "push" => push(parse(event, body)?),
        "ping" => ping(parse(event, body)?),
        _ => Ok(Decoded::Ignored("event not handled")),
    }
}

#[derive(Deserialize)]
struct ActionOnly {
    action: Option<String>,
}

/// The actions of each event that become domain events; `None` for events without actions.
fn handled_actions(event: &str) -> Option<&'static [&'static str]> {
    Some(match event {
        "issues" => &[
            "opened",
            "edited",
            "labeled",
            "unlabeled",
            "closed",
            "reopened",
            "deleted",
            "transferred",
        ],
        "issue_comment" => &["created", "edited", "deleted"],
        "label" => &["created", "edited", "deleted"],
        "pull_request" => &["opened", "edited", "closed", "reopened"],
        "projects_v2_item" => &["created", "edited", "archived", "restored", "deleted"],
        "installation" => &["created", "deleted", "suspend", "unsuspend"],
        "installation_repositories" => &["added", "removed"],
        "issue_dependencies" => &[
            "blocked_by_added",
            "blocked_by_removed",
            "blocking_added",
            "blocking_removed",
        ],
        _ => return None,
    })
}

fn parse<T: DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, DecodeError> {
    // The fast path reads the payload once; only a payload that fails is read again, with
    // the path tracking that names the offending field.
    serde_json::from_slice(body).or_else(|_| {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| DecodeError {
            event: event.to_owned(),
            path: err.path().to_string(),
            message: err.inner().to_string(),
        })
    })
}

fn invalid(path: &str, message: impl Into<String>) -> DecodeError {
    DecodeError {
        event: String::new(),
        path: path.to_owned(),
        message: message.into(),
    }
}

// ---- shared pieces -------------------------------------------------------------------

#[derive(Deserialize)]
struct UserPayload {
    id: u64,
    login: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl From<UserPayload> for User {
    fn from(user: UserPayload) -> Self {
        Self {
            id: user.id,
            login: user.login,
            is_bot: user.kind.as_deref() == Some("Bot"),
        }
    }
}

#[derive(Deserialize)]
struct InstallationRef {
    id: u64,
}

#[derive(Deserialize)]
struct RepositoryPayload {
    full_name: String,
}

impl RepositoryPayload {
    fn name(&self, path: &str) -> Result<RepoName, DecodeError> {
        self.full_name
            .parse()
            .map_err(|err: crate::domain::InvalidRepoName| invalid(path, err.to_string()))
    }
}

#[derive(Deserialize)]
struct LabelPayload {
    name: String,
}

#[derive(Deserialize)]
struct Changed {
    from: String,
}

fn domain_event(
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
    kind: Event,
) -> Decoded {
    Decoded::Event(Box::new(DomainEvent {
        installation: installation.map(|i| InstallationId(i.id)),
        sender: sender.map(User::from),
        kind,
    }))
}

#[derive(Deserialize)]
struct IssuePayload {
    id: u64,
    node_id: String,
    number: u64,
    title: String,
    body: Option<String>,
    state: String,
    state_reason: Option<String>,
    // GitHub's schema allows labels as objects or as plain names.
    #[serde(default)]
    labels: Vec<crate::github::RestLabel>,
    // Null for a deleted ("ghost") account.
    user: Option<UserPayload>,
    html_url: String,
    repository_url: String,
    pull_request: Option<IgnoredAny>,
    created_at: String,
    #[serde(default)]
    issue_dependencies_summary: Option<crate::github::DependenciesSummary>,
}

impl IssuePayload {
    fn into_issue(self, path: &str) -> Result<Issue, DecodeError> {
        let repo = RepoName::from_api_url(&self.repository_url)
            .ok_or_else(|| invalid(&format!("{path}.repository_url"), "not a repository URL"))?;
        let state = match self.state.as_str() {
            "open" => IssueState::Open,
            "closed" => IssueState::Closed(close_reason(self.state_reason.as_deref())),
            other => {
                return Err(invalid(
                    &format!("{path}.state"),
                    format!("unknown state `{other}`"),
                ));
            }
        };
        Ok(Issue {
            reference: IssueRef::new(repo, self.number),
            id: self.id,
            node_id: self.node_id,
            title: self.title,
            body: self.body.unwrap_or_default(),
            state,
            labels: self.labels.iter().map(|l| l.name().to_owned()).collect(),
            author: self.user.map(User::from),
            is_pull_request: self.pull_request.is_some(),
            html_url: self.html_url,
            created_at: self.created_at,
            open_blockers: self.issue_dependencies_summary.map(|s| s.blocked_by),
        })
    }
}

fn close_reason(state_reason: Option<&str>) -> CloseReason {
    match state_reason {
        Some("not_planned") => CloseReason::NotPlanned,
        Some("duplicate") => CloseReason::Duplicate,
        // `completed`, or no reason at all (issues closed before reasons existed).
        _ => CloseReason::Completed,
    }
}

// ---- issues --------------------------------------------------------------------------

#[derive(Deserialize)]
struct IssuesPayload {
    action: String,
    issue: IssuePayload,
    label: Option<LabelPayload>,
    changes: Option<IssueChanges>,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

#[derive(Deserialize)]
struct IssueChanges {
    body: Option<Changed>,
    new_issue: Option<MovedIssue>,
}

#[derive(Deserialize)]
struct MovedIssue {
    number: u64,
    repository_url: String,
}

fn issues(payload: IssuesPayload) -> Result<Decoded, DecodeError> {
    let label = |label: Option<LabelPayload>| {
        label
            .map(|l| l.name)
            .ok_or_else(|| invalid("label", "missing for a label action"))
    };
    let action = match payload.action.as_str() {
        "opened" => IssueAction::Opened,
        "edited" => IssueAction::Edited {
            old_body: payload.changes.and_then(|c| c.body).map(|b| b.from),
        },
        "labeled" => IssueAction::Labeled {
            label: label(payload.label)?,
        },
        "unlabeled" => IssueAction::Unlabeled {
            label: label(payload.label)?,
        },
        "closed" => IssueAction::Closed {
            reason: close_reason(payload.issue.state_reason.as_deref()),
        },
        "reopened" => IssueAction::Reopened,
        "deleted" => IssueAction::Deleted,
        "transferred" => IssueAction::Transferred {
            to: payload.changes.and_then(|c| c.new_issue).and_then(|moved| {
                Some(IssueRef::new(
                    RepoName::from_api_url(&moved.repository_url)?,
                    moved.number,
                ))
            }),
        },
        _ => return Ok(Decoded::Ignored("issue action not handled")),
    };
    let issue = payload.issue.into_issue("issue")?;
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::Issue { action, issue },
    ))
}

// ---- issue_comment -------------------------------------------------------------------

#[derive(Deserialize)]
struct IssueCommentPayload {
    action: String,
    issue: IssuePayload,
    comment: CommentPayload,
    changes: Option<CommentChanges>,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

#[derive(Deserialize)]
struct CommentPayload {
    id: u64,
    body: Option<String>,
    user: UserPayload,
    performed_via_github_app: Option<AppRef>,
}

#[derive(Deserialize)]
struct AppRef {
    id: u64,
    #[serde(default)]
    slug: Option<String>,
}

#[derive(Deserialize)]
struct CommentChanges {
    body: Option<Changed>,
}

fn issue_comment(payload: IssueCommentPayload) -> Result<Decoded, DecodeError> {
    let action = match payload.action.as_str() {
        "created" => CommentAction::Created,
        "edited" => CommentAction::Edited {
            old_body: payload.changes.and_then(|c| c.body).map(|b| b.from),
        },
        "deleted" => CommentAction::Deleted,
        _ => return Ok(Decoded::Ignored("comment action not handled")),
    };
    let comment = Comment {
        id: payload.comment.id,
        body: payload.comment.body.unwrap_or_default(),
        author: payload.comment.user.into(),
        via_app: payload
            .comment
            .performed_via_github_app
            .map(|app| crate::domain::AppIdentity {
                id: app.id,
                slug: app.slug.unwrap_or_default(),
            }),
    };
    let issue = payload.issue.into_issue("issue")?;
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::IssueComment {
            action,
            issue,
            comment,
        },
    ))
}

// ---- label ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct LabelEventPayload {
    action: String,
    label: LabelPayload,
    repository: RepositoryPayload,
    changes: Option<LabelChanges>,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

#[derive(Deserialize)]
struct LabelChanges {
    name: Option<Changed>,
}

fn label(payload: LabelEventPayload) -> Result<Decoded, DecodeError> {
    let action = match payload.action.as_str() {
        "created" => LabelAction::Created,
        "edited" => LabelAction::Edited {
            old_name: payload.changes.and_then(|c| c.name).map(|n| n.from),
        },
        "deleted" => LabelAction::Deleted,
        _ => return Ok(Decoded::Ignored("label action not handled")),
    };
    let repo = payload.repository.name("repository.full_name")?;
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::Label {
            action,
            repo,
            name: payload.label.name,
        },
    ))
}

// ---- pull_request --------------------------------------------------------------------

#[derive(Deserialize)]
struct PullRequestEventPayload {
    action: String,
    pull_request: PullRequestPayload,
    repository: RepositoryPayload,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    number: u64,
    title: String,
    body: Option<String>,
    html_url: String,
    #[serde(default)]
    merged: Option<bool>,
    head: BranchPayload,
    base: BranchPayload,
    user: UserPayload,
}

#[derive(Deserialize)]
struct BranchPayload {
    #[serde(rename = "ref")]
    name: String,
}

fn pull_request(payload: PullRequestEventPayload) -> Result<Decoded, DecodeError> {
    let pr = payload.pull_request;
    let action = match payload.action.as_str() {
        "opened" => PullRequestAction::Opened,
        "edited" => PullRequestAction::Edited,
        "closed" => PullRequestAction::Closed {
            merged: pr.merged.unwrap_or(false),
        },
        "reopened" => PullRequestAction::Reopened,
        _ => return Ok(Decoded::Ignored("pull request action not handled")),
    };
    let repo = payload.repository.name("repository.full_name")?;
    let pull = PullRequest {
        reference: IssueRef::new(repo, pr.number),
        title: pr.title,
        body: pr.body.unwrap_or_default(),
        head_ref: pr.head.name,
        base_ref: pr.base.name,
        html_url: pr.html_url,
        author: Some(pr.user.into()),
    };
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::PullRequest { action, pull },
    ))
}

// ---- projects_v2_item ----------------------------------------------------------------

#[derive(Deserialize)]
struct ProjectItemEventPayload {
    action: String,
    projects_v2_item: ProjectItemPayload,
    changes: Option<ProjectItemChanges>,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

#[derive(Deserialize)]
struct ProjectItemPayload {
    node_id: String,
    project_node_id: String,
    content_node_id: String,
    content_type: String,
}

#[derive(Deserialize)]
struct ProjectItemChanges {
    field_value: Option<FieldValueChange>,
}

#[derive(Deserialize)]
struct FieldValueChange {
    field_node_id: Option<String>,
}

fn project_item(payload: ProjectItemEventPayload) -> Result<Decoded, DecodeError> {
    let action = match payload.action.as_str() {
        "created" => ProjectItemAction::Created,
        "edited" => ProjectItemAction::Edited {
            field_node_id: payload
                .changes
                .and_then(|c| c.field_value)
                .and_then(|f| f.field_node_id),
        },
        "archived" => ProjectItemAction::Archived,
        "restored" => ProjectItemAction::Restored,
        "deleted" => ProjectItemAction::Deleted,
        _ => return Ok(Decoded::Ignored("project item action not handled")),
    };
    let item = payload.projects_v2_item;
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::ProjectItem {
            action,
            item: ProjectItem {
                node_id: item.node_id,
                project_node_id: item.project_node_id,
                content_node_id: item.content_node_id,
                content_type: item.content_type,
            },
        },
    ))
}

// ---- installation --------------------------------------------------------------------

#[derive(Deserialize)]
struct InstallationEventPayload {
    action: String,
    installation: InstallationPayload,
    repositories: Option<Vec<RepositoryPayload>>,
    sender: Option<UserPayload>,
}

#[derive(Deserialize)]
struct InstallationPayload {
    id: u64,
    account: AccountPayload,
}

#[derive(Deserialize)]
struct AccountPayload {
    login: String,
}

fn repo_names(repos: &[RepositoryPayload], path: &str) -> Result<Vec<RepoName>, DecodeError> {
    repos
        .iter()
        .enumerate()
        .map(|(i, repo)| repo.name(&format!("{path}[{i}].full_name")))
        .collect()
}

fn installation(payload: InstallationEventPayload) -> Result<Decoded, DecodeError> {
    let action = match payload.action.as_str() {
        "created" => InstallationAction::Created,
        "deleted" => InstallationAction::Deleted,
        "suspend" => InstallationAction::Suspended,
        "unsuspend" => InstallationAction::Unsuspended,
        _ => return Ok(Decoded::Ignored("installation action not handled")),
    };
    let repos = repo_names(
        payload.repositories.as_deref().unwrap_or(&[]),
        "repositories",
    )?;
    let installation = InstallationId(payload.installation.id);
    Ok(domain_event(
        Some(InstallationRef { id: installation.0 }),
        payload.sender,
        Event::Installation {
            action,
            installation,
            account: payload.installation.account.login,
            repos,
        },
    ))
}

#[derive(Deserialize)]
struct InstallationRepositoriesPayload {
    installation: InstallationRef,
    #[serde(default)]
    repositories_added: Vec<RepositoryPayload>,
    #[serde(default)]
    repositories_removed: Vec<RepositoryPayload>,
    sender: Option<UserPayload>,
}

fn installation_repositories(
    payload: InstallationRepositoriesPayload,
) -> Result<Decoded, DecodeError> {
    let installation = InstallationId(payload.installation.id);
    let added = repo_names(&payload.repositories_added, "repositories_added")?;
    let removed = repo_names(&payload.repositories_removed, "repositories_removed")?;
    Ok(domain_event(
        Some(payload.installation),
        payload.sender,
        Event::InstallationRepositories {
            installation,
            added,
            removed,
        },
    ))
}

// ---- issue_dependencies --------------------------------------------------------------

#[derive(Deserialize)]
struct IssueDependenciesPayload {
    action: String,
    blocked_issue: IssuePayload,
    blocking_issue: IssuePayload,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

fn issue_dependencies(payload: IssueDependenciesPayload) -> Result<Decoded, DecodeError> {
    // GitHub reports one link from both ends (`blocked_by_*` on the blocked issue,
    // `blocking_*` on the blocker); both mean the same edge.
    let action = match payload.action.as_str() {
        "blocked_by_added" | "blocking_added" => DependencyAction::Added,
        "blocked_by_removed" | "blocking_removed" => DependencyAction::Removed,
        _ => return Ok(Decoded::Ignored("dependency action not handled")),
    };
    let blocked = payload.blocked_issue.into_issue("blocked_issue")?;
    let blocking = payload.blocking_issue.into_issue("blocking_issue")?;
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::IssueDependency {
            action,
            blocked,
            blocking,
        },
    ))
}

// ---- ping ----------------------------------------------------------------------------

#[derive(Deserialize)]
struct PingPayload {
    hook_id: Option<u64>,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    repository: PushRepository,
    #[serde(default)]
    commits: Vec<PushCommit>,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

#[derive(Deserialize)]
struct PushRepository {
    full_name: String,
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct PushCommit {
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
}

fn push(payload: PushPayload) -> Result<Decoded, DecodeError> {
    let repo: RepoName = payload
        .repository
        .full_name
        .parse()
        .map_err(|_| invalid("repository.full_name", "not owner/name"))?;
    let default_branch = payload
        .repository
        .default_branch
        .is_some_and(|branch| payload.git_ref == format!("refs/heads/{branch}"));
    let mut paths: Vec<String> = payload
        .commits
        .into_iter()
        .flat_map(|c| c.added.into_iter().chain(c.modified).chain(c.removed))
        .collect();
    paths.sort();
    paths.dedup();
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::Push {
            repo,
            default_branch,
            paths,
        },
    ))
}

fn ping(payload: PingPayload) -> Result<Decoded, DecodeError> {
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::Ping {
            hook_id: payload.hook_id,
        },
    ))
}

#[cfg(test)]
mod tests;
