//! Configuration: `config.yaml` (or built-in defaults), then environment overrides, then
//! validation. Every error names where the bad value came from, the key and the problem.
//!
//! This file holds the configuration's types and defaults; reading them is in `load`, the
//! checks types alone cannot make in `validate`, secrets and redaction in `secret`.

mod load;
mod readiness;
mod secret;
mod validate;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::engine::UnblockOn;

pub use load::{ConfigError, ConfigSource, Env, LoadedConfig, load, process_env};
pub use readiness::check_config_report;
pub use secret::{REDACTED, Secret, SecretList, redact_url};

/// The file read when `--config` is not given; built-in defaults apply when it is absent.
pub const DEFAULT_CONFIG_FILE: &str = "config.yaml";

/// Where `/setup` writes the GitHub App's credentials; read at start when it exists, for
/// the `github.*` keys that are not set otherwise.
pub const APP_FILE: &str = "data/github-app.yaml";

/// Prefix of the generic environment override: `CODEGEN_ORCHESTRATOR__CODEGEN__POLL_INTERVAL_SECS`
/// sets `codegen.poll_interval_secs`. Any key can be set this way.
pub const ENV_PREFIX: &str = "CODEGEN_ORCHESTRATOR__";

/// The whole configuration, as `config.example.yaml` documents it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP server.
    pub server: ServerConfig,
    /// How to reach and authenticate with GitHub.
    pub github: GithubConfig,
    /// How to reach and authenticate with Codegen, and how many agents to run.
    pub codegen: CodegenConfig,
    /// The bot's vocabulary on GitHub.
    pub orchestrator: OrchestratorConfig,
    /// The Projects v2 field the bot keeps up to date.
    pub projects: ProjectsConfig,
    /// Where state is kept.
    pub storage: StorageConfig,
}

/// `server.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `host:port` to listen on.
    pub listen: String,
    /// Path GitHub posts webhooks to.
    pub webhook_path: String,
    /// The address GitHub reaches this server at (`https://bot.example.com`), for the App
    /// manifest `/setup` posts; without it the request's own host is used.
    pub public_url: Option<String>,
    /// `host:port` serving `/metrics` and `/readyz` instead of `listen` (which then does not
    /// serve them); `None`: both on `listen`.
    pub metrics_listen: Option<String>,
    /// Bytes of webhook bodies held at once; requests beyond it are answered 503 with
    /// `Retry-After` before their body is read. An eighth is kept for bodies under 1 MiB.
    pub body_budget_bytes: u64,
    /// Connections open at once (lowered to what the open-files limit leaves room for);
    /// above it, new connections wait to be accepted.
    pub max_connections: u32,
    /// Seconds a client has to send a request's headers; also how long an idle
    /// keep-alive connection stays open.
    pub header_timeout_secs: u64,
    /// Seconds requests in flight may take after SIGTERM before their connections are
    /// dropped; below the platform's grace period (Fly.io gives 30).
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:3000".into(),
            webhook_path: "/webhook".into(),
            public_url: None,
            metrics_listen: None,
            body_budget_bytes: 128 << 20,
            max_connections: 1024,
            header_timeout_secs: 10,
            shutdown_timeout_secs: 20,
        }
    }
}

/// `github.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubConfig {
    /// REST base URL; a GitHub Enterprise Server `https://host/api/v3` works too.
    pub api_url: String,
    /// The GitHub App's id.
    pub app_id: Option<u64>,
    /// The App's private key, PEM text. Filled from `private_key_path` when that is set.
    pub private_key: Option<Secret>,
    /// A file holding the App's private key.
    pub private_key_path: Option<PathBuf>,
    /// Webhook secret(s); a list while rotating.
    pub webhook_secret: SecretList,
    /// A token for single-repository use without an App.
    pub token: Option<Secret>,
    /// The App's OAuth client id, for signing in to `/dashboard` with GitHub.
    pub client_id: Option<String>,
    /// The App's OAuth client secret (with `client_id`).
    pub client_secret: Option<Secret>,
    /// Content-creating requests (comments, labels, reactions, mutations) per minute and
    /// installation: GitHub's secondary limit is 80.
    pub writes_per_minute: u32,
    /// The same per hour: GitHub's secondary limit is 500.
    pub writes_per_hour: u32,
    /// How long one request may wait for GitHub (to connect, and between the bytes of its
    /// answer) before it counts as failed and is retried.
    pub request_timeout_secs: u64,
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            api_url: "https://api.github.com".into(),
            app_id: None,
            private_key: None,
            private_key_path: None,
            webhook_secret: SecretList::default(),
            token: None,
            client_id: None,
            client_secret: None,
            writes_per_minute: 80,
            writes_per_hour: 500,
            request_timeout_secs: 30,
        }
    }
}

