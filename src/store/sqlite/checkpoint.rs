//! Keeping the WAL small: checkpoints beside the writer, and on it when the file grows.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::writer::{BoxFuture, WriteJob, WriteOp};
use super::{BUSY_TIMEOUT, WAL_SIZE_LIMIT};
use crate::store::StoreError;

/// How often the WAL is copied into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

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
pub(super) async fn run_checkpointer(
    pool: SqlitePool,
    writer: mpsc::Sender<WriteOp>,
    wal_file: PathBuf,
) {
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
