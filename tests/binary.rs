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
        Self::start_with(dir, &[])
    }

    fn start_with(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        Self::spawn(Self::command(dir, env))
    }

    fn command(dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
        let mut command = orchestrator(dir);
        command
            .arg("serve")
            .env("CODEGEN_ORCHESTRATOR__SERVER__LISTEN", "127.0.0.1:0")
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stderr(Stdio::piped());
        command
    }

    fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().unwrap();
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

    /// SIGTERM; the exit status and how long the process took, or `None` (after killing
    /// it) when it was still running after `bound`.
    fn terminate_within(
        mut self,
        bound: Duration,
    ) -> (Option<(std::process::ExitStatus, Duration)>, Vec<String>) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let sent = Instant::now();
        let mut exited = None;
        while exited.is_none() && sent.elapsed() < bound {
            exited = self.child.try_wait().unwrap().map(|s| (s, sent.elapsed()));
            std::thread::sleep(Duration::from_millis(20));
        }
        if exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        while let Ok(line) = self.logs.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(line);
        }
        (exited, self.seen)
    }

    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        // The reader thread forwards the last lines until it reads the end of stderr.
        while let Ok(line) = self.logs.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(line);
        }
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

/// Connections stuck in their headers or their body do not hold up SIGTERM beyond
/// `server.shutdown_timeout_secs` (they used to keep the process running until the
/// platform's SIGKILL); a low open-files soft limit is raised to the hard limit at start.
#[test]
fn sigterm_with_stalled_connections_exits_within_the_shutdown_deadline() {
    use std::os::unix::process::CommandExt;

    let dir = tempfile::tempdir().unwrap();
    let mut command = Server::command(
        dir.path(),
        &[
            ("CODEGEN_ORCHESTRATOR__SERVER__SHUTDOWN_TIMEOUT_SECS", "1"),
            ("CODEGEN_ORCHESTRATOR__SERVER__HEADER_TIMEOUT_SECS", "300"),
        ],
    );
    // SAFETY: only getrlimit and setrlimit between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = limit.rlim_max.min(256);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut server = Server::spawn(command);
    let accepting = server.wait_for_log("accepting connections");
    let accepting: serde_json::Value = serde_json::from_str(&accepting).unwrap();
    // The child starts with a soft limit of 256 (or the hard limit, if lower) and raises it
    // to the hard limit; 128 files are kept for the rest, connections get what is left.
    let hard = {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct it is given.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        limit.rlim_max
    };
    let expected = if hard == libc::RLIM_INFINITY {
        1024
    } else {
        hard.saturating_sub(128).clamp(1, 1024)
    };
    assert_eq!(
        accepting["max_connections"].as_u64().unwrap(),
        expected,
        "hard limit {hard}: {accepting}"
    );

    let mut in_headers = TcpStream::connect(&server.address).unwrap();
    in_headers
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut in_body = TcpStream::connect(&server.address).unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issues\r\n\
         X-GitHub-Delivery: stuck-1\r\nX-Hub-Signature-256: sha256={}\r\n\
         Content-Length: 1000\r\n\r\n{{",
        "0".repeat(64)
    );
    in_body.write_all(head.as_bytes()).unwrap();
    // Connections are accepted in order: once this is answered, both are being served.
    assert_eq!(server.get("/healthz").0, 200);

    let (exited, logs) = server.terminate_within(Duration::from_secs(25));
    let all = logs.join("\n");
    let Some((status, after)) = exited else {
        panic!("still running 25 s after SIGTERM:\n{all}");
    };
    assert!(status.success(), "exit status {status}:\n{all}");
    assert!(
        all.contains("connections still open at the shutdown deadline are dropped"),
        "{all}"
    );
    assert!(all.contains("\"stopped\""), "{all}");
    let raised = logs
        .iter()
        .find(|line| line.contains("raised the open-files soft limit"));
    if hard > 256 {
        let raised = raised.unwrap_or_else(|| panic!("the soft limit was not raised:\n{all}"));
        assert!(raised.contains("\"from\":256"), "{raised}");
    } else {
        assert!(raised.is_none(), "nothing to raise to:\n{all}");
    }
    for mut stream in [in_headers, in_body] {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        // Closed (EOF or reset), not left hanging.
        let _ = stream.read_to_end(&mut rest);
    }
    println!(
        "SIGTERM with a connection stuck in its headers and one in its body: exited after \
         {:.1} s (shutdown deadline 1 s, header and body timeouts far longer)",
        after.as_secs_f64()
    );
}

/// Distinctive secrets go through start-up, a configuration error, a failing GitHub and a
/// failing Codegen at debug level; neither the logs nor `/metrics` ever show one.
#[test]
fn secrets_never_appear_in_logs_errors_or_metrics() {
    use support::fake_codegen::{FakeCodegen, ORG, Target};
    use support::fake_github::FakeGithub;

    const CODEGEN_TOKEN: &str = "cgtok-distinctive-77a1";
    const DB_PASSWORD: &str = "dbpass-distinctive-5e0c";
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/test-app-key.pem"
    ))
    .unwrap();
    let key_line = pem.lines().nth(2).unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let mut everything = String::new();

    // A configuration error with a password in the database URL.
    let url = format!("postgres://orchestrator:{DB_PASSWORD}@127.0.0.1:1/orchestrator");
    let output = orchestrator(dir.path())
        .args(["serve"])
        .env("DATABASE_URL", &url)
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("CODEGEN_API_TOKEN", CODEGEN_TOKEN)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(!output.status.success());
    everything.push_str(&String::from_utf8_lossy(&output.stdout));
    everything.push_str(&String::from_utf8_lossy(&output.stderr));
    let output = orchestrator(dir.path())
        .arg("check-config")
        .env("DATABASE_URL", &url)
        .env("GITHUB_PRIVATE_KEY", &pem)
        .env("GITHUB_APP_ID", "1")
        .output()
        .unwrap();
    everything.push_str(&String::from_utf8_lossy(&output.stdout));
    everything.push_str(&String::from_utf8_lossy(&output.stderr));

    // Start-up and work against a GitHub and a Codegen that fail.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (github, codegen) =
        runtime.block_on(async { (FakeGithub::start().await, FakeCodegen::start().await) });
    {
        let mut state = github.state.lock().unwrap();
        state.installations.insert("acme/api".into(), 42);
        state.permissions.insert(
            ("acme/api".into(), "maintainer".into()),
            ("write".into(), "write".into()),
        );
    }
    github.add_issue("acme/api", 1, "One", "", &["codegen"]);
    github.script(
        "/repos/acme/api/issues/1/dependencies/blocked_by",
        502,
        &[],
        serde_json::json!({"message": "Bad Gateway"}),
    );
    for _ in 0..8 {
        codegen.fault(
            Target::Create,
            500,
            serde_json::json!({"message": "Internal Server Error"}),
        );
    }
    let org = ORG.to_string();
    let mut server = Server::start_with(
        dir.path(),
        &[
            ("GITHUB_API_URL", &github.url),
            ("GITHUB_APP_ID", "1"),
            ("GITHUB_PRIVATE_KEY", &pem),
            ("CODEGEN_API_URL", &codegen.url),
            ("CODEGEN_ORG_ID", &org),
            ("CODEGEN_API_TOKEN", CODEGEN_TOKEN),
            ("CODEGEN_ORCHESTRATOR__CODEGEN__RETRY_ATTEMPTS", "1"),
        ],
    );
    let mut payload: serde_json::Value =
        serde_json::from_slice(&fixture("issues/labeled.payload.json")).unwrap();
    payload["issue"] = github.state.lock().unwrap().issues[&("acme/api".to_owned(), 1)].clone();
    payload["label"]["name"] = "codegen".into();
    payload["installation"] = serde_json::json!({"id": 42});
    payload["sender"]["login"] = "maintainer".into();
    payload["repository"]["full_name"] = "acme/api".into();
    let body = serde_json::to_vec(&payload).unwrap();
    assert_eq!(server.deliver("issues", "secret-1", &body).0, 202);
    let (status, _) = server.request(b"POST /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-GitHub-Event: issues\r\nX-GitHub-Delivery: bad-1\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(status, 401);
    server.wait_for_log("launch failed");
    let (_, metrics) = server.get("/metrics");
    let (_, logs) = server.terminate();
    everything.push_str(&logs.join("\n"));
    everything.push_str(&metrics);
    assert!(
        codegen
            .calls()
            .iter()
            .any(|c| c.authorization == format!("Bearer {CODEGEN_TOKEN}")),
        "the token was used"
    );

    for (name, secret) in [
        ("webhook secret", SECRET),
        ("Codegen token", CODEGEN_TOKEN),
        ("database password", DB_PASSWORD),
        ("private key", key_line.as_str()),
        ("installation token", "ghs_installation42"),
    ] {
        assert!(
            !everything.contains(secret),
            "the {name} appeared:\n{everything}"
        );
    }
    println!(
        "secrets: {} bytes of logs, errors and metrics checked; 5 secrets, 0 found",
        everything.len()
    );
}

