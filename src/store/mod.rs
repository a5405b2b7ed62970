//! Durable state behind one API. SQLite is the embedded default; the backend is chosen by
//! `storage.url` and callers never see which one they talk to.
//!
//! Where the two dialects agree, the SQL and the mapping of rows to records are written
//! once, beside the records they serve ([`inbox`], [`runs`], [`issues`], [`settings`],
//! [`outbox`]), and each backend only runs the statements. The backends keep what really
//! differs: how SQLite funnels every write through one writer task, how PostgreSQL claims
//! rows with `FOR UPDATE SKIP LOCKED`, and how each stores a delivery.

/// Calls the same method on whichever backend the store uses.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            $crate::store::Backend::Sqlite(backend) => backend.$method($($arg),*).await,
            $crate::store::Backend::Postgres(backend) => backend.$method($($arg),*).await,
        }
    };
}

mod dashboard;
mod inbox;
mod issues;
mod leases;
mod outbox;
mod postgres;
mod retention;
mod rows;
mod runs;
mod settings;
mod sql;
mod sqlite;

pub use crate::domain::{RunRecord, RunState};
pub use dashboard::DashboardSession;
pub use inbox::{
    ClaimedDelivery, DeliveryOutcome, DeliveryRecord, DeliveryState, InboxCounts, NewDelivery,
    RecordOutcome,
};
pub use issues::StatusCommentRecord;
pub use leases::{LeaseRound, fair_share};
pub use outbox::{OutboxEntry, Step};
pub use retention::Retention;
pub use runs::RunEnding;
pub use settings::peek_settings;

use rows::ReadRow;
use sql::{Outcome, Statement};

/// A failure of the storage itself (disk, database server, migration).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The store was opened with a URL it cannot use.
    #[error("unusable storage URL: {0}")]
    Url(String),
    /// A batched write failed; every delivery in the batch gets this error.
    #[error("database write failed: {0}")]
    Write(String),
    /// The store's writer has stopped (the app is shutting down).
    #[error("the store is shut down")]
    Closed,
    /// Another process has the SQLite file open (SQLite serves one process).
    #[error("{0}")]
    InUse(String),
    /// A step was refused: this replica no longer holds the lease of an installation it
    /// acted on (another replica took it over); nothing of the step was written.
    #[error("the lease of an installation ran out before the step was committed")]
    LeaseLost,
}

/// The store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
}

impl Store {
    /// Opens (creating if needed) the store at `url` (`sqlite://...` or `postgres://...`)
    /// and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(sqlite::SqliteStore::open(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::PostgresStore::open(url).await?)
        } else {
            return Err(StoreError::Url(
                "storage.url must start with sqlite:// or postgres://".into(),
            ));
        };
        Ok(Self { backend })
    }

    /// Whether several processes may share this store (PostgreSQL), so that what one
    /// process holds in memory must be read again from the store before use.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(Statement::rows("SELECT 1")).await.map(drop)
    }

    /// Writes everything still queued, then closes the database.
    pub async fn close(&self) {
        dispatch!(self.close())
    }

    /// Runs a statement that only reads (on SQLite, on a reader beside the writer).
    async fn read(&self, statement: Statement) -> Result<Vec<Box<dyn ReadRow>>, StoreError> {
        dispatch!(self.read(statement)).map(|outcome| outcome.rows)
    }

    /// Runs a statement that writes (on SQLite, through the one writer, in order).
    async fn write(&self, statement: Statement) -> Result<Outcome, StoreError> {
        dispatch!(self.write(statement))
    }

    /// Runs `statements` in one transaction: all take effect or none.
    async fn transaction(&self, statements: Vec<Statement>) -> Result<Vec<Outcome>, StoreError> {
        dispatch!(self.transaction(statements))
    }
}
