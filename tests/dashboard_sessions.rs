//! Dashboard sessions over plain HTTP: forged and expired cookies send the browser to sign
//! in again, what a viewer may read is listed again once it is 5 minutes old (lost access
//! hides a repository, a revoked token ends the session), cookies are `Secure` behind
//! HTTPS, and replicas on one PostgreSQL database share sessions and show the same boards.

mod support;

use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use support::dashboard::{VIEWER, Visitor, dashboard_world, location, with_oauth};
use support::world::{INSTALLATION, World};

const SESSION: &str = "codegen_orchestrator_session";

#[tokio::test]
async fn forged_and_expired_session_cookies_send_the_browser_to_sign_in_again() {
    let world = dashboard_world().await;
    let mut visitor = Visitor::new(&world);
    visitor.sign_in(&world, VIEWER).await;
    let genuine = visitor.cookies[SESSION].clone();
    let (secret, rest) = genuine.split_once('.').unwrap();
    let expires: i64 = rest.split('.').next().unwrap().parse().unwrap();
    assert_eq!(visitor.get("/dashboard").await.0, StatusCode::OK);

    let forgeries = [
        // The signature of another value.
        format!(
            "{}{}",
            &secret[..secret.len() - 1],
            if secret.ends_with('0') { '1' } else { '0' }
        ) + &genuine[secret.len()..],
        // A later expiry under the old signature.
        genuine.replacen(&format!(".{expires}."), &format!(".{}.", expires + 1), 1),
        // Signed with the right key but expired.
        seal(&world, secret, 1_000).await,
        // Signed with the right key, for a session that does not exist.
        seal(&world, &"ab".repeat(32), expires).await,
        "garbage".to_owned(),
    ];
    for forged in forgeries {
        let mut stranger = Visitor::new(&world);
        stranger.cookies.insert(SESSION.to_owned(), forged.clone());
        let (status, headers, body) = stranger.get("/dashboard").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{forged}: {body}");
        assert!(
            location(&headers).contains("/login/oauth/authorize?"),
            "{forged}"
        );
        assert!(!body.contains("acme/api"), "{forged}: {body}");
        let (status, _, json) = stranger.get("/dashboard/data?repo=acme/api").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{forged}");
        assert!(!json.contains("Accounts"), "{json}");
    }
}

