//! Who may give commands: permissions read and refused, comments by bots, by this App and
//! by trusted Apps, and edited comments (only their new commands count).

use super::*;
use crate::engine::machine::io::CommandRequest;
use crate::engine::texts;

// ---- Permissions ----

/// Every verb, as a writer or a reader would type it.
const EVERY_COMMAND: [&str; 11] = [
    "run",
    "retry",
    "cancel",
    "status",
    "depends on #2",
    "unblock #2",
    "graph",
    "plan",
    "pause",
    "resume",
    "help",
];

#[test]
fn every_command_from_a_reader_is_refused_with_one_reply_naming_their_permission() {
    for verb in EVERY_COMMAND {
        let mut world = World::new();
        let one = issue(1, &[], "");
        let body = format!("/codegen {verb}");

        let decisions = world.run(comment_by(&reader(), one.clone(), &body));

        assert_eq!(
            decisions[0],
            Decision::CheckPermission {
                installation: ID,
                repo: repo(),
                user: reader(),
                then: AfterPermission::Commands(CommandRequest {
                    issue: snapshot(&one),
                    comment: COMMENT,
                    body: body.clone(),
                    old_body: None,
                    edited: false,
                    trusted_app: false,
                }),
            },
            "{verb}"
        );
        assert_eq!(
            decisions[1..],
            [Decision::Reply {
                installation: ID,
                issue: r(1),
                body: "@rick: `/codegen` commands need write, maintain or admin permission on \
                       acme/api; yours is read. Nothing was done."
                    .into(),
            }],
            "{verb}: one reply, no reaction, nothing done"
        );
        assert!(world.engine.tracked(ID, &r(1)).is_none(), "{verb}");
        assert_eq!(
            world.engine.take_changes(),
            crate::engine::machine::Changes::default()
        );
    }
}

#[test]
fn a_commenter_without_any_permission_is_told_so() {
    let mut world = World::new();
    let stranger = User {
        id: 8,
        login: "sam".into(),
        is_bot: false,
    };

    let decisions = world.run(comment_by(&stranger, issue(1, &[], ""), "/codegen run"));

    assert_eq!(
        names(&decisions),
        vec![("check_permission", Some(1)), ("reply", Some(1))]
    );
    assert!(
        replies(&decisions)[0].contains("@sam") && replies(&decisions)[0].contains("yours is none")
    );
}

#[test]
fn a_comment_without_commands_reads_no_permission() {
    let mut world = World::new();

    let decisions = world.run(comment_by(
        &reader(),
        issue(1, &[], ""),
        "Looks good to me.",
    ));

    assert_eq!(decisions, vec![]);
}

#[test]
fn commands_on_a_pull_request_are_ignored() {
    let mut world = World::new();
    let mut pull = issue(10, &[], "");
    pull.is_pull_request = true;

    assert_eq!(writer_says(&mut world, pull, "/codegen run"), vec![]);
}

// ---- edits and authors ----

#[test]
fn an_edited_comment_executes_only_its_new_commands() {
    let mut world = World::new();

    let decisions = world.run(comment_event(
        &writer(),
        CommentAction::Edited {
            old_body: Some("/codegen plan".into()),
        },
        issue(1, &[], ""),
        "/codegen plan\n/codegen help",
        None,
    ));

    assert_eq!(replies(&decisions), vec![texts::help("/codegen")]);
}

#[test]
fn an_edit_that_adds_no_command_does_nothing() {
    let mut world = World::new();

    let decisions = world.run(comment_event(
        &writer(),
        CommentAction::Edited {
            old_body: Some("/codegen run".into()),
        },
        issue(1, &[], ""),
        "/codegen run\n\nThanks!",
        None,
    ));

    assert_eq!(decisions, vec![]);
}

#[test]
fn a_deleted_comment_does_nothing() {
    let mut world = World::new();

    let decisions = world.run(comment_event(
        &writer(),
        CommentAction::Deleted,
        issue(1, &[], ""),
        "/codegen run",
        None,
    ));

    assert_eq!(decisions, vec![]);
}

#[test]
fn a_bots_comment_is_ignored() {
    let mut world = World::with(|s| s.orchestrator.trusted_apps = vec!["codegen-sh".into()]);
    let other = Some(AppIdentity {
        id: 6,
        slug: "other".into(),
    });

    let without_app = world.run(comment_event(
        &bot_account(),
        CommentAction::Created,
        issue(1, &[], ""),
        "/codegen run",
        None,
    ));
    let untrusted = world.run(comment_event(
        &bot_account(),
        CommentAction::Created,
        issue(1, &[], ""),
        "/codegen run",
        other,
    ));

    assert_eq!((without_app, untrusted), (vec![], vec![]));
}

#[test]
fn this_apps_own_comment_is_ignored() {
    let mut world = World::new();
    let us = User {
        id: 100,
        login: "codegen-orchestrator[bot]".into(),
        is_bot: true,
    };

    let decisions = world.run(comment_event(
        &us,
        CommentAction::Created,
        issue(1, &[], ""),
        "Try `/codegen run`:\n/codegen run",
        Some(AppIdentity {
            id: APP_ID,
            slug: "codegen-orchestrator".into(),
        }),
    ));

    assert_eq!(decisions, vec![]);
}

#[test]
fn a_trusted_apps_comment_commands_without_a_permission_read() {
    let mut world = World::with(|s| s.orchestrator.trusted_apps = vec!["codegen-sh".into()]);

    let decisions = world.run(comment_event(
        &bot_account(),
        CommentAction::Created,
        issue(1, &[], ""),
        "/codegen run",
        Some(AppIdentity {
            id: 5,
            slug: "codegen-sh".into(),
        }),
    ));

    assert_eq!(names(&decisions)[0], ("react", None));
    assert!(!decisions.iter().any(|d| d.name() == "check_permission"));
    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

#[test]
fn a_person_typing_through_another_app_is_checked_like_anyone() {
    let mut world = World::new();
    let slack = Some(AppIdentity {
        id: 42,
        slug: "slack".into(),
    });

    let decisions = world.step(comment_event(
        &reader(),
        CommentAction::Created,
        issue(1, &[], ""),
        "/codegen run",
        slack,
    ));

    assert_eq!(names(&decisions), vec![("check_permission", Some(1))]);
}

#[test]
fn an_edited_comment_whose_old_body_is_unknown_counts_every_command() {
    let mut world = World::new();

    let decisions = world.run(comment_event(
        &writer(),
        CommentAction::Edited { old_body: None },
        issue(1, &[], ""),
        "/codegen plan\n/codegen help",
        None,
    ));

    assert_eq!(replies(&decisions).len(), 1);
    assert!(replies(&decisions)[0].starts_with(&texts::nothing_managed()));
    assert!(replies(&decisions)[0].ends_with(&texts::help("/codegen")));
}
