//! The GitHub client's one retry layer against the fake GitHub: what is retried, how long
//! it waits, what is never retried, and the rate-limit metrics.

mod support;

use std::time::{Duration, Instant};

use codegen_orchestrator::config::{GithubConfig, Secret};
use codegen_orchestrator::domain::{IssueRef, IssueStatus, RepoName};
use codegen_orchestrator::github::GitHub;
use codegen_orchestrator::github::retry::RetryPolicy;
use serde_json::json;
use support::fake_github::FakeGithub;

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        secondary_wait: Duration::from_millis(100),
        max_wait: Duration::from_secs(10),
    }
}

async fn client(github: &FakeGithub) -> GitHub {
    let config = GithubConfig {
        api_url: github.url.clone(),
        token: Some(Secret::new("ghp_retry_test")),
        ..GithubConfig::default()
    };
    let repo: RepoName = "acme/api".parse().unwrap();
    GitHub::for_repository_with(&config, &repo, quick())
        .await
        .unwrap()
}

fn issue(number: u64) -> IssueRef {
    IssueRef::new("acme/api".parse().unwrap(), number)
}

fn calls_to(github: &FakeGithub, path: &str) -> usize {
    github.requests().iter().filter(|r| r.path == path).count()
}

async fn seeded() -> FakeGithub {
    let github = FakeGithub::start().await;
    github.add_issue("acme/api", 1, "One", "", &["codegen"]);
    github
}

#[tokio::test]
async fn a_502_is_retried_and_then_succeeds() {
    let github = seeded().await;
    github.script(
        "/repos/acme/api/issues/1",
        502,
        &[],
        json!({"message": "Bad Gateway"}),
    );
    github.script(
        "/repos/acme/api/issues/1",
        503,
        &[],
        json!({"message": "Unavailable"}),
    );
    let found = client(&github).await.issue(&issue(1)).await.unwrap();
    assert_eq!(found.status, IssueStatus::Open);
    assert_eq!(calls_to(&github, "/repos/acme/api/issues/1"), 3);
}

#[tokio::test]
async fn a_404_is_not_retried() {
    let github = seeded().await;
    let found = client(&github).await.issue(&issue(99)).await.unwrap();
    assert_eq!(found.status, IssueStatus::Unknown);
    assert_eq!(calls_to(&github, "/repos/acme/api/issues/99"), 1);
}

#[tokio::test]
async fn a_422_is_surfaced_with_githubs_message_and_not_retried() {
    let github = seeded().await;
    github.script(
        "/repos/acme/api/issues/1",
        422,
        &[],
        json!({"message": "Validation Failed"}),
    );
    let err = client(&github).await.issue(&issue(1)).await.unwrap_err();
    assert_eq!(err.status(), Some(422));
    assert!(err.to_string().contains("Validation Failed"), "{err}");
    assert_eq!(calls_to(&github, "/repos/acme/api/issues/1"), 1);
}

#[tokio::test]
async fn server_errors_stop_after_the_last_attempt() {
    let github = seeded().await;
    for _ in 0..4 {
        github.script(
            "/repos/acme/api/issues/1",
            500,
            &[],
            json!({"message": "boom"}),
        );
    }
    let err = client(&github).await.issue(&issue(1)).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(calls_to(&github, "/repos/acme/api/issues/1"), 4);
}

#[tokio::test]
async fn a_secondary_limit_waits_for_retry_after() {
    let github = seeded().await;
    github.script(
        "/repos/acme/api/issues/1",
        403,
        &[("retry-after", "1")],
        json!({"message": "You have exceeded a secondary rate limit."}),
    );
    let github_client = client(&github).await;
    let started = Instant::now();
    let found = github_client.issue(&issue(1)).await.unwrap();
    assert_eq!(found.status, IssueStatus::Open);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_exhausted_primary_limit_waits_until_reset() {
    let github = seeded().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let reset = (now + 1).to_string();
    github.script(
        "/repos/acme/api/issues/1",
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ],
        json!({"message": "API rate limit exceeded"}),
    );
    let github_client = client(&github).await;
    let started = Instant::now();
    github_client.issue(&issue(1)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_permission_403_is_not_retried() {
    let github = seeded().await;
    github.script(
        "/repos/acme/api/issues/1",
        403,
        &[("x-ratelimit-remaining", "4000")],
        json!({"message": "Resource not accessible by integration"}),
    );
    let err = client(&github).await.issue(&issue(1)).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(calls_to(&github, "/repos/acme/api/issues/1"), 1);
}

#[tokio::test]
async fn rate_limits_and_calls_are_in_the_metrics() {
    let github = seeded().await;
    let metrics = codegen_orchestrator::telemetry::metrics_handle();
    client(&github).await.issue(&issue(1)).await.unwrap();
    let text = metrics.render();
    assert!(
        text.contains("orchestrator_github_rate_limit_remaining{resource=\"core\"} 4990"),
        "{text}"
    );
    assert!(
        text.contains("orchestrator_github_calls_total{method=\"GET\",status=\"200\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn every_request_asks_for_githubs_media_type() {
    let github = seeded().await;
    client(&github).await.issue(&issue(1)).await.unwrap();
    let requests = github.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.accept == "application/vnd.github+json"),
        "{requests:#?}"
    );
}
