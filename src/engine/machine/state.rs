//! What the engine knows between inputs: per installation, the graph, what it keeps of
//! each issue ([`Tracked`], saved as JSON by the store) and each issue's latest run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::domain::{
    IssueRef, IssueSnapshot, IssueStatus, PullRequestLink, RunRecord, SubIssueCounts,
};
use crate::engine::{DependencyGraph, IssueNode, Priority, UnblockOn, estimate_from_labels};

/// What the engine knows of an issue it manages, or of a blocker of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    /// Its title, when known.
    pub title: Option<String>,
    /// Its body (managed issues only: the prompt is made from it).
    #[serde(default)]
    pub body: String,
    /// Open, closed (and how), deleted or unknown.
    pub status: IssueStatus,
    /// Its labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Whether the bot manages it.
    #[serde(default)]
    pub managed: bool,
    /// Dependencies its body and labels declare.
    #[serde(default)]
    pub declared: BTreeSet<IssueRef>,
    /// Its native `blocked_by` dependencies.
    #[serde(default)]
    pub native: BTreeSet<IssueRef>,
    /// Its native blockers are being read: it waits for the answer.
    #[serde(default)]
    pub native_pending: bool,
    /// Dependencies added by `/codegen depends on`.
    #[serde(default)]
    pub added: BTreeSet<IssueRef>,
    /// Dependencies removed by `/codegen unblock`.
    #[serde(default)]
    pub removed: BTreeSet<IssueRef>,
    /// Pull requests that close it.
    #[serde(default)]
    pub pulls: BTreeSet<PullRequestLink>,
    /// Head branches of its open pull requests, by URL (for stacked work).
    #[serde(default)]
    pub branches: BTreeMap<String, String>,
    /// A dependency refused as a cycle, with the cycle's path.
    #[serde(default)]
    pub cycle: Option<String>,
    /// Problems reported once in the status (Projects, configuration).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Runs up to this attempt no longer count (`/codegen retry` asked for another).
    #[serde(default)]
    pub cleared_attempt: u32,
    /// The state label last applied, to change labels only when the state changes.
    #[serde(default)]
    pub state_label: Option<String>,
    /// The Projects option last set, to touch the board only when it changes.
    #[serde(default)]
    pub project_option: Option<String>,
    /// Put under management by a writer's `/codegen run` rather than by the label.
    #[serde(default)]
    pub by_command: bool,
    /// Who applied the trigger label without the right to start agents, as the refusal
    /// posted on the issue names them (said once; cleared when a writer acts).
    #[serde(default)]
    pub refused: Option<String>,
    /// Open issues GitHub counts as blocking it, including those the App cannot read
    /// (`issue_dependencies_summary.blocked_by`), as last seen.
    #[serde(default)]
    pub open_blockers: Option<u32>,
    /// Open blockers GitHub counts but the App cannot list: they hold the issue.
    #[serde(default)]
    pub unseen_blockers: u32,
    /// Its sub-issues (GitHub's parent/child links): they block it like dependencies.
    #[serde(default)]
    pub children: BTreeSet<IssueRef>,
    /// Its sub-issues are being read: it waits for the answer.
    #[serde(default)]
    pub children_pending: bool,
    /// Sub-issues GitHub counts (`sub_issues_summary`) as last seen.
    #[serde(default)]
    pub sub_issues: Option<SubIssueCounts>,
    /// Unfinished sub-issues GitHub counts but the App cannot list: they hold the issue.
    #[serde(default)]
    pub unseen_children: u32,
    /// A parent without an agent of its own (`orchestrator.parents: close_when_done`): it
    /// is closed once its sub-issues and other blockers are done.
    #[serde(default)]
    pub umbrella: bool,
    /// The managed parent it was taken under management with, as its sub-issue.
    #[serde(default)]
    pub parent: Option<IssueRef>,
    /// Its sub-issues were taken under management on its authority, once, when it was
    /// first managed (never again: a reopen or a later label does not adopt new ones).
    #[serde(default)]
    pub children_adopted: bool,
    /// An umbrella the bot closed: if someone reopens it, it is not closed again until a
    /// sub-issue is unfinished again.
    #[serde(default)]
    pub umbrella_closed: bool,
    /// Blockers it gained while an attempt of it was running, with that attempt.
    #[serde(default, with = "pairs")]
    pub discovered: BTreeMap<IssueRef, u32>,
    /// The attempt that failed while a discovered blocker was open and was given one new
    /// attempt for when that blocker is done (given once per attempt).
    #[serde(default)]
    pub retry_after_discovery: Option<u32>,
    /// Native "blocked by" links the bot wrote (`orchestrator.sync_native_dependencies`);
    /// only these are ever removed by it.
    #[serde(default)]
    pub synced: BTreeSet<IssueRef>,
    /// Dependencies that could not be written natively (said once, not tried again).
    #[serde(default)]
    pub unsynced: BTreeSet<IssueRef>,
}

