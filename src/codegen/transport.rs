//! One request to Codegen, and the client's one retry loop.
//!
//! Every request is a single try ([`Codegen::send`]) through one of the two limiters, and
//! every public call wraps exactly one [`Codegen::retrying`] around single tries: a call
//! made of several requests (a run creation that first looks for a lost one) is retried
//! as a whole by that loop, never by a loop of its own around retried requests.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method, Request, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::retry::{self, Failure};
use super::{Codegen, CodegenError, SlidingWindow};
use crate::network::{cause_of, host_of};

/// One successful answer, read whole.
pub(super) struct Answer {
    pub(super) body: Bytes,
}

impl Codegen {
    /// Runs `attempt` until it succeeds, fails for good, or `codegen.retry_attempts`
    /// retries are spent, waiting between tries as [`retry::wait_before`] says (the
    /// server's `Retry-After` first, else capped backoff with jitter).
    ///
    /// `attempt` is a plain closure returning a future rather than an async closure: a
    /// future from an async closure passed to a generic function is not known to be `Send`
    /// (rustc's higher-ranked `Send` limitation), and the runtime spawns these calls.
    pub(super) async fn retrying<T, Try>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> Try,
    ) -> Result<T, CodegenError>
    where
        Try: Future<Output = Result<T, Failure>>,
    {
        let mut tries: u32 = 0;
        loop {
            tries += 1;
            let mut failure = match attempt().await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            if let CodegenError::Unavailable { attempts, .. } = &mut failure.error {
                *attempts = tries;
            }
            let Some(wait) = retry::wait_before(&self.inner.tuning, tries, &failure) else {
                return Err(failure.error);
            };
            tracing::warn!(what, error = %failure.error, retry = tries,
                wait_secs = wait.as_secs_f64(), server_asked = failure.retry_after.is_some(),
                "Codegen request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// A retried request that is not a creation; a non-success answer is an error.
    pub(super) async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, CodegenError> {
        let what = format!("{method} {path}");
        self.retrying(&what, || {
            self.send(&self.inner.reads, method.clone(), path, body)
        })
        .await
    }

    /// One GET, no retry.
    pub(super) async fn read_once(&self, path: &str) -> Result<Answer, Failure> {
        self.send(&self.inner.reads, Method::GET, path, None).await
    }

    /// One request through `limiter`, no retry. Every request that is not a creation,
    /// whatever its endpoint, goes through the read limiter: Codegen documents 60 per 30 s
    /// for each reading endpoint and gives the ban and unban none of their own, so counting
    /// them too keeps any per-token count under the limit.
    pub(super) async fn send(
        &self,
        limiter: &SlidingWindow,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, Failure> {
        let permit = limiter.admit().await;
        let outcome = self.exchange(method, path, body).await;
        // The place counts from the answer; a backoff after it must not hold the place.
        drop(permit);
        let (status, headers, bytes) = outcome.map_err(Failure::unanswered)?;
        if status.is_success() {
            return Ok(Answer { body: bytes });
        }
        Err(retry::judge(status, &headers, &bytes, SystemTime::now()))
    }

    /// The exchange itself; `Err` only when no whole answer came.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(axum::http::StatusCode, HeaderMap, Bytes), CodegenError> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.inner.base))
            .header(header::AUTHORIZATION, self.inner.authorization.clone())
            .header(header::ACCEPT, "application/json");
        let bytes = match body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(
                    serde_json::to_vec(body).map_err(|e| CodegenError::Decode(e.to_string()))?,
                )
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(bytes)).map_err(|err| {
            CodegenError::Transport(format!("cannot build a Codegen request to {path}: {err}"))
        })?;
        let unreachable = |cause: &dyn std::fmt::Display| {
            CodegenError::Transport(format!(
                "cannot reach Codegen at {}: {cause} ({method} {path})",
                host_of(&self.inner.base)
            ))
        };
        let exchange = async {
            let response = self
                .inner
                .http
                .request(request)
                .await
                .map_err(|err| unreachable(&cause_of(&err)))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|err| unreachable(&cause_of(&err)))?
                .to_bytes();
            Ok((parts.status, parts.headers, body))
        };
        let timeout: Duration = self.inner.tuning.request_timeout;
        let answer = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                // Duration's Debug is plain: `60s`, `1.5s`.
                unreachable(&format!("no answer within {timeout:?}"))
            })??;
        crate::telemetry::record_codegen_call(method.as_str(), answer.0.as_u16());
        Ok(answer)
    }
}
