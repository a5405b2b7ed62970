//! The boards a viewer sees, read from the store rather than from this process's engine:
//! with several replicas on PostgreSQL each engine holds only the installations it leases,
//! while every replica reads the same store. An installation's issues, runs and settings
//! are read at most once per [`CACHE_TTL`], whoever asks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::{InstallationId, RepoName};
use crate::engine::Scheduler;
use crate::engine::UnblockOn;
use crate::engine::board::{BoardContext, RepoBoard, repo_board};
use crate::engine::durations::{Durations, SETTING_PREFIX};
use crate::engine::forecast::{self, Forecast, Start};
use crate::engine::machine::{Installation, QUOTA_PAUSE_MS, Tracked, Weights};
use crate::github::oauth::Reachable;
use crate::store::{Store, StoreError};

/// How long an installation read from the store is shown before it is read again: well
/// within the page's promise to show a change within 2 s, and one read per installation
/// however many viewers poll.
const CACHE_TTL: Duration = Duration::from_millis(500);

/// One installation as read from the store.
struct Loaded {
    /// Behind a lock only because the graph caches its searches inside (not `Sync`);
    /// reading boards from it takes microseconds, and no await is held inside.
    installation: Mutex<Installation>,
    paused: BTreeMap<RepoName, String>,
    suspended: bool,
    /// Codegen's message while launches pause for a used-up quota.
    quota_pause: Option<String>,
    /// The installation's forecast (none without Codegen, or while suspended).
    forecast: Option<Forecast>,
}

/// What the forecast needs from the configuration.
#[derive(Debug, Clone)]
pub(super) struct ForecastSettings {
    /// Whether Codegen is configured (nothing is launched otherwise).
    pub(super) agents: bool,
    /// `codegen.max_concurrent_agents`.
    pub(super) max_concurrent: usize,
    /// `codegen.max_agents_per_repository`.
    pub(super) per_repository: Option<usize>,
    /// `orchestrator.default_estimate`, in minutes.
    pub(super) default_minutes: u64,
    /// `codegen.creations_per_minute`.
    pub(super) launches_per_minute: usize,
}

/// Reads installations from the store, with a short cache.
pub(super) struct Boards {
    store: Store,
    unblock_on: UnblockOn,
    command: String,
    forecasts: ForecastSettings,
    cache: Mutex<HashMap<InstallationId, (Instant, Arc<Loaded>)>>,
    /// Held while an installation is read from the store.
    loading: tokio::sync::Mutex<()>,
}

