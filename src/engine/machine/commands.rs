//! Comment commands: who may give them, what each verb does, and the replies. The
//! commenter's permission is read first (a decision); the commands are then parsed again
//! from the comment the decision carried, and executed.

use std::collections::BTreeSet;

use super::Engine;
use super::io::{AfterPermission, CommandRequest, Decision};
use super::issues::snapshot_of;
use crate::domain::{InstallationId, IssueRef, IssueStatus, Permission, RepoName, User};
use crate::engine::commands::{Command, new_commands, parse_commands};
use crate::engine::texts::{self, CommandRefusal, PlannedIssue};
use crate::events::{Comment, CommentAction, Issue};

/// How one command went: done (with an answer, if any) or refused.
enum Answer {
    Done(Option<String>),
    Refused(CommandRefusal),
}

impl Engine {
    pub(super) fn on_comment(
        &mut self,
        id: InstallationId,
        action: CommentAction,
        issue: &Issue,
        comment: &Comment,
        out: &mut Vec<Decision>,
    ) {
        let author = &comment.author;
        let via = comment.via_app.as_ref();
        if via.is_some_and(|app| self.settings.app_id == Some(app.id)) {
            return; // this App's own comments
        }
        // A bot's comment commands only when GitHub names a trusted App as its author; a
        // person typing through another App (Slack, Teams) is checked like anyone.
        let trusted_app = author.is_bot && via.is_some_and(|app| self.is_trusted_app(app));
        if author.is_bot && !trusted_app {
            return;
        }
        let (old_body, edited) = match action {
            CommentAction::Created => (None, false),
            CommentAction::Edited { old_body } => (old_body, true),
            CommentAction::Deleted => return,
        };
        let request = CommandRequest {
            issue: snapshot_of(issue),
            comment: comment.id,
            body: comment.body.clone(),
            old_body,
            edited,
            trusted_app,
        };
        if issue.is_pull_request || self.commands_in(&request).is_empty() {
            return;
        }
        if trusted_app {
            self.on_commands(id, author, Permission::Write, request, out);
        } else {
            out.push(Decision::CheckPermission {
                installation: id,
                repo: issue.reference.repo.clone(),
                user: author.clone(),
                then: AfterPermission::Commands(request),
            });
        }
    }

    /// The commands a comment gives: all of them, or for an edit only the new ones.
    fn commands_in(
        &self,
        request: &CommandRequest,
    ) -> Vec<Result<Command, crate::engine::commands::CommandError>> {
        let prefix = &self.settings.orchestrator.command;
        match &request.old_body {
            Some(old) if request.edited => new_commands(old, &request.body, prefix),
            _ => parse_commands(&request.body, prefix),
        }
    }

    /// The commenter's permission is known: the commands are executed, or refused all.
    pub(super) fn on_commands(
        &mut self,
        id: InstallationId,
        author: &User,
        permission: Permission,
        request: CommandRequest,
        out: &mut Vec<Decision>,
    ) {
        let issue = request.issue.reference.clone();
        let repo = issue.repo.clone();
        let prefix = self.settings.orchestrator.command.clone();
        if !permission.may_run_agents() {
            let refusal = CommandRefusal::NoPermission {
                login: author.login.clone(),
                permission: permission.name().to_owned(),
                prefix,
                repo,
            };
            out.push(reply(id, &issue, texts::refusal(&refusal)));
            return;
        }
        let react = |reaction: &str| Decision::React {
            installation: id,
            repo: repo.clone(),
            comment: request.comment,
            reaction: reaction.to_owned(),
        };
        out.push(react("eyes"));
        let mut answers = Vec::new();
        let mut all_done = true;
        for command in self.commands_in(&request) {
            let answer = match command {
                Ok(command) => {
                    tracing::info!(%issue, user = %author.login, command = command.verb(), "command");
                    self.execute(id, &request, command, author, out)
                }
                Err(error) => Answer::Refused(CommandRefusal::NotACommand {
                    error,
                    prefix: prefix.clone(),
                }),
            };
            match answer {
                Answer::Done(Some(text)) => answers.push(text),
                Answer::Done(None) => {}
                Answer::Refused(refusal) => {
                    all_done = false;
                    answers.push(texts::refusal(&refusal));
                }
            }
        }
        out.push(react(if all_done { "rocket" } else { "confused" }));
        if !answers.is_empty() {
            out.push(reply(id, &issue, texts::reply(&answers)));
        }
    }

