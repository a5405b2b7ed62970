//! Comment commands: who may give them, what each verb does, and the replies.

use std::collections::BTreeSet;

use super::handlers::{Facts, apply_facts, installation_mut};
use super::{Bot, BotError, State, Tracked, node_for};
use crate::clock::now_millis;
use crate::domain::{InstallationId, IssueRef, IssueStatus, RepoName, User};
use crate::engine::commands::{Command, help_text, new_commands, parse_commands};
use crate::engine::to_mermaid;
use crate::events::{Comment, CommentAction, Issue, IssueState};
use crate::github::GitHub;

/// How a command went.
pub(super) enum Outcome {
    /// Done; reply with this text, if any.
    Done(Option<String>),
    /// Not done, for this reason (replied).
    Refused(String),
}

impl Bot {
    pub(super) async fn on_comment(
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

    pub(super) async fn execute(
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
    pub(super) async fn retry(
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

    pub(super) async fn edit_dependencies(
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

    pub(super) fn references(&self, issue: &IssueRef, text: &str) -> BTreeSet<IssueRef> {
        let mut refs = self.inner.parser.references(&issue.repo, text);
        refs.remove(issue);
        refs
    }

    /// The repository's launch order: what runs, the queue, then what waits.
    pub(super) fn plan_text(&self, state: &State, id: InstallationId, repo: &RepoName) -> String {
        let Some(installation) = state.installations.get(&id) else {
            return "Nothing is managed in this repository.".into();
        };
        let scheduler = self.scheduler(state);
        let queue: Vec<IssueRef> = scheduler
            .queue(&installation.graph)
            .into_iter()
            .filter(|i| &i.repo == repo)
            .collect();
        let running: Vec<IssueRef> = super::launch::running_issues(installation)
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

    pub(super) fn mark_repository_dirty(
        &self,
        state: &mut State,
        id: InstallationId,
        repo: &RepoName,
    ) {
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
}

pub(super) async fn react(client: &GitHub, repo: &RepoName, comment: u64, reaction: &str) {
    if let Err(err) = client.react_to_comment(repo, comment, reaction).await {
        tracing::warn!(error = %err, reaction, "could not react to a command");
    }
}
