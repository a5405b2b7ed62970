//! Every mode the README documents, through the real binary: each test starts
//! `codegen-orchestrator serve` with nothing but a `config.yaml` in its working directory and
//! the environment variables a user would set (plus short intervals, through the
//! `CODEGEN_ORCHESTRATOR__...` overrides), against the fake GitHub and the fake Codegen, and
//! delivers webhooks over TCP as GitHub does.
//!
//! - SQLite by default: no storage configuration at all, `data/orchestrator.db` appears.
//! - PostgreSQL: two `serve` processes on one database, one killed with SIGKILL mid-way, the
//!   other finishing its work once the lease runs out (needs `TEST_POSTGRES_URL`).
//! - App mode from the configuration file, token mode from `GITHUB_TOKEN`.
//! - A GitHub Enterprise Server `api_url`: REST under `/api/v3`, GraphQL at `/api/graphql`.
//! - `/setup`: registration against the fake GitHub, then a restart on the saved credentials.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use codegen_orchestrator::store::{DeliveryState, Store};
use serde_json::{Value, json};
use sqlx::Connection as _;
use support::fake_codegen::{self, FakeCodegen, Fault, Target};
use support::fake_github::{FakeGithub, FakeProject};
use support::fixture;
use support::server::{Server, codegen_env, http, test_key_path, wait_until};

/// The webhook secret the tests configure (the `/setup` test uses the one GitHub hands out).
const SECRET: &str = "whsec-modes-test";
/// The repository, its installation and a maintainer with write permission.
const REPO: &str = "acme/api";
const INSTALLATION: u64 = 42;
const MAINTAINER: &str = "maintainer";
const MAINTAINER_ID: u64 = 101;
/// The status comment's hidden marker.
const MARKER: &str = "<!-- codegen-orchestrator:status -->";
/// The secret GitHub gives the App the fake registers (`POST /app-manifests/{code}/conversions`).
const REGISTERED_SECRET: &str = "whsec-from-github";
const REGISTERED_APP_ID: u64 = 424_242;

// ---- the fakes ----

/// The fake GitHub and Codegen with `acme/api` in installation 42 and `issues` issues, none
/// labelled yet; every fifth issue depends on the one before it.
async fn fakes(issues: u64) -> (FakeGithub, FakeCodegen) {
    let github = FakeGithub::start().await;
    let codegen = FakeCodegen::start().await;
    {
        let mut state = github.state.lock().unwrap();
        state.installations.insert(REPO.into(), INSTALLATION);
        state.permissions.insert(
            (REPO.into(), MAINTAINER.into()),
            ("write".into(), "write".into()),
        );
    }
    codegen.add_repo(7001, REPO);
    for n in 1..=issues {
        let body = if n % 5 == 0 {
            format!("Depends on #{}", n - 1)
        } else {
            String::new()
        };
        github.add_issue(REPO, n, &format!("Issue {n}"), &body, &[]);
    }
    (github, codegen)
}

/// The maintainer adds the trigger label to issue `n`: the fake's issue carries it from now
/// on, and this is the `issues.labeled` delivery GitHub sends.
fn labelled(github: &FakeGithub, n: u64) -> Vec<u8> {
    let issue = {
        let mut state = github.state.lock().unwrap();
        let issue = state.issues.get_mut(&(REPO.to_owned(), n)).unwrap();
        let mut label = issue["labels"]
            .get(0)
            .cloned()
            .unwrap_or_else(|| json!({"id": 1, "node_id": "LA_1", "url": "", "color": "ededed", "default": false, "description": null}));
        label["name"] = json!("codegen");
        issue["labels"] = json!([label]);
        issue.clone()
    };
    let mut payload: Value =
        serde_json::from_slice(&fixture("issues/labeled.payload.json")).unwrap();
    payload["issue"] = issue;
    payload["label"]["name"] = json!("codegen");
    set_common(&mut payload);
    serde_json::to_vec(&payload).unwrap()
}

