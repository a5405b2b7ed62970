//! Configuration: `config.yaml` (or built-in defaults), then environment overrides, then
//! validation. Every error names where the bad value came from, the key and the problem.

mod readiness;
mod secret;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

pub use crate::engine::UnblockOn;

pub use readiness::check_config_report;
pub use secret::{REDACTED, Secret, SecretList};

/// The file read when `--config` is not given; built-in defaults apply when it is absent.
pub const DEFAULT_CONFIG_FILE: &str = "config.yaml";

/// Where `/setup` writes the GitHub App's credentials; read at start when it exists, for
/// the `github.*` keys that are not set otherwise.
pub const APP_FILE: &str = "data/github-app.yaml";

/// Prefix of the generic environment override: `CODEGEN_ORCHESTRATOR__CODEGEN__POLL_INTERVAL_SECS`
/// sets `codegen.poll_interval_secs`. Any key can be set this way.
pub const ENV_PREFIX: &str = "CODEGEN_ORCHESTRATOR__";

/// The environment variables with short names, and the key each one sets. `PORT` is
/// handled apart because it sets only the port of `server.listen`.
const NAMED_ENV_VARS: &[(&str, &str)] = &[
    ("GITHUB_API_URL", "github.api_url"),
    ("GITHUB_APP_ID", "github.app_id"),
    ("GITHUB_PRIVATE_KEY", "github.private_key"),
    ("GITHUB_PRIVATE_KEY_PATH", "github.private_key_path"),
    ("GITHUB_WEBHOOK_SECRET", "github.webhook_secret"),
    ("GITHUB_TOKEN", "github.token"),
    ("CODEGEN_API_URL", "codegen.api_url"),
    ("CODEGEN_ORG_ID", "codegen.org_id"),
    ("CODEGEN_API_TOKEN", "codegen.api_token"),
    ("DATABASE_URL", "storage.url"),
];

/// Keys whose environment values are always taken as text, never as numbers or booleans.
const SECRET_KEYS: &[&str] = &[
    "github.private_key",
    "github.webhook_secret",
    "github.token",
    "codegen.api_token",
];

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
    /// Content-creating requests (comments, labels, reactions, mutations) per minute and
    /// installation: GitHub's secondary limit is 80.
    pub writes_per_minute: u32,
    /// The same per hour: GitHub's secondary limit is 500.
    pub writes_per_hour: u32,
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
            writes_per_minute: 80,
            writes_per_hour: 500,
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
    /// status comment being posted) holds before another worker may take over, after a crash.
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

/// GitHub can redeliver a delivery (by hand or through the API) for 3 days; one pruned
/// sooner would be processed again when redelivered, since its id would be unknown.
const MIN_RETENTION_DAYS: u32 = 3;

/// Where the configuration was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// This file.
    File(PathBuf),
    /// No file: the default file was absent, built-in defaults apply.
    Defaults,
}

/// A configuration with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The effective, validated configuration.
    pub config: Config,
    /// Where it was read from.
    pub source: ConfigSource,
}

