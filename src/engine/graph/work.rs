//! Each issue's critical work, kept up to date as the graph changes: its own weight plus
//! the work of its heaviest unsatisfied dependent (`behind`). The scheduler launches the
//! heaviest chain first, so the ready set is ordered by it.
//!
//! A change reaches only the blockers whose heaviest chain it can move: an issue's share
//! in its blockers' chains (its work, while it is unsatisfied) rising above a blocker's
//! `behind`, or falling while it was that `behind`. Those blockers are counted again from
//! their dependents, dependents first, and pass the change on only when their own share
//! changed.

use petgraph::Direction::Outgoing;
use petgraph::stable_graph::NodeIndex;

use super::DependencyGraph;

impl DependencyGraph {
    /// What `ix` weighs in its blockers' chains: its work while it still blocks them.
    pub(super) fn chain_share(&self, ix: NodeIndex) -> Option<u64> {
        (!self.satisfied(ix)).then(|| self.node(ix).work())
    }

    /// The work of the heaviest unsatisfied dependent of `ix` (0 when none), counted from
    /// its dependents as they stand.
    pub(super) fn longest_behind(&self, ix: NodeIndex) -> u64 {
        self.graph
            .inner()
            .neighbors_directed(ix, Outgoing)
            .filter_map(|d| self.chain_share(d))
            .max()
            .unwrap_or(0)
    }

    /// `ix`'s share in its blockers' chains was `was` (before a change to it): the
    /// blockers it may move are queued for counting again.
    pub(super) fn share_changed(&mut self, ix: NodeIndex, was: Option<u64>) {
        let now = self.chain_share(ix);
        if now == was {
            return;
        }
        let blockers: Vec<NodeIndex> = self.blockers_ix(ix).collect();
        for blocker in blockers {
            self.child_share_changed(blocker, was, now);
        }
    }

    /// One dependent of `blocker` weighs `now` in its chains instead of `was` (`None`: not
    /// at all). Nothing changes unless it rises above the heaviest, or was the heaviest
    /// (or tied with it) and falls.
    pub(super) fn child_share_changed(
        &mut self,
        blocker: NodeIndex,
        was: Option<u64>,
        now: Option<u64>,
    ) {
        let behind = self.node(blocker).behind;
        let rises = now.is_some_and(|now| now > behind);
        let falls_from_top = was == Some(behind) && now < was;
        if rises || falls_from_top {
            let position = self.graph.get_position(blocker);
            self.recount.insert((position, blocker));
        }
    }

    /// Counts again every queued node, dependents before blockers, each once from its
    /// final dependents; a node whose share changed queues its own blockers. Every change
    /// to the graph ends here, so nothing is left queued between changes (topological
    /// positions move only when an edge is added).
    pub(super) fn settle_work(&mut self) {
        while let Some((_, ix)) = self.recount.pop_last() {
            let behind = self.longest_behind(ix);
            if behind == self.node(ix).behind {
                continue;
            }
            let share = self.chain_share(ix);
            self.node_mut(ix).behind = behind;
            self.refresh(ix);
            self.share_changed(ix, share);
        }
    }
}
