//! Sub-issues: a parent waits for them, they are managed on the authority of whoever
//! attached them, an umbrella parent is closed when they are done (or runs last), and a
//! cycle through parent links and dependencies is refused.

use super::*;
use crate::config::{Parents, SubIssues};
use crate::domain::SubIssueCounts;
use crate::events::SubIssueAction;

/// Issue `n` as a parent with `total` sub-issues, `completed` of them done.
fn parent(n: u64, total: u32, completed: u32) -> Issue {
    let mut issue = labelled(n);
    issue.title = format!("Epic {n}");
    issue.sub_issues = Some(SubIssueCounts { total, completed });
    issue
}

/// `issue` with this body.
fn issue_with_count(mut issue: Issue, body: &str) -> Issue {
    issue.body = body.into();
    issue
}

/// `sender` attached (or detached) `child` to `parent`.
fn sub_issue_event(
    sender: Option<&User>,
    action: SubIssueAction,
    parent: Issue,
    child: Issue,
) -> Input {
    delivery(
        sender.cloned(),
        Event::SubIssue {
            action,
            parent,
            child,
        },
    )
}

/// Open issue `n` without the trigger label, as a sub-issue.
fn child(n: u64, body: &str) -> Issue {
    issue(n, &[], body)
}

/// A world where issue 1 is a parent whose sub-issues 2 and 3 (3 depending on 2) the App
/// can read, labelled by a writer.
fn epic(world: &mut World) -> Vec<Decision> {
    world.children.insert(
        r(1),
        vec![
            snapshot(&child(2, "")),
            snapshot(&child(3, "Depends on #2")),
        ],
    );
    world.open_issue(2);
    world.run(labeled_by(&writer(), parent(1, 2, 0)))
}

#[test]
fn a_writers_parent_waits_for_its_sub_issues_which_run_in_order() {
    let mut world = World::new();

    let decisions = epic(&mut world);

    assert!(
        decisions.contains(&Decision::ReadSubIssues {
            installation: ID,
            issue: r(1),
            counts: Some(SubIssueCounts {
                total: 2,
                completed: 0
            }),
            adopt: true,
        }),
        "{:#?}",
        names(&decisions)
    );
    assert_eq!(
        launches(&decisions),
        vec![(2, 1)],
        "#3 waits for #2, #1 for both"
    );
    assert!(world.tracked(2).managed && world.tracked(3).managed);
    assert_eq!(world.tracked(3).parent, Some(r(1)));
    assert!(world.tracked(1).umbrella);
    let status = last_status(&decisions, 1);
    status.assert_says("Waiting for 2 sub-issues.");
    status.assert_says("It has no agent of its own");
    status.assert_says("**Sub-issues**");
    last_status(&decisions, 3).assert_says("Part of acme/api#1.");
}

#[test]
fn an_umbrella_is_closed_once_its_last_sub_issue_is_done() {
    let mut world = World::new();
    epic(&mut world);
    world.launched(2, 1);
    let decisions = world.run(closed_event(child(2, ""), CloseReason::Completed));
    assert_eq!(launches(&decisions), vec![(3, 1)]);
    assert!(named(&decisions, "close_issue").is_empty());
    world.launched(3, 1);

    let decisions = world.run(closed_event(
        child(3, "Depends on #2"),
        CloseReason::Completed,
    ));

    assert!(decisions.contains(&Decision::CloseIssue {
        installation: ID,
        issue: r(1),
    }));
    assert_eq!(launches(&decisions), vec![], "the umbrella has no agent");
    assert_eq!(world.tracked(1).status, IssueStatus::ClosedCompleted);
    let status = last_status(&decisions, 1);
    status.assert_says("Done: every sub-issue is done.");
    assert_eq!(status.add.as_deref(), Some("codegen:done"));
}

