//! The SQLite backend: WAL with `synchronous = FULL`, readers on a pool, and every write
//! through one writer task. The writer commits concurrent deliveries in groups, so many
//! webhooks share one fsync, and no two connections ever wait on SQLite's write lock.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::pin::Pin;
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

use super::{
    ClaimedDelivery, DeliveryOutcome, DeliveryRecord, DeliveryState, InboxCounts, NewDelivery,
    PruneCutoffs, RecordOutcome, RunEnding, RunFilter, RunRecord, RunState, StatusCommentRecord,
    StoreError,
};
use crate::domain::{DeliveryId, InstallationId, IssueRef, RunId};

/// Most deliveries committed in one group (7 bound values each; SQLite allows 32,766).
const MAX_GROUP: usize = 512;
/// How often the WAL is copied into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);
/// The WAL file is cut back to this size whenever the writer starts the WAL over.
const WAL_SIZE_LIMIT: u64 = 16 * 1024 * 1024;
/// How long a connection waits for SQLite's locks before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most deliveries deleted in one statement (one bound value each; SQLite allows 32,766).
const MAX_PRUNE: u32 = 10_000;
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
        let body = lz4_flex::compress_prepend_size(&delivery.body);
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
        let mut claimed = self
            .write(move |conn| Box::pin(claim(conn, limit, now, lease_ms)))
            .await?;
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
            // A body that does not decompress stays empty; decoding then fails and the
            // delivery is parked as failed with that error, like any poison payload.
            delivery.body = lz4_flex::decompress_size_prepended(&stored).unwrap_or_else(|err| {
                tracing::error!(seq = delivery.seq, error = %err, "a stored body is corrupt");
                Vec::new()
            });
        }
        Ok(claimed)
    }

    pub(super) async fn finish_deliveries(
        &self,
        outcomes: &[(i64, DeliveryOutcome)],
        now: i64,
    ) -> Result<(), StoreError> {
        let outcomes = outcomes.to_vec();
        self.write(move |conn| Box::pin(async move { finish(conn, &outcomes, now).await }))
            .await
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
        // Found on a reader, so that the writer (and every webhook queued behind it) waits
        // only for the deletion itself, by primary key.
        let seqs: Vec<i64> = sqlx::query_scalar(
            "SELECT seq FROM deliveries
             WHERE finished_at < ?3
               AND ((state IN ('processed', 'ignored') AND finished_at < ?1)
                    OR (state = 'failed' AND finished_at < ?2))
             ORDER BY finished_at LIMIT ?4",
        )
        .bind(cutoffs.handled)
        .bind(cutoffs.failed)
        .bind(cutoffs.latest())
        .bind(i64::from(limit.min(MAX_PRUNE)))
        .fetch_all(&self.pool)
        .await?;
        if seqs.is_empty() {
            return Ok(0);
        }
        self.write(move |conn| {
            Box::pin(async move {
                // The conditions again: the rows are read outside the writer's order. Bodies
                // go with their rows (ON DELETE CASCADE).
                let mut delete =
                    QueryBuilder::<Sqlite>::new("DELETE FROM deliveries WHERE seq IN (");
                let mut list = delete.separated(", ");
                for seq in seqs {
                    list.push_bind(seq);
                }
                delete
                    .push(") AND ((state IN ('processed', 'ignored') AND finished_at < ")
                    .push_bind(cutoffs.handled)
                    .push(") OR (state = 'failed' AND finished_at < ")
                    .push_bind(cutoffs.failed)
                    .push("))");
                let done = delete.build().persistent(false).execute(conn).await?;
                Ok(done.rows_affected())
            })
        })
        .await
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
        let repository = issue.repo.to_string();
        let prompt = prompt.to_owned();
        let number = issue.number as i64;
        let row: Option<i64> = self
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query_scalar(
                        "INSERT INTO runs (installation_id, repository, issue_number, attempt,
                                           prompt, state, lease_until, created_at)
                         VALUES (?, ?, ?, ?, ?, 'launching', ?, ?)
                         ON CONFLICT DO NOTHING RETURNING id",
                    )
                    .bind(installation.0 as i64)
                    .bind(repository)
                    .bind(number)
                    .bind(attempt)
                    .bind(prompt)
                    .bind(now + lease_ms)
                    .bind(now)
                    .fetch_optional(conn)
                    .await
                })
            })
            .await?;
        match row {
            Some(row) => self.run(row).await,
            None => Ok(None),
        }
    }

    pub(super) async fn take_over_launch(
        &self,
        row: i64,
        now: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        self.update(
            "UPDATE runs SET lease_until = ? WHERE id = ? AND state = 'launching' AND lease_until < ?",
            vec![now + lease_ms, row, now],
        )
        .await
    }

    pub(super) async fn abandon_launch(&self, row: i64) -> Result<(), StoreError> {
        self.update(
            "DELETE FROM runs WHERE id = ? AND state = 'launching'",
            vec![row],
        )
        .await
        .map(drop)
    }

    pub(super) async fn record_started(
        &self,
        row: i64,
        run_id: RunId,
        web_url: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let web_url = web_url.map(str::to_owned);
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE runs SET state = 'running', codegen_run_id = ?, web_url = ?,
                            started_at = ?, lease_until = NULL
                     WHERE id = ? AND state = 'launching'",
                )
                .bind(run_id.0 as i64)
                .bind(web_url)
                .bind(now)
                .bind(row)
                .execute(conn)
                .await
                .map(|done| done.rows_affected() == 1)
            })
        })
        .await
    }

    pub(super) async fn record_ended(
        &self,
        row: i64,
        ending: &RunEnding,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ending = ending.clone();
        let pull_requests =
            serde_json::to_string(&ending.pull_requests).unwrap_or_else(|_| "[]".into());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE runs SET state = ?, failure = ?, summary = ?, pull_requests = ?,
                            finished_at = ?, lease_until = NULL
                     WHERE id = ? AND state IN ('launching', 'running')",
                )
                .bind(ending.state.as_str())
                .bind(ending.failure)
                .bind(ending.summary)
                .bind(pull_requests)
                .bind(now)
                .bind(row)
                .execute(conn)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    pub(super) async fn runs(&self, filter: RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let query = match filter {
            RunFilter::StaleLaunches { now } => sqlx::query(
                "SELECT * FROM runs WHERE state = 'launching' AND lease_until < ? ORDER BY id",
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
            "SELECT * FROM runs WHERE lower(repository) = lower(?) AND issue_number = ?
             ORDER BY attempt",
        )
        .bind(issue.repo.to_string())
        .bind(issue.number as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().filter_map(run_record).collect())
    }

    async fn run(&self, row: i64) -> Result<Option<RunRecord>, StoreError> {
        let found = sqlx::query("SELECT * FROM runs WHERE id = ?")
            .bind(row)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.as_ref().and_then(run_record))
    }

    /// One statement with integer parameters on the writer; whether it changed a row.
    async fn update(&self, sql: &'static str, params: Vec<i64>) -> Result<bool, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let mut query = sqlx::query(sql);
                for param in params {
                    query = query.bind(param);
                }
                Ok(query.execute(conn).await?.rows_affected() > 0)
            })
        })
        .await
    }

    pub(super) async fn save_issue(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        data: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (repository, number, data) =
            (issue.repo.to_string(), issue.number as i64, data.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO issues (installation_id, repository, number, data, updated_at)
                     VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT (lower(repository), number)
                     DO UPDATE SET installation_id = excluded.installation_id,
                                   repository = excluded.repository,
                                   data = excluded.data, updated_at = excluded.updated_at",
                )
                .bind(installation.0 as i64)
                .bind(repository)
                .bind(number)
                .bind(data)
                .bind(now)
                .execute(conn)
                .await
                .map(drop)
            })
        })
        .await
    }

    pub(super) async fn delete_issue(&self, issue: &IssueRef) -> Result<(), StoreError> {
        let (repository, number) = (issue.repo.to_string(), issue.number as i64);
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM issues WHERE lower(repository) = lower(?) AND number = ?")
                    .bind(repository)
                    .bind(number)
                    .execute(conn)
                    .await
                    .map(drop)
            })
        })
        .await
    }

    pub(super) async fn issues(
        &self,
    ) -> Result<Vec<(InstallationId, IssueRef, String)>, StoreError> {
        let rows = sqlx::query("SELECT installation_id, repository, number, data FROM issues ORDER BY repository, number")
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
             WHERE lower(repository) = lower(?) AND number = ?",
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
        let (repository, number) = (issue.repo.to_string(), issue.number as i64);
        self.write(move |conn| {
            Box::pin(async move {
                let inserted = sqlx::query(
                    "INSERT INTO status_comments (repository, number, claimed_until)
                     VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(&repository)
                .bind(number)
                .bind(now + lease_ms)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if inserted == 1 {
                    return Ok(true);
                }
                // A creator that did not finish within its lease: take over.
                let taken = sqlx::query(
                    "UPDATE status_comments SET claimed_until = ?
                     WHERE lower(repository) = lower(?) AND number = ?
                       AND comment_id IS NULL AND claimed_until < ?",
                )
                .bind(now + lease_ms)
                .bind(&repository)
                .bind(number)
                .bind(now)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                Ok(taken == 1)
            })
        })
        .await
    }

    pub(super) async fn record_status_comment(
        &self,
        issue: &IssueRef,
        comment_id: u64,
        body_hash: &str,
    ) -> Result<(), StoreError> {
        let (repository, number, hash) = (
            issue.repo.to_string(),
            issue.number as i64,
            body_hash.to_owned(),
        );
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO status_comments (repository, number, comment_id, body_hash)
                     VALUES (?, ?, ?, ?)
                     ON CONFLICT (lower(repository), number)
                     DO UPDATE SET comment_id = excluded.comment_id,
                                   body_hash = excluded.body_hash, claimed_until = NULL",
                )
                .bind(repository)
                .bind(number)
                .bind(comment_id as i64)
                .bind(hash)
                .execute(conn)
                .await
                .map(drop)
            })
        })
        .await
    }

    pub(super) async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
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
        let (key, value) = (key.to_owned(), value.map(str::to_owned));
        self.write(move |conn| {
            Box::pin(async move {
                match value {
                    Some(value) => sqlx::query(
                        "INSERT INTO settings (key, value) VALUES (?, ?)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(key)
                    .bind(value)
                    .execute(conn)
                    .await
                    .map(drop),
                    None => sqlx::query("DELETE FROM settings WHERE key = ?")
                        .bind(key)
                        .execute(conn)
                        .await
                        .map(drop),
                }
            })
        })
        .await
    }

    pub(super) async fn settings_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT key, value FROM settings WHERE substr(key, 1, ?) = ? ORDER BY key")
                .bind(prefix.len() as i64)
                .bind(prefix)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get("key"), row.get("value")))
            .collect())
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

    /// Runs `job` on the writer connection, in order with every other write.
    async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
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

