//! Deciding on a batch of claimed deliveries. The engine handles each delivery and the
//! answers to the reads it asks for; the reads of different deliveries are made side by
//! side, so that a burst costs a few round trips to GitHub rather than a few per delivery.
//! A delivery's own inputs stay in order, and so do the deliveries of one issue (and an
//! event of no issue waits for everything before it, and everything after it for it).
//! The batch is settled (launches, statuses) once nothing is left to read.

use std::collections::VecDeque;

use futures_util::stream::{self, StreamExt};
use tracing::Instrument;

use super::outbox::GiveWay;
use super::{CONCURRENT_EFFECTS, Orchestrator, READS_PER_DELIVERY};
use crate::clock::now_millis;
use crate::domain::{InstallationId, IssueRef};
use crate::engine::machine::{AfterConfig, Decision, Engine, Input, TOKEN_MODE};
use crate::events::DomainEvent;
use crate::store::DeliveryOutcome;

/// One delivery of the batch while the engine decides on it.
struct Deciding {
    seq: i64,
    event: DomainEvent,
    span: tracing::Span,
    /// What the engine is to handle next: the delivery, then the answers to its reads.
    inputs: VecDeque<Input>,
    /// The acts it led to; committed only if the delivery goes through.
    acts: Vec<Decision>,
    /// Inputs handled so far (a guard against an engine that keeps asking).
    handled: usize,
    /// It asked for reads in this pass, not answered yet.
    reading: bool,
    /// Why it did not go through.
    failed: Option<String>,
}

impl Deciding {
    fn issue(&self) -> Option<&IssueRef> {
        self.event.issue()
    }

    fn settled(&self) -> bool {
        self.failed.is_some() || (self.inputs.is_empty() && !self.reading)
    }

