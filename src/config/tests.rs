use std::io::Write;
use std::path::Path;

use super::*;

const TEST_KEY: &str = include_str!("../../tests/data/test-app-key.pem");

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let file = file_with(text);
    load(Some(file.path()), &env(vars)).map(|loaded| loaded.config)
}

#[test]
fn the_example_file_is_the_defaults() {
    let example = load(Some(Path::new("config.example.yaml")), &Env::new()).unwrap();
    let defaults = load_text("", &[]).unwrap();
    assert_eq!(
        example.config.to_redacted_yaml(),
        defaults.to_redacted_yaml()
    );
}

#[test]
fn defaults_match_the_design() {
    let config = load_text("# nothing but a comment\n", &[]).unwrap();
    assert_eq!(config.server.listen, "0.0.0.0:3000");
    assert_eq!(config.server.webhook_path, "/webhook");
    assert_eq!(config.github.api_url, "https://api.github.com");
    assert_eq!(config.codegen.api_url, "https://api.codegen.com");
    assert_eq!(config.codegen.max_concurrent_agents, 10);
    assert_eq!(config.orchestrator.trigger_label, "codegen");
    assert_eq!(config.orchestrator.label_prefix, "codegen:");
    assert_eq!(config.orchestrator.command, "/codegen");
    assert_eq!(config.projects.status_field, "Status");
    assert_eq!(config.storage.url, "sqlite://data/orchestrator.db");
    assert!(config.github.webhook_secret.is_empty());
}

#[test]
fn environment_overrides_the_file() {
    let config = load_text(
        "server:\n  listen: 127.0.0.1:8080\ncodegen:\n  org_id: 1\n",
        &[
            ("PORT", "9000"),
            ("CODEGEN_ORG_ID", "77"),
            ("CODEGEN_API_TOKEN", "12345"),
            ("GITHUB_WEBHOOK_SECRET", "true"),
            ("GITHUB_API_URL", "https://ghe.example.com/api/v3"),
            ("DATABASE_URL", "sqlite:///tmp/x.db"),
            ("CODEGEN_ORCHESTRATOR__CODEGEN__POLL_INTERVAL_SECS", "5"),
            (
                "CODEGEN_ORCHESTRATOR__PROJECTS__STATUS_OPTIONS__FAILED",
                "Blocked",
            ),
        ],
    )
    .unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:9000");
    assert_eq!(config.codegen.org_id, Some(77));
    // Secrets stay text even when they look like numbers or booleans.
    assert_eq!(config.codegen.api_token.unwrap().expose(), "12345");
    let secrets: Vec<_> = config.github.webhook_secret.iter().collect();
    assert_eq!(secrets[0].expose(), "true");
    assert_eq!(config.github.api_url, "https://ghe.example.com/api/v3");
    assert_eq!(config.storage.url, "sqlite:///tmp/x.db");
    assert_eq!(config.codegen.poll_interval_secs, 5);
    assert_eq!(
        config.projects.status_options.failed.as_deref(),
        Some("Blocked")
    );
}

#[test]
fn several_webhook_secrets_are_allowed_for_rotation() {
    let config = load_text("github:\n  webhook_secret: [new-one, old-one]\n", &[]).unwrap();
    assert_eq!(config.github.webhook_secret.iter().count(), 2);
}

#[test]
fn an_unknown_key_is_named_with_its_file() {
    let file = file_with("server:\n  listen: 0.0.0.0:3000\n  lisen: oops\n");
    let err = load(Some(file.path()), &Env::new())
        .unwrap_err()
        .to_string();
    let path = file.path().display().to_string();
    assert!(err.starts_with(&path), "{err}");
    assert!(err.contains("key `server.lisen`"), "{err}");
    assert!(err.contains("unknown field"), "{err}");

    let err = load_text("servr: {}\n", &[]).unwrap_err().to_string();
    assert!(err.contains("key `servr`"), "{err}");
}

