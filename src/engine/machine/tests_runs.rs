//! Agent runs and what follows them: launching, retries, quota pauses, stacked work and
//! auto-merge.

use super::*;
use crate::engine::UnblockOn;
use crate::engine::machine::EngineSettings;

// ---- Launching ----

#[test]
fn no_more_agents_run_at_once_than_allowed_and_a_freed_slot_is_filled() {
    let mut world = World::with(|s| s.max_concurrent = 2);

    let mut decisions = Vec::new();
    for n in 1..=3 {
        decisions.extend(world.managed(n, &[], ""));
    }
    assert_eq!(launches(&decisions), vec![(1, 1), (2, 1)]);
    let queued = last_status(&decisions, 3);
    assert_eq!(queued.add.as_deref(), Some("codegen:queued"));
    queued.assert_says("number 1 in the queue");

    let decisions = world.ended(1, 1, RunState::Succeeded);
    assert_eq!(launches(&decisions), vec![(3, 1)]);
}

#[test]
fn a_launch_that_was_not_made_lets_the_issue_be_picked_again() {
    let mut world = World::new();
    world.managed(1, &[], "");

    let decisions = world.launch_settled(1, None, None);

    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

#[test]
fn without_codegen_nothing_is_launched_and_the_status_says_why() {
    let mut world = World::with(|s| s.agents = false);

    let decisions = world.managed(1, &[], "");

    assert_eq!(launches(&decisions), vec![]);
    let status = last_status(&decisions, 1);
    assert_eq!(status.add.as_deref(), Some("codegen:queued"));
    status.assert_says("Codegen is not configured");
}

// ---- Retries ----

/// The reply refusing a retry, because of `why`.
fn nothing_to_retry(why: &str) -> String {
    format!("There is nothing to retry: {why}.")
}

#[test]
fn retry_after_a_failed_run_launches_the_next_attempt() {
    let mut world = World::new();
    world.running(1);
    let decisions = world.ended(1, 1, RunState::Failed);
    assert_eq!(
        launches(&decisions),
        vec![],
        "no retry of its own by default"
    );

    let decisions = world.comment(1, "/codegen retry");

    assert_eq!(launches(&decisions), vec![(1, 2)]);
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
}

#[test]
fn retry_before_any_run_is_refused() {
    let mut world = World::new();

    let decisions = world.comment_on(issue(1, &[], ""), "/codegen retry");

    let why = "no agent has run for this issue";
    assert_refused(&decisions, &nothing_to_retry(why));
}

#[test]
fn retry_while_the_agent_runs_is_refused() {
    let mut world = World::new();
    world.running(1);

    let decisions = world.comment(1, "/codegen retry");

    assert_refused(&decisions, &nothing_to_retry("attempt 1 is running"));
}

#[test]
fn retry_twice_for_the_same_failure_is_refused_the_second_time() {
    let mut world = World::new();
    world.ran(1, RunState::Failed);
    // Paused, so that the second attempt does not start in between.
    world.comment(1, "/codegen pause");

    let first = world.comment(1, "/codegen retry");
    let second = world.comment(1, "/codegen retry");

    assert_eq!(reactions(&first), vec!["eyes", "rocket"]);
    assert_eq!(launches(&first), vec![]);
    assert_refused(&second, &nothing_to_retry("attempt 1 is failed"));
}

#[test]
fn retry_after_a_successful_run_is_refused() {
    let mut world = World::new();
    world.ran(1, RunState::Succeeded);

    let decisions = world.comment(1, "/codegen retry");

    assert_refused(&decisions, &nothing_to_retry("attempt 1 is succeeded"));
}

#[test]
fn failed_runs_are_retried_as_often_as_retry_failed_runs_allows() {
    let mut world = World::with(|s| s.retry_failed_runs = 1);
    world.running(1);

    let first = world.ended(1, 1, RunState::Failed);
    world.launched(1, 2);
    let second = world.ended(1, 2, RunState::TimedOut);

    assert_eq!(launches(&first), vec![(1, 2)]);
    assert_eq!(launches(&second), vec![]);
    assert_eq!(
        last_status(&second, 1).add.as_deref(),
        Some("codegen:failed")
    );
}

#[test]
fn a_cancelled_run_is_not_retried_of_its_own() {
    let mut world = World::with(|s| s.retry_failed_runs = 3);
    world.running(1);

    let decisions = world.ended(1, 1, RunState::Cancelled);

    assert_eq!(launches(&decisions), vec![]);
}

#[test]
fn a_cancelled_attempt_that_succeeds_later_never_unblocks_its_dependents() {
    let mut world = World::with(|s| s.orchestrator.unblock_on = UnblockOn::AgentCompleted);
    world.running(1);
    world.managed(2, &[], "Depends on #1");
    world.comment(1, "/codegen cancel");
    world.answer(Outcome::RunRecorded {
        installation: ID,
        run: run_record(1, 1, RunState::Cancelled),
    });

    let mut late = run_record(1, 1, RunState::Succeeded);
    late.pull_requests = vec![pull_link(10)];
    let decisions = world.run(runs_followed(vec![late]));

    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(
        world.engine.installation(ID).unwrap().runs[&r(1)].state,
        RunState::Cancelled
    );
    // A new attempt is another matter: it counts.
    world.comment(1, "/codegen retry");
    world.launched(1, 2);
    let decisions = world.ended(1, 2, RunState::Succeeded);
    assert_eq!(launches(&decisions), vec![(2, 1)]);
}

// ---- Quota ----

#[test]
fn a_used_up_quota_pauses_launches_until_the_pause_is_over() {
    let mut world = World::new();
    world.managed(1, &[], "");

    let decisions = world.launch_settled(1, None, Some("the monthly limit is reached"));
    assert_eq!(launches(&decisions), vec![]);
    let status = last_status(&decisions, 1);
    assert_eq!(status.add.as_deref(), Some("codegen:queued"));
    status.assert_says("Codegen's plan quota is used up: the monthly limit is reached");

    // The pause lasts fifteen minutes.
    world.now = T0 + 15 * 60 * 1000 - 1;
    let decisions = world.managed(2, &[], "");
    assert_eq!(launches(&decisions), vec![]);

    world.now = T0 + 15 * 60 * 1000;
    let decisions = world.run(runs_followed(Vec::new()));
    assert_eq!(launches(&decisions), vec![(1, 1), (2, 1)]);
}

#[test]
fn resume_lifts_a_quota_pause() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.launch_settled(1, None, Some("limit"));

    // The pause is kept in the store too, for the dashboard of every replica.
    let key = format!("quota:{ID}");
    let saved = world.settings_saved();
    assert!(
        saved
            .iter()
            .any(|(k, v)| *k == key && v.as_deref() == Some(&format!("{T0} limit")[..])),
        "{saved:?}"
    );

    let decisions = world.comment(1, "/codegen resume");

    assert!(decisions.contains(&Decision::ResumeAgents { installation: ID }));
    assert_eq!(launches(&decisions), vec![(1, 1)]);
    assert!(world.settings_saved().contains(&(key, None)), "cleared");
}

