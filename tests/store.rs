//! The store API, the same suite against SQLite and PostgreSQL: the inbox (redelivery,
//! claims in arrival order, leases, concurrent claimers), run rows (exactly once, leases,
//! endings), issues, status comments, settings and job locks; retention (old deliveries
//! pruned, failed ones kept longer, two replicas pruning at once) and, on SQLite, a WAL
//! that stays bounded over a long run.

mod support;

use std::collections::BTreeSet;

use bytes::Bytes;
use codegen_orchestrator::domain::{InstallationId, IssueRef, RunId};
use codegen_orchestrator::store::{
    DeliveryOutcome, DeliveryState, NewDelivery, RecordOutcome, Retention, RunEnding, RunState,
    Store,
};
use sqlx::Connection;
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

const DAY: i64 = 24 * 60 * 60 * 1000;

/// Rows of `delivery_bodies`, read beside the store: a pruned delivery must take its body.
async fn stored_bodies(url: &str) -> i64 {
    let count = "SELECT count(*) FROM delivery_bodies";
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

/// Stores `count` deliveries of `body` from 16 concurrent callers, as the door does under
/// load; returns how long each store took.
async fn store_concurrently(
    store: &Store,
    prefix: &str,
    count: usize,
    body: &Bytes,
) -> Vec<std::time::Duration> {
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (store, body, prefix) = (store.clone(), body.clone(), prefix.to_owned());
        senders.spawn(async move {
            let mut took = Vec::new();
            for n in (worker..count).step_by(16) {
                let mut new = delivery(&format!("{prefix}-{n}"), "");
                new.body = body.clone();
                let asked = std::time::Instant::now();
                store.record_delivery(new).await.unwrap();
                took.push(asked.elapsed());
            }
            took
        });
    }
    let mut took: Vec<_> = senders.join_all().await.into_iter().flatten().collect();
    took.sort();
    took
}

/// Claims and finishes deliveries as the processor does until `count` are done.
async fn process(store: Store, count: usize, ended_at: i64) {
    let mut finished = 0;
    while finished < count {
        let claimed = store.claim_deliveries(100, ended_at, 60_000).await.unwrap();
        if claimed.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        }
        finished += claimed.len();
        let outcomes: Vec<_> = claimed
            .iter()
            .map(|d| (d.seq, DeliveryOutcome::Processed))
            .collect();
        store.finish_deliveries(&outcomes, ended_at).await.unwrap();
    }
}

/// "p50 a ms, p99 b ms, max c ms" of sorted durations.
fn spread(sorted: &[std::time::Duration]) -> String {
    let ms = |q: f64| {
        let index = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
        sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(0.5),
        ms(0.99),
        ms(1.0)
    )
}

/// A real 14 KB payload.
fn real_body() -> Bytes {
    Bytes::from(support::fixture(
        "issues/labeled.with-organization.payload.json",
    ))
}

/// Thousands of real-sized deliveries stored by 16 concurrent callers while a processor
/// claims and finishes them: the SQLite WAL file stays under 48 MiB throughout and is at
/// most 16 MiB once the writes stop. `WAL_DELIVERIES` sets the count (default 6,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_over_a_long_run() {
    const MIB: u64 = 1024 * 1024;
    let deliveries: usize = std::env::var("WAL_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let wal = dir.path().join("store.db-wal");
    let wal_size = move || std::fs::metadata(&wal).map_or(0, |meta| meta.len());
    let body = real_body();
    let started = std::time::Instant::now();

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (done, wal_size) = (done.clone(), wal_size.clone());
        tokio::spawn(async move {
            let mut largest = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                largest = largest.max(wal_size());
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            largest
        })
    };
    let processor = tokio::spawn(process(store.clone(), deliveries, T0));
    let took = store_concurrently(&store, "w", deliveries, &body).await;
    processor.await.unwrap();
    let elapsed = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let largest = sampler.await.unwrap();
    // Once writes stop, the next checkpoint ticks bring the file within its limit.
    let quiet = std::time::Instant::now();
    while wal_size() > 16 * MIB && quiet.elapsed() < std::time::Duration::from_secs(5) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let after = wal_size();
    let database = std::fs::metadata(&path).unwrap().len();
    println!(
        "{deliveries} deliveries of {} bytes stored and processed in {:.1} s: WAL at most \
         {:.1} MiB, {:.1} MiB after {} ms quiet; database {:.1} MiB; storing took {}",
        body.len(),
        elapsed.as_secs_f64(),
        largest as f64 / MIB as f64,
        after as f64 / MIB as f64,
        quiet.elapsed().as_millis(),
        database as f64 / MIB as f64,
        spread(&took),
    );
    assert!(largest < 48 * MIB, "the WAL reached {largest} bytes");
    assert!(after <= 16 * MIB, "the WAL stayed at {after} bytes");
    store.close().await;
}

