//! The bot's answers to comment commands: the help, the launch plan, a line that is not a
//! command (with its did-you-mean), and every reason a command is refused or not done.
//! Several commands in one comment get one reply, their answers joined by [`reply`].

use crate::domain::RunState;
use crate::domain::{IssueRef, RepoName};
use crate::engine::commands::{CommandError, CommandProblem};

/// Why a command was refused or had nothing to do; [`refusal`] words it for the commenter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandRefusal {
    /// The commenter (`login`) has `permission` on `repo`, which does not allow commands;
    /// `prefix` is the command prefix. Nothing in the comment was done.
    NoPermission {
        /// The commenter's login.
        login: String,
        /// The permission GitHub reports, by its name (`read`, `triage`, ...).
        permission: String,
        /// The command prefix.
        prefix: String,
        /// The repository of the issue.
        repo: RepoName,
    },
    /// A line starts with the prefix but is not a command; `prefix` is the command prefix.
    NotACommand {
        /// What is wrong with the line.
        error: CommandError,
        /// The command prefix.
        prefix: String,
    },
    /// `run` on a closed issue.
    ClosedIssue,
    /// `cancel` with no agent running.
    NothingRunning,
    /// `status` on an issue that is not managed; `label` is the trigger label and
    /// `prefix` the command prefix.
    NotManaged {
        /// The repository's trigger label.
        label: String,
        /// The command prefix.
        prefix: String,
    },
    /// `depends on` or `unblock` whose `text` names no issue.
    NoReferences {
        /// The text after the verb.
        text: String,
    },
    /// `depends on` whose dependency would close the cycle `path` (`a#1 -> a#2 -> a#1`).
    Cycle {
        /// The cycle, as the graph reports it.
        path: String,
    },
    /// `retry` before any agent ran for the issue.
    NoRunYet,
    /// `retry` on an issue the bot does not track.
    NotTracked,
    /// `retry` when the last attempt did not fail (it runs, succeeded, or was retried
    /// already).
    NothingToRetry {
        /// The last attempt.
        attempt: u32,
        /// Where it stands.
        phase: RunState,
    },
}

/// The text of a refused command.
pub fn refusal(refusal: &CommandRefusal) -> String {
    match refusal {
        CommandRefusal::NoPermission {
            login,
            permission,
            prefix,
            repo,
        } => format!(
            "@{login}: `{prefix}` commands need write, maintain or admin permission on {repo}; \
             yours is {permission}. Nothing was done."
        ),
        CommandRefusal::NotACommand { error, prefix } => {
            format!("{}\n\n{}", command_error(error), help(prefix))
        }
        CommandRefusal::ClosedIssue => "A closed issue is not run; reopen it first.".into(),
        CommandRefusal::NothingRunning => "No agent is running for this issue.".into(),
        CommandRefusal::NotManaged { label, prefix } => {
            format!("This issue is not managed; label it `{label}` or comment `{prefix} run`.")
        }
        CommandRefusal::NoReferences { text } => format!(
            "No issue references found in `{text}`; write them as `#12`, `owner/repo#12` or issue URLs."
        ),
        CommandRefusal::Cycle { path } => {
            format!("Refused: that dependency would close a cycle: `{path}`.")
        }
        CommandRefusal::NoRunYet => {
            "There is nothing to retry: no agent has run for this issue.".into()
        }
        CommandRefusal::NotTracked => "This issue is not managed.".into(),
        CommandRefusal::NothingToRetry { attempt, phase } => format!(
            "There is nothing to retry: attempt {attempt} is {}.",
            phase_words(*phase)
        ),
    }
}

/// One reply to a comment that held several commands: their answers in order, separated
/// by a rule.
pub fn reply(answers: &[String]) -> String {
    answers.join("\n\n---\n\n")
}

/// A line that is not a command: the line, what is wrong, and the verb it resembles.
pub fn command_error(error: &CommandError) -> String {
    let problem = match &error.problem {
        CommandProblem::MissingVerb => "a command needs a verb.".to_owned(),
        CommandProblem::UnexpectedArguments { verb } => format!("`{verb}` takes no arguments."),
        CommandProblem::DependsOnWithoutReferences => {
            "`depends on` needs issue references, like `depends on #12 acme/api#3`.".to_owned()
        }
        CommandProblem::UnblockWithoutReferences => {
            "`unblock` needs issue references, like `unblock #12`.".to_owned()
        }
        CommandProblem::UnknownVerb { word, .. } => format!("`{word}` is not a command."),
    };
    let did_you_mean = match &error.problem {
        CommandProblem::UnknownVerb {
            suggestion: Some(verb),
            ..
        } => format!(" Did you mean `{verb}`?"),
        _ => String::new(),
    };
    format!("`{}`: {problem}{did_you_mean}", error.line)
}

