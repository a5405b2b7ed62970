//! Everything the bot says to GitHub goes through here. Authentication as a GitHub App
//! (JWT, then an installation token octocrab mints, caches and refreshes, once more on a
//! 401) or with a plain token; octocrab carries the requests. Every client is built by
//! [`client_builder`], which gives every request it sends (octocrab's own installation-token
//! exchange included) the headers GitHub asks for: `Accept`, `X-GitHub-Api-Version` and a
//! `User-Agent`. Every request goes through [`GitHub::send`], which records the rate limits
//! in metrics and retries in the one way [`retry`] describes; requests that create content
//! are paced per installation ([`Pacer`]: 80 a minute, 500 an hour, one at a time).
//! Payloads are read into the project's own types.

pub mod graphql;
mod manifest;
mod operations;
mod pacer;
mod rest;
pub mod retry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderName, IF_NONE_MATCH, LINK,
    USER_AGENT as USER_AGENT_HEADER,
};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use octocrab::models::{AppId, InstallationId as OctoInstallationId};
use octocrab::secrecy::ExposeSecret;
use octocrab::{OctoBody, Octocrab};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::GithubConfig;
use crate::domain::{InstallationId, IssueRef, IssueSnapshot, IssueStatus, RepoName};
use crate::network::{NetworkCause, cause_of, host_of};
use crate::telemetry::names;
use retry::{RetryPolicy, Verdict};

pub use manifest::{AppDescription, AppRegistration, convert_manifest, describe_app};
pub use operations::{IssueComment, PERMISSION_TTL, Permission, PullRequestInfo};
pub use pacer::Pacer;
pub use rest::{DependenciesSummary, RestIssue, RestLabel};

/// How long before its expiry an installation token is replaced.
const TOKEN_RENEWAL_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// The `User-Agent` every request carries.
pub const USER_AGENT: &str = concat!("codegen-orchestrator/", env!("CARGO_PKG_VERSION"));

/// The REST API version every request asks for (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";

/// The media type every request asks for (`Accept`); GraphQL takes it too.
pub const MEDIA_TYPE: &str = "application/vnd.github+json";

/// A failure talking to GitHub, without any credential in it.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// Neither App credentials nor a token are configured.
    #[error(
        "no GitHub credentials: set github.app_id with github.private_key(_path), or github.token (GITHUB_TOKEN)"
    )]
    NoCredentials,
    /// The configuration cannot be used to build a client.
    #[error("GitHub client configuration: {0}")]
    Setup(String),
    /// GitHub answered with an error status.
    #[error("GitHub answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// No answer: the connection was refused or broke off, the host name does not
    /// resolve, TLS failed, or time ran out.
    #[error("cannot reach GitHub at {host}: {cause}")]
    Unreachable {
        /// `host[:port]` of `github.api_url`.
        host: String,
        /// What went wrong.
        cause: NetworkCause,
    },
    /// The request did not get an answer, or the answer could not be read.
    #[error("GitHub request failed: {0}")]
    Transport(String),
    /// GitHub answered a GraphQL document with errors (a refused board is `FORBIDDEN`).
    #[error("GitHub GraphQL errors: {}", graphql::messages(.0))]
    Graphql(Vec<graphql::GraphqlError>),
}

impl GithubError {
    fn from_octocrab(err: octocrab::Error) -> Self {
        match err {
            octocrab::Error::GitHub { source, .. } => Self::Api {
                status: source.status_code.as_u16(),
                message: source.message,
            },
            other => Self::Transport(other.to_string()),
        }
    }

    /// [`GithubError::from_octocrab`] for a request sent to `host`: a failure of the
    /// connection says so with its cause rather than as octocrab's `Service Error: client
    /// error (Connect)`.
    fn from_octocrab_at(err: octocrab::Error, host: &str) -> Self {
        let cause = match &err {
            octocrab::Error::Service { source, .. } => cause_of(source.as_ref()),
            octocrab::Error::Hyper { source, .. } => cause_of(source),
            _ => return Self::from_octocrab(err),
        };
        Self::Unreachable {
            host: host.to_owned(),
            cause,
        }
    }

