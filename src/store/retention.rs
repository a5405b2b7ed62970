//! Retention: finished deliveries and finished outbox entries are deleted some days after
//! they ended, failed ones later than handled ones so that someone can look into them.

use std::time::Duration;

use super::{Store, StoreError};

/// How long finished deliveries and outbox entries are kept (`storage.retention_days` and
/// `storage.failed_retention_days`). Pending ones are never pruned; runs, issues, status
/// comments and settings are neither deliveries nor effects and are never pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Processed and ignored deliveries, and effects done, are kept this long after they
    /// ended.
    pub handled: Duration,
    /// Failed deliveries (parked after their last attempt) and effects given up on are kept
    /// this long after they ended: longer, so that someone can look into them.
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

    /// The cutoffs at `now` (unix ms): a handled row that ended before the first, or a
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

/// Unix ms before which finished rows are pruned, by outcome.
#[derive(Debug, Clone, Copy)]
pub(super) struct PruneCutoffs {
    pub(super) handled: i64,
    pub(super) failed: i64,
}

impl PruneCutoffs {
    /// The later of the two, the bound of the index range a backend scans.
    pub(super) fn latest(self) -> i64 {
        self.handled.max(self.failed)
    }
}

/// A table whose finished rows are pruned. The names are fixed text of this module, never
/// input, so the statements are put together from them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Expiring {
    table: &'static str,
    key: &'static str,
    ended_at: &'static str,
    handled_states: &'static str,
}

/// The webhook inbox.
pub(super) const DELIVERIES: Expiring = Expiring {
    table: "deliveries",
    key: "seq",
    ended_at: "finished_at",
    handled_states: "'processed', 'ignored'",
};

/// The effects outbox.
pub(super) const OUTBOX: Expiring = Expiring {
    table: "outbox",
    key: "id",
    ended_at: "done_at",
    handled_states: "'done'",
};

impl Expiring {
    /// The condition of a row due for pruning, with the cutoffs bound as `$1` (handled)
    /// and `$2` (failed).
    pub(super) fn due(self) -> String {
        let Self {
            ended_at,
            handled_states,
            ..
        } = self;
        format!(
            "((state IN ({handled_states}) AND {ended_at} < $1)
              OR (state = 'failed' AND {ended_at} < $2))"
        )
    }

    /// Selects the keys of the oldest rows due, at most `$4`; `$3` is the latest cutoff,
    /// which bounds the scan of the index on the end time.
    pub(super) fn oldest_due(self) -> String {
        let Self {
            table,
            key,
            ended_at,
            ..
        } = self;
        format!(
            "SELECT {key} FROM {table} WHERE {ended_at} < $3 AND {due}
             ORDER BY {ended_at} LIMIT $4",
            due = self.due()
        )
    }

    /// The table's name.
    pub(super) fn table(self) -> &'static str {
        self.table
    }

    /// Its primary key.
    pub(super) fn key(self) -> &'static str {
        self.key
    }
}

impl Store {
    /// Deletes up to `limit` deliveries, with their bodies, whose retention ran out at `now`
    /// (unix ms), oldest first; returns how many. Fewer than `limit` means none is left.
    /// Replicas may call it at the same time: each deletes rows the other does not hold.
    pub async fn prune_deliveries(
        &self,
        retention: Retention,
        now: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.prune(DELIVERIES, retention, now, limit).await
    }

    /// Deletes up to `limit` outbox entries done or given up on whose retention ran out at
    /// `now`, oldest first, as [`Store::prune_deliveries`] does for deliveries.
    pub async fn prune_effects(
        &self,
        retention: Retention,
        now: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.prune(OUTBOX, retention, now, limit).await
    }

    /// Prunes every delivery and outbox entry whose retention ran out at `now`, `batch` at
    /// a time with `pause` between batches: each batch is one short write, so that the
    /// door's and the processor's writes get through between them. Returns how many rows
    /// were deleted.
    pub async fn prune_expired(
        &self,
        retention: Retention,
        now: i64,
        batch: u32,
        pause: Duration,
    ) -> Result<u64, StoreError> {
        let batch = batch.max(1);
        let mut total = 0;
        for table in [DELIVERIES, OUTBOX] {
            loop {
                let deleted = self.prune(table, retention, now, batch).await?;
                total += deleted;
                if deleted < u64::from(batch) {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
        }
        Ok(total)
    }

    async fn prune(
        &self,
        table: Expiring,
        retention: Retention,
        now: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let cutoffs = retention.cutoffs(now);
        dispatch!(self.prune(table, cutoffs, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_rows_are_kept_longer_than_handled_ones() {
        let day = 24 * 60 * 60 * 1000;
        let cutoffs = Retention::days(14, 60).cutoffs(100 * day);
        assert_eq!(cutoffs.handled, 86 * day);
        assert_eq!(cutoffs.failed, 40 * day);
        assert_eq!(cutoffs.latest(), 86 * day);
    }

    #[test]
    fn a_retention_longer_than_time_itself_prunes_nothing() {
        let cutoffs = Retention::days(u32::MAX, u32::MAX).cutoffs(0);
        assert!(cutoffs.handled < 0 && cutoffs.failed < 0);
    }
}
