//! `/metrics` on a fresh start already lists every family the README documents, with
//! zero-valued series where the labels are known in advance. This file holds one test so
//! that its process records nothing before it looks: the recorder is process-wide.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use codegen_orchestrator::runtime::App;
use codegen_orchestrator::telemetry::FAMILIES;
use support::{TestApp, test_config};

/// The metric names in README's `GET /metrics` row of the HTTP endpoints table.
fn readme_families() -> Vec<String> {
    let readme = include_str!("../README.md");
    let row = readme
        .lines()
        .find(|line| line.starts_with("| `GET /metrics`"))
        .expect("README's HTTP endpoints table has a GET /metrics row");
    row.split('`')
        .skip(1)
        .step_by(2)
        .filter(|code| code.starts_with("orchestrator_"))
        .map(|code| code.split('{').next().unwrap_or(code).to_owned())
        .collect()
}

#[tokio::test]
async fn a_fresh_start_lists_every_family_the_readme_lists() {
    let dir = tempfile::tempdir().unwrap();
    let store = codegen_orchestrator::store::Store::open(&test_config(&dir).storage.url)
        .await
        .unwrap();
    // An installation suspended before this start.
    store
        .set_setting("suspended:42", Some("acme"))
        .await
        .unwrap();
    store.close().await;
    let app = TestApp {
        app: App::build(&test_config(&dir)).await.unwrap(),
        dir,
    };
    let (status, metrics) = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);

    let documented = readme_families();
    assert!(documented.len() >= 15, "README lists only {documented:?}");
    for family in &documented {
        assert!(
            metrics.contains(&format!("\n# HELP {family} "))
                || metrics.starts_with(&format!("# HELP {family} ")),
            "{family} (in the README) has no HELP line in:\n{metrics}"
        );
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family} (in the README) has no TYPE line in:\n{metrics}"
        );
    }
    let exported: Vec<&str> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .collect();
    for family in &exported {
        assert!(
            documented.iter().any(|d| d == family),
            "{family} is exported but not in README's list"
        );
    }
    assert_eq!(exported.len(), FAMILIES.len(), "{exported:?}");

    for series in [
        "orchestrator_webhook_deliveries_total{event=\"issues\",outcome=\"accepted\"} 0",
        "orchestrator_webhook_deliveries_total{event=\"other\",outcome=\"unauthorized\"} 0",
        "orchestrator_deliveries_processed_total{event=\"issue_comment\",outcome=\"failed\"} 0",
        "orchestrator_inbox_depth 0",
        "orchestrator_issues{state=\"blocked\"} 0",
        "orchestrator_runs{state=\"running\"} 0",
        "orchestrator_runs_launched_total 0",
        "orchestrator_runs_ended_total{outcome=\"timed_out\"} 0",
        "orchestrator_launch_failures_total{reason=\"quota\"} 0",
        "orchestrator_installation_suspended{installation=\"42\"} 1",
    ] {
        assert!(
            metrics.lines().any(|line| line == series),
            "{series} missing from:\n{metrics}"
        );
    }
    println!(
        "a fresh /metrics: {} families described, {} series",
        exported.len(),
        metrics
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count()
    );
}
