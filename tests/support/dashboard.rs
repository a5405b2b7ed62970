//! The dashboard's test world: a realistic graph in `acme/api` (one issue done, one failed,
//! one running, a chain of blocked ones, a blocker in `other/lib` the viewer may not read),
//! a viewer whose installation lists `acme/api` and `acme/web` but not `other/lib`, and a
//! visitor that keeps cookies as a browser does and signs in through the fake's OAuth.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use codegen_orchestrator::config::{Config, Secret};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::fake_oauth::{CLIENT_ID, CLIENT_SECRET};
use super::world::{INSTALLATION, MAINTAINER, World};

/// The viewer of the dashboard tests.
pub const VIEWER: &str = "octocat";

/// The App's OAuth credentials, as a user configures them.
pub fn with_oauth(config: &mut Config) {
    config.github.client_id = Some(CLIENT_ID.to_owned());
    config.github.client_secret = Some(Secret::new(CLIENT_SECRET));
}

/// The world of the dashboard tests, its state settled: in `acme/api`, #1 done (with a
/// pull request), #5 failed, #2 and #3 after #1 (one running, one queued: one agent), #4
/// after #2, #3 and `other/lib#7`, #6 after #4; `acme/web#8` queued; `other/lib#9` managed
/// and blocked by `other/lib#7`. `VIEWER` may read `acme/api` and `acme/web` only.
pub async fn dashboard_world() -> World {
    let world = World::start_with(|config| {
        with_oauth(config);
        config.codegen.max_concurrent_agents = 1;
    })
    .await;
    let issues = [
        ("acme/api", 1, "Define the accounts schema", ""),
        ("acme/api", 2, "Accounts REST API", "Depends on #1"),
        ("acme/api", 3, "Billing service", "Depends on #1"),
        (
            "acme/api",
            4,
            "Accounts page in the dashboard",
            "Depends on #2, #3 and other/lib#7",
        ),
        ("acme/api", 5, "Import legacy customers", ""),
        ("acme/api", 6, "Document the accounts API", "Depends on #4"),
        ("other/lib", 7, "Rotate the signing keys", ""),
        ("acme/web", 8, "Refresh the pricing page", ""),
        ("other/lib", 9, "Internal audit of key use", "Depends on #7"),
    ];
    for (repo, number, title, body) in issues {
        world.add_issue(repo, number, title, body, &[]);
    }
    // The importer runs first and fails.
    world.label("acme/api", 5, "codegen", MAINTAINER).await;
    world.settle_effects().await;
    let run = world.run_of("acme/api", 5);
    world.codegen.finish(run, "FAILED", None);
    world.settle_effects().await;
    // The schema runs, succeeds with a pull request, and is closed.
    world.label("acme/api", 1, "codegen", MAINTAINER).await;
    for number in [2, 3, 4, 6] {
        world.label("acme/api", number, "codegen", MAINTAINER).await;
    }
    world.label("other/lib", 9, "codegen", MAINTAINER).await;
    world.settle_effects().await;
    let run = world.run_of("acme/api", 1);
    world
        .codegen
        .finish(run, "COMPLETE", Some("https://github.com/acme/api/pull/11"));
    world.settle_effects().await;
    world.close("acme/api", 1, "completed").await;
    world.settle_effects().await;
    // The one agent works on #2 or #3; the pricing page waits behind the other.
    world.label("acme/web", 8, "codegen", MAINTAINER).await;
    world.settle_effects().await;
    world
        .github
        .state
        .lock()
        .unwrap()
        .oauth
        .grant(VIEWER, INSTALLATION, &["acme/api", "acme/web"]);
    world
}

/// Of #2 and #3, the one running and the one queued.
pub fn running_and_queued(world: &World) -> (u64, u64) {
    let launched = world.launches();
    if launched.iter().any(|l| l.starts_with("acme/api#2 ")) {
        (2, 3)
    } else {
        (3, 2)
    }
}

/// A browser without JavaScript: requests through the app's router, cookies kept.
pub struct Visitor {
    router: axum::Router,
    /// Cookies by name.
    pub cookies: BTreeMap<String, String>,
}

impl Visitor {
    /// A visitor of the world's app.
    pub fn new(world: &World) -> Self {
        Self::of(world.app.router())
    }

    /// A visitor of another app (a second replica).
    pub fn of(router: axum::Router) -> Self {
        Self {
            router,
            cookies: BTreeMap::new(),
        }
    }

    /// `GET path`; the status, headers and body, cookies kept as a browser keeps them.
    pub async fn get(&mut self, path: &str) -> (StatusCode, HeaderMap, String) {
        self.send("GET", path).await
    }

    /// `POST path` with an empty form, as a button does.
    pub async fn post(&mut self, path: &str) -> (StatusCode, HeaderMap, String) {
        self.send("POST", path).await
    }

    async fn send(&mut self, method: &str, path: &str) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "dashboard.test");
        if !self.cookies.is_empty() {
            let cookie: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request = request.header(header::COOKIE, cookie.join("; "));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// Opens `/dashboard`, follows GitHub's authorize page (where `login` is signed in and
    /// approves) back to the callback; returns the callback's answer.
    pub async fn sign_in(&mut self, world: &World, login: &str) -> (StatusCode, HeaderMap, String) {
        world.github.state.lock().unwrap().oauth.signed_in = Some(login.to_owned());
        let (status, headers, body) = self.get("/dashboard").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        let authorize = location(&headers);
        let callback = approve(&authorize).await;
        self.get(&callback).await
    }
}

/// The `Location` header.
pub fn location(headers: &HeaderMap) -> String {
    headers
        .get(header::LOCATION)
        .expect("no Location")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Opens GitHub's authorize page (the fake's) at `url`; returns the path and query of the
/// callback GitHub sends the browser back to.
pub async fn approve(url: &str) -> String {
    let (status, headers, body) = super::server::http("GET", url, &[], Vec::new())
        .await
        .expect("the fake GitHub answers");
    assert_eq!(status, 302, "{body}");
    let back = location(&headers);
    let without_scheme = back
        .split_once("://")
        .map_or(back.as_str(), |(_, rest)| rest);
    without_scheme[without_scheme.find('/').unwrap()..].to_owned()
}