#[test]
fn agents_are_launched_only_with_both_codegen_settings() {
    use crate::config::{Config, Secret};
    let with = |org_id: Option<u64>, token: Option<&str>| {
        let mut config = Config::default();
        config.codegen.org_id = org_id;
        config.codegen.api_token = token.map(Secret::new);
        EngineSettings::from_config(&config).agents
    };
    assert!(with(Some(77), Some("cg-token")));
    assert!(!with(Some(77), None), "no token");
    assert!(!with(None, Some("cg-token")), "no organisation");
    assert!(!with(None, None));
}

// ---- Stacked work ----

#[test]
fn with_stacked_work_a_dependent_starts_from_its_blockers_open_pull_request() {
    let mut world = World::with(|s| s.orchestrator.unblock_on = UnblockOn::PrOpened);
    world.running(1);
    let decisions = world.managed(2, &[], "Depends on #1");
    assert_eq!(launches(&decisions), vec![]);

    let opened = pull("Closes #1", "codegen/1-issue-1");
    let decisions = world.run(pull_event(PullRequestAction::Opened, opened));

    let stacks = picked(&decisions, |d| match d {
        Decision::Launch {
            issue,
            attempt,
            stack,
            ..
        } => Some((issue.number, *attempt, stack.clone())),
        _ => None,
    });
    let stack = (
        "codegen/1-issue-1".to_owned(),
        "codegen/2-issue-2".to_owned(),
    );
    assert_eq!(stacks, vec![(2, 1, Some(stack))]);
}

