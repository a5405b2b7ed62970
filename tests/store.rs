//! The store API, the same suite against SQLite and PostgreSQL: the inbox (redelivery,
//! claims in arrival order, leases, concurrent claimers), run rows (exactly once, leases,
//! endings), issues, status comments, settings and job locks.

mod support;

use std::collections::BTreeSet;

use bytes::Bytes;
use codegen_orchestrator::domain::{InstallationId, IssueRef, RunId};
use codegen_orchestrator::store::{
    DeliveryOutcome, DeliveryState, NewDelivery, RecordOutcome, RunEnding, RunState, Store,
};
use support::stores;

const T0: i64 = 1_800_000_000_000;

fn delivery(id: &str, body: &str) -> NewDelivery {
    NewDelivery {
        id: id.parse().unwrap(),
        event: "issues".into(),
        action: Some("labeled".into()),
        installation: Some(InstallationId(42)),
        repository: Some("acme/api".into()),
        received_at: T0,
        body: Bytes::from(body.to_owned()),
    }
}

fn issue(text: &str) -> IssueRef {
    text.parse().unwrap()
}

/// Runs `check` against every available backend.
macro_rules! each_store {
    (|$store:ident, $name:ident| $body:block) => {
        for test_store in stores::all().await {
            let $name = test_store.name;
            let $store = Store::open(&test_store.url).await.unwrap();
            $body
            $store.close().await;
        }
    };
}

#[tokio::test]
async fn deliveries_are_stored_once_and_claimed_in_arrival_order() {
    each_store!(|store, name| {
        for n in 0..5 {
            let outcome = store
                .record_delivery(delivery(&format!("d-{n}"), &format!("{{\"n\":{n}}}")))
                .await
                .unwrap();
            assert_eq!(outcome, RecordOutcome::New, "{name}");
        }
        let again = store.record_delivery(delivery("d-2", "{}")).await.unwrap();
        assert_eq!(again, RecordOutcome::Duplicate, "{name}");
        assert_eq!(store.delivery_count().await.unwrap(), 5, "{name}");

        let claimed = store.claim_deliveries(3, T0, 60_000).await.unwrap();
        let ids: Vec<_> = claimed.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["d-0", "d-1", "d-2"], "{name}");
        assert_eq!(
            claimed[1].body, b"{\"n\":1}",
            "{name}: the body comes back whole"
        );
        // Claimed ones are leased: the next claim gets the rest.
        let rest: Vec<_> = store
            .claim_deliveries(10, T0, 60_000)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(rest, ["d-3", "d-4"], "{name}");
        // After the lease, an unfinished claim can be taken again.
        let retaken = store
            .claim_deliveries(10, T0 + 60_000, 60_000)
            .await
            .unwrap();
        assert_eq!(retaken.len(), 5, "{name}");

        let outcomes = vec![
            (retaken[0].seq, DeliveryOutcome::Processed),
            (retaken[1].seq, DeliveryOutcome::Ignored),
            (
                retaken[2].seq,
                DeliveryOutcome::Retry {
                    error: "GitHub 502".into(),
                    next_attempt_at: T0 + 120_000,
                },
            ),
            (
                retaken[3].seq,
                DeliveryOutcome::Failed {
                    error: "poison".into(),
                },
            ),
        ];
        store
            .finish_deliveries(&outcomes, T0 + 61_000)
            .await
            .unwrap();
        let record = |id: &str| {
            let store = store.clone();
            let id = id.parse().unwrap();
            async move { store.delivery(&id).await.unwrap().unwrap() }
        };
        assert_eq!(
            record("d-0").await.state,
            DeliveryState::Processed,
            "{name}"
        );
        assert_eq!(record("d-1").await.state, DeliveryState::Ignored, "{name}");
        let retried = record("d-2").await;
        assert_eq!(
            (
                retried.state,
                retried.attempts,
                retried.last_error.as_deref()
            ),
            (DeliveryState::Pending, 1, Some("GitHub 502")),
            "{name}"
        );
        assert_eq!(record("d-3").await.state, DeliveryState::Failed, "{name}");
        let counts = store.inbox_counts().await.unwrap();
        assert_eq!(
            (counts.pending, counts.failed, counts.oldest_pending_at),
            (2, 1, Some(T0)),
            "{name}"
        );
        // The retry waits for its time.
        let due: Vec<_> = store
            .claim_deliveries(10, T0 + 200_000, 60_000)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(due, ["d-2", "d-4"], "{name}");
    });
}

#[tokio::test]
async fn concurrent_claimers_never_get_the_same_delivery() {
    each_store!(|store, name| {
        for n in 0..200 {
            store
                .record_delivery(delivery(&format!("c-{n}"), "{}"))
                .await
                .unwrap();
        }
        let claim = |store: Store| async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_deliveries(7, T0, 600_000).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|d| d.id));
            }
        };
        let (a, b, c) = tokio::join!(
            claim(store.clone()),
            claim(store.clone()),
            claim(store.clone())
        );
        let all: Vec<String> = a.iter().chain(&b).chain(&c).cloned().collect();
        let unique: BTreeSet<&String> = all.iter().collect();
        assert_eq!(
            (all.len(), unique.len()),
            (200, 200),
            "{name}: every delivery claimed once"
        );
    });
}

