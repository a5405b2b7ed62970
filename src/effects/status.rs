//! Showing a status on GitHub: one state label at a time, the Projects v2 field, and one
//! status comment per issue (found by its marker, edited in place, never duplicated).

use sha2::{Digest, Sha256};

use super::{EffectError, Effects};
use crate::domain::{InstallationId, IssueRef};
use crate::engine::machine::Outcome;
use crate::engine::texts::{self, STATUS_MARKER};
use crate::github::GitHub;
use crate::github::graphql::ProjectUpdate;

/// State labels' colour.
const LABEL_COLOUR: &str = "5319e7";

/// What a status decision asks for.
pub(super) struct StatusChange<'a> {
    pub(super) body: &'a str,
    pub(super) add_label: Option<&'a str>,
    pub(super) remove_label: Option<&'a str>,
    pub(super) project: Option<&'a (String, String)>,
}

impl Effects {
    pub(super) async fn publish_status(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        change: StatusChange<'_>,
    ) -> Result<Vec<Outcome>, EffectError> {
        let client = self.client(installation, &issue.repo).await?;
        if let Some(label) = change.add_label {
            client
                .ensure_label(
                    &issue.repo,
                    label,
                    LABEL_COLOUR,
                    "Set by codegen-orchestrator",
                )
                .await?;
            client.add_labels(issue, &[label]).await?;
        }
        if let Some(old) = change.remove_label {
            match client.remove_label(issue, old).await {
                // Removed by someone already.
                Err(err) if err.status() == Some(404) => {}
                other => other?,
            }
        }
        let mut outcomes = Vec::new();
        if let Some((field, option)) = change.project {
            let notes = project_notes(&client, issue, field, option).await;
            if !notes.is_empty() {
                outcomes.push(Outcome::ProjectNotes {
                    installation,
                    issue: issue.clone(),
                    notes,
                });
            }
        }
        self.write_status_comment(&client, issue, change.body)
            .await?;
        Ok(outcomes)
    }

    /// Edits the status comment in place, or creates it once: the store holds its id and
    /// the hash of what it says, and the marker finds a comment the store does not know
    /// (one whose creation was answered by a crash or a lost answer). An issue's effects
    /// run only on the replica holding its installation's lease, so no other worker
    /// creates it meanwhile.
    async fn write_status_comment(
        &self,
        client: &GitHub,
        issue: &IssueRef,
        body: &str,
    ) -> Result<(), EffectError> {
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        let known = self.store.status_comment(issue).await?;
        let known_id = known.as_ref().and_then(|k| k.comment_id);
        if let Some(comment_id) = known_id {
            if known.as_ref().and_then(|k| k.body_hash.as_deref()) == Some(hash.as_str()) {
                return Ok(());
            }
            match client.update_comment(&issue.repo, comment_id, body).await {
                Ok(()) => {
                    self.store
                        .record_status_comment(issue, comment_id, &hash)
                        .await?;
                    return Ok(());
                }
                // Deleted by someone: write a new one below.
                Err(err) if err.status() == Some(404) => {}
                Err(err) => return Err(err.into()),
            }
        }
        let id = match client.find_marked_comment(issue, STATUS_MARKER).await? {
            Some(existing) if known_id != Some(existing.id) => {
                if existing.body != body {
                    client
                        .update_comment(&issue.repo, existing.id, body)
                        .await?;
                }
                existing.id
            }
            _ => client.create_comment(issue, body).await?,
        };
        self.store.record_status_comment(issue, id, &hash).await?;
        Ok(())
    }
}

/// Sets the Projects field on every board the issue is on; problems come back as notes for
/// the status comment (reported once, not retried).
async fn project_notes(
    client: &GitHub,
    issue: &IssueRef,
    field: &str,
    option: &str,
) -> Vec<String> {
    let updates = match client.set_project_status(issue, field, option).await {
        Ok(updates) => updates,
        Err(err) => {
            tracing::warn!(%issue, error = %err, "could not update the Projects field");
            return Vec::new();
        }
    };
    // Boards GitHub refused the App are said once, together.
    let mut named = Vec::new();
    let mut unnamed = 0;
    let mut reasons: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for update in updates {
        match update {
            ProjectUpdate::NoSuchField { project } => {
                notes.push(texts::no_such_field_note(&project, field))
            }
            ProjectUpdate::NoSuchOption { project, available } => notes.push(
                texts::no_such_option_note(&project, field, option, &available),
            ),
            ProjectUpdate::Unreachable { project, message } => {
                match project {
                    Some(title) => named.push(title),
                    None => unnamed += 1,
                }
                if !reasons.contains(&message) {
                    reasons.push(message);
                }
            }
            ProjectUpdate::Set { .. } | ProjectUpdate::Unchanged { .. } => {}
        }
    }
    if !named.is_empty() || unnamed > 0 {
        notes.push(texts::unreachable_projects_note(
            field,
            &named,
            unnamed,
            &reasons.join("; "),
        ));
    }
    notes
}
