//! The registration page in a real browser: headless Chromium (Debian's package) opens the
//! setup link (`/setup?token=...`) on the running server, follows an error page's link back
//! to the form (the cookie admits it), the test clicks "Register GitHub App", the form
//! posts the manifest to the fake GitHub, which sends the browser back to the callback as
//! GitHub does; the server exchanges the code and saves the credentials. Chromium is driven
//! over the DevTools protocol. In CI (`CI` set) a missing Chromium is an error.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use codegen_orchestrator::config::GithubConfig;
use codegen_orchestrator::http::SetupState;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::TestApp;
use support::fake_github::FakeGithub;
use tokio_tungstenite::tungstenite::Message;

fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() && std::env::var_os("CI").is_some() {
        panic!("Chromium is not installed: .ci/run installs Debian's chromium package");
    }
    found
}

struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    endpoint: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_browser(binary: &str) -> Browser {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-quic",
            // This machine's network is closed: no background traffic, updates or sync.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut endpoint = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("DevTools listening on ") {
            endpoint = Some(url.trim().to_owned());
            break;
        }
    }
    Browser {
        child,
        _profile: profile,
        endpoint: endpoint.expect("Chromium did not print its DevTools address"),
    }
}

/// A minimal DevTools client: one command at a time, answers matched by id.
struct DevTools {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl DevTools {
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
        loop {
            let Some(Ok(Message::Text(text))) = self.socket.next().await else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == self.next_id {
                // A form submission navigates on its own: an evaluation racing it finds no
                // page, which a caller that polls (wait_for) takes as "not yet".
                let navigated = answer["error"]["message"].as_str().is_some_and(|m| {
                    m.contains("navigated or closed") || m.contains("context was destroyed")
                });
                if method == "Runtime.evaluate" && navigated {
                    return Value::Null;
                }
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    async fn evaluate(&mut self, session: &str, expression: &str) -> Value {
        let result = self
            .call(
                Some(session),
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_page_registers_the_app_in_a_real_browser() {
    let Some(binary) = chromium() else {
        // Past the harness's capture, so that a green local run does not read as a full one.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED (Chromium) the_setup_page_registers_the_app_in_a_real_browser: \
             Chromium is not installed (`apt-get install chromium` runs it)"
        );
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

    let browser = tokio::task::spawn_blocking(move || start_browser(binary))
        .await
        .unwrap();
    let (socket, _) = tokio_tungstenite::connect_async(&browser.endpoint)
        .await
        .unwrap();
    let mut devtools = DevTools { socket, next_id: 0 };
    let target = devtools
        .call(
            None,
            "Target.createTarget",
            json!({"url": format!("http://{address}/setup?token={token}")}),
        )
        .await;
    let session = devtools
        .call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )
        .await["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();

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

async fn navigate(devtools: &mut DevTools, session: &str, url: &str) {
    devtools
        .call(Some(session), "Page.navigate", json!({ "url": url }))
        .await;
}

async fn wait_for(devtools: &mut DevTools, session: &str, condition: &str) {
    for _ in 0..200 {
        if devtools.evaluate(session, condition).await == json!(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = devtools
        .evaluate(session, "document.documentElement.outerHTML")
        .await;
    panic!("timed out waiting for `{condition}`; the page is:\n{page}");
}
