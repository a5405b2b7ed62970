//! The webhook door under the attacks of issue 19 (items 1 and 2), against the real binary on
//! loopback, bounded in connections and time. Run through `bench/door-attack.sh`, or:
//!
//! ```text
//! cargo bench --bench door_attack -- [bin=PATH] [uploads=150] [rate=1000000] [seconds=30]
//!                                    [slow=500] [nofile=256] [header_seconds=25]
//! ```
//!
//! 1. `uploads` connections each declare a 26,000,000-byte body with a wrong signature and
//!    send it at `rate` bytes/s, reconnecting when answered, for `seconds`; meanwhile
//!    `/healthz` is probed every 100 ms and a real signed 14 KB delivery is posted every
//!    250 ms. Prints the server's peak RSS, its RSS 5 s after the attack, the worst
//!    `/healthz` latency and the deliveries' latencies.
//! 2. A fresh server whose open-files soft limit is `nofile` (hard limit unchanged) gets
//!    `slow` connections that send one header byte every 3 s: how soon it closes them,
//!    whether `accept` fails, `/healthz` meanwhile; then SIGTERM with `slow` more stalled
//!    connections open, and how long the process takes to exit.
//!
//! `bin=PATH` measures another build (the one before a change, say); by default the
//! release binary cargo builds beside this bench.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codegen_orchestrator::http::sign;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const SECRET: &str = "bench-door-secret";
/// What each unsigned upload declares: just under the door's 25 MiB limit.
const DECLARED: usize = 26_000_000;
const SETTLE: Duration = Duration::from_secs(5);
const SIGTERM_BOUND: Duration = Duration::from_secs(40);

struct Options {
    bin: PathBuf,
    uploads: usize,
    rate: usize,
    seconds: u64,
    slow: usize,
    nofile: u64,
    header_seconds: u64,
}

