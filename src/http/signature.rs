//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body, compared in constant time against
//! every configured secret (several during a rotation).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::SecretList;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("X-Hub-Signature-256 is not of the form sha256=<64 hex digits>")]
    Malformed,
    /// No configured secret produces this signature.
    #[error("signature does not match")]
    Mismatch,
}

/// Checks `header` (the value of `X-Hub-Signature-256`) against `body` with each secret.
pub fn verify(
    secrets: &SecretList,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    Signature::from_header(header)?.verify(secrets, body)
}

/// A well-formed `X-Hub-Signature-256` value, read from the headers before the body is, so
/// that a request with a missing or malformed one is refused without reading its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 32]);

impl Signature {
    /// Reads the header: `sha256=` followed by 64 hex digits.
    pub fn from_header(header: Option<&[u8]>) -> Result<Self, SignatureError> {
        let hex_digits = header
            .ok_or(SignatureError::Missing)?
            .strip_prefix(b"sha256=")
            .ok_or(SignatureError::Malformed)?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut digest).map_err(|_| SignatureError::Malformed)?;
        Ok(Self(digest))
    }

    /// Whether any of `secrets` signs `body` with this signature (compared in constant time).
    pub fn verify(&self, secrets: &SecretList, body: &[u8]) -> Result<(), SignatureError> {
        let matches = |secret: &crate::config::Secret| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
                return false;
            };
            mac.update(body);
            mac.verify_slice(&self.0).is_ok()
        };
        if secrets.iter().any(matches) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// The header value GitHub would send for `body` signed with `secret` (for tests and tools).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secrets(values: &[&str]) -> SecretList {
        SecretList::new(values.iter().map(|v| Secret::new(*v)).collect())
    }

    #[test]
    fn githubs_published_test_vector_verifies() {
        assert_eq!(sign(GITHUB_SECRET, b"Hello, World!"), GITHUB_SIGNATURE);
        let result = verify(
            &secrets(&[GITHUB_SECRET]),
            Some(GITHUB_SIGNATURE.as_bytes()),
            b"Hello, World!",
        );
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn any_of_the_rotated_secrets_verifies() {
        let both = secrets(&["new", GITHUB_SECRET]);
        assert_eq!(
            verify(&both, Some(GITHUB_SIGNATURE.as_bytes()), b"Hello, World!"),
            Ok(())
        );
    }

    #[test]
    fn bad_signatures_are_refused_with_the_reason() {
        let list = secrets(&[GITHUB_SECRET]);
        let body = b"Hello, World!";
        let cases: [(Option<&str>, SignatureError); 7] = [
            (None, SignatureError::Missing),
            (
                Some("sha1=0123456789abcdef0123456789abcdef01234567"),
                SignatureError::Malformed,
            ),
            (Some(&GITHUB_SIGNATURE[..40]), SignatureError::Malformed),
            (
                Some("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                SignatureError::Malformed,
            ),
            (
                Some("sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                SignatureError::Malformed,
            ),
            (
                Some("sha256=0000000000000000000000000000000000000000000000000000000000000000"),
                SignatureError::Mismatch,
            ),
            (Some(&sign("wrong secret", body)), SignatureError::Mismatch),
        ];
        for (header, expected) in cases {
            assert_eq!(
                verify(&list, header.map(str::as_bytes), body),
                Err(expected),
                "{header:?}"
            );
        }
        assert_eq!(
            verify(&list, Some(GITHUB_SIGNATURE.as_bytes()), b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &SecretList::default(),
                Some(GITHUB_SIGNATURE.as_bytes()),
                body
            ),
            Err(SignatureError::Mismatch)
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Any header and body: an answer, never a panic; only a real signature passes.
            #[test]
            fn any_header_is_judged_without_panic(
                header in proptest::collection::vec(any::<u8>(), 0..100),
                body in proptest::collection::vec(any::<u8>(), 0..200),
            ) {
                let verdict = verify(&secrets(&["s3cret"]), Some(&header), &body);
                let genuine = sign("s3cret", &body).into_bytes();
                prop_assert_eq!(verdict.is_ok(), header == genuine);
            }

            /// A signature made with a secret verifies with it, and not after the body changes.
            #[test]
            fn a_signature_round_trips(
                secret in "[ -~]{1,40}",
                body in proptest::collection::vec(any::<u8>(), 0..500),
                flip in any::<prop::sample::Index>(),
            ) {
                let header = sign(&secret, &body);
                prop_assert!(verify(&secrets(&[secret.as_str()]), Some(header.as_bytes()), &body).is_ok());
                if !body.is_empty() {
                    let mut changed = body.clone();
                    let at = flip.index(changed.len());
                    changed[at] ^= 0x01;
                    prop_assert_eq!(
                        verify(&secrets(&[secret.as_str()]), Some(header.as_bytes()), &changed),
                        Err(SignatureError::Mismatch)
                    );
                }
            }
        }
    }
}
