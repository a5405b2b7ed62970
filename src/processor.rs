//! Drains the webhook inbox: claims stored deliveries in arrival order, decodes each into a
//! domain event and records how it ended. A delivery that fails is retried a bounded number
//! of times with growing delays, then parked as failed; it never holds up the ones behind it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{debug, error, info, info_span, warn};

use crate::clock::now_millis;
use crate::events::{self, Decoded, DomainEvent};
use crate::orchestrator::Orchestrator;
use crate::store::{ClaimedDelivery, DeliveryOutcome, Store, StoreError};
use crate::telemetry::names;

/// Deliveries claimed per round trip to the store.
const CLAIM_BATCH: u32 = 256;
/// Deliveries the bot decides on and commits in one step: enough to share a commit under
/// load, few enough that the first of a burst is acted on soon.
const STEP_BATCH: usize = 32;
/// How long a claim holds before another worker may take the delivery, by default.
const LEASE: Duration = Duration::from_secs(300);
/// How often the inbox is looked at when nothing wakes the processor (for due retries).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// A round that handled at least this many deliveries means a burst: the next one waits
/// [`GATHER`] first.
const BURST: usize = 16;
/// How long deliveries gather after a burst's round before the next claim. Each round then
/// takes what arrived meanwhile in one claim and one finish, instead of a few deliveries
/// per round trip, so the processor's commits (each an fsync, queued with the door's group
/// commits) stay few. Deliveries arriving one by one are claimed at once.
const GATHER: Duration = Duration::from_millis(50);

