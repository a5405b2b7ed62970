//! Retention: finished deliveries and outbox entries pruned after their days, failed ones
//! kept longer, pending ones never; two replicas pruning at once.

use codegen_orchestrator::domain::InstallationId;
use codegen_orchestrator::store::{
    DeliveryOutcome, DeliveryState, RecordOutcome, Retention, Store,
};
use sqlx::Connection;

use crate::outbox::deciding;
use crate::support::stores;
use crate::{DAY, T0, delivery};

/// Rows of `delivery_bodies`, read beside the store: a pruned delivery must take its body.
async fn stored_bodies(url: &str) -> i64 {
    rows_in(url, "SELECT count(*) FROM delivery_bodies").await
}

/// What `count` counts, read beside the store (which has no call that lists finished rows).
async fn rows_in(url: &str, count: &'static str) -> i64 {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(count)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(count)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

/// Stores `id` and ends it with `outcome` at `ended_at` (`None`: it stays pending).
async fn delivery_ended(store: &Store, id: &str, outcome: Option<DeliveryOutcome>, ended_at: i64) {
    store.record_delivery(delivery(id, "{}")).await.unwrap();
    let Some(outcome) = outcome else { return };
    let claimed = store.claim_deliveries(1, i64::MAX / 2, 1).await.unwrap();
    assert_eq!(claimed[0].id, id);
    store
        .finish_deliveries(&[(claimed[0].seq, outcome)], ended_at)
        .await
        .unwrap();
}

#[tokio::test]
async fn retention_prunes_old_deliveries_and_keeps_failed_ones() {
    for test_store in stores::all().await {
        let name = test_store.name;
        let store = Store::open(&test_store.url).await.unwrap();
        let now = T0 + 100 * DAY;
        let failed = || {
            Some(DeliveryOutcome::Failed {
                error: "poison".into(),
            })
        };
        delivery_ended(
            &store,
            "processed-old",
            Some(DeliveryOutcome::Processed),
            now - 15 * DAY,
        )
        .await;
        delivery_ended(
            &store,
            "ignored-old",
            Some(DeliveryOutcome::Ignored),
            now - 30 * DAY,
        )
        .await;
        delivery_ended(
            &store,
            "processed-new",
            Some(DeliveryOutcome::Processed),
            now - 13 * DAY,
        )
        .await;
        delivery_ended(&store, "failed-old", failed(), now - 30 * DAY).await;
        delivery_ended(&store, "failed-older", failed(), now - 61 * DAY).await;
        // Received long ago (stored last here only so that it is not claimed above) and
        // still waiting: never pruned.
        delivery_ended(&store, "pending-old", None, 0).await;
        assert_eq!(stored_bodies(&test_store.url).await, 6, "{name}");

        let retention = Retention::days(14, 60);
        // In batches: one, then the rest, then nothing.
        assert_eq!(
            store.prune_deliveries(retention, now, 1).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            store.prune_deliveries(retention, now, 10).await.unwrap(),
            2,
            "{name}"
        );
        assert_eq!(
            store.prune_deliveries(retention, now, 10).await.unwrap(),
            0,
            "{name}"
        );

        let kept = |id: &str| {
            let store = store.clone();
            let id = id.parse().unwrap();
            async move {
                store
                    .delivery(&id)
                    .await
                    .unwrap()
                    .map(|record| record.state)
            }
        };
        for gone in ["processed-old", "ignored-old", "failed-older"] {
            assert_eq!(kept(gone).await, None, "{name}: {gone} is pruned");
        }
        assert_eq!(
            kept("pending-old").await,
            Some(DeliveryState::Pending),
            "{name}"
        );
        assert_eq!(
            kept("processed-new").await,
            Some(DeliveryState::Processed),
            "{name}"
        );
        assert_eq!(
            kept("failed-old").await,
            Some(DeliveryState::Failed),
            "{name}"
        );
        assert_eq!(store.delivery_count().await.unwrap(), 3, "{name}");
        assert_eq!(
            stored_bodies(&test_store.url).await,
            3,
            "{name}: bodies go with their deliveries"
        );
        // A failed delivery stays visible in the inbox counts (and so in /metrics).
        let counts = store.inbox_counts().await.unwrap();
        assert_eq!((counts.pending, counts.failed), (1, 1), "{name}");
        // The pending one is still claimed as usual; the pruned ids are free again.
        let claimed = store.claim_deliveries(10, now, 1000).await.unwrap();
        assert_eq!(claimed.len(), 1, "{name}");
        assert_eq!(
            store
                .record_delivery(delivery("processed-old", "{}"))
                .await
                .unwrap(),
            RecordOutcome::New,
            "{name}"
        );
        println!(
            "{name}: 3 of 6 deliveries pruned; pending, recent and failed within 60 days kept"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn pruning_from_two_replicas_at_once_deletes_each_delivery_once() {
    const OLD: usize = 3000;
    for test_store in stores::all().await {
        let name = test_store.name;
        let first = Store::open(&test_store.url).await.unwrap();
        // A second replica has its own pool on the same PostgreSQL database; SQLite serves
        // one process, whose tasks share the store.
        let second = if first.is_shared() {
            Store::open(&test_store.url).await.unwrap()
        } else {
            first.clone()
        };
        let mut writers = tokio::task::JoinSet::new();
        for worker in 0..8 {
            let store = first.clone();
            writers.spawn(async move {
                for n in (worker..OLD + 10).step_by(8) {
                    store
                        .record_delivery(delivery(&format!("r-{n}"), "{\"a\":1}"))
                        .await
                        .unwrap();
                }
            });
        }
        writers.join_all().await;
        let now = T0 + 100 * DAY;
        loop {
            let claimed = first.claim_deliveries(500, now, 60_000).await.unwrap();
            if claimed.is_empty() {
                break;
            }
            // The first OLD arrived long ago; the last ten yesterday.
            let (old, new): (Vec<_>, Vec<_>) = claimed
                .iter()
                .partition(|d| d.id["r-".len()..].parse::<usize>().unwrap() < OLD);
            let ended = |list: Vec<&codegen_orchestrator::store::ClaimedDelivery>| {
                list.into_iter()
                    .map(|d| (d.seq, DeliveryOutcome::Processed))
                    .collect::<Vec<_>>()
            };
            first
                .finish_deliveries(&ended(old), now - 20 * DAY)
                .await
                .unwrap();
            first
                .finish_deliveries(&ended(new), now - DAY)
                .await
                .unwrap();
        }

        let retention = Retention::days(14, 60);
        let pause = std::time::Duration::ZERO;
        let (a, b) = tokio::join!(
            first.prune_expired(retention, now, 100, pause),
            second.prune_expired(retention, now, 100, pause)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(
            a + b,
            OLD as u64,
            "{name}: each old delivery deleted once ({a} + {b})"
        );
        assert_eq!(first.delivery_count().await.unwrap(), 10, "{name}");
        assert_eq!(stored_bodies(&test_store.url).await, 10, "{name}");
        println!(
            "{name}: two pruners deleted {a} + {b} of {OLD} old deliveries, kept the 10 recent ones"
        );
        first.close().await;
        second.close().await;
    }
}

#[tokio::test]
async fn effects_done_or_given_up_are_pruned_with_the_deliveries() {
    for test_store in stores::all().await {
        let name = test_store.name;
        let store = Store::open(&test_store.url).await.unwrap();
        let now = T0 + 100 * DAY;
        let names = [
            "done-old",
            "done-new",
            "failed-old",
            "failed-older",
            "pending-old",
        ];
        let ids = store.commit_step(&deciding(&names), T0).await.unwrap();
        for (id, done_at) in [(ids[0], now - 15 * DAY), (ids[1], now - 13 * DAY)] {
            let mut step = deciding(&[]);
            step.effects_done = vec![id];
            store.commit_step(&step, done_at).await.unwrap();
        }
        store
            .fail_effect(ids[2], "gone", now - 30 * DAY)
            .await
            .unwrap();
        store
            .fail_effect(ids[3], "gone", now - 61 * DAY)
            .await
            .unwrap();
        delivery_ended(
            &store,
            "processed-old",
            Some(DeliveryOutcome::Processed),
            now - 15 * DAY,
        )
        .await;

        // One row a batch, so that each table takes more than one.
        let retention = Retention::days(14, 60);
        let pause = std::time::Duration::ZERO;
        let pruned = store.prune_expired(retention, now, 1, pause).await.unwrap();
        assert_eq!(pruned, 3, "{name}: the delivery, done-old and failed-older");
        assert_eq!(store.delivery_count().await.unwrap(), 0, "{name}");
        assert_eq!(
            rows_in(&test_store.url, "SELECT count(*) FROM outbox").await,
            3,
            "{name}: done-new, failed-old and pending-old kept"
        );
        assert_eq!(store.outbox_counts().await.unwrap(), (1, 1), "{name}");
        let pending = store.pending_effects(10, now).await.unwrap();
        assert_eq!(
            (pending.len(), pending[0].installation),
            (1, InstallationId(42)),
            "{name}"
        );
        assert_eq!(pending[0].decision, "pending-old", "{name}: never pruned");
        assert_eq!(
            store.prune_effects(retention, now, 10).await.unwrap(),
            0,
            "{name}: nothing left to prune"
        );
        println!("{name}: 2 of 4 finished effects pruned with the old delivery; pending kept");
        store.close().await;
    }
}
