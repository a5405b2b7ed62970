//! `label`, `pull_request` and `push`: changes to a repository's labels, pull requests and
//! branches.

use serde::Deserialize;

use super::{Changed, DecodeError, InstallationRef, LabelPayload, RepositoryPayload, UserPayload};
use super::{domain_event, invalid};
use crate::domain::{IssueRef, RepoName};
use crate::events::{Decoded, Event, LabelAction, PullRequest, PullRequestAction};

// ---- label ---------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct LabelEventPayload {
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

pub(super) fn label(payload: LabelEventPayload) -> Result<Decoded, DecodeError> {
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
pub(super) struct PullRequestEventPayload {
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

pub(super) fn pull_request(payload: PullRequestEventPayload) -> Result<Decoded, DecodeError> {
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

// ---- push ----------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct PushPayload {
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

pub(super) fn push(payload: PushPayload) -> Result<Decoded, DecodeError> {
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
