//! The graphs `simulate` runs, as a file gives them: tasks, their dependencies and the
//! tasks they discover while they run; checked and flattened into the tasks the world
//! runs, with their critical path (half of the lower bound).

use std::collections::{BTreeSet, HashMap};

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
    /// The tasks its run discovers (new issues it turns up while it works).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovers: Vec<SimDiscovery>,
}

/// A task that appears while another one runs: `{"at": 0.5, "id": "9", "duration_secs":
/// 1200, "deps": ["4"]}` in the discoverer's `discovers`. It is not an issue until then.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "DiscoveryFile")]
pub struct SimDiscovery {
    /// How far into its discoverer's run it appears: a fraction of the run's duration,
    /// from 0 (at the launch) to 1 (as the run ends).
    pub at: f64,
    /// The task that appears (which may discover others in its turn).
    #[serde(flatten)]
    pub task: SimTask,
}

/// A discovery as written: `at` beside the task's own fields, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoveryFile {
    at: f64,
    #[serde(deserialize_with = "task_id")]
    id: String,
    duration_secs: f64,
    #[serde(default, deserialize_with = "task_ids")]
    deps: Vec<String>,
    #[serde(default)]
    discovers: Vec<SimDiscovery>,
}

impl From<DiscoveryFile> for SimDiscovery {
    fn from(file: DiscoveryFile) -> Self {
        Self {
            at: file.at,
            task: SimTask {
                id: file.id,
                duration_secs: file.duration_secs,
                deps: file.deps,
                discovers: file.discovers,
            },
        }
    }
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

/// A task as the simulation runs it. The file's tasks come first, in its order (issues
/// `1..=n` from the start); the discovered ones follow, each after its discoverer's
/// (depth first), and get their issue numbers as they appear.
#[derive(Debug, Clone)]
pub(super) struct Task {
    /// The task's id in the graph.
    pub name: String,
    /// How long its agent runs, in seconds as given (the report's sums use these).
    pub duration_secs: f64,
    /// How long its agent runs, in milliseconds (the virtual clock's unit).
    pub duration_ms: u64,
    /// The tasks it depends on, by index.
    pub deps: Vec<usize>,
    /// Who discovers it and when; none for the file's own tasks.
    pub found: Option<Found>,
    /// The tasks it discovers, by index, in the order they appear.
    pub discovers: Vec<usize>,
}

/// How a discovered task appears.
#[derive(Debug, Clone, Copy)]
pub(super) struct Found {
    /// The discoverer, by index.
    pub by: usize,
    /// How far into the discoverer's run, in milliseconds.
    pub after_ms: u64,
}

/// The tasks of `graph`, checked: durations are numbers, `at` fractions, ids unique across
/// the discovered tasks too, dependencies name tasks, form no cycle, and name only tasks
/// that exist before the dependent appears (an issue can only refer to issues there are).
pub(super) fn tasks_of(graph: &SimGraph, repo: &RepoName) -> Result<Vec<Task>, SimError> {
    // Every task with who discovers it and at what fraction.
    let mut listed: Vec<(&SimTask, Option<(usize, f64)>)> =
        graph.tasks.iter().map(|task| (task, None)).collect();
    for index in 0..graph.tasks.len() {
        list_discoveries(&graph.tasks[index], index, &mut listed);
    }
    let mut indices: HashMap<&str, usize> = HashMap::new();
    for (index, (task, found)) in listed.iter().enumerate() {
        if !(task.duration_secs >= 0.0 && task.duration_secs.is_finite()) {
            return Err(SimError::BadDuration(task.id.clone()));
        }
        if let Some((_, at)) = found
            && !(0.0..=1.0).contains(at)
        {
            return Err(SimError::BadDiscoveryTime {
                task: task.id.clone(),
                at: *at,
            });
        }
        if indices.insert(&task.id, index).is_some() {
            return Err(SimError::DuplicateTask(task.id.clone()));
        }
    }
    let mut tasks = Vec::with_capacity(listed.len());
    for (task, _) in &listed {
        let deps = task
            .deps
            .iter()
            .map(|dep| {
                indices
                    .get(dep.as_str())
                    .copied()
                    .ok_or_else(|| SimError::UnknownDependency {
                        task: task.id.clone(),
                        missing: dep.clone(),
                    })
            })
            .collect::<Result<Vec<usize>, SimError>>()?;
        tasks.push(Task {
            name: task.id.clone(),
            duration_secs: task.duration_secs,
            duration_ms: (task.duration_secs * 1000.0).round() as u64,
            deps,
            found: None,
            discovers: Vec::new(),
        });
    }
    for (index, (_, found)) in listed.iter().enumerate() {
        if let Some((by, at)) = *found {
            let after_ms = (at * tasks[by].duration_ms as f64).round() as u64;
            tasks[index].found = Some(Found { by, after_ms });
            tasks[by].discovers.push(index);
        }
    }
    // A run meets its discoveries in the order of `at`; equal ones in the file's order
    // (the sort is stable).
    for index in 0..tasks.len() {
        let mut discovers = std::mem::take(&mut tasks[index].discovers);
        discovers.sort_by_key(|&found| tasks[found].found.map_or(0, |f| f.after_ms));
        tasks[index].discovers = discovers;
    }
    refuse_cycles(&tasks, repo)?;
    super::order::refuse_deps_not_yet_there(&tasks)?;
    Ok(tasks)
}

/// Appends the tasks `task` (at `index` in `listed`) discovers, each followed by its own.
fn list_discoveries<'a>(
    task: &'a SimTask,
    index: usize,
    listed: &mut Vec<(&'a SimTask, Option<(usize, f64)>)>,
) {
    for discovery in &task.discovers {
        let found = listed.len();
        listed.push((&discovery.task, Some((index, discovery.at))));
        list_discoveries(&discovery.task, found, listed);
    }
}

/// The engine would hold an issue whose dependency closes a cycle; a graph file with one
/// is refused up front instead, with the cycle's path (through discovered tasks too).
fn refuse_cycles(tasks: &[Task], repo: &RepoName) -> Result<(), SimError> {
    let issue = |index: usize| IssueRef::new(repo.clone(), index as u64 + 1);
    let mut check = DependencyGraph::new();
    for index in 0..tasks.len() {
        check.upsert(IssueNode::new(issue(index), IssueStatus::Open).managed());
    }
    for (index, task) in tasks.iter().enumerate() {
        let blockers: BTreeSet<IssueRef> = task.deps.iter().map(|&dep| issue(dep)).collect();
        check
            .set_dependencies(&issue(index), &blockers)
            .map_err(|cycle| {
                let path: Vec<&str> = cycle
                    .path
                    .iter()
                    .map(|i| tasks[i.number as usize - 1].name.as_str())
                    .collect();
                SimError::Cycle(path.join(" -> "))
            })?;
    }
    Ok(())
}

/// The longest chain of durations through the dependencies, where a discovered task
/// starts no earlier than it appears: its discoverer's earliest start plus `at` of its run.
/// Tasks must be checked ([`tasks_of`]): dependencies and discoveries form no cycle.
pub(super) fn critical_path_secs(tasks: &[Task]) -> f64 {
    // Kahn's order over "must start first" (dependencies and discoverers), not recursion:
    // a long chain in a file must not run out of stack.
    let mut waiting: Vec<usize> = tasks
        .iter()
        .map(|task| task.deps.len() + usize::from(task.found.is_some()))
        .collect();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (index, task) in tasks.iter().enumerate() {
        for &dep in &task.deps {
            after[dep].push(index);
        }
        if let Some(found) = task.found {
            after[found.by].push(index);
        }
    }
    let mut ready: Vec<usize> = (0..tasks.len()).filter(|&i| waiting[i] == 0).collect();
    let mut start = vec![0.0f64; tasks.len()];
    let mut finish = vec![0.0f64; tasks.len()];
    while let Some(index) = ready.pop() {
        let task = &tasks[index];
        let mut earliest = task.deps.iter().map(|&dep| finish[dep]).fold(0.0, f64::max);
        if let Some(found) = task.found {
            earliest = earliest.max(start[found.by] + found.after_ms as f64 / 1000.0);
        }
        start[index] = earliest;
        finish[index] = earliest + task.duration_secs;
        for &next in &after[index] {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(next);
            }
        }
    }
    finish.into_iter().fold(0.0, f64::max)
}