    /// The HTTP status GitHub answered with, for an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client acting for one installation (App mode) or one token.
#[derive(Clone)]
pub struct GitHub {
    /// Shared by clones: octocrab's installation token cache is copied, not shared, when an
    /// `Octocrab` is cloned.
    client: Arc<Octocrab>,
    retry: RetryPolicy,
    /// The path of `github.api_url` (`/api/v3` on GitHub Enterprise Server, else empty),
    /// which octocrab puts in front of every relative route.
    base_path: String,
    /// Permissions by (repository, user id), with when they were read.
    permissions: Arc<Mutex<PermissionCache>>,
    /// Whether the client acts as an App installation (its token is refreshed ahead).
    installation: bool,
    /// Who the client acts as, for metrics: an installation id, `token` or `app`.
    account: String,
    /// `host[:port]` of `github.api_url`, to say which server did not answer.
    host: String,
    /// Paces content-creating requests for this installation.
    pacer: Arc<Pacer>,
    /// Projects' single-select fields by project id, looked up once each.
    project_fields: Arc<Mutex<graphql::FieldCache>>,
    /// For GitHub Enterprise Server, a client rooted at `https://host/api`, so that
    /// `/graphql` reaches `https://host/api/graphql` (octocrab prefixes the REST base path
    /// `/api/v3` to every route, absolute ones included). It carries no credentials of its
    /// own: requests through it get [`GitHub::bearer`].
    graphql_client: Option<Octocrab>,
    /// Bodies of earlier GET answers with their `ETag`, by route: asked again with
    /// `If-None-Match`, an unchanged resource answers 304, which costs no rate limit.
    etags: Arc<Mutex<EtagCache>>,
    /// The token of token mode, for requests to absolute URLs (which octocrab leaves
    /// unauthenticated unless they go to api.github.com).
    token: Option<crate::config::Secret>,
}

/// GET answers by route: the `ETag` and the body it names.
type EtagCache = HashMap<String, (HeaderValue, Bytes)>;

/// Routes whose answers are remembered for conditional requests, at most.
const ETAG_CACHE_LIMIT: usize = 10_000;

/// Permissions by (repository, user id), with when each was read.
type PermissionCache = HashMap<(RepoName, u64), (Permission, Instant)>;

#[derive(Deserialize)]
struct InstallationRef {
    id: u64,
}

impl GitHub {
    /// A client that can read and write `repo`: in App mode through the installation that
    /// covers it (looked up with the App's JWT), in token mode with the token.
    pub async fn for_repository(
        config: &GithubConfig,
        repo: &RepoName,
    ) -> Result<Self, GithubError> {
        Self::for_repository_with(config, repo, RetryPolicy::default()).await
    }

    /// As [`GitHub::for_repository`], with an explicit retry policy (tests shorten waits).
    pub async fn for_repository_with(
        config: &GithubConfig,
        repo: &RepoName,
        retry: RetryPolicy,
    ) -> Result<Self, GithubError> {
        if let Some(app) = app_client(config)? {
            let installation = Self::new(app.clone(), config, retry)
                .installation_covering(repo)
                .await?;
            tracing::debug!(%installation, %repo, "acting as the App installation");
            return Self::for_installation_of(&app, config, installation, retry);
        }
        let Some(token) = &config.token else {
            return Err(GithubError::NoCredentials);
        };
        let client = base_builder(config)?
            .personal_token(token.expose().to_owned())
            .build()
            .map_err(GithubError::from_octocrab)?;
        Ok(Self::new(client, config, retry))
    }

    /// A client for one installation of the App `app`.
    fn for_installation_of(
        app: &Octocrab,
        config: &GithubConfig,
        installation: InstallationId,
        retry: RetryPolicy,
    ) -> Result<Self, GithubError> {
        let client = app
            .installation(OctoInstallationId(installation.0))
            .map_err(GithubError::from_octocrab)?;
        let mut github = Self::new(client, config, retry);
        github.installation = true;
        github.account = installation.to_string();
        Ok(github)
    }

