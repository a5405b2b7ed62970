//! Issues entering and leaving management: who may apply the trigger label, repositories
//! whose settings are not known yet, unlabelling, closing, deleting and reopening.

use super::*;

// ---- Who may apply the trigger label ----

#[test]
fn a_writers_label_is_checked_then_the_issue_is_managed_and_launched_once_its_native_blockers_are_read()
 {
    let mut world = World::new();
    let one = issue(1, &["codegen"], "Add the endpoint.");

    let decisions = world.step(labeled_by(&writer(), one.clone()));
    assert_eq!(
        decisions,
        vec![Decision::CheckPermission {
            installation: ID,
            repo: repo(),
            user: writer(),
            then: label_check(&one),
        }]
    );
    assert!(world.untracked(1));

    let decisions = world.answer(writer_may(label_check(&one)));
    assert_eq!(decisions[0], read_native_blockers(1, None));
    assert_eq!(
        launches(&decisions),
        vec![],
        "it waits for its native blockers"
    );
    assert!(world.tracked(1).managed);

    let decisions = world.answer(no_native_blockers(r(1)));
    assert_eq!(launches(&decisions), vec![(1, 1)]);
    let Decision::Launch { prompt, stack, .. } = &decisions[0] else {
        panic!("the launch comes first: {decisions:#?}");
    };
    assert!(prompt.contains("Add the endpoint."), "{prompt}");
    assert!(
        prompt.contains("https://github.com/acme/api/issues/1"),
        "the prompt links the issue: {prompt}"
    );
    assert_eq!(stack, &None);
    assert_eq!(
        statuses(&decisions, 1),
        vec![],
        "the status waits for the launch's answer"
    );
    let status = last_status(&world.launched(1, 1), 1);
    assert_eq!(status.add.as_deref(), Some("codegen:running"));
    assert_eq!(status.project.as_deref(), Some("In Progress"));
}

#[test]
fn nothing_is_published_while_a_newly_managed_issues_native_blockers_are_read() {
    let mut world = World::new();
    let one = labelled(1);
    world.step(labeled_by(&writer(), one.clone()));

    let decisions = world.answer(writer_may(label_check(&one)));

    assert_eq!(names(&decisions), vec![("read_native_blockers", Some(1))]);
}

#[test]
fn a_readers_label_is_refused_and_the_status_comment_names_them() {
    let mut world = World::new();

    let decisions = world.run(labeled_by(&reader(), issue(1, &[], "")));

    assert_eq!(
        names(&decisions),
        vec![("check_permission", Some(1)), ("publish_status", Some(1))]
    );
    let status = last_status(&decisions, 1);
    status.assert_says("added by @rick");
    assert_eq!(status.labels(), (None, None));
    assert!(!world.tracked(1).managed);
    assert_eq!(world.tracked(1).refused.as_deref(), Some("@rick"));
}

#[test]
fn a_refusal_is_said_once_to_the_same_person() {
    let mut world = World::new();
    world.run(labeled_by(&reader(), issue(1, &[], "")));

    let decisions = world.run(labeled_by(&reader(), issue(1, &[], "")));

    assert_eq!(names(&decisions), vec![("check_permission", Some(1))]);
}

#[test]
fn a_writers_label_after_a_refusal_manages_the_issue() {
    let mut world = World::new();
    world.run(labeled_by(&reader(), issue(1, &[], "")));

    let decisions = world.managed(1, &[], "");

    assert_eq!(launches(&decisions), vec![(1, 1)]);
    assert_eq!(world.tracked(1).refused, None);
}

#[test]
fn a_readers_label_takes_nothing_from_an_issue_a_writer_manages() {
    let mut world = World::new();
    world.managed(1, &[], "");

    let decisions = world.run(labeled_by(&reader(), issue(1, &[], "")));

    assert_eq!(statuses(&decisions, 1), vec![]);
    assert!(world.tracked(1).managed);
}

#[test]
fn a_label_applied_by_a_bot_asks_first_who_applied_it() {
    let mut world = World::new();
    let one = labelled(1);

    let decisions = world.step(labeled_by(&bot_account(), one.clone()));

    assert_eq!(decisions, vec![read_label_actor(&one)]);
}

