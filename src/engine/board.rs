//! What the dashboard shows of one repository: the graph (nodes with their state and
//! depth, edges), the issues running, queued, blocked, failed and done, and the totals.
//! Pure: the caller reads an installation's saved issues and runs into an
//! [`Installation`], says which repositories the viewer may read, and renders the result.
//!
//! Nothing about an issue of a repository the viewer may not read goes into a board: such
//! a blocker is counted (`hidden_blockers`), never named, and a cycle path through one is
//! left out. The forecast fields (`expected_*`, `agent_hours`) come from the installation's
//! forecast (the engine's scheduler run forward, made by the caller from the same
//! `Installation`), and are `None` for an issue it gives no time (it waits for something
//! the bot does not do) or when there is no forecast (Codegen not configured, suspended).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::Scheduler;
use super::forecast::{Expected, Forecast};
use super::machine::{Installation, state_of};
use super::status::WorkState;
use crate::domain::{IssueRef, IssueStatus, RepoName, RunState};

/// One repository as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoBoard {
    /// `owner/repo`.
    pub repo: String,
    /// Who paused launching in it (`/codegen pause`), when paused.
    pub paused_by: Option<String>,
    /// The comment that resumes it, when paused.
    pub resume: Option<String>,
    /// Codegen's message while its plan's quota is used up (launches wait).
    pub quota_pause: Option<String>,
    /// The App's installation is suspended: nothing runs.
    pub suspended: bool,
    /// The dependency graph of its managed issues and their blockers.
    pub graph: GraphView,
    /// Issues an agent works on.
    pub running: Vec<RunningRow>,
    /// Issues waiting for a free agent, first in line first.
    pub queued: Vec<QueuedRow>,
    /// Issues waiting for blockers.
    pub blocked: Vec<BlockedRow>,
    /// Issues whose last attempt failed.
    pub failed: Vec<FailedRow>,
    /// Issues done.
    pub done: Vec<DoneRow>,
    /// Counts, and the forecast of the whole.
    pub totals: Totals,
}

/// The graph: nodes in layers by depth, edges from blocker to blocked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphView {
    /// Nodes ordered by depth, then issue.
    pub nodes: Vec<NodeView>,
    /// `(blocker, blocked)` as indexes into `nodes`.
    pub edges: Vec<(usize, usize)>,
}

/// One issue in the graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    /// `owner/repo#N`.
    pub issue: String,
    /// Its number.
    pub number: u64,
    /// Its title, when known.
    pub title: Option<String>,
    /// Its state, or the state of a blocker the bot does not manage.
    pub state: NodeState,
    /// Held back because a dependency would close a cycle.
    pub cycle: bool,
    /// Its layer: 0 without blockers in the graph, else one more than its deepest blocker.
    pub depth: usize,
}

/// What a node's colour says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Managed, waiting for blockers.
    Blocked,
    /// Managed, waiting for an agent.
    Queued,
    /// Managed, an agent works on it.
    Running,
    /// Managed and done, or a blocker closed as completed.
    Done,
    /// Managed, its last attempt failed.
    Failed,
    /// A blocker the bot does not manage, still open.
    Open,
    /// A blocker closed as not planned: it blocks for good.
    NotPlanned,
    /// A blocker deleted, or not read yet.
    Unknown,
}

impl NodeState {
    /// The state's name, as in the JSON and the page's CSS classes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Open => "open",
            Self::NotPlanned => "not_planned",
            Self::Unknown => "unknown",
        }
    }
}

/// An issue an agent works on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningRow {
    /// `owner/repo#N`.
    pub issue: String,
    /// Its title.
    pub title: Option<String>,
    /// Which attempt.
    pub attempt: u32,
    /// The run's page on Codegen.
    pub run_url: Option<String>,
    /// Seconds since the run started (or was asked for).
    pub elapsed_secs: i64,
    /// Forecast: expected finish (unix ms).
    pub expected_finish: Option<i64>,
    /// Forecast: agent hours it will take.
    pub agent_hours: Option<f64>,
}

/// An issue waiting for an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedRow {
    /// `owner/repo#N`.
    pub issue: String,
    /// Its title.
    pub title: Option<String>,
    /// Its place in the installation's launch queue (from 1); none while paused.
    pub position: Option<usize>,
    /// Forecast: expected start (unix ms).
    pub expected_start: Option<i64>,
    /// Forecast: expected finish (unix ms).
    pub expected_finish: Option<i64>,
    /// Forecast: agent hours it will take.
    pub agent_hours: Option<f64>,
}