impl Tracked {
    /// An issue known only by its state.
    pub fn new(status: IssueStatus) -> Self {
        Self {
            title: None,
            body: String::new(),
            status,
            labels: Vec::new(),
            managed: false,
            declared: BTreeSet::new(),
            native: BTreeSet::new(),
            native_pending: false,
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
            pulls: BTreeSet::new(),
            branches: BTreeMap::new(),
            cycle: None,
            notes: Vec::new(),
            cleared_attempt: 0,
            state_label: None,
            project_option: None,
            by_command: false,
            refused: None,
            open_blockers: None,
            unseen_blockers: 0,
            children: BTreeSet::new(),
            children_pending: false,
            sub_issues: None,
            unseen_children: 0,
            umbrella: false,
            parent: None,
            children_adopted: false,
            umbrella_closed: false,
            discovered: BTreeMap::new(),
            retry_after_discovery: None,
            synced: BTreeSet::new(),
            unsynced: BTreeSet::new(),
        }
    }

    /// Every dependency from every source and its sub-issues, less those removed by
    /// command.
    pub fn blockers(&self) -> BTreeSet<IssueRef> {
        self.declared
            .iter()
            .chain(&self.native)
            .chain(&self.added)
            .chain(&self.children)
            .filter(|issue| !self.removed.contains(issue))
            .cloned()
            .collect()
    }

    /// The dependencies the bot writes to GitHub's native links when it syncs them: those
    /// declared in text and labels or added by command (not sub-issues, not native ones).
    pub fn declared_dependencies(&self) -> BTreeSet<IssueRef> {
        self.declared
            .iter()
            .chain(&self.added)
            .filter(|issue| !self.removed.contains(issue))
            .cloned()
            .collect()
    }

    /// Whether it is held back whatever its blockers say: a refused cycle, blockers or
    /// sub-issues the App cannot see, or native blockers or sub-issues not read yet.
    pub fn held(&self) -> bool {
        self.cycle.is_some()
            || self.unseen_blockers > 0
            || self.native_pending
            || self.unseen_children > 0
            || self.children_pending
    }

    /// Takes in what an issue says now (title, body, labels, state, blocker count).
    pub fn apply(&mut self, facts: &IssueSnapshot) {
        if !facts.title.is_empty() || self.title.is_none() {
            self.title = Some(facts.title.clone()).filter(|t| !t.is_empty());
        }
        self.body = facts.body.clone();
        self.labels = facts.labels.clone();
        self.status = facts.status;
        if facts.open_blockers.is_some() {
            self.open_blockers = facts.open_blockers;
        }
        if facts.sub_issues.is_some() {
            self.sub_issues = facts.sub_issues;
        }
    }

    /// Whether it carries `label` (GitHub compares label names case-insensitively).
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l.eq_ignore_ascii_case(label))
    }

    /// Managed and open: its work is wanted.
    pub fn is_active(&self) -> bool {
        self.managed && self.status == IssueStatus::Open
    }
}

/// One installation's graph, issues and runs.
#[derive(Debug, Clone)]
pub struct Installation {
    /// The dependency graph of everything tracked.
    pub graph: DependencyGraph,
    /// What is known of each tracked issue.
    pub issues: HashMap<IssueRef, Tracked>,
    /// The latest run of each issue that has one.
    pub runs: HashMap<IssueRef, RunRecord>,
    /// What an issue without an `estimate:` label weighs in each repository.
    pub weights: Weights,
}

/// What an issue without an `estimate:` label weighs (its expected duration in minutes):
/// its repository's learned figure, else the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights {
    /// `orchestrator.default_estimate`.
    pub default_minutes: u64,
    /// Learned figures, by repository (as last applied to the graph).
    pub learned: HashMap<crate::domain::RepoName, u64>,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            default_minutes: crate::engine::DEFAULT_ESTIMATE_MINUTES,
            learned: HashMap::new(),
        }
    }
}

