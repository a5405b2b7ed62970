//! Agent runs: what the scheduler picks is launched with its prompt (stacked on a
//! blocker's branch when work is stacked), runs that end are taken in (retried when
//! `codegen.retry_failed_runs` allows), quota pauses, and auto-merge.

use super::io::{AfterConfig, Decision};
use super::{Engine, QUOTA_PAUSE_MS};
use crate::domain::{InstallationId, IssueRef, IssueStatus, PullRequestLink, RunRecord, RunState};
use crate::engine::prompt::{PromptBlocker, PromptInput, render_prompt};
use crate::engine::{Pick, UnblockOn};

impl Engine {
    /// Launches what the scheduler picks in every installation not paused or suspended.
    pub(super) fn launch_ready(&mut self, now: i64, out: &mut Vec<Decision>) {
        if !self.settings.agents {
            return;
        }
        let mut ids: Vec<InstallationId> = self.installations.keys().copied().collect();
        ids.sort();
        for id in ids {
            if self.quota_pause(id, now).is_some() || self.suspended.contains(&id) {
                continue;
            }
            let scheduler = self.scheduler();
            let installation = &self.installations[&id];
            let picks = scheduler.decide(&installation.graph, &installation.running());
            for Pick { issue, attempt } in picks {
                // The prompt template may be the repository's own: read its file first.
                let Some(settings) = self.repos.get(&issue.repo).cloned() else {
                    self.ask_config(id, &issue.repo, out);
                    continue;
                };
                let stack = self.stack(id, &issue);
                let stacked_on = stack.as_ref().map(|(b, n)| (b.as_str(), n.as_str()));
                let prompt = self.prompt_for(id, &issue, &settings.prompt_template, stacked_on);
                tracing::info!(%issue, attempt, "launching");
                out.push(Decision::Launch {
                    installation: id,
                    issue: issue.clone(),
                    attempt,
                    prompt: prompt.clone(),
                    stack,
                });
                // Counted as started at once, so that it is not picked twice; the
                // effect's answer replaces this provisional record.
                let installation = self.installation_mut(id);
                installation.runs.insert(
                    issue.clone(),
                    RunRecord {
                        row: 0,
                        installation: id,
                        issue: issue.clone(),
                        attempt,
                        state: RunState::Launching,
                        prompt,
                        run_id: None,
                        web_url: None,
                        summary: None,
                        pull_requests: Vec::new(),
                        failure: None,
                        created_at: now,
                        started_at: None,
                        finished_at: None,
                    },
                );
                installation.refresh_node(&issue);
                self.touch(id, &issue);
            }
        }
    }

    /// Asks once for a repository's configuration file.
    pub(super) fn ask_config(
        &mut self,
        id: InstallationId,
        repo: &crate::domain::RepoName,
        out: &mut Vec<Decision>,
    ) {
        if self.config_pending.insert(repo.clone()) {
            out.push(Decision::ReadRepoConfig {
                installation: id,
                repo: repo.clone(),
                report_on: None,
                then: AfterConfig::Nothing,
            });
        }
    }

    /// Codegen's message while launches for `id` pause for a used-up quota.
    pub(super) fn quota_pause(&self, id: InstallationId, now: i64) -> Option<&str> {
        let (since, message) = self.quota.get(&id)?;
        (now - since < QUOTA_PAUSE_MS).then_some(message.as_str())
    }

    /// Stacked work (`unblock_on: pr_opened`): when a blocker in the same repository is
    /// still open with a pull request, the issue starts on a new branch
    /// `codegen/<number>-<slug>` made from that pull request's branch. (base, new).
    fn stack(&self, id: InstallationId, issue: &IssueRef) -> Option<(String, String)> {
        if self.settings.orchestrator.unblock_on != UnblockOn::PrOpened {
            return None;
        }
        let installation = &self.installations[&id];
        let base = installation
            .graph
            .blockers(issue)
            .into_iter()
            .filter(|b| b.issue.repo == issue.repo && b.state == IssueStatus::Open)
            .find_map(|b| {
                installation
                    .issues
                    .get(&b.issue)?
                    .branches
                    .values()
                    .next()
                    .cloned()
            })?;
        let title = installation
            .issues
            .get(issue)
            .and_then(|t| t.title.clone())
            .unwrap_or_default();
        Some((base, format!("codegen/{}-{}", issue.number, slug(&title))))
    }