    fn new(client: Octocrab, config: &GithubConfig, retry: RetryPolicy) -> Self {
        let without_scheme = config
            .api_url
            .split_once("://")
            .map_or(config.api_url.as_str(), |(_, rest)| rest);
        let base_path = without_scheme
            .find('/')
            .map_or("", |at| &without_scheme[at..])
            .trim_end_matches('/')
            .to_owned();
        let graphql_client = base_path.strip_suffix("/v3").and_then(|api| {
            let scheme = &config.api_url[..config.api_url.len() - without_scheme.len()];
            let host = without_scheme.split('/').next().unwrap_or_default();
            let root = format!("{scheme}{host}{api}");
            let built = client_builder(&root).and_then(|b| b.build());
            match built {
                Ok(client) => Some(client),
                Err(err) => {
                    tracing::error!(error = %err, root, "cannot build the GraphQL client");
                    None
                }
            }
        });
        Self {
            client: Arc::new(client),
            retry,
            graphql_client,
            token: config.token.clone(),
            etags: Arc::default(),
            base_path,
            permissions: Arc::default(),
            installation: false,
            host: host_of(&config.api_url),
            account: if config.token.is_some() {
                "token"
            } else {
                "app"
            }
            .to_owned(),
            pacer: Arc::new(Pacer::new(
                config.writes_per_minute as usize,
                config.writes_per_hour as usize,
            )),
            project_fields: Arc::default(),
        }
    }

    /// The open issues of `repo` carrying `label` (every page), pull requests left out.
    pub async fn open_issues_labeled(
        &self,
        repo: &RepoName,
        label: &str,
    ) -> Result<Vec<IssueSnapshot>, GithubError> {
        #[derive(serde::Serialize)]
        struct Query<'a> {
            labels: &'a str,
            state: &'static str,
            per_page: u8,
        }
        let query = serde_urlencoded::to_string(Query {
            labels: label,
            state: "open",
            per_page: 100,
        })
        .map_err(|err| GithubError::Setup(err.to_string()))?;
        let all: Vec<RestIssue> = self
            .all_pages(format!(
                "/repos/{}/{}/issues?{query}",
                repo.owner(),
                repo.name()
            ))
            .await?;
        Ok(all
            .into_iter()
            .filter(|issue| !issue.is_pull_request())
            .filter_map(|issue| {
                let number = issue.number;
                let snapshot = issue.into_snapshot();
                if snapshot.is_none() {
                    tracing::warn!(%repo, number, "an issue without a repository URL was skipped");
                }
                snapshot
            })
            .collect())
    }

    /// The repositories this installation may act on (every page).
    pub async fn installation_repositories(&self) -> Result<Vec<RepoName>, GithubError> {
        #[derive(Deserialize)]
        struct Page {
            repositories: Vec<Repository>,
        }
        #[derive(Deserialize)]
        struct Repository {
            full_name: String,
        }
        let mut repos = Vec::new();
        let mut route = Some("/installation/repositories?per_page=100".to_owned());
        while let Some(current) = route.take() {
            let answer = self.send(Method::GET, &current, None).await?.success()?;
            route = next_page(&answer.headers, &self.base_path);
            let page: Page = answer.json()?;
            repos.extend(
                page.repositories
                    .into_iter()
                    .filter_map(|r| r.full_name.parse().ok()),
            );
        }
        Ok(repos)
    }

