//! The dashboard's two cookies, both signed with the server's key (HMAC-SHA256), HTTP-only,
//! `SameSite=Lax` (the callback is a top-level navigation from GitHub) and `Secure` when
//! the browser came over https:
//!
//! - the sign-in cookie binds the OAuth `state` handed to GitHub to this browser for ten
//!   minutes: a callback whose `state` is not the one in the browser's cookie is refused;
//! - the session cookie carries a random session secret and its expiry; the session itself
//!   (who, their token, what they may read) is a row in the store under the secret's hash.
//!
//! A cookie is `value.expiry.signature`; the signature covers its purpose too, so that one
//! cookie cannot stand in for the other.

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The cookie that carries the OAuth `state`.
pub(super) const STATE_COOKIE: &str = "codegen_orchestrator_signin";
/// The cookie that carries the session.
pub(super) const SESSION_COOKIE: &str = "codegen_orchestrator_session";
/// How long a sign-in may take, from `/dashboard` to the callback.
pub(super) const STATE_TTL_MS: i64 = 10 * 60 * 1000;
/// How long a session lasts before the viewer signs in again.
pub(super) const SESSION_TTL_MS: i64 = 8 * 3600 * 1000;

/// What a cookie is for; part of what its signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The OAuth `state`.
    SignIn,
    /// The session secret.
    Session,
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
            Self::SignIn => STATE_COOKIE,
            Self::Session => SESSION_COOKIE,
        }
    }
}

/// The key cookies are signed with (shared by every replica, kept in the store).
#[derive(Clone)]
pub(super) struct CookieKey(Vec<u8>);

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

impl CookieKey {
    /// The key from its hex form (as stored); `None` when it is not hex of 32+ bytes.
    pub(super) fn from_hex(hex_key: &str) -> Option<Self> {
        hex::decode(hex_key)
            .ok()
            .filter(|key| key.len() >= 32)
            .map(Self)
    }

    fn signature(&self, purpose: Purpose, value: &str, expires: i64) -> Vec<u8> {
        // A key of any length is accepted by HMAC.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return Vec::new();
        };
        mac.update(format!("{}|{value}|{expires}", purpose.name()).as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// `value.expires.signature` for a cookie of `purpose`.
    pub(super) fn seal(&self, purpose: Purpose, value: &str, expires: i64) -> String {
        let signature = hex::encode(self.signature(purpose, value, expires));
        format!("{value}.{expires}.{signature}")
    }

    /// The value of a sealed cookie of `purpose`, if its signature is this key's and it has
    /// not expired by `now`.
    pub(super) fn open(&self, purpose: Purpose, sealed: &str, now: i64) -> Option<String> {
        let mut parts = sealed.rsplitn(3, '.');
        let signature = hex::decode(parts.next()?).ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        let value = parts.next()?;
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return None;
        };
        mac.update(format!("{}|{value}|{expires}", purpose.name()).as_bytes());
        // Constant time: a forger learns nothing from how long a refusal takes.
        mac.verify_slice(&signature).ok()?;
        (now < expires).then(|| value.to_owned())
    }
}

/// A `Set-Cookie` value for `purpose` holding `sealed`, living `max_age_ms`.
pub(super) fn set_cookie(
    purpose: Purpose,
    sealed: &str,
    max_age_ms: i64,
    over_https: bool,
) -> Option<HeaderValue> {
    let secure = if over_https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={sealed}; Path=/dashboard; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        purpose.name(),
        (max_age_ms / 1000).max(0)
    ))
    .ok()
}

/// A `Set-Cookie` value that removes the cookie of `purpose`.
pub(super) fn clear_cookie(purpose: Purpose, over_https: bool) -> Option<HeaderValue> {
    set_cookie(purpose, "", 0, over_https)
}

/// The value of the cookie of `purpose` the request carries.
pub(super) fn cookie(headers: &HeaderMap, purpose: Purpose) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == purpose.name() && !value.is_empty())
        .map(|(_, value)| value)
}

/// The id a session is stored under: the hex SHA-256 of its secret.
pub(super) fn session_id(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> CookieKey {
        CookieKey(vec![byte; 32])
    }

    #[test]
    fn a_sealed_cookie_opens_with_its_key_purpose_and_time_only() {
        let sealed = key(1).seal(Purpose::Session, "abc", 1_000);
        assert_eq!(
            key(1).open(Purpose::Session, &sealed, 999).as_deref(),
            Some("abc")
        );
        assert_eq!(
            key(1).open(Purpose::Session, &sealed, 1_000),
            None,
            "expired"
        );
        assert_eq!(
            key(2).open(Purpose::Session, &sealed, 999),
            None,
            "another key"
        );
        assert_eq!(
            key(1).open(Purpose::SignIn, &sealed, 999),
            None,
            "another purpose"
        );
        let later = sealed.replace(".1000.", ".9000.");
        assert_eq!(
            key(1).open(Purpose::Session, &later, 999),
            None,
            "expiry changed"
        );
        assert_eq!(key(1).open(Purpose::Session, "abc", 0), None);
        assert_eq!(key(1).open(Purpose::Session, "a.b.c.d", 0), None);
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_over_https() {
        let cookie = set_cookie(Purpose::Session, "v", 8_000, true).unwrap();
        assert_eq!(
            cookie,
            "codegen_orchestrator_session=v; Path=/dashboard; Max-Age=8; HttpOnly; SameSite=Lax; Secure"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; codegen_orchestrator_session=v.1.ff".parse().unwrap(),
        );
        assert_eq!(cookie_of(&headers), Some("v.1.ff"));
    }

    fn cookie_of(headers: &HeaderMap) -> Option<&str> {
        cookie(headers, Purpose::Session)
    }
}
