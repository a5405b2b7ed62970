//! The body of a webhook whose content type is `application/x-www-form-urlencoded`
//! (GitHub's default for a webhook created by hand): the JSON payload url-encoded in a
//! `payload` field.
//!
//! serde_urlencoded (through form_urlencoded) decodes into `String`s and replaces bytes
//! that are not UTF-8 with U+FFFD, so a broken payload would be stored silently altered
//! instead of refused like a broken JSON body. This decodes to bytes, in place: the JSON is
//! never larger than its encoding, so the body's share of the memory budget covers it.

use bytes::BytesMut;

/// Why a form body holds no payload to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// No `payload` field.
    #[error("the form body has no payload field (GitHub puts the JSON in one)")]
    NoPayload,
    /// More than one, so which one the signature was meant for is ambiguous.
    #[error("the form body has more than one payload field")]
    SeveralPayloads,
}

/// Turns a signed form body into the JSON of its `payload` field, reusing its buffer.
pub fn take_payload(mut body: BytesMut) -> Result<BytesMut, FormError> {
    let (start, end) = payload_span(&body)?;
    let length = decode_in_place(&mut body[start..end]);
    body.truncate(start + length);
    Ok(body.split_off(start))
}

/// Where the value of the one `payload` field lies in `body`.
fn payload_span(body: &[u8]) -> Result<(usize, usize), FormError> {
    let mut found = None;
    let mut start = 0;
    for pair in body.split(|&b| b == b'&') {
        let end = start + pair.len();
        // A pair without `=` is a name with an empty value.
        let (name, value_start) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], start + at + 1),
            None => (pair, end),
        };
        if decoded(name).eq(b"payload".iter().copied()) {
            if found.is_some() {
                return Err(FormError::SeveralPayloads);
            }
            found = Some((value_start, end));
        }
        start = end + 1;
    }
    found.ok_or(FormError::NoPayload)
}

/// The bytes `encoded` stands for, without allocating (for comparing field names).
fn decoded(encoded: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (byte, used) = decode_at(encoded, at)?;
        at += used;
        Some(byte)
    })
}

/// Decodes `bytes` into their own beginning and returns the decoded length. Writing never
/// overtakes reading: each decoded byte comes from one or three encoded ones.
fn decode_in_place(bytes: &mut [u8]) -> usize {
    let (mut read, mut write) = (0, 0);
    while let Some((byte, used)) = decode_at(bytes, read) {
        bytes[write] = byte;
        write += 1;
        read += used;
    }
    write
}

/// The byte encoded at `at` and how many encoded bytes it took; `None` at the end. As in
/// the WHATWG URL standard (and form_urlencoded), `+` is a space and a `%` not followed by
/// two hex digits stands for itself.
fn decode_at(encoded: &[u8], at: usize) -> Option<(u8, usize)> {
    let byte = *encoded.get(at)?;
    let hex = |offset: usize| {
        encoded
            .get(at + offset)
            .and_then(|&digit| char::from(digit).to_digit(16))
    };
    Some(match byte {
        b'+' => (b' ', 1),
        b'%' => match (hex(1), hex(2)) {
            // Two hex digits make at most 0xff: the cast loses nothing.
            (Some(high), Some(low)) => ((high << 4 | low) as u8, 3),
            _ => (b'%', 1),
        },
        other => (other, 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(body: &[u8]) -> Result<Vec<u8>, FormError> {
        take_payload(BytesMut::from(body)).map(|p| p.to_vec())
    }

    #[test]
    fn the_payload_field_is_url_decoded() {
        let json = r#"{"action": "labeled", "name": "a+b & c=d 100% café"}"#;
        let body = serde_urlencoded::to_string([("payload", json)]).unwrap();
        assert_eq!(payload(body.as_bytes()).unwrap(), json.as_bytes());
    }

    #[test]
    fn other_fields_around_the_payload_are_left_out() {
        assert_eq!(payload(b"a=1&payload=%7B%7D&b=2").unwrap(), b"{}");
        assert_eq!(payload(b"flag&pay%6Coad=%5B%5D").unwrap(), b"[]");
        assert_eq!(payload(b"payload").unwrap(), b"");
        assert_eq!(payload(b"payload=").unwrap(), b"");
    }

    #[test]
    fn a_form_without_exactly_one_payload_is_refused() {
        assert_eq!(payload(b""), Err(FormError::NoPayload));
        assert_eq!(payload(b"payloads=%7B%7D"), Err(FormError::NoPayload));
        assert_eq!(payload(b"{\"action\": 1}"), Err(FormError::NoPayload));
        assert_eq!(
            payload(b"payload=1&payload=2"),
            Err(FormError::SeveralPayloads)
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_kept_for_the_utf8_check_to_refuse() {
        assert_eq!(payload(b"payload=caf%E9").unwrap(), b"caf\xe9");
        assert_eq!(payload(b"payload=caf\xe9").unwrap(), b"caf\xe9");
    }

    #[test]
    fn a_percent_without_two_hex_digits_stands_for_itself() {
        assert_eq!(payload(b"payload=100%").unwrap(), b"100%");
        assert_eq!(payload(b"payload=%4").unwrap(), b"%4");
        assert_eq!(payload(b"payload=%zz%41").unwrap(), b"%zzA");
    }

    proptest::proptest! {
        /// Whatever serde_urlencoded encodes comes back unchanged.
        #[test]
        fn decoding_undoes_encoding(json in ".*", other in ".*") {
            let body = serde_urlencoded::to_string([("other", &other), ("payload", &json)]).unwrap();
            proptest::prop_assert_eq!(payload(body.as_bytes()).unwrap(), json.as_bytes());
        }
    }
}
