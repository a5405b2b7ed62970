//! The run-state gauges follow the runs both ways: a state whose last run moved on drops
//! to zero. (Alone in its test binary: the metrics recorder is process-wide.)

mod support;

use support::world::{MAINTAINER, World};

async fn gauge(world: &World, state: &str) -> f64 {
    use tower::ServiceExt;
    let request = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = world.app.router().oneshot(request).await.unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    let prefix = format!("orchestrator_runs{{state=\"{state}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} missing from:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_finished_run_leaves_the_running_gauge_at_zero() {
    let world = World::start().await;
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    world.label("acme/api", 1, "codegen", MAINTAINER).await;
    assert_eq!(gauge(&world, "running").await, 1.0);
    let run = world.run_of("acme/api", 1);
    world.codegen.finish(run, "COMPLETE", None);
    world.tick().await;
    assert_eq!(gauge(&world, "succeeded").await, 1.0);
    assert_eq!(
        gauge(&world, "running").await,
        0.0,
        "the gauge kept its last value"
    );
}
