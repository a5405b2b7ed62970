//! Installations and repositories coming and going: suspended, removed, uninstalled.

use std::collections::BTreeSet;

use super::dependencies::lookup;
use super::handlers::installation_mut;
use super::{Bot, BotError, State};
use crate::clock::now_millis;
use crate::domain::{InstallationId, IssueRef, RepoName};

impl Bot {
    /// The App was uninstalled: its running agents are stopped and its issues forgotten.
    pub(super) async fn forget_installation(
        &self,
        state: &mut State,
        id: InstallationId,
    ) -> Result<(), BotError> {
        let Some(installation) = state.installations.get(&id) else {
            return Ok(());
        };
        let repos: BTreeSet<RepoName> =
            installation.issues.keys().map(|i| i.repo.clone()).collect();
        let repos: Vec<RepoName> = repos.into_iter().collect();
        self.forget_repositories(state, id, &repos).await?;
        state.installations.remove(&id);
        self.suspend(state, id, "", false).await?;
        tracing::info!(installation = %id, "the App was uninstalled; its issues are forgotten");
        Ok(())
    }

    /// Repositories left the installation (or it was uninstalled): the App can no longer
    /// act there, so their running agents are stopped and their issues forgotten. Issues
    /// elsewhere that they blocked keep blocking (now as unknown blockers).
    pub(super) async fn forget_repositories(
        &self,
        state: &mut State,
        id: InstallationId,
        repos: &[RepoName],
    ) -> Result<(), BotError> {
        let Some(installation) = state.installations.get_mut(&id) else {
            return Ok(());
        };
        let gone: Vec<IssueRef> = installation
            .issues
            .keys()
            .filter(|i| repos.contains(&i.repo))
            .cloned()
            .collect();
        for issue in &gone {
            if let Some(agents) = &self.inner.agents
                && agents.cancel(issue, now_millis()).await?.is_some()
            {
                tracing::info!(%issue, "the App lost access to the repository; its agent was stopped");
            }
            self.inner.store.delete_issue(issue).await?;
        }
        let installation = installation_mut(state, id, &self.inner.settings);
        for issue in &gone {
            installation.issues.remove(issue);
            installation.runs.remove(issue);
        }
        super::rebuild_graph(installation, &self.inner.settings);
        state
            .dirty
            .retain(|(i, issue)| !(*i == id && repos.contains(&issue.repo)));
        for repo in repos {
            state.repos.remove(repo);
        }
        if !gone.is_empty() {
            tracing::info!(installation = %id, issues = gone.len(), "repositories left the installation; their issues are forgotten");
        }
        Ok(())
    }

    /// An installation was suspended (`on`) or unsuspended: nothing is launched for it
    /// meanwhile; remembered across restarts.
    pub(super) async fn suspend(
        &self,
        state: &mut State,
        id: InstallationId,
        account: &str,
        on: bool,
    ) -> Result<(), BotError> {
        let key = format!("suspended:{}", id.0);
        if on {
            self.inner.store.set_setting(&key, Some(account)).await?;
            state.suspended.insert(id);
            tracing::warn!(installation = %id, account, "the installation was suspended; nothing is launched for it until it is unsuspended");
        } else {
            self.inner.store.set_setting(&key, None).await?;
            if state.suspended.remove(&id) {
                tracing::info!(installation = %id, account, "the installation was unsuspended; launching resumes");
            }
        }
        metrics::gauge!(crate::telemetry::names::INSTALLATION_SUSPENDED, "installation" => id.0.to_string())
            .set(if on { 1.0 } else { 0.0 });
        Ok(())
    }

    /// Reads an issue the bot tracks again (a blocker it does not manage, or a managed
    /// issue the reconciler did not find) and brings its dependents in line.
    pub(super) async fn reread(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Result<(), BotError> {
        let client = self.client(id, &issue.repo).await?;
        let facts = lookup(&client, issue).await?;
        self.observe(state, id, issue, facts).await
    }
}
