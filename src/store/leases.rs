//! Installation leases: which replica acts on which installation when several share a
//! PostgreSQL database. A replica holds an installation while it keeps renewing its lease;
//! the known installations are shared out evenly over the live replicas (each takes at
//! most its fair share, and gives back what is over it when another replica joins), and a
//! dead replica's installations are taken by the others once its leases run out.
//!
//! Every time here is the database's clock, so the replicas' clocks never have to agree. A
//! SQLite store serves one process, which acts on every installation: these calls answer
//! `None` there without touching the database.

use std::collections::BTreeSet;

use sqlx::PgPool;

use super::sql::Statement;
use super::{Backend, Store, StoreError};
use crate::domain::InstallationId;

/// The database's clock in unix milliseconds (PostgreSQL), as a literal for `concat!`.
macro_rules! db_now {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// What one balancing round left this replica holding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRound {
    /// The installations this replica holds now (renewed or newly taken).
    pub held: BTreeSet<InstallationId>,
    /// Those it took this round: free or expired before, so another replica may have acted
    /// on them since this one last did.
    pub taken: BTreeSet<InstallationId>,
    /// Replicas seen within one lease, this one included.
    pub live_replicas: u64,
    /// Installations known to the replicas (with a lease row, held or not).
    pub known: u64,
}

impl Store {
    /// One balancing round for `replica`: its heartbeat, its leases renewed for `lease_ms`,
    /// what is over its fair share given back, and free or expired installations taken up
    /// to that share. Installations with pending deliveries, effects or runs become known
    /// here. `None` on SQLite (one process, every installation).
    pub async fn balance_leases(
        &self,
        replica: &str,
        lease_ms: i64,
    ) -> Result<Option<LeaseRound>, StoreError> {
        let Backend::Postgres(backend) = &self.backend else {
            return Ok(None);
        };
        let pool = backend.pool();
        sqlx::query(concat!(
            "INSERT INTO replicas (id, seen_at) VALUES ($1, ",
            db_now!(),
            ")
             ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at"
        ))
        .bind(replica)
        .execute(pool)
        .await?;
        // Work waiting for an installation nobody knows yet makes it known.
        sqlx::query(
            "INSERT INTO installation_leases (installation_id)
             SELECT DISTINCT COALESCE(installation_id, 0) FROM deliveries WHERE state = 'pending'
             UNION SELECT DISTINCT installation_id FROM outbox WHERE state = 'pending'
             UNION SELECT DISTINCT installation_id FROM runs WHERE state IN ('launching', 'running')
             ON CONFLICT (installation_id) DO NOTHING",
        )
        .execute(pool)
        .await?;
        let mut held = renew(pool, replica, lease_ms).await?;
        let mut taken = BTreeSet::new();
        let (live_replicas, known): (i64, i64) = sqlx::query_as(concat!(
            "SELECT (SELECT count(*) FROM replicas WHERE seen_at > ",
            db_now!(),
            " - $1),
                    (SELECT count(*) FROM installation_leases)"
        ))
        .bind(lease_ms)
        .fetch_one(pool)
        .await?;
        let live_replicas = live_replicas.max(1) as u64;
        let known = known.max(0) as u64;
        let share = fair_share(known, live_replicas);
        if held.len() as u64 > share {
            // Another replica joined: the highest-numbered installations go back.
            let over: Vec<i64> = held
                .iter()
                .rev()
                .take(held.len() - share as usize)
                .map(|id| id.0 as i64)
                .collect();
            sqlx::query(
                "UPDATE installation_leases SET owner = '', expires_at = 0
                 WHERE installation_id = ANY($1) AND owner = $2",
            )
            .bind(&over)
            .bind(replica)
            .execute(pool)
            .await?;
            held.retain(|id| !over.contains(&(id.0 as i64)));
        } else if (held.len() as u64) < share {
            let newly: Vec<i64> = sqlx::query_scalar(concat!(
                "UPDATE installation_leases SET owner = $1, expires_at = ",
                db_now!(),
                " + $2
                 WHERE installation_id IN (
                     SELECT installation_id FROM installation_leases
                     WHERE expires_at <= ",
                db_now!(),
                "
                     ORDER BY installation_id LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                 RETURNING installation_id"
            ))
            .bind(replica)
            .bind(lease_ms)
            .bind((share - held.len() as u64) as i64)
            .fetch_all(pool)
            .await?;
            taken.extend(newly.into_iter().map(|id| InstallationId(id as u64)));
            held.extend(taken.iter().copied());
        }
        // Replicas gone for long are forgotten (a restarted one comes back under a new id).
        sqlx::query(concat!(
            "DELETE FROM replicas WHERE seen_at < ",
            db_now!(),
            " - 10 * $1"
        ))
        .bind(lease_ms)
        .execute(pool)
        .await?;
        Ok(Some(LeaseRound {
            held,
            taken,
            live_replicas,
            known,
        }))
    }

    /// Renews `replica`'s leases for `lease_ms`; the installations it still holds (one
    /// whose lease ran out meanwhile may have been taken). `None` on SQLite.
    pub async fn renew_leases(
        &self,
        replica: &str,
        lease_ms: i64,
    ) -> Result<Option<BTreeSet<InstallationId>>, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(backend) => Ok(Some(renew(backend.pool(), replica, lease_ms).await?)),
        }
    }

    /// Makes installations known (reconciliation lists them from GitHub), so that some
    /// replica takes each even before it sends an event.
    pub async fn know_installations(&self, ids: &[InstallationId]) -> Result<(), StoreError> {
        let Backend::Postgres(backend) = &self.backend else {
            return Ok(());
        };
        let ids: Vec<i64> = ids.iter().map(|id| id.0 as i64).collect();
        sqlx::query(
            "INSERT INTO installation_leases (installation_id) SELECT * FROM UNNEST($1::BIGINT[])
             ON CONFLICT (installation_id) DO NOTHING",
        )
        .bind(&ids)
        .execute(backend.pool())
        .await?;
        Ok(())
    }

    /// Gives back every lease of `replica` (it is shutting down), so that the others take
    /// its installations at once instead of after the lease.
    pub async fn release_leases(&self, replica: &str) -> Result<(), StoreError> {
        let Backend::Postgres(backend) = &self.backend else {
            return Ok(());
        };
        let pool = backend.pool();
        sqlx::query("UPDATE installation_leases SET owner = '', expires_at = 0 WHERE owner = $1")
            .bind(replica)
            .execute(pool)
            .await?;
        sqlx::query("DELETE FROM replicas WHERE id = $1")
            .bind(replica)
            .execute(pool)
            .await?;
        Ok(())
    }
}

