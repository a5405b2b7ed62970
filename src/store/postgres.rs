//! The PostgreSQL backend, for several replicas sharing one database. Deliveries are
//! claimed with `FOR UPDATE SKIP LOCKED` and a lease, so that each is processed by one
//! replica and a crashed replica's claims return after the lease; jobs that must run on one
//! replica at a time take a transaction-level advisory lock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::{
    ClaimedDelivery, DeliveryOutcome, DeliveryRecord, DeliveryState, InboxCounts, NewDelivery,
    PruneCutoffs, RecordOutcome, RunEnding, RunFilter, RunRecord, RunState, StatusCommentRecord,
    StoreError,
};
use crate::domain::{DeliveryId, InstallationId, IssueRef, RunId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL store: one pool for everything.
#[derive(Clone)]
pub(super) struct PostgresStore {
    pool: PgPool,
}

/// A held advisory lock; released when its transaction ends.
pub(super) struct PgJobLock(Transaction<'static, Postgres>);

impl PgJobLock {
    /// Ends the transaction now (a dropped one is rolled back only when its connection is
    /// next used, which would keep the lock a little longer).
    pub(super) async fn release(self) -> Result<(), StoreError> {
        self.0.rollback().await?;
        Ok(())
    }
}

impl PostgresStore {
    pub(super) async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub(super) async fn record_delivery(
        &self,
        delivery: NewDelivery,
    ) -> Result<RecordOutcome, StoreError> {
        let body = lz4_flex::compress_prepend_size(&delivery.body);
        let mut tx = self.pool.begin().await?;
        let seq: Option<i64> = sqlx::query_scalar(
            "INSERT INTO deliveries (id, event, action, installation_id, repository, received_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO NOTHING RETURNING seq",
        )
        .bind(delivery.id.as_str())
        .bind(&delivery.event)
        .bind(delivery.action.as_deref())
        .bind(delivery.installation.map(|id| id.0 as i64))
        .bind(delivery.repository.as_deref())
        .bind(delivery.received_at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(seq) = seq else {
            return Ok(RecordOutcome::Duplicate);
        };
        sqlx::query("INSERT INTO delivery_bodies (seq, body) VALUES ($1, $2)")
            .bind(seq)
            .bind(body)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RecordOutcome::New)
    }

    pub(super) async fn claim_deliveries(
        &self,
        limit: u32,
        now: i64,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let rows = sqlx::query(
            "UPDATE deliveries d SET lease_until = $1 + $2
             FROM delivery_bodies b
             WHERE d.seq = b.seq AND d.seq IN (
                 SELECT seq FROM deliveries
                 WHERE state = 'pending' AND next_attempt_at <= $1
                   AND (lease_until IS NULL OR lease_until <= $1)
                 ORDER BY seq LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING d.seq, d.id, d.event, d.action, d.repository, d.received_at,
                       d.attempts, b.body",
        )
        .bind(now)
        .bind(lease_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed: Vec<ClaimedDelivery> = rows
            .into_iter()
            .map(|row| {
                let stored: Vec<u8> = row.get("body");
                let seq: i64 = row.get("seq");
                ClaimedDelivery {
                    seq,
                    id: row.get("id"),
                    event: row.get("event"),
                    action: row.get("action"),
                    repository: row.get("repository"),
                    received_at: row.get("received_at"),
                    attempts: row.get::<i32, _>("attempts").try_into().unwrap_or(u32::MAX),
                    body: lz4_flex::decompress_size_prepended(&stored).unwrap_or_else(|err| {
                        tracing::error!(seq, error = %err, "a stored body is corrupt");
                        Vec::new()
                    }),
                }
            })
            .collect();
        claimed.sort_by_key(|delivery| delivery.seq);
        Ok(claimed)
    }

    pub(super) async fn finish_deliveries(
        &self,
        outcomes: &[(i64, DeliveryOutcome)],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (state, wanted) in [
            (DeliveryState::Processed, DeliveryOutcome::Processed),
            (DeliveryState::Ignored, DeliveryOutcome::Ignored),
        ] {
            let seqs: Vec<i64> = outcomes
                .iter()
                .filter(|(_, outcome)| *outcome == wanted)
                .map(|(seq, _)| *seq)
                .collect();
            if seqs.is_empty() {
                continue;
            }
            sqlx::query(
                "UPDATE deliveries SET state = $1, attempts = attempts + 1, last_error = NULL,
                        lease_until = NULL, finished_at = $2
                 WHERE seq = ANY($3)",
            )
            .bind(state.as_str())
            .bind(now)
            .bind(&seqs)
            .execute(&mut *tx)
            .await?;
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
            sqlx::query(
                "UPDATE deliveries
                 SET state = $1, attempts = attempts + 1, last_error = $2, next_attempt_at = $3,
                     finished_at = $4, lease_until = NULL
                 WHERE seq = $5",
            )
            .bind(state.as_str())
            .bind(error)
            .bind(next_attempt_at)
            .bind(finished_at)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn delivery(
        &self,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let row =
            sqlx::query("SELECT event, state, attempts, last_error FROM deliveries WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| DeliveryRecord {
            event: row.get("event"),
            state: DeliveryState::parse(row.get("state")).unwrap_or(DeliveryState::Pending),
            attempts: row.get::<i32, _>("attempts").try_into().unwrap_or(u32::MAX),
            last_error: row.get("last_error"),
        }))
    }

    pub(super) async fn delivery_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries")
            .fetch_one(&self.pool)
            .await?;
        Ok(count.try_into().unwrap_or_default())
    }

    pub(super) async fn inbox_counts(&self) -> Result<InboxCounts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending') AS pending,
                    (SELECT count(*) FROM deliveries WHERE state = 'failed') AS failed,
                    (SELECT min(received_at) FROM deliveries WHERE state = 'pending') AS oldest",
        )
        .fetch_one(&self.pool)
        .await?;
        let count = |column: &str| row.get::<i64, _>(column).try_into().unwrap_or_default();
        Ok(InboxCounts {
            pending: count("pending"),
            failed: count("failed"),
            oldest_pending_at: row.get("oldest"),
        })
    }

    pub(super) async fn prune_deliveries(
        &self,
        cutoffs: PruneCutoffs,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // SKIP LOCKED: a replica pruning at the same time holds its rows until it commits;
        // this one takes others instead of waiting for them (or deadlocking on them).
        // Bodies go with their rows (ON DELETE CASCADE).
        let done = sqlx::query(
            "DELETE FROM deliveries WHERE seq IN (
                 SELECT seq FROM deliveries
                 WHERE finished_at < $3
                   AND ((state IN ('processed', 'ignored') AND finished_at < $1)
                        OR (state = 'failed' AND finished_at < $2))
                 ORDER BY finished_at LIMIT $4
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(cutoffs.handled)
        .bind(cutoffs.failed)
        .bind(cutoffs.latest())
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn begin_launch(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        attempt: u32,
        prompt: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(
            "INSERT INTO runs (installation_id, repository, issue_number, attempt, prompt,
                               state, lease_until, created_at)
             VALUES ($1, $2, $3, $4, $5, 'launching', $6, $7)
             ON CONFLICT DO NOTHING RETURNING *",
        )
        .bind(installation.0 as i64)
        .bind(issue.repo.to_string())
        .bind(issue.number as i64)
        .bind(attempt as i32)
        .bind(prompt)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().and_then(run_record))
    }

    pub(super) async fn take_over_launch(
        &self,
        row: i64,
        now: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET lease_until = $1
             WHERE id = $2 AND state = 'launching' AND lease_until < $3",
        )
        .bind(now + lease_ms)
        .bind(row)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn abandon_launch(&self, row: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM runs WHERE id = $1 AND state = 'launching'")
            .bind(row)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn record_started(
        &self,
        row: i64,
        run_id: RunId,
        web_url: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET state = 'running', codegen_run_id = $1, web_url = $2,
                    started_at = $3, lease_until = NULL
             WHERE id = $4 AND state = 'launching'",
        )
        .bind(run_id.0 as i64)
        .bind(web_url)
        .bind(now)
        .bind(row)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn record_ended(
        &self,
        row: i64,
        ending: &RunEnding,
        now: i64,
    ) -> Result<bool, StoreError> {
        let pull_requests =
            serde_json::to_string(&ending.pull_requests).unwrap_or_else(|_| "[]".into());
        let done = sqlx::query(
            "UPDATE runs SET state = $1, failure = $2, summary = $3, pull_requests = $4,
                    finished_at = $5, lease_until = NULL
             WHERE id = $6 AND state IN ('launching', 'running')",
        )
        .bind(ending.state.as_str())
        .bind(ending.failure.as_deref())
        .bind(ending.summary.as_deref())
        .bind(pull_requests)
        .bind(now)
        .bind(row)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn runs(&self, filter: RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let query = match filter {
            RunFilter::StaleLaunches { now } => sqlx::query(
                "SELECT * FROM runs WHERE state = 'launching' AND lease_until < $1 ORDER BY id",
            )
            .bind(now),
            RunFilter::Running => {
                sqlx::query("SELECT * FROM runs WHERE state = 'running' ORDER BY id")
            }
            RunFilter::All => sqlx::query("SELECT * FROM runs ORDER BY id"),
        };
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.iter().filter_map(run_record).collect())
    }

    pub(super) async fn runs_of(&self, issue: &IssueRef) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE lower(repository) = lower($1) AND issue_number = $2
             ORDER BY attempt",
        )
        .bind(issue.repo.to_string())
        .bind(issue.number as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().filter_map(run_record).collect())
    }

    pub(super) async fn save_issue(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        data: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO issues (installation_id, repository, number, data, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (lower(repository), number)
             DO UPDATE SET installation_id = excluded.installation_id,
                           repository = excluded.repository,
                           data = excluded.data, updated_at = excluded.updated_at",
        )
        .bind(installation.0 as i64)
        .bind(issue.repo.to_string())
        .bind(issue.number as i64)
        .bind(data)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn delete_issue(&self, issue: &IssueRef) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM issues WHERE lower(repository) = lower($1) AND number = $2")
            .bind(issue.repo.to_string())
            .bind(issue.number as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn issues(
        &self,
    ) -> Result<Vec<(InstallationId, IssueRef, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT installation_id, repository, number, data FROM issues ORDER BY repository, number",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let repo = row.get::<String, _>("repository").parse().ok()?;
                Some((
                    InstallationId(row.get::<i64, _>("installation_id") as u64),
                    IssueRef::new(repo, row.get::<i64, _>("number") as u64),
                    row.get("data"),
                ))
            })
            .collect())
    }

    pub(super) async fn status_comment(
        &self,
        issue: &IssueRef,
    ) -> Result<Option<StatusCommentRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT comment_id, body_hash, claimed_until FROM status_comments
             WHERE lower(repository) = lower($1) AND number = $2",
        )
        .bind(issue.repo.to_string())
        .bind(issue.number as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| StatusCommentRecord {
            comment_id: row.get::<Option<i64>, _>("comment_id").map(|id| id as u64),
            body_hash: row.get("body_hash"),
            claimed_until: row.get("claimed_until"),
        }))
    }

    pub(super) async fn claim_status_comment(
        &self,
        issue: &IssueRef,
        now: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO status_comments (repository, number, claimed_until)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(issue.repo.to_string())
        .bind(issue.number as i64)
        .bind(now + lease_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(true);
        }
        let taken = sqlx::query(
            "UPDATE status_comments SET claimed_until = $1
             WHERE lower(repository) = lower($2) AND number = $3
               AND comment_id IS NULL AND claimed_until < $4",
        )
        .bind(now + lease_ms)
        .bind(issue.repo.to_string())
        .bind(issue.number as i64)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    pub(super) async fn record_status_comment(
        &self,
        issue: &IssueRef,
        comment_id: u64,
        body_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO status_comments (repository, number, comment_id, body_hash)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (lower(repository), number)
             DO UPDATE SET comment_id = excluded.comment_id,
                           body_hash = excluded.body_hash, claimed_until = NULL",
        )
        .bind(issue.repo.to_string())
        .bind(issue.number as i64)
        .bind(comment_id as i64)
        .bind(body_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(super) async fn set_setting(
        &self,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        match value {
            Some(value) => {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM settings WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn settings_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT key, value FROM settings WHERE starts_with(key, $1) ORDER BY key")
                .bind(prefix)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get("key"), row.get("value")))
            .collect())
    }

    /// Takes the advisory lock `key` if no other replica holds it; held until the returned
    /// lock is dropped.
    pub(super) async fn try_job_lock(&self, key: i64) -> Result<Option<PgJobLock>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        Ok(locked.then_some(PgJobLock(tx)))
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}

/// A run row as [`RunRecord`]; an unreadable row is logged and skipped.
fn run_record(row: &PgRow) -> Option<RunRecord> {
    let read = || -> Result<RunRecord, sqlx::Error> {
        let repo: String = row.try_get("repository")?;
        let state: String = row.try_get("state")?;
        Ok(RunRecord {
            row: row.try_get("id")?,
            installation: InstallationId(row.try_get::<i64, _>("installation_id")? as u64),
            issue: IssueRef::new(
                repo.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                row.try_get::<i64, _>("issue_number")? as u64,
            ),
            attempt: row.try_get::<i32, _>("attempt")? as u32,
            state: RunState::parse(&state)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown run state {state}").into()))?,
            prompt: row.try_get("prompt")?,
            run_id: row
                .try_get::<Option<i64>, _>("codegen_run_id")?
                .map(|id| RunId(id as u64)),
            web_url: row.try_get("web_url")?,
            summary: row.try_get("summary")?,
            pull_requests: serde_json::from_str(&row.try_get::<String, _>("pull_requests")?)
                .unwrap_or_default(),
            failure: row.try_get("failure")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        })
    };
    read()
        .map_err(|err| tracing::error!(error = %err, "a run row could not be read"))
        .ok()
}
