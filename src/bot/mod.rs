//! The bot: what the app does with events, commands, finished runs and the periodic
//! reconciliation. It keeps the live graph of every installation (rebuilt from the store at
//! start-up), asks the pure engine what to do, and carries the decisions out through
//! GitHub and Codegen.
//!
//! Everything that changes state goes through one lock, one event at a time, so that the
//! graph, the store and what GitHub shows never disagree for long. After each change,
//! [`Bot::settle`] launches what became ready and publishes the statuses that changed.

mod commands;
mod dependencies;
mod handlers;
mod installations;
mod launch;
mod publish;
mod reconcile;
mod repo_config;
mod tracked;
mod trigger;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::agents::{Agents, Launch, LaunchOutcome};
use crate::clock::now_millis;
use crate::config::{Config, OrchestratorConfig, ProjectsConfig};
use crate::deps::DependencyParser;
use crate::domain::{InstallationId, IssueRef, IssueStatus, RepoName};
use crate::engine::prompt::{PromptBlocker, PromptInput, render_prompt};
use crate::engine::{
    Decision, DependencyGraph, IssueNode, Priority, Scheduler, estimate_from_labels,
};
use crate::events::DomainEvent;
use crate::github::{GitHub, GitHubApp, GithubError};
use crate::store::{RunRecord, RunState, Store, StoreError};
pub use repo_config::{REPO_CONFIG_PATH, RepoSettings};
pub use tracked::Tracked;

/// The installation id used in token mode, where deliveries name none.
pub const TOKEN_MODE: InstallationId = InstallationId(0);

/// Why handling something failed; the delivery (or tick) is tried again later.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// GitHub did not answer as needed.
    #[error("GitHub: {0}")]
    Github(#[from] GithubError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What the bot needs from the configuration.
#[derive(Debug, Clone)]
pub struct BotSettings {
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
    /// How long a worker creating a status comment holds its claim (`storage.lease_secs`).
    pub claim_lease_ms: i64,
    /// This App's id (`github.app_id`): its own labels and comments are recognised by it.
    pub app_id: Option<u64>,
}

impl BotSettings {
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

    /// The settings `config` describes.
    pub fn from_config(config: &Config) -> Self {
        Self {
            orchestrator: config.orchestrator.clone(),
            projects: config.projects.clone(),
            max_concurrent: config.codegen.max_concurrent_agents.max(1) as usize,
            per_repository: config.codegen.max_agents_per_repository.map(|n| n as usize),
            retry_failed_runs: config.codegen.retry_failed_runs,
            web_host: config.github.web_host(),
            claim_lease_ms: config.storage.lease_secs.max(1) as i64 * 1000,
            app_id: config.github.app_id,
        }
    }
}

/// The bot. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Bot {
    inner: Arc<Inner>,
}

struct Inner {
    settings: BotSettings,
    store: Store,
    github: Arc<GitHubApp>,
    agents: Option<Agents>,
    parser: DependencyParser,
    state: Mutex<State>,
}

/// What the bot knows, per installation.
#[derive(Default)]
struct State {
    installations: HashMap<InstallationId, Installation>,
    /// Issues whose status may have changed since it was last published.
    dirty: BTreeSet<(InstallationId, IssueRef)>,
    /// Repositories where launching is paused, with who paused them.
    paused: HashMap<RepoName, String>,
    /// Each repository's settings, once its configuration file was read.
    repos: HashMap<RepoName, RepoSettings>,
    /// Installations their account suspended: nothing is launched for them.
    suspended: BTreeSet<InstallationId>,
}

/// One installation's graph and issues.
struct Installation {
    graph: DependencyGraph,
    issues: HashMap<IssueRef, Tracked>,
    /// The latest run of each issue that has one.
    runs: HashMap<IssueRef, RunRecord>,
}

impl Installation {
    fn new(settings: &BotSettings) -> Self {
        Self {
            graph: DependencyGraph::with_unblock_on(settings.orchestrator.unblock_on),
            issues: HashMap::new(),
            runs: HashMap::new(),
        }
    }
}

