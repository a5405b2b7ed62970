//! Dependencies and what satisfies them: blockers read, waited for and released, native
//! dependency links, pull requests that close issues, and cards moved on a board.

use super::*;

// ---- Pull requests ----

#[test]
fn a_merged_pull_request_that_closes_a_managed_issue_closes_it_and_its_dependents_go() {
    let mut world = World::new();
    world.running(1);
    world.managed(2, &[], "Depends on #1");

    let merged = PullRequestAction::Closed { merged: true };
    let decisions = world.run(pull_event(merged, pull("Closes #1", "codegen/1-issue-1")));

    assert!(decisions.contains(&Decision::CloseIssue {
        installation: ID,
        issue: r(1),
    }));
    assert_eq!(launches(&decisions), vec![(2, 1)]);
    assert_eq!(world.tracked(1).status, IssueStatus::ClosedCompleted);
    assert_eq!(
        world.tracked(1).pulls.iter().cloned().collect::<Vec<_>>(),
        vec![pull_link(10)]
    );
}

#[test]
fn a_pull_request_closed_unmerged_closes_nothing() {
    let mut world = World::new();
    world.running(1);

    let unmerged = PullRequestAction::Closed { merged: false };
    let decisions = world.run(pull_event(unmerged, pull("Closes #1", "codegen/1-issue-1")));

    assert!(named(&decisions, "close_issue").is_empty());
    assert_eq!(world.tracked(1).status, IssueStatus::Open);
}

// ---- Blockers ----

#[test]
fn a_blocker_seen_for_the_first_time_is_read() {
    let mut world = World::new();

    let decisions = world.managed(2, &[], "Depends on #1");

    let read = read_issue(1, ReadPurpose::Blocker);
    assert!(decisions.contains(&read), "{:#?}", names(&decisions));
}

#[test]
fn a_dependent_waits_for_its_open_blocker() {
    let mut world = World::new();

    let decisions = world.managed_waiting_for(2, 1);

    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(world.state_label(2), Some("codegen:blocked"));
    let status = last_status(&decisions, 2);
    status.assert_says("Waiting for 1 dependency");
    status.assert_says("acme/api#1 Issue 1");
}

#[test]
fn a_blocker_closed_as_completed_launches_its_dependent() {
    let mut world = World::new();
    world.managed_waiting_for(2, 1);

    let decisions = world.run(closed_event(issue(1, &[], ""), CloseReason::Completed));

    assert_eq!(launches(&decisions), vec![(2, 1)]);
}

#[test]
fn a_blocker_closed_as_not_planned_keeps_its_dependent_blocked() {
    let mut world = World::new();
    world.managed_waiting_for(2, 1);

    let decisions = world.run(closed_event(issue(1, &[], ""), CloseReason::NotPlanned));

    assert_eq!(launches(&decisions), vec![]);
    last_status(&decisions, 2).assert_says("closed as not planned: still blocks");
}

#[test]
fn a_blocker_the_app_cannot_read_keeps_blocking() {
    let mut world = World::new();

    let decisions = world.managed(2, &[], "Depends on #1");

    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(world.tracked(1).status, IssueStatus::Unknown);
}

#[test]
fn blockers_github_counts_but_the_app_cannot_list_hold_the_issue() {
    let mut world = World::new();
    world.native.insert(r(1), vec![open_snapshot(5)]);
    let mut one = issue(1, &[], "");
    one.open_blockers = Some(2);

    let decisions = world.run(labeled_by(&writer(), one.clone()));

    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(world.tracked(1).unseen_blockers, 1);
    last_status(&decisions, 1).assert_says("GitHub lists 1 more open blocker");

    // #5 closes and GitHub's count drops to nothing: the issue goes.
    world.native.insert(
        r(1),
        vec![snapshot(&closed(issue(5, &[], ""), CloseReason::Completed))],
    );
    one.open_blockers = Some(0);
    let decisions = world.run(edited(one));
    assert_eq!(decisions[0], read_native_blockers(1, Some(0)));
    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

#[test]
fn a_native_blocker_added_to_a_queued_issue_blocks_it() {
    let mut world = World::with(|s| s.max_concurrent = 1);
    world.running(1);
    world.managed(4, &[], "");
    assert_eq!(world.state_label(4), Some("codegen:queued"));
    let blocker = issue(5, &[], "");
    let mut blocked = labelled(4);
    blocked.open_blockers = Some(1);
    world.native.insert(r(4), vec![snapshot(&blocker)]);

    let decisions = world.run(delivery(
        Some(writer()),
        Event::IssueDependency {
            action: crate::events::DependencyAction::Added,
            blocked,
            blocking: blocker,
        },
    ));

    assert_eq!(
        last_status(&decisions, 4).labels(),
        (Some("codegen:blocked"), Some("codegen:queued"))
    );
    // The slot frees up; #4 still waits for #5.
    let decisions = world.ended(1, 1, RunState::Succeeded);
    assert_eq!(launches(&decisions), vec![]);
}

// ---- Project boards ----

/// A writer moved issue 1's card on a board.
fn card_moved() -> Input {
    delivery(
        Some(writer()),
        Event::ProjectItem {
            action: crate::events::ProjectItemAction::Edited {
                field_node_id: None,
            },
            item: crate::events::ProjectItem {
                node_id: "PVTI_1".into(),
                project_node_id: "PVT_1".into(),
                content_node_id: "I_1".into(),
                content_type: "Issue".into(),
            },
        },
    )
}

/// Where the card of issue 1 now is, as the effects read it.
fn card_read(moved_to_queued: bool) -> Outcome {
    Outcome::ProjectItemRead {
        installation: ID,
        issue: Some(snapshot(&issue(1, &[], ""))),
        moved_to_queued,
        sender: Some(writer()),
    }
}

#[test]
fn a_card_moved_by_a_writer_to_the_queued_option_is_managed() {
    let mut world = World::new();

    let decisions = world.step(card_moved());
    assert_eq!(
        decisions,
        vec![Decision::ReadProjectItem {
            installation: ID,
            repo: None,
            item: "PVTI_1".into(),
            content: "I_1".into(),
            field: "Status".into(),
            queued: "Todo".into(),
            sender: Some(writer()),
        }]
    );

    let elsewhere = world.run(Input::Result(card_read(false)));
    let queued = world.run(Input::Result(card_read(true)));

    assert_eq!(elsewhere, vec![]);
    assert_eq!(
        names(&queued)[0],
        ("check_permission", Some(1)),
        "the mover's permission is read"
    );
    assert_eq!(launches(&queued), vec![(1, 1)]);
}

#[test]
fn an_issue_managed_by_moving_its_card_stays_managed_through_reconciliation() {
    let mut world = World::new();
    world.step(card_moved());
    world.run(Input::Result(card_read(true)));
    world.launched(1, 1);
    world.open_issue(1);

    let decisions = world.run(Input::Result(listed(Vec::new())));

    assert!(!cancels(&decisions, 1));
    assert!(world.tracked(1).managed);
}
