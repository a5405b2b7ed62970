//! Comment commands, verb by verb: what each does and what is said back (a writer gives
//! them all; who may give them is in `tests_comments.rs`).

use super::*;
use crate::engine::texts;

// ---- run ----

#[test]
fn run_manages_the_issue_and_launches_it() {
    let mut world = World::new();

    let decisions = writer_says(&mut world, issue(1, &[], "Add it."), "/codegen run");

    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
    assert_eq!(replies(&decisions), Vec::<String>::new());
    assert_eq!(launches(&decisions), vec![(1, 1)]);
    assert!(world.tracked(1).managed && world.tracked(1).by_command);
}

#[test]
fn run_on_a_closed_issue_is_refused() {
    let mut world = World::new();

    let decisions = writer_says(
        &mut world,
        closed(issue(1, &[], ""), CloseReason::Completed),
        "/codegen run",
    );

    assert_eq!(
        replies(&decisions),
        vec!["A closed issue is not run; reopen it first."]
    );
    assert_eq!(reactions(&decisions), vec!["eyes", "confused"]);
    assert_eq!(launches(&decisions), vec![]);
    assert!(world.engine.tracked(ID, &r(1)).is_none());
}

#[test]
fn run_in_a_repository_whose_settings_are_unknown_launches_once_they_are_read() {
    let mut world = World::new();
    let web: RepoName = "acme/web".parse().unwrap();
    let mut one = issue(1, &[], "");
    one.reference = IssueRef::new(web.clone(), 1);

    let decisions = world.step(comment_by(&writer(), one.clone(), "/codegen run"));
    let decisions = match &decisions[..] {
        [Decision::CheckPermission { then, .. }] => world.answer(Outcome::PermissionRead {
            installation: ID,
            user: writer(),
            permission: Permission::Write,
            then: then.clone(),
        }),
        _ => panic!("{decisions:#?}"),
    };
    let decisions = world
        .answer(Outcome::NativeBlockersRead {
            installation: ID,
            issue: one.reference.clone(),
            blockers: Vec::new(),
            open_blockers: None,
        })
        .into_iter()
        .chain(decisions)
        .collect::<Vec<_>>();
    let asked: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.name() == "read_repo_config")
        .collect();
    assert_eq!(
        asked,
        vec![&Decision::ReadRepoConfig {
            installation: ID,
            repo: web.clone(),
            report_on: None,
            then: AfterConfig::Nothing,
        }],
        "asked once"
    );
    assert_eq!(launches(&decisions), vec![]);

    let decisions = world.answer(Outcome::RepoConfigRead {
        repo: web,
        file: RepoFile::Absent,
        report_on: None,
        then: AfterConfig::Nothing,
    });
    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

// ---- cancel ----

#[test]
fn cancel_stops_the_running_agent() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.launched(1, 1);

    let decisions = writer_says(&mut world, issue(1, &["codegen"], ""), "/codegen cancel");

    assert!(cancels(&decisions, 1));
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
    assert_eq!(replies(&decisions), Vec::<String>::new());
}

#[test]
fn cancel_with_nothing_running_is_refused() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.ended(1, 1, RunState::Failed);

    let decisions = writer_says(&mut world, issue(1, &["codegen"], ""), "/codegen cancel");

    assert!(!cancels(&decisions, 1));
    assert_eq!(
        replies(&decisions),
        vec!["No agent is running for this issue."]
    );
    assert_eq!(reactions(&decisions), vec!["eyes", "confused"]);
}

// ---- status ----

#[test]
fn status_reads_a_managed_issue_again() {
    let mut world = World::new();
    world.managed(1, &[], "");

    let decisions = writer_says(&mut world, issue(1, &["codegen"], ""), "/codegen status");

    assert!(decisions.contains(&Decision::ReadNativeBlockers {
        installation: ID,
        issue: r(1),
        open_blockers: None,
    }));
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
    assert_eq!(replies(&decisions), Vec::<String>::new());
}

#[test]
fn status_on_an_unmanaged_issue_is_refused() {
    let mut world = World::new();

    let decisions = writer_says(&mut world, issue(1, &[], ""), "/codegen status");

    assert_eq!(
        replies(&decisions),
        vec!["This issue is not managed; label it `codegen` or comment `/codegen run`."]
    );
    assert_eq!(reactions(&decisions), vec!["eyes", "confused"]);
    assert!(world.engine.tracked(ID, &r(1)).is_none());
}

