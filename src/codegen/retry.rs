//! How the client judges one unsuccessful try, and how long it waits before the next.
//! Pure: the loop that sleeps and asks again is `Codegen::retrying`, the only one.
//!
//! - 429 and 5xx are worth another try; so is no answer at all. A `Retry-After` on them
//!   (seconds or an HTTP date; Codegen does not document one, but proxies in front of it
//!   send it) is honoured as given, and one longer than `CodegenTuning::longest_wait` ends
//!   the tries at once: a launch should not sit on a slot that long.
//! - Without one, the wait doubles from `base_delay` up to `max_delay`, plus up to 25 %
//!   jitter so that replicas spread out.
//! - 402 (plan quota used up), 403, 404, 422 and every other answer are final.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, StatusCode, header};

use super::CodegenError;
use super::CodegenTuning;
use super::payload::ErrorBody;

/// One try that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// What went wrong.
    pub(super) error: CodegenError,
    /// The wait the server asked for (`Retry-After`).
    pub(super) retry_after: Option<Duration>,
    /// The request may have been carried out although no success came back: a 5xx (a
    /// gateway gave up while Codegen went on) or no answer at all. A 429 is not lost: the
    /// limit is checked before anything is done.
    pub(super) lost: bool,
}

impl From<CodegenError> for Failure {
    /// An error found on this side (an unreadable answer): final, nothing lost.
    fn from(error: CodegenError) -> Self {
        Self {
            error,
            retry_after: None,
            lost: false,
        }
    }
}

impl Failure {
    /// No answer came (refused, reset, timed out): the request may have arrived.
    pub(super) fn unanswered(error: CodegenError) -> Self {
        Self {
            error,
            retry_after: None,
            lost: true,
        }
    }
}

/// What an unsuccessful answer stands for; `now` reads an HTTP-date `Retry-After`.
pub(super) fn judge(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Failure {
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Failure {
            error: CodegenError::Unavailable {
                status: status.as_u16(),
                // The loop counts the tries; one answer knows only itself.
                attempts: 1,
            },
            retry_after: retry_after(headers, now),
            lost: status.is_server_error(),
        };
    }
    let message = ErrorBody::message_of(body)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let error = if status == StatusCode::PAYMENT_REQUIRED {
        CodegenError::QuotaExhausted { message }
    } else {
        CodegenError::Rejected {
            status: status.as_u16(),
            message,
        }
    };
    error.into()
}

/// How long to wait before retry number `retry` (1 for the first) after `failure`, or
/// `None` to stop: the error is final, the retries are spent, or the server asks for a
/// longer wait than the client accepts.
pub(super) fn wait_before(
    tuning: &CodegenTuning,
    retry: u32,
    failure: &Failure,
) -> Option<Duration> {
    if !failure.error.is_transient() || retry > tuning.retries {
        return None;
    }
    match failure.retry_after {
        Some(asked) if asked > tuning.longest_wait => None,
        Some(asked) => Some(asked),
        None => Some(backoff(tuning, retry)),
    }
}

/// `base * 2^(retry-1)`, capped at `max_delay`, plus up to 25 % jitter.
pub(super) fn backoff(tuning: &CodegenTuning, retry: u32) -> Duration {
    let exponential = tuning
        .base_delay
        .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
        .min(tuning.max_delay);
    exponential + exponential.mul_f64(fastrand::f64() * 0.25)
}

