//! The loop that joins the engine and the effects through the store's outbox:
//!
//! ```text
//! deliveries / tick / reconcile ─▶ Engine ─▶ one transaction: delivery marks,
//!        ▲                                     state changes, decisions (outbox)
//!        └── Outcome ◀── Effects::execute ◀── pending outbox entries, oldest first
//! ```
//!
//! Every input is committed with the decisions it produced before any of them is carried
//! out (a batch of deliveries in one step); effects are carried out in rounds, and a
//! round's completions are committed with what the engine made of their results and the
//! entries that follow. A crash neither loses a pending entry nor repeats one whose round
//! was committed; an effect of an interrupted round runs again, and every effect is safe to
//! run twice (see `crate::effects`). Effects on one issue run in the order they were
//! decided; one that fails is tried again with backoff, and given up after the retry
//! policy's attempts (or at once when GitHub refuses for good).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures_util::stream::{self, StreamExt};
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::agents::Agents;
use crate::clock::now_millis;
use crate::domain::{InstallationId, IssueRef};
use crate::effects::Effects;
use crate::engine::machine::{
    AfterConfig, Decision, Engine, EngineSettings, Input, Outcome, TOKEN_MODE,
};
use crate::events::DomainEvent;
use crate::github::GitHubApp;
use crate::ownership::{Ownership, Scope};
use crate::processor::RetryPolicy;
use crate::store::{DeliveryOutcome, OutboxEntry, Step, Store, StoreError};
use crate::telemetry::names;

/// Inputs one delivery may lead to before its reads are settled (a guard against an
/// engine that keeps asking).
const READS_PER_DELIVERY: usize = 10_000;
/// Outbox entries read at once.
const OUTBOX_BATCH: u32 = 256;
/// Effects of different issues carried out at once within a round: far below GitHub's
/// secondary limit on concurrent requests (100), enough that one issue's status comment,
/// labels and project update do not hold up another's launch.
const CONCURRENT_EFFECTS: usize = 8;
/// Effects carried out in one drain at most, so that a loop of decisions cannot hold the
/// lock forever (the rest waits for the next round).
const DRAIN_LIMIT: usize = 20_000;

/// Why a periodic job failed; it runs again at the next interval.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// GitHub failed while listing installations or repositories.
    #[error("GitHub: {0}")]
    Github(#[from] crate::github::GithubError),
}

/// The engine, its effects and the store, behind one lock. Cheap to clone.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Nothing is pending in the outbox (known after a drain that found none, until the
    /// next commit of decisions or a reload): a drain then reads nothing.
    outbox_empty: AtomicBool,
    effects: Effects,
    engine: Mutex<Engine>,
    /// How often, and how long apart, a failing effect is tried.
    retry: RetryPolicy,
    /// The installations this replica acts on.
    ownership: Ownership,
    /// The generation of the ownership the engine's state was loaded for (`u64::MAX`:
    /// not loaded yet).
    loaded_for: AtomicU64,
}

impl Orchestrator {
    /// An orchestrator over `store`, acting through `github` and (when configured)
    /// `agents`. Call [`Orchestrator::load`] before use.
    pub fn new(
        mut settings: EngineSettings,
        store: Store,
        github: Arc<GitHubApp>,
        agents: Option<Agents>,
        retry: RetryPolicy,
        ownership: Ownership,
    ) -> Self {
        settings.agents = agents.is_some();
        settings.app_mode = github.is_app();
        let effects = Effects::new(store.clone(), github, agents.map(Arc::new));
        Self {
            inner: Arc::new(Inner {
                store,
                outbox_empty: AtomicBool::new(false),
                effects,
                engine: Mutex::new(Engine::new(settings)),
                retry,
                ownership,
                loaded_for: AtomicU64::new(u64::MAX),
            }),
        }
    }

    /// Rebuilds the engine's state from the store for the installations this replica acts
    /// on (at start-up, and whenever that set changes).
    pub async fn load(&self) -> Result<(), StoreError> {
        let mut engine = self.inner.engine.lock().await;
        self.inner.loaded_for.store(u64::MAX, Ordering::Release);
        self.sync(&mut engine).await.map(drop)
    }

