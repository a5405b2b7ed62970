//! The inbox end to end: real payloads posted signed through the router, processed from the
//! store; restarts lose nothing; a poison payload is parked without blocking others.

mod support;

use axum::http::StatusCode;
use codegen_orchestrator::domain::DeliveryId;
use codegen_orchestrator::http::DoorLimits;
use codegen_orchestrator::processor::RetryPolicy;
use codegen_orchestrator::runtime::App;
use codegen_orchestrator::store::DeliveryState;
use support::{TestApp, all_fixtures, fixture, quick_retries, test_config};

fn delivery_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[tokio::test]
async fn every_real_payload_is_accepted_and_processed_or_ignored() {
    let app = TestApp::start().await;
    let fixtures = all_fixtures();
    assert!(
        fixtures.len() > 60,
        "only {} fixtures found",
        fixtures.len()
    );
    for (n, (event, name, body)) in fixtures.iter().enumerate() {
        let (status, text) = app.deliver(event, &delivery_id(n), body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{event}/{name}: {text}");
    }
    // Every fixture's event is one the app handles (sub_issues and issue_dependencies
    // included): each is stored and processed once.
    assert_eq!(
        fixtures
            .iter()
            .filter(|(e, _, _)| e == "sub_issues")
            .count(),
        4,
        "the four sub_issues payloads"
    );
    let handled = app.app.processor.drain().await.unwrap();
    assert_eq!(handled, fixtures.len());
    let mut processed = 0;
    for (n, (event, name, _)) in fixtures.iter().enumerate() {
        let id: DeliveryId = delivery_id(n).parse().unwrap();
        let record = app.app.store.delivery(&id).await.unwrap();
        let record = record.unwrap_or_else(|| panic!("{event}/{name} was not stored"));
        assert!(
            matches!(
                record.state,
                DeliveryState::Processed | DeliveryState::Ignored
            ),
            "{event}/{name} ended {:?}: {:?}",
            record.state,
            record.last_error
        );
        assert_eq!(record.attempts, 1, "{event}/{name}");
        processed += usize::from(record.state == DeliveryState::Processed);
    }
    // Most real payloads are actions the app acts on; the rest (pinned, assigned...) are
    // ignored on purpose. The exact split is pinned by the decoder's snapshot test.
    assert!(processed > fixtures.len() / 2, "only {processed} processed");
    let counts = app.app.store.inbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (0, 0));
}

#[tokio::test]
async fn a_delivery_accepted_before_a_restart_is_processed_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&dir);
    let body = fixture("issues/opened.payload.json");
    {
        let app = App::build(&config).await.unwrap();
        let test = TestApp { app, dir };
        let (status, _) = test.deliver("issues", &delivery_id(1), &body).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        // Stop without processing, as a crash or deploy between accept and processing would.
        test.app.store.close().await;
        drop(test.app);
        let dir = test.dir;
        let app = App::build(&config).await.unwrap();
        let test = TestApp { app, dir };
        assert_eq!(test.app.processor.drain().await.unwrap(), 1);
        let id: DeliveryId = delivery_id(1).parse().unwrap();
        let record = test.app.store.delivery(&id).await.unwrap().unwrap();
        assert_eq!(record.state, DeliveryState::Processed);
        // And a redelivery after the restart is still recognised.
        let (status, _) = test.deliver("issues", &delivery_id(1), &body).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_poison_payload_is_retried_then_parked_without_blocking_others() {
    let app = TestApp::start_with(DoorLimits::default(), quick_retries(3)).await;
    // Valid JSON, signed, but not an issues payload.
    let (status, _) = app
        .deliver(
            "issues",
            &delivery_id(1),
            br#"{"action": "opened", "issue": {"number": "x"}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = app
        .deliver(
            "issues",
            &delivery_id(2),
            &fixture("issues/opened.payload.json"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    app.app.processor.drain().await.unwrap();
    let good = app
        .app
        .store
        .delivery(&delivery_id(2).parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        good.state,
        DeliveryState::Processed,
        "blocked behind the poison"
    );

    for _ in 0..5 {
        app.app.processor.drain().await.unwrap();
    }
    let poison = app
        .app
        .store
        .delivery(&delivery_id(1).parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(poison.state, DeliveryState::Failed);
    assert_eq!(poison.attempts, 3);
    let error = poison.last_error.unwrap();
    assert!(error.contains("issue"), "{error}");
    let counts = app.app.store.inbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (0, 1));
}

#[tokio::test]
async fn deliveries_are_processed_in_arrival_order() {
    let app = TestApp::start_with(DoorLimits::default(), RetryPolicy::default()).await;
    let body = fixture("issues/opened.payload.json");
    for n in 0..50 {
        app.deliver("issues", &delivery_id(n), &body).await;
    }
    let claimed = app
        .app
        .store
        .claim_deliveries(100, i64::MAX / 2, 1000)
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|d| d.id.clone()).collect();
    let expected: Vec<_> = (0..50).map(delivery_id).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn concurrent_redeliveries_of_one_id_are_stored_once() {
    let app = std::sync::Arc::new(TestApp::start().await);
    let body = fixture("issues/opened.payload.json");
    let mut posts = Vec::new();
    for _ in 0..32 {
        let (app, body) = (app.clone(), body.clone());
        posts.push(tokio::spawn(async move {
            app.deliver("issues", &delivery_id(7), &body).await.0
        }));
    }
    let mut statuses = Vec::new();
    for post in posts {
        statuses.push(post.await.unwrap());
    }
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    let duplicates = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((accepted, duplicates), (1, 31), "{statuses:?}");
    assert_eq!(app.stored().await, 1);
    assert_eq!(app.app.processor.drain().await.unwrap(), 1);
}
