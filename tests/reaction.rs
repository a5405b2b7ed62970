//! A launch does not wait behind other issues' status comments (issue 17 §2): the effects
//! of one round run side by side, launches first, while each issue's own effects stay in
//! order.

mod support;

use std::time::Duration;

use support::world::{MAINTAINER, World};

#[tokio::test]
async fn a_launch_goes_out_before_the_status_comments_of_other_issues() {
    let world = World::start_with(|config| config.codegen.max_concurrent_agents = 100).await;
    // Nine issues wait for an open issue nobody manages; #10 is ready.
    world.add_issue("acme/api", 20, "Design", "", &[]);
    for n in 1..=9 {
        world.add_issue("acme/api", n, &format!("Part {n}"), "Depends on #20", &[]);
    }
    world.add_issue("acme/api", 10, "Ready", "", &[]);
    // GitHub answers every call after 30 ms, as over a network.
    world.github.set_latency(Duration::from_millis(30));
    // All ten labels arrive before the bot looks: one batch, one round of effects.
    for n in 1..=10 {
        let payload = world.labeled_payload("acme/api", n, "codegen", MAINTAINER);
        let body = serde_json::to_vec(&payload).unwrap();
        World::post_to(&world.app, "issues", &format!("label-{n}"), &body).await;
    }
    world.app.processor.drain().await.unwrap();
    assert_eq!(world.launches(), ["acme/api#10 (attempt 1)"]);

    let created = world
        .codegen
        .state
        .lock()
        .unwrap()
        .calls
        .iter()
        .find(|call| call.method == "POST" && call.path.ends_with("/agent/run"))
        .map(|call| call.at)
        .expect("a run was created");
    let comments: Vec<_> = world
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/comments"))
        .map(|r| r.at)
        .collect();
    assert_eq!(comments.len(), 10, "a status comment on each issue");
    let before = comments.iter().filter(|at| **at < created).count();
    assert_eq!(
        before, 0,
        "the run was created after {before} status comments of other issues"
    );
    for n in 1..=9 {
        assert!(world.status_comments("acme/api", n)[0].contains("**blocked**"));
    }
}