impl Options {
    fn from_args() -> Self {
        let mut options = Self {
            bin: PathBuf::from(env!("CARGO_BIN_EXE_codegen-orchestrator")),
            uploads: 150,
            rate: 1_000_000,
            seconds: 30,
            slow: 500,
            nofile: 256,
            header_seconds: 25,
        };
        // `cargo bench` adds `--bench`; every other argument is `name=value`.
        for arg in std::env::args().skip(1).filter(|a| !a.starts_with("--")) {
            let Some((name, value)) = arg.split_once('=') else {
                panic!("arguments are name=value, not {arg:?}");
            };
            let number = || -> u64 {
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: {value:?} is not a number"))
            };
            match name {
                "bin" => options.bin = PathBuf::from(value),
                "uploads" => options.uploads = number() as usize,
                "rate" => options.rate = number() as usize,
                "seconds" => options.seconds = number(),
                "slow" => options.slow = number() as usize,
                "nofile" => options.nofile = number(),
                "header_seconds" => options.header_seconds = number(),
                _ => panic!("unknown argument {name}"),
            }
        }
        options
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = Options::from_args();
    println!("binary: {}", options.bin.display());
    if options.uploads > 0 {
        slow_uploads(&options).await;
    }
    if options.slow > 0 {
        slow_headers(&options).await;
    }
}

/// Item 1: bodies the door must buffer before it can check their signature.
async fn slow_uploads(options: &Options) {
    let server = Server::start(&options.bin, None).await;
    let port = server.port;
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let answers = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let mut attackers = JoinSet::new();
    for n in 0..options.uploads {
        attackers.spawn(upload_loop(
            port,
            n,
            options.rate,
            deadline,
            answers.clone(),
        ));
    }
    let health = tokio::spawn(probe_health(port, deadline));
    let deliveries = tokio::spawn(probe_deliveries(port, deadline));
    let mut peak_rss = 0;
    while Instant::now() < deadline {
        peak_rss = peak_rss.max(server.memory().rss_kb);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    attackers.shutdown().await;
    let health = health.await.expect("health probe");
    let deliveries = deliveries.await.expect("delivery probe");
    tokio::time::sleep(SETTLE).await;
    let after = server.memory();
    println!(
        "slow uploads: {} connections, each declaring {DECLARED} bytes with a wrong signature \
         and sending {:.2} MB/s, reconnecting when answered, for {} s",
        options.uploads,
        options.rate as f64 / 1e6,
        options.seconds
    );
    let answers: Vec<String> = answers
        .lock()
        .expect("answers")
        .iter()
        .map(|(k, v)| format!("{k} x {v}"))
        .collect();
    println!("  answers to the uploads: {}", answers.join(", "));
    println!(
        "  server RSS: peak {} MB (sampled every 100 ms; VmHWM {} MB), {} s after the attack {} MB",
        mb(peak_rss.max(after.rss_kb)),
        mb(after.hwm_kb),
        SETTLE.as_secs(),
        mb(after.rss_kb)
    );
    println!(
        "  /healthz every 100 ms during the attack: {}",
        health.summary()
    );
    println!(
        "  signed 14,497-byte deliveries every 250 ms during the attack: {}",
        deliveries.summary()
    );
    let (exit, status) = server.terminate().await;
    println!("  SIGTERM afterwards: {}", describe_exit(exit, status));
}

/// Item 2: connections that never finish their headers.
async fn slow_headers(options: &Options) {
    let server = Server::start(&options.bin, Some(options.nofile)).await;
    let port = server.port;
    let phase = Duration::from_secs(options.header_seconds);
    let deadline = Instant::now() + phase;
    let mut stalled = JoinSet::new();
    for _ in 0..options.slow {
        stalled.spawn(stall_headers(port, deadline));
    }
    let health = tokio::spawn(probe_health(port, deadline));
    let mut closed_after = Vec::new();
    let mut never_connected = 0;
    while let Some(outcome) = stalled.join_next().await {
        match outcome.expect("stalled connection") {
            Stall::Closed(after) => closed_after.push(after),
            Stall::StillOpen => {}
            Stall::NotConnected => never_connected += 1,
        }
    }
    let health = health.await.expect("health probe");
    closed_after.sort();
    println!(
        "slow headers: {} connections sending one header byte every 3 s, open-files soft \
         limit {} at start, observed for {} s",
        options.slow,
        options.nofile,
        phase.as_secs()
    );
    match (closed_after.first(), closed_after.last()) {
        (Some(first), Some(last)) => println!(
            "  closed by the server: {} of {}, {:.1} s to {:.1} s after connecting; {} never connected",
            closed_after.len(),
            options.slow,
            first.as_secs_f64(),
            last.as_secs_f64(),
            never_connected
        ),
        _ => println!(
            "  closed by the server: none of {} within {} s; {} never connected",
            options.slow,
            phase.as_secs(),
            never_connected
        ),
    }
    println!(
        "  accept failures logged (Too many open files): {}",
        server.emfile.load(Ordering::Relaxed)
    );
    println!("  /healthz every 100 ms meanwhile: {}", health.summary());

    // Shutdown with connections stuck in their headers.
    let far = Instant::now() + SIGTERM_BOUND + Duration::from_secs(10);
    let mut stalled = JoinSet::new();
    for _ in 0..options.slow {
        stalled.spawn(stall_headers(port, far));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (exit, status) = server.terminate().await;
    stalled.shutdown().await;
    println!(
        "  SIGTERM with {} more stalled connections open: {}",
        options.slow,
        describe_exit(exit, status)
    );
}

/// One attacker: unsigned 26 MB uploads at `rate`, one after another, until `deadline`.
async fn upload_loop(
    port: u16,
    n: usize,
    rate: usize,
    deadline: Instant,
    answers: Arc<Mutex<BTreeMap<String, usize>>>,
) {
    let chunk = vec![b'a'; 64 * 1024];
    let period = Duration::from_secs_f64(chunk.len() as f64 / rate as f64);
    let mut attempt = 0;
    while Instant::now() < deadline {
        attempt += 1;
        let answer = match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => upload_once(stream, n, attempt, &chunk, period, deadline).await,
            Err(_) => Some("connect failed".to_owned()),
        };
        if let Some(answer) = answer {
            *answers.lock().expect("answers").entry(answer).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends one upload; the server's answer, or `None` when the deadline came first.
async fn upload_once(
    stream: TcpStream,
    n: usize,
    attempt: usize,
    chunk: &[u8],
    period: Duration,
    deadline: Instant,
) -> Option<String> {
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: issues\r\nX-GitHub-Delivery: attack-{n}-{attempt}\r\n\
         X-Hub-Signature-256: sha256={}\r\nContent-Length: {DECLARED}\r\n\r\n",
        "0".repeat(64)
    );
    let send = async {
        write.write_all(head.as_bytes()).await?;
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent = 0;
        while sent < DECLARED {
            ticks.tick().await;
            let n = chunk.len().min(DECLARED - sent);
            write.write_all(&chunk[..n]).await?;
            sent += n;
        }
        std::future::pending::<std::io::Result<()>>().await
    };
    let answer = async { status_line(&mut read).await };
    let deadline = tokio::time::Instant::from_std(deadline);
    tokio::select! {
        status = answer => Some(status.map_or("closed without an answer".to_owned(), |s| s.to_string())),
        result = send => match result {
            // The server closed while we were sending: read whatever it answered.
            Err(_) => Some(
                tokio::time::timeout(Duration::from_secs(1), status_line(&mut read))
                    .await
                    .ok()
                    .flatten()
                    .map_or("closed without an answer".to_owned(), |s| s.to_string()),
            ),
            Ok(()) => None,
        },
        () = tokio::time::sleep_until(deadline) => None,
    }
}

/// The status code of the first response line, or `None` if the connection closed first.
async fn status_line(read: &mut (impl AsyncReadExt + Unpin)) -> Option<u16> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let n = read.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&buffer[..n]);
        if let Some(end) = seen.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&seen[..end]);
            return line.split(' ').nth(1)?.parse().ok();
        }
    }
}

enum Stall {
    Closed(Duration),
    StillOpen,
    NotConnected,
}

