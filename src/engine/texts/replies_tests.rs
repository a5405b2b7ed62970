use super::*;
use crate::engine::commands::parse_commands;

fn r(text: &str) -> IssueRef {
    text.parse().unwrap()
}

fn not_a_command(line: &str) -> CommandRefusal {
    let error = parse_commands(line, "/codegen")
        .pop()
        .expect("a command line")
        .expect_err("not a command");
    CommandRefusal::NotACommand {
        error,
        prefix: "/codegen".into(),
    }
}

/// Every refusal but the one that carries the help, in declaration order.
#[test]
fn every_refusal_says_why() {
    let refusals = [
        CommandRefusal::NoPermission {
            login: "octo-reader".into(),
            permission: "read".into(),
            prefix: "/codegen".into(),
            repo: "acme/api".parse().unwrap(),
        },
        CommandRefusal::ClosedIssue,
        CommandRefusal::NothingRunning,
        CommandRefusal::NotManaged {
            label: "codegen".into(),
            prefix: "/codegen".into(),
        },
        CommandRefusal::NoReferences {
            text: "the schema issue".into(),
        },
        CommandRefusal::Cycle {
            path: "acme/api#4 -> acme/api#6 -> acme/api#4".into(),
        },
        CommandRefusal::NoRunYet,
        CommandRefusal::NotTracked,
        CommandRefusal::NothingToRetry {
            attempt: 2,
            phase: RunState::Running,
        },
        CommandRefusal::NothingToRetry {
            attempt: 3,
            phase: RunState::TimedOut,
        },
    ];
    let texts: Vec<String> = refusals.iter().map(refusal).collect();
    insta::assert_snapshot!(texts.join("\n\n"));
}

#[test]
fn a_line_that_is_not_a_command_gets_the_help() {
    insta::assert_snapshot!(refusal(&not_a_command("/codegen rnu")));
}

#[test]
fn each_parse_problem_is_worded_with_its_line() {
    let lines = [
        "/codegen",
        "/codegen rnu",
        "/codegen deploy",
        "/codegen Run now",
        "/codegen depends #3",
        "/codegen unblock",
    ];
    let texts: Vec<String> = lines
        .iter()
        .map(|line| {
            let error = parse_commands(line, "/codegen").pop().unwrap().unwrap_err();
            command_error(&error)
        })
        .collect();
    assert_eq!(
        texts[1],
        "`/codegen rnu`: `rnu` is not a command. Did you mean `run`?"
    );
    insta::assert_snapshot!(texts.join("\n"));
}

#[test]
fn the_help_lists_every_command_with_the_prefix() {
    let text = help("/bot");
    for verb in crate::engine::commands::VERBS {
        let first = verb.split(' ').next().unwrap();
        assert!(text.contains(&format!("`/bot {first}")), "{verb}: {text}");
    }
    insta::assert_snapshot!(help("/codegen"));
}

#[test]
fn answers_to_several_commands_are_one_reply() {
    let answers = [
        refusal(&CommandRefusal::NothingRunning),
        "This issue has no dependencies and nothing depends on it.".to_owned(),
        refusal(&CommandRefusal::ClosedIssue),
    ];
    insta::assert_snapshot!(reply(&answers));
    assert_eq!(reply(&answers[..1]), answers[0]);
}

#[test]
fn the_launch_plan_lists_running_next_and_waiting() {
    let planned = |issue: &str, title: Option<&str>| PlannedIssue {
        issue: r(issue),
        title: title.map(str::to_owned),
        expected: None,
    };
    let repo: RepoName = "acme/api".parse().unwrap();
    let plan = launch_plan(
        &repo,
        &[planned("acme/api#1", Some("Schema"))],
        &[
            planned("acme/api#2", Some("Endpoints")),
            planned("acme/api#5", None),
        ],
        &[],
        Some("octo"),
        None,
    );
    insta::assert_snapshot!(plan);
    let idle = launch_plan(&repo, &[], &[], &[], None, None);
    assert!(idle.ends_with("(in dependency order):\nnone"), "{idle}");
    assert_eq!(idle.matches("none").count(), 3, "{idle}");
}

#[test]
fn a_plan_with_nothing_managed_says_so() {
    insta::assert_snapshot!(nothing_managed());
}

#[test]
fn the_launch_plan_says_when_each_issue_and_the_repository_are_expected_to_be_done() {
    use crate::engine::forecast::Expected;
    // 2027-01-15 08:00 UTC.
    const T: i64 = 1_800_000_000_000;
    let planned = |issue: &str, start: i64, finish: i64| PlannedIssue {
        issue: r(issue),
        title: Some("Work".into()),
        expected: Some(Expected {
            start: T + start * 60_000,
            finish: T + finish * 60_000,
        }),
    };
    let repo: RepoName = "acme/api".parse().unwrap();
    let plan = launch_plan(
        &repo,
        &[planned("acme/api#1", -30, 30)],
        &[planned("acme/api#2", 30, 94)],
        &[
            planned("acme/api#3", 94, 154),
            PlannedIssue {
                issue: r("acme/api#4"),
                title: Some("Waits for another repository".into()),
                expected: None,
            },
        ],
        None,
        Some(&Outlook {
            finish: Some(T + 154 * 60_000),
            agent_hours: 2.55,
        }),
    );
    insta::assert_snapshot!(plan);
    assert!(plan.contains("acme/api#1 Work — expected to finish around 2027-01-15 08:30 UTC"));
    assert!(plan.contains("acme/api#3 Work — expected to start around 2027-01-15 09:30 UTC"));
    assert!(
        plan.contains("done around 2027-01-15 10:30 UTC, after about 2.5 agent hours"),
        "{plan}"
    );
}
