//! Registering the GitHub App from `app-manifest.yml`, the flow Probot users know.
//!
//! `serve` without GitHub credentials prints a link with a one-time setup token,
//! `/setup?token=...`, in its log. Opening it admits that browser (a cookie) and shows a page
//! whose button posts the manifest, with this server's public URL filled in, to GitHub for a
//! personal account or an organisation. GitHub creates the App and sends the browser back to
//! `/setup/callback?code=...&state=...`, where the state must be one handed to this browser.
//! The code is exchanged (`POST /app-manifests/{code}/conversions`) for the App's id, private
//! key and webhook secret, which are written atomically to `data/github-app.yaml` (mode 0600);
//! `serve` reads that file at its next start.
//!
//! Whoever completes a registration decides which App the server runs as, and so whose
//! repositories its Codegen token works on: hence the token, the cookie, and the refusals —
//! no registration once any GitHub credentials are configured or saved, none in token mode.
//! The pages work without JavaScript; their texts are in [`pages`].

mod pages;
#[cfg(test)]
mod tests;

/// The setup pages' frame and escaping, shared with the front page.
pub(super) use pages::{escape, layout};

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use crate::config::{APP_FILE, GithubConfig};
use crate::github::{AppRegistration, convert_manifest, describe_app};

/// The manifest, as shipped at the repository's top level.
const MANIFEST: &str = include_str!("../../../app-manifest.yml");
/// How long a `state` handed to GitHub stays valid (GitHub gives the code an hour).
const STATE_TTL: Duration = Duration::from_secs(3600);
/// How long a browser stays admitted after opening the setup link (the cookie's lifetime).
const ADMISSION_TTL: Duration = Duration::from_secs(3600);
/// Browsers admitted at once; the oldest gives way. Only holders of the setup token are
/// admitted, so a few are plenty, and the bound keeps the bookkeeping small whatever arrives.
const MAX_BROWSERS: usize = 8;
/// `state` values outstanding per browser (a few tabs); the oldest gives way.
const MAX_STATES_PER_BROWSER: usize = 4;
/// The cookie that binds a browser to the states handed to it.
const COOKIE: &str = "codegen_orchestrator_setup";
/// How long `/setup` waits before asking GitHub again which App this is, after a failure.
const DESCRIBE_RETRY: Duration = Duration::from_secs(60);

/// Which GitHub credentials the configuration holds; it decides what `/setup` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// None: registration is open to whoever holds the setup token.
    None,
    /// A GitHub App's id and key: `/setup` links to the App's installation page.
    App,
    /// A token (`github.token`): no App is registered at all.
    Token,
}

impl Credentials {
    /// What `github` holds; App credentials win over a token, as in the GitHub client.
    pub(crate) fn of(github: &GithubConfig) -> Self {
        if github.app_id.is_some() && github.private_key.is_some() {
            Self::App
        } else if github.token.is_some() {
            Self::Token
        } else {
            Self::None
        }
    }
}

/// What the setup pages need, and the registrations in progress.
pub struct SetupState {
    credentials: Credentials,
    /// `github.*`: where the code is exchanged, and the App's credentials to ask GitHub
    /// which App this is.
    github: GithubConfig,
    /// GitHub's web address (`https://github.com`, or a GHES host's).
    web_url: String,
    /// `server.public_url`, when set; else it comes from the request's headers.
    public_url: Option<String>,
    webhook_path: String,
    /// Where the App's credentials are written.
    pub app_file: PathBuf,
    /// The token of the setup link; only while no credentials are configured.
    setup_token: Option<String>,
    /// Admitted browsers (by their cookie) with the states handed to each.
    browsers: Mutex<HashMap<String, Browser>>,
    /// Held from the check "nothing saved yet" to the rename that saves the credentials,
    /// so that two callbacks cannot both pass the check.
    saving: tokio::sync::Mutex<()>,
    /// The App's installation page, once known (registered here, or told by GitHub).
    install_page: Mutex<Option<String>>,
    /// When GitHub last failed to say which App this is: anyone can open `/setup`, so a
    /// failure is not retried on every request.
    describe_failed: Mutex<Option<Instant>>,
}

/// A browser that opened the setup link.
struct Browser {
    admitted: Instant,
    /// The states handed to it, oldest first.
    states: VecDeque<(String, Instant)>,
}

impl SetupState {
    /// The setup pages of a server configured with `github`; draws the setup token when no
    /// credentials are configured. Fails only when the system has no randomness to give.
    pub fn new(
        github: &GithubConfig,
        public_url: Option<String>,
        webhook_path: &str,
    ) -> io::Result<Self> {
        let credentials = Credentials::of(github);
        let setup_token = match credentials {
            Credentials::None => Some(random_hex(16)?),
            Credentials::App | Credentials::Token => None,
        };
        Ok(Self {
            credentials,
            github: GithubConfig {
                api_url: github.api_url.trim_end_matches('/').to_owned(),
                ..github.clone()
            },
            web_url: github.web_url(),
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            webhook_path: webhook_path.to_owned(),
            app_file: PathBuf::from(APP_FILE),
            setup_token,
            browsers: Mutex::new(HashMap::new()),
            saving: tokio::sync::Mutex::new(()),
            install_page: Mutex::new(None),
            describe_failed: Mutex::new(None),
        })
    }