/// `codegen.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodegenConfig {
    /// Codegen API base URL.
    pub api_url: String,
    /// The Codegen organisation runs are created in.
    pub org_id: Option<u64>,
    /// Codegen API token.
    pub api_token: Option<Secret>,
    /// Agents running at once per installation.
    pub max_concurrent_agents: u32,
    /// Seconds between polls of running agents.
    pub poll_interval_secs: u64,
    /// Seconds after which a run counts as timed out.
    pub run_timeout_secs: u64,
    /// Retries of a transient failure before giving up.
    pub retry_attempts: u32,
    /// Run creations per minute the client allows itself (Codegen documents 10).
    pub creations_per_minute: u32,
    /// Agents running at once in any one repository; `None`: only the installation cap.
    pub max_agents_per_repository: Option<u32>,
    /// New attempts made on their own after an agent run reports failure (0: only
    /// `/codegen retry` starts another).
    pub retry_failed_runs: u32,
}

impl Default for CodegenConfig {
    fn default() -> Self {
        Self {
            api_url: "https://api.codegen.com".into(),
            org_id: None,
            api_token: None,
            max_concurrent_agents: 10,
            poll_interval_secs: 30,
            run_timeout_secs: 3600,
            retry_attempts: 3,
            creations_per_minute: 10,
            max_agents_per_repository: None,
            retry_failed_runs: 0,
        }
    }
}

/// `orchestrator.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrchestratorConfig {
    /// The label that puts an issue under the bot's management.
    pub trigger_label: String,
    /// Prefix of the state labels (`codegen:running`, ...).
    pub label_prefix: String,
    /// The comment command word.
    pub command: String,
    /// Seconds between reconciliation passes.
    pub reconcile_interval_secs: u64,
    /// When a blocker stops blocking: `issue_closed` (closed as completed),
    /// `agent_completed` (its agent run succeeded, before anything is merged) or
    /// `pr_opened` (its pull request is open: dependents are stacked on its branch).
    pub unblock_on: UnblockOn,
    /// Merge a Codegen pull request once GitHub reports it mergeable with every check
    /// passed.
    pub auto_merge: bool,
    /// Whether closing (or unlabelling) a managed issue stops its running agent.
    pub cancel_on_close: bool,
    /// The agent's prompt; see `config.example.yaml` for the placeholders.
    pub prompt_template: String,
    /// Slugs of the GitHub Apps whose trigger labels and commands count as a writer's
    /// (for example Codegen's own App); every other bot is refused.
    pub trusted_apps: Vec<String>,
    /// What GitHub's sub-issues of a managed issue are: managed too, blockers only, or
    /// nothing to the bot.
    pub sub_issues: SubIssues,
    /// What becomes of a parent issue once its sub-issues are done.
    pub parents: Parents,
    /// An issue whose run failed while a blocker discovered during that run was open gets
    /// one new attempt, without a command, once that blocker is done.
    pub retry_after_discovered_blocker: bool,
    /// Write the dependencies declared in issue text, labels and commands to GitHub's
    /// native "blocked by" links (and remove those the bot wrote when they go).
    pub sync_native_dependencies: bool,
    /// The expected duration of an issue without an `estimate:` label in a repository
    /// without learned run durations yet, in minutes (written like a label's value:
    /// `45m`, `1h`, `1d`).
    #[serde(with = "estimate_text")]
    pub default_estimate: u64,
}

/// `orchestrator.default_estimate` as written: `<N>m|h|d`.
mod estimate_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(minutes: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        if minutes.is_multiple_of(60) {
            serializer.serialize_str(&format!("{}h", minutes / 60))
        } else {
            serializer.serialize_str(&format!("{minutes}m"))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        /// A bare number is minutes (`90`); text is written like a label's value (`90m`).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Minutes(u64),
            Text(String),
        }
        let text = match Written::deserialize(deserializer)? {
            Written::Minutes(0) => {
                return Err(D::Error::custom("`0` is not a duration like 45m, 2h or 1d"));
            }
            Written::Minutes(minutes) => return Ok(minutes),
            Written::Text(text) => text,
        };
        crate::engine::estimate_from_labels([format!("estimate:{text}").as_str()]).ok_or_else(
            || D::Error::custom(format!("`{text}` is not a duration like 45m, 2h or 1d")),
        )
    }
}

/// `orchestrator.sub_issues`: what the sub-issues of a managed issue are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubIssues {
    /// They block their parent and are managed too, when whoever attached them may start
    /// agents (write permission, or a trusted App).
    #[default]
    Manage,
    /// They block their parent, but only a label or a command puts them under management.
    BlockOnly,
    /// They are not the bot's concern.
    Ignore,
}

