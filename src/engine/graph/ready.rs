//! The ready issues in launch order, kept sorted as they change: the heaviest chain of
//! open dependents first, then priority, then the oldest. The scheduler reads the first
//! few instead of sorting every ready issue at every step.
//!
//! Each repository's ready issues are kept apart, with the first of each in a set of its
//! own: merging them gives the whole order, and a repository the scheduler may not launch
//! in (paused, or at its cap) is passed over at the cost of one entry, however many
//! issues it has ready.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, btree_set};

use petgraph::stable_graph::NodeIndex;

use super::Priority;
use crate::domain::{IssueRef, RepoName};

/// Where a ready issue stands in the launch order; smaller goes first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct QueueKey {
    /// The work on the heaviest chain that starts at the issue (more goes first).
    pub(super) work: Reverse<u64>,
    /// Its `priority:*` label.
    pub(super) priority: Priority,
    /// The issue: the oldest (by repository, then number) goes first.
    pub(super) issue: IssueRef,
}

/// The ready issues of a graph, ordered, with the changes to their membership since it was
/// last asked which issues joined.
#[derive(Debug, Clone, Default)]
pub(super) struct ReadyQueue {
    /// The key of every ready node.
    keys: HashMap<NodeIndex, QueueKey>,
    /// Each repository's ready issues, in launch order (never empty).
    by_repo: HashMap<RepoName, BTreeSet<QueueKey>>,
    /// The first of each repository's ready issues, in launch order.
    heads: BTreeSet<QueueKey>,
    /// Nodes that joined or left since the last [`ReadyQueue::take_joined`], with whether
    /// they were ready then.
    journal: HashMap<NodeIndex, bool>,
}

impl ReadyQueue {
    /// Whether `ix` is ready.
    pub(super) fn contains(&self, ix: NodeIndex) -> bool {
        self.keys.contains_key(&ix)
    }

    /// The key `ix` is queued under, when it is ready.
    pub(super) fn key(&self, ix: NodeIndex) -> Option<&QueueKey> {
        self.keys.get(&ix)
    }

    /// The ready nodes, in no particular order.
    pub(super) fn nodes(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.keys.keys().copied()
    }

    /// Makes `ix` ready under `key`, or (`None`) not ready.
    pub(super) fn set(&mut self, ix: NodeIndex, key: Option<QueueKey>) {
        let old = match &key {
            Some(key) => self.keys.insert(ix, key.clone()),
            None => self.keys.remove(&ix),
        };
        let (was, now) = (old.is_some(), key.is_some());
        if let Some(old) = old {
            self.remove_key(&old);
        }
        if let Some(key) = key {
            self.insert_key(key);
        }
        if was != now {
            self.journal.entry(ix).or_insert(was);
        }
    }

    /// Forgets `ix` altogether (its node is removed; the index may be given to another).
    pub(super) fn forget(&mut self, ix: NodeIndex) {
        if let Some(old) = self.keys.remove(&ix) {
            self.remove_key(&old);
        }
        self.journal.remove(&ix);
    }

    /// The nodes ready now that were not at the last call (or ever, for the first).
    pub(super) fn take_joined(&mut self) -> Vec<NodeIndex> {
        let journal = std::mem::take(&mut self.journal);
        journal
            .into_iter()
            .filter(|(ix, was)| !was && self.keys.contains_key(ix))
            .map(|(ix, _)| ix)
            .collect()
    }

    /// Whether `ix` was ready at the last [`ReadyQueue::take_joined`].
    pub(super) fn was_ready(&self, ix: NodeIndex) -> bool {
        self.journal
            .get(&ix)
            .copied()
            .unwrap_or_else(|| self.keys.contains_key(&ix))
    }

    /// Remembers `ix` as ready (or not) at the last [`ReadyQueue::take_joined`]: a graph
    /// rebuilt from scratch carries on from the one it replaces.
    pub(super) fn remember_was_ready(&mut self, ix: NodeIndex, was: bool) {
        if was != self.keys.contains_key(&ix) {
            self.journal.insert(ix, was);
        } else {
            self.journal.remove(&ix);
        }
    }

    /// The ready issues of `repo`, in launch order.
    pub(super) fn in_repo<'a>(&'a self, repo: &RepoName) -> impl Iterator<Item = &'a IssueRef> {
        self.by_repo
            .get(repo)
            .into_iter()
            .flatten()
            .map(|key| &key.issue)
    }

    /// Every ready issue in launch order.
    pub(super) fn launch_order(&self) -> LaunchOrder<'_> {
        LaunchOrder {
            queue: self,
            heads: self.heads.iter(),
            next_head: None,
            taken: BinaryHeap::new(),
            last: None,
        }
    }

    fn insert_key(&mut self, key: QueueKey) {
        if !self.by_repo.contains_key(&key.issue.repo) {
            self.by_repo.insert(key.issue.repo.clone(), BTreeSet::new());
        }
        let repo = self
            .by_repo
            .get_mut(&key.issue.repo)
            .expect("just inserted");
        let head = repo.first().cloned();
        repo.insert(key.clone());
        if head.as_ref().is_none_or(|head| key < *head) {
            if let Some(head) = head {
                self.heads.remove(&head);
            }
            self.heads.insert(key);
        }
    }

    fn remove_key(&mut self, key: &QueueKey) {
        let Some(repo) = self.by_repo.get_mut(&key.issue.repo) else {
            return;
        };
        repo.remove(key);
        if self.heads.remove(key) {
            match repo.first() {
                Some(next) => {
                    self.heads.insert(next.clone());
                }
                None => {
                    self.by_repo.remove(&key.issue.repo);
                }
            }
        }
    }
}

