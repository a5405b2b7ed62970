//! Everything the bot says to GitHub goes through here. Authentication as a GitHub App
//! (JWT, then an installation token octocrab mints, caches and refreshes, once more on a
//! 401) or with a plain token; octocrab carries the requests. Every client is built by
//! [`client_builder`], which gives every request it sends (octocrab's own installation-token
//! exchange included) the headers GitHub asks for: `Accept`, `X-GitHub-Api-Version` and a
//! `User-Agent`. Every request goes through [`GitHub::send`], which records the rate limits
//! in metrics and retries in the one way [`retry`] describes; requests that create content
//! are paced per installation ([`Pacer`]: 80 a minute, 500 an hour, one at a time).
//! Payloads are read into the project's own types.
//!
//! This file holds the client and its errors; one request and its answer are in `transport`,
//! where clients come from in `clients`, reading issues and installations in `issues`, the
//! other operations in `operations` and GraphQL in [`graphql`].

mod clients;
pub mod graphql;
mod issues;
mod manifest;
pub mod oauth;
mod operations;
mod pacer;
mod rest;
pub mod retry;
mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::HeaderValue;
use bytes::Bytes;
use octocrab::Octocrab;
use octocrab::models::InstallationId as OctoInstallationId;
use serde::Deserialize;

use crate::config::GithubConfig;
use crate::domain::{InstallationId, RepoName};
use crate::network::{NetworkCause, cause_of, host_of};
use clients::{app_client, base_builder, client_builder, request_timeout};
use retry::RetryPolicy;

pub use clients::GitHubApp;
pub use manifest::{AppDescription, AppRegistration, convert_manifest, describe_app};
pub use operations::{IssueComment, PERMISSION_TTL, Permission, PullRequestInfo};
pub use pacer::Pacer;
pub use rest::{DependenciesSummary, RestIssue, RestLabel, SubIssuesSummary};

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
    /// Labels known to exist, by repository: a state label is looked up once per process,
    /// not at every change of state. One deleted since is created again by GitHub when it
    /// is next added to an issue (without our colour).
    labels: Arc<Mutex<std::collections::HashSet<(RepoName, String)>>>,
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
    /// Whether the label (repository, lower-case name) is known to exist.
    fn label_known(&self, key: &(RepoName, String)) -> bool {
        self.labels.lock().is_ok_and(|known| known.contains(key))
    }

    /// Notes that the label exists.
    fn remember_label(&self, key: (RepoName, String)) {
        if let Ok(mut known) = self.labels.lock() {
            known.insert(key);
        }
    }

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
            let built = client_builder(&root, request_timeout(config)).and_then(|b| b.build());
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
            labels: Arc::default(),
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
}
