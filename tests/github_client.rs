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

/// `retry-after: 3` in virtual time: the client waits the three seconds on tokio's clock,
/// and the test does not sleep them.
#[tokio::test(start_paused = true)]
async fn a_secondary_limit_waits_for_retry_after() {
    let github = seeded().await;
    github.script(
        "/repos/acme/api/issues/1",
        403,
        &[("retry-after", "3")],
        json!({"message": "You have exceeded a secondary rate limit."}),
    );
    let github_client = client(&github).await;
    let (virtual_start, real_start) = (tokio::time::Instant::now(), Instant::now());
    let found = github_client.issue(&issue(1)).await.unwrap();
    assert_eq!(found.status, IssueStatus::Open);
    assert!(tokio::time::Instant::now() - virtual_start >= Duration::from_secs(3));
    assert!(
        real_start.elapsed() < Duration::from_secs(2),
        "slept for real: {:?}",
        real_start.elapsed()
    );
    assert_eq!(calls_to(&github, "/repos/acme/api/issues/1"), 2);
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_primary_limit_waits_until_reset() {
    let github = seeded().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let reset = (now + 8).to_string();
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
    let (virtual_start, real_start) = (tokio::time::Instant::now(), Instant::now());
    github_client.issue(&issue(1)).await.unwrap();
    let waited = tokio::time::Instant::now() - virtual_start;
    assert!(
        waited >= Duration::from_secs(8) && waited <= Duration::from_secs(10),
        "{waited:?}"
    );
    assert!(
        real_start.elapsed() < Duration::from_secs(2),
        "slept for real"
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
        text.contains("orchestrator_github_rate_limit_remaining{installation=\"token\",resource=\"core\"} 4990"),
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
    let missing = github.requests_without_githubs_headers();
    assert!(missing.is_empty(), "{missing:#?}");
}

mod app_auth {
    use super::*;
    use codegen_orchestrator::config::GithubConfig;

    const KEY: &str = include_str!("data/test-app-key.pem");

    async fn app_client(github: &FakeGithub) -> GitHub {
        github
            .state
            .lock()
            .unwrap()
            .installations
            .insert("acme/api".into(), 42);
        let config = GithubConfig {
            api_url: github.url.clone(),
            app_id: Some(1234),
            private_key: Some(Secret::new(KEY)),
            ..GithubConfig::default()
        };
        GitHub::for_repository_with(&config, &"acme/api".parse().unwrap(), quick())
            .await
            .unwrap()
    }

    fn tokens_issued(github: &FakeGithub) -> u64 {
        github.state.lock().unwrap().tokens_issued
    }

    #[tokio::test]
    async fn one_client_per_installation_shares_its_token() {
        let github = seeded().await;
        github.add_issue("acme/web", 3, "Web", "", &["codegen"]);
        {
            let mut state = github.state.lock().unwrap();
            state.installations.insert("acme/api".into(), 42);
            state.installations.insert("acme/web".into(), 42);
        }
        let config = GithubConfig {
            api_url: github.url.clone(),
            app_id: Some(1234),
            private_key: Some(Secret::new(KEY)),
            ..GithubConfig::default()
        };
        let registry = codegen_orchestrator::github::GitHubApp::new(&config, quick()).unwrap();
        for _ in 0..2 {
            let api = registry
                .for_repository(&"acme/api".parse().unwrap())
                .await
                .unwrap();
            api.issue(&issue(1)).await.unwrap();
            let web = registry
                .for_repository(&"acme/web".parse().unwrap())
                .await
                .unwrap();
            web.issue(&IssueRef::new("acme/web".parse().unwrap(), 3))
                .await
                .unwrap();
        }
        assert_eq!(
            tokens_issued(&github),
            1,
            "installation 42 minted more than one token"
        );
        let lookups = github
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/installation"))
            .count();
        assert_eq!(
            lookups, 2,
            "each repository's installation is looked up once"
        );
    }

    #[tokio::test]
    async fn the_app_jwt_carries_the_claims_github_checks() {
        let github = seeded().await;
        app_client(&github).await.issue(&issue(1)).await.unwrap();
        let now = chrono::Utc::now().timestamp();
        let claims = github.state.lock().unwrap().jwt_claims.clone();
        assert!(!claims.is_empty(), "no JWT was verified");
        for claim in claims {
            assert_eq!(claim["iss"], 1234);
            let iat = claim["iat"].as_i64().unwrap();
            let exp = claim["exp"].as_i64().unwrap();
            assert!(
                (now - 70..=now - 50).contains(&iat),
                "iat {iat} vs now {now}"
            );
            assert!(exp > now && exp <= now + 600, "exp {exp} vs now {now}");
        }
    }

    #[tokio::test]
    async fn the_installation_token_is_cached() {
        let github = seeded().await;
        let client = app_client(&github).await;
        for _ in 0..3 {
            client.issue(&issue(1)).await.unwrap();
        }
        assert_eq!(tokens_issued(&github), 1);
    }

    #[tokio::test]
    async fn a_token_close_to_expiry_is_renewed_ahead() {
        let github = seeded().await;
        // Tokens that live four minutes are always inside the five-minute margin.
        github.state.lock().unwrap().token_lifetime_secs = 240;
        let client = app_client(&github).await;
        client.issue(&issue(1)).await.unwrap();
        client.issue(&issue(1)).await.unwrap();
        assert_eq!(tokens_issued(&github), 2);
        let last = github.requests().last().cloned().unwrap();
        assert_eq!(last.authorization, "Bearer ghs_installation42_2");
    }

    /// Every request carries `Accept`, `X-GitHub-Api-Version` and the `User-Agent`, whoever
    /// builds it: REST and GraphQL through our client, the installation lookup with the
    /// App's JWT, and the installation-token exchange octocrab makes on its own (before,
    /// that one carried neither `Accept` nor the API version); on github.com and on GitHub
    /// Enterprise Server, whose GraphQL goes through a client of its own.
    #[tokio::test]
    async fn every_request_carries_githubs_headers_the_token_exchange_included() {
        for suffix in ["", "/api/v3"] {
            let github = seeded().await;
            github
                .state
                .lock()
                .unwrap()
                .installations
                .insert("acme/api".into(), 42);
            let config = GithubConfig {
                api_url: format!("{}{suffix}", github.url),
                app_id: Some(1234),
                private_key: Some(Secret::new(KEY)),
                ..GithubConfig::default()
            };
            let repo: RepoName = "acme/api".parse().unwrap();
            let client = GitHub::for_repository_with(&config, &repo, quick())
                .await
                .unwrap();
            client.issue(&issue(1)).await.unwrap();
            client.open_issues_labeled(&repo, "codegen").await.unwrap();
            client.project_items(&issue(1), "Status").await.unwrap();
            client
                .add_labels(&issue(1), &["codegen:queued"])
                .await
                .unwrap();
            let paths: Vec<String> = github.requests().into_iter().map(|r| r.path).collect();
            for expected in [
                "/repos/acme/api/installation",
                "/app/installations/42/access_tokens",
                "/repos/acme/api/issues/1",
                "/repos/acme/api/issues/1/labels",
                "graphql",
            ] {
                assert!(
                    paths.iter().any(|p| p.ends_with(expected)),
                    "{suffix}: no request to {expected}: {paths:#?}"
                );
            }
            let missing = github.requests_without_githubs_headers();
            assert!(missing.is_empty(), "{suffix}: {missing:#?}");
        }
    }

    /// The manifest conversion is made before any credentials exist; it carries them too.
    #[tokio::test]
    async fn the_manifest_conversion_carries_githubs_headers() {
        let github = FakeGithub::start().await;
        github
            .state
            .lock()
            .unwrap()
            .manifest_codes
            .push("code1".into());
        let config = GithubConfig {
            api_url: github.url.clone(),
            ..GithubConfig::default()
        };
        let registration = codegen_orchestrator::github::convert_manifest(&config, "code1")
            .await
            .unwrap();
        assert_eq!(registration.id, 424242);
        assert_eq!(github.requests().len(), 1);
        let missing = github.requests_without_githubs_headers();
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[tokio::test]
    async fn a_401_on_the_cached_token_renews_it_once() {
        let github = seeded().await;
        let client = app_client(&github).await;
        client.issue(&issue(1)).await.unwrap();
        github.script(
            "/repos/acme/api/issues/1",
            401,
            &[],
            json!({"message": "Bad credentials"}),
        );
        let found = client.issue(&issue(1)).await.unwrap();
        assert_eq!(found.status, IssueStatus::Open);
        assert_eq!(tokens_issued(&github), 2);
    }
}

#[tokio::test]
async fn a_listing_follows_link_over_three_pages() {
    let github = FakeGithub::start().await;
    for number in 1..=5 {
        github.add_issue("acme/api", number, "Labeled", "", &["codegen"]);
    }
    github.add_issue("acme/api", 6, "Not labeled", "", &["bug"]);
    let found = client(&github)
        .await
        .open_issues_labeled(&"acme/api".parse().unwrap(), "codegen")
        .await
        .unwrap();
    let numbers: Vec<u64> = found.iter().map(|i| i.reference.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
    assert_eq!(calls_to(&github, "/repos/acme/api/issues"), 3);
}