#[test]
fn with_run_after_children_the_parent_runs_last_with_their_pull_requests_in_its_prompt() {
    let mut world = World::with(|s| s.orchestrator.parents = Parents::RunAfterChildren);
    let decisions = epic(&mut world);
    assert!(!world.tracked(1).umbrella);
    assert_eq!(launches(&decisions), vec![(2, 1)]);
    world.launched(2, 1);
    world.run(pull_event(
        PullRequestAction::Opened,
        pull("Fixes #2", "codegen/2-issue-2"),
    ));
    world.run(closed_event(child(2, ""), CloseReason::Completed));
    world.launched(3, 1);

    let decisions = world.run(closed_event(
        child(3, "Depends on #2"),
        CloseReason::Completed,
    ));

    assert_eq!(launches(&decisions), vec![(1, 1)]);
    assert!(named(&decisions, "close_issue").is_empty());
    let Decision::Launch { prompt, .. } = named(&decisions, "launch")[0] else {
        unreachable!()
    };
    assert!(
        prompt.contains("https://github.com/acme/api/pull/10"),
        "{prompt}"
    );
}

#[test]
fn a_sub_issue_counts_by_who_attached_it() {
    let mut world = World::trusting("codegen-sh");
    world.managed_waiting_for(1, 9);
    // Each delivery shows the parent's count after the attachment.
    let attach = |world: &mut World, sender: Option<&User>, child: Issue, total: u32| {
        world.run(sub_issue_event(
            sender,
            SubIssueAction::Added,
            issue_with_count(parent(1, total, 0), "Depends on #9"),
            child,
        ))
    };

    attach(&mut world, Some(&reader()), child(2, ""), 1);
    attach(&mut world, Some(&bot_account()), child(3, ""), 2);
    attach(&mut world, None, child(4, ""), 3);
    let mut opened_by_agent = child(5, "");
    opened_by_agent.via_app = Some(identity(4242, "codegen-sh"));
    let agent = account(9, "codegen-sh[bot]", true);
    attach(&mut world, Some(&agent), opened_by_agent.clone(), 4);
    let decisions = attach(&mut world, Some(&writer()), child(6, ""), 5);
    // Another bot attaching an issue the trusted App opened does not count.
    let mut also_by_agent = child(7, "");
    also_by_agent.via_app = opened_by_agent.via_app.clone();
    attach(&mut world, Some(&bot_account()), also_by_agent, 6);
    // Nor does a person named like the App's bot.
    attach(
        &mut world,
        Some(&account(10, "codegen-sh[bot]", false)),
        child(8, ""),
        7,
    );

    for refused in [2, 3, 4, 7, 8] {
        assert!(!world.tracked(refused).managed, "#{refused} is not managed");
        assert!(
            world.tracked(1).children.contains(&r(refused)),
            "but blocks"
        );
    }
    assert!(world.tracked(5).managed, "the trusted App's own issue");
    assert!(world.tracked(6).managed, "a writer's");
    assert_eq!(launches(&decisions), vec![(6, 1)]);
    let status = last_status(&decisions, 1);
    status.assert_says("Waiting for 5 sub-issues and 1 dependency.");
}

#[test]
fn block_only_sub_issues_block_their_parent_without_being_managed() {
    let mut world = World::with(|s| s.orchestrator.sub_issues = SubIssues::BlockOnly);

    let decisions = epic(&mut world);

    assert_eq!(launches(&decisions), vec![]);
    assert!(!world.tracked(2).managed && !world.tracked(3).managed);
    last_status(&decisions, 1).assert_says("Waiting for 2 sub-issues.");
}

#[test]
fn ignored_sub_issues_are_neither_read_nor_waited_for() {
    let mut world = World::with(|s| s.orchestrator.sub_issues = SubIssues::Ignore);

    let decisions = epic(&mut world);
    let attached = world.run(sub_issue_event(
        Some(&writer()),
        SubIssueAction::Added,
        parent(1, 3, 0),
        child(4, ""),
    ));

    assert!(named(&decisions, "read_sub_issues").is_empty());
    assert_eq!(launches(&decisions), vec![(1, 1)]);
    assert!(attached.is_empty(), "{attached:#?}");
    assert!(world.tracked(1).children.is_empty());
}

