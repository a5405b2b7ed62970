//! Issues entering and leaving management: labels (and who applied them), edits, closes,
//! reopens, pull requests, project cards, native dependency links, and the dependencies
//! that bring the graph in line (refusing those that would close a cycle).

use super::io::{AfterConfig, AfterPermission, Decision, ReadPurpose};
use super::{Engine, TOKEN_MODE};
use crate::domain::{Actor, InstallationId, IssueRef, IssueSnapshot, IssueStatus, User};
use crate::engine::texts;
use crate::events::{
    CloseReason, DomainEvent, Event, Issue, IssueAction, IssueState, ProjectItem,
    ProjectItemAction, PullRequest, PullRequestAction,
};

/// What a delivery says of an issue, in the engine's terms.
pub(super) fn snapshot_of(issue: &Issue) -> IssueSnapshot {
    let status = match issue.state {
        IssueState::Open => IssueStatus::Open,
        IssueState::Closed(CloseReason::Completed) => IssueStatus::ClosedCompleted,
        IssueState::Closed(_) => IssueStatus::ClosedNotPlanned,
    };
    IssueSnapshot {
        reference: issue.reference.clone(),
        title: issue.title.clone(),
        body: issue.body.clone(),
        status,
        labels: issue.labels.clone(),
        open_blockers: issue.open_blockers,
        sub_issues: issue.sub_issues,
    }
}

/// An issue the App cannot read: it keeps blocking, as unknown.
pub(super) fn unreadable(issue: &IssueRef) -> IssueSnapshot {
    IssueSnapshot {
        reference: issue.clone(),
        title: String::new(),
        body: String::new(),
        status: IssueStatus::Unknown,
        labels: Vec::new(),
        open_blockers: None,
        sub_issues: None,
    }
}

impl Engine {
    /// An issue event in a repository whose settings (its trigger label) are not known yet
    /// waits for its configuration file: the processor gives the input again once read.
    pub(super) fn needs_config(&self, event: &DomainEvent) -> Option<Decision> {
        let Event::Issue { issue, .. } = &event.kind else {
            return None;
        };
        let repo = &issue.reference.repo;
        (!issue.is_pull_request && !self.repos.contains_key(repo)).then(|| {
            Decision::ReadRepoConfig {
                installation: event.installation.unwrap_or(TOKEN_MODE),
                repo: repo.clone(),
                report_on: Some(issue.reference.clone()),
                then: AfterConfig::Retry,
            }
        })
    }

    pub(super) fn on_delivery(&mut self, event: DomainEvent, out: &mut Vec<Decision>) {
        let id = event.installation.unwrap_or(TOKEN_MODE);
        let sender = event.sender;
        match event.kind {
            Event::Issue { action, issue } => {
                self.on_issue(id, sender.as_ref(), action, &issue, out)
            }
            Event::IssueComment {
                action,
                issue,
                comment,
            } => self.on_comment(id, action, &issue, &comment, out),
            Event::PullRequest { action, pull } => self.on_pull_request(id, action, &pull, out),
            Event::IssueDependency {
                action,
                blocked,
                blocking,
            } => self.on_dependency(id, action, &blocked, &blocking, out),
            Event::SubIssue {
                action,
                parent,
                child,
            } => self.on_sub_issue(id, sender.as_ref(), action, &parent, &child, out),
            Event::ProjectItem { action, item } => {
                self.on_project_item(id, sender, action, &item, out)
            }
            Event::Installation {
                action,
                installation,
                account,
                repos,
            } => self.on_installation(action, installation, &account, &repos, out),
            Event::InstallationRepositories {
                installation,
                added,
                removed,
            } => {
                self.forget_repositories(installation, &removed, out);
                if !added.is_empty() {
                    self.welcome(installation, &added, out);
                }
            }
            Event::Push {
                repo,
                default_branch,
                paths,
            } => {
                let path = crate::engine::repo_config::REPO_CONFIG_PATH;
                if default_branch && paths.iter().any(|p| p == path) {
                    tracing::info!(%repo, "the repository's configuration file changed; reading it again");
                    out.push(Decision::ReadRepoConfig {
                        installation: id,
                        repo,
                        report_on: None,
                        then: AfterConfig::Nothing,
                    });
                }
            }
            Event::Label { .. } | Event::Ping { .. } => {}
        }
    }

