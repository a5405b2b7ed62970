//! Replicas that share the work, through the real binary on PostgreSQL (issue 17 §3): six
//! installations, `serve` processes started as the README's Deployment section starts them
//! (the same `DATABASE_URL`, nothing else shared). Two replicas split the installations
//! three and three; a third joins and each ends with two; the third is killed with SIGKILL
//! and its installations go to the other two once its leases run out. Deliveries keep
//! arriving through a "load balancer" all along; every one is processed, every ready issue
//! gets exactly one run and every issue one status comment. Needs `TEST_POSTGRES_URL`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use codegen_orchestrator::store::{DeliveryState, Store};
use sqlx::Connection as _;
use support::fake_codegen::FakeCodegen;
use support::fake_github::FakeGithub;
use support::installations::{self, labelled, repo};
use support::server::{Server, codegen_env, test_key_path};

const SECRET: &str = "whsec-leases-test";
const INSTALLATIONS: u64 = 6;
const ISSUES: u64 = 6;
const LEASE_SECS: u64 = 3;
/// Six repositories, one per installation (101..=106), each with `ISSUES` issues; every
/// third issue depends on the one before it.
async fn fakes() -> (FakeGithub, FakeCodegen) {
    let (github, codegen) = installations::fakes(INSTALLATIONS, ISSUES, |n| {
        if n % 3 == 0 {
            format!("Depends on #{}", n - 1)
        } else {
            String::new()
        }
    })
    .await;
    // Some latency on every GitHub call, so that work is under way when a replica dies.
    github.state.lock().unwrap().random_faults = Some((0.0, 0.0, 20));
    (github, codegen)
}

/// Owner (process id) of each installation whose lease has not run out.
async fn owners(monitor: &mut sqlx::PgConnection) -> BTreeMap<u64, u32> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT installation_id, owner FROM installation_leases
         WHERE expires_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
    )
    .fetch_all(&mut *monitor)
    .await
    .unwrap();
    rows.into_iter()
        .filter_map(|(id, owner)| Some((id as u64, owner.split('/').nth(1)?.parse().ok()?)))
        .collect()
}

/// Installations held per process id.
fn shares(owners: &BTreeMap<u64, u32>) -> BTreeMap<u32, usize> {
    let mut shares = BTreeMap::new();
    for pid in owners.values() {
        *shares.entry(*pid).or_default() += 1;
    }
    shares
}

