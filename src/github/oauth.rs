//! Signing a person in with the App's OAuth credentials (GitHub's web application flow),
//! for the dashboard: the authorize address the browser is sent to, the code exchanged for
//! the viewer's token at `{web host}/login/oauth/access_token`, and, with that token, who
//! the viewer is (`GET /user`) and which repositories they may read through the App's
//! installations (`GET /user/installations`, `GET /user/installations/{id}/repositories`).
//!
//! These requests act for the viewer, not for the App, so they go through a small client of
//! their own: none of the App's tokens, caches or pacing applies, and the viewer's token is
//! only ever sent to `github.api_url`'s host.

use std::time::Duration;

use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LINK, USER_AGENT as UA};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{API_VERSION, MEDIA_TYPE, USER_AGENT};
use crate::config::{GithubConfig, Secret};
use crate::domain::{InstallationId, RepoName};
use crate::network::{cause_of, host_of};

/// Pages read at most from one listing: 100 installations or repositories a page.
const MAX_PAGES: usize = 100;

/// Why signing in or listing failed. Never carries a token or the client secret.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// GitHub refused the code (`bad_verification_code`: wrong, used or expired), or the
    /// client credentials (`incorrect_client_credentials`, `redirect_uri_mismatch`).
    #[error("GitHub refused the sign-in: {0}")]
    Refused(String),
    /// GitHub refused the viewer's token (401): revoked, or expired.
    #[error("GitHub no longer accepts the viewer's token")]
    TokenRefused,
    /// Any other answer GitHub should not have given.
    #[error("GitHub answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// GitHub's message, or the start of the body.
        message: String,
    },
    /// No answer.
    #[error("cannot reach GitHub at {0}")]
    Unreachable(String),
}

/// A repository the viewer may read through one of the App's installations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reachable {
    /// The installation it belongs to.
    pub installation: InstallationId,
    /// The repository.
    pub repo: RepoName,
}

/// The client of the web application flow for one GitHub (github.com or a GHES host).
#[derive(Clone)]
pub struct OAuthClient {
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `github.api_url` without its trailing slash.
    api_url: String,
    /// GitHub's web address (`https://github.com`).
    web_url: String,
    timeout: Duration,
}

