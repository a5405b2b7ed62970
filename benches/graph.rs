//! Dependency parsing and graph benchmarks (criterion). Run: `cargo bench --bench graph`.
//!
//! Besides criterion's figures, the insertion benchmark prints the median of 10,000 single
//! timed insertions, which is what BENCHMARKS.md records.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use codegen_orchestrator::deps::DependencyParser;
use codegen_orchestrator::domain::IssueStatus;
use codegen_orchestrator::domain::{IssueRef, RepoName};
use codegen_orchestrator::engine::{DependencyGraph, IssueNode};
use criterion::{Criterion, criterion_group, criterion_main};

const ISSUES: u64 = 100_000;
const EDGES_PER_ISSUE: u64 = 3;

/// A small deterministic generator, so every run measures the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn repo() -> RepoName {
    "acme/platform".parse().unwrap()
}

fn issue(number: u64) -> IssueRef {
    IssueRef::new(repo(), number)
}

const PROSE: &[&str] = &[
    "The service should reject requests without a valid token and log the attempt.",
    "We agreed in the planning meeting that the migration runs in two phases.",
    "See #12 for the discussion; fixes #40 once the endpoint is merged.",
    "Performance matters here: the handler is on the hot path of every request.",
    "Please keep the public API backwards compatible until the next major release.",
];

/// An issue body of a few KB: prose, a code block, a quote, a task list and references.
fn realistic_body(rng: &mut Rng, number: u64) -> String {
    let mut body = String::with_capacity(4096);
    body.push_str("## Context\n\n");
    for _ in 0..12 + rng.below(12) {
        body.push_str(PROSE[rng.below(PROSE.len() as u64) as usize]);
        body.push(' ');
    }
    body.push_str("\n\n```rust\nfn handler(req: Request) -> Response {\n    // Depends on #1 inside code does not count\n    todo()\n}\n```\n\n");
    body.push_str("> Blocked by #2 in a quote does not count either.\n\n");
    let blocker = 1 + rng.below(number.max(2) - 1);
    match rng.below(3) {
        0 => body.push_str(&format!(
            "Depends on #{blocker} and acme/infra#{}.\n\n",
            rng.below(500) + 1
        )),
        1 => body.push_str(&format!(
            "## Dependencies\n\n- [ ] #{blocker}\n- [x] https://github.com/acme/web/issues/{}\n\n",
            rng.below(900) + 1
        )),
        _ => body.push_str(&format!("This is blocked by #{blocker}.\n\n")),
    }
    body.push_str("## Acceptance criteria\n\n");
    for i in 0..12 + rng.below(12) {
        body.push_str(&format!(
            "- [ ] criterion {i}: {}\n",
            PROSE[rng.below(PROSE.len() as u64) as usize]
        ));
    }
    body
}

fn parse_bodies(c: &mut Criterion) {
    let mut rng = Rng(0x5eed);
    let bodies: Vec<String> = (1..=10_000).map(|n| realistic_body(&mut rng, n)).collect();
    let total: usize = bodies.iter().map(String::len).sum();
    println!(
        "parse: 10,000 bodies, {:.1} KB on average",
        total as f64 / 10_000.0 / 1024.0
    );
    let parser = DependencyParser::new("github.com");
    c.bench_function("parse 10,000 issue bodies", |b| {
        b.iter(|| {
            let mut found = 0;
            for (n, body) in bodies.iter().enumerate() {
                found += parser.dependencies(&issue(n as u64 + 1), body, &[]).len();
            }
            black_box(found)
        })
    });
}

/// 100,000 managed open issues; issue n depends on three random earlier issues.
fn dag(rng: &mut Rng) -> (Vec<IssueNode>, Vec<(IssueRef, IssueRef)>) {
    let nodes = (1..=ISSUES)
        .map(|n| IssueNode::new(issue(n), IssueStatus::Open).managed())
        .collect();
    let mut edges = Vec::with_capacity((ISSUES * EDGES_PER_ISSUE) as usize);
    for n in 2..=ISSUES {
        for _ in 0..EDGES_PER_ISSUE {
            edges.push((issue(n), issue(1 + rng.below(n - 1))));
        }
    }
    (nodes, edges)
}

fn build_graph(c: &mut Criterion) {
    let (nodes, edges) = dag(&mut Rng(7));
    let mut group = c.benchmark_group("graph");
    group.sample_size(10);
    group.bench_function("build 100,000 issues / ~300,000 edges", |b| {
        b.iter(|| DependencyGraph::build(nodes.clone(), edges.clone()).unwrap())
    });
    group.finish();
}

fn insert_and_ready(c: &mut Criterion) {
    let mut rng = Rng(11);
    let (nodes, edges) = dag(&mut rng);
    let mut graph = DependencyGraph::build(nodes, edges).unwrap();
    let (issues, deps) = graph.size();
    println!("graph: {issues} issues, {deps} dependencies");

    // 10,000 random "a depends on b": most are fine, the ones that would close a cycle are
    // refused; every one is checked.
    let pairs: Vec<(IssueRef, IssueRef)> = (0..10_000)
        .map(|_| (issue(1 + rng.below(ISSUES)), issue(1 + rng.below(ISSUES))))
        .collect();
    let mut timings: Vec<Duration> = Vec::with_capacity(pairs.len());
    let mut refused = 0;
    for (a, b) in &pairs {
        let start = Instant::now();
        let result = graph.add_dependency(a, b);
        timings.push(start.elapsed());
        refused += usize::from(result.is_err());
    }
    timings.sort();
    println!(
        "insert: 10,000 single insertions with cycle checks, {refused} refused as cycles; median {:?}, p90 {:?}, p99 {:?}, max {:?}",
        timings[timings.len() / 2],
        timings[timings.len() * 9 / 10],
        timings[timings.len() * 99 / 100],
        timings[timings.len() - 1],
    );

    let mut group = c.benchmark_group("graph");
    let mut next = 0usize;
    let extra: Vec<(IssueRef, IssueRef)> = (0..100_000)
        .map(|_| (issue(1 + rng.below(ISSUES)), issue(1 + rng.below(ISSUES))))
        .collect();
    group.bench_function("insert one edge with cycle check (100k-node graph)", |b| {
        b.iter(|| {
            let (a, blocker) = &extra[next % extra.len()];
            next += 1;
            black_box(graph.add_dependency(a, blocker).is_ok())
        })
    });

    // Closing one issue and asking what is ready: open its state again after each round so
    // every round does the same work.
    let roots: BTreeSet<IssueRef> = graph.ready().into_iter().take(1).collect();
    let root = roots.into_iter().next().expect("some issue is ready");
    group.bench_function("close one issue, then ready()", |b| {
        b.iter(|| {
            graph.set_state(&root, IssueStatus::ClosedCompleted);
            let ready = graph.ready();
            graph.set_state(&root, IssueStatus::Open);
            black_box(ready.len())
        })
    });
    group.finish();
}

criterion_group!(benches, parse_bodies, build_graph, insert_and_ready);
criterion_main!(benches);
