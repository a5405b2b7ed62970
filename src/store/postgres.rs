//! The PostgreSQL backend, for several replicas sharing one database. Deliveries are
//! claimed with `FOR UPDATE SKIP LOCKED` and a lease, so that each is processed by one
//! replica and a crashed replica's claims return after the lease; jobs that must run on one
//! replica at a time take a transaction-level advisory lock. The statements both dialects
//! share run here on the pool.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use super::StoreError;
use super::inbox::{
    ClaimedDelivery, NewDelivery, RecordOutcome, arrived_body, claimed_delivery, stored_body,
};
use super::retention::{Expiring, PruneCutoffs};
use super::sql::{self, Outcome, Statement};

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
        let body = stored_body(&delivery.body);
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
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let mut delivery = claimed_delivery(&row)?;
            let stored: Vec<u8> = row.try_get("body")?;
            delivery.body = arrived_body(delivery.seq, &stored);
            claimed.push(delivery);
        }
        Ok(claimed)
    }

    pub(super) async fn prune(
        &self,
        table: Expiring,
        cutoffs: PruneCutoffs,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // SKIP LOCKED: a replica pruning at the same time holds its rows until it commits;
        // this one takes others instead of waiting for them (or deadlocking on them).
        // Delivery bodies go with their rows (ON DELETE CASCADE).
        let delete = Statement::count_of(format!(
            "DELETE FROM {table} WHERE {key} IN ({oldest} FOR UPDATE SKIP LOCKED)",
            table = table.table(),
            key = table.key(),
            oldest = table.oldest_due()
        ))
        .bind(cutoffs.handled)
        .bind(cutoffs.failed)
        .bind(cutoffs.latest())
        .bind(i64::from(limit));
        Ok(self.write(delete).await?.rows_affected)
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

    pub(super) async fn read(&self, statement: Statement) -> Result<Outcome, StoreError> {
        Ok(sql::run(&self.pool, statement).await?)
    }

    pub(super) async fn write(&self, statement: Statement) -> Result<Outcome, StoreError> {
        Ok(sql::run(&self.pool, statement).await?)
    }

    pub(super) async fn transaction(
        &self,
        statements: Vec<Statement>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(sql::run_in_transaction::<Postgres>(&mut conn, statements).await?)
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}
