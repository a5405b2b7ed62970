//! The checks the configuration's types alone cannot make, each naming its key.

use super::{Config, GithubConfig, Secret, ServerConfig, StorageConfig, redact_url};

/// Checks what types alone cannot; on failure returns the key and the problem.
pub(super) fn validate(config: &mut Config) -> Result<(), (&'static str, String)> {
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
    match (&config.github.client_id, &config.github.client_secret) {
        (Some(_), None) => {
            return Err((
                "github.client_secret",
                "dashboard sign-in needs the App's client secret with its client id".into(),
            ));
        }
        (None, Some(_)) => {
            return Err((
                "github.client_id",
                "a client secret is set but the App's client id is not".into(),
            ));
        }
        _ => {}
    }
    if config.github.request_timeout_secs == 0 {
        return Err(("github.request_timeout_secs", "must be at least 1".into()));
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

/// GitHub can redeliver a delivery (by hand or through the API) for 3 days; one pruned
/// sooner would be processed again when redelivered, since its id would be unknown.
const MIN_RETENTION_DAYS: u32 = 3;

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