/// Runs the binary with stdout a pipe whose reader is already gone, as `... | head`
/// leaves it once `head` has read its lines.
fn with_closed_stdout(mut command: Command) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command.stdout(writer).output().unwrap()
}

/// `check-config | head`, `plan ... | head`, `simulate ... | head`, `--help | head`: the
/// reader going away ends the output quietly, without a panic or a backtrace, and the
/// exit status is the command's own.
#[test]
fn every_subcommand_ends_quietly_when_its_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let cases: [(&[&str], i32); 6] = [
        (&["check-config"], 0),
        (
            &[
                "plan",
                "--issues",
                &format!("{data}/plan-issues-clean.json"),
            ],
            0,
        ),
        // A graph with a cycle still exits 2: the pipe does not change what was found.
        (
            &["plan", "--issues", &format!("{data}/plan-issues.json")],
            2,
        ),
        (&["simulate", "--random", "300", "--agents", "4"], 0),
        (
            &["simulate", "--random", "300", "--agents", "4", "--json"],
            0,
        ),
        (&["--help"], 0),
    ];
    for (args, code) in cases {
        let mut command = orchestrator(dir.path());
        command.args(args).env("RUST_BACKTRACE", "1");
        let output = with_closed_stdout(command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} wrote to stderr: {stderr}");
        println!("{args:?} | (closed): exit {code}, stderr empty");
    }
}

