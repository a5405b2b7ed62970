use super::*;

fn task(id: &str, secs: f64, deps: &[&str]) -> SimTask {
    SimTask {
        id: id.into(),
        duration_secs: secs,
        deps: deps.iter().map(|d| (*d).to_owned()).collect(),
        discovers: Vec::new(),
    }
}

#[test]
fn a_chain_beside_a_short_task_on_two_agents() {
    // a(10) -> b(20), c(5): a and c start at once, b when a ends: 30 s, the bound.
    let graph = SimGraph {
        agents: 2,
        tasks: vec![
            task("a", 10.0, &[]),
            task("b", 20.0, &["a"]),
            task("c", 5.0, &[]),
        ],
    };
    let report = simulate(&graph).unwrap();
    assert_eq!(report.makespan_secs, 30.0);
    assert_eq!(report.lower_bound_secs, 30.0);
    assert_eq!(report.ratio, 1.0);
    let order: Vec<_> = report
        .launches
        .iter()
        .map(|l| (l.id.as_str(), l.start_secs))
        .collect();
    assert_eq!(order, [("a", 0.0), ("c", 0.0), ("b", 10.0)]);
}

#[test]
fn the_longest_chain_goes_first_on_one_agent() {
    // One agent: x (nothing behind it) is older, but a has a chain behind it.
    let graph = SimGraph {
        agents: 1,
        tasks: vec![
            task("x", 5.0, &[]),
            task("a", 5.0, &[]),
            task("b", 5.0, &["a"]),
        ],
    };
    let report = simulate(&graph).unwrap();
    let order: Vec<_> = report.launches.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(order, ["a", "x", "b"]);
    assert_eq!(report.makespan_secs, 15.0);
    assert_eq!(report.utilisation, 1.0);
}

/// Two agents; p (1 s) and q (100 s) are ready at once, r (10 s) waits for p.
fn short_beside_long() -> SimGraph {
    SimGraph {
        agents: 2,
        tasks: vec![
            task("p", 1.0, &[]),
            task("q", 100.0, &[]),
            task("r", 10.0, &["p"]),
        ],
    }
}

#[test]
fn no_waves_a_freed_agent_starts_the_next_ready_task_at_once() {
    // Two agents: p(1) and q(100) start; r (after p) starts at 1, not when q ends.
    let graph = short_beside_long();
    let report = simulate(&graph).unwrap();
    let r = report.launches.iter().find(|l| l.id == "r").unwrap();
    assert_eq!(r.start_secs, 1.0);
    assert_eq!(report.makespan_secs, 100.0);
}

#[test]
fn waves_wait_for_the_slowest_run_of_each_batch() {
    // With waves, r waits for q (100 s) before it starts.
    let graph = short_beside_long();
    let options = SimOptions {
        dispatch: Dispatch::Waves,
        ..SimOptions::default()
    };
    let report = simulate_with(&graph, options).unwrap();
    let r = report.launches.iter().find(|l| l.id == "r").unwrap();
    assert_eq!(r.start_secs, 100.0);
    assert_eq!(report.makespan_secs, 110.0);
}

#[test]
fn bad_graphs_are_refused_with_the_reason() {
    let unknown = SimGraph {
        agents: 1,
        tasks: vec![task("a", 1.0, &["zz"])],
    };
    assert!(simulate(&unknown).unwrap_err().to_string().contains("`zz`"));
    let cycle = SimGraph {
        agents: 1,
        tasks: vec![task("a", 1.0, &["b"]), task("b", 1.0, &["a"])],
    };
    assert!(simulate(&cycle).unwrap_err().to_string().contains("cycle"));
    let twice = SimGraph {
        agents: 1,
        tasks: vec![task("a", 1.0, &[]), task("a", 1.0, &[])],
    };
    assert!(matches!(simulate(&twice), Err(SimError::DuplicateTask(_))));
    let options = SimOptions {
        fail_rate: 1.5,
        ..SimOptions::default()
    };
    let err = simulate_with(&short_beside_long(), options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the fail rate must be between 0 and 1, not 1.5"
    );
}

#[test]
fn durations_read_as_people_say_them() {
    let cases = [
        (0.0, "0s"),
        (2.5, "2.5s"),
        (9.96, "10s"),
        (45.0, "45s"),
        (60.0, "1m"),
        (1230.0, "20m 30s"),
        (7200.0, "2h"),
        (57_960.4, "16h 6m"),
        (58_007.7, "16h 6m"),
        (183_600.0, "2d 3h"),
    ];
    for (secs, text) in cases {
        assert_eq!(human_duration(secs), text, "{secs}");
    }
}

