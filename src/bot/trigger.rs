//! Who may start agents. Whatever path finds a labelled issue (a webhook, a reopen, the
//! reconciler, start-up), it is managed only if the actor who applied the trigger label
//! has write, maintain or admin permission on the repository, or is this App or an App
//! listed in `orchestrator.trusted_apps`. Apps are recognised by what GitHub says of them
//! (`performed_via_github_app`), never by a login.

use super::handlers::{Facts, apply_facts, installation_mut};
use super::{Bot, BotError, State, Tracked};
use crate::domain::{Actor, AppIdentity, InstallationId, IssueRef, IssueStatus, RepoName, User};
use crate::engine::refusal::{actor_name, render_refusal};
use crate::engine::status::STATUS_MARKER;

/// Whether an actor may start agents on a repository.
pub(super) enum Verdict {
    /// Yes.
    Allowed,
    /// No; this actor applied the label.
    Refused(Actor),
}

impl Bot {
    /// Who applied the trigger label to `issue`, and whether they may start agents. A
    /// person who sent the `labeled` webhook is that actor; otherwise (a bot sent it, or
    /// no webhook: reopen, reconciler) the issue's events tell.
    pub(super) async fn label_verdict(
        &self,
        id: InstallationId,
        issue: &IssueRef,
        trigger: &str,
        sender: Option<&User>,
    ) -> Result<Verdict, BotError> {
        let actor = match sender {
            Some(user) if !user.is_bot => Actor::Person(user.clone()),
            _ => {
                let client = self.client(id, &issue.repo).await?;
                client
                    .last_labeled_by(issue, trigger)
                    .await?
                    .unwrap_or(Actor::Unknown)
            }
        };
        self.verdict(id, &issue.repo, actor).await
    }

    /// Whether `actor` may start agents on `repo`.
    pub(super) async fn verdict(
        &self,
        id: InstallationId,
        repo: &RepoName,
        actor: Actor,
    ) -> Result<Verdict, BotError> {
        let allowed = match &actor {
            Actor::Person(user) => {
                let client = self.client(id, repo).await?;
                client.permission(repo, user).await?.may_run_agents()
            }
            Actor::App { app: Some(app), .. } => self.is_trusted_app(app),
            Actor::App { app: None, .. } | Actor::Unknown => false,
        };
        Ok(if allowed {
            Verdict::Allowed
        } else {
            Verdict::Refused(actor)
        })
    }

    /// This App itself, or an App the configuration trusts.
    pub(super) fn is_trusted_app(&self, app: &AppIdentity) -> bool {
        let settings = &self.inner.settings;
        settings.app_id.is_some_and(|ours| ours == app.id)
            || (!app.slug.is_empty()
                && settings
                    .orchestrator
                    .trusted_apps
                    .iter()
                    .any(|slug| slug.eq_ignore_ascii_case(&app.slug)))
    }

    /// Whether `app` is this App (whose own comments are never commands).
    pub(super) fn is_this_app(&self, app: &AppIdentity) -> bool {
        self.inner.settings.app_id == Some(app.id)
    }

    /// Records that `issue` carries the trigger label from `actor`, who may not start
    /// agents: it stays unmanaged, and its status comment says why, once.
    pub(super) async fn refuse(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
        facts: Facts,
        actor: &Actor,
    ) -> Result<(), BotError> {
        let who = actor_name(actor);
        tracing::info!(%issue, actor = %who, "the trigger label was added by an actor who cannot start agents; not managing");
        let installation = installation_mut(state, id, &self.inner.settings);
        let tracked = installation
            .issues
            .entry(issue.clone())
            .or_insert_with(|| Tracked::new(IssueStatus::Open));
        if tracked.managed {
            // Already managed on a writer's word (a command, an earlier label): a later
            // label from someone else takes nothing away.
            return Ok(());
        }
        apply_facts(tracked, facts);
        let said = tracked.refused.as_deref() == Some(who.as_str());
        tracked.refused = Some(who);
        let node = super::node_for(issue, tracked);
        installation.graph.upsert(node);
        if !said {
            let label = self.repo(state, &issue.repo).trigger_label;
            let command = &self.inner.settings.orchestrator.command;
            let client = self.client(id, &issue.repo).await?;
            client
                .upsert_marked_comment(
                    issue,
                    STATUS_MARKER,
                    &render_refusal(&label, actor, command),
                )
                .await?;
        }
        self.save(state, id, issue).await
    }
}
