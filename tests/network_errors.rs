//! A request that gets no answer names the service, the host and the cause (refused, DNS,
//! TLS, timeout) — never `Service Error: client error (Connect)` — and never the token.

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use codegen_orchestrator::codegen::{Codegen, CodegenError, CodegenTuning};
use codegen_orchestrator::config::{GithubConfig, Secret};
use codegen_orchestrator::domain::RunId;
use codegen_orchestrator::github::GitHub;
use codegen_orchestrator::github::retry::RetryPolicy;

const GITHUB_TOKEN: &str = "ghp_network_distinctive_31c9";
const CODEGEN_TOKEN: &str = "cg_network_distinctive_7be2";

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server that answers every connection with plain HTTP, so a TLS client fails its
/// handshake.
fn plain_http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    port
}

/// A server that accepts connections and never answers.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

async fn github_error(api_url: &str) -> String {
    let config = GithubConfig {
        api_url: api_url.to_owned(),
        token: Some(Secret::new(GITHUB_TOKEN)),
        request_timeout_secs: 1,
        ..GithubConfig::default()
    };
    let quick = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    let repo = "acme/api".parse().unwrap();
    let github = GitHub::for_repository_with(&config, &repo, quick)
        .await
        .unwrap();
    let err = github
        .open_issues_labeled(&repo, "codegen")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        !format!("{text} {err:?}").contains(GITHUB_TOKEN),
        "the token appeared: {text}"
    );
    text
}

async fn codegen_error(api_url: &str) -> CodegenError {
    let tuning = CodegenTuning {
        retries: 1,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
        request_timeout: Duration::from_millis(500),
        ..CodegenTuning::documented(1)
    };
    let codegen = Codegen::with_tuning(api_url, 7, &Secret::new(CODEGEN_TOKEN), tuning).unwrap();
    let err = codegen.run(RunId(1)).await.unwrap_err();
    assert!(
        !format!("{err} {err:?}").contains(CODEGEN_TOKEN),
        "the token appeared: {err}"
    );
    assert!(err.is_transient(), "{err:?}");
    err
}

#[tokio::test]
async fn github_on_a_closed_port_is_refused() {
    let port = closed_port();
    let text = github_error(&format!("http://127.0.0.1:{port}")).await;
    println!("{text}");
    assert_eq!(
        text,
        format!("cannot reach GitHub at 127.0.0.1:{port}: connection refused")
    );
}

#[tokio::test]
async fn github_on_an_unresolvable_host_is_a_dns_failure() {
    let text = github_error("http://nonexistent.invalid").await;
    println!("{text}");
    assert!(
        text.starts_with(
            "cannot reach GitHub at nonexistent.invalid: the host name does not resolve (DNS: "
        ),
        "{text}"
    );
}

#[tokio::test]
async fn github_over_tls_to_a_plain_server_is_a_tls_failure() {
    let port = plain_http_server();
    let text = github_error(&format!("https://127.0.0.1:{port}")).await;
    println!("{text}");
    assert!(
        text.starts_with(&format!(
            "cannot reach GitHub at 127.0.0.1:{port}: TLS failed: "
        )),
        "{text}"
    );
}

#[tokio::test]
async fn codegen_on_a_closed_port_is_refused() {
    let port = closed_port();
    let err = codegen_error(&format!("http://127.0.0.1:{port}")).await;
    println!("{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach Codegen at 127.0.0.1:{port}: connection refused (GET /v1/organizations/7/agent/run/1)"
        )
    );
}

#[tokio::test]
async fn codegen_on_an_unresolvable_host_is_a_dns_failure() {
    let text = codegen_error("http://nonexistent.invalid")
        .await
        .to_string();
    println!("{text}");
    assert!(
        text.starts_with(
            "cannot reach Codegen at nonexistent.invalid: the host name does not resolve (DNS: "
        ),
        "{text}"
    );
}

#[tokio::test]
async fn codegen_over_tls_to_a_plain_server_is_a_tls_failure() {
    let port = plain_http_server();
    let text = codegen_error(&format!("https://127.0.0.1:{port}"))
        .await
        .to_string();
    println!("{text}");
    assert!(
        text.starts_with(&format!(
            "cannot reach Codegen at 127.0.0.1:{port}: TLS failed: "
        )),
        "{text}"
    );
}

#[tokio::test]
async fn github_without_an_answer_times_out() {
    let port = silent_server();
    let started = std::time::Instant::now();
    // Without a timeout the request would wait for ever: fail the test instead.
    let text = tokio::time::timeout(
        Duration::from_secs(30),
        github_error(&format!("http://127.0.0.1:{port}")),
    )
    .await
    .expect("a GitHub that never answers holds the client");
    println!("{text} (after {:?})", started.elapsed());
    assert_eq!(
        text,
        format!("cannot reach GitHub at 127.0.0.1:{port}: timed out")
    );
}

#[tokio::test]
async fn codegen_without_an_answer_times_out() {
    let port = silent_server();
    let text = codegen_error(&format!("http://127.0.0.1:{port}"))
        .await
        .to_string();
    println!("{text}");
    assert_eq!(
        text,
        format!(
            "cannot reach Codegen at 127.0.0.1:{port}: no answer within 500ms (GET /v1/organizations/7/agent/run/1)"
        )
    );
}
