//! `POST /webhook`: check everything about the request, store the delivery durably, answer.
//! Nothing is stored or triggered for a request that fails any check.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::time::Instant;

use super::budget::BodyPermit;
use super::form::{self, FormError};
use super::signature::Signature;
use super::{AppState, signature};
use crate::clock::now_millis;
use crate::domain::{DeliveryId, InstallationId};
use crate::events;
use crate::store::{NewDelivery, RecordOutcome};
use crate::telemetry::names;

/// Why a webhook request was turned away; each maps to one status code.
#[derive(Debug, thiserror::Error)]
enum Rejection {
    #[error("no webhook secret is configured; webhooks are refused until one is set")]
    NoSecret,
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error(transparent)]
    BadDeliveryId(#[from] crate::domain::InvalidDeliveryId),
    #[error("X-GitHub-Event is not a valid event name")]
    BadEventName,
    #[error(
        "unsupported Content-Type: choose application/json as the webhook's content type \
         (application/x-www-form-urlencoded is accepted too)"
    )]
    UnsupportedContentType,
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("too many webhook bodies are being received at once; retry later")]
    OverBudget,
    #[error("body not received within the time limit")]
    Timeout,
    #[error("body could not be read")]
    Unreadable,
    #[error(transparent)]
    Signature(#[from] signature::SignatureError),
    #[error(transparent)]
    Form(#[from] FormError),
    #[error("body is not valid UTF-8 (at byte {0}); GitHub sends JSON in UTF-8")]
    InvalidUtf8(usize),
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the delivery could not be stored; please redeliver")]
    Unavailable,
}

impl Rejection {
    fn status(&self) -> StatusCode {
        match self {
            Self::NoSecret | Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::MissingHeader(_)
            | Self::BadDeliveryId(_)
            | Self::BadEventName
            | Self::Unreadable
            | Self::Form(_)
            | Self::InvalidUtf8(_)
            | Self::InvalidJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::OverBudget | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn metric_outcome(&self) -> &'static str {
        match self {
            Self::NoSecret | Self::Signature(_) => "unauthorized",
            Self::UnsupportedContentType => "unsupported_media_type",
            Self::TooLarge(_) => "too_large",
            Self::Timeout => "timeout",
            Self::OverBudget => "over_budget",
            Self::Unavailable => "unavailable",
            _ => "bad_request",
        }
    }
}

/// The fields of a payload the inbox indexes; parsing into this also proves the body is JSON.
#[derive(Deserialize)]
struct Envelope {
    action: Option<String>,
    installation: Option<EnvelopeInstallation>,
    repository: Option<EnvelopeRepository>,
}

#[derive(Deserialize)]
struct EnvelopeInstallation {
    id: u64,
}

#[derive(Deserialize)]
struct EnvelopeRepository {
    full_name: String,
}

/// How the payload travels, from `Content-Type`: the two forms GitHub offers when a
/// webhook is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayloadForm {
    /// `application/json` (what the App's manifest asks for), or no content type at all.
    Json,
    /// `application/x-www-form-urlencoded`: the JSON in a `payload` field.
    Form,
}

impl PayloadForm {
    /// The form `Content-Type` names; any other type is refused before the body is read.
    fn of(headers: &HeaderMap) -> Result<Self, Rejection> {
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            // Hand-made clients may send none, as the door has always allowed; the body is
            // checked as JSON anyway.
            return Ok(Self::Json);
        };
        let value = value
            .to_str()
            .map_err(|_| Rejection::UnsupportedContentType)?;
        let essence = value.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Ok(Self::Json)
        } else if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Ok(Self::Form)
        } else {
            Err(Rejection::UnsupportedContentType)
        }
    }
}