/// A run row as [`RunRecord`]; a row that does not read (written by a newer version) is
/// skipped with an error in the log rather than failing every caller.
fn run_record(row: &sqlx::sqlite::SqliteRow) -> Option<RunRecord> {
    let read = || -> Result<RunRecord, String> {
        let text = |column: &str| row.try_get::<String, _>(column).map_err(|e| e.to_string());
        let int = |column: &str| row.try_get::<i64, _>(column).map_err(|e| e.to_string());
        let optional = |column: &str| {
            row.try_get::<Option<i64>, _>(column)
                .map_err(|e| e.to_string())
        };
        let repo = text("repository")?.parse().map_err(|e| format!("{e}"))?;
        let state = text("state")?;
        Ok(RunRecord {
            row: int("id")?,
            installation: InstallationId(int("installation_id")? as u64),
            issue: IssueRef::new(repo, int("issue_number")? as u64),
            attempt: int("attempt")? as u32,
            state: RunState::parse(&state).ok_or_else(|| format!("unknown state {state}"))?,
            prompt: text("prompt")?,
            run_id: optional("codegen_run_id")?.map(|id| RunId(id as u64)),
            web_url: row.try_get("web_url").map_err(|e| e.to_string())?,
            summary: row.try_get("summary").map_err(|e| e.to_string())?,
            pull_requests: serde_json::from_str(&text("pull_requests")?).unwrap_or_default(),
            failure: row.try_get("failure").map_err(|e| e.to_string())?,
            created_at: int("created_at")?,
            started_at: optional("started_at")?,
            finished_at: optional("finished_at")?,
        })
    };
    read()
        .map_err(|err| tracing::error!(error = %err, "a run row could not be read"))
        .ok()
}

