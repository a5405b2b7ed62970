//! GitHub's OAuth web application flow, as the fake GitHub serves it (the routes are merged
//! into [`super::fake_github::FakeGithub`]). It follows GitHub's published behaviour, the
//! unkind parts included: a refused code is answered **200** with
//! `{"error": "bad_verification_code", ...}`; a code works once; the token endpoint answers
//! form-encoded text unless asked for JSON; a bad token gets 401 "Bad credentials"; the
//! listings are paginated with `Link` headers, in pages smaller than asked for when
//! [`OAuthState::page_size`] says so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::fake_github::{GithubState, person};

/// The App's OAuth client id in the fake.
pub const CLIENT_ID: &str = "Iv1.0123456789abcdef";
/// Its client secret.
pub const CLIENT_SECRET: &str = "client-secret-value";

/// What the fake knows of OAuth: who is signed in to GitHub in the browser, each user's
/// installations and repositories, codes and tokens handed out.
#[derive(Debug, Default)]
pub struct OAuthState {
    /// The user signed in to GitHub who approves the authorization (none: GitHub shows
    /// its sign-in page and never redirects).
    pub signed_in: Option<String>,
    /// Per login: (installation id, repositories the user may read in it).
    pub users: BTreeMap<String, Vec<(u64, Vec<String>)>>,
    /// Outstanding codes: code -> (login, redirect_uri).
    pub codes: BTreeMap<String, (String, String)>,
    /// Valid tokens: token -> login.
    pub tokens: BTreeMap<String, String>,
    /// Items per page at most, whatever `per_page` asks (0: as asked).
    pub page_size: usize,
    /// The forms posted to the token endpoint.
    pub exchanges: Vec<BTreeMap<String, String>>,
    next: u64,
}

impl OAuthState {
    /// A user who may read `repos` of installation `installation`.
    pub fn grant(&mut self, login: &str, installation: u64, repos: &[&str]) {
        let installations = self.users.entry(login.to_owned()).or_default();
        installations.push((
            installation,
            repos.iter().map(|r| (*r).to_owned()).collect(),
        ));
    }

    /// Revokes every token of `login` (as when the user revokes the App's authorization).
    pub fn revoke(&mut self, login: &str) {
        self.tokens.retain(|_, who| who != login);
    }
}

/// The OAuth routes: on the web host (`/login/oauth/...`) and the API (`/user...`), which
/// the fake serves at one address.
pub fn routes() -> Router<Arc<Mutex<GithubState>>> {
    let mut router = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token));
    for prefix in ["", "/api/v3"] {
        router = router
            .route(&format!("{prefix}/user"), get(user))
            .route(&format!("{prefix}/user/installations"), get(installations))
            .route(
                &format!("{prefix}/user/installations/{{id}}/repositories"),
                get(repositories),
            );
    }
    router
}

/// The page the browser is sent to: a signed-in user approves at once and GitHub sends
/// the browser back to `redirect_uri` with a code and the state, as it does.
async fn authorize(
    State(state): State<Arc<Mutex<GithubState>>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut state = state.lock().unwrap();
    if query.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::NOT_FOUND, "<h1>404: no such application</h1>").into_response();
    }
    let Some(redirect) = query.get("redirect_uri").cloned() else {
        return (StatusCode::BAD_REQUEST, "redirect_uri missing").into_response();
    };
    let Some(login) = state.oauth.signed_in.clone() else {
        return (StatusCode::OK, "<h1>Sign in to GitHub</h1>").into_response();
    };
    state.oauth.next += 1;
    let code = format!("code{}x{}", state.oauth.next, fastrand::u32(..));
    state
        .oauth
        .codes
        .insert(code.clone(), (login, redirect.clone()));
    let back = serde_urlencoded::to_string([
        ("code", code.as_str()),
        (
            "state",
            query.get("state").map(String::as_str).unwrap_or(""),
        ),
    ])
    .unwrap();
    let separator = if redirect.contains('?') { '&' } else { '?' };
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{redirect}{separator}{back}"))],
    )
        .into_response()
}

