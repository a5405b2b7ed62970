//! `simulate --forecast`: how good the forecast is. Random graphs are spread over several
//! repositories whose runs take different times (each task's duration drawn around its
//! repository's mean); the scheduler works through each graph on a virtual clock as the
//! bot does, learning each repository's figure from the runs that finish (as
//! [`Durations`] does in the engine) and weighing unlabelled issues with it. The forecast
//! ([`forecast::forecast`], the same function the engine calls) is made at the start and
//! after 25 % and 50 % of the tasks finished, and compared with when the graph really
//! finished. The same graphs are also worked with the shape only (every issue weighs the
//! default hour) and with every duration known, for the makespan ratios.
//!
//! The work is the scheduler's and the forecast's, without GitHub and Codegen: the whole
//! engine in `simulate` runs a single repository.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use serde::Serialize;

use super::random_graph;
use crate::domain::{IssueRef, IssueStatus, RepoName};
use crate::engine::durations::{Durations, moved_enough};
use crate::engine::forecast::{self, CODEGEN_LAUNCHES_PER_MINUTE, Start};
use crate::engine::{DEFAULT_ESTIMATE_MINUTES, DependencyGraph, IssueNode, Scheduler};

/// Each repository's mean relative to the random graph's (30 minutes): 15 minutes, 30,
/// one hour, two hours.
const REPO_FACTORS: [f64; 4] = [0.5, 1.0, 2.0, 4.0];

/// The points at which the forecast is made: the share of tasks finished.
pub const CHECKPOINTS: [f64; 3] = [0.0, 0.25, 0.5];

/// How issues are weighed while a graph is worked through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weighing {
    /// Every issue weighs the default: the scheduler sees the shape only.
    Shape,
    /// Unlabelled issues weigh their repository's learned figure.
    Learned,
    /// Every issue weighs its real duration (as if every estimate were right).
    Known,
}

/// What the runs over many graphs found.
#[derive(Debug, Clone, Serialize)]
pub struct AccuracyReport {
    /// Graphs worked through.
    pub graphs: usize,
    /// Tasks per graph.
    pub tasks: usize,
    /// Agents.
    pub agents: usize,
    /// At each checkpoint (share of tasks done): the median absolute error of the
    /// predicted finish, as a share of the remaining time then (the time from the
    /// forecast to the real finish).
    pub median_error: Vec<(f64, f64)>,
    /// The same in minutes.
    pub median_error_minutes: Vec<(f64, f64)>,
    /// The median of predicted minus real finish, in minutes (negative: too early).
    pub median_bias_minutes: Vec<(f64, f64)>,
    /// Median makespan over the lower bound with the shape only.
    pub ratio_shape: f64,
    /// With learned durations.
    pub ratio_learned: f64,
    /// With every duration known.
    pub ratio_known: f64,
}

