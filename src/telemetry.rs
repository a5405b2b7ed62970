//! Logs (tracing) and metrics (Prometheus text), set up once per process.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Starts logging: `RUST_LOG` sets the verbosity (default `info`), `LOG_FORMAT=json` prints
/// one JSON object per line instead of human-readable text. Logs go to stderr.
pub fn init_logging() {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // octocrab's own request tracing logs every failure at ERROR as `failed with error
    // client error (Connect)`; `github::GitHub::send` logs the same failure with its host and
    // cause, and retries it. octocrab is heard only when RUST_LOG names it.
    let names_octocrab = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("octocrab"));
    if !names_octocrab && let Ok(quiet) = "octocrab=off".parse() {
        filter = filter.add_directive(quiet);
    }
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Colours only for a terminal; a log file or a platform's log collector gets plain text.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(std::io::stderr);
    // A second call (tests start several apps in one process) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// The process-wide Prometheus recorder; installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed, which this crate never does.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Metric names, in one place so that dashboards and the code agree.
pub mod names {
    /// Counter: webhook requests by `event` and `outcome`.
    pub const WEBHOOK_DELIVERIES: &str = "orchestrator_webhook_deliveries_total";
    /// Counter: stored deliveries processed, by `event` and `outcome`.
    pub const DELIVERIES_PROCESSED: &str = "orchestrator_deliveries_processed_total";
    /// Histogram: seconds from a delivery's arrival to the end of its processing.
    pub const PROCESSING_LATENCY: &str = "orchestrator_delivery_processing_latency_seconds";
    /// Gauge: deliveries waiting in the inbox.
    pub const INBOX_DEPTH: &str = "orchestrator_inbox_depth";
    /// Gauge: deliveries parked as failed after their last attempt.
    pub const INBOX_FAILED: &str = "orchestrator_inbox_failed";
    /// Gauge: seconds since the oldest waiting delivery arrived (0 when none waits).
    pub const INBOX_OLDEST_AGE: &str = "orchestrator_inbox_oldest_age_seconds";
    /// Gauge: latest agent run of each issue, by `state`.
    pub const RUNS: &str = "orchestrator_runs";
    /// Gauge: managed issues by `state` (blocked, queued, running, done, failed).
    pub const ISSUES: &str = "orchestrator_issues";
    /// Counter: requests to GitHub by `method` and `status`.
    pub const GITHUB_CALLS: &str = "orchestrator_github_calls_total";
    /// Gauge: GitHub's `x-ratelimit-remaining` by `installation` and `resource`.
    pub const GITHUB_RATE_LIMIT_REMAINING: &str = "orchestrator_github_rate_limit_remaining";
    /// Counter: requests to Codegen by `method` and `status`.
    pub const CODEGEN_CALLS: &str = "orchestrator_codegen_calls_total";
    /// Counter: agent runs launched.
    pub const RUNS_LAUNCHED: &str = "orchestrator_runs_launched_total";
    /// Counter: agent runs ended, by `outcome` (succeeded, failed, timed_out, cancelled).
    pub const RUNS_ENDED: &str = "orchestrator_runs_ended_total";
    /// Counter: launches that failed before a run existed, by `reason`.
    pub const LAUNCH_FAILURES: &str = "orchestrator_launch_failures_total";
    /// Gauge: 1 while an `installation` is suspended (nothing is launched for it).
    pub const INSTALLATION_SUSPENDED: &str = "orchestrator_installation_suspended";
}

/// Counts one answered Codegen request.
pub fn record_codegen_call(method: &str, status: u16) {
    metrics::counter!(names::CODEGEN_CALLS, "method" => method.to_owned(), "status" => status.to_string())
        .increment(1);
}
