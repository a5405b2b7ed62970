//! The reconciler and installations: repository settings read, labelled issues listed
//! and adopted, managed issues no longer listed looked at again, blockers that still hold
//! work re-read; installations created, suspended, removed, and repositories leaving.

use std::collections::BTreeSet;

use super::io::{AfterConfig, Decision, ReadPurpose, RepoFile};
use super::{Engine, TOKEN_MODE};
use crate::domain::{InstallationId, IssueRef, IssueSnapshot, RepoName};
use crate::engine::repo_config::{REPO_CONFIG_PATH, RepoSettings};
use crate::engine::texts;
use crate::events::InstallationAction;

impl Engine {
    /// A repository's configuration file was read: its settings apply from now on; an
    /// invalid file is reported on the issue that caused the read.
    pub(super) fn on_repo_config(
        &mut self,
        repo: RepoName,
        file: RepoFile,
        report_on: Option<IssueRef>,
        then: AfterConfig,
        out: &mut Vec<Decision>,
    ) {
        self.config_pending.remove(&repo);
        let defaults = self.settings.repo_defaults();
        let id = match then {
            AfterConfig::Reconcile(id) => id,
            _ => self.installation_of(&repo),
        };
        let settings = match file {
            RepoFile::Absent => defaults,
            RepoFile::Overrides(overrides) => {
                tracing::info!(%repo, "the repository's configuration file applies");
                RepoSettings::with(&defaults, *overrides)
            }
            RepoFile::Invalid(problem) => {
                tracing::warn!(%repo, %problem, "the repository's configuration file is invalid; the defaults apply");
                if let Some(issue) = report_on {
                    out.push(Decision::Reply {
                        installation: id,
                        issue,
                        body: texts::invalid_repo_config_note(REPO_CONFIG_PATH, &problem),
                    });
                }
                defaults
            }
        };
        self.repos.insert(repo.clone(), settings);
        self.touch_repository(id, &repo);
        if let AfterConfig::Reconcile(id) = then {
            self.reconcile_repo(id, &repo, out);
        }
    }

    /// The installation that tracks issues of `repo` (token mode's when none does).
    fn installation_of(&self, repo: &RepoName) -> InstallationId {
        self.installations
            .iter()
            .find(|(_, i)| i.issues.keys().any(|issue| &issue.repo == repo))
            .map_or(TOKEN_MODE, |(id, _)| *id)
    }

    /// Heals what lost webhooks or downtime left behind: every repository's labelled
    /// issues are listed and compared with what is known, blockers that still hold work
    /// are read again, and every managed status is published once more (the effects skip
    /// comments whose text did not change).
    pub(super) fn reconcile(
        &mut self,
        targets: Option<Vec<(InstallationId, Vec<RepoName>)>>,
        out: &mut Vec<Decision>,
    ) {
        let targets = targets.unwrap_or_else(|| {
            // Token mode: the repositories the engine already knows.
            self.installations
                .iter()
                .map(|(id, installation)| {
                    let repos: BTreeSet<RepoName> =
                        installation.issues.keys().map(|i| i.repo.clone()).collect();
                    (*id, repos.into_iter().collect())
                })
                .collect()
        });
        for (id, repos) in targets {
            for repo in repos {
                self.reconcile_repo(id, &repo, out);
            }
        }
        self.reread_open_blockers(out);
        self.published.clear();
        let all = self.issues_where(|_, _, tracked| tracked.managed);
        self.dirty.extend(all);
    }

    /// Lists one repository's labelled issues, once its trigger label is known.
    pub(super) fn reconcile_repo(
        &mut self,
        id: InstallationId,
        repo: &RepoName,
        out: &mut Vec<Decision>,
    ) {
        match self.repos.get(repo) {
            Some(settings) => out.push(Decision::ListLabelled {
                installation: id,
                repo: repo.clone(),
                trigger: settings.trigger_label.clone(),
            }),
            None => out.push(Decision::ReadRepoConfig {
                installation: id,
                repo: repo.clone(),
                report_on: None,
                then: AfterConfig::Reconcile(id),
            }),
        }
    }

    /// Brings one repository in line: labelled open issues are managed (or taken in again
    /// when changed), managed issues no longer listed are read again.
    pub(super) fn on_labelled_listed(
        &mut self,
        id: InstallationId,
        repo: &RepoName,
        issues: Vec<IssueSnapshot>,
        out: &mut Vec<Decision>,
    ) {
        let found: BTreeSet<IssueRef> = issues.iter().map(|i| i.reference.clone()).collect();
        for snapshot in issues {
            self.adopt(id, snapshot, out);
        }
        let vanished: Vec<IssueRef> = self
            .installations
            .get(&id)
            .map(|installation| {
                installation
                    .issues
                    .iter()
                    .filter(|(issue, tracked)| {
                        &issue.repo == repo && tracked.is_active() && !found.contains(*issue)
                    })
                    .map(|(issue, _)| issue.clone())
                    .collect()
            })
            .unwrap_or_default();
        for issue in vanished {
            out.push(Decision::ReadIssue {
                installation: id,
                issue,
                purpose: ReadPurpose::Recheck,
            });
        }
    }

