//! Where clients come from: [`GitHubApp`], one client per installation for a
//! long-running process, and the builders every client is made with.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::header::{ACCEPT, HeaderName, USER_AGENT as USER_AGENT_HEADER};
use octocrab::Octocrab;
use octocrab::models::AppId;

use super::retry::RetryPolicy;
use super::{API_VERSION, GitHub, GithubError, InstallationRef, MEDIA_TYPE, USER_AGENT};
use crate::config::GithubConfig;
use crate::domain::{InstallationId, RepoName};

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

/// A client authenticated as the App itself (JWT), when App credentials are configured.
pub(super) fn app_client(config: &GithubConfig) -> Result<Option<Octocrab>, GithubError> {
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

/// An octocrab builder before authentication and layers.
type Builder = octocrab::OctocrabBuilder<
    octocrab::NoSvc,
    octocrab::DefaultOctocrabBuilderConfig,
    octocrab::NoAuth,
    octocrab::NotLayerReady,
>;

/// A client builder for the server at `base_uri` whose every request, those octocrab makes
/// on its own (the installation-token exchange) included, carries the headers GitHub asks
/// for (octocrab adds them only to the requests it builds for its typed API) and waits at
/// most `timeout` to connect and between the bytes of an answer: a GitHub that accepts
/// and never answers must not hold the bot.
pub(super) fn client_builder(
    base_uri: &str,
    timeout: Duration,
) -> Result<Builder, octocrab::Error> {
    // octocrab sends its own User-Agent first; ours follows it so GitHub's logs name the app.
    Ok(Octocrab::builder()
        .base_uri(base_uri)?
        .set_connect_timeout(Some(timeout))
        .set_read_timeout(Some(timeout))
        .set_write_timeout(Some(timeout))
        .add_header(USER_AGENT_HEADER, USER_AGENT.to_owned())
        .add_header(ACCEPT, MEDIA_TYPE.to_owned())
        .add_header(
            HeaderName::from_static("x-github-api-version"),
            API_VERSION.to_owned(),
        ))
}

/// The builder of a client for `github.api_url`.
pub(super) fn base_builder(config: &GithubConfig) -> Result<Builder, GithubError> {
    let api_url = config.api_url.trim_end_matches('/');
    client_builder(api_url, request_timeout(config))
        .map_err(|err| GithubError::Setup(format!("github.api_url `{api_url}`: {err}")))
}

/// `github.request_timeout_secs`.
pub(super) fn request_timeout(config: &GithubConfig) -> Duration {
    Duration::from_secs(config.request_timeout_secs.max(1))
}
