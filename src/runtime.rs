//! Wires the parts together: the store, the HTTP door and the inbox processor, and runs
//! them until a shutdown signal.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::config::Config;
use crate::http::{self, AppState, DoorLimits};
use crate::processor::{InboxProcessor, RetryPolicy};
use crate::store::Store;
use crate::telemetry;

/// The assembled application, not yet serving.
pub struct App {
    /// The store every part shares.
    pub store: Store,
    /// Handlers' shared state.
    pub state: AppState,
    /// The inbox processor.
    pub processor: Arc<InboxProcessor>,
    webhook_path: String,
}

impl App {
    /// Opens the store and assembles the parts for `config`.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with(config, DoorLimits::default(), RetryPolicy::default()).await
    }

    /// As [`App::build`], with explicit door limits and retry policy (tests shorten them).
    pub async fn build_with(
        config: &Config,
        limits: DoorLimits,
        retry: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let store = Store::open(&config.storage.url).await.with_context(|| {
            format!(
                "opening the store at {}",
                crate::config::redact_url(&config.storage.url)
            )
        })?;
        let inbox = Arc::new(Notify::new());
        let state = AppState {
            store: store.clone(),
            secrets: Arc::new(config.github.webhook_secret.clone()),
            inbox: inbox.clone(),
            metrics: telemetry::metrics_handle(),
            limits,
        };
        let processor = Arc::new(InboxProcessor::new(store.clone(), inbox, retry));
        Ok(Self {
            store,
            state,
            processor,
            webhook_path: config.server.webhook_path.clone(),
        })
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        http::router(self.state.clone(), &self.webhook_path)
    }

    /// Serves on `listener` until `shutdown` resolves: then stops accepting connections,
    /// lets requests in flight finish, finishes the processor's round and closes the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_processor, stop_signal) = watch::channel(false);
        let processor = self.processor.clone();
        let processing = tokio::spawn(async move { processor.run(stop_signal).await });
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP");
        info!("no longer accepting connections; finishing the inbox round in progress");
        let _ = stop_processor.send(true);
        if let Err(err) = processing.await {
            warn!(error = %err, "the inbox processor ended abnormally");
        }
        self.store.close().await;
        info!("stopped");
        served
    }
}

/// `serve`: runs the app on `server.listen` until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(&config).await?;
    if config.github.webhook_secret.is_empty() {
        warn!(
            "no webhook secret configured (github.webhook_secret / GITHUB_WEBHOOK_SECRET): \
             every webhook will be answered 401 until one is set"
        );
    }
    let listener = TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    info!(
        address = %listener.local_addr()?,
        webhook_path = %config.server.webhook_path,
        storage = %crate::config::redact_url(&config.storage.url),
        "codegen-orchestrator is serving"
    );
    app.serve(listener, shutdown_signal()).await
}

/// Resolves on SIGTERM (what Fly.io and Kubernetes send) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("Ctrl-C received; shutting down"),
        () = terminate => info!("SIGTERM received; shutting down"),
    }
}
