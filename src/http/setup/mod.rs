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
//! The pages work without JavaScript; their texts are in [`pages`]. This file holds what a
//! registration in progress needs ([`SetupState`]); the routes are in [`handlers`], the
//! checks of this server's address in [`address`], and saving the credentials in [`app_file`].

mod address;
mod app_file;
mod handlers;
mod pages;
#[cfg(test)]
mod tests;

/// The scheme the browser used, shared with the dashboard's cookies.
pub(super) use address::request_scheme;
/// The routes of `/setup` and its callback.
pub(super) use handlers::{callback, page};
/// The setup pages' frame and escaping, shared with the front page.
pub(super) use pages::{escape, layout};

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::{APP_FILE, GithubConfig};
use crate::github::describe_app;
use handlers::installations_new;

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