// ---- depends on / unblock ----

#[test]
fn depends_on_holds_the_issue_until_the_new_blocker_is_done() {
    let mut world = World::new();
    world.issues.insert(r(2), open_snapshot(2));

    let decisions = writer_says(
        &mut world,
        issue(1, &[], ""),
        "/codegen run\n/codegen depends on #2",
    );

    assert!(decisions.contains(&Decision::ReadIssue {
        installation: ID,
        issue: r(2),
        purpose: ReadPurpose::Blocker,
    }));
    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
    assert_eq!(
        world.tracked(1).state_label.as_deref(),
        Some("codegen:blocked")
    );
    assert!(
        last_status(&decisions, 1)
            .body
            .contains("Waiting for 1 dependency")
    );
    assert!(world.tracked(1).added.contains(&r(2)));
}

#[test]
fn depends_on_without_references_is_refused() {
    let mut world = World::new();
    world.managed(1, &[], "");

    let decisions = writer_says(
        &mut world,
        issue(1, &["codegen"], ""),
        "/codegen depends on soon",
    );

    assert_eq!(
        replies(&decisions),
        vec![
            "No issue references found in `soon`; write them as `#12`, `owner/repo#12` or issue URLs."
        ]
    );
    assert_eq!(reactions(&decisions), vec!["eyes", "confused"]);
    assert!(world.tracked(1).added.is_empty());
}

#[test]
fn depends_on_that_would_close_a_cycle_is_refused_and_holds_the_issue() {
    let mut world = World::new();
    world.issues.insert(r(2), open_snapshot(2));
    world.managed(1, &[], "Depends on #2");

    let decisions = writer_says(
        &mut world,
        issue(2, &[], ""),
        "/codegen run\n/codegen depends on #1",
    );

    assert_eq!(
        replies(&decisions),
        vec![
            "Refused: that dependency would close a cycle: `acme/api#2 -> acme/api#1 -> acme/api#2`."
        ]
    );
    assert_eq!(reactions(&decisions), vec!["eyes", "confused"]);
    assert_eq!(launches(&decisions), vec![], "#2 is held back");
    assert_eq!(
        world.tracked(2).cycle.as_deref(),
        Some("acme/api#2 -> acme/api#1 -> acme/api#2")
    );
    assert!(
        last_status(&decisions, 2)
            .body
            .contains("would close a cycle")
    );
}

#[test]
fn unblock_removes_a_declared_dependency_and_the_issue_goes() {
    let mut world = World::new();
    world.issues.insert(r(2), open_snapshot(2));
    world.managed(1, &[], "Depends on #2");

    let decisions = writer_says(
        &mut world,
        issue(1, &["codegen"], "Depends on #2"),
        "/codegen unblock #2",
    );

    assert_eq!(launches(&decisions), vec![(1, 1)]);
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
    assert!(world.tracked(1).removed.contains(&r(2)));
}

#[test]
fn unblock_releases_an_issue_held_by_a_cycle() {
    let mut world = World::new();
    world.issues.insert(r(2), open_snapshot(2));
    world.managed(1, &[], "Depends on #2");
    writer_says(
        &mut world,
        issue(2, &[], ""),
        "/codegen run\n/codegen depends on #1",
    );

    let decisions = writer_says(&mut world, issue(2, &[], ""), "/codegen unblock #1");

    assert_eq!(world.tracked(2).cycle, None);
    assert_eq!(launches(&decisions), vec![(2, 1)]);
}

// ---- graph, plan, help ----

#[test]
fn graph_replies_with_the_issues_part_of_the_graph() {
    let mut world = World::new();
    world.issues.insert(r(2), open_snapshot(2));
    world.managed(1, &[], "Depends on #2");
    world.managed(3, &[], "");

    let connected = writer_says(&mut world, issue(1, &["codegen"], ""), "/codegen graph");
    let alone = writer_says(&mut world, issue(3, &["codegen"], ""), "/codegen graph");

    let [reply] = &replies(&connected)[..] else {
        panic!("one reply: {connected:#?}");
    };
    assert!(reply.starts_with("```mermaid\n"), "{reply}");
    assert!(
        reply.contains("Issue 1") && reply.contains("Issue 2"),
        "{reply}"
    );
    assert!(!reply.contains("Issue 3"), "{reply}");
    assert_eq!(
        replies(&alone),
        vec!["This issue has no dependencies and nothing depends on it."]
    );
    assert_eq!(reactions(&alone), vec!["eyes", "rocket"]);
}