/// SQLite serves one process: a second `serve` on the same file would run its own
/// processor and scheduler on the same rows, unaware of the first's graph and claims. So
/// an open store holds an exclusive lock on `<database>.lock`, which the kernel drops when
/// the process ends however it ends, and a second process is refused at start. Stores of
/// one process share the lock: tests, and a restart within a process, open a file again
/// while an earlier store of it may still be closing.
struct ProcessLock {
    /// The lock file's canonical path, its key in [`PROCESS_LOCKS`].
    key: PathBuf,
    /// Holds the lock; closing it releases the lock.
    file: Option<std::fs::File>,
}

/// The locks this process holds, by lock file.
static PROCESS_LOCKS: std::sync::Mutex<Vec<(PathBuf, std::sync::Weak<ProcessLock>)>> =
    std::sync::Mutex::new(Vec::new());

impl ProcessLock {
    /// Locks `database` for this process (nothing for an in-memory database), or says
    /// which file another process holds.
    fn acquire(database: &Path) -> Result<Option<Arc<Self>>, StoreError> {
        if database.as_os_str().is_empty() || database == Path::new(":memory:") {
            return Ok(None);
        }
        let mut path = database.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| {
                StoreError::Url(format!(
                    "cannot create the lock file {}: {err}",
                    path.display()
                ))
            })?;
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let mut held = PROCESS_LOCKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lock) = held
            .iter()
            .find(|(held_key, _)| *held_key == key)
            .and_then(|(_, lock)| lock.upgrade())
        {
            return Ok(Some(lock));
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::InUse(format!(
                    "{} is in use by another process (it holds {}): SQLite serves one \
                     process at a time. Stop the other `serve`, or run several replicas on \
                     PostgreSQL (storage.url / DATABASE_URL = postgres://...)",
                    database.display(),
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(StoreError::Url(format!(
                    "cannot lock {}: {err}",
                    path.display()
                )));
            }
        }
        let lock = Arc::new(Self {
            key: key.clone(),
            file: Some(file),
        });
        held.retain(|(_, lock)| lock.strong_count() > 0);
        held.push((key, Arc::downgrade(&lock)));
        Ok(Some(lock))
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        // The file is closed (and the lock released) under the registry's mutex, so that
        // a store of this process opening the file meanwhile never finds it locked by us.
        let mut held = PROCESS_LOCKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.retain(|(key, lock)| *key != self.key && lock.strong_count() > 0);
        drop(self.file.take());
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

async fn claim(
    conn: &mut SqliteConnection,
    limit: u32,
    now: i64,
    lease_ms: i64,
) -> Result<Vec<ClaimedDelivery>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE deliveries SET lease_until = ?1 + ?2
         WHERE seq IN (
             SELECT seq FROM deliveries
             WHERE state = 'pending' AND next_attempt_at <= ?1
               AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY seq LIMIT ?3)
         RETURNING seq, id, event, action, repository, received_at, attempts",
    )
    .bind(now)
    .bind(lease_ms)
    .bind(i64::from(limit))
    .fetch_all(conn)
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
            body: Vec::new(),
        })
        .collect::<Vec<_>>();
    // RETURNING gives no order guarantee; arrival order is the contract.
    claimed.sort_by_key(|delivery| delivery.seq);
    Ok(claimed)
}