impl Boards {
    /// Boards read from `store`, built as the engine builds its graph (`unblock_on`), with
    /// `command` in the texts that name one.
    pub(super) fn new(
        store: Store,
        unblock_on: UnblockOn,
        command: &str,
        forecasts: ForecastSettings,
    ) -> Self {
        Self {
            store,
            unblock_on,
            command: command.to_owned(),
            forecasts,
            cache: Mutex::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// The boards of `repos` (each one the viewer may read, with its installation), in
    /// the order given. Blockers are named only within `visible`.
    pub(super) async fn boards(
        &self,
        repos: &[Reachable],
        visible: &BTreeSet<String>,
        now: i64,
    ) -> Result<Vec<RepoBoard>, StoreError> {
        let mut boards = Vec::with_capacity(repos.len());
        for reachable in repos {
            let loaded = self.installation(reachable.installation).await?;
            let context = BoardContext {
                visible,
                paused: &loaded.paused,
                suspended: loaded.suspended,
                quota_pause: loaded.quota_pause.as_deref(),
                command: &self.command,
                forecast: loaded.forecast.as_ref(),
                now,
            };
            let installation = loaded
                .installation
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // The stored names keep GitHub's case; the viewer's list may differ in case.
            let repo = installation
                .issues
                .keys()
                .map(|issue| &issue.repo)
                .find(|repo| {
                    repo.to_string()
                        .eq_ignore_ascii_case(&reachable.repo.to_string())
                })
                .cloned()
                .unwrap_or_else(|| reachable.repo.clone());
            boards.push(repo_board(&installation, &repo, &context));
        }
        Ok(boards)
    }

    async fn installation(&self, id: InstallationId) -> Result<Arc<Loaded>, StoreError> {
        if let Some((at, loaded)) = self.cached(id)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(loaded);
        }
        // One load at a time: viewers polling together wait for the one load (and
        // forecast) under way instead of each making their own.
        let _loading = self.loading.lock().await;
        if let Some((at, loaded)) = self.cached(id)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(loaded);
        }
        let mut installation = Installation::new(self.unblock_on);
        for (issue, data) in self.store.issues_of(id).await? {
            match serde_json::from_str::<Tracked>(&data) {
                Ok(tracked) => {
                    installation.issues.insert(issue, tracked);
                }
                Err(err) => {
                    tracing::warn!(%issue, error = %err, "the dashboard cannot read a saved issue; it is left out");
                }
            }
        }
        // Oldest first: the latest attempt of each issue is the one kept.
        for run in self.store.runs_of_installation(id).await? {
            installation.runs.insert(run.issue.clone(), run);
        }
        // Weighed as the engine weighs them: by the learned run durations.
        let mut durations = Durations::default();
        for (key, value) in self.store.settings_with_prefix(SETTING_PREFIX).await? {
            durations.restore(&key, &value);
        }
        installation.weights = Weights {
            default_minutes: self.forecasts.default_minutes,
            learned: durations
                .repos()
                .filter_map(|(repo, _)| Some((repo.clone(), durations.learned_minutes(repo)?)))
                .collect(),
        };
        installation.rebuild(self.unblock_on);
        let paused: BTreeMap<RepoName, String> = self
            .store
            .settings_with_prefix("paused:")
            .await?
            .into_iter()
            .filter_map(|(key, by)| Some((key.strip_prefix("paused:")?.parse().ok()?, by)))
            .collect();
        let suspended = self
            .store
            .setting(&format!("suspended:{id}"))
            .await?
            .is_some();
        // `since message`, as the engine writes it; the pause ends on its own.
        let now = crate::clock::now_millis();
        let quota = self
            .store
            .setting(&format!("quota:{id}"))
            .await?
            .and_then(|value| {
                let (since, message) = value.split_once(' ')?;
                let since: i64 = since.parse().ok()?;
                (now - since < QUOTA_PAUSE_MS).then(|| (since, message.to_owned()))
            });
        let forecast = (self.forecasts.agents && !suspended).then(|| {
            let scheduler = Scheduler {
                per_repository: self.forecasts.per_repository,
                paused: paused.keys().cloned().collect(),
                ..Scheduler::new(self.forecasts.max_concurrent)
            };
            let running = installation
                .running()
                .into_iter()
                .map(|issue| {
                    let run = installation.runs.get(&issue);
                    let started = run.map_or(now, |r| r.started_at.unwrap_or(r.created_at));
                    (issue, started)
                })
                .collect();
            let start = Start {
                running,
                launches_from: quota
                    .as_ref()
                    .map_or(now, |(since, _)| since + QUOTA_PAUSE_MS),
                launches_per_minute: self.forecasts.launches_per_minute,
                now,
            };
            forecast::forecast(&installation.graph, &scheduler, &start)
        });
        let quota_pause = quota.map(|(_, message)| message);
        let loaded = Arc::new(Loaded {
            installation: Mutex::new(installation),
            paused,
            suspended,
            quota_pause,
            forecast,
        });
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id, (Instant::now(), loaded.clone()));
        }
        Ok(loaded)
    }

    fn cached(&self, id: InstallationId) -> Option<(Instant, Arc<Loaded>)> {
        self.cache.lock().ok()?.get(&id).cloned()
    }
}
