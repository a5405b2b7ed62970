//! `simulate`: the bot's own engine (the same [`Engine::handle`] that `serve` runs) on a
//! virtual clock with fake effects, so that scheduling can be measured, and failures and
//! retries tried, without any network. A writer labels every task's issue; a run takes its
//! task's duration from the moment the engine launches it, and fails with the chosen
//! probability; the engine's own `codegen.retry_failed_runs` decides the retries. A run
//! may discover tasks on its way (work that grows while it runs): each becomes a new
//! issue, labelled by the writer, when the run reaches it. The simulation ends when no
//! run is left; the report says when that was against the lower bound of the final
//! graph, and what the bot decided on the way.
//!
//! [`Engine::handle`]: crate::engine::machine::Engine::handle

mod accuracy;
mod graph;
mod order;
mod random;
mod report;
mod world;

pub use accuracy::{AccuracyReport, accuracy_text, forecast_accuracy};
pub use graph::{SimDiscovery, SimGraph, SimTask};
pub use random::{random_graph, random_graph_discovering};
pub use report::{SimFound, SimLaunch, SimReport, human_duration};

use crate::domain::RepoName;

/// A graph that cannot be simulated, or a simulation that cannot end.
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
    /// A task depends on a discovered task that may not exist yet when it appears.
    #[error(
        "task `{task}` depends on `{dependency}`, which may not be discovered yet when \
         `{task}` appears (a task may depend on the file's tasks, and a discovered task \
         also on tasks that are always discovered before it)"
    )]
    NotThereYet {
        /// The dependent task.
        task: String,
        /// The discovered task it depends on.
        dependency: String,
    },
    /// A discovery's `at` outside 0..=1.
    #[error(
        "task `{task}` is discovered at {at} of its discoverer's run; `at` must be a \
         fraction of the run from 0 to 1"
    )]
    BadDiscoveryTime {
        /// The discovered task.
        task: String,
        /// The `at` given.
        at: f64,
    },
    /// A duration that is negative or not a number.
    #[error("task `{0}` has a duration that is not a non-negative number")]
    BadDuration(String),
    /// No agent to run anything.
    #[error("agents must be at least 1")]
    NoAgents,
    /// A failure probability outside 0..=1.
    #[error("the fail rate must be between 0 and 1, not {0}")]
    BadFailRate(f64),
    /// A discovery rate outside 0..=1.
    #[error("the discovery rate must be between 0 and 1, not {0}")]
    BadDiscoveryRate(f64),
    /// The engine kept deciding on one input without end (a bug in the engine).
    #[error("the engine kept deciding without end ({0} inputs in a row)")]
    Runaway(usize),
}

/// How launches are dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dispatch {
    /// The orchestrator's way: a freed agent takes the best ready issue at once.
    #[default]
    ReadyQueue,
    /// The Python tool's way, for comparison: launch a batch of ready issues, wait until
    /// all of them are done, then launch the next batch (the ended runs are reported to
    /// the engine only when the whole batch is done).
    Waves,
}

/// How a simulation is run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SimOptions {
    /// How launches are dispatched.
    pub dispatch: Dispatch,
    /// Whether the scheduler is told each task's duration as its estimate (weight); without,
    /// it knows only the shape of the graph, as for issues without an estimate.
    pub estimates: bool,
    /// The probability that a run fails (0 to 1).
    pub fail_rate: f64,
    /// How many times a failed run is retried (`codegen.retry_failed_runs`).
    pub retry_failed: u32,
    /// Seed of the failures' random draws.
    pub seed: u64,
}

/// Runs the engine on `graph` with its fake agents, dispatching from a ready queue,
/// with the tasks' durations unknown to the scheduler and no failures.
pub fn simulate(graph: &SimGraph) -> Result<SimReport, SimError> {
    simulate_with(graph, SimOptions::default())
}

/// Runs the engine on `graph` as `options` say.
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
    if graph.agents == 0 {
        return Err(SimError::NoAgents);
    }
    if !(0.0..=1.0).contains(&options.fail_rate) {
        return Err(SimError::BadFailRate(options.fail_rate));
    }
    let repo: RepoName = "simulation/tasks".parse().expect("a valid repository name");
    let tasks = graph::tasks_of(graph, &repo)?;
    let mut world = world::World::new(&tasks, graph.agents, options, repo);
    world.run(progress)?;

    let makespan = world.now as f64 / 1000.0;
    // The bound of the final graph: discovered tasks' work counts, and their chains start
    // no earlier than they appear.
    let total_work: f64 = tasks.iter().map(|t| t.duration_secs).sum();
    let lower_bound = graph::critical_path_secs(&tasks).max(total_work / graph.agents as f64);
    // Agent time spent: each task's duration once per run it made (failed ones too).
    let busy = tasks
        .iter()
        .zip(&world.full_runs)
        .map(|(task, runs)| task.duration_secs * f64::from(*runs))
        .sum::<f64>()
        + world.partial_secs;
    let ratio = if lower_bound > 0.0 {
        makespan / lower_bound
    } else {
        1.0
    };
    let utilisation = if makespan > 0.0 {
        busy / (graph.agents as f64 * makespan)
    } else {
        1.0
    };
    let unfinished = |started: bool| -> Vec<String> {
        (0..tasks.len())
            .filter(|&i| !world.closed[i] && world.launched[i] == started)
            .map(|i| tasks[i].name.clone())
            .collect()
    };
    Ok(SimReport {
        makespan_secs: makespan,
        lower_bound_secs: lower_bound,
        ratio,
        utilisation,
        completed: world.closed.iter().filter(|closed| **closed).count(),
        failed_runs: world.launches.iter().filter(|l| l.failed).count(),
        retries: world.launches.iter().filter(|l| l.attempt > 1).count(),
        gave_up: unfinished(true),
        never_started: unfinished(false),
        discovered: world.found.len(),
        discoveries: world.found.clone(),
        decisions: world.decisions.clone(),
        launches: world.launches.clone(),
    })
}

#[cfg(test)]
mod tests;
