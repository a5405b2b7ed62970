//! Issue bodies and labels: the dependency parser must answer for any text.
#![no_main]

use std::sync::LazyLock;

use codegen_orchestrator::deps::DependencyParser;
use codegen_orchestrator::domain::IssueRef;
use libfuzzer_sys::fuzz_target;

static PARSER: LazyLock<DependencyParser> =
    LazyLock::new(|| DependencyParser::new("ghe.example.com"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let issue: IssueRef = "acme/api#1".parse().expect("a valid reference");
    let labels: Vec<String> = text.lines().take(3).map(str::to_owned).collect();
    let found = PARSER.dependencies(&issue, text, &labels);
    assert!(!found.contains(&issue), "an issue never depends on itself");
    let _ = PARSER.closing_references(&issue.repo, text);
    let _ = PARSER.references(&issue.repo, text);
});
