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

/// A graph file's tasks with their discoveries, on `agents` agents.
fn file(agents: usize, tasks: &str) -> SimGraph {
    SimGraph::from_json(&format!(r#"{{"agents": {agents}, "tasks": [{tasks}]}}"#), 1).unwrap()
}

/// (task, start, end) of every launch.
fn runs(report: &SimReport) -> Vec<(&str, f64, f64)> {
    report
        .launches
        .iter()
        .map(|l| (l.id.as_str(), l.start_secs, l.end_secs))
        .collect()
}

/// The issue's example on two agents: 1 (30 min) -> 4 (1 h), and 5 (10 min) beside them;
/// halfway through 4, task 9 (20 min, after 4) appears. 1 and 5 start at 0, 4 at 30 min,
/// 9 appears at 1 h but waits for 4 (1 h 30) and ends at 1 h 50: the final graph's
/// critical path 1 -> 4 -> 9, so the makespan is its bound.
#[test]
fn a_hand_checked_graph_with_a_discovery() {
    let graph = file(
        2,
        r#"{"id": "1", "duration_secs": 1800},
           {"id": "4", "duration_secs": 3600, "deps": ["1"],
            "discovers": [{"at": 0.5, "id": "9", "duration_secs": 1200, "deps": ["4"]}]},
           {"id": "5", "duration_secs": 600}"#,
    );
    let report = simulate(&graph).unwrap();
    assert_eq!(
        runs(&report),
        [
            ("1", 0.0, 1800.0),
            ("5", 0.0, 600.0),
            ("4", 1800.0, 5400.0),
            ("9", 5400.0, 6600.0)
        ]
    );
    assert_eq!(report.makespan_secs, 6600.0);
    assert_eq!(report.lower_bound_secs, 6600.0);
    assert_eq!(report.completed, 4);
    assert_eq!(report.discovered, 1);
    let found = &report.discoveries[0];
    assert_eq!((found.id.as_str(), found.by.as_str()), ("9", "4"));
    assert_eq!(found.at_secs, 3600.0);
    // The new issue came in as the others did: a writer's label, its blockers read.
    assert_eq!(report.decisions["check_permission"], 6);
    assert_eq!(report.decisions["read_native_blockers"], 4);
    let text = report.to_text();
    assert!(text.contains("  discovered at 1h\n"), "{text}");
    assert!(
        text.contains("discovered:   1 task while running\n"),
        "{text}"
    );
    assert!(
        text.contains("work / agents, discovered tasks included)"),
        "{text}"
    );
}

/// x needs nothing but appears only at a quarter of a's run (25 s): the agent b freed at
/// 10 s waits for it. The bound counts that x cannot start before 25 s: 25 + 200.
#[test]
fn a_discovered_task_is_not_launched_before_it_appears() {
    let graph = file(
        2,
        r#"{"id": "a", "duration_secs": 100,
            "discovers": [{"at": 0.25, "id": "x", "duration_secs": 200}]},
           {"id": "b", "duration_secs": 10}"#,
    );
    let report = simulate(&graph).unwrap();
    assert_eq!(
        runs(&report),
        [("a", 0.0, 100.0), ("b", 0.0, 10.0), ("x", 25.0, 225.0)]
    );
    assert_eq!(report.discoveries[0].at_secs, 25.0);
    assert_eq!(report.lower_bound_secs, 225.0);
    assert_eq!(report.ratio, 1.0);
}

/// a discovers x halfway; x, once running, discovers y at a fifth of its run; y needs only
/// a, so it starts as it appears, on the agent beside x: at 100 + 20.
#[test]
fn a_discovered_task_may_discover_in_its_turn() {
    let graph = file(
        2,
        r#"{"id": "a", "duration_secs": 100, "discovers": [
              {"at": 0.5, "id": "x", "duration_secs": 100, "deps": ["a"], "discovers": [
                 {"at": 0.2, "id": "y", "duration_secs": 20, "deps": ["a"]}]}]}"#,
    );
    let report = simulate(&graph).unwrap();
    assert_eq!(
        runs(&report),
        [("a", 0.0, 100.0), ("x", 100.0, 200.0), ("y", 120.0, 140.0)]
    );
    let found: Vec<_> = report
        .discoveries
        .iter()
        .map(|f| (f.id.as_str(), f.by.as_str(), f.at_secs))
        .collect();
    assert_eq!(found, [("x", "a", 50.0), ("y", "x", 120.0)]);
    assert_eq!(report.makespan_secs, 200.0);
    assert_eq!(report.lower_bound_secs, 200.0);
}

