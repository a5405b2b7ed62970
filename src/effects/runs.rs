//! Agent runs: launching (on a stacked branch when asked), cancelling, and merging an
//! agent's pull request once GitHub reports it clean.

use super::{EffectError, Effects};
use crate::agents::{Launch, LaunchOutcome};
use crate::domain::{InstallationId, IssueRef, PullRequestLink};
use crate::engine::machine::Outcome;

impl Effects {
    pub(super) async fn launch(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        attempt: u32,
        prompt: &str,
        stack: Option<&(String, String)>,
        now: i64,
    ) -> Result<Outcome, EffectError> {
        let Some(agents) = self.agents() else {
            return Ok(Outcome::Launched {
                installation,
                issue: issue.clone(),
                latest: None,
                quota_exhausted: None,
            });
        };
        if let Some((base, new)) = stack {
            let client = self.client(installation, &issue.repo).await?;
            // Made again on a second try: an existing branch is a warning, not a failure.
            if let Err(err) = client.create_branch(&issue.repo, new, base).await {
                tracing::warn!(%issue, %base, error = %err, "could not create the stacked branch; the agent is asked to");
            }
        }
        let launch = Launch {
            installation,
            issue: issue.clone(),
            attempt,
            prompt: prompt.to_owned(),
        };
        let outcome = agents.launch(&launch, now).await?;
        tracing::info!(%issue, attempt, %outcome, "launch");
        let quota_exhausted = match outcome {
            LaunchOutcome::Paused { reason } => Some(reason),
            _ => None,
        };
        // Whatever happened is in the run row; read it back.
        let latest = self.store.runs_of(issue).await?.pop();
        Ok(Outcome::Launched {
            installation,
            issue: issue.clone(),
            latest,
            quota_exhausted,
        })
    }

    pub(super) async fn cancel(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        now: i64,
    ) -> Result<Vec<Outcome>, EffectError> {
        let Some(agents) = self.agents() else {
            return Ok(Vec::new());
        };
        Ok(match agents.cancel(issue, now).await? {
            Some(run) => {
                tracing::info!(%issue, "the agent was stopped");
                vec![Outcome::RunRecorded { installation, run }]
            }
            None => Vec::new(),
        })
    }

    /// Merges the first pull request GitHub reports open, mergeable and with every check
    /// passed, then closes the issue.
    pub(super) async fn try_merge(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        pulls: &[PullRequestLink],
    ) -> Result<Outcome, EffectError> {
        let client = self.client(installation, &issue.repo).await?;
        for link in pulls {
            let Some(pull) = &link.pull else { continue };
            let info = client.pull_request(pull).await?;
            let clean = info.state == "open"
                && !info.merged
                && info.mergeable == Some(true)
                && info.mergeable_state.as_deref() == Some("clean");
            if !clean {
                continue;
            }
            client.merge_pull_request(pull, &info.head_sha).await?;
            client.close_issue(issue).await?;
            return Ok(Outcome::Merged {
                installation,
                issue: issue.clone(),
                pull: link.clone(),
            });
        }
        Ok(Outcome::NotMergeable {
            issue: issue.clone(),
        })
    }
}
