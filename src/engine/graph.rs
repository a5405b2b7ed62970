//! The live dependency graph: issues as nodes, "A depends on B" as an edge B -> A (the
//! blocker points at what it unblocks, so a topological order is a launch order).
//!
//! Cycles are refused as edges are added, with the cycle's path; petgraph's `Acyclic`
//! keeps a topological order up to date incrementally (Pearce-Kelly), so one insertion
//! does not cost a traversal of the whole graph. Which issues are ready is kept up to date
//! as states and edges change, from a count of unsatisfied blockers per issue.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;

use petgraph::Direction::{Incoming, Outgoing};
use petgraph::acyclic::{Acyclic, AcyclicEdgeError};
use petgraph::data::{Build, DataMap, DataMapMut};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};

use crate::domain::{IssueRef, IssueStatus};

/// One issue in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueNode {
    /// Which issue.
    pub issue: IssueRef,
    /// Its state.
    pub state: IssueStatus,
    /// Whether the bot manages it (it may be launched); blockers named by managed issues
    /// are in the graph too, unmanaged.
    pub managed: bool,
    /// Whether an agent has been started for it (it is no longer "ready").
    pub started: bool,
    /// Its title, when known.
    pub title: Option<String>,
    /// Held back because a dependency it declares was refused as a cycle: never ready.
    pub held: bool,
    /// Its `priority:*` label, the scheduler's second criterion.
    pub priority: Priority,
    /// Agent runs made for it so far; the next launch is attempt `attempts + 1`.
    pub attempts: u32,
    /// The work it stands for, relative to other issues (minutes from an `estimate:*`
    /// label, or [`DEFAULT_ESTIMATE_MINUTES`]; `simulate` may use its known durations).
    /// Without estimates every issue weighs the same and chains are counted in issues.
    pub weight: u64,
    /// A pull request that closes it is open (counts under [`UnblockOn::PrOpened`]).
    pub pr_open: bool,
    /// Its latest agent run reported success (enough for dependents under
    /// [`UnblockOn::AgentCompleted`]).
    pub agent_done: bool,
    /// Blockers that are not closed as completed.
    unsatisfied: usize,
}

/// An issue's `priority:high|medium|low` label; unlabelled issues sit between medium and
/// low.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// `priority:high`
    High,
    /// `priority:medium`
    Medium,
    /// No priority label.
    #[default]
    Unset,
    /// `priority:low`
    Low,
}

impl Priority {
    /// The priority the labels give (the highest if several).
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Self {
        labels
            .into_iter()
            .filter_map(|label| match label.to_ascii_lowercase().as_str() {
                "priority:high" => Some(Self::High),
                "priority:medium" => Some(Self::Medium),
                "priority:low" => Some(Self::Low),
                _ => None,
            })
            .min()
            .unwrap_or_default()
    }
}

/// Weight of an issue without an `estimate:*` label: one hour of agent work, in minutes.
pub const DEFAULT_ESTIMATE_MINUTES: u64 = 60;

/// The work an `estimate:<N>m|h|d` label states, in minutes (`estimate:90m`, `estimate:2h`,
/// `estimate:1d`, a day being 8 hours of work); the largest if several, `None` without.
pub fn estimate_from_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Option<u64> {
    labels
        .into_iter()
        .filter_map(|label| {
            let (key, value) = label.split_once(':')?;
            if !key.trim().eq_ignore_ascii_case("estimate") {
                return None;
            }
            let value = value.trim().to_ascii_lowercase();
            let unit_at = value.find(|c: char| !c.is_ascii_digit())?;
            let amount: u64 = value[..unit_at].parse().ok()?;
            let minutes = match &value[unit_at..] {
                "m" | "min" => 1,
                "h" => 60,
                "d" => 8 * 60,
                _ => return None,
            };
            Some(amount.saturating_mul(minutes).max(1))
        })
        .max()
}

impl IssueNode {
    /// A node for `issue` in `state`, unmanaged, not started, without a title.
    pub fn new(issue: IssueRef, state: IssueStatus) -> Self {
        Self {
            issue,
            state,
            managed: false,
            started: false,
            title: None,
            held: false,
            priority: Priority::Unset,
            attempts: 0,
            weight: DEFAULT_ESTIMATE_MINUTES,
            agent_done: false,
            pr_open: false,
            unsatisfied: 0,
        }
    }

    /// The same node, managed.
    pub fn managed(mut self) -> Self {
        self.managed = true;
        self
    }