/// A connection that sends its request line one byte every 3 s; when the server closed it.
async fn stall_headers(port: u16, deadline: Instant) -> Stall {
    let started = Instant::now();
    let connect = TcpStream::connect(("127.0.0.1", port));
    let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(5), connect).await else {
        return Stall::NotConnected;
    };
    let (mut read, mut write) = stream.into_split();
    let trickle = async {
        for byte in b"POST /webhook HTTP/1.1\r\nHost: bench\r\n".iter().cycle() {
            if write.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        std::future::pending::<()>().await;
    };
    let closed = async {
        let mut buffer = [0u8; 256];
        loop {
            match read.read(&mut buffer).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        after = closed => Stall::Closed(after),
        () = trickle => Stall::StillOpen,
        () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => Stall::StillOpen,
    }
}

/// Latencies of a probe, and how many failed.
struct Probe {
    began: Instant,
    latencies: Vec<Duration>,
    statuses: BTreeMap<String, usize>,
    worst_at: Duration,
}

impl Probe {
    fn new() -> Self {
        Self {
            began: Instant::now(),
            latencies: Vec::new(),
            statuses: BTreeMap::new(),
            worst_at: Duration::ZERO,
        }
    }

    fn record(&mut self, outcome: Option<u16>, started: Instant) {
        let latency = started.elapsed();
        if self.latencies.iter().all(|seen| *seen < latency) {
            self.worst_at = started - self.began;
        }
        self.latencies.push(latency);
        let key = outcome.map_or("no answer within 10 s".to_owned(), |s| s.to_string());
        *self.statuses.entry(key).or_default() += 1;
    }

    fn summary(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = |q: f64| {
            sorted
                .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(k, v)| format!("{k} x {v}"))
            .collect();
        format!(
            "{} sent ({}), median {:.1} ms, p99 {:.1} ms, worst {:.1} ms (sent at {:.1} s)",
            sorted.len(),
            statuses.join(", "),
            at(0.5),
            at(0.99),
            sorted.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            self.worst_at.as_secs_f64()
        )
    }
}

async fn probe_health(port: u16, deadline: Instant) -> Probe {
    let mut probe = Probe::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        let outcome = exchange(
            port,
            b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".to_vec(),
        )
        .await;
        probe.record(outcome, started);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    probe
}

async fn probe_deliveries(port: u16, deadline: Instant) -> Probe {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/github-webhooks/issues/labeled.with-organization.payload.json"
    );
    let body = std::fs::read(path).unwrap_or_else(|err| panic!("reading {path}: {err}"));
    let signature = sign(SECRET, &body);
    let mut probe = Probe::new();
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let mut raw = format!(
            "POST /webhook HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\
             Content-Type: application/json\r\nX-GitHub-Event: issues\r\n\
             X-GitHub-Delivery: bench-valid-{n}\r\nX-Hub-Signature-256: {signature}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        let started = Instant::now();
        let outcome = exchange(port, raw).await;
        probe.record(outcome, started);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    probe
}

/// Sends `raw` on a fresh connection; the response's status within 10 s.
async fn exchange(port: u16, raw: Vec<u8>) -> Option<u16> {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(&raw).await.ok()?;
        status_line(&mut stream).await
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .ok()
        .flatten()
}

/// `serve` in a temporary directory, its stderr watched for accept failures.
struct Server {
    child: Child,
    port: u16,
    emfile: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

struct Memory {
    rss_kb: u64,
    hwm_kb: u64,
}

impl Server {
    async fn start(bin: &std::path::Path, nofile_soft: Option<u64>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env(
                "CODEGEN_ORCHESTRATOR__SERVER__LISTEN",
                format!("127.0.0.1:{port}"),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(soft) = nofile_soft {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let mut limit = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    limit.rlim_cur = soft.min(limit.rlim_max);
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("starting serve");
        let stderr = child.stderr.take().expect("stderr");
        let emfile = Arc::new(AtomicUsize::new(0));
        let counter = emfile.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("Too many open files") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let started = Instant::now();
        while exchange(
            port,
            b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".to_vec(),
        )
        .await
            != Some(200)
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve did not answer /healthz"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            child,
            port,
            emfile,
            _dir: dir,
        }
    }

    fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss_kb: field("VmRSS:"),
            hwm_kb: field("VmHWM:"),
        }
    }

    /// SIGTERM, then how long the process took to exit, killing it after [`SIGTERM_BOUND`].
    async fn terminate(mut self) -> (Option<Duration>, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let sent = Instant::now();
        while sent.elapsed() < SIGTERM_BOUND {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (Some(sent.elapsed()), status.to_string());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (None, "killed".to_owned())
    }
}

fn describe_exit(exit: Option<Duration>, status: String) -> String {
    match exit {
        Some(after) => format!("exited after {:.1} s ({status})", after.as_secs_f64()),
        None => format!(
            "still running after {} s, then SIGKILLed",
            SIGTERM_BOUND.as_secs()
        ),
    }
}

fn mb(kb: u64) -> u64 {
    kb / 1024
}