/// An issue waiting for blockers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockedRow {
    /// `owner/repo#N`.
    pub issue: String,
    /// Its title.
    pub title: Option<String>,
    /// The blockers that still hold it, in the repositories the viewer may read.
    pub blockers: Vec<BlockerRow>,
    /// Blockers that hold it in repositories the viewer may not read, or that the App
    /// cannot read (GitHub counts them): counted, never named.
    pub hidden_blockers: u32,
    /// The cycle a dependency of it would close, when that holds it.
    pub cycle: Option<String>,
    /// Forecast: expected start (unix ms).
    pub expected_start: Option<i64>,
    /// Forecast: expected finish (unix ms).
    pub expected_finish: Option<i64>,
    /// Forecast: agent hours it will take.
    pub agent_hours: Option<f64>,
}

/// A blocker that still holds an issue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockerRow {
    /// `owner/repo#N`.
    pub issue: String,
    /// Its title.
    pub title: Option<String>,
    /// Why it still blocks ("still open", "closed as not planned", ...).
    pub why: String,
}

/// An issue whose last attempt failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedRow {
    /// `owner/repo#N`.
    pub issue: String,
    /// Its title.
    pub title: Option<String>,
    /// Which attempt failed.
    pub attempt: u32,
    /// Why, as Codegen or the bot said.
    pub reason: Option<String>,
    /// The run's page.
    pub run_url: Option<String>,
    /// The comment that starts another attempt.
    pub retry: String,
}

/// An issue done.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoneRow {
    /// `owner/repo#N`.
    pub issue: String,
    /// Its title.
    pub title: Option<String>,
    /// Pull requests that close it, or that its agent opened.
    pub pull_requests: Vec<String>,
}

/// Counts of a repository's managed issues by state, and the forecast of the whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Managed issues shown.
    pub issues: usize,
    /// Blocked.
    pub blocked: usize,
    /// Queued.
    pub queued: usize,
    /// Running.
    pub running: usize,
    /// Done.
    pub done: usize,
    /// Failed.
    pub failed: usize,
    /// Forecast: when the last open issue is expected to be done (unix ms).
    pub expected_finish: Option<i64>,
    /// Forecast: agent hours the open issues will take.
    pub agent_hours: Option<f64>,
}

/// What a board is built from, besides the installation.
pub struct BoardContext<'a> {
    /// Repositories the viewer may read (any case).
    pub visible: &'a BTreeSet<String>,
    /// Paused repositories and who paused each.
    pub paused: &'a BTreeMap<RepoName, String>,
    /// Whether the installation is suspended.
    pub suspended: bool,
    /// Codegen's message while the installation's launches pause for a used-up quota.
    pub quota_pause: Option<&'a str>,
    /// `orchestrator.command`, for the retry command.
    pub command: &'a str,
    /// The installation's forecast, when one is made.
    pub forecast: Option<&'a Forecast>,
    /// Unix ms.
    pub now: i64,
}

impl BoardContext<'_> {
    /// When `issue` is expected to start and finish.
    fn expected(&self, issue: &IssueRef) -> Option<Expected> {
        self.forecast?.of(issue)
    }

    /// The agent hours `issue` has left by the forecast: from its expected start, or from
    /// when the forecast was made for a running one.
    fn hours_left(&self, issue: &IssueRef) -> Option<f64> {
        let expected = self.expected(issue)?;
        let from = expected.start.max(self.forecast?.made_at);
        Some((expected.finish - from).max(0) as f64 / 3_600_000.0)
    }

    fn sees(&self, repo: &RepoName) -> bool {
        self.visible
            .contains(&repo.to_string().to_ascii_lowercase())
    }
}