    /// The same node with a title.
    pub fn titled(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    fn is_ready(&self) -> bool {
        self.could_start() && self.unsatisfied == 0
    }

    fn could_start(&self) -> bool {
        self.managed && self.state == IssueStatus::Open && !self.started && !self.held
    }
}

/// A dependency refused because it would close a cycle; `path` starts and ends with the
/// same issue and reads "depends on" left to right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CycleError {
    /// The cycle, first issue repeated at the end.
    pub path: Vec<IssueRef>,
}

impl fmt::Display for CycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dependency cycle: ")?;
        for (i, issue) in self.path.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// A blocker of an issue with its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// Which issue.
    pub issue: IssueRef,
    /// Its state.
    pub state: IssueStatus,
}

impl Blocker {
    /// Why it still blocks, or `None` when it no longer does.
    pub fn blocks_because(&self) -> Option<&'static str> {
        match self.state {
            IssueStatus::ClosedCompleted => None,
            IssueStatus::Open => Some("still open"),
            IssueStatus::ClosedNotPlanned => Some("closed as not planned"),
            IssueStatus::Deleted => Some("deleted"),
            IssueStatus::Unknown => Some("not fetched yet"),
        }
    }
}

type Graph = Acyclic<StableDiGraph<IssueNode, ()>>;

/// When a blocker stops blocking (`orchestrator.unblock_on`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnblockOn {
    /// When it is closed as completed (a merged PR closing it, usually).
    #[default]
    IssueClosed,
    /// Also when its agent run completed successfully, before anything is merged.
    AgentCompleted,
    /// Also as soon as its agent opened a pull request (stacked work: dependents start
    /// from that pull request's branch).
    PrOpened,
}

/// The dependency graph of one installation.
#[derive(Debug, Clone, Default)]
pub struct DependencyGraph {
    graph: Graph,
    index: HashMap<IssueRef, NodeIndex>,
    ready: HashSet<NodeIndex>,
    unblock_on: UnblockOn,
}