/// The session key the server keeps in its store, to forge cookies with.
async fn seal(world: &World, secret: &str, expires: i64) -> String {
    let key = world
        .app
        .store
        .setting("dashboard:cookie_key")
        .await
        .unwrap()
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(key).unwrap()).unwrap();
    mac.update(format!("{SESSION}|{secret}|{expires}").as_bytes());
    format!(
        "{secret}.{expires}.{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The session id the store keeps a browser's session under: the SHA-256 of the secret in
/// its cookie.
fn session_id(visitor: &Visitor) -> String {
    use sha2::Digest;
    let secret = visitor.cookies[SESSION]
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[tokio::test]
async fn what_a_viewer_may_read_is_listed_again_and_a_refused_token_ends_the_session() {
    let world = dashboard_world().await;
    let mut visitor = Visitor::new(&world);
    visitor.sign_in(&world, VIEWER).await;
    assert_eq!(
        visitor.get("/dashboard/data?repo=acme/web").await.0,
        StatusCode::OK
    );
    // The viewer loses read access to acme/web. Within the 5 minutes the list is trusted,
    // nothing changes; once it is older, it is listed again with their token.
    {
        let mut github = world.github.state.lock().unwrap();
        github.oauth.users.clear();
        github.oauth.grant(VIEWER, INSTALLATION, &["acme/api"]);
    }
    assert_eq!(
        visitor.get("/dashboard/data?repo=acme/web").await.0,
        StatusCode::OK
    );
    let id = session_id(&visitor);
    let store = &world.app.store;
    let session = store.dashboard_session(&id, 0).await.unwrap().unwrap();
    store
        .refresh_dashboard_session(&id, &session.reach, session.checked_at - 6 * 60 * 1000)
        .await
        .unwrap();
    let (status, _, json) = visitor.get("/dashboard/data?repo=acme/web").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    let (status, _, page) = visitor.get("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("acme/web"), "{page}");

    // The viewer revokes the App's authorization: the next listing is refused (401) and
    // the session ends; the browser is sent to sign in again.
    world.github.state.lock().unwrap().oauth.revoke(VIEWER);
    let session = store.dashboard_session(&id, 0).await.unwrap().unwrap();
    store
        .refresh_dashboard_session(&id, &session.reach, session.checked_at - 6 * 60 * 1000)
        .await
        .unwrap();
    let (status, headers, page) = visitor.get("/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(location(&headers).contains("/login/oauth/authorize?"));
    assert!(store.dashboard_session(&id, 0).await.unwrap().is_none());
}

#[tokio::test]
async fn signing_out_ends_the_session_in_the_store_and_in_the_browser() {
    let world = dashboard_world().await;
    let mut visitor = Visitor::new(&world);
    visitor.sign_in(&world, VIEWER).await;
    let (_, _, page) = visitor.get("/dashboard").await;
    assert!(page.contains(r#"action="/dashboard/signout""#), "{page}");
    let id = session_id(&visitor);
    let kept = visitor.cookies[SESSION].clone();
    let (status, headers, _) = visitor.post("/dashboard/signout").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/");
    assert!(
        !visitor.cookies.contains_key(SESSION),
        "the cookie is cleared"
    );
    assert!(
        world
            .app
            .store
            .dashboard_session(&id, 0)
            .await
            .unwrap()
            .is_none()
    );
    // A copy of the old cookie is of no use any more.
    visitor.cookies.insert(SESSION.to_owned(), kept);
    assert_eq!(visitor.get("/dashboard").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn cookies_are_secure_when_the_browser_came_over_https() {
    let world = World::start_with(with_oauth).await;
    let request = axum::http::Request::get("/dashboard")
        .header("host", "bot.example.com")
        .header("x-forwarded-proto", "https")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(world.app.router(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let target = location(response.headers());
    assert!(
        target.contains("redirect_uri=https%3A%2F%2Fbot.example.com%2Fdashboard%2Fcallback"),
        "{target}"
    );
}

/// Two replicas on one PostgreSQL database: a browser signed in on one is signed in on
/// the other (one cookie key, sessions in the store), and both show the same boards, read
/// from the store whichever replica holds the installation's lease.
#[tokio::test]
async fn replicas_sharing_postgres_share_sessions_and_show_the_same_boards() {
    let stores = support::stores::all().await;
    let Some(postgres) = stores.iter().find(|s| s.name == "postgres") else {
        return;
    };
    let url = postgres.url.clone();
    let world = World::start_with(|config| {
        with_oauth(config);
        config.storage.url = url;
    })
    .await;
    world.add_issue("acme/api", 1, "Define the accounts schema", "", &[]);
    world.add_issue("acme/api", 2, "Accounts REST API", "Depends on #1", &[]);
    for number in [1, 2] {
        world
            .label("acme/api", number, "codegen", support::world::MAINTAINER)
            .await;
    }
    // This replica takes the installation's lease (`serve` renews leases in the
    // background), then handles what waited for it.
    let orchestrator = world.app.orchestrator.as_ref().unwrap();
    orchestrator.balance().await.unwrap();
    world.app.processor.drain().await.unwrap();
    world.settle_effects().await;
    world
        .github
        .state
        .lock()
        .unwrap()
        .oauth
        .grant(VIEWER, INSTALLATION, &["acme/api"]);
    let mut first = Visitor::new(&world);
    assert_eq!(first.sign_in(&world, VIEWER).await.0, StatusCode::SEE_OTHER);
    let replica = world.replica().await;
    // The second replica holds no lease: its engine knows nothing of the installation.
    let held = replica.orchestrator.as_ref().unwrap().scope();
    assert!(!held.contains(codegen_orchestrator::domain::InstallationId(INSTALLATION)));
    let mut second = Visitor::of(replica.router());
    second.cookies = first.cookies.clone();
    let (status, _, on_first) = first.get("/dashboard/data?repo=acme/api").await;
    assert_eq!(status, StatusCode::OK, "{on_first}");
    let (status, _, on_second) = second.get("/dashboard/data?repo=acme/api").await;
    assert_eq!(status, StatusCode::OK, "{on_second}");
    let boards = |json: &str| serde_json::from_str::<Value>(json).unwrap()["repositories"].clone();
    // The same boards, up to what the clock moves between the two requests: time run and
    // agent hours left (the forecasts are made a few milliseconds apart).
    assert_eq!(timeless(boards(&on_first)), timeless(boards(&on_second)));
    let board = &boards(&on_second)[0];
    assert_eq!(board["running"][0]["issue"], "acme/api#1", "{board:#}");
    assert_eq!(board["blocked"][0]["issue"], "acme/api#2");
    replica.store.close().await;
}

/// `value` without its clock-dependent fields (`elapsed_secs`, `agent_hours`).
fn timeless(mut value: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("elapsed_secs");
                map.remove("agent_hours");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}
