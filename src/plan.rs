//! `plan`: what the bot would do with a set of issues — their dependencies, any cycle or
//! unknown reference, the launch order with the waves a pool of agents would see, and the
//! forecast (the scheduler run forward with each issue's expected duration: its
//! `estimate:` label, its repository's learned figure, or the default).
//! Pure: issues in, a report out; reading files and GitHub happens in the binary.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::Serialize;

use crate::deps::DependencyParser;
use crate::domain::{IssueRef, IssueSnapshot, IssueStatus, RepoName};
use crate::engine::durations::Durations;
use crate::engine::forecast::{self, Start};
use crate::engine::{DependencyGraph, IssueNode, Scheduler, to_mermaid};
use crate::github::{GitHub, GithubError, RestIssue};

/// The result of planning.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// Every issue involved, sorted.
    pub issues: Vec<PlannedIssue>,
    /// Each refused cycle, as the issues on it (the first not repeated).
    pub cycles: Vec<Vec<String>>,
    /// References to issues that are not in the input.
    pub unknown: Vec<String>,
    /// The launch order over the issues that can be launched.
    pub order: Vec<String>,
    /// The launches of each step of a pool of agents.
    pub waves: Vec<Vec<String>>,
    /// When the work is expected to be done, from now.
    pub forecast: PlanForecast,
    /// The graph, for the Mermaid view.
    #[serde(skip)]
    graph: DependencyGraph,
    /// How many agents the waves assume.
    #[serde(skip)]
    agents: usize,
}

/// The forecast of a plan, in seconds from now.
#[derive(Debug, Clone, Serialize)]
pub struct PlanForecast {
    /// When the last launchable issue is expected to finish; `null` when none is.
    pub finish_secs: Option<i64>,
    /// The agent hours the work is expected to cost (to the hundredth).
    pub agent_hours: f64,
    /// Each launchable issue's expected start and finish.
    pub issues: BTreeMap<String, PlanTimes>,
}

/// When one issue is expected to start and finish, in seconds from now.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PlanTimes {
    /// Expected start.
    pub start_secs: i64,
    /// Expected finish.
    pub finish_secs: i64,
}

/// What issues are expected to take: the learned figures and the default for issues
/// without an `estimate:` label.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// Learned run durations (`--history`, or the store's).
    pub learned: Durations,
    /// `orchestrator.default_estimate`, in minutes.
    pub default_minutes: u64,
    /// `codegen.creations_per_minute`.
    pub launches_per_minute: usize,
}

/// One issue of the report.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedIssue {
    /// `owner/repo#N`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Its title ("" when unknown).
    pub title: String,
    /// `open`, `closed_completed`, `closed_not_planned` or `unknown`.
    pub state: IssueStatus,
    /// Whether it carries the trigger label.
    pub managed: bool,
    /// What it depends on, sorted.
    pub depends_on: Vec<String>,
}

impl PlanReport {
    /// Whether the graph is valid: no cycle and no unknown reference.
    pub fn is_valid(&self) -> bool {
        self.cycles.is_empty() && self.unknown.is_empty()
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The whole graph as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        to_mermaid(&self.graph, None)
    }

    /// The report for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let managed = self.issues.iter().filter(|i| i.managed).count();
        let states: BTreeMap<&str, IssueStatus> = self
            .issues
            .iter()
            .map(|i| (i.reference.as_str(), i.state))
            .collect();
        let _ = writeln!(out, "Issues: {} ({managed} managed)", self.issues.len());
        for issue in &self.issues {
            let marker = if issue.managed { "managed" } else { "       " };
            let line = format!(
                "  {:<24} {:<20} {marker}  {}",
                issue.reference,
                state_name(issue.state),
                issue.title
            );
            let _ = writeln!(out, "{}", line.trim_end());
            for blocker in &issue.depends_on {
                let state = states
                    .get(blocker.as_str())
                    .copied()
                    .unwrap_or(IssueStatus::Unknown);
                let _ = writeln!(out, "      depends on {blocker} ({})", state_name(state));
            }
        }
        if !self.cycles.is_empty() {
            let _ = writeln!(out, "\nCycles (refused; nothing on them is launched):");
            for cycle in &self.cycles {
                let _ = writeln!(out, "  {} -> {}", cycle.join(" -> "), cycle[0]);
            }
        }
        if !self.unknown.is_empty() {
            let _ = writeln!(out, "\nUnknown references (not among the issues given):");
            for reference in &self.unknown {
                let _ = writeln!(out, "  {reference}");
            }
        }
        let waiting = self.not_launchable();
        if !waiting.is_empty() {
            let _ = writeln!(out, "\nManaged but not launchable:");
            for (reference, why) in waiting {
                let _ = writeln!(out, "  {reference}: {why}");
            }
        }
        let _ = writeln!(out, "\nLaunch order:");
        if self.order.is_empty() {
            let _ = writeln!(out, "  (nothing can be launched)");
        }
        for (position, reference) in self.order.iter().enumerate() {
            let _ = writeln!(out, "  {:>3}. {reference}", position + 1);
        }
        let plural = if self.agents == 1 { "" } else { "s" };
        let _ = writeln!(out, "\nWaves with {} agent{plural}:", self.agents);
        for (step, wave) in self.waves.iter().enumerate() {
            let _ = writeln!(out, "  {:>3}: {}", step + 1, wave.join(", "));
        }
        if let Some(finish) = self.forecast.finish_secs {
            let _ = writeln!(
                out,
                "\nForecast with {} agent{plural}: done in about {}, {:.1} agent hours.",
                self.agents,
                crate::simulate::human_duration(finish as f64),
                self.forecast.agent_hours
            );
        }
        out
    }
}

