//! A stateful fake of Codegen's API (the parts in `../shared/fixtures/codegen/openapi.json`
//! the app uses), served by axum on a local port. Runs live in the fake's state; tests move
//! them along (`set_status`), inject faults, and read what the app sent.
//!
//! It is as unkind as the published description: `GET .../agent/runs` lists the whole
//! organisation's runs, newest first, in pages of at most 100, filtered by `user_id` and
//! `source_type` only when asked; `POST .../agent/run/ban` flags the run's pull request and
//! stops every agent on it, and the flag stays until `POST .../agent/run/unban`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// The token the fake accepts.
pub const TOKEN: &str = "cg-test-token";
/// The organisation the fake serves.
pub const ORG: u64 = 77;
/// The user `TOKEN` belongs to (`GET /v1/users/me`); runs it creates carry this user.
pub const USER_ID: u64 = 3141;
/// The source types `ApiAgentRunSourceType` allows.
const SOURCE_TYPES: &[&str] = &[
    "LOCAL",
    "SLACK",
    "GITHUB",
    "GITHUB_CHECK_SUITE",
    "GITHUB_PR_REVIEW",
    "LINEAR",
    "API",
    "CHAT",
    "JIRA",
    "CLICKUP",
    "MONDAY",
    "SETUP_COMMANDS",
];

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `POST .../agent/run`
    Create,
    /// Any GET.
    Read,
    /// `POST .../agent/run/ban`
    Stop,
    /// `POST .../agent/run/unban`
    Unban,
}

/// One injected fault, used by the next matching request.
#[derive(Debug, Clone)]
pub struct Fault {
    pub target: Target,
    pub status: u16,
    pub body: Value,
    /// For creations: create the run anyway, then answer with the fault (a lost answer).
    /// With status 200 (creations and bans), the normal answer after `delay` (a slow one).
    pub create_anyway: bool,
    /// Wait this long before answering (the run, if any, is created first).
    pub delay: Duration,
}