    /// The prompt for `issue`, from the template and what is known of its blockers.
    fn prompt_for(
        &self,
        id: InstallationId,
        issue: &IssueRef,
        template: &str,
        stacked_on: Option<(&str, &str)>,
    ) -> String {
        let installation = &self.installations[&id];
        let tracked = installation.issues.get(issue);
        let blockers: Vec<PromptBlocker> = installation
            .graph
            .blockers(issue)
            .into_iter()
            .map(|blocker| {
                let known = installation.issues.get(&blocker.issue);
                PromptBlocker {
                    title: known.and_then(|t| t.title.clone()),
                    pull_requests: known
                        .map(|t| t.pulls.iter().map(|p| p.url.clone()).collect())
                        .unwrap_or_default(),
                    issue: blocker.issue,
                    state: blocker.state,
                }
            })
            .collect();
        let url = self.issue_url(issue);
        let trigger_label = self.repo(&issue.repo).trigger_label;
        let input = PromptInput {
            issue,
            title: tracked.and_then(|t| t.title.as_deref()).unwrap_or(""),
            body: tracked.map_or("", |t| t.body.as_str()),
            url: &url,
            blockers: &blockers,
            stacked_on,
            trigger_label: &trigger_label,
        };
        render_prompt(template, &input)
    }

    /// A launch was settled: its run as recorded (or none), or a quota pause.
    pub(super) fn on_launched(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        latest: Option<RunRecord>,
        quota_exhausted: Option<String>,
        now: i64,
    ) {
        if let Some(message) = quota_exhausted {
            tracing::warn!(installation = %id, %message, "Codegen's plan quota is used up; pausing launches");
            // Kept in the store too, for the dashboard of every replica (the engine of a
            // replica without this installation's lease knows nothing of the pause).
            self.set_setting(format!("quota:{id}"), Some(format!("{now} {message}")));
            self.quota.insert(id, (now, message));
        }
        let installation = self.installation_mut(id);
        match latest {
            Some(run) => {
                installation.runs.insert(issue.clone(), run);
            }
            None => {
                installation.runs.remove(issue);
                // Not started after all: the graph forgets the provisional mark.
                installation.graph.set_started(issue, false);
            }
        }
        installation.refresh_node(issue);
        self.touch(id, issue);
    }

    /// An issue's latest run as recorded now.
    pub(super) fn record_run(&mut self, id: InstallationId, run: RunRecord) {
        let issue = run.issue.clone();
        let installation = self.installation_mut(id);
        if !installation.issues.contains_key(&issue) {
            return;
        }
        // A cancelled attempt stays cancelled: whatever its run does after the cancel (a
        // late success, a pull request) never unblocks dependents or is merged.
        if let Some(known) = installation.runs.get(&issue)
            && known.attempt == run.attempt
            && known.state == RunState::Cancelled
            && run.state != RunState::Cancelled
        {
            tracing::info!(%issue, attempt = run.attempt, state = run.state.as_str(),
                "a cancelled attempt's run ended later; it stays cancelled");
            return;
        }
        // A success is learned once, whichever way its end was heard of (followed, or
        // found by a cancel that came too late).
        let learned_before = installation.runs.get(&issue).is_some_and(|known| {
            known.attempt == run.attempt && known.state == RunState::Succeeded
        });
        if !learned_before {
            self.learn_duration(&run);
        }
        let installation = self.installation_mut(id);
        installation.runs.insert(issue.clone(), run);
        installation.refresh_node(&issue);
        self.touch(id, &issue);
    }

