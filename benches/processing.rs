//! Processing throughput (issue 14): deliveries acted on per second through the real path
//! (signed webhook through the router into the SQLite inbox, the inbox processor, the bot,
//! the GitHub and Codegen clients over loopback HTTP) against the test fakes, which answer
//! at once. Release build, no log output (no subscriber is installed).
//!
//! ```text
//! cargo bench --bench processing -- [chains=40] [length=5] [independent=200]
//! ```
//!
//! Each scenario runs on a fresh app and SQLite store (WAL, `synchronous=FULL`, as in
//! production) in a temporary directory: on the disk by default, in memory with
//! `TMPDIR=/dev/shm` (tmpfs: the same work without the cost of `fsync`).
//!
//! - `chains`: `chains` chains of `length` issues (each issue "Depends on" the one before);
//!   - phase `labels`: a maintainer (write permission) labels every issue `codegen`: one
//!     `issues.labeled` delivery per issue. Work done: one agent run per chain head, one
//!     status comment per issue, state labels;
//!   - phase `closes`: level by level, the running issues' agents finish and the app follows
//!     them (untimed), then every issue of the level is closed as completed (one
//!     `issues.closed` delivery each), which unblocks the next issue of every chain: one
//!     new run per close. The phase's time is the sum over the `length - 1` levels.
//! - `independent`: `independent` issues without dependencies; `labels` launches every one
//!   of them; `closes` (after every agent finished, untimed) unblocks nothing.
//!
//! A phase's time runs from just before its first delivery is posted until every delivery
//! is out of the inbox (none pending) and the fake Codegen holds the expected number of
//! runs. The processor runs all along as under `serve` (`InboxProcessor::run`, woken by the
//! door), so storing and processing overlap; `stored` is when the last post was answered.
//! A phase fails loudly when a delivery is not `processed` or a run is missing or extra,
//! so that a figure can never come from skipped work. The last line sums every phase:
//! all deliveries over the sum of the phases' times.
//!
//! What this depends on (as of commit d34fff2; the engine redesign of issue 14 may move
//! some of it, and then this file follows):
//! - `tests/support` (`World::start_tuned`, `quick_tuning`, `World::labeled_payload`,
//!   `FakeGithub::{add_issue, close, state}`, `fake_github::with_dependency_summary`,
//!   `FakeCodegen::{runs, finish, state}`, `support::{webhook, fixture, SECRET}`);
//! - `App::{router, processor, store}`, `InboxProcessor::run(watch::Receiver<bool>)`,
//!   `App::bot` and `Bot::tick` through `World::tick` (`App::orchestrator` and
//!   `Orchestrator::tick` after the redesign), `Store::{inbox_counts, delivery}`,
//!   `DeliveryState::Processed`.
//!
//! After the redesign (commit c3fe503 on): the same, plus `Store::outbox_counts`; a phase
//! also waits for the outbox to hold no pending effect, since decisions are committed with
//! the delivery and carried out after it (`Orchestrator::handle_delivery` drains them
//! before returning, so this adds no wait today). The "before" copy of this file, at
//! commit d34fff2 (no outbox), is identical but for that wait.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use codegen_orchestrator::store::DeliveryState;
use serde_json::{Value, json};
use support::world::{INSTALLATION, MAINTAINER, World, quick_tuning, user_id};
use tower::ServiceExt;

const REPO: &str = "acme/api";

