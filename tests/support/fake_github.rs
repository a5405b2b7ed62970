//! A stateful fake of the parts of GitHub's REST API the app uses, served by axum on a
//! local port. Tests describe GitHub's state (issues, installations); the handlers read it
//! and record every request, so tests can assert on what the app sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::fixture;

/// Issues per page at most, whatever `per_page` asks, so that pagination is exercised.
const PAGE_SIZE: usize = 2;

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: &'static str,
    pub path: String,
    pub authorization: String,
    pub user_agent: String,
    pub api_version: String,
    pub accept: String,
    pub if_none_match: String,
    /// When the request arrived (before any latency or trap).
    pub at: std::time::Instant,
}

/// An answer the fake gives instead of its normal one, once, to the next request for `path`.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub path: String,
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

#[derive(Default)]
pub struct GithubState {
    /// Answers to give before the normal ones, in order.
    pub scripted: std::collections::VecDeque<Scripted>,
    /// (owner/repo, number) -> issue object in GitHub's REST shape.
    pub issues: BTreeMap<(String, u64), Value>,
    /// Issues that were deleted (GitHub answers 410).
    pub deleted: Vec<(String, u64)>,
    /// owner/repo -> installation id.
    pub installations: BTreeMap<String, u64>,
    /// owner/repo -> label name -> (color, description).
    pub labels: BTreeMap<String, BTreeMap<String, (String, String)>>,
    /// (owner/repo, issue number) -> comments (id, body), oldest first.
    pub comments: BTreeMap<(String, u64), Vec<(u64, String)>>,
    /// Reactions posted: (comment id, content).
    pub reactions: Vec<(u64, String)>,
    /// (owner/repo, login) -> (permission, role_name).
    pub permissions: BTreeMap<(String, String), (String, String)>,
    /// (owner/repo, issue number) -> database ids of its native blockers.
    pub blocked_by: BTreeMap<(String, u64), Vec<u64>>,
    /// (owner/repo, issue number) -> its sub-issues, as (owner/repo, number).
    pub sub_issues: BTreeMap<(String, u64), Vec<(String, u64)>>,
    /// (owner/repo, issue number) -> its events (`GET .../issues/{n}/events`), oldest first.
    pub issue_events: BTreeMap<(String, u64), Vec<Value>>,
    pub next_id: u64,
    /// Seconds an installation token lives (GitHub: one hour).
    pub token_lifetime_secs: i64,
    /// Installation tokens issued so far.
    pub tokens_issued: u64,
    /// Claims of every App JWT the fake verified.
    pub jwt_claims: Vec<Value>,
    /// Projects v2 by node id.
    pub projects: BTreeMap<String, FakeProject>,
    /// Projects the App may not see: GraphQL answers partial data, null where they would
    /// be, with a `FORBIDDEN` error for each (as GitHub does for a board out of reach).
    pub forbidden_projects: std::collections::BTreeSet<String>,
    /// Projects the App may read but not write: the mutation is refused `FORBIDDEN`.
    pub read_only_projects: std::collections::BTreeSet<String>,
    /// Variables of every GraphQL mutation received, with the operation name.
    pub mutations: Vec<(String, Value)>,
    /// (owner/repo, number) -> pull request (head sha, mergeable, merged).
    pub pulls: BTreeMap<(String, u64), (String, bool, bool)>,
    /// (owner/repo, issue number) -> closing pull requests as GraphQL nodes.
    pub closing: BTreeMap<(String, u64), Vec<Value>>,
    /// (owner/repo, branch) -> head sha.
    pub branches: BTreeMap<(String, String), String>,
    /// Manifests posted to the "create an App" form: (organisation, manifest JSON).
    pub manifests: Vec<(Option<String>, Value)>,
    /// Codes the manifest conversion accepts.
    pub manifest_codes: Vec<String>,
    /// Random faults on every request but token creation: (500 rate, secondary-limit 403
    /// rate, most added latency in ms).
    pub random_faults: Option<(f64, f64, u64)>,
    /// Faults for chosen requests (see [`Trap`]), checked before everything else.
    pub traps: Vec<Trap>,
    /// Requests traps caught so far; for a trap that applies the request, counted once it
    /// is applied.
    pub sprung: u64,
    /// Faults injected so far: (500s, 403s).
    pub faults_injected: (u64, u64),
    /// Pull requests whose checks fail.
    pub failing_checks: std::collections::BTreeSet<(String, u64)>,
    /// (owner/repo, path) -> text of files on the default branch.
    pub files: BTreeMap<(String, String), String>,
    pub requests: Vec<Seen>,
    /// How long every answer takes after the request arrived and was applied, as a remote
    /// GitHub's would (zero: at once). Benches set it; it applies to every route.
    pub latency: std::time::Duration,
    /// The OAuth web flow's users, codes and tokens (dashboard sign-in).
    pub oauth: super::fake_oauth::OAuthState,
    /// The fake's own address, for the `Link` headers of the OAuth listings.
    pub oauth_base: String,
}

/// A Projects v2 board.
#[derive(Debug, Clone, Default)]
pub struct FakeProject {
    pub title: String,
    /// Single-select fields.
    pub fields: Vec<FakeField>,
    /// Items on the board.
    pub items: Vec<FakeItem>,
}

/// A single-select field: (id, name, options as (id, name)).
pub type FakeField = (String, String, Vec<(String, String)>);

/// An item: (item id, (owner/repo, issue number), field id -> option id).
pub type FakeItem = (String, (String, u64), BTreeMap<String, String>);

impl GithubState {
    /// Records a `labeled` event as GitHub lists it in the issue's events.
    pub fn record_labeled(
        &mut self,
        repo: &str,
        number: u64,
        label: &str,
        actor: Value,
        app: Option<Value>,
    ) {
        self.next_id += 1;
        let id = 70_000_000 + self.next_id;
        self.issue_events
            .entry((repo.to_owned(), number))
            .or_default()
            .push(json!({
                "id": id,
                "node_id": format!("LE_{id}"),
                "url": format!("https://api.github.com/repos/{repo}/issues/events/{id}"),
                "actor": actor,
                "event": "labeled",
                "commit_id": null,
                "commit_url": null,
                "created_at": "2026-11-30T12:00:00Z",
                "label": {"name": label, "color": "ededed"},
                "performed_via_github_app": app,
            }));
    }
}

