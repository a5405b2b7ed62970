//! Two replicas on one PostgreSQL database behind one "load balancer": a few hundred
//! deliveries posted alternately to both are each processed exactly once, and no agent run
//! is created twice. Needs `TEST_POSTGRES_URL` (`.ci/run` provides it).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use codegen_orchestrator::store::DeliveryState;
use support::world::{MAINTAINER, World};

const ISSUES: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_process_every_delivery_once_and_launch_each_issue_once() {
    let Some(admin) = support::stores::postgres_admin_url() else {
        return;
    };
    let url = support::stores::fresh_postgres(&admin).await;
    let world = World::start_with(|config| {
        config.storage.url = url.clone();
        config.codegen.max_concurrent_agents = 1000;
    })
    .await;
    let replica = world.replica().await;
    let apps = [&world.app, &replica];

    // Issue n depends on n-1 for every tenth n: some launches wait for others.
    for n in 1..=ISSUES {
        let body = if n % 10 == 0 {
            format!("Depends on #{}", n - 1)
        } else {
            String::new()
        };
        world.add_issue("acme/api", n, &format!("Issue {n}"), &body, &[]);
    }
    // Three deliveries per issue: the label, a status command, a redelivery of the label.
    let mut deliveries = Vec::new();
    for n in 1..=ISSUES {
        let labeled =
            serde_json::to_vec(&world.labeled_payload("acme/api", n, "codegen", MAINTAINER))
                .unwrap();
        deliveries.push(("issues", format!("label-{n}"), labeled.clone()));
        deliveries.push(("issues", format!("label-{n}"), labeled));
        let comment = format!(
            r#"{{"action":"created","issue":{},"comment":{{"id":{},"body":"/codegen status","user":{{"login":"{MAINTAINER}","id":101,"type":"User"}},"performed_via_github_app":null}},"repository":{{"full_name":"acme/api"}},"installation":{{"id":42}},"sender":{{"login":"{MAINTAINER}","id":101,"type":"User"}}}}"#,
            world.github.state.lock().unwrap().issues[&("acme/api".to_owned(), n)],
            9_000_000 + n
        );
        deliveries.push((
            "issue_comment",
            format!("comment-{n}"),
            comment.into_bytes(),
        ));
    }

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = apps
        .iter()
        .map(|app| {
            let processor = app.processor.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move { processor.run(stopped).await })
        })
        .collect();
    let mut accepted = 0;
    for (i, (event, id, body)) in deliveries.iter().enumerate() {
        let status = World::post_to(apps[i % 2], event, id, body).await;
        assert!(
            matches!(status, StatusCode::ACCEPTED | StatusCode::OK),
            "{id}: {status}"
        );
        accepted += usize::from(status == StatusCode::ACCEPTED);
    }
    assert_eq!(
        accepted,
        2 * ISSUES as usize,
        "a redelivered id is stored once"
    );

    // Wait for both replicas to drain the shared inbox.
    let store = &world.app.store;
    for _ in 0..600 {
        if store.inbox_counts().await.unwrap().pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    for worker in workers {
        worker.await.unwrap();
    }

    for (_, id, _) in &deliveries {
        let record = store.delivery(&id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(
            (record.state, record.attempts),
            (DeliveryState::Processed, 1),
            "{id}"
        );
    }
    let runs = world.codegen.runs();
    let launched: BTreeSet<(u64, u64)> = runs
        .iter()
        .map(|r| {
            (
                r.metadata["issue_number"].as_u64().unwrap(),
                r.metadata["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(launched.len(), runs.len(), "no run created twice");
    // Every issue without an open blocker was launched once.
    assert_eq!(runs.len() as u64, ISSUES - ISSUES / 10);
    for n in 1..=ISSUES {
        assert_eq!(
            world.status_comments("acme/api", n).len(),
            1,
            "#{n}: one status comment"
        );
    }
    println!(
        "replicas: {} deliveries posted ({} stored), {} processed exactly once, {} runs, 0 duplicates",
        deliveries.len(),
        accepted,
        accepted,
        runs.len()
    );
}
