//! Registering the GitHub App from the manifest against the fake GitHub: the setup link
//! with its token, the page, the round trip through GitHub's form, the code exchange, the
//! credentials file, the refusals that keep a stranger from registering their own App, and
//! `serve` picking the file up.

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use codegen_orchestrator::config::{GithubConfig, Secret};
use codegen_orchestrator::http::SetupState;
use codegen_orchestrator::runtime::App;
use http_body_util::BodyExt;
use support::TestApp;
use support::fake_github::FakeGithub;
use tower::ServiceExt;

/// A test app without credentials whose setup pages talk to `github` and write into a
/// temporary directory; with the setup token `serve` would print.
async fn app_with_setup(github: &FakeGithub) -> (TestApp, PathBuf, String) {
    let config = GithubConfig {
        api_url: github.url.clone(),
        ..GithubConfig::default()
    };
    let (app, file) = app_with(config).await;
    let token = app.app.state.setup.setup_token().unwrap().to_owned();
    (app, file, token)
}

/// A test app whose setup pages see `config`.
async fn app_with(config: GithubConfig) -> (TestApp, PathBuf) {
    let mut app = TestApp::start().await;
    let file = app.dir.path().join("data/github-app.yaml");
    let mut setup = SetupState::new(&config, None, "/webhook").unwrap();
    setup.app_file = file.clone();
    app.app.state.setup = Arc::new(setup);
    (app, file)
}

/// A browser on the test app: keeps the cookies it is given, as a browser does.
struct Browser<'a> {
    app: &'a TestApp,
    host: &'static str,
    cookies: Vec<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            host: "bot.example.com",
            cookies: Vec::new(),
        }
    }

    async fn open(&mut self, path: &str) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::get(path)
            .header("host", self.host)
            .header("x-forwarded-proto", "https");
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookies.join("; "));
        }
        let response = self
            .app
            .app
            .router()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for cookie in headers.get_all("set-cookie") {
            let pair = cookie
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            self.cookies.push(pair);
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// Opens the setup link and returns the state of the form it shows.
    async fn start_registration(&mut self, token: &str) -> String {
        let (status, _, html) = self.open(&format!("/setup?token={token}")).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        state_of(&html)
    }
}

