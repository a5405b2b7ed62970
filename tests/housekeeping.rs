//! What keeps a long-running server tidy and private: the running app prunes deliveries and
//! outbox entries past their retention (failed ones kept longer), and
//! `server.metrics_listen` moves `/metrics` and `/readyz` off the public port, through the
//! router and through the real binary.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use codegen_orchestrator::domain::InstallationId;
use codegen_orchestrator::runtime::App;
use codegen_orchestrator::store::{DeliveryOutcome, DeliveryState, NewDelivery, Step};
use http_body_util::BodyExt;
use support::{SECRET, fixture, test_config};
use tower::ServiceExt;

const DAY: i64 = 24 * 60 * 60 * 1000;

async fn get(router: axum::Router, path: &str) -> StatusCode {
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

#[tokio::test]
async fn metrics_and_readiness_leave_the_public_router_when_metrics_listen_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    let app = App::build(&config).await.unwrap();
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            get(app.router(), path).await,
            StatusCode::OK,
            "{path} by default"
        );
    }
    app.store.close().await;

    config.server.metrics_listen = Some("127.0.0.1:0".into());
    let app = App::build(&config).await.unwrap();
    let public = app.router();
    assert_eq!(get(public.clone(), "/healthz").await, StatusCode::OK);
    assert_eq!(get(public.clone(), "/metrics").await, StatusCode::NOT_FOUND);
    assert_eq!(get(public.clone(), "/readyz").await, StatusCode::NOT_FOUND);
    let body = fixture("issues/labeled.with-organization.payload.json");
    let delivered = public
        .oneshot(support::webhook("issues", "m-1", &body).signed(SECRET))
        .await
        .unwrap();
    assert_eq!(
        delivered.status(),
        StatusCode::ACCEPTED,
        "webhooks stay public"
    );
    let private = app.metrics_router();
    assert_eq!(get(private.clone(), "/metrics").await, StatusCode::OK);
    assert_eq!(get(private.clone(), "/readyz").await, StatusCode::OK);
    assert_eq!(get(private, "/healthz").await, StatusCode::NOT_FOUND);
    println!("metrics_listen set: /metrics and /readyz 404 on the public router, 200 on their own");
    app.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_app_prunes_deliveries_past_their_retention() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&dir);
    let app = App::build(&config).await.unwrap();
    let store = app.store.clone();
    let now = codegen_orchestrator::clock::now_millis();
    // Handled 20 days ago: past the default 14. Failed 20 days ago: within the default 60.
    for (id, outcome) in [
        ("handled-long-ago", DeliveryOutcome::Processed),
        (
            "failed-long-ago",
            DeliveryOutcome::Failed {
                error: "poison".into(),
            },
        ),
        ("handled-yesterday", DeliveryOutcome::Ignored),
    ] {
        store
            .record_delivery(NewDelivery {
                id: id.parse().unwrap(),
                event: "issues".into(),
                action: Some("labeled".into()),
                installation: Some(InstallationId(1)),
                repository: Some("acme/api".into()),
                received_at: now - 21 * DAY,
                body: Bytes::from_static(b"{}"),
            })
            .await
            .unwrap();
        let claimed = store.claim_deliveries(1, now, 60_000).await.unwrap();
        let ended_at = if id.ends_with("yesterday") {
            now - DAY
        } else {
            now - 20 * DAY
        };
        store
            .finish_deliveries(&[(claimed[0].seq, outcome)], ended_at)
            .await
            .unwrap();
    }

    // Effects given up on 61 and 20 days ago: the default keeps failed ones 60. (None is
    // left pending: the running app would execute it.)
    let step = Step {
        decisions: ["failed-long-ago", "failed-recently"]
            .map(|decision| (InstallationId(1), decision.to_owned()))
            .to_vec(),
        ..Step::default()
    };
    let effects = store.commit_step(&step, now - 90 * DAY).await.unwrap();
    store
        .fail_effect(effects[0], "gone", now - 61 * DAY)
        .await
        .unwrap();
    store
        .fail_effect(effects[1], "gone", now - 20 * DAY)
        .await
        .unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), (0, 2));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    let state = |id: &'static str| {
        let store = store.clone();
        async move {
            let id = id.parse().unwrap();
            store
                .delivery(&id)
                .await
                .unwrap()
                .map(|record| record.state)
        }
    };
    let started = Instant::now();
    while state("handled-long-ago").await.is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the delivery handled 20 days ago was not pruned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while store.outbox_counts().await.unwrap() != (0, 1) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the effect given up 61 days ago was not pruned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state("failed-long-ago").await, Some(DeliveryState::Failed));
    assert_eq!(
        state("handled-yesterday").await,
        Some(DeliveryState::Ignored)
    );
    println!(
        "pruned at start-up within {} ms; the failed and the recent delivery kept, and the \
         effect given up 20 days ago",
        started.elapsed().as_millis()
    );
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

/// `serve` with `server.metrics_listen`: `/metrics` and `/readyz` answer on that address
/// only; `/healthz` and the webhook stay on `server.listen`. The metrics port is served like
/// the public one: a connection that never finishes its headers is closed at the header
/// timeout.
#[test]
fn serve_answers_metrics_and_readiness_on_metrics_listen_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_codegen-orchestrator"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CODEGEN_ORCHESTRATOR__SERVER__LISTEN", "127.0.0.1:0")
        .env(
            "CODEGEN_ORCHESTRATOR__SERVER__METRICS_LISTEN",
            "127.0.0.1:0",
        )
        .env("CODEGEN_ORCHESTRATOR__SERVER__HEADER_TIMEOUT_SECS", "1")
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut address_of = |needle: &str| -> String {
        for line in logs.by_ref() {
            let line = line.unwrap();
            if line.contains(needle) {
                let log: serde_json::Value = serde_json::from_str(&line).unwrap();
                return log["address"].as_str().unwrap().to_owned();
            }
        }
        panic!("the server ended without logging {needle:?}");
    };
    let metrics = address_of("/metrics and /readyz are served here");
    let public = address_of("codegen-orchestrator is serving");
    assert_ne!(metrics, public);
    // The rest of the log is read so that the server never blocks on a full pipe.
    std::thread::spawn(move || logs.for_each(drop));

    let status = |address: &str, path: &str| -> u16 {
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    };
    let seen = [
        (status(&public, "/healthz"), 200),
        (status(&public, "/metrics"), 404),
        (status(&public, "/readyz"), 404),
        (status(&metrics, "/metrics"), 200),
        (status(&metrics, "/readyz"), 200),
        (status(&metrics, "/healthz"), 404),
    ];
    // Half a request line, then silence: closed after the 1 s header timeout (plain
    // `axum::serve` kept such a connection open for ever).
    let mut stalled = TcpStream::connect(&metrics).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stalled.write_all(b"GET /metrics HTTP/1.1\r\nHost").unwrap();
    let started = Instant::now();
    let closed = stalled.read_to_end(&mut Vec::new());
    let stalled_for = started.elapsed();

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let exit = child.wait().unwrap();
    assert_eq!(
        seen.map(|(got, _)| got),
        seen.map(|(_, wanted)| wanted),
        "public /healthz /metrics /readyz, then metrics_listen /metrics /readyz /healthz"
    );
    assert!(exit.success(), "{exit}");
    assert!(
        closed.is_ok() && stalled_for < Duration::from_secs(5),
        "a stalled connection to the metrics port was still open after {stalled_for:?}: {closed:?}"
    );
    println!(
        "public port: /healthz 200, /metrics and /readyz 404; metrics port: 200, 200, and a \
         stalled connection closed after {} ms",
        stalled_for.as_millis()
    );
}
