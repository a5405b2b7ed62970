//! The inbox: stored once, claimed in arrival order under a lease, finished with an outcome.

use std::collections::BTreeSet;

use codegen_orchestrator::domain::InstallationId;
use codegen_orchestrator::store::{DeliveryOutcome, DeliveryState, RecordOutcome, Store};

use crate::{T0, delivery};

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

        let due = |only: Option<&'static [InstallationId]>, at: i64| {
            let store = store.clone();
            async move { store.deliveries_due(at, only).await.unwrap() }
        };
        assert!(due(None, T0).await, "{name}: five are due");
        assert!(
            !due(Some(&[]), T0).await,
            "{name}: of no installation, none"
        );
        assert!(due(Some(&[InstallationId(42)]), T0).await, "{name}");
        assert!(
            !due(Some(&[InstallationId(7)]), T0).await,
            "{name}: another's"
        );

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
        assert!(!due(None, T0).await, "{name}: all claimed, none free");
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