    /// One issue; a deleted one (410) is reported as deleted, one that cannot be seen (404:
    /// missing, or outside what the credentials reach) as unknown.
    pub async fn issue(&self, issue: &IssueRef) -> Result<IssueSnapshot, GithubError> {
        let route = format!(
            "/repos/{}/{}/issues/{}",
            issue.repo.owner(),
            issue.repo.name(),
            issue.number
        );
        let unseen = |status| IssueSnapshot {
            reference: issue.clone(),
            title: String::new(),
            body: String::new(),
            status,
            labels: Vec::new(),
            open_blockers: None,
        };
        match self.send(Method::GET, &route, None).await?.success() {
            Ok(answer) => Ok(answer
                .json::<RestIssue>()?
                .into_snapshot()
                .unwrap_or_else(|| unseen(IssueStatus::Unknown))),
            Err(err) if err.status() == Some(410) => Ok(unseen(IssueStatus::Deleted)),
            Err(err) if err.status() == Some(404) => Ok(unseen(IssueStatus::Unknown)),
            Err(err) => Err(err),
        }
    }

    /// `GET /repos/{owner}/{repo}/installation` (as the App, with its JWT).
    async fn installation_covering(&self, repo: &RepoName) -> Result<InstallationId, GithubError> {
        let route = format!("/repos/{}/{}/installation", repo.owner(), repo.name());
        let installation: InstallationRef = self
            .send(Method::GET, &route, None)
            .await?
            .success()?
            .json()?;
        Ok(InstallationId(installation.id))
    }

    /// Every item of a paginated answer, following `Link: rel="next"`. The next URL is
    /// requested by its path, not as the absolute URL GitHub sends: octocrab attaches an
    /// installation token only to relative requests or to api.github.com, which would leave
    /// the later pages of a GitHub Enterprise Server unauthenticated.
    async fn all_pages<T: DeserializeOwned>(&self, first: String) -> Result<Vec<T>, GithubError> {
        let mut items = Vec::new();
        let mut route = Some(first);
        while let Some(current) = route.take() {
            let answer = self.send(Method::GET, &current, None).await?.success()?;
            route = next_page(&answer.headers, &self.base_path);
            items.extend(answer.json::<Vec<T>>()?);
        }
        Ok(items)
    }

