//! A stateful fake of Codegen's API (the parts in `../shared/fixtures/codegen/openapi.json`
//! the app uses), served by axum on a local port. Runs live in the fake's state; tests move
//! them along (`set_status`), inject faults, and read what the app sent.
//!
//! It is as unkind as the published description: `GET .../agent/runs` lists the whole
//! organisation's runs, newest first, in pages of at most 100, filtered by `user_id` and
//! `source_type` only when asked; `POST .../agent/run/ban` flags the run's pull request and
//! stops every agent on it, and the flag stays until `POST .../agent/run/unban`. A
//! throttled endpoint answers 429 to everything until its time is up, however often it is
//! asked, with a `Retry-After` in whole seconds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod routes;

/// The token the fake accepts.
pub const TOKEN: &str = "cg-test-token";
/// The organisation the fake serves.
pub const ORG: u64 = 77;
/// The user `TOKEN` belongs to (`GET /v1/users/me`); runs it creates carry this user.
pub const USER_ID: u64 = 3141;
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
    /// Requests a target selects are answered 429 until then.
    pub throttled: Vec<(Target, Instant)>,
    /// How long every answer takes after the request was recorded and handled, as a
    /// remote service's would (zero: at once). Benches set it; it applies to every route.
    pub latency: Duration,
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
        let app = routes::router(state.clone());
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

    /// Every answer from now on comes `latency` after its request arrived.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
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

    /// Every request `target` selects is answered 429, with `Retry-After` rounded up to
    /// whole seconds, for the next `period`.
    pub fn throttle(&self, target: Target, period: Duration) {
        self.state
            .lock()
            .unwrap()
            .throttled
            .push((target, Instant::now() + period));
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
