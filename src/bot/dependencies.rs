//! Dependencies: native blockers read from GitHub (those the App cannot see counted from
//! the issue's summary), declared ones parsed from bodies and labels, and the edges that
//! bring the graph in line (refusing those that would close a cycle).

use std::collections::BTreeSet;

use super::handlers::{Facts, apply_facts, installation_mut};
use super::{Bot, BotError, Installation, State, Tracked, mark_with_dependents, node_for};
use crate::domain::{InstallationId, IssueRef, IssueStatus};
use crate::events::{DependencyAction, Issue};
use crate::github::GitHub;

impl Bot {
    /// Reads `issue`'s native blockers (only those the App can read are listed), saves
    /// each as a tracked blocker so that it survives a restart, and counts the open ones
    /// GitHub reports (`open_blockers`) but did not list: those hold the issue.
    pub(super) async fn read_native_dependencies(
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

    /// Re-reads an issue's declared dependencies and brings its edges in line; blockers seen
    /// for the first time are looked up (in any repository of the installation). An edge
    /// that would close a cycle is refused and the issue is held back with the cycle's path.
    pub(super) async fn refresh_dependencies(
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

    pub(super) async fn on_dependency(
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
}

/// Reads an issue; one that cannot be seen is known as unknown (it keeps blocking).
pub(super) async fn lookup(client: &GitHub, issue: &IssueRef) -> Result<Facts, BotError> {
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

/// Records what is known of a blocker (without managing it).
pub(super) fn remember_blocker(installation: &mut Installation, issue: &IssueRef, facts: Facts) {
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
pub(super) fn set_edges(
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
