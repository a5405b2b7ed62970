//! `installation`, `installation_repositories` and `ping`: the App installed, given
//! repositories or taken them back, and its webhook checked.

use serde::Deserialize;

use super::{DecodeError, InstallationRef, RepositoryPayload, UserPayload, domain_event};
use crate::domain::{InstallationId, RepoName};
use crate::events::{Decoded, Event, InstallationAction};

// ---- installation --------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct InstallationEventPayload {
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

pub(super) fn installation(payload: InstallationEventPayload) -> Result<Decoded, DecodeError> {
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
pub(super) struct InstallationRepositoriesPayload {
    installation: InstallationRef,
    #[serde(default)]
    repositories_added: Vec<RepositoryPayload>,
    #[serde(default)]
    repositories_removed: Vec<RepositoryPayload>,
    sender: Option<UserPayload>,
}

pub(super) fn installation_repositories(
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

// ---- ping ----------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct PingPayload {
    hook_id: Option<u64>,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

pub(super) fn ping(payload: PingPayload) -> Result<Decoded, DecodeError> {
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::Ping {
            hook_id: payload.hook_id,
        },
    ))
}