/// Waits up to `limit` for the leases to be shared as `want` says (installations per
/// replica, by process id); the last sharing seen otherwise.
async fn wait_for_shares(
    monitor: &mut sqlx::PgConnection,
    limit: Duration,
    want: &BTreeMap<u32, usize>,
) -> Result<Duration, BTreeMap<u64, u32>> {
    let started = Instant::now();
    loop {
        let owners = owners(monitor).await;
        if shares(&owners) == *want {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(owners);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_six_installations_and_take_over_a_killed_ones() {
    let Some(admin) = support::stores::postgres_admin_url() else {
        return;
    };
    let database = support::stores::fresh_postgres(&admin).await;
    let (github, codegen) = fakes().await;
    let mut env = vec![
        ("DATABASE_URL", database.clone()),
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
        ("GITHUB_API_URL", github.url.clone()),
        ("GITHUB_APP_ID", "1".to_owned()),
        (
            "GITHUB_PRIVATE_KEY_PATH",
            test_key_path().display().to_string(),
        ),
        (
            "CODEGEN_ORCHESTRATOR__STORAGE__LEASE_SECS",
            LEASE_SECS.to_string(),
        ),
        (
            "CODEGEN_ORCHESTRATOR__CODEGEN__MAX_CONCURRENT_AGENTS",
            "100".into(),
        ),
        (
            "CODEGEN_ORCHESTRATOR__CODEGEN__CREATIONS_PER_MINUTE",
            "1000".into(),
        ),
        (
            "CODEGEN_ORCHESTRATOR__GITHUB__WRITES_PER_MINUTE",
            "100000".into(),
        ),
        (
            "CODEGEN_ORCHESTRATOR__GITHUB__WRITES_PER_HOUR",
            "1000000".into(),
        ),
    ];
    env.extend(codegen_env(&codegen));
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut replicas = vec![
        Server::spawn("replica-a", dirs[0].path(), &env),
        Server::spawn("replica-b", dirs[1].path(), &env),
    ]
    .into_iter()
    .map(Server::ready)
    .collect::<Vec<_>>();
    let mut monitor = sqlx::PgConnection::connect(&database).await.unwrap();

    // The first half of the labels, through both replicas: they split the six three and three.
    let deliveries: Vec<(String, u64, u64)> = (1..=ISSUES)
        .flat_map(|n| (1..=INSTALLATIONS).map(move |i| (format!("label-{i}-{n}"), i, n)))
        .collect();
    let (first, rest) = deliveries.split_at(deliveries.len() / 2);
    for (k, (id, i, n)) in first.iter().enumerate() {
        let status = replicas[k % 2]
            .deliver(SECRET, "issues", id, &labelled(&github, *i, *n))
            .await;
        assert_eq!(status, 202, "{id}");
    }
    let pid = |server: &Server| server.child.id();
    let two: BTreeMap<u32, usize> = [(pid(&replicas[0]), 3), (pid(&replicas[1]), 3)].into();
    let split = wait_for_shares(&mut monitor, Duration::from_secs(20), &two).await;
    assert!(split.is_ok(), "two replicas, 3 + 3: {split:?}");

    // A third joins: each ends with two.
    replicas.push(Server::start("replica-c", dirs[2].path(), &env));
    let three: BTreeMap<u32, usize> = replicas.iter().map(|r| (pid(r), 2)).collect();
    let joined = wait_for_shares(&mut monitor, Duration::from_secs(20), &three).await;
    let rebalanced_in =
        joined.unwrap_or_else(|owners| panic!("three replicas, 2 each: {owners:?}"));

    // The newcomer dies without a word while deliveries of its installations keep coming.
    let victim_pid = pid(&replicas[2]);
    let victims: BTreeSet<u64> = owners(&mut monitor)
        .await
        .into_iter()
        .filter(|(_, owner)| *owner == victim_pid)
        .map(|(id, _)| id)
        .collect();
    replicas[2].kill();
    let killed_at = Instant::now();
    for (k, (id, i, n)) in rest.iter().enumerate() {
        let status = replicas[k % 2]
            .deliver(SECRET, "issues", id, &labelled(&github, *i, *n))
            .await;
        assert_eq!(status, 202, "{id}");
    }
    let limit = Duration::from_secs(LEASE_SECS * 4 + 10);
    let taken = wait_for_shares(&mut monitor, limit, &two).await;
    let taken_over_in = taken.unwrap_or_else(|owners| panic!("back to 3 + 3: {owners:?}"));

    // Everything done once: every delivery processed, one run per ready issue, one status
    // comment per issue.
    let store = Store::open(&database).await.unwrap();
    let ready = |n: u64| !n.is_multiple_of(3);
    let expected: BTreeMap<(String, u64), usize> = (1..=INSTALLATIONS)
        .flat_map(|i| {
            (1..=ISSUES)
                .filter(|n| ready(*n))
                .map(move |n| ((repo(i), n), 1))
        })
        .collect();
    let runs = || {
        let mut runs: BTreeMap<(String, u64), usize> = BTreeMap::new();
        for run in codegen.runs() {
            let key = (
                run.metadata["repository"].as_str().unwrap().to_owned(),
                run.metadata["issue_number"].as_u64().unwrap(),
            );
            *runs.entry(key).or_default() += 1;
        }
        runs
    };
    let comments = || {
        let state = github.state.lock().unwrap();
        (1..=INSTALLATIONS)
            .flat_map(|i| (1..=ISSUES).map(move |n| (repo(i), n)))
            .map(|key| {
                state.comments.get(&key).map_or(0, |all| {
                    all.iter()
                        .filter(|(_, body)| body.contains("codegen-orchestrator:status"))
                        .count()
                })
            })
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(LEASE_SECS + 30);
    loop {
        let pending = store.inbox_counts().await.unwrap().pending;
        if pending == 0 && runs() == expected && comments().iter().all(|c| *c == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {pending} pending, runs {:?}, comments {:?}\n{}\n{}",
            runs(),
            comments(),
            replicas[0].logs(),
            replicas[1].logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settled_in = killed_at.elapsed();
    // A poll or two later, still nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(runs(), expected, "one run per ready issue, none twice");
    assert!(comments().iter().all(|c| *c == 1), "{:?}", comments());
    for (id, _, _) in &deliveries {
        let record = store.delivery(&id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(record.state, DeliveryState::Processed, "{id}");
    }
    for replica in &mut replicas[..2] {
        replica.terminate();
        let errors: Vec<_> = replica
            .logs()
            .lines()
            .filter(|line| line.contains(r#""level":"ERROR""#))
            .map(str::to_owned)
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", replica.name);
    }
    store.close().await;
    println!(
        "leases: 2 replicas split {INSTALLATIONS} installations 3 + 3; a third joined and each \
         held 2 after {:.1} s; it was SIGKILLed holding {victims:?} and the two others held 3 \
         each again {:.1} s later (lease {LEASE_SECS} s); all {} deliveries processed, {} runs \
         (one per ready issue) and one status comment per issue {:.1} s after the kill",
        rebalanced_in.as_secs_f64(),
        taken_over_in.as_secs_f64(),
        deliveries.len(),
        expected.len(),
        settled_in.as_secs_f64()
    );
}
