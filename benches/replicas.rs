//! Processing throughput with 1, 2 and 3 `serve` replicas on one PostgreSQL database
//! (issue 17 §3): six installations, one repository each, every GitHub and Codegen call
//! answered after a fixed latency (50 ms by default), as a remote service would.
//!
//! ```text
//! TEST_POSTGRES_URL=postgres://... cargo bench --bench replicas -- [issues=20] [latency_ms=50] [rounds=2]
//! ```
//!
//! For each replica count (1, 2, 3, then again, `rounds` times, so that every count sees the
//! same machine), on a fresh database and fresh fakes: the release binary is started that
//! many times as the README's Deployment section says (the same `DATABASE_URL`, nothing
//! else shared), and the bench waits until every replica has written its heartbeat; `issues` issues per installation, none depending on another, are labelled
//! by a maintainer, one `issues.labeled` delivery each, posted round robin to the replicas
//! as fast as they answer. The time runs from the first post until every delivery is
//! processed, every issue has its run and its status comment, and the outbox is empty.
//! The bench fails loudly when a run is missing or doubled.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use codegen_orchestrator::store::Store;
use sqlx::Connection as _;
use support::fake_codegen::FakeCodegen;
use support::fake_github::FakeGithub;
use support::installations::{self, labelled};
use support::server::{Server, codegen_env, test_key_path};

const SECRET: &str = "whsec-replicas-bench";
const INSTALLATIONS: u64 = 6;
async fn fakes(issues: u64, latency: Duration) -> (FakeGithub, FakeCodegen) {
    let (github, codegen) = installations::fakes(INSTALLATIONS, issues, |_| String::new()).await;
    github.set_latency(latency);
    codegen.set_latency(latency);
    (github, codegen)
}

fn status_comments(github: &FakeGithub) -> usize {
    let state = github.state.lock().unwrap();
    state
        .comments
        .values()
        .flatten()
        .filter(|(_, body)| body.contains("codegen-orchestrator:status"))
        .count()
}

/// One measurement: `replicas` processes; deliveries acted on per second.
async fn measure(admin: &str, replicas: usize, issues: u64, latency: Duration) -> (f64, Duration) {
    let database = support::stores::fresh_postgres(admin).await;
    let (github, codegen) = fakes(issues, latency).await;
    let mut env = vec![
        ("DATABASE_URL", database.clone()),
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
        ("GITHUB_API_URL", github.url.clone()),
        ("GITHUB_APP_ID", "1".to_owned()),
        (
            "GITHUB_PRIVATE_KEY_PATH",
            test_key_path().display().to_string(),
        ),
        ("CODEGEN_ORCHESTRATOR__STORAGE__LEASE_SECS", "10".into()),
        (
            "CODEGEN_ORCHESTRATOR__CODEGEN__MAX_CONCURRENT_AGENTS",
            "100000".into(),
        ),
        (
            "CODEGEN_ORCHESTRATOR__CODEGEN__CREATIONS_PER_MINUTE",
            "100000".into(),
        ),
        (
            "CODEGEN_ORCHESTRATOR__GITHUB__WRITES_PER_MINUTE",
            "1000000".into(),
        ),
        (
            "CODEGEN_ORCHESTRATOR__GITHUB__WRITES_PER_HOUR",
            "10000000".into(),
        ),
    ];
    env.extend(codegen_env(&codegen));
    // Runs are followed rarely: the bench measures the reaction to labels.
    env.retain(|(key, _)| *key != "CODEGEN_ORCHESTRATOR__CODEGEN__POLL_INTERVAL_SECS");
    let dirs: Vec<_> = (0..replicas)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let servers: Vec<Server> = dirs
        .iter()
        .enumerate()
        .map(|(k, dir)| Server::spawn(&format!("replica-{k}"), dir.path(), &env))
        .collect::<Vec<_>>()
        .into_iter()
        .map(Server::ready)
        .collect();
    // Every replica has written its heartbeat before the first delivery arrives, so that
    // the first to see the installations takes only its share.
    let mut monitor = sqlx::PgConnection::connect(&database).await.unwrap();
    loop {
        let live: i64 = sqlx::query_scalar("SELECT count(*) FROM replicas")
            .fetch_one(&mut monitor)
            .await
            .unwrap_or(0);
        if live as usize == replicas {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let deliveries: Vec<(String, Vec<u8>)> = (1..=issues)
        .flat_map(|n| (1..=INSTALLATIONS).map(move |i| (i, n)))
        .map(|(i, n)| (format!("label-{i}-{n}"), labelled(&github, i, n)))
        .collect();
    let expected = deliveries.len();
    let store = Store::open(&database).await.unwrap();
    let started = Instant::now();
    for (k, (id, body)) in deliveries.iter().enumerate() {
        let status = servers[k % replicas]
            .deliver(SECRET, "issues", id, body)
            .await;
        assert_eq!(status, 202, "{id}");
    }
    let deadline = started + Duration::from_secs(600);
    loop {
        let pending = store.inbox_counts().await.unwrap().pending;
        let outbox = store.outbox_counts().await.unwrap().0;
        let runs = codegen.runs().len();
        if pending == 0 && outbox == 0 && runs >= expected && status_comments(&github) >= expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{replicas} replicas: not done after 600 s ({pending} pending, {runs} runs)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let mut per_issue: BTreeMap<(String, u64), usize> = BTreeMap::new();
    for run in codegen.runs() {
        let key = (
            run.metadata["repository"].as_str().unwrap().to_owned(),
            run.metadata["issue_number"].as_u64().unwrap(),
        );
        *per_issue.entry(key).or_default() += 1;
    }
    assert_eq!(per_issue.len(), expected, "a run is missing");
    assert!(
        per_issue.values().all(|runs| *runs == 1),
        "a run was doubled"
    );
    store.close().await;
    drop(servers);
    (expected as f64 / elapsed.as_secs_f64(), elapsed)
}

fn arg(name: &str, default: u64) -> u64 {
    std::env::args()
        .filter_map(|a| a.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .next_back()
        .map_or(default, |v| v.parse().expect("a number"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(admin) = support::stores::postgres_admin_url() else {
        eprintln!("replicas bench: set TEST_POSTGRES_URL to a PostgreSQL server");
        return;
    };
    let issues = arg("issues", 20);
    let latency = Duration::from_millis(arg("latency_ms", 50));
    let rounds = arg("rounds", 2);
    println!(
        "replicas: {INSTALLATIONS} installations x {issues} labelled issues, {} ms per GitHub and Codegen call",
        latency.as_millis()
    );
    let mut results: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for round in 1..=rounds {
        for replicas in 1..=3 {
            let (rate, elapsed) = measure(&admin, replicas, issues, latency).await;
            println!(
                "round {round}: {replicas} replica(s): {:.1} deliveries/s ({} in {:.1} s)",
                rate,
                INSTALLATIONS * issues,
                elapsed.as_secs_f64()
            );
            results.entry(replicas).or_default().push(rate);
        }
    }
    let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
    let one = mean(&results[&1]);
    for (replicas, rates) in &results {
        let rate = mean(rates);
        println!(
            "{replicas} replica(s): mean {rate:.1} deliveries/s over {} rounds, {:.2}x one replica",
            rates.len(),
            rate / one
        );
    }
}