/// `orchestrator.parents`: what becomes of a parent issue once its sub-issues are done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parents {
    /// The parent is an umbrella: no agent of its own; it is closed as completed, with its
    /// sub-issues' pull requests in its status.
    #[default]
    CloseWhenDone,
    /// The parent's own agent runs last, with its sub-issues' pull requests in its prompt.
    RunAfterChildren,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        Self {
            trigger_label: "codegen".into(),
            label_prefix: "codegen:".into(),
            command: "/codegen".into(),
            reconcile_interval_secs: 600,
            unblock_on: UnblockOn::IssueClosed,
            cancel_on_close: true,
            auto_merge: false,
            prompt_template: crate::engine::prompt::DEFAULT_TEMPLATE.to_owned(),
            trusted_apps: Vec::new(),
            sub_issues: SubIssues::default(),
            parents: Parents::default(),
            retry_after_discovered_blocker: true,
            sync_native_dependencies: false,
            default_estimate: crate::engine::DEFAULT_ESTIMATE_MINUTES,
        }
    }
}

/// `projects.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectsConfig {
    /// Name of the single-select field set on project items.
    pub status_field: String,
    /// Option of that field for each state; a state without one leaves the field alone.
    pub status_options: StatusOptions,
}

impl Default for ProjectsConfig {
    fn default() -> Self {
        Self {
            status_field: "Status".into(),
            status_options: StatusOptions::default(),
        }
    }
}

/// `projects.status_options.*`: Todo / In Progress / Done are the options of GitHub's
/// project template; add Blocked and Failed to the board's Status field, or set them to
/// `null` to leave the field alone in those states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusOptions {
    /// Waiting for blockers.
    pub blocked: Option<String>,
    /// Ready, waiting for a free agent.
    pub queued: Option<String>,
    /// An agent is working on it.
    pub running: Option<String>,
    /// The agent finished.
    pub done: Option<String>,
    /// The agent failed.
    pub failed: Option<String>,
}

impl StatusOptions {
    /// The option for a state (by its name: blocked, queued, running, done, failed).
    pub fn for_state(&self, state: &str) -> Option<&str> {
        match state {
            "blocked" => self.blocked.as_deref(),
            "queued" => self.queued.as_deref(),
            "running" => self.running.as_deref(),
            "done" => self.done.as_deref(),
            "failed" => self.failed.as_deref(),
            _ => None,
        }
    }
}

impl Default for StatusOptions {
    fn default() -> Self {
        Self {
            blocked: Some("Blocked".into()),
            queued: Some("Todo".into()),
            running: Some("In Progress".into()),
            done: Some("Done".into()),
            failed: Some("Failed".into()),
        }
    }
}

/// `storage.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite://relative/path.db`, `sqlite:///absolute/path.db` (one process), or
    /// `postgres://user:password@host/db` (also `postgresql://`, with `?sslmode=...`),
    /// which several replicas may share.
    pub url: String,
    /// Seconds a worker's claim (a delivery being processed, a launch being created, a
    /// status comment being posted) holds before another worker may take over, after a crash;
    /// with several replicas, also how long an installation's lease holds unrenewed.
    pub lease_secs: u64,
    /// Days a processed or ignored delivery (and its body) is kept after it was handled.
    pub retention_days: u32,
    /// Days a failed delivery is kept after it was parked; at least `retention_days`.
    pub failed_retention_days: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/orchestrator.db".into(),
            lease_secs: 300,
            retention_days: 14,
            failed_retention_days: 60,
        }
    }
}

impl GithubConfig {
    /// GitHub's web address with its scheme: `https://github.com` for github.com, the
    /// server's own address for GitHub Enterprise Server.
    pub fn web_url(&self) -> String {
        let scheme = self
            .api_url
            .split_once("://")
            .map_or("https", |(scheme, _)| scheme);
        format!("{scheme}://{}", self.web_host())
    }

    /// The web host issue links point to: `github.com` for the public API, the Enterprise
    /// host for `https://host/api/v3`.
    pub fn web_host(&self) -> String {
        let without_scheme = self
            .api_url
            .split_once("://")
            .map_or(self.api_url.as_str(), |(_, rest)| rest);
        let host = without_scheme.split('/').next().unwrap_or_default();
        if host.eq_ignore_ascii_case("api.github.com") {
            "github.com".to_owned()
        } else {
            host.to_owned()
        }
    }
}

impl Config {
    /// The effective configuration as YAML, secrets and database passwords redacted.
    pub fn to_redacted_yaml(&self) -> String {
        let mut shown = self.clone();
        shown.storage.url = redact_url(&shown.storage.url);
        serde_yaml_ng::to_string(&shown).unwrap_or_else(|err| format!("# cannot render: {err}\n"))
    }
}

#[cfg(test)]
mod tests;
