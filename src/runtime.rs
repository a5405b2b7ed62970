//! Wires the parts together: the store, the HTTP door and the inbox processor, and runs
//! them until a shutdown signal.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::agents::{AgentSettings, Agents};
use crate::codegen::{Codegen, CodegenError};
use crate::config::Config;
use crate::engine::machine::EngineSettings;
use crate::github::GitHubApp;
use crate::http::{self, AppState, DoorLimits};
use crate::orchestrator::Orchestrator;
use crate::processor::{InboxProcessor, RetryPolicy};
use crate::store::{Retention, Store};
use crate::telemetry;

/// The assembled application, not yet serving.
pub struct App {
    /// The store every part shares.
    pub store: Store,
    /// Handlers' shared state.
    pub state: AppState,
    /// The inbox processor.
    pub processor: Arc<InboxProcessor>,
    /// The engine and its effects, when GitHub credentials are configured.
    pub orchestrator: Option<Orchestrator>,
    webhook_path: String,
    connections: http::ConnectionLimits,
    /// Whether `/metrics` and `/readyz` are served on `server.metrics_listen` instead.
    metrics_apart: bool,
    retention: Retention,
    poll_interval: std::time::Duration,
    reconcile_interval: std::time::Duration,
}

impl App {
    /// Opens the store and assembles the parts for `config`.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_tuned(config, Tuning::for_config(config)).await
    }

    /// As [`App::build`], with explicit door limits and retry policy (tests shorten them).
    pub async fn build_with(
        config: &Config,
        limits: DoorLimits,
        retry: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let tuning = Tuning {
            limits,
            inbox_retry: retry,
            ..Tuning::for_config(config)
        };
        Self::build_tuned(config, tuning).await
    }

    /// As [`App::build`], with every timing explicit (tests shorten them).
    pub async fn build_tuned(config: &Config, tuning: Tuning) -> anyhow::Result<Self> {
        let Tuning {
            limits,
            inbox_retry: retry,
            ..
        } = tuning;
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
            budget: Arc::new(limits.budget()),
            setup: Arc::new(
                http::SetupState::new(
                    &config.github,
                    config.server.public_url.clone(),
                    &config.server.webhook_path,
                )
                .context("drawing the setup token")?,
            ),
            dashboard: Arc::new(http::DashboardState::new(config, store.clone())),
        };
        // After the recorder is installed (by `metrics_handle` above).
        report_installations(&store).await;
        let orchestrator = build_orchestrator(config, &store, &tuning).await?;
        let lease = std::time::Duration::from_secs(config.storage.lease_secs.max(1));
        let processor = Arc::new(
            InboxProcessor::new(store.clone(), inbox, retry, orchestrator.clone())
                .with_lease(lease),
        );
        Ok(Self {
            store,
            state,
            processor,
            orchestrator,
            webhook_path: config.server.webhook_path.clone(),
            connections: tuning.connections,
            metrics_apart: config.server.metrics_listen.is_some(),
            retention: Retention::days(
                config.storage.retention_days,
                config.storage.failed_retention_days,
            ),
            poll_interval: std::time::Duration::from_secs(config.codegen.poll_interval_secs.max(1)),
            reconcile_interval: std::time::Duration::from_secs(
                config.orchestrator.reconcile_interval_secs.max(1),
            ),
        })
    }

    /// The HTTP routes of `server.listen`: all of them, or all but [`App::metrics_router`]'s
    /// when `server.metrics_listen` is set.
    pub fn router(&self) -> Router {
        if self.metrics_apart {
            http::public_router(self.state.clone(), &self.webhook_path)
        } else {
            http::router(self.state.clone(), &self.webhook_path)
        }
    }

    /// `/metrics` and `/readyz`, for `server.metrics_listen`.
    pub fn metrics_router(&self) -> Router {
        http::metrics_router(self.state.clone())
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
        let background = self.orchestrator.clone().map(|orchestrator| {
            tokio::spawn(run_periodic(
                orchestrator,
                self.poll_interval,
                self.reconcile_interval,
                stop_signal.clone(),
            ))
        });
        let pruning = tokio::spawn(run_retention(
            self.store.clone(),
            self.retention,
            stop_signal.clone(),
        ));
        let renewing = self.orchestrator.as_ref().map(|orchestrator| {
            tokio::spawn(crate::ownership::keep_renewing(
                orchestrator.ownership().clone(),
                stop_signal.clone(),
            ))
        });
        let processing = tokio::spawn(async move { processor.run(stop_signal).await });
        let served = http::serve(listener, self.router(), self.connections, shutdown)
            .await
            .context("serving HTTP");
        info!("no longer accepting connections; finishing the inbox round in progress");
        let _ = stop_processor.send(true);
        if let Err(err) = processing.await {
            warn!(error = %err, "the inbox processor ended abnormally");
        }
        if let Some(background) = background
            && let Err(err) = background.await
        {
            warn!(error = %err, "the periodic jobs ended abnormally");
        }
        if let Err(err) = pruning.await {
            warn!(error = %err, "the retention task ended abnormally");
        }
        if let Some(orchestrator) = &self.orchestrator {
            if let Some(renewing) = renewing {
                let _ = renewing.await;
            }
            // The other replicas take this one's installations at once.
            orchestrator.ownership().release().await;
        }
        self.store.close().await;
        info!("stopped");
        served
    }
}