    fn execute(
        &mut self,
        id: InstallationId,
        request: &CommandRequest,
        command: Command,
        author: &User,
        out: &mut Vec<Decision>,
    ) -> Answer {
        let facts = &request.issue;
        let issue = &facts.reference;
        let prefix = self.settings.orchestrator.command.clone();
        match command {
            Command::Run => {
                if facts.status != IssueStatus::Open {
                    return Answer::Refused(CommandRefusal::ClosedIssue);
                }
                self.manage(id, facts, out);
                if let Some(tracked) = self.installation_mut(id).issues.get_mut(issue) {
                    tracked.by_command = true;
                }
                self.changed.insert((id, issue.clone()));
                Answer::Done(None)
            }
            Command::Retry => self.retry(id, issue),
            Command::Cancel => {
                let unfinished = self
                    .installations
                    .get(&id)
                    .and_then(|i| i.runs.get(issue))
                    .is_some_and(|run| !run.state.is_final());
                if !unfinished {
                    return Answer::Refused(CommandRefusal::NothingRunning);
                }
                out.push(Decision::Cancel {
                    installation: id,
                    issue: issue.clone(),
                });
                Answer::Done(None)
            }
            Command::Status => {
                if !self.tracked(id, issue).is_some_and(|t| t.managed) {
                    return Answer::Refused(CommandRefusal::NotManaged {
                        label: self.repo(&issue.repo).trigger_label,
                        prefix,
                    });
                }
                self.manage(id, facts, out);
                Answer::Done(None)
            }
            Command::DependsOn(text) | Command::Unblock(text)
                if self.references(issue, &text).is_empty() =>
            {
                Answer::Refused(CommandRefusal::NoReferences { text })
            }
            Command::DependsOn(text) => {
                let refs = self.references(issue, &text);
                self.edit_dependencies(id, request, out, |tracked| {
                    tracked.added.extend(refs.iter().cloned());
                    tracked.removed.retain(|r| !refs.contains(r));
                });
                match self.tracked(id, issue).and_then(|t| t.cycle.clone()) {
                    Some(path) => Answer::Refused(CommandRefusal::Cycle { path }),
                    None => Answer::Done(None),
                }
            }
            Command::Unblock(text) => {
                let refs = self.references(issue, &text);
                self.edit_dependencies(id, request, out, |tracked| {
                    tracked.removed.extend(refs.iter().cloned());
                    tracked.added.retain(|r| !refs.contains(r));
                });
                Answer::Done(None)
            }
            Command::Graph => {
                let installation = self.installation_mut(id);
                let component = installation.graph.component(issue);
                Answer::Done(Some(texts::graph_reply(&installation.graph, &component)))
            }
            Command::Plan => Answer::Done(Some(self.plan_text(id, &issue.repo))),
            Command::Pause => {
                self.set_setting(format!("paused:{}", issue.repo), Some(author.login.clone()));
                self.paused.insert(issue.repo.clone(), author.login.clone());
                self.touch_repository(id, &issue.repo);
                Answer::Done(None)
            }
            Command::Resume => {
                self.set_setting(format!("paused:{}", issue.repo), None);
                self.paused.remove(&issue.repo);
                if self.quota.remove(&id).is_some() {
                    self.set_setting(format!("quota:{id}"), None);
                }
                out.push(Decision::ResumeAgents { installation: id });
                self.touch_repository(id, &issue.repo);
                Answer::Done(None)
            }
            Command::Help => Answer::Done(Some(texts::help(&prefix))),
        }
    }

