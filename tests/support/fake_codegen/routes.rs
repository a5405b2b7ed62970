//! The fake's endpoints: each records the call, then answers from the shared state as
//! Codegen would, or with the fault, throttle or refusal a test arranged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{FakeRun, Fault, ORG, SeenCall, Shared, TOKEN, Target, USER_ID};

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

/// The API's routes over `state`.
pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/users/me", get(current_user))
        .route("/v1/organizations/{org}/agent/run", post(create_run))
        .route("/v1/organizations/{org}/agent/run/ban", post(ban_run))
        .route("/v1/organizations/{org}/agent/run/unban", post(unban_run))
        .route("/v1/organizations/{org}/agent/run/{id}", get(get_run))
        .route("/v1/organizations/{org}/agent/runs", get(list_runs))
        .route("/v1/organizations/{org}/repos", get(list_repos))
        .layer(middleware::from_fn_with_state(state.clone(), network_delay))
        .with_state(state)
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

/// Sleeps through the network delay queued for the next request, before any handler sees
/// it, and holds the answer back for the state's `latency`.
async fn network_delay(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let delay = state.lock().unwrap().arrival_delays.pop_front();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let response = next.run(request).await;
    let latency = state.lock().unwrap().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    response
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

/// The 429 of a throttled `target`, while its time lasts.
fn throttled(state: &Shared, target: Target) -> Option<Response> {
    let now = Instant::now();
    let until = state
        .lock()
        .unwrap()
        .throttled
        .iter()
        .filter(|(t, until)| *t == target && *until > now)
        .map(|(_, until)| *until)
        .max()?;
    let seconds = (until - now).as_secs_f64().ceil() as u64;
    Some(
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", seconds.to_string())],
            Json(json!({"message": "Rate limit exceeded. Please try again later.", "status_code": 429})),
        )
            .into_response(),
    )
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
    if let Some(limited) = throttled(&state, Target::Create) {
        return limited;
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
    if let Some(limited) = throttled(&state, Target::Read) {
        return limited;
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
    if let Some(limited) = throttled(&state, Target::Read) {
        return limited;
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
    if let Some(limited) = throttled(&state, Target::Read) {
        return limited;
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
    if let Some(limited) = throttled(&state, Target::Read) {
        return limited;
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