#[test]
fn a_label_applied_by_a_trusted_app_is_managed_without_a_permission_read() {
    let mut world = World::trusting("Codegen-SH");
    world.label_actors.insert(r(1), app(5, "codegen-sh"));

    let decisions = world.run(labeled_by(&bot_account(), issue(1, &[], "")));

    assert_eq!(
        names(&decisions)[..2],
        [
            ("read_label_actor", Some(1)),
            ("read_native_blockers", Some(1))
        ]
    );
    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

#[test]
fn a_label_applied_by_this_app_is_managed() {
    let mut world = World::new();
    world
        .label_actors
        .insert(r(1), app(APP_ID, "codegen-orchestrator"));

    let decisions = world.run(labeled_by(&bot_account(), issue(1, &[], "")));

    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

#[test]
fn a_label_applied_by_an_untrusted_app_is_refused() {
    let mut world = World::trusting("codegen-sh");
    world.label_actors.insert(r(1), app(6, "other"));

    let decisions = world.run(labeled_by(&bot_account(), issue(1, &[], "")));

    assert_eq!(launches(&decisions), vec![]);
    last_status(&decisions, 1).assert_says("the App `other`");
    assert!(!world.tracked(1).managed);
}

#[test]
fn a_label_whose_actor_github_no_longer_knows_is_refused() {
    let mut world = World::new();
    world.label_actors.insert(r(1), Actor::Unknown);

    let decisions = world.run(labeled_by(&bot_account(), issue(1, &[], "")));

    assert_eq!(launches(&decisions), vec![]);
    last_status(&decisions, 1).assert_says("an account GitHub no longer knows");
}

#[test]
fn a_label_on_a_closed_issue_is_ignored() {
    let mut world = World::new();

    let decisions = world.run(labeled_by(
        &writer(),
        closed(issue(1, &[], ""), CloseReason::Completed),
    ));

    assert_eq!(decisions, vec![]);
}

#[test]
fn another_label_is_only_taken_in() {
    let mut world = World::new();

    let decisions = world.run(issue_event(
        &writer(),
        IssueAction::Labeled {
            label: "bug".into(),
        },
        issue(1, &["bug"], ""),
    ));

    assert_eq!(decisions, vec![]);
    assert!(world.untracked(1));
}

// ---- Repository settings ----

#[test]
fn an_issue_event_in_a_repository_whose_settings_are_unknown_waits_for_them() {
    let mut world = World::new();
    let web: RepoName = "acme/web".parse().unwrap();
    let mut one = labelled(1);
    one.reference = IssueRef::new(web.clone(), 1);

    let decisions = world.step(labeled_by(&writer(), one.clone()));

    assert_eq!(
        decisions,
        vec![Decision::ReadRepoConfig {
            installation: ID,
            repo: web.clone(),
            report_on: Some(one.reference.clone()),
            then: AfterConfig::Retry,
        }]
    );
    assert!(
        world.engine.installation(ID).is_none(),
        "nothing else is done"
    );

    // Once the file is read, the same delivery goes through.
    let report_on = Some(one.reference.clone());
    world.answer(config_absent(web, report_on, AfterConfig::Retry));
    let decisions = world.step(labeled_by(&writer(), one));
    assert_eq!(names(&decisions), vec![("check_permission", Some(1))]);
}

#[test]
fn an_invalid_configuration_file_is_reported_on_the_issue_that_caused_the_read() {
    let mut world = World::new();
    let web: RepoName = "acme/web".parse().unwrap();
    let issue = IssueRef::new(web.clone(), 4);

    let decisions = world.answer(Outcome::RepoConfigRead {
        repo: web,
        file: RepoFile::Invalid("unknown field `colour`".into()),
        report_on: Some(issue.clone()),
        then: AfterConfig::Retry,
    });

    assert_eq!(names(&decisions), vec![("reply", Some(4))]);
    assert!(replies(&decisions)[0].contains("unknown field `colour`"));
}

#[test]
fn a_push_changing_the_configuration_file_reads_it_again() {
    let mut world = World::new();
    let push = |path: &str| {
        delivery(
            None,
            Event::Push {
                repo: repo(),
                default_branch: true,
                paths: vec![path.into()],
            },
        )
    };

    assert_eq!(world.step(push("src/main.rs")), vec![]);
    assert_eq!(
        world.step(push(crate::engine::repo_config::REPO_CONFIG_PATH)),
        vec![Decision::ReadRepoConfig {
            installation: ID,
            repo: repo(),
            report_on: None,
            then: AfterConfig::Nothing,
        }]
    );
}

// ---- Leaving management ----

#[test]
fn removing_the_label_stops_the_running_agent_and_says_so() {
    let mut world = World::new();
    world.running(1);

    let decisions = world.run(unlabeled(issue(1, &[], "")));

    assert!(cancels(&decisions, 1), "{decisions:#?}");
    assert!(!world.tracked(1).managed);
    let status = last_status(&decisions, 1);
    status.assert_says("the trigger label was removed");
    assert_eq!(status.labels(), (None, Some("codegen:running")));
}

#[test]
fn closing_as_not_planned_stops_the_running_agent() {
    let mut world = World::new();
    world.running(1);

    let decisions = world.run(closed_event(labelled(1), CloseReason::NotPlanned));

    assert!(cancels(&decisions, 1));
    assert!(!world.tracked(1).managed);
    last_status(&decisions, 1).assert_says("closed as not planned");
}

#[test]
fn deleting_stops_the_running_agent() {
    let mut world = World::new();
    world.running(1);

    let decisions = world.run(issue_event(&writer(), IssueAction::Deleted, labelled(1)));

    assert!(cancels(&decisions, 1));
    assert_eq!(world.tracked(1).status, IssueStatus::Deleted);
    assert!(!world.tracked(1).managed);
    last_status(&decisions, 1).assert_says("deleted or moved");
}

#[test]
fn with_cancel_on_close_off_an_issue_leaves_but_its_agent_runs_on() {
    let mut world = World::with(|s| s.orchestrator.cancel_on_close = false);
    world.running(1);

    let unlabelled = world.run(unlabeled(issue(1, &[], "")));
    let closed = world.run(closed_event(issue(1, &[], ""), CloseReason::NotPlanned));

    assert!(!cancels(&unlabelled, 1) && !cancels(&closed, 1));
    assert!(!world.tracked(1).managed);
}

#[test]
fn nothing_is_cancelled_when_no_agent_runs() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.ended(1, 1, RunState::Failed);

    let decisions = world.run(closed_event(labelled(1), CloseReason::NotPlanned));

    assert!(!cancels(&decisions, 1));
}

#[test]
fn closing_as_completed_keeps_the_issue_managed_and_done() {
    let mut world = World::new();
    world.managed_waiting_for(1, 2);
    assert_eq!(world.state_label(1), Some("codegen:blocked"));

    let decisions = world.run(closed_event(
        issue(1, &["codegen"], "Depends on #2"),
        CloseReason::Completed,
    ));

    assert!(world.tracked(1).managed);
    assert_eq!(launches(&decisions), vec![]);
    assert!(!cancels(&decisions, 1));
    assert_eq!(
        last_status(&decisions, 1).labels(),
        (Some("codegen:done"), Some("codegen:blocked"))
    );
}

#[test]
fn unlabelling_an_issue_run_by_command_keeps_it_managed() {
    let mut world = World::new();
    world.comment_on(issue(1, &[], ""), "/codegen run");

    let decisions = world.run(unlabeled(issue(1, &[], "")));

    assert!(!cancels(&decisions, 1));
    assert!(world.tracked(1).managed);
}

// ---- Reopening ----

#[test]
fn a_reopened_issue_run_by_command_is_managed_again() {
    let mut world = World::new();
    world.comment_on(issue(1, &[], ""), "/codegen run");
    world.run(closed_event(issue(1, &[], ""), CloseReason::NotPlanned));
    world.answer(Outcome::RunRecorded {
        installation: ID,
        run: run_record(1, 1, RunState::Cancelled),
    });
    assert!(!world.tracked(1).managed);

    let decisions = world.step(reopened_by(&reader(), issue(1, &[], "")));

    assert_eq!(decisions[0], read_native_blockers(1, None));
    assert!(world.tracked(1).managed);
}

#[test]
fn a_reopened_labelled_issue_has_its_label_checked_again_whoever_reopened_it() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.run(closed_event(labelled(1), CloseReason::NotPlanned));
    let one = labelled(1);

    let decisions = world.step(reopened_by(&reader(), one.clone()));

    assert_eq!(decisions, vec![read_label_actor(&one)]);
    assert!(!world.tracked(1).managed);

    // The writer applied it: managed again.
    world.answer(Outcome::LabelActorRead {
        installation: ID,
        issue: snapshot(&one),
        actor: Actor::Person(writer()),
    });
    let decisions = world.answer(writer_may(label_check(&one)));
    assert!(world.tracked(1).managed);
    assert_eq!(names(&decisions)[0], ("read_native_blockers", Some(1)));
}

#[test]
fn a_reopened_issue_without_the_label_stays_unmanaged() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.run(unlabeled(issue(1, &[], "")));
    world.run(closed_event(issue(1, &[], ""), CloseReason::NotPlanned));

    let decisions = world.run(reopened_by(&writer(), issue(1, &[], "")));

    assert_eq!(decisions, vec![]);
    assert!(!world.tracked(1).managed);
}

#[test]
fn an_issue_unlabelled_while_closed_as_completed_is_not_launched_once_reopened() {
    let mut world = World::new();
    world.managed_waiting_for(1, 2);
    let one = |labels: &[&str]| issue(1, labels, "Depends on #2");
    world.run(closed_event(one(&["codegen"]), CloseReason::Completed));
    world.run(unlabeled(closed(one(&[]), CloseReason::Completed)));
    world.run(reopened_by(&writer(), one(&[])));

    let decisions = world.run(closed_event(issue(2, &[], ""), CloseReason::Completed));

    assert_eq!(launches(&decisions), vec![]);
    assert!(!world.tracked(1).managed);
}
