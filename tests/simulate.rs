//! `simulate`: the bot's engine on a virtual clock; exact makespans on a hand-checked
//! graph, stable JSON, reproducible random graphs, failures and retries, tasks discovered
//! while others run.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_codegen-orchestrator");
const SMALL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/simulate-small.json"
);
const DISCOVERY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/simulate-discovery.json"
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

/// The JSON report up to its decision counts, which come last: the snapshots hold the plan,
/// and the counts follow whatever the engine publishes (asserted apart).
fn without_decisions(json: &str) -> String {
    let at = json
        .find(",\n  \"decisions\": {")
        .expect("the decisions come last");
    format!("{}\n}}\n", &json[..at])
}

/// Two agents: schema (600) -> api (1200) -> ui (900) is the critical path, 2700 s; docs
/// and lint fit beside it. The chain starts first, so the makespan is the bound.
#[test]
fn a_hand_checked_graph_reaches_its_lower_bound() {
    let (code, json) = run(&["--graph", SMALL, "--json"]);
    assert_eq!(code, 0, "{json}");
    insta::assert_snapshot!(without_decisions(&json));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["makespan_secs"], 2700.0);
    assert_eq!(report["lower_bound_secs"], 2700.0);
    assert_eq!(report["ratio"], 1.0);
    // One launch per task; a writer's permission for each label, the pause and the resume.
    assert_eq!(report["decisions"]["launch"], 5);
    assert_eq!(report["decisions"]["check_permission"], 7);
    assert_eq!(report["decisions"]["resume_agents"], 1);
    assert!(report["decisions"]["publish_status"].as_u64().unwrap() >= 5);
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
    let (plan, decisions) = text
        .split_once("what the bot would have done:\n")
        .expect("the decisions come last");
    insta::assert_snapshot!(plan);
    assert!(
        decisions.contains("\n  launch                      5\n"),
        "{text}"
    );

    // The benchmark graph: 58,007.7 s in JSON, `16h 6m` in text.
    let (_, json) = run(&["--random", "200", "--seed", "1", "--agents", "10", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["makespan_secs"], 58007.7);
    let (_, long) = run(&["--random", "200", "--seed", "1", "--agents", "10"]);
    assert_eq!(long.lines().next(), Some("makespan:     16h 6m"), "{long}");
}

fn report(args: &[&str]) -> serde_json::Value {
    let (code, json) = run(&[args, &["--json"]].concat());
    assert_eq!(code, 0, "{json}");
    serde_json::from_str(&json).unwrap()
}

/// The engine, driven through deliveries, launches exactly as the scheduler alone did:
/// these are the makespans the scheduler-only simulation measured on the benchmark's
/// first graph, in each mode; `--fail-rate 0` changes nothing.
#[test]
fn without_failures_the_plan_is_the_schedulers() {
    let graph = ["--random", "200", "--seed", "1"];
    for (extra, makespan) in [
        (&["--agents", "10"][..], 58007.7),
        (&["--agents", "10", "--estimates"][..], 50617.9),
        (&["--agents", "10", "--dispatch", "waves"][..], 145256.0),
        (&["--agents", "3"][..], 171258.6),
    ] {
        let plain = report(&[&graph[..], extra].concat());
        assert_eq!(plain["makespan_secs"], makespan, "{extra:?}");
        let zero = report(&[&graph[..], extra, &["--fail-rate", "0"]].concat());
        assert_eq!(plain, zero, "{extra:?}");
        let none = report(&[&graph[..], extra, &["--discovery-rate", "0"]].concat());
        assert_eq!(plain, none, "{extra:?}");
        assert_eq!(plain["completed"], 200);
        assert_eq!(plain["decisions"]["launch"], 200);
        assert_eq!(plain["retries"], 0);
    }
}