/// The maintainer comments `/codegen status` on issue `n`.
fn status_command(github: &FakeGithub, n: u64) -> Vec<u8> {
    let mut payload: Value =
        serde_json::from_slice(&fixture("issue_comment/created.payload.json")).unwrap();
    payload["issue"] = github.state.lock().unwrap().issues[&(REPO.to_owned(), n)].clone();
    payload["comment"]["id"] = json!(8_000_000 + n);
    payload["comment"]["body"] = json!("/codegen status");
    payload["comment"]["user"] = json!({"login": MAINTAINER, "id": MAINTAINER_ID, "type": "User"});
    payload["comment"]["performed_via_github_app"] = Value::Null;
    set_common(&mut payload);
    serde_json::to_vec(&payload).unwrap()
}

fn set_common(payload: &mut Value) {
    payload["installation"] = json!({"id": INSTALLATION});
    payload["repository"]["full_name"] = json!(REPO);
    payload["repository"]["name"] = json!("api");
    payload["sender"] = json!({"login": MAINTAINER, "id": MAINTAINER_ID, "type": "User"});
}

/// Codegen runs per issue number.
fn runs_per_issue(codegen: &FakeCodegen) -> BTreeMap<u64, usize> {
    let mut runs = BTreeMap::new();
    for run in codegen.runs() {
        *runs
            .entry(run.metadata["issue_number"].as_u64().unwrap())
            .or_default() += 1;
    }
    runs
}

/// Status comments on issue `n`.
fn status_comments(github: &FakeGithub, n: u64) -> usize {
    github
        .state
        .lock()
        .unwrap()
        .comments
        .get(&(REPO.to_owned(), n))
        .map_or(0, |all| {
            all.iter().filter(|(_, b)| b.contains(MARKER)).count()
        })
}

