//! The Codegen API client: create agent runs, read and list them, ban and unban them, and
//! resolve a GitHub repository to Codegen's integer `repo_id`.
//!
//! This is the one layer that retries Codegen requests, in one loop
//! (`transport.rs`): 429, 5xx and transport errors are tried again after the server's
//! `Retry-After`, else after a capped exponential backoff with jitter, up to
//! `codegen.retry_attempts` retries (`retry.rs`). 402 (plan quota used up), 403, 404 and 422
//! are final and carry the API's message. The client keeps itself under the documented
//! limits so that 429s stay rare: creations through one limiter (10 a minute), every other
//! request, whatever its endpoint, through the other (60 per 30 s).
//!
//! Creating a run is not idempotent, so whether a creation whose answer was lost happened
//! is asked in one place, `create.rs`, both on a launch and when a crashed launch is
//! recovered. The runs list covers the whole organisation unless asked otherwise, so every
//! listing is narrowed to the token's own user (`GET /v1/users/me`, read once) and to runs
//! made through the API.

mod create;
mod limiter;
mod payload;
mod retry;
mod transport;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderValue, Method};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::{CodegenConfig, Secret};
use crate::domain::{AgentStatus, InstallationId, IssueRef, RepoName, RunId};
pub use create::{CreatedRun, Creation};
pub use limiter::{Permit, SlidingWindow};
use payload::{ApiReposPage, ApiRun, ApiRunsPage, ApiUser};
use retry::Failure;
use transport::Answer;

/// Runs are listed in pages of at most this many (the API's maximum).
const PAGE_SIZE: usize = 100;
/// With more active runs than this, one list call tracks them all.
const LIST_TRACKING_THRESHOLD: usize = 3;
/// How long the list of Codegen repositories is trusted before a miss reloads it.
const REPOS_TTL: Duration = Duration::from_secs(600);

/// Why a Codegen call failed. Callers branch on it: a transient error is tried again
/// later, a quota error pauses launches, a rejection is reported to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodegenError {
    /// 402: the plan's agent runs are used up. Launching must pause.
    #[error("Codegen's plan quota is used up (402): {message}")]
    QuotaExhausted {
        /// Codegen's explanation.
        message: String,
    },
    /// 403, 404, 422 or another 4xx: asking again will not help.
    #[error("Codegen refused the request ({status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Codegen's explanation.
        message: String,
    },
    /// Still 429 or 5xx after every retry.
    #[error("Codegen answered {status} {attempts} times; giving up for now")]
    Unavailable {
        /// The last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// No answer at all after every retry; the text names the host and the cause
    /// (`cannot reach Codegen at api.codegen.com: connection refused (GET /v1/...)`).
    #[error("{0}")]
    Transport(String),
    /// An answer that is not what the API describes.
    #[error("could not read Codegen's answer: {0}")]
    Decode(String),
    /// `codegen.org_id` or `codegen.api_token` is missing.
    #[error("Codegen is not configured: set {0}")]
    NotConfigured(&'static str),
    /// A creation's answer was lost and Codegen could not be asked whether the run
    /// exists: it may. Creating it again could run the agent twice, so the launch is
    /// settled later, by looking for the run first ([`Creation::Interrupted`]).
    #[error("{cause}; whether Codegen created the run is not known yet")]
    CreationUnknown {
        /// The last failure.
        cause: Box<CodegenError>,
    },
}

impl CodegenError {
    /// Whether asking again later may succeed (network trouble, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::Transport(_) | Self::CreationUnknown { .. }
        )
    }
}

/// What a run carries so that it can be recognised after a crash:
/// `{"installation_id": 42, "repository": "owner/repo", "issue_number": 12, "attempt": 1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMetadata {
    /// The installation the issue belongs to.
    pub installation_id: InstallationId,
    /// `owner/repo`.
    pub repository: String,
    /// The issue number.
    pub issue_number: u64,
    /// Which attempt at the issue (1 for the first).
    pub attempt: u32,
}

