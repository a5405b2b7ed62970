//! One issue in the graph (its state, priority and weight as the scheduler reads them) and
//! a blocker as the status comment shows it.

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
    /// A pull request that closes it is open (counts under
    /// [`UnblockOn::PrOpened`](super::UnblockOn::PrOpened)).
    pub pr_open: bool,
    /// Its latest agent run reported success (enough for dependents under
    /// [`UnblockOn::AgentCompleted`](super::UnblockOn::AgentCompleted)).
    pub agent_done: bool,
    /// A parent issue without an agent of its own: never launched; the engine closes it
    /// once nothing blocks it.
    pub umbrella: bool,
    /// Blockers that are not closed as completed.
    pub(super) unsatisfied: usize,
    /// The work of its heaviest unsatisfied dependent (0 when none): see [`Self::work`].
    pub(super) behind: u64,
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
            umbrella: false,
            unsatisfied: 0,
            behind: 0,
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

    /// The most work on one chain that starts at this issue and runs through its
    /// not-yet-satisfied dependents, its own weight included: nothing can end before that
    /// chain does, so the scheduler starts the heaviest first.
    pub fn work(&self) -> u64 {
        self.weight.saturating_add(self.behind)
    }

    pub(super) fn is_ready(&self) -> bool {
        self.could_start() && self.unsatisfied == 0
    }

    fn could_start(&self) -> bool {
        self.is_waiting() && !self.umbrella
    }

    /// Managed, open, not started and not held back.
    fn is_waiting(&self) -> bool {
        self.managed && self.state == IssueStatus::Open && !self.started && !self.held
    }

    /// An umbrella that nothing blocks any more: the engine closes it.
    pub(super) fn is_finished_umbrella(&self) -> bool {
        self.umbrella && self.is_waiting() && self.unsatisfied == 0
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