/// A configuration that cannot be used, described for the person who wrote it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{}: not valid YAML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's description, with line and column.
        message: String,
    },
    /// A key has a value that cannot be used.
    #[error("{origin}: key `{key}`: {problem}")]
    Invalid {
        /// The file or environment variable the value came from.
        origin: String,
        /// The dotted key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The process environment, or any other source of variables (tests pass a map).
pub type Env = BTreeMap<String, String>;

/// Reads the process environment.
pub fn process_env() -> Env {
    std::env::vars().collect()
}

/// Loads the configuration: `path` (or `config.yaml` when present), then `env`, then checks it.
pub fn load(path: Option<&Path>, env: &Env) -> Result<LoadedConfig, ConfigError> {
    let (source, document) = read_document(path)?;
    let origin_of_file = match &source {
        ConfigSource::File(path) => path.display().to_string(),
        ConfigSource::Defaults => "built-in defaults".to_owned(),
    };
    let mut document = document;
    merge_app_file(&mut document, Path::new(APP_FILE))?;
    let env_origins = apply_env_overrides(&mut document, env);
    let origin_of = |key: &str| {
        env_origins
            .iter()
            .find(|(k, _)| key == k.as_str() || key.starts_with(&format!("{k}.")))
            .map(|(_, var)| format!("environment variable {var}"))
            .unwrap_or_else(|| origin_of_file.clone())
    };
    let mut config: Config = serde_path_to_error::deserialize(document).map_err(|err| {
        let key = key_of(&err);
        ConfigError::Invalid {
            origin: origin_of(&key),
            key,
            problem: err.into_inner().to_string(),
        }
    })?;
    apply_port(&mut config, env)?;
    validate(&mut config).map_err(|(key, problem)| ConfigError::Invalid {
        origin: origin_of(key),
        key: key.to_owned(),
        problem,
    })?;
    Ok(LoadedConfig { config, source })
}

/// Fills `github.app_id`, `github.private_key` and `github.webhook_secret` from the file
/// `/setup` wrote, where the configuration file leaves them unset.
fn merge_app_file(document: &mut Value, path: &Path) -> Result<(), ConfigError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let invalid = |problem: String| ConfigError::Invalid {
        origin: path.display().to_string(),
        key: "github".into(),
        problem,
    };
    let app: Value = serde_yaml_ng::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let Some(Value::Mapping(from_app)) = app.get("github").cloned() else {
        return Err(invalid("no `github` section".into()));
    };
    let Value::Mapping(root) = document else {
        return Ok(());
    };
    let github = root
        .entry(Value::from("github"))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if let Value::Mapping(github) = github {
        for key in ["app_id", "private_key", "webhook_secret"] {
            let unset = github.get(key).is_none_or(Value::is_null);
            if unset && let Some(value) = from_app.get(key) {
                github.insert(Value::from(key), value.clone());
            }
        }
    }
    Ok(())
}

fn read_document(path: Option<&Path>) -> Result<(ConfigSource, Value), ConfigError> {
    let path = match path {
        Some(path) => path.to_owned(),
        None if Path::new(DEFAULT_CONFIG_FILE).exists() => PathBuf::from(DEFAULT_CONFIG_FILE),
        None => return Ok((ConfigSource::Defaults, Value::Mapping(Mapping::new()))),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Unreadable {
        path: path.clone(),
        source,
    })?;
    let document: Value = serde_yaml_ng::from_str(&text).map_err(|err| ConfigError::Syntax {
        path: path.clone(),
        message: err.to_string(),
    })?;
    // An empty file (or one holding only comments) means "all defaults".
    let document = match document {
        Value::Null => Value::Mapping(Mapping::new()),
        other => other,
    };
    Ok((ConfigSource::File(path), document))
}

/// Writes every override found in `env` into the document; returns which keys came from
/// which variable, so that errors can name the variable instead of the file.
fn apply_env_overrides(document: &mut Value, env: &Env) -> Vec<(String, String)> {
    let mut origins = Vec::new();
    let generic = env.iter().filter_map(|(var, value)| {
        let key = var
            .strip_prefix(ENV_PREFIX)?
            .to_ascii_lowercase()
            .replace("__", ".");
        Some((key, var.as_str(), value))
    });
    let named = NAMED_ENV_VARS
        .iter()
        .filter_map(|(var, key)| Some(((*key).to_owned(), *var, env.get(*var)?)));
    // Named variables come last so that they win over the generic form.
    for (key, var, value) in generic.chain(named) {
        set_key(document, &key, env_value(&key, value));
        origins.push((key, var.to_owned()));
    }
    origins
}

