//! The SQLite backend: WAL with `synchronous = FULL`, readers on a pool, and every write
//! through one writer task ([`writer`]). The writer commits concurrent deliveries in
//! groups, so many webhooks share one fsync, and no two connections ever wait on SQLite's
//! write lock. The statements both dialects share run here: reads on the pool, writes and
//! transactions on the writer.

mod checkpoint;
mod process_lock;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use self::checkpoint::run_checkpointer;
use self::process_lock::ProcessLock;
use self::writer::{BoxFuture, InsertRequest, WriteJob, WriteOp, run_writer};
use super::StoreError;
use super::inbox::{
    ClaimedDelivery, NewDelivery, RecordOutcome, arrived_body, claimed_delivery, stored_body,
};
use super::retention::{Expiring, PruneCutoffs};
use super::sql::{self, MAX_IN_LIST, Outcome, Statement, placeholders};

/// The WAL file is cut back to this size whenever the writer starts the WAL over.
const WAL_SIZE_LIMIT: u64 = 16 * 1024 * 1024;
/// How long a connection waits for SQLite's locks before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Writes waiting for the writer before callers wait for room.
const QUEUE_CAPACITY: usize = 8192;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite store: a pool for reads, one writer task for writes.
#[derive(Clone)]
pub(super) struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<WriteOp>,
    closing: Arc<Notify>,
    writer_task: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// Keeps other processes off the file while this store is open.
    _process_lock: Option<Arc<ProcessLock>>,
}

impl SqliteStore {
    pub(super) async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        create_parent_dir(options.get_filename())?;
        let process_lock = ProcessLock::acquire(options.get_filename())?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        // The writer never checkpoints on its own: copying the WAL into the database inside a
        // commit would stall every webhook waiting on that commit. A task beside it does it.
        // The size limit applies when the writer starts the WAL over after a checkpoint
        // caught up: the file is cut back to it instead of staying at its largest.
        let writer_conn = SqliteConnection::connect_with(
            &options
                .clone()
                .pragma("wal_autocheckpoint", "0")
                .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string()),
        )
        .await?;
        let (writer, queue) = mpsc::channel(QUEUE_CAPACITY);
        let closing = Arc::new(Notify::new());
        let writer_task = tokio::spawn(run_writer(writer_conn, queue, closing.clone()));
        let wal_file = {
            let mut name = options.get_filename().as_os_str().to_owned();
            name.push("-wal");
            PathBuf::from(name)
        };
        tokio::spawn(run_checkpointer(pool.clone(), writer.clone(), wal_file));
        Ok(Self {
            pool,
            writer,
            closing,
            writer_task: Arc::new(Mutex::new(Some(writer_task))),
            _process_lock: process_lock,
        })
    }

    pub(super) async fn record_delivery(
        &self,
        delivery: NewDelivery,
    ) -> Result<RecordOutcome, StoreError> {
        // Compressed here, on the caller's task, so the single writer only writes.
        let body = stored_body(&delivery.body);
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(WriteOp::Insert(InsertRequest {
                delivery,
                body,
                reply,
            }))
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
        let claim = Statement::rows(
            "UPDATE deliveries SET lease_until = $1 + $2
             WHERE seq IN (
                 SELECT seq FROM deliveries
                 WHERE state = 'pending' AND next_attempt_at <= $1
                   AND (lease_until IS NULL OR lease_until <= $1)
                 ORDER BY seq LIMIT $3)
             RETURNING seq, id, event, action, repository, received_at, attempts",
        )
        .bind(now)
        .bind(lease_ms)
        .bind(i64::from(limit));
        let rows = self
            .on_writer(move |conn| Box::pin(run_unsynced(conn, claim)))
            .await?
            .rows;
        let mut claimed = rows
            .iter()
            .map(|row| claimed_delivery(row.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if claimed.is_empty() {
            return Ok(claimed);
        }
        // Bodies are read outside the writer: WAL readers never block it.
        let mut select =
            QueryBuilder::<Sqlite>::new("SELECT seq, body FROM delivery_bodies WHERE seq IN (");
        let mut seqs = select.separated(", ");
        for delivery in &claimed {
            seqs.push_bind(delivery.seq);
        }
        select.push(")");
        let mut bodies: HashMap<i64, Vec<u8>> = select
            .build()
            .persistent(false)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| (row.get("seq"), row.get("body")))
            .collect();
        for delivery in &mut claimed {
            let stored = bodies.remove(&delivery.seq).unwrap_or_default();
            delivery.body = arrived_body(delivery.seq, &stored);
        }
        Ok(claimed)
    }

    pub(super) async fn prune(
        &self,
        table: Expiring,
        cutoffs: PruneCutoffs,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // Found on a reader, so that the writer (and every webhook queued behind it) waits
        // only for the deletion itself, by primary key.
        let found = Statement::rows_of(table.oldest_due())
            .bind(cutoffs.handled)
            .bind(cutoffs.failed)
            .bind(cutoffs.latest())
            .bind(i64::from(limit.min(MAX_IN_LIST as u32)));
        let keys = self
            .read(found)
            .await?
            .rows
            .iter()
            .map(|row| row.int(table.key()))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Ok(0);
        }
        // The conditions again: the rows were read outside the writer's order. Delivery
        // bodies go with their rows (ON DELETE CASCADE).
        let delete = Statement::count_of(format!(
            "DELETE FROM {table} WHERE {due} AND {key} IN ({list})",
            table = table.table(),
            due = table.due(),
            key = table.key(),
            list = placeholders(3, keys.len())
        ))
        .bind(cutoffs.handled)
        .bind(cutoffs.failed);
        let delete = keys.into_iter().fold(delete, Statement::bind);
        Ok(self.write(delete).await?.rows_affected)
    }

    pub(super) async fn read(&self, statement: Statement) -> Result<Outcome, StoreError> {
        Ok(sql::run(&self.pool, statement).await?)
    }

    pub(super) async fn write(&self, statement: Statement) -> Result<Outcome, StoreError> {
        self.on_writer(move |conn| Box::pin(sql::run(conn, statement)))
            .await
    }

    pub(super) async fn transaction(
        &self,
        statements: Vec<Statement>,
    ) -> Result<Vec<Outcome>, StoreError> {
        self.on_writer(move |conn| Box::pin(sql::run_in_transaction::<Sqlite>(conn, statements)))
            .await
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

    /// Runs `job` on the writer connection, in order with every other write.
    async fn on_writer<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn: &mut SqliteConnection| -> BoxFuture<'_, ()> {
            Box::pin(async move {
                // The caller may have gone; the write stands regardless.
                let _ = reply.send(job(conn).await);
            })
        });
        self.writer
            .send(WriteOp::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(answer.await.map_err(|_| StoreError::Closed)??)
    }
}

/// Runs `statement` on the writer without waiting for the disk (`synchronous = NORMAL` for
/// its commit). For a claim, which only leases rows: a claim lost in a crash leaves its
/// deliveries pending, as an expired lease would, and the next commit made with
/// `synchronous = FULL` (a delivery, a finish) takes it to disk with its own. The processor's
/// claims then do not add an fsync to the queue the door's deliveries wait in.
async fn run_unsynced(
    conn: &mut SqliteConnection,
    statement: Statement,
) -> Result<Outcome, sqlx::Error> {
    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(&mut *conn)
        .await?;
    let outcome = sql::run(&mut *conn, statement).await;
    // Restored whatever the statement's fate; a delivery group sets it again anyway.
    sqlx::query("PRAGMA synchronous = FULL")
        .execute(&mut *conn)
        .await?;
    outcome
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
