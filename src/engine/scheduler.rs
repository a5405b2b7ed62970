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

    /// The ready issues, best first: the order in which free agents take them (paused
    /// repositories left out). Every ready issue: for the launch plan, not for each step.
    pub fn queue(&self, graph: &DependencyGraph) -> Vec<IssueRef> {
        self.first_queued(graph, usize::MAX)
    }

    /// The first `count` issues of [`Scheduler::queue`], at a cost that grows with `count`
    /// and the paused repositories, not with the queue.
    pub fn first_queued(&self, graph: &DependencyGraph, count: usize) -> Vec<IssueRef> {
        let mut order = graph.launch_order();
        let mut first = Vec::new();
        while first.len() < count
            && let Some(issue) = order.next()
        {
            if self.paused.contains(&issue.repo) {
                order.pass_over_repository();
            } else {
                first.push(issue.clone());
            }
        }
        first
    }

    /// Whether `issue` is in the queue (ready, its repository not paused).
    pub fn is_queued(&self, graph: &DependencyGraph, issue: &IssueRef) -> bool {
        !self.paused.contains(&issue.repo) && graph.is_ready(issue)
    }

    /// The launches to make now, best first, given the issues whose agents are running.
    /// Marking them started in the graph is the caller's part, once they are launched.
    /// The queue is read in order and only as far as the free agents need: a repository
    /// that is paused or reaches its cap is passed over whole, at the cost of one entry.
    pub fn decide(&self, graph: &DependencyGraph, running: &[IssueRef]) -> Vec<Pick> {
        let free = self.max_concurrent.saturating_sub(running.len());
        if free == 0 {
            return Vec::new();
        }
        let mut per_repo: HashMap<&RepoName, usize> = HashMap::new();
        for issue in running {
            *per_repo.entry(&issue.repo).or_default() += 1;
        }
        let mut order = graph.launch_order();
        let mut decisions = Vec::with_capacity(free);
        let mut launched: HashMap<&RepoName, usize> = HashMap::new();
        while decisions.len() < free
            && let Some(issue) = order.next()
        {
            let in_repo = per_repo.get(&issue.repo).copied().unwrap_or(0)
                + launched.get(&issue.repo).copied().unwrap_or(0);
            let cap = self
                .repository_caps
                .get(&issue.repo)
                .copied()
                .or(self.per_repository);
            // Launches only add to a repository's count: one that may not launch now
            // may not for the rest of this decision either.
            if self.paused.contains(&issue.repo) || cap.is_some_and(|cap| in_repo >= cap) {
                order.pass_over_repository();
                continue;
            }
            *launched.entry(&issue.repo).or_default() += 1;
            let attempt = graph.get(issue).map_or(0, |node| node.attempts) + 1;
            decisions.push(Pick {
                issue: issue.clone(),
                attempt,
            });
        }
        decisions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IssueStatus;
    use crate::engine::status::QUEUE_POSITIONS_SHOWN;
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

    /// The scheduler as it was before the ordered ready set: every ready issue sorted at
    /// every step, paused repositories filtered out, capped ones skipped one by one.
    fn decide_by_sorting(
        scheduler: &Scheduler,
        graph: &DependencyGraph,
        running: &[IssueRef],
    ) -> (Vec<IssueRef>, Vec<Pick>) {
        let mut ready: Vec<(std::cmp::Reverse<u64>, Priority, IssueRef)> = graph
            .ready()
            .into_iter()
            .filter(|issue| !scheduler.paused.contains(&issue.repo))
            .map(|issue| {
                let node = graph.get(&issue).unwrap();
                (std::cmp::Reverse(node.work()), node.priority, issue)
            })
            .collect();
        ready.sort();
        let queue: Vec<IssueRef> = ready.into_iter().map(|(_, _, issue)| issue).collect();
        let free = scheduler.max_concurrent.saturating_sub(running.len());
        let mut picks: Vec<Pick> = Vec::new();
        for issue in &queue {
            if picks.len() >= free {
                break;
            }
            let in_repo = running
                .iter()
                .chain(picks.iter().map(|p| &p.issue))
                .filter(|i| i.repo == issue.repo)
                .count();
            let cap = scheduler
                .repository_caps
                .get(&issue.repo)
                .copied()
                .or(scheduler.per_repository);
            if cap.is_some_and(|cap| in_repo >= cap) {
                continue;
            }
            let attempt = graph.get(issue).unwrap().attempts + 1;
            picks.push(Pick {
                issue: issue.clone(),
                attempt,
            });
        }
        (queue, picks)
    }

    proptest::proptest! {
        #[test]
        fn reading_the_ordered_queue_decides_as_sorting_everything_did(
            issues in proptest::collection::vec((0..3_usize, 1..40_u64, 0..4_u64, 0..4_usize), 1..40),
            edges in proptest::collection::vec((0..40_usize, 0..40_usize), 0..40),
            paused in proptest::collection::btree_set(0..3_usize, 0..2),
            per_repository in proptest::option::of(1..4_usize),
            capped in proptest::option::of((0..3_usize, 0..3_usize)),
            running in proptest::collection::vec((0..3_usize, 100..110_u64), 0..5),
            max_concurrent in 1..8_usize,
        ) {
            let repos = ["a/x", "a/y", "b/z"];
            let priorities = [Priority::High, Priority::Medium, Priority::Unset, Priority::Low];
            let mut graph = DependencyGraph::new();
            let mut refs = Vec::new();
            for (repo, number, weight, priority) in &issues {
                let mut node = IssueNode::new(r(repos[*repo], *number), IssueStatus::Open).managed();
                node.weight = weight * 30;
                node.priority = priorities[*priority];
                refs.push(node.issue.clone());
                graph.upsert(node);
            }
            for (a, b) in edges {
                let (a, b) = (&refs[a % refs.len()], &refs[b % refs.len()]);
                let _ = graph.add_dependency(a, b);
            }
            let scheduler = Scheduler {
                max_concurrent,
                per_repository,
                paused: paused.iter().map(|n| repos[*n].parse().unwrap()).collect(),
                repository_caps: capped
                    .map(|(repo, cap)| (repos[repo].parse().unwrap(), cap))
                    .into_iter()
                    .collect(),
            };
            let running: Vec<IssueRef> =
                running.iter().map(|(repo, n)| r(repos[*repo], *n)).collect();
            let (queue, picks) = decide_by_sorting(&scheduler, &graph, &running);
            proptest::prop_assert_eq!(scheduler.decide(&graph, &running), picks);
            proptest::prop_assert_eq!(&scheduler.queue(&graph), &queue);
            let first = scheduler.first_queued(&graph, QUEUE_POSITIONS_SHOWN);
            proptest::prop_assert_eq!(&first[..], &queue[..queue.len().min(QUEUE_POSITIONS_SHOWN)]);
            for issue in &refs {
                proptest::prop_assert_eq!(scheduler.is_queued(&graph, issue), queue.contains(issue));
            }
        }
    }

    #[test]
    fn a_paused_repository_is_not_queued_and_others_go_on() {
        let mut graph = graph();
        graph.upsert(IssueNode::new(r("a/y", 1), IssueStatus::Open).managed());
        let scheduler = Scheduler {
            paused: ["a/x".parse().unwrap()].into_iter().collect(),
            ..Scheduler::new(10)
        };
        assert_eq!(launched(&scheduler.decide(&graph, &[])), ["a/y#1"]);
        assert_eq!(scheduler.queue(&graph), [r("a/y", 1)]);
        assert!(!scheduler.is_queued(&graph, &r("a/x", 1)));
        assert!(scheduler.is_queued(&graph, &r("a/y", 1)));
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