/// One run as the fake keeps it.
#[derive(Debug, Clone)]
pub struct FakeRun {
    pub id: u64,
    pub status: String,
    pub prompt: String,
    pub metadata: Value,
    pub repo_id: Value,
    pub result: Option<String>,
    pub summary: Option<String>,
    pub pull_requests: Vec<Value>,
    /// Who started it (`user_id` of the runs list).
    pub user_id: u64,
    pub source_type: String,
    /// Its pull request is flagged against check-suite events (a ban not yet lifted).
    pub banned: bool,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct SeenCall {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: String,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
pub struct CodegenState {
    pub runs: BTreeMap<u64, FakeRun>,
    pub next_id: u64,
    /// Repositories known to the organisation: (id, full_name).
    pub repos: Vec<(u64, String)>,
    pub faults: VecDeque<Fault>,
    pub calls: Vec<SeenCall>,
    /// Status given to new runs.
    pub initial_status: String,
    /// Random creation faults: (5xx rate, 429 rate). Half of the 5xx create the run
    /// anyway (the answer is lost).
    pub random_faults: Option<(f64, f64)>,
    /// Faults injected so far: (5xx, of which the run was created, 429).
    pub faults_injected: (u64, u64, u64),
    /// A ban flags the pull request but the agents on it keep their status until a test
    /// moves them (Codegen does not say how soon a stopped run reports it).
    pub ban_leaves_runs_going: bool,
    /// Network time before the server sees each of the next requests (a new connection's
    /// handshake, a slow path): the call is recorded only after it.
    pub arrival_delays: VecDeque<Duration>,
}

/// A running fake.
pub struct FakeCodegen {
    pub url: String,
    pub state: Arc<Mutex<CodegenState>>,
}

type Shared = Arc<Mutex<CodegenState>>;

impl FakeCodegen {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(CodegenState {
            next_id: 1000,
            initial_status: "ACTIVE".into(),
            ..CodegenState::default()
        }));
        let app = Router::new()
            .route("/v1/users/me", get(current_user))
            .route("/v1/organizations/{org}/agent/run", post(create_run))
            .route("/v1/organizations/{org}/agent/run/ban", post(ban_run))
            .route("/v1/organizations/{org}/agent/run/unban", post(unban_run))
            .route("/v1/organizations/{org}/agent/run/{id}", get(get_run))
            .route("/v1/organizations/{org}/agent/runs", get(list_runs))
            .route("/v1/organizations/{org}/repos", get(list_repos))
            .layer(middleware::from_fn_with_state(state.clone(), network_delay))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    pub fn add_repo(&self, id: u64, full_name: &str) {
        self.state
            .lock()
            .unwrap()
            .repos
            .push((id, full_name.to_owned()));
    }

    /// A run created by someone else in the organisation (another tool, the web UI).
    pub fn add_foreign_run(&self, status: &str, metadata: Value) -> u64 {
        self.add_run_by(USER_ID + 1, "API", status, metadata)
    }

    /// A run started by `user_id` from `source_type` (`API`, `SLACK`, `GITHUB` ...).
    pub fn add_run_by(
        &self,
        user_id: u64,
        source_type: &str,
        status: &str,
        metadata: Value,
    ) -> u64 {
        let mut state = self.state.lock().unwrap();
        state.next_id += 1;
        let id = state.next_id;
        state.runs.insert(
            id,
            FakeRun {
                id,
                status: status.into(),
                prompt: String::new(),
                metadata,
                repo_id: Value::Null,
                result: None,
                summary: None,
                pull_requests: Vec::new(),
                user_id,
                source_type: source_type.into(),
                banned: false,
            },
        );
        id
    }

    /// A busy organisation: `count` newer runs by other people, through the API and
    /// elsewhere, some with metadata shaped like ours.
    pub fn add_busy_organisation(&self, count: usize) {
        for n in 0..count {
            let source = ["API", "SLACK", "GITHUB", "API", "LINEAR"][n % 5];
            let metadata = json!({"installation_id": 42, "repository": "acme/other", "issue_number": n, "attempt": 1});
            self.add_run_by(USER_ID + 1 + (n % 7) as u64, source, "ACTIVE", metadata);
        }
    }

    /// The next requests reach the server only after these delays, one each.
    pub fn delay_arrivals(&self, delays: &[Duration]) {
        self.state
            .lock()
            .unwrap()
            .arrival_delays
            .extend(delays.iter().copied());
    }

    pub fn set_status(&self, id: u64, status: &str) {
        self.state
            .lock()
            .unwrap()
            .runs
            .get_mut(&id)
            .expect("no such run")
            .status = status.into();
    }

    /// Finishes a run the way Codegen reports it: status, summary and a pull request.
    pub fn finish(&self, id: u64, status: &str, pull_request: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        let run = state.runs.get_mut(&id).expect("no such run");
        run.status = status.into();
        run.summary = Some(format!("run {id} {status}"));
        run.result = Some("done".into());
        if let Some(url) = pull_request {
            run.pull_requests.push(json!({
                "id": id, "title": "Agent PR", "url": url,
                "created_at": "2026-11-25T12:00:00Z", "head_branch_name": format!("codegen-bot/{id}"),
            }));
        }
    }

    pub fn fault(&self, target: Target, status: u16, body: Value) {
        self.push_fault(Fault {
            target,
            status,
            body,
            create_anyway: false,
            delay: Duration::ZERO,
        });
    }

    pub fn push_fault(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    pub fn runs(&self) -> Vec<FakeRun> {
        self.state.lock().unwrap().runs.values().cloned().collect()
    }

    pub fn calls(&self) -> Vec<SeenCall> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Bans from now on flag pull requests without changing any run's status.
    pub fn leave_banned_runs_going(&self) {
        self.state.lock().unwrap().ban_leaves_runs_going = true;
    }

    /// The most requests `which` selects that the fake saw within any `window`.
    pub fn most_within(&self, window: Duration, which: impl Fn(&SeenCall) -> bool) -> usize {
        let times: Vec<Instant> = self
            .calls()
            .iter()
            .filter(|c| which(c))
            .map(|c| c.at)
            .collect();
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|&&t| t < times[i] + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    pub fn calls_to(&self, method: &str, suffix: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.method == method && c.path.ends_with(suffix))
            .count()
    }
}

fn record(
    state: &Shared,
    method: &str,
    path: String,
    query: String,
    headers: &HeaderMap,
    body: Value,
) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    state.lock().unwrap().calls.push(SeenCall {
        method: method.into(),
        path,
        query,
        authorization,
        body,
        at: Instant::now(),
    });
}

/// Sleeps through the network delay queued for the next request, before any handler sees it.
async fn network_delay(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let delay = state.lock().unwrap().arrival_delays.pop_front();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    next.run(request).await
}

fn token_is_valid(headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {TOKEN}");
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&expected)
}

