//! Under load: the SQLite WAL stays bounded, and pruning in batches leaves the door
//! responsive. Both print what they measured (`-- --nocapture`).

use bytes::Bytes;
use codegen_orchestrator::store::{DeliveryOutcome, Retention, Store};

use crate::support::{self, stores};
use crate::{DAY, T0, delivery};

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

/// The most deliveries `store_until` stores in one phase.
const STORE_UNTIL_CAP: usize = 4_000;

/// Stores deliveries of `body` from 16 concurrent callers until `done` turns true (or
/// `STORE_UNTIL_CAP` are stored); returns how long each store took.
async fn store_until(
    store: &Store,
    prefix: &str,
    body: &Bytes,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::time::Duration> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A cap, so that a fast machine does not fill its disk: at most STORE_UNTIL_CAP
    // deliveries of 14 KB each per phase (about 56 MB), however long the phase lasts.
    let stored = std::sync::Arc::new(AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (store, body, done) = (store.clone(), body.clone(), done.clone());
        let stored = stored.clone();
        let prefix = format!("{prefix}-{worker}");
        senders.spawn(async move {
            let mut took = Vec::new();
            while !done.load(Ordering::Relaxed)
                && stored.fetch_add(1, Ordering::Relaxed) < STORE_UNTIL_CAP
            {
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