impl PlanReport {
    /// Managed, open issues outside the launch order, with why.
    fn not_launchable(&self) -> Vec<(String, String)> {
        let launchable: BTreeSet<&str> = self.order.iter().map(String::as_str).collect();
        let mut waiting = Vec::new();
        for issue in &self.issues {
            if !issue.managed
                || issue.state != IssueStatus::Open
                || launchable.contains(issue.reference.as_str())
            {
                continue;
            }
            let Ok(reference) = issue.reference.parse::<IssueRef>() else {
                continue;
            };
            let node = self.graph.get(&reference);
            let why = if node.is_some_and(|n| n.held) {
                "on a dependency cycle".to_owned()
            } else {
                let reasons: Vec<String> = self
                    .graph
                    .blockers(&reference)
                    .iter()
                    .filter_map(|b| {
                        let why = match b.state {
                            IssueStatus::Unknown => "unknown",
                            _ => b.blocks_because()?,
                        };
                        Some(format!("{} ({why})", b.issue))
                    })
                    .collect();
                if reasons.is_empty() {
                    "waits for blockers that cannot be launched".to_owned()
                } else {
                    format!("blocked by {}", reasons.join(", "))
                }
            };
            waiting.push((issue.reference.clone(), why));
        }
        waiting
    }
}

fn state_name(state: IssueStatus) -> &'static str {
    match state {
        IssueStatus::Open => "open",
        IssueStatus::ClosedCompleted => "closed (completed)",
        IssueStatus::ClosedNotPlanned => "closed (not planned)",
        IssueStatus::Deleted => "deleted",
        IssueStatus::Unknown => "unknown",
    }
}

