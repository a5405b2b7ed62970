//! Verified webhook bodies: any bytes under any supported event decode, are ignored or are
//! refused with an error, never a panic.
#![no_main]

use codegen_orchestrator::events::{SUPPORTED_EVENTS, decode_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let event = SUPPORTED_EVENTS[usize::from(*selector) % SUPPORTED_EVENTS.len()];
    let _ = decode_payload(event, body);
});