/// A person as GitHub's `simple-user` shows them.
pub fn person(login: &str, id: u64) -> Value {
    json!({"login": login, "id": id, "node_id": format!("U_{id}"), "type": "User", "site_admin": false})
}

/// A GitHub App's bot account and the App object events carry for it.
pub fn app_actor(slug: &str, app_id: u64) -> (Value, Value) {
    (
        json!({"login": format!("{slug}[bot]"), "id": 40_000 + app_id, "node_id": format!("BOT_{app_id}"), "type": "Bot", "site_admin": false}),
        json!({"id": app_id, "slug": slug, "node_id": format!("A_{app_id}"), "name": slug, "owner": null, "description": null, "external_url": "", "html_url": format!("https://github.com/apps/{slug}"), "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z", "permissions": {}, "events": []}),
    )
}

/// A running fake.
pub struct FakeGithub {
    pub url: String,
    pub state: Arc<Mutex<GithubState>>,
}

impl FakeGithub {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(GithubState {
            token_lifetime_secs: 3600,
            ..GithubState::default()
        }));
        // The same API at the root (github.com) and under /api/v3 (GitHub Enterprise Server).
        let mut app = Router::new();
        for prefix in ["", "/api/v3"] {
            let at = |path: &str| format!("{prefix}{path}");
            app = app
                .route(&at("/graphql"), post(graphql))
                .route(&at("/repos/{owner}/{repo}/pulls/{number}"), get(get_pull))
                .route(
                    &at("/repos/{owner}/{repo}/pulls/{number}/merge"),
                    axum::routing::put(merge_pull),
                )
                .route(
                    &at("/repos/{owner}/{repo}/git/ref/heads/{*branch}"),
                    get(get_branch),
                )
                .route(&at("/repos/{owner}/{repo}/git/refs"), post(create_ref))
                .route(&at("/repos/{owner}/{repo}/issues"), get(list_issues))
                .route(&at("/app"), get(get_app))
                .route(&at("/app/installations"), get(list_installations))
                .route(
                    &at("/repos/{owner}/{repo}/contents/{*path}"),
                    get(file_contents),
                )
                .route(
                    &at("/installation/repositories"),
                    get(installation_repositories),
                )
                .route(
                    &at("/repos/{owner}/{repo}/issues/{number}"),
                    get(get_issue).patch(patch_issue),
                )
                .route(
                    &at("/repos/{owner}/{repo}/installation"),
                    get(repo_installation),
                )
                .route(
                    &at("/app/installations/{id}/access_tokens"),
                    post(access_token),
                )
                .route(&at("/repos/{owner}/{repo}/labels/{name}"), get(get_label))
                .route(&at("/repos/{owner}/{repo}/labels"), post(create_label))
                .route(
                    &at("/repos/{owner}/{repo}/issues/{number}/labels"),
                    post(add_labels),
                )
                .route(
                    &at("/repos/{owner}/{repo}/issues/{number}/labels/{name}"),
                    delete(remove_label),
                )
                .route(
                    &at("/repos/{owner}/{repo}/issues/{number}/comments"),
                    get(list_comments).post(create_comment),
                )
                .route(
                    &at("/repos/{owner}/{repo}/issues/comments/{id}"),
                    patch(update_comment),
                )
                .route(
                    &at("/repos/{owner}/{repo}/issues/comments/{id}/reactions"),
                    post(react),
                )
                .route(
                    &at("/repos/{owner}/{repo}/collaborators/{login}/permission"),
                    get(permission),
                )
                .route(
                    &at("/repos/{owner}/{repo}/issues/{number}/events"),
                    get(list_issue_events),
                )
                .route(
                    &at("/repos/{owner}/{repo}/issues/{number}/dependencies/blocked_by"),
                    get(list_blocked_by).post(add_blocked_by),
                )
                .route(
                    &at("/repos/{owner}/{repo}/issues/{number}/dependencies/blocked_by/{id}"),
                    delete(remove_blocked_by),
                )
                .route(
                    &at("/repos/{owner}/{repo}/issues/{number}/sub_issues"),
                    get(list_sub_issues),
                );
        }
        let app = app
            .route("/api/graphql", post(graphql))
            .route(
                "/app-manifests/{code}/conversions",
                post(manifest_conversion),
            )
            .merge(super::fake_oauth::routes())
            .route("/settings/apps/new", post(new_app_form))
            .route(
                "/organizations/{org}/settings/apps/new",
                post(new_org_app_form),
            )
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                scripted_or_normal,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                answer_after_latency,
            ))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        state.lock().unwrap().oauth_base = url.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    /// Adds an issue built from a real GitHub issue object with these fields replaced.
    pub fn add_issue(&self, repo: &str, number: u64, title: &str, body: &str, labels: &[&str]) {
        let payload: Value =
            serde_json::from_slice(&fixture("issues/opened.with-organization.payload.json"))
                .unwrap();
        let mut issue = payload["issue"].clone();
        let label_template = payload["issue"]["labels"].get(0).cloned().unwrap_or_else(|| {
            json!({"id": 1, "node_id": "LA_1", "url": "", "color": "ededed", "default": false, "description": null})
        });
        issue["number"] = json!(number);
        let id = {
            let mut state = self.state.lock().unwrap();
            state.next_id += 1;
            900_000 + state.next_id
        };
        issue["id"] = json!(id);
        issue["node_id"] = json!(format!("I_{}_{number}", repo.replace('/', "_")));
        issue["title"] = json!(title);
        issue["body"] = json!(body);
        issue["state"] = json!("open");
        issue["state_reason"] = Value::Null;
        issue["repository_url"] = json!(format!("https://api.github.com/repos/{repo}"));
        issue["url"] = json!(format!(
            "https://api.github.com/repos/{repo}/issues/{number}"
        ));
        issue["html_url"] = json!(format!("https://github.com/{repo}/issues/{number}"));
        issue["labels"] = Value::Array(
            labels
                .iter()
                .map(|name| {
                    let mut label = label_template.clone();
                    label["name"] = json!(name);
                    label
                })
                .collect(),
        );
        let mut state = self.state.lock().unwrap();
        state.issues.insert((repo.to_owned(), number), issue);
        // Labels it was created with were applied by a maintainer (tests that need another
        // actor record their own `labeled` events).
        for label in labels {
            state.record_labeled(repo, number, label, person("maintainer", 101), None);
        }
    }

    /// Links `blocked` natively as blocked by `blocker` (as someone does on GitHub), without
    /// a webhook.
    pub fn link(&self, repo: &str, blocked: u64, blocker_repo: &str, blocker: u64) {
        let mut state = self.state.lock().unwrap();
        let id = state.issues[&(blocker_repo.to_owned(), blocker)]["id"]
            .as_u64()
            .unwrap();
        state
            .blocked_by
            .entry((repo.to_owned(), blocked))
            .or_default()
            .push(id);
    }

    /// Closes an issue with GitHub's reason (`completed`, `not_planned`).
    pub fn close(&self, repo: &str, number: u64, reason: &str) {
        let mut state = self.state.lock().unwrap();
        let issue = state
            .issues
            .get_mut(&(repo.to_owned(), number))
            .expect("a known issue");
        issue["state"] = json!("closed");
        issue["state_reason"] = json!(reason);
    }

    /// Every answer from now on comes `latency` after its request arrived.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The API requests recorded without the headers GitHub asks every client for
    /// (`Accept: application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28`, a
    /// `User-Agent` naming the app); the browser's posts of the App form are not API calls.
    pub fn requests_without_githubs_headers(&self) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|r| !r.path.ends_with("/settings/apps/new"))
            .filter(|r| {
                r.accept != "application/vnd.github+json"
                    || r.api_version != "2022-11-28"
                    || !r.user_agent.contains("codegen-orchestrator/")
            })
            .collect()
    }
}

