//! Launching agent runs exactly once and following them, against the fake Codegen and a
//! real SQLite store: concurrent and repeated launches, a crash between Codegen's answer
//! and the store, statuses, timeouts, quota, cancel.

mod support;

#[path = "agents/recovery.rs"]
mod recovery;

use std::time::Duration;

use codegen_orchestrator::agents::{AgentSettings, Agents, Launch, LaunchOutcome};
use codegen_orchestrator::codegen::{Codegen, CodegenTuning};
use codegen_orchestrator::config::Secret;
use codegen_orchestrator::domain::{InstallationId, IssueRef};
use codegen_orchestrator::ownership::Scope;
use codegen_orchestrator::store::{RunState, Store};
use serde_json::json;
use support::fake_codegen::{FakeCodegen, Fault, ORG, TOKEN, Target};

const TIMEOUT: Duration = Duration::from_secs(3600);
const LEASE: Duration = Duration::from_secs(300);
const T0: i64 = 1_800_000_000_000;

struct Setup {
    fake: FakeCodegen,
    store: Store,
    agents: Agents,
    url: String,
    _keep: support::stores::TestStore,
}

fn codegen(fake: &FakeCodegen) -> Codegen {
    let tuning = CodegenTuning {
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        ..CodegenTuning::documented(3)
    };
    Codegen::with_tuning(&fake.url, ORG, &Secret::new(TOKEN), tuning).unwrap()
}

fn agents(fake: &FakeCodegen, store: &Store) -> Agents {
    let settings = AgentSettings {
        run_timeout: TIMEOUT,
        launch_lease: LEASE,
    };
    Agents::new(store.clone(), codegen(fake), settings)
}

/// A fake Codegen and agents on each store backend (SQLite, and PostgreSQL when there).
async fn setups() -> Vec<Setup> {
    let mut all = Vec::new();
    for test_store in support::stores::all().await {
        let fake = FakeCodegen::start().await;
        fake.add_repo(501, "acme/api");
        let store = Store::open(&test_store.url).await.unwrap();
        let agents = agents(&fake, &store);
        all.push(Setup {
            fake,
            store,
            agents,
            url: test_store.url.clone(),
            _keep: test_store,
        });
    }
    all
}

fn issue(n: u64) -> IssueRef {
    IssueRef::new("acme/api".parse().unwrap(), n)
}

fn launch(n: u64, attempt: u32) -> Launch {
    Launch {
        installation: InstallationId(42),
        issue: issue(n),
        attempt,
        prompt: format!("Resolve acme/api#{n}"),
    }
}

fn started_run(outcome: &LaunchOutcome) -> u64 {
    match outcome {
        LaunchOutcome::Started { run, .. } => run.0,
        other => panic!("not started: {other:?}"),
    }
}

#[tokio::test]
async fn a_launch_records_the_run_in_its_intent_row() {
    for s in setups().await {
        let outcome = s.agents.launch(&launch(1, 1), T0).await.unwrap();
        let id = started_run(&outcome);
        let rows = s.store.runs_of(&issue(1)).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, RunState::Running);
        assert_eq!(rows[0].run_id.map(|r| r.0), Some(id));
        assert_eq!(
            rows[0].web_url.as_deref(),
            Some(&*format!("https://codegen.com/agent/trace/{id}"))
        );
        assert_eq!(s.fake.runs()[0].repo_id, json!(501));
        assert_eq!(s.fake.runs()[0].metadata["attempt"], 1);
    }
}