impl Weights {
    /// The weight of an unlabelled issue of `repo`.
    pub fn minutes(&self, repo: &crate::domain::RepoName) -> u64 {
        self.learned
            .get(repo)
            .copied()
            .unwrap_or(self.default_minutes)
    }
}

impl Installation {
    /// An empty installation.
    pub fn new(unblock_on: UnblockOn) -> Self {
        Self {
            graph: DependencyGraph::with_unblock_on(unblock_on),
            issues: HashMap::new(),
            runs: HashMap::new(),
            weights: Weights::default(),
        }
    }

    /// Sets the graph node of `issue` from what is tracked (facts, hold and run marks).
    pub fn refresh_node(&mut self, issue: &IssueRef) {
        let Some(tracked) = self.issues.get(issue) else {
            return;
        };
        self.graph.upsert(node_for(issue, tracked, &self.weights));
        if tracked.managed {
            self.graph.set_held(issue, tracked.held());
        }
        apply_run(
            &mut self.graph,
            issue,
            self.runs.get(issue),
            tracked.cleared_attempt,
        );
    }

    /// Rebuilds the graph from the tracked issues and runs (after a load or a removal):
    /// built at once (one topological sort) when the saved dependencies close no cycle,
    /// else one issue at a time, holding the issues whose dependencies close one.
    pub fn rebuild(&mut self, unblock_on: UnblockOn) {
        let mut issues: Vec<_> = self.issues.iter().collect();
        issues.sort_by(|a, b| a.0.cmp(b.0));
        let nodes = issues.iter().map(|(issue, tracked)| {
            let mut node = node_for(issue, tracked, &self.weights);
            node.held = tracked.managed && tracked.held();
            (node.attempts, node.started, node.agent_done) =
                agent_marks(self.runs.get(*issue), tracked.cleared_attempt);
            node
        });
        let dependencies: Vec<(IssueRef, IssueRef)> = issues
            .iter()
            .filter(|(_, tracked)| tracked.managed)
            .flat_map(|(issue, tracked)| {
                tracked
                    .blockers()
                    .into_iter()
                    .map(|blocker| ((*issue).clone(), blocker))
            })
            .collect();
        // `build` leaves out an issue's dependency on itself, which holds it here.
        let on_itself = dependencies.iter().any(|(issue, blocker)| issue == blocker);
        let built = (!on_itself)
            .then(|| DependencyGraph::build_with_unblock_on(unblock_on, nodes, dependencies).ok())
            .flatten();
        let mut graph = built.unwrap_or_else(|| self.rebuild_one_by_one(&issues, unblock_on));
        // The same issues, counted again: what became ready, or satisfied, is news only
        // against the graph this one replaces, not against an empty one.
        graph.carry_on_from(&self.graph);
        graph.take_satisfaction_changes();
        self.graph = graph;
    }

    /// The graph built one issue at a time: a saved dependency that closes a cycle (edges
    /// were checked when added, so it is a surprise) holds its issue.
    fn rebuild_one_by_one(
        &self,
        issues: &[(&IssueRef, &Tracked)],
        unblock_on: UnblockOn,
    ) -> DependencyGraph {
        let mut graph = DependencyGraph::with_unblock_on(unblock_on);
        for (issue, tracked) in issues {
            graph.upsert(node_for(issue, tracked, &self.weights));
        }
        for (issue, tracked) in issues {
            if tracked.managed {
                let closes_cycle = graph.set_dependencies(issue, &tracked.blockers()).is_err();
                if closes_cycle {
                    tracing::warn!(%issue, "a saved dependency closes a cycle; holding the issue");
                }
                graph.set_held(issue, closes_cycle || tracked.held());
            }
        }
        for (issue, tracked) in issues {
            apply_run(
                &mut graph,
                issue,
                self.runs.get(*issue),
                tracked.cleared_attempt,
            );
        }
        graph
    }

    /// Issues whose current attempt is launched and not ended.
    pub fn running(&self) -> Vec<IssueRef> {
        // A succeeded attempt's run is over, so only started, unsucceeded issues are looked
        // at: the scheduler asks at every settle, and the graph may be large.
        let mut running: Vec<IssueRef> = self
            .graph
            .started_unfinished()
            .filter(|node| {
                self.runs
                    .get(&node.issue)
                    .is_none_or(|run| !run.state.is_final())
            })
            .map(|node| node.issue.clone())
            .collect();
        running.sort();
        running
    }