async fn finish(
    conn: &mut SqliteConnection,
    outcomes: &[(i64, DeliveryOutcome)],
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
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
        if seqs.is_empty() {
            continue;
        }
        let mut update = QueryBuilder::<Sqlite>::new("UPDATE deliveries SET state = ");
        update
            .push_bind(state.as_str())
            .push(
                ", attempts = attempts + 1, last_error = NULL, lease_until = NULL, finished_at = ",
            )
            .push_bind(now)
            .push(" WHERE seq IN (");
        let mut list = update.separated(", ");
        for seq in seqs {
            list.push_bind(seq);
        }
        update.push(")");
        update.build().persistent(false).execute(&mut *tx).await?;
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
    tx.commit().await
}

/// Copies the WAL into the database file in the background and keeps the WAL file small.
///
/// `PASSIVE` on a pool connection never blocks the writer and does the bulk of the copying.
/// The writer starts the WAL over (and `journal_size_limit` cuts the file back to
/// [`WAL_SIZE_LIMIT`]) only when a checkpoint caught up with every frame before its
/// transaction; under steady writes that rarely happens, and the file would grow with every
/// write. So when the file is over the limit, a checkpoint also runs on the writer itself,
/// between two writes, where it has only what the last one left to copy: first `PASSIVE`,
/// after which the next write starts the WAL over; if the file is still over the limit a
/// tick later (no write came, or a reader held on), `TRUNCATE`, which empties it.
/// Measured in BENCHMARKS.md: the first holds the writer for a few milliseconds, the
/// second for about three times as long (it shortens the file, and the next writes grow it).
async fn run_checkpointer(pool: SqlitePool, writer: mpsc::Sender<WriteOp>, wal_file: PathBuf) {
    let mut ticks = tokio::time::interval(CHECKPOINT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut over_last_tick = false;
    loop {
        ticks.tick().await;
        if pool.is_closed() {
            break;
        }
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                break;
            }
            tracing::warn!(error = %err, "WAL checkpoint failed; retrying on the next tick");
            continue;
        }
        // No file (an in-memory database) or no access: nothing to bound.
        let size = std::fs::metadata(&wal_file).map_or(0, |meta| meta.len());
        let over = size > WAL_SIZE_LIMIT;
        if over {
            let mode = if over_last_tick {
                WriterCheckpoint::Truncate
            } else {
                WriterCheckpoint::Passive
            };
            if let Err(err) = checkpoint_on_writer(&writer, mode, size).await {
                if matches!(err, StoreError::Closed) || pool.is_closed() {
                    break;
                }
                tracing::warn!(error = %err, "WAL checkpoint failed; retrying on the next tick");
            }
        }
        over_last_tick = over;
    }
}

