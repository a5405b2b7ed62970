use super::*;
use crate::domain::{InstallationId, RunRecord};
use crate::engine::machine::Tracked;

fn r(repo: &str, n: u64) -> IssueRef {
    IssueRef::new(repo.parse().unwrap(), n)
}

fn managed(title: &str, status: IssueStatus, blockers: &[IssueRef]) -> Tracked {
    let mut tracked = Tracked::new(status);
    tracked.managed = true;
    tracked.title = Some(title.into());
    tracked.declared = blockers.iter().cloned().collect();
    tracked
}

fn run(issue: &IssueRef, attempt: u32, state: RunState) -> RunRecord {
    RunRecord {
        row: 1,
        installation: InstallationId(42),
        issue: issue.clone(),
        attempt,
        state,
        prompt: String::new(),
        run_id: None,
        web_url: Some(format!("https://codegen.com/agent/trace/{}", issue.number)),
        summary: None,
        pull_requests: Vec::new(),
        failure: (state == RunState::Failed).then(|| "the agent gave up".to_owned()),
        created_at: 1_000,
        started_at: Some(1_000),
        finished_at: None,
    }
}

/// `acme/api`: #1 done, #2 running and #3 queued behind it, #4 behind both and behind a
/// secret issue of a repository the viewer may not read, #5 failed.
fn installation() -> Installation {
    let mut installation = Installation::new(crate::engine::UnblockOn::IssueClosed);
    let issues = &mut installation.issues;
    let api = |n| r("acme/api", n);
    issues.insert(api(1), managed("Schema", IssueStatus::ClosedCompleted, &[]));
    issues.insert(
        api(2),
        managed("Accounts API", IssueStatus::Open, &[api(1)]),
    );
    issues.insert(api(3), managed("Billing API", IssueStatus::Open, &[api(1)]));
    let secret = r("other/secret", 9);
    issues.insert(
        api(4),
        managed(
            "Dashboard",
            IssueStatus::Open,
            &[api(2), api(3), secret.clone()],
        ),
    );
    issues.insert(api(5), managed("Importer", IssueStatus::Open, &[]));
    let mut hidden = Tracked::new(IssueStatus::Open);
    hidden.title = Some("Secret plans".into());
    issues.insert(secret, hidden);
    installation
        .runs
        .insert(api(2), run(&api(2), 1, RunState::Running));
    installation
        .runs
        .insert(api(5), run(&api(5), 2, RunState::Failed));
    installation.rebuild(crate::engine::UnblockOn::IssueClosed);
    installation
}

#[test]
fn a_board_lists_each_state_and_names_no_issue_of_an_unreadable_repository() {
    let visible: BTreeSet<String> = ["acme/api".to_owned()].into();
    let paused = BTreeMap::new();
    let context = BoardContext {
        visible: &visible,
        paused: &paused,
        suspended: false,
        quota_pause: None,
        command: "/codegen",
        forecast: None,
        now: 61_000,
    };
    let board = repo_board(&installation(), &"acme/api".parse().unwrap(), &context);
    assert_eq!(board.totals.issues, 5);
    assert_eq!(board.graph.nodes.len(), 5, "{:?}", board.graph.nodes);
    let states: Vec<(&str, NodeState, usize)> = board
        .graph
        .nodes
        .iter()
        .map(|n| (n.issue.as_str(), n.state, n.depth))
        .collect();
    assert_eq!(
        states,
        [
            ("acme/api#1", NodeState::Done, 0),
            ("acme/api#5", NodeState::Failed, 0),
            ("acme/api#2", NodeState::Running, 1),
            ("acme/api#3", NodeState::Queued, 1),
            ("acme/api#4", NodeState::Blocked, 2),
        ]
    );
    assert_eq!(board.graph.edges, [(0, 2), (0, 3), (2, 4), (3, 4)]);
    assert_eq!(board.running[0].elapsed_secs, 60);
    assert_eq!(board.running[0].attempt, 1);
    assert_eq!(board.queued[0].position, Some(1));
    let blocked = &board.blocked[0];
    assert_eq!(blocked.issue, "acme/api#4");
    assert_eq!(blocked.blockers.len(), 2);
    assert_eq!(blocked.blockers[0].why, "running");
    assert_eq!(blocked.hidden_blockers, 1);
    assert_eq!(board.failed[0].reason.as_deref(), Some("the agent gave up"));
    assert_eq!(board.failed[0].retry, "/codegen retry");
    assert_eq!(board.done[0].issue, "acme/api#1");
    let json = serde_json::to_string(&board).unwrap();
    assert!(
        !json.contains("secret") && !json.contains("Secret"),
        "{json}"
    );

    // Once the viewer may read it, the blocker is named and drawn.
    let visible: BTreeSet<String> = ["acme/api".to_owned(), "other/secret".to_owned()].into();
    let context = BoardContext {
        visible: &visible,
        ..context
    };
    let board = repo_board(&installation(), &"acme/api".parse().unwrap(), &context);
    assert_eq!(board.graph.nodes.len(), 6);
    assert_eq!(board.blocked[0].blockers.len(), 3);
    assert_eq!(board.blocked[0].hidden_blockers, 0);
}

#[test]
fn a_paused_repository_says_who_paused_it_and_queues_nothing() {
    let visible: BTreeSet<String> = ["acme/api".to_owned()].into();
    let paused: BTreeMap<RepoName, String> =
        [("acme/api".parse().unwrap(), "octocat".into())].into();
    let context = BoardContext {
        visible: &visible,
        paused: &paused,
        suspended: false,
        quota_pause: None,
        command: "/codegen",
        forecast: None,
        now: 0,
    };
    let board = repo_board(&installation(), &"acme/api".parse().unwrap(), &context);
    assert_eq!(board.paused_by.as_deref(), Some("octocat"));
    assert_eq!(board.resume.as_deref(), Some("/codegen resume"));
    assert_eq!(board.queued[0].position, None);
}

