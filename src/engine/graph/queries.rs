//! What the graph answers: readiness, blockers, dependents, critical paths, the
//! topological order and the launch waves.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use petgraph::Direction::{Incoming, Outgoing};
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::{EdgeRef, IntoEdgeReferences};

use super::{Blocker, DependencyGraph, IssueNode, LaunchOrder};
use crate::domain::{IssueRef, IssueStatus, RepoName};

impl DependencyGraph {
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

    /// The issues whose agent was started and has not succeeded (their run may be going),
    /// in no particular order; without scanning the graph.
    pub fn started_unfinished(&self) -> impl Iterator<Item = &IssueNode> {
        self.working.iter().map(|ix| self.node(*ix))
    }

    /// How many issues and dependencies the graph holds.
    pub fn size(&self) -> (usize, usize) {
        (self.index.len(), self.graph.inner().edge_count())
    }

    /// Managed, open, not started, every blocker closed as completed; sorted.
    pub fn ready(&self) -> Vec<IssueRef> {
        let mut ready: Vec<_> = self
            .ready
            .nodes()
            .map(|ix| self.node(ix).issue.clone())
            .collect();
        ready.sort();
        ready
    }

    /// Whether `issue` is an umbrella (a parent without an agent of its own) that nothing
    /// blocks any more: it is to be closed.
    pub fn is_finished_umbrella(&self, issue: &IssueRef) -> bool {
        self.get(issue).is_some_and(IssueNode::is_finished_umbrella)
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

    /// The ready issues in launch order: the heaviest chain of open dependents first
    /// (see [`IssueNode::work`]), then priority, then the oldest. Read off the ordered
    /// ready set, so taking the first few costs little however many are ready.
    pub fn launch_order(&self) -> LaunchOrder<'_> {
        self.ready.launch_order()
    }

    /// Whether `issue` is ready (managed, open, not started, every blocker satisfied).
    pub fn is_ready(&self, issue: &IssueRef) -> bool {
        self.index
            .get(issue)
            .is_some_and(|&ix| self.ready.contains(ix))
    }

    /// The ready issues of `repo`, in launch order.
    pub fn ready_in_repo<'a>(&'a self, repo: &RepoName) -> impl Iterator<Item = &'a IssueRef> {
        self.ready.in_repo(repo)
    }

    /// The issues that became ready since the last call (ready at the last call, left and
    /// ready again: not among them), in no particular order.
    pub fn take_joined(&mut self) -> Vec<IssueRef> {
        let joined = self.ready.take_joined();
        joined
            .into_iter()
            .map(|ix| self.node(ix).issue.clone())
            .collect()
    }

    /// The issues that became satisfied, or stopped being so, since the last call: what
    /// their dependents show of them changed.
    pub fn take_satisfaction_changes(&mut self) -> Vec<IssueRef> {
        let flipped = std::mem::take(&mut self.flipped);
        flipped
            .into_iter()
            .map(|ix| self.node(ix).issue.clone())
            .collect()
    }

    /// The issues that depend on `issue` directly.
    pub fn direct_dependents(&self, issue: &IssueRef) -> Vec<IssueRef> {
        let Some(&ix) = self.index.get(issue) else {
            return Vec::new();
        };
        self.graph
            .inner()
            .neighbors_directed(ix, Outgoing)
            .map(|d| self.node(d).issue.clone())
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
        let mut ready: Vec<NodeIndex> = self.ready.nodes().collect();
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
}
