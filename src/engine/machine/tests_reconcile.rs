//! Installations coming and going, the reconciler, and how statuses are published.

use super::*;
use crate::events::InstallationAction;

// ---- Installations ----

/// `action` happened to installation [`ID`] of the account `acme`.
fn installation_event(action: InstallationAction, repos: Vec<RepoName>) -> Input {
    delivery(
        None,
        Event::Installation {
            action,
            installation: ID,
            account: "acme".into(),
            repos,
        },
    )
}

/// Installation [`ID`] was suspended.
fn suspended() -> Input {
    installation_event(InstallationAction::Suspended, Vec::new())
}

#[test]
fn nothing_is_launched_for_a_suspended_installation() {
    let mut world = World::new();

    world.run(suspended());
    let saved = setting("suspended:7", Some("acme"));
    assert_eq!(world.settings_saved(), vec![saved]);
    let decisions = world.managed(1, &[], "");

    assert_eq!(launches(&decisions), vec![]);
    assert!(world.tracked(1).managed);
    assert!(world.engine.suspended().contains(&ID));
}

#[test]
fn an_unsuspended_installation_lists_its_repositories_and_launches_again() {
    let mut world = World::new();
    world.run(suspended());
    world.managed(1, &[], "");
    world.engine.take_changes();

    let decisions = world.step(installation_event(
        InstallationAction::Unsuspended,
        Vec::new(),
    ));

    assert!(decisions.contains(&Decision::ListRepositories { installation: ID }));
    assert_eq!(launches(&decisions), vec![(1, 1)]);
    assert!(world.engine.suspended().is_empty());
    assert_eq!(world.settings_saved(), vec![setting("suspended:7", None)]);
}

#[test]
fn a_new_installation_lists_the_labelled_issues_of_its_repositories() {
    let mut world = World::new();
    let web: RepoName = "acme/web".parse().unwrap();

    let decisions = world.step(installation_event(
        InstallationAction::Created,
        vec![repo(), web.clone()],
    ));

    assert_eq!(
        decisions,
        vec![
            list_labelled(),
            Decision::ReadRepoConfig {
                installation: ID,
                repo: web,
                report_on: None,
                then: AfterConfig::Reconcile(ID),
            },
        ]
    );
}

#[test]
fn a_repository_removed_from_the_installation_is_forgotten_and_its_agents_stopped() {
    let mut world = World::new();
    world.running(1);
    world.engine.take_changes();

    let decisions = world.run(delivery(
        None,
        Event::InstallationRepositories {
            installation: ID,
            added: Vec::new(),
            removed: vec![repo()],
        },
    ));

    assert!(cancels(&decisions, 1));
    assert!(world.untracked(1));
    assert_eq!(world.engine.take_changes().forgotten, vec![r(1)]);
}

#[test]
fn an_uninstalled_app_forgets_the_installation_and_stops_its_agents() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.run(suspended());
    world.engine.take_changes();

    let decisions = world.run(installation_event(InstallationAction::Deleted, Vec::new()));

    assert!(cancels(&decisions, 1));
    assert!(world.engine.installation(ID).is_none());
    let changes = world.engine.take_changes();
    assert_eq!(changes.forgotten, vec![r(1)]);
    assert_eq!(changes.settings, vec![setting("suspended:7", None)]);
}

// ---- Reconciliation ----

/// A reconciliation pass over [`repo`].
fn reconcile() -> Input {
    Input::Reconcile {
        targets: Some(vec![(ID, vec![repo()])]),
    }
}

#[test]
fn the_reconciler_adopts_a_labelled_issue_after_asking_who_labelled_it() {
    let mut world = World::new();
    let one = labelled(1);

    let decisions = world.step(reconcile());
    assert_eq!(decisions, vec![list_labelled()]);

    let decisions = world.answer(listed(vec![snapshot(&one)]));
    assert_eq!(decisions, vec![read_label_actor(&one)]);
}

#[test]
fn the_reconciler_rechecks_a_managed_issue_it_did_not_find() {
    let mut world = World::new();
    world.running(1);

    let decisions = world.answer(listed(Vec::new()));
    assert_eq!(decisions, vec![read_issue(1, ReadPurpose::Recheck)]);

    // It was closed as not planned while a webhook was lost.
    let not_planned = closed(labelled(1), CloseReason::NotPlanned);
    let decisions = world.answer(Outcome::IssueRead {
        installation: ID,
        issue: r(1),
        snapshot: Some(snapshot(&not_planned)),
        purpose: ReadPurpose::Recheck,
    });
    assert!(cancels(&decisions, 1));
    assert!(!world.tracked(1).managed);
}

