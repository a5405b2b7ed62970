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
            // A trusted App's bot attaching an issue that App opened: an agent declaring
            // the work it found. Both are what GitHub says (the `[bot]` login is reserved
            // for Apps, `performed_via_github_app` names the App that opened the issue).
            Some(user)
                if self.is_trusted_bot(user)
                    && child
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

    /// A bot account of an App listed in `orchestrator.trusted_apps` (`<slug>[bot]`).
    fn is_trusted_bot(&self, user: &User) -> bool {
        user.is_bot
            && self.settings.orchestrator.trusted_apps.iter().any(|slug| {
                user.login
                    .strip_suffix("[bot]")
                    .is_some_and(|login| login.eq_ignore_ascii_case(slug))
            })
    }

    /// A managed issue the reconciler read again: when GitHub counts other native blockers
    /// or sub-issues than the bot knows (a lost webhook), or an earlier read of them never
    /// came back, they are read again. Whether the counts differ is returned.
    pub(super) fn recount(
        &mut self,
        id: InstallationId,
        facts: &IssueSnapshot,
        out: &mut Vec<Decision>,
    ) -> bool {
        let Some(tracked) = self.tracked(id, &facts.reference) else {
            return false;
        };
        if !tracked.managed || facts.status != IssueStatus::Open {
            return false;
        }
        let blockers_differ =
            facts.open_blockers.is_some() && facts.open_blockers != tracked.open_blockers;
        let children_differ = facts.sub_issues.is_some() && facts.sub_issues != tracked.sub_issues;
        let (native_pending, children_pending) = (tracked.native_pending, tracked.children_pending);
        if blockers_differ || native_pending {
            self.read_native_blockers(id, &facts.reference, facts.open_blockers, out);
        }
        if children_differ || children_pending {
            self.read_sub_issues(id, &facts.reference, facts.sub_issues, false, out);
        }
        blockers_differ || children_differ
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
            tracked.children_adopted |= adopt;
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
        // The writer who put the parent under management vouched for its sub-issues in its
        // own repository; those elsewhere need their own label or command.
        if adopt && self.settings.orchestrator.sub_issues == SubIssues::Manage {
            let adoptable = children
                .iter()
                .filter(|c| c.status == IssueStatus::Open && c.reference.repo == issue.repo);
            for child in adoptable {
                self.adopt_sub_issue(id, issue, child, out);
            }
        }
    }

    /// Whether a parent with these sub-issues (less those `/codegen unblock` removed) is an
    /// umbrella (no agent of its own).
    pub(super) fn is_umbrella(
        &self,
        children: &BTreeSet<IssueRef>,
        removed: &BTreeSet<IssueRef>,
    ) -> bool {
        self.settings.orchestrator.parents == Parents::CloseWhenDone
            && self.settings.orchestrator.sub_issues != SubIssues::Ignore
            && children.difference(removed).next().is_some()
    }

    /// Closes, as completed, the umbrellas among the issues marked dirty that nothing
    /// blocks any more.
    pub(super) fn close_finished_umbrellas(&mut self, out: &mut Vec<Decision>) {
        let mut candidates: BTreeSet<(InstallationId, IssueRef)> = self
            .dirty
            .iter()
            .filter(|(id, issue)| self.is_finished_umbrella(*id, issue))
            .cloned()
            .collect();
        // Closing one may finish the umbrella above it (nested sub-issues).
        while !candidates.is_empty() {
            let finished: Vec<(InstallationId, IssueRef)> = candidates
                .iter()
                .filter(|(id, issue)| self.is_finished_umbrella(*id, issue))
                .cloned()
                .collect();
            candidates = BTreeSet::new();
            for (id, issue) in finished {
                tracing::info!(%issue, "every sub-issue is done; closing the parent issue");
                let installation = self.installation_mut(id);
                if let Some(tracked) = installation.issues.get_mut(&issue) {
                    tracked.status = IssueStatus::ClosedCompleted;
                    tracked.umbrella_closed = true;
                }
                installation.refresh_node(&issue);
                let above = installation.graph.dependents(&issue);
                candidates.extend(above.into_iter().map(|d| (id, d)));
                out.push(Decision::CloseIssue {
                    installation: id,
                    issue: issue.clone(),
                });
                self.touch(id, &issue);
            }
        }
    }

    /// An umbrella nothing blocks any more, whose sub-issues are all closed as completed
    /// (an agent's success is not enough to close the parent, whatever `unblock_on` says),
    /// and which the bot did not close before (someone reopened it since).
    fn is_finished_umbrella(&self, id: InstallationId, issue: &IssueRef) -> bool {
        let Some(installation) = self.installations.get(&id) else {
            return false;
        };
        let Some(tracked) = installation.issues.get(issue) else {
            return false;
        };
        installation.graph.is_finished_umbrella(issue)
            && !tracked.umbrella_closed
            && tracked.children.difference(&tracked.removed).all(|child| {
                installation
                    .issues
                    .get(child)
                    .is_some_and(|c| c.status == IssueStatus::ClosedCompleted)
            })
    }
}
