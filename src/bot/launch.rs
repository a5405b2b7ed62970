//! Launching: what the scheduler picks is launched with its prompt (stacked on a blocker's
//! branch when work is stacked), and pull requests that are ready are merged.

use super::*;

impl Bot {
    /// Asks the scheduler what to launch in every installation and launches it.
    pub(super) async fn launch_ready(&self, state: &mut State) -> Result<(), BotError> {
        let Some(agents) = &self.inner.agents else {
            return Ok(());
        };
        let ids: Vec<InstallationId> = state.installations.keys().copied().collect();
        for id in ids {
            let now = now_millis();
            if agents.quota_pause(id, now).is_some() || state.suspended.contains(&id) {
                continue;
            }
            let scheduler = self.scheduler(state);
            let installation = &state.installations[&id];
            let running = running_issues(installation);
            let decisions = scheduler.decide(&installation.graph, &running);
            for Decision::Launch { issue, attempt } in decisions {
                let template = self
                    .load_repo(state, id, &issue.repo, None)
                    .await?
                    .prompt_template;
                let stacked = self.stack(state, id, &issue).await?;
                let stacked_on = stacked
                    .as_ref()
                    .map(|(base, new)| (base.as_str(), new.as_str()));
                let prompt =
                    self.prompt_for(&state.installations[&id], &issue, &template, stacked_on);
                let launch = Launch {
                    installation: id,
                    issue: issue.clone(),
                    attempt,
                    prompt,
                };
                let outcome = agents.launch(&launch, now).await?;
                tracing::info!(%issue, attempt, %outcome, "launch");
                if matches!(outcome, LaunchOutcome::Paused { .. }) {
                    state.dirty.insert((id, issue));
                    break;
                }
                // Whatever happened is in the run row; read it back.
                if let Some(latest) = self.inner.store.runs_of(&issue).await?.pop() {
                    state
                        .installations
                        .get_mut(&id)
                        .expect("listed")
                        .runs
                        .insert(issue.clone(), latest);
                }
                self.refresh_agent(state, id, &issue).await?;
            }
        }
        Ok(())
    }

    /// The scheduler with the configured caps and the paused repositories.
    pub(super) fn scheduler(&self, state: &State) -> Scheduler {
        Scheduler {
            per_repository: self.inner.settings.per_repository,
            paused: state.paused.keys().cloned().collect(),
            repository_caps: state
                .repos
                .iter()
                .filter_map(|(repo, settings)| Some((repo.clone(), settings.max_agents?)))
                .collect(),
            ..Scheduler::new(self.inner.settings.max_concurrent)
        }
    }

    /// Stacked work (`unblock_on: pr_opened`): when a blocker in the same repository is
    /// still open with a pull request, the issue starts on a new branch
    /// `codegen/<number>-<slug>` made from that pull request's branch. Returns (base, new).
    pub(super) async fn stack(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Result<Option<(String, String)>, BotError> {
        if self.inner.settings.orchestrator.unblock_on != crate::engine::UnblockOn::PrOpened {
            return Ok(None);
        }
        let installation = &state.installations[&id];
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
            });
        let Some(base) = base else {
            return Ok(None);
        };
        let title = installation
            .issues
            .get(issue)
            .and_then(|t| t.title.clone())
            .unwrap_or_default();
        let new = format!("codegen/{}-{}", issue.number, slug(&title));
        let client = self.client(id, &issue.repo).await?;
        if let Err(err) = client.create_branch(&issue.repo, &new, &base).await {
            tracing::warn!(%issue, %base, error = %err, "could not create the stacked branch; the agent is asked to");
        }
        Ok(Some((base, new)))
    }

    /// `orchestrator.auto_merge`: merges the pull requests of successful agent runs once
    /// GitHub reports them mergeable with every check passed, and closes their issues.
    pub(super) async fn merge_ready(&self, state: &mut State) -> Result<(), BotError> {
        if !self.inner.settings.orchestrator.auto_merge {
            return Ok(());
        }
        let candidates: Vec<(InstallationId, IssueRef, Vec<String>)> = state
            .installations
            .iter()
            .flat_map(|(id, installation)| {
                installation.runs.iter().filter_map(move |(issue, run)| {
                    let tracked = installation.issues.get(issue)?;
                    let open = tracked.managed && tracked.status == IssueStatus::Open;
                    let current = run.attempt > tracked.cleared_attempt;
                    (open && current && run.state == RunState::Succeeded)
                        .then(|| (*id, issue.clone(), run.pull_requests.clone()))
                })
            })
            .collect();
        for (id, issue, pulls) in candidates {
            let client = self.client(id, &issue.repo).await?;
            for url in pulls {
                let Some(pull) = pull_ref(&url) else { continue };
                let info = client.pull_request(&pull).await?;
                let clean = info.state == "open"
                    && !info.merged
                    && info.mergeable == Some(true)
                    && info.mergeable_state.as_deref() == Some("clean");
                if !clean {
                    continue;
                }
                client.merge_pull_request(&pull, &info.head_sha).await?;
                client.close_issue(&issue).await?;
                tracing::info!(%issue, %pull, "merged the agent's pull request (orchestrator.auto_merge)");
                let installation = state.installations.get_mut(&id).expect("listed");
                if let Some(tracked) = installation.issues.get_mut(&issue) {
                    tracked.status = IssueStatus::ClosedCompleted;
                    tracked.pulls.insert(url.clone());
                }
                installation
                    .graph
                    .set_state(&issue, IssueStatus::ClosedCompleted);
                self.save(state, id, &issue).await?;
                mark_with_dependents(state, id, &issue);
                break;
            }
        }
        Ok(())
    }

    /// The prompt for `issue`, from the template and what is known of its blockers.
    pub(super) fn prompt_for(
        &self,
        installation: &Installation,
        issue: &IssueRef,
        template: &str,
        stacked_on: Option<(&str, &str)>,
    ) -> String {
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
                        .map(|t| t.pulls.iter().cloned().collect())
                        .unwrap_or_default(),
                    issue: blocker.issue,
                    state: blocker.state,
                }
            })
            .collect();
        let url = self.issue_url(issue);
        let input = PromptInput {
            issue,
            title: tracked.and_then(|t| t.title.as_deref()).unwrap_or(""),
            body: tracked.map_or("", |t| t.body.as_str()),
            url: &url,
            blockers: &blockers,
            stacked_on,
        };
        render_prompt(template, &input)
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

/// Issues whose current attempt is launched and not ended.
pub(super) fn running_issues(installation: &Installation) -> Vec<IssueRef> {
    installation
        .graph
        .nodes()
        .filter(|node| node.started)
        .filter(|node| {
            installation
                .runs
                .get(&node.issue)
                .is_none_or(|run| !run.state.is_final())
        })
        .map(|node| node.issue.clone())
        .collect()
}