/// Timings of the app; the defaults are production's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tuning {
    /// The door's size, time and memory limits.
    pub limits: DoorLimits,
    /// Header timeout, connection cap and shutdown deadline.
    pub connections: http::ConnectionLimits,
    /// Retries of a failing delivery.
    pub inbox_retry: RetryPolicy,
    /// Retries of a failing effect in the outbox (2, 4, 8 and 16 s by default).
    pub effect_retry: RetryPolicy,
    /// Retries of GitHub requests.
    pub github_retry: crate::github::retry::RetryPolicy,
    /// First and longest backoff between Codegen retries (`None`: the documented ones).
    pub codegen_backoff: Option<(std::time::Duration, std::time::Duration)>,
}

impl Tuning {
    /// Production's timings with the door and connection limits `server.*` sets.
    pub fn for_config(config: &Config) -> Self {
        Self {
            limits: DoorLimits::for_config(&config.server),
            connections: http::ConnectionLimits::for_config(&config.server),
            ..Self::default()
        }
    }
}

/// Exports whether each installation the store knows is suspended, so that the gauge shows
/// 0 before any change and a suspension from before a restart still shows 1.
async fn report_installations(store: &Store) {
    // The bot keeps a suspension as the setting `suspended:<id>` (engine/machine/reconcile.rs).
    let read = async {
        let suspended = store
            .settings_with_prefix("suspended:")
            .await?
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix("suspended:")?.parse().ok())
            .map(crate::domain::InstallationId)
            .collect();
        let known = store.installations_with_issues().await?;
        Ok::<_, crate::store::StoreError>((known, suspended))
    };
    match read.await {
        Ok((known, suspended)) => telemetry::report_installations(known, &suspended),
        Err(err) => warn!(error = %err, "reading the installations for /metrics failed"),
    }
}