    /// Manages a labelled issue the reconciler found, if it is not yet (and whoever
    /// labelled it may start agents); a managed one is taken in again when it changed.
    fn adopt(&mut self, id: InstallationId, facts: IssueSnapshot, out: &mut Vec<Decision>) {
        let issue = facts.reference.clone();
        match self.tracked(id, &issue).cloned() {
            Some(tracked) if tracked.managed => {
                // Dependency and sub-issue edits leave `updated_at` alone: GitHub's counts
                // are compared too (`recount` reads again what they changed, and what was
                // asked for and never answered).
                let changed = tracked.body != facts.body
                    || tracked.labels != facts.labels
                    || tracked.status != facts.status
                    || tracked.title.as_deref() != Some(facts.title.as_str());
                let recounted = self.recount(id, &facts, out);
                if changed || recounted {
                    self.observe(id, &facts);
                    self.refresh_dependencies(id, &issue, out);
                }
            }
            _ => self.manage_if_allowed(id, facts, None, out),
        }
    }

    /// Reads again every blocker the bot does not manage that still holds a managed issue:
    /// its `closed` webhook may have been lost, or never sent to this App at all.
    fn reread_open_blockers(&mut self, out: &mut Vec<Decision>) {
        let holding = self.issues_where(|installation, issue, tracked| {
            !tracked.managed
                && !tracked.status.satisfies()
                && installation
                    .graph
                    .dependents(issue)
                    .iter()
                    .any(|d| installation.issues.get(d).is_some_and(|t| t.is_active()))
        });
        for (id, issue) in holding {
            out.push(Decision::ReadIssue {
                installation: id,
                issue,
                purpose: ReadPurpose::Reread,
            });
        }
    }

    pub(super) fn on_installation(
        &mut self,
        action: InstallationAction,
        id: InstallationId,
        account: &str,
        repos: &[RepoName],
        out: &mut Vec<Decision>,
    ) {
        match action {
            InstallationAction::Created => self.welcome(id, repos, out),
            InstallationAction::Deleted => {
                let repos: BTreeSet<RepoName> = self
                    .installations
                    .get(&id)
                    .map(|i| i.issues.keys().map(|i| i.repo.clone()).collect())
                    .unwrap_or_default();
                let repos: Vec<RepoName> = repos.into_iter().collect();
                self.forget_repositories(id, &repos, out);
                self.installations.remove(&id);
                self.suspend(id, "", false);
                tracing::info!(installation = %id, "the App was uninstalled; its issues are forgotten");
            }
            InstallationAction::Suspended => self.suspend(id, account, true),
            InstallationAction::Unsuspended => {
                self.suspend(id, account, false);
                self.welcome(id, repos, out);
            }
        }
    }

    /// An installation was suspended (`on`) or unsuspended: nothing is launched for it
    /// meanwhile; remembered across restarts.
    fn suspend(&mut self, id: InstallationId, account: &str, on: bool) {
        let key = format!("suspended:{}", id.0);
        if on {
            self.set_setting(key, Some(account.to_owned()));
            self.suspended.insert(id);
            tracing::warn!(installation = %id, account, "the installation was suspended; nothing is launched for it until it is unsuspended");
        } else {
            self.set_setting(key, None);
            if self.suspended.remove(&id) {
                tracing::info!(installation = %id, account, "the installation was unsuspended; launching resumes");
            }
        }
    }

    /// Repositories left the installation (or it was uninstalled): the App can no longer
    /// act there, so their running agents are stopped and their issues forgotten. Issues
    /// elsewhere that they blocked keep blocking (now as unknown blockers).
    pub(super) fn forget_repositories(
        &mut self,
        id: InstallationId,
        repos: &[RepoName],
        out: &mut Vec<Decision>,
    ) {
        let unblock_on = self.settings.orchestrator.unblock_on;
        let Some(installation) = self.installations.get_mut(&id) else {
            return;
        };
        let mut gone: Vec<IssueRef> = installation
            .issues
            .keys()
            .filter(|i| repos.contains(&i.repo))
            .cloned()
            .collect();
        gone.sort();
        for issue in &gone {
            let unfinished = installation
                .runs
                .get(issue)
                .is_some_and(|run| !run.state.is_final());
            if unfinished {
                tracing::info!(%issue, "the App lost access to the repository; stopping its agent");
                out.push(Decision::Cancel {
                    installation: id,
                    issue: issue.clone(),
                });
            }
            installation.issues.remove(issue);
            installation.runs.remove(issue);
        }
        installation.rebuild(unblock_on);
        self.dirty
            .retain(|(i, issue)| !(*i == id && repos.contains(&issue.repo)));
        self.changed
            .retain(|(i, issue)| !(*i == id && repos.contains(&issue.repo)));
        for repo in repos {
            self.repos.remove(repo);
        }
        if !gone.is_empty() {
            tracing::info!(installation = %id, issues = gone.len(), "repositories left the installation; their issues are forgotten");
        }
        self.forgotten.extend(gone);
    }

    /// The App was installed, or repositories were added to it: their labelled issues are
    /// picked up at once rather than at the next reconciliation.
    pub(super) fn welcome(
        &mut self,
        id: InstallationId,
        repos: &[RepoName],
        out: &mut Vec<Decision>,
    ) {
        if repos.is_empty() {
            if self.settings.app_mode {
                out.push(Decision::ListRepositories { installation: id });
            }
            return;
        }
        for repo in repos {
            self.reconcile_repo(id, repo, out);
        }
    }
}