/// Labels issue 1, delivers it, and waits for its run, its status comment and its
/// `codegen:running` label; then checks that
/// nothing more comes (one run, one status comment) and that a redelivery is not processed.
async fn one_labelled_issue_is_worked_on(
    server: &Server,
    github: &FakeGithub,
    codegen: &FakeCodegen,
    secret: &str,
) {
    let body = labelled(github, 1);
    assert_eq!(
        server.deliver(secret, "issues", "label-1", &body).await,
        202
    );
    let running_label = || {
        github.state.lock().unwrap().issues[&(REPO.to_owned(), 1)]["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|label| label["name"] == "codegen:running")
    };
    let worked = wait_until(Duration::from_secs(20), || {
        codegen.runs().len() == 1 && status_comments(github, 1) == 1 && running_label()
    })
    .await;
    assert!(
        worked,
        "runs {:?}, status comments {}, codegen:running {}; log:\n{}",
        runs_per_issue(codegen),
        status_comments(github, 1),
        running_label(),
        server.logs()
    );
    assert_eq!(
        server.deliver(secret, "issues", "label-1", &body).await,
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await; // a poll or two later
    assert_eq!(runs_per_issue(codegen), BTreeMap::from([(1, 1)]));
    assert_eq!(status_comments(github, 1), 1);
    let run = &codegen.runs()[0];
    assert_eq!(run.metadata["repository"], REPO);
    assert_eq!(run.metadata["installation_id"], INSTALLATION);
}

/// The `iss` claim of every App JWT the fake verified, as text.
fn jwt_issuers(github: &FakeGithub) -> BTreeSet<String> {
    github
        .state
        .lock()
        .unwrap()
        .jwt_claims
        .iter()
        .map(|claims| claims["iss"].to_string().trim_matches('"').to_owned())
        .collect()
}

// ---- the modes ----

/// The Quick start: no configuration file and no storage setting, App credentials in the
/// environment. The state lands in `data/orchestrator.db` under the working directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_by_default_without_any_storage_configuration() {
    let started = Instant::now();
    let (github, codegen) = fakes(1).await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
        ("GITHUB_API_URL", github.url.clone()),
        ("GITHUB_APP_ID", "1".to_owned()),
        (
            "GITHUB_PRIVATE_KEY_PATH",
            test_key_path().display().to_string(),
        ),
    ];
    env.extend(codegen_env(&codegen));
    let mut server = Server::start("sqlite", dir.path(), &env);
    let serving = server.wait_for_log("codegen-orchestrator is serving");
    assert!(
        serving.contains("sqlite://data/orchestrator.db"),
        "{serving}"
    );
    assert!(dir.path().join("data/orchestrator.db").is_file());

    one_labelled_issue_is_worked_on(&server, &github, &codegen, SECRET).await;
    server.terminate();
    println!(
        "sqlite default: data/orchestrator.db created, 1 run, 1 status comment, redelivery 200; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// App mode as a `config.yaml` says it: `github.app_id` and the private key in the file.
/// The App authenticates with a JWT, exchanges it for installation 42's token, and every
/// request on the repository carries that token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_mode_from_the_configuration_file_acts_with_an_installation_token() {
    let started = Instant::now();
    let (github, codegen) = fakes(1).await;
    let dir = tempfile::tempdir().unwrap();
    let pem = std::fs::read_to_string(test_key_path()).unwrap();
    let indented: String = pem.lines().map(|l| format!("    {l}\n")).collect();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "github:\n  api_url: {}\n  app_id: 1\n  webhook_secret: {SECRET}\n  private_key: |\n{indented}\
             codegen:\n  api_url: {}\n  org_id: {}\n  api_token: {}\n  poll_interval_secs: 1\n",
            github.url,
            codegen.url,
            fake_codegen::ORG,
            fake_codegen::TOKEN
        ),
    )
    .unwrap();
    let mut server = Server::start("app", dir.path(), &[]);

    one_labelled_issue_is_worked_on(&server, &github, &codegen, SECRET).await;
    server.terminate();

    assert_eq!(jwt_issuers(&github), BTreeSet::from(["1".to_owned()]));
    let requests = github.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "POST" && r.path == "/app/installations/42/access_tokens"),
        "{requests:#?}"
    );
    let on_repo: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/repos/acme/api/") && !r.path.ends_with("/installation"))
        .collect();
    assert!(
        on_repo.iter().any(|r| r.method == "POST"),
        "the bot wrote something"
    );
    for request in &on_repo {
        assert!(
            request.authorization.contains("ghs_installation42"),
            "{} {} with {:?}",
            request.method,
            request.path,
            request.authorization
        );
    }
    println!(
        "app mode: JWT (iss 1) -> installation 42's token on {} requests; {:.1} s",
        on_repo.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Token mode: `GITHUB_TOKEN` for one repository, no App. No JWT, no installation token;
/// every request carries the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_mode_acts_with_the_plain_token() {
    let started = Instant::now();
    let (github, codegen) = fakes(1).await;
    let dir = tempfile::tempdir().unwrap();
    let token = "ghp_modesTestToken0123456789";
    let mut env = vec![
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
        ("GITHUB_API_URL", github.url.clone()),
        ("GITHUB_TOKEN", token.to_owned()),
    ];
    env.extend(codegen_env(&codegen));
    let mut server = Server::start("token", dir.path(), &env);

    one_labelled_issue_is_worked_on(&server, &github, &codegen, SECRET).await;
    server.terminate();

    assert!(jwt_issuers(&github).is_empty(), "no App JWT in token mode");
    let requests = github.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert!(
            !request.path.contains("access_tokens") && request.authorization.contains(token),
            "{} {} with {:?}",
            request.method,
            request.path,
            request.authorization
        );
    }
    assert!(!server.logs().contains(token), "the token is never logged");
    println!(
        "token mode: {} requests, each with the token, no JWT; {:.1} s",
        requests.len(),
        started.elapsed().as_secs_f64()
    );
}

