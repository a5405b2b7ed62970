//! Showing the status: for every issue whose status may have changed, the engine decides
//! its status comment, its one state label and its Projects option. What was last decided
//! is remembered, so that an unchanged status is not sent to the effects again.

use super::Engine;
use super::io::Decision;
use crate::domain::{InstallationId, IssueRef, IssueStatus, RunRecord};
use crate::engine::status::{
    BlockerView, QUEUE_POSITIONS_SHOWN, RunView, StatusView, WorkState, work_state,
};
use crate::engine::texts;

impl Engine {
    /// Decides the status of every issue marked dirty. The places in the launch queues are
    /// the ones the settle that calls this has just worked out (`self.queue_heads`).
    pub(super) fn publish_dirty(&mut self, now: i64, out: &mut Vec<Decision>) {
        let dirty = std::mem::take(&mut self.dirty);
        for (id, issue) in dirty {
            let position = self.queue_position(id, &issue);
            self.publish(id, &issue, position, now, out);
        }
    }

    /// Where `issue` stands in its installation's queue (from 1), when queued. Past the
    /// places a status names, any place says the same, so the whole queue is not counted.
    fn queue_position(&self, id: InstallationId, issue: &IssueRef) -> Option<usize> {
        let head = self.queue_heads.get(&id)?;
        if let Some(n) = head.iter().position(|queued| queued == issue) {
            return Some(n + 1);
        }
        let queued = !self.paused.contains_key(&issue.repo)
            && self
                .installations
                .get(&id)
                .is_some_and(|installation| installation.graph.is_ready(issue));
        queued.then_some(QUEUE_POSITIONS_SHOWN + 1)
    }

    fn publish(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        queue_position: Option<usize>,
        now: i64,
        out: &mut Vec<Decision>,
    ) {
        let Some(tracked) = self.tracked(id, issue) else {
            return;
        };
        // What GitHub is being asked first (its native blockers, a blocker seen for the
        // first time) would show as a passing state: the status waits for the answers,
        // which mark it for publishing again.
        if tracked.native_pending
            || self.blocker_read_pending(id, issue)
            || self.launch_pending(id, issue)
        {
            return;
        }
        let view = self.status_view(id, issue, queue_position, now);
        if view.is_none() && tracked.state_label.is_none() {
            return; // never managed: a blocker only
        }
        let Some(settings) = self.repos.get(&issue.repo) else {
            self.ask_config(id, &issue.repo, out);
            return;
        };
        let old_label = tracked.state_label.clone();
        let old_option = tracked.project_option.clone();
        let wanted_label = view.as_ref().map(|v| v.state.label(&settings.label_prefix));
        let wanted_option = view
            .as_ref()
            .and_then(|v| settings.status_options.for_state(v.state.name()))
            .map(str::to_owned);
        let command = &self.settings.orchestrator.command;
        let body = match &view {
            Some(view) => texts::status_comment(view, command),
            None => texts::left_management(Some(tracked.status)),
        };
        let add_label = wanted_label.clone().filter(|_| wanted_label != old_label);
        let remove_label = old_label.clone().filter(|_| wanted_label != old_label);
        let project = wanted_option
            .clone()
            .filter(|_| wanted_option != old_option)
            .map(|option| (settings.status_field.clone(), option));
        let unchanged = add_label.is_none()
            && remove_label.is_none()
            && project.is_none()
            && self.published.get(issue) == Some(&body);
        if unchanged {
            return;
        }
        self.published.insert(issue.clone(), body.clone());
        match view.as_ref().and_then(|v| v.expected_start) {
            Some(start) => self.shown_starts.insert(issue.clone(), start),
            None => self.shown_starts.remove(issue),
        };
        let installation = self.installation_mut(id);
        if let Some(tracked) = installation.issues.get_mut(issue) {
            tracked.state_label = wanted_label;
            tracked.project_option = wanted_option;
        }
        self.changed.insert((id, issue.clone()));
        out.push(Decision::PublishStatus {
            installation: id,
            issue: issue.clone(),
            body,
            add_label,
            remove_label,
            project,
        });
    }

    /// A launch decided and not answered yet: the status waits for the run it made (one
    /// comment edit per launch instead of two).
    fn launch_pending(&self, id: InstallationId, issue: &IssueRef) -> bool {
        let run = self.installations.get(&id).and_then(|i| i.runs.get(issue));
        run.is_some_and(|run| run.row == 0 && run.state == crate::domain::RunState::Launching)
    }

