//! Blockers as GitHub really reports them: natively linked issues the App cannot read still
//! count in `issue_dependencies_summary`; blockers the bot does not manage survive a
//! restart and a lost `closed` webhook; installations are suspended, shrunk and removed.

mod support;

use support::world::{INSTALLATION, MAINTAINER, World};

fn link(world: &World, repo: &str, blocked: u64, blocker_repo: &str, blocker: u64) {
    world.github.link(repo, blocked, blocker_repo, blocker);
}

#[tokio::test]
async fn a_blocker_in_a_repository_the_app_cannot_see_still_blocks_until_it_closes() {
    let world = World::start().await;
    // secret/infra is not part of the installation: GitHub's blocked_by list leaves its
    // issue out, while the issue's summary counts it.
    world.add_issue("secret/infra", 9, "Provision the database", "", &[]);
    world.add_issue("acme/api", 2, "API", "", &[]);
    link(&world, "acme/api", 2, "secret/infra", 9);
    world.label("acme/api", 2, "codegen", MAINTAINER).await;
    assert!(
        world.launches().is_empty(),
        "launched past an unseen blocker"
    );
    let status = &world.status_comments("acme/api", 2)[0];
    assert!(status.contains("**blocked**"), "{status}");
    assert!(
        status.contains("1 more open blocker of this issue that the App cannot see"),
        "{status}"
    );
    assert_eq!(world.state_labels("acme/api", 2), ["codegen:blocked"]);

    // It closes where the App receives no webhook; dependency counts do not move
    // `updated_at`, and the reconciler compares the counts.
    world.github.close("secret/infra", 9, "completed");
    world.reconcile().await;
    assert_eq!(world.launches(), ["acme/api#2 (attempt 1)"]);
    assert!(!world.status_comments("acme/api", 2)[0].contains("cannot see"));
}

#[tokio::test]
async fn an_unmanaged_native_blocker_is_remembered_across_a_restart() {
    let world = World::start().await;
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    world.add_issue("acme/api", 2, "API", "", &[]);
    link(&world, "acme/api", 2, "acme/api", 1);
    world.label("acme/api", 2, "codegen", MAINTAINER).await;
    assert!(world.launches().is_empty());
    let world = world.restart().await;
    // The blocker, never labelled, is closed: its webhook reaches the restarted bot.
    world.close("acme/api", 1, "completed").await;
    assert_eq!(world.launches(), ["acme/api#2 (attempt 1)"]);
}

#[tokio::test]
async fn a_lost_close_of_an_unmanaged_blocker_is_healed_by_the_reconciler() {
    let world = World::start().await;
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    world.add_issue("acme/api", 2, "API", "Depends on #1", &[]);
    world.label("acme/api", 2, "codegen", MAINTAINER).await;
    let world = world.restart().await;
    // Closed on GitHub; the webhook never arrives.
    world.github.close("acme/api", 1, "completed");
    world.reconcile().await;
    assert_eq!(world.launches(), ["acme/api#2 (attempt 1)"]);
}

fn installation_payload(action: &str) -> serde_json::Value {
    let mut payload: serde_json::Value = serde_json::from_slice(&support::fixture(&format!(
        "installation/{action}.payload.json"
    )))
    .unwrap();
    payload["installation"]["id"] = serde_json::json!(INSTALLATION);
    payload
}

fn running(world: &World) -> Vec<String> {
    world
        .codegen
        .runs()
        .iter()
        .filter(|r| !matches!(r.status.as_str(), "COMPLETE" | "FAILED" | "CANCELLED"))
        .map(|r| {
            format!(
                "{}#{}",
                r.metadata["repository"].as_str().unwrap(),
                r.metadata["issue_number"]
            )
        })
        .collect()
}

#[tokio::test]
async fn removed_repositories_and_a_deleted_installation_stop_their_agents_and_are_forgotten() {
    let world = World::start_with(|config| config.codegen.max_concurrent_agents = 5).await;
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    world.add_issue("acme/web", 2, "Page", "", &[]);
    world.label("acme/api", 1, "codegen", MAINTAINER).await;
    world.label("acme/web", 2, "codegen", MAINTAINER).await;
    assert_eq!(world.launches().len(), 2);

    let mut removed: serde_json::Value = serde_json::from_slice(&support::fixture(
        "installation_repositories/removed.payload.json",
    ))
    .unwrap();
    removed["installation"]["id"] = serde_json::json!(INSTALLATION);
    removed["repositories_removed"] = serde_json::json!([{"id": 2, "node_id": "R_2", "name": "web", "full_name": "acme/web", "private": true}]);
    world
        .github
        .state
        .lock()
        .unwrap()
        .installations
        .remove("acme/web");
    world.send("installation_repositories", &removed).await;
    assert_eq!(
        running(&world),
        ["acme/api#1"],
        "acme/web's agent still runs"
    );
    let known: Vec<String> = world
        .app
        .store
        .issues()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, issue, _)| issue.to_string())
        .collect();
    assert!(!known.contains(&"acme/web#2".to_owned()), "{known:?}");

    world
        .send("installation", &installation_payload("deleted"))
        .await;
    assert!(running(&world).is_empty(), "{:?}", running(&world));
    assert!(world.app.store.issues().await.unwrap().is_empty());
}
