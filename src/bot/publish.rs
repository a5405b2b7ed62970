//! Showing the status: one comment per managed issue (found by its marker, edited in
//! place, never duplicated), one state label at a time, and the Projects v2 Status field.

use sha2::{Digest, Sha256};

use super::{Bot, BotError, Installation, State};
use crate::clock::now_millis;
use crate::domain::{InstallationId, IssueRef, IssueStatus};
use crate::engine::status::{
    BlockerView, RunPhase, RunView, STATUS_MARKER, StatusView, WorkState, render,
    unreachable_projects_note, work_state,
};
use crate::github::GitHub;
use crate::github::graphql::ProjectUpdate;
use crate::store::{RunRecord, RunState};

/// State labels' colour.
const LABEL_COLOUR: &str = "5319e7";

impl Bot {
    /// Publishes every issue marked dirty. Failures are logged; the next change or the
    /// reconciler publishes again.
    pub(super) async fn publish_dirty(&self, state: &mut State) {
        let dirty = std::mem::take(&mut state.dirty);
        for (id, issue) in dirty {
            if let Err(err) = self.publish(state, id, &issue).await {
                tracing::warn!(%issue, error = %err, "publishing the status failed; it will be retried with the next change");
            }
        }
    }

    async fn publish(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Result<(), BotError> {
        let Some(installation) = state.installations.get(&id) else {
            return Ok(());
        };
        let Some(tracked) = installation.issues.get(issue) else {
            return Ok(());
        };
        let view = self.status_view(state, installation, id, issue);
        if view.is_none() && tracked.state_label.is_none() {
            return Ok(()); // never managed: a blocker only
        }
        let old_label = tracked.state_label.clone();
        let old_option = tracked.project_option.clone();
        let settings = self.load_repo(state, id, &issue.repo, None).await?;
        let client = self.client(id, &issue.repo).await?;
        let wanted_label = view.as_ref().map(|v| v.state.label(&settings.label_prefix));
        let wanted_option = view
            .as_ref()
            .and_then(|v| settings.status_options.for_state(v.state.name()))
            .map(str::to_owned);
        let mut notes = Vec::new();
        if wanted_label != old_label {
            self.set_state_label(
                &client,
                issue,
                old_label.as_deref(),
                wanted_label.as_deref(),
            )
            .await?;
        }
        if let Some(option) = wanted_option.as_deref()
            && wanted_option != old_option
        {
            notes = self
                .set_project_option(&client, issue, &settings.status_field, option)
                .await;
        }
        let installation = state.installations.get_mut(&id).expect("checked above");
        let tracked = installation.issues.get_mut(issue).expect("checked above");
        tracked.state_label = wanted_label;
        tracked.project_option = wanted_option;
        for note in notes {
            if !tracked.notes.contains(&note) {
                tracked.notes.push(note);
            }
        }
        self.save(state, id, issue).await?;
        let installation = &state.installations[&id];
        let body = match self.status_view(state, installation, id, issue) {
            Some(view) => render(&view, &self.inner.settings.orchestrator.command),
            None => left_text(installation, issue),
        };
        self.write_status_comment(&client, issue, &body).await
    }

    /// What the status comment of a managed issue shows; `None` when it is not managed.
    pub(super) fn status_view(
        &self,
        state: &State,
        installation: &Installation,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Option<StatusView> {
        let state_now = state_of(installation, issue)?;
        let tracked = installation.issues.get(issue)?;
        let graph = &installation.graph;
        let blockers: Vec<BlockerView> = graph
            .blockers(issue)
            .into_iter()
            .map(|b| {
                let known = installation.issues.get(&b.issue);
                BlockerView {
                    satisfied: graph.is_satisfied(&b.issue),
                    title: known.and_then(|t| t.title.clone()),
                    pull_requests: known
                        .map(|t| t.pulls.iter().cloned().collect())
                        .unwrap_or_default(),
                    issue: b.issue,
                    state: b.state,
                }
            })
            .collect();
        let run = installation.runs.get(issue).map(run_view);
        let queue_position = (state_now == WorkState::Queued)
            .then(|| {
                self.scheduler(state)
                    .queue(graph)
                    .iter()
                    .position(|i| i == issue)
                    .map(|p| p + 1)
            })
            .flatten();
        let paused = self.pause_reason(state, id, issue);
        Some(StatusView {
            issue: issue.clone(),
            state: state_now,
            blockers,
            queue_position,
            // A cleared attempt (retry asked) is shown until the next one starts.
            run,
            pull_requests: tracked.pulls.iter().cloned().collect(),
            cycle: tracked.cycle.clone(),
            paused,
            notes: tracked.notes.clone(),
            unseen_blockers: tracked.unseen_blockers,
        })
    }

    fn pause_reason(&self, state: &State, id: InstallationId, issue: &IssueRef) -> Option<String> {
        let command = &self.inner.settings.orchestrator.command;
        if let Some(by) = state.paused.get(&issue.repo) {
            return Some(format!(
                "{} was paused by @{by}; `{command} resume` restarts it.",
                issue.repo
            ));
        }
        match &self.inner.agents {
            None => {
                Some("Codegen is not configured (set codegen.org_id and codegen.api_token).".into())
            }
            Some(agents) => agents
                .quota_pause(id, now_millis())
                .map(|message| format!("Codegen's plan quota is used up: {message}")),
        }
    }

    /// Keeps exactly one state label: the wanted one added (created in the repository if
    /// needed), the previous one removed.
    async fn set_state_label(
        &self,
        client: &GitHub,
        issue: &IssueRef,
        old: Option<&str>,
        wanted: Option<&str>,
    ) -> Result<(), BotError> {
        if let Some(label) = wanted {
            let description = "Set by codegen-orchestrator";
            client
                .ensure_label(&issue.repo, label, LABEL_COLOUR, description)
                .await?;
            client.add_labels(issue, &[label]).await?;
        }
        if let Some(old) = old
            && Some(old) != wanted
        {
            client.remove_label(issue, old).await?;
        }
        Ok(())
    }

    /// Sets the Projects field on every board the issue is on; problems are returned as
    /// notes for the status comment (reported once, not retried).
    async fn set_project_option(
        &self,
        client: &GitHub,
        issue: &IssueRef,
        field: &str,
        option: &str,
    ) -> Vec<String> {
        match client.set_project_status(issue, field, option).await {
            Ok(updates) => {
                // Boards GitHub refused the App are said once, together.
                let mut named = Vec::new();
                let mut unnamed = 0;
                let mut reasons: Vec<String> = Vec::new();
                let mut notes: Vec<String> = updates
                    .into_iter()
                    .filter_map(|update| match update {
                        ProjectUpdate::NoSuchField { project } => Some(format!(
                            "The project \"{project}\" has no single-select field \"{field}\" (projects.status_field); its items are not updated."
                        )),
                        ProjectUpdate::NoSuchOption { project, available } => Some(format!(
                            "The field \"{field}\" of the project \"{project}\" has no option \"{option}\" (projects.status_options); it has: {}.",
                            available.join(", ")
                        )),
                        ProjectUpdate::Unreachable { project, message } => {
                            match project {
                                Some(title) => named.push(title),
                                None => unnamed += 1,
                            }
                            if !reasons.contains(&message) {
                                reasons.push(message);
                            }
                            None
                        }
                        ProjectUpdate::Set { .. } | ProjectUpdate::Unchanged { .. } => None,
                    })
                    .collect();
                if !named.is_empty() || unnamed > 0 {
                    notes.push(unreachable_projects_note(
                        field,
                        &named,
                        unnamed,
                        &reasons.join("; "),
                    ));
                }
                notes
            }
            Err(err) => {
                tracing::warn!(%issue, error = %err, "could not update the Projects field");
                Vec::new()
            }
        }
    }

    /// Edits the status comment in place, or creates it once: the store holds its id and
    /// the hash of what it says; creating it is claimed first, so that two workers never
    /// both post one, and the marker finds a comment the store does not know.
    async fn write_status_comment(
        &self,
        client: &GitHub,
        issue: &IssueRef,
        body: &str,
    ) -> Result<(), BotError> {
        let store = &self.inner.store;
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        let known = store.status_comment(issue).await?;
        if let Some(comment_id) = known.as_ref().and_then(|k| k.comment_id) {
            if known.as_ref().and_then(|k| k.body_hash.as_deref()) == Some(hash.as_str()) {
                return Ok(());
            }
            match client.update_comment(&issue.repo, comment_id, body).await {
                Ok(()) => {
                    store
                        .record_status_comment(issue, comment_id, &hash)
                        .await?;
                    return Ok(());
                }
                // Deleted by someone: write a new one below.
                Err(err) if err.status() == Some(404) => {}
                Err(err) => return Err(err.into()),
            }
        } else if !store
            .claim_status_comment(issue, now_millis(), self.inner.settings.claim_lease_ms)
            .await?
        {
            return Ok(()); // another worker is creating it; the next change edits it
        }
        let id = match client.find_marked_comment(issue, STATUS_MARKER).await? {
            Some(existing) if known.as_ref().and_then(|k| k.comment_id) != Some(existing.id) => {
                if existing.body != body {
                    client
                        .update_comment(&issue.repo, existing.id, body)
                        .await?;
                }
                existing.id
            }
            _ => client.create_comment(issue, body).await?,
        };
        store.record_status_comment(issue, id, &hash).await?;
        Ok(())
    }
}

/// The state of a managed issue (`None` when not managed): what the status view says,
/// without the parts only the comment needs (queue position, blocker details).
pub(super) fn state_of(installation: &Installation, issue: &IssueRef) -> Option<WorkState> {
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

/// The status comment of an issue that left management.
fn left_text(installation: &Installation, issue: &IssueRef) -> String {
    let why = match installation.issues.get(issue).map(|t| t.status) {
        Some(IssueStatus::ClosedNotPlanned) => "it was closed as not planned",
        Some(IssueStatus::Deleted) => "it was deleted or moved",
        _ => "the trigger label was removed",
    };
    format!(
        "{STATUS_MARKER}\n### codegen-orchestrator: not managed\n\nThis issue is no longer managed: {why}.\n"
    )
}

fn run_view(run: &RunRecord) -> RunView {
    RunView {
        attempt: run.attempt,
        phase: match run.state {
            RunState::Launching => RunPhase::Launching,
            RunState::Running => RunPhase::Running,
            RunState::Succeeded => RunPhase::Succeeded,
            RunState::Failed => RunPhase::Failed,
            RunState::TimedOut => RunPhase::TimedOut,
            RunState::Cancelled => RunPhase::Cancelled,
        },
        web_url: run.web_url.clone(),
        pull_requests: run.pull_requests.clone(),
        failure: run.failure.clone(),
        started_at: run.started_at,
        finished_at: run.finished_at,
    }
}