/// Holds every answer back for the state's `latency` (nothing when it is zero).
async fn answer_after_latency(
    State(state): State<Arc<Mutex<GithubState>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let latency = state.lock().unwrap().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    response
}

/// Records every request, then gives a scripted answer when one waits for this path, else
/// the normal one with GitHub's rate-limit headers.
async fn scripted_or_normal(
    State(state): State<Arc<Mutex<GithubState>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let method: &'static str = match request.method().as_str() {
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        _ => "GET",
    };
    record(&state, method, path.clone(), request.headers());
    let (request, trap) = caught(&state, method, &path, request).await;
    if let Some(kind) = trap {
        return spring(&state, kind, request, next).await;
    }
    let scripted = {
        let mut state = state.lock().unwrap();
        match state.scripted.front() {
            Some(s) if s.path == path => state.scripted.pop_front(),
            _ => None,
        }
    };
    let faults = state.lock().unwrap().random_faults;
    if let Some((errors, secondary, latency)) = faults
        && !path.ends_with("/access_tokens")
    {
        if latency > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(0..=latency))).await;
        }
        let roll = fastrand::f64();
        if roll < errors {
            state.lock().unwrap().faults_injected.0 += 1;
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"message": "Server Error"})),
            )
                .into_response();
        }
        if roll < errors + secondary {
            state.lock().unwrap().faults_injected.1 += 1;
            let mut response = (
                StatusCode::FORBIDDEN,
                Json(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
            )
                .into_response();
            response
                .headers_mut()
                .insert("retry-after", "0".parse().unwrap());
            return response;
        }
    }
    if let Some(scripted) = scripted {
        let mut response = (
            StatusCode::from_u16(scripted.status).unwrap(),
            Json(scripted.body),
        )
            .into_response();
        for (name, value) in scripted.headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        return response;
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("x-ratelimit-remaining", "4990".parse().unwrap());
    response
        .headers_mut()
        .insert("x-ratelimit-resource", "core".parse().unwrap());
    response
}

/// How long a trap holds a request: longer than any test waits for it.
const HOLD: std::time::Duration = std::time::Duration::from_secs(120);

/// What a trap does with a request it catches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// Nothing is applied and no answer comes (the request reached GitHub, which hangs).
    Hold,
    /// Nothing is applied; GitHub answers this status.
    Fail(u16),
    /// The request is applied, then no answer comes (a connection lost on the way back).
    ApplyThenHold,
    /// The request is applied, then GitHub answers this status (a 502 that did the work).
    ApplyThenFail(u16),
}

/// A fault for the next `times` requests with `method` whose path starts with `path` and
/// (when set) whose body contains `body`.
#[derive(Debug, Clone)]
pub struct Trap {
    pub method: &'static str,
    pub path: String,
    pub body: Option<String>,
    pub kind: TrapKind,
    pub times: u32,
}

/// The trap that catches this request, if any (it is used up by one); the request comes
/// back whole.
async fn caught(
    state: &Mutex<GithubState>,
    method: &'static str,
    path: &str,
    request: axum::extract::Request,
) -> (axum::extract::Request, Option<TrapKind>) {
    let matches = |t: &Trap| t.times > 0 && t.method == method && path.starts_with(&t.path);
    let wants_body = {
        let state = state.lock().unwrap();
        let candidates: Vec<&Trap> = state.traps.iter().filter(|t| matches(t)).collect();
        if candidates.is_empty() {
            return (request, None);
        }
        candidates.iter().any(|t| t.body.is_some())
    };
    let (request, text) = if wants_body {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (
            axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes)),
            text,
        )
    } else {
        (request, String::new())
    };
    // A body in JSON escapes newlines and quotes: compare with the decoded text too.
    let decoded = serde_json::from_str::<Value>(&text)
        .map(|v| v.to_string() + v["body"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let mut state = state.lock().unwrap();
    let trap = state.traps.iter_mut().find(|t| {
        matches(t)
            && t.body
                .as_ref()
                .is_none_or(|b| text.contains(b.as_str()) || decoded.contains(b.as_str()))
    });
    let Some(trap) = trap else {
        return (request, None);
    };
    trap.times -= 1;
    (request, Some(trap.kind))
}

/// Carries out a trap's fault.
async fn spring(
    state: &Mutex<GithubState>,
    kind: TrapKind,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let failure = |status: u16| {
        (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"message": "Server Error"})),
        )
            .into_response()
    };
    match kind {
        TrapKind::Hold => {
            state.lock().unwrap().sprung += 1;
            tokio::time::sleep(HOLD).await;
            failure(504)
        }
        TrapKind::Fail(status) => {
            state.lock().unwrap().sprung += 1;
            failure(status)
        }
        TrapKind::ApplyThenHold => {
            drop(next.run(request).await);
            state.lock().unwrap().sprung += 1;
            tokio::time::sleep(HOLD).await;
            failure(504)
        }
        TrapKind::ApplyThenFail(status) => {
            drop(next.run(request).await);
            state.lock().unwrap().sprung += 1;
            failure(status)
        }
    }
}

