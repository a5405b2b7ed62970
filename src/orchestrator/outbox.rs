//! Carrying out the outbox: due entries in rounds, different issues' effects side by side,
//! each round's completions committed with what the engine made of them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use futures_util::stream::{self, StreamExt};

use super::{CONCURRENT_EFFECTS, DRAIN_LIMIT, OUTBOX_BATCH, Orchestrator};
use crate::clock::now_millis;
use crate::domain::IssueRef;
use crate::engine::machine::{Decision, Engine, Input, Outcome};
use crate::ownership::Scope;
use crate::store::{OutboxEntry, StoreError};

/// Whether a drain stops, after a round, for deliveries that are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GiveWay {
    /// It does: the rest of the outbox waits for the next drain.
    ToDeliveries,
    /// It goes on until the outbox is empty (or only retries are left).
    Never,
}

impl Orchestrator {
    /// Carries out due outbox entries, oldest first, until none is left that may run now
    /// (or, giving way, until a delivery is due after at least one round).
    /// An issue's entries wait while an earlier one of the same issue is not done.
    pub(super) async fn drain_locked(
        &self,
        engine: &mut Engine,
        scope: &Scope,
        give_way: GiveWay,
    ) -> Result<usize, StoreError> {
        let store = &self.inner.store;
        let mut done = 0;
        loop {
            if self.inner.outbox_empty.load(Ordering::Acquire) {
                return Ok(done);
            }
            let now = now_millis();
            // Every pending entry, due or waiting for a retry: one read per pass.
            let (due, later): (Vec<OutboxEntry>, Vec<OutboxEntry>) = store
                .pending_effects_of(OUTBOX_BATCH, i64::MAX, scope.ids().as_deref())
                .await?
                .into_iter()
                .partition(|entry| entry.next_attempt_at <= now);
            if due.is_empty() || done >= DRAIN_LIMIT {
                if due.is_empty() && later.is_empty() {
                    self.inner.outbox_empty.store(true, Ordering::Release);
                }
                return Ok(done);
            }
            // Each issue's earliest entry that waits for a retry: later ones wait with it.
            let mut waiting: BTreeMap<IssueRef, i64> = BTreeMap::new();
            for entry in &later {
                if let Some(issue) = decision_of(entry).and_then(|d| d.issue().cloned()) {
                    let first = waiting.entry(issue).or_insert(entry.id);
                    *first = (*first).min(entry.id);
                }
            }
            let mut round = due;
            let mut progressed = false;
            while !round.is_empty() && done < DRAIN_LIMIT {
                let (finished, follow) = self
                    .carry_out_round(engine, round, &mut waiting, DRAIN_LIMIT - done)
                    .await?;
                progressed |= finished > 0;
                done += finished;
                round = follow;
                // Deliveries waiting are decided before the rest (their launches go first
                // in the next round); what is left stays in the outbox for later.
                if give_way == GiveWay::ToDeliveries
                    && done > 0
                    && store
                        .deliveries_due(now_millis(), scope.ids().as_deref())
                        .await?
                {
                    return Ok(done);
                }
            }
            if !progressed {
                return Ok(done);
            }
        }
    }

    /// Carries out one round of entries (at most `limit`) and commits their completions,
    /// what the engine made of their results (settled once, in the order the entries were
    /// decided) and the entries that follow, in one step. An issue's entries run in order,
    /// and one that fails holds back the rest of that issue's; different issues' run side
    /// by side, launches started first, so that a launch never waits behind the status
    /// comments, labels and project updates of other issues. A crash before the commit
    /// carries the round out again; every effect is safe to repeat (see
    /// [`Effects::execute`]). Returns how many were done, and the new entries: the next
    /// round.
    async fn carry_out_round(
        &self,
        engine: &mut Engine,
        round: Vec<OutboxEntry>,
        waiting: &mut BTreeMap<IssueRef, i64>,
        limit: usize,
    ) -> Result<(usize, Vec<OutboxEntry>), StoreError> {
        let mut chains: Vec<Vec<(OutboxEntry, Decision)>> = Vec::new();
        let mut chain_of: HashMap<Option<IssueRef>, usize> = HashMap::new();
        let mut touched = BTreeSet::new();
        for entry in round {
            if chains.iter().map(Vec::len).sum::<usize>() >= limit {
                break;
            }
            let Some(decision) = decision_of(&entry) else {
                self.inner
                    .store
                    .fail_effect(entry.id, "unreadable decision", now_millis())
                    .await?;
                continue;
            };
            if let Some(issue) = decision.issue()
                && waiting.get(issue).is_some_and(|first| *first < entry.id)
            {
                continue;
            }
            // A lease not renewed in time: the installation's effects are left to the
            // replica that takes it over.
            if !self.inner.ownership.holds(entry.installation) {
                continue;
            }
            touched.insert(entry.installation);
            let chain = *chain_of
                .entry(decision.issue().cloned())
                .or_insert_with(|| {
                    chains.push(Vec::new());
                    chains.len() - 1
                });
            chains[chain].push((entry, decision));
        }
        chains.sort_by_key(|chain| !matches!(chain[0].1, Decision::Launch { .. }));
        let mut carried: Vec<(i64, Option<IssueRef>, Carried)> = Vec::new();
        let mut chains = stream::iter(chains)
            .map(|chain| self.carry_out_chain(chain))
            .buffer_unordered(CONCURRENT_EFFECTS);
        while let Some(results) = chains.next().await {
            for (id, issue, result) in results {
                carried.push((id, issue, result?));
            }
        }
        carried.sort_by_key(|(id, _, _)| *id);
        let mut effects_done = Vec::new();
        let mut decisions = Vec::new();
        for (id, issue, carried) in carried {
            let outcomes = match carried {
                Carried::Done(outcomes) => {
                    effects_done.push(id);
                    outcomes
                }
                Carried::Failed(given_up) => {
                    if let Some(issue) = issue {
                        waiting.entry(issue).or_insert(id);
                    }
                    given_up.into_iter().map(|outcome| *outcome).collect()
                }
            };
            for outcome in outcomes {
                decisions.extend(engine.handle_unsettled(Input::Result(outcome), now_millis()));
            }
        }
        decisions.extend(engine.settle(now_millis()));
        let finished = effects_done.len();
        let follow = self
            .commit(engine, Vec::new(), effects_done, decisions, touched)
            .await?;
        Ok((finished, follow))
    }

