//! Issue comments: commands are parsed from any text, and a parsed command renders back to
//! itself.
#![no_main]

use codegen_orchestrator::engine::commands::{new_commands, parse_commands};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for command in parse_commands(text, "/codegen").into_iter().flatten() {
        let again = parse_commands(&command.render("/codegen"), "/codegen");
        assert_eq!(again, vec![Ok(command)]);
    }
    // An edit: the first half was there before, the whole text after.
    let middle = (0..=text.len() / 2)
        .rev()
        .find(|at| text.is_char_boundary(*at))
        .unwrap_or(0);
    let _ = new_commands(&text[..middle], text, "/codegen");
});
