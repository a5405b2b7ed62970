//! Client-side rate limits: Codegen documents 10 run creations a minute and 60 reads per
//! 30 seconds per token, and answers 429 beyond them. Staying under the limit is cheaper
//! than backing off after hitting it.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// At most `max` admissions in any `window`: a sliding log of recent admissions.
#[derive(Debug)]
pub struct SlidingWindow {
    max: usize,
    window: Duration,
    admitted: Mutex<VecDeque<Instant>>,
}

impl SlidingWindow {
    /// A limiter of `max` admissions per `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max: max.max(1),
            window,
            admitted: Mutex::new(VecDeque::with_capacity(max)),
        }
    }

    /// Waits until one more request fits in the window, then counts it. Callers queue on
    /// the lock, so they are admitted in arrival order.
    pub async fn admit(&self) {
        let mut admitted = self.admitted.lock().await;
        loop {
            let now = Instant::now();
            while admitted
                .front()
                .is_some_and(|&at| now.duration_since(at) >= self.window)
            {
                admitted.pop_front();
            }
            if admitted.len() < self.max {
                admitted.push_back(now);
                return;
            }
            let oldest = *admitted.front().expect("the window is full, so not empty");
            tokio::time::sleep_until(oldest + self.window).await;
        }
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
            limiter.admit().await;
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
}
