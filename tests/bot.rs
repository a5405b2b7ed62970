//! The bot end to end: signed webhooks from the real payloads through the real app,
//! against the stateful fake GitHub and fake Codegen.

mod support;

use support::world::{MAINTAINER, READER, World};

/// Running (not ended) agent runs in the fake Codegen.
fn active(world: &World) -> usize {
    world
        .codegen
        .runs()
        .iter()
        .filter(|r| !matches!(r.status.as_str(), "COMPLETE" | "FAILED" | "CANCELLED"))
        .count()
}

/// 1 <- 2, 1 <- 3, {2, 3} <- 4, 4 <- other/lib#5, two agents at most.
async fn diamond() -> World {
    let world = World::start().await;
    world.add_issue("acme/api", 1, "Schema", "The schema.", &[]);
    world.add_issue("acme/api", 2, "API", "Depends on #1", &[]);
    world.add_issue("acme/api", 3, "Docs", "Blocked by #1", &[]);
    world.add_issue("acme/api", 4, "UI", "Depends on #2 and #3", &[]);
    world.add_issue("other/lib", 5, "Client", "Requires acme/api#4", &[]);
    for (repo, n) in [
        ("acme/api", 1),
        ("acme/api", 2),
        ("acme/api", 3),
        ("acme/api", 4),
        ("other/lib", 5),
    ] {
        world.label(repo, n, "codegen", MAINTAINER).await;
    }
    world
}

/// The agent finishes with a pull request, which is merged; GitHub closes the issue.
async fn finish_and_merge(world: &World, repo: &str, n: u64, pr: u64) {
    let run = world.run_of(repo, n);
    world.codegen.finish(
        run,
        "COMPLETE",
        Some(&format!("https://github.com/{repo}/pull/{pr}")),
    );
    world.tick().await;
    world
        .merge_pull_request(repo, pr, &format!("Fixes #{n}"))
        .await;
    world.close(repo, n, "completed").await;
}

#[tokio::test]
async fn a_diamond_and_a_chain_across_repositories_run_to_completion_in_order() {
    let world = diamond().await;
    assert_eq!(world.launches(), ["acme/api#1 (attempt 1)"]);
    assert_eq!(world.state_labels("acme/api", 1), ["codegen:running"]);
    for n in 2..=4 {
        assert_eq!(
            world.state_labels("acme/api", n),
            ["codegen:blocked"],
            "#{n}"
        );
    }
    assert_eq!(world.state_labels("other/lib", 5), ["codegen:blocked"]);

    // The agent succeeding is not enough by default: the issue must close.
    let run = world.run_of("acme/api", 1);
    world.codegen.finish(
        run,
        "COMPLETE",
        Some("https://github.com/acme/api/pull/101"),
    );
    world.tick().await;
    assert_eq!(world.launches().len(), 1);
    assert_eq!(world.state_labels("acme/api", 1), ["codegen:done"]);

    // The PR is merged: the bot closes #1 and launches both dependents (two agents).
    world.merge_pull_request("acme/api", 101, "Fixes #1").await;
    assert_eq!(
        world.github.state.lock().unwrap().issues[&("acme/api".into(), 1)]["state"],
        "closed"
    );
    assert_eq!(
        world.launches(),
        [
            "acme/api#1 (attempt 1)",
            "acme/api#2 (attempt 1)",
            "acme/api#3 (attempt 1)"
        ]
    );
    world.close("acme/api", 1, "completed").await; // GitHub's own webhook: changes nothing
    assert_eq!(world.launches().len(), 3);
    assert!(active(&world) <= 2);

    finish_and_merge(&world, "acme/api", 2, 102).await;
    assert_eq!(world.launches().len(), 3, "#4 still waits for #3");
    finish_and_merge(&world, "acme/api", 3, 103).await;
    assert_eq!(world.launches().last().unwrap(), "acme/api#4 (attempt 1)");
    finish_and_merge(&world, "acme/api", 4, 104).await;
    assert_eq!(world.launches().last().unwrap(), "other/lib#5 (attempt 1)");
    finish_and_merge(&world, "other/lib", 5, 105).await;
    assert_eq!(world.launches().len(), 5);

    for (repo, n) in [
        ("acme/api", 1),
        ("acme/api", 2),
        ("acme/api", 3),
        ("acme/api", 4),
        ("other/lib", 5),
    ] {
        let status = world.status_comments(repo, n);
        assert_eq!(status.len(), 1, "{repo}#{n}: {status:#?}");
        assert!(status[0].contains("**done**"), "{repo}#{n}: {}", status[0]);
        assert_eq!(world.state_labels(repo, n), ["codegen:done"]);
    }
    let prompt = &world.codegen.runs()[4].prompt;
    assert!(prompt.contains("acme/api#4: UI (closed as completed); pull request https://github.com/acme/api/pull/104"), "{prompt}");
    assert_eq!(world.codegen.runs()[4].repo_id, serde_json::json!(7002));
}

#[tokio::test]
async fn a_label_from_someone_without_write_permission_manages_nothing() {
    let world = World::start().await;
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    world.label("acme/api", 1, "codegen", READER).await;
    assert!(world.launches().is_empty());
    assert!(world.comments("acme/api", 1).is_empty());
}
