//! GitHub's webhook payloads (only the fields the app reads) and their translation into
//! domain events. These types never leave this module: this file dispatches a delivery to
//! the decoder of its event and holds the pieces payloads share; each event family has its
//! own file.

mod installations;
mod issues;
mod projects;
mod repository;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use installations::{installation, installation_repositories, ping};
use issues::{issue_comment, issue_dependencies, issues, sub_issues};
use projects::project_item;
use repository::{label, pull_request, push};

use super::{CloseReason, Decoded, DomainEvent, Event, Issue, IssueState};
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
        "sub_issues" => sub_issues(parse(event, body)?),
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
        "sub_issues" => &[
            "sub_issue_added",
            "sub_issue_removed",
            "parent_issue_added",
            "parent_issue_removed",
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
    #[serde(default)]
    sub_issues_summary: Option<crate::github::SubIssuesSummary>,
    // Set when a GitHub App opened the issue (an agent declaring follow-up work).
    #[serde(default)]
    performed_via_github_app: Option<AppRef>,
}

#[derive(Deserialize)]
struct AppRef {
    id: u64,
    #[serde(default)]
    slug: Option<String>,
}

impl From<AppRef> for crate::domain::AppIdentity {
    fn from(app: AppRef) -> Self {
        Self {
            id: app.id,
            slug: app.slug.unwrap_or_default(),
        }
    }
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
            sub_issues: self.sub_issues_summary.map(Into::into),
            via_app: self.performed_via_github_app.map(Into::into),
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

#[cfg(test)]
mod tests;
