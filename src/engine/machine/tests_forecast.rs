//! The forecast in the engine: run durations learned from finished runs, what issues weigh,
//! and the expected start a waiting issue's status shows.

use super::*;

const MIN: i64 = 60_000;

/// Attempt 1 at issue `n`, which started at `start` and succeeded `minutes` later.
fn succeeded(n: u64, start: i64, minutes: i64) -> RunRecord {
    RunRecord {
        started_at: Some(start),
        finished_at: Some(start + minutes * MIN),
        ..run_record(n, 1, RunState::Succeeded)
    }
}

/// Issue `n`'s attempt 1 was launched at `at`.
fn launched_at(world: &mut World, n: u64, at: i64) -> Vec<Decision> {
    world.now = at;
    let run = RunRecord {
        started_at: Some(at),
        created_at: at,
        ..run_record(n, 1, RunState::Running)
    };
    world.launch_settled(n, Some(run), None)
}

fn weight(world: &World, n: u64) -> u64 {
    world
        .engine
        .installation(ID)
        .and_then(|i| i.graph.get(&r(n)))
        .map(|node| node.weight)
        .unwrap()
}

#[test]
fn a_queued_issue_is_told_when_an_agent_should_be_free() {
    let mut world = World::with(|s| s.max_concurrent = 1);
    world.managed(1, &[], "");
    launched_at(&mut world, 1, T0);
    let decisions = world.managed(2, &[], "");
    // T0 is 08:00 UTC; #1 is expected to take the default hour.
    last_status(&decisions, 2).assert_says("Expected to start around 2027-01-15 09:00 UTC.");
    // A running issue's status names no expected start.
    let forecast = world.engine.forecast(ID, world.now).unwrap();
    assert_eq!(forecast.of(&r(2)).unwrap().start, T0 + 60 * MIN);
    assert_eq!(forecast.finish, Some(T0 + 120 * MIN));
    assert_eq!(forecast.agent_ms, 120 * MIN);
}

