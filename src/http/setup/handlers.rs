//! `GET /setup` and `GET /setup/callback`: who may register the App, the page with the
//! form that posts the manifest to GitHub, the code exchange, and the refusals.

use std::io;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::address::{manifest_json, public_url, request_scheme, unreachable};
use super::app_file::write_app_file;
use super::{ADMISSION_TTL, COOKIE, Credentials, SetupState, pages};
use crate::config::GithubConfig;
use crate::github::convert_manifest;
use crate::http::AppState;

/// Why `/setup` or its callback did not go ahead; each has its page in [`pages::refusal`].
#[derive(Debug, thiserror::Error)]
pub(super) enum SetupRefusal {
    /// The server acts with a token: it registers no App.
    #[error("this server acts with a GitHub token and registers no App")]
    TokenMode,
    /// Neither the setup token nor an admitted browser's cookie came with the request.
    #[error("the request has neither the setup token nor an admitted browser's cookie")]
    LinkNeeded,
    /// A setup token that is not this run's.
    #[error("the setup token is not this run's")]
    WrongToken,
    /// The organisation form's value is no GitHub login.
    #[error("`{0}` is not an organisation's login")]
    InvalidOrganisation(String),
    /// The callback came without a usable code.
    #[error("the callback has no usable code")]
    NoCode,
    /// The callback's state was not handed to this browser, or is over an hour old.
    #[error("the state was not handed to this browser within the hour")]
    NotStartedHere,
    /// GitHub credentials are configured or saved already.
    #[error("GitHub credentials are configured or saved already")]
    AlreadyRegistered,
    /// Another callback is saving its credentials at this moment.
    #[error("another registration is being saved")]
    InProgress,
    /// GitHub refused the code exchange.
    #[error("GitHub did not accept the code: {0}")]
    CodeRejected(String),
    /// The credentials could not be written.
    #[error("cannot save the App's credentials: {0}")]
    CannotSave(io::Error),
    /// The manifest built into the binary cannot be read.
    #[error("app-manifest.yml is invalid: {0}")]
    BadManifest(String),
    /// The system gave no randomness for a token, cookie or state.
    #[error("no randomness for a secret: {0}")]
    NoRandomness(io::Error),
}

