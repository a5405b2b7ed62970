//! What a configuration will and will not do, as `check-config` tells the person running
//! it. The text comes from one function here and is snapshot-tested, so a change in
//! wording shows up in review.

use std::fmt::Write;

use super::{Config, ConfigSource, DEFAULT_CONFIG_FILE, LoadedConfig, redact_url};

/// The README section that explains registering the GitHub App.
const SETUP_README_SECTION: &str = "README, \"GitHub App registration\"";

/// Everything `check-config` prints: where the configuration came from, the effective
/// configuration (secrets redacted), and what will and will not work with it.
pub fn check_config_report(loaded: &LoadedConfig) -> String {
    let mut out = String::new();
    match &loaded.source {
        ConfigSource::File(path) => {
            let _ = writeln!(out, "# configuration read from {}", path.display());
        }
        ConfigSource::Defaults => {
            let _ = writeln!(
                out,
                "# {DEFAULT_CONFIG_FILE} not found: built-in defaults with environment overrides"
            );
        }
    }
    out.push_str(&loaded.config.to_redacted_yaml());
    out.push_str("# configuration is valid\n");
    out.push_str(&readiness_summary(&loaded.config));
    out
}

/// One part of the bot and what it will do.
struct Part {
    name: &'static str,
    ready: bool,
    /// What it does, or what it will not do.
    state: String,
    /// What to set to change that (empty when nothing is missing).
    todo: Vec<String>,
}

/// What works and what does not, part by part, in the order a person sets them up:
/// nothing is accepted without a webhook secret, nothing acted on without GitHub
/// credentials, nothing launched without Codegen's; storage works either way.
fn readiness_summary(config: &Config) -> String {
    let parts = [
        webhooks(config),
        github(config),
        codegen(config),
        storage(config),
    ];
    // Not needed for the bot to work: shown, never counted as missing.
    let optional = [dashboard(config)];
    let mut out =
        String::from("#\n# What runs with this configuration, in the order to set it up:\n");
    for part in parts.iter().chain(&optional) {
        let mark = if part.ready { "ok " } else { "-- " };
        let _ = writeln!(
            out,
            "#   {mark} {:<9} {}",
            format!("{}:", part.name),
            part.state
        );
        for line in &part.todo {
            let _ = writeln!(out, "#                 {line}");
        }
    }
    let missing: Vec<&str> = parts
        .iter()
        .filter(|part| !part.ready)
        .map(|part| part.name)
        .collect();
    match missing.as_slice() {
        [only] => {
            let _ = writeln!(out, "# Not ready yet: set up {only}.");
        }
        [first @ .., last] if !first.is_empty() => {
            let _ = writeln!(
                out,
                "# Not ready yet: set up {} and {last}, in that order.",
                first.join(", ")
            );
        }
        [] => out
            .push_str("# Ready: webhooks are verified, GitHub is acted on, agents are launched.\n"),
        _ => unreachable!("an empty list, one name, or several"),
    }
    out
}

fn webhooks(config: &Config) -> Part {
    let secrets = config.github.webhook_secret.iter().count();
    if secrets == 0 {
        return Part {
            name: "webhooks",
            ready: false,
            state: "every webhook is answered 401 until a secret is set".into(),
            todo: vec![
                "set github.webhook_secret (GITHUB_WEBHOOK_SECRET): the App's webhook secret"
                    .into(),
            ],
        };
    }
    let plural = if secrets == 1 { "" } else { "s" };
    Part {
        name: "webhooks",
        ready: true,
        state: format!("signatures verified against {secrets} secret{plural}"),
        todo: Vec::new(),
    }
}

fn github(config: &Config) -> Part {
    let github = &config.github;
    if let Some(app_id) = github.app_id {
        return Part {
            name: "GitHub",
            ready: true,
            state: format!("acted on as the GitHub App {app_id}, on its installations"),
            todo: Vec::new(),
        };
    }
    if github.token.is_some() {
        return Part {
            name: "GitHub",
            ready: true,
            state: "acted on with github.token, on the repositories it can reach".into(),
            todo: Vec::new(),
        };
    }
    Part {
        name: "GitHub",
        ready: false,
        state: "not acted on: deliveries are stored and decoded, nothing is done on GitHub".into(),
        todo: vec![
            "register the App: start `serve` and open the /setup link it logs".into(),
            format!("({SETUP_README_SECTION}), or set GITHUB_APP_ID with"),
            "GITHUB_PRIVATE_KEY_PATH, or GITHUB_TOKEN for one repository".into(),
        ],
    }
}