    /// Runs were followed: settled launches and ended runs are taken in; a failed or
    /// timed-out attempt is retried while `codegen.retry_failed_runs` allows; successful
    /// runs' pull requests are merged when `orchestrator.auto_merge` is on.
    pub(super) fn runs_followed(
        &mut self,
        recovered: Vec<RunRecord>,
        ended: Vec<RunRecord>,
        out: &mut Vec<Decision>,
    ) {
        // Statuses given up on are tried again once per tick, not at once: GitHub was
        // failing for the whole of their retries.
        let unpublished = std::mem::take(&mut self.unpublished);
        self.dirty.extend(unpublished);
        for run in recovered {
            tracing::info!(issue = %run.issue, state = run.state.as_str(), "an interrupted launch was settled");
            self.record_run(run.installation, run);
        }
        let retries = self.settings.retry_failed_runs;
        let after_discovery = self.settings.orchestrator.retry_after_discovered_blocker;
        for run in ended {
            let failed = matches!(run.state, RunState::Failed | RunState::TimedOut);
            let auto_retry = failed && run.attempt <= retries;
            if let Some(installation) = self.installations.get_mut(&run.installation)
                && let Some(tracked) = installation.issues.get_mut(&run.issue)
            {
                // A prerequisite discovered while this attempt ran is still open: the
                // failure may be its absence, so the issue waits for it and then gets one
                // new attempt (once per failed attempt).
                let waits_for_discovery = failed
                    && after_discovery
                    && tracked.retry_after_discovery != Some(run.attempt)
                    && tracked.discovered.iter().any(|(blocker, attempt)| {
                        *attempt == run.attempt && !installation.graph.is_satisfied(blocker)
                    });
                if waits_for_discovery {
                    tracing::info!(issue = %run.issue, attempt = run.attempt,
                        "the run failed while a blocker discovered during it is open; trying again once it is done");
                    tracked.retry_after_discovery = Some(run.attempt);
                    tracked.cleared_attempt = run.attempt;
                } else if auto_retry {
                    tracing::info!(issue = %run.issue, attempt = run.attempt,
                        "the run failed; trying again (codegen.retry_failed_runs)");
                    tracked.cleared_attempt = run.attempt;
                }
            }
            self.record_run(run.installation, run);
        }
        self.merge_ready(out);
    }

    /// `orchestrator.auto_merge`: the pull requests of successful current runs of open
    /// managed issues are tried (the effect merges the first one GitHub reports clean).
    fn merge_ready(&mut self, out: &mut Vec<Decision>) {
        if !self.settings.orchestrator.auto_merge {
            return;
        }
        let mut candidates: Vec<(InstallationId, IssueRef, Vec<PullRequestLink>)> = self
            .installations
            .iter()
            .flat_map(|(id, installation)| {
                installation.runs.iter().filter_map(move |(issue, run)| {
                    let tracked = installation.issues.get(issue)?;
                    let current = run.attempt > tracked.cleared_attempt;
                    (tracked.is_active() && current && run.state == RunState::Succeeded)
                        .then(|| (*id, issue.clone(), run.pull_requests.clone()))
                })
            })
            .collect();
        candidates.sort_by(|a, b| a.1.cmp(&b.1));
        for (id, issue, pulls) in candidates {
            if self.merging.insert(issue.clone()) {
                out.push(Decision::TryMerge {
                    installation: id,
                    issue,
                    pulls,
                });
            }
        }
    }

    /// An agent's pull request was merged and its issue closed.
    pub(super) fn on_merged(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        pull: PullRequestLink,
    ) {
        self.merging.remove(issue);
        tracing::info!(%issue, pull = %pull, "merged the agent's pull request (orchestrator.auto_merge)");
        let installation = self.installation_mut(id);
        if let Some(tracked) = installation.issues.get_mut(issue) {
            tracked.status = IssueStatus::ClosedCompleted;
            tracked.pulls.insert(pull);
        }
        installation.refresh_node(issue);
        self.touch(id, issue);
    }
}

/// A branch-name-safe short form of a title: `Add the API!` -> `add-the-api`.
pub(super) fn slug(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        "work".to_owned()
    } else {
        slug.to_owned()
    }
}
