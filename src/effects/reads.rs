//! Reads the engine asks for: a repository's configuration file, who applied a label, a
//! user's permission, native blockers, an issue, a moved project card.

use super::{EffectError, Effects};
use crate::domain::{Actor, InstallationId, IssueRef, IssueSnapshot, Permission, RepoName, User};
use crate::engine::machine::{AfterConfig, AfterPermission, Outcome, ReadPurpose, RepoFile};
use crate::engine::repo_config::{REPO_CONFIG_PATH, parse_overrides};
use crate::github::GitHub;

/// A moved project card, as the decision names it.
pub(super) struct ProjectItemRead<'a> {
    pub(super) repo: Option<&'a RepoName>,
    pub(super) item: &'a str,
    pub(super) content: &'a str,
    pub(super) field: &'a str,
    pub(super) queued: &'a str,
}

impl Effects {
    pub(super) async fn read_repo_config(
        &self,
        installation: InstallationId,
        repo: &RepoName,
        report_on: Option<IssueRef>,
        then: AfterConfig,
    ) -> Result<Outcome, EffectError> {
        let client = self.client(installation, repo).await?;
        let file = match client.file(repo, REPO_CONFIG_PATH).await {
            Ok(None) => RepoFile::Absent,
            Ok(Some(text)) => match parse_overrides(&text) {
                Ok(overrides) => RepoFile::Overrides(Box::new(overrides)),
                Err(problem) => RepoFile::Invalid(problem),
            },
            Err(err) if err.status() == Some(403) => {
                tracing::warn!(%repo, error = %err, "cannot read the repository's configuration file; the defaults apply");
                RepoFile::Absent
            }
            Err(err) => return Err(err.into()),
        };
        Ok(Outcome::RepoConfigRead {
            repo: repo.clone(),
            file,
            report_on,
            then,
        })
    }

    pub(super) async fn read_label_actor(
        &self,
        installation: InstallationId,
        issue: &IssueSnapshot,
        trigger: &str,
    ) -> Result<Outcome, EffectError> {
        let client = self.client(installation, &issue.reference.repo).await?;
        let actor = client
            .last_labeled_by(&issue.reference, trigger)
            .await?
            .unwrap_or(Actor::Unknown);
        Ok(Outcome::LabelActorRead {
            installation,
            issue: issue.clone(),
            actor,
        })
    }

    pub(super) async fn check_permission(
        &self,
        installation: InstallationId,
        repo: &RepoName,
        user: &User,
        then: &AfterPermission,
    ) -> Result<Outcome, EffectError> {
        let client = self.client(installation, repo).await?;
        let permission: Permission = client.permission(repo, user).await?;
        Ok(Outcome::PermissionRead {
            installation,
            user: user.clone(),
            permission,
            then: then.clone(),
        })
    }

    pub(super) async fn read_native_blockers(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        open_blockers: Option<u32>,
    ) -> Result<Outcome, EffectError> {
        let client = self.client(installation, &issue.repo).await?;
        Ok(Outcome::NativeBlockersRead {
            installation,
            issue: issue.clone(),
            blockers: client.blocked_by(issue).await?,
            open_blockers,
        })
    }

    pub(super) async fn read_issue(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        purpose: ReadPurpose,
    ) -> Result<Outcome, EffectError> {
        let client = self.client(installation, &issue.repo).await?;
        Ok(Outcome::IssueRead {
            installation,
            issue: issue.clone(),
            snapshot: lookup(&client, issue).await?,
            purpose,
        })
    }

    pub(super) async fn read_project_item(
        &self,
        installation: InstallationId,
        read: ProjectItemRead<'_>,
        sender: Option<User>,
    ) -> Result<Outcome, EffectError> {
        let client = match read.repo {
            // Token mode: a repository's client reaches GraphQL.
            Some(repo) if !self.github.is_app() => self.client(installation, repo).await?,
            _ => self.github.for_installation(installation).await?,
        };
        let nothing = Outcome::ProjectItemRead {
            installation,
            issue: None,
            moved_to_queued: false,
            sender: sender.clone(),
        };
        let Some(issue) = client.issue_for_node(read.content).await? else {
            return Ok(nothing);
        };
        let items = client.project_items(&issue, read.field).await?;
        let moved_to_queued = items
            .iter()
            .any(|i| i.item_id == read.item && i.current.as_deref() == Some(read.queued));
        if !moved_to_queued {
            return Ok(nothing);
        }
        Ok(Outcome::ProjectItemRead {
            installation,
            issue: Some(client.issue(&issue).await?),
            moved_to_queued,
            sender,
        })
    }
}

impl Effects {
    /// Writes or removes a native "blocked by" link. A refusal GitHub means (a blocker the
    /// App cannot see, the limit of blockers reached) is reported to the engine rather than
    /// retried; a link found already there after a crash counts as written.
    pub(super) async fn sync_native_dependency(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        blocker: &IssueRef,
        add: bool,
        attempt: u32,
    ) -> Result<Outcome, EffectError> {
        let client = self.client(installation, &issue.repo).await?;
        let result = if !add {
            client.remove_blocked_by(issue, blocker).await
        } else if attempt > 0
            && client
                .blocked_by(issue)
                .await?
                .iter()
                .any(|b| &b.reference == blocker)
        {
            Ok(())
        } else {
            client.add_blocked_by(issue, blocker).await
        };
        let failure = match result {
            Ok(()) => None,
            Err(err)
                if err
                    .status()
                    .is_some_and(|s| matches!(s, 400..=499) && s != 429) =>
            {
                Some(err.to_string())
            }
            Err(err) => return Err(err.into()),
        };
        Ok(Outcome::NativeDependencySynced {
            installation,
            issue: issue.clone(),
            blocker: blocker.clone(),
            add,
            lasting: failure.is_some(),
            failure,
        })
    }
}

/// Reads an issue; `None` when the App cannot see it (it keeps blocking as unknown).
pub(super) async fn lookup(
    client: &GitHub,
    issue: &IssueRef,
) -> Result<Option<IssueSnapshot>, EffectError> {
    match client.issue(issue).await {
        Ok(snapshot) => Ok(Some(snapshot)),
        Err(err) if matches!(err.status(), Some(403 | 404 | 410)) => {
            tracing::info!(%issue, error = %err, "a dependency cannot be read; it keeps blocking");
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}
