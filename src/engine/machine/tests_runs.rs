//! Agent runs and what follows them: retries, quota pauses, stacked work, auto-merge,
//! suspended installations, the reconciler, and how statuses are published.

use super::*;
use crate::engine::UnblockOn;
use crate::engine::machine::QUOTA_PAUSE_MS;
use crate::events::{InstallationAction, PullRequest, PullRequestAction};

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
    assert!(queued.body.contains("number 1 in the queue"), "{}", queued.body);

    let decisions = world.ended(1, 1, RunState::Succeeded);
    assert_eq!(launches(&decisions), vec![(3, 1)]);
}

#[test]
fn a_launch_that_was_not_made_lets_the_issue_be_picked_again() {
    let mut world = World::new();
    world.managed(1, &[], "");

    let decisions = world.answer(Outcome::Launched {
        installation: ID,
        issue: r(1),
        latest: None,
        quota_exhausted: None,
    });

    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

#[test]
fn without_codegen_nothing_is_launched_and_the_status_says_why() {
    let mut world = World::with(|s| s.agents = false);

    let decisions = world.managed(1, &[], "");

    assert_eq!(launches(&decisions), vec![]);
    let status = last_status(&decisions, 1);
    assert_eq!(status.add.as_deref(), Some("codegen:queued"));
    assert!(status.body.contains("Codegen is not configured"), "{}", status.body);
}

// ---- Retries ----

#[test]
fn retry_after_a_failed_run_launches_the_next_attempt() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.launched(1, 1);
    let decisions = world.ended(1, 1, RunState::Failed);
    assert_eq!(launches(&decisions), vec![], "no retry of its own by default");

    let decisions = world.run(comment_by(&writer(), issue(1, &["codegen"], ""), "/codegen retry"));

    assert_eq!(launches(&decisions), vec![(1, 2)]);
    assert_eq!(reactions(&decisions), vec!["eyes", "rocket"]);
}

#[test]
fn retry_while_the_agent_runs_is_refused() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.launched(1, 1);

    let decisions = world.run(comment_by(&writer(), issue(1, &["codegen"], ""), "/codegen retry"));

    assert_eq!(
        replies(&decisions),
        vec!["There is nothing to retry: attempt 1 is running."]
    );
    assert_eq!(launches(&decisions), vec![]);
    assert_eq!(reactions(&decisions), vec!["eyes", "confused"]);
}

#[test]
fn retry_after_a_successful_run_is_refused() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.launched(1, 1);
    world.ended(1, 1, RunState::Succeeded);

    let decisions = world.run(comment_by(&writer(), issue(1, &["codegen"], ""), "/codegen retry"));

    assert_eq!(
        replies(&decisions),
        vec!["There is nothing to retry: attempt 1 is succeeded."]
    );
    assert_eq!(launches(&decisions), vec![]);
}

#[test]
fn retry_twice_for_the_same_failure_is_refused_the_second_time() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.launched(1, 1);
    world.ended(1, 1, RunState::Failed);
    // Paused, so that the second attempt does not start in between.
    world.run(comment_by(&writer(), issue(1, &["codegen"], ""), "/codegen pause"));

    let first = world.run(comment_by(&writer(), issue(1, &["codegen"], ""), "/codegen retry"));
    let second = world.run(comment_by(&writer(), issue(1, &["codegen"], ""), "/codegen retry"));

    assert_eq!(reactions(&first), vec!["eyes", "rocket"]);
    assert_eq!(launches(&first), vec![]);
    assert_eq!(
        replies(&second),
        vec!["There is nothing to retry: attempt 1 is failed."]
    );
}

#[test]
fn retry_before_any_run_is_refused() {
    let mut world = World::new();

    let decisions = world.run(comment_by(&writer(), issue(1, &[], ""), "/codegen retry"));

    assert_eq!(
        replies(&decisions),
        vec!["There is nothing to retry: no agent has run for this issue."]
    );
}

#[test]
fn failed_runs_are_retried_as_often_as_retry_failed_runs_allows() {
    let mut world = World::with(|s| s.retry_failed_runs = 1);
    world.managed(1, &[], "");
    world.launched(1, 1);

    let first = world.ended(1, 1, RunState::Failed);
    world.launched(1, 2);
    let second = world.ended(1, 2, RunState::TimedOut);

    assert_eq!(launches(&first), vec![(1, 2)]);
    assert_eq!(launches(&second), vec![]);
    assert_eq!(last_status(&second, 1).add.as_deref(), Some("codegen:failed"));
}

