//! Which installations this process acts on. With SQLite (one process) that is every
//! installation. With PostgreSQL, several replicas share the work: each acts only on the
//! installations whose lease it holds (see the store's `leases`), so that N replicas work
//! on N installations at once while each installation's events are handled by one replica,
//! in order.
//!
//! A replica trusts its leases for three quarters of their length after the renewal that
//! granted them (measured on its own monotonic clock from before the request), so a lease
//! it has stopped renewing is given up here before the database hands it to another
//! replica; the store also refuses a step of a replica whose lease ran out (a fence in the
//! commit), and launches are exactly-once in the store whoever makes them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::InstallationId;
use crate::store::{Store, StoreError};

/// The installations acted on now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every installation (one process serves the store).
    All,
    /// Only these (the leases held).
    Only(BTreeSet<InstallationId>),
}

impl Scope {
    /// Whether `installation` is acted on.
    pub fn contains(&self, installation: InstallationId) -> bool {
        match self {
            Self::All => true,
            Self::Only(held) => held.contains(&installation),
        }
    }

    /// The installations, or `None` for all of them (for the store's filters).
    pub fn ids(&self) -> Option<Vec<InstallationId>> {
        match self {
            Self::All => None,
            Self::Only(held) => Some(held.iter().copied().collect()),
        }
    }
}

/// This process's share of the installations. Cheap to clone.
#[derive(Clone)]
pub struct Ownership {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// This process's name in the lease table: host, process id and start time, so that a
    /// restarted process never takes up a dead one's leases by name.
    replica: String,
    lease: Duration,
    held: Mutex<Held>,
}

struct Held {
    installations: BTreeSet<InstallationId>,
    /// Until when the leases are trusted (the last renewal, sent at that instant, plus
    /// three quarters of a lease).
    trusted_until: Instant,
    /// Bumped whenever the set of installations changes: the engine's state is rebuilt.
    generation: u64,
}

impl Ownership {
    /// The ownership of this process over `store`, with leases of `lease`.
    pub fn new(store: Store, lease: Duration) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        Self {
            inner: Arc::new(Inner {
                store,
                replica: format!("{host}/{}/{started:x}", std::process::id()),
                lease: lease.max(Duration::from_secs(1)),
                held: Mutex::new(Held {
                    installations: BTreeSet::new(),
                    trusted_until: Instant::now(),
                    generation: 0,
                }),
            }),
        }
    }

    /// Whether installations are shared out (several replicas may run).
    pub fn is_shared(&self) -> bool {
        self.inner.store.is_shared()
    }

    /// This replica's name in the lease table.
    pub fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// How often the leases are renewed: four times a lease.
    pub fn renew_interval(&self) -> Duration {
        (self.inner.lease / 4).max(Duration::from_millis(100))
    }

    /// The installations acted on now, and the generation of that set (it changes when
    /// the set does). Held leases not renewed in time count as none.
    pub fn scope(&self) -> (Scope, u64) {
        if !self.is_shared() {
            return (Scope::All, 0);
        }
        let held = self.lock();
        let installations = if Instant::now() < held.trusted_until {
            held.installations.clone()
        } else {
            BTreeSet::new()
        };
        (Scope::Only(installations), held.generation)
    }

    /// Whether `installation` is acted on now (as [`Ownership::scope`], without a copy).
    pub fn holds(&self, installation: InstallationId) -> bool {
        if !self.is_shared() {
            return true;
        }
        let held = self.lock();
        Instant::now() < held.trusted_until && held.installations.contains(&installation)
    }

    /// One balancing round: renews the leases, gives back what is over this replica's
    /// share and takes free installations up to it. Nothing to do with SQLite.
    pub async fn balance(&self) -> Result<(), StoreError> {
        let sent = Instant::now();
        let lease_ms = self.lease_ms();
        if let Some(round) = self
            .inner
            .store
            .balance_leases(&self.inner.replica, lease_ms)
            .await?
        {
            // An installation taken (even one held before: its lease had run out) may
            // have been acted on by another replica meanwhile: its state is read again.
            self.settle(round.held, !round.taken.is_empty(), sent);
        }
        Ok(())
    }

    /// Renews the leases held (between balancing rounds, so that a long round of work does
    /// not outlive them); drops any that ran out. Nothing to do with SQLite.
    pub async fn renew(&self) -> Result<(), StoreError> {
        let sent = Instant::now();
        if let Some(held) = self
            .inner
            .store
            .renew_leases(&self.inner.replica, self.lease_ms())
            .await?
        {
            let kept = &self.lock().installations & &held;
            self.settle(kept, false, sent);
        }
        Ok(())
    }

    /// Gives every lease back (at shutdown), so that the other replicas take over at once.
    pub async fn release(&self) {
        {
            let mut held = self.lock();
            held.installations.clear();
            held.generation += 1;
        }
        if let Err(err) = self.inner.store.release_leases(&self.inner.replica).await {
            tracing::warn!(error = %err, "giving back the installation leases failed; they run out by themselves");
        }
    }

    fn settle(&self, installations: BTreeSet<InstallationId>, taken: bool, sent: Instant) {
        let mut held = self.lock();
        if taken || held.installations != installations {
            tracing::info!(
                replica = %self.inner.replica,
                installations = ?installations.iter().map(|id| id.0).collect::<Vec<_>>(),
                "the installations this replica acts on changed"
            );
            held.installations = installations;
            held.generation += 1;
        }
        held.trusted_until = sent + self.inner.lease * 3 / 4;
    }

    fn lease_ms(&self) -> i64 {
        self.inner.lease.as_millis() as i64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Renews `ownership`'s leases every quarter lease until `stop` turns true.
pub async fn keep_renewing(ownership: Ownership, mut stop: tokio::sync::watch::Receiver<bool>) {
    if !ownership.is_shared() {
        return;
    }
    while !*stop.borrow() {
        tokio::select! {
            () = tokio::time::sleep(ownership.renew_interval()) => {}
            _ = stop.changed() => return,
        }
        if let Err(err) = ownership.renew().await {
            tracing::warn!(error = %err, "renewing the installation leases failed; trying again shortly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_of_some_installations_contains_only_those() {
        let scope = Scope::Only([InstallationId(1), InstallationId(3)].into());
        assert!(scope.contains(InstallationId(3)));
        assert!(!scope.contains(InstallationId(2)));
        assert_eq!(
            scope.ids(),
            Some(vec![InstallationId(1), InstallationId(3)])
        );
        assert!(Scope::All.contains(InstallationId(2)));
        assert_eq!(Scope::All.ids(), None);
    }
}
