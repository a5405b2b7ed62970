//! `simulate`: the real dependency graph and scheduler on a virtual clock with fake agents,
//! so that scheduling can be measured without any network. A task takes its duration from
//! the moment the scheduler launches it; the run ends when every task is done.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::domain::{IssueRef, IssueStatus, RepoName};
use crate::engine::{DependencyGraph, IssueNode, Pick, Scheduler};

/// A graph to simulate: how many agents work at once, and the tasks.
#[derive(Debug, Clone, Serialize)]
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
    /// Its name; the file may give a number (`"id": 12`), as issue numbers are.
    #[serde(deserialize_with = "task_id")]
    pub id: String,
    /// Seconds its agent runs.
    pub duration_secs: f64,
    /// Ids of the tasks it depends on (names or numbers).
    #[serde(default, deserialize_with = "task_ids")]
    pub deps: Vec<String>,
}

/// `simulate --graph FILE` as written: `agents` may be left out, since the command line or
/// the configuration gives it too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphFile {
    agents: Option<usize>,
    tasks: Vec<SimTask>,
}

impl SimGraph {
    /// Reads a graph file; `default_agents` applies when the file names no pool size.
    pub fn from_json(json: &str, default_agents: usize) -> Result<Self, serde_json::Error> {
        let file: GraphFile = serde_json::from_str(json)?;
        Ok(Self {
            agents: file.agents.unwrap_or(default_agents),
            tasks: file.tasks,
        })
    }
}

/// A task id written as text or as a whole number.
struct TaskId(String);

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TaskId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a task id: a string or a whole number")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<TaskId, E> {
                Ok(TaskId(text.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<TaskId, E> {
                Ok(TaskId(number.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<TaskId, E> {
                Ok(TaskId(number.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn task_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    TaskId::deserialize(deserializer).map(|id| id.0)
}

fn task_ids<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let ids = Vec::<TaskId>::deserialize(deserializer)?;
    Ok(ids.into_iter().map(|id| id.0).collect())
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
    simulate_observed(graph, options, &mut |_, _| {})
}

/// As [`simulate_with`], telling `progress` how many tasks of how many are done each
/// time some finish (a large graph takes minutes; the command shows it on a terminal).
pub fn simulate_observed(
    graph: &SimGraph,
    options: SimOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SimReport, SimError> {
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
    let mut finished = 0;
    loop {
        let may_launch = dispatch == Dispatch::ReadyQueue || running.is_empty();
        let decisions = if may_launch {
            scheduler.decide(&engine, &running)
        } else {
            Vec::new()
        };
        for Pick { issue, .. } in decisions {
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
            finished += 1;
        }
        progress(finished, graph.tasks.len());
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
    // The tasks in layer order, and where each layer starts in it: the tasks of the layers
    // before a task's are a prefix, in the order the draws below index (a copy of them per
    // task made large graphs quadratic).
    let by_layer_order: Vec<usize> = by_layer.values().flatten().copied().collect();
    let mut layer_start: BTreeMap<usize, usize> = BTreeMap::new();
    let mut seen = 0;
    for (layer, ids) in &by_layer {
        layer_start.insert(*layer, seen);
        seen += ids.len();
    }
    let mut simulated = Vec::with_capacity(tasks);
    for (index, &layer) in layer_of.iter().enumerate() {
        let earlier = &by_layer_order[..layer_start[&layer]];
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
    /// The report for a terminal, durations as `16h 6m` (the JSON keeps seconds).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "makespan:     {}", human_duration(self.makespan_secs));
        let _ = writeln!(
            out,
            "lower bound:  {} (max of critical path and work / agents)",
            human_duration(self.lower_bound_secs)
        );
        let _ = writeln!(out, "ratio:        {:.4}", self.ratio);
        let _ = writeln!(out, "utilisation:  {:.1} %", self.utilisation * 100.0);
        let _ = writeln!(out, "launch order:");
        for (n, launch) in self.launches.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {:>4}. {:<12} {:>8} -> {:>8}",
                n + 1,
                launch.id,
                human_duration(launch.start_secs),
                human_duration(launch.end_secs)
            );
        }
        out
    }
}

/// A duration as people say it, to the two largest units: `45s`, `20m 30s`, `16h 6m`,
/// `2d 3h`; under ten seconds with a tenth (`2.5s`). Whole units that are zero are left
/// out (`2h`, not `2h 0m`).
pub fn human_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return format!("{secs}s");
    }
    if secs < 10.0 {
        let tenths = (secs * 10.0).round() / 10.0;
        return if tenths.fract() == 0.0 {
            format!("{tenths:.0}s")
        } else {
            format!("{tenths:.1}s")
        };
    }
    let total = secs.round() as u64;
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let Some(first) = units.iter().position(|(size, _)| total >= *size) else {
        return "0s".to_owned();
    };
    let (big, big_name) = units[first];
    let mut text = format!("{}{big_name}", total / big);
    if let Some(&(small, small_name)) = units.get(first + 1) {
        let rest = total % big / small;
        if rest > 0 {
            let _ = write!(text, " {rest}{small_name}");
        }
    }
    text
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
    fn durations_read_as_people_say_them() {
        let cases = [
            (0.0, "0s"),
            (2.5, "2.5s"),
            (9.96, "10s"),
            (45.0, "45s"),
            (60.0, "1m"),
            (1230.0, "20m 30s"),
            (7200.0, "2h"),
            (57_960.4, "16h 6m"),
            (58_007.7, "16h 6m"),
            (183_600.0, "2d 3h"),
        ];
        for (secs, text) in cases {
            assert_eq!(human_duration(secs), text, "{secs}");
        }
    }

    #[test]
    fn a_graph_file_may_leave_out_the_agents_and_number_its_tasks() {
        let json = r#"{"tasks": [{"id": 12, "duration_secs": 60}, {"id": "b", "duration_secs": 5, "deps": [12]}]}"#;
        let graph = SimGraph::from_json(json, 3).unwrap();
        assert_eq!(graph.agents, 3);
        assert_eq!(graph.tasks[0].id, "12");
        assert_eq!(graph.tasks[1].deps, ["12"]);
        let report = simulate(&graph).unwrap();
        assert_eq!(report.makespan_secs, 65.0);

        let named = SimGraph::from_json(r#"{"agents": 1, "tasks": []}"#, 3).unwrap();
        assert_eq!(named.agents, 1);
        let fraction = SimGraph::from_json(r#"{"tasks": [{"id": 1.5, "duration_secs": 1}]}"#, 3);
        let err = fraction.unwrap_err().to_string();
        assert!(err.contains("a string or a whole number"), "{err}");
    }

    #[test]
    fn progress_counts_every_task_once_to_the_total() {
        let graph = random_graph(50, 3, 4);
        let mut seen = Vec::new();
        simulate_observed(&graph, SimOptions::default(), &mut |done, total| {
            seen.push((done, total));
        })
        .unwrap();
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
        assert_eq!(seen.last(), Some(&(50, 50)));
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
