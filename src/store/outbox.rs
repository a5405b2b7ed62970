//! The transactional outbox. A step of processing (a delivery's outcome or an executed
//! effect's completion, the engine's state changes, and the decisions it produced) is
//! committed in one transaction, so that a crash never leaves state changed with its
//! decisions lost, or decisions stored for a delivery that will be processed again. The
//! decisions wait in the outbox until an executor has carried them out.

use super::inbox::{DeliveryOutcome, finish_statements, first_int};
use super::rows::{ReadRow, u32_column};
use super::sql::{Statement, placeholders};
use super::{Store, StoreError, issues, leases, settings};
use crate::domain::{InstallationId, IssueRef};

/// One step of processing, committed atomically: a delivery's outcome or an executed
/// effect's completion, the engine's state changes, and the decisions it produced.
#[derive(Debug, Default, Clone)]
pub struct Step {
    /// Deliveries finished by this step (seq and outcome), as `finish_deliveries` records
    /// them.
    pub deliveries: Vec<(i64, DeliveryOutcome)>,
    /// Outbox entries executed by this step: marked done.
    pub effects_done: Vec<i64>,
    /// Issue rows to upsert (same table and meaning as `save_issue`).
    pub issues: Vec<(InstallationId, IssueRef, String)>,
    /// Issue rows to delete (as `delete_issue`).
    pub forgotten: Vec<IssueRef>,
    /// Settings to set (`Some`) or remove (`None`), as `set_setting`.
    pub settings: Vec<(String, Option<String>)>,
    /// New outbox entries, in order: (installation, decision as JSON text).
    pub decisions: Vec<(InstallationId, String)>,
}

/// An effect waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The entry's key, in the order the entries were committed.
    pub id: i64,
    /// The installation the decision belongs to.
    pub installation: InstallationId,
    /// The decision, as JSON text.
    pub decision: String,
    /// Failed attempts made so far.
    pub attempts: u32,
    /// Unix ms it was committed.
    pub created_at: i64,
    /// Unix ms it is due (later than now while it waits for a retry).
    pub next_attempt_at: i64,
}

impl Store {
    /// Commits `step` in one transaction; returns the ids of the new outbox entries, in order.
    pub async fn commit_step(&self, step: &Step, now: i64) -> Result<Vec<i64>, StoreError> {
        self.commit_step_fenced(step, now, None).await
    }

    /// [`Store::commit_step`], and with a `fence` (a replica and the installations the step acts on), the step is
    /// written only while that replica holds all of their leases, else refused as a whole
    /// with [`StoreError::LeaseLost`].
    pub async fn commit_step_fenced(
        &self,
        step: &Step,
        now: i64,
        fence: Option<(&str, &[InstallationId])>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut statements = Vec::new();
        let fenced = fence.is_some_and(|(_, installations)| !installations.is_empty());
        if let Some((replica, installations)) = fence.filter(|_| fenced) {
            statements.push(leases::fence(replica, installations));
        }
        if !step.deliveries.is_empty() {
            statements.extend(finish_statements(&step.deliveries, now));
        }
        for &id in &step.effects_done {
            statements.push(
                Statement::count(
                    "UPDATE outbox SET state = 'done', last_error = NULL, done_at = $2
                     WHERE id = $1 AND state = 'pending'",
                )
                .bind(id)
                .bind(now),
            );
        }
        for (installation, issue, data) in &step.issues {
            statements.push(issues::save_issue(*installation, issue, data, now));
        }
        for issue in &step.forgotten {
            statements.push(issues::delete_issue(issue));
        }
        for (key, value) in &step.settings {
            statements.push(settings::set_setting(key, value.as_deref()));
        }
        let first_decision = statements.len();
        for (installation, decision) in &step.decisions {
            // Due at once. One statement per entry: the order of the rows RETURNING gives
            // for a multi-row insert is not defined, and the ids must come back in order.
            statements.push(
                Statement::rows(
                    "INSERT INTO outbox (installation_id, decision, next_attempt_at, created_at)
                     VALUES ($1, $2, $3, $3) RETURNING id",
                )
                .bind(installation.0 as i64)
                .bind(decision.as_str())
                .bind(now),
            );
        }
        if statements.len() == usize::from(fenced) {
            return Ok(Vec::new());
        }
        let outcomes = match self.transaction(statements).await {
            Err(StoreError::Database(sqlx::Error::RowNotFound)) if fenced => {
                return Err(StoreError::LeaseLost);
            }
            outcomes => outcomes?,
        };
        outcomes[first_decision..]
            .iter()
            .map(|inserted| Ok(first_int(&inserted.rows, "id")?))
            .collect()
    }

