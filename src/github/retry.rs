//! The one place GitHub requests are retried. Every response is judged by [`verdict`]:
//! accept it, fail for good, or try again after a given wait.
//!
//! - Primary rate limit exhausted (403/429 with `x-ratelimit-remaining: 0`): wait until
//!   `x-ratelimit-reset`.
//! - Secondary rate limit (403/429 with `retry-after`, or a message saying "secondary rate
//!   limit"): wait `retry-after` seconds, else at least 60 s, growing with each attempt.
//! - 5xx and transport errors: exponential backoff with jitter, capped.
//! - Any other 4xx: never retried.
//!
//! Attempts are bounded; octocrab's own retry is compiled out, so nothing retries twice.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff delay; doubles per attempt.
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Least wait after a secondary rate limit without `retry-after`.
    pub secondary_wait: Duration,
    /// Longest wait the client accepts for any one retry (a reset further away fails).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            secondary_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(3600),
        }
    }
}

/// What to do with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Use it (success, or an error the caller must see).
    Accept,
    /// Ask again after this long.
    RetryAfter(Duration),
}

/// Judges an HTTP answer after `attempt` attempts (1 for the first); `now` is unix seconds.
pub fn verdict(
    policy: &RetryPolicy,
    attempt: u32,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: u64,
) -> Verdict {
    if attempt >= policy.max_attempts {
        return Verdict::Accept;
    }
    let graphql_limited = status == StatusCode::OK && graphql_rate_limited(body);
    let wait = if status == StatusCode::FORBIDDEN
        || status == StatusCode::TOO_MANY_REQUESTS
        || graphql_limited
    {
        match rate_limit_wait(policy, attempt, headers, body, now) {
            Some(wait) => wait,
            None => return Verdict::Accept, // a real permission problem
        }
    } else if status.is_server_error() {
        backoff(policy, attempt)
    } else {
        return Verdict::Accept;
    };
    if wait > policy.max_wait {
        Verdict::Accept
    } else {
        Verdict::RetryAfter(wait)
    }
}

/// GraphQL reports an exhausted limit as `200` with an error of type `RATE_LIMITED`. The
/// raw text is searched: inside a JSON string a quote is escaped, so issue text cannot
/// forge this.
fn graphql_rate_limited(body: &[u8]) -> bool {
    const NEEDLE: &[u8] = br#""type":"RATE_LIMITED""#;
    body.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// The wait after a transport error (no answer at all), or `None` when attempts are spent.
pub fn transport_retry(policy: &RetryPolicy, attempt: u32) -> Option<Duration> {
    (attempt < policy.max_attempts).then(|| backoff(policy, attempt))
}

fn rate_limit_wait(
    policy: &RetryPolicy,
    attempt: u32,
    headers: &HeaderMap,
    body: &[u8],
    now: u64,
) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())?;
        // One second of margin: GitHub's clock and ours are not the same clock.
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    let message = String::from_utf8_lossy(body).to_ascii_lowercase();
    if message.contains("secondary rate limit")
        || message.contains("abuse")
        || graphql_rate_limited(body)
    {
        return Some(policy.secondary_wait.max(backoff(policy, attempt)));
    }
    None
}

/// `base * 2^(attempt-1)`, capped, with up to 25 % jitter so that clients spread out.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exponential = policy
        .base_delay
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(policy.max_delay);
    let jitter = exponential.mul_f64(fastrand::f64() * 0.25);
    exponential + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    const NOW: u64 = 1_800_000_000;

    fn judge(status: u16, pairs: &[(&'static str, &str)], body: &str, attempt: u32) -> Verdict {
        verdict(
            &RetryPolicy::default(),
            attempt,
            StatusCode::from_u16(status).unwrap(),
            &headers(pairs),
            body.as_bytes(),
            NOW,
        )
    }

    fn waits(verdict: Verdict) -> Duration {
        match verdict {
            Verdict::RetryAfter(wait) => wait,
            Verdict::Accept => panic!("not retried"),
        }
    }

    #[test]
    fn successes_and_ordinary_client_errors_are_not_retried() {
        for status in [200, 201, 204, 304, 400, 401, 404, 410, 422] {
            assert_eq!(judge(status, &[], "{}", 1), Verdict::Accept, "{status}");
        }
        assert_eq!(
            judge(
                403,
                &[],
                r#"{"message":"Resource not accessible by integration"}"#,
                1
            ),
            Verdict::Accept
        );
    }

    #[test]
    fn retry_after_is_honoured() {
        assert_eq!(
            waits(judge(403, &[("retry-after", "3")], "{}", 1)),
            Duration::from_secs(3)
        );
        assert_eq!(
            waits(judge(429, &[("retry-after", "17")], "{}", 2)),
            Duration::from_secs(17)
        );
    }

    #[test]
    fn an_exhausted_primary_limit_waits_until_reset() {
        let reset = (NOW + 42).to_string();
        let wait = waits(judge(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
            "{}",
            1,
        ));
        assert_eq!(wait, Duration::from_secs(43));
    }

    #[test]
    fn a_secondary_limit_without_retry_after_waits_at_least_a_minute() {
        let body =
            r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes"}"#;
        assert!(waits(judge(403, &[], body, 1)) >= Duration::from_secs(60));
    }

    #[test]
    fn server_errors_back_off_exponentially_with_a_cap() {
        let first = waits(judge(502, &[], "", 1));
        let third = waits(judge(502, &[], "", 3));
        assert!(
            first >= Duration::from_secs(1) && first <= Duration::from_millis(1250),
            "{first:?}"
        );
        assert!(
            third >= Duration::from_secs(4) && third <= Duration::from_secs(5),
            "{third:?}"
        );
        let late = waits(judge(503, &[], "", 4));
        assert!(late <= Duration::from_secs(10));
    }

    #[test]
    fn a_graphql_rate_limit_waits_until_reset() {
        let body = r#"{"data":null,"errors":[{"type":"RATE_LIMITED","message":"API rate limit exceeded"}]}"#;
        let reset = (NOW + 30).to_string();
        let wait = waits(judge(
            200,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
            body,
            1,
        ));
        assert_eq!(wait, Duration::from_secs(31));
        // Issue text quoting the error is escaped inside JSON and does not count.
        let quoted = r#"{"data":{"body":"\"type\":\"RATE_LIMITED\""}}"#;
        assert_eq!(judge(200, &[], quoted, 1), Verdict::Accept);
    }

    #[test]
    fn attempts_are_bounded() {
        assert_eq!(judge(502, &[], "", 5), Verdict::Accept);
        assert_eq!(transport_retry(&RetryPolicy::default(), 5), None);
        assert!(transport_retry(&RetryPolicy::default(), 1).is_some());
    }

    #[test]
    fn a_reset_beyond_the_longest_wait_fails_instead_of_hanging() {
        let reset = (NOW + 7200).to_string();
        let verdict = judge(
            429,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
            "{}",
            1,
        );
        assert_eq!(verdict, Verdict::Accept);
    }
}