/// A third of the runs fail and each may be retried twice: retries appear, no task runs
/// more than three times, and every task ends completed, given up on (three failed runs)
/// or never started behind one given up on. The same seed gives the same failures.
#[test]
fn failed_runs_are_retried_and_every_task_is_accounted_for() {
    let args = [
        "--random",
        "60",
        "--seed",
        "5",
        "--agents",
        "4",
        "--fail-rate",
        "0.3",
        "--retry-failed",
        "2",
    ];
    let first = report(&args);
    assert_eq!(first, report(&args));
    let launches = first["launches"].as_array().unwrap();
    let attempts = |id: &str| launches.iter().filter(|l| l["id"] == id).count();
    assert!(first["retries"].as_u64().unwrap() > 0, "{first:#}");
    assert!(
        launches
            .iter()
            .all(|l| l["attempt"].as_u64().unwrap_or(1) <= 3)
    );
    let names = |key: &str| -> Vec<String> {
        first[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    for id in names("gave_up") {
        assert_eq!(attempts(&id), 3, "{id}");
    }
    for id in names("never_started") {
        assert_eq!(attempts(&id), 0, "{id}");
    }
    let accounted = first["completed"].as_u64().unwrap() as usize
        + names("gave_up").len()
        + names("never_started").len();
    assert_eq!(accounted, 60);
    assert_eq!(
        first["decisions"]["launch"].as_u64().unwrap() as usize,
        launches.len()
    );

    // The text says it too.
    let (code, text) = run(&args);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("  attempt 2"), "{text}");
    assert!(text.contains("\nfailures:     "), "{text}");
    assert!(text.contains("\nwhat the bot would have done:\n"), "{text}");
    assert!(
        text.contains(" retries)\n") || text.contains(" retry)\n"),
        "{text}"
    );
}

/// Without retries a failed run is given up on at once; a graph file takes a seed for its
/// failures too.
#[test]
fn without_retries_a_failure_is_final() {
    let (code, json) = run(&[
        "--graph",
        SMALL,
        "--fail-rate",
        "1",
        "--retry-failed",
        "0",
        "--seed",
        "3",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    // Every run fails: the three tasks without dependencies run once each.
    assert_eq!(report["completed"], 0);
    assert_eq!(report["failed_runs"], 3);
    assert_eq!(report["retries"], 0);
    assert_eq!(
        report["gave_up"],
        serde_json::json!(["schema", "docs", "lint"])
    );
    assert_eq!(report["never_started"], serde_json::json!(["api", "ui"]));
}

/// A fail rate must be a probability; the command says so and does nothing.
#[test]
fn an_invalid_fail_rate_is_refused_with_the_reason() {
    for (value, expected) in [
        (
            "1.5",
            "invalid value '1.5' for '--fail-rate <P>': must be between 0 and 1",
        ),
        (
            "-0.1",
            "invalid value '-0.1' for '--fail-rate <P>': must be between 0 and 1",
        ),
        (
            "NaN",
            "invalid value 'NaN' for '--fail-rate <P>': must be between 0 and 1",
        ),
        (
            "often",
            "invalid value 'often' for '--fail-rate <P>': `often` is not a number",
        ),
    ] {
        let flag = format!("--fail-rate={value}");
        let (code, text) = run(&["--graph", SMALL, &flag]);
        // Bad arguments exit 1 in every subcommand (as `--agents 0` does).
        assert_eq!(code, 1, "{value}: {text}");
        assert!(text.contains(expected), "{value}: {text}");
        assert!(!text.contains("makespan"), "{text}");
    }
    // A seed seeds a random graph or failures; alone with a file it means nothing.
    let (code, text) = run(&["--graph", SMALL, "--seed", "2"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("--random"), "{text}");
}

/// Two agents: 1 (30 min) -> 4 (1 h); halfway through 4, task 9 (20 min, after 4) appears,
/// and a quarter into 9, task 10 (10 min, after 1). The ready queue starts 10 as it
/// appears, beside 9: 1 h 50 min, the final graph's bound (1 -> 4 -> 9). Waves take 9 in
/// with the batch after 4's, and 10 only with the one after 9's: 2 h.
#[test]
fn tasks_discovered_while_others_run() {
    let queue = report(&["--graph", DISCOVERY]);
    assert_eq!(queue["makespan_secs"], 6600.0);
    assert_eq!(queue["lower_bound_secs"], 6600.0);
    assert_eq!(queue["completed"], 5);
    assert_eq!(queue["discovered"], 2);
    assert_eq!(
        queue["discoveries"],
        serde_json::json!([
            {"id": "9", "by": "4", "at_secs": 3600.0},
            {"id": "10", "by": "9", "at_secs": 5700.0}
        ])
    );
    let start = |report: &serde_json::Value, id: &str| {
        report["launches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == id)
            .map(|l| l["start_secs"].clone())
    };
    assert_eq!(start(&queue, "9"), Some(5400.0.into()));
    assert_eq!(start(&queue, "10"), Some(5700.0.into()));
    // Each new issue came in as the file's did: a writer's label, its blockers read.
    assert_eq!(queue["decisions"]["check_permission"], 7);
    assert_eq!(queue["decisions"]["read_native_blockers"], 5);

    let waves = report(&["--graph", DISCOVERY, "--dispatch", "waves"]);
    assert_eq!(waves["makespan_secs"], 7200.0);
    assert_eq!(waves["lower_bound_secs"], 6600.0);
    assert_eq!(start(&waves, "10"), Some(6600.0.into()));
    assert_eq!(waves["discoveries"], queue["discoveries"]);

    let (code, text) = run(&["--graph", DISCOVERY]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("\n     5. 10             1h 35m ->   1h 45m  discovered at 1h 35m\n"),
        "{text}"
    );
    assert!(
        text.contains("\ndiscovered:   2 tasks while running\n"),
        "{text}"
    );
}

/// A fifth of a random graph's tasks each discover one or two more: the same seed gives
/// the same run, every task is done, and the bound is the final graph's.
#[test]
fn a_discovery_rate_grows_random_graphs_by_seed() {
    let args = ["--random", "60", "--seed", "3", "--agents", "4"];
    let first = report(&[&args[..], &["--discovery-rate", "0.2"]].concat());
    assert_eq!(
        first,
        report(&[&args[..], &["--discovery-rate", "0.2"]].concat())
    );
    let found = first["discovered"].as_u64().unwrap();
    assert!((12..=24).contains(&found), "{found}");
    assert_eq!(first["completed"].as_u64().unwrap(), 60 + found);
    assert_eq!(
        first["launches"].as_array().unwrap().len() as u64,
        60 + found
    );
    assert!(first["ratio"].as_f64().unwrap() >= 1.0, "{first:#}");
    let plain = report(&args);
    assert!(first["lower_bound_secs"].as_f64() > plain["lower_bound_secs"].as_f64());
    assert!(plain.get("discovered").is_none() && plain.get("discoveries").is_none());
}

/// A discovery rate is a share of the tasks, for random graphs only; a discovery's `at`
/// is a share of its discoverer's run.
#[test]
fn bad_discoveries_are_refused_with_the_reason() {
    let (code, text) = run(&["--random", "10", "--discovery-rate", "1.5"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("invalid value '1.5' for '--discovery-rate <R>': must be between 0 and 1"),
        "{text}"
    );
    let (code, text) = run(&["--graph", DISCOVERY, "--discovery-rate", "0.2"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("--random"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("late.json");
    std::fs::write(
        &file,
        r#"{"tasks": [{"id": "a", "duration_secs": 60,
            "discovers": [{"at": 2, "id": "b", "duration_secs": 60}]}]}"#,
    )
    .unwrap();
    let (code, text) = run(&["--graph", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "error: task `b` is discovered at 2 of its discoverer's run; `at` must be a \
             fraction of the run from 0 to 1"
        ),
        "{text}"
    );
}

/// `simulate --forecast`: the forecast's accuracy and the makespans with the shape only,
/// learned and known durations, in JSON, reproducible by seed; refused without --random.
#[test]
fn the_forecast_is_measured_on_random_graphs_of_several_repositories() {
    let args = [
        "--random",
        "120",
        "--forecast",
        "--graphs",
        "3",
        "--agents",
        "6",
    ];
    let first = report(&args);
    assert_eq!(first, report(&args), "the same seeds give the same report");
    assert_eq!(first["graphs"], 3);
    let errors = first["median_error"].as_array().unwrap();
    let points: Vec<f64> = errors.iter().map(|e| e[0].as_f64().unwrap()).collect();
    assert_eq!(points, [0.0, 0.25, 0.5]);
    let ratio = |key: &str| first[key].as_f64().unwrap();
    assert!(ratio("ratio_known") >= 1.0);
    assert!(ratio("ratio_learned") <= ratio("ratio_shape"), "{first}");

    let (code, text) = run(&["--random", "50", "--forecast"]);
    assert_eq!(code, 0);
    assert!(text.contains("forecast after 25 % of the tasks"), "{text}");
    let (code, _) = run(&["--graph", SMALL, "--forecast"]);
    assert_eq!(code, 1, "--forecast needs --random");
}
