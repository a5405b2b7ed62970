//! The effects: each [`Decision`] of the engine carried out on GitHub, Codegen or the
//! store, and its result reported back as an [`Outcome`] for the engine. Nothing here
//! decides anything the engine could: an effect reads or writes what it is told, and says
//! what happened. Retrying is the outbox's (and each client's) business, so an effect is
//! written to be safe to run again: creations look for what an interrupted attempt made.

mod reads;
mod runs;
mod status;

use std::sync::Arc;

use crate::agents::Agents;
use crate::domain::{InstallationId, RepoName};
use crate::engine::machine::{Decision, Outcome};
use crate::github::{GitHub, GitHubApp, GithubError};
use crate::store::{Store, StoreError};

/// Why an effect failed; the outbox tries it again later.
#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    /// GitHub did not answer as needed.
    #[error("GitHub: {0}")]
    Github(#[from] GithubError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl EffectError {
    /// Whether trying again cannot help (GitHub refused for good).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Github(err) if matches!(err.status(), Some(400 | 401 | 403 | 404 | 410 | 422)))
    }
}

/// What the effects act through.
#[derive(Clone)]
pub struct Effects {
    store: Store,
    github: Arc<GitHubApp>,
    agents: Option<Arc<Agents>>,
}

impl Effects {
    /// Effects on `store`, through `github` and (when configured) `agents`.
    pub fn new(store: Store, github: Arc<GitHubApp>, agents: Option<Arc<Agents>>) -> Self {
        Self {
            store,
            github,
            agents,
        }
    }

    /// The agents, when Codegen is configured.
    pub fn agents(&self) -> Option<&Agents> {
        self.agents.as_deref()
    }

    /// The GitHub side.
    pub fn github(&self) -> &GitHubApp {
        &self.github
    }

    /// Carries out `decision` at `now`; `attempt` is 0 the first time. The outcomes are
    /// for the engine (none for a pure write).
    pub async fn execute(
        &self,
        decision: &Decision,
        attempt: u32,
        now: i64,
    ) -> Result<Vec<Outcome>, EffectError> {
        match decision {
            Decision::ReadRepoConfig {
                installation,
                repo,
                report_on,
                then,
            } => Ok(vec![
                self.read_repo_config(*installation, repo, report_on.clone(), *then)
                    .await?,
            ]),
            Decision::ReadLabelActor {
                installation,
                issue,
                trigger,
            } => Ok(vec![
                self.read_label_actor(*installation, issue, trigger).await?,
            ]),
            Decision::CheckPermission {
                installation,
                repo,
                user,
                then,
            } => Ok(vec![
                self.check_permission(*installation, repo, user, then)
                    .await?,
            ]),
            Decision::ReadNativeBlockers {
                installation,
                issue,
                open_blockers,
            } => Ok(vec![
                self.read_native_blockers(*installation, issue, *open_blockers)
                    .await?,
            ]),
            Decision::ReadIssue {
                installation,
                issue,
                purpose,
            } => Ok(vec![self.read_issue(*installation, issue, *purpose).await?]),
            Decision::ReadSubIssues {
                installation,
                issue,
                counts,
                adopt,
            } => {
                let client = self.client(*installation, &issue.repo).await?;
                Ok(vec![Outcome::SubIssuesRead {
                    installation: *installation,
                    issue: issue.clone(),
                    children: match client.sub_issues(issue).await {
                        Ok(children) => children,
                        // A GitHub Enterprise Server without sub-issues has no such route.
                        Err(err) if err.status() == Some(404) => Vec::new(),
                        Err(err) => return Err(err.into()),
                    },
                    counts: *counts,
                    adopt: *adopt,
                }])
            }
            Decision::SyncNativeDependency {
                installation,
                issue,
                blocker,
                add,
            } => Ok(vec![
                self.sync_native_dependency(*installation, issue, blocker, *add, attempt)
                    .await?,
            ]),
            Decision::ReadProjectItem {
                installation,
                repo,
                item,
                content,
                field,
                queued,
                sender,
            } => {
                let read = reads::ProjectItemRead {
                    repo: repo.as_ref(),
                    item,
                    content,
                    field,
                    queued,
                };
                Ok(vec![
                    self.read_project_item(*installation, read, sender.clone())
                        .await?,
                ])
            }
            Decision::ListRepositories { installation } => {
                let client = self.github.for_installation(*installation).await?;
                Ok(vec![Outcome::RepositoriesListed {
                    installation: *installation,
                    repos: client.installation_repositories().await?,
                }])
            }
            Decision::ListLabelled {
                installation,
                repo,
                trigger,
            } => {
                let client = self.client(*installation, repo).await?;
                Ok(vec![Outcome::LabelledListed {
                    installation: *installation,
                    repo: repo.clone(),
                    issues: client.open_issues_labeled(repo, trigger).await?,
                }])
            }
            Decision::Launch {
                installation,
                issue,
                attempt: run_attempt,
                prompt,
                stack,
            } => Ok(vec![
                self.launch(
                    *installation,
                    issue,
                    *run_attempt,
                    prompt,
                    stack.as_ref(),
                    now,
                )
                .await?,
            ]),
            Decision::Cancel {
                installation,
                issue,
            } => Ok(self.cancel(*installation, issue, now).await?),
            Decision::ResumeAgents { installation } => {
                if let Some(agents) = self.agents() {
                    agents.resume(*installation);
                }
                Ok(Vec::new())
            }
            Decision::PublishStatus {
                installation,
                issue,
                body,
                add_label,
                remove_label,
                project,
            } => {
                let change = status::StatusChange {
                    body,
                    add_label: add_label.as_deref(),
                    remove_label: remove_label.as_deref(),
                    project: project.as_ref(),
                };
                self.publish_status(*installation, issue, change).await
            }
            Decision::Reply {
                installation,
                issue,
                body,
            } => {
                let client = self.client(*installation, &issue.repo).await?;
                // Run again after a crash inside this effect: the comment may be there.
                if attempt > 0
                    && client
                        .comments(issue)
                        .await?
                        .iter()
                        .any(|c| c.body == *body)
                {
                    return Ok(Vec::new());
                }
                client.create_comment(issue, body).await?;
                Ok(Vec::new())
            }
            Decision::React {
                installation,
                repo,
                comment,
                reaction,
            } => {
                let client = self.client(*installation, repo).await?;
                // A reaction is a courtesy: a failure is logged, never retried.
                if let Err(err) = client.react_to_comment(repo, *comment, reaction).await {
                    tracing::warn!(error = %err, reaction, "could not react to a command");
                }
                Ok(Vec::new())
            }
            Decision::TryMerge {
                installation,
                issue,
                pulls,
            } => Ok(vec![self.try_merge(*installation, issue, pulls).await?]),
            Decision::CloseIssue {
                installation,
                issue,
            } => {
                let client = self.client(*installation, &issue.repo).await?;
                client.close_issue(issue).await?;
                Ok(Vec::new())
            }
        }
    }

    /// The GitHub client acting for `installation` on `repo`.
    async fn client(
        &self,
        installation: InstallationId,
        repo: &RepoName,
    ) -> Result<GitHub, GithubError> {
        self.github.client(installation, repo).await
    }
}
