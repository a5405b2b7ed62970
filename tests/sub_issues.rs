//! Work that grows while it runs, end to end against the fakes with signed deliveries:
//! GitHub's sub-issues (an epic runs its children in order and is closed), who may attach
//! work, follow-up issues an agent opens while it runs, a prerequisite discovered during a
//! run, a discovered edge that would close a cycle, and two-way sync with GitHub's native
//! dependencies. Redelivering every webhook changes nothing.

mod support;

use support::world::{MAINTAINER, READER, World};

const REPO: &str = "acme/api";

/// Sub-issues attached on GitHub before the App hears of the parent (read over REST).
fn attach_quietly(world: &World, parent: u64, children: &[u64]) {
    let mut state = world.github.state.lock().unwrap();
    let list = state
        .sub_issues
        .entry((REPO.to_owned(), parent))
        .or_default();
    list.extend(children.iter().map(|c| (REPO.to_owned(), *c)));
}

fn launched(world: &World) -> Vec<String> {
    let mut launches = world.launches();
    launches.sort();
    launches
}

fn issue_state(world: &World, n: u64) -> (String, String) {
    let state = world.github.state.lock().unwrap();
    let issue = &state.issues[&(REPO.to_owned(), n)];
    (
        issue["state"].as_str().unwrap_or_default().to_owned(),
        issue["state_reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn an_epic_runs_its_sub_issues_in_order_and_is_closed_when_they_are_done() {
    let world = World::start().await;
    world.add_issue(REPO, 1, "Epic: billing", "The whole of billing.", &[]);
    world.add_issue(REPO, 2, "Invoices table", "", &[]);
    world.add_issue(REPO, 3, "Invoice API", "Depends on #2", &[]);
    world.add_issue(REPO, 4, "Billing docs", "", &[]);
    attach_quietly(&world, 1, &[2, 3, 4]);

    world.label(REPO, 1, "codegen", MAINTAINER).await;
    world.settle_effects().await;

    assert_eq!(
        launched(&world),
        ["acme/api#2 (attempt 1)", "acme/api#4 (attempt 1)"],
        "#3 waits for #2, the epic for all"
    );
    let epic = &world.status_comments(REPO, 1)[0];
    assert!(epic.contains("Waiting for 3 sub-issues."), "{epic}");
    assert!(epic.contains("It has no agent of its own"), "{epic}");
    assert!(world.status_comments(REPO, 3)[0].contains("Part of acme/api#1."));

    world.close(REPO, 2, "completed").await;
    world.settle_effects().await;
    assert_eq!(world.launches().len(), 3);
    assert_eq!(world.launches()[2], "acme/api#3 (attempt 1)");
    world.close(REPO, 4, "completed").await;
    world.close(REPO, 3, "completed").await;
    world.settle_effects().await;

    assert_eq!(
        issue_state(&world, 1),
        ("closed".into(), "completed".into())
    );
    assert_eq!(world.launches().len(), 3, "the epic never had an agent");
    let epic = &world.status_comments(REPO, 1)[0];
    assert!(epic.contains("Done: every sub-issue is done."), "{epic}");
    assert_eq!(world.state_labels(REPO, 1), ["codegen:done"]);

    world.redeliver_all().await;
    world.settle_effects().await;
    assert_eq!(world.launches().len(), 3, "redelivery launches nothing");
    assert_eq!(world.status_comments(REPO, 1).len(), 1);
}

#[tokio::test]
async fn a_sub_issue_attached_by_a_reader_blocks_but_is_not_managed() {
    let world = World::start().await;
    world.add_issue(REPO, 1, "Epic", "", &[]);
    world.add_issue(REPO, 5, "Sneaked in", "", &[]);
    world.add_issue(REPO, 6, "Planned", "", &[]);
    attach_quietly(&world, 1, &[6]);
    world.label(REPO, 1, "codegen", MAINTAINER).await;
    world.settle_effects().await;
    assert_eq!(launched(&world), ["acme/api#6 (attempt 1)"]);

    world.sub_issue(REPO, 1, 5, true, READER).await;
    world.settle_effects().await;

    assert_eq!(
        launched(&world),
        ["acme/api#6 (attempt 1)"],
        "no agent for #5"
    );
    assert!(world.status_comments(REPO, 5).is_empty());
    let epic = &world.status_comments(REPO, 1)[0];
    assert!(epic.contains("Waiting for 2 sub-issues."), "{epic}");
}

#[tokio::test]
async fn follow_up_sub_issues_an_agent_opens_while_running_launch_after_their_blockers_once() {
    let world = World::start_with(|c| {
        c.orchestrator.trusted_apps = vec!["codegen-sh".into()];
        c.codegen.max_concurrent_agents = 3;
    })
    .await;
    world.add_issue(REPO, 1, "Payments", "", &[]);
    world.label(REPO, 1, "codegen", MAINTAINER).await;
    world.settle_effects().await;
    assert_eq!(launched(&world), ["acme/api#1 (attempt 1)"]);

    // The agent declares two prerequisites it found, the second needing the first.
    world
        .open_issue_as_app(REPO, 7, "Currency table", "", "codegen-sh")
        .await;
    world
        .open_issue_as_app(REPO, 8, "Rates job", "Depends on #7", "codegen-sh")
        .await;
    world.sub_issue(REPO, 1, 7, true, "codegen-sh[bot]").await;
    world.sub_issue(REPO, 1, 8, true, "codegen-sh[bot]").await;
    world.settle_effects().await;

    assert_eq!(
        launched(&world),
        ["acme/api#1 (attempt 1)", "acme/api#7 (attempt 1)"]
    );
    let status = &world.status_comments(REPO, 1)[0];
    assert!(status.contains("**running**"), "the run goes on: {status}");
    assert!(
        status.contains("discovered while attempt 1 ran"),
        "{status}"
    );

    world.close(REPO, 7, "completed").await;
    world.settle_effects().await;
    assert_eq!(world.launches().len(), 3);
    assert_eq!(world.launches()[2], "acme/api#8 (attempt 1)");

    world.redeliver_all().await;
    world.settle_effects().await;
    assert_eq!(world.launches().len(), 3, "nothing launched twice");
}

#[tokio::test]
async fn a_discovered_prerequisite_returns_a_failed_issue_to_blocked_and_relaunches_it_once() {
    let world = World::start().await;
    world.add_issue(REPO, 1, "Checkout", "", &[]);
    world.add_issue(REPO, 9, "Tax rules", "", &[]);
    world.label(REPO, 1, "codegen", MAINTAINER).await;
    world.settle_effects().await;
    world.sub_issue(REPO, 1, 9, true, MAINTAINER).await;
    world.settle_effects().await;
    assert_eq!(
        launched(&world),
        ["acme/api#1 (attempt 1)", "acme/api#9 (attempt 1)"]
    );

    world.codegen.set_status(world.run_of(REPO, 1), "FAILED");
    world.settle_effects().await;
    let status = &world.status_comments(REPO, 1)[0];
    assert!(status.contains("**blocked**"), "{status}");
    assert!(
        status.contains("a new attempt starts once it is done"),
        "{status}"
    );
    assert_eq!(world.state_labels(REPO, 1), ["codegen:blocked"]);

    world.close(REPO, 9, "completed").await;
    world.settle_effects().await;
    assert_eq!(world.launches().len(), 3);
    assert_eq!(world.launches()[2], "acme/api#1 (attempt 2)");

    world.redeliver_all().await;
    world.settle_effects().await;
    assert_eq!(world.launches().len(), 3, "one new attempt only");
}

#[tokio::test]
async fn a_discovered_issue_that_would_close_a_cycle_is_refused_with_its_path() {
    let world =
        World::start_with(|c| c.orchestrator.trusted_apps = vec!["codegen-sh".into()]).await;
    world.add_issue(REPO, 1, "Search", "", &[]);
    world.label(REPO, 1, "codegen", MAINTAINER).await;
    world.settle_effects().await;

    // The agent opens a follow-up that needs #1 and attaches it as a prerequisite of #1.
    world
        .open_issue_as_app(REPO, 10, "Index", "Depends on #1", "codegen-sh")
        .await;
    world.sub_issue(REPO, 1, 10, true, "codegen-sh[bot]").await;
    world.settle_effects().await;

    let status = &world.status_comments(REPO, 1)[0];
    assert!(status.contains("would close a cycle"), "{status}");
    assert!(
        status.contains("acme/api#1 -> acme/api#10 -> acme/api#1")
            || status.contains("acme/api#10 -> acme/api#1 -> acme/api#10"),
        "{status}"
    );
    assert_eq!(
        launched(&world),
        ["acme/api#1 (attempt 1)"],
        "#10 waits for #1"
    );
}

fn blocked_by_calls(world: &World) -> Vec<String> {
    let state = world.github.state.lock().unwrap();
    state
        .requests
        .iter()
        .filter(|r| r.path.contains("/dependencies/blocked_by") && r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn native_blockers(world: &World, n: u64) -> Vec<u64> {
    let state = world.github.state.lock().unwrap();
    let ids = state
        .blocked_by
        .get(&(REPO.to_owned(), n))
        .cloned()
        .unwrap_or_default();
    let mut numbers: Vec<u64> = state
        .issues
        .iter()
        .filter(|(_, i)| ids.contains(&i["id"].as_u64().unwrap()))
        .map(|((_, number), _)| *number)
        .collect();
    numbers.sort();
    numbers
}

#[tokio::test]
async fn native_sync_writes_and_removes_only_its_own_links_and_survives_its_own_webhooks() {
    let world = World::start_with(|c| c.orchestrator.sync_native_dependencies = true).await;
    world.add_issue(REPO, 1, "Schema", "", &[]);
    world.add_issue(REPO, 3, "Design review", "", &[]);
    world.add_issue(REPO, 2, "API", "Depends on #1", &[]);
    // A person linked #3 on GitHub.
    world.github.link(REPO, 2, REPO, 3);

    world.label(REPO, 2, "codegen", MAINTAINER).await;
    world.settle_effects().await;
    assert_eq!(
        native_blockers(&world, 2),
        [1, 3],
        "the declared link was written"
    );
    assert_eq!(blocked_by_calls(&world).len(), 1);

    // GitHub tells the App of the link it made itself.
    world.native_dependency(REPO, 2, 1, true).await;
    world.settle_effects().await;
    assert_eq!(
        blocked_by_calls(&world).len(),
        1,
        "no second round of writes"
    );

    world.edit_body(REPO, 2, "Nothing declared any more.").await;
    world.settle_effects().await;
    assert_eq!(
        native_blockers(&world, 2),
        [3],
        "only the bot's own link went"
    );
    let calls = blocked_by_calls(&world);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[1].starts_with("DELETE"), "{calls:?}");
    world.native_dependency(REPO, 2, 1, false).await;
    world.settle_effects().await;
    assert!(world.launches().is_empty(), "#3 still blocks, natively");

    world.redeliver_all().await;
    world.settle_effects().await;
    assert_eq!(
        blocked_by_calls(&world).len(),
        2,
        "redelivery writes nothing"
    );
    assert_eq!(native_blockers(&world, 2), [3]);
}
