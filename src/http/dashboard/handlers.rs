//! The dashboard's routes: the page, the live part it polls, the JSON for scripts, and the
//! sign-in callback; who the viewer is, from their session.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::cookies::{
    Purpose, SESSION_TTL_MS, STATE_TTL_MS, clear_cookie, cookie, session_id, set_cookie,
};
use super::page::{PageView, boards_html, dashboard_page, refusal_page};
use super::{DashboardState, REACH_TTL_MS, Refusal, random_hex};
use crate::clock::now_millis;
use crate::domain::InstallationId;
use crate::engine::board::RepoBoard;
use crate::github::oauth::{OAuthError, Reachable};
use crate::http::AppState;
use crate::store::DashboardSession;

/// `?repo=owner/repo`
#[derive(Deserialize)]
pub(in crate::http) struct RepoQuery {
    repo: Option<String>,
}

/// A signed-in viewer and what they may read.
struct Viewer {
    login: String,
    reach: Vec<Reachable>,
}

/// `GET /dashboard[?repo=owner/repo]`
pub(in crate::http) async fn page(
    State(state): State<AppState>,
    Query(query): Query<RepoQuery>,
    headers: HeaderMap,
) -> Response {
    let dashboard = &state.dashboard;
    let now = now_millis();
    let viewer = match signed_in(dashboard, &headers, now).await {
        Ok(Some(viewer)) => viewer,
        Ok(None) => return start_sign_in(dashboard, &headers, query.repo.as_deref(), now).await,
        Err(refusal) => return refused(&refusal),
    };
    let boards = match boards_for(dashboard, &viewer, query.repo.as_deref(), now).await {
        Ok(boards) => boards,
        Err(refusal) => return refused(&refusal),
    };
    let repos: Vec<String> = viewer.reach.iter().map(|r| r.repo.to_string()).collect();
    let selected = query
        .repo
        .as_deref()
        .and_then(|wanted| repos.iter().find(|r| r.eq_ignore_ascii_case(wanted)));
    let html = dashboard_page(&PageView {
        login: &viewer.login,
        repos: &repos,
        selected: selected.map(String::as_str),
        boards: &boards,
        web_url: &dashboard.web_url,
    });
    private(StatusCode::OK, Html(html).into_response())
}

/// `GET /dashboard/live[?repo=owner/repo]`: the page's live part, which its script swaps
/// in; 401 without a session (the script then reloads the page, which signs in again).
pub(in crate::http) async fn live(
    State(state): State<AppState>,
    Query(query): Query<RepoQuery>,
    headers: HeaderMap,
) -> Response {
    let dashboard = &state.dashboard;
    let now = now_millis();
    let viewer = match signed_in(dashboard, &headers, now).await {
        Ok(Some(viewer)) => viewer,
        Ok(None) => {
            return private(
                StatusCode::UNAUTHORIZED,
                "sign in at /dashboard\n".into_response(),
            );
        }
        Err(refusal) => return refused(&refusal),
    };
    match boards_for(dashboard, &viewer, query.repo.as_deref(), now).await {
        Ok(boards) => private(
            StatusCode::OK,
            Html(boards_html(&boards, &dashboard.web_url)).into_response(),
        ),
        Err(refusal) => refused(&refusal),
    }
}

/// `GET /dashboard/data[?repo=owner/repo]`: the boards as JSON, for scripts. Errors are
/// JSON too; a repository the viewer may not see is "not found" whether it exists or not.
pub(in crate::http) async fn data(
    State(state): State<AppState>,
    Query(query): Query<RepoQuery>,
    headers: HeaderMap,
) -> Response {
    let dashboard = &state.dashboard;
    let now = now_millis();
    let json_error = |status: StatusCode, message: &str| {
        private(
            status,
            Json(serde_json::json!({ "error": message })).into_response(),
        )
    };
    let viewer = match signed_in(dashboard, &headers, now).await {
        Ok(Some(viewer)) => viewer,
        Ok(None) => {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "not signed in: open /dashboard in a browser to sign in with GitHub",
            );
        }
        Err(refusal) => return json_error(refusal.status(), &refusal.to_string()),
    };
    match boards_for(dashboard, &viewer, query.repo.as_deref(), now).await {
        Ok(boards) => private(
            StatusCode::OK,
            Json(serde_json::json!({
                "login": viewer.login,
                "generated_at": now,
                "repositories": boards,
            }))
            .into_response(),
        ),
        Err(refusal) => json_error(refusal.status(), &refusal.to_string()),
    }
}

