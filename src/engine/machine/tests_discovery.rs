//! Work discovered while an agent runs: a blocker an issue gains while its run is going
//! does not stop the run, keeps the issue from counting as done for its dependents until
//! it is done, and after a failed run brings one new attempt once it is done.

use super::*;
use crate::engine::UnblockOn;

/// Issue `n` running attempt 1, after which its body gains "Depends on #blocker" (the
/// blocker reading finds open).
fn discovers(world: &mut World, n: u64, blocker: u64) -> Vec<Decision> {
    world.running(n);
    world.open_issue(blocker);
    world.run(edited(issue(
        n,
        &["codegen"],
        &format!("Depends on #{blocker}"),
    )))
}

#[test]
fn a_blocker_gained_while_running_is_discovered_without_stopping_the_run() {
    let mut world = World::new();

    let decisions = discovers(&mut world, 1, 5);

    assert!(!cancels(&decisions, 1), "the run goes on");
    assert_eq!(world.tracked(1).discovered.get(&r(5)), Some(&1));
    // What the store saves of it reads back the same.
    let saved = world.engine.take_changes().issues;
    let (_, _, json) = saved.iter().find(|(_, i, _)| *i == r(1)).expect("saved");
    let back: crate::engine::machine::Tracked = serde_json::from_str(json).unwrap();
    assert_eq!(&back, world.tracked(1));
    let status = last_status(&decisions, 1);
    status.assert_says("acme/api#5 Issue 5 — open · discovered while attempt 1 ran");
}

#[test]
fn a_run_that_fails_while_its_discovered_blocker_is_open_retries_once_it_is_done() {
    let mut world = World::new();
    discovers(&mut world, 1, 5);

    let decisions = world.ended(1, 1, RunState::Failed);

    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(world.state_label(1), Some("codegen:blocked"));
    last_status(&decisions, 1).assert_says("Attempt 1 did not succeed while a prerequisite");

    let decisions = world.run(closed_event(issue(5, &[], ""), CloseReason::Completed));
    assert_eq!(launches(&decisions), vec![(1, 2)], "one new attempt");

    world.launched(1, 2);
    let decisions = world.ended(1, 2, RunState::Failed);
    assert_eq!(launches(&decisions), vec![], "only once");
    assert_eq!(world.state_label(1), Some("codegen:failed"));
}

#[test]
fn without_the_setting_a_failed_run_stays_failed() {
    let mut world = World::with(|s| s.orchestrator.retry_after_discovered_blocker = false);
    discovers(&mut world, 1, 5);

    world.ended(1, 1, RunState::Failed);
    let decisions = world.run(closed_event(issue(5, &[], ""), CloseReason::Completed));

    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(world.state_label(1), Some("codegen:failed"));
}

#[test]
fn a_blocker_present_at_launch_is_not_discovered() {
    let mut world = World::new();
    world.issues.insert(
        r(5),
        snapshot(&closed(issue(5, &[], ""), CloseReason::Completed)),
    );
    world.managed(1, &[], "Depends on #5");
    world.launched(1, 1);

    let decisions = world.ended(1, 1, RunState::Failed);

    assert!(world.tracked(1).discovered.is_empty());
    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(world.state_label(1), Some("codegen:failed"));
}

#[test]
fn an_issue_done_early_waits_for_its_discovered_blocker_before_its_dependents_go() {
    let mut world = World::with(|s| s.orchestrator.unblock_on = UnblockOn::AgentCompleted);
    world.open_issue(1);
    world.managed(2, &[], "Depends on #1");
    assert_eq!(launches(&world.managed(1, &[], "")), vec![(1, 1)]);
    world.launched(1, 1);
    world.open_issue(5);
    world.run(edited(issue(1, &["codegen"], "Depends on #5")));

    let decisions = world.ended(1, 1, RunState::Succeeded);
    assert_eq!(launches(&decisions), vec![], "#2 waits: #1 waits for #5");

    let decisions = world.run(closed_event(issue(5, &[], ""), CloseReason::Completed));
    assert_eq!(launches(&decisions), vec![(2, 1)]);
}