    /// Records what is known of a blocker without managing it (its body is not kept).
    pub fn remember_blocker(&mut self, facts: &IssueSnapshot) {
        let issue = &facts.reference;
        let tracked = self
            .issues
            .entry(issue.clone())
            .or_insert_with(|| Tracked::new(facts.status));
        let body = std::mem::take(&mut tracked.body);
        tracked.apply(facts);
        if !tracked.managed {
            tracked.body = String::new();
        } else if tracked.body.is_empty() {
            tracked.body = body;
        }
        self.refresh_node(issue);
    }
}

/// The graph node for a tracked issue.
pub fn node_for(issue: &IssueRef, tracked: &Tracked, weights: &Weights) -> IssueNode {
    let mut node = IssueNode::new(issue.clone(), tracked.status);
    node.managed = tracked.is_active();
    node.pr_open = !tracked.branches.is_empty();
    node.umbrella = tracked.umbrella;
    node.title = tracked.title.clone();
    let labels = tracked.labels.iter().map(String::as_str);
    node.priority = Priority::from_labels(labels.clone());
    node.weight = estimate_from_labels(labels).unwrap_or_else(|| weights.minutes(&issue.repo));
    node
}

/// Sets the agent marks of `issue` from its latest run: attempts made, whether the current
/// attempt is launched (not cleared by a retry), whether it succeeded.
fn apply_run(graph: &mut DependencyGraph, issue: &IssueRef, run: Option<&RunRecord>, cleared: u32) {
    let (attempts, started, done) = agent_marks(run, cleared);
    graph.set_agent(issue, attempts, started, done);
}

/// An issue's agent marks from its latest run: attempts made, whether the current
/// attempt is launched (not cleared by a retry), whether it succeeded.
fn agent_marks(run: Option<&RunRecord>, cleared: u32) -> (u32, bool, bool) {
    let attempts = run.map_or(0, |r| r.attempt).max(cleared);
    let started = run.is_some_and(|r| r.attempt > cleared);
    let done = started && run.is_some_and(|r| r.state == crate::domain::RunState::Succeeded);
    (attempts, started, done)
}

/// A map keyed by issue, saved as a list of pairs (JSON keys must be strings).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::IssueRef;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<IssueRef, u32>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<IssueRef, u32>, D::Error> {
        let pairs: Vec<(IssueRef, u32)> = Vec::deserialize(deserializer)?;
        Ok(pairs.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: u64) -> IssueRef {
        IssueRef::new("acme/api".parse().unwrap(), n)
    }

    fn managed(blockers: &[u64]) -> Tracked {
        let mut tracked = Tracked::new(IssueStatus::Open);
        tracked.managed = true;
        tracked.declared = blockers.iter().map(|n| r(*n)).collect();
        tracked
    }

    #[test]
    fn a_rebuild_is_built_at_once_and_holds_the_issues_of_a_saved_cycle() {
        let mut installation = Installation::new(UnblockOn::IssueClosed);
        installation.issues.insert(r(1), managed(&[]));
        installation.issues.insert(r(2), managed(&[1]));
        installation.issues.insert(r(3), managed(&[2, 9]));
        installation.rebuild(UnblockOn::IssueClosed);
        assert_eq!(installation.graph.ready(), [r(1)]);
        assert_eq!(
            installation.graph.blockers(&r(3)).len(),
            2,
            "#9 added, unknown"
        );
        assert!(installation.graph.nodes().all(|node| !node.held));

        // Saved dependencies that close a cycle: one issue at a time, in order; the
        // dependency of #5 closes it, so #5 is held (and #4 waits for it).
        installation.issues.insert(r(4), managed(&[5]));
        installation.issues.insert(r(5), managed(&[4]));
        installation.rebuild(UnblockOn::IssueClosed);
        assert!(installation.graph.get(&r(5)).unwrap().held);
        assert!(!installation.graph.get(&r(4)).unwrap().held);
        assert_eq!(installation.graph.ready(), [r(1)]);
        assert_eq!(installation.graph.blockers(&r(3)).len(), 2);

        // A saved dependency on itself holds the issue too.
        installation.issues.remove(&r(5));
        installation.issues.insert(r(4), managed(&[4]));
        installation.rebuild(UnblockOn::IssueClosed);
        assert!(installation.graph.get(&r(4)).unwrap().held);
        assert_eq!(installation.graph.ready(), [r(1)]);
    }
}