impl DependencyGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty graph whose blockers stop blocking as `unblock_on` says.
    pub fn with_unblock_on(unblock_on: UnblockOn) -> Self {
        Self {
            unblock_on,
            ..Self::default()
        }
    }

    /// Builds a graph from scratch: every node, then every "`issue` depends on `blocker`"
    /// pair (blockers missing from `nodes` are added as unknown). One topological sort
    /// instead of one insertion per edge; fails with a cycle's path if there is one.
    pub fn build(
        nodes: impl IntoIterator<Item = IssueNode>,
        dependencies: impl IntoIterator<Item = (IssueRef, IssueRef)>,
    ) -> Result<Self, CycleError> {
        let mut inner = StableDiGraph::<IssueNode, ()>::default();
        let mut index = HashMap::new();
        for node in nodes {
            let issue = node.issue.clone();
            let ix = inner.add_node(node);
            index.insert(issue, ix);
        }
        let mut node_for = |inner: &mut StableDiGraph<IssueNode, ()>, issue: IssueRef| {
            *index
                .entry(issue.clone())
                .or_insert_with(|| inner.add_node(IssueNode::new(issue, IssueStatus::Unknown)))
        };
        for (issue, blocker) in dependencies {
            if issue == blocker {
                continue;
            }
            let (a, b) = (node_for(&mut inner, issue), node_for(&mut inner, blocker));
            inner.update_edge(b, a, ());
        }
        let graph = match Acyclic::try_from_graph(inner.clone()) {
            Ok(graph) => graph,
            Err(cycle) => return Err(cycle_through(&inner, cycle.node_id())),
        };
        let mut built = Self {
            graph,
            index,
            ready: HashSet::new(),
            unblock_on: UnblockOn::default(),
        };
        let all: Vec<_> = built.index.values().copied().collect();
        for ix in all {
            let unsatisfied = built
                .blockers_ix(ix)
                .filter(|b| !built.satisfied(*b))
                .count();
            built.node_mut(ix).unsatisfied = unsatisfied;
            built.refresh(ix);
        }
        Ok(built)
    }

    /// Adds an issue or updates what is known of it (state, managed, title); its edges and
    /// its `started` mark are kept.
    pub fn upsert(&mut self, node: IssueNode) {
        let ix = self.ensure(&node.issue, node.state);
        self.update(ix, |current| {
            current.managed = node.managed;
            if node.title.is_some() {
                current.title = node.title;
            }
            current.priority = node.priority;
            current.weight = node.weight;
            current.started |= node.started;
            current.attempts = current.attempts.max(node.attempts);
            current.agent_done |= node.agent_done;
            current.pr_open = node.pr_open;
            current.state = node.state;
        });
    }

    /// Sets an issue's state (adding it as an unmanaged node if new).
    pub fn set_state(&mut self, issue: &IssueRef, state: IssueStatus) {
        let ix = self.ensure(issue, state);
        self.update(ix, |node| node.state = state);
    }

    /// Marks whether an issue is managed.
    pub fn set_managed(&mut self, issue: &IssueRef, managed: bool) {
        let ix = self.ensure(issue, IssueStatus::Unknown);
        self.node_mut(ix).managed = managed;
        self.refresh(ix);
    }

    /// Holds an issue back (a dependency it declares closes a cycle) or releases it.
    pub fn set_held(&mut self, issue: &IssueRef, held: bool) {
        let ix = self.ensure(issue, IssueStatus::Unknown);
        self.node_mut(ix).held = held;
        self.refresh(ix);
    }

    /// Marks an issue as started (an agent runs for it) or not.
    pub fn set_started(&mut self, issue: &IssueRef, started: bool) {
        let ix = self.ensure(issue, IssueStatus::Unknown);
        self.node_mut(ix).started = started;
        self.refresh(ix);
    }

    /// Records an agent run's progress: `attempts` made so far, whether one is running
    /// (`started`) and whether the latest succeeded (`agent_done`).
    pub fn set_agent(&mut self, issue: &IssueRef, attempts: u32, started: bool, agent_done: bool) {
        let ix = self.ensure(issue, IssueStatus::Unknown);
        self.update(ix, |node| {
            node.attempts = attempts;
            node.started = started;
            node.agent_done = agent_done;
        });
    }

    /// Makes `issue` depend on exactly `blockers` (its body was edited, say). All or
    /// nothing: on a cycle the graph is left as it was.
    pub fn set_dependencies(
        &mut self,
        issue: &IssueRef,
        blockers: &BTreeSet<IssueRef>,
    ) -> Result<(), CycleError> {
        let created: Vec<IssueRef> = std::iter::once(issue)
            .chain(blockers)
            .filter(|known| !self.contains(known))
            .cloned()
            .collect();
        let ix = self.ensure(issue, IssueStatus::Unknown);
        let current: BTreeSet<IssueRef> = self
            .blockers_ix(ix)
            .map(|b| self.node(b).issue.clone())
            .collect();
        let mut added = Vec::new();
        for blocker in blockers.difference(&current) {
            match self.add_dependency(issue, blocker) {
                Ok(_) => added.push(blocker.clone()),
                Err(cycle) => {
                    for blocker in &added {
                        self.remove_dependency(issue, blocker);
                    }
                    self.remove_nodes(&created);
                    return Err(cycle);
                }
            }
        }
        for blocker in current.difference(blockers) {
            self.remove_dependency(issue, blocker);
        }
        Ok(())
    }

    /// Adds "`issue` depends on `blocker`"; `Ok(false)` when it was already there. A
    /// blocker not in the graph is added as unknown. An issue never depends on itself.
    pub fn add_dependency(
        &mut self,
        issue: &IssueRef,
        blocker: &IssueRef,
    ) -> Result<bool, CycleError> {
        if issue == blocker {
            return Err(CycleError {
                path: vec![issue.clone(), issue.clone()],
            });
        }
        let a = self.ensure(issue, IssueStatus::Unknown);
        let b = self.ensure(blocker, IssueStatus::Unknown);
        if self.graph.inner().find_edge(b, a).is_some() {
            return Ok(false);
        }
        match self.graph.try_add_edge(b, a, ()) {
            Ok(_) => {}
            Err(AcyclicEdgeError::Cycle(_)) => return Err(self.cycle_error(a, b)),
            Err(AcyclicEdgeError::SelfLoop | AcyclicEdgeError::InvalidEdge) => {
                return Err(CycleError {
                    path: vec![issue.clone(), issue.clone()],
                });
            }
        }
        if !self.satisfied(b) {
            self.node_mut(a).unsatisfied += 1;
            self.refresh(a);
        }
        Ok(true)
    }

    /// Removes "`issue` depends on `blocker`"; `false` when there was no such dependency.
    pub fn remove_dependency(&mut self, issue: &IssueRef, blocker: &IssueRef) -> bool {
        let (Some(&a), Some(&b)) = (self.index.get(issue), self.index.get(blocker)) else {
            return false;
        };
        let Some(edge) = self.graph.inner().find_edge(b, a) else {
            return false;
        };
        self.graph.remove_edge(edge);
        if !self.satisfied(b) {
            self.node_mut(a).unsatisfied -= 1;
            self.refresh(a);
        }
        true
    }

    /// Adds issues and their dependencies together: all of them, or (on a cycle) none,
    /// leaving the graph as it was.
    pub fn add_batch(
        &mut self,
        batch: Vec<(IssueNode, BTreeSet<IssueRef>)>,
    ) -> Result<(), CycleError> {
        let before = self.clone();
        for (node, blockers) in batch {
            let issue = node.issue.clone();
            self.upsert(node);
            for blocker in &blockers {
                if let Err(cycle) = self.add_dependency(&issue, blocker) {
                    *self = before;
                    return Err(cycle);
                }
            }
        }
        Ok(())
    }

    /// Whether the graph knows `issue`.
    pub fn contains(&self, issue: &IssueRef) -> bool {
        self.index.contains_key(issue)
    }

    /// The node of `issue`.
    pub fn get(&self, issue: &IssueRef) -> Option<&IssueNode> {
        self.index.get(issue).map(|ix| self.node(*ix))
    }

    /// Every node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = &IssueNode> {
        self.index.values().map(|ix| self.node(*ix))
    }

    /// How many issues and dependencies the graph holds.
    pub fn size(&self) -> (usize, usize) {
        (self.index.len(), self.graph.inner().edge_count())
    }

    /// Managed, open, not started, every blocker closed as completed; sorted.
    pub fn ready(&self) -> Vec<IssueRef> {
        let mut ready: Vec<_> = self
            .ready
            .iter()
            .map(|ix| self.node(*ix).issue.clone())
            .collect();
        ready.sort();
        ready
    }

    /// Whether `issue` no longer blocks what depends on it.
    pub fn is_satisfied(&self, issue: &IssueRef) -> bool {
        self.index.get(issue).is_some_and(|&ix| self.satisfied(ix))
    }

    /// The direct blockers of `issue` with their states, sorted.
    pub fn blockers(&self, issue: &IssueRef) -> Vec<Blocker> {
        let Some(&ix) = self.index.get(issue) else {
            return Vec::new();
        };
        let mut blockers: Vec<_> = self
            .blockers_ix(ix)
            .map(|b| Blocker {
                issue: self.node(b).issue.clone(),
                state: self.node(b).state,
            })
            .collect();
        blockers.sort_by(|x, y| x.issue.cmp(&y.issue));
        blockers
    }

    /// Every issue that depends on `issue`, directly or through others.
    pub fn dependents(&self, issue: &IssueRef) -> BTreeSet<IssueRef> {
        let mut found = self.reachable(issue, false);
        found.remove(issue);
        found
    }

    /// The longest chain of not-yet-completed dependents behind `issue` (0 when none waits
    /// on it): the scheduler starts the longest chain first.
    pub fn critical_path_len(&self, issue: &IssueRef) -> usize {
        let Some(&start) = self.index.get(issue) else {
            return 0;
        };
        let behind = self.dependents(issue);
        let mut lens: HashMap<NodeIndex, usize> = HashMap::with_capacity(behind.len() + 1);
        // Reverse topological order: every dependent is measured before its blockers.
        let order = self.graph.nodes_iter().collect::<Vec<_>>();
        for &ix in order.iter().rev() {
            if ix != start && !behind.contains(&self.node(ix).issue) {
                continue;
            }
            let len = self.longest_chain_from(ix, &lens);
            lens.insert(ix, len);
        }
        lens.get(&start).copied().unwrap_or(0)
    }

    /// [`Self::critical_path_len`] for every issue at once, in one pass.
    pub fn critical_path_lens(&self) -> HashMap<IssueRef, usize> {
        let order: Vec<_> = self.graph.nodes_iter().collect();
        let mut lens: HashMap<NodeIndex, usize> = HashMap::with_capacity(order.len());
        for &ix in order.iter().rev() {
            let len = self.longest_chain_from(ix, &lens);
            lens.insert(ix, len);
        }
        lens.into_iter()
            .map(|(ix, len)| (self.node(ix).issue.clone(), len))
            .collect()
    }

    /// For every issue, the most work on one chain that starts at it and runs through
    /// not-yet-completed dependents (its own weight included): the scheduler starts the
    /// heaviest chain first, since nothing can end before that chain does.
    pub fn critical_work(&self) -> HashMap<IssueRef, u64> {
        let order: Vec<_> = self.graph.nodes_iter().collect();
        let mut work: HashMap<NodeIndex, u64> = HashMap::with_capacity(order.len());
        for &ix in order.iter().rev() {
            let behind = self
                .graph
                .inner()
                .neighbors_directed(ix, Outgoing)
                .filter(|d| !self.satisfied(*d))
                .map(|d| work.get(&d).copied().unwrap_or(0))
                .max()
                .unwrap_or(0);
            work.insert(ix, self.node(ix).weight.saturating_add(behind));
        }
        work.into_iter()
            .map(|(ix, w)| (self.node(ix).issue.clone(), w))
            .collect()
    }

    /// Every issue, blockers before what they block.
    pub fn topological_order(&self) -> Vec<IssueRef> {
        self.graph
            .nodes_iter()
            .map(|ix| self.node(ix).issue.clone())
            .collect()
    }

    /// The issues connected to `issue` through dependencies either way, itself included.
    pub fn component(&self, issue: &IssueRef) -> BTreeSet<IssueRef> {
        self.reachable(issue, true)
    }

    /// Every "depends on" pair as (issue, blocker).
    pub fn dependencies(&self) -> Vec<(IssueRef, IssueRef)> {
        self.graph
            .inner()
            .edge_references()
            .map(|e| {
                (
                    self.node(e.target()).issue.clone(),
                    self.node(e.source()).issue.clone(),
                )
            })
            .collect()
    }

    /// The launches a pool of `agents` would make if every agent took one step: wave 1 is
    /// what is ready now (longest chain first, at most `agents`), each later wave what the
    /// earlier ones unblock. Issues that can never start (blocked by an open unmanaged, a
    /// not-planned or an unknown issue) appear in no wave.
    pub fn waves(&self, agents: usize) -> Vec<Vec<IssueRef>> {
        let agents = agents.max(1);
        let lens = self.critical_path_lens();
        let mut unsatisfied: HashMap<NodeIndex, usize> = self
            .index
            .values()
            .map(|ix| (*ix, self.node(*ix).unsatisfied))
            .collect();
        let mut ready: Vec<NodeIndex> = self.ready.iter().copied().collect();
        let mut waves = Vec::new();
        while !ready.is_empty() {
            ready.sort_by(|a, b| {
                let (na, nb) = (self.node(*a), self.node(*b));
                lens[&nb.issue]
                    .cmp(&lens[&na.issue])
                    .then_with(|| na.issue.cmp(&nb.issue))
            });
            let rest = ready.split_off(agents.min(ready.len()));
            let wave = std::mem::replace(&mut ready, rest);
            for &done in &wave {
                for dependent in self.graph.inner().neighbors_directed(done, Outgoing) {
                    let count = unsatisfied.entry(dependent).or_default();
                    *count = count.saturating_sub(1);
                    let node = self.node(dependent);
                    if *count == 0
                        && node.managed
                        && node.state == IssueStatus::Open
                        && !node.started
                    {
                        ready.push(dependent);
                    }
                }
            }
            waves.push(
                wave.into_iter()
                    .map(|ix| self.node(ix).issue.clone())
                    .collect(),
            );
        }
        waves
    }

    // ---- internals -------------------------------------------------------------------

    /// `issue` and what it reaches along blocker -> dependent edges (either way when
    /// `both_ways`); empty for an issue the graph does not know.
    fn reachable(&self, issue: &IssueRef, both_ways: bool) -> BTreeSet<IssueRef> {
        let Some(&start) = self.index.get(issue) else {
            return BTreeSet::new();
        };
        let inner = self.graph.inner();
        let mut seen = HashSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(ix) = queue.pop_front() {
            let backwards = both_ways.then(|| inner.neighbors_directed(ix, Incoming));
            for next in inner
                .neighbors_directed(ix, Outgoing)
                .chain(backwards.into_iter().flatten())
            {
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        seen.into_iter()
            .map(|ix| self.node(ix).issue.clone())
            .collect()
    }

    fn node(&self, ix: NodeIndex) -> &IssueNode {
        self.graph.node_weight(ix).expect("indexed nodes exist")
    }

    fn node_mut(&mut self, ix: NodeIndex) -> &mut IssueNode {
        self.graph.node_weight_mut(ix).expect("indexed nodes exist")
    }

    /// 1 + the longest chain behind the longest not-completed dependent, from `lens` of
    /// the dependents (already computed in reverse topological order).
    fn longest_chain_from(&self, ix: NodeIndex, lens: &HashMap<NodeIndex, usize>) -> usize {
        self.graph
            .inner()
            .neighbors_directed(ix, Outgoing)
            .filter(|d| !self.satisfied(*d))
            .map(|d| 1 + lens.get(&d).copied().unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    fn blockers_ix(&self, ix: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.inner().neighbors_directed(ix, Incoming)
    }

    fn ensure(&mut self, issue: &IssueRef, state: IssueStatus) -> NodeIndex {
        if let Some(&ix) = self.index.get(issue) {
            return ix;
        }
        let ix = self.graph.add_node(IssueNode::new(issue.clone(), state));
        self.index.insert(issue.clone(), ix);
        ix
    }

    /// Removes nodes (and their edges) a rolled-back update created.
    fn remove_nodes(&mut self, issues: &[IssueRef]) {
        for issue in issues {
            if let Some(ix) = self.index.remove(issue) {
                self.ready.remove(&ix);
                self.graph.remove_node(ix);
            }
        }
    }

    /// Whether the issue at `ix` no longer blocks what depends on it.
    fn satisfied(&self, ix: NodeIndex) -> bool {
        let node = self.node(ix);
        let early = match self.unblock_on {
            UnblockOn::IssueClosed => false,
            UnblockOn::AgentCompleted => node.agent_done,
            UnblockOn::PrOpened => node.agent_done || node.pr_open,
        };
        node.state.satisfies() || (early && node.state == IssueStatus::Open)
    }

    /// Changes a node and keeps its dependents' blocker counts and the ready set right.
    fn update(&mut self, ix: NodeIndex, change: impl FnOnce(&mut IssueNode)) {
        let was = self.satisfied(ix);
        change(self.node_mut(ix));
        let now = self.satisfied(ix);
        if was != now {
            let dependents: Vec<_> = self
                .graph
                .inner()
                .neighbors_directed(ix, Outgoing)
                .collect();
            for dependent in dependents {
                let node = self.node_mut(dependent);
                if now {
                    node.unsatisfied -= 1;
                } else {
                    node.unsatisfied += 1;
                }
                self.refresh(dependent);
            }
        }
        self.refresh(ix);
    }

    fn refresh(&mut self, ix: NodeIndex) {
        if self.node(ix).is_ready() {
            self.ready.insert(ix);
        } else {
            self.ready.remove(&ix);
        }
    }

    /// The cycle that "`a` depends on `b`" would close: b already (transitively) depends
    /// on a, so the path runs a -> b -> ... -> a.
    fn cycle_error(&self, a: NodeIndex, b: NodeIndex) -> CycleError {
        // Blocking edges run a ->* b; walk them, then read the path backwards.
        let path = path_between(self.graph.inner(), a, b).unwrap_or_else(|| vec![a, b]);
        let mut cycle = vec![self.node(a).issue.clone()];
        cycle.extend(path.iter().rev().map(|ix| self.node(*ix).issue.clone()));
        CycleError { path: cycle }
    }
}

/// The nodes on a shortest path `from` ->* `to` along edges, both ends included.
fn path_between(
    graph: &StableDiGraph<IssueNode, ()>,
    from: NodeIndex,
    to: NodeIndex,
) -> Option<Vec<NodeIndex>> {
    let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = HashSet::from([from]);
    while let Some(ix) = queue.pop_front() {
        if ix == to {
            let mut path = vec![to];
            let mut at = to;
            while let Some(&p) = parent.get(&at) {
                path.push(p);
                at = p;
            }
            path.reverse();
            return Some(path);
        }
        for next in graph.neighbors_directed(ix, Outgoing) {
            if seen.insert(next) {
                parent.insert(next, ix);
                queue.push_back(next);
            }
        }
    }
    None
}

/// A cycle through `node` in a graph known to have one, as a "depends on" path.
fn cycle_through(graph: &StableDiGraph<IssueNode, ()>, node: NodeIndex) -> CycleError {
    // Edges run blocker -> dependent; a cycle through `node` comes back to it.
    let back = graph
        .neighbors_directed(node, Outgoing)
        .find_map(|next| path_between(graph, next, node));
    let mut path: Vec<IssueRef> = match back {
        Some(path) => std::iter::once(node)
            .chain(path)
            .map(|ix| graph[ix].issue.clone())
            .collect(),
        None => vec![graph[node].issue.clone(), graph[node].issue.clone()],
    };
    // Blocking order reversed reads as "depends on".
    path.reverse();
    CycleError { path }
}

#[cfg(test)]
mod tests;
