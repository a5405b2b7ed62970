//! Run durations learned from finished runs: per repository, and per `estimate:` label
//! within it. Each figure is the mean of the latest [`SAMPLES_KEPT`] successful runs (a
//! mean, not a median: the forecast adds durations up, and a sum's best guess is built
//! from means). An issue's expected duration is its `estimate:` label, else its
//! repository's learned figure once [`MIN_RUNS`] runs finished, else the configured
//! default.
//!
//! The figures are kept in the store as settings (`durations:<owner/repo>`, JSON), so
//! every replica and every restart starts from them.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::domain::RepoName;
use crate::engine::estimate_from_labels;

/// Successful runs a figure is the mean of: enough to smooth one odd run out, few enough
/// that the figure follows a repository whose work changes.
pub const SAMPLES_KEPT: usize = 20;

/// Finished runs a repository needs before its figure replaces the default.
pub const MIN_RUNS: usize = 2;

/// The settings key prefix of a repository's figures.
pub const SETTING_PREFIX: &str = "durations:";

/// The latest run durations of one kind of work, in seconds, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Samples(VecDeque<u64>);

impl Samples {
    /// Takes in one finished run, forgetting the oldest beyond [`SAMPLES_KEPT`].
    fn push(&mut self, secs: u64) {
        self.0.push_back(secs);
        while self.0.len() > SAMPLES_KEPT {
            self.0.pop_front();
        }
    }

    /// How many runs are counted.
    pub fn runs(&self) -> usize {
        self.0.len()
    }

    /// The mean duration in seconds, when any run is counted.
    pub fn mean_secs(&self) -> Option<u64> {
        let runs = self.0.len() as u64;
        (runs > 0).then(|| self.0.iter().sum::<u64>() / runs)
    }
}

/// What is learned of one repository: all its runs, and the runs of each `estimate:`
/// label (to compare what labels say with what runs take).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoDurations {
    /// Every successful run of the repository.
    pub runs: Samples,
    /// Runs of issues with an `estimate:` label, by the label's minutes.
    #[serde(default)]
    pub by_estimate: BTreeMap<u64, Samples>,
}

/// Where an issue's expected duration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Its `estimate:` label.
    Label,
    /// Its repository's finished runs.
    Learned,
    /// The configured default (`orchestrator.default_estimate`).
    Default,
}

/// The learned durations of every repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durations {
    repos: HashMap<RepoName, RepoDurations>,
}

impl Durations {
    /// Takes in a successful run of an issue of `repo` with these labels that took `secs`.
    /// Returns the setting to save: the repository's figures as JSON.
    pub fn record<'a>(
        &mut self,
        repo: &RepoName,
        labels: impl IntoIterator<Item = &'a str>,
        secs: u64,
    ) -> (String, String) {
        let learned = self.repos.entry(repo.clone()).or_default();
        learned.runs.push(secs);
        if let Some(minutes) = estimate_from_labels(labels) {
            learned.by_estimate.entry(minutes).or_default().push(secs);
        }
        let json = serde_json::to_string(learned).expect("durations serialise");
        (format!("{SETTING_PREFIX}{repo}"), json)
    }

    /// Takes in a saved setting; `false` when it is not one of these (or unreadable, which
    /// only loses what was learned).
    pub fn restore(&mut self, key: &str, value: &str) -> bool {
        let Some(repo) = key.strip_prefix(SETTING_PREFIX) else {
            return false;
        };
        let (Ok(repo), Ok(learned)) = (
            repo.parse::<RepoName>(),
            serde_json::from_str::<RepoDurations>(value),
        ) else {
            tracing::warn!(key, "saved run durations could not be read; learning again");
            return false;
        };
        self.repos.insert(repo, learned);
        true
    }

    /// What is learned of `repo`.
    pub fn repo(&self, repo: &RepoName) -> Option<&RepoDurations> {
        self.repos.get(repo)
    }

    /// Every repository's figures.
    pub fn repos(&self) -> impl Iterator<Item = (&RepoName, &RepoDurations)> {
        self.repos.iter()
    }

    /// The learned mean of `repo` in minutes (at least 1), once [`MIN_RUNS`] runs
    /// finished.
    pub fn learned_minutes(&self, repo: &RepoName) -> Option<u64> {
        let runs = &self.repos.get(repo)?.runs;
        if runs.runs() < MIN_RUNS {
            return None;
        }
        runs.mean_secs().map(|secs| secs.div_ceil(60).max(1))
    }

    /// An issue's expected duration in minutes and where it comes from: its label, else
    /// its repository's figure, else `default_minutes`.
    pub fn expected_minutes<'a>(
        &self,
        repo: &RepoName,
        labels: impl IntoIterator<Item = &'a str>,
        default_minutes: u64,
    ) -> (u64, Source) {
        if let Some(minutes) = estimate_from_labels(labels) {
            return (minutes, Source::Label);
        }
        match self.learned_minutes(repo) {
            Some(minutes) => (minutes, Source::Learned),
            None => (default_minutes, Source::Default),
        }
    }
}

