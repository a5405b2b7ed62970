//! Registering the GitHub App from `app-manifest.yml`, the flow Probot users know:
//! `GET /setup` shows a page whose button posts the manifest (with this server's public URL
//! filled in) to GitHub, for a personal account or an organisation; GitHub creates the App
//! and sends the browser back to `GET /setup/callback?code=...`, where the code is exchanged
//! (`POST /app-manifests/{code}/conversions`) for the App's id, private key and webhook
//! secret. They are written to `data/github-app.yaml` (mode 0600), which `serve` reads at
//! its next start. The page works without JavaScript.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use crate::config::{APP_FILE, GithubConfig};
use crate::github::{AppRegistration, convert_manifest};

/// The manifest, as shipped at the repository's top level.
const MANIFEST: &str = include_str!("../../app-manifest.yml");
/// How long a `state` handed to GitHub stays valid (GitHub gives the code an hour).
const STATE_TTL: Duration = Duration::from_secs(3600);

/// What the setup pages need.
pub struct SetupState {
    /// Whether App credentials are configured already.
    pub configured: bool,
    /// `github.api_url`, where the code is exchanged.
    pub api_url: String,
    /// GitHub's web address (`https://github.com`, or a GHES host's).
    pub web_url: String,
    /// `server.public_url`, when set; else it comes from the request's headers.
    pub public_url: Option<String>,
    /// The webhook path.
    pub webhook_path: String,
    /// Where the App's credentials are written.
    pub app_file: PathBuf,
    /// `state` values handed out, with when.
    states: Mutex<HashMap<String, Instant>>,
}

impl SetupState {
    /// The setup state for a server.
    pub fn new(
        configured: bool,
        api_url: &str,
        web_url: String,
        public_url: Option<String>,
        webhook_path: &str,
    ) -> Self {
        Self {
            configured,
            api_url: api_url.trim_end_matches('/').to_owned(),
            web_url,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            webhook_path: webhook_path.to_owned(),
            app_file: PathBuf::from(APP_FILE),
            states: Mutex::new(HashMap::new()),
        }
    }

    fn issue_state(&self) -> String {
        let state = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.retain(|_, at| at.elapsed() < STATE_TTL);
        states.insert(state.clone(), Instant::now());
        state
    }

    fn take_state(&self, state: &str) -> bool {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states
            .remove(state)
            .is_some_and(|at| at.elapsed() < STATE_TTL)
    }
}

#[derive(Deserialize)]
pub(super) struct SetupQuery {
    org: Option<String>,
}

