//! The one writer: every write to the SQLite file goes through this task, in the order it
//! was asked for, and consecutive deliveries are committed in one group (one fsync).

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, QueryBuilder, Row, Sqlite};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::store::inbox::{NewDelivery, RecordOutcome};

/// Most deliveries committed in one group (8 bound values each; SQLite allows 32,766).
const MAX_GROUP: usize = 512;

/// A future a write job returns.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A write run on the writer connection.
pub(super) type WriteJob =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, ()> + Send>;

/// One write, in the order it was asked for.
pub(super) enum WriteOp {
    /// A delivery: batched with the deliveries next to it in the queue.
    Insert(InsertRequest),
    /// Any other write.
    Job(WriteJob),
}

/// A delivery to store, and where its outcome goes.
pub(super) struct InsertRequest {
    /// The delivery.
    pub(super) delivery: NewDelivery,
    /// The body, LZ4-compressed with its length in front.
    pub(super) body: Vec<u8>,
    /// Told whether it was new or a redelivery, or why the group failed.
    pub(super) reply: oneshot::Sender<Result<RecordOutcome, String>>,
}

/// Takes whatever writes are queued and runs them in order, committing each run of
/// consecutive deliveries as one group. On `closing` it stops taking new writes, runs those
/// already queued and ends.
pub(super) async fn run_writer(
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

/// Inserts the whole group in one transaction, sent to SQLite's thread as one command (one
/// round trip and one fsync for the group): the deliveries in one multi-row statement whose
/// `RETURNING` names the rows actually inserted, every other request in the group being a
/// redelivery, then the bodies of the new ones. `synchronous = FULL` is set again first, so
/// that no other write can leave the group's commit without its fsync.
async fn insert_all(
    conn: &mut SqliteConnection,
    group: &[InsertRequest],
) -> Result<Vec<RecordOutcome>, sqlx::Error> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "PRAGMA synchronous = FULL; BEGIN; \
         INSERT INTO deliveries (id, event, action, installation_id, repository, received_at) ",
    );
    insert.push_values(group, |mut row, InsertRequest { delivery, .. }| {
        row.push_bind(delivery.id.as_str())
            .push_bind(delivery.event.as_str())
            .push_bind(delivery.action.as_deref())
            .push_bind(delivery.installation.map(|id| id.0 as i64))
            .push_bind(delivery.repository.as_deref())
            .push_bind(delivery.received_at);
    });
    // A body goes with the row of its id: a redelivery's row already has one, and of the
    // same id twice in the group one body is kept (a redelivery carries the same payload).
    insert.push(
        " ON CONFLICT (id) DO NOTHING RETURNING seq, id; \
         INSERT INTO delivery_bodies (seq, body) \
         SELECT deliveries.seq, arrived.column2 FROM (",
    );
    insert.push_values(group, |mut row, InsertRequest { delivery, body, .. }| {
        row.push_bind(delivery.id.as_str())
            .push_bind(body.as_slice());
    });
    insert.push(
        ") AS arrived JOIN deliveries ON deliveries.id = arrived.column1 \
         WHERE true ON CONFLICT (seq) DO NOTHING; COMMIT;",
    );
    let inserted = match insert.build().persistent(false).fetch_all(&mut *conn).await {
        Ok(rows) => rows,
        Err(err) => {
            // The transaction may still be open after a failed statement; with none open,
            // ROLLBACK fails harmlessly.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(err);
        }
    };
    let inserted: HashSet<String> = inserted.into_iter().map(|row| row.get("id")).collect();
    // The same id twice in one group: the first is new, the second a redelivery.
    let mut taken = HashSet::with_capacity(inserted.len());
    Ok(group
        .iter()
        .map(|InsertRequest { delivery, .. }| {
            let id = delivery.id.as_str();
            if inserted.contains(id) && taken.insert(id) {
                RecordOutcome::New
            } else {
                RecordOutcome::Duplicate
            }
        })
        .collect())
}