#[test]
fn a_cycle_path_through_an_unreadable_repository_is_left_out() {
    let visible: BTreeSet<String> = ["acme/api".to_owned()].into();
    let paused = BTreeMap::new();
    let context = BoardContext {
        visible: &visible,
        paused: &paused,
        suspended: false,
        quota_pause: None,
        command: "/codegen",
        forecast: None,
        now: 0,
    };
    assert!(cycle_is_visible("#3 -> #7 -> #3", &context));
    assert!(cycle_is_visible("#3 -> acme/api#7 -> #3", &context));
    assert!(!cycle_is_visible("#3 -> other/secret#7 -> #3", &context));
}

#[test]
fn the_forecast_gives_each_waiting_and_running_issue_its_times_and_the_totals_their_end() {
    use crate::engine::forecast::{CODEGEN_LAUNCHES_PER_MINUTE, Start, forecast};
    let installation = installation();
    let now = 61_000;
    let start = Start {
        running: vec![(r("acme/api", 2), 1_000)],
        launches_from: now,
        launches_per_minute: CODEGEN_LAUNCHES_PER_MINUTE,
        now,
    };
    let forecast = forecast(&installation.graph, &Scheduler::new(2), &start);
    let visible: BTreeSet<String> = ["acme/api".to_owned()].into();
    let paused = BTreeMap::new();
    let context = BoardContext {
        visible: &visible,
        paused: &paused,
        suspended: false,
        quota_pause: None,
        command: "/codegen",
        forecast: Some(&forecast),
        now,
    };
    let board = repo_board(&installation, &"acme/api".parse().unwrap(), &context);
    const HOUR: i64 = 3_600_000;
    // #2 started at 1 s and weighs the default hour; #3 takes the free agent now.
    assert_eq!(board.running[0].expected_finish, Some(1_000 + HOUR));
    assert_eq!(board.queued[0].expected_start, Some(now));
    assert_eq!(board.queued[0].expected_finish, Some(now + HOUR));
    assert_eq!(board.queued[0].agent_hours, Some(1.0));
    // #4 also waits for an issue nobody manages: no time.
    assert_eq!(board.blocked[0].expected_start, None);
    assert_eq!(board.totals.expected_finish, Some(now + HOUR));
    let left = board.totals.agent_hours.unwrap();
    assert!(
        (left - (1.0 + (HOUR - 60_000) as f64 / HOUR as f64)).abs() < 1e-9,
        "{left}"
    );
}

#[test]
fn pull_requests_cycles_and_places_name_only_readable_repositories() {
    use crate::domain::PullRequestLink;
    let mut installation = Installation::new(crate::engine::UnblockOn::IssueClosed);
    let issues = &mut installation.issues;
    // A pull request of a repository the viewer may not read closes acme/api#1 too.
    let mut done = managed("Schema", IssueStatus::ClosedCompleted, &[]);
    done.pulls
        .insert(PullRequestLink::new("https://github.com/acme/api/pull/4"));
    done.pulls.insert(PullRequestLink::new(
        "https://github.com/big-acme/api/pull/3",
    ));
    issues.insert(r("acme/api", 1), done);
    // Held by cycles: one within a readable repository with a hyphen in its name, one
    // through a repository whose name ends like a readable one.
    let mut shown = managed("Web", IssueStatus::Open, &[]);
    shown.cycle = Some("acme/web-app#2 -> acme/web-app#3 -> acme/web-app#2".into());
    issues.insert(r("acme/web-app", 2), shown);
    let mut hidden = managed("Also web", IssueStatus::Open, &[]);
    hidden.cycle = Some("acme/web-app#4 -> big-acme/api#9 -> acme/web-app#4".into());
    issues.insert(r("acme/web-app", 4), hidden);
    // Queued: a secret issue first (its chain is longer), then acme/api#6.
    issues.insert(r("secret/x", 5), managed("Secret", IssueStatus::Open, &[]));
    issues.insert(
        r("secret/x", 7),
        managed("Secret too", IssueStatus::Open, &[r("secret/x", 5)]),
    );
    issues.insert(
        r("acme/api", 6),
        managed("Importer", IssueStatus::Open, &[]),
    );
    installation.rebuild(crate::engine::UnblockOn::IssueClosed);
    let visible: BTreeSet<String> = ["acme/api".to_owned(), "acme/web-app".to_owned()].into();
    let paused = BTreeMap::new();
    let context = BoardContext {
        visible: &visible,
        paused: &paused,
        suspended: false,
        quota_pause: None,
        command: "/codegen",
        forecast: None,
        now: 0,
    };
    let api = repo_board(&installation, &"acme/api".parse().unwrap(), &context);
    assert_eq!(
        api.done[0].pull_requests,
        ["https://github.com/acme/api/pull/4"]
    );
    assert_eq!(api.queued[0].issue, "acme/api#6");
    assert_eq!(
        api.queued[0].position,
        Some(1),
        "the secret issue ahead is not counted"
    );
    let web = repo_board(&installation, &"acme/web-app".parse().unwrap(), &context);
    let cycles: Vec<Option<&str>> = web.blocked.iter().map(|b| b.cycle.as_deref()).collect();
    assert_eq!(
        cycles,
        [
            Some("acme/web-app#2 -> acme/web-app#3 -> acme/web-app#2"),
            None
        ]
    );
    let json = serde_json::to_string(&(api, web)).unwrap();
    assert!(
        !json.contains("big-acme") && !json.contains("secret"),
        "{json}"
    );
}
