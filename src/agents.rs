//! Carries out the engine's launch decisions, exactly once, and follows the runs to their
//! end.
//!
//! Exactly once: a run is recorded before it is created. [`Agents::launch`] inserts an
//! intent row unique on (issue, attempt); only the caller whose insert succeeded asks
//! Codegen, and the run's id goes into that same row. A redelivery, a second replica or a
//! restart finds the row and does nothing. If the process dies between Codegen's answer
//! and storing it, or Codegen cannot say whether a lost creation happened, the row stays
//! `launching` with a lease; once the lease runs out, [`Agents::recover`] asks the client
//! for the row's run as an interrupted creation ([`Creation::Interrupted`]): the client
//! adopts the run carrying the row's metadata and creates one only if there is none. The
//! client is the one layer that retries and the one place that looks for lost creations;
//! this module only records what it answers.
//!
//! Stopping: Codegen has no per-run stop. Its ban (`POST .../agent/run/ban`) flags the run's
//! pull request against automatic check fixing and stops every agent on that pull request.
//! A cancel, a timeout, an unlabelled or closed issue record the attempt as ended first, so
//! nothing the run reports afterwards (a late `COMPLETE` with a pull request) counts, then
//! ban the run. The ban is only the means to stop, so it is remembered in the store and
//! lifted (`.../agent/run/unban`) by [`Agents::poll`] once Codegen reports the run stopped;
//! a ban Codegen did not confirm is asked for again there.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codegen::{AgentRun, Codegen, CodegenError, Creation, NewRun, RunMetadata};
use crate::domain::{AgentStatus, InstallationId, IssueRef, RunId};
use crate::ownership::Scope;
use crate::store::{RunEnding, RunRecord, RunState, Store, StoreError};
use crate::telemetry::names;

/// After a 402, launches for the installation pause this long before one tries again.
const QUOTA_PAUSE: Duration = Duration::from_secs(900);
/// Store settings `codegen-ban:<run id>`: the runs this App banned to stop them.
const BAN_PREFIX: &str = "codegen-ban:";
/// A ban Codegen did not confirm is asked for again by a poll this much later (sooner
/// would only race the request still being retried).
const BAN_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A ban this App placed to stop a run, kept until it is lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct BanMark {
    /// Whether Codegen confirmed the ban.
    placed: bool,
    /// Unix ms of the last request.
    since: i64,
}

/// One launch to make.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The installation the issue belongs to.
    pub installation: InstallationId,
    /// The issue.
    pub issue: IssueRef,
    /// Which attempt (from [`crate::engine::Pick`]).
    pub attempt: u32,
    /// The agent's instructions.
    pub prompt: String,
}

/// What became of a launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchOutcome {
    /// Codegen runs it (`adopted`: a run created before a crash was found and kept).
    Started {
        /// Codegen's id.
        run: RunId,
        /// The run's page.
        web_url: Option<String>,
        /// Found by its metadata rather than created now.
        adopted: bool,
    },
    /// This attempt is already recorded: launched, or being launched, elsewhere.
    Taken,
    /// Codegen's plan quota is used up; launches for the installation pause.
    Paused {
        /// Codegen's message.
        reason: String,
    },
    /// Codegen refused it, or stayed unavailable; the attempt is recorded as failed.
    Failed {
        /// Why, for the status comment.
        reason: String,
    },
    /// No answer, and no way to tell whether the run exists: recovery settles it later.
    Deferred {
        /// What went wrong.
        reason: String,
    },
}

/// For logs: `started run 12`, `failed: <reason>`, ... (not the enum's Debug form).
impl std::fmt::Display for LaunchOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Started {
                run, adopted: true, ..
            } => write!(f, "adopted run {run}"),
            Self::Started { run, .. } => write!(f, "started run {run}"),
            Self::Taken => f.write_str("already recorded"),
            Self::Paused { reason } => write!(f, "paused: {reason}"),
            Self::Failed { reason } => write!(f, "failed: {reason}"),
            Self::Deferred { reason } => write!(f, "deferred: {reason}"),
        }
    }
}

