//! Learning run durations and forecasting: a successful run's duration is taken in (and
//! saved as a setting); when its repository's figure moves, the repository's unlabelled
//! issues weigh it. While an installation has at most [`FORECAST_EVERY_CHANGE_NODES`]
//! issues, its forecast is made again after a change once [`FORECAST_DEBOUNCE_MS`] passed
//! (or at once when a waiting issue is about to get its first status); larger ones at most
//! every [`FORECAST_REFRESH_MS`] (a forecast runs the scheduler over the whole graph: a
//! close's launches must not wait for one each time); time passing alone makes it again
//! after that long too. The statuses of queued and blocked
//! issues show their expected start, changed only when it moves by more than
//! [`tolerance_ms`], so that a forecast that shifts a little does not edit every comment.

use super::Engine;
use crate::domain::{InstallationId, IssueRef, RepoName, RunRecord, RunState};
use crate::engine::durations::moved_enough;
use crate::engine::estimate_from_labels;
use crate::engine::forecast::{self, Forecast, Start};
use crate::engine::status::WorkState;

/// How old an installation's forecast may get before the next settle makes it again.
pub const FORECAST_REFRESH_MS: i64 = 60_000;

/// Graphs up to this many issues are forecast again after a change (at most every
/// [`FORECAST_DEBOUNCE_MS`], or at once for an issue's first status).
pub const FORECAST_EVERY_CHANGE_NODES: usize = 1_000;

/// How soon after the last forecast a change makes another: a close's reaction (its
/// launches) must not wait for a forecast of the whole graph each time, and a comment's
/// expected start moves only by a quarter hour or more anyway.
pub const FORECAST_DEBOUNCE_MS: i64 = 5_000;

/// How far an expected start may move before the status says so: a quarter of the time
/// until it, and at least 15 minutes.
pub fn tolerance_ms(shown: i64, now: i64) -> i64 {
    ((shown - now) / 4).max(15 * 60_000)
}

impl Engine {
    /// Takes in a successful run's duration for its repository (and its `estimate:` label)
    /// and weighs the repository's issues again when the figure moved.
    pub(super) fn learn_duration(&mut self, run: &RunRecord) {
        let (Some(started), Some(finished)) = (run.started_at, run.finished_at) else {
            return;
        };
        if run.state != RunState::Succeeded || finished < started {
            return;
        }
        let labels: Vec<String> = self
            .tracked(run.installation, &run.issue)
            .map(|t| t.labels.clone())
            .unwrap_or_default();
        let secs = u64::try_from((finished - started) / 1000).unwrap_or(0);
        let repo = &run.issue.repo;
        let (key, value) = self
            .durations
            .record(repo, labels.iter().map(String::as_str), secs);
        self.set_setting(key, Some(value));
        if self.settings.forecasts {
            self.reweigh(repo);
        }
    }

    /// Gives `repo`'s unlabelled issues its learned figure when it moved far enough from
    /// the one they weigh.
    pub(super) fn reweigh(&mut self, repo: &RepoName) {
        let learned = self.durations.learned_minutes(repo);
        for installation in self.installations.values_mut() {
            let applied = installation.weights.learned.get(repo).copied();
            if !moved_enough(applied, learned) {
                continue;
            }
            match learned {
                Some(minutes) => installation.weights.learned.insert(repo.clone(), minutes),
                None => installation.weights.learned.remove(repo),
            };
            // Only what the figure weighs: open, unlabelled issues of the repository.
            let issues: Vec<IssueRef> = installation
                .issues
                .iter()
                .filter(|(issue, tracked)| {
                    &issue.repo == repo
                        && tracked.status == crate::domain::IssueStatus::Open
                        && estimate_from_labels(tracked.labels.iter().map(String::as_str)).is_none()
                })
                .map(|(issue, _)| issue.clone())
                .collect();
            for issue in issues {
                installation.refresh_node(&issue);
            }
        }
    }