impl OAuthClient {
    /// The client for `config`'s GitHub. Fails only when TLS cannot be set up.
    pub fn new(config: &GithubConfig) -> Result<Self, OAuthError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|err| OAuthError::Unreachable(format!("no TLS root certificates: {err}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            api_url: config.api_url.trim_end_matches('/').to_owned(),
            web_url: config.web_url(),
            timeout: Duration::from_secs(config.request_timeout_secs.max(1)),
        })
    }

    /// Where the browser is sent to sign in: `{web}/login/oauth/authorize?...`.
    pub fn authorize_url(&self, client_id: &str, redirect_uri: &str, state: &str) -> String {
        let query = serde_urlencoded::to_string([
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("state", state),
        ])
        .unwrap_or_default();
        format!("{}/login/oauth/authorize?{query}", self.web_url)
    }

    /// Exchanges the code GitHub sent the browser back with for the viewer's token. Not
    /// retried: a code works once.
    pub async fn exchange_code(
        &self,
        client_id: &str,
        client_secret: &Secret,
        code: &str,
        redirect_uri: &str,
    ) -> Result<Secret, OAuthError> {
        let form = serde_urlencoded::to_string([
            ("client_id", client_id),
            ("client_secret", client_secret.expose()),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ])
        .map_err(|err| OAuthError::Refused(err.to_string()))?;
        let url = format!("{}/login/oauth/access_token", self.web_url);
        let request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header(ACCEPT, "application/json")
            .header(UA, USER_AGENT)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(|err| OAuthError::Unreachable(format!("{}: {err}", host_of(&url))))?;
        let (status, _, body) = self.exchange(request).await?;
        // GitHub answers a refused code 200 with an `error` field, not with an error status.
        #[derive(Deserialize)]
        struct Answer {
            access_token: Option<String>,
            error: Option<String>,
            error_description: Option<String>,
        }
        // Never a preview of this answer: one that is not JSON (a server ignoring
        // `Accept`) may be `access_token=...` as a form.
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| OAuthError::Api {
            status: status.as_u16(),
            message: "the token answer is not JSON".to_owned(),
        })?;
        match (answer.access_token, answer.error) {
            (Some(token), None) if status.is_success() && !token.is_empty() => {
                Ok(Secret::new(token))
            }
            (_, Some(error)) => Err(OAuthError::Refused(match answer.error_description {
                Some(description) => format!("{error} ({description})"),
                None => error,
            })),
            _ => Err(OAuthError::Api {
                status: status.as_u16(),
                message: "no access token in the answer".into(),
            }),
        }
    }

    /// The viewer's login (`GET /user`).
    pub async fn login(&self, token: &Secret) -> Result<String, OAuthError> {
        #[derive(Deserialize)]
        struct User {
            login: String,
        }
        let url = format!("{}/user", self.api_url);
        let (_, body) = self.get(token, &url).await?;
        Ok(parse::<User>(&body)?.login)
    }

    /// Every repository the viewer may read through the App's installations: the
    /// installations `GET /user/installations` lists for the token, and for each the
    /// repositories `GET /user/installations/{id}/repositories` lists (every page of both).
    pub async fn reachable(&self, token: &Secret) -> Result<Vec<Reachable>, OAuthError> {
        #[derive(Deserialize)]
        struct Installation {
            id: u64,
        }
        #[derive(Deserialize)]
        struct Installations {
            #[serde(default)]
            total_count: usize,
            installations: Vec<Installation>,
        }
        #[derive(Deserialize)]
        struct Repository {
            full_name: String,
        }
        #[derive(Deserialize)]
        struct Repositories {
            #[serde(default)]
            total_count: usize,
            repositories: Vec<Repository>,
        }
        let installations = self
            .all_pages(token, "/user/installations", |page: Installations| {
                (page.total_count, page.installations)
            })
            .await?;
        let mut reachable = Vec::new();
        for installation in installations {
            let path = format!("/user/installations/{}/repositories", installation.id);
            let repositories = self
                .all_pages(token, &path, |page: Repositories| {
                    (page.total_count, page.repositories)
                })
                .await?;
            reachable.extend(repositories.into_iter().filter_map(|repository| {
                Some(Reachable {
                    installation: InstallationId(installation.id),
                    repo: repository.full_name.parse().ok()?,
                })
            }));
        }
        reachable.sort();
        reachable.dedup();
        Ok(reachable)
    }

    /// Every item of a listing at `path`, following `Link: rel="next"`, or, should GitHub
    /// send none, the next page number while fewer than `total_count` items came.
    async fn all_pages<P: DeserializeOwned, T>(
        &self,
        token: &Secret,
        path: &str,
        items_of: impl Fn(P) -> (usize, Vec<T>),
    ) -> Result<Vec<T>, OAuthError> {
        let mut items = Vec::new();
        let mut url = format!("{}{path}?per_page=100&page=1", self.api_url);
        for page in 1..=MAX_PAGES {
            let (headers, body) = self.get(token, &url).await?;
            let (total, found) = items_of(parse::<P>(&body)?);
            let empty = found.is_empty();
            items.extend(found);
            url = match next_link(&headers) {
                // The token goes to the API's host only, whatever a header says.
                Some(next) if next.starts_with(&format!("{}/", self.api_url)) => next,
                Some(_) => break,
                None if !empty && items.len() < total => {
                    format!("{}{path}?per_page=100&page={}", self.api_url, page + 1)
                }
                None => break,
            };
        }
        Ok(items)
    }

    /// A GET with the viewer's token; a 401 is [`OAuthError::TokenRefused`].
    async fn get(&self, token: &Secret, url: &str) -> Result<(HeaderMap, Bytes), OAuthError> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| OAuthError::TokenRefused)?;
        authorization.set_sensitive(true);
        let request = Request::builder()
            .method(Method::GET)
            .uri(url)
            .header(AUTHORIZATION, authorization)
            .header(ACCEPT, MEDIA_TYPE)
            .header("x-github-api-version", API_VERSION)
            .header(UA, USER_AGENT)
            .body(Full::new(Bytes::new()))
            .map_err(|err| OAuthError::Unreachable(format!("{}: {err}", host_of(url))))?;
        let (status, headers, body) = self.exchange(request).await?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(OAuthError::TokenRefused);
        }
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Message {
                message: String,
            }
            let message = serde_json::from_slice::<Message>(&body)
                .map(|m| m.message)
                .unwrap_or_else(|_| preview(&body));
            return Err(OAuthError::Api {
                status: status.as_u16(),
                message,
            });
        }
        Ok((headers, body))
    }

    /// One request and its whole answer, within the timeout.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), OAuthError> {
        let host = host_of(&request.uri().to_string());
        let unreachable = |cause: String| OAuthError::Unreachable(format!("{host}: {cause}"));
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|err| unreachable(cause_of(&err).to_string()))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|err| unreachable(cause_of(&err).to_string()))?
                .to_bytes();
            Ok((parts.status, parts.headers, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))?
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, OAuthError> {
    serde_json::from_slice(body).map_err(|err| OAuthError::Api {
        status: 200,
        message: format!("unreadable answer: {err}"),
    })
}

/// The start of a body, for an error message.
fn preview(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

/// The absolute URL of the `rel="next"` page in a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_address_is_on_the_web_host_with_every_parameter_encoded() {
        let config = GithubConfig {
            api_url: "https://ghe.example.com/api/v3".into(),
            ..GithubConfig::default()
        };
        let client = OAuthClient::new(&config).unwrap();
        assert_eq!(
            client.authorize_url("Iv1.x", "https://bot.example.com/dashboard/callback", "s&1"),
            "https://ghe.example.com/login/oauth/authorize?client_id=Iv1.x&redirect_uri=https%3A%2F%2Fbot.example.com%2Fdashboard%2Fcallback&state=s%261"
        );
        let client = OAuthClient::new(&GithubConfig::default()).unwrap();
        assert!(
            client
                .authorize_url("a", "b", "c")
                .starts_with("https://github.com/login/oauth/authorize?")
        );
    }

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            "<https://api.github.com/user/installations?page=2>; rel=\"next\", <https://api.github.com/user/installations?page=3>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/user/installations?page=2")
        );
        headers.insert(LINK, "<https://x/?page=1>; rel=\"prev\"".parse().unwrap());
        assert_eq!(next_link(&headers), None);
    }
}