/// Works through `graphs` random graphs of `tasks` tasks (seeds `seed`, `seed + 1`, ...)
/// with `agents` agents.
pub fn forecast_accuracy(tasks: usize, agents: usize, graphs: usize, seed: u64) -> AccuracyReport {
    let mut errors = vec![Vec::new(); CHECKPOINTS.len()];
    let mut minutes = vec![Vec::new(); CHECKPOINTS.len()];
    let mut bias = vec![Vec::new(); CHECKPOINTS.len()];
    let (mut shape, mut learned, mut known) = (Vec::new(), Vec::new(), Vec::new());
    for g in 0..graphs as u64 {
        let work = Work::random(tasks, agents, seed + g);
        shape.push(work.run(Weighing::Shape).makespan / work.lower_bound());
        known.push(work.run(Weighing::Known).makespan / work.lower_bound());
        let run = work.run(Weighing::Learned);
        learned.push(run.makespan / work.lower_bound());
        for (i, (at, predicted)) in run.forecasts.iter().enumerate() {
            let remaining = (run.makespan - at).max(1.0);
            let error = (predicted - run.makespan).abs();
            errors[i].push(error / remaining);
            minutes[i].push(error / 60.0);
            bias[i].push((predicted - run.makespan) / 60.0);
        }
    }
    let at = |values: Vec<Vec<f64>>| -> Vec<(f64, f64)> {
        CHECKPOINTS
            .iter()
            .zip(values)
            .map(|(point, v)| (*point, median(v)))
            .collect()
    };
    AccuracyReport {
        graphs,
        tasks,
        agents,
        median_error: at(errors),
        median_error_minutes: at(minutes),
        median_bias_minutes: at(bias),
        ratio_shape: median(shape),
        ratio_learned: median(learned),
        ratio_known: median(known),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// One graph: each task's issue, real duration (seconds) and blockers.
struct Work {
    agents: usize,
    issues: Vec<IssueRef>,
    secs: Vec<f64>,
    deps: Vec<Vec<usize>>,
}

/// How one working-through went: when it ended (seconds) and, at each checkpoint, when
/// the forecast said it would (both from the start).
struct Run {
    makespan: f64,
    forecasts: Vec<(f64, f64)>,
}

impl Work {
    /// The random graph of `seed`, its tasks spread over the repositories in turn and
    /// their durations scaled by their repository's factor.
    fn random(tasks: usize, agents: usize, seed: u64) -> Self {
        let graph = random_graph(tasks, seed, agents);
        let names: Vec<&str> = graph.tasks.iter().map(|t| t.id.as_str()).collect();
        let repos: Vec<RepoName> = (0..REPO_FACTORS.len())
            .map(|r| format!("forecast/repo-{r}").parse().expect("a valid name"))
            .collect();
        let mut work = Self {
            agents,
            issues: Vec::new(),
            secs: Vec::new(),
            deps: Vec::new(),
        };
        for (i, task) in graph.tasks.iter().enumerate() {
            let r = i % repos.len();
            work.issues
                .push(IssueRef::new(repos[r].clone(), i as u64 + 1));
            work.secs.push(task.duration_secs * REPO_FACTORS[r]);
            work.deps.push(
                task.deps
                    .iter()
                    .filter_map(|d| names.iter().position(|n| n == d))
                    .collect(),
            );
        }
        work
    }

    /// The bound no schedule beats: the longest chain, or all work spread over the agents.
    fn lower_bound(&self) -> f64 {
        let mut finish = vec![0.0_f64; self.secs.len()];
        // Tasks come in an order where blockers are earlier (the generator's layers).
        let order = self.topological();
        for &i in &order {
            let start = self.deps[i].iter().map(|&d| finish[d]).fold(0.0, f64::max);
            finish[i] = start + self.secs[i];
        }
        let chain = finish.iter().copied().fold(0.0, f64::max);
        chain.max(self.secs.iter().sum::<f64>() / self.agents as f64)
    }

    fn topological(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.secs.len());
        let mut placed = vec![false; self.secs.len()];
        while order.len() < self.secs.len() {
            for i in 0..self.secs.len() {
                if !placed[i] && self.deps[i].iter().all(|&d| placed[d]) {
                    placed[i] = true;
                    order.push(i);
                }
            }
        }
        order
    }

    fn minutes(&self, i: usize, weighing: Weighing, durations: &Durations) -> u64 {
        match weighing {
            Weighing::Shape => DEFAULT_ESTIMATE_MINUTES,
            Weighing::Known => ((self.secs[i] / 60.0).round() as u64).max(1),
            Weighing::Learned => durations
                .learned_minutes(&self.issues[i].repo)
                .unwrap_or(DEFAULT_ESTIMATE_MINUTES),
        }
    }

    /// Works through the graph as the bot would, forecasting at each checkpoint.
    fn run(&self, weighing: Weighing) -> Run {
        let mut durations = Durations::default();
        let mut graph = DependencyGraph::new();
        for i in 0..self.secs.len() {
            let mut node = IssueNode::new(self.issues[i].clone(), IssueStatus::Open).managed();
            node.weight = self.minutes(i, weighing, &durations);
            graph.upsert(node);
        }
        for (i, deps) in self.deps.iter().enumerate() {
            for &d in deps {
                graph
                    .add_dependency(&self.issues[i], &self.issues[d])
                    .expect("a random graph has no cycle");
            }
        }
        let scheduler = Scheduler::new(self.agents);
        let index = |issue: &IssueRef| issue.number as usize - 1;
        let mut applied: Vec<Option<u64>> = vec![None; REPO_FACTORS.len()];
        let mut ends: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
        let mut running: Vec<(IssueRef, i64)> = Vec::new();
        let mut launches: VecDeque<i64> = VecDeque::new();
        let mut forecasts = Vec::new();
        let mut done = 0;
        let mut now: i64 = 0;
        loop {
            while forecasts.len() < CHECKPOINTS.len()
                && done as f64 >= CHECKPOINTS[forecasts.len()] * self.secs.len() as f64
            {
                let start = Start {
                    running: running.clone(),
                    launches_from: now,
                    launches_per_minute: CODEGEN_LAUNCHES_PER_MINUTE,
                    now,
                };
                let predicted = forecast::forecast(&graph, &scheduler, &start).finish;
                forecasts.push((
                    now as f64 / 1000.0,
                    predicted.unwrap_or(now) as f64 / 1000.0,
                ));
            }
            let busy: Vec<IssueRef> = running.iter().map(|(i, _)| i.clone()).collect();
            for pick in scheduler.decide(&graph, &busy) {
                // Codegen's limit on run creations, as the forecast assumes it.
                let mut at = now;
                if launches.len() >= CODEGEN_LAUNCHES_PER_MINUTE {
                    at = at.max(launches[launches.len() - CODEGEN_LAUNCHES_PER_MINUTE] + 60_000);
                }
                launches.push_back(at);
                if launches.len() > CODEGEN_LAUNCHES_PER_MINUTE {
                    launches.pop_front();
                }
                let i = index(&pick.issue);
                graph.set_started(&pick.issue, true);
                ends.push(Reverse((at + (self.secs[i] * 1000.0) as i64, i)));
                running.push((pick.issue, at));
            }
            let Some(Reverse((end, i))) = ends.pop() else {
                break;
            };
            now = now.max(end);
            running.retain(|(issue, _)| issue != &self.issues[i]);
            graph.set_state(&self.issues[i], IssueStatus::ClosedCompleted);
            done += 1;
            let repo = &self.issues[i].repo;
            durations.record(repo, [], self.secs[i] as u64);
            let r = i % REPO_FACTORS.len();
            let learned = durations.learned_minutes(repo);
            if weighing == Weighing::Learned && moved_enough(applied[r], learned) {
                applied[r] = learned;
                for j in (r..self.secs.len()).step_by(REPO_FACTORS.len()) {
                    if let Some(node) = graph.get(&self.issues[j])
                        && node.state == IssueStatus::Open
                    {
                        let mut node = node.clone();
                        node.weight = learned.unwrap_or(DEFAULT_ESTIMATE_MINUTES);
                        graph.upsert(node);
                    }
                }
            }
        }
        Run {
            makespan: now as f64 / 1000.0,
            forecasts,
        }
    }
}

/// The report for a terminal.
pub fn accuracy_text(report: &AccuracyReport) -> String {
    let mut out = format!(
        "Forecast accuracy over {} random graphs of {} tasks, {} agents, {} repositories \
         (means 15 min, 30 min, 1 h, 2 h):\n",
        report.graphs,
        report.tasks,
        report.agents,
        REPO_FACTORS.len()
    );
    let rows = report
        .median_error
        .iter()
        .zip(&report.median_error_minutes)
        .zip(&report.median_bias_minutes);
    for (((point, share), (_, minutes)), (_, bias)) in rows {
        out.push_str(&format!(
            "  forecast after {:>2.0} % of the tasks: median error {:.1} % of the remaining time \
             ({minutes:.0} min; median predicted - real {bias:+.0} min)\n",
            point * 100.0,
            share * 100.0,
        ));
    }
    out.push_str(&format!(
        "Makespan / lower bound (median): shape only {:.3}x, learned durations {:.3}x, known durations {:.3}x\n",
        report.ratio_shape, report.ratio_learned, report.ratio_known
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learned_durations_schedule_no_worse_than_the_shape_and_the_forecast_closes_in() {
        let report = forecast_accuracy(120, 6, 6, 1);
        assert_eq!(report.median_error.len(), 3);
        assert!(report.ratio_known >= 1.0 && report.ratio_learned >= 1.0);
        assert!(
            report.ratio_learned <= report.ratio_shape + 1e-9,
            "{report:?}"
        );
        // Halfway through, the forecast knows every repository's figure.
        assert!(report.median_error[2].1 < 0.25, "{report:?}");
    }

    #[test]
    fn the_lower_bound_is_the_longest_chain_or_the_work_spread() {
        let work = Work {
            agents: 2,
            issues: (1..=3)
                .map(|n| IssueRef::new("a/b".parse().unwrap(), n))
                .collect(),
            secs: vec![100.0, 50.0, 10.0],
            deps: vec![vec![], vec![0], vec![]],
        };
        assert_eq!(work.lower_bound(), 150.0);
        let spread = Work { agents: 1, ..work };
        assert_eq!(spread.lower_bound(), 160.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
