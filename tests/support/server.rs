//! The real binary: `codegen-orchestrator serve` started as a user starts it (only the
//! environment given, `PORT=0`, JSON logs in a file), and plain HTTP to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use codegen_orchestrator::http::sign;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::fake_codegen::{self, FakeCodegen};

const BIN: &str = env!("CARGO_BIN_EXE_codegen-orchestrator");

/// The test App's private key (the fake GitHub accepts any JWT it signs).
pub fn test_key_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/test-app-key.pem")
}

/// Waits until `done` holds (true) or `limit` passes (false).
pub async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

/// A running `serve`, its log (JSON lines) in a file.
pub struct Server {
    /// Its name in messages.
    pub name: String,
    /// The process.
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    log: PathBuf,
}

impl Server {
    /// Starts `serve` in `dir` (which holds the user's `config.yaml`, if any) with exactly
    /// `env` and `PORT=0`, and waits until it listens.
    pub fn start(name: &str, dir: &Path, env: &[(&str, String)]) -> Self {
        Self::spawn(name, dir, env).ready()
    }

    /// Starts `serve` without waiting for it.
    pub fn spawn(name: &str, dir: &Path, env: &[(&str, String)]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(BIN)
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        Self {
            name: name.to_owned(),
            child,
            address: String::new(),
            log,
        }
    }

    /// Waits until it listens, and notes where.
    pub fn ready(mut self) -> Self {
        let line = self.wait_for_log("codegen-orchestrator is serving");
        let logged: Value = serde_json::from_str(&line).unwrap();
        let port = logged["address"]
            .as_str()
            .and_then(|a| a.rsplit_once(':'))
            .map(|(_, port)| port.to_owned())
            .unwrap();
        self.address = format!("127.0.0.1:{port}");
        self
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The first log line containing `needle`, waiting up to 20 s for it.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self.logs().lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.name, self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "{}: no log line with {needle:?}:\n{}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Posts a delivery as GitHub does; returns the status.
    pub async fn deliver(&self, secret: &str, event: &str, id: &str, body: &[u8]) -> u16 {
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("x-github-event", event.to_owned()),
            ("x-github-delivery", id.to_owned()),
            ("x-hub-signature-256", sign(secret, body)),
        ];
        http("POST", &self.url("/webhook"), &headers, body.to_vec())
            .await
            .map_or(0, |(status, _, _)| status)
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, as a platform stops a machine; waits for the exit.
    pub fn terminate(&mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{}: {status}\n{}", self.name, self.logs());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request; the status, the headers and the body as text (`None` when the
/// connection fails).
pub async fn http(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Option<(u16, axum::http::HeaderMap, String)> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = axum::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .ok()?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

/// The environment a user sets for Codegen, and short intervals for a test.
pub fn codegen_env(codegen: &FakeCodegen) -> Vec<(&'static str, String)> {
    vec![
        ("CODEGEN_API_URL", codegen.url.clone()),
        ("CODEGEN_ORG_ID", fake_codegen::ORG.to_string()),
        ("CODEGEN_API_TOKEN", fake_codegen::TOKEN.to_owned()),
        (
            "CODEGEN_ORCHESTRATOR__CODEGEN__POLL_INTERVAL_SECS",
            "1".into(),
        ),
    ]
}