#[test]
fn the_reconciler_publishes_every_managed_status_again_and_rereads_blockers_that_hold_work() {
    let mut world = World::new();
    world.running(1);
    world.managed_waiting_for(2, 9);
    assert_eq!(statuses(&world.run(reconcile()), 1).len(), 1, "republished");

    let decisions = world.step(reconcile());

    assert_eq!(statuses(&decisions, 1).len(), 1);
    assert_eq!(statuses(&decisions, 2).len(), 1);
    assert_eq!(statuses(&decisions, 9).len(), 0, "#9 is not managed");
    assert!(decisions.contains(&read_issue(9, ReadPurpose::Reread)));
    assert_eq!(last_status(&decisions, 1).labels(), (None, None));
}

#[test]
fn the_reconciler_reads_again_the_native_blockers_of_an_issue_whose_count_changed() {
    let mut world = World::new();
    world.managed(1, &[], "");
    let mut one = labelled(1);
    one.open_blockers = Some(1);

    let decisions = world.answer(listed(vec![snapshot(&one)]));

    assert_eq!(decisions[0], read_native_blockers(1, Some(1)));
}

#[test]
fn in_token_mode_the_reconciler_lists_the_repositories_it_already_knows() {
    let mut world = World::new();
    world.managed(1, &[], "");

    let decisions = world.step(Input::Reconcile { targets: None });

    assert_eq!(decisions[0], list_labelled());
}

// ---- Publishing ----

#[test]
fn the_state_label_follows_the_state_one_at_a_time() {
    let mut world = World::new();

    world.managed(1, &[], "");
    let first = last_status(&world.launched(1, 1), 1);
    let failed = last_status(&world.ended(1, 1, RunState::Failed), 1);

    assert_eq!(first.add.as_deref(), Some("codegen:running"));
    assert_eq!(
        failed.labels(),
        (Some("codegen:failed"), Some("codegen:running"))
    );
    assert_eq!(failed.project.as_deref(), Some("Failed"));
}

#[test]
fn an_unchanged_status_is_not_decided_twice() {
    let mut world = World::new();
    world.managed(1, &[], "Add it.");

    let decisions = world.run(edited(issue(1, &["codegen"], "Add it.")));

    assert_eq!(statuses(&decisions, 1), vec![]);
}

#[test]
fn a_changed_comment_without_a_state_change_is_published_without_label_changes() {
    let mut world = World::new();
    world.running(1);
    let mut run = run_record(1, 1, RunState::Running);
    run.web_url = Some("https://codegen.com/agent/trace/7".into());

    let decisions = world.answer(Outcome::RunRecorded {
        installation: ID,
        run,
    });

    let status = last_status(&decisions, 1);
    status.assert_says("https://codegen.com/agent/trace/7");
    assert_eq!(
        (status.add, status.remove, status.project),
        (None, None, None)
    );
}

#[test]
fn project_notes_are_said_once_in_the_status() {
    let mut world = World::new();
    world.running(1);
    let notes = || Outcome::ProjectNotes {
        installation: ID,
        issue: r(1),
        notes: vec!["The field \"Status\" has no option \"Failed\".".into()],
    };

    let first = world.answer(notes());
    let again = world.answer(notes());

    last_status(&first, 1).assert_says("has no option");
    assert_eq!(statuses(&again, 1), vec![]);
}

#[test]
fn what_changed_is_handed_to_the_store() {
    let mut world = World::new();
    world.managed(1, &[], "Depends on #2");

    let changes = world.engine.take_changes();

    let mut saved: Vec<u64> = changes.issues.iter().map(|(_, i, _)| i.number).collect();
    saved.sort();
    assert_eq!(saved, vec![1, 2], "the issue and its blocker");
    let (_, _, data) = changes
        .issues
        .iter()
        .find(|(_, i, _)| i.number == 1)
        .unwrap();
    let tracked: crate::engine::machine::Tracked = serde_json::from_str(data).unwrap();
    assert!(tracked.managed);
    assert_eq!(
        world.engine.take_changes(),
        crate::engine::machine::Changes::default()
    );
}
