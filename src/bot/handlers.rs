//! Events to actions: the dispatch of every event, issues entering and leaving management,
//! pull requests, project boards and the reconciler's adoption. Commands, dependencies and
//! installations have their own files beside this one.

use super::trigger::Verdict;
use super::{Bot, BotError, Installation, State, Tracked, mark_with_dependents, node_for};
use crate::clock::now_millis;
use crate::domain::{InstallationId, IssueRef, IssueSnapshot, IssueStatus, RepoName, User};
use crate::events::{
    CloseReason, DomainEvent, Event, InstallationAction, Issue, IssueAction, IssueState,
    ProjectItem, ProjectItemAction, PullRequest, PullRequestAction,
};

/// The facts of an issue that the bot keeps, from a delivery or from the API.
pub(super) struct Facts {
    pub(super) title: String,
    pub(super) body: String,
    pub(super) labels: Vec<String>,
    pub(super) status: IssueStatus,
    /// `issue_dependencies_summary.blocked_by`, when the source carried it.
    pub(super) open_blockers: Option<u32>,
}

impl From<&Issue> for Facts {
    fn from(issue: &Issue) -> Self {
        let status = match issue.state {
            IssueState::Open => IssueStatus::Open,
            IssueState::Closed(CloseReason::Completed) => IssueStatus::ClosedCompleted,
            IssueState::Closed(_) => IssueStatus::ClosedNotPlanned,
        };
        Self {
            title: issue.title.clone(),
            body: issue.body.clone(),
            labels: issue.labels.clone(),
            status,
            open_blockers: issue.open_blockers,
        }
    }
}

impl From<IssueSnapshot> for Facts {
    fn from(issue: IssueSnapshot) -> Self {
        Self {
            title: issue.title,
            body: issue.body,
            labels: issue.labels,
            status: issue.status,
            open_blockers: issue.open_blockers,
        }
    }
}

impl Bot {
    /// Applies one event to the graph and to GitHub.
    pub(super) async fn apply_event(
        &self,
        state: &mut State,
        event: DomainEvent,
    ) -> Result<(), BotError> {
        let id = event.installation.unwrap_or(super::TOKEN_MODE);
        let sender = event.sender;
        match event.kind {
            Event::Issue { action, issue } => {
                self.on_issue(state, id, sender.as_ref(), action, &issue)
                    .await
            }
            Event::IssueComment {
                action,
                issue,
                comment,
            } => self.on_comment(state, id, action, &issue, &comment).await,
            Event::PullRequest { action, pull } => {
                self.on_pull_request(state, id, action, &pull).await
            }
            Event::IssueDependency {
                action,
                blocked,
                blocking,
            } => {
                self.on_dependency(state, id, action, &blocked, &blocking)
                    .await
            }
            Event::ProjectItem { action, item } => {
                self.on_project_item(state, id, sender.as_ref(), action, &item)
                    .await
            }
            Event::Installation {
                action: InstallationAction::Deleted,
                installation,
                ..
            } => self.forget_installation(state, installation).await,
            Event::Installation {
                action: InstallationAction::Suspended,
                installation,
                account,
                ..
            } => self.suspend(state, installation, &account, true).await,
            Event::InstallationRepositories {
                installation,
                added,
                removed,
            } => {
                self.forget_repositories(state, installation, &removed)
                    .await?;
                if added.is_empty() {
                    return Ok(());
                }
                self.welcome(state, installation, &added).await
            }
            Event::Push {
                repo,
                default_branch,
                paths,
            } => {
                if default_branch && paths.iter().any(|p| p == super::REPO_CONFIG_PATH) {
                    tracing::info!(%repo, "the repository's configuration file changed; reading it again");
                    state.repos.remove(&repo);
                    self.load_repo(state, id, &repo, None).await?;
                    self.mark_repository_dirty(state, id, &repo);
                }
                Ok(())
            }
            Event::Installation {
                action: InstallationAction::Unsuspended,
                installation,
                account,
                repos,
            } => {
                self.suspend(state, installation, &account, false).await?;
                self.welcome(state, installation, &repos).await
            }
            Event::Installation {
                action: InstallationAction::Created,
                installation,
                repos,
                ..
            } => self.welcome(state, installation, &repos).await,
            Event::Label { .. } | Event::Ping { .. } => Ok(()),
        }
    }