    /// `/codegen retry`: the last attempt failed, timed out or was cancelled; the next
    /// one may start.
    fn retry(&mut self, id: InstallationId, issue: &IssueRef) -> Answer {
        let installation = self.installation_mut(id);
        let Some(run) = installation.runs.get(issue).cloned() else {
            return Answer::Refused(CommandRefusal::NoRunYet);
        };
        let Some(tracked) = installation.issues.get_mut(issue) else {
            return Answer::Refused(CommandRefusal::NotTracked);
        };
        if !run.state.ended_badly() || run.attempt <= tracked.cleared_attempt {
            return Answer::Refused(CommandRefusal::NothingToRetry {
                attempt: run.attempt,
                phase: super::publish::run_view(&run).phase,
            });
        }
        tracked.cleared_attempt = run.attempt;
        installation.refresh_node(issue);
        self.touch(id, issue);
        Answer::Done(None)
    }

    fn edit_dependencies(
        &mut self,
        id: InstallationId,
        request: &CommandRequest,
        out: &mut Vec<Decision>,
        edit: impl FnOnce(&mut super::Tracked),
    ) {
        let issue = &request.issue.reference;
        let installation = self.installation_mut(id);
        let tracked = installation
            .issues
            .entry(issue.clone())
            .or_insert_with(|| super::Tracked::new(IssueStatus::Open));
        edit(tracked);
        tracked.apply(&request.issue);
        installation.refresh_node(issue);
        self.refresh_dependencies(id, issue, out);
    }

    /// The issues `text` names, less `issue` itself.
    fn references(&self, issue: &IssueRef, text: &str) -> BTreeSet<IssueRef> {
        let mut refs = self.parser.references(&issue.repo, text);
        refs.remove(issue);
        refs
    }

    /// The repository's launch order: what runs, the queue, then what waits.
    pub(super) fn plan_text(&self, id: InstallationId, repo: &RepoName) -> String {
        let Some(installation) = self.installations.get(&id) else {
            return texts::nothing_managed();
        };
        let in_repo = |issues: Vec<IssueRef>| -> Vec<IssueRef> {
            issues.into_iter().filter(|i| &i.repo == repo).collect()
        };
        let queue = in_repo(self.scheduler().queue(&installation.graph));
        let running = in_repo(installation.running());
        let waiting: Vec<IssueRef> = in_repo(installation.graph.topological_order())
            .into_iter()
            .filter(|i| {
                installation
                    .graph
                    .get(i)
                    .is_some_and(|n| n.managed && !n.started)
            })
            .filter(|i| !queue.contains(i))
            .collect();
        let forecast = self.forecast(id, self.now);
        let planned = |issues: &[IssueRef]| -> Vec<PlannedIssue> {
            issues
                .iter()
                .map(|i| PlannedIssue {
                    issue: i.clone(),
                    title: installation.issues.get(i).and_then(|t| t.title.clone()),
                    expected: forecast.as_ref().and_then(|f| f.of(i)),
                })
                .collect()
        };
        // The repository's own finish and agent time: the installation's forecast covers
        // every repository of it.
        let outlook = forecast.as_ref().map(|f| {
            let in_repo = f.issues.iter().filter(|(i, _)| &i.repo == repo);
            let finish = in_repo.clone().map(|(_, e)| e.finish).max();
            let agent_ms = in_repo
                .map(|(_, e)| e.finish - e.start.max(f.made_at))
                .sum::<i64>();
            texts::Outlook {
                finish,
                agent_hours: agent_ms as f64 / 3_600_000.0,
            }
        });
        texts::launch_plan(
            repo,
            &planned(&running),
            &planned(&queue),
            &planned(&waiting),
            self.paused.get(repo).map(String::as_str),
            outlook.as_ref(),
        )
    }
}

fn reply(id: InstallationId, issue: &IssueRef, body: String) -> Decision {
    Decision::Reply {
        installation: id,
        issue: issue.clone(),
        body,
    }
}
