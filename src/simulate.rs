//! `simulate`: the real dependency graph and scheduler on a virtual clock with fake agents,
//! so that scheduling can be measured without any network. A task takes its duration from
//! the moment the scheduler launches it; the run ends when every task is done.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::domain::{IssueRef, IssueStatus, RepoName};
use crate::engine::{Decision, DependencyGraph, IssueNode, Scheduler};

/// A graph to simulate, as `simulate --graph FILE` reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimGraph {
    /// Agents working at once.
    pub agents: usize,
    /// The tasks.
    pub tasks: Vec<SimTask>,
}

/// One task (an issue) with how long its agent takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimTask {
    /// Its name.
    pub id: String,
    /// Seconds its agent runs.
    pub duration_secs: f64,
    /// Ids of the tasks it depends on.
    #[serde(default)]
    pub deps: Vec<String>,
}

/// What a simulation measured.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// When the last task finished.
    pub makespan_secs: f64,
    /// `max(critical path, total work / agents)`: no schedule can be faster.
    pub lower_bound_secs: f64,
    /// `makespan / lower bound`.
    pub ratio: f64,
    /// Busy agent time over available agent time.
    pub utilisation: f64,
    /// Every launch in order.
    pub launches: Vec<SimLaunch>,
}

/// One task's run.
#[derive(Debug, Clone, Serialize)]
pub struct SimLaunch {
    /// The task.
    pub id: String,
    /// When it started.
    pub start_secs: f64,
    /// When it ended.
    pub end_secs: f64,
}

/// A graph that cannot be simulated.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Two tasks share an id.
    #[error("task `{0}` appears twice")]
    DuplicateTask(String),
    /// A dependency names no task.
    #[error("task `{task}` depends on `{missing}`, which is not a task")]
    UnknownDependency {
        /// The task.
        task: String,
        /// The missing id.
        missing: String,
    },
    /// The dependencies form a cycle.
    #[error("the dependencies form a cycle: {0}")]
    Cycle(String),
    /// A duration that is negative or not a number.
    #[error("task `{0}` has a duration that is not a non-negative number")]
    BadDuration(String),
    /// No agent to run anything.
    #[error("agents must be at least 1")]
    NoAgents,
}

/// How launches are dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dispatch {
    /// The orchestrator's way: a freed agent takes the best ready issue at once.
    #[default]
    ReadyQueue,
    /// The Python tool's way, for comparison: launch a batch of ready issues, wait until
    /// all of them are done, then launch the next batch.
    Waves,
}

/// How a simulation is run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimOptions {
    /// How launches are dispatched.
    pub dispatch: Dispatch,
    /// Whether the scheduler is told each task's duration as its estimate (weight); without,
    /// it knows only the shape of the graph, as for issues without an estimate.
    pub estimates: bool,
}

/// Runs the scheduler on `graph` with its fake agents, dispatching from a ready queue,
/// with the tasks' durations unknown to the scheduler.
pub fn simulate(graph: &SimGraph) -> Result<SimReport, SimError> {
    simulate_with(graph, SimOptions::default())
}

