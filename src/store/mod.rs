//! Durable state behind one API. SQLite is the embedded default; the backend is chosen by
//! `storage.url` and callers never see which one they talk to.

mod postgres;
mod sqlite;

/// Calls the same method on whichever backend the store uses.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(backend) => backend.$method($($arg),*).await,
            Backend::Postgres(backend) => backend.$method($($arg),*).await,
        }
    };
}

use std::time::Duration;

use bytes::Bytes;

use crate::domain::{DeliveryId, InstallationId, IssueRef, RunId};

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
    /// When the oldest waiting delivery arrived (unix ms).
    pub oldest_pending_at: Option<i64>,
}

/// How long finished deliveries are kept (`storage.retention_days` and
/// `storage.failed_retention_days`). Pending deliveries are never pruned; runs, issues,
/// status comments and settings are not deliveries and are never pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Processed and ignored deliveries are kept this long after they were handled.
    pub handled: Duration,
    /// Failed deliveries (parked after their last attempt) are kept this long after they
    /// were parked: longer, so that someone can look into them.
    pub failed: Duration,
}

impl Retention {
    /// Retention in whole days.
    pub fn days(handled: u32, failed: u32) -> Self {
        let day = Duration::from_secs(24 * 60 * 60);
        Self {
            handled: day * handled,
            failed: day * failed,
        }
    }

    /// The cutoffs at `now` (unix ms): a handled delivery that ended before the first, or a
    /// failed one that ended before the second, is due for pruning.
    fn cutoffs(self, now: i64) -> PruneCutoffs {
        let before =
            |kept: Duration| now.saturating_sub(kept.as_millis().min(i64::MAX as u128) as i64);
        PruneCutoffs {
            handled: before(self.handled),
            failed: before(self.failed),
        }
    }
}

/// Unix ms before which finished deliveries are pruned, by outcome.
#[derive(Debug, Clone, Copy)]
struct PruneCutoffs {
    handled: i64,
    failed: i64,
}

impl PruneCutoffs {
    /// The later of the two, the bound of the index range a backend scans.
    fn latest(self) -> i64 {
        self.handled.max(self.failed)
    }
}

/// A stable advisory-lock key for a job name (FNV-1a, so every replica computes the same).
fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

/// Where a run row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    /// The intent is recorded; its holder is asking Codegen (or crashed doing so).
    Launching,
    /// Codegen accepted it and it has not ended.
    Running,
    /// The agent reported success.
    Succeeded,
    /// The agent reported failure, or Codegen refused the launch.
    Failed,
    /// It ran longer than `codegen.run_timeout_secs` and was stopped.
    TimedOut,
    /// Stopped by `/codegen cancel` or because the issue left management.
    Cancelled,
}

impl RunState {
    /// Every state, in the order a run goes through them.
    pub const ALL: [RunState; 6] = [
        Self::Launching,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Cancelled,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Launching => "launching",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Launching,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::TimedOut,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }

    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Launching | Self::Running)
    }
}

/// Which run rows to read.
#[derive(Debug, Clone, Copy)]
enum RunFilter {
    StaleLaunches { now: i64 },
    Running,
    All,
}

/// One run row: an attempt at an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The row's key.
    pub row: i64,
    /// The installation the issue belongs to.
    pub installation: InstallationId,
    /// The issue.
    pub issue: IssueRef,
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// Where it stands.
    pub state: RunState,
    /// The agent's instructions.
    pub prompt: String,
    /// Codegen's id, once it accepted the run.
    pub run_id: Option<RunId>,
    /// The run's page on codegen.com.
    pub web_url: Option<String>,
    /// The agent's summary, once ended.
    pub summary: Option<String>,
    /// Pull requests the agent opened.
    pub pull_requests: Vec<String>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Unix ms the intent was recorded.
    pub created_at: i64,
    /// Unix ms Codegen accepted it.
    pub started_at: Option<i64>,
    /// Unix ms it ended.
    pub finished_at: Option<i64>,
}

/// How a run ended, to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnding {
    /// The final state (not launching or running).
    pub state: RunState,
    /// Why, when it did not succeed.
    pub failure: Option<String>,
    /// The agent's summary.
    pub summary: Option<String>,
    /// Pull requests the agent opened.
    pub pull_requests: Vec<String>,
}

/// An issue's status comment as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCommentRecord {
    /// Its id, once created.
    pub comment_id: Option<u64>,
    /// Hash of the body last written.
    pub body_hash: Option<String>,
    /// Until when a creator holds the claim (unix ms).
    pub claimed_until: Option<i64>,
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

/// A job lock: while it is held, no other replica runs the same job. Release it with
/// [`JobLock::release`]; a dropped one is released when its connection is next used.
pub struct JobLock {
    held: Option<postgres::PgJobLock>,
}

impl JobLock {
    /// Releases the lock now.
    pub async fn release(self) {
        if let Some(held) = self.held
            && let Err(err) = held.release().await
        {
            tracing::warn!(error = %err, "releasing a job lock failed; it ends with its connection");
        }
    }
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