#[test]
fn a_wrong_type_is_named_with_its_key() {
    let err = load_text("codegen:\n  max_concurrent_agents: ten\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("key `codegen.max_concurrent_agents`"), "{err}");
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn an_unknown_choice_names_the_key_and_the_choices() {
    let err = load_text("orchestrator:\n  unblock_on: merged\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("key `orchestrator.unblock_on`"), "{err}");
    assert!(
        err.contains("issue_closed") && err.contains("agent_completed"),
        "{err}"
    );
    let config = load_text("orchestrator:\n  unblock_on: agent_completed\n", &[]).unwrap();
    assert_eq!(config.orchestrator.unblock_on, UnblockOn::AgentCompleted);
}

#[test]
fn sub_issue_and_discovery_settings_read_from_the_file_and_the_environment() {
    let defaults = load_text("", &[]).unwrap().orchestrator;
    assert_eq!(defaults.sub_issues, super::SubIssues::Manage);
    assert_eq!(defaults.parents, super::Parents::CloseWhenDone);
    assert!(defaults.retry_after_discovered_blocker);
    assert!(!defaults.sync_native_dependencies);

    let config = load_text(
        "orchestrator:\n  sub_issues: block_only\n  parents: run_after_children\n  retry_after_discovered_blocker: false\n",
        &[(
            "CODEGEN_ORCHESTRATOR__ORCHESTRATOR__SYNC_NATIVE_DEPENDENCIES",
            "true",
        )],
    )
    .unwrap();
    assert_eq!(config.orchestrator.sub_issues, super::SubIssues::BlockOnly);
    assert_eq!(
        config.orchestrator.parents,
        super::Parents::RunAfterChildren
    );
    assert!(!config.orchestrator.retry_after_discovered_blocker);
    assert!(config.orchestrator.sync_native_dependencies);

    let err = load_text("orchestrator:\n  parents: sometimes\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("key `orchestrator.parents`"), "{err}");
    assert!(
        err.contains("close_when_done") && err.contains("run_after_children"),
        "{err}"
    );
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let err = load_text("", &[("CODEGEN_ORG_ID", "acme")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("environment variable CODEGEN_ORG_ID"),
        "{err}"
    );
    assert!(err.contains("codegen.org_id"), "{err}");
    let err = load_text("", &[("PORT", "http")]).unwrap_err().to_string();
    assert!(err.starts_with("environment variable PORT"), "{err}");
}

#[test]
fn broken_yaml_names_the_file_and_line() {
    let err = load_text("server:\n  listen: [unclosed\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not valid YAML"), "{err}");
    assert!(err.contains("line"), "{err}");
}

#[test]
fn an_unreadable_file_is_an_error_when_asked_for() {
    let err = load(Some(Path::new("/nonexistent/config.yaml")), &Env::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read configuration file /nonexistent/config.yaml"),
        "{err}"
    );
}

#[test]
fn a_missing_pem_file_is_named() {
    let err = load_text(
        "github:\n  app_id: 1\n  private_key_path: /nonexistent/key.pem\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("key `github.private_key_path`"), "{err}");
    assert!(err.contains("/nonexistent/key.pem"), "{err}");
}

#[test]
fn a_private_key_that_is_not_pem_is_refused_without_echoing_it() {
    let err = load_text(
        "",
        &[
            ("GITHUB_APP_ID", "1"),
            ("GITHUB_PRIVATE_KEY", "sekrit-not-a-key"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("environment variable GITHUB_PRIVATE_KEY"),
        "{err}"
    );
    assert!(err.contains("PEM"), "{err}");
    assert!(!err.contains("sekrit"), "{err}");
}

#[test]
fn an_app_needs_both_id_and_key() {
    let err = load_text("github:\n  app_id: 5\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("github.app_id") && err.contains("private key"),
        "{err}"
    );

    let key_file = file_with(TEST_KEY);
    let text = format!(
        "github:\n  app_id: 5\n  private_key_path: {}\n",
        key_file.path().display()
    );
    let config = load_text(&text, &[]).unwrap();
    assert!(config.github.private_key.is_some());
}

#[test]
fn redacted_output_hides_every_secret() {
    let key_file = file_with(TEST_KEY);
    let text = format!(
        "github:\n  app_id: 5\n  private_key_path: {}\n  webhook_secret: [whsec-one, whsec-two]\n  token: ghp-tok\n  client_id: Iv1.abc\n  client_secret: oauth-secret-value\ncodegen:\n  api_token: cg-tok\nstorage:\n  url: sqlite://data/x.db\n",
        key_file.path().display()
    );
    let config = load_text(&text, &[]).unwrap();
    let shown = config.to_redacted_yaml() + &format!("{config:?}");
    for secret in [
        "whsec-one",
        "whsec-two",
        "ghp-tok",
        "cg-tok",
        "PRIVATE KEY",
        "oauth-secret-value",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    assert!(shown.contains(REDACTED));
}

#[test]
fn database_passwords_are_redacted() {
    assert_eq!(
        redact_url("postgres://bot:hunter2@db:5432/x"),
        "postgres://bot:<redacted>@db:5432/x"
    );
    assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    assert_eq!(
        redact_url("postgresql://db/x?sslmode=require&password=hunter2"),
        "postgresql://db/x?sslmode=require&password=<redacted>"
    );
    // Unescaped `@` and `/` in a password make the URL invalid; it is still hidden.
    let shown = redact_url("postgres://bot:hun@ter/2@db/x");
    assert!(!shown.contains("hun") && !shown.contains("ter"), "{shown}");
}

#[test]
fn postgres_storage_urls_are_accepted_from_the_file_and_the_environment() {
    for url in [
        "postgres://bot:hunter2@db.internal:5432/orchestrator",
        "postgresql://bot:hunter2@db.internal/orchestrator?sslmode=require",
        "postgres://bot@10.0.0.5/orchestrator?sslmode=verify-full&application_name=bot",
        "postgresql:///orchestrator?host=/var/run/postgresql",
    ] {
        let config = load_text("", &[("DATABASE_URL", url)]).unwrap();
        assert_eq!(config.storage.url, url);
        assert!(!config.to_redacted_yaml().contains("hunter2"));
        let config = load_text(&format!("storage:\n  url: {url}\n"), &[]).unwrap();
        assert_eq!(config.storage.url, url);
    }
}

#[test]
fn a_bad_postgres_url_is_reported_without_its_password() {
    for (url, problem) in [
        ("postgres://bot:hunter2@db/x?sslmode=sometimes", "sslmode"),
        ("postgres://bot:hunter2@db:99999/x", "port"),
    ] {
        let err = load_text("", &[("DATABASE_URL", url)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("DATABASE_URL"), "{err}");
        assert!(err.contains("storage.url"), "{err}");
        assert!(err.to_lowercase().contains(problem), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    let err = load_text("storage:\n  url: mysql://db/x\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("neither sqlite"), "{err}");
}

#[test]
fn the_web_host_derives_from_the_api_url() {
    let mut github = GithubConfig::default();
    assert_eq!(github.web_host(), "github.com");
    github.api_url = "https://ghe.example.com/api/v3".into();
    assert_eq!(github.web_host(), "ghe.example.com");
}

#[test]
fn retention_and_the_metrics_address_have_defaults_and_overrides() {
    let config = load_text("", &[]).unwrap();
    assert_eq!(
        (
            config.storage.retention_days,
            config.storage.failed_retention_days
        ),
        (14, 60)
    );
    assert_eq!(config.server.metrics_listen, None);

    let config = load_text(
        "storage:\n  retention_days: 7\n",
        &[
            (
                "CODEGEN_ORCHESTRATOR__SERVER__METRICS_LISTEN",
                "127.0.0.1:9100",
            ),
            ("CODEGEN_ORCHESTRATOR__STORAGE__FAILED_RETENTION_DAYS", "90"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.server.metrics_listen.as_deref(),
        Some("127.0.0.1:9100")
    );
    assert_eq!(
        (
            config.storage.retention_days,
            config.storage.failed_retention_days
        ),
        (7, 90)
    );
    let shown = config.to_redacted_yaml();
    for line in [
        "metrics_listen: 127.0.0.1:9100",
        "retention_days: 7",
        "failed_retention_days: 90",
    ] {
        assert!(shown.contains(line), "check-config shows {line}:\n{shown}");
    }
}

#[test]
fn bad_retention_and_metrics_addresses_are_named() {
    for (text, vars, key, problem) in [
        (
            "storage:\n  retention_days: 1\n",
            &[][..],
            "storage.retention_days",
            "at least 3",
        ),
        (
            "storage:\n  retention_days: 90\n",
            &[][..],
            "storage.failed_retention_days",
            "at least storage.retention_days (90)",
        ),
        (
            "",
            &[("CODEGEN_ORCHESTRATOR__SERVER__METRICS_LISTEN", "localhost")][..],
            "server.metrics_listen",
            "not a host:port",
        ),
        (
            "server:\n  listen: 0.0.0.0:3000\n  metrics_listen: 0.0.0.0:3000\n",
            &[][..],
            "server.metrics_listen",
            "same address as server.listen",
        ),
    ] {
        let err = load_text(text, vars).unwrap_err().to_string();
        assert!(err.contains(&format!("key `{key}`")), "{err}");
        assert!(err.contains(problem), "{err}");
    }
    let err = load_text(
        "",
        &[("CODEGEN_ORCHESTRATOR__SERVER__METRICS_LISTEN", "9100")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("environment variable CODEGEN_ORCHESTRATOR__SERVER__METRICS_LISTEN"),
        "{err}"
    );
}

#[test]
fn door_and_request_limits_below_their_floor_are_named() {
    for (text, key, problem) in [
        (
            "server:\n  body_budget_bytes: 31457279\n",
            "server.body_budget_bytes",
            "at least 31457280 (30 MiB)",
        ),
        (
            "server:\n  max_connections: 0\n",
            "server.max_connections",
            "at least 1",
        ),
        (
            "server:\n  header_timeout_secs: 0\n",
            "server.header_timeout_secs",
            "at least 1",
        ),
        (
            "github:\n  request_timeout_secs: 0\n",
            "github.request_timeout_secs",
            "at least 1",
        ),
    ] {
        let err = load_text(text, &[]).unwrap_err().to_string();
        assert!(err.contains(&format!("key `{key}`")), "{text}: {err}");
        assert!(err.contains(problem), "{text}: {err}");
    }
    // The floors themselves are accepted.
    let config = load_text(
        "server:\n  body_budget_bytes: 31457280\n  max_connections: 1\n  header_timeout_secs: 1\ngithub:\n  request_timeout_secs: 1\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.server.body_budget_bytes, 31_457_280);
    assert_eq!(config.github.request_timeout_secs, 1);
}

#[test]
fn the_default_estimate_is_written_like_a_label_and_refused_when_it_is_not() {
    assert_eq!(Config::default().orchestrator.default_estimate, 60);
    let config: Config =
        serde_yaml_ng::from_str("orchestrator:\n  default_estimate: 90m\n").unwrap();
    assert_eq!(config.orchestrator.default_estimate, 90);
    let config: Config =
        serde_yaml_ng::from_str("orchestrator:\n  default_estimate: 2h\n").unwrap();
    assert_eq!(config.orchestrator.default_estimate, 120);
    // A bare number is minutes.
    let config: Config =
        serde_yaml_ng::from_str("orchestrator:\n  default_estimate: 45\n").unwrap();
    assert_eq!(config.orchestrator.default_estimate, 45);
    let err = serde_yaml_ng::from_str::<Config>("orchestrator:\n  default_estimate: soon\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`soon` is not a duration like 45m, 2h or 1d"),
        "{err}"
    );
}

#[test]
fn oauth_credentials_read_from_the_file_and_the_environment() {
    let config = load_text(
        "github:\n  client_id: Iv1.fromfile\n  client_secret: file-secret\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.github.client_id.as_deref(), Some("Iv1.fromfile"));
    assert_eq!(
        config.github.client_secret.as_ref().map(Secret::expose),
        Some("file-secret")
    );
    // The environment wins, and a secret that looks like a number stays text.
    let config = load_text(
        "github:\n  client_id: Iv1.fromfile\n  client_secret: file-secret\n",
        &[
            ("GITHUB_CLIENT_ID", "12345"),
            ("GITHUB_CLIENT_SECRET", "67890"),
        ],
    )
    .unwrap();
    assert_eq!(config.github.client_id.as_deref(), Some("12345"));
    assert_eq!(
        config.github.client_secret.as_ref().map(Secret::expose),
        Some("67890")
    );
    let shown = config.to_redacted_yaml();
    assert!(shown.contains("client_id: '12345'"), "{shown}");
    assert!(!shown.contains("67890"), "{shown}");
}

#[test]
fn an_oauth_client_needs_both_id_and_secret() {
    let err = load_text("github:\n  client_id: Iv1.x\n", &[]).unwrap_err();
    assert!(err.to_string().contains("github.client_secret"), "{err}");
    let err = load_text("github:\n  client_secret: s3cr3t-value\n", &[]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("github.client_id"), "{message}");
    assert!(!message.contains("s3cr3t-value"), "{message}");
}