/// `POST /login/oauth/access_token`: the code for a token. Refusals are 200 with `error`.
async fn access_token(
    State(state): State<Arc<Mutex<GithubState>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: BTreeMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let mut state = state.lock().unwrap();
    state.oauth.exchanges.push(form.clone());
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let answer = |fields: Vec<(&str, String)>| -> Response {
        if wants_json {
            let object: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect();
            Json(Value::Object(object)).into_response()
        } else {
            let text = serde_urlencoded::to_string(&fields).unwrap();
            (
                [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
                text,
            )
                .into_response()
        }
    };
    let refused = |error: &str, description: &str| {
        answer(vec![
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
            (
                "error_uri",
                "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors".to_owned(),
            ),
        ])
    };
    if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        return refused(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    // A code works once, whatever the outcome of its first use.
    let Some((login, redirect)) = state.oauth.codes.remove(field("code")) else {
        return refused(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    };
    if !field("redirect_uri").is_empty() && field("redirect_uri") != redirect {
        return refused(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    state.oauth.next += 1;
    let token = format!("ghu_fake{}x{}", state.oauth.next, fastrand::u32(..));
    state.oauth.tokens.insert(token.clone(), login);
    answer(vec![
        ("access_token", token),
        ("token_type", "bearer".to_owned()),
        ("scope", String::new()),
    ])
}

/// The login of the token in `Authorization: Bearer`, or GitHub's 401.
fn viewer(state: &GithubState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .unwrap_or("");
    state.oauth.tokens.get(token).cloned().ok_or_else(|| {
        Box::new(
            (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})),
        )
                .into_response(),
        )
    })
}

async fn user(State(state): State<Arc<Mutex<GithubState>>>, headers: HeaderMap) -> Response {
    let state = state.lock().unwrap();
    match viewer(&state, &headers) {
        Ok(login) => Json(person(&login, 5000 + login.len() as u64)).into_response(),
        Err(refused) => *refused,
    }
}

async fn installations(
    State(state): State<Arc<Mutex<GithubState>>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let state = state.lock().unwrap();
    let login = match viewer(&state, &headers) {
        Ok(login) => login,
        Err(refused) => return *refused,
    };
    let all: Vec<Value> = state
        .oauth
        .users
        .get(&login)
        .map(|installations| {
            installations
                .iter()
                .map(|(id, repos)| {
                    let owner = repos
                        .first()
                        .and_then(|r| r.split('/').next())
                        .unwrap_or("acme");
                    json!({
                        "id": id, "app_id": 1, "app_slug": "codegen-orchestrator-acme",
                        "target_type": "Organization", "repository_selection": "selected",
                        "account": {"login": owner, "id": 1, "type": "Organization"},
                        "permissions": {"issues": "write"}, "events": ["issues"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    page(&state, &query, "/user/installations", "installations", all)
}

async fn repositories(
    State(state): State<Arc<Mutex<GithubState>>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let state = state.lock().unwrap();
    let login = match viewer(&state, &headers) {
        Ok(login) => login,
        Err(refused) => return *refused,
    };
    let Some((_, repos)) = state
        .oauth
        .users
        .get(&login)
        .and_then(|installations| installations.iter().find(|(i, _)| *i == id))
    else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
        )
            .into_response();
    };
    let all: Vec<Value> = repos
        .iter()
        .enumerate()
        .map(|(n, full_name)| {
            let (owner, name) = full_name.split_once('/').unwrap();
            json!({
                "id": 9000 + n, "name": name, "full_name": full_name, "private": true,
                "owner": {"login": owner, "id": 1, "type": "Organization"},
                "permissions": {"admin": false, "push": false, "pull": true},
            })
        })
        .collect();
    let path = format!("/user/installations/{id}/repositories");
    page(&state, &query, &path, "repositories", all)
}

/// One page of `all` as `{"total_count": n, key: [...]}`, with a `Link` to the next.
fn page(
    state: &GithubState,
    query: &BTreeMap<String, String>,
    path: &str,
    key: &str,
    all: Vec<Value>,
) -> Response {
    let asked: usize = query
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let size = match state.oauth.page_size {
        0 => asked,
        cap => asked.min(cap),
    }
    .max(1);
    let number: usize = query
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip((number - 1) * size)
        .take(size)
        .collect();
    let mut response = Json(json!({"total_count": total, key: items})).into_response();
    if number * size < total {
        let base = state.oauth_base.clone();
        let link = format!(
            "<{base}{path}?per_page={asked}&page={}>; rel=\"next\", <{base}{path}?per_page={asked}&page={}>; rel=\"last\"",
            number + 1,
            total.div_ceil(size)
        );
        response
            .headers_mut()
            .insert(header::LINK, link.parse().unwrap());
    }
    response
}
