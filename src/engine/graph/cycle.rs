//! Dependency cycles: the error a refused dependency gives, with the cycle's path.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

use petgraph::Direction::Outgoing;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};

use super::{DependencyGraph, IssueNode};
use crate::domain::IssueRef;

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

impl DependencyGraph {
    /// The cycle that "`a` depends on `b`" would close: b already (transitively) depends
    /// on a, so the path runs a -> b -> ... -> a.
    pub(super) fn cycle_error(&self, a: NodeIndex, b: NodeIndex) -> CycleError {
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
pub(super) fn cycle_through(graph: &StableDiGraph<IssueNode, ()>, node: NodeIndex) -> CycleError {
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