#[test]
fn plan_replies_with_what_runs_what_is_next_and_what_waits() {
    let mut world = World::with(|s| s.max_concurrent = 1);
    world.issues.insert(r(9), open_snapshot(9));
    world.managed(1, &[], "");
    world.managed(2, &[], "");
    world.managed(3, &[], "Depends on #9");

    let decisions = writer_says(&mut world, issue(1, &["codegen"], ""), "/codegen plan");

    assert_eq!(
        replies(&decisions),
        vec![
            "**Launch plan for acme/api**\n\nRunning:\n1. acme/api#1 Issue 1\n\n\
             Next, in order:\n1. acme/api#2 Issue 2\n\n\
             Waiting for dependencies (in dependency order):\n1. acme/api#3 Issue 3"
        ]
    );
}

#[test]
fn help_replies_with_every_command() {
    let mut world = World::new();

    let decisions = writer_says(&mut world, issue(1, &[], ""), "/codegen help");

    assert_eq!(replies(&decisions), vec![texts::help("/codegen")]);
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
}

#[test]
fn a_line_that_is_not_a_command_is_answered_with_the_help() {
    let mut world = World::new();

    let decisions = writer_says(&mut world, issue(1, &[], ""), "/codegen rnu");

    let [reply] = &replies(&decisions)[..] else {
        panic!("one reply: {decisions:#?}");
    };
    assert!(reply.contains("Did you mean `run`?"), "{reply}");
    assert!(reply.ends_with(&texts::help("/codegen")), "{reply}");
    assert_eq!(reactions(&decisions), vec!["eyes", "confused"]);
}

#[test]
fn several_commands_are_answered_in_one_reply() {
    let mut world = World::new();

    let decisions = writer_says(
        &mut world,
        issue(1, &[], ""),
        "/codegen help\n/codegen status",
    );

    assert_eq!(replies(&decisions).len(), 1);
    assert!(replies(&decisions)[0].contains("\n\n---\n\nThis issue is not managed"));
}

// ---- pause / resume ----

#[test]
fn pause_stops_launches_in_the_repository_and_is_saved() {
    let mut world = World::new();

    let decisions = writer_says(&mut world, issue(1, &[], ""), "/codegen pause");
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
    assert_eq!(
        world.engine.take_changes().settings,
        vec![("paused:acme/api".to_owned(), Some("wendy".to_owned()))]
    );

    let decisions = world.managed(2, &[], "");
    assert_eq!(launches(&decisions), vec![]);
    let status = last_status(&decisions, 2);
    assert!(
        status
            .body
            .contains("acme/api was paused by @wendy; `/codegen resume` restarts it."),
        "{}",
        status.body
    );
}

#[test]
fn pause_says_so_on_every_managed_issue_of_the_repository() {
    let mut world = World::new();
    world.issues.insert(r(9), open_snapshot(9));
    world.managed(1, &[], "Depends on #9");

    let decisions = writer_says(&mut world, issue(5, &[], ""), "/codegen pause");

    assert!(last_status(&decisions, 1).body.contains("paused by @wendy"));
}

#[test]
fn resume_restarts_launches_in_the_repository_and_is_saved() {
    let mut world = World::new();
    writer_says(&mut world, issue(1, &[], ""), "/codegen pause");
    world.managed(2, &[], "");
    world.engine.take_changes();

    let decisions = writer_says(&mut world, issue(1, &[], ""), "/codegen resume");

    assert!(decisions.contains(&Decision::ResumeAgents { installation: ID }));
    assert_eq!(launches(&decisions), vec![(2, 1)]);
    assert_eq!(
        world.engine.take_changes().settings,
        vec![("paused:acme/api".to_owned(), None)]
    );
}

#[test]
fn a_pause_is_restored_after_a_restart() {
    let mut world = World::new();
    world.engine.restore(
        Vec::new(),
        Vec::new(),
        vec![("paused:acme/api".into(), "wendy".into())],
    );

    let decisions = world.managed(1, &[], "");

    assert_eq!(launches(&decisions), vec![]);
    assert!(last_status(&decisions, 1).body.contains("paused by @wendy"));
}
