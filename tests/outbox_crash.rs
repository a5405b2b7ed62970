//! A crash at every step of the outbox: between the commit of a delivery's decisions and
//! the first effect, between two effects, and inside an effect (the request applied, its
//! answer lost). The whole app runs as `tests/bot.rs` builds it (SQLite on a temporary
//! file, the fake GitHub and the fake Codegen at the HTTP boundary); a crash drops the
//! app's work where it stands (the future processing a delivery is dropped at the request
//! the fake holds) and a new app starts on the same database, as a restarted process
//! would. Afterwards every effect happened exactly once: no lost decision, no repeated
//! read or write, one status comment, one run, one reply.

mod support;

use std::time::{Duration, Instant};

use codegen_orchestrator::store::DeliveryState;
use serde_json::{Value, json};
use sqlx::Connection;
use support::fake_codegen::{Fault, Target};
use support::fake_github::TrapKind;
use support::world::{INSTALLATION, MAINTAINER, World};

const REPO: &str = "acme/api";
const STATUS_MARKER: &str = "<!-- codegen-orchestrator:status -->";
/// The start of the help text `/codegen help` answers.
const HELP: &str = "Commands (one per line";
const PERMISSION: &str = "/repos/acme/api/collaborators/maintainer/permission";
const CONFIG_FILE: &str = "/repos/acme/api/contents/";
const BLOCKED_BY: &str = "/repos/acme/api/issues/1/dependencies/blocked_by";
const COMMENTS: &str = "/repos/acme/api/issues/1/comments";

/// One outbox row: the decision's kind, its state, failed attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    kind: String,
    state: String,
    attempts: i64,
}

/// The outbox, in commit order, read from the database file beside the app.
async fn outbox(world: &World) -> Vec<Row> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(world.dir.path().join("orchestrator.db"))
        .read_only(true);
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT decision, state, attempts FROM outbox ORDER BY id")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    connection.close().await.unwrap();
    rows.into_iter()
        .map(|(decision, state, attempts)| {
            let decision: Value = serde_json::from_str(&decision).unwrap();
            let kind = decision
                .as_object()
                .and_then(|o| o.keys().next().cloned())
                .unwrap_or(decision.to_string());
            Row {
                kind,
                state,
                attempts,
            }
        })
        .collect()
}

/// The kinds of the outbox rows in `state`.
async fn kinds_in(world: &World, state: &str) -> Vec<String> {
    outbox(world)
        .await
        .into_iter()
        .filter(|r| r.state == state)
        .map(|r| r.kind)
        .collect()
}

/// How many outbox rows (whatever their state) are of `kind`.
async fn decided(world: &World, kind: &str) -> usize {
    outbox(world)
        .await
        .iter()
        .filter(|r| r.kind == kind)
        .count()
}

/// What the restarted process does: its first round carries out the outbox, then the
/// inbox; entries waiting for a retry are waited for (at most 20 s).
async fn recover(world: &World) {
    let orchestrator = world.app.orchestrator.as_ref().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        orchestrator.drain().await.unwrap();
        let (pending, failed) = world.app.store.outbox_counts().await.unwrap();
        assert_eq!(
            failed,
            0,
            "an effect was given up: {:?}",
            outbox(world).await
        );
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "effects still pending: {:?}",
            outbox(world).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        world.app.processor.drain().await.unwrap(),
        0,
        "no delivery is processed again"
    );
}

/// Runs `work` (which processes a delivery) until `crashed` says the moment has come, then
/// drops it where it stands: the process dies there.
async fn crash_when(
    work: impl std::future::Future,
    crashed: impl std::future::Future<Output = ()>,
) {
    tokio::select! {
        _ = work => panic!("the work finished before the crash"),
        () = crashed => {}
    }
}