/// An environment value as YAML would read it (`10` a number, `true` a boolean), except
/// for secrets, which stay text whatever they look like.
fn env_value(key: &str, raw: &str) -> Value {
    if SECRET_KEYS.contains(&key) {
        return Value::String(raw.to_owned());
    }
    match serde_yaml_ng::from_str::<Value>(raw) {
        Ok(scalar @ (Value::Number(_) | Value::Bool(_))) => scalar,
        _ => Value::String(raw.to_owned()),
    }
}

fn set_key(document: &mut Value, dotted_key: &str, value: Value) {
    let mut node = document;
    for part in dotted_key.split('.') {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else {
            unreachable!("just made a mapping")
        };
        node = map
            .entry(Value::String(part.to_owned()))
            .or_insert(Value::Null);
    }
    *node = value;
}

/// The dotted key an error is about (for an unknown field, the path ends with the field).
fn key_of(err: &serde_path_to_error::Error<serde_yaml_ng::Error>) -> String {
    err.path().to_string()
}

fn apply_port(config: &mut Config, env: &Env) -> Result<(), ConfigError> {
    let Some(port) = env.get("PORT") else {
        return Ok(());
    };
    let port: u16 = port.trim().parse().map_err(|_| ConfigError::Invalid {
        origin: "environment variable PORT".into(),
        key: "server.listen".into(),
        problem: format!("`{port}` is not a port number (1-65535)"),
    })?;
    let host = match config.server.listen.rsplit_once(':') {
        Some((host, _)) => host.to_owned(),
        None => config.server.listen.clone(),
    };
    config.server.listen = format!("{host}:{port}");
    Ok(())
}

/// Checks what types alone cannot; on failure returns the key and the problem.
fn validate(config: &mut Config) -> Result<(), (&'static str, String)> {
    validate_listen(&config.server.listen).map_err(|p| ("server.listen", p))?;
    if !config.server.webhook_path.starts_with('/') {
        return Err(("server.webhook_path", "must start with `/`".into()));
    }
    validate_door(&config.server)?;
    validate_http_url(&config.github.api_url).map_err(|p| ("github.api_url", p))?;
    validate_http_url(&config.codegen.api_url).map_err(|p| ("codegen.api_url", p))?;
    load_private_key(&mut config.github)?;
    if config.github.app_id.is_some() != config.github.private_key.is_some() {
        let problem = if config.github.app_id.is_some() {
            "a GitHub App needs its private key: set github.private_key or github.private_key_path"
        } else {
            "a private key is set but github.app_id is not"
        };
        return Err(("github.app_id", problem.into()));
    }
    if config.codegen.max_concurrent_agents == 0 {
        return Err(("codegen.max_concurrent_agents", "must be at least 1".into()));
    }
    if config.codegen.poll_interval_secs == 0 {
        return Err(("codegen.poll_interval_secs", "must be at least 1".into()));
    }
    if config.orchestrator.trigger_label.trim().is_empty() {
        return Err(("orchestrator.trigger_label", "must not be empty".into()));
    }
    if !config.orchestrator.command.starts_with('/') || config.orchestrator.command.len() < 2 {
        return Err((
            "orchestrator.command",
            "must be a slash command such as `/codegen`".into(),
        ));
    }
    validate_storage_url(&config.storage.url).map_err(|p| ("storage.url", p))?;
    validate_retention(&config.storage)?;
    if let Some(metrics_listen) = &config.server.metrics_listen {
        validate_listen(metrics_listen).map_err(|p| ("server.metrics_listen", p))?;
        // Port 0 (any free port, as tests use) is the one address two listeners can share.
        if *metrics_listen == config.server.listen && !metrics_listen.ends_with(":0") {
            return Err((
                "server.metrics_listen",
                "is the same address as server.listen: set another one, or null to serve \
                 /metrics and /readyz on server.listen"
                    .into(),
            ));
        }
    }
    Ok(())
}