#[test]
fn without_stacked_work_an_open_pull_request_does_not_unblock() {
    let mut world = World::new();
    world.running(1);
    world.managed(2, &[], "Depends on #1");

    let opened = pull("Closes #1", "codegen/1-issue-1");
    let decisions = world.run(pull_event(PullRequestAction::Opened, opened));

    assert_eq!(launches(&decisions), vec![]);
}

// ---- Auto-merge ----

/// A successful attempt 1 at issue `n` that opened pull request 10.
fn succeeded_with_pull(n: u64) -> RunRecord {
    let mut run = run_record(n, 1, RunState::Succeeded);
    run.pull_requests = vec![pull_link(10)];
    run
}

#[test]
fn auto_merge_tries_the_pull_requests_of_a_successful_run_then_dependents_go() {
    let mut world = World::with(|s| s.orchestrator.auto_merge = true);
    world.running(1);
    world.managed(2, &[], "Depends on #1");

    let decisions = world.run(runs_followed(vec![succeeded_with_pull(1)]));
    assert_eq!(
        named(&decisions, "try_merge"),
        vec![&Decision::TryMerge {
            installation: ID,
            issue: r(1),
            pulls: vec![pull_link(10)],
        }]
    );
    assert_eq!(launches(&decisions), vec![]);

    let decisions = world.answer(Outcome::Merged {
        installation: ID,
        issue: r(1),
        pull: pull_link(10),
    });
    assert_eq!(launches(&decisions), vec![(2, 1)]);
    assert_eq!(world.tracked(1).status, IssueStatus::ClosedCompleted);
    assert_eq!(world.state_label(1), Some("codegen:done"));
}

#[test]
fn a_merge_in_flight_is_not_tried_again_and_one_not_mergeable_yet_is_tried_later() {
    let mut world = World::with(|s| s.orchestrator.auto_merge = true);
    world.running(1);
    world.run(runs_followed(vec![succeeded_with_pull(1)]));

    let meanwhile = world.run(runs_followed(Vec::new()));
    world.answer(Outcome::NotMergeable { issue: r(1) });
    let later = world.run(runs_followed(Vec::new()));

    let merges = |d: &[Decision]| named(d, "try_merge").len();
    assert_eq!((merges(&meanwhile), merges(&later)), (0, 1));
}

#[test]
fn without_auto_merge_nothing_is_merged() {
    let mut world = World::new();
    world.running(1);

    let decisions = world.run(runs_followed(vec![succeeded_with_pull(1)]));

    assert!(named(&decisions, "try_merge").is_empty());
    assert_eq!(
        last_status(&decisions, 1).add.as_deref(),
        Some("codegen:done")
    );
}

// ---- The queue ----

#[test]
fn a_launch_republishes_only_the_queue_places_a_comment_names() {
    let mut world = World::with(|s| s.max_concurrent = 1);
    for n in 1..=15 {
        world.managed(n, &[], "");
    }
    world.launched(1, 1);
    assert!(
        last_status(&world.managed(16, &[], ""), 16)
            .body
            .contains("behind the first 10")
    );

    let decisions = world.ended(1, 1, RunState::Succeeded);

    assert_eq!(launches(&decisions), vec![(2, 1)]);
    // #3..#12 move into places 1..10; #13 onwards stay behind the first 10, unchanged.
    for n in 3..=12 {
        let place = format!("number {} in the queue", n - 2);
        last_status(&decisions, n).assert_says(&place);
    }
    for n in 13..=16 {
        assert_eq!(statuses(&decisions, n), vec![], "#{n} is not edited");
    }
}

#[test]
fn the_per_repository_cap_holds_launches_back() {
    let mut world = World::with(|s| {
        s.max_concurrent = 5;
        s.per_repository = Some(2);
    });
    let mut launched = Vec::new();
    for n in 1..=3 {
        launched.extend(launches(&world.managed(n, &[], "")));
    }
    assert_eq!(
        launched,
        vec![(1, 1), (2, 1)],
        "the third waits for the cap"
    );
}