async fn delivery_state(world: &World, id: &str) -> (DeliveryState, u32) {
    let record = world
        .app
        .store
        .delivery(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    (record.state, record.attempts)
}

/// `/codegen help` by the maintainer on issue 1, as GitHub sends it.
fn help_comment(world: &World) -> Vec<u8> {
    let mut payload: Value =
        serde_json::from_slice(&support::fixture("issue_comment/created.payload.json")).unwrap();
    let issue = world.github.state.lock().unwrap().issues[&(REPO.to_owned(), 1)].clone();
    payload["action"] = json!("created");
    payload["issue"] = issue;
    payload["comment"]["id"] = json!(6_000_001);
    payload["comment"]["body"] = json!("/codegen help");
    payload["comment"]["user"] = json!({"login": MAINTAINER, "id": 101, "type": "User"});
    payload["comment"]["performed_via_github_app"] = Value::Null;
    payload["installation"] = json!({"id": INSTALLATION});
    payload["repository"]["full_name"] = json!(REPO);
    payload["repository"]["name"] = json!("api");
    payload["sender"] = json!({"login": MAINTAINER, "id": 101, "type": "User"});
    serde_json::to_vec(&payload).unwrap()
}

/// Codegen holds the next creation for two minutes (creating the run first when
/// `create_anyway`), then answers 502: the process is meant to die meanwhile.
fn hold_the_next_creation(world: &World, create_anyway: bool) {
    world.codegen.push_fault(Fault {
        target: Target::Create,
        status: 502,
        body: json!({"message": "Bad Gateway"}),
        create_anyway,
        delay: Duration::from_secs(120),
    });
}

/// Posts a delivery and processes it.
async fn deliver(world: &World, event: &str, id: &str, body: &[u8]) {
    assert_eq!(
        World::post_to(&world.app, event, id, body).await,
        axum::http::StatusCode::ACCEPTED
    );
    world.app.processor.drain().await.unwrap();
}

/// The end state of a labelled issue that is ready: one run, one status comment that
/// shows it, the running label, nothing left in the outbox.
async fn assert_running_once(world: &World) {
    let runs = world.codegen.runs();
    assert_eq!(world.launches(), ["acme/api#1 (attempt 1)"]);
    let status = world.status_comments(REPO, 1);
    assert_eq!(status.len(), 1, "{status:#?}");
    assert!(
        status[0].contains("**running**")
            && status[0].contains(&format!("agent/trace/{}", runs[0].id)),
        "the status comment shows the run: {}",
        status[0]
    );
    assert_eq!(world.state_labels(REPO, 1), ["codegen:running"]);
    assert_eq!(world.app.store.outbox_counts().await.unwrap(), (0, 0));
    // Reads are made before the step is committed, so only acts are outbox entries.
    assert_eq!(
        decided(world, "Launch").await,
        1,
        "Launch: {:?}",
        outbox(world).await
    );
}

#[tokio::test]
async fn a_crash_between_the_commit_and_the_first_effect_loses_nothing_and_repeats_nothing() {
    // Short leases, so that the restarted app may settle the interrupted launch soon.
    let world = World::start_with(|config| config.storage.lease_secs = 1).await;
    world.add_issue(REPO, 1, "Schema", "The schema.", &[]);
    let labelled =
        serde_json::to_vec(&world.labeled_payload(REPO, 1, "codegen", MAINTAINER)).unwrap();
    // The reads are made, the step is committed, and Codegen takes the first effect, the
    // launch, without creating anything; the process dies while it waits.
    hold_the_next_creation(&world, false);
    let codegen = &world.codegen;
    crash_when(deliver(&world, "issues", "label-1", &labelled), async {
        while codegen.calls_to("POST", "/agent/run") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(
        delivery_state(&world, "label-1").await.0,
        DeliveryState::Processed,
        "the delivery's mark was committed with its decisions"
    );
    let rows = outbox(&world).await;
    let pending: Vec<&Row> = rows.iter().filter(|r| r.state == "pending").collect();
    assert_eq!(
        pending,
        [&Row {
            kind: "Launch".into(),
            state: "pending".into(),
            attempts: 0
        }],
        "{rows:?}"
    );
    assert!(world.codegen.runs().is_empty());
    assert!(world.comments(REPO, 1).is_empty());
    let reads = [
        world.github.count("GET", PERMISSION),
        world.github.count("GET", BLOCKED_BY),
    ];
    let delivery_attempts = delivery_state(&world, "label-1").await.1;

    let world = world.restart().await;
    recover(&world).await;
    // The interrupted launch's lease runs out; recovery creates the run once.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    world.tick().await;
    recover(&world).await;

    assert_eq!(
        [
            world.github.count("GET", PERMISSION),
            world.github.count("GET", BLOCKED_BY),
        ],
        reads,
        "nothing is read again: the delivery is not handled twice"
    );
    assert_eq!(
        world.github.count("POST", COMMENTS),
        1,
        "one status comment posted"
    );
    assert_running_once(&world).await;
    assert_eq!(
        delivery_state(&world, "label-1").await,
        (DeliveryState::Processed, delivery_attempts),
        "the delivery is not processed again"
    );
}

#[tokio::test]
async fn a_crash_between_two_effects_repeats_none_of_those_done() {
    let world = World::start().await;
    world.add_issue(REPO, 1, "Schema", "The schema.", &[]);
    // Everything up to the run works; then creating the status comment fails however
    // often the client tries, and the process dies with it pending.
    world.github.trap(
        "POST",
        COMMENTS,
        Some(STATUS_MARKER),
        TrapKind::Fail(500),
        1_000,
    );
    let labelled =
        serde_json::to_vec(&world.labeled_payload(REPO, 1, "codegen", MAINTAINER)).unwrap();
    deliver(&world, "issues", "label-1", &labelled).await;
    assert_eq!(
        delivery_state(&world, "label-1").await.0,
        DeliveryState::Processed
    );
    let rows = outbox(&world).await;
    let done: Vec<&str> = rows
        .iter()
        .filter(|r| r.state == "done")
        .map(|r| r.kind.as_str())
        .collect();
    // The reads were made before the step was committed: only acts are entries.
    assert_eq!(done, ["Launch"], "{rows:?}");
    let pending: Vec<&Row> = rows.iter().filter(|r| r.state == "pending").collect();
    assert!(
        pending.len() == 1 && pending[0].kind == "PublishStatus" && pending[0].attempts == 1,
        "{rows:?}"
    );
    assert_eq!(world.launches(), ["acme/api#1 (attempt 1)"]);
    assert_eq!(world.status_comments(REPO, 1).len(), 0);
    let seen = |world: &World| {
        [
            world.github.count("GET", CONFIG_FILE),
            world.github.count("GET", PERMISSION),
            world.github.count("GET", BLOCKED_BY),
            world.codegen.calls_to("POST", "/agent/run"),
        ]
    };
    let before = seen(&world);

    world.github.state.lock().unwrap().traps.clear();
    let world = world.restart().await;
    recover(&world).await;

    assert_eq!(
        seen(&world),
        before,
        "reads and the run's creation are not repeated"
    );
    // The pending status was carried out, once.
    assert_running_once(&world).await;
}

/// Two deliveries handled in one step put both launches in one round of the outbox, whose
/// completions are committed together: a crash between the two repeats the first, which
/// finds its run recorded and calls Codegen no second time.
#[tokio::test]
async fn a_crash_between_two_effects_of_one_round_calls_codegen_once_for_each() {
    let world = World::start_with(|config| config.storage.lease_secs = 1).await;
    for n in [1, 2] {
        world.add_issue(REPO, n, "Schema", "The schema.", &[]);
        let labelled =
            serde_json::to_vec(&world.labeled_payload(REPO, n, "codegen", MAINTAINER)).unwrap();
        assert_eq!(
            World::post_to(&world.app, "issues", &format!("label-{n}"), &labelled).await,
            axum::http::StatusCode::ACCEPTED
        );
    }
    // The first creation answers at once; the second creates its run and the process
    // dies before the answer arrives.
    for delay in [Duration::ZERO, Duration::from_secs(120)] {
        world.codegen.push_fault(Fault {
            target: Target::Create,
            status: 200,
            body: Value::Null,
            create_anyway: true,
            delay,
        });
    }
    let codegen = &world.codegen;
    crash_when(world.app.processor.drain(), async {
        while codegen.runs().len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(
        kinds_in(&world, "pending").await,
        ["Launch", "Launch"],
        "both launches are in the round the crash interrupted"
    );

    let world = world.restart().await;
    recover(&world).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    world.tick().await;
    recover(&world).await;

    let mut launches = world.launches();
    launches.sort();
    assert_eq!(
        launches,
        ["acme/api#1 (attempt 1)", "acme/api#2 (attempt 1)"]
    );
    assert_eq!(world.codegen.calls_to("POST", "/agent/run"), 2);
    for n in [1, 2] {
        assert_eq!(world.status_comments(REPO, n).len(), 1, "#{n}");
        assert_eq!(world.state_labels(REPO, n), ["codegen:running"], "#{n}");
    }
    assert_eq!(world.app.store.outbox_counts().await.unwrap(), (0, 0));
}

#[tokio::test]
async fn a_crash_inside_the_status_comments_creation_leaves_one_comment_kept_up_to_date() {
    let world = World::start().await;
    world.add_issue(REPO, 1, "Schema", "The schema.", &[]);
    let labelled =
        serde_json::to_vec(&world.labeled_payload(REPO, 1, "codegen", MAINTAINER)).unwrap();
    // GitHub creates the status comment, and the process dies before the answer arrives.
    world.github.trap(
        "POST",
        COMMENTS,
        Some(STATUS_MARKER),
        TrapKind::ApplyThenHold,
        1,
    );
    crash_when(
        deliver(&world, "issues", "label-1", &labelled),
        world.github.wait_sprung(1),
    )
    .await;
    assert_eq!(world.status_comments(REPO, 1).len(), 1);
    // The status waits for the issue's native blockers, so the launch is decided (and
    // done) before the first status: what the crash leaves pending is the status.
    let pending = kinds_in(&world, "pending").await;
    assert!(
        !pending.is_empty() && pending.iter().all(|kind| kind == "PublishStatus"),
        "{pending:?}"
    );
    assert_eq!(world.codegen.runs().len(), 1);

    let world = world.restart().await;
    recover(&world).await;

    assert_eq!(
        world.github.count("POST", COMMENTS),
        1,
        "the comment is found by its marker, not posted again"
    );
    assert_running_once(&world).await;
}

#[tokio::test]
async fn a_status_comment_whose_creation_failed_is_created_after_a_crash() {
    let world = World::start().await;
    world.add_issue(REPO, 1, "Schema", "The schema.", &[]);
    // GitHub refuses to create the status comment however often the client asks (nothing
    // is created); the process dies with the status effect waiting for its retry.
    world.github.trap(
        "POST",
        COMMENTS,
        Some(STATUS_MARKER),
        TrapKind::Fail(500),
        1_000,
    );
    let labelled =
        serde_json::to_vec(&world.labeled_payload(REPO, 1, "codegen", MAINTAINER)).unwrap();
    deliver(&world, "issues", "label-1", &labelled).await;
    assert!(world.status_comments(REPO, 1).is_empty());
    let rows = outbox(&world).await;
    assert!(
        rows.iter()
            .any(|r| r.kind == "PublishStatus" && r.state == "pending" && r.attempts == 1),
        "{rows:?}"
    );

    world.github.state.lock().unwrap().traps.clear();
    let world = world.restart().await;
    recover(&world).await;

    assert_running_once(&world).await;
}

#[tokio::test]
async fn a_crash_inside_a_reply_posts_it_once() {
    let world = World::start().await;
    world.add_issue(REPO, 1, "Schema", "The schema.", &[]);
    let help = help_comment(&world);
    world
        .github
        .trap("POST", COMMENTS, Some(HELP), TrapKind::ApplyThenHold, 1);
    crash_when(
        deliver(&world, "issue_comment", "help-1", &help),
        world.github.wait_sprung(1),
    )
    .await;
    assert_eq!(world.replies(REPO, 1).len(), 1, "GitHub has the reply");
    let rows = outbox(&world).await;
    assert!(
        rows.iter()
            .any(|r| r.kind == "Reply" && r.state == "pending" && r.attempts == 1),
        "the reply's start is recorded: {rows:?}"
    );

    let world = world.restart().await;
    recover(&world).await;

    let replies = world.replies(REPO, 1);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(replies[0].starts_with(HELP), "{}", replies[0]);
    assert_eq!(world.github.count("POST", COMMENTS), 1);
    assert_eq!(world.app.store.outbox_counts().await.unwrap(), (0, 0));
    assert_eq!(decided(&world, "Reply").await, 1);
    assert_eq!(
        delivery_state(&world, "help-1").await.0,
        DeliveryState::Processed
    );
}

#[tokio::test]
async fn a_crash_inside_the_runs_creation_adopts_the_run_codegen_made() {
    // Short leases, so that the restarted app may settle the interrupted launch soon.
    let world = World::start_with(|config| config.storage.lease_secs = 1).await;
    world.add_issue(REPO, 1, "Schema", "The schema.", &[]);
    let labelled =
        serde_json::to_vec(&world.labeled_payload(REPO, 1, "codegen", MAINTAINER)).unwrap();
    // Codegen creates the run, and the process dies before the answer arrives.
    hold_the_next_creation(&world, true);
    let codegen = &world.codegen;
    crash_when(deliver(&world, "issues", "label-1", &labelled), async {
        while codegen.runs().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(world.launches(), ["acme/api#1 (attempt 1)"]);
    assert!(
        kinds_in(&world, "pending")
            .await
            .contains(&"Launch".to_owned()),
        "{:?}",
        outbox(&world).await
    );

    let world = world.restart().await;
    recover(&world).await;
    // The launch's lease runs out; the next poll finds the run by its metadata.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    world.tick().await;
    recover(&world).await;

    assert_running_once(&world).await;
}

#[tokio::test]
async fn a_status_comment_whose_answer_is_lost_is_not_posted_twice() {
    let world = World::start().await;
    world.add_issue(REPO, 1, "Schema", "The schema.", &[]);
    // GitHub creates the status comment and answers 502.
    world.github.trap(
        "POST",
        COMMENTS,
        Some(STATUS_MARKER),
        TrapKind::ApplyThenFail(502),
        1,
    );
    let labelled =
        serde_json::to_vec(&world.labeled_payload(REPO, 1, "codegen", MAINTAINER)).unwrap();
    deliver(&world, "issues", "label-1", &labelled).await;

    let world = world.restart().await;
    recover(&world).await;

    assert_running_once(&world).await;
}

#[tokio::test]
async fn a_reply_whose_answer_is_lost_is_not_posted_twice() {
    let world = World::start().await;
    world.add_issue(REPO, 1, "Schema", "The schema.", &[]);
    world.github.trap(
        "POST",
        COMMENTS,
        Some(HELP),
        TrapKind::ApplyThenFail(502),
        1,
    );
    deliver(&world, "issue_comment", "help-1", &help_comment(&world)).await;

    let world = world.restart().await;
    recover(&world).await;

    let replies = world.replies(REPO, 1);
    assert_eq!(
        replies.len(),
        1,
        "{} posts of the reply: {replies:#?}",
        world.github.count("POST", COMMENTS)
    );
    assert_eq!(world.app.store.outbox_counts().await.unwrap(), (0, 0));
}

#[tokio::test]
async fn a_run_whose_answer_is_lost_is_created_once() {
    let world = World::start().await;
    world.add_issue(REPO, 1, "Schema", "The schema.", &[]);
    world.codegen.push_fault(Fault {
        target: Target::Create,
        status: 502,
        body: json!({"message": "Bad Gateway"}),
        create_anyway: true,
        delay: Duration::ZERO,
    });
    let labelled =
        serde_json::to_vec(&world.labeled_payload(REPO, 1, "codegen", MAINTAINER)).unwrap();
    deliver(&world, "issues", "label-1", &labelled).await;

    let world = world.restart().await;
    recover(&world).await;

    assert_running_once(&world).await;
}
