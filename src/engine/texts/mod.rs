//! Every text a user reads on GitHub: the status comment and its notes, the replies to
//! commands and their refusals, the help, the graph and the launch plan. One function per
//! text, pure (no I/O, no clock), taking plain domain values, each snapshot-tested so that
//! a change of wording shows up in review.
//!
//! The callers decide *what* to say (a [`CommandRefusal`], a
//! [`StatusView`](super::status::StatusView), ...); the words live here.

mod graph;
mod notes;
mod replies;
mod status;

pub use graph::{graph_reply, to_mermaid};
pub use notes::{
    codegen_not_configured, invalid_repo_config_note, is_native_limit_note, native_limit_note,
    native_sync_failed_note, no_such_field_note, no_such_option_note, paused_by, quota_used_up,
    unreachable_projects_note,
};
pub use replies::{
    CommandRefusal, Outlook, PlannedIssue, command_error, help, launch_plan, nothing_managed,
    refusal, reply,
};
pub use status::{actor_name, label_refusal, left_management, status_comment};

/// The hidden marker the status comment (and a label refusal, which stands in its place)
/// is found by.
pub const STATUS_MARKER: &str = "<!-- codegen-orchestrator:status -->";

/// `text` on one line (runs of whitespace, newlines included, become one space) and at
/// most 200 characters: titles and messages from elsewhere must not break the layout.
fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 200 {
        line.chars().take(200).collect::<String>() + "…"
    } else {
        line
    }
}

/// `one` when `n` is 1, `many` otherwise.
fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