    /// The installations this replica acts on; the engine's state is rebuilt first if that
    /// set changed since it was loaded (installations taken up are read from the store,
    /// those given up forgotten).
    async fn sync(&self, engine: &mut Engine) -> Result<Scope, StoreError> {
        let (scope, generation) = self.inner.ownership.scope();
        if self.inner.loaded_for.load(Ordering::Acquire) == generation {
            return Ok(scope);
        }
        let store = &self.inner.store;
        let owned = |installation: &InstallationId| scope.contains(*installation);
        let mut issues = store.issues().await?;
        issues.retain(|(installation, _, _)| owned(installation));
        let mut runs = store.all_runs().await?;
        runs.retain(|run| owned(&run.installation));
        let mut settings = store.settings_with_prefix("paused:").await?;
        settings.extend(store.settings_with_prefix("suspended:").await?);
        let count = issues.len();
        engine.restore(issues, runs, settings);
        // Another replica may have left entries in the outbox.
        self.inner.outbox_empty.store(false, Ordering::Release);
        self.inner.loaded_for.store(generation, Ordering::Release);
        tracing::debug!(
            issues = count,
            "the engine's state was rebuilt from the store"
        );
        report_states(engine);
        Ok(scope)
    }

    /// One balancing round of the installation leases (several replicas on PostgreSQL),
    /// under the engine's lock so that nothing is acted on while the set changes.
    pub async fn balance(&self) -> Result<(), StoreError> {
        let mut engine = self.inner.engine.lock().await;
        self.inner.ownership.balance().await?;
        self.sync(&mut engine).await.map(drop)
    }

    /// The installations this replica acts on now.
    pub fn scope(&self) -> Scope {
        self.inner.ownership.scope().0
    }