/// A run that ended, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedRun {
    /// The row, updated.
    pub record: RunRecord,
}

/// Timing of runs.
#[derive(Debug, Clone, Copy)]
pub struct AgentSettings {
    /// A run still going after this long is stopped and counts as timed out.
    pub run_timeout: Duration,
    /// How long a launch may stay unrecorded before recovery takes it over.
    pub launch_lease: Duration,
}

/// Launches and follows agent runs. Times are unix milliseconds passed in, so tests (and
/// `simulate`) choose the clock.
pub struct Agents {
    store: Store,
    codegen: Codegen,
    settings: AgentSettings,
    /// Installations whose quota ran out: since when, and Codegen's message.
    paused: Mutex<HashMap<InstallationId, (i64, String)>>,
}

impl Agents {
    /// Agents recorded in `store`, created through `codegen`.
    pub fn new(store: Store, codegen: Codegen, settings: AgentSettings) -> Self {
        Self {
            store,
            codegen,
            settings,
            paused: Mutex::new(HashMap::new()),
        }
    }

    /// Launches `launch` unless its attempt is already recorded.
    pub async fn launch(&self, launch: &Launch, now: i64) -> Result<LaunchOutcome, StoreError> {
        if let Some(reason) = self.quota_pause(launch.installation, now) {
            return Ok(LaunchOutcome::Paused { reason });
        }
        let lease = self.lease_ms();
        let Some(row) = self
            .store
            .begin_launch(
                launch.installation,
                &launch.issue,
                launch.attempt,
                &launch.prompt,
                now,
                lease,
            )
            .await?
        else {
            tracing::info!(issue = %launch.issue, attempt = launch.attempt,
                "this attempt is already recorded; not launching it again");
            return Ok(LaunchOutcome::Taken);
        };
        self.create(&row, Creation::New, now).await
    }

    /// Settles launches whose holder did not record an answer before its lease ran out:
    /// adopts the run Codegen has for them, or creates it.
    /// Only the launches of installations in `scope` (the others are another replica's).
    pub async fn recover(
        &self,
        now: i64,
        scope: &Scope,
    ) -> Result<Vec<(IssueRef, LaunchOutcome)>, StoreError> {
        let mut settled = Vec::new();
        let mut stale = self.store.stale_launches(now).await?;
        stale.retain(|row| scope.contains(row.installation));
        for row in stale {
            if !self
                .store
                .take_over_launch(row.row, now, self.lease_ms())
                .await?
            {
                continue; // another replica took it
            }
            match self.create(&row, Creation::Interrupted, now).await? {
                // Still unsettled: the lease just taken brings it back later.
                LaunchOutcome::Deferred { .. } => {}
                outcome => settled.push((row.issue.clone(), outcome)),
            }
        }
        Ok(settled)
    }

