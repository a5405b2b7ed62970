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
        assert!(world.untracked(1), "{verb}");
        assert_eq!(
            world.engine.take_changes(),
            crate::engine::machine::Changes::default()
        );
    }
}

#[test]
fn a_commenter_without_any_permission_is_told_so() {
    let mut world = World::new();
    let stranger = account(8, "sam", false);

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

    assert_eq!(world.comment_on(pull, "/codegen run"), vec![]);
}

// ---- edits and authors ----

/// `action` happened to a writer's comment `body` on issue 1.
fn writers_comment(action: CommentAction, body: &str) -> Input {
    comment_event(&writer(), action, issue(1, &[], ""), body, None)
}

/// A writer edited their comment on issue 1 from `old_body` (if GitHub tells it) to `body`.
fn edit(old_body: Option<&str>, body: &str) -> Input {
    let old_body = old_body.map(Into::into);
    writers_comment(CommentAction::Edited { old_body }, body)
}

/// `author` commented `body` on issue 1, typing through the App `via_app` if any.
fn comment_via(author: &User, via_app: Option<AppIdentity>, body: &str) -> Input {
    comment_event(
        author,
        CommentAction::Created,
        issue(1, &[], ""),
        body,
        via_app,
    )
}

#[test]
fn an_edited_comment_executes_only_its_new_commands() {
    let mut world = World::new();

    let decisions = world.run(edit(Some("/codegen plan"), "/codegen plan\n/codegen help"));

    assert_eq!(replies(&decisions), vec![texts::help("/codegen")]);
}

#[test]
fn an_edit_that_adds_no_command_does_nothing() {
    let mut world = World::new();

    let decisions = world.run(edit(Some("/codegen run"), "/codegen run\n\nThanks!"));

    assert_eq!(decisions, vec![]);
}

#[test]
fn a_deleted_comment_does_nothing() {
    let mut world = World::new();

    let decisions = world.run(writers_comment(CommentAction::Deleted, "/codegen run"));

    assert_eq!(decisions, vec![]);
}

#[test]
fn this_apps_own_comment_is_ignored() {
    let mut world = World::new();
    let us = account(100, "codegen-orchestrator[bot]", true);
    let this_app = Some(identity(APP_ID, "codegen-orchestrator"));

    let decisions = world.run(comment_via(
        &us,
        this_app,
        "Try `/codegen run`:\n/codegen run",
    ));

    assert_eq!(decisions, vec![]);
}

#[test]
fn a_bots_comment_is_ignored() {
    let mut world = World::trusting("codegen-sh");
    let other = Some(identity(6, "other"));

    let without_app = world.run(comment_via(&bot_account(), None, "/codegen run"));
    let untrusted = world.run(comment_via(&bot_account(), other, "/codegen run"));

    assert_eq!((without_app, untrusted), (vec![], vec![]));
}

#[test]
fn a_trusted_apps_comment_commands_without_a_permission_read() {
    let mut world = World::trusting("codegen-sh");
    let trusted = Some(identity(5, "codegen-sh"));

    let decisions = world.run(comment_via(&bot_account(), trusted, "/codegen run"));

    assert_eq!(names(&decisions)[0], ("react", None));
    assert!(named(&decisions, "check_permission").is_empty());
    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

#[test]
fn a_person_typing_through_another_app_is_checked_like_anyone() {
    let mut world = World::new();
    let slack = Some(identity(42, "slack"));

    let decisions = world.step(comment_via(&reader(), slack, "/codegen run"));

    assert_eq!(names(&decisions), vec![("check_permission", Some(1))]);
}

#[test]
fn an_edited_comment_whose_old_body_is_unknown_counts_every_command() {
    let mut world = World::new();

    let decisions = world.run(edit(None, "/codegen plan\n/codegen help"));

    assert_eq!(replies(&decisions).len(), 1);
    assert!(replies(&decisions)[0].starts_with(&texts::nothing_managed()));
    assert!(replies(&decisions)[0].ends_with(&texts::help("/codegen")));
}
