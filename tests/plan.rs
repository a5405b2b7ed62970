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