/// The engine and its effects, when GitHub credentials are configured; the Codegen side
/// when Codegen is.
async fn build_orchestrator(
    config: &Config,
    store: &Store,
    tuning: &Tuning,
) -> anyhow::Result<Option<Orchestrator>> {
    let github = &config.github;
    if github.app_id.is_none() && github.token.is_none() {
        warn!(
            "no GitHub credentials (github.app_id with a private key, or github.token): \
             deliveries are stored and decoded but not acted on"
        );
        return Ok(None);
    }
    let app =
        GitHubApp::new(github, tuning.github_retry).context("setting up the GitHub client")?;
    let mut codegen_tuning = crate::codegen::CodegenTuning::for_config(&config.codegen);
    if let Some((base_delay, max_delay)) = tuning.codegen_backoff {
        codegen_tuning.base_delay = base_delay;
        codegen_tuning.max_delay = max_delay;
    }
    let codegen = Codegen::with_config_tuning(&config.codegen, codegen_tuning);
    let agents = match codegen {
        Ok(codegen) => Some(Agents::new(
            store.clone(),
            codegen,
            AgentSettings {
                run_timeout: std::time::Duration::from_secs(config.codegen.run_timeout_secs),
                launch_lease: std::time::Duration::from_secs(config.storage.lease_secs.max(1)),
            },
        )),
        Err(CodegenError::NotConfigured(what)) => {
            warn!(
                "Codegen is not configured ({what}): issues are tracked and queued, nothing is launched"
            );
            None
        }
        Err(err) => return Err(err).context("setting up the Codegen client"),
    };
    let ownership = crate::ownership::Ownership::new(
        store.clone(),
        std::time::Duration::from_secs(config.storage.lease_secs.max(1)),
    );
    let orchestrator = Orchestrator::new(
        EngineSettings::from_config(config),
        store.clone(),
        Arc::new(app),
        agents,
        tuning.effect_retry,
        ownership,
    );
    orchestrator
        .load()
        .await
        .context("loading the graph from the store")?;
    Ok(Some(orchestrator))
}

/// Follows runs every `poll` and reconciles at start-up and every `reconcile`, until
/// `stop` turns true.
async fn run_periodic(
    orchestrator: Orchestrator,
    poll: std::time::Duration,
    reconcile: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut next_reconcile = tokio::time::Instant::now();
    let mut next_poll = tokio::time::Instant::now() + poll;
    // Each replica follows the runs and reconciles the installations it acts on; when that
    // set changes, the installations taken up are reconciled at once.
    let mut reconciled_for = None;
    while !*stop.borrow() {
        let now = tokio::time::Instant::now();
        let generation = orchestrator.ownership().scope().1;
        if now >= next_reconcile || reconciled_for != Some(generation) {
            if let Err(err) = orchestrator.reconcile().await {
                warn!(error = %err, "reconciliation failed; trying again at the next interval");
            }
            reconciled_for = Some(generation);
            next_reconcile = tokio::time::Instant::now() + reconcile;
        } else if now >= next_poll {
            if let Err(err) = orchestrator.tick().await {
                warn!(error = %err, "following the agent runs failed; trying again shortly");
            }
            next_poll = tokio::time::Instant::now() + poll;
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_poll.min(next_reconcile)) => {}
            // A change of the installations acted on is seen within a second.
            () = tokio::time::sleep(std::time::Duration::from_secs(1)), if orchestrator.ownership().is_shared() => {}
            _ = stop.changed() => {}
        }
    }
}