#[test]
fn a_discovery_time_outside_the_run_is_refused() {
    for at in ["1.5", "-0.1"] {
        let graph = file(
            1,
            &format!(
                r#"{{"id": "a", "duration_secs": 10,
                    "discovers": [{{"at": {at}, "id": "x", "duration_secs": 1}}]}}"#
            ),
        );
        let err = simulate(&graph).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "task `x` is discovered at {at} of its discoverer's run; `at` must be a \
                 fraction of the run from 0 to 1"
            )
        );
    }
    // A discovery without `at`, or with a field of its own, is not read at all.
    for discovery in [
        r#"{"id": "x", "duration_secs": 1}"#,
        r#"{"at": 0.5, "id": "x", "duration_secs": 1, "when": 3}"#,
    ] {
        let json = format!(
            r#"{{"tasks": [{{"id": "a", "duration_secs": 1, "discovers": [{discovery}]}}]}}"#
        );
        assert!(SimGraph::from_json(&json, 1).is_err(), "{discovery}");
    }
}

#[test]
fn discovered_ids_are_unique_and_their_dependencies_known() {
    let twice = file(
        1,
        r#"{"id": "a", "duration_secs": 1,
            "discovers": [{"at": 0.5, "id": "b", "duration_secs": 1}]},
           {"id": "b", "duration_secs": 1}"#,
    );
    assert_eq!(
        simulate(&twice).unwrap_err().to_string(),
        "task `b` appears twice"
    );
    let nested_twice = file(
        1,
        r#"{"id": "a", "duration_secs": 1, "discovers": [
              {"at": 0.5, "id": "x", "duration_secs": 1, "discovers": [
                 {"at": 0.5, "id": "x", "duration_secs": 1}]}]}"#,
    );
    assert!(matches!(
        simulate(&nested_twice),
        Err(SimError::DuplicateTask(id)) if id == "x"
    ));
    let unknown = file(
        1,
        r#"{"id": "a", "duration_secs": 1,
            "discovers": [{"at": 0.5, "id": "x", "duration_secs": 1, "deps": ["zz"]}]}"#,
    );
    assert_eq!(
        simulate(&unknown).unwrap_err().to_string(),
        "task `x` depends on `zz`, which is not a task"
    );
}

/// x and y, both found by a, each depend on the other: a cycle of the final graph.
#[test]
fn a_cycle_through_discovered_tasks_is_refused() {
    let graph = file(
        1,
        r#"{"id": "a", "duration_secs": 10, "discovers": [
              {"at": 0.5, "id": "x", "duration_secs": 1, "deps": ["y"]},
              {"at": 0.6, "id": "y", "duration_secs": 1, "deps": ["x"]}]}"#,
    );
    let err = simulate(&graph).unwrap_err();
    assert!(matches!(err, SimError::Cycle(_)), "{err}");
    assert!(err.to_string().contains("x -> y") || err.to_string().contains("y -> x"));
}

/// An issue can only name issues that exist: the file's tasks cannot depend on a
/// discovered one (a's own discovery included), nor a discovered task on one that may
/// appear after it; one that always appears before it is fine.
#[test]
fn a_dependency_must_exist_before_its_dependent_appears() {
    let refused = [
        (
            r#"{"id": "a", "duration_secs": 10, "deps": ["x"],
                "discovers": [{"at": 0.5, "id": "x", "duration_secs": 1}]}"#,
            ("a", "x"),
        ),
        (
            r#"{"id": "a", "duration_secs": 10, "discovers": [
                  {"at": 0.5, "id": "x", "duration_secs": 1},
                  {"at": 0.3, "id": "y", "duration_secs": 1, "deps": ["x"]}]}"#,
            ("y", "x"),
        ),
        // b may run (and find y) before a finds x.
        (
            r#"{"id": "a", "duration_secs": 10,
                "discovers": [{"at": 0.5, "id": "x", "duration_secs": 1}]},
               {"id": "b", "duration_secs": 10,
                "discovers": [{"at": 0.5, "id": "y", "duration_secs": 1, "deps": ["x"]}]}"#,
            ("y", "x"),
        ),
    ];
    for (tasks, (task, dependency)) in refused {
        let err = simulate(&file(1, tasks)).unwrap_err();
        assert!(
            matches!(&err, SimError::NotThereYet { task: t, dependency: d }
                if t == task && d == dependency),
            "{err}"
        );
    }
    // After a, b finds y: x (found during a's run) is there by then.
    let fine = file(
        1,
        r#"{"id": "a", "duration_secs": 10,
            "discovers": [{"at": 0.5, "id": "x", "duration_secs": 1}]},
           {"id": "b", "duration_secs": 10, "deps": ["a"],
            "discovers": [{"at": 0.5, "id": "y", "duration_secs": 1, "deps": ["x"]}]}"#,
    );
    assert_eq!(simulate(&fine).unwrap().completed, 4);
}