    /// Whether `self`, earlier in the batch, holds back `later`: the same issue, or an
    /// event of no issue on either side.
    fn holds_back(&self, later: &Deciding) -> bool {
        !self.settled()
            && match (self.issue(), later.issue()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// Whose read it is: a delivery's (its index in the batch) or the batch's settling.
type Asker = Option<usize>;

impl Orchestrator {
    /// Acts on a batch of claimed deliveries, each with the span its log lines belong to.
    /// The reads the engine asks for are made at once (made again if a crash comes before
    /// the commit, which is harmless); the decisions that act are committed with the
    /// deliveries' `processed` marks in one transaction, then carried out. One result per
    /// delivery, in order: `Ok` when it is committed as processed, else why not (it is
    /// tried again with the inbox's retry policy).
    pub async fn handle_deliveries(
        &self,
        deliveries: Vec<(i64, DomainEvent, tracing::Span)>,
    ) -> Vec<Result<(), String>> {
        let mut engine = self.inner.engine.lock().await;
        let scope = match self.sync(&mut engine).await {
            Ok(scope) => scope,
            Err(err) => return deliveries.iter().map(|_| Err(err.to_string())).collect(),
        };
        let mut batch: Vec<Deciding> = deliveries
            .into_iter()
            .map(|(seq, event, span)| {
                let installation = event.installation.unwrap_or(TOKEN_MODE);
                Deciding {
                    seq,
                    inputs: VecDeque::from([Input::Delivery(Box::new(event.clone()))]),
                    event,
                    span,
                    acts: Vec::new(),
                    handled: 0,
                    reading: false,
                    // Claimed before its installation's lease went to another replica.
                    failed: (!scope.contains(installation))
                        .then(|| "another replica acts on this installation now".to_owned()),
                }
            })
            .collect();
        let touched = batch
            .iter()
            .filter(|d| d.failed.is_none())
            .map(|d| d.event.installation.unwrap_or(TOKEN_MODE))
            .collect::<std::collections::BTreeSet<InstallationId>>();
        let settling = self.decide_batch(&mut engine, &mut batch).await;
        let mut decided = Vec::new();
        let mut processed = Vec::new();
        let mut results = Vec::with_capacity(batch.len());
        for deciding in batch {
            match deciding.failed {
                Some(why) => results.push(Err(why)),
                None => {
                    decided.extend(deciding.acts);
                    processed.push((deciding.seq, DeliveryOutcome::Processed));
                    results.push(Ok(()));
                }
            }
        }
        // What settling decided comes after what each delivery decided, as when every
        // delivery was settled on its own.
        decided.extend(settling);
        if let Err(err) = self
            .commit(&mut engine, processed, Vec::new(), decided, touched)
            .await
        {
            let err = err.to_string();
            return results
                .into_iter()
                .map(|result| result.and(Err(err.clone())))
                .collect();
        }
        // The deliveries are processed (committed above); what fails to run now is in the
        // outbox and runs in the next round.
        if let Err(err) = self
            .drain_locked(&mut engine, &scope, GiveWay::ToDeliveries)
            .await
        {
            tracing::warn!(error = %err, "carrying out the decisions failed; they wait in the outbox");
        }
        super::report_states(&engine);
        results
    }

    /// Lets the engine handle every delivery of `batch` and the answers to its reads, the
    /// reads of each pass made side by side, then settles the batch; the acts settling led
    /// to are returned (each delivery keeps its own).
    async fn decide_batch(&self, engine: &mut Engine, batch: &mut [Deciding]) -> Vec<Decision> {
        let mut settling_inputs: VecDeque<Input> = VecDeque::new();
        let mut settling_acts = Vec::new();
        let mut passes = 0;
        loop {
            passes += 1;
            let mut reads: Vec<(Asker, Decision)> = Vec::new();
            for input in settling_inputs.drain(..) {
                for decision in engine.handle_unsettled(input, now_millis()) {
                    sort(None, decision, &mut reads, &mut settling_acts);
                }
            }
            for k in 0..batch.len() {
                if batch[..k]
                    .iter()
                    .any(|earlier| earlier.holds_back(&batch[k]))
                {
                    continue;
                }
                let deciding = &mut batch[k];
                let _in_its_span = deciding.span.clone().entered();
                while let Some(input) = deciding.inputs.pop_front() {
                    deciding.handled += 1;
                    if deciding.handled > READS_PER_DELIVERY {
                        deciding.failed = Some(
                            "the engine kept asking to read; the delivery is tried again".into(),
                        );
                        break;
                    }
                    for decision in engine.handle_unsettled(input, now_millis()) {
                        if decision.is_read() {
                            deciding.reading = true;
                        }
                        sort(Some(k), decision, &mut reads, &mut deciding.acts);
                    }
                }
            }
            if reads.is_empty() {
                // Nothing left to read: settled once for the whole batch.
                for decision in engine.settle(now_millis()) {
                    sort(None, decision, &mut reads, &mut settling_acts);
                }
                if reads.is_empty() || passes > READS_PER_DELIVERY {
                    return settling_acts;
                }
            }
            let spans: Vec<tracing::Span> = reads
                .iter()
                .map(|(asker, _)| {
                    asker.map_or_else(tracing::Span::current, |k| batch[k].span.clone())
                })
                .collect();
            let answers: Vec<_> = stream::iter(reads.into_iter().zip(spans).enumerate())
                .map(|(order, ((asker, decision), span))| {
                    async move {
                        let answer = self.inner.effects.execute(&decision, 0, now_millis()).await;
                        (order, asker, decision, answer)
                    }
                    .instrument(span)
                })
                .buffer_unordered(CONCURRENT_EFFECTS)
                .collect()
                .await;
            let mut answers = answers;
            answers.sort_by_key(|(order, ..)| *order);
            for deciding in batch.iter_mut() {
                deciding.reading = false;
            }
            for (_, asker, decision, answer) in answers {
                // The repository's settings were needed first: read, then the event again.
                let retry = matches!(
                    decision,
                    Decision::ReadRepoConfig {
                        then: AfterConfig::Retry,
                        ..
                    }
                );
                let deciding = asker.map(|k| &mut batch[k]);
                match (answer, deciding) {
                    (Ok(outcomes), Some(deciding)) => {
                        deciding
                            .inputs
                            .extend(outcomes.into_iter().map(Input::Result));
                        if retry {
                            let event = Box::new(deciding.event.clone());
                            deciding.inputs.push_back(Input::Delivery(event));
                        }
                    }
                    (Ok(outcomes), None) => {
                        settling_inputs.extend(outcomes.into_iter().map(Input::Result));
                    }
                    (Err(err), Some(deciding)) if retry => {
                        deciding.failed = Some(format!(
                            "the repository's configuration file could not be read yet: {err}"
                        ));
                    }
                    (Err(err), deciding) => {
                        tracing::warn!(effect = decision.name(), error = %err, "a read failed; it waits in the outbox");
                        match deciding {
                            Some(deciding) => deciding.acts.push(decision),
                            None => settling_acts.push(decision),
                        }
                    }
                }
            }
        }
    }
}

/// A read goes to `reads` (asked by `asker`), an act to `acts`.
fn sort(
    asker: Asker,
    decision: Decision,
    reads: &mut Vec<(Asker, Decision)>,
    acts: &mut Vec<Decision>,
) {
    if decision.is_read() {
        reads.push((asker, decision));
    } else {
        acts.push(decision);
    }
}