/// How often, and how far apart, a failing delivery is tried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles with each further one.
    pub first_delay: Duration,
    /// Longest delay between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait after `attempts_made` failed attempts: doubling from the first delay.
    pub fn delay_after(&self, attempts_made: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts_made.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// The inbox processor.
pub struct InboxProcessor {
    store: Store,
    wake: Arc<Notify>,
    retry: RetryPolicy,
    bot: Option<Orchestrator>,
    lease: Duration,
}

impl InboxProcessor {
    /// A processor for `store`, woken through `wake` when a new delivery is stored; events
    /// go to `bot` (without one, as when no GitHub credentials are configured, they are
    /// only logged).
    pub fn new(
        store: Store,
        wake: Arc<Notify>,
        retry: RetryPolicy,
        bot: Option<Orchestrator>,
    ) -> Self {
        Self {
            store,
            wake,
            retry,
            bot,
            lease: LEASE,
        }
    }

    /// The same processor with claims held for `lease` (`storage.lease_secs`).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// Processes deliveries until `shutdown` turns true; the round in progress is finished.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            // With several replicas, each acts on the installations whose lease it holds
            // (shared out evenly, rebalanced as replicas come and go).
            if let Some(bot) = &self.bot
                && let Err(err) = bot.balance().await
            {
                error!(error = %err, "balancing the installation leases failed; trying again shortly");
            }
            let mut handled = 0;
            match self.round().await {
                Ok(count) => handled = count,
                Err(err) => error!(error = %err, "reading the inbox failed; trying again shortly"),
            }
            if handled >= BURST {
                tokio::select! {
                    () = tokio::time::sleep(GATHER) => {}
                    _ = shutdown.changed() => {}
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One processing round.
    async fn round(&self) -> Result<usize, StoreError> {
        // Effects left in the outbox (by a crash, a retry, or a drain that gave way to
        // deliveries), then the deliveries; the drain gives way to deliveries in turn.
        if let Some(bot) = &self.bot {
            bot.drain().await?;
        }
        self.drain().await
    }

    /// Processes every delivery that is due now; returns how many were handled. Deliveries
    /// stored meanwhile are left to the next round once a claim found fewer than a batch.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut handled = 0;
        loop {
            // Only the deliveries of the installations this replica acts on; without a
            // bot (no credentials) every replica only records them, so any may.
            let only = self.bot.as_ref().and_then(|bot| bot.scope().ids());
            let claimed = self
                .store
                .claim_deliveries_of(
                    CLAIM_BATCH,
                    now_millis(),
                    self.lease.as_millis() as i64,
                    only.as_deref(),
                )
                .await?;
            if claimed.is_empty() {
                break;
            }
            let mut outcomes = Vec::with_capacity(claimed.len());
            // The events the bot acts on, all of them in one step (one commit).
            let mut events = Vec::new();
            for delivery in &claimed {
                let span = info_span!(
                    "delivery",
                    id = %delivery.id,
                    event = %delivery.event,
                    repo = delivery.repository.as_deref().unwrap_or("-"),
                    issue = tracing::field::Empty,
                );
                match span.in_scope(|| self.decode(delivery)) {
                    Ok(event) if self.bot.is_some() => events.push((delivery, event, span)),
                    Ok(_) => settle(&mut outcomes, delivery, DeliveryOutcome::Processed),
                    Err(outcome) => settle(&mut outcomes, delivery, outcome),
                }
            }
            if let Some(bot) = &self.bot
                && !events.is_empty()
            {
                let mut events = events.into_iter().peekable();
                while events.peek().is_some() {
                    let (claims, batch): (Vec<_>, Vec<_>) = events
                        .by_ref()
                        .take(STEP_BATCH)
                        .map(|(delivery, event, span)| (delivery, (delivery.seq, event, span)))
                        .unzip();
                    let results = bot.handle_deliveries(batch).await;
                    for (delivery, result) in claims.into_iter().zip(results) {
                        match result {
                            // Committed as processed with the decisions it led to.
                            Ok(()) => record_outcome(delivery, &DeliveryOutcome::Processed),
                            Err(err) => {
                                settle(&mut outcomes, delivery, self.failure(delivery, err))
                            }
                        }
                    }
                }
            }
            self.store
                .finish_deliveries(&outcomes, now_millis())
                .await?;
            handled += claimed.len();
            if claimed.len() < CLAIM_BATCH as usize {
                break;
            }
        }
        self.report_inbox().await;
        Ok(handled)
    }

    /// Decodes one delivery: the event to act on, or the outcome it ends with at once
    /// (ignored, or failed to decode).
    fn decode(&self, delivery: &ClaimedDelivery) -> Result<DomainEvent, DeliveryOutcome> {
        match events::decode(&delivery.event, delivery.action.as_deref(), &delivery.body) {
            Ok(Decoded::Event(event)) => {
                if let Some(issue) = event.issue() {
                    tracing::Span::current().record("issue", tracing::field::display(issue));
                }
                // An absent installation leaves the field out rather than printing `None`.
                info!(event = %event.summary(), installation = event.installation.map(|i| i.0), "event");
                Ok(*event)
            }
            Ok(Decoded::Ignored(why)) => {
                debug!(
                    action = delivery.action.as_deref().unwrap_or("-"),
                    why, "ignored"
                );
                Err(DeliveryOutcome::Ignored)
            }
            Err(err) => Err(self.failure(delivery, err.to_string())),
        }
    }

    fn failure(&self, delivery: &ClaimedDelivery, error: String) -> DeliveryOutcome {
        let attempts_made = delivery.attempts + 1;
        if attempts_made >= self.retry.max_attempts {
            error!(%error, attempts = attempts_made, "delivery failed for the last time; parked as failed");
            DeliveryOutcome::Failed { error }
        } else {
            let delay = self.retry.delay_after(attempts_made);
            warn!(%error, attempts = attempts_made, retry_in_secs = delay.as_secs(), "delivery failed; will retry");
            DeliveryOutcome::Retry {
                error,
                next_attempt_at: now_millis() + delay.as_millis() as i64,
            }
        }
    }

    async fn report_inbox(&self) {
        match self.store.inbox_counts().await {
            Ok(counts) => {
                metrics::gauge!(names::INBOX_DEPTH).set(counts.pending as f64);
                metrics::gauge!(names::INBOX_FAILED).set(counts.failed as f64);
                let age = counts
                    .oldest_pending_at
                    .map_or(0, |at| (now_millis() - at).max(0));
                metrics::gauge!(names::INBOX_OLDEST_AGE).set(age as f64 / 1000.0);
            }
            Err(err) => warn!(error = %err, "counting the inbox failed"),
        }
    }
}

/// Counts `outcome` and keeps it for the store to record with the others of the batch.
fn settle(
    outcomes: &mut Vec<(i64, DeliveryOutcome)>,
    delivery: &ClaimedDelivery,
    outcome: DeliveryOutcome,
) {
    record_outcome(delivery, &outcome);
    outcomes.push((delivery.seq, outcome));
}

fn record_outcome(delivery: &ClaimedDelivery, outcome: &DeliveryOutcome) {
    let label = match outcome {
        DeliveryOutcome::Processed => "processed",
        DeliveryOutcome::Ignored => "ignored",
        DeliveryOutcome::Retry { .. } => "retry",
        DeliveryOutcome::Failed { .. } => "failed",
    };
    metrics::counter!(names::DELIVERIES_PROCESSED, "event" => delivery.event.clone(), "outcome" => label)
        .increment(1);
    let waited_ms = (now_millis() - delivery.received_at).max(0);
    metrics::histogram!(names::PROCESSING_LATENCY, "event" => delivery.event.clone())
        .record(waited_ms as f64 / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(10),
        };
        let delays: Vec<_> = (1..=5).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 10, 10]);
    }
}
