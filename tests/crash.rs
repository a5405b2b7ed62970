//! Crash recovery: the real binary serves while deliveries are posted under the faults of
//! `tests/faults.rs` (GitHub: 10 % 500, 5 % secondary-limit 403, latency; Codegen: 10 %
//! 5xx, half after creating the run, 2 % 429), and is killed with SIGKILL three times at
//! random moments and restarted on the same database. Nothing that got a 2xx is lost, no
//! run is created twice, no status comment is duplicated, and the end state equals that of
//! the same deliveries without crashes.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use codegen_orchestrator::http::sign;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::fake_codegen::{self, FakeCodegen};
use support::fake_github::FakeGithub;
use support::{SECRET, fixture};

const BIN: &str = env!("CARGO_BIN_EXE_codegen-orchestrator");
const ISSUES: u64 = 30;

/// The fakes and what the server is told about them.
struct Scenario {
    github: FakeGithub,
    codegen: FakeCodegen,
    dir: tempfile::TempDir,
    port: u16,
}

impl Scenario {
    async fn new() -> Self {
        let github = FakeGithub::start().await;
        let codegen = FakeCodegen::start().await;
        {
            let mut state = github.state.lock().unwrap();
            state.installations.insert("acme/api".into(), 42);
            state.permissions.insert(
                ("acme/api".into(), "maintainer".into()),
                ("write".into(), "write".into()),
            );
        }
        for n in 1..=ISSUES {
            let body = if n % 5 == 0 {
                format!("Depends on #{}", n - 1)
            } else {
                String::new()
            };
            github.add_issue("acme/api", n, &format!("Issue {n}"), &body, &[]);
        }
        github.state.lock().unwrap().random_faults = Some((0.10, 0.05, 3));
        codegen.state.lock().unwrap().random_faults = Some((0.10, 0.02));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            github,
            codegen,
            dir: tempfile::tempdir().unwrap(),
            port,
        }
    }

    fn start_server(&self, generation: usize) -> Child {
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/test-app-key.pem"
        ))
        .unwrap();
        let log = std::fs::File::create(self.dir.path().join(format!("server-{generation}.log")))
            .unwrap();
        Command::new(BIN)
            .arg("serve")
            .current_dir(self.dir.path())
            .env_clear()
            .env(
                "CODEGEN_ORCHESTRATOR__SERVER__LISTEN",
                format!("127.0.0.1:{}", self.port),
            )
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_API_URL", &self.github.url)
            .env("GITHUB_APP_ID", "1")
            .env("GITHUB_PRIVATE_KEY", pem)
            .env("CODEGEN_API_URL", &self.codegen.url)
            .env("CODEGEN_ORG_ID", fake_codegen::ORG.to_string())
            .env("CODEGEN_API_TOKEN", fake_codegen::TOKEN)
            .env(
                "CODEGEN_ORCHESTRATOR__CODEGEN__MAX_CONCURRENT_AGENTS",
                "1000",
            )
            .env(
                "CODEGEN_ORCHESTRATOR__CODEGEN__CREATIONS_PER_MINUTE",
                "100000",
            )
            .env("CODEGEN_ORCHESTRATOR__CODEGEN__POLL_INTERVAL_SECS", "1")
            .env("CODEGEN_ORCHESTRATOR__CODEGEN__RETRY_ATTEMPTS", "8")
            .env("CODEGEN_ORCHESTRATOR__GITHUB__WRITES_PER_MINUTE", "100000")
            .env("CODEGEN_ORCHESTRATOR__GITHUB__WRITES_PER_HOUR", "1000000")
            .env("CODEGEN_ORCHESTRATOR__STORAGE__LEASE_SECS", "1")
            .env("LOG_FORMAT", "json")
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap()
    }

    /// The deliveries, in order: a label, a body edit and a command per issue.
    fn deliveries(&self) -> Vec<(&'static str, String, Vec<u8>)> {
        let mut all = Vec::new();
        for n in 1..=ISSUES {
            let mut issue =
                self.github.state.lock().unwrap().issues[&("acme/api".to_owned(), n)].clone();
            issue["labels"] = serde_json::json!([{"id": 1, "node_id": "LA_x", "url": "", "name": "codegen", "color": "ededed", "default": false, "description": null}]);
            let mut labeled: serde_json::Value =
                serde_json::from_slice(&fixture("issues/labeled.payload.json")).unwrap();
            labeled["issue"] = issue.clone();
            labeled["label"]["name"] = "codegen".into();
            labeled["installation"] = serde_json::json!({"id": 42});
            labeled["repository"]["full_name"] = "acme/api".into();
            labeled["sender"] =
                serde_json::json!({"login": "maintainer", "id": 101, "type": "User"});
            let mut edited = labeled.clone();
            edited["action"] = "edited".into();
            edited["changes"] = serde_json::json!({"body": {"from": "before"}});
            let mut comment = labeled.clone();
            comment["action"] = "created".into();
            comment["comment"] = serde_json::json!({"id": 8_000_000 + n, "body": "/codegen status", "user": {"login": "maintainer", "id": 101, "type": "User"}, "performed_via_github_app": null});
            all.push((
                "issues",
                format!("label-{n}"),
                serde_json::to_vec(&labeled).unwrap(),
            ));
            all.push((
                "issues",
                format!("edit-{n}"),
                serde_json::to_vec(&edited).unwrap(),
            ));
            all.push((
                "issue_comment",
                format!("comment-{n}"),
                serde_json::to_vec(&comment).unwrap(),
            ));
        }
        // GitHub labels the issues too (what the reconciler sees).
        let mut state = self.github.state.lock().unwrap();
        for n in 1..=ISSUES {
            let issue = state.issues.get_mut(&("acme/api".to_owned(), n)).unwrap();
            issue["labels"] = serde_json::json!([{"id": 1, "node_id": "LA_x", "url": "", "name": "codegen", "color": "ededed", "default": false, "description": null}]);
        }
        all
    }

    /// Per issue: (runs, status comments, state labels), once the server has settled.
    async fn settled_state(&self) -> BTreeMap<u64, (usize, usize, Vec<String>)> {
        let deadline = Instant::now() + Duration::from_secs(240);
        let mut last = BTreeMap::new();
        while Instant::now() < deadline {
            let state = self.snapshot();
            let done = state.iter().all(|(n, (runs, comments, labels))| {
                let ready = n % 5 != 0;
                *runs == usize::from(ready)
                    && *comments == 1
                    && labels
                        == &[if ready {
                            "codegen:running"
                        } else {
                            "codegen:blocked"
                        }
                        .to_owned()]
            });
            if done {
                return state;
            }
            last = state;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        last
    }

    fn snapshot(&self) -> BTreeMap<u64, (usize, usize, Vec<String>)> {
        let runs = self.codegen.runs();
        let github = self.github.state.lock().unwrap();
        (1..=ISSUES)
            .map(|n| {
                let run_count = runs
                    .iter()
                    .filter(|r| r.metadata["issue_number"] == n)
                    .count();
                let comments = github
                    .comments
                    .get(&("acme/api".to_owned(), n))
                    .map_or(0, |all| {
                        all.iter()
                            .filter(|(_, b)| b.contains("<!-- codegen-orchestrator:status -->"))
                            .count()
                    });
                let labels: Vec<String> = github.issues[&("acme/api".to_owned(), n)]["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|l| l["name"].as_str())
                    .filter(|l| l.starts_with("codegen:"))
                    .map(str::to_owned)
                    .collect();
                (n, (run_count, comments, labels))
            })
            .collect()
    }
}

/// Posts `deliveries` in order; a refused connection (the server is down) is tried again,
/// as an operator redelivers. Kills and restarts the server at the given post indexes.
async fn post_all(
    scenario: &Scenario,
    deliveries: &[(&'static str, String, Vec<u8>)],
    kill_at: &[usize],
) -> (usize, usize) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut server = scenario.start_server(0);
    let mut kills = 0;
    let mut acknowledged = 0;
    for (index, (event, id, body)) in deliveries.iter().enumerate() {
        if kill_at.contains(&index) {
            // Let it get into its work, then pull the plug.
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..150))).await;
            server.kill().unwrap(); // SIGKILL
            server.wait().unwrap();
            kills += 1;
            server = scenario.start_server(kills);
        }
        loop {
            let request =
                axum::http::Request::post(format!("http://127.0.0.1:{}/webhook", scenario.port))
                    .header("content-type", "application/json")
                    .header("x-github-event", *event)
                    .header("x-github-delivery", id)
                    .header("x-hub-signature-256", sign(SECRET, body))
                    .body(Full::new(Bytes::from(body.clone())))
                    .unwrap();
            match client.request(request).await {
                Ok(response) if response.status().is_success() => {
                    acknowledged += 1;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    let _settled = scenario.settled_state().await;
    server.kill().unwrap();
    server.wait().unwrap();
    (kills, acknowledged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_three_times_loses_nothing_and_duplicates_nothing() {
    // Without crashes.
    let calm = Scenario::new().await;
    let deliveries = calm.deliveries();
    let (_, calm_acks) = post_all(&calm, &deliveries, &[]).await;
    let expected = calm.snapshot();

    // The same, killed three times at random moments.
    let crashed = Scenario::new().await;
    let deliveries = crashed.deliveries();
    let mut kill_at: Vec<usize> = (0..3)
        .map(|k| (k * deliveries.len() / 3) + fastrand::usize(1..deliveries.len() / 3))
        .collect();
    kill_at.sort();
    let (kills, acks) = post_all(&crashed, &deliveries, &kill_at).await;
    let got = crashed.snapshot();

    let logs: String = (0..=kills)
        .map(|g| {
            std::fs::read_to_string(crashed.dir.path().join(format!("server-{g}.log")))
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(kills, 3);
    assert_eq!(
        got, expected,
        "the end state differs from the run without crashes; logs:\n{logs}"
    );
    let runs = crashed.codegen.runs();
    let unique: std::collections::BTreeSet<_> = runs
        .iter()
        .map(|r| {
            (
                r.metadata["issue_number"].as_u64(),
                r.metadata["attempt"].as_u64(),
            )
        })
        .collect();
    assert_eq!(unique.len(), runs.len(), "a run was created twice");
    let github_faults = crashed.github.state.lock().unwrap().faults_injected;
    let codegen_faults = crashed.codegen.state.lock().unwrap().faults_injected;
    println!(
        "crash: {} deliveries acknowledged ({} without crashes), {kills} SIGKILLs at posts {kill_at:?}, \
         faults GitHub {} x 500 + {} x 403, Codegen {} x 5xx ({} after creating the run) + {} x 429; \
         {} runs (expected {}), status comments {} (1 per issue), duplicates 0, losses 0",
        acks,
        calm_acks,
        github_faults.0,
        github_faults.1,
        codegen_faults.0,
        codegen_faults.1,
        codegen_faults.2,
        runs.len(),
        ISSUES - ISSUES / 5,
        got.values().map(|(_, c, _)| c).sum::<usize>(),
    );
}

/// Posts one delivery to the server, again until it is acknowledged (it may be starting).
async fn post_until_acknowledged(port: u16, event: &str, id: &str, body: &[u8]) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let request = axum::http::Request::post(format!("http://127.0.0.1:{port}/webhook"))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", id)
            .header("x-hub-signature-256", sign(SECRET, body))
            .body(Full::new(Bytes::from(body.to_vec())))
            .unwrap();
        match client.request(request).await {
            Ok(response) if response.status().is_success() => return,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("{id} was never acknowledged: {other:?}"),
        }
    }
}

/// Waits (at most 60 s) until `ready` holds.
async fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pending outbox entries in the server's database, read beside it.
async fn pending_effects(dir: &std::path::Path) -> i64 {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("data/orchestrator.db"))
        .read_only(true);
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let (pending,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox WHERE state = 'pending'")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    pending
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_inside_an_effect_neither_repeats_nor_loses_it() {
    use support::fake_github::TrapKind;
    const STATUS_MARKER: &str = "<!-- codegen-orchestrator:status -->";
    const HELP: &str = "Commands (one per line";
    const COMMENTS: &str = "/repos/acme/api/issues/1/comments";

    let scenario = Scenario::new().await;
    scenario.github.state.lock().unwrap().random_faults = None;
    scenario.codegen.state.lock().unwrap().random_faults = None;
    // Issue 1 is labelled (GitHub's state and its webhook); the others stay as they are.
    let label = serde_json::json!([{"id": 1, "node_id": "LA_x", "url": "", "name": "codegen", "color": "ededed", "default": false, "description": null}]);
    let issue = {
        let mut state = scenario.github.state.lock().unwrap();
        let issue = state.issues.get_mut(&("acme/api".to_owned(), 1)).unwrap();
        issue["labels"] = label;
        issue.clone()
    };
    let mut labeled: serde_json::Value =
        serde_json::from_slice(&fixture("issues/labeled.payload.json")).unwrap();
    labeled["issue"] = issue;
    labeled["label"]["name"] = "codegen".into();
    labeled["installation"] = serde_json::json!({"id": 42});
    labeled["repository"]["full_name"] = "acme/api".into();
    labeled["sender"] = serde_json::json!({"login": "maintainer", "id": 101, "type": "User"});
    let mut help = labeled.clone();
    help["action"] = "created".into();
    help["comment"] = serde_json::json!({"id": 8_100_001, "body": "/codegen help", "user": {"login": "maintainer", "id": 101, "type": "User"}, "performed_via_github_app": null});

    // Killed after GitHub created the status comment, before its answer came back.
    scenario.github.trap(
        "POST",
        COMMENTS,
        Some(STATUS_MARKER),
        TrapKind::ApplyThenHold,
        1,
    );
    let mut server = scenario.start_server(0);
    let body = serde_json::to_vec(&labeled).unwrap();
    post_until_acknowledged(scenario.port, "issues", "label-1", &body).await;
    wait_for("the status comment's creation", || {
        scenario.github.sprung() == 1
    })
    .await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    // Down for longer than its claims last (`storage.lease_secs` = 1 here): a restart
    // within the status comment's claim skips the comment until the claim runs out (see
    // `tests/outbox_crash.rs`, which shows it with the default lease).
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    // Killed after GitHub posted the reply to `/codegen help`, before its answer came back.
    scenario
        .github
        .trap("POST", COMMENTS, Some(HELP), TrapKind::ApplyThenHold, 1);
    let mut server = scenario.start_server(1);
    let body = serde_json::to_vec(&help).unwrap();
    post_until_acknowledged(scenario.port, "issue_comment", "help-1", &body).await;
    wait_for("the reply's creation", || scenario.github.sprung() == 2).await;
    server.kill().unwrap();
    server.wait().unwrap();

    let mut server = scenario.start_server(2);
    let comments = |marked: bool| -> Vec<String> {
        scenario
            .github
            .state
            .lock()
            .unwrap()
            .comments
            .get(&("acme/api".to_owned(), 1))
            .map(|all| {
                all.iter()
                    .filter(|(_, body)| body.contains(STATUS_MARKER) == marked)
                    .map(|(_, body)| body.clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = scenario.codegen.runs();
        let settled = runs.len() == 1
            && comments(true)
                .iter()
                .any(|c| c.contains(&format!("agent/trace/{}", runs[0].id)))
            && pending_effects(scenario.dir.path()).await == 0;
        if settled || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One more round of the server's loops: nothing else is coming.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.kill().unwrap();
    server.wait().unwrap();

    let logs: String = (0..=2)
        .map(|g| {
            std::fs::read_to_string(scenario.dir.path().join(format!("server-{g}.log")))
                .unwrap_or_default()
        })
        .collect();
    let runs = scenario.codegen.runs();
    assert_eq!(runs.len(), 1, "one run; logs:\n{logs}");
    assert_eq!(scenario.codegen.calls_to("POST", "/agent/run"), 1);
    let status = comments(true);
    assert_eq!(status.len(), 1, "one status comment: {status:#?}");
    assert!(
        status[0].contains("**running**")
            && status[0].contains(&format!("agent/trace/{}", runs[0].id)),
        "the status comment shows the run: {}\nlogs:\n{logs}",
        status[0]
    );
    let replies = comments(false);
    assert_eq!(replies.len(), 1, "one reply: {replies:#?}");
    assert!(replies[0].starts_with(HELP), "{}", replies[0]);
    assert_eq!(
        scenario.github.count("POST", COMMENTS),
        2,
        "neither comment was posted again"
    );
    assert_eq!(pending_effects(scenario.dir.path()).await, 0);
}