    /// Pending outbox entries due at `now` (next_attempt_at <= now), oldest id first, at
    /// most `limit`.
    pub async fn pending_effects(
        &self,
        limit: u32,
        now: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.pending_effects_of(limit, now, None).await
    }

    /// [`Store::pending_effects`]; with `only`, just those of these installations.
    pub async fn pending_effects_of(
        &self,
        limit: u32,
        now: i64,
        only: Option<&[InstallationId]>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let columns = "SELECT id, installation_id, decision, attempts, created_at, next_attempt_at
                       FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1";
        let statement = match only {
            None => Statement::rows_of(format!("{columns} ORDER BY id LIMIT $2")),
            // No installation: nothing to read (and `IN ()` is no SQL).
            Some([]) => return Ok(Vec::new()),
            Some(ids) => {
                let mut statement = Statement::rows_of(format!(
                    "{columns} AND installation_id IN ({}) ORDER BY id LIMIT $2",
                    placeholders(3, ids.len())
                ));
                statement = statement.bind(now).bind(i64::from(limit));
                for id in ids {
                    statement = statement.bind(id.0 as i64);
                }
                return self.entries(statement).await;
            }
        };
        self.entries(statement.bind(now).bind(i64::from(limit)))
            .await
    }

    async fn entries(&self, statement: Statement) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = self.read(statement).await?;
        rows.iter()
            .map(|row| Ok(outbox_entry(row.as_ref())?))
            .collect()
    }

    /// An effect failed: attempts + 1, the error kept, tried again at `next_attempt_at`.
    pub async fn retry_effect(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<(), StoreError> {
        self.write(
            Statement::count(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3
                 WHERE id = $1 AND state = 'pending'",
            )
            .bind(id)
            .bind(error)
            .bind(next_attempt_at),
        )
        .await
        .map(drop)
    }

    /// An effect given up on: state 'failed', error kept (it is not tried again).
    pub async fn fail_effect(&self, id: i64, error: &str, now: i64) -> Result<(), StoreError> {
        self.write(
            Statement::count(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = $2,
                        done_at = $3
                 WHERE id = $1 AND state = 'pending'",
            )
            .bind(id)
            .bind(error)
            .bind(now),
        )
        .await
        .map(drop)
    }

    /// How many outbox entries are pending and failed (for metrics and tests).
    pub async fn outbox_counts(&self) -> Result<(u64, u64), StoreError> {
        let rows = self
            .read(Statement::rows(
                "SELECT (SELECT count(*) FROM outbox WHERE state = 'pending') AS pending,
                        (SELECT count(*) FROM outbox WHERE state = 'failed') AS failed",
            ))
            .await?;
        let count = |column: &str| -> Result<u64, StoreError> {
            Ok(first_int(&rows, column)?.try_into().unwrap_or_default())
        };
        Ok((count("pending")?, count("failed")?))
    }
}

fn outbox_entry(row: &dyn ReadRow) -> Result<OutboxEntry, sqlx::Error> {
    Ok(OutboxEntry {
        id: row.int("id")?,
        installation: InstallationId(row.int("installation_id")? as u64),
        decision: row.text("decision")?,
        attempts: u32_column(row, "attempts")?,
        created_at: row.int("created_at")?,
        next_attempt_at: row.int("next_attempt_at")?,
    })
}