/// `POST /dashboard/signout`: ends the browser's session (its row in the store, and the
/// cookie), then shows the front page. A cross-site form cannot do it for someone else:
/// the session cookie is `SameSite=Lax`, so it does not come with such a POST, and the
/// cookie is cleared only for a request that brought it (a browser would apply a clearing
/// cookie even in the answer to a cross-site form).
pub(in crate::http) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let dashboard = &state.dashboard;
    let over_https = super::super::setup::request_scheme(&headers) == "https";
    let brought = cookie(&headers, Purpose::Session).is_some();
    if let Some(sealed) = cookie(&headers, Purpose::Session)
        && let Ok(key) = dashboard.key().await
        && let Some(secret) = key.open(Purpose::Session, sealed, now_millis())
        && let Err(err) = dashboard
            .store
            .delete_dashboard_session(&session_id(&secret))
            .await
    {
        return refused(&store_failed(err));
    }
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/"))],
    )
        .into_response();
    if brought && let Some(cookie) = clear_cookie(Purpose::Session, over_https) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    private(StatusCode::SEE_OTHER, response)
}

/// What GitHub sends the browser back with: a code and the state, or an error (the viewer
/// declined).
#[derive(Deserialize)]
pub(in crate::http) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /dashboard/callback?code=...&state=...`: where GitHub sends the browser back.
pub(in crate::http) async fn callback(
    State(state): State<AppState>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let dashboard = &state.dashboard;
    let over_https = super::super::setup::request_scheme(&headers) == "https";
    match complete_sign_in(dashboard, query, &headers).await {
        Ok((sealed, back)) => {
            let back = HeaderValue::from_str(&back)
                .unwrap_or_else(|_| HeaderValue::from_static("/dashboard"));
            let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response();
            let cookies = response.headers_mut();
            if let Some(cookie) = set_cookie(Purpose::Session, &sealed, SESSION_TTL_MS, over_https)
            {
                cookies.append(header::SET_COOKIE, cookie);
            }
            if let Some(cookie) = clear_cookie(Purpose::SignIn, over_https) {
                cookies.append(header::SET_COOKIE, cookie);
            }
            private(StatusCode::SEE_OTHER, response)
        }
        Err(refusal) => {
            tracing::warn!(reason = %refusal, "a dashboard sign-in was refused");
            refused(&refusal)
        }
    }
}

/// Checks the state, exchanges the code, lists what the viewer may read and saves the
/// session; returns the sealed session cookie's value and the page to go back to.
async fn complete_sign_in(
    dashboard: &DashboardState,
    query: CallbackQuery,
    headers: &HeaderMap,
) -> Result<(String, String), Refusal> {
    let oauth = dashboard
        .oauth
        .as_ref()
        .ok_or_else(|| not_configured(dashboard, headers))?;
    let now = now_millis();
    let key = dashboard.key().await.map_err(store_failed)?;
    let signing_in = cookie(headers, Purpose::SignIn)
        .and_then(|sealed| key.open(Purpose::SignIn, sealed, now))
        .ok_or(Refusal::StateMismatch)?;
    let (expected, back) = sign_in_value(&signing_in);
    let given = query.state.as_deref().ok_or(Refusal::StateMismatch)?;
    if !same_secret(&expected, given) {
        return Err(Refusal::StateMismatch);
    }
    if let Some(error) = query.error {
        // The viewer declined on GitHub's page (`access_denied`), or GitHub refused.
        let why = query.error_description.unwrap_or(error);
        return Err(Refusal::SignInFailed(why));
    }
    let code = query
        .code
        .filter(|code| !code.is_empty() && code.len() <= 256)
        .ok_or_else(|| Refusal::SignInFailed("GitHub sent no code".into()))?;
    let redirect = callback_url(dashboard, headers);
    let token = oauth
        .client
        .exchange_code(&oauth.client_id, &oauth.client_secret, &code, &redirect)
        .await
        .map_err(|err| match err {
            OAuthError::Refused(why) => Refusal::SignInFailed(why),
            other => {
                tracing::error!(error = %other, "the sign-in code could not be exchanged");
                Refusal::GithubUnavailable
            }
        })?;
    let asked = async {
        let login = oauth.client.login(&token).await?;
        let reach = oauth.client.reachable(&token).await?;
        Ok::<_, OAuthError>((login, reach))
    };
    let (login, reach) = asked.await.map_err(|err| {
        tracing::error!(error = %err, "cannot list what a signed-in viewer may read");
        Refusal::GithubUnavailable
    })?;
    let secret = random_hex(32).map_err(|err| {
        tracing::error!(error = %err, "no randomness for a session");
        Refusal::Store
    })?;
    let expires = now + SESSION_TTL_MS;
    dashboard
        .store
        .create_dashboard_session(
            &DashboardSession {
                id: session_id(&secret),
                login: login.clone(),
                token,
                reach: encode_reach(&reach),
                checked_at: now,
                expires_at: expires,
            },
            now,
        )
        .await
        .map_err(store_failed)?;
    tracing::info!(%login, repositories = reach.len(), "signed in to the dashboard");
    Ok((key.seal(Purpose::Session, &secret, expires), back))
}

/// The sign-in cookie's value: the state, and the repository asked for (`state:owner/repo`),
/// so that the viewer comes back to the page they opened.
fn sign_in_value(value: &str) -> (String, String) {
    match value.split_once(':') {
        // Only a repository name goes back into the address: never a place elsewhere.
        Some((state, repo)) if repo.parse::<crate::domain::RepoName>().is_ok() => (
            state.to_owned(),
            format!(
                "/dashboard?{}",
                serde_urlencoded::to_string([("repo", repo)]).unwrap_or_default()
            ),
        ),
        Some((state, _)) => (state.to_owned(), "/dashboard".to_owned()),
        None => (value.to_owned(), "/dashboard".to_owned()),
    }
}

/// Sends the browser to GitHub's authorize page, with a new state in a sign-in cookie
/// (with the repository asked for, if any).
async fn start_sign_in(
    dashboard: &DashboardState,
    headers: &HeaderMap,
    repo: Option<&str>,
    now: i64,
) -> Response {
    let Some(oauth) = &dashboard.oauth else {
        return refused(&not_configured(dashboard, headers));
    };
    let key = match dashboard.key().await {
        Ok(key) => key,
        Err(err) => return refused(&store_failed(err)),
    };
    let state = match random_hex(16) {
        Ok(state) => state,
        Err(err) => {
            tracing::error!(error = %err, "no randomness for a sign-in state");
            return refused(&Refusal::Store);
        }
    };
    let over_https = super::super::setup::request_scheme(headers) == "https";
    let value = match repo.and_then(|r| r.trim().parse::<crate::domain::RepoName>().ok()) {
        Some(repo) => format!("{state}:{repo}"),
        None => state.clone(),
    };
    let sealed = key.seal(Purpose::SignIn, &value, now + STATE_TTL_MS);
    let target =
        oauth
            .client
            .authorize_url(&oauth.client_id, &callback_url(dashboard, headers), &state);
    let Ok(location) = HeaderValue::from_str(&target) else {
        return refused(&Refusal::GithubUnavailable);
    };
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Some(cookie) = set_cookie(Purpose::SignIn, &sealed, STATE_TTL_MS, over_https) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    private(StatusCode::SEE_OTHER, response)
}

/// The viewer of a valid session, their list of repositories made again with their token
/// when it is older than [`REACH_TTL_MS`]; `None` without a valid session (no cookie, a
/// forged or expired one, a session ended or whose token GitHub no longer accepts).
async fn signed_in(
    dashboard: &DashboardState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<Viewer>, Refusal> {
    let Some(oauth) = &dashboard.oauth else {
        return Err(not_configured(dashboard, headers));
    };
    let Some(sealed) = cookie(headers, Purpose::Session) else {
        return Ok(None);
    };
    let key = dashboard.key().await.map_err(store_failed)?;
    let Some(secret) = key.open(Purpose::Session, sealed, now) else {
        return Ok(None);
    };
    let id = session_id(&secret);
    let Some(session) = dashboard
        .store
        .dashboard_session(&id, now)
        .await
        .map_err(store_failed)?
    else {
        return Ok(None);
    };
    let reach = if now - session.checked_at < REACH_TTL_MS {
        decode_reach(&session.reach)
    } else {
        match oauth.client.reachable(&session.token).await {
            Ok(reach) => {
                dashboard
                    .store
                    .refresh_dashboard_session(&id, &encode_reach(&reach), now)
                    .await
                    .map_err(store_failed)?;
                reach
            }
            Err(OAuthError::TokenRefused) => {
                tracing::info!(login = %session.login, "GitHub no longer accepts a viewer's token; their session ends");
                dashboard
                    .store
                    .delete_dashboard_session(&id)
                    .await
                    .map_err(store_failed)?;
                return Ok(None);
            }
            Err(err) => {
                // Shown nothing rather than what they may no longer read.
                tracing::warn!(error = %err, "cannot list again what a viewer may read");
                return Err(Refusal::GithubUnavailable);
            }
        }
    };
    Ok(Some(Viewer {
        login: session.login,
        reach,
    }))
}

/// The boards of the repository asked for, or of every one the viewer may read.
async fn boards_for(
    dashboard: &DashboardState,
    viewer: &Viewer,
    wanted: Option<&str>,
    now: i64,
) -> Result<Vec<RepoBoard>, Refusal> {
    if viewer.reach.is_empty() {
        return Err(Refusal::NothingToSee {
            login: viewer.login.clone(),
        });
    }
    let shown: Vec<Reachable> = match wanted {
        Some(wanted) => {
            let found = viewer
                .reach
                .iter()
                .find(|r| r.repo.to_string().eq_ignore_ascii_case(wanted.trim()))
                .ok_or(Refusal::NoSuchRepository)?;
            vec![found.clone()]
        }
        None => viewer.reach.clone(),
    };
    let visible: BTreeSet<String> = viewer
        .reach
        .iter()
        .map(|r| r.repo.to_string().to_ascii_lowercase())
        .collect();
    dashboard
        .boards
        .boards(&shown, &visible, now)
        .await
        .map_err(store_failed)
}

/// `{public url}/dashboard/callback`: where GitHub sends the browser back.
fn callback_url(dashboard: &DashboardState, headers: &HeaderMap) -> String {
    let base = match &dashboard.public_url {
        Some(url) => url.clone(),
        None => {
            let host = headers
                .get("x-forwarded-host")
                .or_else(|| headers.get(header::HOST))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost");
            format!("{}://{host}", super::super::setup::request_scheme(headers))
        }
    };
    format!("{base}/dashboard/callback")
}

fn not_configured(dashboard: &DashboardState, headers: &HeaderMap) -> Refusal {
    Refusal::NotConfigured {
        callback: callback_url(dashboard, headers),
    }
}

fn store_failed(err: crate::store::StoreError) -> Refusal {
    tracing::error!(error = %err, "the dashboard cannot use the store");
    Refusal::Store
}

/// The viewer's repositories as stored with the session.
fn encode_reach(reach: &[Reachable]) -> String {
    let pairs: Vec<(u64, String)> = reach
        .iter()
        .map(|r| (r.installation.0, r.repo.to_string()))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

/// The stored list read back; whatever cannot be read counts as not readable.
fn decode_reach(stored: &str) -> Vec<Reachable> {
    let pairs: Vec<(u64, String)> = serde_json::from_str(stored).unwrap_or_default();
    pairs
        .into_iter()
        .filter_map(|(installation, repo)| {
            Some(Reachable {
                installation: InstallationId(installation),
                repo: repo.parse().ok()?,
            })
        })
        .collect()
}

fn refused(refusal: &Refusal) -> Response {
    private(
        refusal.status(),
        Html(refusal_page(refusal)).into_response(),
    )
}

/// A dashboard answer: never cached (it is one viewer's), never naming this address to
/// the sites it links to.
fn private(status: StatusCode, mut response: Response) -> Response {
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(policy) = HeaderValue::from_str(content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// What the dashboard's pages may load and run: nothing from elsewhere, and of scripts
/// only the page's own live script (by its hash), so that an address or a title that slipped
/// through escaping still could not run anything.
pub(super) fn content_security_policy() -> &'static str {
    &CONTENT_SECURITY_POLICY
}

static CONTENT_SECURITY_POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use base64::Engine as _;
    use sha2::Digest as _;
    let script = sha2::Sha256::digest(super::page::LIVE_SCRIPT.as_bytes());
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
        base64::engine::general_purpose::STANDARD.encode(script)
    )
});

/// Compares secrets in time independent of where they differ.
fn same_secret(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}
