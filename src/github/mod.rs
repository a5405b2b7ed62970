//! Everything the bot says to GitHub goes through here. Authentication as a GitHub App
//! (JWT, then an installation token octocrab mints and refreshes) or with a plain token;
//! octocrab carries the requests, and the payloads are read into the project's own types.

mod rest;

use axum::http::header::USER_AGENT as USER_AGENT_HEADER;
use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId as OctoInstallationId};
use serde::Deserialize;

use crate::config::GithubConfig;
use crate::domain::{InstallationId, IssueRef, IssueSnapshot, IssueStatus, RepoName};

pub use rest::{RestIssue, RestLabel};

/// The `User-Agent` every request carries.
pub const USER_AGENT: &str = concat!("codegen-orchestrator/", env!("CARGO_PKG_VERSION"));

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
    /// The request did not get an answer, or the answer could not be read.
    #[error("GitHub request failed: {0}")]
    Transport(String),
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

    fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client acting for one installation (App mode) or one token.
#[derive(Clone)]
pub struct GitHub {
    client: Octocrab,
    /// The path of `github.api_url` (`/api/v3` on GitHub Enterprise Server, else empty),
    /// which octocrab puts in front of every relative route.
    base_path: String,
}

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
        if let Some(app) = app_client(config)? {
            let installation = installation_covering(&app, repo).await?;
            tracing::debug!(%installation, %repo, "acting as the App installation");
            let client = app
                .installation(OctoInstallationId(installation.0))
                .map_err(GithubError::from_octocrab)?;
            return Ok(Self::new(client, config));
        }
        let Some(token) = &config.token else {
            return Err(GithubError::NoCredentials);
        };
        let client = base_builder(config)?
            .personal_token(token.expose().to_owned())
            .build()
            .map_err(GithubError::from_octocrab)?;
        Ok(Self::new(client, config))
    }

    fn new(client: Octocrab, config: &GithubConfig) -> Self {
        let without_scheme = config
            .api_url
            .split_once("://")
            .map_or(config.api_url.as_str(), |(_, rest)| rest);
        let base_path = without_scheme
            .find('/')
            .map_or("", |at| &without_scheme[at..])
            .trim_end_matches('/')
            .to_owned();
        Self { client, base_path }
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
        let query = Query {
            labels: label,
            state: "open",
            per_page: 100,
        };
        let first: octocrab::Page<RestIssue> = self
            .client
            .get(
                format!("/repos/{}/{}/issues", repo.owner(), repo.name()),
                Some(&query),
            )
            .await
            .map_err(GithubError::from_octocrab)?;
        let all = self.all_pages(first).await?;
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

    /// Every item of a paginated answer, following `Link: rel="next"`. The next URL is
    /// requested by its path, not as the absolute URL GitHub sends: octocrab attaches an
    /// installation token only to relative requests or to api.github.com, which would leave
    /// the later pages of a GitHub Enterprise Server unauthenticated.
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        mut page: octocrab::Page<T>,
    ) -> Result<Vec<T>, GithubError> {
        let mut items = page.take_items();
        while let Some(next) = page.next.take() {
            let route = next
                .path_and_query()
                .map(|p| p.as_str())
                .map(|p| {
                    p.strip_prefix(self.base_path.as_str())
                        .unwrap_or(p)
                        .to_owned()
                })
                .ok_or_else(|| GithubError::Transport(format!("unusable next-page link {next}")))?;
            page = self
                .client
                .get(route, None::<&()>)
                .await
                .map_err(GithubError::from_octocrab)?;
            items.extend(page.take_items());
        }
        Ok(items)
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
        };
        match self
            .client
            .get::<RestIssue, _, ()>(route, None)
            .await
            .map_err(GithubError::from_octocrab)
        {
            Ok(found) => Ok(found
                .into_snapshot()
                .unwrap_or_else(|| unseen(IssueStatus::Unknown))),
            Err(err) if err.status() == Some(410) => Ok(unseen(IssueStatus::Deleted)),
            Err(err) if err.status() == Some(404) => Ok(unseen(IssueStatus::Unknown)),
            Err(err) => Err(err),
        }
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

/// `GET /repos/{owner}/{repo}/installation` with the App's JWT.
async fn installation_covering(
    app: &Octocrab,
    repo: &RepoName,
) -> Result<InstallationId, GithubError> {
    let installation: InstallationRef = app
        .get(
            format!("/repos/{}/{}/installation", repo.owner(), repo.name()),
            None::<&()>,
        )
        .await
        .map_err(GithubError::from_octocrab)?;
    Ok(InstallationId(installation.id))
}

/// The server and the User-Agent every request carries.
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
    let builder = Octocrab::builder()
        .base_uri(api_url)
        .map_err(|err| GithubError::Setup(format!("github.api_url `{api_url}`: {err}")))?;
    // octocrab sends `X-GitHub-Api-Version` itself, and its own User-Agent first; ours
    // follows it so GitHub's logs name the app.
    Ok(builder.add_header(USER_AGENT_HEADER, USER_AGENT.to_owned()))
}
