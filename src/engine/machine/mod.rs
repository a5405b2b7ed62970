//! The engine as a state machine: [`Engine::handle`] takes one [`Input`] (a delivery, a
//! periodic job, the result of an earlier decision) and the time, changes what the engine
//! knows, and returns the [`Decision`]s that follow. It does no I/O and reads no clock:
//! every policy of the bot (which issues are managed, what each command means and who may
//! give it, when to launch, retry, cancel, merge, what every status says) is decided here
//! and tested as "given these inputs, it decides this".
//!
//! What changed is collected for the store ([`Engine::take_changes`]); the processor
//! commits it together with the decisions (the outbox) in one transaction.

mod commands;
mod dependencies;
mod facts;
mod forecasts;
mod io;
mod issues;
mod native_sync;
mod outcomes;
mod publish;
mod reconcile;
mod runs;
mod state;
mod sub_issues;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};

pub use facts::Facts;
pub use forecasts::{FORECAST_REFRESH_MS, tolerance_ms};
pub use io::{
    AfterConfig, AfterPermission, CommandRequest, Decision, Input, Outcome, ReadPurpose, RepoFile,
};
pub use publish::state_of;
pub use state::{Installation, Tracked, Weights};

use crate::config::{Config, OrchestratorConfig, ProjectsConfig};
use crate::deps::DependencyParser;
use crate::domain::{InstallationId, IssueRef, RepoName, RunRecord, RunState};
use crate::engine::Scheduler;
use crate::engine::durations::Durations;
use crate::engine::forecast::Forecast;
use crate::engine::repo_config::RepoSettings;
use crate::engine::status::{QUEUE_POSITIONS_SHOWN, WorkState};

/// The installation id used in token mode, where deliveries name none.
pub const TOKEN_MODE: InstallationId = InstallationId(0);

/// How long launches pause after Codegen says the plan's quota is used up; the next launch
/// after it finds out whether the quota is back.
pub const QUOTA_PAUSE_MS: i64 = 15 * 60 * 1000;

/// What the engine needs from the configuration.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// `orchestrator.*`
    pub orchestrator: OrchestratorConfig,
    /// `projects.*`
    pub projects: ProjectsConfig,
    /// `codegen.max_concurrent_agents`
    pub max_concurrent: usize,
    /// `codegen.max_agents_per_repository`
    pub per_repository: Option<usize>,
    /// `codegen.retry_failed_runs`
    pub retry_failed_runs: u32,
    /// The web host issue links point to (`github.com` or a GHES host).
    pub web_host: String,
    /// This App's id (`github.app_id`): its own labels and comments are recognised by it.
    pub app_id: Option<u64>,
    /// Whether Codegen is configured (nothing is launched otherwise).
    pub agents: bool,
    /// Whether the bot runs as a GitHub App (installations can be listed) or with a token.
    pub app_mode: bool,
    /// Whether waiting issues' statuses show their expected start (made from a forecast of
    /// the whole graph after changes) and issues weigh their repository's learned figure.
    /// `simulate` turns it off: it measures scheduling in one repository, where every
    /// unlabelled issue would weigh the same figure (the order is the same), and its virtual
    /// clock would make a forecast after every event.
    pub forecasts: bool,
    /// `codegen.creations_per_minute`: the forecast launches no faster.
    pub launches_per_minute: usize,
}

impl EngineSettings {
    /// The settings `config` describes.
    pub fn from_config(config: &Config) -> Self {
        Self {
            orchestrator: config.orchestrator.clone(),
            projects: config.projects.clone(),
            max_concurrent: config.codegen.max_concurrent_agents.max(1) as usize,
            per_repository: config.codegen.max_agents_per_repository.map(|n| n as usize),
            retry_failed_runs: config.codegen.retry_failed_runs,
            web_host: config.github.web_host(),
            app_id: config.github.app_id,
            agents: config.codegen.org_id.is_some() && config.codegen.api_token.is_some(),
            app_mode: config.github.app_id.is_some(),
            forecasts: true,
            launches_per_minute: config.codegen.creations_per_minute.max(1) as usize,
        }
    }

