//! The dashboard in a real browser: headless Chromium opens `/dashboard`, is sent to the
//! fake GitHub's authorize page, comes back through the callback signed in, and shows
//! exactly the repositories the viewer's installation lists, with each issue's state and
//! the graph. A blocker closed by webhook shows within 2 s, without a reload. The page's
//! screenshot goes to `docs/dashboard.png` with `SAVE_DASHBOARD_SCREENSHOT=1` (else to a
//! temporary directory), for people to look at.

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use support::browser::{DevTools, chromium, open, skipped, wait_for};
use support::dashboard::{VIEWER, dashboard_world, running_and_queued};

/// Evaluates `expression`, awaiting it when it is a promise.
async fn evaluate_async(devtools: &mut DevTools, session: &str, expression: &str) -> Value {
    let result = devtools
        .call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )
        .await;
    result["result"]["value"].clone()
}

/// The state each node of `repo`'s graph shows, by issue.
const NODE_STATES: &str = "(repo) => Array.from(document.querySelectorAll(`section[data-repo=\"${repo}\"] svg g.node`)).map(g => g.dataset.issue + ' ' + g.dataset.state).join(', ')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_signs_in_shows_the_graph_and_follows_a_change_live() {
    let Some(binary) = chromium() else {
        skipped("the_dashboard_signs_in_shows_the_graph_and_follows_a_change_live");
        return;
    };
    let world = dashboard_world().await;
    world.github.state.lock().unwrap().oauth.signed_in = Some(VIEWER.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = world.app.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let (_browser, mut devtools, session) =
        open(binary, &format!("http://{address}/dashboard")).await;
    devtools
        .call(
            Some(&session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
    // GitHub (the fake) approves and sends the browser back; the callback signs it in.
    wait_for(
        &mut devtools,
        &session,
        "document.readyState === 'complete' && !!document.querySelector('section[data-repo=\"acme/api\"] svg')",
    )
    .await;
    assert_eq!(
        devtools.evaluate(&session, "location.pathname").await,
        "/dashboard"
    );
    assert_eq!(
        devtools.evaluate(&session, "document.cookie").await,
        "",
        "HTTP-only"
    );
    assert_eq!(
        devtools
            .evaluate(
                &session,
                "Array.from(document.querySelectorAll('section.repo')).map(s => s.dataset.repo).join(',')"
            )
            .await,
        "acme/api,acme/web"
    );
    let html = devtools
        .evaluate(&session, "document.documentElement.outerHTML")
        .await;
    let html = html.as_str().unwrap();
    for hidden in ["other/lib", "Rotate the signing keys", "Internal audit"] {
        assert!(!html.contains(hidden), "{hidden} shown");
    }
    let json = evaluate_async(
        &mut devtools,
        &session,
        "fetch('/dashboard/data').then(r => r.text())",
    )
    .await;
    let json = json.as_str().unwrap();
    assert!(
        !json.contains("other/lib") && !json.contains("Rotate"),
        "{json}"
    );
    let data: Value = serde_json::from_str(json).unwrap();
    let repos: Vec<&str> = data["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["repo"].as_str().unwrap())
        .collect();
    assert_eq!(repos, ["acme/api", "acme/web"]);

    let (running, queued) = running_and_queued(&world);
    let states = devtools
        .evaluate(&session, &format!("({NODE_STATES})('acme/api')"))
        .await;
    let expected = {
        let mut nodes = [
            ("acme/api#1".to_owned(), "done", 0),
            ("acme/api#5".to_owned(), "failed", 0),
            (format!("acme/api#{running}"), "running", 1),
            (format!("acme/api#{queued}"), "queued", 1),
            ("acme/api#4".to_owned(), "blocked", 2),
            ("acme/api#6".to_owned(), "blocked", 3),
        ];
        nodes.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
        nodes
            .iter()
            .map(|(issue, state, _)| format!("{issue} {state}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    assert_eq!(states, expected);
    assert_eq!(
        devtools
            .evaluate(
                &session,
                "document.querySelectorAll('section[data-repo=\"acme/api\"] svg path.edge').length"
            )
            .await,
        json!(5),
        "#1->#2, #1->#3, #2->#4, #3->#4, #4->#6"
    );
    let list = |class: &str| {
        format!(
            "Array.from(document.querySelectorAll('section[data-repo=\"acme/api\"] ul.{class} li')).map(li => li.dataset.issue).join(',')"
        )
    };
    assert_eq!(
        devtools.evaluate(&session, &list("queued")).await,
        format!("acme/api#{queued}")
    );
    assert_eq!(
        devtools.evaluate(&session, &list("failed")).await,
        "acme/api#5"
    );
    assert_eq!(
        devtools.evaluate(&session, &list("done")).await,
        "acme/api#1"
    );

    screenshot(&mut devtools, &session).await;

    // A marker the page would lose on a reload.
    devtools
        .evaluate(&session, "window.keptAcrossUpdates = 'yes'; true")
        .await;
    let changed = Instant::now();
    world.close("acme/api", queued, "completed").await;
    let moved = format!(
        "({NODE_STATES})('acme/api').includes('acme/api#{queued} done') && document.querySelector('section[data-repo=\"acme/api\"] ul.done li[data-issue=\"acme/api#{queued}\"]') !== null"
    );
    loop {
        if devtools.evaluate(&session, &moved).await == json!(true) {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(2),
            "the closed blocker did not show within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(changed.elapsed() < Duration::from_secs(2));
    assert_eq!(
        devtools
            .evaluate(&session, "window.keptAcrossUpdates")
            .await,
        "yes",
        "the page was reloaded"
    );
    assert!(
        devtools
            .evaluate(&session, "window.dashboardSwaps")
            .await
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(
        devtools.evaluate(&session, &list("queued")).await,
        "",
        "no longer queued"
    );
}

/// The whole page as PNG: to `docs/dashboard.png` with `SAVE_DASHBOARD_SCREENSHOT=1`,
/// else to a temporary directory.
async fn screenshot(devtools: &mut DevTools, session: &str) {
    let shot = devtools
        .call(
            Some(session),
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        )
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let path = if std::env::var_os("SAVE_DASHBOARD_SCREENSHOT").is_some() {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png")
    } else {
        std::env::temp_dir().join("codegen-orchestrator-dashboard.png")
    };
    std::fs::write(&path, png).unwrap();
    eprintln!("dashboard screenshot: {}", path.display());
}