fn codegen(config: &Config) -> Part {
    let codegen = &config.codegen;
    let missing: Vec<&str> = [
        codegen
            .org_id
            .is_none()
            .then_some("codegen.org_id (CODEGEN_ORG_ID)"),
        codegen
            .api_token
            .is_none()
            .then_some("codegen.api_token (CODEGEN_API_TOKEN)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    match (codegen.org_id, missing.is_empty()) {
        (Some(org), true) => {
            let agents = codegen.max_concurrent_agents;
            let plural = if agents == 1 { "" } else { "s" };
            Part {
                name: "Codegen",
                ready: true,
                state: format!(
                    "agents launched in organisation {org}, {agents} agent{plural} at once per installation"
                ),
                todo: Vec::new(),
            }
        }
        _ => Part {
            name: "Codegen",
            ready: false,
            state: "no launches: issues are tracked and queued, no agent is started".into(),
            todo: vec![format!("set {}", missing.join(" and "))],
        },
    }
}

fn dashboard(config: &Config) -> Part {
    let callback = match &config.server.public_url {
        Some(url) => format!("{}/dashboard/callback", url.trim_end_matches('/')),
        None => "{public url}/dashboard/callback".to_owned(),
    };
    match &config.github.client_id {
        Some(client_id) if config.github.client_secret.is_some() => Part {
            name: "sign-in",
            ready: true,
            state: format!("/dashboard signs viewers in with GitHub (OAuth client {client_id})"),
            todo: vec![format!(
                "the App's callback URL on GitHub must be {callback}"
            )],
        },
        _ => Part {
            name: "sign-in",
            ready: false,
            state: "off: /dashboard only says how to enable it (optional)".into(),
            todo: vec![
                "set github.client_id and github.client_secret (GITHUB_CLIENT_ID,".into(),
                format!("GITHUB_CLIENT_SECRET; /setup saves them), callback URL {callback}"),
            ],
        },
    }
}

fn storage(config: &Config) -> Part {
    let url = &config.storage.url;
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        return Part {
            name: "storage",
            ready: true,
            state: format!("SQLite in {path}, for one `serve` process"),
            todo: vec![
                "several replicas need PostgreSQL: storage.url (DATABASE_URL) = postgres://..."
                    .into(),
            ],
        };
    }
    Part {
        name: "storage",
        ready: true,
        state: format!("PostgreSQL at {}, shared by every replica", redact_url(url)),
        todo: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SecretList};

    fn defaults() -> LoadedConfig {
        LoadedConfig {
            config: Config::default(),
            source: ConfigSource::Defaults,
        }
    }

    fn summary(config: &Config) -> String {
        readiness_summary(config)
    }

    #[test]
    fn nothing_set_says_what_to_set_in_order() {
        insta::assert_snapshot!(summary(&defaults().config));
    }

    #[test]
    fn everything_set_says_what_runs() {
        let mut config = Config::default();
        config.github.webhook_secret = SecretList::new(vec![Secret::new("s1")]);
        config.github.app_id = Some(123);
        config.github.private_key = Some(Secret::new("pem"));
        config.codegen.org_id = Some(7);
        config.codegen.api_token = Some(Secret::new("t"));
        config.codegen.max_concurrent_agents = 1;
        config.storage.url = "postgres://bot:hunter2@db.internal/orchestrator".into();
        config.github.client_id = Some("Iv1.abc".into());
        config.github.client_secret = Some(Secret::new("oauth-secret"));
        config.server.public_url = Some("https://bot.example.com/".into());
        let text = summary(&config);
        assert!(
            !text.contains("hunter2") && !text.contains("oauth-secret"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_token_and_half_of_codegen() {
        let mut config = Config::default();
        config.github.webhook_secret = SecretList::new(vec![Secret::new("a"), Secret::new("b")]);
        config.github.token = Some(Secret::new("ghp"));
        config.codegen.org_id = Some(7);
        insta::assert_snapshot!(summary(&config));
    }

    #[test]
    fn check_config_prints_the_source_the_yaml_then_the_summary() {
        // The YAML itself grows with every new key; its redaction is tested with the
        // binary. Here: the order of the parts.
        let loaded = defaults();
        let report = check_config_report(&loaded);
        assert!(
            report.starts_with("# config.yaml not found: built-in defaults"),
            "{report}"
        );
        let yaml_at = report.find("server:\n").unwrap();
        let valid_at = report.find("# configuration is valid\n").unwrap();
        assert!(yaml_at < valid_at, "{report}");
        assert!(
            report.ends_with(&readiness_summary(&loaded.config)),
            "{report}"
        );
    }
}
