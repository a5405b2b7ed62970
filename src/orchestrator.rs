//! The loop that joins the engine and the effects through the store's outbox:
//!
//! ```text
//! delivery / tick / reconcile ─▶ Engine::handle ─▶ one transaction: delivery mark,
//!        ▲                                          state changes, decisions (outbox)
//!        └── Outcome ◀── Effects::execute ◀── pending outbox entries, oldest first
//! ```
//!
//! Every input is committed with the decisions it produced before any of them is carried
//! out; every effect's completion is committed with what the engine made of its result. A
//! crash between two steps neither repeats a done effect nor loses a pending one: the next
//! holder of the bot lock finds the pending entries and carries them out. Effects on one
//! issue run in the order they were decided; one that fails is tried again with backoff,
//! and given up after the retry policy's attempts (or at once when GitHub refuses for
//! good).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Mutex;

use crate::agents::Agents;
use crate::clock::now_millis;
use crate::domain::{InstallationId, IssueRef};
use crate::effects::Effects;
use crate::engine::machine::{AfterConfig, Decision, Engine, EngineSettings, Input, Outcome};
use crate::events::DomainEvent;
use crate::github::GitHubApp;
use crate::processor::RetryPolicy;
use crate::store::{DeliveryOutcome, OutboxEntry, Step, Store, StoreError};
use crate::telemetry::names;