/// How often deliveries past their retention are pruned.
const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60 * 60);
/// Deliveries deleted per write, and the pause between two: each batch holds SQLite's one
/// writer (and the webhooks queued behind it) for about 10 ms (BENCHMARKS.md).
const PRUNE_BATCH: u32 = 200;
/// The pause between two batches, for the writes queued meanwhile.
const PRUNE_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Prunes deliveries past their retention at start-up and every [`PRUNE_INTERVAL`], until
/// `stop` turns true. Every replica runs it: the store's deletes skip each other's rows.
async fn run_retention(store: Store, retention: Retention, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let now = crate::clock::now_millis();
        tokio::select! {
            pruned = store.prune_expired(retention, now, PRUNE_BATCH, PRUNE_PAUSE) => match pruned {
                Ok(0) => {}
                Ok(count) => info!(count, "pruned deliveries past their retention"),
                Err(err) => warn!(error = %err, "pruning deliveries failed; trying again in an hour"),
            },
            _ = stop.changed() => break,
        }
        tokio::select! {
            () = tokio::time::sleep(PRUNE_INTERVAL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Connections the `server.metrics_listen` port accepts at once.
const METRICS_CONNECTIONS: usize = 32;

/// `serve`: runs the app on `server.listen` until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let mut shutdown = ShutdownSignal::install();
    // A signal while the store migrates or a database is unreachable ends the start-up.
    let app = tokio::select! {
        app = App::build(&config) => app?,
        () = shutdown.received() => return Ok(()),
    };
    if config.github.webhook_secret.is_empty() {
        warn!(
            "no webhook secret configured (github.webhook_secret / GITHUB_WEBHOOK_SECRET): \
             every webhook will be answered 401 until one is set"
        );
    }
    let listener = http::bind(&config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    // Both ports stop accepting at the signal and drain side by side, so that the shutdown
    // deadline bounds the whole exit.
    let (signal, signalled) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.received().await;
        let _ = signal.send(true);
    });
    let until_signalled = |mut signalled: watch::Receiver<bool>| async move {
        // An error means the sender is gone, which only the signal's arrival does.
        let _ = signalled.wait_for(|stop| *stop).await;
    };
    let metrics = match &config.server.metrics_listen {
        Some(address) => {
            let listener = http::bind(address)
                .await
                .with_context(|| format!("listening on {address} (server.metrics_listen)"))?;
            info!(
                address = %listener.local_addr()?,
                "/metrics and /readyz are served here, not on server.listen"
            );
            // The same header timeout and shutdown deadline as the public port; a scraper
            // or two need few connections, and these come out of the files `http::serve`
            // keeps aside for the rest of the process.
            let limits = http::ConnectionLimits {
                max_connections: METRICS_CONNECTIONS,
                ..http::ConnectionLimits::for_config(&config.server)
            };
            let routes = app.metrics_router();
            let shutdown = until_signalled(signalled.clone());
            Some(tokio::spawn(async move {
                if let Err(err) = http::serve(listener, routes, limits, shutdown).await {
                    warn!(error = %err, "serving /metrics and /readyz failed");
                }
            }))
        }
        None => None,
    };
    let address = listener.local_addr()?;
    info!(
        %address,
        webhook_path = %config.server.webhook_path,
        storage = %crate::config::redact_url(&config.storage.url),
        "codegen-orchestrator is serving"
    );
    // The one secret a log line carries: whoever opens the link registers the App this
    // server runs as. It is drawn at each start and useless once an App is registered.
    if let Some(setup_url) = app.state.setup.setup_link(address) {
        info!(
            %setup_url,
            "no GitHub credentials: to register the GitHub App, open setup_url in a browser \
             (README, \"GitHub App registration\"); the link is new at each start and works \
             until an App is registered"
        );
    }
    let served = app.serve(listener, until_signalled(signalled)).await;
    if let Some(metrics) = metrics
        && let Err(err) = metrics.await
    {
        warn!(error = %err, "the /metrics listener ended abnormally");
    }
    served
}

/// Listens for SIGTERM (what Fly.io and Kubernetes send) and Ctrl-C from the moment it is
/// built: the handlers must be in place before the server says it accepts connections, or a
/// signal sent right after that line kills the process instead of draining it.
struct ShutdownSignal {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(stream) => Some(stream),
                Err(err) => {
                    warn!(error = %err, signal = name, "cannot listen for the signal");
                    None
                }
            };
            Self {
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves at the first SIGTERM or Ctrl-C.
    async fn received(&mut self) {
        #[cfg(unix)]
        {
            async fn next(stream: &mut Option<tokio::signal::unix::Signal>) {
                match stream {
                    Some(stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(&mut self.interrupt) => info!("Ctrl-C received; shutting down"),
                () = next(&mut self.terminate) => info!("SIGTERM received; shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(err) = tokio::signal::ctrl_c().await {
                warn!(error = %err, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            info!("Ctrl-C received; shutting down");
        }
    }
}
