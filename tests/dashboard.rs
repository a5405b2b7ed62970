//! The dashboard over plain HTTP: signing in through the fake GitHub's OAuth, what a viewer
//! sees (only the repositories their installations list; pauses), and the refusals: no
//! cookie, a forged state, a code GitHub refuses, a viewer with no installations, a
//! repository the viewer cannot see, no OAuth credentials. Then the real binary, configured
//! as a user configures it, sending the browser to GitHub and signing in. Sessions
//! (forged and expired cookies, access listed again, replicas) are in `dashboard_sessions.rs`.

mod support;

use axum::http::StatusCode;
use serde_json::Value;
use support::dashboard::{
    VIEWER, Visitor, approve, dashboard_world, location, running_and_queued, with_oauth,
};
use support::fake_oauth::CLIENT_ID;
use support::server::{Server, http};
use support::world::{INSTALLATION, World};

const SESSION: &str = "codegen_orchestrator_session";
const SIGN_IN: &str = "codegen_orchestrator_signin";

#[tokio::test]
async fn without_a_session_the_browser_is_sent_to_github_with_a_state_bound_to_it() {
    let world = World::start_with(with_oauth).await;
    let mut visitor = Visitor::new(&world);
    let (status, headers, _) = visitor.get("/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let target = location(&headers);
    let expected = format!(
        "{}/login/oauth/authorize?client_id={CLIENT_ID}&redirect_uri=http%3A%2F%2Fdashboard.test%2Fdashboard%2Fcallback&state=",
        world.github.url
    );
    assert!(target.starts_with(&expected), "{target}");
    let set_cookie = headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        set_cookie.starts_with(SIGN_IN)
            && set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Lax")
            && set_cookie.contains("Path=/dashboard"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains("Secure"), "plain http here");
    // Scripts get JSON, not a redirect.
    let (status, _, body) = visitor.get("/dashboard/data").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    assert_eq!(
        visitor.get("/dashboard/live").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_signed_in_viewer_sees_exactly_the_repositories_their_installation_lists() {
    let world = dashboard_world().await;
    // GitHub pages its listings; here one item a page.
    world.github.state.lock().unwrap().oauth.page_size = 1;
    let mut visitor = Visitor::new(&world);
    let (status, headers, body) = visitor.sign_in(&world, VIEWER).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location(&headers), "/dashboard");
    assert!(visitor.cookies.contains_key(SESSION));
    assert!(
        !visitor.cookies.contains_key(SIGN_IN),
        "the state is used up"
    );
    let cookie = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(SESSION))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Max-Age=")
    );
    // No token in the browser: the cookie is a random secret with its expiry and signature.
    let tokens: Vec<String> = world
        .github
        .state
        .lock()
        .unwrap()
        .oauth
        .tokens
        .keys()
        .cloned()
        .collect();
    assert_eq!(tokens.len(), 1);
    assert!(!cookie.contains(&tokens[0]));

    let (status, _, page) = visitor.get("/dashboard").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("data-repo=\"acme/api\"") && page.contains("data-repo=\"acme/web\""));
    for secret in [
        "other/lib",
        "Rotate the signing keys",
        "Internal audit",
        &tokens[0],
    ] {
        assert!(!page.contains(secret), "{secret} shown:\n{page}");
    }
    let (running, queued) = running_and_queued(&world);
    assert!(page.contains(&format!(r#"<li data-issue="acme/api#{running}">"#)));
    assert!(
        page.contains("1 blocker you or the App cannot see"),
        "{page}"
    );
    assert_eq!(
        page.matches("<g class=\"node\"").count(),
        6 + 1,
        "acme/api's six, acme/web's one"
    );

    let (status, _, json) = visitor.get("/dashboard/data?repo=acme/api").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert!(!json.contains("other/lib") && !json.contains("Rotate the signing keys"));
    let data: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(data["login"], VIEWER);
    let board = &data["repositories"][0];
    assert_eq!(board["repo"], "acme/api");
    assert_eq!(board["graph"]["nodes"].as_array().unwrap().len(), 6);
    assert_eq!(board["totals"]["issues"], 6);
    assert_eq!(board["running"][0]["issue"], format!("acme/api#{running}"));
    assert_eq!(board["queued"][0]["issue"], format!("acme/api#{queued}"));
    assert_eq!(board["failed"][0]["issue"], "acme/api#5");
    assert_eq!(board["failed"][0]["retry"], "/codegen retry");
    assert_eq!(
        board["done"][0]["pull_requests"][0],
        "https://github.com/acme/api/pull/11"
    );
    assert_eq!(board["blocked"].as_array().unwrap().len(), 2);

    // A repository of the same installation the viewer may not read, and one that does not
    // exist, get the same answer.
    let (status, _, hidden) = visitor.get("/dashboard/data?repo=other/lib").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, missing) = visitor.get("/dashboard/data?repo=nobody/nothing").await;
    assert_eq!(hidden, missing);
    assert!(!hidden.contains("Rotate"));
    // Opened with `?repo=`, the sign-in comes back to that repository's page.
    let mut deep = Visitor::new(&world);
    let (_, headers, _) = deep.get("/dashboard?repo=acme/web").await;
    let callback = approve(&location(&headers)).await;
    let (status, headers, _) = deep.get(&callback).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/dashboard?repo=acme%2Fweb");
    let (status, _, page) = visitor.get("/dashboard?repo=other/lib").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains("Rotate"), "{page}");
    let (status, _, live) = visitor.get("/dashboard/live?repo=acme/web").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        live.contains("acme/web#8") && !live.contains("acme/api#"),
        "{live}"
    );
}

