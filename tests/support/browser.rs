//! Headless Chromium (Debian's package) driven over the DevTools protocol, for the tests
//! that open pages in a real browser. In CI (`CI` set) a missing Chromium is an error.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The Chromium binary found on `PATH`, if any (an error in CI when none is).
pub fn chromium() -> Option<&'static str> {
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

/// A running headless Chromium, killed when dropped.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    pub endpoint: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts headless Chromium with a fresh profile and reads its DevTools address.
pub fn start_browser(binary: &str) -> Browser {
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
pub struct DevTools {
    pub socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pub next_id: u64,
}

impl DevTools {
    /// Sends one command (to a tab's `session`, or to the browser) and waits for its answer.
    pub async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
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
            // Chromium gone (crashed, killed): fail now rather than wait for ever.
            let message =
                tokio::time::timeout(std::time::Duration::from_secs(30), self.socket.next())
                    .await
                    .unwrap_or_else(|_| panic!("{method}: Chromium did not answer within 30 s"));
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("{method}: the DevTools connection failed: {err}"),
                None => panic!("{method}: Chromium closed the DevTools connection"),
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

    /// The value of a JavaScript `expression` in the tab.
    pub async fn evaluate(&mut self, session: &str, expression: &str) -> Value {
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

/// Opens `url` in the tab.
pub async fn navigate(devtools: &mut DevTools, session: &str, url: &str) {
    devtools
        .call(Some(session), "Page.navigate", json!({ "url": url }))
        .await;
}

/// Waits up to 20 s for a JavaScript `condition` to hold in the tab; panics with the page.
pub async fn wait_for(devtools: &mut DevTools, session: &str, condition: &str) {
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

/// Starts Chromium, connects to it and opens `url` in a new tab; the browser (kept alive
/// while it is held), the client and the tab's session.
pub async fn open(binary: &'static str, url: &str) -> (Browser, DevTools, String) {
    let browser = tokio::task::spawn_blocking(move || start_browser(binary))
        .await
        .unwrap();
    let (socket, _) = tokio_tungstenite::connect_async(&browser.endpoint)
        .await
        .unwrap();
    let mut devtools = DevTools { socket, next_id: 0 };
    let target = devtools
        .call(None, "Target.createTarget", json!({ "url": url }))
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
    (browser, devtools, session)
}

/// Says on stderr (past the harness's capture, so that a green local run does not read as
/// a full one) that `test` was skipped for want of Chromium.
pub fn skipped(test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED (Chromium) {test}: Chromium is not installed (`apt-get install chromium` runs it)"
    );
}