#[tokio::test]
async fn a_run_attempt_is_recorded_once_whoever_asks() {
    each_store!(|store, name| {
        let target = issue("Acme/API#7");
        let mut attempts = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = store.clone();
            let target = target.clone();
            attempts.spawn(async move {
                store
                    .begin_launch(InstallationId(42), &target, 1, "prompt", T0, 1000)
                    .await
                    .unwrap()
            });
        }
        let holders = attempts.join_all().await;
        assert_eq!(holders.iter().filter(|h| h.is_some()).count(), 1, "{name}");
        // The same attempt under another spelling of the repository is the same row.
        assert!(
            store
                .begin_launch(InstallationId(42), &issue("acme/api#7"), 1, "p", T0, 1000)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        let row = holders.into_iter().flatten().next().unwrap();
        assert_eq!(
            (row.state, row.attempt, row.prompt.as_str()),
            (RunState::Launching, 1, "prompt"),
            "{name}"
        );

        // Within the lease it is not stale; after it, one taker wins.
        assert!(
            store.stale_launches(T0 + 500).await.unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(
            store.stale_launches(T0 + 1001).await.unwrap().len(),
            1,
            "{name}"
        );
        assert!(
            store
                .take_over_launch(row.row, T0 + 1001, 1000)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !store
                .take_over_launch(row.row, T0 + 1001, 1000)
                .await
                .unwrap(),
            "{name}"
        );

        assert!(
            store
                .record_started(
                    row.row,
                    RunId(555),
                    Some("https://codegen.com/agent/trace/555"),
                    T0 + 2000
                )
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !store
                .record_started(row.row, RunId(556), None, T0 + 2000)
                .await
                .unwrap(),
            "{name}: only once"
        );
        let running = store.running_runs().await.unwrap();
        assert_eq!(running[0].run_id, Some(RunId(555)), "{name}");
        let ending = RunEnding {
            state: RunState::Succeeded,
            failure: None,
            summary: Some("done".into()),
            pull_requests: vec!["https://github.com/acme/api/pull/8".into()],
        };
        assert!(
            store
                .record_ended(row.row, &ending, T0 + 3000)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !store
                .record_ended(row.row, &ending, T0 + 4000)
                .await
                .unwrap(),
            "{name}: ended once"
        );
        let runs = store.runs_of(&target).await.unwrap();
        assert_eq!(runs[0].state, RunState::Succeeded, "{name}");
        assert_eq!(
            runs[0].pull_requests,
            ["https://github.com/acme/api/pull/8"],
            "{name}"
        );
        assert_eq!(
            (runs[0].started_at, runs[0].finished_at),
            (Some(T0 + 2000), Some(T0 + 3000)),
            "{name}"
        );

        // A quota refusal gives the attempt back.
        let second = store
            .begin_launch(InstallationId(42), &target, 2, "p", T0, 1000)
            .await
            .unwrap()
            .unwrap();
        store.abandon_launch(second.row).await.unwrap();
        assert!(
            store
                .begin_launch(InstallationId(42), &target, 2, "p", T0, 1000)
                .await
                .unwrap()
                .is_some(),
            "{name}"
        );
        assert_eq!(store.all_runs().await.unwrap().len(), 2, "{name}");
    });
}

#[tokio::test]
async fn issues_status_comments_settings_and_job_locks() {
    each_store!(|store, name| {
        store
            .save_issue(InstallationId(42), &issue("acme/api#1"), "{\"a\":1}", T0)
            .await
            .unwrap();
        store
            .save_issue(InstallationId(42), &issue("Acme/Api#1"), "{\"a\":2}", T0)
            .await
            .unwrap();
        store
            .save_issue(InstallationId(42), &issue("acme/web#2"), "{}", T0)
            .await
            .unwrap();
        let saved = store.issues().await.unwrap();
        assert_eq!(
            saved.len(),
            2,
            "{name}: one row per issue, whatever the case"
        );
        assert!(
            saved.iter().any(|(_, _, data)| data == "{\"a\":2}"),
            "{name}"
        );
        store.delete_issue(&issue("acme/web#2")).await.unwrap();
        assert_eq!(store.issues().await.unwrap().len(), 1, "{name}");

        let target = issue("acme/api#1");
        assert!(
            store.claim_status_comment(&target, T0, 1000).await.unwrap(),
            "{name}"
        );
        assert!(
            !store
                .claim_status_comment(&target, T0 + 10, 1000)
                .await
                .unwrap(),
            "{name}: claimed"
        );
        assert!(
            store
                .claim_status_comment(&target, T0 + 2000, 1000)
                .await
                .unwrap(),
            "{name}: the lease ran out"
        );
        store
            .record_status_comment(&target, 99, "hash")
            .await
            .unwrap();
        assert!(
            !store
                .claim_status_comment(&target, T0 + 9000, 1000)
                .await
                .unwrap(),
            "{name}: it exists"
        );
        let comment = store.status_comment(&target).await.unwrap().unwrap();
        assert_eq!(
            (comment.comment_id, comment.body_hash.as_deref()),
            (Some(99), Some("hash")),
            "{name}"
        );

        store
            .set_setting("paused:acme/api", Some("maintainer"))
            .await
            .unwrap();
        store
            .set_setting("paused:acme/web", Some("x"))
            .await
            .unwrap();
        store.set_setting("other", Some("y")).await.unwrap();
        store.set_setting("paused:acme/web", None).await.unwrap();
        assert_eq!(
            store.settings_with_prefix("paused:").await.unwrap(),
            [("paused:acme/api".to_owned(), "maintainer".to_owned())],
            "{name}"
        );
        assert_eq!(
            store.setting("other").await.unwrap().as_deref(),
            Some("y"),
            "{name}"
        );

        let first = store.try_job_lock("bot").await.unwrap();
        assert!(first.is_some(), "{name}");
        let second = store.try_job_lock("bot").await.unwrap();
        if store.is_shared() {
            assert!(second.is_none(), "{name}: held by the first");
            first.unwrap().release().await;
            assert!(
                store.try_job_lock("bot").await.unwrap().is_some(),
                "{name}: released on drop"
            );
        } else {
            assert!(second.is_some(), "{name}: one process holds every lock");
        }
    });
}