/// `check-config` ends with what will and will not work, in the order to set it up, and
/// says when everything is.
#[test]
fn check_config_says_what_will_and_will_not_work() {
    let dir = tempfile::tempdir().unwrap();
    let output = orchestrator(dir.path())
        .arg("check-config")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    let order: Vec<usize> = [
        "--  webhooks: every webhook is answered 401",
        "--  GitHub:   not acted on",
        "--  Codegen:  no launches",
        "ok  storage:  SQLite in data/orchestrator.db, for one `serve` process",
        "# Not ready yet: set up webhooks, GitHub and Codegen, in that order.",
    ]
    .iter()
    .map(|line| {
        stdout
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} missing:\n{stdout}"))
    })
    .collect();
    assert!(order.is_sorted(), "{stdout}");

    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/test-app-key.pem");
    let output = orchestrator(dir.path())
        .arg("check-config")
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("GITHUB_APP_ID", "4242")
        .env("GITHUB_PRIVATE_KEY_PATH", key)
        .env("CODEGEN_ORG_ID", "77")
        .env("CODEGEN_API_TOKEN", "cg-token-distinctive-1f2e")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok  GitHub:   acted on as the GitHub App 4242"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok  Codegen:  agents launched in organisation 77"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            "# Ready: webhooks are verified, GitHub is acted on, agents are launched.\n"
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains(SECRET) && !stdout.contains("cg-token-distinctive"),
        "{stdout}"
    );
}