impl RunMetadata {
    /// The metadata of `attempt` at `issue`.
    pub fn new(installation: InstallationId, issue: &IssueRef, attempt: u32) -> Self {
        Self {
            installation_id: installation,
            repository: issue.repo.to_string(),
            issue_number: issue.number,
            attempt,
        }
    }

    fn same_run(&self, other: &Self) -> bool {
        self.installation_id == other.installation_id
            && self.repository.eq_ignore_ascii_case(&other.repository)
            && self.issue_number == other.issue_number
            && self.attempt == other.attempt
    }
}

/// A pull request an agent run opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestLink {
    /// Its URL on GitHub.
    pub url: String,
    /// Its head branch, when reported.
    pub head_branch: Option<String>,
}

/// An agent run as Codegen reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRun {
    /// Codegen's id.
    pub id: RunId,
    /// Where it stands.
    pub status: AgentStatus,
    /// The status exactly as reported.
    pub raw_status: Option<String>,
    /// The run's page on codegen.com.
    pub web_url: Option<String>,
    /// The agent's final answer.
    pub result: Option<String>,
    /// A short summary.
    pub summary: Option<String>,
    /// Pull requests it opened.
    pub pull_requests: Vec<PullRequestLink>,
    /// The metadata it was created with, when it is ours.
    pub metadata: Option<RunMetadata>,
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The agent's instructions.
    pub prompt: String,
    /// Who the run is for.
    pub metadata: RunMetadata,
    /// The repository to work in; sent as `repo_id` when Codegen knows it.
    pub repository: RepoName,
}

/// Retry timing and limits of the client.
#[derive(Debug, Clone, Copy)]
pub struct CodegenTuning {
    /// Retries after the first attempt (`codegen.retry_attempts`).
    pub retries: u32,
    /// First backoff delay; doubles per retry.
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; a server asking for more ends the tries at once.
    pub longest_wait: Duration,
    /// Run creations allowed per window (Codegen: 10 a minute).
    pub creations: (usize, Duration),
    /// Reads allowed per window (Codegen: 60 per 30 s).
    pub reads: (usize, Duration),
    /// The longest one request may take.
    pub request_timeout: Duration,
}

impl CodegenTuning {
    /// Codegen's documented limits, with `retries` retries.
    pub fn documented(retries: u32) -> Self {
        Self {
            retries,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            longest_wait: Duration::from_secs(300),
            creations: (10, Duration::from_secs(60)),
            reads: (60, Duration::from_secs(30)),
            request_timeout: Duration::from_secs(60),
        }
    }

    /// The documented limits with the configuration's retries and creation rate.
    pub fn for_config(config: &CodegenConfig) -> Self {
        Self {
            creations: (
                config.creations_per_minute.max(1) as usize,
                Duration::from_secs(60),
            ),
            ..Self::documented(config.retry_attempts)
        }
    }
}

/// The Codegen API, for one organisation and token. Clones share limits and caches.
#[derive(Clone)]
pub struct Codegen {
    inner: Arc<Inner>,
}

struct Inner {
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    org_id: u64,
    authorization: HeaderValue,
    tuning: CodegenTuning,
    creations: SlidingWindow,
    /// Every request that is not a creation: reads of any endpoint, bans and unbans.
    reads: SlidingWindow,
    repos: Mutex<Option<(Instant, HashMap<String, u64>)>>,
    /// The token's user, read once from `GET /v1/users/me`.
    user_id: tokio::sync::OnceCell<u64>,
}

impl std::fmt::Debug for Codegen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codegen")
            .field("base", &self.inner.base)
            .field("org_id", &self.inner.org_id)
            .finish_non_exhaustive()
    }
}

impl Codegen {
    /// A client for the configured server, organisation and token.
    pub fn new(config: &CodegenConfig) -> Result<Self, CodegenError> {
        Self::with_config_tuning(config, CodegenTuning::for_config(config))
    }

