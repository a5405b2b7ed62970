//! GitHub's sub-issues: a parent waits for its sub-issues as for blockers; sub-issues of a
//! managed parent are managed too (`orchestrator.sub_issues: manage`) when whoever attached
//! them may start agents; a parent without an agent of its own (`orchestrator.parents:
//! close_when_done`) is closed once they are done.

use std::collections::BTreeSet;

use super::Engine;
use super::io::{AfterPermission, Decision};
use super::issues::snapshot_of;
use crate::config::{Parents, SubIssues};
use crate::domain::{InstallationId, IssueRef, IssueSnapshot, IssueStatus, SubIssueCounts, User};
use crate::events::{Issue, SubIssueAction};

impl Engine {
    /// A sub-issue was attached to or detached from a parent.
    pub(super) fn on_sub_issue(
        &mut self,
        id: InstallationId,
        sender: Option<&User>,
        action: SubIssueAction,
        parent: &Issue,
        child: &Issue,
        out: &mut Vec<Decision>,
    ) {
        if self.settings.orchestrator.sub_issues == SubIssues::Ignore {
            return;
        }
        // Links between issues the bot knows nothing of are not its concern (and are not
        // kept: an organisation makes many).
        if self.tracked(id, &parent.reference).is_none() {
            return;
        }
        self.installation_mut(id)
            .remember_blocker(&snapshot_of(child));
        self.changed.insert((id, child.reference.clone()));
        let installation = self.installation_mut(id);
        let Some(tracked) = installation.issues.get_mut(&parent.reference) else {
            return;
        };
        match action {
            SubIssueAction::Added => tracked.children.insert(child.reference.clone()),
            SubIssueAction::Removed => tracked.children.remove(&child.reference),
        };
        if parent.sub_issues.is_some() {
            tracked.sub_issues = parent.sub_issues;
        }
        let counted = tracked.sub_issues.map(|c| c.total as usize);
        let listed = tracked.children.len();
        let active = tracked.is_active();
        self.changed.insert((id, parent.reference.clone()));
        if !active {
            return;
        }
        let adopt = self.settings.orchestrator.sub_issues == SubIssues::Manage;
        if action == SubIssueAction::Added
            && adopt
            && child.state == crate::events::IssueState::Open
        {
            self.adopt_if_allowed(
                id,
                &parent.reference,
                snapshot_of(child),
                sender,
                child,
                out,
            );
        }
        // GitHub counts sub-issues the App cannot list: when its count and the list differ,
        // the list is read again to learn how many are unseen.
        if counted.is_some_and(|counted| counted != listed) {
            self.read_sub_issues(id, &parent.reference, parent.sub_issues, false, out);
        }
        self.refresh_dependencies(id, &parent.reference, out);
    }

    /// A sub-issue attached to a managed parent is managed when whoever attached it may
    /// start agents: a person's permission is read; a bot counts only through the App that
    /// opened the sub-issue, when that App is trusted (an agent's follow-up work).
    fn adopt_if_allowed(
        &mut self,
        id: InstallationId,
        parent: &IssueRef,
        facts: IssueSnapshot,
        sender: Option<&User>,
        child: &Issue,
        out: &mut Vec<Decision>,
    ) {
        match sender {
            Some(user) if !user.is_bot => out.push(Decision::CheckPermission {
                installation: id,
                repo: facts.reference.repo.clone(),
                user: user.clone(),
                then: AfterPermission::SubIssue {
                    parent: parent.clone(),
                    child: facts,
                },
            }),
            _ if child
                .via_app
                .as_ref()
                .is_some_and(|app| self.is_trusted_app(app)) =>
            {
                self.adopt_sub_issue(id, parent, &facts, out);
            }
            _ => {
                tracing::info!(%parent, child = %facts.reference, "a sub-issue was attached by a bot that is not a trusted App; it blocks its parent but is not managed");
            }
        }
    }