/// 403 for a wrong token or another organisation, as Codegen answers.
fn refused(org: u64, headers: &HeaderMap) -> Option<Response> {
    (!token_is_valid(headers) || org != ORG).then(|| {
        (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "You do not have access to this organization.", "status_code": 403})),
        )
            .into_response()
    })
}

fn take_fault(state: &Shared, target: Target) -> Option<Fault> {
    let mut state = state.lock().unwrap();
    let position = state.faults.iter().position(|f| f.target == target)?;
    state.faults.remove(position)
}

fn fault_response(fault: &Fault) -> Response {
    (
        StatusCode::from_u16(fault.status).unwrap(),
        Json(fault.body.clone()),
    )
        .into_response()
}

fn run_json(run: &FakeRun) -> Value {
    json!({
        "id": run.id,
        "organization_id": ORG,
        "status": run.status,
        "created_at": "2026-11-25T12:00:00Z",
        "web_url": format!("https://codegen.com/agent/trace/{}", run.id),
        "result": run.result,
        "summary": run.summary,
        "source_type": run.source_type,
        "github_pull_requests": run.pull_requests,
        "metadata": run.metadata,
    })
}

async fn create_run(
    State(state): State<Shared>,
    Path(org): Path<u64>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    record(
        &state,
        "POST",
        format!("/v1/organizations/{org}/agent/run"),
        String::new(),
        &headers,
        parsed.clone(),
    );
    if let Some(refusal) = refused(org, &headers) {
        return refusal;
    }
    let random = state.lock().unwrap().random_faults;
    let fault = take_fault(&state, Target::Create).or_else(|| {
        let (errors, limited) = random?;
        let roll = fastrand::f64();
        let mut state = state.lock().unwrap();
        if roll < errors {
            let create_anyway = fastrand::bool();
            state.faults_injected.0 += 1;
            state.faults_injected.1 += u64::from(create_anyway);
            Some(Fault { target: Target::Create, status: 502, body: json!({"message": "Bad Gateway"}), create_anyway, delay: Duration::ZERO })
        } else if roll < errors + limited {
            state.faults_injected.2 += 1;
            Some(Fault { target: Target::Create, status: 429, body: json!({"message": "Rate limit exceeded. Please try again later.", "status_code": 429}), create_anyway: false, delay: Duration::ZERO })
        } else {
            None
        }
    });
    if let Some(fault) = &fault
        && !fault.create_anyway
    {
        tokio::time::sleep(fault.delay).await;
        return fault_response(fault);
    }
    let Some(prompt) = parsed.get("prompt").and_then(Value::as_str) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": [{"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"}]})),
        )
            .into_response();
    };
    let repo_id = parsed.get("repo_id").cloned().unwrap_or(Value::Null);
    if !(repo_id.is_null() || repo_id.is_u64()) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": [{"loc": ["body", "repo_id"], "msg": "Input should be a valid integer", "type": "int_parsing"}]})),
        )
            .into_response();
    }
    let run = {
        let mut state = state.lock().unwrap();
        state.next_id += 1;
        let run = FakeRun {
            id: state.next_id,
            status: state.initial_status.clone(),
            prompt: prompt.to_owned(),
            metadata: parsed.get("metadata").cloned().unwrap_or(Value::Null),
            repo_id,
            result: None,
            summary: None,
            pull_requests: Vec::new(),
            user_id: USER_ID,
            source_type: "API".into(),
            banned: false,
        };
        state.runs.insert(run.id, run.clone());
        run
    };
    if let Some(fault) = fault {
        tokio::time::sleep(fault.delay).await;
        if fault.status != 200 {
            return fault_response(&fault);
        }
    }
    Json(run_json(&run)).into_response()
}