    /// Carries out one issue's entries of a round in order, stopping at the first that
    /// fails (the rest wait for it); entries of no issue never hold each other back.
    async fn carry_out_chain(
        &self,
        chain: Vec<(OutboxEntry, Decision)>,
    ) -> Vec<(i64, Option<IssueRef>, Result<Carried, StoreError>)> {
        let mut results = Vec::with_capacity(chain.len());
        for (entry, decision) in chain {
            let result = self.carry_out(&entry, &decision).await;
            let issue = decision.issue().cloned();
            let holds_back = issue.is_some() && !matches!(result, Ok(Carried::Done(_)));
            results.push((entry.id, issue, result));
            if holds_back {
                break;
            }
        }
        results
    }

    /// Carries out one entry. On failure it waits for a retry, or is given up with what
    /// the engine must learn of that.
    async fn carry_out(
        &self,
        entry: &OutboxEntry,
        decision: &Decision,
    ) -> Result<Carried, StoreError> {
        let store = &self.inner.store;
        let mut attempt = entry.attempts;
        if attempt == 0 && matches!(decision, Decision::Reply { .. }) {
            // A reply is the one effect GitHub cannot tell apart from a new one: the start
            // is recorded, so that a crash inside it makes the next try look for the
            // comment before posting it again.
            store
                .retry_effect(entry.id, "started", now_millis())
                .await?;
            attempt = 1;
        }
        match self
            .inner
            .effects
            .execute(decision, entry.attempts, now_millis())
            .await
        {
            Ok(outcomes) => Ok(Carried::Done(outcomes)),
            Err(err) => {
                let attempts = attempt + 1;
                if err.is_permanent() || attempts >= self.inner.retry.max_attempts {
                    tracing::warn!(effect = decision.name(), error = %err, attempts, "an effect failed for the last time; given up");
                    store
                        .fail_effect(entry.id, &err.to_string(), now_millis())
                        .await?;
                    Ok(Carried::Failed(given_up(decision).map(Box::new)))
                } else {
                    let delay = self.inner.retry.delay_after(attempts).as_millis() as i64;
                    tracing::warn!(effect = decision.name(), error = %err, attempts, retry_in_ms = delay, "an effect failed; trying again later");
                    store
                        .retry_effect(entry.id, &err.to_string(), now_millis() + delay)
                        .await?;
                    Ok(Carried::Failed(None))
                }
            }
        }
    }
}

/// What came of carrying out an outbox entry.
enum Carried {
    /// Done, with its results.
    Done(Vec<Outcome>),
    /// Failed: it waits for a retry, or was given up (with what the engine must learn).
    Failed(Option<Box<Outcome>>),
}

/// What the engine must learn when an effect is given up, so that it does not wait for it
/// forever (a merge attempt that never answers would never be tried again).
fn given_up(decision: &Decision) -> Option<Outcome> {
    match decision {
        // Not launched after all: the issue is picked again when it is next ready.
        Decision::Launch {
            installation,
            issue,
            ..
        } => Some(Outcome::Launched {
            installation: *installation,
            issue: issue.clone(),
            latest: None,
            quota_exhausted: None,
        }),
        // Not written (or not removed) after all; a write is tried again later.
        Decision::SyncNativeDependency {
            installation,
            issue,
            blocker,
            add,
        } => Some(Outcome::NativeDependencySynced {
            installation: *installation,
            issue: issue.clone(),
            blocker: blocker.clone(),
            add: *add,
            failure: Some("GitHub kept failing".into()),
            lasting: false,
        }),
        Decision::TryMerge { issue, .. } => Some(Outcome::NotMergeable {
            issue: issue.clone(),
        }),
        // Its changes are taken as not made, and it is decided again at the next tick.
        Decision::PublishStatus {
            installation,
            issue,
            add_label,
            remove_label,
            project,
            ..
        } => Some(Outcome::StatusNotPublished {
            installation: *installation,
            issue: issue.clone(),
            add_label: add_label.clone(),
            remove_label: remove_label.clone(),
            project: project.is_some(),
        }),
        // A sub-issue read given up on leaves the parent waiting; the reconciler reads
        // it again (`Engine::recount`).
        _ => None,
    }
}

fn decision_of(entry: &OutboxEntry) -> Option<Decision> {
    match serde_json::from_str(&entry.decision) {
        Ok(decision) => Some(decision),
        Err(err) => {
            tracing::error!(id = entry.id, error = %err, "an outbox entry cannot be read");
            None
        }
    }
}
