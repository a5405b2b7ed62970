//! Reaction time (issue 17 §2): how soon a dependent's agent is launched once its last
//! blocker is closed, through the real path (signed webhooks through the router into the
//! SQLite inbox, the inbox processor running as under `serve`, the bot, the GitHub and
//! Codegen clients over loopback HTTP) against the fakes of `tests/support`, which answer
//! every call after a fixed latency. Release build, no log output (`TEST_LOG=1` for it).
//!
//! ```text
//! cargo bench --bench reaction -- [issues=1000] [latency_ms=50] [setup_latency_ms=0]
//!     [rate=5] [closes=500] [serial=100] [deadline_secs=900]
//! ```
//!
//! The graph: `issues` managed issues (rounded up to a multiple of 10) in units of ten
//! across 5 repositories of one installation: a chain of five in one repository (each
//! "Depends on" the one before) and a fan-out of five (four issues, one in each other
//! repository, "Depends on owner/repo#N" of the first). The maintainer who labels them has
//! write permission; the agent cap, Codegen's creation limit and GitHub's write limits are
//! set far out of reach.
//!
//! Set-up (untimed, the fakes answering after `setup_latency_ms`): every issue is labelled
//! `codegen` (one `issues.labeled` each), the heads of chains and fans are launched, their
//! agents finish and the app follows them (a tick of the run poller).
//!
//! Then level by level (a chain's second link is closed only after its agent finished and
//! the app followed it, untimed), the issues of a level that block something are closed as
//! completed by webhook. Two modes, each on a fresh app and store:
//!
//! - `paced`: closes posted at `rate` a second on a fixed schedule while the processor
//!   works, at most `closes` of them (the first `closes / 5` units; the same work whatever
//!   the graph's size, so the figure shows how the cost of an event grows with the graph);
//! - `serial`: one close at a time, each after the previous one's reaction and effects are
//!   done (the unloaded figure), at most `serial` closes.
//!
//! A reaction is measured per newly ready dependent: from the 2xx of the close delivery
//! that made it ready to the arrival of its `POST .../agent/run` at the fake Codegen (the
//! run's `metadata` names the issue). The bench fails loudly when a dependent is not
//! launched within `deadline_secs` of its level's start, when anything is launched twice,
//! before its blocker's close was posted, or when an issue that should wait is launched.
//!
//! Printed per mode: each level's closes, reactions and time; reaction p50/p90/p99/max and
//! how many; processing throughput (closes over the summed time of the close levels, each
//! from its first post until nothing is pending in the inbox or the outbox and every
//! reaction arrived); GitHub requests per issue from label to done (every request the fake
//! saw in set-up, the untimed follow-ups and the closes, over the number of issues), and
//! what an issue that goes the whole way costs (label, launch when unblocked, its run
//! followed), with the timed phase's requests by route; for `serial`, the calls the first
//! close of one dependent and the first of several caused, in order, with their arrival.
//!
//! Depends on `tests/support` (`World::start_tuned`, `quick_tuning`, `labeled_payload`,
//! `FakeGithub::{add_issue, close, set_latency, state}` with `Seen::at`,
//! `FakeCodegen::{finish, set_latency, state}`, `fake_github::with_dependency_summary`),
//! `App::{router, processor, store}`, `InboxProcessor::run`, `Orchestrator::tick` through
//! `World::tick`, `Store::{inbox_counts, outbox_counts, running_runs, delivery}`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use codegen_orchestrator::store::DeliveryState;
use serde_json::{Value, json};
use support::world::{INSTALLATION, MAINTAINER, World, quick_tuning, user_id};
use tower::ServiceExt;

/// The installation's repositories; `World` knows the first three.
const REPOS: [&str; 5] = [
    "acme/api",
    "acme/web",
    "other/lib",
    "acme/docs",
    "acme/infra",
];
/// Issues per unit: a chain of five and a fan-out of one blocker and four dependents.
const UNIT: usize = 10;
const CHAIN: usize = 5;

