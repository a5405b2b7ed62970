//! Slash commands in issue comments: `/codegen run`, `/codegen depends on #3`, ...
//!
//! A command is a line that starts with the prefix (after at most three spaces), outside
//! fenced or indented code and outside quotes. Several may share one comment. Parsing is
//! pure; references are resolved by the caller's [`crate::deps::DependencyParser`]. What a
//! user reads about a line that is not a command is worded in [`super::texts`].

/// A command's verb and arguments, references still as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Manage the issue and launch it when ready.
    Run,
    /// Start a new attempt after a failure.
    Retry,
    /// Stop the running agent.
    Cancel,
    /// Refresh and show the status.
    Status,
    /// Add dependencies (the text after `depends on`).
    DependsOn(String),
    /// Remove dependencies (the text after `unblock`).
    Unblock(String),
    /// Reply with the issue's dependency graph.
    Graph,
    /// Reply with the repository's launch order.
    Plan,
    /// Stop launching in the repository.
    Pause,
    /// Launch in the repository again.
    Resume,
    /// Reply with the commands.
    Help,
}

/// The verbs, as written after the prefix.
pub const VERBS: &[&str] = &[
    "run",
    "retry",
    "cancel",
    "status",
    "depends on",
    "unblock",
    "graph",
    "plan",
    "pause",
    "resume",
    "help",
];

/// A line that starts with the prefix but is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// The line as written.
    pub line: String,
    /// What is wrong.
    pub problem: CommandProblem,
}

/// What is wrong with a line that starts with the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandProblem {
    /// The prefix alone.
    MissingVerb,
    /// A verb that takes no arguments was given some.
    UnexpectedArguments {
        /// The verb, lowercased.
        verb: String,
    },
    /// `depends` without `on` and references.
    DependsOnWithoutReferences,
    /// `unblock` without references.
    UnblockWithoutReferences,
    /// A word that is no verb.
    UnknownVerb {
        /// The word, lowercased.
        word: String,
        /// The verb within two edits of it, which the user probably meant.
        suggestion: Option<&'static str>,
    },
}

impl Command {
    /// The command as a user writes it after `prefix`; parses back to itself.
    pub fn render(&self, prefix: &str) -> String {
        match self {
            Self::DependsOn(refs) => format!("{prefix} depends on {refs}"),
            Self::Unblock(refs) => format!("{prefix} unblock {refs}"),
            other => format!("{prefix} {}", other.verb()),
        }
    }

    /// The verb.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Retry => "retry",
            Self::Cancel => "cancel",
            Self::Status => "status",
            Self::DependsOn(_) => "depends on",
            Self::Unblock(_) => "unblock",
            Self::Graph => "graph",
            Self::Plan => "plan",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Help => "help",
        }
    }
}

/// Every command line in `body`, in order, each parsed or refused.
pub fn parse_commands(body: &str, prefix: &str) -> Vec<Result<Command, CommandError>> {
    command_lines(body, prefix)
        .into_iter()
        .map(|(line, rest)| parse_line(line, rest))
        .collect()
}

/// The commands of an edited comment that its old text did not have (a line already
/// there before the edit has run already).
pub fn new_commands(
    old_body: &str,
    new_body: &str,
    prefix: &str,
) -> Vec<Result<Command, CommandError>> {
    let mut before: Vec<String> = command_lines(old_body, prefix)
        .into_iter()
        .map(|(line, _)| normalise(line))
        .collect();
    command_lines(new_body, prefix)
        .into_iter()
        .filter(|(line, _)| {
            let key = normalise(line);
            match before.iter().position(|old| *old == key) {
                Some(at) => {
                    before.remove(at);
                    false
                }
                None => true,
            }
        })
        .map(|(line, rest)| parse_line(line, rest))
        .collect()
}

