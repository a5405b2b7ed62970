//! The forecast: the engine's own scheduler run forward on a virtual clock from the state
//! as it stands. Running runs end at their expected duration (counted from when they
//! started), freed agents take the best ready issue as [`Scheduler::decide`] picks it, within
//! the agent caps and Codegen's limit on run creations, and every finished issue releases
//! its dependents. What comes out is when each open managed issue is expected to start and
//! finish, when the whole graph is expected to be done, and the agent time that costs.
//!
//! Each issue weighs its expected duration ([`IssueNode::weight`]: its `estimate:` label,
//! its repository's learned figure, or the default), so the forecast is exactly as good as
//! those figures: it is the schedule the bot will follow if every run takes what it is
//! expected to.
//!
//! Pure: the caller gives the time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use crate::domain::{IssueRef, IssueStatus};
use crate::engine::{DependencyGraph, IssueNode, Scheduler};

/// Codegen's documented limit on run creations: 10 a minute per token (the default of
/// `codegen.creations_per_minute`, which callers pass on).
pub const CODEGEN_LAUNCHES_PER_MINUTE: usize = 10;

/// A run that has taken longer than expected is still given this part of its expected
/// duration (at least a minute) from now: it is not over just because it is late.
const LATE_RUN_REMAINS: i64 = 10;

/// When one issue is expected to start and finish (unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// When its agent is expected to start (its actual start when it is running).
    pub start: i64,
    /// When its agent is expected to finish.
    pub finish: i64,
}

/// The forecast of one installation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forecast {
    /// When it was made (unix ms).
    pub made_at: i64,
    /// Every open managed issue that is expected to run, with when.
    pub issues: HashMap<IssueRef, Expected>,
    /// When the last of them is expected to finish; `None` when none is.
    pub finish: Option<i64>,
    /// The agent time the remaining work is expected to cost, in ms (what running runs
    /// have left, and every run to come).
    pub agent_ms: i64,
}

impl Forecast {
    /// The remaining agent time in hours.
    pub fn agent_hours(&self) -> f64 {
        self.agent_ms as f64 / 3_600_000.0
    }

    /// When `issue` is expected to start and finish.
    pub fn of(&self, issue: &IssueRef) -> Option<Expected> {
        self.issues.get(issue).copied()
    }
}

/// What the forecast starts from besides the graph.
#[derive(Debug, Clone)]
pub struct Start {
    /// Issues whose agents are running, with when each started (unix ms).
    pub running: Vec<(IssueRef, i64)>,
    /// No launch before this (a Codegen quota pause), when later than now.
    pub launches_from: i64,
    /// At most this many launches in any minute.
    pub launches_per_minute: usize,
    /// Now (unix ms).
    pub now: i64,
}

/// An issue's expected duration in ms: its weight in minutes.
pub fn expected_ms(node: &IssueNode) -> i64 {
    i64::try_from(node.weight.saturating_mul(60_000)).unwrap_or(i64::MAX / 4)
}

/// Runs `scheduler` forward over `graph` from `start`.
pub fn forecast(graph: &DependencyGraph, scheduler: &Scheduler, start: &Start) -> Forecast {
    let now = start.now;
    let mut graph = graph.clone();
    let mut out = Forecast {
        made_at: now,
        ..Forecast::default()
    };
    // Runs in flight by expected end; the scheduler is told which issues they are.
    let mut ends: BinaryHeap<Reverse<(i64, IssueRef)>> = BinaryHeap::new();
    let mut running: Vec<IssueRef> = Vec::new();
    for (issue, started) in &start.running {
        let duration = graph.get(issue).map_or(0, expected_ms);
        let late = (duration / LATE_RUN_REMAINS).max(60_000);
        let finish = (started + duration).max(now + late);
        out.agent_ms += finish - now;
        out.issues.insert(
            issue.clone(),
            Expected {
                start: *started,
                finish,
            },
        );
        ends.push(Reverse((finish, issue.clone())));
        running.push(issue.clone());
    }
    let mut launches = Launches::new(start.launches_per_minute);
    let mut clock = now.max(start.launches_from);
    loop {
        if clock >= start.launches_from {
            for pick in scheduler.decide(&graph, &running) {
                let at = launches.next_at(clock);
                let duration = graph.get(&pick.issue).map_or(0, expected_ms);
                graph.set_started(&pick.issue, true);
                out.agent_ms += duration;
                out.issues.insert(
                    pick.issue.clone(),
                    Expected {
                        start: at,
                        finish: at + duration,
                    },
                );
                ends.push(Reverse((at + duration, pick.issue.clone())));
                running.push(pick.issue);
            }
        }
        let Some(Reverse((end, issue))) = ends.pop() else {
            break;
        };
        clock = clock.max(end);
        running.retain(|r| r != &issue);
        finish_issue(&mut graph, &issue, end, &mut out);
    }
    out.finish = out.issues.values().map(|e| e.finish).max();
    out
}

/// `issue` is done at `at`: closed as completed, and the umbrellas it was the last
/// blocker of are closed with it (they have no agent of their own).
fn finish_issue(graph: &mut DependencyGraph, issue: &IssueRef, at: i64, out: &mut Forecast) {
    let mut done = vec![issue.clone()];
    while let Some(issue) = done.pop() {
        graph.set_state(&issue, IssueStatus::ClosedCompleted);
        for dependent in graph.direct_dependents(&issue) {
            if graph.is_finished_umbrella(&dependent) {
                out.issues.insert(
                    dependent.clone(),
                    Expected {
                        start: at,
                        finish: at,
                    },
                );
                done.push(dependent);
            }
        }
    }
}

/// Launch times within a limit per minute.
struct Launches {
    per_minute: usize,
    recent: VecDeque<i64>,
}

impl Launches {
    fn new(per_minute: usize) -> Self {
        Self {
            per_minute: per_minute.max(1),
            recent: VecDeque::new(),
        }
    }

    /// The earliest a launch wanted at `at` can be made, counted as made.
    fn next_at(&mut self, at: i64) -> i64 {
        let mut at = at;
        if self.recent.len() >= self.per_minute {
            let oldest = self.recent[self.recent.len() - self.per_minute];
            at = at.max(oldest + 60_000);
        }
        self.recent.push_back(at);
        while self.recent.len() > self.per_minute {
            self.recent.pop_front();
        }
        at
    }
}

#[cfg(test)]
#[path = "forecast_tests.rs"]
mod tests;