/// The ready issues in launch order, merged from each repository's: the next is the
/// smaller of the next repository head not reached yet and the next issue of the
/// repositories already reached. [`LaunchOrder::pass_over_repository`] leaves out the
/// rest of the last issue's repository at no cost.
pub struct LaunchOrder<'a> {
    queue: &'a ReadyQueue,
    heads: btree_set::Iter<'a, QueueKey>,
    next_head: Option<&'a QueueKey>,
    /// The next issue of each repository reached, with the rest of that repository's.
    taken: BinaryHeap<Reverse<Cursor<'a>>>,
    /// The repository of the last issue given, with the rest of its issues: put back
    /// into `taken` at the next step unless passed over.
    last: Option<btree_set::Iter<'a, QueueKey>>,
}

/// The next issue of one repository and the ones after it.
struct Cursor<'a> {
    next: &'a QueueKey,
    rest: btree_set::Iter<'a, QueueKey>,
}

impl PartialEq for Cursor<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.next == other.next
    }
}

impl Eq for Cursor<'_> {}

impl PartialOrd for Cursor<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cursor<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.next.cmp(other.next)
    }
}

impl<'a> LaunchOrder<'a> {
    /// Leaves out the issues after the last one given in its repository (the scheduler
    /// may not launch there: paused, or at its cap).
    pub fn pass_over_repository(&mut self) {
        self.last = None;
    }
}

impl<'a> Iterator for LaunchOrder<'a> {
    type Item = &'a IssueRef;

    fn next(&mut self) -> Option<&'a IssueRef> {
        if let Some(mut rest) = self.last.take()
            && let Some(next) = rest.next()
        {
            self.taken.push(Reverse(Cursor { next, rest }));
        }
        if self.next_head.is_none() {
            self.next_head = self.heads.next();
        }
        let from_heads = match (self.next_head, self.taken.peek()) {
            (None, None) => return None,
            (Some(head), Some(Reverse(cursor))) => head < cursor.next,
            (head, _) => head.is_some(),
        };
        if from_heads {
            let head = self.next_head.take()?;
            let mut rest = self.queue.by_repo.get(&head.issue.repo)?.iter();
            rest.next(); // the head itself
            self.last = Some(rest);
            Some(&head.issue)
        } else {
            let Reverse(Cursor { next, rest }) = self.taken.pop()?;
            self.last = Some(rest);
            Some(&next.issue)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(repo: &str, n: u64, work: u64) -> QueueKey {
        QueueKey {
            work: Reverse(work),
            priority: Priority::Unset,
            issue: IssueRef::new(repo.parse().unwrap(), n),
        }
    }

    fn queue(keys: &[QueueKey]) -> ReadyQueue {
        let mut queue = ReadyQueue::default();
        for (n, key) in keys.iter().enumerate() {
            queue.set(NodeIndex::new(n), Some(key.clone()));
        }
        queue
    }

    #[test]
    fn the_order_merges_every_repository_by_key() {
        let keys = [
            key("a/x", 1, 60),
            key("a/y", 2, 300),
            key("a/x", 3, 240),
            key("a/z", 4, 60),
            key("a/y", 5, 60),
        ];
        let queue = queue(&keys);
        let order: Vec<String> = queue.launch_order().map(|i| i.to_string()).collect();
        assert_eq!(order, ["a/y#2", "a/x#3", "a/x#1", "a/y#5", "a/z#4"]);
    }

    #[test]
    fn a_repository_passed_over_gives_no_more_issues() {
        let keys = [
            key("a/x", 1, 500),
            key("a/x", 2, 400),
            key("a/y", 3, 300),
            key("a/x", 4, 200),
            key("a/y", 5, 100),
        ];
        let queue = queue(&keys);
        let mut order = queue.launch_order();
        assert_eq!(order.next().unwrap().to_string(), "a/x#1");
        order.pass_over_repository();
        let rest: Vec<String> = order.map(|i| i.to_string()).collect();
        assert_eq!(rest, ["a/y#3", "a/y#5"]);
    }

    #[test]
    fn a_changed_key_moves_the_issue_and_the_heads_follow() {
        let mut queue = queue(&[key("a/x", 1, 60), key("a/x", 2, 120)]);
        queue.set(NodeIndex::new(0), Some(key("a/x", 1, 180)));
        let order: Vec<String> = queue.launch_order().map(|i| i.to_string()).collect();
        assert_eq!(order, ["a/x#1", "a/x#2"]);
        queue.set(NodeIndex::new(0), None);
        queue.set(NodeIndex::new(1), None);
        assert_eq!(queue.launch_order().count(), 0);
        assert!(queue.by_repo.is_empty() && queue.heads.is_empty());
    }

    #[test]
    fn joined_counts_membership_since_the_last_call_not_key_changes() {
        let mut queue = queue(&[key("a/x", 1, 60), key("a/x", 2, 60)]);
        let mut joined = queue.take_joined();
        joined.sort();
        assert_eq!(joined, [NodeIndex::new(0), NodeIndex::new(1)]);
        // Out and back in again, and a new key: not joined.
        queue.set(NodeIndex::new(0), None);
        queue.set(NodeIndex::new(0), Some(key("a/x", 1, 90)));
        queue.set(NodeIndex::new(1), Some(key("a/x", 2, 90)));
        queue.set(NodeIndex::new(2), Some(key("a/x", 3, 60)));
        assert!(queue.was_ready(NodeIndex::new(0)) && !queue.was_ready(NodeIndex::new(2)));
        assert_eq!(queue.take_joined(), [NodeIndex::new(2)]);
        assert!(queue.take_joined().is_empty());
    }
}