impl Bot {
    /// A bot over `store`, acting through `github` and (when configured) `agents`. Call
    /// [`Bot::load`] before use.
    pub fn new(
        settings: BotSettings,
        store: Store,
        github: Arc<GitHubApp>,
        agents: Option<Agents>,
    ) -> Self {
        let parser = DependencyParser::new(&settings.web_host);
        Self {
            inner: Arc::new(Inner {
                settings,
                store,
                github,
                agents,
                parser,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Rebuilds the graphs from the store: saved issues, their runs, paused repositories.
    pub async fn load(&self) -> Result<(), BotError> {
        let mut state = State::default();
        for (installation, issue, data) in self.inner.store.issues().await? {
            match serde_json::from_str::<Tracked>(&data) {
                Ok(tracked) => {
                    state
                        .installations
                        .entry(installation)
                        .or_insert_with(|| Installation::new(&self.inner.settings))
                        .issues
                        .insert(issue, tracked);
                }
                Err(err) => {
                    tracing::error!(%issue, error = %err, "a saved issue could not be read; it will be rediscovered")
                }
            }
        }
        for run in self.inner.store.all_runs().await? {
            if let Some(installation) = state.installations.get_mut(&run.installation) {
                installation.runs.insert(run.issue.clone(), run);
            }
        }
        for (key, by) in self.inner.store.settings_with_prefix("paused:").await? {
            if let Ok(repo) = key["paused:".len()..].parse() {
                state.paused.insert(repo, by);
            }
        }
        for (key, _) in self.inner.store.settings_with_prefix("suspended:").await? {
            if let Ok(id) = key["suspended:".len()..].parse() {
                state.suspended.insert(InstallationId(id));
            }
        }
        let keys: Vec<_> = state.installations.keys().copied().collect();
        for id in keys {
            let installation = state.installations.get_mut(&id).expect("listed");
            rebuild_graph(installation, &self.inner.settings);
        }
        let issues: usize = state.installations.values().map(|i| i.issues.len()).sum();
        tracing::debug!(
            installations = state.installations.len(),
            issues,
            "graphs rebuilt from the store"
        );
        let mut current = self.inner.state.lock().await;
        // Repository files are cached across reloads; a push re-reads them.
        state.repos = std::mem::take(&mut current.repos);
        *current = state;
        Ok(())
    }

    /// Acts on one event, then launches what became ready and publishes what changed.
    pub async fn handle(&self, event: DomainEvent) -> Result<(), BotError> {
        let mut state = self.inner.state.lock().await;
        self.apply_event(&mut state, event).await?;
        self.settle(&mut state).await
    }

    /// Settles launches a crash interrupted, follows running agents, and acts on the runs
    /// that ended.
    pub async fn tick(&self) -> Result<(), BotError> {
        let Some(agents) = &self.inner.agents else {
            return Ok(());
        };
        let now = now_millis();
        let recovered = agents.recover(now).await?;
        let ended = agents.poll(now).await?;
        let mut state = self.inner.state.lock().await;
        for (issue, outcome) in &recovered {
            tracing::info!(%issue, %outcome, "an interrupted launch was settled");
            self.reload_run(&mut state, issue).await?;
        }
        for ended in &ended {
            let record = &ended.record;
            let auto_retry = matches!(record.state, RunState::Failed | RunState::TimedOut)
                && record.attempt <= self.inner.settings.retry_failed_runs;
            if auto_retry
                && let Some(installation) = state.installations.get_mut(&record.installation)
                && let Some(tracked) = installation.issues.get_mut(&record.issue)
            {
                tracing::info!(issue = %record.issue, attempt = record.attempt,
                    "the run failed; trying again (codegen.retry_failed_runs)");
                tracked.cleared_attempt = record.attempt;
            }
            self.reload_run(&mut state, &record.issue).await?;
        }
        self.merge_ready(&mut state).await?;
        self.settle(&mut state).await
    }

    /// Reads the latest run of `issue` from the store into its installation and brings
    /// the graph in line.
    async fn reload_run(&self, state: &mut State, issue: &IssueRef) -> Result<(), BotError> {
        let Some(latest) = self.inner.store.runs_of(issue).await?.pop() else {
            return Ok(());
        };
        let id = latest.installation;
        let Some(installation) = state.installations.get_mut(&id) else {
            return Ok(());
        };
        installation.runs.insert(issue.clone(), latest);
        self.refresh_agent(state, id, issue).await
    }

    /// Launches whatever is ready, then publishes every status that may have changed.
    async fn settle(&self, state: &mut State) -> Result<(), BotError> {
        self.launch_ready(state).await?;
        self.mark_queue_dirty(state);
        self.publish_dirty(state).await;
        self.report_states(state);
        Ok(())
    }

    /// Sets the gauges of managed issues by state and of latest runs by state.
    fn report_states(&self, state: &State) {
        use crate::telemetry::names;
        let mut issues: HashMap<&'static str, usize> = HashMap::new();
        let mut runs: HashMap<&'static str, usize> = HashMap::new();
        for installation in state.installations.values() {
            for issue in installation.issues.keys() {
                if let Some(work) = publish::state_of(installation, issue) {
                    *issues.entry(work.name()).or_default() += 1;
                }
            }
            for run in installation.runs.values() {
                *runs.entry(run.state.as_str()).or_default() += 1;
            }
        }
        for work in crate::engine::status::WorkState::ALL {
            let count = issues.get(work.name()).copied().unwrap_or(0);
            metrics::gauge!(names::ISSUES, "state" => work.name()).set(count as f64);
        }
        // Every state, so that one whose last run moved on drops to zero.
        for run_state in RunState::ALL {
            let count = runs.get(run_state.as_str()).copied().unwrap_or(0);
            metrics::gauge!(names::RUNS, "state" => run_state.as_str()).set(count as f64);
        }
    }

    /// Brings an issue's agent marks in the graph in line with its latest run, and marks it
    /// and its dependents for publishing.
    async fn refresh_agent(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Result<(), BotError> {
        let Some(installation) = state.installations.get_mut(&id) else {
            return Ok(());
        };
        let cleared = installation
            .issues
            .get(issue)
            .map_or(0, |t| t.cleared_attempt);
        apply_run(
            &mut installation.graph,
            issue,
            installation.runs.get(issue),
            cleared,
        );
        self.save(state, id, issue).await?;
        mark_with_dependents(state, id, issue);
        Ok(())
    }

    /// The settings in force in `repo`: its file's, once read, else the global ones.
    fn repo(&self, state: &State, repo: &RepoName) -> RepoSettings {
        state
            .repos
            .get(repo)
            .cloned()
            .unwrap_or_else(|| self.inner.settings.repo_defaults())
    }

    /// Reads `repo`'s configuration file on first use; an invalid one is reported on
    /// `report_on` (and in the log) and the defaults apply.
    async fn load_repo(
        &self,
        state: &mut State,
        id: InstallationId,
        repo: &RepoName,
        report_on: Option<&IssueRef>,
    ) -> Result<RepoSettings, BotError> {
        if let Some(known) = state.repos.get(repo) {
            return Ok(known.clone());
        }
        let defaults = self.inner.settings.repo_defaults();
        let client = self.client(id, repo).await?;
        let settings = match client.file(repo, REPO_CONFIG_PATH).await {
            Ok(None) => defaults,
            Ok(Some(text)) => match repo_config::parse_overrides(&text) {
                Ok(overrides) => {
                    tracing::info!(%repo, "the repository's configuration file applies");
                    RepoSettings::with(&defaults, overrides)
                }
                Err(problem) => {
                    tracing::warn!(%repo, %problem, "the repository's configuration file is invalid; the defaults apply");
                    if let Some(issue) = report_on {
                        let text = format!(
                            "⚠️ `{REPO_CONFIG_PATH}` on the default branch is invalid: {problem}. \
                             The defaults apply until it is fixed."
                        );
                        client.create_comment(issue, &text).await?;
                    }
                    defaults
                }
            },
            Err(err) if err.status() == Some(403) => {
                tracing::warn!(%repo, error = %err, "cannot read the repository's configuration file; the defaults apply");
                defaults
            }
            Err(err) => return Err(err.into()),
        };
        state.repos.insert(repo.clone(), settings.clone());
        Ok(settings)
    }

    fn issue_url(&self, issue: &IssueRef) -> String {
        format!(
            "https://{}/{}/issues/{}",
            self.inner.settings.web_host, issue.repo, issue.number
        )
    }

    /// The GitHub client acting for `installation` on `repo`.
    async fn client(
        &self,
        installation: InstallationId,
        repo: &RepoName,
    ) -> Result<GitHub, GithubError> {
        self.inner.github.client(installation, repo).await
    }

    /// Saves what is known of `issue`. (The JSON is made before the await: a graph is
    /// not `Sync`, so no reference into the state may live across one.)
    async fn save(
        &self,
        state: &mut State,
        id: InstallationId,
        issue: &IssueRef,
    ) -> Result<(), BotError> {
        let data = state
            .installations
            .get(&id)
            .and_then(|installation| installation.issues.get(issue))
            .map(|tracked| serde_json::to_string(tracked).expect("tracked issues serialise"));
        if let Some(data) = data {
            self.inner
                .store
                .save_issue(id, issue, &data, now_millis())
                .await?;
        }
        Ok(())
    }

    /// Queue positions move whenever anything launches: every queued issue may show a new
    /// one. Unchanged comments are not edited (their hash is compared).
    fn mark_queue_dirty(&self, state: &mut State) {
        let scheduler = self.scheduler(state);
        let queued: Vec<(InstallationId, IssueRef)> = state
            .installations
            .iter()
            .flat_map(|(id, installation)| {
                scheduler
                    .queue(&installation.graph)
                    .into_iter()
                    .map(move |issue| (*id, issue))
            })
            .collect();
        state.dirty.extend(queued);
    }
}

/// The pull request a GitHub URL names (`https://host/owner/repo/pull/12`).
fn pull_ref(url: &str) -> Option<IssueRef> {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let number = parts.next()?.parse().ok()?;
    (parts.next()? == "pull").then_some(())?;
    let name = parts.next()?;
    let owner = parts.next()?;
    Some(IssueRef::new(RepoName::new(owner, name).ok()?, number))
}

/// Sets the agent marks of `issue` from its latest run: attempts made, whether the current
/// attempt is launched (not cleared by a retry), whether it succeeded.
fn apply_run(graph: &mut DependencyGraph, issue: &IssueRef, run: Option<&RunRecord>, cleared: u32) {
    let attempts = run.map_or(0, |r| r.attempt).max(cleared);
    let started = run.is_some_and(|r| r.attempt > cleared);
    let done = started && run.is_some_and(|r| r.state == RunState::Succeeded);
    graph.set_agent(issue, attempts, started, done);
}

/// Rebuilds an installation's graph from its tracked issues and runs.
fn rebuild_graph(installation: &mut Installation, settings: &BotSettings) {
    let mut graph = DependencyGraph::with_unblock_on(settings.orchestrator.unblock_on);
    let mut issues: Vec<_> = installation.issues.iter().collect();
    issues.sort_by(|a, b| a.0.cmp(b.0));
    for (issue, tracked) in &issues {
        graph.upsert(node_for(issue, tracked));
    }
    for (issue, tracked) in &issues {
        if tracked.managed {
            // A cycle cannot come back from the store: edges were checked when added.
            if let Err(cycle) = graph.set_dependencies(issue, &tracked.blockers()) {
                tracing::warn!(%issue, cycle = %cycle, "a saved dependency closes a cycle; holding the issue");
                graph.set_held(issue, true);
            }
            if tracked.cycle.is_some() || tracked.unseen_blockers > 0 {
                graph.set_held(issue, true);
            }
        }
    }
    for (issue, tracked) in &issues {
        apply_run(
            &mut graph,
            issue,
            installation.runs.get(*issue),
            tracked.cleared_attempt,
        );
    }
    installation.graph = graph;
}

/// The graph node for a tracked issue.
fn node_for(issue: &IssueRef, tracked: &Tracked) -> IssueNode {
    let mut node = IssueNode::new(issue.clone(), tracked.status);
    node.managed = tracked.managed && tracked.status == IssueStatus::Open;
    node.pr_open = !tracked.branches.is_empty();
    node.title = tracked.title.clone();
    let labels = tracked.labels.iter().map(String::as_str);
    node.priority = Priority::from_labels(labels.clone());
    if let Some(minutes) = estimate_from_labels(labels) {
        node.weight = minutes;
    }
    node
}

/// Marks `issue`, its blockers' dependents and everything depending on it for publishing.
fn mark_with_dependents(state: &mut State, id: InstallationId, issue: &IssueRef) {
    let Some(installation) = state.installations.get(&id) else {
        return;
    };
    let dependents = installation.graph.dependents(issue);
    state.dirty.insert((id, issue.clone()));
    state
        .dirty
        .extend(dependents.into_iter().map(|dependent| (id, dependent)));
}