#[tokio::test]
async fn a_used_up_codegen_quota_and_a_paused_repository_are_shown() {
    let world = World::start_with(with_oauth).await;
    world.codegen.fault(
        support::fake_codegen::Target::Create,
        402,
        serde_json::json!({"message": "Alloted agent runs for the current billing plan have been reached.", "status_code": 402}),
    );
    world.add_issue("acme/api", 1, "Define the accounts schema", "", &[]);
    world
        .label("acme/api", 1, "codegen", support::world::MAINTAINER)
        .await;
    world.settle_effects().await;
    world
        .comment("acme/api", 1, "/codegen pause", support::world::MAINTAINER)
        .await;
    world.settle_effects().await;
    world
        .github
        .state
        .lock()
        .unwrap()
        .oauth
        .grant(VIEWER, INSTALLATION, &["acme/api"]);
    let mut visitor = Visitor::new(&world);
    visitor.sign_in(&world, VIEWER).await;
    let (status, _, json) = visitor.get("/dashboard/data?repo=acme/api").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let board = &serde_json::from_str::<Value>(&json).unwrap()["repositories"][0];
    assert!(
        board["quota_pause"]
            .as_str()
            .is_some_and(|m| m.contains("billing plan")),
        "{board:#}"
    );
    assert_eq!(board["paused_by"], support::world::MAINTAINER, "{board:#}");
    assert_eq!(board["resume"], "/codegen resume");
    let (_, _, page) = visitor.get("/dashboard").await;
    assert!(page.contains("Codegen's plan quota is used up"), "{page}");
    assert!(page.contains("<code>/codegen resume</code>"), "{page}");

    // Resumed: the repository's pause ends (Codegen, still refusing, pauses launches again
    // at the next try).
    world
        .comment("acme/api", 1, "/codegen resume", support::world::MAINTAINER)
        .await;
    world.settle_effects().await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let (_, _, json) = visitor.get("/dashboard/data?repo=acme/api").await;
    let board = &serde_json::from_str::<Value>(&json).unwrap()["repositories"][0];
    assert!(board["paused_by"].is_null(), "{board:#}");
}

