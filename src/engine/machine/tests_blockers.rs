//! Dependencies and what satisfies them: blockers read, waited for and released, native
//! dependency links, pull requests that close issues, and cards moved on a board.

use super::*;
use crate::events::{PullRequest, PullRequestAction};

// ---- Pull requests ----

/// Pull request 10 of [`repo`], from `head`, with this body.
fn pull(body: &str, head: &str) -> PullRequest {
    PullRequest {
        reference: r(10),
        title: "Add the endpoint".into(),
        body: body.into(),
        head_ref: head.into(),
        base_ref: "main".into(),
        html_url: "https://github.com/acme/api/pull/10".into(),
        author: None,
    }
}

/// A writer did `action` to `pull`.
fn pull_event(action: PullRequestAction, pull: PullRequest) -> Input {
    delivery(Some(writer()), Event::PullRequest { action, pull })
}

#[test]
fn a_merged_pull_request_that_closes_a_managed_issue_closes_it_and_its_dependents_go() {
    let mut world = World::new();
    running_one(&mut world);
    world.managed(2, &[], "Depends on #1");

    let decisions = world.run(pull_event(
        PullRequestAction::Closed { merged: true },
        pull("Closes #1", "codegen/1-issue-1"),
    ));

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
    running_one(&mut world);

    let decisions = world.run(pull_event(
        PullRequestAction::Closed { merged: false },
        pull("Closes #1", "codegen/1-issue-1"),
    ));

    assert!(!decisions.iter().any(|d| d.name() == "close_issue"));
    assert_eq!(world.tracked(1).status, IssueStatus::Open);
}

// ---- Blockers ----

#[test]
fn a_blocker_seen_for_the_first_time_is_read() {
    let mut world = World::new();

    let decisions = world.managed(2, &[], "Depends on #1");

    assert!(
        decisions.contains(&Decision::ReadIssue {
            installation: ID,
            issue: r(1),
            purpose: ReadPurpose::Blocker,
        }),
        "{:#?}",
        names(&decisions)
    );
}

#[test]
fn a_dependent_waits_for_its_open_blocker() {
    let mut world = World::new();
    world.issues.insert(r(1), open_snapshot(1));

    let decisions = world.managed(2, &[], "Depends on #1");

    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(
        world.tracked(2).state_label.as_deref(),
        Some("codegen:blocked")
    );
    let status = last_status(&decisions, 2);
    assert!(
        status.body.contains("Waiting for 1 dependency"),
        "{}",
        status.body
    );
    assert!(
        status.body.contains("acme/api#1 Issue 1"),
        "{}",
        status.body
    );
}

#[test]
fn a_blocker_closed_as_completed_launches_its_dependent() {
    let mut world = World::new();
    world.issues.insert(r(1), open_snapshot(1));
    world.managed(2, &[], "Depends on #1");

    let decisions = world.run(closed_event(issue(1, &[], ""), CloseReason::Completed));

    assert_eq!(launches(&decisions), vec![(2, 1)]);
}

#[test]
fn a_blocker_closed_as_not_planned_keeps_its_dependent_blocked() {
    let mut world = World::new();
    world.issues.insert(r(1), open_snapshot(1));
    world.managed(2, &[], "Depends on #1");

    let decisions = world.run(closed_event(issue(1, &[], ""), CloseReason::NotPlanned));

    assert_eq!(launches(&decisions), vec![]);
    let status = last_status(&decisions, 2);
    assert!(
        status.body.contains("closed as not planned: still blocks"),
        "{}",
        status.body
    );
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
    let status = last_status(&decisions, 1);
    assert!(
        status.body.contains("GitHub lists 1 more open blocker"),
        "{}",
        status.body
    );

    // #5 closes and GitHub's count drops to nothing: the issue goes.
    world.native.insert(
        r(1),
        vec![snapshot(&closed(issue(5, &[], ""), CloseReason::Completed))],
    );
    one.open_blockers = Some(0);
    let decisions = world.run(issue_event(
        &writer(),
        IssueAction::Edited { old_body: None },
        one,
    ));
    assert_eq!(
        decisions[0],
        Decision::ReadNativeBlockers {
            installation: ID,
            issue: r(1),
            open_blockers: Some(0),
        }
    );
    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

#[test]
fn a_native_blocker_added_to_a_queued_issue_blocks_it() {
    let mut world = World::with(|s| s.max_concurrent = 1);
    running_one(&mut world);
    world.managed(4, &[], "");
    assert_eq!(
        world.tracked(4).state_label.as_deref(),
        Some("codegen:queued")
    );
    let blocker = issue(5, &[], "");
    let mut blocked = issue(4, &["codegen"], "");
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

    let status = last_status(&decisions, 4);
    assert_eq!(
        (status.add.as_deref(), status.remove.as_deref()),
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
    world.issues.insert(r(1), open_snapshot(1));

    let decisions = world.run(Input::Result(Outcome::LabelledListed {
        installation: ID,
        repo: repo(),
        issues: Vec::new(),
    }));

    assert!(!cancels(&decisions, 1));
    assert!(world.tracked(1).managed);
}