/// The board of `repo`, from its installation's state.
pub fn repo_board(
    installation: &Installation,
    repo: &RepoName,
    context: &BoardContext,
) -> RepoBoard {
    let graph = &installation.graph;
    let mut managed: Vec<(&IssueRef, WorkState)> = installation
        .issues
        .keys()
        .filter(|issue| issue.repo == *repo)
        .filter_map(|issue| Some((issue, state_of(installation, issue)?)))
        .collect();
    managed.sort_by(|a, b| a.0.cmp(b.0));
    let mut scheduler = Scheduler::new(1);
    scheduler.paused = context.paused.keys().cloned().collect();
    // Places among the issues the viewer may see: a place counted over the whole
    // installation would tell how many issues of unreadable repositories come first.
    let positions: HashMap<IssueRef, usize> = scheduler
        .queue(graph)
        .into_iter()
        .filter(|issue| context.sees(&issue.repo))
        .enumerate()
        .map(|(at, issue)| (issue, at + 1))
        .collect();
    let title = |issue: &IssueRef| installation.issues.get(issue).and_then(|t| t.title.clone());
    let mut board = RepoBoard {
        repo: repo.to_string(),
        paused_by: context.paused.get(repo).cloned(),
        resume: context
            .paused
            .contains_key(repo)
            .then(|| format!("{} resume", context.command)),
        quota_pause: context.quota_pause.map(str::to_owned),
        suspended: context.suspended,
        graph: graph_view(installation, &managed, context),
        running: Vec::new(),
        queued: Vec::new(),
        blocked: Vec::new(),
        failed: Vec::new(),
        done: Vec::new(),
        totals: Totals::default(),
    };
    for (issue, state) in &managed {
        let issue = *issue;
        let Some(tracked) = installation.issues.get(issue) else {
            continue;
        };
        let run = installation.runs.get(issue);
        let name = issue.to_string();
        match state {
            WorkState::Running => board.running.push(RunningRow {
                issue: name,
                title: title(issue),
                attempt: run.map_or(0, |r| r.attempt),
                run_url: run.and_then(|r| r.web_url.clone()),
                elapsed_secs: run
                    .map(|r| (context.now - r.started_at.unwrap_or(r.created_at)).max(0) / 1000)
                    .unwrap_or(0),
                expected_finish: context.expected(issue).map(|e| e.finish),
                agent_hours: context.hours_left(issue),
            }),
            WorkState::Queued => board.queued.push(QueuedRow {
                issue: name,
                title: title(issue),
                position: positions.get(issue).copied(),
                expected_start: context.expected(issue).map(|e| e.start),
                expected_finish: context.expected(issue).map(|e| e.finish),
                agent_hours: context.hours_left(issue),
            }),
            WorkState::Blocked => {
                let mut hidden = tracked.unseen_blockers + tracked.unseen_children;
                let mut blockers = Vec::new();
                for blocker in graph.blockers(issue) {
                    if graph.is_satisfied(&blocker.issue) {
                        continue;
                    }
                    if !context.sees(&blocker.issue.repo) {
                        hidden += 1;
                        continue;
                    }
                    blockers.push(BlockerRow {
                        issue: blocker.issue.to_string(),
                        title: title(&blocker.issue),
                        why: blocker_reason(installation, &blocker.issue, blocker.state),
                    });
                }
                board.blocked.push(BlockedRow {
                    issue: name,
                    title: title(issue),
                    blockers,
                    hidden_blockers: hidden,
                    cycle: tracked
                        .cycle
                        .clone()
                        .filter(|path| cycle_is_visible(path, context)),
                    expected_start: context.expected(issue).map(|e| e.start),
                    expected_finish: context.expected(issue).map(|e| e.finish),
                    agent_hours: context.hours_left(issue),
                });
            }
            WorkState::Failed => board.failed.push(FailedRow {
                issue: name,
                title: title(issue),
                attempt: run.map_or(0, |r| r.attempt),
                reason: run.and_then(|r| r.failure.clone()),
                run_url: run.and_then(|r| r.web_url.clone()),
                retry: format!("{} retry", context.command),
            }),
            WorkState::Done => {
                let mut pulls: Vec<String> = tracked.pulls.iter().map(|p| p.url.clone()).collect();
                if let Some(run) = run.filter(|r| r.state == RunState::Succeeded) {
                    pulls.extend(run.pull_requests.iter().map(|p| p.url.clone()));
                }
                // A pull request of another repository may close this issue ("Fixes
                // owner/repo#N"): its address names that repository.
                pulls.retain(|url| pull_is_visible(url, context));
                pulls.sort();
                pulls.dedup();
                board.done.push(DoneRow {
                    issue: name,
                    title: title(issue),
                    pull_requests: pulls,
                });
            }
        }
    }
    board
        .queued
        .sort_by_key(|row| (row.position.unwrap_or(usize::MAX), row.issue.clone()));
    board.totals = Totals {
        issues: managed.len(),
        blocked: board.blocked.len(),
        queued: board.queued.len(),
        running: board.running.len(),
        done: board.done.len(),
        failed: board.failed.len(),
        // The repository's own share of the installation's forecast.
        expected_finish: managed
            .iter()
            .filter_map(|(issue, _)| context.expected(issue))
            .map(|e| e.finish)
            .max(),
        agent_hours: context.forecast.map(|_| {
            managed
                .iter()
                .filter_map(|(issue, _)| context.hours_left(issue))
                .sum()
        }),
    };
    board
}

/// Why a blocker still holds: its issue's state, or for an open blocker the bot manages,
/// its own work state.
fn blocker_reason(installation: &Installation, blocker: &IssueRef, status: IssueStatus) -> String {
    let base = super::Blocker {
        issue: blocker.clone(),
        state: status,
    };
    match (status, state_of(installation, blocker)) {
        (IssueStatus::Open, Some(state)) => state.name().to_owned(),
        _ => base.blocks_because().unwrap_or("done").to_owned(),
    }
}

