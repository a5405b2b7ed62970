//! The scheduler: whenever an agent slot is free, the ready issue with the longest chain of
//! open dependents behind it goes first, then by `priority:*` label, then the oldest. No
//! waves: a slot freed by one finished run is filled at once. Picks are data; the
//! engine turns them into launch decisions.

use std::collections::HashMap;

use super::DependencyGraph;
use crate::domain::{IssueRef, RepoName};

/// An issue the scheduler picks to launch now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// Which issue.
    pub issue: IssueRef,
    /// Which attempt at it (1 for the first): with the issue, the key that makes a
    /// launch happen once.
    pub attempt: u32,
}

/// Concurrency limits of one installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    /// Agents at once (`codegen.max_concurrent_agents`).
    pub max_concurrent: usize,
    /// Agents at once in any one repository, when capped.
    pub per_repository: Option<usize>,
    /// Repositories where nothing is launched (`/codegen pause`).
    pub paused: std::collections::BTreeSet<RepoName>,
    /// Caps of particular repositories (their own configuration file), before
    /// `per_repository`.
    pub repository_caps: std::collections::BTreeMap<RepoName, usize>,
}

impl Scheduler {
    /// A scheduler for `max_concurrent` agents, without a per-repository cap.
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            max_concurrent: max_concurrent.max(1),
            per_repository: None,
            paused: Default::default(),
            repository_caps: Default::default(),
        }
    }

    /// The ready issues, best first: the order in which free agents take them.
    pub fn queue(&self, graph: &DependencyGraph) -> Vec<IssueRef> {
        let mut ready = graph.ready_with_critical_work();
        ready.retain(|(issue, _, _)| !self.paused.contains(&issue.repo));
        ready.sort_unstable_by(|(a, a_work, a_priority), (b, b_work, b_priority)| {
            (std::cmp::Reverse(a_work), a_priority, a).cmp(&(
                std::cmp::Reverse(b_work),
                b_priority,
                b,
            ))
        });
        ready.into_iter().map(|(issue, _, _)| issue).collect()
    }

    /// The launches to make now, best first, given the issues whose agents are running.
    /// Marking them started in the graph is the caller's part, once they are launched.
    pub fn decide(&self, graph: &DependencyGraph, running: &[IssueRef]) -> Vec<Pick> {
        let free = self.max_concurrent.saturating_sub(running.len());
        if free == 0 {
            return Vec::new();
        }
        let mut per_repo: HashMap<&RepoName, usize> = HashMap::new();
        for issue in running {
            *per_repo.entry(&issue.repo).or_default() += 1;
        }
        let ready = self.queue(graph);
        let mut decisions = Vec::with_capacity(free);
        let mut launched: HashMap<RepoName, usize> = HashMap::new();
        for issue in ready {
            if decisions.len() == free {
                break;
            }
            let in_repo = per_repo.get(&issue.repo).copied().unwrap_or(0)
                + launched.get(&issue.repo).copied().unwrap_or(0);
            let cap = self
                .repository_caps
                .get(&issue.repo)
                .copied()
                .or(self.per_repository);
            if cap.is_some_and(|cap| in_repo >= cap) {
                continue;
            }
            *launched.entry(issue.repo.clone()).or_default() += 1;
            let attempt = graph.get(&issue).map_or(0, |node| node.attempts) + 1;
            decisions.push(Pick { issue, attempt });
        }
        decisions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IssueStatus;
    use crate::engine::{
        DEFAULT_ESTIMATE_MINUTES, IssueNode, Priority, UnblockOn, estimate_from_labels,
    };

    fn r(repo: &str, n: u64) -> IssueRef {
        IssueRef::new(repo.parse().unwrap(), n)
    }

    fn launched(decisions: &[Pick]) -> Vec<String> {
        decisions
            .iter()
            .map(|Pick { issue, .. }| issue.to_string())
            .collect()
    }

    /// a/x#1 <- #2 <- #3; a/x#4, a/x#5 alone; a/x#6 alone but high priority.
    fn graph() -> DependencyGraph {
        let mut graph = DependencyGraph::new();
        for n in 1..=6 {
            let mut node = IssueNode::new(r("a/x", n), IssueStatus::Open).managed();
            if n == 6 {
                node.priority = Priority::High;
            }
            graph.upsert(node);
        }
        graph.add_dependency(&r("a/x", 2), &r("a/x", 1)).unwrap();
        graph.add_dependency(&r("a/x", 3), &r("a/x", 2)).unwrap();
        graph
    }

    #[test]
    fn the_longest_chain_first_then_priority_then_oldest() {
        let decisions = Scheduler::new(10).decide(&graph(), &[]);
        assert_eq!(launched(&decisions), ["a/x#1", "a/x#6", "a/x#4", "a/x#5"]);
    }

    #[test]
    fn the_concurrency_cap_is_never_exceeded() {
        let scheduler = Scheduler::new(3);
        assert_eq!(scheduler.decide(&graph(), &[]).len(), 3);
        assert_eq!(scheduler.decide(&graph(), &[r("a/x", 9)]).len(), 2);
        assert!(
            scheduler
                .decide(&graph(), &[r("a/x", 7), r("a/x", 8), r("a/x", 9)])
                .is_empty()
        );
    }

    #[test]
    fn a_repository_cap_leaves_room_for_other_repositories() {
        let mut graph = graph();
        graph.upsert(IssueNode::new(r("a/y", 1), IssueStatus::Open).managed());
        let scheduler = Scheduler {
            per_repository: Some(2),
            ..Scheduler::new(10)
        };
        let decisions = scheduler.decide(&graph, &[r("a/x", 9)]);
        assert_eq!(launched(&decisions), ["a/x#1", "a/y#1"]);
    }

    #[test]
    fn priority_labels_are_read() {
        assert_eq!(
            Priority::from_labels(["bug", "Priority:High"]),
            Priority::High
        );
        assert_eq!(
            Priority::from_labels(["priority:low", "priority:medium"]),
            Priority::Medium
        );
        assert_eq!(Priority::from_labels(["bug"]), Priority::Unset);
        assert!(Priority::Unset < Priority::Low && Priority::Medium < Priority::Unset);
    }

    #[test]
    fn a_failed_run_keeps_dependents_blocked_and_a_retry_is_attempt_two() {
        let mut graph = graph();
        let scheduler = Scheduler::new(10);
        // #1 launched (attempt 1), then its run failed: it is not started any more, so it
        // may be retried, and #2 stays blocked because #1 is still open.
        graph.set_agent(&r("a/x", 1), 1, true, false);
        assert!(!graph.ready().contains(&r("a/x", 1)));
        graph.set_agent(&r("a/x", 1), 1, false, false);
        assert!(!graph.ready().contains(&r("a/x", 2)));
        let retry = scheduler.decide(&graph, &[]);
        assert_eq!(
            retry[0],
            Pick {
                issue: r("a/x", 1),
                attempt: 2
            }
        );
    }

    #[test]
    fn a_completed_agent_unblocks_only_when_configured() {
        for (unblock_on, unblocked) in [
            (UnblockOn::IssueClosed, false),
            (UnblockOn::AgentCompleted, true),
        ] {
            let mut graph = DependencyGraph::with_unblock_on(unblock_on);
            graph.upsert(IssueNode::new(r("a/x", 1), IssueStatus::Open).managed());
            graph.upsert(IssueNode::new(r("a/x", 2), IssueStatus::Open).managed());
            graph.add_dependency(&r("a/x", 2), &r("a/x", 1)).unwrap();
            graph.set_agent(&r("a/x", 1), 1, false, true);
            assert_eq!(
                graph.ready().contains(&r("a/x", 2)),
                unblocked,
                "{unblock_on:?}"
            );
            // Closed as not planned, the agent's success no longer counts.
            graph.set_state(&r("a/x", 1), IssueStatus::ClosedNotPlanned);
            assert!(!graph.ready().contains(&r("a/x", 2)));
        }
    }

    #[test]
    fn estimate_labels_weigh_chains() {
        assert_eq!(estimate_from_labels(["estimate:90m"]), Some(90));
        assert_eq!(estimate_from_labels(["Estimate: 2h", "bug"]), Some(120));
        assert_eq!(
            estimate_from_labels(["estimate:1d", "estimate:3h"]),
            Some(480)
        );
        assert_eq!(
            estimate_from_labels(["estimate:soon", "estimate:", "size:2h"]),
            None
        );

        // #1 (10 min) blocks #2 (10 min); #3 alone takes a day: #3 is the longer chain.
        let mut graph = DependencyGraph::new();
        for (n, minutes) in [(1, 10), (2, 10), (3, 480)] {
            let mut node = IssueNode::new(r("a/x", n), IssueStatus::Open).managed();
            node.weight = minutes;
            graph.upsert(node);
        }
        graph.add_dependency(&r("a/x", 2), &r("a/x", 1)).unwrap();
        let decisions = Scheduler::new(1).decide(&graph, &[]);
        assert_eq!(launched(&decisions), ["a/x#3"]);
        // Without estimates the chain of two goes first.
        for n in 1..=3 {
            let mut node = graph.get(&r("a/x", n)).unwrap().clone();
            node.weight = DEFAULT_ESTIMATE_MINUTES;
            graph.upsert(node);
        }
        assert_eq!(launched(&Scheduler::new(1).decide(&graph, &[])), ["a/x#1"]);
    }
}
