//! Durable state behind one API. SQLite is the embedded default; the backend is chosen by
//! `storage.url` and callers never see which one they talk to.

mod sqlite;

use bytes::Bytes;

use crate::domain::{DeliveryId, InstallationId};

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
}

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
}

/// The store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    backend: sqlite::SqliteStore,
}

impl Store {
    /// Opens (creating if needed) the store at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self {
                backend: sqlite::SqliteStore::open(url).await?,
            })
        } else {
            Err(StoreError::Url(
                "only sqlite:// is supported by this version".into(),
            ))
        }
    }

    /// Stores a delivery durably (committed to disk) unless its id is already stored.
    pub async fn record_delivery(
        &self,
        delivery: NewDelivery,
    ) -> Result<RecordOutcome, StoreError> {
        self.backend.record_delivery(delivery).await
    }

    /// Claims up to `limit` pending deliveries that are due at `now` (unix ms), oldest
    /// first, for `lease_ms`; a claim not finished by then can be taken again.
    pub async fn claim_deliveries(
        &self,
        limit: u32,
        now: i64,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.backend.claim_deliveries(limit, now, lease_ms).await
    }

    /// Records how each claimed delivery (by `seq`) ended, all in one transaction.
    pub async fn finish_deliveries(
        &self,
        outcomes: &[(i64, DeliveryOutcome)],
        now: i64,
    ) -> Result<(), StoreError> {
        self.backend.finish_deliveries(outcomes, now).await
    }

    /// A delivery's state, if it was stored.
    pub async fn delivery(&self, id: &DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        self.backend.delivery(id).await
    }

    /// How many deliveries are stored in all.
    pub async fn delivery_count(&self) -> Result<u64, StoreError> {
        self.backend.delivery_count().await
    }

    /// Pending and failed counts.
    pub async fn inbox_counts(&self) -> Result<InboxCounts, StoreError> {
        self.backend.inbox_counts().await
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    /// Writes everything still queued, then closes the database.
    pub async fn close(&self) {
        self.backend.close().await
    }
}
