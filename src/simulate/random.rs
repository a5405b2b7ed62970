//! Random graphs for `simulate --random N`: layered, with lognormal durations, and with
//! `--discovery-rate` some tasks that turn up more while they run.

use std::collections::BTreeMap;

use super::SimError;
use super::graph::{SimDiscovery, SimGraph, SimTask};

/// A layered random graph of `tasks` tasks: each task depends on up to three tasks of
/// earlier layers; durations are lognormal around 30 minutes. The same seed gives the same
/// graph.
pub fn random_graph(tasks: usize, seed: u64, agents: usize) -> SimGraph {
    layered(tasks, seed, agents).graph
}

/// As [`random_graph`], with `discovery_rate` (0 to 1) of its tasks each discovering one
/// or two more while they run, at a random point of their run: each discovered task
/// depends on its discoverer and, half the time, on a task of the discoverer's earlier
/// layers as well (never on anything that could close a cycle: nothing of the generated
/// graph depends on a discovered task). The generated tasks are [`random_graph`]'s with
/// the same seed, whatever the rate (the discoveries are drawn from a stream of their own),
/// so a rate of 0 gives exactly that graph.
pub fn random_graph_discovering(
    tasks: usize,
    seed: u64,
    agents: usize,
    discovery_rate: f64,
) -> Result<SimGraph, SimError> {
    if !(0.0..=1.0).contains(&discovery_rate) {
        return Err(SimError::BadDiscoveryRate(discovery_rate));
    }
    let mut layered = layered(tasks, seed, agents);
    if discovery_rate > 0.0 {
        layered.add_discoveries(discovery_rate, seed);
    }
    Ok(layered.graph)
}

/// A generated graph with its layers, which discoveries draw their extra dependency from.
struct Layered {
    graph: SimGraph,
    /// The tasks in layer order.
    by_layer_order: Vec<usize>,
    /// For each task, how many tasks of `by_layer_order` lie in the layers before its own.
    before: Vec<usize>,
}

fn layered(tasks: usize, seed: u64, agents: usize) -> Layered {
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
    let before: Vec<usize> = layer_of.iter().map(|layer| layer_start[layer]).collect();
    let mut simulated = Vec::with_capacity(tasks);
    for &prefix in &before {
        let earlier = &by_layer_order[..prefix];
        let mut deps = Vec::new();
        if !earlier.is_empty() {
            for _ in 0..rng.usize(1..=3) {
                let dep = format!("t{}", earlier[rng.usize(0..earlier.len())]);
                if !deps.contains(&dep) {
                    deps.push(dep);
                }
            }
        }
        simulated.push(SimTask {
            id: format!("t{}", simulated.len()),
            duration_secs: lognormal_duration(&mut rng),
            deps,
            discovers: Vec::new(),
        });
    }
    Layered {
        graph: SimGraph {
            agents,
            tasks: simulated,
        },
        by_layer_order,
        before,
    }
}

impl Layered {
    /// Picks `rate` of the tasks (rounded to a whole number) and gives each one or two
    /// discoveries, named on from the last generated task (`t200`, `t201` ...).
    fn add_discoveries(&mut self, rate: f64, seed: u64) {
        // A stream apart from the graph's (and from the failures', see `World::new`).
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5851_f42d_4c95_7f2d);
        let tasks = self.graph.tasks.len();
        let mut discoverers: Vec<usize> = (0..tasks).collect();
        rng.shuffle(&mut discoverers);
        discoverers.truncate((rate * tasks as f64).round() as usize);
        discoverers.sort_unstable();
        let mut next_id = tasks;
        for index in discoverers {
            for _ in 0..rng.usize(1..=2) {
                let at = (rng.f64() * 100.0).round() / 100.0;
                let mut deps = vec![format!("t{index}")];
                let earlier = &self.by_layer_order[..self.before[index]];
                if !earlier.is_empty() && rng.bool() {
                    deps.push(format!("t{}", earlier[rng.usize(0..earlier.len())]));
                }
                let task = SimTask {
                    id: format!("t{next_id}"),
                    duration_secs: lognormal_duration(&mut rng),
                    deps,
                    discovers: Vec::new(),
                };
                next_id += 1;
                self.graph.tasks[index]
                    .discovers
                    .push(SimDiscovery { at, task });
            }
        }
    }
}

/// Lognormal around 30 minutes: exp(mu + sigma * N(0, 1)), N from Box–Muller; to a tenth
/// of a second.
fn lognormal_duration(rng: &mut fastrand::Rng) -> f64 {
    let normal =
        (-2.0 * (1.0 - rng.f64()).ln()).sqrt() * (2.0 * std::f64::consts::PI * rng.f64()).cos();
    let duration = (1800f64.ln() + 0.8 * normal).exp();
    (duration * 10.0).round() / 10.0
}