#[test]
fn a_cancelled_run_is_not_retried_of_its_own() {
    let mut world = World::with(|s| s.retry_failed_runs = 3);
    world.managed(1, &[], "");
    world.launched(1, 1);

    let decisions = world.ended(1, 1, RunState::Cancelled);

    assert_eq!(launches(&decisions), vec![]);
}

// ---- Quota ----

#[test]
fn a_used_up_quota_pauses_launches_until_the_pause_is_over() {
    let mut world = World::new();
    world.managed(1, &[], "");

    let decisions = world.answer(Outcome::Launched {
        installation: ID,
        issue: r(1),
        latest: None,
        quota_exhausted: Some("the monthly limit is reached".into()),
    });
    assert_eq!(launches(&decisions), vec![]);
    let status = last_status(&decisions, 1);
    assert_eq!(status.add.as_deref(), Some("codegen:queued"));
    assert!(
        status.body.contains("Codegen's plan quota is used up: the monthly limit is reached"),
        "{}",
        status.body
    );

    world.now = T0 + QUOTA_PAUSE_MS - 1;
    let decisions = world.managed(2, &[], "");
    assert_eq!(launches(&decisions), vec![]);

    world.now = T0 + QUOTA_PAUSE_MS;
    let decisions = world.run(Input::RunsFollowed {
        recovered: Vec::new(),
        ended: Vec::new(),
    });
    assert_eq!(launches(&decisions), vec![(1, 1), (2, 1)]);
}

#[test]
fn resume_lifts_a_quota_pause() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.answer(Outcome::Launched {
        installation: ID,
        issue: r(1),
        latest: None,
        quota_exhausted: Some("limit".into()),
    });

    let decisions = world.run(comment_by(&writer(), issue(1, &["codegen"], ""), "/codegen resume"));

    assert!(decisions.contains(&Decision::ResumeAgents { installation: ID }));
    assert_eq!(launches(&decisions), vec![(1, 1)]);
}

// ---- Stacked work ----

fn pull_event(action: PullRequestAction, body: &str, head: &str) -> Input {
    delivery(
        Some(writer()),
        Event::PullRequest {
            action,
            pull: PullRequest {
                reference: r(10),
                title: "Add the endpoint".into(),
                body: body.into(),
                head_ref: head.into(),
                base_ref: "main".into(),
                html_url: "https://github.com/acme/api/pull/10".into(),
                author: None,
            },
        },
    )
}

#[test]
fn with_stacked_work_a_dependent_starts_from_its_blockers_open_pull_request() {
    let mut world = World::with(|s| s.orchestrator.unblock_on = UnblockOn::PrOpened);
    world.managed(1, &[], "");
    world.launched(1, 1);
    let decisions = world.managed(2, &[], "Depends on #1");
    assert_eq!(launches(&decisions), vec![]);

    let decisions = world.run(pull_event(
        PullRequestAction::Opened,
        "Closes #1",
        "codegen/1-issue-1",
    ));

    let stacks: Vec<_> = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Launch {
                issue,
                attempt,
                stack,
                ..
            } => Some((issue.number, *attempt, stack.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        stacks,
        vec![(
            2,
            1,
            Some(("codegen/1-issue-1".to_owned(), "codegen/2-issue-2".to_owned()))
        )]
    );
}

#[test]
fn without_stacked_work_an_open_pull_request_does_not_unblock() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.launched(1, 1);
    world.managed(2, &[], "Depends on #1");

    let decisions = world.run(pull_event(
        PullRequestAction::Opened,
        "Closes #1",
        "codegen/1-issue-1",
    ));

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
    world.managed(1, &[], "");
    world.launched(1, 1);
    world.managed(2, &[], "Depends on #1");

    let decisions = world.run(Input::RunsFollowed {
        recovered: Vec::new(),
        ended: vec![succeeded_with_pull(1)],
    });
    let merges: Vec<&Decision> = decisions.iter().filter(|d| d.name() == "try_merge").collect();
    assert_eq!(
        merges,
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
    assert_eq!(world.tracked(1).state_label.as_deref(), Some("codegen:done"));
}

#[test]
fn a_merge_in_flight_is_not_tried_again_and_one_not_mergeable_yet_is_tried_later() {
    let mut world = World::with(|s| s.orchestrator.auto_merge = true);
    world.managed(1, &[], "");
    world.launched(1, 1);
    world.run(Input::RunsFollowed {
        recovered: Vec::new(),
        ended: vec![succeeded_with_pull(1)],
    });
    let tick = || Input::RunsFollowed {
        recovered: Vec::new(),
        ended: Vec::new(),
    };

    let meanwhile = world.run(tick());
    world.answer(Outcome::NotMergeable { issue: r(1) });
    let later = world.run(tick());

    let merges = |d: &[Decision]| d.iter().filter(|d| d.name() == "try_merge").count();
    assert_eq!((merges(&meanwhile), merges(&later)), (0, 1));
}

#[test]
fn without_auto_merge_nothing_is_merged() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.launched(1, 1);

    let decisions = world.run(Input::RunsFollowed {
        recovered: Vec::new(),
        ended: vec![succeeded_with_pull(1)],
    });

    assert!(!decisions.iter().any(|d| d.name() == "try_merge"));
    assert_eq!(last_status(&decisions, 1).add.as_deref(), Some("codegen:done"));
}