impl FakeGithub {
    /// Sets a trap for the next `times` requests with `method` whose path starts with
    /// `path` and (when given) whose body contains `body`.
    pub fn trap(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&str>,
        kind: TrapKind,
        times: u32,
    ) {
        self.state.lock().unwrap().traps.push(Trap {
            method,
            path: path.to_owned(),
            body: body.map(str::to_owned),
            kind,
            times,
        });
    }

    /// How many requests traps have caught (applied, for the traps that apply them).
    pub fn sprung(&self) -> u64 {
        self.state.lock().unwrap().sprung
    }

    /// Waits until traps have caught `count` requests in all (at most 10 s).
    pub async fn wait_sprung(&self, count: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.sprung() < count {
            assert!(
                std::time::Instant::now() < deadline,
                "no request reached the trap ({} of {count})",
                self.sprung()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Requests seen with `method` whose path starts with `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path))
            .count()
    }
}

impl FakeGithub {
    /// Queues a one-off answer for the next request to `path`.
    pub fn script(&self, path: &str, status: u16, headers: &[(&'static str, &str)], body: Value) {
        self.state.lock().unwrap().scripted.push_back(Scripted {
            path: path.to_owned(),
            status,
            headers: headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
            body,
        });
    }
}

fn record(state: &Mutex<GithubState>, method: &'static str, path: String, headers: &HeaderMap) {
    let header = |name: &str| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        values.join(", ")
    };
    state.lock().unwrap().requests.push(Seen {
        method,
        path,
        authorization: header("authorization"),
        user_agent: header("user-agent"),
        api_version: header("x-github-api-version"),
        accept: header("accept"),
        if_none_match: header("if-none-match"),
        at: std::time::Instant::now(),
    });
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

async fn list_issues(
    State(state): State<Arc<Mutex<GithubState>>>,
    uri: axum::http::Uri,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    let state = state.lock().unwrap();
    let wanted_label = query.get("labels").cloned();
    let wanted_state = query.get("state").cloned().unwrap_or_else(|| "open".into());
    let with_summaries: Vec<Value> = state
        .issues
        .iter()
        .filter(|((r, _), _)| *r == full)
        .map(|(key, issue)| with_dependency_summary(&state, key, issue))
        .collect();
    let matching: Vec<&Value> = with_summaries
        .iter()
        .filter(|issue| wanted_state == "all" || issue["state"] == wanted_state.as_str())
        .filter(|issue| {
            wanted_label.as_ref().is_none_or(|label| {
                issue["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["name"] == label.as_str())
            })
        })
        .collect();
    let per_page = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30usize)
        .min(PAGE_SIZE);
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let items: Vec<Value> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|v| (*v).clone())
        .collect();
    // Like GitHub: an ETag per page, and 304 (free of rate limit) when unchanged.
    let etag = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        Value::Array(items.clone()).to_string().hash(&mut hasher);
        format!("\"{:x}\"", hasher.finish())
    };
    let not_modified =
        headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str());
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(Value::Array(items)).into_response()
    };
    response.headers_mut().insert("etag", etag.parse().unwrap());
    if page * per_page < matching.len() {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let mut next = query.clone();
        next.insert("page".into(), (page + 1).to_string());
        next.insert("per_page".into(), per_page.to_string());
        let query: Vec<String> = next.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let link = format!(
            "<http://{host}{}?{}>; rel=\"next\"",
            uri.path(),
            query.join("&")
        );
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    response
}

async fn get_issue(
    State(state): State<Arc<Mutex<GithubState>>>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    let state = state.lock().unwrap();
    if state.deleted.contains(&(full.clone(), number)) {
        return (
            StatusCode::GONE,
            Json(json!({"message": "This issue was deleted"})),
        )
            .into_response();
    }
    let key = (full, number);
    let Some(issue) = state.issues.get(&key) else {
        return not_found();
    };
    let issue = &with_dependency_summary(&state, &key, issue);
    // Like GitHub: an ETag per representation, and 304 when the client already has it.
    let etag = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        issue.to_string().hash(&mut hasher);
        format!("\"{:x}\"", hasher.finish())
    };
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    (StatusCode::OK, [("etag", etag)], Json(issue.clone())).into_response()
}

async fn file_contents(
    State(state): State<Arc<Mutex<GithubState>>>,
    Path((owner, repo, path)): Path<(String, String, String)>,
) -> Response {
    use base64::Engine;
    let full = format!("{owner}/{repo}");
    let state = state.lock().unwrap();
    let Some(text) = state.files.get(&(full, path.clone())) else {
        return not_found();
    };
    // GitHub wraps the base64 text at 60 characters.
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(60)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    Json(json!({"type": "file", "path": path, "encoding": "base64", "content": wrapped.join("\n") + "\n"}))
        .into_response()
}

/// GitHub's `POST /app-manifests/{code}/conversions`: the created App with its secrets.
async fn manifest_conversion(
    State(state): State<Arc<Mutex<GithubState>>>,
    Path(code): Path<String>,
) -> Response {
    let mut state = state.lock().unwrap();
    let Some(at) = state.manifest_codes.iter().position(|c| *c == code) else {
        return not_found();
    };
    state.manifest_codes.remove(at); // a code works once
    let pem = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/test-app-key.pem"),
    )
    .unwrap();
    (
        StatusCode::CREATED,
        Json(json!({
            "id": 424242, "slug": "codegen-orchestrator-acme", "node_id": "A_kwDOBw",
            "name": "codegen-orchestrator", "owner": {"login": "acme", "id": 1, "type": "Organization"},
            "html_url": "https://github.com/apps/codegen-orchestrator-acme",
            "client_id": "Iv1.0123456789abcdef", "client_secret": "client-secret-value",
            "webhook_secret": "whsec-from-github", "pem": pem,
        })),
    )
        .into_response()
}

/// The browser form GitHub shows at `settings/apps/new`: it takes the manifest and, as
/// GitHub does once the App is created, sends the browser to `redirect_url` with a code.
async fn new_app_form(
    State(state): State<Arc<Mutex<GithubState>>>,
    Query(query): Query<BTreeMap<String, String>>,
    body: String,
) -> Response {
    app_form(
        state,
        None,
        query,
        serde_urlencoded::from_str(&body).unwrap_or_default(),
    )
}

async fn new_org_app_form(
    State(state): State<Arc<Mutex<GithubState>>>,
    Path(org): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    body: String,
) -> Response {
    app_form(
        state,
        Some(org),
        query,
        serde_urlencoded::from_str(&body).unwrap_or_default(),
    )
}

fn app_form(
    state: Arc<Mutex<GithubState>>,
    org: Option<String>,
    query: BTreeMap<String, String>,
    form: BTreeMap<String, String>,
) -> Response {
    let Some(manifest) = form
        .get("manifest")
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
    else {
        return (StatusCode::UNPROCESSABLE_ENTITY, "manifest missing").into_response();
    };
    let redirect = manifest["redirect_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut state = state.lock().unwrap();
    state.manifests.push((org, manifest));
    let code = format!("code{}", state.manifests.len());
    state.manifest_codes.push(code.clone());
    let stamp = query.get("state").cloned().unwrap_or_default();
    axum::response::Redirect::to(&format!("{redirect}?code={code}&state={stamp}")).into_response()
}

/// GitHub's `GET /app`: the App whose JWT signs the request, as the manifest flow named it.
async fn get_app(State(state): Shared, headers: HeaderMap) -> Response {
    if let Some(refused) = verify_app_jwt(&state, &headers) {
        return refused;
    }
    let claims = state.lock().unwrap().jwt_claims.last().cloned();
    let id = claims
        .and_then(|c| {
            c["iss"]
                .as_u64()
                .or_else(|| c["iss"].as_str()?.parse().ok())
        })
        .unwrap_or_default();
    let (_, app) = app_actor("codegen-orchestrator-acme", id);
    Json(app).into_response()
}

async fn list_installations(
    State(state): State<Arc<Mutex<GithubState>>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = verify_app_jwt(&state, &headers) {
        return refused;
    }
    let ids: std::collections::BTreeSet<u64> = state
        .lock()
        .unwrap()
        .installations
        .values()
        .copied()
        .collect();
    let payload: Value =
        serde_json::from_slice(&fixture("installation/created.payload.json")).unwrap();
    let all: Vec<Value> = ids
        .into_iter()
        .map(|id| {
            let mut installation = payload["installation"].clone();
            installation["id"] = json!(id);
            installation
        })
        .collect();
    Json(all).into_response()
}

/// The repositories of the installation whose token (`ghs_installation<id>...`) asks.
async fn installation_repositories(
    State(state): State<Arc<Mutex<GithubState>>>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let id: Option<u64> = token
        .strip_prefix("Bearer ghs_installation")
        .or_else(|| token.strip_prefix("token ghs_installation"))
        .and_then(|rest| rest.split('_').next())
        .and_then(|id| id.parse().ok());
    let Some(id) = id else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    };
    let repos: Vec<Value> = state
        .lock()
        .unwrap()
        .installations
        .iter()
        .filter(|(_, installation)| **installation == id)
        .map(|(repo, _)| json!({"full_name": repo, "name": repo.split('/').nth(1)}))
        .collect();
    Json(json!({"total_count": repos.len(), "repositories": repos})).into_response()
}

async fn repo_installation(
    State(state): State<Arc<Mutex<GithubState>>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    if let Some(refused) = verify_app_jwt(&state, &headers) {
        return refused;
    }
    let Some(id) = state.lock().unwrap().installations.get(&full).copied() else {
        return not_found();
    };
    let payload: Value =
        serde_json::from_slice(&fixture("installation/created.payload.json")).unwrap();
    let mut installation = payload["installation"].clone();
    installation["id"] = json!(id);
    Json(installation).into_response()
}

async fn access_token(
    State(state): State<Arc<Mutex<GithubState>>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = verify_app_jwt(&state, &headers) {
        return refused;
    }
    let (issued, lifetime) = {
        let mut state = state.lock().unwrap();
        state.tokens_issued += 1;
        (state.tokens_issued, state.token_lifetime_secs)
    };
    let token = if issued == 1 {
        format!("ghs_installation{id}")
    } else {
        format!("ghs_installation{id}_{issued}")
    };
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(lifetime)).to_rfc3339();
    let body = json!({
        "token": token,
        "expires_at": expires_at,
        "permissions": {"issues": "write", "metadata": "read"},
        "repository_selection": "all"
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

type Shared = State<Arc<Mutex<GithubState>>>;

/// Checks an App JWT as GitHub does: RS256, signed by the App's key, not expired. The
/// claims are kept for tests to inspect.
/// `None` when the JWT is good, else GitHub's 401 answer.
fn verify_app_jwt(state: &Mutex<GithubState>, headers: &HeaderMap) -> Option<Response> {
    let unauthorized = |message: &str| {
        (StatusCode::UNAUTHORIZED, Json(json!({"message": message}))).into_response()
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = token else {
        return Some(unauthorized("A JSON web token could not be decoded"));
    };
    let public = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/test-app-key.pub.pem"
    ))
    .unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // GitHub takes a numeric `iss` (the App id), which the library's own `iss` check would refuse;
    // the tests check `iss` and `iat` themselves.
    validation.set_required_spec_claims(&["exp"]);
    let decoded = match jsonwebtoken::decode::<Value>(&token, &key, &validation) {
        Ok(decoded) => decoded,
        Err(err) => {
            let message = format!("'Expiration time' claim ('exp') or signature is invalid: {err}");
            return Some(unauthorized(&message));
        }
    };
    state.lock().unwrap().jwt_claims.push(decoded.claims);
    None
}

fn repo_of(owner: &str, repo: &str) -> String {
    format!("{owner}/{repo}")
}

async fn get_label(
    State(state): Shared,
    Path((owner, repo, name)): Path<(String, String, String)>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let state = state.lock().unwrap();
    match state.labels.get(&full).and_then(|labels| labels.get(&name)) {
        Some((color, description)) => {
            Json(json!({"name": name, "color": color, "description": description})).into_response()
        }
        None => not_found(),
    }
}

async fn create_label(
    State(state): Shared,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let mut state = state.lock().unwrap();
    let labels = state.labels.entry(full).or_default();
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    if labels.contains_key(&name) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Validation Failed"})),
        )
            .into_response();
    }
    let color = body["color"].as_str().unwrap_or("ededed").to_owned();
    let description = body["description"].as_str().unwrap_or_default().to_owned();
    labels.insert(name.clone(), (color.clone(), description));
    (
        StatusCode::CREATED,
        Json(json!({"name": name, "color": color})),
    )
        .into_response()
}

fn issue_mut<'s>(state: &'s mut GithubState, full: &str, number: u64) -> Option<&'s mut Value> {
    state.issues.get_mut(&(full.to_owned(), number))
}

async fn add_labels(
    State(state): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let mut state = state.lock().unwrap();
    let Some(issue) = issue_mut(&mut state, &full, number) else {
        return not_found();
    };
    let labels = issue["labels"].as_array_mut().unwrap();
    let mut added = Vec::new();
    for name in body["labels"].as_array().cloned().unwrap_or_default() {
        if !labels.iter().any(|l| l["name"] == name) {
            labels.push(json!({"id": 1, "node_id": "LA_x", "url": "", "name": name, "color": "ededed", "default": false, "description": null}));
            added.push(name.as_str().unwrap_or_default().to_owned());
        }
    }
    let now = issue["labels"].clone();
    // The App's installation token labels as the App's bot account.
    for name in added {
        let (actor, app) = app_actor("codegen-orchestrator", 1);
        state.record_labeled(&full, number, &name, actor, Some(app));
    }
    Json(now).into_response()
}

async fn remove_label(
    State(state): Shared,
    Path((owner, repo, number, name)): Path<(String, String, u64, String)>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let mut state = state.lock().unwrap();
    let Some(issue) = issue_mut(&mut state, &full, number) else {
        return not_found();
    };
    let labels = issue["labels"].as_array_mut().unwrap();
    let before = labels.len();
    labels.retain(|l| l["name"] != name.as_str());
    if labels.len() == before {
        return not_found();
    }
    Json(issue["labels"].clone()).into_response()
}

async fn patch_issue(
    State(state): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let mut state = state.lock().unwrap();
    let Some(issue) = issue_mut(&mut state, &full, number) else {
        return not_found();
    };
    for key in ["state", "state_reason", "title", "body"] {
        if let Some(value) = body.get(key) {
            issue[key] = value.clone();
        }
    }
    Json(issue.clone()).into_response()
}

async fn list_comments(
    State(state): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let state = state.lock().unwrap();
    let comments: Vec<Value> = state
        .comments
        .get(&(full, number))
        .map(|all| {
            all.iter()
                .map(|(id, body)| json!({"id": id, "body": body}))
                .collect()
        })
        .unwrap_or_default();
    Json(comments).into_response()
}

async fn create_comment(
    State(state): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let mut state = state.lock().unwrap();
    state.next_id += 1;
    let id = state.next_id;
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    state
        .comments
        .entry((full, number))
        .or_default()
        .push((id, text.clone()));
    (StatusCode::CREATED, Json(json!({"id": id, "body": text}))).into_response()
}

async fn update_comment(
    State(state): Shared,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let mut state = state.lock().unwrap();
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    for ((r, _), comments) in state.comments.iter_mut() {
        if *r != full {
            continue;
        }
        if let Some(comment) = comments.iter_mut().find(|(cid, _)| *cid == id) {
            comment.1 = text.clone();
            return Json(json!({"id": id, "body": text})).into_response();
        }
    }
    not_found()
}

async fn react(
    State(state): Shared,
    Path((_owner, _repo, id)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let content = body["content"].as_str().unwrap_or_default().to_owned();
    state.lock().unwrap().reactions.push((id, content.clone()));
    (
        StatusCode::CREATED,
        Json(json!({"id": 1, "content": content})),
    )
        .into_response()
}

async fn permission(
    State(state): Shared,
    Path((owner, repo, login)): Path<(String, String, String)>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let state = state.lock().unwrap();
    match state.permissions.get(&(full, login)) {
        Some((permission, role)) => {
            Json(json!({"permission": permission, "role_name": role})).into_response()
        }
        None => not_found(),
    }
}

async fn list_issue_events(
    State(state): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let full = repo_of(&owner, &repo);
    let state = state.lock().unwrap();
    if !state.issues.contains_key(&(full.clone(), number)) {
        return not_found();
    }
    let events = state
        .issue_events
        .get(&(full, number))
        .cloned()
        .unwrap_or_default();
    paginated(events, &query, &headers, &uri)
}

/// One page of `items` (at most [`PAGE_SIZE`]) with GitHub's `Link: <...>; rel="next"`.
fn paginated(
    items: Vec<Value>,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> Response {
    let per_page = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30usize)
        .min(PAGE_SIZE);
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let total = items.len();
    let this: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut response = Json(Value::Array(this)).into_response();
    if page * per_page < total {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let mut next = query.clone();
        next.insert("page".into(), (page + 1).to_string());
        next.insert("per_page".into(), per_page.to_string());
        let query: Vec<String> = next.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let link = format!(
            "<http://{host}{}?{}>; rel=\"next\"",
            uri.path(),
            query.join("&")
        );
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    response
}

/// Whether the App can read issues of `repo`: only repositories it is installed on (in
/// token mode, with no installations, everything the token reaches).
fn readable(state: &GithubState, repo: &str) -> bool {
    state.installations.is_empty() || state.installations.contains_key(repo)
}

/// `issue` with the `issue_dependencies_summary` GitHub computes, counting blockers the
/// App cannot read too.
pub fn with_dependency_summary(state: &GithubState, key: &(String, u64), issue: &Value) -> Value {
    let ids = state.blocked_by.get(key).cloned().unwrap_or_default();
    let blockers: Vec<&Value> = state
        .issues
        .values()
        .filter(|i| ids.contains(&i["id"].as_u64().unwrap_or(0)))
        .collect();
    let open = blockers.iter().filter(|b| b["state"] == "open").count();
    let id = issue["id"].as_u64().unwrap_or(0);
    let blocking: Vec<&Value> = state
        .blocked_by
        .iter()
        .filter(|(_, ids)| ids.contains(&id))
        .filter_map(|(k, _)| state.issues.get(k))
        .collect();
    let mut issue = issue.clone();
    issue["issue_dependencies_summary"] = json!({
        "blocked_by": open,
        "total_blocked_by": blockers.len(),
        "blocking": blocking.iter().filter(|b| b["state"] == "open").count(),
        "total_blocking": blocking.len(),
    });
    // Like GitHub: every sub-issue counts, those the App cannot read too.
    let children = state.sub_issues.get(key).cloned().unwrap_or_default();
    let completed = children
        .iter()
        .filter_map(|child| state.issues.get(child))
        .filter(|c| c["state"] == "closed" && c["state_reason"] == "completed")
        .count();
    let total = children.len();
    issue["sub_issues_summary"] = json!({
        "total": total,
        "completed": completed,
        "percent_completed": (completed * 100).checked_div(total).unwrap_or(0),
    });
    issue
}

/// `GET .../issues/{n}/sub_issues`: like GitHub, only the sub-issues the installation can
/// read are listed (the summary counts the others), each with its own summaries, a page at
/// a time.
async fn list_sub_issues(
    State(state): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let full = repo_of(&owner, &repo);
    let state = state.lock().unwrap();
    if !state.issues.contains_key(&(full.clone(), number)) {
        return not_found();
    }
    let children = state
        .sub_issues
        .get(&(full, number))
        .cloned()
        .unwrap_or_default();
    let listed: Vec<Value> = children
        .iter()
        .filter(|(repo, _)| readable(&state, repo))
        .filter_map(|key| Some(with_dependency_summary(&state, key, state.issues.get(key)?)))
        .collect();
    paginated(listed, &query, &headers, &uri)
}

async fn list_blocked_by(
    State(state): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let state = state.lock().unwrap();
    let ids = state
        .blocked_by
        .get(&(full, number))
        .cloned()
        .unwrap_or_default();
    // Like GitHub: only the blockers the installation can read are listed; the summary
    // still counts the others.
    let blockers: Vec<Value> = state
        .issues
        .iter()
        .filter(|(_, i)| ids.contains(&i["id"].as_u64().unwrap_or(0)))
        .filter(|((repo, _), _)| readable(&state, repo))
        .map(|(key, i)| with_dependency_summary(&state, key, i))
        .collect();
    Json(blockers).into_response()
}

async fn add_blocked_by(
    State(state): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let mut state = state.lock().unwrap();
    let Some(id) = body["issue_id"].as_u64() else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "issue_id must be an integer"})),
        )
            .into_response();
    };
    if !state.issues.values().any(|i| i["id"].as_u64() == Some(id)) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "no issue with that id"})),
        )
            .into_response();
    }
    let ids = state.blocked_by.entry((full, number)).or_default();
    // GitHub refuses a link that exists, and more than 50 blockers per issue.
    if ids.contains(&id) || ids.len() >= 50 {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Validation Failed"})),
        )
            .into_response();
    }
    ids.push(id);
    (StatusCode::CREATED, Json(json!({}))).into_response()
}

async fn remove_blocked_by(
    State(state): Shared,
    Path((owner, repo, number, id)): Path<(String, String, u64, u64)>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let mut state = state.lock().unwrap();
    let ids = state.blocked_by.entry((full, number)).or_default();
    let before = ids.len();
    ids.retain(|x| *x != id);
    if ids.len() == before {
        not_found()
    } else {
        Json(json!({})).into_response()
    }
}

/// GraphQL: answers the app's documents (told apart by operation name) from the state.
async fn graphql(State(state): Shared, Json(request): Json<Value>) -> Response {
    let query = request["query"].as_str().unwrap_or_default();
    let vars = &request["variables"];
    let operation = query
        .split_whitespace()
        .skip_while(|word| *word != "query" && *word != "mutation")
        .nth(1)
        .unwrap_or_default()
        .split('(')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut state = state.lock().unwrap();
    let mut errors: Vec<Value> = Vec::new();
    let data = match operation.as_str() {
        "IssueProjectItems" => {
            let content = (
                format!(
                    "{}/{}",
                    vars["owner"].as_str().unwrap(),
                    vars["repo"].as_str().unwrap()
                ),
                vars["number"].as_u64().unwrap(),
            );
            let field_name = vars["field"].as_str().unwrap();
            let mut nodes = Vec::new();
            for (project_id, project) in &state.projects {
                for (item_id, item_content, values) in &project.items {
                    if *item_content != content {
                        continue;
                    }
                    if state.forbidden_projects.contains(project_id) {
                        // `project` is non-null in the schema, so the null spreads to the item.
                        errors.push(forbidden(json!([
                            "repository",
                            "issue",
                            "projectItems",
                            "nodes",
                            nodes.len(),
                            "project"
                        ])));
                        nodes.push(Value::Null);
                        continue;
                    }
                    let value = project
                        .fields
                        .iter()
                        .find(|(_, name, _)| name == field_name)
                        .and_then(|(field_id, _, options)| {
                            let option_id = values.get(field_id)?;
                            let (_, option_name) =
                                options.iter().find(|(id, _)| id == option_id)?;
                            Some(json!({"name": option_name, "optionId": option_id}))
                        });
                    nodes.push(json!({"id": item_id, "project": {"id": project_id, "title": project.title}, "fieldValueByName": value}));
                }
            }
            json!({"repository": {"issue": {"id": "I_fake", "projectItems": {"nodes": nodes}}}})
        }
        "ProjectFields" => {
            let project_id = vars["project"].as_str().unwrap();
            match state.projects.get(project_id) {
                Some(_) if state.forbidden_projects.contains(project_id) => {
                    errors.push(forbidden(json!(["node"])));
                    json!({"node": null})
                }
                Some(project) => {
                    let mut nodes: Vec<Value> = vec![json!({})]; // a text field: the fragment does not match
                    nodes.extend(project.fields.iter().map(|(id, name, options)| {
                        json!({"id": id, "name": name, "options": options.iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>()})
                    }));
                    json!({"node": {"id": project_id, "fields": {"nodes": nodes}}})
                }
                None => json!({"node": null}),
            }
        }
        "SetSingleSelect" => {
            state.mutations.push((operation.clone(), vars.clone()));
            let (project_id, item_id, field_id, option_id) = (
                vars["project"].as_str().unwrap(),
                vars["item"].as_str().unwrap(),
                vars["field"].as_str().unwrap(),
                vars["option"].as_str().unwrap(),
            );
            if state.forbidden_projects.contains(project_id)
                || state.read_only_projects.contains(project_id)
            {
                let error = forbidden(json!(["updateProjectV2ItemFieldValue"]));
                return Json(
                    json!({"data": {"updateProjectV2ItemFieldValue": null}, "errors": [error]}),
                )
                .into_response();
            }
            let Some(project) = state.projects.get_mut(project_id) else {
                return Json(json!({"data": null, "errors": [{"type": "NOT_FOUND", "message": "Could not resolve to a node with the global id"}]})).into_response();
            };
            if let Some((_, _, values)) = project.items.iter_mut().find(|(id, _, _)| id == item_id)
            {
                values.insert(field_id.to_owned(), option_id.to_owned());
            }
            json!({"updateProjectV2ItemFieldValue": {"projectV2Item": {"id": item_id}}})
        }
        "AddProjectItem" => {
            state.mutations.push((operation.clone(), vars.clone()));
            json!({"addProjectV2ItemById": {"item": {"id": format!("PVTI_{}", vars["content"].as_str().unwrap())}}})
        }
        "IssueByNode" => {
            let id = vars["id"].as_str().unwrap();
            let found = state
                .issues
                .iter()
                .find(|(_, issue)| issue["node_id"] == id);
            match found {
                Some(((repo, number), _)) => {
                    json!({"node": {"number": number, "repository": {"nameWithOwner": repo}}})
                }
                None => json!({"node": null}),
            }
        }
        "ClosingPullRequests" => {
            let key = (
                format!(
                    "{}/{}",
                    vars["owner"].as_str().unwrap(),
                    vars["repo"].as_str().unwrap()
                ),
                vars["number"].as_u64().unwrap(),
            );
            let nodes = state.closing.get(&key).cloned().unwrap_or_default();
            json!({"repository": {"issue": {"closedByPullRequestsReferences": {"nodes": nodes}}}})
        }
        other => {
            return Json(json!({"data": null, "errors": [{"message": format!("the fake does not know {other}")}]})).into_response();
        }
    };
    if errors.is_empty() {
        Json(json!({"data": data})).into_response()
    } else {
        Json(json!({"data": data, "errors": errors})).into_response()
    }
}

/// GitHub's GraphQL error for something the credentials may not see, at `path` in `data`.
fn forbidden(path: Value) -> Value {
    json!({
        "type": "FORBIDDEN",
        "path": path,
        "extensions": {"saml_failure": false},
        "locations": [{"line": 7, "column": 11}],
        "message": "Resource not accessible by integration",
    })
}

async fn get_pull(
    State(state): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let state = state.lock().unwrap();
    let Some((sha, mergeable, merged)) = state.pulls.get(&(full.clone(), number)).cloned() else {
        return not_found();
    };
    Json(json!({
        "number": number, "title": format!("Fix #{number}"), "state": if merged { "closed" } else { "open" },
        "merged": merged, "mergeable": mergeable,
        "mergeable_state": if merged { "unknown" } else if !mergeable { "dirty" } else if state.failing_checks.contains(&(full.clone(), number)) { "unstable" } else { "clean" },
        "head": {"ref": format!("codegen/{number}-fix"), "sha": sha},
        "base": {"ref": "main", "sha": "base000"},
        "html_url": format!("https://github.com/{full}/pull/{number}"),
    }))
    .into_response()
}

async fn merge_pull(
    State(state): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let mut state = state.lock().unwrap();
    let Some(pull) = state.pulls.get_mut(&(full, number)) else {
        return not_found();
    };
    if body["sha"] != pull.0.as_str() {
        return (
            StatusCode::CONFLICT,
            Json(json!({"message": "Head branch was modified. Review and try the merge again."})),
        )
            .into_response();
    }
    if !pull.1 {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            Json(json!({"message": "Pull Request is not mergeable"})),
        )
            .into_response();
    }
    pull.2 = true;
    Json(json!({"merged": true, "message": "Pull Request successfully merged"})).into_response()
}

async fn get_branch(
    State(state): Shared,
    Path((owner, repo, branch)): Path<(String, String, String)>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let state = state.lock().unwrap();
    match state.branches.get(&(full, branch.clone())) {
        Some(sha) => Json(json!({"ref": format!("refs/heads/{branch}"), "object": {"sha": sha, "type": "commit"}})).into_response(),
        None => not_found(),
    }
}

async fn create_ref(
    State(state): Shared,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let full = repo_of(&owner, &repo);
    let mut state = state.lock().unwrap();
    let name = body["ref"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("refs/heads/")
        .to_owned();
    let key = (full, name);
    if state.branches.contains_key(&key) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Reference already exists"})),
        )
            .into_response();
    }
    state
        .branches
        .insert(key, body["sha"].as_str().unwrap_or_default().to_owned());
    (StatusCode::CREATED, Json(json!({"ref": body["ref"]}))).into_response()
}
