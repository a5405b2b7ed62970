//! Shared test helpers: real fixture payloads, GitHub-style signing, and an app on a
//! temporary SQLite file driven through its real router.

#![allow(dead_code)] // each test binary uses a different subset

pub mod browser;
pub mod dashboard;
pub mod fake_codegen;
pub mod fake_github;
pub mod fake_oauth;
pub mod installations;
pub mod server;
pub mod stores;
pub mod world;

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use codegen_orchestrator::config::{Config, Secret, SecretList};
use codegen_orchestrator::http::{DoorLimits, sign};
use codegen_orchestrator::processor::RetryPolicy;
use codegen_orchestrator::runtime::App;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The webhook secret every test app is configured with.
pub const SECRET: &str = "test-webhook-secret";

/// `../shared/fixtures/github-webhooks`, beside the repository (where CI puts it).
pub fn webhook_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/github-webhooks")
}

/// The bytes of one fixture, e.g. `issues/labeled.payload.json`.
pub fn fixture(relative: &str) -> Vec<u8> {
    let path = webhook_fixtures().join(relative);
    std::fs::read(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

/// Every payload fixture as (event, file name, bytes), schemas left out.
pub fn all_fixtures() -> Vec<(String, String, Vec<u8>)> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(webhook_fixtures()).expect("../shared/fixtures is missing") {
        let dir = dir.unwrap().path();
        if !dir.is_dir() || dir.ends_with("schema") {
            continue;
        }
        let event = dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            found.push((event.clone(), name, std::fs::read(&file).unwrap()));
        }
    }
    found.sort();
    found
}

/// A configuration for tests: a store in `dir`, the test secret.
pub fn test_config(dir: &tempfile::TempDir) -> Config {
    let mut config = Config::default();
    config.storage.url = format!("sqlite://{}", dir.path().join("orchestrator.db").display());
    config.github.webhook_secret = SecretList::new(vec![Secret::new(SECRET)]);
    config
}

/// Retries without waiting, so that a poison payload is parked within a test.
pub fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    }
}

/// An app on a temporary store.
pub struct TestApp {
    pub app: App,
    pub dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(DoorLimits::default(), RetryPolicy::default()).await
    }

    pub async fn start_with(limits: DoorLimits, retry: RetryPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let app = App::build_with(&test_config(&dir), limits, retry)
            .await
            .unwrap();
        Self { app, dir }
    }

    /// Sends a request through the real router; returns the status and body text.
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = self.app.router().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Posts `body` as GitHub would: signed with the test secret.
    pub async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> (StatusCode, String) {
        self.send(webhook(event, delivery, body).signed(SECRET))
            .await
    }

    pub async fn stored(&self) -> u64 {
        self.app.store.delivery_count().await.unwrap()
    }
}

/// A webhook request under construction.
pub struct WebhookRequest {
    builder: axum::http::request::Builder,
    body: Vec<u8>,
}

/// A POST to `/webhook` with the event and delivery headers, unsigned so far.
pub fn webhook(event: &str, delivery: &str, body: &[u8]) -> WebhookRequest {
    let builder = Request::post("/webhook")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery);
    WebhookRequest {
        builder,
        body: body.to_vec(),
    }
}

impl WebhookRequest {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn signed(self, secret: &str) -> Request<Body> {
        let signature = sign(secret, &self.body);
        self.header("x-hub-signature-256", &signature).unsigned()
    }

    pub fn unsigned(self) -> Request<Body> {
        self.builder.body(Body::from(self.body)).unwrap()
    }
}