/// `DATABASE_URL` with `postgres://` (and `postgresql://`, with `sslmode`) is a valid
/// configuration: `check-config` accepts it, says PostgreSQL is shared by every replica, and
/// never prints the password.
#[test]
fn check_config_accepts_postgresql_urls_and_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgres://orch:pg-pass-distinctive-77@db.example:5432/orch",
        "postgresql://orch:pg-pass-distinctive-77@db.example/orch?sslmode=require",
    ] {
        let output = orchestrator(dir.path())
            .arg("check-config")
            .env("DATABASE_URL", url)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(output.status.success(), "{url}: {stdout}{stderr}");
        assert!(
            stdout.contains("ok  storage:  PostgreSQL at postgres")
                && stdout.contains("shared by every replica"),
            "{stdout}"
        );
        assert!(
            !stdout.contains("pg-pass-distinctive") && !stderr.contains("pg-pass-distinctive"),
            "{stdout}{stderr}"
        );
    }
}

/// The README's quick start shows what `check-config` prints with only the webhook secret
/// set: the block there is the binary's own output, line for line.
#[test]
fn the_readmes_check_config_summary_is_what_the_binary_prints() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("# What runs with this configuration")
        .expect("the README shows the summary");
    let end = start + readme[start..].find("\n```").expect("the block ends");
    let shown = &readme[start..end];
    let dir = tempfile::tempdir().unwrap();
    let output = orchestrator(dir.path())
        .arg("check-config")
        .env("GITHUB_WEBHOOK_SECRET", "change-me")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    let printed = &stdout[stdout.find("# What runs").expect("a summary")..];
    assert_eq!(printed.trim_end(), shown.trim_end());
}

/// Without GitHub credentials, `serve` says where to register the App: the address it
/// really serves on (listening on every interface, the loopback address), and the README
/// section. Its log fields are plain values, never Rust's `Some(..)`.
#[test]
fn serve_without_credentials_points_at_setup_and_logs_plain_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(
        dir.path(),
        &[("CODEGEN_ORCHESTRATOR__SERVER__LISTEN", "0.0.0.0:0")],
    );
    let port = server.address.rsplit_once(':').unwrap().1.to_owned();
    let line = server.wait_for_log("/setup");
    assert!(
        line.contains(&format!("http://127.0.0.1:{port}/setup")),
        "{line}"
    );
    assert!(line.contains("GitHub App registration"), "{line}");
    println!("serve on 0.0.0.0:{port} says: {line}");

    let body = fixture("issues/labeled.with-organization.payload.json");
    let address = server.address.replace("0.0.0.0", "127.0.0.1");
    server.address = address;
    assert_eq!(server.deliver("issues", "plain-1", &body).0, 202);
    server.wait_for_log("\"event\"");
    let (_, logs) = server.terminate();
    let ours: Vec<&String> = logs
        .iter()
        .filter(|line| line.contains("\"target\":\"codegen_orchestrator"))
        .collect();
    assert!(!ours.is_empty());
    for line in ours {
        assert!(
            !line.contains("Some(") && !line.contains(":None"),
            "a Debug value in a log line: {line}"
        );
    }
}

/// SQLite is for one process: a second `serve` on the same file is refused with a
/// message that says so and names PostgreSQL; the first keeps serving.
#[test]
fn a_second_serve_on_the_same_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(dir.path());
    let second = orchestrator(dir.path())
        .arg("serve")
        .env("CODEGEN_ORCHESTRATOR__SERVER__LISTEN", "127.0.0.1:0")
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("data/orchestrator.db is in use by another process")
            && stderr.contains("SQLite serves one process")
            && stderr.contains("PostgreSQL"),
        "{stderr}"
    );
    assert_eq!(first.get("/healthz").0, 200);
    println!(
        "second serve: {}",
        stderr.lines().last().unwrap_or_default()
    );
    let (status, _) = first.terminate();
    assert!(status.success());

    // Once the first has stopped, the file is free again.
    let again = Server::start(dir.path());
    assert_eq!(again.get("/healthz").0, 200);
    again.terminate();
}