/// Plans `issues`: the open ones carrying `trigger_label` are managed, the others are
/// known blockers (a closed issue that still carries the label included); `agents` sizes
/// the waves.
pub fn plan(
    issues: &[IssueSnapshot],
    trigger_label: &str,
    parser: &DependencyParser,
    agents: usize,
    expectations: &Expectations,
) -> PlanReport {
    let mut graph = DependencyGraph::new();
    let mut declared: BTreeMap<IssueRef, BTreeSet<IssueRef>> = BTreeMap::new();
    let mut managed = Vec::new();
    for issue in issues {
        // A closed issue keeps its labels; it is finished with (or dropped), so it blocks
        // with its state and what its body once declared no longer adds edges.
        let is_managed = issue.status == IssueStatus::Open
            && issue
                .labels
                .iter()
                .any(|l| l.eq_ignore_ascii_case(trigger_label));
        let mut node =
            IssueNode::new(issue.reference.clone(), issue.status).titled(issue.title.clone());
        node.managed = is_managed;
        node.weight = expectations
            .learned
            .expected_minutes(
                &issue.reference.repo,
                issue.labels.iter().map(String::as_str),
                expectations.default_minutes,
            )
            .0;
        graph.upsert(node);
        declared.insert(
            issue.reference.clone(),
            parser.dependencies(&issue.reference, &issue.body, &issue.labels),
        );
        if is_managed {
            managed.push(issue.reference.clone());
        }
    }
    let known: BTreeSet<IssueRef> = declared.keys().cloned().collect();
    let mut cycles: Vec<Vec<String>> = Vec::new();
    let mut seen_cycles: BTreeSet<BTreeSet<IssueRef>> = BTreeSet::new();
    managed.sort();
    for issue in &managed {
        if let Err(cycle) = graph.set_dependencies(issue, &declared[issue]) {
            graph.set_held(issue, true);
            let members: BTreeSet<IssueRef> = cycle.path.iter().cloned().collect();
            for member in &members {
                graph.set_held(member, true);
            }
            if seen_cycles.insert(members) {
                let mut path = cycle.path;
                path.pop();
                cycles.push(path.iter().map(ToString::to_string).collect());
            }
        }
    }
    let unknown: Vec<String> = graph
        .nodes()
        .filter(|node| !known.contains(&node.issue))
        .map(|node| node.issue.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let waves: Vec<Vec<String>> = graph
        .waves(agents)
        .into_iter()
        .map(|wave| wave.iter().map(ToString::to_string).collect())
        .collect();
    let order = waves.iter().flatten().cloned().collect();
    let mut nodes: Vec<_> = graph.nodes().collect();
    nodes.sort_by_key(|node| &node.issue);
    let planned: Vec<PlannedIssue> = nodes
        .into_iter()
        .map(|node| PlannedIssue {
            reference: node.issue.to_string(),
            title: node.title.clone().unwrap_or_default(),
            state: node.state,
            managed: node.managed,
            depends_on: declared
                .get(&node.issue)
                .map(|deps| deps.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
        })
        .collect();
    let forecast = plan_forecast(&graph, agents, expectations.launches_per_minute);
    PlanReport {
        issues: planned,
        cycles,
        unknown,
        order,
        waves,
        forecast,
        graph,
        agents,
    }
}

/// The scheduler run forward from now (nothing running) with `agents` agents.
fn plan_forecast(
    graph: &DependencyGraph,
    agents: usize,
    launches_per_minute: usize,
) -> PlanForecast {
    let start = Start {
        running: Vec::new(),
        launches_from: 0,
        launches_per_minute: launches_per_minute.max(1),
        now: 0,
    };
    let forecast = forecast::forecast(graph, &Scheduler::new(agents), &start);
    PlanForecast {
        finish_secs: forecast.finish.map(|ms| ms / 1000),
        agent_hours: (forecast.agent_hours() * 100.0).round() / 100.0,
        issues: forecast
            .issues
            .iter()
            .map(|(issue, expected)| {
                let times = PlanTimes {
                    start_secs: expected.start / 1000,
                    finish_secs: expected.finish / 1000,
                };
                (issue.to_string(), times)
            })
            .collect(),
    }
}

/// Reads what `plan --repo` needs from GitHub: the open issues of `repo` with the trigger
/// label, and every blocker they name that is not among them (any repository the
/// credentials reach). A blocker GitHub does not show is left out, so the plan reports it
/// as unknown.
pub async fn gather_from_github(
    github: &GitHub,
    repo: &RepoName,
    trigger_label: &str,
    parser: &DependencyParser,
) -> Result<Vec<IssueSnapshot>, GithubError> {
    let mut issues = github.open_issues_labeled(repo, trigger_label).await?;
    let known: BTreeSet<IssueRef> = issues.iter().map(|i| i.reference.clone()).collect();
    let blockers: BTreeSet<IssueRef> = issues
        .iter()
        .flat_map(|i| parser.dependencies(&i.reference, &i.body, &i.labels))
        .filter(|blocker| !known.contains(blocker))
        .collect();
    for blocker in &blockers {
        let snapshot = github.issue(blocker).await?;
        if snapshot.status != IssueStatus::Unknown {
            issues.push(snapshot);
        }
    }
    Ok(issues)
}

/// Reads a file of REST issue objects (a JSON array) into snapshots.
pub fn parse_issues(json: &str) -> Result<Vec<IssueSnapshot>, String> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let issues: Vec<RestIssue> =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if path == "." {
                format!("not a JSON array of issues: {inner}")
            } else {
                format!("at `{path}`: {inner}")
            }
        })?;
    issues
        .into_iter()
        .enumerate()
        .map(|(position, issue)| {
            let number = issue.number;
            issue.into_snapshot().ok_or_else(|| {
                format!(
                    "issue at position {position} (number {number}): no repository: neither `repository_url` nor `html_url` names one"
                )
            })
        })
        .collect()
}
