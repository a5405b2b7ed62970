use super::*;
use crate::domain::RunState;
use crate::domain::{AppIdentity, IssueRef, User};
use crate::engine::status::{BlockerView, RunView};

fn r(text: &str) -> IssueRef {
    text.parse().unwrap()
}

fn run(phase: RunState) -> RunView {
    crate::engine::status::sample_run(phase)
}

fn view(state: WorkState) -> StatusView {
    StatusView {
        issue: r("acme/api#4"),
        state,
        blockers: vec![],
        queue_position: None,
        run: None,
        pull_requests: vec![],
        cycle: None,
        paused: None,
        notes: vec![],
        unseen_blockers: 0,
        unseen_children: 0,
        umbrella: false,
        parent: None,
        retry_after_discovery: None,
        expected_start: None,
    }
}

#[test]
fn a_waiting_issue_says_when_it_is_expected_to_start_to_ten_minutes() {
    // 2027-01-15 08:04:59 UTC is shown as 08:00; a second later, 08:10.
    let at = 1_800_000_000_000 + 5 * 60_000 - 1_000;
    let view = StatusView {
        queue_position: Some(3),
        expected_start: Some(at),
        ..view(WorkState::Queued)
    };
    let text = status_comment(&view, "/codegen");
    insta::assert_snapshot!(text);
    let later = status_comment(
        &StatusView {
            expected_start: Some(at + 1_000),
            ..view.clone()
        },
        "/codegen",
    );
    assert!(text.contains("2027-01-15 08:00 UTC"), "{text}");
    assert!(later.contains("2027-01-15 08:10 UTC"), "{later}");
}

#[test]
fn the_comment_shows_blockers_run_and_commands() {
    let view = StatusView {
        blockers: vec![
            BlockerView {
                issue: r("acme/api#2"),
                title: Some("Schema".into()),
                state: IssueStatus::ClosedCompleted,
                satisfied: true,
                pull_requests: vec!["https://github.com/acme/api/pull/5".into()],
                sub_issue: false,
                discovered_in: None,
            },
            BlockerView {
                issue: r("other/lib#5"),
                title: None,
                state: IssueStatus::ClosedNotPlanned,
                satisfied: false,
                pull_requests: vec![],
                sub_issue: false,
                discovered_in: None,
            },
        ],
        run: Some(run(RunState::Failed)),
        notes: vec!["The project \"Roadmap\" has no field \"Status\".".into()],
        ..view(WorkState::Failed)
    };
    insta::assert_snapshot!(status_comment(&view, "/codegen"));
}

#[test]
fn blockers_the_app_cannot_see_are_counted_and_explained() {
    let view = StatusView {
        blockers: vec![BlockerView {
            issue: r("acme/api#2"),
            title: Some("Schema".into()),
            state: IssueStatus::ClosedCompleted,
            satisfied: true,
            pull_requests: vec![],
            sub_issue: false,
            discovered_in: None,
        }],
        unseen_blockers: 2,
        ..view(WorkState::Blocked)
    };
    insta::assert_snapshot!(status_comment(&view, "/codegen"));
}

#[test]
fn a_queued_issue_shows_its_place() {
    let view = StatusView {
        queue_position: Some(3),
        cycle: Some("acme/api#4 -> acme/api#6 -> acme/api#4".into()),
        paused: Some("the repository is paused (`/codegen resume` restarts it)".into()),
        ..view(WorkState::Queued)
    };
    let text = status_comment(&view, "/codegen");
    assert!(text.starts_with(STATUS_MARKER));
    assert!(text.contains("number 3 in the queue"));
    for (position, says) in [
        (10, "Ready; number 10 in the queue for a free agent."),
        (
            11,
            "Ready; in the queue for a free agent, behind the first 10.",
        ),
        (
            250,
            "Ready; in the queue for a free agent, behind the first 10.",
        ),
    ] {
        let queued = StatusView {
            queue_position: Some(position),
            ..self::view(WorkState::Queued)
        };
        assert!(
            status_comment(&queued, "/codegen").contains(says),
            "{position}: {says}"
        );
    }
    assert!(text.contains("`acme/api#4 -> acme/api#6 -> acme/api#4`"));
    assert!(text.contains("Launching is paused"));
}

/// Every state's headline and commands, and what only some states show: a cycle, a
/// pause, a single unseen blocker, a running agent, pull requests from two sources.
#[test]
fn every_state_has_its_headline_and_commands() {
    let comments = [
        status_comment(
            &StatusView {
                cycle: Some("acme/api#4 -> acme/api#6 -> acme/api#4".into()),
                ..view(WorkState::Blocked)
            },
            "/codegen",
        ),
        status_comment(
            &StatusView {
                unseen_blockers: 1,
                ..view(WorkState::Blocked)
            },
            "/codegen",
        ),
        status_comment(
            &StatusView {
                paused: Some("acme/api was paused by @octo; `/codegen resume` restarts it.".into()),
                ..view(WorkState::Queued)
            },
            "/codegen",
        ),
        status_comment(
            &StatusView {
                run: Some(run(RunState::Running)),
                ..view(WorkState::Running)
            },
            "/bot",
        ),
        status_comment(
            &StatusView {
                run: Some(run(RunState::Succeeded)),
                pull_requests: vec![
                    "https://github.com/acme/api/pull/8".into(),
                    "https://github.com/acme/api/pull/9".into(),
                ],
                ..view(WorkState::Done)
            },
            "/codegen",
        ),
    ];
    insta::assert_snapshot!(comments.join("\n=====\n\n"));
}

