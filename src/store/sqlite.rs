//! The SQLite backend: WAL, `synchronous = FULL`, and a single writer task that commits
//! deliveries in groups, so many concurrent webhooks share one fsync.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{
    ClaimedDelivery, DeliveryOutcome, DeliveryRecord, DeliveryState, InboxCounts, NewDelivery,
    RecordOutcome, StoreError,
};
use crate::domain::DeliveryId;

/// Most deliveries committed in one transaction.
const MAX_GROUP: usize = 512;
/// Deliveries waiting for the writer before `record_delivery` callers wait for room.
const QUEUE_CAPACITY: usize = 8192;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite store: a pool for reads and bookkeeping, one writer connection for the inbox.
#[derive(Clone)]
pub(super) struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<InsertRequest>,
    closing: Arc<Notify>,
    writer_task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

struct InsertRequest {
    delivery: NewDelivery,
    reply: oneshot::Sender<Result<RecordOutcome, String>>,
}

impl SqliteStore {
    pub(super) async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        create_parent_dir(options.get_filename())?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let writer_conn = SqliteConnection::connect_with(&options).await?;
        let (writer, queue) = mpsc::channel(QUEUE_CAPACITY);
        let closing = Arc::new(Notify::new());
        let writer_task = tokio::spawn(run_writer(writer_conn, queue, closing.clone()));
        Ok(Self {
            pool,
            writer,
            closing,
            writer_task: Arc::new(Mutex::new(Some(writer_task))),
        })
    }

    pub(super) async fn record_delivery(
        &self,
        delivery: NewDelivery,
    ) -> Result<RecordOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(InsertRequest { delivery, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Write)
    }

    pub(super) async fn claim_deliveries(
        &self,
        limit: u32,
        now: i64,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let rows = sqlx::query(
            "UPDATE deliveries SET lease_until = ?1 + ?2
             WHERE seq IN (
                 SELECT seq FROM deliveries
                 WHERE state = 'pending' AND next_attempt_at <= ?1
                   AND (lease_until IS NULL OR lease_until <= ?1)
                 ORDER BY seq LIMIT ?3)
             RETURNING seq, id, event, action, repository, received_at, attempts, body",
        )
        .bind(now)
        .bind(lease_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = rows
            .into_iter()
            .map(|row| ClaimedDelivery {
                seq: row.get("seq"),
                id: row.get("id"),
                event: row.get("event"),
                action: row.get("action"),
                repository: row.get("repository"),
                received_at: row.get("received_at"),
                attempts: row.get::<i64, _>("attempts").try_into().unwrap_or(u32::MAX),
                body: row.get("body"),
            })
            .collect::<Vec<_>>();
        // RETURNING gives no order guarantee; arrival order is the contract.
        claimed.sort_by_key(|delivery| delivery.seq);
        Ok(claimed)
    }

    pub(super) async fn finish_deliveries(
        &self,
        outcomes: &[(i64, DeliveryOutcome)],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (seq, outcome) in outcomes {
            let (state, error, next_attempt_at, finished_at) = match outcome {
                DeliveryOutcome::Processed => (DeliveryState::Processed, None, 0, Some(now)),
                DeliveryOutcome::Ignored => (DeliveryState::Ignored, None, 0, Some(now)),
                DeliveryOutcome::Retry {
                    error,
                    next_attempt_at,
                } => (DeliveryState::Pending, Some(error), *next_attempt_at, None),
                DeliveryOutcome::Failed { error } => {
                    (DeliveryState::Failed, Some(error), 0, Some(now))
                }
            };
            sqlx::query(
                "UPDATE deliveries
                 SET state = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?,
                     finished_at = ?, lease_until = NULL
                 WHERE seq = ?",
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
            sqlx::query("SELECT event, state, attempts, last_error FROM deliveries WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| DeliveryRecord {
            event: row.get("event"),
            state: DeliveryState::parse(row.get("state")).unwrap_or(DeliveryState::Pending),
            attempts: row.get::<i64, _>("attempts").try_into().unwrap_or(u32::MAX),
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
                    (SELECT count(*) FROM deliveries WHERE state = 'failed') AS failed",
        )
        .fetch_one(&self.pool)
        .await?;
        let count = |column: &str| row.get::<i64, _>(column).try_into().unwrap_or_default();
        Ok(InboxCounts {
            pending: count("pending"),
            failed: count("failed"),
        })
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.closing.notify_one();
        if let Some(task) = self.writer_task.lock().await.take()
            && let Err(err) = task.await
        {
            tracing::error!(error = %err, "the store writer ended abnormally");
        }
        self.pool.close().await;
    }
}

fn create_parent_dir(file: &Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && file != Path::new(":memory:") => {
            std::fs::create_dir_all(dir).map_err(|err| {
                StoreError::Url(format!("cannot create directory {}: {err}", dir.display()))
            })
        }
        _ => Ok(()),
    }
}

/// Takes whatever deliveries are queued (up to [`MAX_GROUP`]), commits them in one
/// transaction and answers each caller. On `closing` it stops taking new requests, writes
/// those already queued and ends.
async fn run_writer(
    mut conn: SqliteConnection,
    mut queue: mpsc::Receiver<InsertRequest>,
    closing: Arc<Notify>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        tokio::select! {
            received = queue.recv_many(&mut group, MAX_GROUP) => {
                if received == 0 {
                    break;
                }
                commit_group(&mut conn, &mut group).await;
            }
            () = closing.notified() => queue.close(),
        }
    }
    if let Err(err) = conn.close().await {
        tracing::warn!(error = %err, "closing the store writer connection");
    }
}

async fn commit_group(conn: &mut SqliteConnection, group: &mut Vec<InsertRequest>) {
    let result = insert_all(conn, group).await;
    for (index, request) in group.drain(..).enumerate() {
        let answer = match &result {
            Ok(outcomes) => Ok(outcomes[index]),
            Err(err) => Err(err.to_string()),
        };
        // The caller may have gone (client hung up); the delivery is stored regardless.
        let _ = request.reply.send(answer);
    }
    if let Err(err) = result {
        tracing::error!(error = %err, "storing a group of deliveries failed");
    }
}

async fn insert_all(
    conn: &mut SqliteConnection,
    group: &[InsertRequest],
) -> Result<Vec<RecordOutcome>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut outcomes = Vec::with_capacity(group.len());
    for InsertRequest { delivery, .. } in group {
        let inserted = sqlx::query(
            "INSERT INTO deliveries
                 (id, event, action, installation_id, repository, received_at, body)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(delivery.id.as_str())
        .bind(&delivery.event)
        .bind(delivery.action.as_deref())
        .bind(delivery.installation.map(|id| id.0 as i64))
        .bind(delivery.repository.as_deref())
        .bind(delivery.received_at)
        .bind(delivery.body.as_ref())
        .execute(&mut *tx)
        .await?;
        outcomes.push(if inserted.rows_affected() == 1 {
            RecordOutcome::New
        } else {
            RecordOutcome::Duplicate
        });
    }
    tx.commit().await?;
    Ok(outcomes)
}