#[tokio::test]
async fn the_same_launch_decision_applied_twice_concurrently_launches_once() {
    for s in setups().await {
        let decision = launch(1, 1);
        let (a, b) = tokio::join!(
            s.agents.launch(&decision, T0),
            s.agents.launch(&decision, T0)
        );
        let mut outcomes = [a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| matches!(o, LaunchOutcome::Taken));
        started_run(&outcomes[0]);
        assert_eq!(outcomes[1], LaunchOutcome::Taken);
        // A second replica (another Agents on the same database) and a later redelivery too.
        let replica = agents(&s.fake, &s.store);
        assert_eq!(
            replica.launch(&launch(1, 1), T0 + 1).await.unwrap(),
            LaunchOutcome::Taken
        );
        assert_eq!(s.fake.runs().len(), 1);
        assert_eq!(s.fake.calls_to("POST", "/agent/run"), 1);
    }
}

#[tokio::test]
async fn polling_reads_statuses_in_any_case_and_times_runs_out() {
    for s in setups().await {
        let mut ids = Vec::new();
        for n in 1..=5 {
            ids.push(started_run(
                &s.agents.launch(&launch(n, 1), T0).await.unwrap(),
            ));
        }
        s.fake.finish(
            ids[0],
            "COMPLETE",
            Some("https://github.com/acme/api/pull/90"),
        );
        s.fake.set_status(ids[1], "completed");
        s.fake.set_status(ids[2], "OUT_OF_TOKENS");
        s.fake.set_status(ids[3], "SOMETHING_NEW");
        let ended = s.agents.poll(T0 + 60_000, &Scope::All).await.unwrap();
        let states: Vec<_> = ended
            .iter()
            .map(|e| (e.record.issue.number, e.record.state))
            .collect();
        assert_eq!(
            states,
            [
                (1, RunState::Succeeded),
                (2, RunState::Succeeded),
                (3, RunState::Failed)
            ]
        );
        assert_eq!(
            ended[0]
                .record
                .pull_requests
                .iter()
                .map(|p| p.url.as_str())
                .collect::<Vec<_>>(),
            ["https://github.com/acme/api/pull/90"]
        );
        assert_eq!(
            ended[2].record.failure.as_deref(),
            Some("the agent run ended with status OUT_OF_TOKENS")
        );
        // One list call for the five runs, not five reads.
        assert_eq!(s.fake.calls_to("GET", "/agent/runs"), 1);

        // The unknown status and the untouched run never finish: after the timeout they stop.
        let late = T0 + TIMEOUT.as_millis() as i64 + 1;
        let ended = s.agents.poll(late, &Scope::All).await.unwrap();
        let states: Vec<_> = ended
            .iter()
            .map(|e| (e.record.issue.number, e.record.state))
            .collect();
        assert_eq!(states, [(4, RunState::TimedOut), (5, RunState::TimedOut)]);
        let banned: Vec<u64> = s
            .fake
            .runs()
            .iter()
            .filter(|r| r.banned)
            .map(|r| r.id)
            .collect();
        assert_eq!(banned, [ids[3], ids[4]]);
        assert!(
            s.agents
                .poll(late + 1, &Scope::All)
                .await
                .unwrap()
                .is_empty(),
            "nothing left running"
        );
        // They have stopped: the bans that stopped them are lifted.
        assert!(s.fake.runs().iter().all(|r| !r.banned));
        assert_eq!(s.fake.calls_to("POST", "/agent/run/unban"), 2);
    }
}

#[tokio::test]
async fn a_402_pauses_launches_for_that_installation() {
    for s in setups().await {
        s.fake.fault(
            Target::Create,
            402,
            json!({"message": "Alloted agent runs for the current billing plan have been reached.", "status_code": 402}),
        );
        let outcome = s.agents.launch(&launch(1, 1), T0).await.unwrap();
        assert!(
            matches!(&outcome, LaunchOutcome::Paused { reason } if reason.contains("billing plan"))
        );
        assert!(
            s.store.runs_of(&issue(1)).await.unwrap().is_empty(),
            "the attempt stays free"
        );
        // Paused: no call at all for the same installation.
        let again = s.agents.launch(&launch(2, 1), T0 + 1000).await.unwrap();
        assert!(matches!(again, LaunchOutcome::Paused { .. }));
        assert_eq!(s.fake.calls_to("POST", "/agent/run"), 1);
        // Another installation is not paused.
        let other = Launch {
            installation: InstallationId(43),
            ..launch(3, 1)
        };
        started_run(&s.agents.launch(&other, T0 + 1000).await.unwrap());
        // Resumed, the same attempt launches.
        s.agents.resume(InstallationId(42));
        started_run(&s.agents.launch(&launch(1, 1), T0 + 2000).await.unwrap());
    }
}