    /// Sends one request, retrying as [`retry`] describes, and reads the whole answer.
    /// Error statuses are answers too; [`Answer::success`] turns them into errors.
    async fn send(
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
    /// pass the [`Pacer`].
    async fn send_via(
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
}

impl GitHub {
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

/// The one place clients come from in a long-running process: one [`GitHub`] per
/// installation (or one for token mode), so that its token, pacer, permission cache and
/// ETags are shared by everything acting for that installation.
pub struct GitHubApp {
    config: GithubConfig,
    retry: RetryPolicy,
    app: Option<Octocrab>,
    clients: tokio::sync::Mutex<HashMap<InstallationId, GitHub>>,
    installations: tokio::sync::Mutex<HashMap<RepoName, InstallationId>>,
    token_client: tokio::sync::OnceCell<GitHub>,
}

impl GitHubApp {
    /// The registry for `config` (App credentials, else a token).
    pub fn new(config: &GithubConfig, retry: RetryPolicy) -> Result<Self, GithubError> {
        Ok(Self {
            config: config.clone(),
            retry,
            app: app_client(config)?,
            clients: tokio::sync::Mutex::default(),
            installations: tokio::sync::Mutex::default(),
            token_client: tokio::sync::OnceCell::new(),
        })
    }

    /// The client of an installation (App mode only).
    pub async fn for_installation(
        &self,
        installation: InstallationId,
    ) -> Result<GitHub, GithubError> {
        let app = self.app.as_ref().ok_or(GithubError::NoCredentials)?;
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(&installation) {
            return Ok(client.clone());
        }
        let client = GitHub::for_installation_of(app, &self.config, installation, self.retry)?;
        clients.insert(installation, client.clone());
        Ok(client)
    }

    /// Whether the App's credentials are configured (else a token is used).
    pub fn is_app(&self) -> bool {
        self.app.is_some()
    }

    /// The installations of the App (every page); empty in token mode.
    pub async fn installations(&self) -> Result<Vec<InstallationId>, GithubError> {
        let Some(app) = &self.app else {
            return Ok(Vec::new());
        };
        let client = GitHub::new(app.clone(), &self.config, self.retry);
        let found: Vec<InstallationRef> = client
            .all_pages("/app/installations?per_page=100".to_owned())
            .await?;
        Ok(found.into_iter().map(|i| InstallationId(i.id)).collect())
    }

    /// The client that acts for `installation` on `repo`: the installation's in App mode,
    /// the token client otherwise.
    pub async fn client(
        &self,
        installation: InstallationId,
        repo: &RepoName,
    ) -> Result<GitHub, GithubError> {
        if self.app.is_some() && installation.0 != 0 {
            self.for_installation(installation).await
        } else {
            self.for_repository(repo).await
        }
    }

    /// The client that acts on `repo`: its installation's, or the token client.
    pub async fn for_repository(&self, repo: &RepoName) -> Result<GitHub, GithubError> {
        let Some(app) = &self.app else {
            let client = self
                .token_client
                .get_or_try_init(|| GitHub::for_repository_with(&self.config, repo, self.retry))
                .await?;
            return Ok(client.clone());
        };
        let known = self.installations.lock().await.get(repo).copied();
        let installation = match known {
            Some(installation) => installation,
            None => {
                let found = GitHub::new(app.clone(), &self.config, self.retry)
                    .installation_covering(repo)
                    .await?;
                self.installations.lock().await.insert(repo.clone(), found);
                found
            }
        };
        self.for_installation(installation).await
    }
}

/// A whole answer from GitHub.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// The answer if its status is a success, else the error with GitHub's message.
    fn success(self) -> Result<Self, GithubError> {
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

    fn json<T: DeserializeOwned>(&self) -> Result<T, GithubError> {
        serde_json::from_slice(&self.body)
            .map_err(|err| GithubError::Transport(format!("unreadable answer: {err}")))
    }
}

/// The path of the `rel="next"` page in a `Link` header, without the API's base path.
fn next_page(headers: &HeaderMap, base_path: &str) -> Option<String> {
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

/// A client authenticated as the App itself (JWT), when App credentials are configured.
fn app_client(config: &GithubConfig) -> Result<Option<Octocrab>, GithubError> {
    let (Some(app_id), Some(key)) = (&config.app_id, &config.private_key) else {
        return Ok(None);
    };
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key.expose().as_bytes()).map_err(|_| {
        GithubError::Setup("github.private_key is not an RSA key in PEM format".into())
    })?;
    let app = base_builder(config)?
        .app(AppId(*app_id), key)
        .build()
        .map_err(GithubError::from_octocrab)?;
    Ok(Some(app))
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

/// A client builder for the server at `base_uri` whose every request, those octocrab makes
/// on its own (the installation-token exchange) included, carries the headers GitHub asks
/// for. octocrab adds them only to the requests it builds for its typed API.
fn client_builder(
    base_uri: &str,
) -> Result<
    octocrab::OctocrabBuilder<
        octocrab::NoSvc,
        octocrab::DefaultOctocrabBuilderConfig,
        octocrab::NoAuth,
        octocrab::NotLayerReady,
    >,
    octocrab::Error,
> {
    // octocrab sends its own User-Agent first; ours follows it so GitHub's logs name the app.
    Ok(Octocrab::builder()
        .base_uri(base_uri)?
        .add_header(USER_AGENT_HEADER, USER_AGENT.to_owned())
        .add_header(ACCEPT, MEDIA_TYPE.to_owned())
        .add_header(
            HeaderName::from_static("x-github-api-version"),
            API_VERSION.to_owned(),
        ))
}

/// The builder of a client for `github.api_url`.
fn base_builder(
    config: &GithubConfig,
) -> Result<
    octocrab::OctocrabBuilder<
        octocrab::NoSvc,
        octocrab::DefaultOctocrabBuilderConfig,
        octocrab::NoAuth,
        octocrab::NotLayerReady,
    >,
    GithubError,
> {
    let api_url = config.api_url.trim_end_matches('/');
    client_builder(api_url)
        .map_err(|err| GithubError::Setup(format!("github.api_url `{api_url}`: {err}")))
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