/// Whether a body labelled as a form is JSON itself, as `curl -d '{...}'` sends it (curl
/// labels every `-d` body a form). GitHub's forms start with `payload=`; no form field's
/// name starts with `{`.
fn is_bare_json(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// What the door decided for an acceptable request.
enum Accepted {
    Stored(RecordOutcome),
    IgnoredEvent,
}

pub(super) async fn receive(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let event_label = event_label(&parts.headers);
    let mut retry_after = None;
    let (status, message, outcome) = match accept(&state, &parts.headers, body).await {
        Ok(Accepted::Stored(RecordOutcome::New)) => {
            state.inbox.notify_one();
            (StatusCode::ACCEPTED, "accepted".to_owned(), "accepted")
        }
        Ok(Accepted::Stored(RecordOutcome::Duplicate)) => {
            (StatusCode::OK, "already received".to_owned(), "duplicate")
        }
        Ok(Accepted::IgnoredEvent) => (StatusCode::ACCEPTED, "event ignored".to_owned(), "ignored"),
        Err(rejection) => {
            log_rejection(&state, &parts.headers, &rejection);
            if matches!(rejection, Rejection::OverBudget) {
                // By then every body now in flight has been read or has timed out.
                retry_after = Some(HeaderValue::from(
                    state.limits.body_timeout.as_secs().max(1),
                ));
            }
            (
                rejection.status(),
                rejection.to_string(),
                rejection.metric_outcome(),
            )
        }
    };
    metrics::counter!(names::WEBHOOK_DELIVERIES, "event" => event_label, "outcome" => outcome)
        .increment(1);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, seconds);
    }
    response
}

async fn accept(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Accepted, Rejection> {
    if state.secrets.is_empty() {
        return Err(Rejection::NoSecret);
    }
    let event = header_str(headers, "x-github-event")?;
    if event.is_empty()
        || !event
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(Rejection::BadEventName);
    }
    let delivery_id: DeliveryId = header_str(headers, "x-github-delivery")?.parse()?;
    // Everything the headers alone can show is checked before the body is read, so that
    // `Expect: 100-continue` is answered only for a request that may be accepted.
    let payload_form = PayloadForm::of(headers)?;
    let signature =
        Signature::from_header(headers.get("x-hub-signature-256").map(|v| v.as_bytes()))?;
    // The permit holds the body's share of the budget until the delivery is stored.
    let (body, _permit) = read_body(state, headers, body).await?;
    // The signature covers the bytes as sent, form encoding included.
    signature.verify(&state.secrets, &body)?;
    if !events::is_supported(event) {
        return Ok(Accepted::IgnoredEvent);
    }
    // From here on a form delivery is its JSON, stored and processed as if sent as JSON.
    let body = match payload_form {
        PayloadForm::Form if !is_bare_json(&body) => form::take_payload(body)?,
        PayloadForm::Json | PayloadForm::Form => body,
    }
    .freeze();
    // serde_json checks UTF-8 only in the strings it keeps: a raw invalid byte inside a
    // field the envelope skips (an issue body) would pass here and fail the processor
    // later. Checking the whole body is one linear pass.
    let text =
        std::str::from_utf8(&body).map_err(|err| Rejection::InvalidUtf8(err.valid_up_to()))?;
    let envelope: Envelope =
        serde_json::from_str(text).map_err(|err| Rejection::InvalidJson(err.to_string()))?;
    let delivery = NewDelivery {
        id: delivery_id,
        event: event.to_owned(),
        action: envelope.action,
        installation: envelope.installation.map(|i| InstallationId(i.id)),
        repository: envelope.repository.map(|r| r.full_name),
        received_at: now_millis(),
        body,
    };
    match state.store.record_delivery(delivery).await {
        Ok(outcome) => Ok(Accepted::Stored(outcome)),
        Err(err) => {
            tracing::error!(error = %err, "storing a delivery failed");
            Err(Rejection::Unavailable)
        }
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, Rejection> {
    let value = headers.get(name).ok_or(Rejection::MissingHeader(name))?;
    value.to_str().map_err(|_| Rejection::MissingHeader(name))
}

/// Reads the body within the size, time and memory limits. A declared `Content-Length` over
/// the size limit, or more than the budget has left, is refused before anything is read.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    mut body: Body,
) -> Result<(BytesMut, BodyPermit), Rejection> {
    let limits = &state.limits;
    let limit = limits.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let declared = match declared.map(usize::try_from) {
        Some(Ok(length)) if length <= limit => Some(length),
        Some(_) => return Err(Rejection::TooLarge(limit)),
        None => None,
    };
    // A body without a declared length takes its share step by step as it arrives.
    let mut permit = state
        .budget
        .try_take(declared.unwrap_or(UNDECLARED_FIRST_SHARE))
        .ok_or(Rejection::OverBudget)?;
    // Pages are touched only as bytes arrive, so a large declared length costs nothing
    // until it is sent; one buffer of the right size spares the copy of collecting chunks.
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0));
    let started = Instant::now();
    let deadline = started + limits.body_timeout;
    loop {
        // After the grace period the body must keep arriving at the minimum rate: each
        // byte received extends its allowance, up to the overall deadline.
        let earned = buffer.len() as f64 / limits.body_min_bytes_per_sec.max(1) as f64;
        let allowance = limits.body_grace + std::time::Duration::from_secs_f64(earned);
        let frame =
            match tokio::time::timeout_at(deadline.min(started + allowance), body.frame()).await {
                Err(_) => return Err(Rejection::Timeout),
                Ok(None) => break,
                Ok(Some(Err(_))) => return Err(Rejection::Unreadable),
                Ok(Some(Ok(frame))) => frame,
            };
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry nothing the door reads
        };
        let length = buffer.len() + data.len();
        if length > limit {
            return Err(Rejection::TooLarge(limit));
        }
        if length > permit.bytes() && !permit.try_grow(length - permit.bytes()) {
            return Err(Rejection::OverBudget);
        }
        buffer.extend_from_slice(&data);
    }
    Ok((buffer, permit))
}

