//! `plan --repo` against a fake GitHub: token mode and App mode, pagination, blockers
//! fetched from other repositories, deleted and invisible blockers.

mod support;

use std::process::{Command, Output};

use support::fake_github::FakeGithub;

const BIN: &str = env!("CARGO_BIN_EXE_codegen-orchestrator");
const TEST_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/test-app-key.pem");

async fn run(envs: Vec<(&'static str, String)>, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            .envs(envs)
            .arg("plan")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The environment of a GitHub App with the test key, talking to `api_url`.
fn app_env(api_url: String) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_API_URL", api_url),
        ("GITHUB_APP_ID", "1234".into()),
        ("GITHUB_PRIVATE_KEY_PATH", TEST_KEY.into()),
    ]
}

fn seed(github: &FakeGithub) {
    github.add_issue("acme/api", 1, "Schema", "First things first.", &["codegen"]);
    github.add_issue(
        "acme/api",
        2,
        "Endpoints",
        "Depends on #1 and acme/lib#7",
        &["codegen"],
    );
    github.add_issue(
        "acme/api",
        3,
        "Limits",
        "Blocked by #2, #9 and #404",
        &["codegen", "bug"],
    );
    github.add_issue("acme/api", 4, "Unlabeled", "Depends on #1", &["bug"]);
    github.add_issue("acme/api", 5, "Done already", "", &["codegen"]);
    github.close("acme/api", 5, "completed");
    github.add_issue("acme/lib", 7, "Library release", "", &[]);
    github.close("acme/lib", 7, "completed");
    github.add_issue("acme/api", 9, "Gone", "", &[]);
    github
        .state
        .lock()
        .unwrap()
        .deleted
        .push(("acme/api".into(), 9));
}