/// Inputs one delivery may lead to before its reads are settled (a guard against an
/// engine that keeps asking).
const READS_PER_DELIVERY: usize = 10_000;
/// Outbox entries read at once.
const OUTBOX_BATCH: u32 = 256;
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
            }),
        }
    }

    /// Rebuilds the engine's state from the store (at start-up, and by a replica before
    /// it processes, since another may have changed it).
    pub async fn load(&self) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let issues = store.issues().await?;
        let runs = store.all_runs().await?;
        let mut settings = store.settings_with_prefix("paused:").await?;
        settings.extend(store.settings_with_prefix("suspended:").await?);
        let count = issues.len();
        let mut engine = self.inner.engine.lock().await;
        engine.restore(issues, runs, settings);
        // Another replica may have left entries in the outbox.
        self.inner.outbox_empty.store(false, Ordering::Release);
        tracing::debug!(
            issues = count,
            "the engine's state was rebuilt from the store"
        );
        report_states(&engine);
        Ok(())
    }

    /// Acts on the delivery `seq`. The reads the engine asks for are made at once (made
    /// again if a crash comes before the commit, which is harmless); the decisions that
    /// act are committed with the delivery's `processed` mark, then carried out.
    pub async fn handle_delivery(&self, seq: i64, event: DomainEvent) -> Result<(), String> {
        let mut engine = self.inner.engine.lock().await;
        self.drain_locked(&mut engine)
            .await
            .map_err(|e| e.to_string())?;
        let delivery = || Input::Delivery(Box::new(event.clone()));
        let mut inputs = VecDeque::from([delivery()]);
        let mut decided = Vec::new();
        let mut handled = 0;
        while let Some(input) = inputs.pop_front() {
            handled += 1;
            if handled > READS_PER_DELIVERY {
                return Err("the engine kept asking to read; the delivery is tried again".into());
            }
            for decision in engine.handle(input, now_millis()) {
                if !decision.is_read() {
                    decided.push(decision);
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
                            inputs.push_back(delivery());
                        }
                    }
                    Err(err) if retry => {
                        return Err(format!(
                            "the repository's configuration file could not be read yet: {err}"
                        ));
                    }
                    // The outbox tries it again, with the others.
                    Err(err) => {
                        tracing::warn!(effect = decision.name(), error = %err, "a read failed; it waits in the outbox");
                        decided.push(decision);
                    }
                }
            }
        }
        self.commit(
            &mut engine,
            Some((seq, DeliveryOutcome::Processed)),
            None,
            decided,
        )
        .await
        .map_err(|e| e.to_string())?;
        // The delivery is processed (committed above); what fails to run now is in the
        // outbox and runs in the next round.
        if let Err(err) = self.drain_locked(&mut engine).await {
            tracing::warn!(error = %err, "carrying out the decisions failed; they wait in the outbox");
        }
        report_states(&engine);
        Ok(())
    }

    /// Settles launches a crash interrupted, follows running agents, acts on the runs
    /// that ended, and carries out what is due in the outbox.
    pub async fn tick(&self) -> Result<(), OrchestratorError> {
        let mut engine = self.inner.engine.lock().await;
        self.tick_locked(&mut engine).await
    }

    async fn tick_locked(&self, engine: &mut Engine) -> Result<(), OrchestratorError> {
        let (recovered, ended) = match self.inner.effects.agents() {
            Some(agents) => {
                let now = now_millis();
                let mut recovered = Vec::new();
                for (issue, outcome) in agents.recover(now).await? {
                    tracing::info!(%issue, %outcome, "an interrupted launch was settled");
                    recovered.extend(self.inner.store.runs_of(&issue).await?.pop());
                }
                let ended = agents.poll(now).await?;
                (recovered, ended.into_iter().map(|e| e.record).collect())
            }
            None => (Vec::new(), Vec::new()),
        };
        let decisions = engine.handle(Input::RunsFollowed { recovered, ended }, now_millis());
        self.commit(engine, None, None, decisions).await?;
        self.drain_locked(engine).await?;
        report_states(engine);
        Ok(())
    }

    /// Heals what lost webhooks or downtime left behind (see the engine's reconciler):
    /// runs are followed first, then every repository of every installation is listed.
    pub async fn reconcile(&self) -> Result<(), OrchestratorError> {
        let mut engine = self.inner.engine.lock().await;
        // Runs first: an issue closed while its run finished is not taken for a cancel.
        self.tick_locked(&mut engine).await?;
        let github = self.inner.effects.github();
        let targets = if github.is_app() {
            let mut targets = Vec::new();
            for id in github.installations().await? {
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
            None
        };
        let decisions = engine.handle(Input::Reconcile { targets }, now_millis());
        self.commit(&mut engine, None, None, decisions).await?;
        self.drain_locked(&mut engine).await?;
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
        let done = self.drain_locked(&mut engine).await?;
        if done > 0 {
            report_states(&engine);
        }
        Ok(done)
    }

    /// Commits one step: an optional delivery mark or effect completion, the engine's
    /// changes, and `decisions` into the outbox.
    async fn commit(
        &self,
        engine: &mut Engine,
        delivery: Option<(i64, DeliveryOutcome)>,
        effect_done: Option<i64>,
        decisions: Vec<Decision>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let changes = engine.take_changes();
        for (key, value) in &changes.settings {
            if let Some(id) = key.strip_prefix("suspended:") {
                metrics::gauge!(names::INSTALLATION_SUSPENDED, "installation" => id.to_owned())
                    .set(if value.is_some() { 1.0 } else { 0.0 });
            }
        }
        let step = Step {
            delivery,
            effect_done,
            issues: changes.issues,
            forgotten: changes.forgotten,
            settings: changes.settings,
            decisions: decisions
                .iter()
                .map(|d| {
                    let json = serde_json::to_string(d).expect("decisions serialise");
                    (installation_of(d), json)
                })
                .collect(),
        };
        let now = now_millis();
        let ids = self.inner.store.commit_step(&step, now).await?;
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
    async fn drain_locked(&self, engine: &mut Engine) -> Result<usize, StoreError> {
        let store = &self.inner.store;
        let mut done = 0;
        loop {
            if self.inner.outbox_empty.load(Ordering::Acquire) {
                return Ok(done);
            }
            let now = now_millis();
            // Every pending entry, due or waiting for a retry: one read per pass.
            let (due, later): (Vec<OutboxEntry>, Vec<OutboxEntry>) = store
                .pending_effects(OUTBOX_BATCH, i64::MAX)
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
            let mut queue: VecDeque<OutboxEntry> = due.into();
            let mut progressed = false;
            while let Some(entry) = queue.pop_front() {
                if done >= DRAIN_LIMIT {
                    break;
                }
                let Some(decision) = decision_of(&entry) else {
                    store
                        .fail_effect(entry.id, "unreadable decision", now_millis())
                        .await?;
                    continue;
                };
                if let Some(issue) = decision.issue()
                    && waiting.get(issue).is_some_and(|first| *first < entry.id)
                {
                    continue;
                }
                match self.carry_out(engine, &entry, &decision).await? {
                    Some(follow) => {
                        // Decided after every entry in the queue: they go last, in order.
                        queue.extend(follow);
                        progressed = true;
                        done += 1;
                    }
                    None => {
                        if let Some(issue) = decision.issue() {
                            waiting.entry(issue.clone()).or_insert(entry.id);
                        }
                    }
                }
            }
            if !progressed {
                return Ok(done);
            }
        }
    }

    /// Carries out one entry: on success its completion is committed with what the engine
    /// made of the result, and the new entries come back; on failure it waits for a retry
    /// or is given up (`None`).
    async fn carry_out(
        &self,
        engine: &mut Engine,
        entry: &OutboxEntry,
        decision: &Decision,
    ) -> Result<Option<Vec<OutboxEntry>>, StoreError> {
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
            Ok(outcomes) => {
                let mut decisions = Vec::new();
                for outcome in outcomes {
                    decisions.extend(engine.handle(Input::Result(outcome), now_millis()));
                }
                let follow = self.commit(engine, None, Some(entry.id), decisions).await?;
                Ok(Some(follow))
            }
            Err(err) => {
                let attempts = attempt + 1;
                if err.is_permanent() || attempts >= self.inner.retry.max_attempts {
                    tracing::warn!(effect = decision.name(), error = %err, attempts, "an effect failed for the last time; given up");
                    store
                        .fail_effect(entry.id, &err.to_string(), now_millis())
                        .await?;
                    if let Some(outcome) = given_up(decision) {
                        let decisions = engine.handle(Input::Result(outcome), now_millis());
                        self.commit(engine, None, None, decisions).await?;
                    }
                } else {
                    let delay = self.inner.retry.delay_after(attempts).as_millis() as i64;
                    tracing::warn!(effect = decision.name(), error = %err, attempts, retry_in_ms = delay, "an effect failed; trying again later");
                    store
                        .retry_effect(entry.id, &err.to_string(), now_millis() + delay)
                        .await?;
                }
                Ok(None)
            }
        }
    }
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
        Decision::TryMerge { issue, .. } => Some(Outcome::NotMergeable {
            issue: issue.clone(),
        }),
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

fn installation_of(decision: &Decision) -> InstallationId {
    match decision {
        Decision::ReadRepoConfig { installation, .. }
        | Decision::ReadLabelActor { installation, .. }
        | Decision::CheckPermission { installation, .. }
        | Decision::ReadNativeBlockers { installation, .. }
        | Decision::ReadIssue { installation, .. }
        | Decision::ReadProjectItem { installation, .. }
        | Decision::ListRepositories { installation }
        | Decision::ListLabelled { installation, .. }
        | Decision::Launch { installation, .. }
        | Decision::Cancel { installation, .. }
        | Decision::ResumeAgents { installation }
        | Decision::PublishStatus { installation, .. }
        | Decision::Reply { installation, .. }
        | Decision::React { installation, .. }
        | Decision::TryMerge { installation, .. }
        | Decision::CloseIssue { installation, .. } => *installation,
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
