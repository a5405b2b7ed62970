//! The PostgreSQL backend, for several replicas sharing one database. Deliveries are
//! claimed with `FOR UPDATE SKIP LOCKED` and a lease, so that each is processed by one
//! replica and a crashed replica's claims return after the lease; which replica acts on
//! which installation is in `leases`. The statements both dialects share run here on the
//! pool.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row};

use super::StoreError;
use super::inbox::{
    ClaimedDelivery, NewDelivery, RecordOutcome, arrived_body, claimed_delivery, stored_body,
};
use super::retention::{Expiring, PruneCutoffs};
use super::sql::{self, Outcome, Statement};
use crate::domain::InstallationId;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL store: one pool for everything.
#[derive(Clone)]
pub(super) struct PostgresStore {
    pool: PgPool,
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

    /// The pool, for the statements only PostgreSQL runs (installation leases).
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
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
        only: Option<&[InstallationId]>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // Without installations named, every delivery; a delivery without an installation
        // belongs to "installation" 0 (as in the token mode).
        let only: Option<Vec<i64>> = only.map(|ids| ids.iter().map(|id| id.0 as i64).collect());
        let rows = sqlx::query(
            "UPDATE deliveries d SET lease_until = $1 + $2
             FROM delivery_bodies b
             WHERE d.seq = b.seq AND d.seq IN (
                 SELECT seq FROM deliveries
                 WHERE state = 'pending' AND next_attempt_at <= $1
                   AND (lease_until IS NULL OR lease_until <= $1)
                   AND ($4::BIGINT[] IS NULL OR COALESCE(installation_id, 0) = ANY($4))
                 ORDER BY seq LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING d.seq, d.id, d.event, d.action, d.repository, d.received_at,
                       d.attempts, b.body",
        )
        .bind(now)
        .bind(lease_ms)
        .bind(i64::from(limit))
        .bind(only)
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