/// A statement that changes one row per installation in `installations` only while
/// `replica` holds all of their leases; in a commit (`Statement::requiring`), a step of a
/// replica whose lease ran out is refused as a whole.
pub(super) fn fence(replica: &str, installations: &[InstallationId]) -> Statement {
    let ids: Vec<i64> = installations.iter().map(|id| id.0 as i64).collect();
    let mut statement = Statement::count_of(format!(
        concat!(
            "UPDATE installation_leases SET owner = owner
             WHERE installation_id IN ({}) AND owner = $1 AND expires_at > ",
            db_now!()
        ),
        super::sql::placeholders(2, ids.len())
    ))
    .bind(replica);
    for id in &ids {
        statement = statement.bind(*id);
    }
    statement.requiring(ids.len() as u64)
}

/// The most installations one of `replicas` live replicas takes: all of them shared out,
/// rounded up so that none is left over.
pub fn fair_share(known: u64, replicas: u64) -> u64 {
    known.div_ceil(replicas.max(1))
}

/// Extends the leases `replica` still holds; the installations it holds.
async fn renew(
    pool: &PgPool,
    replica: &str,
    lease_ms: i64,
) -> Result<BTreeSet<InstallationId>, StoreError> {
    let held: Vec<i64> = sqlx::query_scalar(concat!(
        "UPDATE installation_leases SET expires_at = ",
        db_now!(),
        " + $2
         WHERE owner = $1 AND expires_at > ",
        db_now!(),
        "
         RETURNING installation_id"
    ))
    .bind(replica)
    .bind(lease_ms)
    .fetch_all(pool)
    .await?;
    Ok(held
        .into_iter()
        .map(|id| InstallationId(id as u64))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn the_fair_share_leaves_no_installation_over() {
        assert_eq!(fair_share(6, 1), 6);
        assert_eq!(fair_share(6, 2), 3);
        assert_eq!(fair_share(6, 3), 2);
        assert_eq!(fair_share(7, 3), 3);
        assert_eq!(fair_share(1, 3), 1);
        assert_eq!(fair_share(0, 2), 0);
        assert_eq!(fair_share(5, 0), 5);
    }
}
