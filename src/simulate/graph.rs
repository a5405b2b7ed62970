//! The graphs `simulate` runs: read from a file or drawn at random, checked, and their
//! critical path (half of the lower bound).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::SimError;
use crate::domain::{IssueRef, IssueStatus, RepoName};
use crate::engine::{DependencyGraph, IssueNode};

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

/// A task as the simulation runs it: issue `index + 1` of the simulated repository.
#[derive(Debug, Clone)]
pub(super) struct Task {
    /// The task's id in the graph.
    pub name: String,
    /// How long its agent runs, in milliseconds.
    pub duration_ms: u64,
    /// The issue numbers it depends on.
    pub deps: Vec<u64>,
}

/// The tasks of `graph` as issues `1..=n` of `repo`, checked: durations are numbers,
/// ids unique, dependencies name tasks and form no cycle.
pub(super) fn tasks_of(graph: &SimGraph, repo: &RepoName) -> Result<Vec<Task>, SimError> {
    let mut numbers: HashMap<&str, u64> = HashMap::new();
    for (index, task) in graph.tasks.iter().enumerate() {
        if !(task.duration_secs >= 0.0 && task.duration_secs.is_finite()) {
            return Err(SimError::BadDuration(task.id.clone()));
        }
        if numbers.insert(&task.id, index as u64 + 1).is_some() {
            return Err(SimError::DuplicateTask(task.id.clone()));
        }
    }
    let mut tasks = Vec::with_capacity(graph.tasks.len());
    for task in &graph.tasks {
        let deps = task
            .deps
            .iter()
            .map(|dep| {
                numbers
                    .get(dep.as_str())
                    .copied()
                    .ok_or_else(|| SimError::UnknownDependency {
                        task: task.id.clone(),
                        missing: dep.clone(),
                    })
            })
            .collect::<Result<Vec<u64>, SimError>>()?;
        tasks.push(Task {
            name: task.id.clone(),
            duration_ms: (task.duration_secs * 1000.0).round() as u64,
            deps,
        });
    }
    // The engine would hold an issue whose dependency closes a cycle; a graph file with
    // one is refused up front instead, with the cycle's path.
    let issue = |n: u64| IssueRef::new(repo.clone(), n);
    let mut check = DependencyGraph::new();
    for n in 1..=tasks.len() as u64 {
        check.upsert(IssueNode::new(issue(n), IssueStatus::Open).managed());
    }
    for (index, task) in tasks.iter().enumerate() {
        let blockers: BTreeSet<IssueRef> = task.deps.iter().map(|&n| issue(n)).collect();
        check
            .set_dependencies(&issue(index as u64 + 1), &blockers)
            .map_err(|cycle| {
                let path: Vec<&str> = cycle
                    .path
                    .iter()
                    .map(|i| tasks[i.number as usize - 1].name.as_str())
                    .collect();
                SimError::Cycle(path.join(" -> "))
            })?;
    }
    Ok(tasks)
}

/// The longest chain of durations through the dependencies.
pub(super) fn critical_path_secs(graph: &SimGraph) -> f64 {
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