    /// A client for the configured server, organisation and token, with `tuning`.
    pub fn with_config_tuning(
        config: &CodegenConfig,
        tuning: CodegenTuning,
    ) -> Result<Self, CodegenError> {
        let org_id = config
            .org_id
            .ok_or(CodegenError::NotConfigured("codegen.org_id"))?;
        let token = config
            .api_token
            .as_ref()
            .ok_or(CodegenError::NotConfigured("codegen.api_token"))?;
        Self::with_tuning(&config.api_url, org_id, token, tuning)
    }

    /// A client with explicit timing and limits (tests shorten them).
    pub fn with_tuning(
        api_url: &str,
        org_id: u64,
        token: &Secret,
        tuning: CodegenTuning,
    ) -> Result<Self, CodegenError> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| CodegenError::NotConfigured("codegen.api_token (printable text)"))?;
        authorization.set_sensitive(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|err| {
                CodegenError::Transport(format!(
                    "cannot set up TLS for Codegen: no root certificates: {err}"
                ))
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: api_url.trim_end_matches('/').to_owned(),
                org_id,
                authorization,
                tuning,
                creations: SlidingWindow::new(tuning.creations.0, tuning.creations.1),
                reads: SlidingWindow::new(tuning.reads.0, tuning.reads.1),
                repos: Mutex::new(None),
                user_id: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// One run.
    pub async fn run(&self, id: RunId) -> Result<AgentRun, CodegenError> {
        let answer = self
            .read(&self.org_path(&format!("/agent/run/{id}")))
            .await?;
        Ok(decode::<ApiRun>(&answer.body)?.into_run())
    }

    /// The id of the user the token belongs to, read on first use and kept. A failed read
    /// is not kept: the next call asks again.
    pub async fn user_id(&self) -> Result<u64, CodegenError> {
        self.retrying("GET /v1/users/me", || self.user_id_once())
            .await
    }

    /// One page of the runs this token's user started through the API, newest first.
    /// Codegen lists the whole organisation's runs unless told whose: without the filter a
    /// busy organisation would bury this App's runs under everyone else's.
    pub async fn list_runs(
        &self,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<AgentRun>, CodegenError> {
        self.retrying("listing runs", || self.list_page_once(skip, limit))
            .await
    }

    /// The current state of each of `ids`. With many runs active, pages of the list are
    /// read (one call for up to 100 runs) and only the runs not found there are read one
    /// by one. A run Codegen no longer knows (404) is left out of the answer.
    pub async fn track(&self, ids: &[RunId]) -> Result<HashMap<RunId, AgentRun>, CodegenError> {
        let mut found = HashMap::with_capacity(ids.len());
        let wanted: HashSet<RunId> = ids.iter().copied().collect();
        if wanted.len() > LIST_TRACKING_THRESHOLD {
            let pages = wanted.len().div_ceil(PAGE_SIZE) + 1;
            for page in 0..pages {
                let runs = self.list_runs(page * PAGE_SIZE, PAGE_SIZE).await?;
                let last_page = runs.len() < PAGE_SIZE;
                found.extend(
                    runs.into_iter()
                        .filter(|run| wanted.contains(&run.id))
                        .map(|run| (run.id, run)),
                );
                if last_page || found.len() == wanted.len() {
                    break;
                }
            }
        }
        let missing: Vec<RunId> = wanted
            .into_iter()
            .filter(|id| !found.contains_key(id))
            .collect();
        for id in missing {
            match self.run(id).await {
                Ok(run) => {
                    found.insert(id, run);
                }
                // One vanished run must not keep every other run from being followed.
                Err(CodegenError::Rejected { status: 404, .. }) => {
                    tracing::warn!(run = %id, "Codegen no longer knows this run");
                }
                Err(err) => return Err(err),
            }
        }
        Ok(found)
    }

    /// Codegen's only way to stop a run: `POST .../agent/run/ban` flags the run's pull
    /// request against further check-suite events (automatic check fixing) and stops every
    /// agent working on that pull request, not just this run. The flag stays until
    /// [`Codegen::unban_run`].
    pub async fn ban_run(&self, id: RunId) -> Result<(), CodegenError> {
        let body = serde_json::json!({ "agent_run_id": id.0 });
        self.request(Method::POST, &self.org_path("/agent/run/ban"), Some(&body))
            .await
            .map(drop)
    }

    /// Lifts the flag [`Codegen::ban_run`] put on the run's pull request, so that Codegen
    /// handles its check suites again. Runs it stopped stay stopped.
    pub async fn unban_run(&self, id: RunId) -> Result<(), CodegenError> {
        let body = serde_json::json!({ "agent_run_id": id.0 });
        self.request(
            Method::POST,
            &self.org_path("/agent/run/unban"),
            Some(&body),
        )
        .await
        .map(drop)
    }

    /// Codegen's integer id of `repo`, when Codegen knows the repository. The list is
    /// cached; a miss reloads it at most every ten minutes.
    pub async fn repo_id(&self, repo: &RepoName) -> Result<Option<u64>, CodegenError> {
        self.retrying("reading repositories", || self.repo_id_once(repo))
            .await
    }

    fn repos_cache(&self) -> std::sync::MutexGuard<'_, Option<(Instant, HashMap<String, u64>)>> {
        // A poisoned cache is still a valid cache: it holds whole maps only.
        self.inner
            .repos
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn org_path(&self, rest: &str) -> String {
        format!("/v1/organizations/{}{rest}", self.inner.org_id)
    }

    async fn read(&self, path: &str) -> Result<Answer, CodegenError> {
        self.request(Method::GET, path, None).await
    }

    /// The token's user, one try when not known yet. A failed read is not kept: the next
    /// call asks again.
    async fn user_id_once(&self) -> Result<u64, Failure> {
        self.inner
            .user_id
            .get_or_try_init(|| async {
                let answer = self.read_once("/v1/users/me").await?;
                Ok(decode::<ApiUser>(&answer.body)?.id)
            })
            .await
            .copied()
    }

    /// One page of this token's API runs, one try per request.
    async fn list_page_once(&self, skip: usize, limit: usize) -> Result<Vec<AgentRun>, Failure> {
        let limit = limit.clamp(1, PAGE_SIZE);
        let user_id = self.user_id_once().await?;
        let path = self.org_path(&format!(
            "/agent/runs?user_id={user_id}&source_type=API&skip={skip}&limit={limit}"
        ));
        let page: ApiRunsPage = decode(&self.read_once(&path).await?.body)?;
        Ok(page.items.into_iter().map(ApiRun::into_run).collect())
    }

    /// [`Codegen::repo_id`], one try per page read.
    async fn repo_id_once(&self, repo: &RepoName) -> Result<Option<u64>, Failure> {
        let key = repo.to_string().to_ascii_lowercase();
        if let Some((loaded, ids)) = &*self.repos_cache() {
            if let Some(&id) = ids.get(&key) {
                return Ok(Some(id));
            }
            if loaded.elapsed() < REPOS_TTL {
                return Ok(None);
            }
        }
        let mut ids = HashMap::new();
        for page in 0.. {
            let path = self.org_path(&format!(
                "/repos?skip={}&limit={PAGE_SIZE}",
                page * PAGE_SIZE
            ));
            let repos: ApiReposPage = decode(&self.read_once(&path).await?.body)?;
            let count = repos.items.len();
            ids.extend(
                repos
                    .items
                    .into_iter()
                    .map(|r| (r.full_name.to_ascii_lowercase(), r.id)),
            );
            if count < PAGE_SIZE || (page + 1) * PAGE_SIZE >= repos.total {
                break;
            }
        }
        let id = ids.get(&key).copied();
        *self.repos_cache() = Some((Instant::now(), ids));
        Ok(id)
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodegenError> {
    serde_json::from_slice(body).map_err(|err| CodegenError::Decode(err.to_string()))
}