/// What a body without `Content-Length` takes of the budget before its first byte is read,
/// so that one arriving when the budget is spent is shed at once like the others.
const UNDECLARED_FIRST_SHARE: usize = 64 * 1024;

/// The `event` label for metrics: a supported event's name, else `other`, so that a
/// stranger cannot create unbounded metric series.
fn event_label(headers: &HeaderMap) -> &'static str {
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    events::SUPPORTED_EVENTS
        .iter()
        .find(|supported| **supported == event)
        .copied()
        .unwrap_or("other")
}

fn log_rejection(state: &AppState, headers: &HeaderMap, rejection: &Rejection) {
    // The delivery id is logged only when well-formed, so a hostile header cannot forge
    // log lines.
    let delivery = headers
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<DeliveryId>().ok());
    let delivery = delivery.as_ref().map_or("-", DeliveryId::as_str);
    match rejection {
        Rejection::NoSecret => {
            tracing::warn!(delivery, "webhook refused: no webhook secret is configured")
        }
        Rejection::Unavailable => {}
        Rejection::OverBudget => {
            tracing::debug!(delivery, "webhook shed: the body budget is spent");
            if let Some(shed) = state.budget.note_shed() {
                tracing::warn!(
                    shed,
                    budget_bytes = state.limits.body_budget_bytes,
                    "webhook requests shed with 503: bodies in flight use the whole budget \
                     (server.body_budget_bytes); many large unsigned uploads at once look \
                     like an attack"
                );
            }
        }
        other => {
            tracing::info!(delivery, reason = %other, status = other.status().as_u16(), "webhook refused")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::labels::WEBHOOK_OUTCOMES;

    /// `/metrics` registers a zero series for each outcome of telemetry's list; an outcome
    /// missing from it would appear only after its first sample.
    #[test]
    fn every_outcome_is_one_telemetry_registers() {
        let bad_id = "a b"
            .parse::<DeliveryId>()
            .expect_err("a space is not allowed");
        let rejections = [
            Rejection::NoSecret,
            Rejection::MissingHeader("x-github-event"),
            Rejection::BadDeliveryId(bad_id),
            Rejection::BadEventName,
            Rejection::UnsupportedContentType,
            Rejection::TooLarge(1),
            Rejection::OverBudget,
            Rejection::Timeout,
            Rejection::Unreadable,
            Rejection::Signature(signature::SignatureError::Mismatch),
            Rejection::Form(FormError::NoPayload),
            Rejection::InvalidUtf8(0),
            Rejection::InvalidJson(String::new()),
            Rejection::Unavailable,
        ];
        let outcomes = rejections.iter().map(Rejection::metric_outcome).chain([
            "accepted",
            "duplicate",
            "ignored",
        ]);
        for outcome in outcomes {
            assert!(WEBHOOK_OUTCOMES.contains(&outcome), "{outcome}");
        }
    }

    #[test]
    fn the_content_type_decides_how_the_payload_is_read() {
        let with = |value: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            }
            PayloadForm::of(&headers).ok()
        };
        assert_eq!(with(None), Some(PayloadForm::Json));
        assert_eq!(with(Some("application/json")), Some(PayloadForm::Json));
        assert_eq!(
            with(Some(" Application/JSON ; charset=utf-8")),
            Some(PayloadForm::Json)
        );
        assert_eq!(
            with(Some("application/x-www-form-urlencoded")),
            Some(PayloadForm::Form)
        );
        for refused in ["text/plain", "application/jsonp", "multipart/form-data", ""] {
            assert_eq!(with(Some(refused)), None, "{refused}");
        }
    }
}