/// Runs the scheduler on `graph` as `options` say.
pub fn simulate_with(graph: &SimGraph, options: SimOptions) -> Result<SimReport, SimError> {
    let SimOptions {
        dispatch,
        estimates,
    } = options;
    if graph.agents == 0 {
        return Err(SimError::NoAgents);
    }
    let repo: RepoName = "simulation/tasks".parse().expect("a valid repository name");
    let mut refs: HashMap<&str, IssueRef> = HashMap::new();
    let mut names: HashMap<IssueRef, &str> = HashMap::new();
    let mut durations: HashMap<IssueRef, u64> = HashMap::new();
    for (index, task) in graph.tasks.iter().enumerate() {
        if !(task.duration_secs >= 0.0 && task.duration_secs.is_finite()) {
            return Err(SimError::BadDuration(task.id.clone()));
        }
        let issue = IssueRef::new(repo.clone(), index as u64 + 1);
        if refs.insert(&task.id, issue.clone()).is_some() {
            return Err(SimError::DuplicateTask(task.id.clone()));
        }
        names.insert(issue.clone(), &task.id);
        durations.insert(issue, (task.duration_secs * 1000.0).round() as u64);
    }
    let mut engine = DependencyGraph::new();
    for issue in refs.values() {
        let mut node = IssueNode::new(issue.clone(), IssueStatus::Open).managed();
        if estimates {
            node.weight = durations[issue].max(1);
        }
        engine.upsert(node);
    }
    for task in &graph.tasks {
        let issue = &refs[task.id.as_str()];
        let mut blockers = std::collections::BTreeSet::new();
        for dep in &task.deps {
            let blocker = refs
                .get(dep.as_str())
                .ok_or_else(|| SimError::UnknownDependency {
                    task: task.id.clone(),
                    missing: dep.clone(),
                })?;
            blockers.insert(blocker.clone());
        }
        engine.set_dependencies(issue, &blockers).map_err(|cycle| {
            let path: Vec<&str> = cycle.path.iter().map(|i| names[i]).collect();
            SimError::Cycle(path.join(" -> "))
        })?;
    }

    let scheduler = Scheduler::new(graph.agents);
    let mut now = 0u64;
    let mut running: Vec<IssueRef> = Vec::new();
    let mut finishing: BinaryHeap<Reverse<(u64, IssueRef)>> = BinaryHeap::new();
    let mut launches = Vec::with_capacity(graph.tasks.len());
    loop {
        let may_launch = dispatch == Dispatch::ReadyQueue || running.is_empty();
        let decisions = if may_launch {
            scheduler.decide(&engine, &running)
        } else {
            Vec::new()
        };
        for Decision::Launch { issue, .. } in decisions {
            engine.set_started(&issue, true);
            let end = now + durations[&issue];
            launches.push(SimLaunch {
                id: names[&issue].to_owned(),
                start_secs: now as f64 / 1000.0,
                end_secs: end as f64 / 1000.0,
            });
            finishing.push(Reverse((end, issue.clone())));
            running.push(issue);
        }
        let Some(Reverse((end, _))) = finishing.peek().cloned() else {
            break;
        };
        now = end;
        // Everything that ends at this instant frees its agent before the next decision.
        while finishing.peek().is_some_and(|Reverse((at, _))| *at == now) {
            let Reverse((_, done)) = finishing.pop().expect("peeked");
            engine.set_state(&done, IssueStatus::ClosedCompleted);
            running.retain(|issue| *issue != done);
        }
    }

    let makespan = now as f64 / 1000.0;
    let total_work: f64 = graph.tasks.iter().map(|t| t.duration_secs).sum();
    let lower_bound = critical_path_secs(graph).max(total_work / graph.agents as f64);
    let ratio = if lower_bound > 0.0 {
        makespan / lower_bound
    } else {
        1.0
    };
    let utilisation = if makespan > 0.0 {
        total_work / (graph.agents as f64 * makespan)
    } else {
        1.0
    };
    Ok(SimReport {
        makespan_secs: makespan,
        lower_bound_secs: lower_bound,
        ratio,
        utilisation,
        launches,
    })
}

/// The longest chain of durations through the dependencies.
fn critical_path_secs(graph: &SimGraph) -> f64 {
    let by_id: HashMap<&str, &SimTask> = graph.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut finish: HashMap<&str, f64> = HashMap::new();
    fn finish_of<'a>(
        id: &'a str,
        by_id: &HashMap<&'a str, &'a SimTask>,
        finish: &mut HashMap<&'a str, f64>,
    ) -> f64 {
        if let Some(done) = finish.get(id) {
            return *done;
        }
        let task = by_id[id];
        let start = task
            .deps
            .iter()
            .map(|dep| finish_of(dep, by_id, finish))
            .fold(0.0, f64::max);
        let done = start + task.duration_secs;
        finish.insert(id, done);
        done
    }
    graph
        .tasks
        .iter()
        .map(|task| finish_of(&task.id, &by_id, &mut finish))
        .fold(0.0, f64::max)
}

/// A layered random graph of `tasks` tasks: each task depends on up to three tasks of
/// earlier layers; durations are lognormal around 30 minutes. The same seed gives the same
/// graph.
pub fn random_graph(tasks: usize, seed: u64, agents: usize) -> SimGraph {
    let mut rng = fastrand::Rng::with_seed(seed);
    let layers = ((tasks as f64).sqrt().round() as usize).max(1);
    let mut layer_of = Vec::with_capacity(tasks);
    let mut by_layer: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for index in 0..tasks {
        let layer = if index < layers {
            index
        } else {
            rng.usize(0..layers)
        };
        layer_of.push(layer);
        by_layer.entry(layer).or_default().push(index);
    }
    let mut simulated = Vec::with_capacity(tasks);
    for (index, &layer) in layer_of.iter().enumerate() {
        let earlier: Vec<usize> = by_layer
            .range(..layer)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        let mut deps = Vec::new();
        if !earlier.is_empty() {
            for _ in 0..rng.usize(1..=3) {
                let dep = format!("t{}", earlier[rng.usize(0..earlier.len())]);
                if !deps.contains(&dep) {
                    deps.push(dep);
                }
            }
        }
        // Lognormal: exp(mu + sigma * N(0, 1)), N from Box–Muller.
        let normal =
            (-2.0 * (1.0 - rng.f64()).ln()).sqrt() * (2.0 * std::f64::consts::PI * rng.f64()).cos();
        let duration = (1800f64.ln() + 0.8 * normal).exp();
        simulated.push(SimTask {
            id: format!("t{index}"),
            duration_secs: (duration * 10.0).round() / 10.0,
            deps,
        });
    }
    SimGraph {
        agents,
        tasks: simulated,
    }
}