fn normalise(line: &str) -> String {
    line.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Lines that start with `prefix` outside code and quotes: (the whole line, the text
/// after the prefix).
fn command_lines<'a>(body: &'a str, prefix: &str) -> Vec<(&'a str, &'a str)> {
    let mut found = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for raw in body.lines() {
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let line = raw.trim();
        if let Some((ch, len)) = fence {
            let closing = line.chars().take_while(|c| *c == ch).count();
            if indent < 4 && closing >= len && line[closing * ch.len_utf8()..].trim().is_empty() {
                fence = None;
            }
            continue;
        }
        if indent < 4
            && let Some(opening) = fence_opening(line)
        {
            fence = Some(opening);
            continue;
        }
        if indent >= 4 || raw.starts_with('\t') || line.starts_with('>') {
            continue; // indented code or a quote
        }
        let Some(head) = line.get(..prefix.len()) else {
            continue;
        };
        let rest = &line[prefix.len()..];
        if head.eq_ignore_ascii_case(prefix)
            && (rest.is_empty() || rest.starts_with(char::is_whitespace))
        {
            found.push((line, rest.trim()));
        }
    }
    found
}

/// ```` ``` ```` or `~~~` (three or more) opening a fenced block.
fn fence_opening(line: &str) -> Option<(char, usize)> {
    let ch = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = line.chars().take_while(|c| *c == ch).count();
    (len >= 3).then_some((ch, len))
}

fn parse_line(line: &str, rest: &str) -> Result<Command, CommandError> {
    let error = |problem| CommandError {
        line: line.to_owned(),
        problem,
    };
    let mut words = rest.split_whitespace();
    let Some(verb) = words.next() else {
        return Err(error(CommandProblem::MissingVerb));
    };
    let verb = verb.to_lowercase();
    let arguments = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..].trim();
    let no_arguments = |command: Command| {
        if arguments.is_empty() {
            Ok(command)
        } else {
            Err(error(CommandProblem::UnexpectedArguments {
                verb: verb.clone(),
            }))
        }
    };
    match verb.as_str() {
        "run" => no_arguments(Command::Run),
        "retry" => no_arguments(Command::Retry),
        "cancel" => no_arguments(Command::Cancel),
        "status" => no_arguments(Command::Status),
        "graph" => no_arguments(Command::Graph),
        "plan" => no_arguments(Command::Plan),
        "pause" => no_arguments(Command::Pause),
        "resume" => no_arguments(Command::Resume),
        "help" => Ok(Command::Help),
        "depends" => {
            let refs = arguments
                .strip_prefix("on")
                .or_else(|| arguments.strip_prefix("On"))
                .or_else(|| arguments.strip_prefix("ON"))
                .filter(|r| r.is_empty() || r.starts_with(char::is_whitespace))
                .map(str::trim);
            match refs {
                Some(refs) if !refs.is_empty() => Ok(Command::DependsOn(refs.to_owned())),
                _ => Err(error(CommandProblem::DependsOnWithoutReferences)),
            }
        }
        "unblock" if !arguments.is_empty() => Ok(Command::Unblock(arguments.to_owned())),
        "unblock" => Err(error(CommandProblem::UnblockWithoutReferences)),
        other => Err(error(CommandProblem::UnknownVerb {
            word: other.to_owned(),
            suggestion: closest_verb(other),
        })),
    }
}

