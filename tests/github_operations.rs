//! The GitHub operations against the stateful fake: labels created with their colour,
//! one status comment edited in place, permissions cached by user id, native dependencies
//! linked by database id.

mod support;

use std::time::Duration;

use codegen_orchestrator::config::{GithubConfig, Secret};
use codegen_orchestrator::domain::{IssueRef, RepoName, User};
use codegen_orchestrator::github::retry::RetryPolicy;
use codegen_orchestrator::github::{GitHub, Permission};
use support::fake_github::FakeGithub;

async fn setup() -> (FakeGithub, GitHub) {
    let github = FakeGithub::start().await;
    github.add_issue("acme/api", 1, "One", "", &["codegen"]);
    github.add_issue("acme/api", 2, "Two", "", &["codegen"]);
    let config = GithubConfig {
        api_url: github.url.clone(),
        token: Some(Secret::new("ghp_ops_test")),
        ..GithubConfig::default()
    };
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    let client = GitHub::for_repository_with(&config, &repo(), policy)
        .await
        .unwrap();
    (github, client)
}

fn repo() -> RepoName {
    "acme/api".parse().unwrap()
}

fn issue(number: u64) -> IssueRef {
    IssueRef::new(repo(), number)
}

#[tokio::test]
async fn state_labels_are_created_once_with_their_colour_then_added_and_removed() {
    let (github, client) = setup().await;
    client
        .ensure_label(
            &repo(),
            "codegen:running",
            "fbca04",
            "An agent is working on it",
        )
        .await
        .unwrap();
    client
        .ensure_label(
            &repo(),
            "codegen:running",
            "fbca04",
            "An agent is working on it",
        )
        .await
        .unwrap();
    let creations = github
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/repos/acme/api/labels")
        .count();
    assert_eq!(creations, 1);
    // Known to exist once created: the second call asks nothing, and neither does a
    // clone of the client (the effects clone it per installation).
    client
        .clone()
        .ensure_label(&repo(), "Codegen:Running", "fbca04", "")
        .await
        .unwrap();
    let label_requests = github
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/repos/acme/api/labels"))
        .count();
    assert_eq!(label_requests, 2, "one look-up, one creation");
    assert_eq!(
        github.state.lock().unwrap().labels["acme/api"]["codegen:running"].0,
        "fbca04"
    );

    client
        .add_labels(&issue(1), &["codegen:running"])
        .await
        .unwrap();
    let labels = |github: &FakeGithub| -> Vec<String> {
        let state = github.state.lock().unwrap();
        state.issues[&("acme/api".to_owned(), 1)]["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(labels(&github), ["codegen", "codegen:running"]);
    client
        .remove_label(&issue(1), "codegen:running")
        .await
        .unwrap();
    client
        .remove_label(&issue(1), "codegen:running")
        .await
        .unwrap(); // already gone: fine
    assert_eq!(labels(&github), ["codegen"]);
}

#[tokio::test]
async fn the_status_comment_is_posted_once_and_edited_in_place() {
    let (github, client) = setup().await;
    let marker = "<!-- codegen-orchestrator:status -->";
    client
        .create_comment(&issue(1), "Thanks, looking at it")
        .await
        .unwrap();
    let first = client
        .upsert_marked_comment(&issue(1), marker, &format!("{marker}\nqueued"))
        .await
        .unwrap();
    let second = client
        .upsert_marked_comment(&issue(1), marker, &format!("{marker}\nrunning"))
        .await
        .unwrap();
    let unchanged = client
        .upsert_marked_comment(&issue(1), marker, &format!("{marker}\nrunning"))
        .await
        .unwrap();
    assert_eq!((first, second, unchanged), (first, first, first));
    let state = github.state.lock().unwrap();
    let comments = &state.comments[&("acme/api".to_owned(), 1)];
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert_eq!(comments[1].1, format!("{marker}\nrunning"));
    let edits = state
        .requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(edits, 1, "an unchanged body was written again");
}

#[tokio::test]
async fn reactions_and_closing() {
    let (github, client) = setup().await;
    let comment = client
        .create_comment(&issue(1), "/codegen run")
        .await
        .unwrap();
    client
        .react_to_comment(&repo(), comment, "rocket")
        .await
        .unwrap();
    client.close_issue(&issue(2)).await.unwrap();
    let snapshot = client.issue(&issue(2)).await.unwrap();
    assert_eq!(
        snapshot.status,
        codegen_orchestrator::domain::IssueStatus::ClosedCompleted
    );
    client.reopen_issue(&issue(2)).await.unwrap();
    assert_eq!(
        client.issue(&issue(2)).await.unwrap().status,
        codegen_orchestrator::domain::IssueStatus::Open
    );
    assert_eq!(
        github.state.lock().unwrap().reactions,
        [(comment, "rocket".to_owned())]
    );
}

#[tokio::test]
async fn permissions_are_cached_by_user_id_even_across_a_rename() {
    let (github, client) = setup().await;
    github.state.lock().unwrap().permissions.insert(
        ("acme/api".into(), "octo-dev".into()),
        ("write".into(), "maintain".into()),
    );
    let user = User {
        id: 77,
        login: "octo-dev".into(),
        is_bot: false,
    };
    assert_eq!(
        client.permission(&repo(), &user).await.unwrap(),
        Permission::Maintain
    );
    let renamed = User {
        login: "octo-dev-renamed".into(),
        ..user.clone()
    };
    assert_eq!(
        client.permission(&repo(), &renamed).await.unwrap(),
        Permission::Maintain
    );
    let asked = github
        .requests()
        .iter()
        .filter(|r| r.path.contains("/collaborators/"))
        .count();
    assert_eq!(asked, 1);
    let stranger = User {
        id: 78,
        login: "drive-by".into(),
        is_bot: false,
    };
    assert_eq!(
        client.permission(&repo(), &stranger).await.unwrap(),
        Permission::None
    );
    assert!(!Permission::None.may_run_agents());
}

#[tokio::test]
async fn native_dependencies_use_the_blockers_database_id() {
    let (github, client) = setup().await;
    client.add_blocked_by(&issue(2), &issue(1)).await.unwrap();
    let blockers = client.blocked_by(&issue(2)).await.unwrap();
    assert_eq!(
        blockers
            .iter()
            .map(|b| b.reference.clone())
            .collect::<Vec<_>>(),
        [issue(1)]
    );
    let id_of_1 = github.state.lock().unwrap().issues[&("acme/api".to_owned(), 1)]["id"]
        .as_u64()
        .unwrap();
    assert_ne!(
        id_of_1, 1,
        "the fake must give ids that differ from numbers"
    );
    assert_eq!(
        github.state.lock().unwrap().blocked_by[&("acme/api".to_owned(), 2)],
        [id_of_1]
    );
    client
        .remove_blocked_by(&issue(2), &issue(1))
        .await
        .unwrap();
    client
        .remove_blocked_by(&issue(2), &issue(1))
        .await
        .unwrap(); // already gone: fine
    assert!(client.blocked_by(&issue(2)).await.unwrap().is_empty());
}

#[tokio::test]
async fn pull_requests_are_read_and_merged_only_at_the_checked_head() {
    let (github, client) = setup().await;
    github
        .state
        .lock()
        .unwrap()
        .pulls
        .insert(("acme/api".into(), 9), ("abc123".into(), true, false));
    let pull = client.pull_request(&issue(9)).await.unwrap();
    assert_eq!(
        (pull.head_sha.as_str(), pull.mergeable, pull.merged),
        ("abc123", Some(true), false)
    );
    assert_eq!(pull.head_ref, "codegen/9-fix");
    let err = client
        .merge_pull_request(&issue(9), "stale00")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    client
        .merge_pull_request(&issue(9), &pull.head_sha)
        .await
        .unwrap();
    assert!(client.pull_request(&issue(9)).await.unwrap().merged);
}

#[tokio::test]
async fn a_branch_is_created_from_another_branchs_head_once() {
    let (github, client) = setup().await;
    github.state.lock().unwrap().branches.insert(
        ("acme/api".into(), "codegen/1-schema".into()),
        "feed01".into(),
    );
    client
        .create_branch(&repo(), "codegen/2-endpoints", "codegen/1-schema")
        .await
        .unwrap();
    client
        .create_branch(&repo(), "codegen/2-endpoints", "codegen/1-schema")
        .await
        .unwrap();
    let branches = github.state.lock().unwrap().branches.clone();
    assert_eq!(
        branches[&("acme/api".to_owned(), "codegen/2-endpoints".to_owned())],
        "feed01"
    );
}

#[tokio::test]
async fn an_unchanged_issue_is_read_again_with_if_none_match() {
    let (github, client) = setup().await;
    let first = client.issue(&issue(1)).await.unwrap();
    let second = client.issue(&issue(1)).await.unwrap();
    assert_eq!(first, second);
    let reads: Vec<_> = github
        .requests()
        .into_iter()
        .filter(|r| r.path == "/repos/acme/api/issues/1")
        .collect();
    assert_eq!(reads.len(), 2);
    assert!(reads[0].if_none_match.is_empty());
    assert!(
        !reads[1].if_none_match.is_empty(),
        "the second read was not conditional"
    );
    github.close("acme/api", 1, "completed");
    let third = client.issue(&issue(1)).await.unwrap();
    assert_eq!(
        third.status,
        codegen_orchestrator::domain::IssueStatus::ClosedCompleted
    );
}

/// 200 comments through the client in virtual time: never more than 80 in a minute, and
/// no slower than that allows.
#[tokio::test(start_paused = true)]
async fn two_hundred_comments_are_paced_to_eighty_a_minute() {
    let (github, client) = setup().await;
    let start = tokio::time::Instant::now();
    let mut sent_at = Vec::with_capacity(200);
    for n in 0..200 {
        client
            .create_comment(&issue(1), &format!("comment {n}"))
            .await
            .unwrap();
        sent_at.push(tokio::time::Instant::now() - start);
    }
    let most_in_a_minute = (0..sent_at.len())
        .map(|i| {
            sent_at[i..]
                .iter()
                .take_while(|t| **t - sent_at[i] < Duration::from_secs(60))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        most_in_a_minute <= 80,
        "{most_in_a_minute} comments within one minute"
    );
    assert!(
        sent_at[199] < Duration::from_secs(180),
        "{:?}",
        sent_at[199]
    );
    assert_eq!(
        github.state.lock().unwrap().comments[&("acme/api".to_owned(), 1)].len(),
        200
    );
}

/// The reconciler asks who applied the trigger label: the latest `labeled` event for that
/// label decides, across pages, whatever other labels were applied after it.
#[tokio::test]
async fn the_label_actor_is_whoever_applied_the_label_last() {
    use codegen_orchestrator::domain::Actor;
    use support::fake_github::person;
    let (github, client) = setup().await;
    {
        let mut state = github.state.lock().unwrap();
        // #1: a reader labelled it, then a writer applied it again (after an unlabel), then
        // the reader added another label; 150 events in all, so the last page decides.
        state.record_labeled("acme/api", 1, "codegen", person("rick", 2), None);
        for n in 0..147 {
            state.record_labeled("acme/api", 1, &format!("area-{n}"), person("rick", 2), None);
        }
        state.record_labeled("acme/api", 1, "Codegen", person("wendy", 1), None);
        state.record_labeled("acme/api", 1, "bug", person("rick", 2), None);
        // #2: the writer first, then the reader.
        state.record_labeled("acme/api", 2, "codegen", person("wendy", 1), None);
        state.record_labeled("acme/api", 2, "codegen", person("rick", 2), None);
    }

    let person_named = |actor: Option<Actor>| match actor {
        Some(Actor::Person(user)) => user.login.to_string(),
        other => panic!("not a person: {other:?}"),
    };
    let first = client.last_labeled_by(&issue(1), "codegen").await.unwrap();
    assert_eq!(person_named(first), "wendy");
    let second = client.last_labeled_by(&issue(2), "codegen").await.unwrap();
    assert_eq!(person_named(second), "rick");
    let never = client.last_labeled_by(&issue(2), "ready").await.unwrap();
    assert!(never.is_none());
}
