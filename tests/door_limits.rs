//! The door's limits over real TCP (issue 19, items 1 and 2): the memory budget for bodies,
//! `Expect: 100-continue`, the header timeout, the connection cap and the shutdown deadline.
//! Timeouts are shortened through the app's tuning; nothing here measures speed.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use codegen_orchestrator::http::{BodyBudget, ConnectionLimits, DoorLimits, sign};
use codegen_orchestrator::runtime::{App, Tuning};
use support::{SECRET, fixture};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const MIB: usize = 1 << 20;
const LABELED: &str = "issues/labeled.with-organization.payload.json";
/// Long enough never to fire during a test that does not wait for it.
const NEVER: Duration = Duration::from_secs(120);
/// How long a test waits for something that should happen much sooner.
const PATIENCE: Duration = Duration::from_secs(15);

/// The app serving on a loopback port until `stop` is sent.
struct Served {
    address: SocketAddr,
    budget: Arc<BodyBudget>,
    stop: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
    store: codegen_orchestrator::store::Store,
    _dir: tempfile::TempDir,
}

async fn serve(limits: DoorLimits, connections: ConnectionLimits) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let tuning = Tuning {
        limits,
        connections,
        ..Tuning::default()
    };
    let app = App::build_tuned(&support::test_config(&dir), tuning)
        .await
        .unwrap();
    let budget = app.state.budget.clone();
    let store = app.store.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    Served {
        address,
        budget,
        stop,
        serving,
        store,
        _dir: dir,
    }
}

/// A budget of 4 MiB: 3 MiB for large bodies, 1 MiB kept for bodies under 1 MiB.
fn small_budget(body_timeout: Duration) -> DoorLimits {
    DoorLimits {
        body_timeout,
        body_budget_bytes: 4 * MIB,
        small_body_reserve_bytes: MIB,
        small_body_bytes: MIB,
        ..DoorLimits::default()
    }
}

fn patient_connections() -> ConnectionLimits {
    ConnectionLimits {
        header_timeout: NEVER,
        ..ConnectionLimits::default()
    }
}

/// The head of an unsigned-looking webhook request: well-formed headers, a signature of
/// the right shape that matches nothing.
fn upload_head(delivery: &str, length: usize, extra: &str) -> String {
    format!(
        "POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: issues\r\nX-GitHub-Delivery: {delivery}\r\n\
         X-Hub-Signature-256: sha256={}\r\nContent-Length: {length}\r\n{extra}\r\n",
        "0".repeat(64)
    )
}