    pub(super) async fn on_issue(
        &self,
        state: &mut State,
        id: InstallationId,
        sender: Option<&User>,
        action: IssueAction,
        issue: &Issue,
    ) -> Result<(), BotError> {
        if issue.is_pull_request {
            return Ok(());
        }
        let reference = &issue.reference;
        let trigger = self
            .load_repo(state, id, &reference.repo, Some(reference))
            .await?
            .trigger_label;
        let is_trigger = |label: &str| label.eq_ignore_ascii_case(&trigger);
        match action {
            IssueAction::Labeled { label } if is_trigger(&label) => {
                self.manage_if_allowed(state, id, issue, &trigger, sender)
                    .await
            }
            IssueAction::Unlabeled { label } if is_trigger(&label) => {
                self.observe(state, id, reference, Facts::from(issue))
                    .await?;
                self.leave(state, id, reference).await
            }
            IssueAction::Closed { .. } | IssueAction::Deleted | IssueAction::Transferred { .. } => {
                let mut facts = Facts::from(issue);
                if !matches!(action, IssueAction::Closed { .. }) {
                    facts.status = IssueStatus::Deleted;
                }
                self.observe(state, id, reference, facts).await?;
                self.leave(state, id, reference).await
            }
            IssueAction::Reopened => {
                self.observe(state, id, reference, Facts::from(issue))
                    .await?;
                // Managed again if a writer's command put it under management, or if whoever
                // applied the label (not whoever reopened it) may start agents.
                let labelled = issue.labels.iter().any(|l| is_trigger(l));
                let by_command = self
                    .tracked(state, id, reference)
                    .is_some_and(|t| t.by_command);
                if by_command {
                    self.manage(state, id, reference, Facts::from(issue))
                        .await?;
                } else if labelled {
                    self.manage_if_allowed(state, id, issue, &trigger, None)
                        .await?;
                }
                Ok(())
            }
            // Body or labels changed (dependencies, priority, estimate), or it was opened.
            _ => {
                let counted = self.tracked(state, id, reference).map(|t| t.open_blockers);
                self.observe(state, id, reference, Facts::from(issue))
                    .await?;
                let managed = self
                    .tracked(state, id, reference)
                    .is_some_and(|t| t.managed);
                if managed && issue.state == IssueState::Open {
                    if issue.open_blockers.is_some() && counted != Some(issue.open_blockers) {
                        self.read_native_dependencies(state, id, reference, issue.open_blockers)
                            .await?;
                    }
                    self.refresh_dependencies(state, id, reference).await?;
                }
                Ok(())
            }
        }
    }

    /// Puts `issue` under management: its facts, native dependencies and blockers are
    /// read, and it enters the graph.
    pub(super) async fn manage(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
        facts: Facts,
    ) -> Result<(), BotError> {
        if facts.status != IssueStatus::Open {
            return Ok(());
        }
        let open_blockers = facts.open_blockers;
        let installation = installation_mut(state, id, &self.inner.settings);
        let tracked = installation
            .issues
            .entry(issue.clone())
            .or_insert_with(|| Tracked::new(IssueStatus::Open));
        tracked.managed = true;
        tracked.refused = None;
        apply_facts(tracked, facts);
        if let Some(latest) = self.inner.store.runs_of(issue).await?.pop() {
            installation.runs.insert(issue.clone(), latest);
        }
        let node = node_for(issue, &installation.issues[issue]);
        installation.graph.upsert(node);
        tracing::info!(%issue, "managing the issue");
        self.read_native_dependencies(state, id, issue, open_blockers)
            .await?;
        self.refresh_dependencies(state, id, issue).await?;
        self.refresh_agent(state, id, issue).await
    }

    /// Manages `issue`, which carries the trigger label, if whoever applied the label may
    /// start agents (`sender`: the person who sent the `labeled` webhook, when that is
    /// the event); otherwise records and says once why not.
    pub(super) async fn manage_if_allowed(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &Issue,
        trigger: &str,
        sender: Option<&User>,
    ) -> Result<(), BotError> {
        let reference = &issue.reference;
        if issue.state != IssueState::Open {
            return Ok(());
        }
        match self.label_verdict(id, reference, trigger, sender).await? {
            Verdict::Allowed => self.manage(state, id, reference, Facts::from(issue)).await,
            Verdict::Refused(actor) => {
                self.refuse(state, id, reference, Facts::from(issue), &actor)
                    .await
            }
        }
    }

