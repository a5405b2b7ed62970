//! Registering the GitHub App from the manifest against the fake GitHub: the page, the
//! round trip through GitHub's form, the code exchange, the credentials file and `serve`
//! picking it up.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use codegen_orchestrator::http::SetupState;
use support::TestApp;
use support::fake_github::FakeGithub;

/// A test app whose setup pages talk to `github` and write into a temporary directory.
async fn app_with_setup(github: &FakeGithub) -> (TestApp, std::path::PathBuf) {
    let mut app = TestApp::start().await;
    let file = app.dir.path().join("data/github-app.yaml");
    let mut setup = SetupState::new(false, &github.url, github.url.clone(), None, "/webhook");
    setup.app_file = file.clone();
    app.app.state.setup = Arc::new(setup);
    (app, file)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("host", "bot.example.com")
        .header("x-forwarded-proto", "https")
        .body(Body::empty())
        .unwrap()
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

#[tokio::test]
async fn the_setup_page_posts_the_manifest_with_this_servers_address() {
    let github = FakeGithub::start().await;
    let (app, _) = app_with_setup(&github).await;
    let (status, html) = app.send(get("/setup")).await;
    assert_eq!(status, StatusCode::OK);
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

    let (_, html) = app.send(get("/setup?org=acme")).await;
    assert!(attribute(&html, "action").starts_with(&format!(
        "{}/organizations/acme/settings/apps/new?state=",
        github.url
    )));
    let (_, html) = app.send(get("/setup?org=%3Cscript%3E")).await;
    assert!(
        !html.contains("<script>"),
        "an odd organisation name is not echoed"
    );
}

#[tokio::test]
async fn the_callback_saves_the_credentials_readable_by_the_owner_only() {
    let github = FakeGithub::start().await;
    let (app, file) = app_with_setup(&github).await;
    let (_, html) = app.send(get("/setup")).await;
    let action = attribute(&html, "action");
    let state = action.split("state=").nth(1).unwrap().to_owned();
    github
        .state
        .lock()
        .unwrap()
        .manifest_codes
        .push("abc123".into());

    // A code without the state this server handed out is refused.
    let (status, _) = app
        .send(get("/setup/callback?code=abc123&state=forged"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!file.exists());

    let (status, html) = app
        .send(get(&format!("/setup/callback?code=abc123&state={state}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("https://github.com/apps/codegen-orchestrator-acme/installations/new"),
        "{html}"
    );
    assert!(
        !html.contains("BEGIN RSA PRIVATE KEY") && !html.contains("whsec-from-github"),
        "no secret on the page"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("app_id: 424242")
            && text.contains("whsec-from-github")
            && text.contains("PRIVATE KEY")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The state is used up: the same callback again is refused.
    let (status, _) = app
        .send(get(&format!("/setup/callback?code=abc123&state={state}")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_code_github_does_not_know_is_reported() {
    let github = FakeGithub::start().await;
    let (app, file) = app_with_setup(&github).await;
    let (_, html) = app.send(get("/setup")).await;
    let state = attribute(&html, "action")
        .split("state=")
        .nth(1)
        .unwrap()
        .to_owned();
    let (status, html) = app
        .send(get(&format!("/setup/callback?code=expired&state={state}")))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(html.contains("GitHub did not accept the code"), "{html}");
    assert!(!file.exists());
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
    assert!(
        !text.contains("whsec-from-github") && !text.contains("PRIVATE KEY"),
        "{text}"
    );
}
