//! The reconciler: at start-up and periodically, heals what lost webhooks or downtime left
//! behind, repository by repository, and reads again the blockers that still hold work.

use super::*;

impl Bot {
    /// Heals what lost webhooks or downtime left behind: for every repository of every
    /// installation, the open issues with the trigger label are listed (conditional
    /// requests: an unchanged list costs a 304) and compared with what the bot knows; then
    /// runs are followed and every managed status is published again if it changed.
    pub async fn reconcile(&self) -> Result<(), BotError> {
        // Runs first: an issue closed while its run finished is not taken for a cancel.
        self.tick().await?;
        let mut targets: Vec<(InstallationId, Vec<RepoName>)> = Vec::new();
        if self.inner.github.is_app() {
            for id in self.inner.github.installations().await? {
                let client = self.inner.github.for_installation(id).await?;
                targets.push((id, client.installation_repositories().await?));
            }
        } else {
            // Token mode: the repositories the bot already knows.
            let state = self.inner.state.lock().await;
            for (id, installation) in &state.installations {
                let repos: BTreeSet<RepoName> =
                    installation.issues.keys().map(|i| i.repo.clone()).collect();
                targets.push((*id, repos.into_iter().collect()));
            }
        }
        let mut state = self.inner.state.lock().await;
        for (id, repos) in targets {
            for repo in repos {
                // One repository's trouble (a 403, an outage) does not stop the others.
                if let Err(err) = self.reconcile_repo(&mut state, id, &repo).await {
                    tracing::warn!(%repo, error = %err, "reconciling the repository failed; trying again next time");
                }
            }
        }
        self.reread_open_blockers(&mut state).await;
        // Every managed issue once more: a comment or label edited while down is redone
        // only where the stored hash or label differs.
        let all: Vec<(InstallationId, IssueRef)> = state
            .installations
            .iter()
            .flat_map(|(id, installation)| {
                installation
                    .issues
                    .iter()
                    .filter(|(_, t)| t.managed)
                    .map(move |(issue, _)| (*id, issue.clone()))
            })
            .collect();
        state.dirty.extend(all);
        self.settle(&mut state).await
    }

    /// Brings one repository in line with GitHub: labelled open issues are managed (or
    /// re-read when changed), managed issues no longer listed are looked at again.
    pub(super) async fn reconcile_repo(
        &self,
        state: &mut State,
        id: InstallationId,
        repo: &RepoName,
    ) -> Result<(), BotError> {
        let trigger = self.load_repo(state, id, repo, None).await?.trigger_label;
        let client = self.client(id, repo).await?;
        let open = client.open_issues_labeled(repo, &trigger).await?;
        let found: BTreeSet<IssueRef> = open.iter().map(|i| i.reference.clone()).collect();
        for snapshot in open {
            self.adopt(state, id, snapshot).await?;
        }
        let vanished: Vec<IssueRef> = state
            .installations
            .get(&id)
            .map(|installation| {
                installation
                    .issues
                    .iter()
                    .filter(|(issue, tracked)| {
                        &issue.repo == repo
                            && tracked.managed
                            && tracked.status == IssueStatus::Open
                            && !found.contains(*issue)
                    })
                    .map(|(issue, _)| issue.clone())
                    .collect()
            })
            .unwrap_or_default();
        for issue in vanished {
            self.recheck(state, id, &issue).await?;
        }
        Ok(())
    }

    /// Reads again every blocker the bot does not manage that still holds a managed issue:
    /// its `closed` webhook may have been lost, or never sent to this App at all.
    pub(super) async fn reread_open_blockers(&self, state: &mut State) {
        let holding: Vec<(InstallationId, IssueRef)> = state
            .installations
            .iter()
            .flat_map(|(id, installation)| {
                installation
                    .issues
                    .iter()
                    .filter(|(_, t)| !t.managed && !t.status.satisfies())
                    .filter(|(issue, _)| {
                        installation.graph.dependents(issue).iter().any(|d| {
                            installation
                                .issues
                                .get(d)
                                .is_some_and(|t| t.managed && t.status == IssueStatus::Open)
                        })
                    })
                    .map(move |(issue, _)| (*id, issue.clone()))
            })
            .collect();
        for (id, issue) in holding {
            if let Err(err) = self.reread(state, id, &issue).await {
                tracing::warn!(%issue, error = %err, "re-reading a blocker failed; trying again next time");
            }
        }
    }

    /// The App was installed, or repositories were added to it: their labelled issues are
    /// picked up at once rather than at the next reconciliation.
    pub(super) async fn welcome(
        &self,
        state: &mut State,
        id: InstallationId,
        repos: &[RepoName],
    ) -> Result<(), BotError> {
        let repos = if repos.is_empty() && self.inner.github.is_app() {
            self.inner
                .github
                .for_installation(id)
                .await?
                .installation_repositories()
                .await?
        } else {
            repos.to_vec()
        };
        for repo in &repos {
            if let Err(err) = self.reconcile_repo(state, id, repo).await {
                tracing::warn!(%repo, error = %err, "reading a new repository failed; the reconciler will try again");
            }
        }
        Ok(())
    }
}