    fn on_issue(
        &mut self,
        id: InstallationId,
        sender: Option<&User>,
        action: IssueAction,
        issue: &Issue,
        out: &mut Vec<Decision>,
    ) {
        if issue.is_pull_request {
            return;
        }
        let reference = &issue.reference;
        let facts = snapshot_of(issue);
        let trigger = self.repo(&reference.repo).trigger_label;
        let is_trigger = |label: &str| label.eq_ignore_ascii_case(&trigger);
        match action {
            IssueAction::Labeled { label } if is_trigger(&label) => {
                self.manage_if_allowed(id, facts, sender, out);
            }
            IssueAction::Unlabeled { label } if is_trigger(&label) => {
                self.observe(id, &facts);
                self.leave(id, reference, out);
            }
            IssueAction::Closed { .. } | IssueAction::Deleted | IssueAction::Transferred { .. } => {
                let mut facts = facts;
                if !matches!(action, IssueAction::Closed { .. }) {
                    facts.status = IssueStatus::Deleted;
                }
                self.observe(id, &facts);
                self.leave(id, reference, out);
            }
            IssueAction::Reopened => {
                self.observe(id, &facts);
                // Managed again if a writer's command put it under management, or if whoever
                // applied the label (not whoever reopened it) may start agents.
                let labelled = issue.labels.iter().any(|l| is_trigger(l));
                let by_command = self.tracked(id, reference).is_some_and(|t| t.by_command);
                if by_command {
                    self.manage(id, &facts, out);
                } else if labelled {
                    self.manage_if_allowed(id, facts, None, out);
                } else if self.tracked(id, reference).is_some_and(|t| t.managed) {
                    // Its label went while it was closed as completed: no longer wanted.
                    self.leave(id, reference, out);
                }
            }
            // Body or labels changed (dependencies, priority, estimate), or it was opened.
            _ => {
                let counted = self.tracked(id, reference).map(|t| t.open_blockers);
                self.observe(id, &facts);
                let managed = self.tracked(id, reference).is_some_and(|t| t.managed);
                if managed && issue.state == IssueState::Open {
                    if issue.open_blockers.is_some() && counted != Some(issue.open_blockers) {
                        self.read_native_blockers(id, reference, issue.open_blockers, out);
                    }
                    self.refresh_dependencies(id, reference, out);
                }
            }
        }
    }

    /// An open issue carries the trigger label: it is managed if whoever applied it may
    /// start agents. A person who sent the `labeled` webhook is that actor; otherwise (a
    /// bot sent it, or there is no webhook: reopen, reconciler) the issue's events tell.
    pub(super) fn manage_if_allowed(
        &mut self,
        id: InstallationId,
        facts: IssueSnapshot,
        sender: Option<&User>,
        out: &mut Vec<Decision>,
    ) {
        if facts.status != IssueStatus::Open {
            return;
        }
        match sender {
            Some(user) if !user.is_bot => out.push(Decision::CheckPermission {
                installation: id,
                repo: facts.reference.repo.clone(),
                user: user.clone(),
                then: AfterPermission::Label(facts),
            }),
            _ => {
                let trigger = self.repo(&facts.reference.repo).trigger_label;
                out.push(Decision::ReadLabelActor {
                    installation: id,
                    issue: facts,
                    trigger,
                });
            }
        }
    }

    /// Who applied the label is known: a person's permission is read, an App is trusted
    /// or not by what GitHub says of it.
    pub(super) fn on_label_actor(
        &mut self,
        id: InstallationId,
        facts: IssueSnapshot,
        actor: Actor,
        out: &mut Vec<Decision>,
    ) {
        match &actor {
            Actor::Person(user) => out.push(Decision::CheckPermission {
                installation: id,
                repo: facts.reference.repo.clone(),
                user: user.clone(),
                then: AfterPermission::Label(facts),
            }),
            Actor::App { app: Some(app), .. } if self.is_trusted_app(app) => {
                self.manage(id, &facts, out)
            }
            Actor::App { .. } | Actor::Unknown => self.refuse(id, &facts, &actor, out),
        }
    }

    /// Puts an open issue under management: its native dependencies are read (it waits for
    /// them), its declared ones applied, and it enters the graph.
    pub(super) fn manage(
        &mut self,
        id: InstallationId,
        facts: &IssueSnapshot,
        out: &mut Vec<Decision>,
    ) {
        if facts.status != IssueStatus::Open {
            return;
        }
        let issue = &facts.reference;
        let installation = self.installation_mut(id);
        let tracked = installation
            .issues
            .entry(issue.clone())
            .or_insert_with(|| super::Tracked::new(IssueStatus::Open));
        let newly = !tracked.managed;
        tracked.managed = true;
        tracked.refused = None;
        tracked.apply(facts);
        installation.refresh_node(issue);
        if newly {
            tracing::info!(%issue, "managing the issue");
        }
        self.read_native_blockers(id, issue, facts.open_blockers, out);
        // Sub-issues are read when GitHub counts some, or does not say. Those open when it
        // is first managed are managed on the same authority; later ones only when whoever
        // attaches them may start agents.
        let adopt = newly && self.tracked(id, issue).is_some_and(|t| !t.children_adopted);
        if facts.sub_issues.is_none_or(|c| c.total > 0) {
            self.read_sub_issues(id, issue, facts.sub_issues, adopt, out);
        }
        self.refresh_dependencies(id, issue, out);
    }

