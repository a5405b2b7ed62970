//! Dependencies: native blockers read from GitHub (those the App cannot see counted from
//! the issue's summary), declared ones parsed from bodies and labels, links made and
//! removed on GitHub, and the edges that bring the graph in line (refusing those that
//! would close a cycle).

use std::collections::BTreeSet;

use super::Engine;
use super::io::{Decision, ReadPurpose};
use super::issues::{snapshot_of, unreadable};
use crate::config::SubIssues;
use crate::domain::{InstallationId, IssueRef, IssueSnapshot, IssueStatus};
use crate::events::{DependencyAction, Issue};

impl Engine {
    pub(super) fn on_dependency(
        &mut self,
        id: InstallationId,
        action: DependencyAction,
        blocked: &Issue,
        blocking: &Issue,
        out: &mut Vec<Decision>,
    ) {
        let installation = self.installation_mut(id);
        installation.remember_blocker(&snapshot_of(blocking));
        let Some(tracked) = installation.issues.get_mut(&blocked.reference) else {
            self.changed.insert((id, blocking.reference.clone()));
            return;
        };
        match action {
            DependencyAction::Added => tracked.native.insert(blocking.reference.clone()),
            DependencyAction::Removed => tracked.native.remove(&blocking.reference),
        };
        let managed = tracked.managed;
        self.changed.insert((id, blocking.reference.clone()));
        self.changed.insert((id, blocked.reference.clone()));
        if managed {
            // The blocked issue's summary counts blockers the App cannot list as well.
            if blocked.open_blockers.is_some() {
                self.read_native_blockers(id, &blocked.reference, blocked.open_blockers, out);
            }
            self.refresh_dependencies(id, &blocked.reference, out);
        }
    }

    /// Asks for an issue's native blockers; it waits for them.
    pub(super) fn read_native_blockers(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        open_blockers: Option<u32>,
        out: &mut Vec<Decision>,
    ) {
        let installation = self.installation_mut(id);
        if let Some(tracked) = installation.issues.get_mut(issue) {
            tracked.native_pending = true;
            installation.refresh_node(issue);
        }
        out.push(Decision::ReadNativeBlockers {
            installation: id,
            issue: issue.clone(),
            open_blockers,
        });
    }

    /// An issue's native blockers were read: each is remembered, and open ones GitHub
    /// counts (`open_blockers`) but did not list hold the issue.
    pub(super) fn on_native_blockers(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        blockers: Vec<IssueSnapshot>,
        open_blockers: Option<u32>,
        out: &mut Vec<Decision>,
    ) {
        let listed_open = blockers
            .iter()
            .filter(|b| b.status == IssueStatus::Open)
            .count() as u32;
        let references: BTreeSet<IssueRef> = blockers.iter().map(|b| b.reference.clone()).collect();
        let installation = self.installation_mut(id);
        for blocker in &blockers {
            installation.remember_blocker(blocker);
        }
        let Some(tracked) = installation.issues.get_mut(issue) else {
            return;
        };
        tracked.native = references.clone();
        tracked.native_pending = false;
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
        for blocker in references {
            self.changed.insert((id, blocker));
        }
        self.refresh_dependencies(id, issue, out);
    }

    /// Re-reads an issue's declared dependencies and brings its edges in line; blockers
    /// seen for the first time are asked for (they block as unknown until read). An edge
    /// that would close a cycle is refused and the issue held back with the cycle's path.
    pub(super) fn refresh_dependencies(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        out: &mut Vec<Decision>,
    ) {
        let Some(tracked) = self.tracked(id, issue) else {
            return;
        };
        let declared = self
            .parser
            .dependencies(issue, &tracked.body, &tracked.labels);
        let ignore_children = self.settings.orchestrator.sub_issues == SubIssues::Ignore;
        let mut wanted: BTreeSet<IssueRef> = declared
            .iter()
            .chain(&tracked.native)
            .chain(&tracked.added)
            .chain(tracked.children.iter().filter(|_| !ignore_children))
            .filter(|b| !tracked.removed.contains(b))
            .cloned()
            .collect();
        wanted.remove(issue);
        // A parent whose own agent has already run keeps it: only a parent never launched
        // becomes an umbrella.
        let launched = self
            .installations
            .get(&id)
            .is_some_and(|i| i.runs.contains_key(issue));
        let umbrella = self.is_umbrella(&tracked.children, &tracked.removed) && !launched;
        // A reopened umbrella is closed again only once a sub-issue was unfinished since.
        let child_unfinished = tracked.children.iter().any(|child| {
            self.tracked(id, child)
                .is_none_or(|c| c.status != IssueStatus::ClosedCompleted)
        });
        // Blockers it gains while its agent runs are discovered work: the run goes on, but
        // the issue is done for its dependents only once they are.
        let running_attempt = self
            .installations
            .get(&id)
            .and_then(|i| i.runs.get(issue))
            .filter(|run| !run.state.is_final() && run.attempt > tracked.cleared_attempt)
            .map(|run| run.attempt);
        let installation = self.installation_mut(id);
        let unknown: Vec<IssueRef> = wanted
            .iter()
            .filter(|b| !installation.issues.contains_key(*b))
            .cloned()
            .collect();
        self.blocker_reads
            .extend(unknown.iter().map(|b| (id, b.clone())));
        let installation = self.installation_mut(id);
        for blocker in &unknown {
            installation.remember_blocker(&unreadable(blocker));
            out.push(Decision::ReadIssue {
                installation: id,
                issue: blocker.clone(),
                purpose: ReadPurpose::Blocker,
            });
        }
        // Only an issue whose run is going can discover blockers: its edges before are
        // looked at only then.
        let before: BTreeSet<IssueRef> = match running_attempt {
            Some(_) => installation
                .graph
                .blockers(issue)
                .into_iter()
                .map(|b| b.issue)
                .collect(),
            None => BTreeSet::new(),
        };
        let refused = set_edges(installation, issue, &wanted);
        let tracked = installation.issues.get_mut(issue).expect("tracked above");
        tracked.declared = declared;
        tracked.umbrella = umbrella;
        tracked.umbrella_closed &= !child_unfinished;
        if ignore_children {
            // Sub-issues known from before `orchestrator.sub_issues: ignore` no longer count.
            tracked.children.clear();
            tracked.children_pending = false;
            tracked.unseen_children = 0;
        }
        if let Some(attempt) = running_attempt {
            for blocker in wanted.difference(&before) {
                tracing::info!(%issue, %blocker, attempt, "a blocker was discovered while the issue's agent runs");
                tracked.discovered.entry(blocker.clone()).or_insert(attempt);
            }
        }
        tracked
            .discovered
            .retain(|blocker, _| wanted.contains(blocker));
        let was = tracked.cycle.clone();
        tracked.cycle = refused.map(|cycle| {
            cycle
                .path
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" -> ")
        });
        if tracked.cycle.is_some() && was != tracked.cycle {
            tracing::warn!(%issue, cycle = tracked.cycle.as_deref().unwrap_or(""), "a dependency was refused: it would close a cycle");
        }
        installation.refresh_node(issue);
        self.touch(id, issue);
        self.sync_native(id, issue, out);
    }
}

/// Makes the edges into `issue` exactly `wanted`, adding one at a time so that only the
/// edges that close a cycle are refused; returns the first refusal.
fn set_edges(
    installation: &mut super::Installation,
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
