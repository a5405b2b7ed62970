//! One request to GitHub and its answer: the standard headers, authentication, pacing,
//! retries, conditional GETs with `ETag`s, pagination and the metrics of every call.

use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LINK};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use octocrab::secrecy::ExposeSecret;
use octocrab::{OctoBody, Octocrab};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::retry::{self, Verdict};
use super::{ETAG_CACHE_LIMIT, GitHub, GithubError, TOKEN_RENEWAL_MARGIN};
use crate::network::cause_of;
use crate::telemetry::names;

impl GitHub {
    /// Sends one request, retrying as [`retry`] describes, and reads the whole answer.
    /// Error statuses are answers too; [`Answer::success`] turns them into errors.
    pub(super) async fn send(
        &self,
        method: Method,
        route: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, GithubError> {
        let creates_content = !matches!(method, Method::GET | Method::HEAD);
        self.send_via(&self.client, false, creates_content, method, route, body)
            .await
    }

    /// [`GitHub::send`] through `client`; with `own_auth` the request carries
    /// [`GitHub::bearer`] because `client` has no credentials; `creates_content` requests
    /// pass the [`Pacer`](super::Pacer).
    pub(super) async fn send_via(
        &self,
        client: &Octocrab,
        own_auth: bool,
        creates_content: bool,
        method: Method,
        route: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, GithubError> {
        // Content-creating requests go one at a time, within the secondary limits.
        let _admission = if creates_content {
            Some(self.pacer.admit().await)
        } else {
            None
        };
        // A REST POST creates something; GraphQL (a POST too) reads, or sets values that
        // are the same when set twice.
        let not_repeatable = method == Method::POST && !route.ends_with("graphql");
        let mut attempt = 1;
        loop {
            if self.installation {
                // octocrab renews a cached installation token only 30 s before it expires;
                // renewing 5 minutes ahead keeps long requests and clock drift safe.
                self.client
                    .installation_token_with_buffer(TOKEN_RENEWAL_MARGIN)
                    .await
                    .map_err(|err| GithubError::from_octocrab_at(err, &self.host))?;
            }
            // The standard headers come from the client (see `client_builder`); adding
            // them here too would send each twice.
            let mut builder = Request::builder().method(method.clone()).uri(route);
            if own_auth {
                builder = builder.header(AUTHORIZATION, self.bearer().await?);
            }
            let cached = (method == Method::GET)
                .then(|| self.etags.lock().ok()?.get(route).cloned())
                .flatten();
            if let Some((etag, _)) = &cached {
                builder = builder.header(IF_NONE_MATCH, etag.clone());
            }
            let request = with_body(builder, body)?;
            let wait = match client.execute(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map_err(|err| GithubError::Unreachable {
                            host: self.host.clone(),
                            cause: cause_of(&err),
                        })?
                        .to_bytes();
                    record_call(&self.account, &method, parts.status, &parts.headers);
                    let now = crate::clock::now_millis() as u64 / 1000;
                    let verdict = retry::verdict(
                        &self.retry,
                        attempt,
                        parts.status,
                        &parts.headers,
                        &body,
                        now,
                    );
                    // A POST answered 5xx may have been applied: sent again, it would
                    // post a comment twice. The caller's caller (the outbox) tries again,
                    // looking first for what the lost attempt made.
                    let verdict = if not_repeatable && parts.status.is_server_error() {
                        Verdict::Accept
                    } else {
                        verdict
                    };
                    match verdict {
                        Verdict::Accept => {
                            return Ok(self.remember(
                                route,
                                &method,
                                cached,
                                parts.status,
                                parts.headers,
                                body,
                            ));
                        }
                        Verdict::RetryAfter(wait) => {
                            tracing::warn!(%method, route, status = parts.status.as_u16(), attempt,
                                wait_secs = wait.as_secs_f64(), "GitHub asked us to wait; retrying");
                            wait
                        }
                    }
                }
                Err(err) => {
                    let err = GithubError::from_octocrab_at(err, &self.host);
                    // No answer to a POST: it may have been applied (see above).
                    if not_repeatable {
                        return Err(err);
                    }
                    let Some(wait) = retry::transport_retry(&self.retry, attempt) else {
                        return Err(err);
                    };
                    tracing::warn!(%method, route, error = %err, attempt, "GitHub request failed; retrying");
                    wait
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Every item of a paginated answer, following `Link: rel="next"`. The next URL is
    /// requested by its path, not as the absolute URL GitHub sends: octocrab attaches an
    /// installation token only to relative requests or to api.github.com, which would leave
    /// the later pages of a GitHub Enterprise Server unauthenticated.
    pub(super) async fn all_pages<T: DeserializeOwned>(
        &self,
        first: String,
    ) -> Result<Vec<T>, GithubError> {
        let mut items = Vec::new();
        let mut route = Some(first);
        while let Some(current) = route.take() {
            let answer = self.send(Method::GET, &current, None).await?.success()?;
            route = next_page(&answer.headers, &self.base_path);
            items.extend(answer.json::<Vec<T>>()?);
        }
        Ok(items)
    }

    /// Keeps a GET answer's body under its `ETag`, and turns a 304 back into the remembered
    /// answer.
    fn remember(
        &self,
        route: &str,
        method: &Method,
        cached: Option<(HeaderValue, Bytes)>,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    ) -> Answer {
        if status == StatusCode::NOT_MODIFIED
            && let Some((_, cached_body)) = cached
        {
            return Answer {
                status: StatusCode::OK,
                headers,
                body: cached_body,
            };
        }
        if *method == Method::GET
            && status == StatusCode::OK
            && let Some(etag) = headers.get(ETAG).cloned()
            && let Ok(mut etags) = self.etags.lock()
        {
            if etags.len() >= ETAG_CACHE_LIMIT {
                etags.clear();
            }
            etags.insert(route.to_owned(), (etag, body.clone()));
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `Bearer <token>` for a request octocrab will not authenticate itself.
    async fn bearer(&self) -> Result<HeaderValue, GithubError> {
        let token = if self.installation {
            self.client
                .installation_token()
                .await
                .map_err(|err| GithubError::from_octocrab_at(err, &self.host))?
                .expose_secret()
                .to_owned()
        } else {
            let token = self.token.as_ref().ok_or(GithubError::NoCredentials)?;
            token.expose().to_owned()
        };
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| GithubError::Setup("the token is not a valid header value".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// A whole answer from GitHub.
pub(super) struct Answer {
    status: StatusCode,
    pub(super) headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// The answer if its status is a success, else the error with GitHub's message.
    pub(super) fn success(self) -> Result<Self, GithubError> {
        if self.status.is_success() {
            return Ok(self);
        }
        #[derive(Deserialize)]
        struct Message {
            message: String,
        }
        let message = serde_json::from_slice::<Message>(&self.body)
            .map(|m| m.message)
            .unwrap_or_else(|_| {
                String::from_utf8_lossy(&self.body)
                    .chars()
                    .take(200)
                    .collect()
            });
        Err(GithubError::Api {
            status: self.status.as_u16(),
            message,
        })
    }

    pub(super) fn json<T: DeserializeOwned>(&self) -> Result<T, GithubError> {
        serde_json::from_slice(&self.body)
            .map_err(|err| GithubError::Transport(format!("unreadable answer: {err}")))
    }
}

/// The path of the `rel="next"` page in a `Link` header, without the API's base path.
pub(super) fn next_page(headers: &HeaderMap, base_path: &str) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    let target = link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| url.trim().trim_start_matches('<').trim_end_matches('>'))
    })?;
    let without_scheme = target.split_once("://").map_or(target, |(_, rest)| rest);
    let path = &without_scheme[without_scheme.find('/')?..];
    Some(path.strip_prefix(base_path).unwrap_or(path).to_owned())
}

/// Counts the call and keeps the rate-limit gauge current.
fn record_call(account: &str, method: &Method, status: StatusCode, headers: &HeaderMap) {
    metrics::counter!(names::GITHUB_CALLS, "method" => method.to_string(), "status" => status.as_u16().to_string())
        .increment(1);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(remaining) = header("x-ratelimit-remaining").and_then(|v| v.parse::<f64>().ok()) {
        let resource = header("x-ratelimit-resource").unwrap_or("core").to_owned();
        metrics::gauge!(names::GITHUB_RATE_LIMIT_REMAINING, "installation" => account.to_owned(), "resource" => resource)
            .set(remaining);
    }
}

/// A request with `body` as JSON. octocrab's `build_request` is not used: it adds
/// `X-GitHub-Api-Version` a second time, over the one every client sends already.
fn with_body(
    builder: axum::http::request::Builder,
    body: Option<&serde_json::Value>,
) -> Result<Request<OctoBody>, GithubError> {
    let request = match body {
        Some(body) => builder
            .header(CONTENT_TYPE, "application/json")
            .body(OctoBody::from(body.to_string())),
        None => builder.header(CONTENT_LENGTH, "0").body(OctoBody::empty()),
    };
    request.map_err(|err| GithubError::Setup(format!("building a request: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_found_and_made_relative() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            "<https://ghe.example.com/api/v3/repositories/1/issues?page=2>; rel=\"next\", <https://ghe.example.com/api/v3/repositories/1/issues?page=5>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_page(&headers, "/api/v3").as_deref(),
            Some("/repositories/1/issues?page=2")
        );
        assert_eq!(
            next_page(&headers, "").as_deref(),
            Some("/api/v3/repositories/1/issues?page=2")
        );
        headers.insert(
            LINK,
            "<https://api.github.com/x?page=1>; rel=\"prev\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_page(&headers, ""), None);
    }
}