    /// The forecast of installation `id` as things stand at `now` (none for an
    /// installation without agents: suspended, or Codegen not configured).
    pub fn forecast(&self, id: InstallationId, now: i64) -> Option<Forecast> {
        if !self.settings.agents || self.suspended.contains(&id) {
            return None;
        }
        let installation = self.installations.get(&id)?;
        let running = installation
            .running()
            .into_iter()
            .map(|issue| {
                let started = installation
                    .runs
                    .get(&issue)
                    .map_or(now, |run| run.started_at.unwrap_or(run.created_at));
                (issue, started)
            })
            .collect();
        let launches_from = self
            .quota
            .get(&id)
            .map_or(now, |(since, _)| (since + super::QUOTA_PAUSE_MS).max(now));
        let start = Start {
            running,
            launches_from,
            launches_per_minute: self.settings.launches_per_minute,
            now,
        };
        Some(forecast::forecast(
            &installation.graph,
            &self.scheduler(),
            &start,
        ))
    }

    /// Makes again each forecast older than [`FORECAST_REFRESH_MS`], and marks for
    /// publishing the waiting issues whose shown start it moved (or that show none yet).
    pub(super) fn refresh_forecasts(&mut self, now: i64) {
        if !self.settings.forecasts {
            return;
        }
        let mut ids: Vec<InstallationId> = self.installations.keys().copied().collect();
        ids.sort();
        for id in ids {
            let changed = self.forecast_stale.remove(&id);
            let small = self.installations[&id].graph.size().0 <= FORECAST_EVERY_CHANGE_NODES;
            let fresh = self.forecasts.get(&id).is_some_and(|f| {
                let age = now - f.made_at;
                let again_after_change = small
                    && changed
                    && (age >= FORECAST_DEBOUNCE_MS || self.first_status_waits(id));
                age < FORECAST_REFRESH_MS && !again_after_change
            });
            if fresh {
                if changed {
                    self.forecast_stale.insert(id);
                }
                continue;
            }
            let Some(forecast) = self.forecast(id, now) else {
                self.forecasts.remove(&id);
                continue;
            };
            let installation = &self.installations[&id];
            // A waiting issue whose status may show no start (a pause says why instead)
            // is left alone: it would be marked at every forecast for nothing.
            let shows_start = |issue: &IssueRef| {
                matches!(
                    super::publish::state_of(installation, issue),
                    Some(WorkState::Queued | WorkState::Blocked)
                ) && self.pause_reason(id, issue, now).is_none()
            };
            let mut moved: Vec<IssueRef> = forecast
                .issues
                .iter()
                .filter(|(issue, expected)| {
                    shows_start(issue)
                        && self.shown_starts.get(*issue).is_none_or(|shown| {
                            (expected.start - shown).abs() > tolerance_ms(*shown, now)
                        })
                })
                .map(|(issue, _)| issue.clone())
                .collect();
            // And one whose status shows a start the forecast no longer gives (what it
            // waits for will not be done: a blocker failed, or was closed as not planned).
            moved.extend(
                self.shown_starts
                    .keys()
                    .filter(|issue| {
                        installation.issues.contains_key(*issue) && forecast.of(issue).is_none()
                    })
                    .cloned(),
            );
            self.dirty
                .extend(moved.into_iter().map(|issue| (id, issue)));
            self.forecasts.insert(id, forecast);
        }
    }

    /// Whether a waiting issue of `id` is about to get its first status: it should name its
    /// expected start from the start, rather than in an edit a little later.
    fn first_status_waits(&self, id: InstallationId) -> bool {
        let Some(installation) = self.installations.get(&id) else {
            return false;
        };
        self.dirty.iter().any(|(at, issue)| {
            *at == id
                && !self.published.contains_key(issue)
                && matches!(
                    super::publish::state_of(installation, issue),
                    Some(WorkState::Queued | WorkState::Blocked)
                )
        })
    }

    /// The expected start a waiting issue's status shows: the forecast's, unless the one
    /// shown is within [`tolerance_ms`] of it.
    pub(super) fn expected_start(
        &self,
        id: InstallationId,
        issue: &IssueRef,
        now: i64,
    ) -> Option<i64> {
        let expected = self.forecasts.get(&id)?.of(issue)?.start;
        match self.shown_starts.get(issue) {
            Some(&shown) if (expected - shown).abs() <= tolerance_ms(shown, now) => Some(shown),
            _ => Some(expected),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tolerance_is_a_quarter_of_the_wait_and_at_least_a_quarter_hour() {
        let now = 1_800_000_000_000;
        assert_eq!(tolerance_ms(now, now), 15 * 60_000);
        assert_eq!(tolerance_ms(now + 60 * 60_000, now), 15 * 60_000);
        assert_eq!(tolerance_ms(now + 4 * 3_600_000, now), 3_600_000);
    }
}