// ---- Installations ----

fn installation_event(action: InstallationAction, repos: Vec<RepoName>) -> Input {
    delivery(
        None,
        Event::Installation {
            action,
            installation: ID,
            account: "acme".into(),
            repos,
        },
    )
}

#[test]
fn nothing_is_launched_for_a_suspended_installation() {
    let mut world = World::new();

    world.run(installation_event(InstallationAction::Suspended, Vec::new()));
    assert_eq!(
        world.engine.take_changes().settings,
        vec![("suspended:7".to_owned(), Some("acme".to_owned()))]
    );
    let decisions = world.managed(1, &[], "");

    assert_eq!(launches(&decisions), vec![]);
    assert!(world.tracked(1).managed);
}

#[test]
fn an_unsuspended_installation_lists_its_repositories_and_launches_again() {
    let mut world = World::new();
    world.run(installation_event(InstallationAction::Suspended, Vec::new()));
    world.managed(1, &[], "");
    world.engine.take_changes();

    let decisions = world.step(installation_event(InstallationAction::Unsuspended, Vec::new()));

    assert!(decisions.contains(&Decision::ListRepositories { installation: ID }));
    assert_eq!(launches(&decisions), vec![(1, 1)]);
    assert_eq!(
        world.engine.take_changes().settings,
        vec![("suspended:7".to_owned(), None)]
    );
}

#[test]
fn a_new_installation_lists_the_labelled_issues_of_its_repositories() {
    let mut world = World::new();
    let web: RepoName = "acme/web".parse().unwrap();

    let decisions = world.step(installation_event(
        InstallationAction::Created,
        vec![repo(), web.clone()],
    ));

    assert_eq!(
        decisions,
        vec![
            Decision::ListLabelled {
                installation: ID,
                repo: repo(),
                trigger: "codegen".into(),
            },
            Decision::ReadRepoConfig {
                installation: ID,
                repo: web,
                report_on: None,
                then: AfterConfig::Reconcile(ID),
            },
        ]
    );
}

#[test]
fn a_repository_removed_from_the_installation_is_forgotten_and_its_agents_stopped() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.launched(1, 1);
    world.engine.take_changes();

    let decisions = world.run(delivery(
        None,
        Event::InstallationRepositories {
            installation: ID,
            added: Vec::new(),
            removed: vec![repo()],
        },
    ));

    assert!(cancels(&decisions, 1));
    assert!(world.engine.tracked(ID, &r(1)).is_none());
    assert_eq!(world.engine.take_changes().forgotten, vec![r(1)]);
}

// ---- Reconciliation ----

fn reconcile() -> Input {
    Input::Reconcile {
        targets: Some(vec![(ID, vec![repo()])]),
    }
}

#[test]
fn the_reconciler_adopts_a_labelled_issue_after_asking_who_labelled_it() {
    let mut world = World::new();
    let one = issue(1, &["codegen"], "");

    let decisions = world.step(reconcile());
    assert_eq!(
        decisions,
        vec![Decision::ListLabelled {
            installation: ID,
            repo: repo(),
            trigger: "codegen".into(),
        }]
    );

    let decisions = world.answer(Outcome::LabelledListed {
        installation: ID,
        repo: repo(),
        issues: vec![snapshot(&one)],
    });
    assert_eq!(
        decisions,
        vec![Decision::ReadLabelActor {
            installation: ID,
            issue: snapshot(&one),
            trigger: "codegen".into(),
        }]
    );
}

#[test]
fn the_reconciler_rechecks_a_managed_issue_it_did_not_find() {
    let mut world = World::new();
    world.managed(1, &[], "");
    world.launched(1, 1);

    let decisions = world.answer(Outcome::LabelledListed {
        installation: ID,
        repo: repo(),
        issues: Vec::new(),
    });
    assert_eq!(
        decisions,
        vec![Decision::ReadIssue {
            installation: ID,
            issue: r(1),
            purpose: ReadPurpose::Recheck,
        }]
    );

    // It was closed as not planned while a webhook was lost.
    let decisions = world.answer(Outcome::IssueRead {
        installation: ID,
        issue: r(1),
        snapshot: Some(snapshot(&closed(
            issue(1, &["codegen"], ""),
            CloseReason::NotPlanned,
        ))),
        purpose: ReadPurpose::Recheck,
    });
    assert!(cancels(&decisions, 1));
    assert!(!world.tracked(1).managed);
}

