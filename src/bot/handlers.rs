//! Events to actions: issues, comments (commands), pull requests, native dependencies,
//! project boards and installations.

use std::collections::BTreeSet;

use super::trigger::Verdict;
use super::{Bot, BotError, Installation, State, Tracked, mark_with_dependents, node_for};
use crate::clock::now_millis;
use crate::domain::{InstallationId, IssueRef, IssueSnapshot, IssueStatus, RepoName, User};
use crate::engine::commands::{Command, help_text, new_commands, parse_commands};
use crate::engine::to_mermaid;
use crate::events::{
    CloseReason, Comment, CommentAction, DependencyAction, DomainEvent, Event, InstallationAction,
    Issue, IssueAction, IssueState, ProjectItem, ProjectItemAction, PullRequest, PullRequestAction,
};
use crate::github::GitHub;

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

/// How a command went.
enum Outcome {
    /// Done; reply with this text, if any.
    Done(Option<String>),
    /// Not done, for this reason (replied).
    Refused(String),
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

    async fn on_issue(
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
    async fn manage(
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
    async fn manage_if_allowed(
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

    /// Reads `issue`'s native blockers (only those the App can read are listed), saves
    /// each as a tracked blocker so that it survives a restart, and counts the open ones
    /// GitHub reports (`open_blockers`) but did not list: those hold the issue.
    async fn read_native_dependencies(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
        open_blockers: Option<u32>,
    ) -> Result<(), BotError> {
        let client = self.client(id, &issue.repo).await?;
        let native = client.blocked_by(issue).await?;
        let listed_open = native
            .iter()
            .filter(|b| b.status == IssueStatus::Open)
            .count() as u32;
        let references: BTreeSet<IssueRef> = native.iter().map(|b| b.reference.clone()).collect();
        let installation = installation_mut(state, id, &self.inner.settings);
        for blocker in native {
            let reference = blocker.reference.clone();
            remember_blocker(installation, &reference, Facts::from(blocker));
        }
        if let Some(tracked) = installation.issues.get_mut(issue) {
            tracked.native = references.clone();
            if open_blockers.is_some() {
                tracked.open_blockers = open_blockers;
            }
            let unseen = tracked
                .open_blockers
                .map_or(0, |open| open.saturating_sub(listed_open));
            if unseen != tracked.unseen_blockers {
                tracing::info!(%issue, unseen, "GitHub counts open blockers the App cannot read; they hold the issue");
            }
            tracked.unseen_blockers = unseen;
        }
        for blocker in &references {
            self.save(state, id, blocker).await?;
        }
        Ok(())
    }

    /// Updates what is known of an issue the bot tracks (managed or a blocker).
    async fn observe(
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
    async fn leave(
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

    /// Re-reads an issue's declared dependencies and brings its edges in line; blockers seen
    /// for the first time are looked up (in any repository of the installation). An edge
    /// that would close a cycle is refused and the issue is held back with the cycle's path.
    async fn refresh_dependencies(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Result<(), BotError> {
        let Some(tracked) = self.tracked(state, id, issue) else {
            return Ok(());
        };
        let declared = self
            .inner
            .parser
            .dependencies(issue, &tracked.body, &tracked.labels);
        let mut wanted: BTreeSet<IssueRef> = declared
            .iter()
            .chain(&tracked.native)
            .chain(&tracked.added)
            .filter(|b| !tracked.removed.contains(b))
            .cloned()
            .collect();
        wanted.remove(issue);
        let unknown: Vec<IssueRef> = wanted
            .iter()
            .filter(|b| !state.installations[&id].issues.contains_key(*b))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let client = self.client(id, &issue.repo).await?;
            for blocker in unknown {
                let facts = lookup(&client, &blocker).await?;
                let installation = installation_mut(state, id, &self.inner.settings);
                remember_blocker(installation, &blocker, facts);
                self.save(state, id, &blocker).await?;
            }
        }
        let installation = installation_mut(state, id, &self.inner.settings);
        let refused = set_edges(installation, issue, &wanted);
        let tracked = installation.issues.get_mut(issue).expect("tracked above");
        tracked.declared = declared;
        let was = tracked.cycle.clone();
        tracked.cycle = refused.map(|cycle| {
            cycle
                .path
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" -> ")
        });
        let held = tracked.cycle.is_some() || tracked.unseen_blockers > 0;
        if tracked.cycle.is_some() && was != tracked.cycle {
            tracing::warn!(%issue, cycle = tracked.cycle.as_deref().unwrap_or(""), "a dependency was refused: it would close a cycle");
        }
        installation.graph.set_held(issue, held);
        self.save(state, id, issue).await?;
        mark_with_dependents(state, id, issue);
        Ok(())
    }

    async fn on_comment(
        &self,
        state: &mut State,
        id: InstallationId,
        action: CommentAction,
        issue: &Issue,
        comment: &Comment,
    ) -> Result<(), BotError> {
        let author = &comment.author;
        if comment
            .via_app
            .as_ref()
            .is_some_and(|app| self.is_this_app(app))
        {
            return Ok(()); // this App's own comments
        }
        // A bot's comment commands only when GitHub names a trusted App as its author; a
        // person typing through another App (Slack, Teams) is checked like anyone.
        let trusted_app = author.is_bot
            && comment
                .via_app
                .as_ref()
                .is_some_and(|app| self.is_trusted_app(app));
        if author.is_bot && !trusted_app {
            return Ok(());
        }
        let prefix = &self.inner.settings.orchestrator.command;
        let commands = match action {
            CommentAction::Created | CommentAction::Edited { old_body: None } => {
                parse_commands(&comment.body, prefix)
            }
            CommentAction::Edited {
                old_body: Some(old),
            } => new_commands(&old, &comment.body, prefix),
            CommentAction::Deleted => return Ok(()),
        };
        if commands.is_empty() || issue.is_pull_request {
            return Ok(());
        }
        let repo = &issue.reference.repo;
        let client = self.client(id, repo).await?;
        let permission = if trusted_app {
            crate::github::Permission::Write
        } else {
            client.permission(repo, author).await?
        };
        if !permission.may_run_agents() {
            let reply = format!(
                "@{}: `{prefix}` commands need write, maintain or admin permission on {repo}; \
                 yours is {}. Nothing was done.",
                author.login,
                permission.name()
            );
            client.create_comment(&issue.reference, &reply).await?;
            return Ok(());
        }
        react(&client, repo, comment.id, "eyes").await;
        let mut replies = Vec::new();
        let mut all_done = true;
        for command in commands {
            let outcome = match command {
                Ok(command) => {
                    tracing::info!(issue = %issue.reference, user = %author.login, command = command.verb(), "command");
                    self.execute(state, id, issue, command, author).await?
                }
                Err(err) => Outcome::Refused(format!("{err}\n\n{}", help_text(prefix))),
            };
            match outcome {
                Outcome::Done(Some(text)) => replies.push(text),
                Outcome::Done(None) => {}
                Outcome::Refused(text) => {
                    all_done = false;
                    replies.push(text);
                }
            }
        }
        react(
            &client,
            repo,
            comment.id,
            if all_done { "rocket" } else { "confused" },
        )
        .await;
        if !replies.is_empty() {
            client
                .create_comment(&issue.reference, &replies.join("\n\n---\n\n"))
                .await?;
        }
        Ok(())
    }

    async fn execute(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &Issue,
        command: Command,
        author: &User,
    ) -> Result<Outcome, BotError> {
        let reference = &issue.reference;
        let prefix = self.inner.settings.orchestrator.command.clone();
        match command {
            Command::Run => {
                if issue.state != IssueState::Open {
                    return Ok(Outcome::Refused(
                        "A closed issue is not run; reopen it first.".into(),
                    ));
                }
                self.manage(state, id, reference, Facts::from(issue))
                    .await?;
                if let Some(tracked) = installation_mut(state, id, &self.inner.settings)
                    .issues
                    .get_mut(reference)
                {
                    tracked.by_command = true;
                }
                self.save(state, id, reference).await?;
                Ok(Outcome::Done(None))
            }
            Command::Retry => self.retry(state, id, reference).await,
            Command::Cancel => {
                let cancelled = match &self.inner.agents {
                    Some(agents) => agents.cancel(reference, now_millis()).await?,
                    None => None,
                };
                match cancelled {
                    Some(record) => {
                        installation_mut(state, id, &self.inner.settings)
                            .runs
                            .insert(reference.clone(), record);
                        self.refresh_agent(state, id, reference).await?;
                        Ok(Outcome::Done(None))
                    }
                    None => Ok(Outcome::Refused(
                        "No agent is running for this issue.".into(),
                    )),
                }
            }
            Command::Status => {
                let managed = self
                    .tracked(state, id, reference)
                    .is_some_and(|t| t.managed);
                if !managed {
                    return Ok(Outcome::Refused(format!(
                        "This issue is not managed; label it `{}` or comment `{prefix} run`.",
                        self.repo(state, &reference.repo).trigger_label
                    )));
                }
                self.manage(state, id, reference, Facts::from(issue))
                    .await?;
                Ok(Outcome::Done(None))
            }
            Command::DependsOn(text) | Command::Unblock(text)
                if self.references(reference, &text).is_empty() =>
            {
                Ok(Outcome::Refused(format!(
                    "No issue references found in `{text}`; write them as `#12`, `owner/repo#12` or issue URLs."
                )))
            }
            Command::DependsOn(text) => {
                let refs = self.references(reference, &text);
                self.edit_dependencies(state, id, issue, |tracked| {
                    tracked.added.extend(refs.iter().cloned());
                    tracked.removed.retain(|r| !refs.contains(r));
                })
                .await?;
                match self
                    .tracked(state, id, reference)
                    .and_then(|t| t.cycle.clone())
                {
                    Some(cycle) => Ok(Outcome::Refused(format!(
                        "Refused: that dependency would close a cycle: `{cycle}`."
                    ))),
                    None => Ok(Outcome::Done(None)),
                }
            }
            Command::Unblock(text) => {
                let refs = self.references(reference, &text);
                self.edit_dependencies(state, id, issue, |tracked| {
                    tracked.removed.extend(refs.iter().cloned());
                    tracked.added.retain(|r| !refs.contains(r));
                })
                .await?;
                Ok(Outcome::Done(None))
            }
            Command::Graph => {
                let installation = installation_mut(state, id, &self.inner.settings);
                let component = installation.graph.component(reference);
                if component.len() <= 1 {
                    return Ok(Outcome::Done(Some(
                        "This issue has no dependencies and nothing depends on it.".into(),
                    )));
                }
                let diagram = to_mermaid(&installation.graph, Some(&component));
                Ok(Outcome::Done(Some(format!("```mermaid\n{diagram}```"))))
            }
            Command::Plan => Ok(Outcome::Done(Some(self.plan_text(
                state,
                id,
                &reference.repo,
            )))),
            Command::Pause => {
                let key = format!("paused:{}", reference.repo);
                self.inner
                    .store
                    .set_setting(&key, Some(&author.login))
                    .await?;
                state
                    .paused
                    .insert(reference.repo.clone(), author.login.clone());
                self.mark_repository_dirty(state, id, &reference.repo);
                Ok(Outcome::Done(None))
            }
            Command::Resume => {
                let key = format!("paused:{}", reference.repo);
                self.inner.store.set_setting(&key, None).await?;
                state.paused.remove(&reference.repo);
                if let Some(agents) = &self.inner.agents {
                    agents.resume(id);
                }
                self.mark_repository_dirty(state, id, &reference.repo);
                Ok(Outcome::Done(None))
            }
            Command::Help => Ok(Outcome::Done(Some(help_text(&prefix)))),
        }
    }

    /// `/codegen retry`: the last attempt failed, timed out or was cancelled; start another.
    async fn retry(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Result<Outcome, BotError> {
        let installation = installation_mut(state, id, &self.inner.settings);
        let Some(run) = installation.runs.get(issue).cloned() else {
            return Ok(Outcome::Refused(
                "There is nothing to retry: no agent has run for this issue.".into(),
            ));
        };
        let Some(tracked) = installation.issues.get_mut(issue) else {
            return Ok(Outcome::Refused("This issue is not managed.".into()));
        };
        let ended_badly = run.state.is_final() && run.state != crate::store::RunState::Succeeded;
        if !ended_badly || run.attempt <= tracked.cleared_attempt {
            return Ok(Outcome::Refused(format!(
                "There is nothing to retry: attempt {} is {}.",
                run.attempt,
                run.state.as_str().replace('_', " ")
            )));
        }
        tracked.cleared_attempt = run.attempt;
        self.refresh_agent(state, id, issue).await?;
        Ok(Outcome::Done(None))
    }

    async fn edit_dependencies(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &Issue,
        edit: impl FnOnce(&mut Tracked),
    ) -> Result<(), BotError> {
        let installation = installation_mut(state, id, &self.inner.settings);
        let tracked = installation
            .issues
            .entry(issue.reference.clone())
            .or_insert_with(|| Tracked::new(IssueStatus::Open));
        edit(tracked);
        apply_facts(tracked, Facts::from(issue));
        let node = node_for(&issue.reference, tracked);
        installation.graph.upsert(node);
        self.refresh_dependencies(state, id, &issue.reference).await
    }

    fn references(&self, issue: &IssueRef, text: &str) -> BTreeSet<IssueRef> {
        let mut refs = self.inner.parser.references(&issue.repo, text);
        refs.remove(issue);
        refs
    }

    /// The repository's launch order: what runs, the queue, then what waits.
    fn plan_text(&self, state: &State, id: InstallationId, repo: &RepoName) -> String {
        let Some(installation) = state.installations.get(&id) else {
            return "Nothing is managed in this repository.".into();
        };
        let scheduler = self.scheduler(state);
        let queue: Vec<IssueRef> = scheduler
            .queue(&installation.graph)
            .into_iter()
            .filter(|i| &i.repo == repo)
            .collect();
        let running: Vec<IssueRef> = super::running_issues(installation)
            .into_iter()
            .filter(|i| &i.repo == repo)
            .collect();
        let waiting: Vec<IssueRef> = installation
            .graph
            .topological_order()
            .into_iter()
            .filter(|i| &i.repo == repo)
            .filter(|i| {
                installation
                    .graph
                    .get(i)
                    .is_some_and(|n| n.managed && !n.started)
            })
            .filter(|i| !queue.contains(i))
            .collect();
        let list = |issues: &[IssueRef]| -> String {
            if issues.is_empty() {
                return "none".into();
            }
            issues
                .iter()
                .enumerate()
                .map(|(n, i)| {
                    let title = installation
                        .issues
                        .get(i)
                        .and_then(|t| t.title.as_deref())
                        .unwrap_or("");
                    format!("{}. {i} {title}", n + 1)
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let paused = state
            .paused
            .get(repo)
            .map(|by| format!("\n\nLaunching is paused (by @{by})."))
            .unwrap_or_default();
        format!(
            "**Launch plan for {repo}**\n\nRunning:\n{}\n\nNext, in order:\n{}\n\nWaiting for dependencies (in dependency order):\n{}{paused}",
            list(&running),
            list(&queue),
            list(&waiting)
        )
    }

    fn mark_repository_dirty(&self, state: &mut State, id: InstallationId, repo: &RepoName) {
        if let Some(installation) = state.installations.get(&id) {
            let issues: Vec<IssueRef> = installation
                .issues
                .iter()
                .filter(|(i, t)| &i.repo == repo && t.managed)
                .map(|(i, _)| i.clone())
                .collect();
            state.dirty.extend(issues.into_iter().map(|i| (id, i)));
        }
    }

    async fn on_pull_request(
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

    async fn on_dependency(
        &self,
        state: &mut State,
        id: InstallationId,
        action: DependencyAction,
        blocked: &Issue,
        blocking: &Issue,
    ) -> Result<(), BotError> {
        let installation = installation_mut(state, id, &self.inner.settings);
        remember_blocker(installation, &blocking.reference, Facts::from(blocking));
        let Some(tracked) = installation.issues.get_mut(&blocked.reference) else {
            return Ok(());
        };
        match action {
            DependencyAction::Added => tracked.native.insert(blocking.reference.clone()),
            DependencyAction::Removed => tracked.native.remove(&blocking.reference),
        };
        self.save(state, id, &blocking.reference).await?;
        let managed = self
            .tracked(state, id, &blocked.reference)
            .is_some_and(|t| t.managed);
        if managed {
            // The blocked issue's summary counts blockers the App cannot list as well.
            if blocked.open_blockers.is_some() {
                self.read_native_dependencies(state, id, &blocked.reference, blocked.open_blockers)
                    .await?;
            }
            self.refresh_dependencies(state, id, &blocked.reference)
                .await?;
        } else {
            self.save(state, id, &blocked.reference).await?;
        }
        Ok(())
    }

    /// A card moved to the option mapped to `queued` on a board is managed like
    /// `/codegen run`, when the mover may run agents.
    async fn on_project_item(
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

    /// The App was uninstalled: its running agents are stopped and its issues forgotten.
    async fn forget_installation(
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
    async fn forget_repositories(
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
    async fn suspend(
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

    /// Reads a blocker the bot does not manage again and brings its dependents in line.
    pub(super) async fn reread_blocker(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Result<(), BotError> {
        let client = self.client(id, &issue.repo).await?;
        let facts = lookup(&client, issue).await?;
        self.observe(state, id, issue, facts).await
    }

    fn any_repository(&self, state: &State, id: InstallationId) -> Option<RepoName> {
        state
            .installations
            .get(&id)
            .and_then(|i| i.issues.keys().next())
            .map(|i| i.repo.clone())
    }

    /// Whether `sender` has write, maintain or admin permission on `repo`.
    async fn may_run_agents(
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
        let client = self.client(id, &issue.repo).await?;
        let facts = lookup(&client, issue).await?;
        self.observe(state, id, issue, facts).await?;
        self.leave(state, id, issue).await
    }
}

/// Reads an issue; one that cannot be seen is known as unknown (it keeps blocking).
async fn lookup(client: &GitHub, issue: &IssueRef) -> Result<Facts, BotError> {
    match client.issue(issue).await {
        Ok(snapshot) => Ok(Facts::from(snapshot)),
        Err(err) if matches!(err.status(), Some(403 | 404 | 410)) => {
            tracing::info!(%issue, error = %err, "a dependency cannot be read; it keeps blocking");
            Ok(Facts {
                title: String::new(),
                body: String::new(),
                labels: Vec::new(),
                status: IssueStatus::Unknown,
                open_blockers: None,
            })
        }
        Err(err) => Err(BotError::Github(err)),
    }
}

async fn react(client: &GitHub, repo: &RepoName, comment: u64, reaction: &str) {
    if let Err(err) = client.react_to_comment(repo, comment, reaction).await {
        tracing::warn!(error = %err, reaction, "could not react to a command");
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

/// Records what is known of a blocker (without managing it).
fn remember_blocker(installation: &mut Installation, issue: &IssueRef, facts: Facts) {
    let tracked = installation
        .issues
        .entry(issue.clone())
        .or_insert_with(|| Tracked::new(facts.status));
    let managed = tracked.managed;
    let body = std::mem::take(&mut tracked.body);
    apply_facts(tracked, facts);
    if !managed {
        tracked.body = String::new(); // bodies of unmanaged blockers are not kept
    } else {
        tracked.body = if tracked.body.is_empty() {
            body
        } else {
            tracked.body.clone()
        };
    }
    let node = node_for(issue, tracked);
    installation.graph.upsert(node);
}

/// Makes the edges into `issue` exactly `wanted`, adding one at a time so that only the
/// edges that close a cycle are refused; returns the first refusal.
fn set_edges(
    installation: &mut Installation,
    issue: &IssueRef,
    wanted: &BTreeSet<IssueRef>,
) -> Option<crate::engine::CycleError> {
    if installation.graph.set_dependencies(issue, wanted).is_ok() {
        return None;
    }
    let current: BTreeSet<IssueRef> = installation
        .graph
        .blockers(issue)
        .into_iter()
        .map(|b| b.issue)
        .collect();
    for gone in current.difference(wanted) {
        installation.graph.remove_dependency(issue, gone);
    }
    let mut refused = None;
    for blocker in wanted.difference(&current) {
        if let Err(cycle) = installation.graph.add_dependency(issue, blocker) {
            refused.get_or_insert(cycle);
        }
    }
    refused
}
