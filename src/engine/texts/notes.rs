//! Short notes the status comment carries (Projects problems, why launching is paused) and
//! the comment posted when a repository's configuration file is invalid.

use super::{one_line, plural};
use crate::domain::RepoName;

/// The status note for a project board that has no single-select field `field`.
pub fn no_such_field_note(project: &str, field: &str) -> String {
    format!(
        "The project \"{project}\" has no single-select field \"{field}\" (projects.status_field); its items are not updated."
    )
}

/// The status note for a project board whose field `field` has no option `option`;
/// `available` are the options it has.
pub fn no_such_option_note(
    project: &str,
    field: &str,
    option: &str,
    available: &[String],
) -> String {
    format!(
        "The field \"{field}\" of the project \"{project}\" has no option \"{option}\" (projects.status_options); it has: {}.",
        available.join(", ")
    )
}

/// The status note for project boards GitHub refused the App (`FORBIDDEN`), so that their
/// `field` was not set: `named` the boards GitHub named, `unnamed` how many it hid
/// entirely, `reason` its message.
pub fn unreachable_projects_note(
    field: &str,
    named: &[String],
    unnamed: usize,
    reason: &str,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !named.is_empty() {
        let quoted: Vec<String> = named
            .iter()
            .map(|n| format!("\"{}\"", one_line(n)))
            .collect();
        let list = match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => quoted.concat(),
        };
        parts.push(format!(
            "the {} {list}",
            plural(named.len(), "project", "projects")
        ));
    }
    if unnamed > 0 {
        parts.push(format!(
            "{unnamed} {} that GitHub does not name",
            plural(unnamed, "project", "projects")
        ));
    }
    let boards = named.len() + unnamed;
    format!(
        "The field \"{field}\" is not updated on {}: GitHub does not let the App reach {} (\"{}\"). \
         Other projects of this issue are updated; give the App access to {} to include {}.",
        parts.join(", and on "),
        plural(boards, "it", "them"),
        one_line(reason),
        plural(boards, "that project", "those projects"),
        plural(boards, "it", "them"),
    )
}

/// Why launching is paused, when `by` paused `repo` with a command; `command` is the
/// command prefix.
pub fn paused_by(repo: &RepoName, by: &str, command: &str) -> String {
    format!("{repo} was paused by @{by}; `{command} resume` restarts it.")
}

/// Why launching is paused, when the App has no Codegen credentials.
pub fn codegen_not_configured() -> String {
    "Codegen is not configured (set codegen.org_id and codegen.api_token).".to_owned()
}

/// Why launching is paused, when Codegen answered that the plan's quota is used up;
/// `message` is what Codegen said.
pub fn quota_used_up(message: &str) -> String {
    format!("Codegen's plan quota is used up: {message}")
}

/// The comment posted on an issue when the repository's configuration file at `path` is
/// invalid; `problem` says what is wrong with it.
pub fn invalid_repo_config_note(path: &str, problem: &str) -> String {
    format!(
        "⚠️ `{path}` on the default branch is invalid: {problem}. The defaults apply until it is fixed."
    )
}

const NATIVE_LIMIT_NOTE_START: &str = "GitHub records at most";

/// Whether a status note is the one [`native_limit_note`] words.
pub fn is_native_limit_note(note: &str) -> bool {
    note.starts_with(NATIVE_LIMIT_NOTE_START)
}

/// The status note for declared dependencies not written to GitHub's native links because
/// the issue has GitHub's most (`limit`) blockers: `left_out` of them.
pub fn native_limit_note(limit: usize, left_out: usize) -> String {
    format!(
        "{NATIVE_LIMIT_NOTE_START} {limit} blockers per issue: {left_out} declared {} not written to its \"Blocked by\" links (orchestrator.sync_native_dependencies). {} still {} here.",
        plural(left_out, "dependency is", "dependencies are"),
        plural(left_out, "It", "They"),
        plural(left_out, "blocks", "block"),
    )
}

/// The status note for a declared dependency on `blocker` that GitHub refused to record as
/// a native link, with GitHub's `reason`.
pub fn native_sync_failed_note(blocker: &crate::domain::IssueRef, reason: &str) -> String {
    format!(
        "The dependency on {blocker} could not be written to GitHub's \"Blocked by\" links ({}); it still blocks here.",
        one_line(reason)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boards_the_app_cannot_reach_are_named_in_one_note() {
        let reason = "Resource not accessible by integration";
        let notes = [
            unreachable_projects_note("Status", &["Sprint 12".into()], 0, reason),
            unreachable_projects_note("Status", &[], 1, reason),
            unreachable_projects_note("Stage", &["A".into(), "B".into(), "C".into()], 2, reason),
        ];
        insta::assert_snapshot!(notes.join("\n\n"));
    }

    #[test]
    fn a_board_without_the_field_or_the_option_is_named() {
        let notes = [
            no_such_field_note("Roadmap", "Status"),
            no_such_option_note(
                "Roadmap",
                "Status",
                "Queued",
                &["Todo".into(), "In progress".into(), "Done".into()],
            ),
        ];
        insta::assert_snapshot!(notes.join("\n\n"));
    }

    #[test]
    fn each_pause_says_why_and_what_restarts_it() {
        let repo: RepoName = "acme/api".parse().unwrap();
        let reasons = [
            paused_by(&repo, "octo", "/codegen"),
            codegen_not_configured(),
            quota_used_up("Your billing plan allows 100 runs a month."),
        ];
        insta::assert_snapshot!(reasons.join("\n\n"));
    }

    #[test]
    fn an_invalid_configuration_file_is_reported_with_its_problem() {
        insta::assert_snapshot!(invalid_repo_config_note(
            ".github/codegen-orchestrator.yml",
            "unknown field `max_agents` at line 2 column 1"
        ));
    }

    #[test]
    fn native_sync_notes_say_what_was_not_written_and_that_it_still_blocks() {
        assert_eq!(
            native_limit_note(50, 2),
            "GitHub records at most 50 blockers per issue: 2 declared dependencies are not written to its \"Blocked by\" links (orchestrator.sync_native_dependencies). They still block here."
        );
        assert_eq!(
            native_limit_note(50, 1),
            "GitHub records at most 50 blockers per issue: 1 declared dependency is not written to its \"Blocked by\" links (orchestrator.sync_native_dependencies). It still blocks here."
        );
        let blocker: crate::domain::IssueRef = "acme/api#3".parse().unwrap();
        assert_eq!(
            native_sync_failed_note(&blocker, "GitHub answered 404:\nNot Found"),
            "The dependency on acme/api#3 could not be written to GitHub's \"Blocked by\" links (GitHub answered 404: Not Found); it still blocks here."
        );
    }
}