impl SimReport {
    /// The report for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "makespan:     {:.1} s", self.makespan_secs);
        let _ = writeln!(
            out,
            "lower bound:  {:.1} s (max of critical path and work / agents)",
            self.lower_bound_secs
        );
        let _ = writeln!(out, "ratio:        {:.4}", self.ratio);
        let _ = writeln!(out, "utilisation:  {:.1} %", self.utilisation * 100.0);
        let _ = writeln!(out, "launch order:");
        for (n, launch) in self.launches.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {:>4}. {:<12} {:>10.1} s -> {:>10.1} s",
                n + 1,
                launch.id,
                launch.start_secs,
                launch.end_secs
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, secs: f64, deps: &[&str]) -> SimTask {
        SimTask {
            id: id.into(),
            duration_secs: secs,
            deps: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn a_chain_beside_a_short_task_on_two_agents() {
        // a(10) -> b(20), c(5): a and c start at once, b when a ends: 30 s, the bound.
        let graph = SimGraph {
            agents: 2,
            tasks: vec![
                task("a", 10.0, &[]),
                task("b", 20.0, &["a"]),
                task("c", 5.0, &[]),
            ],
        };
        let report = simulate(&graph).unwrap();
        assert_eq!(report.makespan_secs, 30.0);
        assert_eq!(report.lower_bound_secs, 30.0);
        assert_eq!(report.ratio, 1.0);
        let order: Vec<_> = report
            .launches
            .iter()
            .map(|l| (l.id.as_str(), l.start_secs))
            .collect();
        assert_eq!(order, [("a", 0.0), ("c", 0.0), ("b", 10.0)]);
    }

    #[test]
    fn the_longest_chain_goes_first_on_one_agent() {
        // One agent: x (nothing behind it) is older, but a has a chain behind it.
        let graph = SimGraph {
            agents: 1,
            tasks: vec![
                task("x", 5.0, &[]),
                task("a", 5.0, &[]),
                task("b", 5.0, &["a"]),
            ],
        };
        let report = simulate(&graph).unwrap();
        let order: Vec<_> = report.launches.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(order, ["a", "x", "b"]);
        assert_eq!(report.makespan_secs, 15.0);
        assert_eq!(report.utilisation, 1.0);
    }

    /// Two agents; p (1 s) and q (100 s) are ready at once, r (10 s) waits for p.
    fn short_beside_long() -> SimGraph {
        SimGraph {
            agents: 2,
            tasks: vec![
                task("p", 1.0, &[]),
                task("q", 100.0, &[]),
                task("r", 10.0, &["p"]),
            ],
        }
    }

    #[test]
    fn no_waves_a_freed_agent_starts_the_next_ready_task_at_once() {
        // Two agents: p(1) and q(100) start; r (after p) starts at 1, not when q ends.
        let graph = short_beside_long();
        let report = simulate(&graph).unwrap();
        let r = report.launches.iter().find(|l| l.id == "r").unwrap();
        assert_eq!(r.start_secs, 1.0);
        assert_eq!(report.makespan_secs, 100.0);
    }

    #[test]
    fn waves_wait_for_the_slowest_run_of_each_batch() {
        // With waves, r waits for q (100 s) before it starts.
        let graph = short_beside_long();
        let options = SimOptions {
            dispatch: Dispatch::Waves,
            estimates: false,
        };
        let report = simulate_with(&graph, options).unwrap();
        let r = report.launches.iter().find(|l| l.id == "r").unwrap();
        assert_eq!(r.start_secs, 100.0);
        assert_eq!(report.makespan_secs, 110.0);
    }

    #[test]
    fn bad_graphs_are_refused_with_the_reason() {
        let unknown = SimGraph {
            agents: 1,
            tasks: vec![task("a", 1.0, &["zz"])],
        };
        assert!(simulate(&unknown).unwrap_err().to_string().contains("`zz`"));
        let cycle = SimGraph {
            agents: 1,
            tasks: vec![task("a", 1.0, &["b"]), task("b", 1.0, &["a"])],
        };
        assert!(simulate(&cycle).unwrap_err().to_string().contains("cycle"));
        let twice = SimGraph {
            agents: 1,
            tasks: vec![task("a", 1.0, &[]), task("a", 1.0, &[])],
        };
        assert!(matches!(simulate(&twice), Err(SimError::DuplicateTask(_))));
    }

    #[test]
    fn random_graphs_are_reproducible_and_acyclic() {
        let one = random_graph(200, 7, 10);
        let two = random_graph(200, 7, 10);
        assert_eq!(
            serde_json::to_string(&one).unwrap(),
            serde_json::to_string(&two).unwrap()
        );
        let report = simulate(&one).unwrap();
        assert_eq!(report.launches.len(), 200);
        assert!(report.ratio >= 1.0);
    }
}