#[test]
fn sub_issues_the_app_cannot_read_hold_the_parent() {
    let mut world = World::new();
    world.children.insert(r(1), vec![snapshot(&child(2, ""))]);

    let decisions = world.run(labeled_by(&writer(), parent(1, 3, 1)));

    assert_eq!(
        world.tracked(1).unseen_children,
        1,
        "3 counted, 1 done, 1 listed open"
    );
    assert_eq!(launches(&decisions), vec![(2, 1)]);
    let status = last_status(&decisions, 1);
    status.assert_says(
        "GitHub lists 1 more unfinished sub-issue of this issue that the App cannot see",
    );
    status.assert_says("Waiting for 2 sub-issues.");
}

#[test]
fn a_sub_issue_that_closes_a_cycle_with_a_dependency_is_refused() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.open_issue(2);
    // #2 depends on #1; attaching #2 as a sub-issue of #1 would make #1 wait for #2.
    world.managed(2, &[], "Depends on #1");

    world.run(sub_issue_event(
        Some(&writer()),
        SubIssueAction::Added,
        parent(1, 1, 0),
        issue(2, &["codegen"], "Depends on #1"),
    ));

    let cycle = world.tracked(1).cycle.clone().expect("refused as a cycle");
    assert!(
        cycle.contains("acme/api#1") && cycle.contains("acme/api#2"),
        "{cycle}"
    );
}

#[test]
fn a_detached_sub_issue_no_longer_blocks_its_parent() {
    let mut world = World::with(|s| s.orchestrator.parents = Parents::RunAfterChildren);
    world.children.insert(r(1), vec![snapshot(&child(2, ""))]);
    world.run(labeled_by(&writer(), parent(1, 1, 0)));
    world.children.clear();

    let decisions = world.run(sub_issue_event(
        Some(&writer()),
        SubIssueAction::Removed,
        parent(1, 0, 0),
        child(2, ""),
    ));

    assert!(world.tracked(1).children.is_empty());
    assert_eq!(launches(&decisions), vec![(1, 1)]);
    assert!(world.tracked(2).managed, "work already wanted stays wanted");
}

#[test]
fn a_redelivered_attachment_launches_nothing_twice() {
    let mut world = World::new();
    world.managed(1, &[], "");
    let attach = sub_issue_event(
        Some(&writer()),
        SubIssueAction::Added,
        parent(1, 1, 0),
        child(2, ""),
    );
    let first = world.run(attach.clone());
    assert_eq!(launches(&first), vec![(2, 1)]);

    let again = world.run(attach);

    assert_eq!(launches(&again), vec![]);
    assert!(named(&again, "publish_status").is_empty(), "{again:#?}");
}

#[test]
fn links_between_issues_the_bot_does_not_know_are_not_kept() {
    let mut world = World::new();

    let decisions = world.run(sub_issue_event(
        Some(&writer()),
        SubIssueAction::Added,
        parent(40, 1, 0),
        child(41, ""),
    ));

    assert!(decisions.is_empty(), "{decisions:#?}");
    assert!(world.untracked(40) && world.untracked(41));
}

#[test]
fn nested_sub_issues_are_managed_down_the_tree_and_close_bottom_up() {
    let mut world = World::new();
    let mut middle = child(2, "");
    middle.sub_issues = Some(SubIssueCounts {
        total: 1,
        completed: 0,
    });
    world.children.insert(r(1), vec![snapshot(&middle)]);
    world.children.insert(r(2), vec![snapshot(&child(3, ""))]);

    let decisions = world.run(labeled_by(&writer(), parent(1, 1, 0)));

    assert_eq!(launches(&decisions), vec![(3, 1)], "only the leaf has work");
    assert!(world.tracked(2).managed && world.tracked(2).umbrella);
    assert_eq!(world.tracked(3).parent, Some(r(2)));
    world.launched(3, 1);
    let decisions = world.run(closed_event(child(3, ""), CloseReason::Completed));
    let closes: Vec<&Decision> = named(&decisions, "close_issue");
    assert_eq!(
        closes,
        vec![
            &Decision::CloseIssue {
                installation: ID,
                issue: r(2),
            },
            &Decision::CloseIssue {
                installation: ID,
                issue: r(1),
            }
        ],
        "#2, then #1 at once"
    );
    let again = world.run(closed_event(middle, CloseReason::Completed));
    assert!(named(&again, "close_issue").is_empty(), "closed once");
}