/// The verb within two edits of `word`, if one is.
fn closest_verb(word: &str) -> Option<&'static str> {
    VERBS
        .iter()
        .map(|verb| {
            (
                edit_distance(word, verb.split(' ').next().unwrap_or(verb)),
                *verb,
            )
        })
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, verb)| verb)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: &str = "/codegen";

    fn ok(body: &str) -> Vec<Command> {
        parse_commands(body, P)
            .into_iter()
            .map(|c| c.expect("a command"))
            .collect()
    }

    #[test]
    fn every_verb_parses() {
        let body = "/codegen run\n/codegen retry\n/codegen cancel\n/codegen status\n\
                    /codegen depends on #1, acme/x#2\n/codegen unblock #1\n/codegen graph\n\
                    /codegen plan\n/codegen pause\n/codegen resume\n/codegen help";
        assert_eq!(
            ok(body),
            [
                Command::Run,
                Command::Retry,
                Command::Cancel,
                Command::Status,
                Command::DependsOn("#1, acme/x#2".into()),
                Command::Unblock("#1".into()),
                Command::Graph,
                Command::Plan,
                Command::Pause,
                Command::Resume,
                Command::Help,
            ]
        );
    }

    #[test]
    fn only_line_leading_commands_outside_code_and_quotes_count() {
        let body = "Please /codegen run this\n\
                    > /codegen cancel\n\
                    ```\n/codegen cancel\n```\n\
                    ~~~~\n/codegen cancel\n~~~\n/codegen cancel\n~~~~\n\
                    \x20   /codegen cancel\n\
                    `/codegen cancel`\n\
                    /codegenrun\n\
                    \x20 /CODEGEN Run\n";
        assert_eq!(ok(body), [Command::Run]);
    }

    #[test]
    fn an_unknown_verb_suggests_the_closest() {
        let found = parse_commands("/codegen rnu\n/codegen deploy\n/codegen", P);
        let problems: Vec<_> = found.into_iter().map(|c| c.unwrap_err().problem).collect();
        assert_eq!(
            problems,
            [
                CommandProblem::UnknownVerb {
                    word: "rnu".into(),
                    suggestion: Some("run")
                },
                CommandProblem::UnknownVerb {
                    word: "deploy".into(),
                    suggestion: None
                },
                CommandProblem::MissingVerb,
            ]
        );
        let missing = parse_commands(
            "/codegen depends #3\n/codegen run now\n/codegen unblock\n/codegen Depends On",
            P,
        );
        let problems: Vec<_> = missing
            .into_iter()
            .map(|c| c.unwrap_err().problem)
            .collect();
        assert_eq!(
            problems,
            [
                CommandProblem::DependsOnWithoutReferences,
                CommandProblem::UnexpectedArguments { verb: "run".into() },
                CommandProblem::UnblockWithoutReferences,
                CommandProblem::DependsOnWithoutReferences,
            ]
        );
    }

    #[test]
    fn an_edit_runs_only_the_added_lines() {
        let old = "/codegen run\nthanks";
        let new = "/codegen run\n/codegen   depends on #4\nthanks";
        assert_eq!(
            new_commands(old, new, P)
                .into_iter()
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
            [Command::DependsOn("#4".into())]
        );
        // The same line twice after the edit: the second is new.
        assert_eq!(new_commands(old, "/codegen run\n/codegen run", P).len(), 1);
        assert!(new_commands(old, old, P).is_empty());
    }

    #[test]
    fn the_prefix_is_configurable() {
        assert_eq!(parse_commands("/bot run\n/codegen run", "/bot").len(), 1);
    }

    fn any_command() -> impl Strategy<Value = Command> {
        let refs = proptest::collection::vec(1u64..100_000, 1..4).prop_map(|ns| {
            ns.iter()
                .map(|n| format!("#{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        prop_oneof![
            Just(Command::Run),
            Just(Command::Retry),
            Just(Command::Cancel),
            Just(Command::Status),
            Just(Command::Graph),
            Just(Command::Plan),
            Just(Command::Pause),
            Just(Command::Resume),
            Just(Command::Help),
            refs.clone().prop_map(Command::DependsOn),
            refs.prop_map(Command::Unblock),
        ]
    }

    proptest! {
        #[test]
        fn a_rendered_command_parses_back_to_itself(command in any_command()) {
            let parsed = parse_commands(&command.render(P), P);
            prop_assert_eq!(parsed, vec![Ok(command)]);
        }

        #[test]
        fn any_text_parses_without_panic(text in "\\PC{0,400}") {
            let _ = parse_commands(&text, P);
            let _ = new_commands(&text, &text.to_uppercase(), P);
        }
    }
}