fn signed_delivery(delivery: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST /webhook HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: application/json\r\nX-GitHub-Event: issues\r\n\
         X-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {}\r\n\
         Content-Length: {}\r\n\r\n",
        sign(SECRET, body),
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// Reads one response head (up to the blank line); empty if the connection closed first.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("no answer in time");
        match read {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Sends a whole request on a new connection; the response head and body.
async fn exchange(address: SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("no answer in time")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// Waits until the server closes `stream`; what it sent meanwhile.
async fn closed_by_server(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
            .await
            .expect("the server did not close the connection");
        match read {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&seen).into_owned(),
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn bodies_beyond_the_budget_are_shed_503_at_once_while_a_small_delivery_passes() {
    let served = serve(small_budget(Duration::from_secs(2)), patient_connections()).await;
    // Two slow 1.5 MiB uploads take the 3 MiB large bodies may use.
    let mut holders = Vec::new();
    for n in 0..2 {
        let mut stream = TcpStream::connect(served.address).await.unwrap();
        let head = upload_head(&format!("hold-{n}"), 3 * MIB / 2, "");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(b"{").await.unwrap();
        holders.push(stream);
    }
    wait_until("the uploads hold the budget", || {
        served.budget.in_flight() == 3 * MIB
    })
    .await;

    // A third large upload is shed before its body is read, with Retry-After.
    let shed = exchange(
        served.address,
        upload_head("shed-1", 3 * MIB / 2, "Connection: close\r\n").as_bytes(),
    )
    .await;
    assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
    assert!(
        shed.to_ascii_lowercase().contains("retry-after: 2"),
        "{shed}"
    );
    // Even the reserve is not enough for a body of 1 MiB or more.
    let shed = exchange(
        served.address,
        upload_head("shed-2", MIB, "Connection: close\r\n").as_bytes(),
    )
    .await;
    assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");

    // A real, signed, 14 KB delivery gets in through the reserve.
    let body = fixture(LABELED);
    let accepted = exchange(served.address, &signed_delivery("small-1", &body)).await;
    assert!(accepted.starts_with("HTTP/1.1 202"), "{accepted}");
    assert_eq!(served.store.delivery_count().await.unwrap(), 1);

    // The holders time out (408) and their share goes back.
    for mut holder in holders {
        let answer = closed_by_server(&mut holder).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    wait_until("the budget is back", || served.budget.in_flight() == 0).await;
    let large_again = exchange(
        served.address,
        &signed_delivery("large-1", &padded(&body, 3 * MIB / 2)),
    )
    .await;
    assert!(large_again.starts_with("HTTP/1.1 202"), "{large_again}");
    println!("budget: 2 uploads held 3 MiB; 2 more shed 503; a 14 KB delivery accepted");
}

#[tokio::test]
async fn expect_100_continue_is_answered_only_after_the_headers_pass() {
    let served = serve(small_budget(NEVER), patient_connections()).await;
    let expect = "Expect: 100-continue\r\n";

    // A malformed signature: refused at once, no 100 Continue, nothing read.
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    let head = upload_head("expect-1", 1000, expect).replace(&"0".repeat(64), "zz");
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // A content type the door does not take: 415 naming the one to choose, no 100
    // Continue, the body never read (it is never sent).
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    let head = upload_head("expect-0", 1000, expect).replace("application/json", "text/plain");
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    assert_eq!(served.budget.in_flight(), 0);

    // A declared length over 25 MiB: 413, no 100 Continue.
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    let head = upload_head("expect-2", 26_214_401, expect);
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Headers that pass: 100 Continue, then the body is read and its signature checked.
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    let head = upload_head("expect-3", 2 * MIB, expect);
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 100"), "{answer}");
    wait_until("the upload holds its share", || {
        served.budget.in_flight() == 2 * MIB
    })
    .await;

    // With the budget spent: 503 at once, no 100 Continue.
    let mut other = TcpStream::connect(served.address).await.unwrap();
    let head = upload_head("expect-4", 2 * MIB, expect);
    other.write_all(head.as_bytes()).await.unwrap();
    let answer = read_head(&mut other).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");

    // The first upload completes and is refused for its signature; its share goes back.
    stream.write_all(&vec![b' '; 2 * MIB]).await.unwrap();
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    wait_until("the budget is back", || served.budget.in_flight() == 0).await;
}

#[tokio::test]
async fn connections_stalled_in_their_headers_or_idle_are_closed_after_the_header_timeout() {
    let connections = ConnectionLimits {
        header_timeout: Duration::from_millis(300),
        ..ConnectionLimits::default()
    };
    let served = serve(DoorLimits::default(), connections).await;

    let mut silent = TcpStream::connect(served.address).await.unwrap();
    let mut stalled = TcpStream::connect(served.address).await.unwrap();
    stalled
        .write_all(b"POST /webhook HTTP/1.1\r\nHo")
        .await
        .unwrap();
    // A kept-alive connection after its response is idle, waiting for the next headers.
    let mut kept = TcpStream::connect(served.address).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let answer = read_head(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    for (what, stream) in [
        ("silent", &mut silent),
        ("stalled", &mut stalled),
        ("kept alive", &mut kept),
    ] {
        let seen = closed_by_server(stream).await;
        // hyper closes without an answer, or with what remained of the /healthz body.
        assert!(!seen.contains("HTTP/1.1"), "{what}: {seen}");
    }
    let health = exchange(
        served.address,
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

#[tokio::test]
async fn above_the_connection_cap_a_new_connection_waits_for_a_free_slot() {
    let connections = ConnectionLimits {
        header_timeout: Duration::from_secs(1),
        max_connections: 2,
        ..ConnectionLimits::default()
    };
    let served = serve(DoorLimits::default(), connections).await;
    let mut first = TcpStream::connect(served.address).await.unwrap();
    let mut second = TcpStream::connect(served.address).await.unwrap();
    first.write_all(b"GET /heal").await.unwrap();
    second.write_all(b"GET /heal").await.unwrap();

    let mut third = TcpStream::connect(served.address).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut early = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(300), third.read(&mut early)).await;
    assert!(waited.is_err(), "answered while both slots were taken");
    // The stalled two are closed by the header timeout; the third is then served.
    let answer = closed_by_server(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    closed_by_server(&mut first).await;
    closed_by_server(&mut second).await;
}

#[tokio::test]
async fn shutdown_drops_the_connections_still_open_at_its_deadline() {
    let connections = ConnectionLimits {
        header_timeout: NEVER,
        shutdown_timeout: Duration::from_millis(300),
        ..ConnectionLimits::default()
    };
    let served = serve(small_budget(NEVER), connections).await;
    let mut in_headers = TcpStream::connect(served.address).await.unwrap();
    in_headers
        .write_all(b"POST /webhook HTTP/1.1\r\n")
        .await
        .unwrap();
    let mut in_body = TcpStream::connect(served.address).await.unwrap();
    in_body
        .write_all(upload_head("stuck-1", 1000, "").as_bytes())
        .await
        .unwrap();
    wait_until("the body is being read", || {
        served.budget.in_flight() == 1000
    })
    .await;

    served.stop.send(()).unwrap();
    let stopped = tokio::time::timeout(PATIENCE, served.serving)
        .await
        .expect("serve did not return after its shutdown deadline");
    stopped.unwrap().unwrap();
    closed_by_server(&mut in_headers).await;
    closed_by_server(&mut in_body).await;
    assert_eq!(served.budget.in_flight(), 0);
}

/// `body` (a JSON object) grown to `size` bytes with a padding field.
fn padded(body: &[u8], size: usize) -> Vec<u8> {
    let mut payload: serde_json::Value = serde_json::from_slice(body).unwrap();
    payload["padding"] = serde_json::Value::String(String::new());
    let without = serde_json::to_vec(&payload).unwrap().len();
    payload["padding"] = serde_json::Value::String("a".repeat(size - without));
    let padded = serde_json::to_vec(&payload).unwrap();
    assert_eq!(padded.len(), size);
    padded
}

/// A body that barely moves is cut short once the grace period is over, long before the
/// body deadline, and its share of the budget comes back; one that keeps the rate is read
/// to its end.
#[tokio::test]
async fn a_body_below_the_minimum_rate_is_answered_408_after_the_grace_period() {
    let limits = DoorLimits {
        body_grace: Duration::from_millis(500),
        body_min_bytes_per_sec: 64 * 1024,
        ..small_budget(NEVER)
    };
    let served = serve(limits, patient_connections()).await;

    // 2 MiB declared, 1 KB every 50 ms (20 KB/s): too slow.
    let started = tokio::time::Instant::now();
    let mut slow = TcpStream::connect(served.address).await.unwrap();
    slow.write_all(upload_head("slow-1", 2 * MIB, "").as_bytes())
        .await
        .unwrap();
    let trickle = async {
        loop {
            if slow.write_all(&[b' '; 1000]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    let answer = closed_by_server(&mut slow).await;
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(waited < Duration::from_secs(10), "cut after {waited:?}");
    wait_until("the budget is back", || served.budget.in_flight() == 0).await;

    // The same size sent at once: read to its end and refused for its signature.
    let mut fast = TcpStream::connect(served.address).await.unwrap();
    fast.write_all(upload_head("fast-1", 2 * MIB, "").as_bytes())
        .await
        .unwrap();
    fast.write_all(&vec![b' '; 2 * MIB]).await.unwrap();
    let answer = read_head(&mut fast).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    println!("a 20 KB/s body: 408 after {waited:?} (grace 500 ms, minimum 64 KiB/s)");
}
