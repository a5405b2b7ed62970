//! Two-way sync with GitHub's native dependencies: declared dependencies are written as
//! "blocked by" links and removed when no longer declared, but only those the bot wrote.

use super::*;
use crate::events::DependencyAction;

fn syncing() -> World {
    World::with(|s| s.orchestrator.sync_native_dependencies = true)
}

fn sync(n: u64, blocker: u64, add: bool) -> Decision {
    Decision::SyncNativeDependency {
        installation: ID,
        issue: r(n),
        blocker: r(blocker),
        add,
    }
}

fn synced(n: u64, blocker: u64, add: bool, failure: Option<&str>) -> Outcome {
    Outcome::NativeDependencySynced {
        installation: ID,
        issue: r(n),
        blocker: r(blocker),
        add,
        lasting: failure.is_some(),
        failure: failure.map(Into::into),
    }
}

/// GitHub's `issue_dependencies` webhook: `n` is (no longer) blocked by `blocker`.
fn link_event(action: DependencyAction, n: u64, body: &str, blocker: u64) -> Input {
    delivery(
        Some(writer()),
        Event::IssueDependency {
            action,
            blocked: issue(n, &["codegen"], body),
            blocking: issue(blocker, &[], ""),
        },
    )
}

#[test]
fn a_declared_dependency_is_written_natively_once_and_its_own_webhook_writes_nothing() {
    let mut world = syncing();

    let decisions = world.managed_waiting_for(2, 1);
    assert_eq!(
        named(&decisions, "sync_native_dependency"),
        vec![&sync(2, 1, true)]
    );
    world.answer(synced(2, 1, true, None));

    let echo = world.run(link_event(DependencyAction::Added, 2, "Depends on #1", 1));
    let edit = world.run(edited(issue(2, &["codegen"], "Depends on #1, really.")));

    assert!(
        named(&echo, "sync_native_dependency").is_empty(),
        "{echo:#?}"
    );
    assert!(
        named(&edit, "sync_native_dependency").is_empty(),
        "{edit:#?}"
    );
    assert!(world.tracked(2).synced.contains(&r(1)));
}

#[test]
fn a_dependency_no_longer_declared_is_removed_when_the_bot_wrote_it() {
    let mut world = syncing();
    world.managed_waiting_for(2, 1);
    world.answer(synced(2, 1, true, None));

    let decisions = world.run(edited(issue(2, &["codegen"], "No dependencies after all.")));

    assert_eq!(
        named(&decisions, "sync_native_dependency"),
        vec![&sync(2, 1, false)]
    );
    assert_eq!(launches(&decisions), vec![(2, 1)], "no longer blocked");
    let echo = world.run(link_event(
        DependencyAction::Removed,
        2,
        "No dependencies",
        1,
    ));
    assert!(named(&echo, "sync_native_dependency").is_empty());
}

#[test]
fn a_link_made_on_github_is_read_and_never_removed() {
    let mut world = syncing();
    world.open_issue(3);
    world.native.insert(r(2), vec![open_snapshot(3)]);
    let decisions = world.managed(2, &[], "Depends on #3");
    assert!(
        named(&decisions, "sync_native_dependency").is_empty(),
        "already there"
    );

    let decisions = world.run(edited(issue(2, &["codegen"], "Nothing declared.")));

    assert!(named(&decisions, "sync_native_dependency").is_empty());
    assert_eq!(launches(&decisions), vec![], "#3 still blocks, natively");
}

#[test]
fn without_the_setting_nothing_is_written() {
    let mut world = World::new();

    let decisions = world.managed_waiting_for(2, 1);

    assert!(named(&decisions, "sync_native_dependency").is_empty());
}

#[test]
fn githubs_limit_of_fifty_blockers_is_respected_and_said_once() {
    let mut world = syncing();
    let refs: Vec<String> = (100..152).map(|n| format!("#{n}")).collect();
    for n in 100..152 {
        world.open_issue(n);
    }
    let body = format!("Depends on {}", refs.join(", "));

    let decisions = world.managed(2, &[], &body);
    let again = world.run(edited(issue(2, &["codegen"], &format!("{body}."))));

    assert_eq!(named(&decisions, "sync_native_dependency").len(), 50);
    assert!(named(&again, "sync_native_dependency").is_empty());
    let notes = &world.tracked(2).notes;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("at most 50 blockers per issue: 2 declared dependencies"),
        "{notes:?}"
    );
}

#[test]
fn a_link_github_refuses_is_said_once_and_not_tried_again() {
    let mut world = syncing();
    world.managed_waiting_for(2, 1);

    let decisions = world.answer(synced(2, 1, true, Some("GitHub answered 404: Not Found")));
    let again = world.run(edited(issue(2, &["codegen"], "Depends on #1 still")));

    last_status(&decisions, 2).assert_says("The dependency on acme/api#1 could not be written");
    assert!(named(&again, "sync_native_dependency").is_empty());
    assert_eq!(launches(&again), vec![], "it still blocks here");
}

#[test]
fn a_write_given_up_on_is_tried_again_at_the_next_change_without_a_note() {
    let mut world = syncing();
    world.managed_waiting_for(2, 1);
    world.answer(Outcome::NativeDependencySynced {
        installation: ID,
        issue: r(2),
        blocker: r(1),
        add: true,
        failure: Some("GitHub kept failing".into()),
        lasting: false,
    });

    let again = world.run(edited(issue(2, &["codegen"], "Depends on #1 still")));

    assert_eq!(
        named(&again, "sync_native_dependency"),
        vec![&sync(2, 1, true)]
    );
    assert!(world.tracked(2).notes.is_empty());
}

#[test]
fn the_limit_note_goes_when_there_is_room_again() {
    let mut world = syncing();
    let refs: Vec<String> = (100..151).map(|n| format!("#{n}")).collect();
    for n in 100..151 {
        world.open_issue(n);
    }
    world.managed(2, &[], &format!("Depends on {}", refs.join(", ")));
    assert_eq!(world.tracked(2).notes.len(), 1);

    world.run(edited(issue(
        2,
        &["codegen"],
        &format!("Depends on {}", refs[..50].join(", ")),
    )));

    assert!(
        world.tracked(2).notes.is_empty(),
        "{:?}",
        world.tracked(2).notes
    );
}

#[test]
fn writing_a_new_link_keeps_the_other_notes() {
    let mut world = syncing();
    world.managed_waiting_for(2, 1);
    world.answer(synced(2, 1, true, Some("GitHub answered 404: Not Found")));
    world.open_issue(3);

    let decisions = world.run(edited(issue(2, &["codegen"], "Depends on #1 and #3")));

    assert_eq!(
        named(&decisions, "sync_native_dependency"),
        vec![&sync(2, 3, true)]
    );
    let notes = &world.tracked(2).notes;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("acme/api#1 could not be written"),
        "{notes:?}"
    );
}