#[test]
fn the_counts_say_how_many_issues_and_runs_are_in_each_state() {
    use crate::engine::status::WorkState;
    let mut world = World::with(|s| s.max_concurrent = 2);
    for n in 1..=4 {
        world.managed(n, &[], "");
    }
    world.launched(1, 1);
    world.launched(2, 1);
    world.ended(2, 1, RunState::Failed);
    world.managed(5, &[], "Depends on #4");

    let (issues, runs) = world.engine.counts();
    let issues: std::collections::HashMap<_, _> = issues.into_iter().collect();
    let runs: std::collections::HashMap<_, _> = runs.into_iter().collect();
    assert_eq!(issues[&WorkState::Running], 2, "#1, and #3 after #2 failed");
    assert_eq!(issues[&WorkState::Failed], 1);
    assert_eq!(issues[&WorkState::Queued], 1);
    assert_eq!(issues[&WorkState::Blocked], 1);
    assert_eq!(issues[&WorkState::Done], 0);
    assert_eq!(runs[&RunState::Running], 1);
    assert_eq!(runs[&RunState::Failed], 1);
    assert_eq!(
        runs[&RunState::Launching],
        1,
        "#3's launch is not answered yet"
    );
}

#[test]
fn a_repositorys_own_agent_cap_holds_its_launches_back() {
    use crate::engine::repo_config::RepoOverrides;
    let mut world = World::with(|s| s.max_concurrent = 5);
    let overrides = RepoOverrides {
        max_agents: Some(1),
        ..RepoOverrides::default()
    };
    world.answer(Outcome::RepoConfigRead {
        repo: repo(),
        file: RepoFile::Overrides(Box::new(overrides)),
        report_on: None,
        then: AfterConfig::Nothing,
    });
    let mut launched = Vec::new();
    for n in 1..=2 {
        launched.extend(launches(&world.managed(n, &[], "")));
    }
    assert_eq!(
        launched,
        vec![(1, 1)],
        "the repository's file allows one agent"
    );
}

// ---- Statuses given up on ----

#[test]
fn a_status_given_up_on_is_decided_again_whole_at_the_next_tick() {
    let mut world = World::new();
    world.managed(1, &[], "");
    let decisions = world.launched(1, 1);
    let status = last_status(&decisions, 1);
    assert_eq!(status.add.as_deref(), Some("codegen:running"));
    let Some(Decision::PublishStatus {
        add_label,
        remove_label,
        project,
        ..
    }) = decisions
        .iter()
        .find(|d| matches!(d, Decision::PublishStatus { .. }))
        .cloned()
    else {
        panic!("no status: {decisions:#?}");
    };

    let answered = world.answer(Outcome::StatusNotPublished {
        installation: ID,
        issue: r(1),
        add_label,
        remove_label,
        project: project.is_some(),
    });
    assert_eq!(statuses(&answered, 1), vec![], "not at once");

    let again = world.run(runs_followed(Vec::new()));
    assert_eq!(
        last_status(&again, 1),
        status,
        "the same comment, label and field"
    );
    let after = world.run(runs_followed(Vec::new()));
    assert_eq!(statuses(&after, 1), vec![], "once published, not again");
}

#[test]
fn a_quota_pause_outlives_a_restart_and_ends_on_time() {
    let mut world = World::new();
    let issues = vec![(ID, r(1), r#"{"status":"open","managed":true}"#.to_owned())];
    let quota = (format!("quota:{ID}"), format!("{T0} limit reached"));
    world
        .engine
        .restore(issues.clone(), Vec::new(), vec![quota.clone()]);
    world.now = T0 + 60_000;
    let decisions = world.run(runs_followed(Vec::new()));
    assert_eq!(launches(&decisions), vec![], "paused after the restart");
    world.now = T0 + crate::engine::machine::QUOTA_PAUSE_MS;
    let decisions = world.run(runs_followed(Vec::new()));
    assert_eq!(launches(&decisions), vec![(1, 1)], "the pause ended");
}