    fn blocker_read_pending(&self, id: InstallationId, issue: &IssueRef) -> bool {
        !self.blocker_reads.is_empty()
            && self.installations.get(&id).is_some_and(|installation| {
                installation
                    .graph
                    .blockers(issue)
                    .iter()
                    .any(|b| self.blocker_reads.contains(&(id, b.issue.clone())))
            })
    }

    /// Problems met setting the Projects field are said once in the status.
    pub(super) fn on_project_notes(
        &mut self,
        id: InstallationId,
        issue: &IssueRef,
        notes: Vec<String>,
    ) {
        let Some(tracked) = self.installation_mut(id).issues.get_mut(issue) else {
            return;
        };
        let mut added = false;
        for note in notes {
            if !tracked.notes.contains(&note) {
                tracked.notes.push(note);
                added = true;
            }
        }
        if added {
            self.touch(id, issue);
        }
    }

    /// What the status comment of a managed issue shows; `None` when it is not managed.
    pub(super) fn status_view(
        &self,
        id: InstallationId,
        issue: &IssueRef,
        queue_position: Option<usize>,
        now: i64,
    ) -> Option<StatusView> {
        let installation = self.installations.get(&id)?;
        let state = state_of(installation, issue)?;
        let tracked = installation.issues.get(issue)?;
        let graph = &installation.graph;
        let blockers: Vec<BlockerView> = graph
            .blockers(issue)
            .into_iter()
            .map(|b| {
                let known = installation.issues.get(&b.issue);
                BlockerView {
                    sub_issue: tracked.children.contains(&b.issue),
                    discovered_in: tracked.discovered.get(&b.issue).copied(),
                    satisfied: graph.is_satisfied(&b.issue),
                    title: known.and_then(|t| t.title.clone()),
                    pull_requests: known
                        .map(|t| t.pulls.iter().map(|p| p.url.clone()).collect())
                        .unwrap_or_default(),
                    issue: b.issue,
                    state: b.state,
                }
            })
            .collect();
        let queue_position = queue_position.filter(|_| state == WorkState::Queued);
        let waiting = matches!(state, WorkState::Queued | WorkState::Blocked);
        let expected_start = self
            .expected_start(id, issue, now)
            .filter(|_| waiting && self.pause_reason(id, issue, now).is_none());
        Some(StatusView {
            issue: issue.clone(),
            state,
            blockers,
            queue_position,
            // A cleared attempt (retry asked) is shown until the next one starts.
            run: installation.runs.get(issue).map(run_view),
            pull_requests: tracked.pulls.iter().map(|p| p.url.clone()).collect(),
            cycle: tracked.cycle.clone(),
            paused: self.pause_reason(id, issue, now),
            notes: tracked.notes.clone(),
            unseen_blockers: tracked.unseen_blockers,
            unseen_children: tracked.unseen_children,
            umbrella: tracked.umbrella,
            parent: tracked.parent.clone(),
            expected_start,
            retry_after_discovery: tracked
                .retry_after_discovery
                .filter(|a| *a == tracked.cleared_attempt && state == WorkState::Blocked),
        })
    }

    pub(super) fn pause_reason(
        &self,
        id: InstallationId,
        issue: &IssueRef,
        now: i64,
    ) -> Option<String> {
        let command = &self.settings.orchestrator.command;
        if let Some(by) = self.paused.get(&issue.repo) {
            return Some(texts::paused_by(&issue.repo, by, command));
        }
        if !self.settings.agents {
            return Some(texts::codegen_not_configured());
        }
        self.quota_pause(id, now).map(texts::quota_used_up)
    }
}

/// The state of a managed issue (`None` when not managed): what the status view says,
/// without the parts only the comment needs (queue position, blocker details).
pub fn state_of(installation: &super::Installation, issue: &IssueRef) -> Option<WorkState> {
    let tracked = installation.issues.get(issue)?;
    let shown = matches!(
        tracked.status,
        IssueStatus::Open | IssueStatus::ClosedCompleted
    );
    if !tracked.managed || !shown {
        return None;
    }
    let graph = &installation.graph;
    let node = graph.get(issue)?;
    let unsatisfied = graph
        .blockers(issue)
        .iter()
        .filter(|b| !graph.is_satisfied(&b.issue))
        .count();
    let run = installation.runs.get(issue).map(run_view);
    Some(work_state(
        tracked.status,
        unsatisfied,
        node.held,
        node.started,
        run.as_ref(),
    ))
}

pub(super) fn run_view(run: &RunRecord) -> RunView {
    RunView {
        attempt: run.attempt,
        phase: run.state,
        web_url: run.web_url.clone(),
        pull_requests: run.pull_requests.iter().map(|p| p.url.clone()).collect(),
        failure: run.failure.clone(),
        started_at: run.started_at,
        finished_at: run.finished_at,
    }
}
