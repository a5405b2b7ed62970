//! The registration page in a real browser: headless Chromium (Debian's package) opens the
//! setup link (`/setup?token=...`) on the running server, follows an error page's link back
//! to the form (the cookie admits it), the test clicks "Register GitHub App", the form
//! posts the manifest to the fake GitHub, which sends the browser back to the callback as
//! GitHub does; the server exchanges the code and saves the credentials. Chromium is driven
//! over the DevTools protocol. In CI (`CI` set) a missing Chromium is an error.

mod support;

use std::sync::Arc;

use codegen_orchestrator::config::GithubConfig;
use codegen_orchestrator::http::SetupState;
use support::TestApp;
use support::browser::{chromium, navigate, open, skipped, wait_for};
use support::fake_github::FakeGithub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_page_registers_the_app_in_a_real_browser() {
    let Some(binary) = chromium() else {
        skipped("the_setup_page_registers_the_app_in_a_real_browser");
        return;
    };
    let github = FakeGithub::start().await;
    let mut app = TestApp::start().await;
    let file = app.dir.path().join("data/github-app.yaml");
    let config = GithubConfig {
        api_url: github.url.clone(),
        ..GithubConfig::default()
    };
    let mut setup = SetupState::new(&config, None, "/webhook").unwrap();
    setup.app_file = file.clone();
    let token = setup.setup_token().unwrap().to_owned();
    app.app.state.setup = Arc::new(setup);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.app.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let (_browser, mut devtools, session) =
        open(binary, &format!("http://{address}/setup?token={token}")).await;

    let ready =
        "document.readyState === 'complete' && !!document.querySelector('#register button')";
    wait_for(&mut devtools, &session, ready).await;
    assert_eq!(
        devtools.evaluate(&session, "document.title").await,
        "Register codegen-orchestrator"
    );
    // Opened at 127.0.0.1: the page says GitHub cannot deliver there.
    assert_eq!(
        devtools
            .evaluate(&session, "!!document.querySelector('#unreachable')")
            .await,
        true
    );
    // The admission cookie is not for scripts.
    assert_eq!(devtools.evaluate(&session, "document.cookie").await, "");

    // A callback gone wrong: the page shows no Markdown, and its link leads back to the
    // form in this browser (admitted by its cookie, without the token).
    navigate(
        &mut devtools,
        &session,
        &format!("http://{address}/setup/callback?state=x"),
    )
    .await;
    wait_for(
        &mut devtools,
        &session,
        "document.readyState === 'complete' && !!document.querySelector('a[href=\"/setup\"]')",
    )
    .await;
    assert_eq!(
        devtools
            .evaluate(&session, "document.body.innerText.includes('`')")
            .await,
        false
    );
    assert_eq!(
        devtools
            .evaluate(
                &session,
                "document.querySelector('a[href=\"/setup\"]').textContent"
            )
            .await,
        "start again at /setup"
    );
    devtools
        .evaluate(
            &session,
            "document.querySelector('a[href=\"/setup\"]').click(); true",
        )
        .await;
    wait_for(&mut devtools, &session, ready).await;
    devtools
        .evaluate(
            &session,
            "document.querySelector('#register button').click(); true",
        )
        .await;
    // GitHub (the fake) receives the manifest and sends the browser back to the callback.
    wait_for(
        &mut devtools,
        &session,
        "!!document.querySelector('#install')",
    )
    .await;

    let (org, manifest) = github.state.lock().unwrap().manifests[0].clone();
    assert_eq!(org, None);
    assert_eq!(
        manifest["hook_attributes"]["url"],
        format!("http://{address}/webhook")
    );
    assert_eq!(manifest["default_events"][0], "issues");
    let link = devtools
        .evaluate(&session, "document.querySelector('#install').href")
        .await;
    assert_eq!(
        link,
        "https://github.com/apps/codegen-orchestrator-acme/installations/new"
    );
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("app_id: 424242"), "{saved}");
}