#[test]
fn finished_runs_teach_the_repository_figure_which_issues_then_weigh() {
    let mut world = World::with(|s| s.max_concurrent = 1);
    world.managed(1, &[], "");
    world.managed(2, &[], "");
    world.managed(3, &["estimate:3h"], "");
    assert_eq!(weight(&world, 2), 60, "the default");
    world.run(runs_followed(vec![succeeded(1, T0, 20)]));
    let saved = world.settings_saved();
    let (key, value) = saved.last().unwrap();
    assert_eq!(key, "durations:acme/api");
    assert!(value.as_deref().unwrap().contains("1200"), "{value:?}");
    assert_eq!(weight(&world, 2), 60, "one run is not enough");
    world.run(runs_followed(vec![succeeded(2, T0 + 20 * MIN, 40)]));
    // The mean of 20 and 40 minutes; the labelled issue keeps its label's weight.
    assert_eq!(weight(&world, 2), 30);
    assert_eq!(weight(&world, 3), 180);
    assert_eq!(world.engine.durations().learned_minutes(&repo()), Some(30));
    // A failed run teaches nothing.
    world.run(runs_followed(vec![RunRecord {
        started_at: Some(T0),
        finished_at: Some(T0 + 300 * MIN),
        ..run_record(4, 1, RunState::Failed)
    }]));
    assert_eq!(world.engine.durations().learned_minutes(&repo()), Some(30));

    // What was saved is what a restarted engine weighs.
    let mut restarted = World::new();
    let issues = vec![(ID, r(5), r#"{"status":"open","managed":true}"#.to_owned())];
    // The latest saved value of each key counts.
    let settings = saved
        .into_iter()
        .chain(world.settings_saved())
        .filter_map(|(key, value)| Some((key, value?)))
        .collect();
    restarted.engine.restore(issues, Vec::new(), settings);
    assert_eq!(weight(&restarted, 5), 30);
}

#[test]
fn an_expected_start_moves_in_the_status_only_when_it_moves_far() {
    let mut world = World::with(|s| s.max_concurrent = 1);
    world.managed(1, &[], "");
    launched_at(&mut world, 1, T0);
    world.managed(2, &[], "");
    // Two minutes on, a tick makes the forecast again: nothing moved, nothing is edited.
    world.now = T0 + 2 * MIN;
    let decisions = world.run(runs_followed(Vec::new()));
    assert_eq!(statuses(&decisions, 2), vec![]);
    // #1 runs long: at 09:50 it is 50 minutes late and has a tenth of its hour left, so #2
    // is expected at about 09:56, far from 09:00: the status says so.
    world.now = T0 + 110 * MIN;
    let decisions = world.run(runs_followed(Vec::new()));
    last_status(&decisions, 2).assert_says("Expected to start around 2027-01-15 10:00 UTC.");
    // A minute later it barely moved: not edited again.
    world.now = T0 + 111 * MIN + 1;
    let decisions = world.run(runs_followed(Vec::new()));
    assert_eq!(statuses(&decisions, 2), vec![]);
}

#[test]
fn nothing_is_forecast_while_launches_cannot_happen() {
    let mut world = World::with(|s| s.agents = false);
    let decisions = world.managed(1, &[], "");
    assert!(
        !last_status(&decisions, 1)
            .body
            .contains("Expected to start"),
        "Codegen is not configured"
    );
    assert_eq!(world.engine.forecast(ID, world.now), None);

    let mut world = World::new();
    world.comment(9, "/codegen pause");
    let decisions = world.managed(1, &[], "");
    assert!(
        !last_status(&decisions, 1)
            .body
            .contains("Expected to start")
    );
}

#[test]
fn a_run_that_ends_early_brings_the_expected_starts_forward_by_the_next_forecast() {
    let mut world = World::with(|s| s.max_concurrent = 1);
    world.managed(1, &[], "");
    launched_at(&mut world, 1, T0);
    let decisions = world.managed(2, &[], "");
    last_status(&decisions, 2).assert_says("around 2027-01-15 09:00 UTC.");
    let decisions = world.managed(3, &[], "");
    last_status(&decisions, 3).assert_says("around 2027-01-15 10:00 UTC.");
    // #1 succeeds after a second: #2 is launched at once (its launch does not wait for a
    // forecast of the whole graph)...
    world.now = T0 + 1_000;
    let decisions = world.run(runs_followed(vec![succeeded(1, T0, 0)]));
    assert_eq!(launches(&decisions), vec![(2, 1)]);
    launched_at(&mut world, 2, T0 + 1_000);
    // ...and the next forecast, a few seconds on, brings #3 an hour forward.
    world.now = T0 + 6_000;
    let decisions = world.run(runs_followed(Vec::new()));
    last_status(&decisions, 3).assert_says("around 2027-01-15 09:00 UTC.");
}

#[test]
fn a_start_that_no_longer_holds_leaves_the_status() {
    let mut world = World::with(|s| s.max_concurrent = 1);
    world.managed(1, &[], "");
    launched_at(&mut world, 1, T0);
    world.managed(2, &[], "Depends on #1");
    let decisions = world.managed(3, &[], "Depends on #2");
    last_status(&decisions, 3).assert_says("Expected to start around 2027-01-15 10:00 UTC.");
    // #1 fails for good: #2 and #3 wait for something that will not be done. #3 is not a
    // direct dependent of #1, yet its status drops the start it showed.
    world.now = T0 + 10 * MIN;
    let decisions = world.run(runs_followed(vec![run_record(1, 1, RunState::Failed)]));
    let status = last_status(&decisions, 3);
    assert!(
        !status.body.contains("Expected to start"),
        "{}",
        status.body
    );
    // Nothing more to say at the next tick.
    world.now = T0 + 20 * MIN;
    let decisions = world.run(runs_followed(Vec::new()));
    assert_eq!(statuses(&decisions, 3), vec![]);
}