    /// The setup token, while registration is open.
    pub fn setup_token(&self) -> Option<&str> {
        self.setup_token.as_deref().filter(|_| !self.saved())
    }

    /// The link `serve` prints at start while registration is open: `server.public_url`, or
    /// the address it serves on (the loopback address when it listens on all of them), with
    /// `/setup?token=...`.
    pub fn setup_link(&self, serving_on: SocketAddr) -> Option<String> {
        let token = self.setup_token()?;
        let base = match &self.public_url {
            Some(url) => url.clone(),
            None => {
                let mut address = serving_on;
                if address.ip().is_unspecified() {
                    address.set_ip(match address.ip() {
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    });
                }
                format!("http://{address}")
            }
        };
        Some(format!("{base}/setup?token={token}"))
    }

    /// Whether credentials were saved, by this process or an earlier one.
    fn saved(&self) -> bool {
        // `symlink_metadata`: a dangling link there is something too, and not ours to replace.
        std::fs::symlink_metadata(&self.app_file).is_ok()
    }

    fn token_matches(&self, given: &str) -> bool {
        self.setup_token()
            .is_some_and(|token| same_secret(token, given))
    }

    fn browsers(&self) -> MutexGuard<'_, HashMap<String, Browser>> {
        let mut browsers = self.browsers.lock().unwrap_or_else(|p| p.into_inner());
        browsers.retain(|_, browser| browser.admitted.elapsed() < ADMISSION_TTL);
        browsers
    }

    /// Admits the browser that presented the setup token: the one its cookie names when
    /// that is admitted already, else a new one. Returns its id.
    fn admit(&self, returning: Option<&str>) -> io::Result<String> {
        let mut browsers = self.browsers();
        if let Some(id) = returning
            && let Some(browser) = browsers.get_mut(id)
        {
            browser.admitted = Instant::now();
            return Ok(id.to_owned());
        }
        if browsers.len() >= MAX_BROWSERS
            && let Some(oldest) = browsers
                .iter()
                .min_by_key(|(_, browser)| browser.admitted)
                .map(|(id, _)| id.clone())
        {
            browsers.remove(&oldest);
        }
        let id = random_hex(16)?;
        browsers.insert(
            id.clone(),
            Browser {
                admitted: Instant::now(),
                states: VecDeque::new(),
            },
        );
        Ok(id)
    }

    fn is_admitted(&self, browser: &str) -> bool {
        self.browsers().contains_key(browser)
    }

    /// A new `state` for `browser`; `None` when it is not admitted (any more).
    fn issue_state(&self, browser: &str) -> io::Result<Option<String>> {
        let state = random_hex(16)?;
        let mut browsers = self.browsers();
        let Some(browser) = browsers.get_mut(browser) else {
            return Ok(None);
        };
        browser.states.retain(|(_, at)| at.elapsed() < STATE_TTL);
        while browser.states.len() >= MAX_STATES_PER_BROWSER {
            browser.states.pop_front();
        }
        browser.states.push_back((state.clone(), Instant::now()));
        Ok(Some(state))
    }

    /// Uses up `state` if it was handed to `browser` within the hour.
    fn take_state(&self, browser: Option<&str>, state: &str) -> bool {
        let mut browsers = self.browsers();
        let Some(browser) = browser.and_then(|id| browsers.get_mut(id)) else {
            return false;
        };
        let Some(at) = browser
            .states
            .iter()
            .position(|(s, _)| same_secret(s, state))
        else {
            return false;
        };
        browser
            .states
            .remove(at)
            .is_some_and(|(_, issued)| issued.elapsed() < STATE_TTL)
    }

    fn known_install_page(&self) -> Option<String> {
        self.install_page
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn remember_install_page(&self, page: &str) {
        *self.install_page.lock().unwrap_or_else(|p| p.into_inner()) = Some(page.to_owned());
    }

    /// Where the configured App is installed from: asked of GitHub once (`GET /app`).
    async fn install_link(&self) -> pages::InstallLink {
        if let Some(page) = self.known_install_page() {
            return pages::InstallLink::Page(page);
        }
        let apps = pages::InstallLink::AppsList(format!("{}/settings/apps", self.web_url));
        let failed = || {
            self.describe_failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        if failed().is_some_and(|at| at.elapsed() < DESCRIBE_RETRY) {
            return apps;
        }
        match describe_app(&self.github).await {
            Ok(app) => {
                let page = installations_new(&app.html_url);
                self.remember_install_page(&page);
                pages::InstallLink::Page(page)
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot ask GitHub which App this is; /setup links to the list of Apps instead");
                *failed() = Some(Instant::now());
                apps
            }
        }
    }

    fn file_name(&self) -> String {
        self.app_file.display().to_string()
    }
}

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
pub(super) struct SetupQuery {
    token: Option<String>,
    org: Option<String>,
}

/// `GET /setup[?token=...][&org=...]`
pub(super) async fn page(
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
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /setup/callback?code=...&state=...`
pub(super) async fn callback(
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
fn admission_cookie(browser: &str, over_https: bool) -> Option<HeaderValue> {
    let secure = if over_https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={browser}; Path=/setup; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        ADMISSION_TTL.as_secs()
    ))
    .ok()
}

/// The admission cookie's value, when the request carries one.
fn browser_cookie(headers: &HeaderMap) -> Option<&str> {
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
fn is_login(name: &str) -> bool {
    (1..=39).contains(&name.len())
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `https://github.com/apps/SLUG/installations/new` for an App's page.
fn installations_new(html_url: &str) -> String {
    format!("{}/installations/new", html_url.trim_end_matches('/'))
}

/// Why GitHub could not deliver webhooks to this server's address, if it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unreachable {
    /// A loopback address or `localhost`: this machine only.
    Loopback(String),
    /// An address of a private network (github.com only; a GitHub Enterprise Server on
    /// the same network reaches it).
    Private(String),
    /// A name public DNS does not know: one label, or `.local`, `.internal`, `.lan`,
    /// `.home.arpa` (github.com only, as above).
    LocalName(String),
}

/// Whether GitHub can reach `base` (`scheme://host[:port]`).
fn unreachable(base: &str, on_github_com: bool) -> Option<Unreachable> {
    let host = host_of(base);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        if ip.is_loopback() || ip.is_unspecified() {
            return Some(Unreachable::Loopback(host.to_owned()));
        }
        let private = match ip {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                // 100.64.0.0/10 is carrier-grade NAT: not reachable from outside either.
                v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
            }
        };
        return (private && on_github_com).then(|| Unreachable::Private(host.to_owned()));
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(Unreachable::Loopback(host.to_owned()));
    }
    let local = !name.contains('.')
        || [".local", ".internal", ".lan", ".home.arpa"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
    (local && on_github_com).then(|| Unreachable::LocalName(host.to_owned()))
}