#[test]
fn a_long_run_and_odd_titles_stay_on_one_line() {
    let mut long = run(RunState::Failed);
    long.finished_at = Some(1_800_000_000_000 + (2 * 60 + 5) * 60_000);
    long.failure = Some(format!("line one\n\nline   two {}", "x".repeat(300)));
    let view = StatusView {
        blockers: vec![BlockerView {
            issue: r("acme/api#2"),
            title: Some("A title\nwith a newline".into()),
            state: IssueStatus::Deleted,
            satisfied: false,
            pull_requests: vec![],
            sub_issue: false,
            discovered_in: None,
        }],
        run: Some(long),
        ..view(WorkState::Failed)
    };
    let text = status_comment(&view, "/codegen");
    assert!(text.contains("took 2 h 5 min"), "{text}");
    assert!(
        text.contains("acme/api#2 A title with a newline — deleted"),
        "{text}"
    );
    assert!(text.contains("Failure: line one line two xxx"), "{text}");
    assert!(text.contains("x…\n"), "{text}");
}

#[test]
fn a_reader_is_named_and_told_what_would_work() {
    let reader = Actor::Person(User {
        id: 7,
        login: "octo-reader".into(),
        is_bot: false,
    });
    insta::assert_snapshot!(label_refusal("codegen", &reader, "/codegen"));
}

#[test]
fn an_app_and_an_unknown_account_are_refused_in_their_own_words() {
    let actions = Actor::App {
        app: Some(AppIdentity {
            id: 15368,
            slug: "github-actions".into(),
        }),
        login: "github-actions[bot]".into(),
    };
    let refusals = [
        label_refusal("codegen", &actions, "/codegen"),
        label_refusal("ai", &Actor::Unknown, "/bot"),
    ];
    insta::assert_snapshot!(refusals.join("\n=====\n\n"));
}

#[test]
fn apps_and_unknown_accounts_are_named_by_what_github_says() {
    let actions = Actor::App {
        app: Some(AppIdentity {
            id: 15368,
            slug: "github-actions".into(),
        }),
        login: "github-actions[bot]".into(),
    };
    assert_eq!(actor_name(&actions), "the App `github-actions`");
    let nameless = Actor::App {
        app: None,
        login: "helper[bot]".into(),
    };
    assert_eq!(actor_name(&nameless), "the bot `helper[bot]`");
    // An App GitHub names without a slug is named by its bot account.
    let slugless = Actor::App {
        app: Some(AppIdentity {
            id: 9,
            slug: String::new(),
        }),
        login: "helper[bot]".into(),
    };
    assert_eq!(actor_name(&slugless), "the bot `helper[bot]`");
    assert_eq!(
        actor_name(&Actor::Unknown),
        "an account GitHub no longer knows"
    );
    let person = Actor::Person(User {
        id: 1,
        login: "octo".into(),
        is_bot: false,
    });
    assert_eq!(actor_name(&person), "@octo");
}

#[test]
fn an_issue_that_left_says_why() {
    let texts = [
        left_management(Some(IssueStatus::ClosedNotPlanned)),
        left_management(Some(IssueStatus::Deleted)),
        left_management(Some(IssueStatus::Open)),
        left_management(None),
    ];
    assert!(texts.iter().all(|t| t.starts_with(STATUS_MARKER)));
    assert_eq!(texts[2], texts[3]);
    insta::assert_snapshot!(texts[..3].join("\n=====\n\n"));
}

fn blocker(issue: &str, state: IssueStatus, sub_issue: bool) -> BlockerView {
    BlockerView {
        issue: r(issue),
        title: Some(format!("Work {issue}")),
        state,
        satisfied: state == IssueStatus::ClosedCompleted,
        pull_requests: if state == IssueStatus::ClosedCompleted {
            vec!["https://github.com/acme/api/pull/31".into()]
        } else {
            vec![]
        },
        sub_issue,
        discovered_in: None,
    }
}

#[test]
fn an_umbrella_waits_for_its_sub_issues_and_says_it_has_no_agent() {
    let view = StatusView {
        blockers: vec![
            blocker("acme/api#7", IssueStatus::ClosedCompleted, true),
            blocker("acme/api#8", IssueStatus::Open, true),
            blocker("acme/api#9", IssueStatus::Open, false),
        ],
        unseen_children: 1,
        umbrella: true,
        ..view(WorkState::Blocked)
    };
    insta::assert_snapshot!(status_comment(&view, "/codegen"));
}

#[test]
fn a_done_umbrella_lists_its_sub_issues_pull_requests() {
    let view = StatusView {
        blockers: vec![
            blocker("acme/api#7", IssueStatus::ClosedCompleted, true),
            blocker("acme/api#8", IssueStatus::ClosedCompleted, true),
        ],
        umbrella: true,
        ..view(WorkState::Done)
    };
    insta::assert_snapshot!(status_comment(&view, "/codegen"));
}

#[test]
fn a_discovered_prerequisite_is_shown_with_its_run_and_the_retry_it_waits_for() {
    let mut discovered = blocker("acme/api#12", IssueStatus::Open, false);
    discovered.discovered_in = Some(1);
    let view = StatusView {
        blockers: vec![
            blocker("acme/api#2", IssueStatus::ClosedCompleted, false),
            discovered,
        ],
        parent: Some(r("acme/api#1")),
        retry_after_discovery: Some(1),
        run: Some(RunView {
            attempt: 1,
            ..run(RunState::Failed)
        }),
        ..view(WorkState::Blocked)
    };
    insta::assert_snapshot!(status_comment(&view, "/codegen"));
}