/// Whether a repository's learned figure moved far enough from the one its issues weigh
/// to weigh them again (a tenth): re-weighing touches every issue of the repository, so
/// small moves of the mean are not worth it.
pub fn moved_enough(applied: Option<u64>, learned: Option<u64>) -> bool {
    match (applied, learned) {
        (Some(applied), Some(learned)) => learned.abs_diff(applied) * 10 > applied,
        (applied, learned) => applied != learned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str) -> RepoName {
        name.parse().unwrap()
    }

    #[test]
    fn a_repository_figure_counts_after_two_runs_and_follows_the_latest_twenty() {
        let mut durations = Durations::default();
        let api = repo("acme/api");
        assert_eq!(durations.learned_minutes(&api), None);
        durations.record(&api, [], 600);
        assert_eq!(
            durations.learned_minutes(&api),
            None,
            "one run is not enough"
        );
        durations.record(&api, [], 1_200);
        // Mean 900 s: 15 minutes.
        assert_eq!(durations.learned_minutes(&api), Some(15));
        // Twenty runs of 30 minutes push the first two out.
        for _ in 0..SAMPLES_KEPT {
            durations.record(&api, [], 1_800);
        }
        assert_eq!(durations.learned_minutes(&api), Some(30));
        assert_eq!(durations.repo(&api).unwrap().runs.runs(), SAMPLES_KEPT);
        // Another repository learns apart.
        assert_eq!(durations.learned_minutes(&repo("acme/web")), None);
    }

    #[test]
    fn no_run_has_no_mean() {
        assert_eq!(Samples::default().mean_secs(), None);
        assert_eq!(Samples::default().runs(), 0);
    }

    #[test]
    fn partial_minutes_round_up_and_a_run_under_a_minute_weighs_one() {
        let mut durations = Durations::default();
        let api = repo("acme/api");
        durations.record(&api, [], 10);
        durations.record(&api, [], 20);
        assert_eq!(durations.learned_minutes(&api), Some(1));
        durations.record(&api, [], 200);
        // (10 + 20 + 200) / 3 = 76 s: 2 minutes.
        assert_eq!(durations.learned_minutes(&api), Some(2));
    }

    #[test]
    fn the_label_comes_first_then_the_learned_figure_then_the_default() {
        let mut durations = Durations::default();
        let api = repo("acme/api");
        assert_eq!(
            durations.expected_minutes(&api, ["codegen"], 60),
            (60, Source::Default)
        );
        durations.record(&api, ["estimate:2h"], 3_000);
        durations.record(&api, ["estimate:2h"], 3_000);
        assert_eq!(
            durations.expected_minutes(&api, ["codegen"], 60),
            (50, Source::Learned)
        );
        assert_eq!(
            durations.expected_minutes(&api, ["estimate:2h"], 60),
            (120, Source::Label)
        );
        // The label's own runs are kept apart, by its minutes.
        let by_label = &durations.repo(&api).unwrap().by_estimate;
        assert_eq!(by_label[&120].mean_secs(), Some(3_000));
        assert_eq!(by_label.len(), 1);
    }

    #[test]
    fn figures_are_saved_as_settings_and_read_back() {
        let mut durations = Durations::default();
        let api = repo("acme/api");
        durations.record(&api, ["estimate:30m"], 400);
        let (key, value) = durations.record(&api, [], 800);
        assert_eq!(key, "durations:acme/api");
        let mut restored = Durations::default();
        assert!(restored.restore(&key, &value));
        assert_eq!(restored, durations);
        assert!(!restored.restore("paused:acme/api", "alice"));
        assert!(!restored.restore("durations:acme/api", "not json"));
        assert!(!restored.restore("durations:not a repo", &value));
    }

    #[test]
    fn only_a_move_of_more_than_a_tenth_weighs_issues_again() {
        assert!(!moved_enough(None, None));
        assert!(moved_enough(None, Some(30)));
        assert!(moved_enough(Some(30), None));
        assert!(!moved_enough(Some(30), Some(33)));
        assert!(moved_enough(Some(30), Some(34)));
        assert!(moved_enough(Some(30), Some(26)));
        assert!(!moved_enough(Some(30), Some(27)));
    }
}