async fn get_run(
    State(state): State<Shared>,
    Path((org, id)): Path<(u64, u64)>,
    headers: HeaderMap,
) -> Response {
    record(
        &state,
        "GET",
        format!("/v1/organizations/{org}/agent/run/{id}"),
        String::new(),
        &headers,
        Value::Null,
    );
    if let Some(refusal) = refused(org, &headers) {
        return refusal;
    }
    if let Some(fault) = take_fault(&state, Target::Read) {
        return fault_response(&fault);
    }
    match state.lock().unwrap().runs.get(&id) {
        Some(run) => Json(run_json(run)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Agent run not found.", "status_code": 404})),
        )
            .into_response(),
    }
}

fn page(query: &BTreeMap<String, String>) -> Result<(usize, usize), Box<Response>> {
    let skip = query.get("skip").map_or(Ok(0), |s| s.parse::<usize>());
    let limit = query.get("limit").map_or(Ok(100), |s| s.parse::<usize>());
    match (skip, limit) {
        (Ok(skip), Ok(limit)) if (1..=100).contains(&limit) => Ok((skip, limit)),
        _ => Err(Box::new((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": [{"loc": ["query", "limit"], "msg": "Input should be less than or equal to 100", "type": "less_than_equal"}]})),
        )
            .into_response())),
    }
}

fn invalid_query(name: &str, message: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": [{"loc": ["query", name], "msg": message, "type": "invalid"}]})),
    )
        .into_response()
}

fn page_json(items: Vec<Value>, total: usize, skip: usize, limit: usize) -> Value {
    json!({
        "items": items,
        "total": total,
        "page": skip / limit + 1,
        "size": limit,
        "pages": total.div_ceil(limit),
    })
}

async fn list_runs(
    State(state): State<Shared>,
    Path(org): Path<u64>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let query_text = serde_urlencoded::to_string(&query).unwrap();
    record(
        &state,
        "GET",
        format!("/v1/organizations/{org}/agent/runs"),
        query_text,
        &headers,
        Value::Null,
    );
    if let Some(refusal) = refused(org, &headers) {
        return refusal;
    }
    if let Some(fault) = take_fault(&state, Target::Read) {
        return fault_response(&fault);
    }
    let (skip, limit) = match page(&query) {
        Ok(page) => page,
        Err(response) => return *response,
    };
    let user_id = match query.get("user_id").map(|text| text.parse::<u64>()) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return invalid_query("user_id", "Input should be a valid integer"),
    };
    let source_type = query.get("source_type");
    if source_type.is_some_and(|s| !SOURCE_TYPES.contains(&s.as_str())) {
        return invalid_query("source_type", "Input should be a valid source type");
    }
    let state = state.lock().unwrap();
    // The whole organisation's runs, newest first; narrowed only by the filters asked for.
    let matching: Vec<&FakeRun> = state
        .runs
        .values()
        .rev()
        .filter(|run| user_id.is_none_or(|id| id == run.user_id))
        .filter(|run| source_type.is_none_or(|s| *s == run.source_type))
        .collect();
    let items = matching
        .iter()
        .skip(skip)
        .take(limit)
        .map(|r| run_json(r))
        .collect();
    Json(page_json(items, matching.len(), skip, limit)).into_response()
}

