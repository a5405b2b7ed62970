//! Keeps content-creating requests (comments, labels, reactions, links, mutations) under
//! GitHub's documented secondary limits, per installation: at most 80 a minute, 500 an hour,
//! and one at a time. Reads are not paced.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The pacer of one installation (or one token).
#[derive(Debug)]
pub struct Pacer {
    per_minute: usize,
    per_hour: usize,
    started: Mutex<VecDeque<Instant>>,
}

/// Permission to send one content-creating request; the next waits until it is dropped.
pub struct Admission<'p> {
    _one_at_a_time: MutexGuard<'p, VecDeque<Instant>>,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new(80, 500)
    }
}

impl Pacer {
    /// A pacer allowing `per_minute` and `per_hour` requests.
    pub fn new(per_minute: usize, per_hour: usize) -> Self {
        Self {
            per_minute: per_minute.max(1),
            per_hour: per_hour.max(1),
            started: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until one more request fits both windows and no other is in flight.
    pub async fn admit(&self) -> Admission<'_> {
        let mut started = self.started.lock().await;
        loop {
            let now = Instant::now();
            while started
                .front()
                .is_some_and(|t| now.duration_since(*t) >= HOUR)
            {
                started.pop_front();
            }
            let in_last_minute = started
                .iter()
                .rev()
                .take_while(|t| now.duration_since(**t) < MINUTE)
                .count();
            let minute_free = in_last_minute < self.per_minute;
            let hour_free = started.len() < self.per_hour;
            if minute_free && hour_free {
                started.push_back(now);
                return Admission {
                    _one_at_a_time: started,
                };
            }
            // Sleep until the oldest request that keeps a window full leaves it.
            let minute_wait =
                (!minute_free).then(|| started[started.len() - self.per_minute] + MINUTE);
            let hour_wait = (!hour_free).then(|| started[started.len() - self.per_hour] + HOUR);
            let until = minute_wait
                .into_iter()
                .chain(hour_wait)
                .max()
                .unwrap_or(now);
            tracing::debug!(
                wait_secs = until.duration_since(now).as_secs_f64(),
                "pacing writes to GitHub"
            );
            tokio::time::sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn admissions(pacer: &Pacer, count: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut at = Vec::with_capacity(count);
        for _ in 0..count {
            let _admission = pacer.admit().await;
            at.push(start.elapsed());
        }
        at
    }

    fn most_in_any_window(at: &[Duration], window: Duration) -> usize {
        (0..at.len())
            .map(|i| at[i..].iter().take_while(|t| **t - at[i] < window).count())
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn two_hundred_comments_stay_under_eighty_a_minute() {
        let at = admissions(&Pacer::default(), 200).await;
        assert!(most_in_any_window(&at, MINUTE) <= 80);
        // 80 at once, 80 a minute later, the last 40 after two minutes: no slower either.
        assert_eq!(at[79], Duration::ZERO);
        assert_eq!(at[80], MINUTE);
        assert_eq!(at[160], 2 * MINUTE);
        assert_eq!(at[199], 2 * MINUTE);
    }

    #[tokio::test(start_paused = true)]
    async fn the_hourly_limit_holds_too() {
        let at = admissions(&Pacer::new(80, 500), 600).await;
        assert!(most_in_any_window(&at, HOUR) <= 500);
        assert!(most_in_any_window(&at, MINUTE) <= 80);
        assert!(at[500] >= HOUR, "{:?}", at[500]);
    }

    #[tokio::test(start_paused = true)]
    async fn one_request_at_a_time() {
        let pacer = std::sync::Arc::new(Pacer::default());
        let first = pacer.admit().await;
        let other = pacer.clone();
        let waiting = tokio::spawn(async move {
            let _second = other.admit().await;
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            !waiting.is_finished(),
            "a second write went out while the first was in flight"
        );
        drop(first);
        waiting.await.unwrap();
    }
}
