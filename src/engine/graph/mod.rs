//! The live dependency graph: issues as nodes, "A depends on B" as an edge B -> A (the
//! blocker points at what it unblocks, so a topological order is a launch order).
//!
//! Cycles are refused as edges are added, with the cycle's path; petgraph's `Acyclic`
//! keeps a topological order up to date incrementally (Pearce-Kelly), so one insertion
//! does not cost a traversal of the whole graph. Which issues are ready is kept up to date
//! as states and edges change, from a count of unsatisfied blockers per issue; so is each
//! issue's critical work (`work`) and the launch order of the ready ones (`ready`): what a
//! change costs grows with what it changes, not with the graph.
//!
//! This file holds the graph and how it changes; the nodes are in `node`, the questions
//! asked of the graph in `queries`, and the cycle a refused dependency would close in
//! `cycle`.

mod cycle;
mod node;
mod queries;
mod ready;
mod work;

use std::collections::{BTreeSet, HashMap, HashSet};

use petgraph::Direction::{Incoming, Outgoing};
use petgraph::acyclic::{Acyclic, AcyclicEdgeError, TopologicalPosition};
use petgraph::data::{Build, DataMap, DataMapMut};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};

use crate::domain::{IssueRef, IssueStatus};

use cycle::cycle_through;
use ready::{QueueKey, ReadyQueue};

pub use ready::LaunchOrder;