/// The value of `attribute` on the first element that has it, HTML entities decoded.
fn attribute(html: &str, attribute: &str) -> String {
    let start = html.find(&format!("{attribute}=\"")).unwrap() + attribute.len() + 2;
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn state_of(html: &str) -> String {
    attribute(html, "action")
        .split("state=")
        .nth(1)
        .unwrap()
        .to_owned()
}

fn offer_code(github: &FakeGithub, code: &str) {
    github
        .state
        .lock()
        .unwrap()
        .manifest_codes
        .push(code.into());
}

#[tokio::test]
async fn the_setup_page_posts_the_manifest_with_this_servers_address() {
    let github = FakeGithub::start().await;
    let (app, _, token) = app_with_setup(&github).await;
    let mut browser = Browser::new(&app);
    let (status, headers, html) = browser.open(&format!("/setup?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["referrer-policy"], "no-referrer",
        "the token stays here"
    );
    let action = attribute(&html, "action");
    assert!(
        action.starts_with(&format!("{}/settings/apps/new?state=", github.url)),
        "{action}"
    );
    let manifest: serde_json::Value = serde_json::from_str(&attribute(&html, "value")).unwrap();
    assert_eq!(
        manifest["hook_attributes"]["url"],
        "https://bot.example.com/webhook"
    );
    assert_eq!(
        manifest["redirect_url"],
        "https://bot.example.com/setup/callback"
    );
    assert!(!html.contains("<script"), "works without JavaScript");
    assert!(
        !html.contains("id=\"unreachable\""),
        "a public address: {html}"
    );

    // The organisation form sends no token: the admitted browser's cookie is enough.
    let (status, _, html) = browser.open("/setup?org=acme").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(attribute(&html, "action").starts_with(&format!(
        "{}/organizations/acme/settings/apps/new?state=",
        github.url
    )));
}

#[tokio::test]
async fn an_invalid_organisation_name_is_said_not_replaced_by_the_personal_account() {
    let github = FakeGithub::start().await;
    let (app, _, token) = app_with_setup(&github).await;
    let mut browser = Browser::new(&app);
    browser.start_registration(&token).await;
    for (query, shown) in [
        ("%3Cscript%3E", "&lt;script&gt;"),
        ("ac%20me", "ac me"),
        ("-acme", "-acme"),
        ("", ""),
    ] {
        let (status, _, html) = browser.open(&format!("/setup?org={query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {html}");
        assert!(
            html.contains(&format!(
                "<code>{shown}</code> is not an organisation's login"
            )),
            "{query}: {html}"
        );
        assert!(
            !html.contains("settings/apps/new"),
            "no form for another account"
        );
        assert!(!html.contains("<script>"), "not echoed as markup");
        assert!(html.contains("<form id=\"organisation\""), "asked again");
    }
}

#[tokio::test]
async fn a_loopback_webhook_address_is_warned_about() {
    let github = FakeGithub::start().await;
    let (app, _, token) = app_with_setup(&github).await;
    let mut browser = Browser::new(&app);
    browser.host = "127.0.0.1:3000";
    let (status, _, html) = browser.open(&format!("/setup?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    let warning = &html[html.find("<p id=\"unreachable\"").expect(&html)..];
    assert!(
        warning.contains(
            "GitHub cannot deliver webhooks to <code>https://127.0.0.1:3000/webhook</code>"
        ) && warning.contains("loopback")
            && warning.contains("<code>server.public_url</code>"),
        "{warning}"
    );
}

#[tokio::test]
async fn the_callback_saves_the_credentials_readable_by_the_owner_only() {
    let github = FakeGithub::start().await;
    let (app, file, token) = app_with_setup(&github).await;
    let mut browser = Browser::new(&app);
    let (_, headers, html) = browser.open(&format!("/setup?token={token}")).await;
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/setup")
            && cookie.contains("Secure"),
        "{cookie}"
    );
    let state = state_of(&html);
    offer_code(&github, "abc123");

    // A code without the state this server handed out is refused.
    let (status, _, _) = browser
        .open("/setup/callback?code=abc123&state=forged")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!file.exists());
    // So is the right state from another browser (it has not the cookie).
    let (status, _, _) = Browser::new(&app)
        .open(&format!("/setup/callback?code=abc123&state={state}"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!file.exists());

    let (status, _, html) = browser
        .open(&format!("/setup/callback?code=abc123&state={state}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("https://github.com/apps/codegen-orchestrator-acme/installations/new"),
        "{html}"
    );
    assert!(
        !html.contains("BEGIN RSA PRIVATE KEY")
            && !html.contains("whsec-from-github")
            && !html.contains("client-secret-value"),
        "no secret on the page"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("app_id: 424242")
            && text.contains("whsec-from-github")
            && text.contains("PRIVATE KEY")
            // The OAuth credentials too, for dashboard sign-in.
            && text.contains("client_id: Iv1.0123456789abcdef")
            && text.contains("client_secret: client-secret-value"),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let entries: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().collect();
    assert_eq!(entries.len(), 1, "no temporary file left beside it");

    // Until the restart, /setup says where the credentials are, with the installation link.
    let (status, _, html) = browser.open("/setup").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("restart <code>serve</code>"), "{html}");
    assert!(
        html.contains("https://github.com/apps/codegen-orchestrator-acme/installations/new"),
        "{html}"
    );
    assert!(!html.contains("settings/apps/new"), "{html}");
    assert_eq!(
        app.app.state.setup.setup_token(),
        None,
        "the token is of no use any more"
    );
}

/// The attack of issue 19: after the owner's registration, someone completes a second one
/// with their own App. It is refused before the code is even exchanged, and the saved
/// credentials stay the owner's.
#[tokio::test]
async fn a_second_registration_after_a_saved_one_is_refused() {
    let github = FakeGithub::start().await;
    let (app, file, token) = app_with_setup(&github).await;
    let mut owner = Browser::new(&app);
    let mut second = Browser::new(&app);
    let first_state = owner.start_registration(&token).await;
    let second_state = second.start_registration(&token).await;
    offer_code(&github, "owners");
    offer_code(&github, "strangers");

    let (status, _, html) = owner
        .open(&format!("/setup/callback?code=owners&state={first_state}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let saved = std::fs::read_to_string(&file).unwrap();

    let (status, _, html) = second
        .open(&format!(
            "/setup/callback?code=strangers&state={second_state}"
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("registers no second App"), "{html}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), saved);
    assert_eq!(
        github.state.lock().unwrap().manifest_codes,
        ["strangers"],
        "the second code was never exchanged"
    );
    // Nor is a new registration offered to anyone holding the old link.
    let (status, _, html) = Browser::new(&app)
        .open(&format!("/setup?token={token}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("settings/apps/new"), "{html}");
}

/// A file saved by an earlier run (not yet loaded, or loaded beside a token) counts too.
#[tokio::test]
async fn a_credentials_file_from_before_closes_the_registration() {
    let github = FakeGithub::start().await;
    let (app, file, token) = app_with_setup(&github).await;
    let mut browser = Browser::new(&app);
    let state = browser.start_registration(&token).await;
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "github: {app_id: 1}\n").unwrap();
    offer_code(&github, "late");
    let (status, _, html) = browser
        .open(&format!("/setup/callback?code=late&state={state}"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "github: {app_id: 1}\n"
    );
}

#[tokio::test]
async fn a_registration_without_the_setup_token_is_refused() {
    let github = FakeGithub::start().await;
    let (app, file, token) = app_with_setup(&github).await;
    let mut stranger = Browser::new(&app);
    let (status, headers, html) = stranger.open("/setup").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(headers.get("set-cookie").is_none());
    assert!(!html.contains("settings/apps/new"), "{html}");
    assert!(
        html.contains("/setup?token="),
        "says where the link is: {html}"
    );
    let (status, _, html) = stranger.open("/setup?token=0123456789abcdef").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(!html.contains("settings/apps/new"), "{html}");
    let (status, _, _) = stranger.open("/setup?org=acme").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A forged cookie admits nobody either.
    stranger.cookies = vec!["codegen_orchestrator_setup=0123456789abcdef".into()];
    let (status, _, _) = stranger.open("/setup").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A state the owner got is of no use to a stranger coming back from GitHub with it.
    let owners_state = Browser::new(&app).start_registration(&token).await;
    offer_code(&github, "strangers");
    let (status, _, html) = stranger
        .open(&format!(
            "/setup/callback?code=strangers&state={owners_state}"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(!file.exists());
}

#[tokio::test]
async fn token_mode_serves_no_registration() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::test_config(&dir);
    config.github.token = Some(Secret::new("ghp_test"));
    let app = TestApp {
        app: App::build(&config).await.unwrap(),
        dir,
    };
    assert_eq!(
        app.app.state.setup.setup_token(),
        None,
        "no link is printed"
    );
    assert_eq!(
        app.app
            .state
            .setup
            .setup_link("127.0.0.1:3000".parse().unwrap()),
        None
    );
    let mut browser = Browser::new(&app);
    for path in [
        "/setup",
        "/setup?token=anything",
        "/setup/callback?code=abc&state=def",
    ] {
        let (status, headers, html) = browser.open(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {html}");
        assert!(headers.get("set-cookie").is_none(), "{path}");
        assert!(!html.contains("settings/apps/new"), "{path}: {html}");
        assert!(html.contains("<code>github.token</code>"), "{path}: {html}");
    }
    assert!(!app.dir.path().join("data/github-app.yaml").exists());
}

#[tokio::test]
async fn with_app_credentials_setup_links_to_the_installation_page() {
    let github = FakeGithub::start().await;
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/test-app-key.pem"
    ))
    .unwrap();
    let config = GithubConfig {
        api_url: github.url.clone(),
        app_id: Some(424242),
        private_key: Some(Secret::new(pem)),
        ..GithubConfig::default()
    };
    let (app, _) = app_with(config.clone()).await;
    assert_eq!(app.app.state.setup.setup_token(), None);
    let mut browser = Browser::new(&app);
    let (status, _, html) = browser.open("/setup").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(
            "<a id=\"install\" href=\"https://github.com/apps/codegen-orchestrator-acme/installations/new\">"
        ),
        "{html}"
    );
    assert!(!html.contains("settings/apps/new"), "{html}");
    // Asked once; the answer is kept.
    browser.open("/setup").await;
    let asked = github
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/app")
        .count();
    assert_eq!(asked, 1);
    // And the callback refuses whatever comes.
    let (status, _, _) = browser.open("/setup/callback?code=x&state=y").await;
    assert_eq!(status, StatusCode::CONFLICT);

    // When GitHub does not say, the page links to the list of Apps, and a stream of
    // visitors does not become a stream of requests to GitHub.
    let (app, _) = app_with(config).await;
    github
        .state
        .lock()
        .unwrap()
        .scripted
        .push_back(support::fake_github::Scripted {
            path: "/app".into(),
            status: 500,
            headers: Vec::new(),
            body: serde_json::json!({"message": "Server Error"}),
        });
    let mut browser = Browser::new(&app);
    for _ in 0..3 {
        let (status, _, html) = browser.open("/setup").await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(
            html.contains(&format!(
                "<a id=\"apps\" href=\"{}/settings/apps\">",
                github.url
            )),
            "{html}"
        );
    }
    let asked = github
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/app")
        .count();
    assert_eq!(asked, 2, "one more, then none for a minute");
}

#[tokio::test]
async fn a_code_github_does_not_know_is_reported() {
    let github = FakeGithub::start().await;
    let (app, file, token) = app_with_setup(&github).await;
    let mut browser = Browser::new(&app);
    let state = browser.start_registration(&token).await;
    let (status, _, html) = browser
        .open(&format!("/setup/callback?code=expired&state={state}"))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(html.contains("GitHub did not accept the code"), "{html}");
    assert!(
        html.contains(r#"<a href="/setup">start again at /setup</a>"#),
        "{html}"
    );
    assert!(!html.contains('`'), "no Markdown on a web page: {html}");
    assert!(!file.exists());
    // The link works in this browser: it is admitted still.
    let (status, _, html) = browser.open("/setup").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("settings/apps/new"), "{html}");

    let (status, _, html) = browser.open("/setup/callback?state=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("<code>code</code>") && !html.contains('`'),
        "{html}"
    );
}

#[test]
fn serve_reads_the_saved_credentials_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/test-app-key.pem"
    ))
    .unwrap();
    let mut github = serde_yaml_ng::Mapping::new();
    github.insert("app_id".into(), 424242u64.into());
    github.insert("private_key".into(), pem.into());
    github.insert("webhook_secret".into(), "whsec-from-github".into());
    github.insert("client_id".into(), "Iv1.0123456789abcdef".into());
    github.insert("client_secret".into(), "client-secret-value".into());
    let mut document = serde_yaml_ng::Mapping::new();
    document.insert("github".into(), github.into());
    std::fs::write(
        dir.path().join("data/github-app.yaml"),
        serde_yaml_ng::to_string(&document).unwrap(),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_codegen-orchestrator"))
        .current_dir(dir.path())
        .env_clear()
        .arg("check-config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("app_id: 424242"), "{text}");
    assert!(text.contains("client_id: Iv1.0123456789abcdef"), "{text}");
    assert!(
        !text.contains("whsec-from-github")
            && !text.contains("PRIVATE KEY")
            && !text.contains("client-secret-value"),
        "{text}"
    );
}
