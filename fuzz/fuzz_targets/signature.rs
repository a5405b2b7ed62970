//! `X-Hub-Signature-256` headers: any header is judged without a panic, and only the real
//! signature of the body passes.
#![no_main]

use codegen_orchestrator::config::{Secret, SecretList};
use codegen_orchestrator::http::{sign, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data
        .first()
        .map_or(0, |n| usize::from(*n))
        .min(data.len().saturating_sub(1));
    let (header, body) = data
        .get(1..)
        .unwrap_or_default()
        .split_at(split.min(data.len().saturating_sub(1)));
    let secrets = SecretList::new(vec![Secret::new("fuzz-secret")]);
    let verdict = verify(&secrets, Some(header), body);
    assert_eq!(
        verdict.is_ok(),
        header == sign("fuzz-secret", body).as_bytes()
    );
});
