//! The door: every malformed, unsigned or oversized request is refused with its status and
//! leaves the store untouched; accepted deliveries are stored once.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use codegen_orchestrator::config::{Config, SecretList};
use codegen_orchestrator::domain::DeliveryId;
use codegen_orchestrator::http::DoorLimits;
use codegen_orchestrator::processor::RetryPolicy;
use codegen_orchestrator::runtime::App;
use http_body_util::BodyExt;
use support::{SECRET, TestApp, all_fixtures, fixture, webhook};
use tower::ServiceExt;

const LABELED: &str = "issues/labeled.with-organization.payload.json";
const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

#[tokio::test]
async fn a_signed_delivery_is_stored_and_answered_202() {
    let app = TestApp::start().await;
    let (status, body) = app.deliver("issues", DELIVERY, &fixture(LABELED)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(app.stored().await, 1);
}

#[tokio::test]
async fn refused_requests_get_their_status_and_store_nothing() {
    let app = TestApp::start().await;
    let body = fixture(LABELED);
    let truncated_signature = support_signature(&body)[..40].to_owned();
    let sha1_only = webhook("issues", DELIVERY, &body)
        .header(
            "x-hub-signature",
            "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6",
        )
        .unsigned();
    let cases: Vec<(&str, Request<Body>, StatusCode)> = vec![
        (
            "wrong secret",
            webhook("issues", DELIVERY, &body).signed("not-the-secret"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "missing signature",
            webhook("issues", DELIVERY, &body).unsigned(),
            StatusCode::UNAUTHORIZED,
        ),
        ("sha1= only", sha1_only, StatusCode::UNAUTHORIZED),
        (
            "truncated hex",
            webhook("issues", DELIVERY, &body)
                .header("x-hub-signature-256", &truncated_signature)
                .unsigned(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "signature of another body",
            webhook("issues", DELIVERY, &body)
                .header("x-hub-signature-256", &support_signature(b"{}"))
                .unsigned(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "invalid JSON",
            webhook("issues", DELIVERY, b"{\"action\": ").signed(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            "JSON with trailing garbage",
            webhook("issues", DELIVERY, b"{} {}").signed(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            "deeply nested JSON",
            webhook("issues", DELIVERY, &nested(10_000)).signed(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            "invalid UTF-8",
            webhook("issues", DELIVERY, b"{\"action\": \"\xff\"}").signed(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            "missing event header",
            without_header("x-github-event", &body),
            StatusCode::BAD_REQUEST,
        ),
        (
            "missing delivery header",
            without_header("x-github-delivery", &body),
            StatusCode::BAD_REQUEST,
        ),
        (
            "delivery id with a space",
            webhook("issues", "a b", &body).signed(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            "delivery id of 129 characters",
            webhook("issues", &"a".repeat(129), &body).signed(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            "event name that is not one",
            webhook("Issues Event", DELIVERY, &body).signed(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a 64 KiB signature header",
            webhook("issues", DELIVERY, &body)
                .header(
                    "x-hub-signature-256",
                    &format!("sha256={}", "a".repeat(65_536)),
                )
                .unsigned(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a 64 KiB delivery id",
            webhook("issues", &"a".repeat(65_536), &body).signed(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            "form body signed over its JSON instead of the form",
            content_type(
                webhook("issues", DELIVERY, &form_encoded(&body))
                    .header("x-hub-signature-256", &support_signature(&body))
                    .unsigned(),
                FORM,
            ),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "form body without a payload field",
            form_request(b"action=labeled"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "form body with two payload fields",
            form_request(format!("payload=%7B%7D&{}", form_text(&body)).as_bytes()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "form payload that is not JSON",
            form_request(b"payload=%7B%22action%22%3A"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "form payload with a percent-encoded byte that is not UTF-8",
            form_request(b"payload=%7B%22action%22%3A%22%FF%22%7D"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "text/plain",
            content_type(
                webhook("issues", DELIVERY, &body).signed(SECRET),
                "text/plain",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            // Well-formed but unknown: absorbed (202, ignored), nothing stored.
            "a 64 KiB event name",
            webhook(&"a".repeat(65_536), DELIVERY, &body).signed(SECRET),
            StatusCode::ACCEPTED,
        ),
    ];
    for (what, request, expected) in cases {
        let (status, text) = app.send(request).await;
        assert_eq!(status, expected, "{what}: {text}");
    }
    assert_eq!(app.stored().await, 0, "a refused request was stored");
}

/// A webhook created by hand defaults to `application/x-www-form-urlencoded`: every real
/// payload sent that way is stored exactly as its JSON would be, and processed the same.
#[tokio::test]
async fn every_real_payload_sent_form_encoded_is_stored_and_processed_as_its_json() {
    let as_json = TestApp::start().await;
    let as_form = TestApp::start().await;
    let fixtures: Vec<_> = all_fixtures()
        .into_iter()
        .filter(|(event, _, _)| codegen_orchestrator::events::is_supported(event))
        .collect();
    assert!(fixtures.len() > 60, "only {} fixtures", fixtures.len());
    for (n, (event, name, body)) in fixtures.iter().enumerate() {
        let id = delivery_id(n);
        let (status, text) = as_json.deliver(event, &id, body).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "{event}/{name} as JSON: {text}"
        );
        let form = content_type(
            webhook(event, &id, &form_encoded(body)).signed(SECRET),
            FORM,
        );
        let (status, text) = as_form.send(form).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "{event}/{name} as a form: {text}"
        );
    }

    // A lease of 0 ms shows what is stored and leaves it to the processor.
    let stored = |app: &TestApp| {
        let store = app.app.store.clone();
        async move {
            let now = codegen_orchestrator::clock::now_millis();
            store
                .claim_deliveries(10_000, now, 0)
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.id, d.event, d.action, d.repository, d.body))
                .collect::<Vec<_>>()
        }
    };
    let from_json = stored(&as_json).await;
    assert_eq!(from_json.len(), fixtures.len());
    assert!(
        from_json == stored(&as_form).await,
        "a form delivery was stored differently from its JSON"
    );

    tokio::time::sleep(Duration::from_millis(5)).await;
    let json_handled = as_json.app.processor.drain().await.unwrap();
    let form_handled = as_form.app.processor.drain().await.unwrap();
    assert_eq!(
        (json_handled, form_handled),
        (fixtures.len(), fixtures.len())
    );
    for (n, (event, name, _)) in fixtures.iter().enumerate() {
        let id: DeliveryId = delivery_id(n).parse().unwrap();
        let json = as_json.app.store.delivery(&id).await.unwrap().unwrap();
        let form = as_form.app.store.delivery(&id).await.unwrap().unwrap();
        assert_eq!(
            (form.state, form.attempts, form.last_error),
            (json.state, json.attempts, json.last_error),
            "{event}/{name}"
        );
    }
    println!(
        "{} real payloads sent form-encoded: stored byte for byte as their JSON, processed alike",
        fixtures.len()
    );
}

#[tokio::test]
async fn json_is_taken_as_json_and_an_unsupported_content_type_is_answered_415() {
    let app = TestApp::start().await;
    let body = fixture(LABELED);
    let request = content_type(
        webhook("issues", DELIVERY, &body).signed(SECRET),
        "text/plain",
    );
    let (status, text) = app.send(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
    assert!(text.contains("application/json"), "{text}");
    assert_eq!(app.stored().await, 0);

    // Without a content type (hand-made tools) the body is taken as JSON, as before;
    // parameters and case do not matter; and JSON labelled as a form, as `curl -d '{...}'`
    // sends it (README's example), is taken as JSON too.
    let mut request = webhook("issues", "no-type", &body).signed(SECRET);
    request.headers_mut().remove(header::CONTENT_TYPE);
    let json_with_charset = content_type(
        webhook("issues", "charset", &body).signed(SECRET),
        "Application/JSON; charset=utf-8",
    );
    let mut spaced = b"\n ".to_vec();
    spaced.extend_from_slice(&body);
    let curl = form_request_as("curl", &spaced);
    for (what, request) in [
        ("no content type", request),
        ("JSON with a charset", json_with_charset),
        ("JSON labelled as a form", curl),
    ] {
        let (status, text) = app.send(request).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{what}: {text}");
    }
    assert_eq!(app.stored().await, 3);
}

/// serde_json checks UTF-8 only in the strings it keeps, so raw invalid bytes inside a
/// field the door does not read (an issue body) used to be stored and fail the processor.
#[tokio::test]
async fn a_signed_body_with_invalid_utf8_anywhere_is_refused_400() {
    let app = TestApp::start().await;
    let mut payload: serde_json::Value = serde_json::from_slice(&fixture(LABELED)).unwrap();
    payload["issue"]["body"] = serde_json::json!("INVALID");
    let valid = serde_json::to_vec(&payload).unwrap();
    let at = valid
        .windows(b"INVALID".len())
        .position(|w| w == b"INVALID")
        .unwrap();
    let with = |bytes: &[u8]| {
        let mut body = valid[..at].to_vec();
        body.extend_from_slice(bytes);
        body.extend_from_slice(&valid[at + b"INVALID".len()..]);
        body
    };
    for (what, bytes) in [
        ("a Latin-1 byte", &b"caf\xe9"[..]),
        ("a lone continuation byte", b"\x80"),
        ("an encoded surrogate", b"\xed\xa0\x80"),
        ("an overlong slash", b"\xc0\xaf"),
        ("a truncated sequence", b"\xe2\x82"),
    ] {
        let (status, text) = app.deliver("issues", DELIVERY, &with(bytes)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
        assert!(text.contains("UTF-8"), "{what}: {text}");
    }
    assert_eq!(app.stored().await, 0, "an invalid body was stored");
    // The same payload in valid UTF-8 is accepted.
    let (status, text) = app
        .deliver("issues", DELIVERY, &with("café".as_bytes()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
}

#[tokio::test]
async fn a_body_over_25_mib_is_refused_413_whether_declared_or_streamed() {
    let app = TestApp::start().await;
    let mut huge = b"{\"padding\": \"".to_vec();
    huge.resize(26_214_400 + 1 - 2, b'a');
    huge.extend_from_slice(b"\"}");
    assert_eq!(huge.len(), 26_214_401);

    let declared = webhook("issues", DELIVERY, &huge)
        .header("content-length", &huge.len().to_string())
        .signed(SECRET);
    let (status, _) = app.send(declared).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // No Content-Length: the limit holds while streaming.
    let (status, _) = app.deliver("issues", DELIVERY, &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.stored().await, 0);

    // Exactly at the limit is fine (a valid, signed, 25 MiB payload).
    huge.truncate(26_214_400 - 2);
    huge.extend_from_slice(b"\"}");
    let (status, text) = app.deliver("issues", DELIVERY, &huge).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
}

#[tokio::test]
async fn a_body_that_never_finishes_is_timed_out_408() {
    let limits = DoorLimits {
        body_timeout: Duration::from_millis(200),
        ..DoorLimits::default()
    };
    let app = TestApp::start_with(limits, RetryPolicy::default()).await;
    let stalled = futures_stall();
    let request = Request::post("/webhook")
        .header("x-github-event", "issues")
        .header("x-github-delivery", DELIVERY)
        .header("x-hub-signature-256", support_signature(b"{}"))
        .body(Body::from_stream(stalled))
        .unwrap();
    let (status, _) = app.send(request).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(app.stored().await, 0);
}

#[tokio::test]
async fn a_redelivery_is_answered_200_and_stored_once() {
    let app = TestApp::start().await;
    let body = fixture(LABELED);
    let (first, _) = app.deliver("issues", DELIVERY, &body).await;
    let (second, text) = app.deliver("issues", DELIVERY, &body).await;
    assert_eq!(
        (first, second),
        (StatusCode::ACCEPTED, StatusCode::OK),
        "{text}"
    );
    assert_eq!(app.stored().await, 1);
    assert_eq!(app.app.processor.drain().await.unwrap(), 1);
    let (third, _) = app.deliver("issues", DELIVERY, &body).await;
    assert_eq!(third, StatusCode::OK);
    assert_eq!(
        app.app.processor.drain().await.unwrap(),
        0,
        "processed twice"
    );
}

#[tokio::test]
async fn an_unknown_event_is_acknowledged_and_not_stored() {
    let app = TestApp::start().await;
    let (status, text) = app
        .deliver("watch", DELIVERY, b"{\"action\": \"started\"}")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    assert!(text.contains("ignored"), "{text}");
    assert_eq!(app.stored().await, 0);
}

#[tokio::test]
async fn without_a_webhook_secret_every_webhook_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config: Config = support::test_config(&dir);
    config.github.webhook_secret = SecretList::default();
    let app = App::build(&config).await.unwrap();
    let test = TestApp { app, dir };
    let (status, text) = test.deliver("issues", DELIVERY, &fixture(LABELED)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("no webhook secret"), "{text}");
    assert_eq!(test.stored().await, 0);
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::start().await;
    app.deliver("issues", DELIVERY, &fixture(LABELED)).await;
    app.app.processor.drain().await.unwrap();
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    assert_eq!(app.send(get("/healthz")).await.0, StatusCode::OK);
    assert_eq!(app.send(get("/readyz")).await.0, StatusCode::OK);
    let (status, metrics) = app.send(get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        "orchestrator_webhook_deliveries_total{event=\"issues\",outcome=\"accepted\"}",
        "orchestrator_deliveries_processed_total{event=\"issues\",outcome=\"processed\"}",
        "orchestrator_inbox_depth",
        "orchestrator_delivery_processing_latency_seconds",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

fn delivery_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// `body` as GitHub sends it for a form webhook: `payload=` and the url-encoded JSON.
fn form_text(json: &[u8]) -> String {
    let json = std::str::from_utf8(json).expect("fixtures are UTF-8");
    serde_urlencoded::to_string([("payload", json)]).unwrap()
}

fn form_encoded(json: &[u8]) -> Vec<u8> {
    form_text(json).into_bytes()
}

/// A form webhook with `body` as it is (not encoded again), signed.
fn form_request(body: &[u8]) -> Request<Body> {
    form_request_as(DELIVERY, body)
}

fn form_request_as(delivery: &str, body: &[u8]) -> Request<Body> {
    content_type(webhook("issues", delivery, body).signed(SECRET), FORM)
}

fn content_type(mut request: Request<Body>, value: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
    request
}

#[tokio::test]
async fn the_front_page_names_the_product_and_links_what_this_port_serves() {
    let app = TestApp::start().await;
    let response = app
        .app
        .router()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let page = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8_lossy(&page);
    for expected in [
        "codegen-orchestrator",
        concat!("<strong>", env!("CARGO_PKG_VERSION"), "</strong>"),
        "href=\"/setup\"",
        "href=\"/healthz\"",
        "href=\"/metrics\"",
    ] {
        assert!(page.contains(expected), "{expected} missing from:\n{page}");
    }
    assert!(!page.contains("<script"), "{page}");

    // With /metrics on server.metrics_listen, the public page does not point at it.
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::test_config(&dir);
    config.server.metrics_listen = Some("127.0.0.1:0".into());
    let apart = TestApp {
        app: App::build(&config).await.unwrap(),
        dir,
    };
    let (status, page) = apart
        .send(Request::get("/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("href=\"/healthz\""), "{page}");
    assert!(!page.contains("/metrics"), "{page}");
}

fn support_signature(body: &[u8]) -> String {
    codegen_orchestrator::http::sign(SECRET, body)
}

fn without_header(name: &str, body: &[u8]) -> Request<Body> {
    let mut request = webhook("issues", DELIVERY, body).signed(SECRET);
    request.headers_mut().remove(name);
    request
}

fn nested(depth: usize) -> Vec<u8> {
    let mut body = "[".repeat(depth).into_bytes();
    body.extend(std::iter::repeat_n(b']', depth));
    body
}

/// A body stream that yields one chunk and then never another.
fn futures_stall() -> impl futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send
{
    struct Stall(bool);
    impl futures_core::Stream for Stall {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.0 {
                std::task::Poll::Pending
            } else {
                self.0 = true;
                std::task::Poll::Ready(Some(Ok(bytes::Bytes::from_static(b"{"))))
            }
        }
    }
    Stall(false)
}