    /// Records that a labelled issue's label came from `actor`, who may not start agents:
    /// it stays unmanaged, and its status comment says why, once.
    pub(super) fn refuse(
        &mut self,
        id: InstallationId,
        facts: &IssueSnapshot,
        actor: &Actor,
        out: &mut Vec<Decision>,
    ) {
        let issue = &facts.reference;
        let who = texts::actor_name(actor);
        let label = self.repo(&issue.repo).trigger_label;
        let command = self.settings.orchestrator.command.clone();
        let installation = self.installation_mut(id);
        let tracked = installation
            .issues
            .entry(issue.clone())
            .or_insert_with(|| super::Tracked::new(IssueStatus::Open));
        if tracked.managed {
            // Already managed on a writer's word (a command, an earlier label): a later
            // label from someone else takes nothing away.
            return;
        }
        tracing::info!(%issue, actor = %who, "the trigger label was added by an actor who cannot start agents; not managing");
        tracked.apply(facts);
        let said = tracked.refused.as_deref() == Some(who.as_str());
        tracked.refused = Some(who);
        installation.refresh_node(issue);
        self.changed.insert((id, issue.clone()));
        if !said {
            out.push(Decision::PublishStatus {
                installation: id,
                issue: issue.clone(),
                body: texts::label_refusal(&label, actor, &command),
                add_label: None,
                remove_label: None,
                project: None,
            });
        }
    }

    /// Takes in what an issue says now, when it is tracked.
    pub(super) fn observe(&mut self, id: InstallationId, facts: &IssueSnapshot) {
        let issue = &facts.reference;
        let installation = self.installation_mut(id);
        let Some(tracked) = installation.issues.get_mut(issue) else {
            return;
        };
        tracked.apply(facts);
        installation.refresh_node(issue);
        self.touch(id, issue);
    }

    /// Takes an issue out of management when it is no longer wanted (label removed,
    /// closed, deleted, moved); its agent is stopped unless `orchestrator.cancel_on_close`
    /// is off.
    pub(super) fn leave(&mut self, id: InstallationId, issue: &IssueRef, out: &mut Vec<Decision>) {
        let trigger = self.repo(&issue.repo).trigger_label;
        let cancel = self.settings.orchestrator.cancel_on_close;
        let installation = self.installation_mut(id);
        let Some(tracked) = installation.issues.get_mut(issue) else {
            return;
        };
        let labelled = tracked.has_label(&trigger);
        // Still wanted: open and labelled, or open and put under management by command.
        if tracked.status == IssueStatus::Open && (labelled || tracked.by_command) {
            return;
        }
        if tracked.status != IssueStatus::ClosedCompleted {
            tracked.managed = tracked.managed && tracked.status == IssueStatus::Open && labelled;
            installation.graph.set_managed(issue, false);
        }
        let unfinished = installation
            .runs
            .get(issue)
            .is_some_and(|run| !run.state.is_final());
        if cancel && unfinished {
            out.push(Decision::Cancel {
                installation: id,
                issue: issue.clone(),
            });
        }
        self.touch(id, issue);
    }

    fn on_pull_request(
        &mut self,
        id: InstallationId,
        action: PullRequestAction,
        pull: &PullRequest,
        out: &mut Vec<Decision>,
    ) {
        let closes = self
            .parser
            .closing_references(&pull.reference.repo, &pull.body);
        let link = crate::domain::PullRequestLink::new(pull.html_url.clone());
        for issue in closes {
            let installation = self.installation_mut(id);
            let Some(entry) = installation.issues.get_mut(&issue) else {
                continue;
            };
            entry.pulls.insert(link.clone());
            if matches!(action, PullRequestAction::Closed { .. }) {
                entry.branches.remove(&pull.html_url);
            } else {
                entry
                    .branches
                    .insert(pull.html_url.clone(), pull.head_ref.clone());
            }
            if action == (PullRequestAction::Closed { merged: true }) && entry.is_active() {
                // GitHub closes it itself only for merges into the default branch.
                tracing::info!(%issue, pull = %pull.reference, "its pull request was merged; closing it");
                entry.status = IssueStatus::ClosedCompleted;
                out.push(Decision::CloseIssue {
                    installation: id,
                    issue: issue.clone(),
                });
            }
            installation.refresh_node(&issue);
            self.touch(id, &issue);
        }
    }

