//! The HTTP side: the webhook door, the front page, health, readiness and metrics.

mod budget;
mod dashboard;
mod form;
mod home;
mod serve;
mod setup;
mod signature;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

use crate::config::SecretList;
use crate::store::Store;

pub use budget::{BodyBudget, BodyPermit};
pub use dashboard::DashboardState;
pub use serve::{ConnectionLimits, bind, serve};
pub use setup::SetupState;
pub use signature::{Signature, SignatureError, sign, verify};

/// Limits the door enforces on every webhook request.
#[derive(Debug, Clone, Copy)]
pub struct DoorLimits {
    /// Largest body accepted (GitHub caps payloads at 25 MiB).
    pub max_body_bytes: usize,
    /// Time allowed for the whole body to arrive.
    pub body_timeout: Duration,
    /// Bytes of bodies held at once by all webhook requests together; a request that does
    /// not fit is answered 503 before its body is read.
    pub body_budget_bytes: usize,
    /// The part of the budget only bodies under [`DoorLimits::small_body_bytes`] may use.
    pub small_body_reserve_bytes: usize,
    /// Below this size a body counts as small (GitHub's deliveries almost always are).
    pub small_body_bytes: usize,
    /// Time a body may take before it must show [`DoorLimits::body_min_bytes_per_sec`].
    pub body_grace: Duration,
    /// The average rate a body must keep after the grace period.
    pub body_min_bytes_per_sec: usize,
}

impl DoorLimits {
    /// The limits for `server.*`: the budget from `server.body_budget_bytes`, an eighth of
    /// it kept for small bodies.
    pub fn for_config(server: &crate::config::ServerConfig) -> Self {
        let budget = usize::try_from(server.body_budget_bytes).unwrap_or(usize::MAX);
        Self {
            body_budget_bytes: budget,
            small_body_reserve_bytes: budget / 8,
            ..Self::default()
        }
    }

    /// The shared budget these limits describe.
    pub fn budget(&self) -> BodyBudget {
        BodyBudget::new(
            self.body_budget_bytes,
            self.small_body_reserve_bytes,
            self.small_body_bytes,
        )
    }
}

impl Default for DoorLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 26_214_400,
            body_timeout: Duration::from_secs(30),
            // With the process itself, the connections and one signed 25 MiB body being
            // stored, this keeps a 512 MB machine (fly.toml's) under about 300 MB.
            body_budget_bytes: 128 << 20,
            small_body_reserve_bytes: 16 << 20,
            small_body_bytes: 1 << 20,
            body_grace: Duration::from_secs(10),
            // A 25 MiB body must arrive within body_timeout anyway (874 KB/s); this only
            // cuts short bodies that barely move while holding their share.
            body_min_bytes_per_sec: 16 * 1024,
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Where deliveries go.
    pub store: Store,
    /// Accepted webhook secrets; empty means every webhook is refused.
    pub secrets: Arc<SecretList>,
    /// Woken when a new delivery is stored.
    pub inbox: Arc<Notify>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Body size and time limits.
    pub limits: DoorLimits,
    /// Bytes of bodies in flight, within `limits.body_budget_bytes`.
    pub budget: Arc<BodyBudget>,
    /// The App registration pages.
    pub setup: Arc<SetupState>,
    /// The dashboard and its sign-in.
    pub dashboard: Arc<DashboardState>,
}

/// The app's routes: `POST {webhook_path}`, `GET /`, `GET /healthz`, `GET /setup`,
/// `GET /dashboard` (with its callback, live part and JSON), `GET /readyz`, `GET /metrics`.
pub fn router(state: AppState, webhook_path: &str) -> Router {
    serving_routes(state.clone(), webhook_path, true).merge(metrics_router(state))
}

/// The routes of the public port when `server.metrics_listen` moves `/metrics` and
/// `/readyz` elsewhere: the webhook, `/` (which then does not link `/metrics`), `/healthz`
/// (the platform's liveness probe) and `/setup`.
pub fn public_router(state: AppState, webhook_path: &str) -> Router {
    serving_routes(state, webhook_path, false)
}

fn serving_routes(state: AppState, webhook_path: &str, metrics_here: bool) -> Router {
    // The page depends only on the configuration: rendered once, served as is.
    let front = Html(home::front_page(&home::Front {
        version: env!("CARGO_PKG_VERSION"),
        webhook_path,
        metrics_here,
    }));
    Router::new()
        .route("/", get(move || std::future::ready(front.clone())))
        .route(webhook_path, post(webhook::receive))
        .route("/healthz", get(healthz))
        .route("/setup", get(setup::page))
        .route("/setup/callback", get(setup::callback))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/callback", get(dashboard::callback))
        .route("/dashboard/live", get(dashboard::live))
        .route("/dashboard/data", get(dashboard::data))
        .route("/dashboard/signout", post(dashboard::sign_out))
        .with_state(state)
}

/// `GET /metrics` and `GET /readyz`, for the public port or a private one of their own.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store unavailable: {err}\n"),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render_metrics(&state.metrics),
    )
}