/// Whether every issue a cycle's path names (`owner/repo#N -> owner/repo#M -> ...`, as
/// the engine writes it; a bare `#N` is in the issue's own repository, which the viewer
/// reads) is in a repository the viewer may read; a path that does not read so is not
/// shown.
fn cycle_is_visible(path: &str, context: &BoardContext) -> bool {
    path.split(" -> ").all(|part| {
        let part = part.trim();
        let own = part
            .strip_prefix('#')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        own || part
            .parse::<IssueRef>()
            .is_ok_and(|issue| context.sees(&issue.repo))
    })
}

/// Whether a pull request's address (`https://host/owner/repo/pull/N`) is in a repository
/// the viewer may read; an address that does not read so is not shown.
fn pull_is_visible(url: &str, context: &BoardContext) -> bool {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let mut parts = path.split('/').skip(1);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(owner), Some(repo), Some("pull")) => format!("{owner}/{repo}")
            .parse::<RepoName>()
            .is_ok_and(|repo| context.sees(&repo)),
        _ => false,
    }
}

/// The graph of `managed` with their blockers in visible repositories, layered by depth.
fn graph_view(
    installation: &Installation,
    managed: &[(&IssueRef, WorkState)],
    context: &BoardContext,
) -> GraphView {
    let graph = &installation.graph;
    let states: HashMap<&IssueRef, WorkState> = managed.iter().copied().collect();
    let mut shown: BTreeSet<IssueRef> = managed.iter().map(|(issue, _)| (*issue).clone()).collect();
    for (issue, _) in managed {
        for blocker in graph.blockers(issue) {
            if context.sees(&blocker.issue.repo) {
                shown.insert(blocker.issue);
            }
        }
    }
    let blockers_of: HashMap<&IssueRef, Vec<IssueRef>> = shown
        .iter()
        .map(|issue| {
            let within = graph
                .blockers(issue)
                .into_iter()
                .map(|b| b.issue)
                .filter(|b| shown.contains(b) && b != issue)
                .collect();
            (issue, within)
        })
        .collect();
    let mut depths: HashMap<&IssueRef, usize> = HashMap::new();
    for issue in &shown {
        depth_of(issue, &blockers_of, &mut depths, 0);
    }
    let mut nodes: Vec<NodeView> = shown
        .iter()
        .map(|issue| {
            let tracked = installation.issues.get(issue);
            let node = graph.get(issue);
            let state = match states.get(issue) {
                Some(state) => match state {
                    WorkState::Blocked => NodeState::Blocked,
                    WorkState::Queued => NodeState::Queued,
                    WorkState::Running => NodeState::Running,
                    WorkState::Done => NodeState::Done,
                    WorkState::Failed => NodeState::Failed,
                },
                None => match node.map_or(IssueStatus::Unknown, |n| n.state) {
                    IssueStatus::Open => NodeState::Open,
                    IssueStatus::ClosedCompleted => NodeState::Done,
                    IssueStatus::ClosedNotPlanned => NodeState::NotPlanned,
                    IssueStatus::Deleted | IssueStatus::Unknown => NodeState::Unknown,
                },
            };
            NodeView {
                issue: issue.to_string(),
                number: issue.number,
                title: tracked.and_then(|t| t.title.clone()),
                state,
                cycle: tracked.is_some_and(|t| t.cycle.is_some()),
                depth: depths.get(issue).copied().unwrap_or(0),
            }
        })
        .collect();
    nodes.sort_by(|a, b| (a.depth, &a.issue).cmp(&(b.depth, &b.issue)));
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(at, node)| (node.issue.as_str(), at))
        .collect();
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for (issue, blockers) in &blockers_of {
        let Some(&to) = index.get(issue.to_string().as_str()) else {
            continue;
        };
        for blocker in blockers {
            if let Some(&from) = index.get(blocker.to_string().as_str()) {
                edges.push((from, to));
            }
        }
    }
    edges.sort_unstable();
    GraphView { nodes, edges }
}

/// The depth of `issue` (memoised); `guard` stops a cycle (the graph refuses them, so only
/// a corrupt store could hold one) from recursing for ever.
fn depth_of<'a>(
    issue: &'a IssueRef,
    blockers_of: &'a HashMap<&'a IssueRef, Vec<IssueRef>>,
    depths: &mut HashMap<&'a IssueRef, usize>,
    guard: usize,
) -> usize {
    if let Some(depth) = depths.get(issue) {
        return *depth;
    }
    if guard > blockers_of.len() {
        return 0;
    }
    let depth = blockers_of
        .get(issue)
        .map(|blockers| {
            blockers
                .iter()
                .map(|b| depth_of(b, blockers_of, depths, guard + 1) + 1)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    depths.insert(issue, depth);
    depth
}

#[cfg(test)]
#[path = "board_tests.rs"]
mod tests;