    /// A card moved on a board: read where it is now, when a `queued` option is mapped.
    fn on_project_item(
        &mut self,
        id: InstallationId,
        sender: Option<User>,
        action: ProjectItemAction,
        item: &ProjectItem,
        out: &mut Vec<Decision>,
    ) {
        let Some(queued) = self.settings.projects.status_options.queued.clone() else {
            return;
        };
        if !matches!(action, ProjectItemAction::Edited { .. }) || item.content_type != "Issue" {
            return;
        }
        // Token mode reaches GraphQL through any repository's client.
        let repo = self
            .installations
            .get(&id)
            .and_then(|i| i.issues.keys().next())
            .map(|i| i.repo.clone());
        if !self.settings.app_mode && repo.is_none() {
            return;
        }
        out.push(Decision::ReadProjectItem {
            installation: id,
            repo,
            item: item.node_id.clone(),
            content: item.content_node_id.clone(),
            field: self.settings.projects.status_field.clone(),
            queued,
            sender,
        });
    }

    /// A card moved to the option mapped to `queued` is managed like `/codegen run`, when
    /// the mover may run agents.
    pub(super) fn on_project_item_read(
        &mut self,
        id: InstallationId,
        issue: Option<IssueSnapshot>,
        moved_to_queued: bool,
        sender: Option<User>,
        out: &mut Vec<Decision>,
    ) {
        let Some(issue) = issue else { return };
        let managed = self
            .tracked(id, &issue.reference)
            .is_some_and(|t| t.managed);
        if !moved_to_queued || managed {
            return;
        }
        match sender {
            Some(user) => out.push(Decision::CheckPermission {
                installation: id,
                repo: issue.reference.repo.clone(),
                user,
                then: AfterPermission::ProjectMove(issue),
            }),
            None => {
                tracing::info!(issue = %issue.reference, "moved to the queued option by nobody known; not managing")
            }
        }
    }

    /// An issue asked for was read.
    pub(super) fn on_issue_read(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        snapshot: Option<IssueSnapshot>,
        purpose: ReadPurpose,
        out: &mut Vec<Decision>,
    ) {
        let facts = snapshot.unwrap_or_else(|| unreadable(issue));
        match purpose {
            ReadPurpose::Blocker => {
                self.blocker_reads.remove(&(id, issue.clone()));
                self.installation_mut(id).remember_blocker(&facts);
                self.touch(id, issue);
            }
            ReadPurpose::Reread => self.observe(id, &facts),
            ReadPurpose::Recheck => {
                self.recount(id, &facts, out);
                self.observe(id, &facts);
                self.leave(id, issue, out);
            }
        }
    }

    /// A permission asked for was read.
    pub(super) fn on_permission(
        &mut self,
        id: InstallationId,
        user: User,
        permission: crate::domain::Permission,
        then: AfterPermission,
        out: &mut Vec<Decision>,
    ) {
        match then {
            AfterPermission::Label(facts) if permission.may_run_agents() => {
                self.manage(id, &facts, out)
            }
            AfterPermission::Label(facts) => self.refuse(id, &facts, &Actor::Person(user), out),
            AfterPermission::ProjectMove(facts) if permission.may_run_agents() => {
                // Managed like `/codegen run`: no label keeps it, so the command's mark does.
                self.manage(id, &facts, out);
                if let Some(tracked) = self.installation_mut(id).issues.get_mut(&facts.reference) {
                    tracked.by_command = true;
                }
                self.changed.insert((id, facts.reference.clone()));
            }
            AfterPermission::ProjectMove(facts) => {
                tracing::info!(issue = %facts.reference, "moved to the queued option by someone without write permission; not managing");
            }
            AfterPermission::Commands(request) => {
                self.on_commands(id, &user, permission, request, out)
            }
            AfterPermission::SubIssue { parent, child } if permission.may_run_agents() => {
                self.adopt_sub_issue(id, &parent, &child, out)
            }
            AfterPermission::SubIssue { parent, child } => {
                tracing::info!(%parent, child = %child.reference, user = %user.login, "a sub-issue was attached by someone who cannot start agents; it blocks its parent but is not managed");
            }
        }
    }

    /// This App itself, or an App the configuration trusts.
    pub(super) fn is_trusted_app(&self, app: &crate::domain::AppIdentity) -> bool {
        self.settings.app_id.is_some_and(|ours| ours == app.id)
            || (!app.slug.is_empty()
                && self
                    .settings
                    .orchestrator
                    .trusted_apps
                    .iter()
                    .any(|slug| slug.eq_ignore_ascii_case(&app.slug)))
    }
}
