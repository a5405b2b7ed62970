//! `GET /dashboard`: the graph, what runs, what waits and what failed, for the
//! repositories the viewer may read, after they sign in with GitHub (the App's own OAuth).
//!
//! The flow: without a valid session, `/dashboard` sends the browser to GitHub's authorize
//! page with a random `state`, bound to this browser by a signed sign-in cookie. GitHub sends
//! it back to `/dashboard/callback?code=...&state=...`; the state must be the cookie's, the
//! code is exchanged for the viewer's token, and the repositories they may read through the
//! App's installations are listed with it. The session is a row in the store (login,
//! token, that list) under the hash of a random secret; the browser holds only that secret
//! in a signed, HTTP-only cookie. The list is made again with the token every
//! [`REACH_TTL_MS`], so lost access shows within minutes; a refused token ends the session.
//!
//! What is shown is read from the store ([`view`]), not from this process's engine, so that
//! every replica shows the same. The texts are in [`page`], the graph's SVG in [`svg`], the
//! cookies in [`cookies`], the routes in [`handlers`].

mod cookies;
mod handlers;
mod page;
mod svg;
#[cfg(test)]
mod tests;
mod view;

pub(super) use handlers::{callback, data, live, page, sign_out};

use std::io;

use tokio::sync::OnceCell;

use crate::config::{Config, Secret};
use crate::github::oauth::OAuthClient;
use crate::store::{Store, StoreError};
use cookies::CookieKey;
use view::Boards;

/// How long the list of repositories a viewer may read is trusted before it is made again
/// with their token.
const REACH_TTL_MS: i64 = 5 * 60 * 1000;
/// The setting that holds the key cookies are signed with.
const KEY_SETTING: &str = "dashboard:cookie_key";

/// Why the dashboard shows a page of its own instead of the boards; each has its text in
/// [`page::refusal_page`].
#[derive(Debug, thiserror::Error)]
pub(super) enum Refusal {
    /// No OAuth credentials are configured.
    #[error("dashboard sign-in is not configured")]
    NotConfigured {
        /// The callback URL to set on the App.
        callback: String,
    },
    /// The callback's `state` is missing, forged, or not this browser's.
    #[error("the sign-in state is not this browser's")]
    StateMismatch,
    /// GitHub refused the code, or the viewer declined.
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    /// The viewer may read no repository the App is installed on.
    #[error("{login} may read no repository of the App's installations")]
    NothingToSee {
        /// Their login.
        login: String,
    },
    /// A repository the viewer may not see, or that does not exist (the same answer).
    #[error("no repository the viewer may see has this name")]
    NoSuchRepository,
    /// GitHub could not be asked what the viewer may read.
    #[error("GitHub could not be asked what the viewer may read")]
    GithubUnavailable,
    /// The store failed.
    #[error("the store failed")]
    Store,
}

impl Refusal {
    fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Self::NotConfigured { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::StateMismatch => StatusCode::BAD_REQUEST,
            Self::SignInFailed(_) => StatusCode::FORBIDDEN,
            Self::NothingToSee { .. } => StatusCode::FORBIDDEN,
            Self::NoSuchRepository => StatusCode::NOT_FOUND,
            Self::GithubUnavailable => StatusCode::BAD_GATEWAY,
            Self::Store => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The App's OAuth client and its credentials.
struct OAuth {
    client: OAuthClient,
    client_id: String,
    client_secret: Secret,
}

/// What the dashboard's handlers share.
pub struct DashboardState {
    oauth: Option<OAuth>,
    store: Store,
    /// `server.public_url`, when set; else it comes from the request's headers.
    public_url: Option<String>,
    /// GitHub's web address, for links.
    web_url: String,
    boards: Boards,
    key: OnceCell<CookieKey>,
}

impl DashboardState {
    /// The dashboard of a server configured with `config`, reading `store`.
    pub fn new(config: &Config, store: Store) -> Self {
        let github = &config.github;
        let oauth = match (&github.client_id, &github.client_secret) {
            (Some(client_id), Some(client_secret)) => match OAuthClient::new(github) {
                Ok(client) => Some(OAuth {
                    client,
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                }),
                Err(err) => {
                    tracing::error!(error = %err, "dashboard sign-in is off: cannot set up its GitHub client");
                    None
                }
            },
            _ => None,
        };
        Self {
            oauth,
            boards: Boards::new(
                store.clone(),
                config.orchestrator.unblock_on,
                &config.orchestrator.command,
                view::ForecastSettings {
                    agents: config.codegen.org_id.is_some() && config.codegen.api_token.is_some(),
                    max_concurrent: config.codegen.max_concurrent_agents.max(1) as usize,
                    per_repository: config.codegen.max_agents_per_repository.map(|n| n as usize),
                    default_minutes: config.orchestrator.default_estimate,
                    launches_per_minute: config.codegen.creations_per_minute.max(1) as usize,
                },
            ),
            store,
            public_url: config
                .server
                .public_url
                .as_ref()
                .map(|url| url.trim_end_matches('/').to_owned()),
            web_url: github.web_url(),
            key: OnceCell::new(),
        }
    }

    /// The key cookies are signed with: made once for all replicas and kept in the store.
    async fn key(&self) -> Result<&CookieKey, StoreError> {
        self.key
            .get_or_try_init(|| async {
                let fresh = random_hex(32).map_err(|err| StoreError::Write(err.to_string()))?;
                let stored = self.store.setting_or_insert(KEY_SETTING, &fresh).await?;
                CookieKey::from_hex(&stored).ok_or_else(|| {
                    StoreError::Write(format!("the setting {KEY_SETTING} is not a usable key"))
                })
            })
            .await
    }
}

/// `bytes` random bytes from the system's generator, as hex.
fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|err| io::Error::other(err.to_string()))?;
    Ok(hex::encode(buffer))
}
