//! The webhook inbox: deliveries stored at the door, claimed by the processor and finished
//! with an outcome. Storing and claiming differ by backend (SQLite's writer commits
//! deliveries in groups; PostgreSQL claims with `SKIP LOCKED`); the rest is shared.

use bytes::Bytes;

use super::rows::{ReadRow, u32_column};
use super::sql::{MAX_IN_LIST, Statement, placeholders};
use super::{Backend, Store, StoreError};
use crate::domain::{DeliveryId, InstallationId};

/// A webhook delivery that passed the door, about to be stored.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// `X-GitHub-Delivery`.
    pub id: DeliveryId,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`, when it has one.
    pub action: Option<String>,
    /// The payload's `installation.id`, when it has one.
    pub installation: Option<InstallationId>,
    /// The payload's `repository.full_name`, when it has one.
    pub repository: Option<String>,
    /// Unix milliseconds at arrival.
    pub received_at: i64,
    /// The raw, verified body.
    pub body: Bytes,
}

/// Whether a delivery was new or had been stored before (a redelivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Stored now; it will be processed.
    New,
    /// Its id was already stored; nothing was written.
    Duplicate,
}

/// A stored delivery handed to the processor.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// Arrival order.
    pub seq: i64,
    /// `X-GitHub-Delivery`.
    pub id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`.
    pub action: Option<String>,
    /// The payload's repository.
    pub repository: Option<String>,
    /// Unix milliseconds at arrival.
    pub received_at: i64,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The raw body.
    pub body: Vec<u8>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting to be processed (or retried).
    Pending,
    /// Decoded and handled.
    Processed,
    /// Understood and deliberately not acted on.
    Ignored,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Processed, Self::Ignored, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// How the processor finished with a claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Handled.
    Processed,
    /// Deliberately not acted on.
    Ignored,
    /// Failed; try again at `next_attempt_at` (unix milliseconds).
    Retry {
        /// What went wrong.
        error: String,
        /// When to try again.
        next_attempt_at: i64,
    },
    /// Failed for the last time; parked.
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// A stored delivery's bookkeeping, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// `X-GitHub-Event`.
    pub event: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last failure's text.
    pub last_error: Option<String>,
}

/// Counts of the inbox, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxCounts {
    /// Deliveries waiting.
    pub pending: u64,
    /// Deliveries parked as failed.
    pub failed: u64,
    /// When the oldest waiting delivery arrived (unix ms).
    pub oldest_pending_at: Option<i64>,
}

impl Store {
    /// Stores a delivery durably (committed to disk) unless its id is already stored.
    pub async fn record_delivery(
        &self,
        delivery: NewDelivery,
    ) -> Result<RecordOutcome, StoreError> {
        dispatch!(self.record_delivery(delivery))
    }

    /// Claims up to `limit` pending deliveries that are due at `now` (unix ms), oldest
    /// first, for `lease_ms`; a claim not finished by then can be taken again.
    pub async fn claim_deliveries(
        &self,
        limit: u32,
        now: i64,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.claim_deliveries_of(limit, now, lease_ms, None).await
    }

    /// [`Store::claim_deliveries`]; with `only`, just the deliveries of those installations
    /// (the ones whose lease this replica holds).
    pub async fn claim_deliveries_of(
        &self,
        limit: u32,
        now: i64,
        lease_ms: i64,
        only: Option<&[InstallationId]>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let mut claimed = match &self.backend {
            // One process acts on every installation: nothing to leave to others.
            Backend::Sqlite(backend) => backend.claim_deliveries(limit, now, lease_ms).await,
            Backend::Postgres(backend) => {
                backend.claim_deliveries(limit, now, lease_ms, only).await
            }
        }?;
        // RETURNING gives no order guarantee; arrival order is the contract.
        claimed.sort_by_key(|delivery| delivery.seq);
        Ok(claimed)
    }

    /// Records how each claimed delivery (by `seq`) ended, all in one transaction.
    pub async fn finish_deliveries(
        &self,
        outcomes: &[(i64, DeliveryOutcome)],
        now: i64,
    ) -> Result<(), StoreError> {
        self.transaction(finish_statements(outcomes, now))
            .await
            .map(drop)
    }

    /// A delivery's state, if it was stored.
    pub async fn delivery(&self, id: &DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        let rows = self
            .read(
                Statement::rows(
                    "SELECT event, state, attempts, last_error FROM deliveries WHERE id = $1",
                )
                .bind(id.as_str()),
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(DeliveryRecord {
            event: row.text("event")?,
            state: DeliveryState::parse(&row.text("state")?).unwrap_or(DeliveryState::Pending),
            attempts: u32_column(row.as_ref(), "attempts")?,
            last_error: row.optional_text("last_error")?,
        }))
    }

    /// How many deliveries are stored in all.
    pub async fn delivery_count(&self) -> Result<u64, StoreError> {
        let rows = self
            .read(Statement::rows("SELECT count(*) AS stored FROM deliveries"))
            .await?;
        Ok(first_int(&rows, "stored")?.try_into().unwrap_or_default())
    }

    /// Whether a delivery is due now and free to claim (of `only` these installations,
    /// when named): the outbox's drain gives way to it.
    pub async fn deliveries_due(
        &self,
        now: i64,
        only: Option<&[InstallationId]>,
    ) -> Result<bool, StoreError> {
        // count(*) of at most one row: an integer in both dialects.
        let due = "SELECT count(*) AS due FROM (SELECT 1 FROM deliveries
                   WHERE state = 'pending' AND next_attempt_at <= $1
                     AND (lease_until IS NULL OR lease_until <= $1)";
        let mut statement = match only {
            None => Statement::rows_of(format!("{due} LIMIT 1) AS one")),
            Some([]) => return Ok(false),
            Some(ids) => Statement::rows_of(format!(
                "{due} AND COALESCE(installation_id, 0) IN ({}) LIMIT 1) AS one",
                placeholders(2, ids.len())
            )),
        }
        .bind(now);
        for id in only.unwrap_or_default() {
            statement = statement.bind(id.0 as i64);
        }
        let rows = self.read(statement).await?;
        Ok(first_int(&rows, "due")? != 0)
    }