#[test]
fn sub_issues_are_adopted_once_and_only_in_the_parents_repository() {
    let mut world = World::with(|s| s.orchestrator.parents = Parents::RunAfterChildren);
    let elsewhere = IssueRef::new("other/lib".parse().unwrap(), 3);
    let mut foreign = child(3, "");
    foreign.reference = elsewhere.clone();
    world
        .children
        .insert(r(1), vec![snapshot(&child(2, "")), snapshot(&foreign)]);
    world.run(labeled_by(&writer(), parent(1, 2, 0)));
    assert!(world.tracked(2).managed);
    assert!(
        !world.engine.tracked(ID, &elsewhere).unwrap().managed,
        "another repository's issue needs its own label"
    );

    // Someone attaches #4 without a webhook reaching the bot, closes and reopens #1.
    world
        .children
        .get_mut(&r(1))
        .unwrap()
        .push(snapshot(&child(4, "")));
    world.run(closed_event(parent(1, 3, 0), CloseReason::NotPlanned));
    world.run(reopened_by(&writer(), parent(1, 3, 0)));

    assert!(world.tracked(1).managed, "the parent is managed again");
    assert!(world.tracked(1).children.contains(&r(4)), "#4 blocks it");
    assert!(!world.tracked(4).managed, "but the reopen adopted nothing");
}

#[test]
fn a_lost_attachment_is_found_by_the_reconciler_through_the_count() {
    let mut world = World::new();
    world.run(comment_by(&writer(), parent(1, 0, 0), "/codegen run"));
    world.launched(1, 1);
    world.children.insert(r(1), vec![snapshot(&child(2, ""))]);
    world.issues.insert(r(1), snapshot(&parent(1, 1, 0)));

    // The reconciler lists the labelled issues: #1 (managed by command) is not among them,
    // so it is read again, and GitHub counts a sub-issue the bot has not heard of.
    let decisions = world.run(Input::Result(listed(vec![])));

    assert!(
        world.tracked(1).children.contains(&r(2)),
        "{:#?}",
        names(&decisions)
    );
}

#[test]
fn an_umbrella_closes_when_its_sub_issues_are_closed_not_when_their_agents_succeed() {
    let mut world =
        World::with(|s| s.orchestrator.unblock_on = crate::engine::UnblockOn::AgentCompleted);
    world.children.insert(r(1), vec![snapshot(&child(2, ""))]);
    world.run(labeled_by(&writer(), parent(1, 1, 0)));
    world.launched(2, 1);

    let decisions = world.ended(2, 1, RunState::Succeeded);
    assert!(
        named(&decisions, "close_issue").is_empty(),
        "{decisions:#?}"
    );

    let decisions = world.run(closed_event(child(2, ""), CloseReason::Completed));
    assert_eq!(named(&decisions, "close_issue").len(), 1);
}

#[test]
fn a_reopened_umbrella_is_not_closed_again_until_a_sub_issue_is_unfinished() {
    let mut world = World::new();
    world.children.insert(r(1), vec![snapshot(&child(2, ""))]);
    world.run(labeled_by(&writer(), parent(1, 1, 0)));
    world.launched(2, 1);
    world.run(closed_event(child(2, ""), CloseReason::Completed));
    assert_eq!(world.tracked(1).status, IssueStatus::ClosedCompleted);

    let decisions = world.run(reopened_by(&writer(), parent(1, 1, 1)));
    assert!(
        named(&decisions, "close_issue").is_empty(),
        "a person reopened it"
    );

    world.run(reopened_by(&writer(), issue(2, &[], "")));
    let decisions = world.run(closed_event(child(2, ""), CloseReason::Completed));
    assert_eq!(
        named(&decisions, "close_issue").len(),
        1,
        "its work was redone"
    );
}