impl SetupRefusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::TokenMode => StatusCode::NOT_FOUND,
            Self::LinkNeeded | Self::WrongToken => StatusCode::FORBIDDEN,
            Self::InvalidOrganisation(_) | Self::NoCode | Self::NotStartedHere => {
                StatusCode::BAD_REQUEST
            }
            Self::AlreadyRegistered | Self::InProgress => StatusCode::CONFLICT,
            Self::CodeRejected(_) => StatusCode::BAD_GATEWAY,
            Self::CannotSave(_) | Self::BadManifest(_) | Self::NoRandomness(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

#[derive(Deserialize)]
pub(in crate::http) struct SetupQuery {
    token: Option<String>,
    org: Option<String>,
}

/// `GET /setup[?token=...][&org=...]`
pub(in crate::http) async fn page(
    State(state): State<AppState>,
    Query(query): Query<SetupQuery>,
    headers: HeaderMap,
) -> Response {
    let setup = &state.setup;
    match setup.credentials {
        Credentials::Token => return refused(setup, &SetupRefusal::TokenMode, None),
        Credentials::App => {
            let link = setup.install_link().await;
            return respond(StatusCode::OK, pages::app_configured(&link), None);
        }
        Credentials::None => {}
    }
    if setup.saved() {
        let page = pages::saved(&setup.file_name(), setup.known_install_page().as_deref());
        return respond(StatusCode::OK, page, None);
    }
    let returning = browser_cookie(&headers);
    let (browser, cookie) = match query.token.as_deref() {
        Some(token) if setup.token_matches(token) => match setup.admit(returning) {
            Ok(browser) => {
                let cookie = admission_cookie(&browser, request_scheme(&headers) == "https");
                (browser, cookie)
            }
            Err(err) => return refused(setup, &SetupRefusal::NoRandomness(err), None),
        },
        Some(_) => return refused(setup, &SetupRefusal::WrongToken, None),
        None => match returning.filter(|browser| setup.is_admitted(browser)) {
            Some(browser) => (browser.to_owned(), None),
            None => return refused(setup, &SetupRefusal::LinkNeeded, None),
        },
    };
    match registration_page(setup, &browser, query.org.as_deref(), &headers) {
        Ok(page) => respond(StatusCode::OK, page, cookie),
        Err(refusal) => refused(setup, &refusal, cookie),
    }
}

/// The page with the form that posts the manifest to GitHub, for `browser`.
fn registration_page(
    setup: &SetupState,
    browser: &str,
    org: Option<&str>,
    headers: &HeaderMap,
) -> Result<String, SetupRefusal> {
    let org = match org.map(str::trim) {
        Some(org) if !is_login(org) => {
            return Err(SetupRefusal::InvalidOrganisation(org.to_owned()));
        }
        org => org,
    };
    let public = public_url(setup, headers);
    let manifest =
        manifest_json(&public, &setup.webhook_path).map_err(SetupRefusal::BadManifest)?;
    let state = setup
        .issue_state(browser)
        .map_err(SetupRefusal::NoRandomness)?
        .ok_or(SetupRefusal::LinkNeeded)?;
    let action = match org {
        Some(org) => format!(
            "{}/organizations/{org}/settings/apps/new?state={state}",
            setup.web_url
        ),
        None => format!("{}/settings/apps/new?state={state}", setup.web_url),
    };
    let on_github_com = setup.github.web_host() == "github.com";
    Ok(pages::registration(&pages::Registration {
        organisation: org,
        action: &action,
        manifest: &manifest,
        hook: &format!("{public}{}", setup.webhook_path),
        unreachable: unreachable(&public, on_github_com).as_ref(),
        app_file: &setup.file_name(),
    }))
}

#[derive(Deserialize)]
pub(in crate::http) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /setup/callback?code=...&state=...`
pub(in crate::http) async fn callback(
    State(state): State<AppState>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let setup = &state.setup;
    match complete_registration(setup, query, &headers).await {
        Ok(page) => respond(StatusCode::OK, page, None),
        Err(refusal) => {
            match &refusal {
                SetupRefusal::CodeRejected(_)
                | SetupRefusal::CannotSave(_)
                | SetupRefusal::NoRandomness(_) => {
                    tracing::error!(reason = %refusal, file = %setup.app_file.display(), "the App registration failed");
                }
                _ => tracing::warn!(reason = %refusal, "a setup callback was refused"),
            }
            refused(setup, &refusal, None)
        }
    }
}

/// Checks that this registration may complete, exchanges the code and saves the
/// credentials; returns the page that says so.
async fn complete_registration(
    setup: &SetupState,
    query: CallbackQuery,
    headers: &HeaderMap,
) -> Result<String, SetupRefusal> {
    match setup.credentials {
        Credentials::Token => return Err(SetupRefusal::TokenMode),
        Credentials::App => return Err(SetupRefusal::AlreadyRegistered),
        Credentials::None => {}
    }
    // Refused before the exchange: the code of a stranger's App is never even used.
    if setup.saved() {
        return Err(SetupRefusal::AlreadyRegistered);
    }
    let code = query
        .code
        .filter(|code| {
            !code.is_empty()
                && code.len() <= 128
                && code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .ok_or(SetupRefusal::NoCode)?;
    let browser = browser_cookie(headers);
    if !query
        .state
        .as_deref()
        .is_some_and(|state| setup.take_state(browser, state))
    {
        return Err(SetupRefusal::NotStartedHere);
    }
    let _saving = setup
        .saving
        .try_lock()
        .map_err(|_| SetupRefusal::InProgress)?;
    if setup.saved() {
        return Err(SetupRefusal::AlreadyRegistered);
    }
    let github = GithubConfig {
        api_url: setup.github.api_url.clone(),
        ..GithubConfig::default()
    };
    let conversion = convert_manifest(&github, &code)
        .await
        .map_err(|problem| SetupRefusal::CodeRejected(problem.to_string()))?;
    write_app_file(&setup.app_file, &conversion).map_err(SetupRefusal::CannotSave)?;
    let install = installations_new(&conversion.html_url);
    setup.remember_install_page(&install);
    tracing::info!(app_id = conversion.id, file = %setup.app_file.display(), "GitHub App registered; restart serve to use it");
    Ok(pages::app_created(&pages::Created {
        name: conversion.slug.as_deref().unwrap_or("codegen-orchestrator"),
        id: conversion.id,
        app_file: &setup.file_name(),
        install: &install,
    }))
}

/// A setup page as the browser gets it: never cached, never naming this address (with the
/// setup token in it) to GitHub as a `Referer`.
fn respond(status: StatusCode, page: String, cookie: Option<HeaderValue>) -> Response {
    let mut response = (status, Html(page)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(cookie) = cookie {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

fn refused(setup: &SetupState, refusal: &SetupRefusal, cookie: Option<HeaderValue>) -> Response {
    respond(
        refusal.status(),
        pages::refusal(refusal, &setup.file_name()),
        cookie,
    )
}

/// The cookie that admits a browser: sent back on the callback GitHub redirects to (a
/// top-level navigation, hence `SameSite=Lax`), never readable by scripts.
pub(super) fn admission_cookie(browser: &str, over_https: bool) -> Option<HeaderValue> {
    let secure = if over_https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={browser}; Path=/setup; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        ADMISSION_TTL.as_secs()
    ))
    .ok()
}

/// The admission cookie's value, when the request carries one.
pub(super) fn browser_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Whether `name` can be a GitHub login: letters, digits and hyphens, at most 39, not
/// starting with a hyphen. (Some old accounts end with one, or have two in a row.)
pub(super) fn is_login(name: &str) -> bool {
    (1..=39).contains(&name.len())
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `https://github.com/apps/SLUG/installations/new` for an App's page.
pub(super) fn installations_new(html_url: &str) -> String {
    format!("{}/installations/new", html_url.trim_end_matches('/'))
}