/// `Retry-After` as a wait: delta-seconds, or an HTTP date (a date already past is no
/// wait). Anything else is ignored.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // RFC 9110's IMF-fixdate is RFC 2822 with `GMT`, which chrono reads.
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
    const RFC_EXAMPLE: u64 = 784_111_777;

    fn at(unix: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    }

    fn answer(status: u16, retry_after: Option<&str>, body: &str) -> Failure {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(header::RETRY_AFTER, value.parse().unwrap());
        }
        judge(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body.as_bytes(),
            at(RFC_EXAMPLE),
        )
    }

    fn tuning() -> CodegenTuning {
        CodegenTuning {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            longest_wait: Duration::from_secs(300),
            ..CodegenTuning::documented(3)
        }
    }

    #[test]
    fn limits_and_server_errors_are_transient_and_only_server_errors_may_be_lost() {
        let limited = answer(429, None, "{}");
        assert_eq!(
            limited.error,
            CodegenError::Unavailable {
                status: 429,
                attempts: 1
            }
        );
        assert!(!limited.lost, "a 429 did nothing");
        for status in [500, 502, 503, 504] {
            let failure = answer(status, None, "<html>bad gateway</html>");
            assert!(failure.error.is_transient(), "{status}");
            assert!(failure.lost, "{status}");
        }
        assert!(Failure::unanswered(CodegenError::Transport("reset".into())).lost);
    }

    #[test]
    fn quota_and_refusals_are_final_with_the_message() {
        let quota = answer(402, None, r#"{"message":"billing plan reached"}"#);
        assert_eq!(
            quota.error,
            CodegenError::QuotaExhausted {
                message: "billing plan reached".into()
            }
        );
        for status in [403, 404, 422, 400] {
            let failure = answer(status, Some("1"), "not json");
            assert!(!failure.error.is_transient() && !failure.lost, "{status}");
            assert!(
                matches!(&failure.error, CodegenError::Rejected { status: s, message }
                    if *s == status && !message.is_empty()),
                "{failure:?}"
            );
            assert_eq!(wait_before(&tuning(), 1, &failure), None, "{status}");
        }
        assert_eq!(wait_before(&tuning(), 1, &quota), None);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date() {
        assert_eq!(
            answer(429, Some(" 17 "), "{}").retry_after,
            Some(Duration::from_secs(17))
        );
        assert_eq!(
            answer(503, Some("Sun, 06 Nov 1994 08:50:07 GMT"), "{}").retry_after,
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            answer(503, Some("Sun, 06 Nov 1994 08:40:00 GMT"), "{}").retry_after,
            Some(Duration::ZERO),
            "a date past is no wait"
        );
        assert_eq!(answer(429, Some("soon"), "{}").retry_after, None);
        assert_eq!(answer(429, Some("-3"), "{}").retry_after, None);
        assert_eq!(answer(429, None, "{}").retry_after, None);
    }

    #[test]
    fn the_server_s_wait_is_kept_exactly_unless_it_is_too_long() {
        let tuning = tuning();
        let asked = answer(429, Some("45"), "{}");
        for retry in 1..=3 {
            assert_eq!(
                wait_before(&tuning, retry, &asked),
                Some(Duration::from_secs(45))
            );
        }
        assert_eq!(
            wait_before(&tuning, 1, &answer(503, Some("300"), "{}")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            wait_before(&tuning, 1, &answer(429, Some("301"), "{}")),
            None,
            "longer than longest_wait: stop now"
        );
    }

    #[test]
    fn retries_stop_after_the_configured_number() {
        let tuning = tuning();
        let failure = answer(503, Some("1"), "{}");
        assert!(wait_before(&tuning, 3, &failure).is_some());
        assert_eq!(wait_before(&tuning, 4, &failure), None);
        let none = CodegenTuning {
            retries: 0,
            ..tuning
        };
        assert_eq!(wait_before(&none, 1, &failure), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let tuning = tuning();
        for (retry, base) in [(1, 2), (2, 4), (3, 8), (6, 60), (40, 60)] {
            let failure = answer(500, None, "{}");
            let always = CodegenTuning {
                retries: 100,
                ..tuning
            };
            for _ in 0..50 {
                let wait = wait_before(&always, retry, &failure).unwrap();
                let base = Duration::from_secs(base);
                assert!(
                    wait >= base && wait <= base.mul_f64(1.25),
                    "retry {retry}: {wait:?}"
                );
            }
        }
        // Jitter: the waits are not all the same.
        let waits: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff(&tuning, 1)).collect();
        assert!(waits.len() > 1);
    }
}