/// `GET /setup`
pub(super) async fn page(
    State(state): State<AppState>,
    Query(query): Query<SetupQuery>,
    headers: HeaderMap,
) -> Response {
    let setup = &state.setup;
    if setup.configured {
        return Html(layout(
            "codegen-orchestrator is registered",
            "<p>This server already has GitHub App credentials. Install the App on the \
             accounts and repositories it should manage, from the App's page on GitHub.</p>",
        ))
        .into_response();
    }
    let public = public_url(setup, &headers);
    let manifest = match manifest_json(&public, &setup.webhook_path) {
        Ok(manifest) => manifest,
        Err(err) => {
            tracing::error!(error = %err, "app-manifest.yml cannot be read");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "app-manifest.yml is invalid\n",
            )
                .into_response();
        }
    };
    let token = setup.issue_state();
    let org = query.org.as_deref().map(str::trim).filter(|org| {
        !org.is_empty() && org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    let (target, action) = match org {
        Some(org) => (
            format!("the organisation <strong>{}</strong>", escape(org)),
            format!(
                "{}/organizations/{org}/settings/apps/new?state={token}",
                setup.web_url
            ),
        ),
        None => (
            "your personal account".to_owned(),
            format!("{}/settings/apps/new?state={token}", setup.web_url),
        ),
    };
    let body = format!(
        r#"<p>This creates the GitHub App <em>codegen-orchestrator</em> from <code>app-manifest.yml</code>
for {target}, with its webhook pointing at <code>{hook}</code>.</p>
<form id="register" method="post" action="{action}">
  <input type="hidden" name="manifest" value="{manifest}">
  <button type="submit">Register GitHub App</button>
</form>
<h2>For an organisation</h2>
<form id="organisation" method="get" action="/setup">
  <label>Organisation <input name="org" required pattern="[A-Za-z0-9-]+"></label>
  <button type="submit">Continue</button>
</form>
<p>After GitHub creates the App you come back here; the App's id, private key and webhook
secret are saved to <code>{file}</code> and used from the next start of <code>serve</code>.</p>"#,
        hook = escape(&format!("{public}{}", setup.webhook_path)),
        action = escape(&action),
        manifest = escape(&manifest),
        file = escape(&setup.app_file.display().to_string()),
    );
    Html(layout("Register codegen-orchestrator", &body)).into_response()
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /setup/callback?code=...&state=...`
pub(super) async fn callback(
    State(state): State<AppState>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let setup = &state.setup;
    let Some(code) = query.code.filter(|c| {
        !c.is_empty()
            && c.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The callback needs the `code` GitHub sends.",
        );
    };
    if !query.state.as_deref().is_some_and(|s| setup.take_state(s)) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This registration was not started here (or it is over an hour old): start again at /setup.",
        );
    }
    let github = GithubConfig {
        api_url: setup.api_url.clone(),
        ..GithubConfig::default()
    };
    let conversion = match convert_manifest(&github, &code).await {
        Ok(conversion) => conversion,
        Err(problem) => {
            tracing::warn!(%problem, "exchanging the manifest code failed");
            return error_page(
                StatusCode::BAD_GATEWAY,
                &format!("GitHub did not accept the code: {problem}. Start again at /setup."),
            );
        }
    };
    if let Err(err) = write_app_file(&setup.app_file, &conversion) {
        tracing::error!(error = %err, file = %setup.app_file.display(), "cannot save the App's credentials");
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("Cannot write {}: {err}", setup.app_file.display()),
        );
    }
    tracing::info!(app_id = conversion.id, file = %setup.app_file.display(), "GitHub App registered; restart serve to use it");
    let install = format!(
        "{}/installations/new",
        conversion.html_url.trim_end_matches('/')
    );
    let body = format!(
        r#"<p>GitHub created the App <strong>{name}</strong> (id {id}). Its id, private key and
webhook secret are saved in <code>{file}</code> (readable by this user only); restart
<code>serve</code> to use them.</p>
<p><a id="install" href="{install}">Install the App</a> on the accounts and repositories it should manage.</p>"#,
        name = escape(conversion.slug.as_deref().unwrap_or("codegen-orchestrator")),
        id = conversion.id,
        file = escape(&setup.app_file.display().to_string()),
        install = escape(&install),
    );
    Html(layout("GitHub App registered", &body)).into_response()
}

/// The manifest as JSON with this server's addresses filled in.
fn manifest_json(public: &str, webhook_path: &str) -> Result<String, String> {
    let mut manifest: serde_json::Value =
        serde_yaml_ng::from_str(MANIFEST).map_err(|e| e.to_string())?;
    manifest["hook_attributes"]["url"] = format!("{public}{webhook_path}").into();
    manifest["redirect_url"] = format!("{public}/setup/callback").into();
    serde_json::to_string(&manifest).map_err(|e| e.to_string())
}

/// `server.public_url`, else the scheme and host this request came to.
fn public_url(setup: &SetupState, headers: &HeaderMap) -> String {
    if let Some(url) = &setup.public_url {
        return url.clone();
    }
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header("x-forwarded-host")
        .or_else(|| header(header::HOST.as_str()))
        .unwrap_or("localhost");
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    format!("{scheme}://{host}")
}

/// Writes the credentials as a `github:` configuration section, readable by the owner only.
fn write_app_file(path: &std::path::Path, conversion: &AppRegistration) -> std::io::Result<()> {
    use std::io::Write;
    let mut document = serde_yaml_ng::Mapping::new();
    let mut github = serde_yaml_ng::Mapping::new();
    github.insert("app_id".into(), conversion.id.into());
    github.insert("private_key".into(), conversion.pem.expose().into());
    if let Some(secret) = &conversion.webhook_secret {
        github.insert("webhook_secret".into(), secret.expose().into());
    }
    document.insert("github".into(), github.into());
    let text = serde_yaml_ng::to_string(&document).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // A file that existed before keeps its mode on open: make sure it is 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(b"# Written by codegen-orchestrator's /setup: the GitHub App's credentials.\n")?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn error_page(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(layout(
            "Setup did not complete",
            &format!("<p>{}</p>", escape(message)),
        )),
    )
        .into_response()
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto\">\
         <h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title)
    )
}

/// Text safe inside HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_gets_this_servers_addresses() {
        let json: serde_json::Value =
            serde_json::from_str(&manifest_json("https://bot.example.com", "/webhook").unwrap())
                .unwrap();
        assert_eq!(
            json["hook_attributes"]["url"],
            "https://bot.example.com/webhook"
        );
        assert_eq!(
            json["redirect_url"],
            "https://bot.example.com/setup/callback"
        );
        assert_eq!(json["default_permissions"]["issues"], "write");
        assert_eq!(
            json["default_permissions"]["organization_projects"],
            "write"
        );
        let events: Vec<&str> = json["default_events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_str())
            .collect();
        for event in [
            "issues",
            "issue_comment",
            "label",
            "pull_request",
            "projects_v2_item",
            "issue_dependencies",
        ] {
            assert!(events.contains(&event), "{event}");
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
