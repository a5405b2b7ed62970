//! `issues`, `issue_comment`, `issue_dependencies` and `sub_issues`: what happened to an
//! issue, to a comment on it, or to a link between two issues.

use serde::Deserialize;

use super::{
    AppRef, Changed, DecodeError, InstallationRef, IssuePayload, LabelPayload, UserPayload,
};
use super::{close_reason, domain_event, invalid};
use crate::domain::{IssueRef, RepoName};
use crate::events::{
    Comment, CommentAction, Decoded, DependencyAction, Event, IssueAction, SubIssueAction,
};

// ---- issues --------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct IssuesPayload {
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

pub(super) fn issues(payload: IssuesPayload) -> Result<Decoded, DecodeError> {
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
pub(super) struct IssueCommentPayload {
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
struct CommentChanges {
    body: Option<Changed>,
}

pub(super) fn issue_comment(payload: IssueCommentPayload) -> Result<Decoded, DecodeError> {
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
        via_app: payload.comment.performed_via_github_app.map(Into::into),
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

// ---- issue_dependencies --------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct IssueDependenciesPayload {
    action: String,
    blocked_issue: IssuePayload,
    blocking_issue: IssuePayload,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

pub(super) fn issue_dependencies(
    payload: IssueDependenciesPayload,
) -> Result<Decoded, DecodeError> {
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

// ---- sub_issues ----------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct SubIssuesPayload {
    action: String,
    parent_issue: IssuePayload,
    sub_issue: IssuePayload,
    // Both optional in GitHub's schema.
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

pub(super) fn sub_issues(payload: SubIssuesPayload) -> Result<Decoded, DecodeError> {
    // GitHub reports one link from both ends (`sub_issue_*` to the parent's repository,
    // `parent_issue_*` to the child's); both mean the same link.
    let action = match payload.action.as_str() {
        "sub_issue_added" | "parent_issue_added" => SubIssueAction::Added,
        "sub_issue_removed" | "parent_issue_removed" => SubIssueAction::Removed,
        _ => return Ok(Decoded::Ignored("sub-issue action not handled")),
    };
    let parent = payload.parent_issue.into_issue("parent_issue")?;
    let child = payload.sub_issue.into_issue("sub_issue")?;
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::SubIssue {
            action,
            parent,
            child,
        },
    ))
}
