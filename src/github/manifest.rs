//! The App manifest flow's API calls: exchanging the code GitHub hands back for the new
//! App's credentials (`POST /app-manifests/{code}/conversions`, unauthenticated), and, once
//! an App is configured, asking which one it is (`GET /app`) to link to its installation page.

use axum::http::Method;
use serde::Deserialize;

use super::retry::RetryPolicy;
use super::{GitHub, GithubError, base_builder};
use crate::config::{GithubConfig, Secret};

/// A GitHub App created from the manifest, as the conversion returns it.
#[derive(Debug, Deserialize)]
pub struct AppRegistration {
    /// The App's id.
    pub id: u64,
    /// Its URL name.
    pub slug: Option<String>,
    /// Its private key (PEM).
    pub pem: Secret,
    /// Its webhook secret.
    pub webhook_secret: Option<Secret>,
    /// Its OAuth client id (for dashboard sign-in).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its OAuth client secret.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Its page on GitHub.
    pub html_url: String,
}

/// Exchanges `code` for the App's credentials. Not retried: a code works once, so a second
/// attempt after a lost answer could only fail.
pub async fn convert_manifest(
    config: &GithubConfig,
    code: &str,
) -> Result<AppRegistration, GithubError> {
    let client = base_builder(config)?
        .build()
        .map_err(|err| GithubError::Setup(err.to_string()))?;
    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let github = GitHub::new(client, config, once);
    let route = format!("/app-manifests/{code}/conversions");
    github
        .send(Method::POST, &route, None)
        .await?
        .success()?
        .json()
}

/// The configured App as `GET /app` (authenticated with the App's JWT) describes it.
#[derive(Debug, Deserialize)]
pub struct AppDescription {
    /// Its page on GitHub (`https://github.com/apps/SLUG`).
    pub html_url: String,
}

/// Asks GitHub which App the configured credentials belong to, for the link to its
/// installation page. Not retried: a page waits for it, and a failure only costs the link.
pub async fn describe_app(config: &GithubConfig) -> Result<AppDescription, GithubError> {
    let client = super::app_client(config)?.ok_or(GithubError::NoCredentials)?;
    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    GitHub::new(client, config, once)
        .send(Method::GET, "/app", None)
        .await?
        .success()?
        .json()
}
