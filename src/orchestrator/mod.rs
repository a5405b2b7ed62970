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

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Mutex;

mod deliveries;
mod outbox;

use outbox::GiveWay;

use crate::agents::Agents;
use crate::clock::now_millis;
use crate::domain::InstallationId;
use crate::effects::Effects;
use crate::engine::machine::{Decision, Engine, EngineSettings, Input, TOKEN_MODE};
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
        self.drain_locked(engine, scope, GiveWay::Never).await?;
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
        self.drain_locked(&mut engine, &scope, GiveWay::Never)
            .await?;
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

    /// Carries out what is due in the outbox (after a crash, effects that failed, or what a
    /// drain that gave way to deliveries left), giving way to deliveries in turn.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut engine = self.inner.engine.lock().await;
        let scope = self.sync(&mut engine).await?;
        let done = self
            .drain_locked(&mut engine, &scope, GiveWay::ToDeliveries)
            .await?;
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