#[test]
fn a_graph_file_may_leave_out_the_agents_and_number_its_tasks() {
    let json = r#"{"tasks": [{"id": 12, "duration_secs": 60}, {"id": "b", "duration_secs": 5, "deps": [12]}]}"#;
    let graph = SimGraph::from_json(json, 3).unwrap();
    assert_eq!(graph.agents, 3);
    assert_eq!(graph.tasks[0].id, "12");
    assert_eq!(graph.tasks[1].deps, ["12"]);
    let report = simulate(&graph).unwrap();
    assert_eq!(report.makespan_secs, 65.0);

    let named = SimGraph::from_json(r#"{"agents": 1, "tasks": []}"#, 3).unwrap();
    assert_eq!(named.agents, 1);
    let fraction = SimGraph::from_json(r#"{"tasks": [{"id": 1.5, "duration_secs": 1}]}"#, 3);
    let err = fraction.unwrap_err().to_string();
    assert!(err.contains("a string or a whole number"), "{err}");
}

#[test]
fn progress_counts_every_task_once_to_the_total() {
    let graph = random_graph(50, 3, 4);
    let mut seen = Vec::new();
    simulate_observed(&graph, SimOptions::default(), &mut |done, total| {
        seen.push((done, total));
    })
    .unwrap();
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    assert_eq!(seen.last(), Some(&(50, 50)));
}

#[test]
fn random_graphs_are_reproducible_and_acyclic() {
    let one = random_graph(200, 7, 10);
    let two = random_graph(200, 7, 10);
    assert_eq!(
        serde_json::to_string(&one).unwrap(),
        serde_json::to_string(&two).unwrap()
    );
    let report = simulate(&one).unwrap();
    assert_eq!(report.launches.len(), 200);
    assert!(report.ratio >= 1.0);
}

/// Without failures the bot launches each task once, and says so: one launch per task,
/// the reads that put the issues under management, a status comment on each.
#[test]
fn the_decisions_are_what_the_bot_would_have_done() {
    let report = simulate(&short_beside_long()).unwrap();
    assert_eq!(report.completed, 3);
    assert_eq!((report.failed_runs, report.retries), (0, 0));
    assert!(report.gave_up.is_empty() && report.never_started.is_empty());
    let count = |kind: &str| report.decisions.get(kind).copied().unwrap_or(0);
    assert_eq!(count("launch"), 3);
    // Three labels, the pause and the resume: a writer's permission each time.
    assert_eq!(count("check_permission"), 5);
    assert_eq!(count("read_native_blockers"), 3);
    assert_eq!(count("resume_agents"), 1);
    assert!(count("publish_status") >= 3, "{:?}", report.decisions);
    assert_eq!(count("cancel"), 0);
}

/// Every run fails: with two retries each ready task is tried three times and given up
/// on; what depends on it never starts.
#[test]
fn a_run_that_always_fails_is_retried_then_given_up() {
    let options = SimOptions {
        fail_rate: 1.0,
        retry_failed: 2,
        ..SimOptions::default()
    };
    let report = simulate_with(&short_beside_long(), options).unwrap();
    let runs: Vec<_> = report
        .launches
        .iter()
        .map(|l| (l.id.as_str(), l.attempt, l.start_secs, l.failed))
        .collect();
    assert_eq!(
        runs,
        [
            ("p", 1, 0.0, true),
            ("q", 1, 0.0, true),
            ("p", 2, 1.0, true),
            ("p", 3, 2.0, true),
            ("q", 2, 100.0, true),
            ("q", 3, 200.0, true),
        ]
    );
    assert_eq!((report.failed_runs, report.retries), (6, 4));
    assert_eq!(report.completed, 0);
    assert_eq!(report.gave_up, ["p", "q"]);
    assert_eq!(report.never_started, ["r"]);
    assert_eq!(report.makespan_secs, 300.0);
    // Busy: p three times (3 s) and q three times (300 s) of 2 x 300 s.
    assert_eq!(report.utilisation, 303.0 / 600.0);
    let text = report.to_text();
    assert!(
        text.contains("failures:     6 failed runs, 4 retries\n"),
        "{text}"
    );
    assert!(text.contains("gave up on:   p, q\n"), "{text}");
    assert!(text.contains("not started:  r\n"), "{text}");
}

/// Some runs fail and are retried; every task ends completed or accounted for, and the
/// same seed gives the same failures.
#[test]
fn failures_are_drawn_from_the_seed_and_every_task_is_accounted_for() {
    let graph = random_graph(60, 4, 5);
    let options = SimOptions {
        fail_rate: 0.3,
        retry_failed: 2,
        seed: 4,
        ..SimOptions::default()
    };
    let report = simulate_with(&graph, options).unwrap();
    assert!(report.retries > 0 && report.failed_runs >= report.retries);
    assert!(report.launches.iter().all(|l| l.attempt <= 3));
    assert_eq!(
        report.completed + report.gave_up.len() + report.never_started.len(),
        60
    );
    assert_eq!(report.decisions["launch"], report.launches.len());
    let again = simulate_with(&graph, options).unwrap();
    assert_eq!(
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
    let other = simulate_with(&graph, SimOptions { seed: 5, ..options }).unwrap();
    assert_ne!(
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&other).unwrap()
    );
}