/// The help: every command after `prefix`, for `help` and after a line that is not a
/// command.
pub fn help(prefix: &str) -> String {
    format!(
        "Commands (one per line, by someone with write access):\n\n\
         | Command | What it does |\n|---|---|\n\
         | `{prefix} run` | manage this issue and start an agent once its dependencies are done |\n\
         | `{prefix} retry` | start a new attempt after a failure |\n\
         | `{prefix} cancel` | stop the running agent |\n\
         | `{prefix} status` | refresh the status comment |\n\
         | `{prefix} depends on #12 owner/repo#3` | add dependencies |\n\
         | `{prefix} unblock #12` | remove dependencies |\n\
         | `{prefix} graph` | show this issue's dependency graph |\n\
         | `{prefix} plan` | show the repository's launch order |\n\
         | `{prefix} pause` / `{prefix} resume` | stop / restart launching in this repository |\n\
         | `{prefix} help` | this text |\n"
    )
}

/// An issue in the launch plan, with its title when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedIssue {
    /// The issue.
    pub issue: IssueRef,
    /// Its title, when known.
    pub title: Option<String>,
    /// When it is expected to start and finish, when forecast.
    pub expected: Option<crate::engine::forecast::Expected>,
}

/// What the forecast says of a whole repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Outlook {
    /// When its last forecast issue is expected to finish (unix ms).
    pub finish: Option<i64>,
    /// The agent hours its remaining work is expected to cost.
    pub agent_hours: f64,
}

/// The reply to `plan`: what runs in `repo`, the launch queue in order, then what waits
/// for dependencies (in dependency order); `paused_by` names who paused launching.
pub fn launch_plan(
    repo: &RepoName,
    running: &[PlannedIssue],
    next: &[PlannedIssue],
    waiting: &[PlannedIssue],
    paused_by: Option<&str>,
    outlook: Option<&Outlook>,
) -> String {
    let paused = paused_by
        .map(|by| format!("\n\nLaunching is paused (by @{by})."))
        .unwrap_or_default();
    let outlook = match outlook {
        Some(Outlook {
            finish: Some(finish),
            agent_hours,
        }) => format!(
            "\n\n🕒 Expected to be done around {}, after about {agent_hours:.1} agent hours \
             (forecast from the runs finished so far; issues without a time wait for \
             something the bot does not do).",
            super::status::utc(super::status::round_to_ten_minutes(*finish))
        ),
        _ => String::new(),
    };
    format!(
        "**Launch plan for {repo}**\n\nRunning:\n{}\n\nNext, in order:\n{}\n\nWaiting for dependencies (in dependency order):\n{}{outlook}{paused}",
        numbered(running, "finish"),
        numbered(next, "start"),
        numbered(waiting, "start")
    )
}

/// The reply to `plan` when the bot manages nothing in the installation yet.
pub fn nothing_managed() -> String {
    "Nothing is managed in this repository.".into()
}

/// `1. acme/api#3 Title` lines, or `none`. An issue without a known title keeps the
/// space after its reference.
fn numbered(issues: &[PlannedIssue], when: &str) -> String {
    if issues.is_empty() {
        return "none".into();
    }
    issues
        .iter()
        .enumerate()
        .map(|(n, planned)| {
            let title = planned.title.as_deref().unwrap_or("");
            let time = planned
                .expected
                .map(|e| if when == "finish" { e.finish } else { e.start });
            let time = time
                .map(|t| format!(" — expected to {when} around {}", short_time(t)))
                .unwrap_or_default();
            format!("{}. {} {title}{time}", n + 1, planned.issue)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A forecast time in a plan's list, to ten minutes.
fn short_time(ms: i64) -> String {
    super::status::utc(super::status::round_to_ten_minutes(ms))
}

/// A run phase as a retry refusal says it.
fn phase_words(phase: RunState) -> &'static str {
    match phase {
        RunState::Launching => "launching",
        RunState::Running => "running",
        RunState::Succeeded => "succeeded",
        RunState::Failed => "failed",
        RunState::TimedOut => "timed out",
        RunState::Cancelled => "cancelled",
    }
}

#[cfg(test)]
#[path = "replies_tests.rs"]
mod tests;