    /// Pending and failed counts.
    pub async fn inbox_counts(&self) -> Result<InboxCounts, StoreError> {
        let rows = self
            .read(Statement::rows(
                "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending') AS pending,
                        (SELECT count(*) FROM deliveries WHERE state = 'failed') AS failed,
                        (SELECT min(received_at) FROM deliveries WHERE state = 'pending')
                            AS oldest",
            ))
            .await?;
        let count = |column: &str| -> Result<u64, StoreError> {
            Ok(first_int(&rows, column)?.try_into().unwrap_or_default())
        };
        Ok(InboxCounts {
            pending: count("pending")?,
            failed: count("failed")?,
            oldest_pending_at: match rows.first() {
                Some(row) => row.optional_int("oldest")?,
                None => None,
            },
        })
    }
}

/// A column of the one row an aggregate query returns.
pub(super) fn first_int(rows: &[Box<dyn ReadRow>], column: &str) -> Result<i64, sqlx::Error> {
    rows.first().ok_or(sqlx::Error::RowNotFound)?.int(column)
}

/// The statements that record `outcomes` at `now`.
pub(super) fn finish_statements(outcomes: &[(i64, DeliveryOutcome)], now: i64) -> Vec<Statement> {
    let mut statements = Vec::new();
    // Successes are the bulk: one statement per final state covers all of them.
    for (state, wanted) in [
        (DeliveryState::Processed, DeliveryOutcome::Processed),
        (DeliveryState::Ignored, DeliveryOutcome::Ignored),
    ] {
        let seqs: Vec<i64> = outcomes
            .iter()
            .filter(|(_, outcome)| *outcome == wanted)
            .map(|(seq, _)| *seq)
            .collect();
        for chunk in seqs.chunks(MAX_IN_LIST) {
            let update = Statement::count_of(format!(
                "UPDATE deliveries SET state = $1, attempts = attempts + 1, last_error = NULL,
                        lease_until = NULL, finished_at = $2
                 WHERE seq IN ({})",
                placeholders(3, chunk.len())
            ))
            .bind(state.as_str())
            .bind(now);
            statements.push(chunk.iter().fold(update, |update, seq| update.bind(*seq)));
        }
    }
    for (seq, outcome) in outcomes {
        let (state, error, next_attempt_at, finished_at) = match outcome {
            DeliveryOutcome::Processed | DeliveryOutcome::Ignored => continue,
            DeliveryOutcome::Retry {
                error,
                next_attempt_at,
            } => (DeliveryState::Pending, error, *next_attempt_at, None),
            DeliveryOutcome::Failed { error } => (DeliveryState::Failed, error, 0, Some(now)),
        };
        statements.push(
            Statement::count(
                "UPDATE deliveries
                 SET state = $1, attempts = attempts + 1, last_error = $2, next_attempt_at = $3,
                     finished_at = $4, lease_until = NULL
                 WHERE seq = $5",
            )
            .bind(state.as_str())
            .bind(error.as_str())
            .bind(next_attempt_at)
            .bind(finished_at)
            .bind(*seq),
        );
    }
    statements
}

/// A body as it is stored: LZ4, its length in front (webhook JSON shrinks several times).
pub(super) fn stored_body(body: &[u8]) -> Vec<u8> {
    lz4_flex::compress_prepend_size(body)
}

/// The body of delivery `seq` as it arrived. One that does not decompress comes back
/// empty: decoding then fails and the delivery is parked as failed with that error, like
/// any poison payload.
pub(super) fn arrived_body(seq: i64, stored: &[u8]) -> Vec<u8> {
    lz4_flex::decompress_size_prepended(stored).unwrap_or_else(|err| {
        tracing::error!(seq, error = %err, "a stored body is corrupt");
        Vec::new()
    })
}

/// A claimed delivery's bookkeeping, read from the columns both backends' claims return;
/// the body is filled in by the backend.
pub(super) fn claimed_delivery(row: &dyn ReadRow) -> Result<ClaimedDelivery, sqlx::Error> {
    Ok(ClaimedDelivery {
        seq: row.int("seq")?,
        id: row.text("id")?,
        event: row.text("event")?,
        action: row.optional_text("action")?,
        repository: row.optional_text("repository")?,
        received_at: row.int("received_at")?,
        attempts: u32_column(row, "attempts")?,
        body: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_delivery_state_reads_back_from_its_stored_name() {
        for state in [
            DeliveryState::Pending,
            DeliveryState::Processed,
            DeliveryState::Ignored,
            DeliveryState::Failed,
        ] {
            assert_eq!(DeliveryState::parse(state.as_str()), Some(state));
        }
        assert_eq!(DeliveryState::parse("lost"), None);
    }

    #[test]
    fn successes_are_finished_in_bulk_within_the_bound_value_limit() {
        let mut outcomes: Vec<_> = (0..=MAX_IN_LIST as i64)
            .map(|seq| (seq, DeliveryOutcome::Processed))
            .collect();
        outcomes.push((-1, DeliveryOutcome::Ignored));
        outcomes.push((
            -2,
            DeliveryOutcome::Failed {
                error: "poison".into(),
            },
        ));
        let statements = finish_statements(&outcomes, 7);
        assert_eq!(
            statements.len(),
            4,
            "processed in two lists, ignored in one, the failed one alone"
        );
    }
}
