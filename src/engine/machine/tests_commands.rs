//! Comment commands, verb by verb: what each does and what is said back (a writer gives
//! them all; who may give them is in `tests_comments.rs`).

use super::*;
use crate::engine::texts;

// ---- run ----

#[test]
fn run_manages_the_issue_and_launches_it() {
    let mut world = World::new();

    let decisions = world.comment_on(issue(1, &[], "Add it."), "/codegen run");

    assert_carried_out(&decisions);
    assert_eq!(launches(&decisions), vec![(1, 1)]);
    assert!(world.tracked(1).managed && world.tracked(1).by_command);
}

#[test]
fn run_on_a_closed_issue_is_refused() {
    let mut world = World::new();

    let done = closed(issue(1, &[], ""), CloseReason::Completed);
    let decisions = world.comment_on(done, "/codegen run");

    assert_refused(&decisions, "A closed issue is not run; reopen it first.");
    assert!(world.untracked(1));
}

#[test]
fn run_in_a_repository_whose_settings_are_unknown_launches_once_they_are_read() {
    let mut world = World::new();
    let web: RepoName = "acme/web".parse().unwrap();
    let mut one = issue(1, &[], "");
    one.reference = IssueRef::new(web.clone(), 1);

    let decisions = world.step(comment_by(&writer(), one.clone(), "/codegen run"));
    let decisions = match &decisions[..] {
        [Decision::CheckPermission { then, .. }] => world.answer(writer_may(then.clone())),
        _ => panic!("{decisions:#?}"),
    };
    let decisions = world
        .answer(no_native_blockers(one.reference.clone()))
        .into_iter()
        .chain(decisions)
        .collect::<Vec<_>>();
    assert_eq!(
        named(&decisions, "read_repo_config"),
        vec![&Decision::ReadRepoConfig {
            installation: ID,
            repo: web.clone(),
            report_on: None,
            then: AfterConfig::Nothing,
        }],
        "asked once"
    );
    assert_eq!(launches(&decisions), vec![]);

    let decisions = world.answer(config_absent(web, None, AfterConfig::Nothing));
    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

// ---- cancel ----

#[test]
fn cancel_stops_the_running_agent() {
    let mut world = World::new();
    world.running(1);

    let decisions = world.comment(1, "/codegen cancel");

    assert!(cancels(&decisions, 1));
    assert_carried_out(&decisions);
}

#[test]
fn cancel_with_nothing_running_is_refused() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.ended(1, 1, RunState::Failed);

    let decisions = world.comment(1, "/codegen cancel");

    assert!(!cancels(&decisions, 1));
    assert_refused(&decisions, "No agent is running for this issue.");
}

// ---- status ----

#[test]
fn status_reads_a_managed_issue_again() {
    let mut world = World::new();
    world.managed(1, &[], "");

    let decisions = world.comment(1, "/codegen status");

    assert!(decisions.contains(&read_native_blockers(1, None)));
    assert_carried_out(&decisions);
}

#[test]
fn status_on_an_unmanaged_issue_is_refused() {
    let mut world = World::new();

    let decisions = world.comment_on(issue(1, &[], ""), "/codegen status");

    let reply = "This issue is not managed; label it `codegen` or comment `/codegen run`.";
    assert_refused(&decisions, reply);
    assert!(world.untracked(1));
}

// ---- depends on / unblock ----

#[test]
fn depends_on_holds_the_issue_until_the_new_blocker_is_done() {
    let mut world = World::new();
    world.open_issue(2);

    let decisions = world.comment_on(issue(1, &[], ""), "/codegen run\n/codegen depends on #2");

    assert!(decisions.contains(&read_issue(2, ReadPurpose::Blocker)));
    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
    assert_eq!(world.state_label(1), Some("codegen:blocked"));
    last_status(&decisions, 1).assert_says("Waiting for 1 dependency");
    assert!(world.tracked(1).added.contains(&r(2)));
}

#[test]
fn depends_on_without_references_is_refused() {
    let mut world = World::new();
    world.managed(1, &[], "");

    let decisions = world.comment(1, "/codegen depends on soon");

    let reply = "No issue references found in `soon`; write them as `#12`, `owner/repo#12` \
                 or issue URLs.";
    assert_refused(&decisions, reply);
    assert!(world.tracked(1).added.is_empty());
}

#[test]
fn depends_on_that_would_close_a_cycle_is_refused_and_holds_the_issue() {
    let mut world = World::new();
    world.managed_waiting_for(1, 2);

    let decisions = world.comment_on(issue(2, &[], ""), "/codegen run\n/codegen depends on #1");

    let cycle = "acme/api#2 -> acme/api#1 -> acme/api#2";
    let reply = format!("Refused: that dependency would close a cycle: `{cycle}`.");
    assert_refused(&decisions, &reply);
    assert_eq!(launches(&decisions), vec![], "#2 is held back");
    assert_eq!(world.tracked(2).cycle.as_deref(), Some(cycle));
    last_status(&decisions, 2).assert_says("would close a cycle");
}