fn main() {
    let options = Options::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let graph = Graph::new(options.issues);
    println!(
        "reaction time: {} issues ({} units of a chain of {CHAIN} and a fan-out of {}) in {} \
         repositories, fakes answering after {} ms (set-up after {} ms), {} worker threads",
        graph.nodes.len(),
        graph.units,
        UNIT - CHAIN,
        REPOS.len(),
        options.latency.as_millis(),
        options.setup_latency.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    runtime.block_on(async {
        if options.closes > 0 {
            let closing = options
                .closes
                .div_ceil(blockers_per_unit())
                .min(graph.units);
            let period = Duration::from_secs_f64(1.0 / options.rate);
            run(
                &options,
                &graph,
                Mode::Paced(period),
                closing,
                options.closes,
            )
            .await;
        }
        if options.serial > 0 {
            let closing = options
                .serial
                .div_ceil(blockers_per_unit())
                .min(graph.units);
            run(&options, &graph, Mode::Serial, closing, options.serial).await;
        }
    });
}

/// The bench's arguments.
struct Options {
    issues: usize,
    latency: Duration,
    setup_latency: Duration,
    rate: f64,
    closes: usize,
    serial: usize,
    deadline: Duration,
}

impl Options {
    fn from_args() -> Self {
        let mut options = Self {
            issues: 1_000,
            latency: Duration::from_millis(50),
            setup_latency: Duration::ZERO,
            rate: 5.0,
            closes: 500,
            serial: 100,
            deadline: Duration::from_secs(900),
        };
        for arg in std::env::args().skip(1) {
            let Some((key, value)) = arg.split_once('=') else {
                continue; // `--bench` from cargo
            };
            let number: f64 = value.parse().unwrap_or_else(|_| panic!("{arg}: a number"));
            match key {
                "issues" => options.issues = number as usize,
                "latency_ms" => options.latency = Duration::from_millis(number as u64),
                "setup_latency_ms" => options.setup_latency = Duration::from_millis(number as u64),
                "rate" => options.rate = number,
                "closes" => options.closes = number as usize,
                "serial" => options.serial = number as usize,
                "deadline_secs" => options.deadline = Duration::from_secs(number as u64),
                _ => panic!("unknown argument {arg}"),
            }
        }
        assert!(options.rate > 0.0, "rate: closes a second, above zero");
        options
    }
}

/// How closes are posted.
#[derive(Clone, Copy)]
enum Mode {
    /// One every period, on a fixed schedule, while the processor works.
    Paced(Duration),
    /// One at a time, each after the previous one's reaction and effects.
    Serial,
}

/// One managed issue of the graph.
struct Node {
    repo: &'static str,
    number: u64,
    /// Indices of its blockers.
    blockers: Vec<usize>,
    /// Indices of the issues it blocks.
    dependents: Vec<usize>,
    /// Its depth: 0 for an issue without blockers.
    level: usize,
    unit: usize,
}

/// The issues and their dependencies.
struct Graph {
    nodes: Vec<Node>,
    units: usize,
}

/// Closes that unblock something, per unit: four links of the chain and the fan's head.
fn blockers_per_unit() -> usize {
    CHAIN
}

impl Graph {
    fn new(issues: usize) -> Self {
        let units = issues.div_ceil(UNIT).max(1);
        let mut numbers: BTreeMap<&str, u64> = BTreeMap::new();
        let mut nodes: Vec<Node> = Vec::with_capacity(units * UNIT);
        for unit in 0..units {
            let first = nodes.len();
            for k in 0..UNIT {
                let repo = if k < CHAIN {
                    REPOS[unit % REPOS.len()]
                } else {
                    REPOS[(unit + k - CHAIN) % REPOS.len()]
                };
                let number = numbers.entry(repo).or_insert(0);
                *number += 1;
                let (blockers, level) = match k {
                    0 => (vec![], 0),
                    k if k < CHAIN => (vec![first + k - 1], k),
                    CHAIN => (vec![], 0),
                    _ => (vec![first + CHAIN], 1),
                };
                nodes.push(Node {
                    repo,
                    number: *number,
                    blockers,
                    dependents: Vec::new(),
                    level,
                    unit,
                });
            }
        }
        for i in 0..nodes.len() {
            for b in nodes[i].blockers.clone() {
                nodes[b].dependents.push(i);
            }
        }
        Self { nodes, units }
    }

    /// The issue's body: a line of prose and its dependencies.
    fn body(&self, i: usize) -> String {
        let node = &self.nodes[i];
        let mut body = format!("Work item {}#{}.", node.repo, node.number);
        for &b in &node.blockers {
            let blocker = &self.nodes[b];
            if blocker.repo == node.repo {
                body += &format!("\n\nDepends on #{}", blocker.number);
            } else {
                body += &format!("\n\nDepends on {}#{}", blocker.repo, blocker.number);
            }
        }
        body
    }

    fn key(&self, i: usize) -> (String, u64) {
        (self.nodes[i].repo.to_owned(), self.nodes[i].number)
    }

    fn depth(&self) -> usize {
        self.nodes.iter().map(|n| n.level).max().unwrap_or(0)
    }
}

/// One reaction measured.
struct Reaction {
    close: usize,
    dependent: usize,
    time: Duration,
}

/// What a mode's close phase saw.
#[derive(Default)]
struct Measured {
    reactions: Vec<Reaction>,
    closes: usize,
    /// The close levels' summed time.
    elapsed: Duration,
    /// GitHub requests: set-up (labels), following runs (untimed), closes (timed).
    requests: [usize; 3],
    /// The timed phase's GitHub requests by route.
    routes: BTreeMap<String, usize>,
    codegen_calls: usize,
    /// Issues whose finished run was followed.
    followed: usize,
    /// A close's 2xx was later than its post by this much at most.
    slowest_post: Duration,
}

/// Runs one mode on a fresh app: set-up, then the close levels.
async fn run(options: &Options, graph: &Graph, mode: Mode, closing: usize, most: usize) {
    let name = match mode {
        Mode::Paced(period) => format!("paced ({:.1} closes/s)", 1.0 / period.as_secs_f64()),
        Mode::Serial => "serial (one close at a time)".to_owned(),
    };
    let world = World::start_tuned(
        |config| {
            config.codegen.max_concurrent_agents = 1_000_000;
            config.codegen.creations_per_minute = 1_000_000;
            config.github.writes_per_minute = 100_000_000;
            config.github.writes_per_hour = 1_000_000_000;
        },
        quick_tuning(),
    )
    .await;
    {
        let mut state = world.github.state.lock().unwrap();
        for repo in &REPOS[3..] {
            state.installations.insert((*repo).into(), INSTALLATION);
            state.permissions.insert(
                ((*repo).into(), MAINTAINER.into()),
                ("write".into(), "write".into()),
            );
        }
    }
    world.codegen.add_repo(7003, "acme/web");
    world.codegen.add_repo(7004, "acme/docs");
    world.codegen.add_repo(7005, "acme/infra");
    for (i, node) in graph.nodes.iter().enumerate() {
        let title = format!("Issue {}#{}", node.repo, node.number);
        world.add_issue(node.repo, node.number, &title, &graph.body(i), &[]);
    }
    set_latency(&world, options.setup_latency);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let processor = world.app.processor.clone();
    let worker = tokio::spawn(async move { processor.run(stopped).await });
    let router = world.app.router();
    let mut measured = Measured::default();

    // Set-up: every issue labelled; the heads launch.
    let started = Instant::now();
    let mut deliveries = Vec::new();
    for node in &graph.nodes {
        let payload = world.labeled_payload(node.repo, node.number, "codegen", MAINTAINER);
        let id = format!("label-{}-{}", node.repo.replace('/', "-"), node.number);
        deliveries.push((id, serde_json::to_vec(&payload).unwrap()));
    }
    for (id, body) in &deliveries {
        let request = support::webhook("issues", id, body).signed(support::SECRET);
        let status = router.clone().oneshot(request).await.unwrap().status();
        assert_eq!(status, StatusCode::ACCEPTED, "{id}");
    }
    let heads: BTreeSet<usize> = (0..graph.nodes.len())
        .filter(|&i| graph.nodes[i].level == 0)
        .collect();
    wait_idle(&world, options.deadline, || {
        launched(&world, graph).len() >= heads.len()
    })
    .await;
    assert_eq!(
        launched(&world, graph)
            .keys()
            .copied()
            .collect::<BTreeSet<_>>(),
        heads,
        "the labels launch exactly the issues without blockers"
    );
    measured.requests[0] = github_requests(&world);
    println!(
        "{name}: set-up: {} labelled, {} launched in {:.1} s",
        graph.nodes.len(),
        heads.len(),
        started.elapsed().as_secs_f64()
    );

    // Level by level: the level's agents finish (untimed), then its blockers close.
    let mut closed: BTreeSet<usize> = BTreeSet::new();
    let mut closed_at: Vec<Instant> = Vec::new();
    // The first close that unblocks one issue and the first that unblocks several.
    let mut traced: BTreeSet<bool> = BTreeSet::new();
    for level in 0..graph.depth() {
        let finishing: Vec<usize> = (0..graph.nodes.len())
            .filter(|&i| graph.nodes[i].level == level && graph.nodes[i].unit < closing)
            .collect();
        let requests_before = github_requests(&world);
        follow_finished(&world, graph, &finishing, options).await;
        measured.requests[1] += github_requests(&world) - requests_before;
        measured.followed += finishing.len();

        let mut closes: Vec<usize> = finishing
            .into_iter()
            .filter(|&i| !graph.nodes[i].dependents.is_empty())
            .collect();
        closes.truncate(most.saturating_sub(measured.closes));
        if closes.is_empty() {
            break;
        }
        // Which close makes which dependent ready (all its blockers closed).
        let mut expected: BTreeMap<usize, usize> = BTreeMap::new();
        for (c, &b) in closes.iter().enumerate() {
            closed.insert(b);
            for &d in &graph.nodes[b].dependents {
                if graph.nodes[d].blockers.iter().all(|x| closed.contains(x)) {
                    expected.insert(d, closed_at.len() + c);
                }
            }
        }
        set_latency(&world, options.latency);
        let github_before = github_requests(&world);
        let codegen_before = world.codegen.state.lock().unwrap().calls.len();
        let level_start = Instant::now();
        let mut posted_at = Vec::new();
        for (c, &b) in closes.iter().enumerate() {
            if let Mode::Paced(period) = mode {
                tokio::time::sleep_until((level_start + period * c as u32).into()).await;
            }
            let (repo, n) = graph.key(b);
            world.github.close(&repo, n, "completed");
            let body = serde_json::to_vec(&closed_payload(&world, &repo, n)).unwrap();
            let id = format!("close-{}-{n}", repo.replace('/', "-"));
            let request = support::webhook("issues", &id, &body).signed(support::SECRET);
            let posted = Instant::now();
            let status = router.clone().oneshot(request).await.unwrap().status();
            let answered = Instant::now();
            assert_eq!(status, StatusCode::ACCEPTED, "{id}");
            measured.slowest_post = measured.slowest_post.max(answered - posted);
            posted_at.push(posted);
            closed_at.push(answered);
            if let Mode::Serial = mode {
                let index = closed_at.len() - 1;
                let mine: Vec<usize> = expected
                    .iter()
                    .filter(|(_, c)| **c == index)
                    .map(|(d, _)| *d)
                    .collect();
                let calls_before = (
                    github_requests(&world),
                    world.codegen.state.lock().unwrap().calls.len(),
                );
                wait_idle(&world, options.deadline, || {
                    let launched = launched(&world, graph);
                    mine.iter().all(|d| launched.contains_key(d))
                })
                .await;
                if traced.insert(mine.len() > 1) {
                    trace(&world, &graph.nodes[b], answered, calls_before);
                }
            }
        }
        let deadline = options.deadline.saturating_sub(level_start.elapsed());
        wait_idle(&world, deadline, || {
            let launched = launched(&world, graph);
            expected.keys().all(|d| launched.contains_key(d))
        })
        .await;
        let took = level_start.elapsed();
        println!(
            "{name}: level {level}: {} closes, {} reactions, done in {:.1} s",
            closes.len(),
            expected.len(),
            took.as_secs_f64()
        );
        measured.elapsed += took;
        measured.closes += closes.len();
        measured.requests[2] += github_requests(&world) - github_before;
        {
            let state = world.github.state.lock().unwrap();
            for seen in &state.requests[github_before..] {
                *measured.routes.entry(route(seen)).or_default() += 1;
            }
        }
        measured.codegen_calls += world.codegen.state.lock().unwrap().calls.len() - codegen_before;
        set_latency(&world, options.setup_latency);

        // Every close processed; every reaction where it should be, and nothing else.
        for &b in &closes {
            let (repo, n) = graph.key(b);
            let id = format!("close-{}-{n}", repo.replace('/', "-"));
            let record = world
                .app
                .store
                .delivery(&id.parse().unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(record.state, DeliveryState::Processed, "{id}");
        }
        let launched = launched(&world, graph);
        for (&d, &c) in &expected {
            let at = launched[&d];
            let first = closed_at.len() - closes.len();
            assert!(
                at >= posted_at[c - first],
                "{}#{} launched before its blocker's close was posted",
                graph.nodes[d].repo,
                graph.nodes[d].number
            );
            measured.reactions.push(Reaction {
                close: c,
                dependent: d,
                time: at.saturating_duration_since(closed_at[c]),
            });
        }
        let waiting: Vec<String> = launched
            .keys()
            .filter(|&&i| {
                !graph.nodes[i]
                    .blockers
                    .iter()
                    .all(|blocker| closed.contains(blocker))
            })
            .map(|&i| format!("{}#{}", graph.nodes[i].repo, graph.nodes[i].number))
            .collect();
        assert!(
            waiting.is_empty(),
            "launched with a blocker open: {waiting:?}"
        );
    }

    stop.send(true).unwrap();
    worker.await.unwrap();
    world.app.store.close().await;
    report(&name, graph, &measured);
}

/// Sets both fakes' latency.
fn set_latency(world: &World, latency: Duration) {
    world.github.set_latency(latency);
    world.codegen.set_latency(latency);
}

fn github_requests(world: &World) -> usize {
    world.github.state.lock().unwrap().requests.len()
}

/// When each launched issue's one `POST .../agent/run` arrived; fails on a second one.
fn launched(world: &World, graph: &Graph) -> BTreeMap<usize, Instant> {
    let index: BTreeMap<(String, u64), usize> =
        (0..graph.nodes.len()).map(|i| (graph.key(i), i)).collect();
    let state = world.codegen.state.lock().unwrap();
    let mut found = BTreeMap::new();
    for call in &state.calls {
        if call.method != "POST" || !call.path.ends_with("/agent/run") {
            continue;
        }
        let metadata = &call.body["metadata"];
        let key = (
            metadata["repository"].as_str().unwrap_or("?").to_owned(),
            metadata["issue_number"].as_u64().unwrap_or(0),
        );
        let i = *index
            .get(&key)
            .unwrap_or_else(|| panic!("a run for an unknown issue: {key:?}"));
        assert!(
            found.insert(i, call.at).is_none(),
            "{}#{} launched twice",
            key.0,
            key.1
        );
    }
    found
}

/// Waits until `done` holds, no delivery is pending and no effect is pending in the
/// outbox; fails after `deadline`.
async fn wait_idle(world: &World, deadline: Duration, done: impl Fn() -> bool) {
    let until = Instant::now() + deadline;
    loop {
        let pending = world.app.store.inbox_counts().await.unwrap().pending;
        let (effects, _) = world.app.store.outbox_counts().await.unwrap();
        if pending == 0 && effects == 0 && done() {
            return;
        }
        assert!(
            Instant::now() < until,
            "not done within {} s: {pending} deliveries and {effects} effects pending, or a \
             dependent never launched",
            deadline.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The agents of `issues` finish and the app follows them (untimed).
async fn follow_finished(world: &World, graph: &Graph, issues: &[usize], options: &Options) {
    let runs: BTreeMap<(String, u64), u64> = world
        .codegen
        .runs()
        .iter()
        .map(|run| {
            let m = &run.metadata;
            let key = (
                m["repository"].as_str().unwrap_or("?").to_owned(),
                m["issue_number"].as_u64().unwrap_or(0),
            );
            (key, run.id)
        })
        .collect();
    for &i in issues {
        let run = runs
            .get(&graph.key(i))
            .unwrap_or_else(|| panic!("no run for {:?}", graph.key(i)));
        world.codegen.finish(*run, "COMPLETE", None);
    }
    let until = Instant::now() + options.deadline;
    loop {
        world.tick().await;
        let running = world.app.store.running_runs().await.unwrap();
        let finishing: BTreeSet<(String, u64)> = issues.iter().map(|&i| graph.key(i)).collect();
        let left = running
            .iter()
            .filter(|r| finishing.contains(&(r.issue.repo.to_string(), r.issue.number)))
            .count();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < until, "{left} runs not followed");
    }
    wait_idle(world, options.deadline, || true).await;
}

/// `issues.closed` for an issue as GitHub sends it (the fake's issue, already closed).
fn closed_payload(world: &World, repo: &str, n: u64) -> Value {
    let mut payload: Value =
        serde_json::from_slice(&support::fixture("issues/labeled.payload.json")).unwrap();
    payload["action"] = json!("closed");
    if let Some(object) = payload.as_object_mut() {
        object.remove("label");
    }
    {
        let state = world.github.state.lock().unwrap();
        let key = (repo.to_owned(), n);
        payload["issue"] =
            support::fake_github::with_dependency_summary(&state, &key, &state.issues[&key]);
    }
    payload["installation"] = json!({"id": INSTALLATION});
    payload["repository"]["full_name"] = json!(repo);
    payload["repository"]["name"] = json!(repo.split('/').nth(1).unwrap());
    payload["sender"]["login"] = json!(MAINTAINER);
    payload["sender"]["id"] = json!(user_id(MAINTAINER));
    payload["sender"]["type"] = json!("User");
    payload
}

/// A request's route: method and path with the numbers and names of issues left out.
fn route(seen: &support::fake_github::Seen) -> String {
    let mut parts: Vec<&str> = seen.path.split('/').collect();
    if parts.len() > 3 && parts[1] == "repos" {
        parts[2] = "{owner}";
        parts[3] = "{repo}";
    }
    let path: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(k, part)| {
            if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
                "{n}".to_owned()
            } else if k > 0 && parts[k - 1] == "labels" {
                "{name}".to_owned()
            } else {
                (*part).to_owned()
            }
        })
        .collect();
    format!("{} {}", seen.method, path.join("/"))
}

/// Prints the calls one close caused, in order, with their arrival after the close's 2xx.
fn trace(world: &World, closed: &Node, answered: Instant, (github, codegen): (usize, usize)) {
    let mut calls: Vec<(Instant, String)> = Vec::new();
    {
        let state = world.github.state.lock().unwrap();
        for seen in &state.requests[github..] {
            calls.push((seen.at, format!("GitHub  {} {}", seen.method, seen.path)));
        }
    }
    {
        let state = world.codegen.state.lock().unwrap();
        for call in &state.calls[codegen..] {
            let what = match call.body["metadata"]["issue_number"].as_u64() {
                Some(n) => format!(
                    " (run for {}#{n})",
                    call.body["metadata"]["repository"].as_str().unwrap_or("?")
                ),
                None => String::new(),
            };
            calls.push((
                call.at,
                format!("Codegen {} {}{what}", call.method, call.path),
            ));
        }
    }
    calls.sort_by_key(|(at, _)| *at);
    println!(
        "  the calls closing {}#{} caused, by arrival after its 2xx:",
        closed.repo, closed.number
    );
    for (at, what) in calls {
        let ms = at.saturating_duration_since(answered).as_secs_f64() * 1e3;
        println!("  {ms:>8.1} ms  {what}");
    }
}

fn report(name: &str, graph: &Graph, m: &Measured) {
    let mut times: Vec<Duration> = m.reactions.iter().map(|r| r.time).collect();
    times.sort();
    let at = |q: f64| -> f64 {
        if times.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
        times[rank - 1].as_secs_f64() * 1e3
    };
    let slowest = m.reactions.iter().max_by_key(|r| r.time);
    let issues = graph.nodes.len();
    let total: usize = m.requests.iter().sum();
    println!(
        "{name}: reaction p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} \
         reactions to {} closes{}",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
        times.len(),
        m.closes,
        slowest.map_or(String::new(), |r| format!(
            " (slowest: {}#{} after close #{})",
            graph.nodes[r.dependent].repo,
            graph.nodes[r.dependent].number,
            r.close + 1
        )),
    );
    println!(
        "{name}: processing {:.2} closes acted on per second ({} closes in {:.1} s; slowest \
         2xx {:.1} ms)",
        m.closes as f64 / m.elapsed.as_secs_f64(),
        m.closes,
        m.elapsed.as_secs_f64(),
        m.slowest_post.as_secs_f64() * 1e3,
    );
    println!(
        "{name}: GitHub requests per issue, label to done: {:.2} ({total} for {issues} issues: \
         set-up {}, following runs {}, closes {}); per close {:.2}; Codegen calls per close {:.2}",
        total as f64 / issues as f64,
        m.requests[0],
        m.requests[1],
        m.requests[2],
        m.requests[2] as f64 / m.closes.max(1) as f64,
        m.codegen_calls as f64 / m.closes.max(1) as f64,
    );
    let per = |requests: usize, count: usize| requests as f64 / count.max(1) as f64;
    let (label, follow, launch) = (
        per(m.requests[0], issues),
        per(m.requests[1], m.followed),
        per(m.requests[2], times.len()),
    );
    println!(
        "{name}: GitHub requests of an issue that goes the whole way: {:.1} = label {label:.2} \
         + launched when unblocked {launch:.2} + its run followed {follow:.2} (a head: {:.1})",
        label + launch + follow,
        label + follow,
    );
    let mut routes: Vec<(&String, &usize)> = m.routes.iter().collect();
    routes.sort_by(|a, b| b.1.cmp(a.1));
    for (route, count) in routes {
        println!(
            "  closes' GitHub requests: {count:>6} {route} ({:.2} per close)",
            *count as f64 / m.closes.max(1) as f64
        );
    }
}