    /// Reads the state of every running run (one list call when there are many) and
    /// records those that ended; a run past `run_timeout` is recorded as timed out and
    /// stopped. Bans placed to stop runs are lifted once their runs have stopped.
    /// Only the runs of installations in `scope` are followed (the others are another
    /// replica's).
    pub async fn poll(&self, now: i64, scope: &Scope) -> Result<Vec<EndedRun>, StoreError> {
        let mut running = self.store.running_runs().await?;
        running.retain(|row| scope.contains(row.installation));
        let bans = self.bans().await?;
        let ids: Vec<RunId> = running
            .iter()
            .filter_map(|row| row.run_id)
            .chain(bans.iter().map(|(id, _)| *id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let tracked = match self.codegen.track(&ids).await {
            Ok(tracked) => tracked,
            Err(err) => {
                tracing::warn!(error = %err, runs = ids.len(), "could not read run states; trying again next time");
                return Ok(Vec::new());
            }
        };
        let mut ended = Vec::new();
        for row in running {
            let Some(run) = row.run_id.and_then(|id| tracked.get(&id)) else {
                continue;
            };
            let ending = match run.status {
                AgentStatus::Succeeded => Some(ending(RunState::Succeeded, None, run)),
                AgentStatus::Failed => {
                    let status = run.raw_status.as_deref().unwrap_or("failed");
                    let reason = format!("the agent run ended with status {status}");
                    Some(ending(RunState::Failed, Some(reason), run))
                }
                AgentStatus::Running if self.timed_out(&row, now) => {
                    let reason = format!(
                        "no result within {} s (codegen.run_timeout_secs); the run was stopped",
                        self.settings.run_timeout.as_secs()
                    );
                    // Recorded before the ban, so that a completion reported while Codegen
                    // stops the run cannot overwrite the timeout.
                    let timed_out = ending(RunState::TimedOut, Some(reason), run);
                    if let Some(record) = self.end(&row, timed_out, now).await? {
                        self.stop(run.id, now).await;
                        ended.push(EndedRun { record });
                    }
                    continue;
                }
                AgentStatus::Running => None,
            };
            if let Some(ending) = ending
                && let Some(record) = self.end(&row, ending, now).await?
            {
                ended.push(EndedRun { record });
            }
        }
        self.settle_bans(&bans, &tracked, now).await;
        Ok(ended)
    }

    /// Records the latest unfinished attempt at `issue` as cancelled, at once and before
    /// Codegen is asked anything, so that whatever its run reports later (even a success
    /// with a pull request) does not count; then bans the run to stop it. `None` when no
    /// attempt is unfinished (a poll may just have recorded its real ending).
    pub async fn cancel(
        &self,
        issue: &IssueRef,
        now: i64,
    ) -> Result<Option<RunRecord>, StoreError> {
        let runs = self.store.runs_of(issue).await?;
        let Some(row) = runs.into_iter().rev().find(|row| !row.state.is_final()) else {
            return Ok(None);
        };
        let ending = RunEnding {
            state: RunState::Cancelled,
            failure: Some("cancelled".into()),
            summary: None,
            pull_requests: Vec::new(),
        };
        let Some(record) = self.end(&row, ending, now).await? else {
            return Ok(None);
        };
        // Still launching: the launch finds the row cancelled when Codegen answers, and
        // stops the run then.
        if let Some(id) = row.run_id {
            self.stop(id, now).await;
        }
        Ok(Some(record))
    }

    /// Lets launches for `installation` go ahead again after a quota pause.
    pub fn resume(&self, installation: InstallationId) {
        self.paused_lock().remove(&installation);
    }

    /// Codegen's message while launches for `installation` are paused by a used-up quota.
    pub fn quota_pause(&self, installation: InstallationId, now: i64) -> Option<String> {
        let mut paused = self.paused_lock();
        let (since, reason) = paused.get(&installation)?;
        if now - since >= QUOTA_PAUSE.as_millis() as i64 {
            // Long enough: let the next launch find out whether the quota is back.
            paused.remove(&installation);
            return None;
        }
        Some(reason.clone())
    }

    /// Asks Codegen for the run of a launching `row` (created now, or, for an
    /// interrupted launch, found first) and records the answer.
    async fn create(
        &self,
        row: &RunRecord,
        creation: Creation,
        now: i64,
    ) -> Result<LaunchOutcome, StoreError> {
        let new_run = NewRun {
            prompt: row.prompt.clone(),
            metadata: metadata_of(row),
            repository: row.issue.repo.clone(),
        };
        match self.codegen.create_run(&new_run, creation).await {
            Ok(created) => {
                if !created.adopted {
                    metrics::counter!(names::RUNS_LAUNCHED).increment(1);
                }
                self.record_started(row, &created.run, created.adopted, now)
                    .await
            }
            Err(CodegenError::QuotaExhausted { message }) => {
                metrics::counter!(names::LAUNCH_FAILURES, "reason" => "quota").increment(1);
                tracing::warn!(installation = %row.installation, %message,
                    "Codegen's plan quota is used up; pausing launches");
                self.store.abandon_launch(row.row).await?;
                self.paused_lock()
                    .insert(row.installation, (now, message.clone()));
                Ok(LaunchOutcome::Paused { reason: message })
            }
            Err(err @ CodegenError::CreationUnknown { .. }) => {
                metrics::counter!(names::LAUNCH_FAILURES, "reason" => "unavailable").increment(1);
                tracing::warn!(issue = %row.issue, error = %err,
                    "Codegen is unavailable; the launch will be settled by recovery");
                Ok(LaunchOutcome::Deferred {
                    reason: err.to_string(),
                })
            }
            Err(err) => {
                // Transient or not, the client has made sure no run exists.
                let reason = if err.is_transient() {
                    "unavailable"
                } else {
                    "rejected"
                };
                metrics::counter!(names::LAUNCH_FAILURES, "reason" => reason).increment(1);
                self.fail_launch(row, err.to_string(), now).await
            }
        }
    }

    async fn record_started(
        &self,
        row: &RunRecord,
        run: &AgentRun,
        adopted: bool,
        now: i64,
    ) -> Result<LaunchOutcome, StoreError> {
        let recorded = self
            .store
            .record_started(row.row, run.id, run.web_url.as_deref(), now)
            .await?;
        if !recorded {
            // Cancelled while Codegen was being asked: the run must not go on alone.
            tracing::info!(issue = %row.issue, run = %run.id, "the launch was cancelled meanwhile; stopping its run");
            self.stop(run.id, now).await;
            return Ok(LaunchOutcome::Taken);
        }
        tracing::info!(issue = %row.issue, attempt = row.attempt, run = %run.id, adopted, "agent run started");
        Ok(LaunchOutcome::Started {
            run: run.id,
            web_url: run.web_url.clone(),
            adopted,
        })
    }

    async fn fail_launch(
        &self,
        row: &RunRecord,
        reason: String,
        now: i64,
    ) -> Result<LaunchOutcome, StoreError> {
        tracing::warn!(issue = %row.issue, attempt = row.attempt, %reason, "launch failed");
        let ending = RunEnding {
            state: RunState::Failed,
            failure: Some(reason.clone()),
            summary: None,
            pull_requests: Vec::new(),
        };
        self.store.record_ended(row.row, &ending, now).await?;
        Ok(LaunchOutcome::Failed { reason })
    }

    /// Stores `ending` and returns the updated row, or `None` if it had ended already.
    async fn end(
        &self,
        row: &RunRecord,
        ending: RunEnding,
        now: i64,
    ) -> Result<Option<RunRecord>, StoreError> {
        if !self.store.record_ended(row.row, &ending, now).await? {
            return Ok(None);
        }
        metrics::counter!(names::RUNS_ENDED, "outcome" => ending.state.as_str()).increment(1);
        tracing::info!(issue = %row.issue, attempt = row.attempt, outcome = ending.state.as_str(), "agent run ended");
        Ok(Some(RunRecord {
            state: ending.state,
            failure: ending.failure,
            summary: ending.summary,
            pull_requests: ending
                .pull_requests
                .into_iter()
                .map(crate::domain::PullRequestLink::new)
                .collect(),
            finished_at: Some(now),
            ..row.clone()
        }))
    }

    /// Stops a run whose attempt is already recorded as ended: remembers the ban first (so
    /// that a failed request or a crash is made good by a later poll), then asks Codegen.
    /// Failures are logged, not returned: the attempt's ending stands either way.
    async fn stop(&self, id: RunId, now: i64) {
        self.mark_ban(
            id,
            Some(BanMark {
                placed: false,
                since: now,
            }),
        )
        .await;
        self.place_ban(id, now).await;
    }

    async fn place_ban(&self, id: RunId, now: i64) {
        match self.codegen.ban_run(id).await {
            Ok(()) => {
                tracing::info!(run = %id, "asked Codegen to stop the agent run (ban on its pull request)");
                let placed = BanMark {
                    placed: true,
                    since: now,
                };
                self.mark_ban(id, Some(placed)).await;
            }
            Err(CodegenError::Rejected { status: 404, .. }) => {
                tracing::info!(run = %id, "Codegen no longer knows the run; nothing to stop");
                self.mark_ban(id, None).await;
            }
            Err(err) => {
                tracing::warn!(run = %id, error = %err, "could not stop an agent run; a later poll asks again");
            }
        }
    }

    /// Asks again for the bans Codegen did not confirm, and lifts those whose runs have
    /// stopped (a run Codegen no longer knows counts as stopped).
    async fn settle_bans(
        &self,
        bans: &[(RunId, BanMark)],
        tracked: &HashMap<RunId, AgentRun>,
        now: i64,
    ) {
        for &(id, mark) in bans {
            let running = tracked
                .get(&id)
                .is_some_and(|run| run.status == AgentStatus::Running);
            if running {
                let unconfirmed = now - mark.since >= BAN_RETRY_AFTER.as_millis() as i64;
                if !mark.placed && unconfirmed {
                    self.place_ban(id, now).await;
                }
                continue;
            }
            // Stopped. An unconfirmed ban may still have been placed: lift it all the same.
            match self.codegen.unban_run(id).await {
                Ok(()) | Err(CodegenError::Rejected { status: 404, .. }) => {
                    tracing::info!(run = %id, "the run has stopped; lifted the ban that stopped it");
                    self.mark_ban(id, None).await;
                }
                Err(err) => {
                    tracing::warn!(run = %id, error = %err, "could not lift a ban; a later poll tries again");
                }
            }
        }
    }

    /// The bans this App placed and has not lifted yet.
    async fn bans(&self) -> Result<Vec<(RunId, BanMark)>, StoreError> {
        let marks = self.store.settings_with_prefix(BAN_PREFIX).await?;
        Ok(marks
            .into_iter()
            .filter_map(|(key, value)| {
                let id = key.strip_prefix(BAN_PREFIX)?.parse().ok()?;
                let mark = serde_json::from_str(&value).ok()?;
                Some((RunId(id), mark))
            })
            .collect())
    }

    /// Records (`Some`) or forgets (`None`) the ban of run `id`. A store failure is logged:
    /// the ban itself does not depend on it.
    async fn mark_ban(&self, id: RunId, mark: Option<BanMark>) {
        let key = format!("{BAN_PREFIX}{}", id.0);
        let value = match mark.map(|mark| serde_json::to_string(&mark)).transpose() {
            Ok(value) => value,
            Err(err) => {
                tracing::warn!(run = %id, error = %err, "could not write the ban of an agent run");
                return;
            }
        };
        if let Err(err) = self.store.set_setting(&key, value.as_deref()).await {
            tracing::warn!(run = %id, error = %err, "could not record the ban of an agent run");
        }
    }

    fn timed_out(&self, row: &RunRecord, now: i64) -> bool {
        let started = row.started_at.unwrap_or(row.created_at);
        now - started >= self.settings.run_timeout.as_millis() as i64
    }

    fn lease_ms(&self) -> i64 {
        self.settings.launch_lease.as_millis() as i64
    }

    fn paused_lock(&self) -> std::sync::MutexGuard<'_, HashMap<InstallationId, (i64, String)>> {
        self.paused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn metadata_of(row: &RunRecord) -> RunMetadata {
    RunMetadata::new(row.installation, &row.issue, row.attempt)
}

fn ending(state: RunState, failure: Option<String>, run: &AgentRun) -> RunEnding {
    RunEnding {
        state,
        failure,
        summary: run.summary.clone(),
        pull_requests: run.pull_requests.iter().map(|pr| pr.url.clone()).collect(),
    }
}
