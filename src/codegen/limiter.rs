//! Client-side rate limits: Codegen documents 10 run creations a minute and 60 reads per
//! 30 seconds per token, and answers 429 beyond them. Staying under the limit is cheaper
//! than backing off after hitting it.
//!
//! Codegen counts a request when it arrives, which is some time after it left: a request
//! that waits for a new connection can arrive later than the ones sent after it. Counting
//! a request from when it was sent therefore lets the server see one too many in a window
//! (61 reads within 30 s were seen in a busy window). So a request holds its place in the
//! window from the moment it is admitted until its answer is in, and the window is counted
//! from the answer: by then the server has certainly counted it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// At most `max` requests in any `window` as the server sees them: a sliding log of
/// finished requests plus the ones still in flight.
#[derive(Debug)]
pub struct SlidingWindow {
    max: usize,
    window: Duration,
    log: Arc<Log>,
    /// Callers queue here, so they are admitted in arrival order.
    queue: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Log {
    counts: Mutex<Counts>,
    /// Signalled when an in-flight request finishes.
    finished: Notify,
}

#[derive(Debug, Default)]
struct Counts {
    /// When each recent request finished, oldest first.
    finished: VecDeque<Instant>,
    in_flight: usize,
}

/// A place in the window, held while the request is in flight. Dropping it (answer in,
/// error or cancellation alike) starts the place's time in the window.
#[derive(Debug)]
#[must_use = "the place is given back when the permit is dropped"]
pub struct Permit {
    log: Arc<Log>,
}

impl SlidingWindow {
    /// A limiter of `max` requests per `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max: max.max(1),
            window,
            log: Arc::new(Log::default()),
            queue: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits until one more request fits in the window, then holds a place for it until the
    /// returned permit is dropped.
    pub async fn admit(&self) -> Permit {
        let _turn = self.queue.lock().await;
        loop {
            // Registered before the check, so a request finishing in between still wakes us.
            let finished = self.log.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let wait_until = {
                let mut counts = self.log.counts();
                let now = Instant::now();
                while counts
                    .finished
                    .front()
                    .is_some_and(|&at| now.duration_since(at) >= self.window)
                {
                    counts.finished.pop_front();
                }
                if counts.finished.len() + counts.in_flight < self.max {
                    counts.in_flight += 1;
                    return Permit {
                        log: self.log.clone(),
                    };
                }
                counts.finished.front().map(|&oldest| oldest + self.window)
            };
            match wait_until {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut finished => {}
                    }
                }
                // Every place is in flight: the first answer frees the next one's clock.
                None => finished.await,
            }
        }
    }
}

impl Log {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent under a panic elsewhere: each change is one statement.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        {
            let mut counts = self.log.counts();
            counts.in_flight = counts.in_flight.saturating_sub(1);
            counts.finished.push_back(Instant::now());
        }
        self.log.finished.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_window_ever_holds_more_than_the_limit() {
        let limiter = SlidingWindow::new(10, Duration::from_secs(60));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..25 {
            drop(limiter.admit().await);
            times.push(start.elapsed());
        }
        // 10 at once, 10 more a minute later, the last 5 after two minutes.
        assert_eq!(times[9], Duration::ZERO);
        assert_eq!(times[10], Duration::from_secs(60));
        assert_eq!(times[24], Duration::from_secs(120));
        for (i, &t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|&&u| u < t + Duration::from_secs(60))
                .count();
            assert!(
                in_window <= 10,
                "{in_window} admissions within a minute of {t:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_request_holds_its_place_until_its_answer_plus_the_window() {
        let limiter = Arc::new(SlidingWindow::new(2, Duration::from_secs(30)));
        let start = Instant::now();
        // The first request takes 5 s to be answered; the second is answered at once.
        let slow = limiter.admit().await;
        drop(limiter.admit().await);
        let waiting = tokio::spawn({
            let limiter = limiter.clone();
            async move {
                let admitted = limiter.admit().await;
                drop(admitted);
                start.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(slow);
        // The third goes when the quick one's window ends (30 s), not the slow one's send.
        assert_eq!(waiting.await.unwrap(), Duration::from_secs(30));
        // The fourth waits for the slow one: answered at 5 s, so free at 35 s.
        drop(limiter.admit().await);
        assert_eq!(start.elapsed(), Duration::from_secs(35));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_window_of_requests_in_flight_waits_for_an_answer() {
        let limiter = Arc::new(SlidingWindow::new(1, Duration::from_secs(1)));
        let start = Instant::now();
        let in_flight = limiter.admit().await;
        let next = tokio::spawn({
            let limiter = limiter.clone();
            async move {
                drop(limiter.admit().await);
                start.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(in_flight);
        assert_eq!(next.await.unwrap(), Duration::from_secs(11));
    }
}