#[tokio::test]
async fn plans_a_repository_with_a_token() {
    let github = FakeGithub::start().await;
    seed(&github);
    let output = run(
        vec![
            ("GITHUB_API_URL", github.url.clone()),
            ("GITHUB_TOKEN", "ghp_test_token".into()),
        ],
        &["--repo", "acme/api", "--format", "json"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // #1 and #2 launch; #3 waits on a deleted #9 and an invisible #404.
    assert_eq!(
        report["order"],
        serde_json::json!(["acme/api#1", "acme/api#2"])
    );
    assert_eq!(report["unknown"], serde_json::json!(["acme/api#404"]));
    let issues = report["issues"].as_array().unwrap();
    let state_of = |r: &str| {
        issues
            .iter()
            .find(|i| i["ref"] == r)
            .map(|i| i["state"].clone())
    };
    assert_eq!(state_of("acme/lib#7").unwrap(), "closed_completed");
    assert_eq!(state_of("acme/api#9").unwrap(), "deleted");
    assert!(
        state_of("acme/api#4").is_none(),
        "an unlabeled issue was planned"
    );
    assert!(
        state_of("acme/api#5").is_none(),
        "a closed issue was listed as open"
    );

    let requests = github.requests();
    let pages = requests
        .iter()
        .filter(|r| r.path == "/repos/acme/api/issues")
        .count();
    assert_eq!(
        pages, 2,
        "three labeled open issues at two per page: {requests:#?}"
    );
    for request in &requests {
        assert!(
            request.authorization.ends_with("ghp_test_token"),
            "{request:?}"
        );
        assert!(
            request.user_agent.contains("codegen-orchestrator/"),
            "{request:?}"
        );
        assert_eq!(request.api_version, "2022-11-28", "{request:?}");
    }
    assert!(
        !stderr.contains("ghp_test_token"),
        "the token was printed: {stderr}"
    );
}

/// A blocker that was closed but still carries the trigger label is finished work: it
/// blocks with its state, and what its body once declared adds no edge (here it would
/// close a cycle and hold #1 back).
#[tokio::test]
async fn a_closed_blocker_with_the_trigger_label_is_a_blocker_not_a_managed_issue() {
    let github = FakeGithub::start().await;
    github.add_issue("acme/api", 1, "Endpoints", "Depends on #5", &["codegen"]);
    github.add_issue("acme/api", 2, "Limits", "Depends on #6", &["codegen"]);
    github.add_issue("acme/api", 5, "Schema", "Needs #1 reviewed", &["codegen"]);
    github.close("acme/api", 5, "completed");
    github.add_issue("acme/api", 6, "Old idea", "", &["codegen"]);
    github.close("acme/api", 6, "not_planned");
    let envs = || {
        vec![
            ("GITHUB_API_URL", github.url.clone()),
            ("GITHUB_TOKEN", "ghp_test_token".to_owned()),
        ]
    };
    let output = run(envs(), &["--repo", "acme/api", "--format", "json"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let issue = |r: &str| {
        report["issues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["ref"] == r)
            .cloned()
            .unwrap_or_else(|| panic!("{r} missing from {report:#}"))
    };
    for (reference, state) in [
        ("acme/api#5", "closed_completed"),
        ("acme/api#6", "closed_not_planned"),
    ] {
        assert_eq!(issue(reference)["managed"], false, "{report:#}");
        assert_eq!(issue(reference)["state"], state, "{report:#}");
    }
    assert_eq!(report["cycles"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["order"], serde_json::json!(["acme/api#1"]));

    let output = run(envs(), &["--repo", "acme/api"]).await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Issues: 4 (2 managed)"), "{text}");
    assert!(
        text.contains("acme/api#2: blocked by acme/api#6 (closed as not planned)"),
        "{text}"
    );
}

#[tokio::test]
async fn plans_a_repository_as_a_github_app_installation() {
    let github = FakeGithub::start().await;
    seed(&github);
    github
        .state
        .lock()
        .unwrap()
        .installations
        .insert("acme/api".into(), 42);
    let output = run(
        app_env(github.url.clone()),
        &["--repo", "acme/api", "--format", "json"],
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let requests = github.requests();
    let lookup = &requests[0];
    assert_eq!(lookup.path, "/repos/acme/api/installation");
    let jwt = lookup
        .authorization
        .strip_prefix("Bearer ")
        .expect("a bearer JWT");
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");
    assert_eq!(requests[1].path, "/app/installations/42/access_tokens");
    assert!(
        requests[2..]
            .iter()
            .all(|r| r.authorization.ends_with("ghs_installation42")),
        "{requests:#?}"
    );
}

/// GitHub Enterprise Server: the API lives under /api/v3, and every page of a listing must
/// carry the installation token.
#[tokio::test]
async fn plans_on_github_enterprise_server() {
    let github = FakeGithub::start().await;
    seed(&github);
    github
        .state
        .lock()
        .unwrap()
        .installations
        .insert("acme/api".into(), 7);
    let output = run(
        app_env(format!("{}/api/v3", github.url)),
        &["--repo", "acme/api", "--format", "json"],
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["order"],
        serde_json::json!(["acme/api#1", "acme/api#2"])
    );
    let listings: Vec<_> = github
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/issues"))
        .collect();
    assert_eq!(listings.len(), 2);
    assert!(
        listings
            .iter()
            .all(|r| r.authorization == "Bearer ghs_installation7"),
        "{listings:#?}"
    );
}

#[tokio::test]
async fn without_credentials_it_says_what_to_set() {
    let output = run(vec![], &["--repo", "acme/api"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("GITHUB_TOKEN"), "{stderr}");
}

#[tokio::test]
async fn a_repository_the_app_is_not_installed_on_is_a_clear_error() {
    let github = FakeGithub::start().await;
    let output = run(app_env(github.url.clone()), &["--repo", "acme/api"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("acme/api") && stderr.contains("404"),
        "{stderr}"
    );
    assert!(!stderr.contains("BEGIN RSA"), "{stderr}");
}