async fn list_repos(
    State(state): State<Shared>,
    Path(org): Path<u64>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let query_text = serde_urlencoded::to_string(&query).unwrap();
    record(
        &state,
        "GET",
        format!("/v1/organizations/{org}/repos"),
        query_text,
        &headers,
        Value::Null,
    );
    if let Some(refusal) = refused(org, &headers) {
        return refusal;
    }
    if let Some(fault) = take_fault(&state, Target::Read) {
        return fault_response(&fault);
    }
    let (skip, limit) = match page(&query) {
        Ok(page) => page,
        Err(response) => return *response,
    };
    let state = state.lock().unwrap();
    let items = state
        .repos
        .iter()
        .skip(skip)
        .take(limit)
        .map(|(id, full_name)| {
            let name = full_name.split('/').nth(1).unwrap_or_default();
            json!({
                "id": id, "name": name, "full_name": full_name, "description": null,
                "github_id": (id * 10).to_string(), "organization_id": ORG, "visibility": "private",
                "archived": false, "setup_status": "COMPLETE", "language": "Rust",
            })
        })
        .collect();
    Json(page_json(items, state.repos.len(), skip, limit)).into_response()
}

/// `GET /v1/users/me`: the user the token belongs to (`UserResponse`).
async fn current_user(State(state): State<Shared>, headers: HeaderMap) -> Response {
    record(
        &state,
        "GET",
        "/v1/users/me".into(),
        String::new(),
        &headers,
        Value::Null,
    );
    if !token_is_valid(&headers) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "You do not have access to this organization.", "status_code": 403})),
        )
            .into_response();
    }
    if let Some(fault) = take_fault(&state, Target::Read) {
        return fault_response(&fault);
    }
    Json(json!({
        "id": USER_ID, "email": "bot@acme.example", "github_user_id": "9000001",
        "github_username": "acme-orchestrator", "avatar_url": null, "full_name": "Acme orchestrator",
        "role": "MEMBER", "is_admin": false,
    }))
    .into_response()
}

async fn ban_run(
    State(state): State<Shared>,
    Path(org): Path<u64>,
    headers: HeaderMap,
    body: String,
) -> Response {
    flag_run(state, org, headers, body, true).await
}

async fn unban_run(
    State(state): State<Shared>,
    Path(org): Path<u64>,
    headers: HeaderMap,
    body: String,
) -> Response {
    flag_run(state, org, headers, body, false).await
}

/// Ban: flags the run's pull request and stops every agent on it (the run alone when it
/// has none yet). Unban: lifts the flag; stopped runs stay stopped.
async fn flag_run(
    state: Shared,
    org: u64,
    headers: HeaderMap,
    body: String,
    ban: bool,
) -> Response {
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (verb, target) = if ban {
        ("ban", Target::Stop)
    } else {
        ("unban", Target::Unban)
    };
    record(
        &state,
        "POST",
        format!("/v1/organizations/{org}/agent/run/{verb}"),
        String::new(),
        &headers,
        parsed.clone(),
    );
    if let Some(refusal) = refused(org, &headers) {
        return refusal;
    }
    if let Some(fault) = take_fault(&state, target) {
        tokio::time::sleep(fault.delay).await;
        if fault.status != 200 {
            return fault_response(&fault);
        }
    }
    let Some(id) = parsed.get("agent_run_id").and_then(Value::as_u64) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": [{"loc": ["body", "agent_run_id"], "msg": "Field required", "type": "missing"}]})),
        )
            .into_response();
    };
    let mut state = state.lock().unwrap();
    let Some(run) = state.runs.get(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Agent run not found.", "status_code": 404})),
        )
            .into_response();
    };
    let pulls: Vec<Value> = run
        .pull_requests
        .iter()
        .map(|pr| pr["url"].clone())
        .collect();
    let stop = ban && !state.ban_leaves_runs_going;
    for run in state.runs.values_mut() {
        let same_pull = run
            .pull_requests
            .iter()
            .any(|pr| pulls.contains(&pr["url"]));
        if run.id != id && !same_pull {
            continue;
        }
        run.banned = ban;
        let running = !matches!(
            run.status.to_ascii_uppercase().as_str(),
            "COMPLETE" | "COMPLETED" | "FAILED" | "ERROR" | "CANCELLED" | "STOPPED"
        );
        if stop && running {
            run.status = "CANCELLED".into();
        }
    }
    Json(json!({})).into_response()
}
