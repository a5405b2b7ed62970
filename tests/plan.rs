//! `plan --issues`: a file of GitHub REST issue objects in, the graph, its cycles and the
//! launch order out, in text, JSON and Mermaid; exit codes 0, 2 and 1.

mod support;

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_codegen-orchestrator");
const ISSUES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/plan-issues.json");

fn plan(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .arg("plan")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn text_report_with_a_cycle_and_an_unknown_reference_exits_2() {
    let output = plan(&["--issues", ISSUES]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn json_report() {
    let output = plan(&["--issues", ISSUES, "--format", "json"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stdout(&output);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        report["cycles"],
        serde_json::json!([["acme/api#9", "acme/api#8"]])
    );
    assert_eq!(report["unknown"], serde_json::json!(["acme/infra#42"]));
    assert_eq!(report["order"][0], "acme/api#1");
    insta::assert_snapshot!(text);
}

#[test]
fn mermaid_report() {
    let output = plan(&["--issues", ISSUES, "--format", "mermaid", "--agents", "1"]);
    assert_eq!(output.status.code(), Some(2));
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn the_pool_size_shapes_the_waves() {
    let output = plan(&["--issues", ISSUES, "--format", "json", "--agents", "1"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let waves = report["waves"].as_array().unwrap();
    assert!(waves.iter().all(|wave| wave.as_array().unwrap().len() == 1));
    assert_eq!(waves.len(), report["order"].as_array().unwrap().len());
}

/// Real issue objects (from GitHub's webhook examples, which carry the REST issue shape)
/// without cycles or unknown references: exit 0.
#[test]
fn real_issue_objects_plan_cleanly() {
    let payload: serde_json::Value = serde_json::from_slice(&support::fixture(
        "issues/opened.with-organization.payload.json",
    ))
    .unwrap();
    let mut first = payload["issue"].clone();
    first["labels"] = serde_json::json!([{"name": "codegen"}]);
    let mut second = first.clone();
    second["number"] = serde_json::json!(2);
    second["body"] = serde_json::json!("Depends on #1");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("issues.json");
    std::fs::write(&file, serde_json::to_vec(&[first, second]).unwrap()).unwrap();
    let output = plan(&["--issues", file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let repo = payload["repository"]["full_name"].as_str().unwrap();
    assert_eq!(
        report["order"],
        serde_json::json!([format!("{repo}#1"), format!("{repo}#2")])
    );
}

#[test]
fn bad_input_exits_1_naming_the_file_and_the_issue() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(
        &file,
        r#"[{"number": 1, "state": "open", "title": "no repository"}]"#,
    )
    .unwrap();
    let output = plan(&["--issues", file.to_str().unwrap()]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("broken.json") && stderr.contains("number 1"),
        "{stderr}"
    );
    assert!(stderr.contains("repository"), "{stderr}");

    std::fs::write(&file, r#"[{"number": "one", "state": "open"}]"#).unwrap();
    let output = plan(&["--issues", file.to_str().unwrap()]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("broken.json") && stderr.contains("[0].number"),
        "{stderr}"
    );

    let output = plan(&["--issues", "/nonexistent/issues.json"]);
    assert_eq!(output.status.code(), Some(1));
}

/// The README's first example: a sample without cycles or unknown references.
#[test]
fn the_clean_sample_plans_and_exits_0() {
    let clean = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/plan-issues-clean.json"
    );
    let output = plan(&["--issues", clean, "--agents", "1"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = stdout(&output);
    assert!(text.contains("\nWaves with 1 agent:\n"), "{text}");
    insta::assert_snapshot!(text);
}

/// Without a source, `plan` says that one of the two is needed, as bad input (1), not as
/// a graph with a cycle (2).
#[test]
fn no_source_asks_for_one_of_repo_or_issues() {
    let output = plan(&[]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: one of --repo OWNER/REPO or --issues FILE is required"),
        "{stderr}"
    );
    let output = plan(&["--repo", "acme/api", "--issues", ISSUES]);
    assert_eq!(output.status.code(), Some(1));
}

/// A pool of no agents is refused, as `codegen.max_concurrent_agents: 0` is.
#[test]
fn zero_agents_are_refused() {
    for args in [
        &["plan", "--issues", ISSUES, "--agents", "0"][..],
        &["simulate", "--random", "5", "--agents", "0"][..],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("invalid value '0' for '--agents <N>': must be at least 1"),
            "{stderr}"
        );
    }
}

/// `plan --repo` against a GitHub that is not there: the error names the service, the host
/// and the cause, the log never shows octocrab's `client error (Connect)`, and the token
/// appears nowhere. (The client retries transport failures for about eight seconds first.)
#[test]
fn an_unreachable_github_is_named_with_its_host_and_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = "ghp_plan_distinctive_0d4c";
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("GITHUB_API_URL", format!("http://127.0.0.1:{port}"))
        .env("GITHUB_TOKEN", token)
        .args(["plan", "--repo", "acme/api"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.ends_with(&format!(
            "error: reading acme/api from GitHub: cannot reach GitHub at 127.0.0.1:{port}: connection refused\n"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("client error (Connect)"), "{stderr}");
    assert!(!stderr.contains(token), "{stderr}");
}

/// The forecast in `plan --format json`: with `--history`, each repository's issues weigh
/// the mean of its finished runs (acme/api 30 minutes, acme/web 2 hours); with two agents
/// the chain acme/api#1 -> #2 -> acme/web#4 -> acme/web#11 ends at 30 + 30 + 120 + 120
/// minutes.
#[test]
fn the_forecast_weighs_each_repository_by_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.json");
    std::fs::write(
        &history,
        r#"{"acme/api": [1500, 2100], "acme/web": [7200, 7200]}"#,
    )
    .unwrap();
    let output = plan(&[
        "--issues",
        ISSUES,
        "--format",
        "json",
        "--agents",
        "2",
        "--history",
        history.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let forecast = &report["forecast"];
    let times = |issue: &str| {
        let times = &forecast["issues"][issue];
        (times["start_secs"].as_i64(), times["finish_secs"].as_i64())
    };
    assert_eq!(times("acme/api#1"), (Some(0), Some(1800)));
    assert_eq!(times("acme/api#2"), (Some(1800), Some(3600)));
    assert_eq!(times("acme/web#4"), (Some(3600), Some(3600 + 7200)));
    assert_eq!(times("acme/web#11"), (Some(10_800), Some(18_000)));
    assert_eq!(forecast["finish_secs"], 18_000);
    // Issues on a cycle or waiting for an unknown one are not forecast.
    assert!(forecast["issues"].get("acme/api#8").is_none());
    assert!(forecast["issues"].get("acme/api#10").is_none());
    // #1, #2, #3 at half an hour, #4 and #11 at two hours.
    assert_eq!(forecast["agent_hours"], 5.5);

    // Without a history, every issue weighs the default hour.
    let output = plan(&["--issues", ISSUES, "--format", "json", "--agents", "2"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["forecast"]["finish_secs"], 4 * 3600);

    std::fs::write(&history, r#"["acme/api"]"#).unwrap();
    let output = plan(&["--issues", ISSUES, "--history", history.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("history.json: expected a JSON object"),
        "{stderr}"
    );
}

/// Beside a deployment, `plan` forecasts with the figures the bot learned, read from the
/// store `storage.url` names (here the default SQLite file, held open by a store as a
/// running `serve` holds it).
#[tokio::test]
async fn the_forecast_reads_the_learned_figures_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data/orchestrator.db", dir.path().display());
    let store = codegen_orchestrator::store::Store::open(&url)
        .await
        .unwrap();
    store
        .set_setting("durations:acme/api", Some(r#"{"runs":[600,600]}"#))
        .await
        .unwrap();
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .args([
            "plan", "--issues", ISSUES, "--format", "json", "--agents", "1",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let api_1 = &report["forecast"]["issues"]["acme/api#1"];
    assert_eq!(
        api_1["finish_secs"],
        600,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // acme/web learned nothing: the default hour.
    let web_4 = &report["forecast"]["issues"]["acme/web#4"];
    assert_eq!(
        web_4["finish_secs"].as_i64().unwrap() - web_4["start_secs"].as_i64().unwrap(),
        3600
    );
    store.close().await;
}