#[test]
fn a_parent_whose_only_sub_issue_is_unblocked_is_an_ordinary_issue_again() {
    let mut world = World::new();
    world.children.insert(r(1), vec![snapshot(&child(2, ""))]);
    world.run(labeled_by(&writer(), parent(1, 1, 0)));

    let decisions = world.comment_on(parent(1, 1, 0), "/codegen unblock #2");

    assert!(!world.tracked(1).umbrella);
    assert!(named(&decisions, "close_issue").is_empty());
    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

#[test]
fn an_attachment_under_block_only_or_a_detachment_asks_nobodys_permission() {
    let mut world = World::with(|s| s.orchestrator.sub_issues = SubIssues::BlockOnly);
    world.managed_waiting_for(1, 9);
    let event = |action, total| {
        sub_issue_event(
            Some(&writer()),
            action,
            issue_with_count(parent(1, total, 0), "Depends on #9"),
            child(2, ""),
        )
    };

    let attached = world.run(event(SubIssueAction::Added, 1));
    let detached = world.run(event(SubIssueAction::Removed, 0));

    assert!(
        named(&attached, "check_permission").is_empty(),
        "{attached:#?}"
    );
    assert!(!world.tracked(2).managed);
    assert!(
        named(&detached, "check_permission").is_empty(),
        "{detached:#?}"
    );
    assert!(world.tracked(1).children.is_empty());
}

/// The permission read for a writer's attachment of #2 to #1, as the effects answer it.
fn writer_attached(parent: IssueRef) -> Outcome {
    writer_may(AfterPermission::SubIssue {
        parent,
        child: snapshot(&child(2, "")),
    })
}

#[test]
fn a_permission_answered_after_the_parent_left_or_the_link_went_adopts_nothing() {
    for undo in ["unlabel the parent", "detach the sub-issue"] {
        let mut world = World::new();
        world.managed_waiting_for(1, 9);
        let attach = sub_issue_event(
            Some(&writer()),
            SubIssueAction::Added,
            issue_with_count(parent(1, 1, 0), "Depends on #9"),
            child(2, ""),
        );
        let decisions = world.step(attach);
        assert_eq!(named(&decisions, "check_permission").len(), 1);
        match undo {
            "unlabel the parent" => world.run(unlabeled(issue_with_count(
                issue(1, &[], ""),
                "Depends on #9",
            ))),
            _ => world.run(sub_issue_event(
                Some(&writer()),
                SubIssueAction::Removed,
                issue_with_count(parent(1, 0, 0), "Depends on #9"),
                child(2, ""),
            )),
        };

        let decisions = world.run(Input::Result(writer_attached(r(1))));

        assert_eq!(launches(&decisions), vec![], "{undo}");
        assert!(!world.tracked(2).managed, "{undo}");
    }
}

#[test]
fn the_reconcilers_recheck_reads_again_only_what_github_counts_differently() {
    let mut world = World::new();
    world.run(comment_by(&writer(), parent(1, 0, 0), "/codegen run"));
    world.launched(1, 1);
    let reads = |world: &mut World, facts: IssueSnapshot| {
        world.issues.insert(r(1), facts);
        let decisions = world.run(Input::Result(listed(vec![])));
        (
            named(&decisions, "read_sub_issues").len(),
            named(&decisions, "read_native_blockers").len(),
        )
    };

    assert_eq!(
        reads(&mut world, snapshot(&parent(1, 0, 0))),
        (0, 0),
        "nothing changed"
    );
    let mut blocked = parent(1, 0, 0);
    blocked.open_blockers = Some(1);
    assert_eq!(
        reads(&mut world, snapshot(&blocked)),
        (0, 1),
        "a native blocker"
    );
    assert_eq!(
        reads(&mut world, snapshot(&blocked)),
        (0, 0),
        "the same count again"
    );
    let closed_meanwhile = closed(parent(1, 2, 0), CloseReason::Completed);
    assert_eq!(
        reads(&mut world, snapshot(&closed_meanwhile)),
        (0, 0),
        "closed: no reads"
    );
}