fn validate_retention(storage: &StorageConfig) -> Result<(), (&'static str, String)> {
    if storage.retention_days < MIN_RETENTION_DAYS {
        return Err((
            "storage.retention_days",
            format!(
                "must be at least {MIN_RETENTION_DAYS}: GitHub can redeliver a delivery for \
                 {MIN_RETENTION_DAYS} days, and one pruned sooner would be processed again"
            ),
        ));
    }
    if storage.failed_retention_days < storage.retention_days {
        return Err((
            "storage.failed_retention_days",
            format!(
                "must be at least storage.retention_days ({}): failed deliveries are kept \
                 longer than handled ones",
                storage.retention_days
            ),
        ));
    }
    Ok(())
}

/// The smallest `server.body_budget_bytes` (30 MiB): the seven eighths large bodies may
/// use must hold one body of GitHub's largest size (25 MiB).
const MIN_BODY_BUDGET_BYTES: u64 = 30 << 20;

fn validate_door(server: &ServerConfig) -> Result<(), (&'static str, String)> {
    if server.body_budget_bytes < MIN_BODY_BUDGET_BYTES {
        return Err((
            "server.body_budget_bytes",
            format!(
                "must be at least {MIN_BODY_BUDGET_BYTES} (30 MiB): an eighth is kept for \
                 bodies under 1 MiB and the rest must hold one 25 MiB delivery"
            ),
        ));
    }
    if server.max_connections == 0 {
        return Err(("server.max_connections", "must be at least 1".into()));
    }
    if server.header_timeout_secs == 0 {
        return Err(("server.header_timeout_secs", "must be at least 1".into()));
    }
    Ok(())
}

fn validate_listen(listen: &str) -> Result<(), String> {
    let problem = || format!("`{listen}` is not a host:port address");
    let (host, port) = listen.rsplit_once(':').ok_or_else(problem)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(problem());
    }
    Ok(())
}

fn validate_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(format!("`{url}` is not an http(s) URL")),
    }
}

fn validate_storage_url(url: &str) -> Result<(), String> {
    if url.starts_with("sqlite:") {
        Ok(())
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // Parsed as the store will parse it, so that a bad port or `sslmode` is reported
        // by `check-config` rather than at the first connection. sqlx's messages name the
        // parameter, never the password.
        <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
            .map(drop)
            .map_err(|err| {
                format!(
                    "`{}` is not a usable PostgreSQL URL: {err}",
                    redact_url(url)
                )
            })
    } else {
        Err(format!(
            "`{}` is neither sqlite://... nor postgres://...",
            redact_url(url)
        ))
    }
}

/// Reads `private_key_path` into `private_key` and checks that the key is an RSA key in PEM.
fn load_private_key(github: &mut GithubConfig) -> Result<(), (&'static str, String)> {
    if github.private_key.is_none()
        && let Some(path) = &github.private_key_path
    {
        let pem = std::fs::read_to_string(path).map_err(|err| {
            (
                "github.private_key_path",
                format!("cannot read {}: {err}", path.display()),
            )
        })?;
        github.private_key = Some(Secret::new(pem));
    }
    if let Some(pem) = &github.private_key {
        jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|_| {
            let key = if github.private_key_path.is_some() {
                "github.private_key_path"
            } else {
                "github.private_key"
            };
            (
                key,
                "not an RSA private key in PEM format (-----BEGIN RSA PRIVATE KEY-----)".into(),
            )
        })?;
    }
    Ok(())
}

/// A URL with any password replaced, for printing: the one in the user part and a
/// `password=` query parameter (both forms PostgreSQL URLs accept).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    // The last `@` ends the user part, so that a password holding an unescaped `@` or `/`
    // (which makes the URL invalid, and so gets printed in the error) is still hidden.
    let location = match location.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{user}:{REDACTED}@{host}")
        }
        _ => location.to_owned(),
    };
    let Some(query) = query else {
        return format!("{scheme}://{location}");
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                format!("{key}={REDACTED}")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{scheme}://{location}?{}", query.join("&"))
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