fn main() {
    let mut chains = 40u64;
    let mut length = 5u64;
    let mut independent = 200u64;
    for arg in std::env::args().skip(1) {
        let Some((key, value)) = arg.split_once('=') else {
            continue; // `--bench` from cargo
        };
        let value: u64 = value.parse().unwrap_or_else(|_| panic!("{arg}: a number"));
        match key {
            "chains" => chains = value,
            "length" => length = value.max(1),
            "independent" => independent = value,
            _ => panic!("unknown argument {arg}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "processing throughput, {} worker threads, fakes answering at once",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (deliveries, elapsed) = runtime.block_on(async {
        let mut total = (0, Duration::ZERO);
        let mut add = |(deliveries, elapsed): (usize, Duration)| {
            total.0 += deliveries;
            total.1 += elapsed;
        };
        if chains > 0 {
            add(scenario(&format!("chains {chains}x{length}"), chains, length).await);
        }
        if independent > 0 {
            add(scenario(&format!("independent {independent}"), independent, 1).await);
        }
        total
    });
    println!(
        "all phases: {deliveries} deliveries in {:.3} s = {:.1} deliveries/s",
        elapsed.as_secs_f64(),
        deliveries as f64 / elapsed.as_secs_f64()
    );
}

/// What the fakes had seen before a phase.
struct Before {
    runs: usize,
    github_requests: usize,
    codegen_calls: usize,
}

/// A phase's figures, summed over its rounds.
#[derive(Default)]
struct Phase {
    deliveries: usize,
    stored: Duration,
    elapsed: Duration,
    runs: usize,
    comments_created: usize,
    comments_edited: usize,
    label_writes: usize,
    github_requests: usize,
    codegen_calls: usize,
}

/// Runs one scenario; returns its deliveries and the time its phases took.
async fn scenario(name: &str, chains: u64, length: u64) -> (usize, Duration) {
    let world = World::start_tuned(
        |config| {
            config.codegen.max_concurrent_agents = 1_000_000;
            config.codegen.creations_per_minute = 1_000_000;
            config.github.writes_per_minute = 10_000_000;
            config.github.writes_per_hour = 100_000_000;
        },
        quick_tuning(),
    )
    .await;
    let number = |chain: u64, position: u64| chain * length + position + 1;
    for chain in 0..chains {
        for position in 0..length {
            let n = number(chain, position);
            let body = if position == 0 {
                format!("Work item {n}.")
            } else {
                format!("Work item {n}.\n\nDepends on #{}", n - 1)
            };
            world.add_issue(REPO, n, &format!("Issue {n}"), &body, &[]);
        }
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let processor = world.app.processor.clone();
    let worker = tokio::spawn(async move { processor.run(stopped).await });
    let router = world.app.router();

    // Phase 1: every issue labelled.
    let mut deliveries = Vec::new();
    for chain in 0..chains {
        for position in 0..length {
            let n = number(chain, position);
            let payload = world.labeled_payload(REPO, n, "codegen", MAINTAINER);
            deliveries.push((format!("label-{n}"), payload));
        }
    }
    let mut labels = Phase::default();
    run_phase(&world, &router, deliveries, chains as usize, &mut labels).await;
    let with_status = (1..=chains * length)
        .filter(|&n| world.status_comments(REPO, n).len() == 1)
        .count();
    assert_eq!(
        with_status,
        (chains * length) as usize,
        "one status comment per issue"
    );
    report(name, "labels", &labels);

    // Phase 2: level by level, agents finish (untimed), then their issues close.
    let mut closes = Phase::default();
    let levels = if length > 1 { length - 1 } else { 1 };
    let unblocked = if length > 1 { chains as usize } else { 0 };
    for position in 0..levels {
        let issues: Vec<u64> = (0..chains).map(|c| number(c, position)).collect();
        for &n in &issues {
            let run = world.run_of(REPO, n);
            world.codegen.finish(run, "COMPLETE", None);
        }
        world.tick().await;
        let mut deliveries = Vec::new();
        for &n in &issues {
            world.github.close(REPO, n, "completed");
            deliveries.push((format!("close-{n}"), closed_payload(&world, n)));
        }
        run_phase(&world, &router, deliveries, unblocked, &mut closes).await;
    }
    let what = if unblocked > 0 {
        "closes (each unblocks one)"
    } else {
        "closes (nothing to unblock)"
    };
    report(name, what, &closes);

    stop.send(true).unwrap();
    worker.await.unwrap();
    world.app.store.close().await;
    (
        labels.deliveries + closes.deliveries,
        labels.elapsed + closes.elapsed,
    )
}

/// Posts `deliveries` through the door while the processor runs, waits until none is
/// pending and `new_runs` more runs exist, and adds what it saw to `phase`.
async fn run_phase(
    world: &World,
    router: &Router,
    deliveries: Vec<(String, Value)>,
    new_runs: usize,
    phase: &mut Phase,
) {
    let bodies: Vec<(String, Vec<u8>)> = deliveries
        .into_iter()
        .map(|(id, payload)| (id, serde_json::to_vec(&payload).unwrap()))
        .collect();
    // One lock at a time: a guard in a struct literal lives to the end of the statement.
    let runs = world.codegen.state.lock().unwrap().runs.len();
    let codegen_calls = world.codegen.state.lock().unwrap().calls.len();
    let github_requests = world.github.state.lock().unwrap().requests.len();
    let before = Before {
        runs,
        github_requests,
        codegen_calls,
    };
    let expected_runs = before.runs + new_runs;
    let start = Instant::now();
    for (id, body) in &bodies {
        let request = support::webhook("issues", id, body).signed(support::SECRET);
        let status = router.clone().oneshot(request).await.unwrap().status();
        assert_eq!(status, StatusCode::ACCEPTED, "{id}");
    }
    let stored = start.elapsed();
    let deadline = start + Duration::from_secs(600);
    loop {
        let pending = world.app.store.inbox_counts().await.unwrap().pending;
        let (effects, _) = world.app.store.outbox_counts().await.unwrap();
        let runs = world.codegen.state.lock().unwrap().runs.len();
        if pending == 0 && effects == 0 && runs >= expected_runs {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done after 600 s: {pending} pending, {effects} effects, {runs} of {expected_runs} runs"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();

    for (id, _) in &bodies {
        let record = world
            .app
            .store
            .delivery(&id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.state, DeliveryState::Processed, "{id}");
    }
    let runs = world.codegen.state.lock().unwrap().runs.len();
    assert_eq!(runs, expected_runs, "runs created");
    let github = world.github.state.lock().unwrap();
    let seen = &github.requests[before.github_requests..];
    let is_comment = |path: &str| path.contains("/comments");
    phase.deliveries += bodies.len();
    phase.stored += stored;
    phase.elapsed += elapsed;
    phase.runs += runs - before.runs;
    phase.comments_created += seen
        .iter()
        .filter(|r| r.method == "POST" && is_comment(&r.path) && !r.path.contains("/reactions"))
        .count();
    phase.comments_edited += seen
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/issues/comments/"))
        .count();
    phase.label_writes += seen
        .iter()
        .filter(|r| r.path.contains("/labels") && matches!(r.method, "POST" | "DELETE"))
        .count();
    phase.github_requests += seen.len();
    phase.codegen_calls += world.codegen.state.lock().unwrap().calls.len() - before.codegen_calls;
}

/// `issues.closed` for issue `n` as GitHub sends it (the fake's issue, already closed).
fn closed_payload(world: &World, n: u64) -> Value {
    let mut payload: Value =
        serde_json::from_slice(&support::fixture("issues/labeled.payload.json")).unwrap();
    payload["action"] = json!("closed");
    if let Some(object) = payload.as_object_mut() {
        object.remove("label");
    }
    {
        let state = world.github.state.lock().unwrap();
        let key = (REPO.to_owned(), n);
        payload["issue"] =
            support::fake_github::with_dependency_summary(&state, &key, &state.issues[&key]);
    }
    payload["installation"] = json!({"id": INSTALLATION});
    payload["repository"]["full_name"] = json!(REPO);
    payload["repository"]["name"] = json!(REPO.split('/').nth(1).unwrap());
    payload["sender"]["login"] = json!(MAINTAINER);
    payload["sender"]["id"] = json!(user_id(MAINTAINER));
    payload["sender"]["type"] = json!("User");
    payload
}

fn report(scenario: &str, phase: &str, p: &Phase) {
    let seconds = p.elapsed.as_secs_f64();
    println!(
        "{scenario:<16} {phase:<28} {:>5} deliveries in {:>7.3} s = {:>7.1} deliveries/s \
         (stored by {:.3} s) | runs created {}, status comments created {}, comments edited {}, \
         label writes {}, GitHub requests {}, Codegen calls {}",
        p.deliveries,
        seconds,
        p.deliveries as f64 / seconds,
        p.stored.as_secs_f64(),
        p.runs,
        p.comments_created,
        p.comments_edited,
        p.label_writes,
        p.github_requests,
        p.codegen_calls,
    );
}