    /// The settings of a repository without its own configuration file.
    pub fn repo_defaults(&self) -> RepoSettings {
        RepoSettings {
            trigger_label: self.orchestrator.trigger_label.clone(),
            label_prefix: self.orchestrator.label_prefix.clone(),
            prompt_template: self.orchestrator.prompt_template.clone(),
            max_agents: self.per_repository,
            status_field: self.projects.status_field.clone(),
            status_options: self.projects.status_options.clone(),
        }
    }
}

/// How many managed issues are in each state, and latest runs in each run state.
pub type Counts = (Vec<(WorkState, usize)>, Vec<(RunState, usize)>);

/// What changed since the last [`Engine::take_changes`], for the store.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    /// Issues to save, each with its JSON.
    pub issues: Vec<(InstallationId, IssueRef, String)>,
    /// Issues to forget.
    pub forgotten: Vec<IssueRef>,
    /// Settings to set or remove.
    pub settings: Vec<(String, Option<String>)>,
}

/// The engine: what it knows of every installation, and the rules.
pub struct Engine {
    settings: EngineSettings,
    parser: DependencyParser,
    installations: HashMap<InstallationId, Installation>,
    /// Repositories where launching is paused, with who paused them.
    paused: HashMap<RepoName, String>,
    /// Each repository's settings, once its configuration file was read.
    repos: HashMap<RepoName, RepoSettings>,
    /// Installations their account suspended: nothing is launched for them.
    suspended: BTreeSet<InstallationId>,
    /// Installations whose Codegen quota ran out: since when, and Codegen's message.
    quota: HashMap<InstallationId, (i64, String)>,
    /// Issues whose status may have changed since it was last published.
    dirty: BTreeSet<(InstallationId, IssueRef)>,
    /// The places of each installation's launch queue that statuses name, at the last
    /// settle (to show moved positions).
    queue_heads: HashMap<InstallationId, Vec<IssueRef>>,
    /// The repositories paused at the last settle: their ready issues were not queued.
    queue_paused: BTreeSet<RepoName>,
    /// Issues with a merge attempt in the outbox (not asked for again meanwhile).
    merging: BTreeSet<IssueRef>,
    /// Blockers seen for the first time and asked for: their dependents' statuses wait.
    blocker_reads: BTreeSet<(InstallationId, IssueRef)>,
    /// Repositories whose configuration file was asked for and not answered yet.
    config_pending: BTreeSet<RepoName>,
    /// The status comment last decided for each issue: an unchanged one is not sent again.
    published: HashMap<IssueRef, String>,
    /// Issues whose last status was given up on: decided again at the next tick.
    unpublished: BTreeSet<(InstallationId, IssueRef)>,
    /// Issues changed since the last `take_changes`.
    changed: BTreeSet<(InstallationId, IssueRef)>,
    forgotten: BTreeSet<IssueRef>,
    settings_changed: Vec<(String, Option<String>)>,
    /// Run durations learned from finished runs.
    durations: Durations,
    /// Each installation's latest forecast.
    forecasts: HashMap<InstallationId, Forecast>,
    /// The expected start each waiting issue's status last showed.
    shown_starts: HashMap<IssueRef, i64>,
    /// Installations changed since their forecast was made.
    forecast_stale: BTreeSet<InstallationId>,
    /// The time of the input being handled (what a `plan` reply's forecast starts from).
    now: i64,
}

impl Engine {
    /// An engine that knows nothing yet.
    pub fn new(settings: EngineSettings) -> Self {
        let parser = DependencyParser::new(&settings.web_host);
        Self {
            settings,
            parser,
            installations: HashMap::new(),
            paused: HashMap::new(),
            repos: HashMap::new(),
            suspended: BTreeSet::new(),
            quota: HashMap::new(),
            dirty: BTreeSet::new(),
            queue_heads: HashMap::new(),
            queue_paused: BTreeSet::new(),
            merging: BTreeSet::new(),
            blocker_reads: BTreeSet::new(),
            config_pending: BTreeSet::new(),
            published: HashMap::new(),
            unpublished: BTreeSet::new(),
            changed: BTreeSet::new(),
            forgotten: BTreeSet::new(),
            settings_changed: Vec::new(),
            durations: Durations::default(),
            forecasts: HashMap::new(),
            shown_starts: HashMap::new(),
            forecast_stale: BTreeSet::new(),
            now: 0,
        }
    }