/// A checkpoint the writer runs between two writes.
#[derive(Debug, Clone, Copy)]
enum WriterCheckpoint {
    /// Copies what is left; the next write starts the WAL over.
    Passive,
    /// Copies what is left and empties the file, unless a reader is still on it.
    Truncate,
}

/// Runs `mode` on the writer connection, in order with the writes.
async fn checkpoint_on_writer(
    writer: &mpsc::Sender<WriteOp>,
    mode: WriterCheckpoint,
    size: u64,
) -> Result<(), StoreError> {
    let (reply, answer) = oneshot::channel();
    let job: WriteJob = Box::new(move |conn: &mut SqliteConnection| -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let result = checkpoint_without_waiting(conn, mode).await;
            if let Ok((busy, frames, copied)) = &result {
                tracing::debug!(
                    ?mode,
                    wal_bytes = size,
                    busy,
                    wal_frames = frames,
                    copied_frames = copied,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "WAL over its limit: checkpoint on the writer"
                );
            }
            let _ = reply.send(result.map(drop));
        })
    });
    writer
        .send(WriteOp::Job(job))
        .await
        .map_err(|_| StoreError::Closed)?;
    Ok(answer.await.map_err(|_| StoreError::Closed)??)
}

/// A checkpoint that never waits. `TRUNCATE` would wait for readers still on the WAL for
/// the connection's busy timeout, holding up the writer and every webhook queued behind it;
/// without one, it copies what it can and leaves the file be (`busy` 1) until the next
/// tick. Returns SQLite's answer: busy, frames in the WAL, frames copied.
async fn checkpoint_without_waiting(
    conn: &mut SqliteConnection,
    mode: WriterCheckpoint,
) -> Result<(i64, i64, i64), sqlx::Error> {
    let row = match mode {
        WriterCheckpoint::Passive => {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut *conn)
                .await?
        }
        WriterCheckpoint::Truncate => {
            sqlx::query("PRAGMA busy_timeout = 0")
                .execute(&mut *conn)
                .await?;
            let checkpoint = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *conn)
                .await;
            // Every other write keeps the connection's usual wait.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA busy_timeout = {}",
                BUSY_TIMEOUT.as_millis()
            )))
            .execute(&mut *conn)
            .await?;
            checkpoint?
        }
    };
    Ok((row.get(0), row.get(1), row.get(2)))
}

