//! Scheduler benchmarks (criterion) at 1,000, 10,000 and 100,000 issues. Run:
//! `cargo bench --bench scheduler`.
//!
//! - `decide`: the launches for 10 free agents on a graph where every issue waits (the
//!   first layer ready): reading the ordered ready set, not sorting it.
//! - `step`: what one event costs the graph and the scheduler while agents work through
//!   it: the oldest running issue closes (its dependents' counts, critical work and the
//!   ready set follow), then the free agent is filled (decide, mark started).
//!
//! - `forecast`: the whole graph's forecast (the scheduler run forward on a virtual clock
//!   over a copy of the graph) with 10 agents, as the engine makes it after a change (every
//!   change up to 1,000 issues, at most once a minute above).
//!
//! The graph is layered like `simulate --random`: about sqrt(n) layers, each issue
//! depending on one to three issues of earlier layers.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use codegen_orchestrator::domain::{IssueRef, IssueStatus, RepoName};
use codegen_orchestrator::engine::{DependencyGraph, IssueNode, Scheduler};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const AGENTS: usize = 10;

/// A small deterministic generator, so every run measures the same graph.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn issue(number: u64) -> IssueRef {
    let repo: RepoName = "acme/platform".parse().unwrap();
    IssueRef::new(repo, number)
}

/// `n` managed open issues in about sqrt(n) layers; each depends on one to three issues
/// of the layers before its own.
fn layered(n: u64) -> DependencyGraph {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n);
    let layers = ((n as f64).sqrt().round() as u64).max(1);
    let per_layer = n.div_ceil(layers);
    let nodes = (1..=n).map(|number| IssueNode::new(issue(number), IssueStatus::Open).managed());
    let mut dependencies = Vec::new();
    for number in per_layer + 1..=n {
        let earlier = (number - 1) / per_layer * per_layer;
        for _ in 0..1 + rng.below(3) {
            dependencies.push((issue(number), issue(1 + rng.below(earlier))));
        }
    }
    DependencyGraph::build(nodes, dependencies).expect("earlier layers only: no cycle")
}

/// The graph with `AGENTS` issues launched, and the running ones oldest first.
fn started(n: u64) -> (DependencyGraph, VecDeque<IssueRef>) {
    let mut graph = layered(n);
    let mut running = VecDeque::new();
    launch(&mut graph, &mut running);
    (graph, running)
}

/// Fills the free agents as the engine does: decide, then mark the picks started.
fn launch(graph: &mut DependencyGraph, running: &mut VecDeque<IssueRef>) {
    let scheduler = Scheduler::new(AGENTS);
    let busy: Vec<IssueRef> = running.iter().cloned().collect();
    for pick in scheduler.decide(graph, &busy) {
        graph.set_agent(&pick.issue, pick.attempt, true, false);
        running.push_back(pick.issue);
    }
}

fn decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler/decide");
    for n in [1_000, 10_000, 100_000] {
        let graph = layered(n);
        let scheduler = Scheduler::new(AGENTS);
        group.bench_with_input(BenchmarkId::from_parameter(n), &graph, |b, graph| {
            b.iter(|| black_box(scheduler.decide(black_box(graph), &[])))
        });
    }
    group.finish();
}

fn step(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler/step");
    for n in [1_000, 10_000, 100_000] {
        let (mut graph, mut running) = started(n);
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    if running.is_empty() {
                        // Worked through: start again on a fresh graph, untimed.
                        (graph, running) = started(n);
                    }
                    let at = Instant::now();
                    let done = running.pop_front().expect("an agent is running");
                    graph.set_agent(&done, 1, false, true);
                    graph.set_state(&done, IssueStatus::ClosedCompleted);
                    launch(&mut graph, &mut running);
                    spent += at.elapsed();
                }
                spent
            })
        });
    }
    group.finish();
}

fn forecast(c: &mut Criterion) {
    use codegen_orchestrator::engine::forecast::{CODEGEN_LAUNCHES_PER_MINUTE, Start, forecast};
    let mut group = c.benchmark_group("scheduler/forecast");
    group.sample_size(10);
    for n in [1_000, 10_000, 100_000] {
        let graph = layered(n);
        let scheduler = Scheduler::new(AGENTS);
        let start = Start {
            running: Vec::new(),
            launches_from: 0,
            launches_per_minute: CODEGEN_LAUNCHES_PER_MINUTE,
            now: 0,
        };
        group.bench_with_input(BenchmarkId::from_parameter(n), &graph, |b, graph| {
            b.iter(|| black_box(forecast(black_box(graph), &scheduler, &start)))
        });
    }
    group.finish();
}

criterion_group!(benches, decide, step, forecast);
criterion_main!(benches);