/// Every run fails and is retried twice: a runs three times, x appears once (in the first
/// run), and never starts behind a.
#[test]
fn a_retried_run_does_not_discover_again() {
    let graph = file(
        2,
        r#"{"id": "a", "duration_secs": 10,
            "discovers": [{"at": 0.5, "id": "x", "duration_secs": 5, "deps": ["a"]}]}"#,
    );
    let options = SimOptions {
        fail_rate: 1.0,
        retry_failed: 2,
        ..SimOptions::default()
    };
    let report = simulate_with(&graph, options).unwrap();
    assert_eq!(
        runs(&report),
        [("a", 0.0, 10.0), ("a", 10.0, 20.0), ("a", 20.0, 30.0)]
    );
    assert_eq!(report.discovered, 1);
    assert_eq!(report.discoveries[0].at_secs, 5.0);
    assert_eq!(report.gave_up, ["a"]);
    assert_eq!(report.never_started, ["x"]);
    // One label for a and one for x, the pause and the resume.
    assert_eq!(report.decisions["check_permission"], 4);
}

/// x (after b) appears at 30 s while an agent is free. The ready queue starts it then;
/// waves take it in only with the next batch, when a is done at 100 s.
#[test]
fn waves_take_a_discovered_task_in_only_with_the_next_batch() {
    let graph = file(
        2,
        r#"{"id": "a", "duration_secs": 100,
            "discovers": [{"at": 0.3, "id": "x", "duration_secs": 50, "deps": ["b"]}]},
           {"id": "b", "duration_secs": 20}"#,
    );
    let queue = simulate(&graph).unwrap();
    assert_eq!(
        runs(&queue),
        [("a", 0.0, 100.0), ("b", 0.0, 20.0), ("x", 30.0, 80.0)]
    );
    assert_eq!(
        (queue.makespan_secs, queue.lower_bound_secs),
        (100.0, 100.0)
    );
    let waves = SimOptions {
        dispatch: Dispatch::Waves,
        ..SimOptions::default()
    };
    let waves = simulate_with(&graph, waves).unwrap();
    assert_eq!(
        runs(&waves),
        [("a", 0.0, 100.0), ("b", 0.0, 20.0), ("x", 100.0, 150.0)]
    );
    assert_eq!(waves.discoveries[0].at_secs, 30.0);
    assert_eq!((waves.makespan_secs, waves.ratio), (150.0, 1.5));
}

/// A rate of 0 is the graph as before (and so its simulation); with 0.2 the same tasks,
/// a fifth of which discover one or two more after themselves, and the run takes them all.
#[test]
fn a_discovery_rate_adds_to_the_same_random_graph() {
    let json = |graph: &SimGraph| serde_json::to_string(graph).unwrap();
    let before = random_graph(200, 7, 10);
    let none = random_graph_discovering(200, 7, 10, 0.0).unwrap();
    assert_eq!(json(&before), json(&none));
    assert!(!json(&none).contains("discovers"));

    let some = random_graph_discovering(200, 7, 10, 0.2).unwrap();
    assert_eq!(
        json(&some),
        json(&random_graph_discovering(200, 7, 10, 0.2).unwrap())
    );
    let discoverers: Vec<&SimTask> = some
        .tasks
        .iter()
        .filter(|t| !t.discovers.is_empty())
        .collect();
    assert_eq!(discoverers.len(), 40);
    let mut found = 0;
    for (task, base) in some.tasks.iter().zip(&before.tasks) {
        assert_eq!((&task.id, &task.deps), (&base.id, &base.deps));
        assert!(task.discovers.len() <= 2);
        for discovery in &task.discovers {
            assert!((0.0..=1.0).contains(&discovery.at));
            assert_eq!(discovery.task.deps[0], task.id);
            assert!(discovery.task.discovers.is_empty());
            found += 1;
        }
    }
    let report = simulate(&some).unwrap();
    assert_eq!(report.discovered, found);
    assert_eq!(report.completed, 200 + found);
    assert!(report.ratio >= 1.0, "{}", report.ratio);
    let plain = simulate(&before).unwrap();
    assert!(report.lower_bound_secs > plain.lower_bound_secs);

    assert_eq!(
        random_graph_discovering(10, 1, 2, 1.5)
            .unwrap_err()
            .to_string(),
        "the discovery rate must be between 0 and 1, not 1.5"
    );
}