    /// Restores what the store kept: tracked issues (as saved JSON), runs, and settings
    /// (`paused:<repo>`, `suspended:<id>`). Repository settings learnt before are kept.
    pub fn restore(
        &mut self,
        issues: Vec<(InstallationId, IssueRef, String)>,
        runs: Vec<RunRecord>,
        settings: Vec<(String, String)>,
    ) {
        let unblock_on = self.settings.orchestrator.unblock_on;
        let mut earlier = std::mem::take(&mut self.installations);
        self.paused.clear();
        self.suspended.clear();
        self.quota.clear();
        self.forecasts.clear();
        for (installation, issue, data) in issues {
            match serde_json::from_str::<Tracked>(&data) {
                Ok(tracked) => {
                    self.installations
                        .entry(installation)
                        .or_insert_with(|| Installation::new(unblock_on))
                        .issues
                        .insert(issue, tracked);
                }
                Err(err) => {
                    tracing::error!(%issue, error = %err, "a saved issue could not be read; it will be rediscovered");
                }
            }
        }
        for run in runs {
            if let Some(installation) = self.installations.get_mut(&run.installation) {
                installation.runs.insert(run.issue.clone(), run);
            }
        }
        for (key, value) in settings {
            if let Some(repo) = key.strip_prefix("paused:")
                && let Ok(repo) = repo.parse()
            {
                self.paused.insert(repo, value);
            } else if let Some(id) = key.strip_prefix("suspended:")
                && let Ok(id) = id.parse()
            {
                self.suspended.insert(InstallationId(id));
            } else if let Some(id) = key.strip_prefix("quota:")
                && let Ok(id) = id.parse()
                && let Some((since, message)) = value.split_once(' ')
                && let Ok(since) = since.parse()
            {
                // A quota pause outlives a restart (it ends on its own after its time).
                self.quota
                    .insert(InstallationId(id), (since, message.to_owned()));
            } else {
                self.durations.restore(&key, &value);
            }
        }
        let weights = self.weights();
        for (id, installation) in &mut self.installations {
            // The rebuilt graph carries on from the one it replaces (see `rebuild`).
            if let Some(before) = earlier.remove(id) {
                installation.graph = before.graph;
            }
            installation.weights = weights.clone();
            installation.rebuild(unblock_on);
        }
    }

    /// Handles one input at `now` (unix milliseconds): what it changes, and what follows.
    pub fn handle(&mut self, input: Input, now: i64) -> Vec<Decision> {
        let mut out = self.handle_unsettled(input, now);
        out.extend(self.settle(now));
        out
    }

    /// Handles one input but does not settle yet: what became ready is launched, and what
    /// changed is published, by the next [`Engine::settle`] (or [`Engine::handle`]). Inputs
    /// that belong together (a delivery and the answers to its reads, the results of one
    /// round of effects) are handled so and settled once: the scheduler's queue is worked
    /// out once, and no passing status is published between them.
    pub fn handle_unsettled(&mut self, input: Input, now: i64) -> Vec<Decision> {
        self.now = now;
        let mut out = Vec::new();
        match input {
            Input::Delivery(event) => {
                if let Some(deferred) = self.needs_config(&event) {
                    return vec![deferred];
                }
                self.on_delivery(*event, &mut out);
            }
            Input::Reconcile { targets } => self.reconcile(targets, &mut out),
            Input::RunsFollowed { recovered, ended } => {
                self.runs_followed(recovered, ended, &mut out)
            }
            Input::Result(outcome) => self.on_outcome(outcome, now, &mut out),
        }
        out
    }

    /// Launches what became ready and publishes whatever may have changed since the last
    /// settle.
    pub fn settle(&mut self, now: i64) -> Vec<Decision> {
        let mut out = Vec::new();
        self.settle_into(now, &mut out);
        out
    }

