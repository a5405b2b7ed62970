//! Secret values: they can be used, never printed; and URLs with their passwords hidden.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// What a secret shows instead of its value, wherever it is printed.
pub const REDACTED: &str = "<redacted>";

/// A secret (token, key, webhook secret). `Debug`, `Display` and `Serialize` print
/// [`REDACTED`]; only [`Secret::expose`] gives the value, so every use is visible in review.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send or hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Accepts any scalar, so that a secret YAML reads as a number (`123456`) still works, and
/// never quotes the value in an error message.
struct SecretVisitor;

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(E::custom(
            "a secret that looks like a decimal number must be quoted",
        ))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(E::custom("a secret cannot be true or false; quote it"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Err(de::Error::custom("expected a secret string, found a list"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Err(de::Error::custom(
            "expected a secret string, found a mapping",
        ))
    }
}

/// One or more webhook secrets: GitHub signs with one, and during a rotation the old and
/// the new one are both accepted. Written as a string or a list of strings.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct SecretList(Vec<Secret>);

impl SecretList {
    /// A list of the given secrets.
    pub fn new(secrets: Vec<Secret>) -> Self {
        Self(secrets)
    }

    /// The secrets in the order they were configured.
    pub fn iter(&self) -> impl Iterator<Item = &Secret> {
        self.0.iter()
    }

    /// Whether no secret is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl<'de> Deserialize<'de> for SecretList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a secret string or a list of secret strings")]
        enum OneOrMany {
            Many(Vec<Secret>),
            One(Secret),
        }
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::Many(secrets) => Self(secrets),
            OneOrMany::One(secret) => Self(vec![secret]),
        })
    }
}

/// A URL with any password replaced, for printing: the one in the user part and a
/// `password=` query parameter (both forms PostgreSQL URLs accept).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    // The last `@` ends the user part, so that a password holding an unescaped `@` or `/`
    // (which makes the URL invalid, and so gets printed in the error) is still hidden.
    let location = match location.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{user}:{REDACTED}@{host}")
        }
        _ => location.to_owned(),
    };
    let Some(query) = query else {
        return format!("{scheme}://{location}");
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                format!("{key}={REDACTED}")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{scheme}://{location}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
        let list = SecretList::new(vec![secret.clone(), Secret::new("old")]);
        assert_eq!(format!("{list:?}"), "[<redacted>, <redacted>]");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_secret_list_is_one_string_or_many() {
        let one: SecretList = serde_yaml_ng::from_str("s3cret").unwrap();
        let many: SecretList = serde_yaml_ng::from_str("[new, 12345]").unwrap();
        let exposed = |l: &SecretList| l.iter().map(|s| s.expose().to_owned()).collect::<Vec<_>>();
        assert_eq!(exposed(&one), ["s3cret"]);
        assert_eq!(exposed(&many), ["new", "12345"]);
    }

    #[test]
    fn a_malformed_secret_is_refused_without_quoting_it() {
        let err = serde_yaml_ng::from_str::<Secret>("{key: hunter2}").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