#[test]
fn the_reconciler_publishes_every_managed_status_again_and_rereads_blockers_that_hold_work() {
    let mut world = World::new();
    world.issues.insert(r(9), open_snapshot(9));
    world.managed(1, &[], "");
    world.managed(2, &[], "Depends on #9");
    assert_eq!(statuses(&world.run(reconcile()), 1).len(), 1, "republished");

    let decisions = world.step(reconcile());

    assert_eq!(statuses(&decisions, 1).len(), 1);
    assert_eq!(statuses(&decisions, 2).len(), 1);
    assert_eq!(statuses(&decisions, 9).len(), 0, "#9 is not managed");
    assert!(decisions.contains(&Decision::ReadIssue {
        installation: ID,
        issue: r(9),
        purpose: ReadPurpose::Reread,
    }));
    let republished = last_status(&decisions, 1);
    assert_eq!((republished.add, republished.remove), (None, None));
}

#[test]
fn the_reconciler_reads_again_the_native_blockers_of_an_issue_whose_count_changed() {
    let mut world = World::new();
    world.managed(1, &[], "");
    let mut one = issue(1, &["codegen"], "");
    one.open_blockers = Some(1);

    let decisions = world.answer(Outcome::LabelledListed {
        installation: ID,
        repo: repo(),
        issues: vec![snapshot(&one)],
    });

    assert_eq!(
        decisions[0],
        Decision::ReadNativeBlockers {
            installation: ID,
            issue: r(1),
            open_blockers: Some(1),
        }
    );
}

// ---- Publishing ----

#[test]
fn the_state_label_follows_the_state_one_at_a_time() {
    let mut world = World::new();

    let first = last_status(&world.managed(1, &[], ""), 1);
    world.launched(1, 1);
    let failed = last_status(&world.ended(1, 1, RunState::Failed), 1);

    assert_eq!(first.add.as_deref(), Some("codegen:running"));
    assert_eq!(
        (failed.add.as_deref(), failed.remove.as_deref()),
        (Some("codegen:failed"), Some("codegen:running"))
    );
    assert_eq!(failed.project.as_deref(), Some("Failed"));
}

#[test]
fn an_unchanged_status_is_not_decided_twice() {
    let mut world = World::new();
    world.managed(1, &[], "Add it.");

    let decisions = world.run(issue_event(
        &writer(),
        IssueAction::Edited { old_body: None },
        issue(1, &["codegen"], "Add it."),
    ));

    assert_eq!(statuses(&decisions, 1), vec![]);
}

#[test]
fn a_changed_comment_without_a_state_change_is_published_without_label_changes() {
    let mut world = World::new();
    world.managed(1, &[], "");
    let mut run = run_record(1, 1, RunState::Running);
    run.web_url = Some("https://codegen.com/agent/trace/7".into());

    let decisions = world.answer(Outcome::Launched {
        installation: ID,
        issue: r(1),
        latest: Some(run),
        quota_exhausted: None,
    });

    let status = last_status(&decisions, 1);
    assert!(status.body.contains("https://codegen.com/agent/trace/7"));
    assert_eq!((status.add, status.remove, status.project), (None, None, None));
}

#[test]
fn project_notes_are_said_once_in_the_status() {
    let mut world = World::new();
    world.managed(1, &[], "");
    let notes = || Outcome::ProjectNotes {
        installation: ID,
        issue: r(1),
        notes: vec!["The field \"Status\" has no option \"Failed\".".into()],
    };

    let first = world.answer(notes());
    let again = world.answer(notes());

    assert!(last_status(&first, 1).body.contains("has no option"));
    assert_eq!(statuses(&again, 1), vec![]);
}

#[test]
fn what_changed_is_handed_to_the_store() {
    let mut world = World::new();
    world.managed(1, &[], "Depends on #2");

    let changes = world.engine.take_changes();

    let mut saved: Vec<u64> = changes.issues.iter().map(|(_, i, _)| i.number).collect();
    saved.sort();
    assert_eq!(saved, vec![1, 2], "the issue and its blocker");
    let (_, _, data) = changes.issues.iter().find(|(_, i, _)| i.number == 1).unwrap();
    let tracked: crate::engine::machine::Tracked = serde_json::from_str(data).unwrap();
    assert!(tracked.managed);
    assert_eq!(world.engine.take_changes(), crate::engine::machine::Changes::default());
}