    /// What changed since the last call, for the store to save with the decisions.
    pub fn take_changes(&mut self) -> Changes {
        let issues = std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|(id, issue)| {
                let tracked = self.installations.get(&id)?.issues.get(&issue)?;
                let data = serde_json::to_string(tracked).expect("tracked issues serialise");
                Some((id, issue, data))
            })
            .collect();
        Changes {
            issues,
            forgotten: std::mem::take(&mut self.forgotten).into_iter().collect(),
            settings: std::mem::take(&mut self.settings_changed),
        }
    }

    /// What is tracked of `issue`, for tests and the status of one issue.
    pub fn tracked(&self, id: InstallationId, issue: &IssueRef) -> Option<&Tracked> {
        self.installations.get(&id)?.issues.get(issue)
    }

    /// The installation's state, when it has tracked issues.
    pub fn installation(&self, id: InstallationId) -> Option<&Installation> {
        self.installations.get(&id)
    }

    /// Installations suspended by their account.
    pub fn suspended(&self) -> &BTreeSet<InstallationId> {
        &self.suspended
    }

    /// How many managed issues are in each state, and latest runs in each run state.
    pub fn counts(&self) -> Counts {
        let mut issues: HashMap<WorkState, usize> = HashMap::new();
        let mut runs: HashMap<RunState, usize> = HashMap::new();
        for installation in self.installations.values() {
            for issue in installation.issues.keys() {
                if let Some(state) = publish::state_of(installation, issue) {
                    *issues.entry(state).or_default() += 1;
                }
            }
            for run in installation.runs.values() {
                *runs.entry(run.state).or_default() += 1;
            }
        }
        (
            WorkState::ALL
                .iter()
                .map(|s| (*s, issues.get(s).copied().unwrap_or(0)))
                .collect(),
            RunState::ALL
                .iter()
                .map(|s| (*s, runs.get(s).copied().unwrap_or(0)))
                .collect(),
        )
    }

    /// The scheduler with the configured caps and the paused repositories.
    fn scheduler(&self) -> Scheduler {
        Scheduler {
            per_repository: self.settings.per_repository,
            paused: self.paused.keys().cloned().collect(),
            repository_caps: self
                .repos
                .iter()
                .filter_map(|(repo, settings)| Some((repo.clone(), settings.max_agents?)))
                .collect(),
            ..Scheduler::new(self.settings.max_concurrent)
        }
    }

    /// The settings in force in `repo`: its file's, once read, else the global ones.
    fn repo(&self, repo: &RepoName) -> RepoSettings {
        self.repos
            .get(repo)
            .cloned()
            .unwrap_or_else(|| self.settings.repo_defaults())
    }

    fn installation_mut(&mut self, id: InstallationId) -> &mut Installation {
        if !self.installations.contains_key(&id) {
            let mut installation = Installation::new(self.settings.orchestrator.unblock_on);
            installation.weights = self.weights();
            self.installations.insert(id, installation);
        }
        self.installations
            .get_mut(&id)
            .expect("the installation was just made")
    }

    /// What unlabelled issues weigh: the learned figures, else the default.
    fn weights(&self) -> Weights {
        Weights {
            default_minutes: self.settings.orchestrator.default_estimate,
            learned: self
                .durations
                .repos()
                .filter_map(|(repo, _)| Some((repo.clone(), self.durations.learned_minutes(repo)?)))
                .collect(),
        }
    }

    /// The run durations learned so far.
    pub fn durations(&self) -> &Durations {
        &self.durations
    }

    /// Marks `issue` to be saved and, with what depends on it directly (their statuses
    /// show it), published. Issues further down show it only through a blocker that
    /// became satisfied or stopped being so: the graph says which, and the settle marks
    /// their dependents ([`Engine::mark_satisfaction_changes`]).
    fn touch(&mut self, id: InstallationId, issue: &IssueRef) {
        self.changed.insert((id, issue.clone()));
        self.forecast_stale.insert(id);
        let dependents = self
            .installations
            .get(&id)
            .map(|i| i.graph.direct_dependents(issue))
            .unwrap_or_default();
        self.dirty.insert((id, issue.clone()));
        self.dirty.extend(dependents.into_iter().map(|d| (id, d)));
    }

    /// Marks for publishing the dependents of every issue that became satisfied or
    /// stopped being so since the last time: what their statuses say of it changed.
    fn mark_satisfaction_changes(&mut self) {
        for (id, installation) in &mut self.installations {
            for issue in installation.graph.take_satisfaction_changes() {
                let dependents = installation.graph.direct_dependents(&issue);
                self.dirty.extend(dependents.into_iter().map(|d| (*id, d)));
            }
        }
    }

    /// Every tracked issue `keep` accepts, in every installation, in a stable order.
    fn issues_where(
        &self,
        keep: impl Fn(&Installation, &IssueRef, &Tracked) -> bool,
    ) -> Vec<(InstallationId, IssueRef)> {
        let mut found: Vec<(InstallationId, IssueRef)> = self
            .installations
            .iter()
            .flat_map(|(id, installation)| {
                let keep = &keep;
                installation
                    .issues
                    .iter()
                    .filter(move |(issue, tracked)| keep(installation, issue, tracked))
                    .map(move |(issue, _)| (*id, issue.clone()))
            })
            .collect();
        found.sort();
        found
    }

    /// Marks every managed issue of `repo` for publishing.
    fn touch_repository(&mut self, id: InstallationId, repo: &RepoName) {
        self.forecast_stale.insert(id);
        if let Some(installation) = self.installations.get(&id) {
            let issues: Vec<IssueRef> = installation
                .issues
                .iter()
                .filter(|(i, t)| &i.repo == repo && t.managed)
                .map(|(i, _)| i.clone())
                .collect();
            self.dirty.extend(issues.into_iter().map(|i| (id, i)));
        }
    }

    fn set_setting(&mut self, key: String, value: Option<String>) {
        self.settings_changed.push((key, value));
    }

    fn issue_url(&self, issue: &IssueRef) -> String {
        format!(
            "https://{}/{}/issues/{}",
            self.settings.web_host, issue.repo, issue.number
        )
    }

    fn settle_into(&mut self, now: i64, out: &mut Vec<Decision>) {
        self.mark_satisfaction_changes();
        // What changed may have finished an umbrella's last sub-issue (its dependents were
        // marked with it); closing it may make others ready, so it goes first.
        self.close_finished_umbrellas(out);
        self.launch_ready(now, out);
        self.mark_satisfaction_changes();
        self.mark_moved_in_queues();
        self.refresh_forecasts(now);
        self.publish_dirty(now, out);
    }

    /// Marks the issues whose place in the launch queue changed what their status says
    /// since the last settle: those that joined the queue, and those whose place moved
    /// among the first [`QUEUE_POSITIONS_SHOWN`] or into or out of them (the comments name
    /// no other place). From what joined and the first places only, not the whole queue.
    fn mark_moved_in_queues(&mut self) {
        let scheduler = self.scheduler();
        let resumed: Vec<&RepoName> = self
            .queue_paused
            .iter()
            .filter(|repo| !scheduler.paused.contains(*repo))
            .collect();
        let mut moved: Vec<(InstallationId, IssueRef)> = Vec::new();
        for (id, installation) in &mut self.installations {
            let graph = &mut installation.graph;
            let mut marked: Vec<IssueRef> = graph
                .take_joined()
                .into_iter()
                .filter(|issue| !scheduler.paused.contains(&issue.repo))
                .collect();
            // A resumed repository's ready issues join the queue as a whole.
            for repo in &resumed {
                marked.extend(graph.ready_in_repo(repo).cloned());
            }
            let head = scheduler.first_queued(graph, QUEUE_POSITIONS_SHOWN);
            let before = self.queue_heads.remove(id).unwrap_or_default();
            for (n, issue) in head.iter().enumerate() {
                if before.get(n) != Some(issue) {
                    marked.push(issue.clone());
                }
            }
            for issue in &before {
                if !head.contains(issue) && scheduler.is_queued(graph, issue) {
                    marked.push(issue.clone());
                }
            }
            moved.extend(marked.into_iter().map(|issue| (*id, issue)));
            self.queue_heads.insert(*id, head);
        }
        self.queue_paused = scheduler.paused;
        self.dirty.extend(moved);
    }
}
