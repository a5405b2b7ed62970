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

/// The process-wide Prometheus recorder; installed on first use, with every family of
/// [`FAMILIES`] described and the series whose labels are known registered at zero, so that
/// a fresh start already shows what a dashboard or an alert will query.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed, which this crate never does.
            let _ = metrics::set_global_recorder(recorder);
            describe_families();
            register_known_series();
            handle
        })
        .clone()
}

/// The Prometheus text of `/metrics`. The exporter writes a family only once it has a
/// series; a family whose labels come only with its first sample (a GitHub call's status,
/// an installation's id) is still announced, by its `# HELP` and `# TYPE` lines alone.
pub fn render_metrics(handle: &PrometheusHandle) -> String {
    let mut text = handle.render();
    for family in FAMILIES {
        if !text.contains(&format!("# TYPE {} ", family.name)) {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n\n",
                name = family.name,
                help = family.help,
                kind = family.kind.as_str(),
            ));
        }
    }
    text
}

/// The kind of a metric family, as its `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only ever grows.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations with their count, sum and quantiles (the exporter's histograms).
    Summary,
}

impl Kind {
    /// The name on the `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Summary => "summary",
        }
    }
}

/// One metric family of `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// Its name, from [`names`].
    pub name: &'static str,
    /// Counter, gauge or summary.
    pub kind: Kind,
    /// The `# HELP` text.
    pub help: &'static str,
}

/// Every family `/metrics` exports (the README's HTTP endpoints table lists the same; a test
/// keeps them in step).
pub const FAMILIES: &[Family] = &[
    Family {
        name: names::WEBHOOK_DELIVERIES,
        kind: Kind::Counter,
        help: "Webhook requests answered, by event and outcome.",
    },
    Family {
        name: names::DELIVERIES_PROCESSED,
        kind: Kind::Counter,
        help: "Stored deliveries processed, by event and outcome.",
    },
    Family {
        name: names::PROCESSING_LATENCY,
        kind: Kind::Summary,
        help: "Seconds from a delivery's arrival to the end of its processing, by event.",
    },
    Family {
        name: names::INBOX_DEPTH,
        kind: Kind::Gauge,
        help: "Deliveries waiting in the inbox.",
    },
    Family {
        name: names::INBOX_OLDEST_AGE,
        kind: Kind::Gauge,
        help: "Seconds since the oldest waiting delivery arrived (0 when none waits).",
    },
    Family {
        name: names::INBOX_FAILED,
        kind: Kind::Gauge,
        help: "Deliveries parked as failed after their last attempt.",
    },
    Family {
        name: names::ISSUES,
        kind: Kind::Gauge,
        help: "Managed issues by state.",
    },
    Family {
        name: names::RUNS,
        kind: Kind::Gauge,
        help: "Latest agent run of each issue, by state.",
    },
    Family {
        name: names::GITHUB_CALLS,
        kind: Kind::Counter,
        help: "Requests to GitHub, by method and status.",
    },
    Family {
        name: names::GITHUB_RATE_LIMIT_REMAINING,
        kind: Kind::Gauge,
        help: "GitHub's x-ratelimit-remaining, by installation and resource.",
    },
    Family {
        name: names::CODEGEN_CALLS,
        kind: Kind::Counter,
        help: "Requests to Codegen, by method and status.",
    },
    Family {
        name: names::RUNS_LAUNCHED,
        kind: Kind::Counter,
        help: "Agent runs launched.",
    },
    Family {
        name: names::RUNS_ENDED,
        kind: Kind::Counter,
        help: "Agent runs ended, by outcome.",
    },
    Family {
        name: names::LAUNCH_FAILURES,
        kind: Kind::Counter,
        help: "Launches that failed before a run existed, by reason.",
    },
    Family {
        name: names::INSTALLATION_SUSPENDED,
        kind: Kind::Gauge,
        help: "1 while an installation is suspended (nothing is launched for it), else 0.",
    },
];