#[test]
fn unblock_removes_a_declared_dependency_and_the_issue_goes() {
    let mut world = World::new();
    world.managed_waiting_for(1, 2);

    let decisions = world.comment_on(
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
    world.managed_waiting_for(1, 2);
    world.comment_on(issue(2, &[], ""), "/codegen run\n/codegen depends on #1");

    let decisions = world.comment_on(issue(2, &[], ""), "/codegen unblock #1");

    assert_eq!(world.tracked(2).cycle, None);
    assert_eq!(launches(&decisions), vec![(2, 1)]);
}

// ---- graph, plan, help ----

#[test]
fn graph_replies_with_the_issues_part_of_the_graph() {
    let mut world = World::new();
    world.managed_waiting_for(1, 2);
    world.managed(3, &[], "");

    let connected = world.comment(1, "/codegen graph");
    let alone = world.comment(3, "/codegen graph");

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
    world.managed(1, &[], "");
    world.managed(2, &[], "");
    world.managed_waiting_for(3, 9);

    let decisions = world.comment(1, "/codegen plan");

    assert_eq!(
        replies(&decisions),
        vec![
            // #1 runs from 08:00 for the default hour, then #2; #3 waits for #9, which
            // nobody manages: it has no time.
            "**Launch plan for acme/api**\n\nRunning:\n\
             1. acme/api#1 Issue 1 — expected to finish around 2027-01-15 09:00 UTC\n\n\
             Next, in order:\n\
             1. acme/api#2 Issue 2 — expected to start around 2027-01-15 09:00 UTC\n\n\
             Waiting for dependencies (in dependency order):\n1. acme/api#3 Issue 3\n\n\
             🕒 Expected to be done around 2027-01-15 10:00 UTC, after about 2.0 agent hours \
             (forecast from the runs finished so far; issues without a time wait for \
             something the bot does not do)."
        ]
    );
}

#[test]
fn help_replies_with_every_command() {
    let mut world = World::new();

    let decisions = world.comment_on(issue(1, &[], ""), "/codegen help");

    assert_eq!(replies(&decisions), vec![texts::help("/codegen")]);
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
}

#[test]
fn a_line_that_is_not_a_command_is_answered_with_the_help() {
    let mut world = World::new();

    let decisions = world.comment_on(issue(1, &[], ""), "/codegen rnu");

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

    let decisions = world.comment_on(issue(1, &[], ""), "/codegen help\n/codegen status");

    assert_eq!(replies(&decisions).len(), 1);
    assert!(replies(&decisions)[0].contains("\n\n---\n\nThis issue is not managed"));
}

// ---- pause / resume ----

#[test]
fn pause_stops_launches_in_the_repository_and_is_saved() {
    let mut world = World::new();

    let decisions = world.comment_on(issue(1, &[], ""), "/codegen pause");
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
    let paused = setting("paused:acme/api", Some("wendy"));
    assert_eq!(world.settings_saved(), vec![paused]);

    let decisions = world.managed(2, &[], "");
    assert_eq!(launches(&decisions), vec![]);
    last_status(&decisions, 2)
        .assert_says("acme/api was paused by @wendy; `/codegen resume` restarts it.");
}

#[test]
fn pause_says_so_on_every_managed_issue_of_the_repository() {
    let mut world = World::new();
    world.managed_waiting_for(1, 9);

    let decisions = world.comment_on(issue(5, &[], ""), "/codegen pause");

    last_status(&decisions, 1).assert_says("paused by @wendy");
}

#[test]
fn resume_restarts_launches_in_the_repository_and_is_saved() {
    let mut world = World::new();
    world.comment_on(issue(1, &[], ""), "/codegen pause");
    world.managed(2, &[], "");
    world.engine.take_changes();

    let decisions = world.comment_on(issue(1, &[], ""), "/codegen resume");

    assert!(decisions.contains(&Decision::ResumeAgents { installation: ID }));
    assert_eq!(launches(&decisions), vec![(2, 1)]);
    assert_eq!(
        world.settings_saved(),
        vec![setting("paused:acme/api", None)]
    );
}

#[test]
fn resume_tells_every_ready_issue_of_the_repository_it_is_queued_again() {
    // One agent: after the resume one issue runs and twelve wait, two of them behind the
    // ten places a status names; theirs are published from the repository's ready set.
    let mut world = World::with(|settings| settings.max_concurrent = 1);
    world.comment_on(issue(1, &[], ""), "/codegen pause");
    for n in 2..=14 {
        world.managed(n, &[], "");
    }

    let decisions = world.comment_on(issue(1, &[], ""), "/codegen resume");

    assert_eq!(launches(&decisions).len(), 1);
    for n in [13, 14] {
        last_status(&decisions, n)
            .assert_says("Ready; in the queue for a free agent, behind the first 10.");
    }
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
    last_status(&decisions, 1).assert_says("paused by @wendy");
}