    /// Takes the lock of job `name` unless another replica holds it. SQLite serves one
    /// process, which holds every lock.
    pub async fn try_job_lock(&self, name: &str) -> Result<Option<JobLock>, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Some(JobLock { held: None })),
            Backend::Postgres(backend) => Ok(backend
                .try_job_lock(lock_key(name))
                .await?
                .map(|held| JobLock { held: Some(held) })),
        }
    }

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
        dispatch!(self.claim_deliveries(limit, now, lease_ms))
    }

    /// Records how each claimed delivery (by `seq`) ended, all in one transaction.
    pub async fn finish_deliveries(
        &self,
        outcomes: &[(i64, DeliveryOutcome)],
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.finish_deliveries(outcomes, now))
    }

    /// A delivery's state, if it was stored.
    pub async fn delivery(&self, id: &DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        dispatch!(self.delivery(id))
    }

    /// How many deliveries are stored in all.
    pub async fn delivery_count(&self) -> Result<u64, StoreError> {
        dispatch!(self.delivery_count())
    }

    /// Pending and failed counts.
    pub async fn inbox_counts(&self) -> Result<InboxCounts, StoreError> {
        dispatch!(self.inbox_counts())
    }

    /// Deletes up to `limit` deliveries, with their bodies, whose retention ran out at `now`
    /// (unix ms), oldest first; returns how many. Fewer than `limit` means none is left.
    /// Replicas may call it at the same time: each deletes rows the other does not hold.
    pub async fn prune_deliveries(
        &self,
        retention: Retention,
        now: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let cutoffs = retention.cutoffs(now);
        dispatch!(self.prune_deliveries(cutoffs, limit))
    }

    /// Prunes every delivery whose retention ran out at `now`, `batch` at a time with
    /// `pause` between batches: each batch is one short write, so that the door's and the
    /// processor's writes get through between them. Returns how many were deleted.
    pub async fn prune_expired(
        &self,
        retention: Retention,
        now: i64,
        batch: u32,
        pause: Duration,
    ) -> Result<u64, StoreError> {
        let batch = batch.max(1);
        let mut total = 0;
        loop {
            let deleted = self.prune_deliveries(retention, now, batch).await?;
            total += deleted;
            if deleted < u64::from(batch) {
                return Ok(total);
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Records the intent to launch `attempt` at `issue` with `prompt`, held until
    /// `now + lease_ms`.
    /// `None` when that attempt is already recorded: someone else launches (or launched)
    /// it, and the caller must not call Codegen.
    pub async fn begin_launch(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        attempt: u32,
        prompt: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<RunRecord>, StoreError> {
        dispatch!(self.begin_launch(installation, issue, attempt, prompt, now, lease_ms))
    }

    /// Takes over a launch whose holder's lease ran out (it crashed, or gave up for now);
    /// `false` when it is no longer stale (another replica took it, or it was recorded).
    pub async fn take_over_launch(
        &self,
        row: i64,
        now: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.take_over_launch(row, now, lease_ms))
    }

    /// Gives up a launch Codegen certainly did not create (402): the attempt can be made
    /// again later.
    pub async fn abandon_launch(&self, row: i64) -> Result<(), StoreError> {
        dispatch!(self.abandon_launch(row))
    }

    /// Stores the id of the run Codegen created for a launching row; `false` when the
    /// row is no longer launching (it was cancelled meanwhile).
    pub async fn record_started(
        &self,
        row: i64,
        run_id: RunId,
        web_url: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.record_started(row, run_id, web_url, now))
    }

    /// Stores how a launching or running row ended; `false` if it had already ended.
    pub async fn record_ended(
        &self,
        row: i64,
        ending: &RunEnding,
        now: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.record_ended(row, ending, now))
    }

    /// Launching rows whose lease ran out before `now`.
    pub async fn stale_launches(&self, now: i64) -> Result<Vec<RunRecord>, StoreError> {
        dispatch!(self.runs(RunFilter::StaleLaunches { now }))
    }

    /// Runs Codegen accepted that have not ended.
    pub async fn running_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        dispatch!(self.runs(RunFilter::Running))
    }

    /// Every attempt at `issue`, oldest first.
    pub async fn runs_of(&self, issue: &IssueRef) -> Result<Vec<RunRecord>, StoreError> {
        dispatch!(self.runs_of(issue))
    }

    /// Every run row, oldest first.
    pub async fn all_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        dispatch!(self.runs(RunFilter::All))
    }

    /// Saves what the bot knows of `issue` (JSON it wrote).
    pub async fn save_issue(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        data: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.save_issue(installation, issue, data, now))
    }

    /// Forgets an issue.
    pub async fn delete_issue(&self, issue: &IssueRef) -> Result<(), StoreError> {
        dispatch!(self.delete_issue(issue))
    }

    /// Every saved issue with its installation and data.
    pub async fn issues(&self) -> Result<Vec<(InstallationId, IssueRef, String)>, StoreError> {
        dispatch!(self.issues())
    }

    /// The status comment of `issue`: its id and the hash of the body last written.
    pub async fn status_comment(
        &self,
        issue: &IssueRef,
    ) -> Result<Option<StatusCommentRecord>, StoreError> {
        dispatch!(self.status_comment(issue))
    }

    /// Claims the right to create the status comment of `issue` until `now + lease_ms`;
    /// `false` when someone else holds it or the comment exists.
    pub async fn claim_status_comment(
        &self,
        issue: &IssueRef,
        now: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.claim_status_comment(issue, now, lease_ms))
    }

    /// Records the status comment's id and the hash of its body.
    pub async fn record_status_comment(
        &self,
        issue: &IssueRef,
        comment_id: u64,
        body_hash: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self.record_status_comment(issue, comment_id, body_hash))
    }

    /// A setting's value.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self.setting(key))
    }

    /// Sets (`Some`) or removes (`None`) a setting.
    pub async fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        dispatch!(self.set_setting(key, value))
    }

    /// Settings whose key starts with `prefix`.
    pub async fn settings_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self.settings_with_prefix(prefix))
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self.ping())
    }

    /// Writes everything still queued, then closes the database.
    pub async fn close(&self) {
        dispatch!(self.close())
    }
}
