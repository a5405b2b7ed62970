//! Nobody without write permission spends an agent, by any path: a webhook, a reopen, the
//! reconciler, a restart, a bot, an issue form, the triage role, a command. The fake GitHub
//! answers as GitHub does: 404 from the permission endpoint for bots and strangers, the
//! issue's events naming who applied a label and through which App.

mod support;

use serde_json::json;
use support::world::{INSTALLATION, MAINTAINER, READER, World};

const REFUSED: &str = "cannot start agents";

/// A world where `triager` has GitHub's triage role on acme/api (`permission: read`,
/// `role_name: triage`: they may label, not push).
async fn world_with_triager() -> World {
    let world = World::start_with(|config| {
        config.orchestrator.trusted_apps = vec!["codegen-sh".into()];
    })
    .await;
    world.github.state.lock().unwrap().permissions.insert(
        ("acme/api".into(), "triager".into()),
        ("read".into(), "triage".into()),
    );
    world
}

fn refusals(world: &World, repo: &str, n: u64) -> Vec<String> {
    world
        .status_comments(repo, n)
        .into_iter()
        .filter(|c| c.contains(REFUSED))
        .collect()
}

#[tokio::test]
async fn a_readers_label_is_refused_at_the_webhook_the_reconciler_a_reopen_and_a_restart() {
    let world = World::start().await;
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    world.label("acme/api", 1, "codegen", READER).await;
    assert!(world.launches().is_empty());
    let said = refusals(&world, "acme/api", 1);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("The `codegen` label was added by @reader, who cannot start agents"),
        "{}",
        said[0]
    );
    assert!(said[0].contains("comments `/codegen run`"), "{}", said[0]);

    // The reconciler finds the labelled issue and asks who labelled it, not whether it is
    // labelled.
    world.reconcile().await;
    assert!(world.launches().is_empty(), "adopted by the reconciler");
    world.close("acme/api", 1, "not_planned").await;
    world.reopen("acme/api", 1).await;
    assert!(world.launches().is_empty(), "managed again on reopen");
    let world = world.restart().await;
    world.reconcile().await;
    assert!(world.launches().is_empty(), "adopted after a restart");
    // Said once, whatever the paths.
    assert_eq!(world.comments("acme/api", 1).len(), 1);

    // A writer acts: now it runs, and the status replaces the refusal.
    world
        .comment("acme/api", 1, "/codegen run", MAINTAINER)
        .await;
    assert_eq!(world.launches(), ["acme/api#1 (attempt 1)"]);
    assert!(refusals(&world, "acme/api", 1).is_empty());
}

#[tokio::test]
async fn the_triage_role_can_label_but_not_start_agents() {
    let world = world_with_triager().await;
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    world.label("acme/api", 1, "codegen", "triager").await;
    world.reconcile().await;
    assert!(world.launches().is_empty());
    assert!(refusals(&world, "acme/api", 1)[0].contains("@triager"));
    // A writer adds the label again: the latest `labeled` event decides.
    world.label("acme/api", 1, "codegen", MAINTAINER).await;
    assert_eq!(world.launches(), ["acme/api#1 (attempt 1)"]);
}

#[tokio::test]
async fn an_issue_form_label_from_anyone_waits_for_a_writer() {
    let world = World::start().await;
    // An issue form applies `codegen` to a new issue opened by someone outside the
    // project: GitHub records the opener as the label's actor, and sends `opened`.
    world.add_issue("acme/api", 1, "Please add a CLI", "", &[]);
    // Labelled on GitHub (the labels and the `labeled` event); the webhook is never seen.
    let _unsent = world.labeled_payload("acme/api", 1, "codegen", "drive-by");
    // The opened webhook is lost; the reconciler finds the issue.
    world.reconcile().await;
    assert!(world.launches().is_empty());
    assert!(refusals(&world, "acme/api", 1)[0].contains("@drive-by"));
}

