//! Two-way sync with GitHub's native dependencies (`orchestrator.sync_native_dependencies`):
//! dependencies declared in issue text, labels and `/codegen depends on` are written to the
//! issue's "Blocked by" links, and removed when no longer declared, but only the links the
//! bot itself wrote: links people made are read, never removed. The App's own
//! `issue_dependencies` webhooks find the link already known and write nothing again.

use super::Engine;
use super::io::Decision;
use crate::domain::{InstallationId, IssueRef};
use crate::engine::texts;

/// Blockers GitHub records at most per issue.
pub const NATIVE_BLOCKERS_LIMIT: usize = 50;

impl Engine {
    /// Brings the native links the bot wrote for `issue` in line with what it declares.
    pub(super) fn sync_native(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        out: &mut Vec<Decision>,
    ) {
        if !self.settings.orchestrator.sync_native_dependencies {
            return;
        }
        let installation = self.installation_mut(id);
        let in_graph: std::collections::BTreeSet<IssueRef> = installation
            .graph
            .blockers(issue)
            .into_iter()
            .map(|b| b.issue)
            .collect();
        let Some(tracked) = installation.issues.get_mut(issue) else {
            return;
        };
        // Until its native links are read, what is there already is not known.
        if !tracked.is_active() || tracked.native_pending {
            return;
        }
        // Only edges the graph took (a refused cycle is not written either).
        let wanted: Vec<IssueRef> = tracked
            .declared_dependencies()
            .into_iter()
            .filter(|b| in_graph.contains(b))
            .collect();
        let to_add: Vec<IssueRef> = wanted
            .iter()
            .filter(|b| {
                !tracked.native.contains(*b)
                    && !tracked.synced.contains(*b)
                    && !tracked.unsynced.contains(*b)
            })
            .cloned()
            .collect();
        let to_remove: Vec<IssueRef> = tracked
            .synced
            .iter()
            .filter(|b| !wanted.contains(b))
            .cloned()
            .collect();
        let limit_note = |n: &String| texts::is_native_limit_note(n);
        if to_add.is_empty() && to_remove.is_empty() {
            // Nothing to write, so nothing is left out: a limit note goes.
            if tracked.notes.iter().any(limit_note) {
                tracked.notes.retain(|n| !limit_note(n));
                self.touch(id, issue);
            }
            return;
        }
        let mut dropped = Vec::new();
        for blocker in to_remove {
            tracked.synced.remove(&blocker);
            tracked.native.remove(&blocker);
            if !tracked.children.contains(&blocker) {
                tracked.discovered.remove(&blocker);
                dropped.push(blocker.clone());
            }
            out.push(Decision::SyncNativeDependency {
                installation: id,
                issue: issue.clone(),
                blocker,
                add: false,
            });
        }
        let recorded = tracked.native.union(&tracked.synced).count();
        let room = NATIVE_BLOCKERS_LIMIT.saturating_sub(recorded);
        let left_out = to_add.len().saturating_sub(room);
        for blocker in to_add.into_iter().take(room) {
            tracked.synced.insert(blocker.clone());
            out.push(Decision::SyncNativeDependency {
                installation: id,
                issue: issue.clone(),
                blocker,
                add: true,
            });
        }
        // The note is said once while the limit binds, and goes when there is room again.
        if left_out == 0 {
            tracked.notes.retain(|n| !limit_note(n));
        } else if !tracked.notes.iter().any(limit_note) {
            tracing::warn!(%issue, left_out, "GitHub's limit of blockers per issue is reached; not writing more");
            tracked
                .notes
                .push(texts::native_limit_note(NATIVE_BLOCKERS_LIMIT, left_out));
        }
        for blocker in dropped {
            installation.graph.remove_dependency(issue, &blocker);
        }
        installation.refresh_node(issue);
        self.touch(id, issue);
    }

    /// A native link was written or removed, or GitHub refused it.
    pub(super) fn on_native_synced(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        blocker: &IssueRef,
        add: bool,
        failure: Option<String>,
        lasting: bool,
    ) {
        let Some(tracked) = self.installation_mut(id).issues.get_mut(issue) else {
            return;
        };
        match (add, failure) {
            (true, None) => {
                tracked.native.insert(blocker.clone());
            }
            (true, Some(reason)) if lasting => {
                tracing::warn!(%issue, %blocker, %reason, "GitHub refused a native dependency link");
                tracked.synced.remove(blocker);
                tracked.unsynced.insert(blocker.clone());
                tracked
                    .notes
                    .push(texts::native_sync_failed_note(blocker, &reason));
            }
            // GitHub kept failing: not written, and tried again at the issue's next change.
            (true, Some(reason)) => {
                tracing::warn!(%issue, %blocker, %reason, "a native dependency link was not written; it is tried again later");
                tracked.synced.remove(blocker);
            }
            (false, None) => {}
            (false, Some(reason)) => {
                tracing::warn!(%issue, %blocker, %reason, "a native dependency link the bot wrote could not be removed");
            }
        }
        self.touch(id, issue);
    }
}