/// Stores deliveries of `body` from 16 concurrent callers until `done` turns true; returns
/// how long each store took.
async fn store_until(
    store: &Store,
    prefix: &str,
    body: &Bytes,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::time::Duration> {
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (store, body, done) = (store.clone(), body.clone(), done.clone());
        let prefix = format!("{prefix}-{worker}");
        senders.spawn(async move {
            let mut took = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let mut new = delivery(&format!("{prefix}-{}", took.len()), "");
                new.body = body.clone();
                let asked = std::time::Instant::now();
                store.record_delivery(new).await.unwrap();
                took.push(asked.elapsed());
            }
            took
        });
    }
    let mut took: Vec<_> = senders.join_all().await.into_iter().flatten().collect();
    took.sort();
    took
}

/// What pruning costs and what the door feels of it: old deliveries with real bodies are
/// pruned as the app does (batches 100 ms apart) while 16 callers store new ones.
/// Prints the time per batch and the store latency without and with the pruner beside it.
/// `PRUNE_DELIVERIES` sets how many old deliveries there are (default 3,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_in_batches_leaves_the_door_responsive() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let old: usize = std::env::var("PRUNE_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    // The app's batch (src/runtime.rs); `PRUNE_BATCH` tries another.
    let batch: u32 = std::env::var("PRUNE_BATCH")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let body = real_body();
    for test_store in stores::all().await {
        let name = test_store.name;
        let store = Store::open(&test_store.url).await.unwrap();
        let now = T0 + 100 * DAY;
        store_concurrently(&store, "old", old, &body).await;
        process(store.clone(), old, now - 20 * DAY).await;

        // The door alone for two seconds, then the door while the pruner runs; both after
        // the checkpoints of the writes above settled.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let done = Arc::new(AtomicBool::new(false));
        let door = tokio::spawn({
            let (store, body, done) = (store.clone(), body.clone(), done.clone());
            async move { store_until(&store, "alone", &body, done).await }
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        done.store(true, Ordering::Relaxed);
        let alone = door.await.unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let door = tokio::spawn({
            let (store, body, done) = (store.clone(), body.clone(), done.clone());
            async move { store_until(&store, "beside", &body, done).await }
        });
        let retention = Retention::days(14, 60);
        let (mut batches, mut deleted) = (Vec::new(), 0);
        let started = Instant::now();
        loop {
            let asked = Instant::now();
            let n = store.prune_deliveries(retention, now, batch).await.unwrap();
            batches.push(asked.elapsed());
            deleted += n;
            if n < u64::from(batch) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let took = started.elapsed();
        done.store(true, Ordering::Relaxed);
        let beside = door.await.unwrap();
        batches.sort();
        assert_eq!(deleted, old as u64, "{name}");
        assert_eq!(
            store.delivery_count().await.unwrap(),
            (alone.len() + beside.len()) as u64,
            "{name}: the new ones (pending) stay"
        );
        println!(
            "{name}: pruned {deleted} deliveries in {:.2} s ({} batches of {batch}: {}); storing \
             alone {} ({} stored); beside the pruner {} ({} stored)",
            took.as_secs_f64(),
            batches.len(),
            spread(&batches),
            spread(&alone),
            alone.len(),
            spread(&beside),
            beside.len(),
        );
        store.close().await;
    }
}
