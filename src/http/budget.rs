//! The memory budget of the webhook door: bytes of request bodies held at once.
//!
//! The door must read a whole body (up to 25 MiB) before its signature can be checked, so
//! anyone can make it buffer. Every body takes its share of a fixed budget before a byte of
//! it is read (its declared `Content-Length`, or step by step when it has none) and gives it
//! back when the request ends, however it ends; a request that does not fit is shed at
//! once. Part of the budget is kept for small bodies, so that GitHub's real deliveries
//! (almost all well under 1 MiB) still get in while large uploads have taken the rest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::clock::now_millis;

/// How often, at most, shedding is reported in the log (it may happen thousands of times a
/// second under attack; each refusal is logged at debug level).
const SHED_LOG_INTERVAL_MILLIS: u64 = 60_000;

/// Bytes of bodies in flight, shared by every webhook request.
#[derive(Debug)]
pub struct BodyBudget {
    total: usize,
    reserved_for_small: usize,
    small_below: usize,
    in_flight: AtomicUsize,
    shed_since_log: AtomicU64,
    last_log_millis: AtomicU64,
}

/// A body's share of the [`BodyBudget`]; given back when dropped.
#[derive(Debug)]
pub struct BodyPermit {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl BodyBudget {
    /// A budget of `total` bytes, of which `reserved_for_small` only bodies smaller than
    /// `small_below` bytes may use.
    pub fn new(total: usize, reserved_for_small: usize, small_below: usize) -> Self {
        Self {
            total,
            reserved_for_small: reserved_for_small.min(total),
            small_below,
            in_flight: AtomicUsize::new(0),
            shed_since_log: AtomicU64::new(0),
            last_log_millis: AtomicU64::new(0),
        }
    }

    /// Takes `bytes` for a body about to be read, or `None` when they do not fit.
    pub fn try_take(self: &Arc<Self>, bytes: usize) -> Option<BodyPermit> {
        let mut permit = BodyPermit {
            budget: self.clone(),
            bytes: 0,
        };
        permit.try_grow(bytes).then_some(permit)
    }

    /// Bytes currently held by bodies in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Counts a shed request; returns how many were shed since the last report when one is
    /// due (at most once a minute), so that an attack shows in the log without flooding it.
    pub(super) fn note_shed(&self) -> Option<u64> {
        self.shed_since_log.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(now_millis()).unwrap_or_default();
        let last = self.last_log_millis.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SHED_LOG_INTERVAL_MILLIS {
            return None;
        }
        // One request among those shed at the same moment reports them.
        self.last_log_millis
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(self.shed_since_log.swap(0, Ordering::Relaxed))
    }

    /// The most a body of `size` bytes may bring the total to: small bodies may use the
    /// reserve, others stop short of it.
    fn ceiling_for(&self, size: usize) -> usize {
        if size < self.small_below {
            self.total
        } else {
            self.total - self.reserved_for_small
        }
    }
}

impl BodyPermit {
    /// Bytes this body holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes `more` bytes for this body (one without a declared length grows as it
    /// arrives); false, taking nothing, when they do not fit.
    pub fn try_grow(&mut self, more: usize) -> bool {
        let Some(size) = self.bytes.checked_add(more) else {
            return false;
        };
        let ceiling = self.budget.ceiling_for(size);
        let taken =
            self.budget
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                    now.checked_add(more).filter(|after| *after <= ceiling)
                });
        if taken.is_ok() {
            self.bytes = size;
        }
        taken.is_ok()
    }
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        self.budget
            .in_flight
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    fn budget() -> Arc<BodyBudget> {
        Arc::new(BodyBudget::new(100 * MIB, 10 * MIB, MIB))
    }

    #[test]
    fn large_bodies_stop_short_of_the_reserve_and_small_ones_use_it() {
        let budget = budget();
        let large: Vec<_> = (0..3)
            .map(|_| budget.try_take(25 * MIB).expect("fits"))
            .collect();
        assert_eq!(budget.in_flight(), 75 * MIB);
        // 25 MiB left, but only 15 of them outside the reserve.
        assert!(budget.try_take(16 * MIB).is_none());
        let fourth = budget.try_take(15 * MIB).expect("fits outside the reserve");
        assert!(budget.try_take(MIB).is_none(), "1 MiB is not small");
        let small: Vec<_> = (0..10)
            .map(|_| {
                budget
                    .try_take(MIB - 1)
                    .expect("small bodies use the reserve")
            })
            .collect();
        assert!(
            budget.try_take(100 * 1024).is_none(),
            "the reserve is used up"
        );
        drop(small);
        drop(fourth);
        drop(large);
        assert_eq!(budget.in_flight(), 0);
    }

    #[test]
    fn a_body_without_a_length_grows_and_loses_the_reserve_when_it_stops_being_small() {
        let budget = budget();
        let _large = budget.try_take(90 * MIB).expect("fits");
        let mut growing = budget.try_take(0).expect("nothing taken yet");
        assert!(growing.try_grow(MIB / 2), "small: may use the reserve");
        assert!(!growing.try_grow(MIB), "1.5 MiB is no longer small");
        assert_eq!(growing.bytes(), MIB / 2);
        assert_eq!(budget.in_flight(), 90 * MIB + MIB / 2);
        drop(growing);
        assert_eq!(budget.in_flight(), 90 * MIB);
    }

    #[test]
    fn sizes_that_overflow_are_refused() {
        let budget = budget();
        let mut permit = budget.try_take(MIB).expect("fits");
        assert!(!permit.try_grow(usize::MAX));
        assert!(budget.try_take(usize::MAX).is_none());
        assert_eq!(budget.in_flight(), MIB);
    }
}
