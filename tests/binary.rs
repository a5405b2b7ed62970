//! The real binary: `check-config` output and errors, and `serve` receiving a webhook over
//! TCP, processing it, and shutting down gracefully on SIGTERM.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use codegen_orchestrator::http::sign;
use support::fixture;

const BIN: &str = env!("CARGO_BIN_EXE_codegen-orchestrator");
const SECRET: &str = "whsec-distinctive-4f1c2b";

fn orchestrator(dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn check_config_prints_the_effective_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let output = orchestrator(dir.path())
        .arg("check-config")
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("CODEGEN_API_TOKEN", "cg-token-distinctive-9d8e")
        .env("PORT", "8123")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("listen: 0.0.0.0:8123"), "{stdout}");
    assert!(stdout.contains("built-in defaults"), "{stdout}");
    assert!(stdout.contains("<redacted>"), "{stdout}");
    assert!(
        !stdout.contains(SECRET) && !stdout.contains("cg-token-distinctive"),
        "{stdout}"
    );
}

#[test]
fn check_config_names_the_file_the_key_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "codegen:\n  max_concurent_agents: 4\n",
    )
    .unwrap();
    let output = orchestrator(dir.path())
        .arg("check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("config.yaml"), "{stderr}");
    assert!(stderr.contains("codegen.max_concurent_agents"), "{stderr}");
    assert!(stderr.contains("unknown field"), "{stderr}");

    let output = orchestrator(dir.path())
        .args(["check-config", "--config", "missing.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("cannot read configuration file missing.yaml"),
        "{stderr}"
    );
}

/// A running `serve`, its log lines arriving on a channel.
struct Server {
    child: Child,
    address: String,
    logs: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(dir: &std::path::Path) -> Self {
        let mut child = orchestrator(dir)
            .arg("serve")
            .env("CODEGEN_ORCHESTRATOR__SERVER__LISTEN", "127.0.0.1:0")
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            address: String::new(),
            logs,
            seen: Vec::new(),
        };
        let line = server.wait_for_log("codegen-orchestrator is serving");
        let log: serde_json::Value = serde_json::from_str(&line).unwrap();
        server.address = log["address"].as_str().unwrap().to_owned();
        server
    }

    fn wait_for_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.logs.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no log line with {needle:?}; logs so far:\n{}",
            self.seen.join("\n")
        );
    }

    fn request(&self, raw: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(raw).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, response)
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.request(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> (u16, String) {
        let mut raw = format!(
            "POST /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
             X-GitHub-Event: {event}\r\nX-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {}\r\n\
             Content-Length: {}\r\n\r\n",
            sign(SECRET, body),
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        self.request(&raw)
    }

    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        self.seen.extend(self.logs.try_iter());
        (status, self.seen)
    }
}

#[test]
fn serve_receives_processes_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());

    assert_eq!(server.get("/healthz").0, 200);
    assert_eq!(server.get("/readyz").0, 200);

    let body = fixture("issues/labeled.with-organization.payload.json");
    let (status, response) = server.deliver("issues", "d-0001", &body);
    assert_eq!(status, 202, "{response}");
    server.wait_for_log("issues.labeled Codertocat/Hello-World#1 label=bug");
    let (status, _) = server.deliver("issues", "d-0001", &body);
    assert_eq!(status, 200);

    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("orchestrator_webhook_deliveries_total"),
        "{metrics}"
    );

    let (status, logs) = server.terminate();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        logs.join("\n")
    );
    let all = logs.join("\n");
    assert!(all.contains("SIGTERM received"), "{all}");
    assert!(all.contains("\"stopped\""), "{all}");
    assert!(
        !all.contains(SECRET),
        "the webhook secret appeared in the logs"
    );
    assert!(dir.path().join("data/orchestrator.db").exists());
}