    /// Manages a sub-issue on its parent's authority: it stays managed without the label,
    /// as if a writer had run `/codegen run` on it.
    pub(super) fn adopt_sub_issue(
        &mut self,
        id: InstallationId,
        parent: &IssueRef,
        facts: &IssueSnapshot,
        out: &mut Vec<Decision>,
    ) {
        let parent_active = self.tracked(id, parent).is_some_and(|t| t.is_active());
        let still_child = self
            .tracked(id, parent)
            .is_some_and(|t| t.children.contains(&facts.reference));
        if !parent_active || !still_child || facts.status != IssueStatus::Open {
            return;
        }
        self.manage(id, facts, out);
        if let Some(tracked) = self.installation_mut(id).issues.get_mut(&facts.reference) {
            tracked.by_command = true;
            tracked.parent.get_or_insert_with(|| parent.clone());
        }
        self.changed.insert((id, facts.reference.clone()));
    }

    /// Asks for an issue's sub-issues; it waits for them. `adopt`: open ones are managed on
    /// its authority (it has just been put under management).
    pub(super) fn read_sub_issues(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        counts: Option<SubIssueCounts>,
        adopt: bool,
        out: &mut Vec<Decision>,
    ) {
        if self.settings.orchestrator.sub_issues == SubIssues::Ignore {
            return;
        }
        let installation = self.installation_mut(id);
        if let Some(tracked) = installation.issues.get_mut(issue) {
            tracked.children_pending = true;
            installation.refresh_node(issue);
        }
        out.push(Decision::ReadSubIssues {
            installation: id,
            issue: issue.clone(),
            counts,
            adopt,
        });
    }

    /// An issue's sub-issues were read: each is remembered (and managed, when `adopt`), and
    /// unfinished ones GitHub counts but did not list hold the parent.
    pub(super) fn on_sub_issues_read(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        children: Vec<IssueSnapshot>,
        counts: Option<SubIssueCounts>,
        adopt: bool,
        out: &mut Vec<Decision>,
    ) {
        let listed_unfinished = children
            .iter()
            .filter(|c| c.status != IssueStatus::ClosedCompleted)
            .count() as u32;
        let references: BTreeSet<IssueRef> = children.iter().map(|c| c.reference.clone()).collect();
        let installation = self.installation_mut(id);
        for child in &children {
            installation.remember_blocker(child);
        }
        let Some(tracked) = installation.issues.get_mut(issue) else {
            return;
        };
        tracked.children = references.clone();
        tracked.children_pending = false;
        if counts.is_some() {
            tracked.sub_issues = counts;
        }
        let unseen = tracked
            .sub_issues
            .map_or(0, |c| c.unfinished().saturating_sub(listed_unfinished));
        if unseen != tracked.unseen_children {
            tracing::info!(%issue, unseen, "GitHub counts sub-issues the App cannot read; they hold the issue");
        }
        tracked.unseen_children = unseen;
        for child in references {
            self.changed.insert((id, child));
        }
        self.refresh_dependencies(id, issue, out);
        if adopt && self.settings.orchestrator.sub_issues == SubIssues::Manage {
            for child in children.iter().filter(|c| c.status == IssueStatus::Open) {
                self.adopt_sub_issue(id, issue, child, out);
            }
        }
    }

    /// Whether a parent with these sub-issues is an umbrella (no agent of its own).
    pub(super) fn is_umbrella(&self, children: &BTreeSet<IssueRef>) -> bool {
        self.settings.orchestrator.parents == Parents::CloseWhenDone && !children.is_empty()
    }

    /// Closes, as completed, the umbrellas among `issues` that nothing blocks any more.
    pub(super) fn close_finished_umbrellas(
        &mut self,
        issues: &BTreeSet<(InstallationId, IssueRef)>,
        out: &mut Vec<Decision>,
    ) {
        let finished: Vec<(InstallationId, IssueRef)> = issues
            .iter()
            .filter(|(id, issue)| {
                self.installations
                    .get(id)
                    .is_some_and(|i| i.graph.is_finished_umbrella(issue))
            })
            .cloned()
            .collect();
        for (id, issue) in finished {
            tracing::info!(%issue, "every sub-issue is done; closing the parent issue");
            let installation = self.installation_mut(id);
            if let Some(tracked) = installation.issues.get_mut(&issue) {
                tracked.status = IssueStatus::ClosedCompleted;
            }
            installation.refresh_node(&issue);
            out.push(Decision::CloseIssue {
                installation: id,
                issue: issue.clone(),
            });
            self.touch(id, &issue);
        }
    }
}