/// The host of `scheme://[user@]host[:port][/...]`, IPv6 brackets kept.
fn host_of(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host_port.starts_with('[') {
        return host_port
            .find(']')
            .map_or(host_port, |end| &host_port[..=end]);
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => host_port,
    }
}

/// The manifest as JSON with this server's addresses filled in.
fn manifest_json(public: &str, webhook_path: &str) -> Result<String, String> {
    let mut manifest: serde_json::Value =
        serde_yaml_ng::from_str(MANIFEST).map_err(|e| e.to_string())?;
    manifest["hook_attributes"]["url"] = format!("{public}{webhook_path}").into();
    manifest["redirect_url"] = format!("{public}/setup/callback").into();
    serde_json::to_string(&manifest).map_err(|e| e.to_string())
}

/// `server.public_url`, else the scheme and host this request came to.
fn public_url(setup: &SetupState, headers: &HeaderMap) -> String {
    if let Some(url) = &setup.public_url {
        return url.clone();
    }
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{}://{host}", request_scheme(headers))
}

/// The scheme the browser used: a proxy in front says so in `X-Forwarded-Proto`.
fn request_scheme(headers: &HeaderMap) -> &str {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http")
}

/// Writes the credentials as a `github:` configuration section, readable by the owner
/// only: into a new temporary file beside `path`, synced, then renamed over `path`, so
/// that a crash leaves either no file or a whole one, never half a key.
fn write_app_file(path: &Path, conversion: &AppRegistration) -> io::Result<()> {
    let mut document = serde_yaml_ng::Mapping::new();
    let mut github = serde_yaml_ng::Mapping::new();
    github.insert("app_id".into(), conversion.id.into());
    github.insert("private_key".into(), conversion.pem.expose().into());
    if let Some(secret) = &conversion.webhook_secret {
        github.insert("webhook_secret".into(), secret.expose().into());
    }
    document.insert("github".into(), github.into());
    let text = serde_yaml_ng::to_string(&document).map_err(io::Error::other)?;
    let text = format!(
        "# Written by codegen-orchestrator's /setup: the GitHub App's credentials.\n{text}"
    );
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the credentials file has no name"))?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        random_hex(8)?
    ));
    let saved =
        write_private(&temporary, text.as_bytes()).and_then(|()| std::fs::rename(&temporary, path));
    if saved.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    saved?;
    sync_dir(dir)
}

/// Creates `path` (it must not exist) with mode 0600 and `bytes`, synced to disk.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // The umask may take bits away from 0600; the mode is exactly 0600 whatever it is.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
}

/// Makes a rename in `dir` durable: the directory entry is synced too.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// `bytes` random bytes from the system's generator, as hex.
fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|err| io::Error::other(err.to_string()))?;
    Ok(hex::encode(buffer))
}

/// Compares secrets in time independent of where they differ.
fn same_secret(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}