    /// The ownership of installations this replica acts under.
    pub fn ownership(&self) -> &Ownership {
        &self.inner.ownership
    }

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
        if let Err(err) = self.drain_locked(&mut engine, &scope).await {
            return deliveries.iter().map(|_| Err(err.to_string())).collect();
        }
        let mut decided = Vec::new();
        let mut processed = Vec::new();
        let mut touched = BTreeSet::new();
        let mut results = Vec::with_capacity(deliveries.len());
        for (seq, event, span) in deliveries {
            let installation = event.installation.unwrap_or(TOKEN_MODE);
            let result = if scope.contains(installation) {
                touched.insert(installation);
                self.decide(&mut engine, event, &mut decided)
                    .instrument(span)
                    .await
            } else {
                // Claimed before its installation's lease went to another replica.
                Err("another replica acts on this installation now".to_owned())
            };
            if result.is_ok() {
                processed.push((seq, DeliveryOutcome::Processed));
            }
            results.push(result);
        }
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
        if let Err(err) = self.drain_locked(&mut engine, &scope).await {
            tracing::warn!(error = %err, "carrying out the decisions failed; they wait in the outbox");
        }
        report_states(&engine);
        results
    }

    /// What the engine decides on one delivery: its reads are made and their answers fed
    /// back until only acts are left, settled once at the end; the acts join `decided`
    /// only when the whole delivery went through.
    async fn decide(
        &self,
        engine: &mut Engine,
        event: DomainEvent,
        decided: &mut Vec<Decision>,
    ) -> Result<(), String> {
        let mut inputs = VecDeque::from([Input::Delivery(Box::new(event.clone()))]);
        let mut acts = Vec::new();
        let mut handled = 0;
        loop {
            while let Some(input) = inputs.pop_front() {
                handled += 1;
                if handled > READS_PER_DELIVERY {
                    return Err(
                        "the engine kept asking to read; the delivery is tried again".into(),
                    );
                }
                let decisions = engine.handle_unsettled(input, now_millis());
                self.read(decisions, &event, &mut inputs, &mut acts).await?;
            }
            let settled = engine.settle(now_millis());
            self.read(settled, &event, &mut inputs, &mut acts).await?;
            if inputs.is_empty() {
                break;
            }
        }
        decided.extend(acts);
        Ok(())
    }

    /// Makes the reads among `decisions` and queues their answers as `inputs`; the acts
    /// go to `acts`, and so does a read that failed (the outbox tries it again).
    async fn read(
        &self,
        decisions: Vec<Decision>,
        event: &DomainEvent,
        inputs: &mut VecDeque<Input>,
        acts: &mut Vec<Decision>,
    ) -> Result<(), String> {
        for decision in decisions {
            if !decision.is_read() {
                acts.push(decision);
                continue;
            }
            // The repository's settings are needed first: read, then the event again.
            let retry = matches!(
                decision,
                Decision::ReadRepoConfig {
                    then: AfterConfig::Retry,
                    ..
                }
            );
            match self.inner.effects.execute(&decision, 0, now_millis()).await {
                Ok(outcomes) => {
                    inputs.extend(outcomes.into_iter().map(Input::Result));
                    if retry {
                        inputs.push_back(Input::Delivery(Box::new(event.clone())));
                    }
                }
                Err(err) if retry => {
                    return Err(format!(
                        "the repository's configuration file could not be read yet: {err}"
                    ));
                }
                Err(err) => {
                    tracing::warn!(effect = decision.name(), error = %err, "a read failed; it waits in the outbox");
                    acts.push(decision);
                }
            }
        }
        Ok(())
    }

    /// Settles launches a crash interrupted, follows running agents, acts on the runs
    /// that ended, and carries out what is due in the outbox.
    pub async fn tick(&self) -> Result<(), OrchestratorError> {
        let mut engine = self.inner.engine.lock().await;
        let scope = self.sync(&mut engine).await?;
        self.tick_locked(&mut engine, &scope).await
    }

    async fn tick_locked(
        &self,
        engine: &mut Engine,
        scope: &Scope,
    ) -> Result<(), OrchestratorError> {
        let (recovered, ended) = match self.inner.effects.agents() {
            Some(agents) => {
                let now = now_millis();
                let mut recovered = Vec::new();
                for (issue, outcome) in agents.recover(now, scope).await? {
                    tracing::info!(%issue, %outcome, "an interrupted launch was settled");
                    recovered.extend(self.inner.store.runs_of(&issue).await?.pop());
                }
                let ended = agents.poll(now, scope).await?;
                (recovered, ended.into_iter().map(|e| e.record).collect())
            }
            None => (Vec::new(), Vec::new()),
        };
        let touched = recovered
            .iter()
            .chain(&ended)
            .map(|run| run.installation)
            .collect();
        let decisions = engine.handle(Input::RunsFollowed { recovered, ended }, now_millis());
        self.commit(engine, Vec::new(), Vec::new(), decisions, touched)
            .await?;
        self.drain_locked(engine, scope).await?;
        report_states(engine);
        Ok(())
    }

    /// Heals what lost webhooks or downtime left behind (see the engine's reconciler):
    /// runs are followed first, then every repository of every installation is listed.
    /// With several replicas, each reconciles the installations it acts on; every
    /// installation listed becomes known, so that some replica takes it.
    pub async fn reconcile(&self) -> Result<(), OrchestratorError> {
        let mut engine = self.inner.engine.lock().await;
        let scope = self.sync(&mut engine).await?;
        // Runs first: an issue closed while its run finished is not taken for a cancel.
        self.tick_locked(&mut engine, &scope).await?;
        let github = self.inner.effects.github();
        let targets = if github.is_app() {
            let installations = github.installations().await?;
            self.inner.store.know_installations(&installations).await?;
            let mut targets = Vec::new();
            for id in installations.into_iter().filter(|id| scope.contains(*id)) {
                match self.repositories(id).await {
                    Ok(repos) => targets.push((id, repos)),
                    // One installation's trouble does not stop the others.
                    Err(err) => {
                        tracing::warn!(installation = %id, error = %err, "listing the installation's repositories failed; trying again next time")
                    }
                }
            }
            Some(targets)
        } else {
            self.inner.store.know_installations(&[TOKEN_MODE]).await?;
            if !scope.contains(TOKEN_MODE) {
                return Ok(());
            }
            None
        };
        let touched = match &targets {
            Some(targets) => targets.iter().map(|(id, _)| *id).collect(),
            None => BTreeSet::from([TOKEN_MODE]),
        };
        let decisions = engine.handle(Input::Reconcile { targets }, now_millis());
        self.commit(&mut engine, Vec::new(), Vec::new(), decisions, touched)
            .await?;
        self.drain_locked(&mut engine, &scope).await?;
        report_states(&engine);
        Ok(())
    }

    async fn repositories(
        &self,
        id: InstallationId,
    ) -> Result<Vec<crate::domain::RepoName>, crate::github::GithubError> {
        let client = self.inner.effects.github().for_installation(id).await?;
        client.installation_repositories().await
    }

    /// Carries out what is due in the outbox (after a crash, or effects that failed).
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut engine = self.inner.engine.lock().await;
        let scope = self.sync(&mut engine).await?;
        let done = self.drain_locked(&mut engine, &scope).await?;
        if done > 0 {
            report_states(&engine);
        }
        Ok(done)
    }

    /// Commits one step: delivery marks or effect completions, the engine's changes, and
    /// `decisions` into the outbox. With several replicas, only while this one holds the
    /// leases of every installation the step acts on (`touched`, and those of the changes
    /// and decisions); a step refused, or lost to a failure, leaves the engine ahead of the
    /// store, so its state is rebuilt before the next use.
    async fn commit(
        &self,
        engine: &mut Engine,
        deliveries: Vec<(i64, DeliveryOutcome)>,
        effects_done: Vec<i64>,
        decisions: Vec<Decision>,
        mut touched: BTreeSet<InstallationId>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let committed = self
            .commit_step(engine, deliveries, effects_done, decisions, &mut touched)
            .await;
        if committed.is_err() {
            self.inner.loaded_for.store(u64::MAX, Ordering::Release);
        }
        committed
    }

    async fn commit_step(
        &self,
        engine: &mut Engine,
        deliveries: Vec<(i64, DeliveryOutcome)>,
        effects_done: Vec<i64>,
        decisions: Vec<Decision>,
        touched: &mut BTreeSet<InstallationId>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let changes = engine.take_changes();
        for (key, value) in &changes.settings {
            if let Some(id) = key.strip_prefix("suspended:") {
                metrics::gauge!(names::INSTALLATION_SUSPENDED, "installation" => id.to_owned())
                    .set(if value.is_some() { 1.0 } else { 0.0 });
            }
        }
        let step = Step {
            deliveries,
            effects_done,
            issues: changes.issues,
            forgotten: changes.forgotten,
            settings: changes.settings,
            decisions: decisions
                .iter()
                .map(|d| {
                    let json = serde_json::to_string(d).expect("decisions serialise");
                    (d.installation(), json)
                })
                .collect(),
        };
        let now = now_millis();
        touched.extend(step.issues.iter().map(|(installation, _, _)| *installation));
        touched.extend(step.decisions.iter().map(|(installation, _)| *installation));
        let touched: Vec<InstallationId> = touched.iter().copied().collect();
        let ownership = &self.inner.ownership;
        let fence = ownership
            .is_shared()
            .then_some((ownership.replica(), touched.as_slice()));
        let ids = self
            .inner
            .store
            .commit_step_fenced(&step, now, fence)
            .await?;
        if !ids.is_empty() {
            self.inner.outbox_empty.store(false, Ordering::Release);
        }
        // The new entries as the store holds them, so that a drain under way carries them
        // out without reading them back.
        Ok(ids
            .into_iter()
            .zip(step.decisions)
            .map(|(id, (installation, decision))| OutboxEntry {
                id,
                installation,
                decision,
                attempts: 0,
                created_at: now,
                next_attempt_at: now,
            })
            .collect())
    }

    /// Carries out due outbox entries, oldest first, until none is left that may run now.
    /// An issue's entries wait while an earlier one of the same issue is not done.
    async fn drain_locked(&self, engine: &mut Engine, scope: &Scope) -> Result<usize, StoreError> {
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

/// Sets the gauges of managed issues by state and of latest runs by state (every state,
/// so that one whose last issue moved on drops to zero).
fn report_states(engine: &Engine) {
    let (issues, runs) = engine.counts();
    for (state, count) in issues {
        metrics::gauge!(names::ISSUES, "state" => state.name()).set(count as f64);
    }
    for (state, count) in runs {
        metrics::gauge!(names::RUNS, "state" => state.as_str()).set(count as f64);
    }
}