/// GitHub Enterprise Server: `github.api_url` is `http://HOST/api/v3`. Every REST call
/// goes under `/api/v3`, GraphQL (the issue's Projects board) to `/api/graphql`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprise_server_api_url_puts_rest_under_api_v3_and_graphql_at_api_graphql() {
    let started = Instant::now();
    let (github, codegen) = fakes(1).await;
    github.state.lock().unwrap().projects.insert(
        "PVT_modes".into(),
        FakeProject {
            title: "Roadmap".into(),
            fields: vec![(
                "FIELD_status".into(),
                "Status".into(),
                ["Blocked", "Todo", "In Progress", "Done", "Failed"]
                    .iter()
                    .map(|name| {
                        (
                            format!("OPT_{}", name.replace(' ', "_")),
                            (*name).to_owned(),
                        )
                    })
                    .collect(),
            )],
            items: vec![("PVTI_modes_1".into(), (REPO.into(), 1), BTreeMap::new())],
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
        ("GITHUB_API_URL", format!("{}/api/v3", github.url)),
        ("GITHUB_APP_ID", "1".to_owned()),
        (
            "GITHUB_PRIVATE_KEY",
            std::fs::read_to_string(test_key_path()).unwrap(),
        ),
    ];
    env.extend(codegen_env(&codegen));
    let mut server = Server::start("ghes", dir.path(), &env);

    one_labelled_issue_is_worked_on(&server, &github, &codegen, SECRET).await;
    // The card follows the issue to In Progress (queued, then running).
    let in_progress = || {
        github.state.lock().unwrap().projects["PVT_modes"].items[0]
            .2
            .get("FIELD_status")
            .is_some_and(|option| option == "OPT_In_Progress")
    };
    let board_set = wait_until(Duration::from_secs(10), in_progress).await;
    server.terminate();
    assert!(
        board_set,
        "the board's Status is In Progress; log:\n{}",
        server.logs()
    );

    let requests = github.requests();
    let graphql = requests.iter().filter(|r| r.path == "/api/graphql").count();
    let rest = requests
        .iter()
        .filter(|r| r.path.starts_with("/api/v3/"))
        .count();
    assert!(graphql >= 1, "{requests:#?}");
    for request in &requests {
        assert!(
            request.path == "/api/graphql" || request.path.starts_with("/api/v3/"),
            "outside the Enterprise paths: {} {}",
            request.method,
            request.path
        );
        assert_ne!(request.path, "/api/v3/graphql");
    }
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/api/v3/app/installations/42/access_tokens")
    );
    println!(
        "enterprise: {rest} REST requests under /api/v3, {graphql} GraphQL requests at /api/graphql; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Registration: `serve` without any GitHub credentials prints a setup link with a token
/// in its log, and serves `/setup` only through it (then by the cookie it sets); the form
/// goes to the fake GitHub, which sends the browser back with a code; the callback, with
/// the cookie, exchanges it and writes `data/github-app.yaml` (0600). Restarted with the
/// same environment, `serve` acts as the registered App: the saved webhook secret verifies
/// a delivery, the fake sees JWTs with the saved App id, signed by the saved key, and
/// `/setup` links to the App's installation page instead of registering another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_registers_the_app_and_a_restart_uses_the_saved_credentials() {
    let started = Instant::now();
    let (github, codegen) = fakes(1).await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![("GITHUB_API_URL", github.url.clone())];
    env.extend(codegen_env(&codegen));
    let mut server = Server::start("unregistered", dir.path(), &env);
    // Nothing unverified is accepted meanwhile.
    let body = labelled(&github, 1);
    assert_eq!(server.deliver(SECRET, "issues", "early", &body).await, 401);

    // The setup link `serve` prints at start, with the address it serves on.
    let line = server.wait_for_log("to register the GitHub App");
    let logged: Value = serde_json::from_str(&line).unwrap();
    let setup_url = logged["setup_url"].as_str().unwrap().to_owned();
    let token = setup_url
        .strip_prefix(&server.url("/setup?token="))
        .unwrap_or_else(|| panic!("{setup_url} is not on {}", server.address))
        .to_owned();
    assert_eq!(token.len(), 32, "{setup_url}");
    assert_eq!(
        server.logs().matches(&token).count(),
        1,
        "the token is in that one line only"
    );
    // Without it, no registration.
    let (status, _, html) = http("GET", &server.url("/setup"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 403, "{html}");
    assert!(!html.contains("settings/apps/new"), "{html}");
    let mut cookies: Vec<String> = Vec::new();
    let remember = |headers: &axum::http::HeaderMap, cookies: &mut Vec<String>| {
        for value in headers.get_all("set-cookie") {
            let pair = value
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            cookies.push(pair);
        }
    };
    let (status, headers, html) = http("GET", &setup_url, &[], Vec::new()).await.unwrap();
    assert_eq!(status, 200, "{html}");
    remember(&headers, &mut cookies);
    assert_eq!(cookies.len(), 1, "the admission cookie");
    let action = html_attribute(&html, "action");
    let manifest = html_attribute(&html, "value");
    assert!(
        action.starts_with(&format!("{}/settings/apps/new?state=", github.url)),
        "{action}"
    );

    // The browser posts the form to GitHub, which creates the App and redirects back.
    let form = format!("manifest={}", url_encode(&manifest));
    let (status, headers, _) = http(
        "POST",
        &action,
        &[(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )],
        form.into_bytes(),
    )
    .await
    .unwrap();
    assert!((300..400).contains(&status), "{status}");
    let callback = headers["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&server.url("/setup/callback?code=")),
        "{callback}"
    );
    // Coming back from GitHub without the cookie (another browser) is refused; with it,
    // the registration completes.
    let (status, _, _) = http("GET", &callback, &[], Vec::new()).await.unwrap();
    assert_eq!(status, 400);
    let (status, _, html) = http(
        "GET",
        &callback,
        &[("cookie", cookies.join("; "))],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data/github-app.yaml"), "{html}");
    assert!(!html.contains(REGISTERED_SECRET) && !html.contains("PRIVATE KEY"));

    let file = dir.path().join("data/github-app.yaml");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(
        saved.contains(&format!("app_id: {REGISTERED_APP_ID}")),
        "{saved}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    server.terminate();
    assert!(
        jwt_issuers(&github).is_empty(),
        "nothing acted before the restart"
    );
    assert!(
        server.logs().matches(&token).count() == 1,
        "no other line carries the token"
    );

    // The same environment again: the saved credentials are the configuration now.
    let mut server = Server::start("registered", dir.path(), &env);
    one_labelled_issue_is_worked_on(&server, &github, &codegen, REGISTERED_SECRET).await;
    assert_eq!(
        server
            .deliver(SECRET, "issues", "other-secret", &body)
            .await,
        401,
        "only the saved secret verifies now"
    );
    assert!(
        !server.logs().contains("setup_url"),
        "no setup link once credentials exist"
    );
    let (status, _, html) = http("GET", &server.url("/setup"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(
        !html.contains("settings/apps/new"),
        "no second registration once credentials exist: {html}"
    );
    assert!(
        html.contains("https://github.com/apps/codegen-orchestrator-acme/installations/new"),
        "the installation link the README promises: {html}"
    );
    let old_link = server.url(&format!("/setup?token={token}"));
    let (status, _, html) = http("GET", &old_link, &[], Vec::new()).await.unwrap();
    assert_eq!(status, 200, "the old token shows the same page");
    assert!(!html.contains("settings/apps/new"), "{html}");
    server.terminate();
    // The fake verifies every JWT against the public half of the key it handed out.
    assert_eq!(
        jwt_issuers(&github),
        BTreeSet::from([REGISTERED_APP_ID.to_string()])
    );
    println!(
        "setup: registered App {REGISTERED_APP_ID} through the setup link in the log, data/github-app.yaml 0600, \
         restarted: delivery verified with the saved secret, JWT from the saved key; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The value of `attribute` on the first element that has it, HTML entities decoded.
fn html_attribute(html: &str, attribute: &str) -> String {
    let start = html.find(&format!("{attribute}=\"")).unwrap() + attribute.len() + 2;
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Several machines on PostgreSQL, as the README's Deployment section starts them: two
/// `serve` processes with the same `DATABASE_URL` (one written `postgres://`, the other
/// `postgresql://...?sslmode=prefer`) behind one "load balancer". Deliveries alternate
/// between them; mid-way the replica doing the work (it holds the installation's lease) is
/// killed with SIGKILL and the rest go to the survivor, which takes over the dead one's
/// claims once `storage.lease_secs` runs out. Every delivery is processed, each ready issue
/// gets one run and every issue one status comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_replicas_one_killed_the_other_finishes_after_the_lease() {
    const ISSUES: u64 = 20;
    const LEASE_SECS: u64 = 3;
    const SLOW_CREATION: Duration = Duration::from_secs(15);
    let Some(admin) = support::stores::postgres_admin_url() else {
        return;
    };
    let started = Instant::now();
    let database = support::stores::fresh_postgres(&admin).await;
    let (github, codegen) = fakes(ISSUES).await;
    // Some latency on every GitHub call, so that the kill lands in the middle of work, and
    // a slow answer to the first run creation (the run is created at once), so that the
    // replica acting is killed between Codegen creating the run and the store recording it.
    github.state.lock().unwrap().random_faults = Some((0.0, 0.0, 30));
    codegen.push_fault(Fault {
        target: Target::Create,
        status: 200,
        body: Value::Null,
        create_anyway: true,
        delay: SLOW_CREATION,
    });

    let env_for = |url: String| {
        let mut env = vec![
            ("DATABASE_URL", url),
            ("GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
            ("GITHUB_API_URL", github.url.clone()),
            ("GITHUB_APP_ID", "1".to_owned()),
            (
                "GITHUB_PRIVATE_KEY_PATH",
                test_key_path().display().to_string(),
            ),
            (
                "CODEGEN_ORCHESTRATOR__STORAGE__LEASE_SECS",
                LEASE_SECS.to_string(),
            ),
            (
                "CODEGEN_ORCHESTRATOR__CODEGEN__MAX_CONCURRENT_AGENTS",
                "100".into(),
            ),
            (
                "CODEGEN_ORCHESTRATOR__CODEGEN__CREATIONS_PER_MINUTE",
                "1000".into(),
            ),
            (
                "CODEGEN_ORCHESTRATOR__GITHUB__WRITES_PER_MINUTE",
                "100000".into(),
            ),
            (
                "CODEGEN_ORCHESTRATOR__GITHUB__WRITES_PER_HOUR",
                "1000000".into(),
            ),
        ];
        env.extend(codegen_env(&codegen));
        env
    };
    // Each machine its own directory: nothing is shared but the database.
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url_a = format!("{database}?application_name=replica-a");
    let url_b = format!(
        "{}?sslmode=prefer&application_name=replica-b",
        database.replacen("postgres://", "postgresql://", 1)
    );
    // Started together: both create the schema of the empty database at once.
    let mut replicas = [
        Server::spawn("replica-a", dir_a.path(), &env_for(url_a)),
        Server::spawn("replica-b", dir_b.path(), &env_for(url_b)),
    ]
    .map(Server::ready);
    for (replica, dir) in replicas.iter().zip([&dir_a, &dir_b]) {
        assert!(
            !dir.path().join("data").exists(),
            "{}: no SQLite file",
            replica.name
        );
    }

    // The label goes on each issue as its delivery is sent, as on GitHub.
    let deliveries: Vec<(&str, String, u64)> = (1..=ISSUES)
        .flat_map(|n| {
            [
                ("issues", format!("label-{n}"), n),
                ("issue_comment", format!("status-{n}"), n),
            ]
        })
        .collect();
    let mut monitor = sqlx::PgConnection::connect(&database).await.unwrap();
    let mut killed = None;
    let mut claimed_by_dead = Vec::new();
    let mut done_at_kill: (usize, usize) = (0, 0);
    let mut killed_at = Instant::now();
    for (i, (event, id, n)) in deliveries.iter().enumerate() {
        if i == deliveries.len() / 2 {
            // Mid-way: kill the replica that is acting (it holds the installation's lease)
            // while it waits for Codegen's answer to a run Codegen has created.
            let deadline = Instant::now() + Duration::from_secs(SLOW_CREATION.as_secs());
            let (victim, in_flight) = loop {
                let (holder, claimed) = acting_replica(&mut monitor).await;
                if let Some(holder) = holder.filter(|_| !codegen.runs().is_empty()) {
                    break (holder, claimed);
                }
                assert!(
                    Instant::now() < deadline,
                    "no replica was caught creating a run"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let victim = usize::from(victim == replicas[1].child.id());
            replicas[victim].kill();
            killed_at = Instant::now();
            done_at_kill = (
                codegen.runs().len(),
                (1..=ISSUES).map(|n| status_comments(&github, n)).sum(),
            );
            killed = Some(victim);
            claimed_by_dead = in_flight;
        }
        let target = match killed {
            Some(dead) => 1 - dead,
            None => i % 2,
        };
        let body = match *event {
            "issues" => labelled(&github, *n),
            _ => status_command(&github, *n),
        };
        let status = replicas[target].deliver(SECRET, event, id, &body).await;
        assert_eq!(status, 202, "{id} to {}", replicas[target].name);
    }
    let dead = killed.unwrap();
    let survivor = &replicas[1 - dead];

    // The survivor finishes: the inbox drained, one run per ready issue, one status
    // comment per issue.
    let store = Store::open(&database).await.unwrap();
    let ready = (1..=ISSUES).filter(|n| n % 5 != 0).count();
    let deadline = Instant::now() + Duration::from_secs(LEASE_SECS + 30);
    let settled = loop {
        let counts = store.inbox_counts().await.unwrap();
        let runs = runs_per_issue(&codegen);
        let comments_done = (1..=ISSUES).all(|n| status_comments(&github, n) == 1);
        if counts.pending == 0 && runs.len() == ready && comments_done {
            break Some(killed_at.elapsed());
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let inbox = store.inbox_counts().await.ok();
    let finished_after_kill = settled.unwrap_or_else(|| {
        panic!(
            "not settled: inbox {inbox:?}, runs {:?}, comments {:?}\n{} log:\n{}",
            runs_per_issue(&codegen),
            (1..=ISSUES)
                .map(|n| status_comments(&github, n))
                .collect::<Vec<_>>(),
            survivor.name,
            survivor.logs()
        )
    });
    // A poll or two later, still nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for (_, id, _) in &deliveries {
        let record = store.delivery(&id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(record.state, DeliveryState::Processed, "{id}");
    }
    let runs = codegen.runs();
    let attempts: BTreeSet<(u64, u64)> = runs
        .iter()
        .map(|r| {
            (
                r.metadata["issue_number"].as_u64().unwrap(),
                r.metadata["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts.len(), runs.len(), "a run was created twice");
    let expected: BTreeMap<u64, usize> = (1..=ISSUES)
        .filter(|n| n % 5 != 0)
        .map(|n| (n, 1))
        .collect();
    assert_eq!(
        runs_per_issue(&codegen),
        expected,
        "one run per ready issue"
    );
    for n in 1..=ISSUES {
        assert_eq!(status_comments(&github, n), 1, "#{n}: one status comment");
    }
    assert!(
        finished_after_kill < Duration::from_secs(LEASE_SECS + 20),
        "{finished_after_kill:?}"
    );
    let survivor_name = survivor.name.clone();
    for replica in &mut replicas {
        if replica.child.try_wait().unwrap().is_none() {
            replica.terminate();
        }
    }
    store.close().await;
    println!(
        "postgres: {} deliveries over 2 replicas; {} SIGKILLed at delivery {} holding the installation's lease \
         and {} claimed deliveries ({:?}), waiting for Codegen's answer, after creating {} runs and {} status comments; {survivor_name} took them over and finished {:.1} s after \
         the kill (lease {LEASE_SECS} s); {} runs for {ready} ready issues, 1 status comment on each \
         of {ISSUES}; {:.1} s in all",
        deliveries.len(),
        replicas[dead].name,
        deliveries.len() / 2,
        claimed_by_dead.len(),
        claimed_by_dead,
        done_at_kill.0,
        done_at_kill.1,
        finished_after_kill.as_secs_f64(),
        runs.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The process id of the replica holding the installation's lease (if any; replicas are
/// named `host/pid/start`), and the deliveries whose claim has not run out yet.
async fn acting_replica(monitor: &mut sqlx::PgConnection) -> (Option<u32>, Vec<String>) {
    let holder: Option<String> = sqlx::query_scalar(
        "SELECT owner FROM installation_leases
         WHERE expires_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint LIMIT 1",
    )
    .fetch_optional(&mut *monitor)
    .await
    .unwrap_or_default();
    let holder = holder.and_then(|owner| owner.split('/').nth(1)?.parse().ok());
    let claimed: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM deliveries WHERE state = 'pending'
         AND lease_until > (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
    )
    .fetch_all(&mut *monitor)
    .await
    .unwrap();
    (holder, claimed)
}