#[tokio::test]
async fn a_permanent_refusal_and_an_outage_fail_the_attempt_with_the_reason() {
    for s in setups().await {
        s.fake.fault(
            Target::Create,
            403,
            json!({"message": "You do not have access to this organization.", "status_code": 403}),
        );
        let outcome = s.agents.launch(&launch(1, 1), T0).await.unwrap();
        assert_eq!(
            outcome,
            LaunchOutcome::Failed {
                reason:
                    "Codegen refused the request (403): You do not have access to this organization."
                        .into()
            }
        );
        let row = &s.store.runs_of(&issue(1)).await.unwrap()[0];
        assert_eq!(row.state, RunState::Failed);

        for _ in 0..4 {
            s.fake.fault(Target::Create, 503, json!({}));
        }
        let outcome = s.agents.launch(&launch(2, 1), T0).await.unwrap();
        assert!(
            matches!(&outcome, LaunchOutcome::Failed { reason } if reason.contains("503")),
            "{outcome:?}"
        );
        assert_eq!(s.fake.calls_to("POST", "/agent/run"), 1 + 4);
        assert!(s.fake.runs().is_empty());
    }
}

#[tokio::test]
async fn a_retry_is_a_new_attempt_and_cancel_stops_the_run() {
    for s in setups().await {
        let first = started_run(&s.agents.launch(&launch(1, 1), T0).await.unwrap());
        s.fake.set_status(first, "FAILED");
        s.agents.poll(T0 + 1, &Scope::All).await.unwrap();
        let second = started_run(&s.agents.launch(&launch(1, 2), T0 + 2).await.unwrap());
        assert_ne!(first, second);
        let attempts: Vec<_> = s
            .fake
            .runs()
            .iter()
            .map(|r| r.metadata["attempt"].clone())
            .collect();
        assert_eq!(attempts, [json!(1), json!(2)]);

        let cancelled = s.agents.cancel(&issue(1), T0 + 3).await.unwrap().unwrap();
        assert_eq!(
            (cancelled.attempt, cancelled.state),
            (2, RunState::Cancelled)
        );
        assert!(s.fake.runs().iter().any(|r| r.id == second && r.banned));
        assert_eq!(s.agents.cancel(&issue(1), T0 + 4).await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_cancelled_attempt_stays_cancelled_when_its_run_completes_later() {
    for s in setups().await {
        let id = started_run(&s.agents.launch(&launch(1, 1), T0).await.unwrap());
        // Codegen takes its time to answer the ban and to stop the agent; meanwhile the
        // agent finishes with a pull request and a poll comes by.
        s.fake.leave_banned_runs_going();
        s.fake.push_fault(Fault {
            target: Target::Stop,
            status: 200,
            body: json!({}),
            create_anyway: false,
            delay: Duration::from_millis(400),
        });
        let cancelled_issue = issue(1);
        let (cancelled, ended) = tokio::join!(s.agents.cancel(&cancelled_issue, T0 + 1), async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            s.fake
                .finish(id, "COMPLETE", Some("https://github.com/acme/api/pull/90"));
            s.agents.poll(T0 + 2, &Scope::All).await
        });
        let cancelled = cancelled
            .unwrap()
            .expect("the running attempt is cancelled");
        assert_eq!(cancelled.state, RunState::Cancelled);
        assert!(ended.unwrap().is_empty(), "no ending, so nothing unblocks");
        assert!(s.agents.poll(T0 + 3, &Scope::All).await.unwrap().is_empty());
        let row = &s.store.runs_of(&issue(1)).await.unwrap()[0];
        assert_eq!(row.state, RunState::Cancelled);
        assert!(row.pull_requests.is_empty(), "{:?}", row.pull_requests);
        assert!(
            s.fake.runs().iter().all(|r| !r.banned),
            "the run has stopped: ban lifted"
        );
    }
}

#[tokio::test]
async fn the_ban_that_stopped_a_run_is_lifted_once_it_has_stopped() {
    for s in setups().await {
        let first = started_run(&s.agents.launch(&launch(1, 1), T0).await.unwrap());
        s.fake
            .finish(first, "ACTIVE", Some("https://github.com/acme/api/pull/90"));
        s.fake.leave_banned_runs_going();

        let cancelled = s.agents.cancel(&issue(1), T0 + 1).await.unwrap().unwrap();
        assert_eq!(cancelled.state, RunState::Cancelled);
        assert!(s.fake.runs().iter().any(|r| r.id == first && r.banned));
        // Still going on Codegen's side: the ban stays.
        assert!(s.agents.poll(T0 + 2, &Scope::All).await.unwrap().is_empty());
        assert_eq!(s.fake.calls_to("POST", "/agent/run/unban"), 0);
        assert!(s.fake.runs().iter().any(|r| r.id == first && r.banned));

        // Stopped: the ban is lifted, once.
        s.fake.set_status(first, "CANCELLED");
        s.agents.poll(T0 + 3, &Scope::All).await.unwrap();
        s.agents.poll(T0 + 4, &Scope::All).await.unwrap();
        let unbans: Vec<_> = s
            .fake
            .calls()
            .into_iter()
            .filter(|c| c.path.ends_with("/agent/run/unban"))
            .collect();
        assert_eq!(unbans.len(), 1);
        assert_eq!(unbans[0].body, json!({"agent_run_id": first}));
        assert!(
            s.fake.runs().iter().all(|r| !r.banned),
            "the pull request is free again"
        );

        // A retry runs normally, and finishing it counts.
        let second = started_run(&s.agents.launch(&launch(1, 2), T0 + 5).await.unwrap());
        s.fake.finish(
            second,
            "COMPLETE",
            Some("https://github.com/acme/api/pull/90"),
        );
        let ended = s.agents.poll(T0 + 6, &Scope::All).await.unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(
            (ended[0].record.attempt, ended[0].record.state),
            (2, RunState::Succeeded)
        );
        assert_eq!(s.fake.calls_to("POST", "/agent/run/ban"), 1);
    }
}

#[tokio::test]
async fn a_cancel_whose_ban_fails_is_recorded_at_once_and_the_ban_is_retried() {
    for s in setups().await {
        let id = started_run(&s.agents.launch(&launch(1, 1), T0).await.unwrap());
        for _ in 0..4 {
            s.fake.fault(Target::Stop, 503, json!({}));
        }
        let cancelled = s.agents.cancel(&issue(1), T0 + 1).await.unwrap().unwrap();
        assert_eq!(cancelled.state, RunState::Cancelled);
        assert_eq!(
            s.store.runs_of(&issue(1)).await.unwrap()[0].state,
            RunState::Cancelled
        );
        assert!(
            s.fake
                .runs()
                .iter()
                .all(|r| !r.banned && r.status == "ACTIVE")
        );

        // A later poll asks Codegen again, then lifts the ban once the run has stopped.
        s.agents.poll(T0 + 120_000, &Scope::All).await.unwrap();
        assert!(
            s.fake
                .runs()
                .iter()
                .any(|r| r.id == id && r.banned && r.status == "CANCELLED")
        );
        s.agents.poll(T0 + 121_000, &Scope::All).await.unwrap();
        assert!(s.fake.runs().iter().all(|r| !r.banned));
        assert_eq!(
            s.store.runs_of(&issue(1)).await.unwrap()[0].state,
            RunState::Cancelled
        );
    }
}
