//! Load with faults: signed deliveries posted over TCP on many connections while the fake
//! GitHub answers 10 % of requests with 500 and 5 % with a secondary-limit 403 (plus random
//! latency) and the fake Codegen fails 10 % of creations with 5xx (half of them after
//! creating the run: a lost answer) and 2 % with 429. Afterwards every accepted delivery is
//! processed, every ready issue has exactly one run, every status comment is single and
//! says the right state.
//!
//! CI runs a shortened version; the full one:
//! `FAULT_DELIVERIES=10000 FAULT_CONNECTIONS=64 cargo test --release --test faults -- --nocapture`

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use codegen_orchestrator::http::sign;
use codegen_orchestrator::store::DeliveryState;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::world::{MAINTAINER, World, quick_tuning};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_under_faults_are_processed_and_runs_created_once() {
    let posts = setting("FAULT_DELIVERIES", 400);
    let connections = setting("FAULT_CONNECTIONS", 16);
    // Four posts per issue: the label, a body edit, a command, and a redelivery.
    let issues = (posts / 4).max(10) as u64;
    let mut tuning = quick_tuning();
    tuning.inbox_retry.max_attempts = 6;
    let world = World::start_tuned(
        |config| {
            config.codegen.max_concurrent_agents = 100_000;
            config.codegen.retry_attempts = 8;
        },
        tuning,
    )
    .await;
    for n in 1..=issues {
        // Every fifth issue waits for the one before it, which stays open.
        let body = if n % 5 == 0 {
            format!("Depends on #{}", n - 1)
        } else {
            format!("Work item {n}")
        };
        world.add_issue("acme/api", n, &format!("Issue {n}"), &body, &[]);
    }
    let mut deliveries: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for n in 1..=issues {
        let labeled =
            serde_json::to_vec(&world.labeled_payload("acme/api", n, "codegen", MAINTAINER))
                .unwrap();
        deliveries.push(("issues", format!("label-{n}"), labeled.clone()));
        let mut edited = world.labeled_payload("acme/api", n, "codegen", MAINTAINER);
        edited["action"] = "edited".into();
        edited["changes"] = serde_json::json!({"body": {"from": "before"}});
        deliveries.push((
            "issues",
            format!("edit-{n}"),
            serde_json::to_vec(&edited).unwrap(),
        ));
        let mut comment: serde_json::Value =
            serde_json::from_slice(&support::fixture("issue_comment/created.payload.json"))
                .unwrap();
        comment["issue"] = edited["issue"].clone();
        comment["comment"]["id"] = (7_000_000 + n).into();
        comment["comment"]["body"] = "/codegen status".into();
        comment["comment"]["user"] =
            serde_json::json!({"login": MAINTAINER, "id": 101, "type": "User"});
        comment["comment"]["performed_via_github_app"] = serde_json::Value::Null;
        comment["installation"] = serde_json::json!({"id": support::world::INSTALLATION});
        comment["repository"]["full_name"] = "acme/api".into();
        comment["sender"] = serde_json::json!({"login": MAINTAINER, "id": 101, "type": "User"});
        deliveries.push((
            "issue_comment",
            format!("comment-{n}"),
            serde_json::to_vec(&comment).unwrap(),
        ));
        deliveries.push(("issues", format!("label-{n}"), labeled)); // GitHub's redelivery
    }

    world.github.state.lock().unwrap().random_faults = Some((0.10, 0.05, 3));
    world.codegen.state.lock().unwrap().random_faults = Some((0.10, 0.02));

    // The app on a TCP port, its inbox processor in the background.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = world.app.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let processor = world.app.processor.clone();
    let processing = tokio::spawn(async move { processor.run(stopped).await });

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build_http();
    let gate = Arc::new(tokio::sync::Semaphore::new(connections));
    let started = Instant::now();
    let mut posting = tokio::task::JoinSet::new();
    for (event, id, body) in deliveries.iter().cloned() {
        let (client, gate) = (client.clone(), gate.clone());
        posting.spawn(async move {
            let _slot = gate.acquire_owned().await.unwrap();
            let request = axum::http::Request::post(format!("http://{address}/webhook"))
                .header("content-type", "application/json")
                .header("x-github-event", event)
                .header("x-github-delivery", &id)
                .header("x-hub-signature-256", sign(support::SECRET, &body))
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let status = client.request(request).await.unwrap().status().as_u16();
            (id, status)
        });
    }
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut accepted: BTreeSet<String> = BTreeSet::new();
    while let Some(done) = posting.join_next().await {
        let (id, status) = done.unwrap();
        *statuses.entry(status).or_default() += 1;
        if status == 202 {
            accepted.insert(id);
        }
    }
    let posted_in = started.elapsed();

    let store = &world.app.store;
    let deadline = Instant::now() + Duration::from_secs(600);
    while store.inbox_counts().await.unwrap().pending > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let processed_in = started.elapsed();
    stop.send(true).unwrap();
    processing.await.unwrap();
    // Faults off: settle launches whose outcome a fault left open.
    world.github.state.lock().unwrap().random_faults = None;
    world.codegen.state.lock().unwrap().random_faults = None;
    // Effects a fault left waiting for a retry are carried out.
    world.settle_effects().await;

    // Every accepted delivery was processed (retries after faults included), none lost.
    assert_eq!(
        statuses.get(&202),
        Some(&(3 * issues as usize)),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.get(&200),
        Some(&(issues as usize)),
        "redeliveries answered 200"
    );
    let mut attempts_total = 0;
    for id in &accepted {
        let record = store.delivery(&id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(
            record.state,
            DeliveryState::Processed,
            "{id}: {:?}",
            record.last_error
        );
        attempts_total += record.attempts;
    }
    // Exactly one run per ready issue: no duplicate, none missing.
    let runs = world.codegen.runs();
    let mut per_issue: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for run in &runs {
        let n = run.metadata["issue_number"].as_u64().unwrap();
        per_issue
            .entry(n)
            .or_default()
            .push(run.metadata["attempt"].as_u64().unwrap());
    }
    for n in 1..=issues {
        let expected: Vec<u64> = if n % 5 == 0 { vec![] } else { vec![1] };
        assert_eq!(
            per_issue.get(&n).cloned().unwrap_or_default(),
            expected,
            "runs of #{n}"
        );
        let status = world.status_comments("acme/api", n);
        assert_eq!(status.len(), 1, "#{n}: status comments");
        let state = if n % 5 == 0 {
            "**blocked**"
        } else {
            "**running**"
        };
        assert!(
            status[0].contains(state),
            "#{n} should say {state}: {}",
            status[0]
        );
    }
    let github_faults = world.github.state.lock().unwrap().faults_injected;
    let codegen_faults = world.codegen.state.lock().unwrap().faults_injected;
    println!(
        "faults: {} posts on {connections} connections ({} accepted, {} redeliveries) in {:.1?}, processed by {:.1?} \
         with {} processing attempts; GitHub faults {} x 500 + {} x 403, Codegen faults {} x 5xx ({} after creating the run) + {} x 429; \
         {} runs for {} ready issues, duplicates 0, losses 0",
        deliveries.len(),
        accepted.len(),
        statuses.get(&200).unwrap_or(&0),
        posted_in,
        processed_in,
        attempts_total,
        github_faults.0,
        github_faults.1,
        codegen_faults.0,
        codegen_faults.1,
        codegen_faults.2,
        runs.len(),
        issues - issues / 5,
    );
}