/// The label values the code records, where they are known before the first sample.
pub mod labels {
    /// `outcome` of [`super::names::WEBHOOK_DELIVERIES`] (set in `http/webhook.rs`).
    pub const WEBHOOK_OUTCOMES: &[&str] = &[
        "accepted",
        "duplicate",
        "ignored",
        "unauthorized",
        "bad_request",
        "unsupported_media_type",
        "too_large",
        "timeout",
        "over_budget",
        "unavailable",
    ];
    /// The `event` label of a delivery whose event the app does not handle.
    pub const OTHER_EVENT: &str = "other";
    /// `outcome` of [`super::names::DELIVERIES_PROCESSED`] (set in `processor.rs`).
    pub const PROCESSED_OUTCOMES: &[&str] = &["processed", "ignored", "retry", "failed"];
    /// `reason` of [`super::names::LAUNCH_FAILURES`] (set in `agents.rs`).
    pub const LAUNCH_FAILURE_REASONS: &[&str] = &["quota", "rejected", "unavailable"];
}

fn describe_families() {
    for family in FAMILIES {
        match family.kind {
            Kind::Counter => metrics::describe_counter!(family.name, family.help),
            Kind::Gauge => metrics::describe_gauge!(family.name, family.help),
            Kind::Summary => metrics::describe_histogram!(family.name, family.help),
        }
    }
}

/// Registers at zero every series whose labels are known in advance, so that `rate()` and
/// alerts see a 0 before the first event rather than no series. Values already recorded are
/// kept (adding zero), since tests start several apps in one process.
fn register_known_series() {
    use crate::engine::status::WorkState;
    use crate::store::RunState;

    let events = crate::events::SUPPORTED_EVENTS.iter().copied();
    for event in events.clone().chain([labels::OTHER_EVENT]) {
        for outcome in labels::WEBHOOK_OUTCOMES {
            metrics::counter!(names::WEBHOOK_DELIVERIES, "event" => event, "outcome" => *outcome)
                .increment(0);
        }
    }
    for event in events {
        for outcome in labels::PROCESSED_OUTCOMES {
            metrics::counter!(names::DELIVERIES_PROCESSED, "event" => event, "outcome" => *outcome)
                .increment(0);
        }
    }
    // The latency summary is left out: an empty one shows quantiles of 0 s, which a graph
    // would draw as instant processing.
    for gauge in [
        names::INBOX_DEPTH,
        names::INBOX_FAILED,
        names::INBOX_OLDEST_AGE,
    ] {
        metrics::gauge!(gauge).increment(0.0);
    }
    for state in WorkState::ALL {
        metrics::gauge!(names::ISSUES, "state" => state.name()).increment(0.0);
    }
    for state in RunState::ALL {
        metrics::gauge!(names::RUNS, "state" => state.as_str()).increment(0.0);
    }
    metrics::counter!(names::RUNS_LAUNCHED).increment(0);
    let ended = [
        RunState::Succeeded,
        RunState::Failed,
        RunState::TimedOut,
        RunState::Cancelled,
    ];
    for ended in ended {
        metrics::counter!(names::RUNS_ENDED, "outcome" => ended.as_str()).increment(0);
    }
    for reason in labels::LAUNCH_FAILURE_REASONS {
        metrics::counter!(names::LAUNCH_FAILURES, "reason" => *reason).increment(0);
    }
}

/// Sets [`names::INSTALLATION_SUSPENDED`] for the installations known at start: 1 for
/// each of `suspended`, 0 for the others of `known`.
pub fn report_installations(
    known: impl IntoIterator<Item = crate::domain::InstallationId>,
    suspended: &std::collections::BTreeSet<crate::domain::InstallationId>,
) {
    let known: std::collections::BTreeSet<_> = known.into_iter().collect();
    for id in known.union(suspended) {
        let value = if suspended.contains(id) { 1.0 } else { 0.0 };
        metrics::gauge!(names::INSTALLATION_SUSPENDED, "installation" => id.0.to_string())
            .set(value);
    }
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