// ---- the writer ----------------------------------------------------------------------

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type WriteJob = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, ()> + Send>;

/// One write, in the order it was asked for.
enum WriteOp {
    /// A delivery: batched with the deliveries next to it in the queue.
    Insert(InsertRequest),
    /// Any other write.
    Job(WriteJob),
}

struct InsertRequest {
    delivery: NewDelivery,
    /// The body, LZ4-compressed with its length in front.
    body: Vec<u8>,
    reply: oneshot::Sender<Result<RecordOutcome, String>>,
}

/// Takes whatever writes are queued and runs them in order, committing each run of
/// consecutive deliveries as one group. On `closing` it stops taking new writes, runs those
/// already queued and ends.
async fn run_writer(
    mut conn: SqliteConnection,
    mut queue: mpsc::Receiver<WriteOp>,
    closing: Arc<Notify>,
) {
    let mut ops = Vec::with_capacity(MAX_GROUP);
    loop {
        tokio::select! {
            received = queue.recv_many(&mut ops, MAX_GROUP) => {
                if received == 0 {
                    break;
                }
                run_ops(&mut conn, &mut ops).await;
            }
            () = closing.notified() => queue.close(),
        }
    }
    if let Err(err) = conn.close().await {
        tracing::warn!(error = %err, "closing the store writer connection");
    }
}

async fn run_ops(conn: &mut SqliteConnection, ops: &mut Vec<WriteOp>) {
    let mut group = Vec::new();
    for op in ops.drain(..) {
        match op {
            WriteOp::Insert(request) => group.push(request),
            WriteOp::Job(job) => {
                commit_group(conn, &mut group).await;
                job(conn).await;
            }
        }
    }
    commit_group(conn, &mut group).await;
}

async fn commit_group(conn: &mut SqliteConnection, group: &mut Vec<InsertRequest>) {
    if group.is_empty() {
        return;
    }
    let result = insert_all(conn, group).await;
    if let Err(err) = &result {
        tracing::error!(error = %err, deliveries = group.len(), "storing a group of deliveries failed");
    }
    for (index, request) in group.drain(..).enumerate() {
        let answer = match &result {
            Ok(outcomes) => Ok(outcomes[index]),
            Err(err) => Err(err.to_string()),
        };
        // The caller may have gone (client hung up); the delivery is stored regardless.
        let _ = request.reply.send(answer);
    }
}

/// Inserts the whole group in one transaction with two multi-row statements (one round
/// trip each to SQLite's thread, one fsync). `RETURNING` names the rows actually inserted;
/// every other request in the group is a redelivery.
async fn insert_all(
    conn: &mut SqliteConnection,
    group: &[InsertRequest],
) -> Result<Vec<RecordOutcome>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO deliveries (id, event, action, installation_id, repository, received_at) ",
    );
    insert.push_values(group, |mut row, InsertRequest { delivery, .. }| {
        row.push_bind(delivery.id.as_str())
            .push_bind(delivery.event.as_str())
            .push_bind(delivery.action.as_deref())
            .push_bind(delivery.installation.map(|id| id.0 as i64))
            .push_bind(delivery.repository.as_deref())
            .push_bind(delivery.received_at);
    });
    insert.push(" ON CONFLICT (id) DO NOTHING RETURNING seq, id");
    let inserted: HashMap<String, i64> = insert
        .build()
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|row| (row.get("id"), row.get("seq")))
        .collect();

    // The same id twice in one group: the first is new, the second a redelivery.
    let mut taken = HashSet::with_capacity(inserted.len());
    let mut outcomes = Vec::with_capacity(group.len());
    let mut bodies: Vec<(i64, &[u8])> = Vec::with_capacity(inserted.len());
    for InsertRequest { delivery, body, .. } in group {
        let id = delivery.id.as_str();
        match inserted.get(id) {
            Some(seq) if taken.insert(id) => {
                outcomes.push(RecordOutcome::New);
                bodies.push((*seq, body.as_slice()));
            }
            _ => outcomes.push(RecordOutcome::Duplicate),
        }
    }
    if !bodies.is_empty() {
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO delivery_bodies (seq, body) ");
        insert.push_values(bodies, |mut row, (seq, body)| {
            row.push_bind(seq).push_bind(body);
        });
        insert.build().persistent(false).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}