pub use cycle::CycleError;
pub use node::{Blocker, DEFAULT_ESTIMATE_MINUTES, IssueNode, Priority, estimate_from_labels};

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
    /// The ready issues in launch order.
    ready: ReadyQueue,
    /// Nodes whose longest chain behind them must be counted again before the change that
    /// queued them returns, dependents before blockers (highest topological position
    /// first), so that each is counted once from final dependents.
    recount: BTreeSet<(TopologicalPosition, NodeIndex)>,
    /// Nodes whose being satisfied changed since the last
    /// [`DependencyGraph::take_satisfaction_changes`]: their dependents' statuses show it.
    flipped: HashSet<NodeIndex>,
    /// Issues whose agent was started and has not succeeded: the only ones whose run may
    /// still be going, kept so that finding them does not scan the graph.
    working: HashSet<NodeIndex>,
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
        Self::build_with_unblock_on(UnblockOn::default(), nodes, dependencies)
    }

    /// As [`DependencyGraph::build`], for a graph whose blockers stop blocking as
    /// `unblock_on` says.
    pub fn build_with_unblock_on(
        unblock_on: UnblockOn,
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
            unblock_on,
            ..Self::default()
        };
        // Blockers before what they block: whether an issue is satisfied early (its agent
        // done) depends on its own blockers being satisfied.
        let all: Vec<_> = built.graph.nodes_iter().collect();
        for &ix in &all {
            let unsatisfied = built
                .blockers_ix(ix)
                .filter(|b| !built.satisfied(*b))
                .count();
            built.node_mut(ix).unsatisfied = unsatisfied;
        }
        // Then what they block before blockers: a chain is counted from its far end.
        for &ix in all.iter().rev() {
            let behind = built.longest_behind(ix);
            built.node_mut(ix).behind = behind;
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
            current.umbrella = node.umbrella;
            current.state = node.state;
        });
        self.settle_work();
    }

    /// Sets an issue's state (adding it as an unmanaged node if new).
    pub fn set_state(&mut self, issue: &IssueRef, state: IssueStatus) {
        let ix = self.ensure(issue, state);
        self.update(ix, |node| node.state = state);
        self.settle_work();
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
        self.settle_work();
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
            self.count_blocker(a, true);
        }
        let share = self.chain_share(a);
        self.child_share_changed(b, None, share);
        self.settle_work();
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
        let share = self.chain_share(a);
        self.child_share_changed(b, share, None);
        if !self.satisfied(b) {
            self.count_blocker(a, false);
        }
        self.settle_work();
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

    /// Carries on from `earlier`, the graph this one (built from scratch) replaces: the
    /// next [`DependencyGraph::take_joined`] names what became ready since `earlier`'s last
    /// one, not everything ready.
    pub fn carry_on_from(&mut self, earlier: &DependencyGraph) {
        for (issue, &ix) in &self.index {
            let was = earlier
                .index
                .get(issue)
                .is_some_and(|&old| earlier.ready.was_ready(old));
            self.ready.remember_was_ready(ix, was);
        }
    }

    // ---- internals -------------------------------------------------------------------

    fn node(&self, ix: NodeIndex) -> &IssueNode {
        self.graph.node_weight(ix).expect("indexed nodes exist")
    }

    fn node_mut(&mut self, ix: NodeIndex) -> &mut IssueNode {
        self.graph.node_weight_mut(ix).expect("indexed nodes exist")
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

    /// Removes nodes a rolled-back update created (their edges are gone already).
    fn remove_nodes(&mut self, issues: &[IssueRef]) {
        for issue in issues {
            if let Some(ix) = self.index.remove(issue) {
                // The index may be given to a later node: nothing of this one may stay.
                self.ready.forget(ix);
                self.working.remove(&ix);
                self.flipped.remove(&ix);
                self.graph.remove_node(ix);
            }
        }
    }

    /// Whether the issue at `ix` no longer blocks what depends on it. Before it is closed
    /// (`unblock_on` other than `issue_closed`), its agent's work counts only while nothing
    /// blocks the issue itself: a blocker discovered while its agent ran must be done first.
    fn satisfied(&self, ix: NodeIndex) -> bool {
        let node = self.node(ix);
        let early = match self.unblock_on {
            UnblockOn::IssueClosed => false,
            UnblockOn::AgentCompleted => node.agent_done,
            UnblockOn::PrOpened => node.agent_done || node.pr_open,
        };
        node.state.satisfies()
            || (early && node.state == IssueStatus::Open && node.unsatisfied == 0)
    }

    /// Changes a node and keeps its dependents' blocker counts and the ready set right.
    /// Its share in its blockers' chains is queued for counting again
    /// ([`DependencyGraph::settle_work`], which the public change calls last).
    fn update(&mut self, ix: NodeIndex, change: impl FnOnce(&mut IssueNode)) {
        let was = self.satisfied(ix);
        let share = self.chain_share(ix);
        change(self.node_mut(ix));
        let now = self.satisfied(ix);
        if was != now {
            self.flipped.insert(ix);
            self.tell_dependents(ix, now);
        }
        self.share_changed(ix, share);
        self.refresh(ix);
    }

    /// Counts one more (`more`) or one fewer unsatisfied blocker of `ix`; when that changes
    /// whether `ix` itself is satisfied, its dependents are told in turn.
    fn count_blocker(&mut self, ix: NodeIndex, more: bool) {
        let mut work = vec![(ix, more)];
        while let Some((ix, more)) = work.pop() {
            let was = self.satisfied(ix);
            let share = self.chain_share(ix);
            let node = self.node_mut(ix);
            if more {
                node.unsatisfied += 1;
            } else {
                node.unsatisfied -= 1;
            }
            let now = self.satisfied(ix);
            self.refresh(ix);
            if was != now {
                self.flipped.insert(ix);
                self.share_changed(ix, share);
                let dependents = self.graph.inner().neighbors_directed(ix, Outgoing);
                work.extend(dependents.map(|d| (d, !now)));
            }
        }
    }

    /// `ix` became satisfied (`now`) or stopped being so: each dependent counts it.
    fn tell_dependents(&mut self, ix: NodeIndex, now: bool) {
        let dependents: Vec<_> = self
            .graph
            .inner()
            .neighbors_directed(ix, Outgoing)
            .collect();
        for dependent in dependents {
            self.count_blocker(dependent, !now);
        }
    }

    /// Keeps the ready set (and the place in it) and the working set right for `ix`.
    fn refresh(&mut self, ix: NodeIndex) {
        let node = self.node(ix);
        let (ready, working) = (node.is_ready(), node.started && !node.agent_done);
        let placed = match self.ready.key(ix) {
            Some(key) => ready && key.work.0 == node.work() && key.priority == node.priority,
            None => !ready,
        };
        if !placed {
            let key = ready.then(|| QueueKey {
                work: std::cmp::Reverse(node.work()),
                priority: node.priority,
                issue: node.issue.clone(),
            });
            self.ready.set(ix, key);
        }
        if working {
            self.working.insert(ix);
        } else {
            self.working.remove(&ix);
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_incremental;