#[tokio::test]
async fn bots_are_refused_unless_their_app_is_trusted_and_never_by_login() {
    let world = world_with_triager().await;
    for n in 1..=3 {
        world.add_issue("acme/api", n, &format!("Issue {n}"), "", &[]);
    }
    // A GitHub Actions workflow labels #1: its bot gets 404 from the permission endpoint,
    // and github-actions is not trusted.
    world
        .label("acme/api", 1, "codegen", "github-actions[bot]")
        .await;
    world.reconcile().await;
    assert!(world.launches().is_empty());
    assert!(
        refusals(&world, "acme/api", 1)[0].contains("the App `github-actions`"),
        "{:?}",
        world.status_comments("acme/api", 1)
    );
    // A person who registered the login `codegen-sh` is a person, checked as one.
    world.label("acme/api", 2, "codegen", "codegen-sh").await;
    world.reconcile().await;
    assert!(world.launches().is_empty());
    // The trusted App's bot: GitHub's events name the App, and it is trusted.
    world
        .label("acme/api", 3, "codegen", "codegen-sh[bot]")
        .await;
    assert_eq!(world.launches(), ["acme/api#3 (attempt 1)"]);
}

#[tokio::test]
async fn commands_count_by_the_person_or_a_trusted_app_never_by_the_posting_app() {
    let world = world_with_triager().await;
    for n in 1..=4 {
        world.add_issue("acme/api", n, &format!("Issue {n}"), "", &[]);
    }
    let command = |n: u64, login: &str, kind: &str, app: serde_json::Value| {
        let mut payload: serde_json::Value =
            serde_json::from_slice(&support::fixture("issue_comment/created.payload.json"))
                .unwrap();
        payload["issue"] =
            world.github.state.lock().unwrap().issues[&("acme/api".into(), n)].clone();
        payload["comment"]["id"] = json!(7_000 + n);
        payload["comment"]["body"] = json!("/codegen run");
        payload["comment"]["user"] =
            json!({"login": login, "id": support::world::user_id(login), "type": kind});
        payload["comment"]["performed_via_github_app"] = app;
        payload["installation"] = json!({"id": INSTALLATION});
        payload["repository"]["full_name"] = json!("acme/api");
        payload["sender"] = payload["comment"]["user"].clone();
        payload
    };
    let slack = json!({"id": 31337, "slug": "slack"});
    // A maintainer typing in Slack: the Slack App posts, the maintainer commands.
    world
        .send(
            "issue_comment",
            &command(1, MAINTAINER, "User", slack.clone()),
        )
        .await;
    assert_eq!(world.launches(), ["acme/api#1 (attempt 1)"]);
    // A reader typing in Slack is refused, politely.
    world
        .send("issue_comment", &command(2, READER, "User", slack))
        .await;
    assert_eq!(world.launches().len(), 1);
    assert!(world.replies("acme/api", 2)[0].contains("need write, maintain or admin"));
    // Another App's bot is ignored; a trusted App's bot commands.
    world
        .send(
            "issue_comment",
            &command(3, "helper[bot]", "Bot", json!({"id": 77, "slug": "helper"})),
        )
        .await;
    assert_eq!(world.launches().len(), 1);
    assert!(world.comments("acme/api", 3).is_empty());
    world
        .send(
            "issue_comment",
            &command(
                4,
                "codegen-sh[bot]",
                "Bot",
                json!({"id": 88, "slug": "codegen-sh"}),
            ),
        )
        .await;
    assert_eq!(world.launches()[1], "acme/api#4 (attempt 1)");
}

#[tokio::test]
async fn a_reopened_issue_is_judged_by_who_labelled_it_not_who_reopened_it() {
    let world = World::start().await;
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    world.label("acme/api", 1, "codegen", READER).await;
    world.close("acme/api", 1, "completed").await;
    // The maintainer reopens it (the world's reopen is sent by the maintainer).
    world.reopen("acme/api", 1).await;
    assert!(world.launches().is_empty());
}

#[tokio::test]
async fn a_labelled_blocker_read_for_a_dependent_is_not_started_on_its_label() {
    let world = World::start().await;
    // #1 carries the label from an issue form (a reader opened it); no webhook was seen.
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    // Labelled on GitHub (the labels and the `labeled` event); the webhook is never seen.
    let _unsent = world.labeled_payload("acme/api", 1, "codegen", READER);
    world.add_issue("acme/api", 2, "API", "Depends on #1", &[]);
    world.label("acme/api", 2, "codegen", MAINTAINER).await;
    world.reconcile().await;
    assert!(world.launches().is_empty(), "{:?}", world.launches());
    assert!(world.status_comments("acme/api", 2)[0].contains("acme/api#1 Schema — open"));
    assert!(refusals(&world, "acme/api", 1)[0].contains("@reader"));
}
