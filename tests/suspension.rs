//! An installation suspended by its account launches nothing, across a restart, until it
//! is unsuspended. Alone in its binary: the metrics recorder is process-wide, and another
//! test restarting an app over the same installation would set the gauge meanwhile.

mod support;

use support::world::{INSTALLATION, MAINTAINER, World};

fn installation_payload(action: &str) -> serde_json::Value {
    let mut payload: serde_json::Value = serde_json::from_slice(&support::fixture(&format!(
        "installation/{action}.payload.json"
    )))
    .unwrap();
    payload["installation"]["id"] = serde_json::json!(INSTALLATION);
    payload
}

async fn metrics(world: &World) -> String {
    use tower::ServiceExt;
    let request = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = world.app.router().oneshot(request).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn a_suspended_installation_launches_nothing_until_unsuspended_even_after_a_restart() {
    let world = World::start().await;
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    world
        .send("installation", &installation_payload("suspend"))
        .await;
    world.label("acme/api", 1, "codegen", MAINTAINER).await;
    assert!(world.launches().is_empty());
    let text = metrics(&world).await;
    assert!(
        text.contains(&format!(
            "orchestrator_installation_suspended{{installation=\"{INSTALLATION}\"}} 1"
        )),
        "{text}"
    );
    let world = world.restart().await;
    world.reconcile().await;
    assert!(
        world.launches().is_empty(),
        "a restart forgot the suspension"
    );
    world
        .send("installation", &installation_payload("unsuspend"))
        .await;
    assert_eq!(world.launches(), ["acme/api#1 (attempt 1)"]);
    let text = metrics(&world).await;
    assert!(
        text.contains(&format!(
            "orchestrator_installation_suspended{{installation=\"{INSTALLATION}\"}} 0"
        )),
        "the gauge goes back to 0: {text}"
    );
}