#[tokio::test]
async fn a_forged_or_missing_state_is_refused_before_the_code_is_used() {
    let world = World::start_with(with_oauth).await;
    world
        .github
        .state
        .lock()
        .unwrap()
        .oauth
        .grant(VIEWER, INSTALLATION, &["acme/api"]);
    world.github.state.lock().unwrap().oauth.signed_in = Some(VIEWER.into());
    let mut visitor = Visitor::new(&world);
    let (_, headers, _) = visitor.get("/dashboard").await;
    let callback = approve(&location(&headers)).await;
    let code = callback
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();

    for forged in [
        format!("/dashboard/callback?code={code}&state=forged"),
        format!("/dashboard/callback?code={code}"),
    ] {
        let (status, _, page) = visitor.get(&forged).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
        assert!(page.contains("Sign-in not started here"), "{page}");
    }
    // The right state from a browser without the sign-in cookie.
    let (status, _, _) = Visitor::new(&world).get(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        world
            .github
            .state
            .lock()
            .unwrap()
            .oauth
            .exchanges
            .is_empty(),
        "the code was never sent"
    );
    // The browser that started it signs in.
    assert_eq!(visitor.get(&callback).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_code_github_refuses_is_a_page_saying_sign_in_failed() {
    let world = World::start_with(with_oauth).await;
    world
        .github
        .state
        .lock()
        .unwrap()
        .oauth
        .grant(VIEWER, INSTALLATION, &["acme/api"]);
    let mut visitor = Visitor::new(&world);
    let (status, _, _) = visitor.sign_in(&world, VIEWER).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The same code again (a reload of the callback, with a new state): GitHub answers 200
    // with `bad_verification_code`, as it does for a used or expired code.
    let mut again = Visitor::new(&world);
    let (_, headers, _) = again.get("/dashboard").await;
    let fresh = approve(&location(&headers)).await;
    let state = fresh.split("state=").nth(1).unwrap().to_owned();
    let used = world.github.state.lock().unwrap().oauth.exchanges[0]["code"].clone();
    let (status, _, page) = again
        .get(&format!("/dashboard/callback?code={used}&state={state}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("Sign-in failed") && page.contains("bad_verification_code"),
        "{page}"
    );
    assert!(!again.cookies.contains_key(SESSION));
    assert!(!page.contains(support::fake_oauth::CLIENT_SECRET));
    // The viewer declining on GitHub's page comes back with `error=access_denied`.
    let (_, headers, _) = again.get("/dashboard").await;
    let state = location(&headers)
        .split("state=")
        .nth(1)
        .unwrap()
        .to_owned();
    let (status, _, page) = again
        .get(&format!(
            "/dashboard/callback?error=access_denied&state={state}"
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("access_denied"), "{page}");
}

#[tokio::test]
async fn a_viewer_without_installations_is_told_they_can_see_nothing_and_how_to_get_access() {
    let world = dashboard_world().await;
    let mut visitor = Visitor::new(&world);
    let (status, _, _) = visitor.sign_in(&world, "stranger").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = visitor.get("/dashboard").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("Nothing to show") && page.contains("stranger"),
        "{page}"
    );
    assert!(
        page.contains("read\naccess") || page.contains("read access"),
        "{page}"
    );
    assert!(!page.contains("acme/api"), "{page}");
    let (status, _, json) = visitor.get("/dashboard/data").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!json.contains("acme/api"), "{json}");
}

#[tokio::test]
async fn without_oauth_credentials_the_dashboard_says_how_to_enable_it_and_shows_nothing() {
    let world = World::start().await;
    let (status, _, page) = Visitor::new(&world).get("/dashboard").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.contains("github.client_id") && page.contains("/setup"),
        "{page}"
    );
    assert!(
        page.contains("http://dashboard.test/dashboard/callback"),
        "{page}"
    );
    let (status, _, _) = Visitor::new(&world)
        .get("/dashboard/data?repo=acme/api")
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

/// The real binary with only what a user sets: `/dashboard` sends the browser to the
/// fake GitHub's authorize page, and the sign-in completes against it.
#[tokio::test]
async fn the_binary_signs_a_viewer_in_with_the_configuration_a_user_writes() {
    let world = World::start().await;
    world.github.state.lock().unwrap().oauth.signed_in = Some(VIEWER.into());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!("github:\n  api_url: {}\n", world.github.url),
    )
    .unwrap();
    let server = Server::start(
        "dashboard",
        dir.path(),
        &[
            ("GITHUB_CLIENT_ID", CLIENT_ID.to_owned()),
            (
                "GITHUB_CLIENT_SECRET",
                support::fake_oauth::CLIENT_SECRET.to_owned(),
            ),
        ],
    );
    let (status, headers, _) = http("GET", &server.url("/dashboard"), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 303);
    let target = location(&headers);
    let callback = format!(
        "http%3A%2F%2F{}%2Fdashboard%2Fcallback",
        server.address.replace(':', "%3A")
    );
    assert!(
        target.starts_with(&format!(
            "{}/login/oauth/authorize?client_id={CLIENT_ID}&redirect_uri={callback}&state=",
            world.github.url
        )),
        "{target}"
    );
    let cookie = headers.get("set-cookie").unwrap().to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let back = approve(&target).await;
    let (status, headers, body) =
        http("GET", &server.url(&back), &[("cookie", cookie)], Vec::new())
            .await
            .unwrap();
    assert_eq!(status, 303, "{body}");
    let session = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with(SESSION))
        .unwrap();
    // Signed in; this viewer's account reaches no installation of the App.
    let (status, _, page) = http(
        "GET",
        &server.url("/dashboard"),
        &[("cookie", session)],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Nothing to show"), "{page}");
    let logs = server.logs();
    assert!(!logs.contains(support::fake_oauth::CLIENT_SECRET), "{logs}");
    let tokens: Vec<String> = world
        .github
        .state
        .lock()
        .unwrap()
        .oauth
        .tokens
        .keys()
        .cloned()
        .collect();
    assert!(tokens.iter().all(|t| !logs.contains(t.as_str())), "{logs}");
}
