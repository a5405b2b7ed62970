//! `simulate`: the real scheduler on a virtual clock; exact makespans on a hand-checked
//! graph, stable JSON, reproducible random graphs.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_codegen-orchestrator");
const SMALL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/simulate-small.json"
);

fn run(args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .arg("simulate")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

/// Two agents: schema (600) -> api (1200) -> ui (900) is the critical path, 2700 s; docs
/// and lint fit beside it. The chain starts first, so the makespan is the bound.
#[test]
fn a_hand_checked_graph_reaches_its_lower_bound() {
    let (code, json) = run(&["--graph", SMALL, "--json"]);
    assert_eq!(code, 0, "{json}");
    insta::assert_snapshot!(json);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["makespan_secs"], 2700.0);
    assert_eq!(report["lower_bound_secs"], 2700.0);
    assert_eq!(report["ratio"], 1.0);
}

#[test]
fn one_agent_takes_the_total_work() {
    let (code, json) = run(&["--graph", SMALL, "--json", "--agents", "1"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["makespan_secs"], 3120.0);
    assert_eq!(report["utilisation"], 1.0);
}

#[test]
fn random_graphs_are_reproducible_by_seed() {
    let (_, first) = run(&["--random", "50", "--seed", "9", "--agents", "4", "--json"]);
    let (_, second) = run(&["--random", "50", "--seed", "9", "--agents", "4", "--json"]);
    let (_, other) = run(&["--random", "50", "--seed", "10", "--agents", "4", "--json"]);
    assert_eq!(first, second);
    assert_ne!(first, other);
    let report: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(report["launches"].as_array().unwrap().len(), 50);
}

#[test]
fn a_bad_graph_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cycle.json");
    std::fs::write(&file, r#"{"agents": 1, "tasks": [{"id": "a", "duration_secs": 1, "deps": ["b"]}, {"id": "b", "duration_secs": 1, "deps": ["a"]}]}"#).unwrap();
    let (code, text) = run(&["--graph", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("cycle"), "{text}");
}

/// A short chain against long single tasks, two agents: counted in issues, the chain of
/// three looks longest and goes first; told the durations, the scheduler starts the two
/// long tasks and fits the chain beside them.
#[test]
fn estimates_let_the_scheduler_weigh_chains_by_duration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weights.json");
    std::fs::write(
        &file,
        r#"{"agents": 2, "tasks": [
            {"id": "x1", "duration_secs": 10},
            {"id": "x2", "duration_secs": 10, "deps": ["x1"]},
            {"id": "x3", "duration_secs": 10, "deps": ["x2"]},
            {"id": "long", "duration_secs": 100, "deps": []},
            {"id": "longer", "duration_secs": 130, "deps": []}
        ]}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let makespan = |extra: &[&str]| {
        let (code, json) = run(&[&["--graph", path, "--json"], extra].concat());
        assert_eq!(code, 0, "{json}");
        serde_json::from_str::<serde_json::Value>(&json).unwrap()["makespan_secs"].clone()
    };
    // Shape only: x1 and `long` at 0; x2 at 10, x3 at 20, `longer` at 30 -> 160.
    assert_eq!(makespan(&[]), 160.0);
    // Durations known: `longer` and `long` at 0, the chain from 100 -> 130, the bound.
    assert_eq!(makespan(&["--estimates"]), 130.0);
}

/// The scheduling target on one of the benchmark's graphs (200 issues, 10 agents).
#[test]
fn with_estimates_a_benchmark_graph_is_within_two_percent_of_its_bound() {
    let (code, json) = run(&[
        "--random",
        "200",
        "--seed",
        "1",
        "--agents",
        "10",
        "--json",
        "--estimates",
    ]);
    assert_eq!(code, 0);
    let ratio = serde_json::from_str::<serde_json::Value>(&json).unwrap()["ratio"]
        .as_f64()
        .unwrap();
    assert!(ratio <= 1.02, "{ratio}");
}

/// A graph file without `agents` takes `--agents` (or the configuration's); task ids may
/// be numbers, as issue numbers are.
#[test]
fn a_file_without_agents_and_with_numeric_ids() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("numbers.json");
    std::fs::write(
        &file,
        r#"{"tasks": [
            {"id": 12, "duration_secs": 600},
            {"id": 13, "duration_secs": 300, "deps": [12]},
            {"id": "docs", "duration_secs": 900}
        ]}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, json) = run(&["--graph", path, "--agents", "2", "--json"]);
    assert_eq!(code, 0, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["makespan_secs"], 900.0);
    assert_eq!(report["launches"][0]["id"], "12");
    // Without --agents, the configuration's default pool (10).
    let (code, json) = run(&["--graph", path, "--json"]);
    assert_eq!(code, 0, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        report["utilisation"].as_f64().unwrap(),
        1800.0 / (10.0 * 900.0)
    );
}

/// Text output gives durations as people read them (`45m`, `16h 6m`); JSON keeps seconds.
/// With stderr not a terminal, no progress line is drawn.
#[test]
fn text_output_reads_durations_in_hours_and_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .args(["simulate", "--graph", SMALL])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("makespan:     45m\n"), "{text}");
    insta::assert_snapshot!(text);

    // The benchmark graph: 58,007.7 s in JSON, `16h 6m` in text.
    let (_, json) = run(&["--random", "200", "--seed", "1", "--agents", "10", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["makespan_secs"], 58007.7);
    let (_, long) = run(&["--random", "200", "--seed", "1", "--agents", "10"]);
    assert_eq!(long.lines().next(), Some("makespan:     16h 6m"), "{long}");
}