    /// Updates what is known of an issue the bot tracks (managed or a blocker).
    pub(super) async fn observe(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
        facts: Facts,
    ) -> Result<(), BotError> {
        let installation = installation_mut(state, id, &self.inner.settings);
        let Some(tracked) = installation.issues.get_mut(issue) else {
            return Ok(());
        };
        apply_facts(tracked, facts);
        let node = node_for(issue, tracked);
        installation.graph.upsert(node);
        self.save(state, id, issue).await?;
        mark_with_dependents(state, id, issue);
        Ok(())
    }

    /// Takes `issue` out of management (label removed, closed, deleted, moved); its agent
    /// is stopped unless `orchestrator.cancel_on_close` is off.
    pub(super) async fn leave(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Result<(), BotError> {
        let Some(tracked) = self.tracked(state, id, issue) else {
            return Ok(());
        };
        let closed_done = tracked.status == IssueStatus::ClosedCompleted;
        let trigger = self.repo(state, &issue.repo).trigger_label;
        let labelled = tracked
            .labels
            .iter()
            .any(|l| l.eq_ignore_ascii_case(&trigger));
        // Still wanted: open and labelled, or open and put under management by command.
        if tracked.status == IssueStatus::Open && (labelled || tracked.by_command) {
            return Ok(());
        }
        if !closed_done {
            let installation = installation_mut(state, id, &self.inner.settings);
            if let Some(tracked) = installation.issues.get_mut(issue) {
                tracked.managed =
                    tracked.managed && tracked.status == IssueStatus::Open && labelled;
            }
            installation.graph.set_managed(issue, false);
        }
        if self.inner.settings.orchestrator.cancel_on_close
            && let Some(agents) = &self.inner.agents
            && let Some(record) = agents.cancel(issue, now_millis()).await?
        {
            tracing::info!(%issue, "the issue left management; its agent was stopped");
            installation_mut(state, id, &self.inner.settings)
                .runs
                .insert(issue.clone(), record);
        }
        self.save(state, id, issue).await?;
        mark_with_dependents(state, id, issue);
        Ok(())
    }

    pub(super) async fn on_pull_request(
        &self,
        state: &mut State,
        id: InstallationId,
        action: PullRequestAction,
        pull: &PullRequest,
    ) -> Result<(), BotError> {
        let closes = self
            .inner
            .parser
            .closing_references(&pull.reference.repo, &pull.body);
        let tracked: Vec<IssueRef> = closes
            .into_iter()
            .filter(|issue| self.tracked(state, id, issue).is_some())
            .collect();
        for issue in tracked {
            let installation = installation_mut(state, id, &self.inner.settings);
            let entry = installation.issues.get_mut(&issue).expect("filtered");
            entry.pulls.insert(pull.html_url.clone());
            if matches!(action, PullRequestAction::Closed { .. }) {
                entry.branches.remove(&pull.html_url);
            } else {
                entry
                    .branches
                    .insert(pull.html_url.clone(), pull.head_ref.clone());
            }
            let node = node_for(&issue, entry);
            installation.graph.upsert(node);
            let entry = installation.issues.get_mut(&issue).expect("filtered");
            let managed_open = entry.managed && entry.status == IssueStatus::Open;
            if action == (PullRequestAction::Closed { merged: true }) && managed_open {
                // GitHub closes it itself only for merges into the default branch.
                let client = self.client(id, &issue.repo).await?;
                client.close_issue(&issue).await?;
                tracing::info!(%issue, pull = %pull.reference, "its pull request was merged; closed it");
                let installation = installation_mut(state, id, &self.inner.settings);
                let entry = installation.issues.get_mut(&issue).expect("filtered");
                entry.status = IssueStatus::ClosedCompleted;
                installation
                    .graph
                    .set_state(&issue, IssueStatus::ClosedCompleted);
            }
            self.save(state, id, &issue).await?;
            mark_with_dependents(state, id, &issue);
        }
        Ok(())
    }

    /// A card moved to the option mapped to `queued` on a board is managed like
    /// `/codegen run`, when the mover may run agents.
    pub(super) async fn on_project_item(
        &self,
        state: &mut State,
        id: InstallationId,
        sender: Option<&User>,
        action: ProjectItemAction,
        item: &ProjectItem,
    ) -> Result<(), BotError> {
        let Some(queued) = self.inner.settings.projects.status_options.queued.clone() else {
            return Ok(());
        };
        if !matches!(action, ProjectItemAction::Edited { .. }) || item.content_type != "Issue" {
            return Ok(());
        }
        let client = if self.inner.github.is_app() {
            self.inner.github.for_installation(id).await?
        } else {
            // Token mode: any repository's client reaches GraphQL.
            let Some(repo) = self.any_repository(state, id) else {
                return Ok(());
            };
            self.client(id, &repo).await?
        };
        let Some(issue) = client.issue_for_node(&item.content_node_id).await? else {
            return Ok(());
        };
        let field = &self.inner.settings.projects.status_field;
        let items = client.project_items(&issue, field).await?;
        let moved_to_queued = items
            .iter()
            .any(|i| i.item_id == item.node_id && i.current.as_deref() == Some(queued.as_str()));
        let managed = self.tracked(state, id, &issue).is_some_and(|t| t.managed);
        if !moved_to_queued || managed {
            return Ok(());
        }
        if !self.may_run_agents(id, &issue.repo, sender).await? {
            tracing::info!(%issue, "moved to the queued option by someone without write permission; not managing");
            return Ok(());
        }
        let facts = Facts::from(client.issue(&issue).await?);
        self.manage(state, id, &issue, facts).await
    }

    pub(super) fn any_repository(&self, state: &State, id: InstallationId) -> Option<RepoName> {
        state
            .installations
            .get(&id)
            .and_then(|i| i.issues.keys().next())
            .map(|i| i.repo.clone())
    }

    /// Whether `sender` has write, maintain or admin permission on `repo`.
    pub(super) async fn may_run_agents(
        &self,
        id: InstallationId,
        repo: &RepoName,
        sender: Option<&User>,
    ) -> Result<bool, BotError> {
        let Some(sender) = sender else {
            return Ok(false);
        };
        let client = self.client(id, repo).await?;
        Ok(client.permission(repo, sender).await?.may_run_agents())
    }

    pub(super) fn tracked<'a>(
        &self,
        state: &'a State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Option<&'a Tracked> {
        state.installations.get(&id)?.issues.get(issue)
    }

    /// Manages `snapshot` if it is not yet (the reconciler found a labelled issue).
    pub(super) async fn adopt(
        &self,
        state: &mut State,
        id: InstallationId,
        snapshot: IssueSnapshot,
    ) -> Result<(), BotError> {
        let issue = snapshot.reference.clone();
        let known = self.tracked(state, id, &issue).cloned();
        let facts = Facts::from(snapshot);
        match known {
            Some(tracked) if tracked.managed => {
                // Dependency edits leave `updated_at` alone: the blocker count is compared
                // too, and a changed count means the native blockers are read again.
                let recount =
                    facts.open_blockers.is_some() && facts.open_blockers != tracked.open_blockers;
                let changed = tracked.body != facts.body
                    || tracked.labels != facts.labels
                    || tracked.status != facts.status
                    || tracked.title.as_deref() != Some(facts.title.as_str());
                let open_blockers = facts.open_blockers;
                if changed || recount {
                    self.observe(state, id, &issue, facts).await?;
                    if recount {
                        self.read_native_dependencies(state, id, &issue, open_blockers)
                            .await?;
                    }
                    self.refresh_dependencies(state, id, &issue).await?;
                }
                Ok(())
            }
            _ => {
                let trigger = self.repo(state, &issue.repo).trigger_label;
                match self.label_verdict(id, &issue, &trigger, None).await? {
                    Verdict::Allowed => self.manage(state, id, &issue, facts).await,
                    Verdict::Refused(actor) => self.refuse(state, id, &issue, facts, &actor).await,
                }
            }
        }
    }

    /// Re-reads a managed issue the reconciler did not find among the open labelled ones
    /// (closed or unlabelled while a webhook was lost).
    pub(super) async fn recheck(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Result<(), BotError> {
        self.reread(state, id, issue).await?;
        self.leave(state, id, issue).await
    }
}

pub(super) fn installation_mut<'a>(
    state: &'a mut State,
    id: InstallationId,
    settings: &super::BotSettings,
) -> &'a mut Installation {
    state
        .installations
        .entry(id)
        .or_insert_with(|| Installation::new(settings))
}

pub(super) fn apply_facts(tracked: &mut Tracked, facts: Facts) {
    if !facts.title.is_empty() || tracked.title.is_none() {
        tracked.title = Some(facts.title).filter(|t| !t.is_empty());
    }
    tracked.body = facts.body;
    tracked.labels = facts.labels;
    tracked.status = facts.status;
    if facts.open_blockers.is_some() {
        tracked.open_blockers = facts.open_blockers;
    }
}
