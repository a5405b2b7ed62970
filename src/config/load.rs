//! Reading the configuration: the file (or built-in defaults), the credentials `/setup`
//! saved, then the environment; every error names where its value came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::validate::validate;
use super::{APP_FILE, Config, DEFAULT_CONFIG_FILE, ENV_PREFIX};

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

/// Fills `github.app_id`, `github.private_key`, `github.webhook_secret`, `github.client_id`
/// and `github.client_secret` from the file
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
        for key in [
            "app_id",
            "private_key",
            "webhook_secret",
            "client_id",
            "client_secret",
        ] {
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

/// The environment variables with short names, and the key each one sets. `PORT` is
/// handled apart because it sets only the port of `server.listen`.
const NAMED_ENV_VARS: &[(&str, &str)] = &[
    ("GITHUB_API_URL", "github.api_url"),
    ("GITHUB_APP_ID", "github.app_id"),
    ("GITHUB_PRIVATE_KEY", "github.private_key"),
    ("GITHUB_PRIVATE_KEY_PATH", "github.private_key_path"),
    ("GITHUB_WEBHOOK_SECRET", "github.webhook_secret"),
    ("GITHUB_TOKEN", "github.token"),
    ("GITHUB_CLIENT_ID", "github.client_id"),
    ("GITHUB_CLIENT_SECRET", "github.client_secret"),
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
    "github.client_id",
    "github.client_secret",
    "codegen.api_token",
];

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
