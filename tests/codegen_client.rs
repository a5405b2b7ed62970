//! The Codegen client against the stateful fake Codegen: what it sends, how it reads
//! statuses, what it retries, what it reports, and the limits it keeps.

mod support;

use std::time::Duration;

use codegen_orchestrator::codegen::{Codegen, CodegenError, CodegenTuning, NewRun, RunMetadata};
use codegen_orchestrator::config::Secret;
use codegen_orchestrator::domain::{AgentStatus, InstallationId, IssueRef, RunId};
use serde_json::json;
use support::fake_codegen::{FakeCodegen, Fault, ORG, TOKEN, Target};

fn tuning() -> CodegenTuning {
    CodegenTuning {
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        ..CodegenTuning::documented(3)
    }
}

fn client(fake: &FakeCodegen) -> Codegen {
    Codegen::with_tuning(&fake.url, ORG, &Secret::new(TOKEN), tuning()).unwrap()
}

fn issue(text: &str) -> IssueRef {
    text.parse().unwrap()
}

fn new_run(text: &str, attempt: u32) -> NewRun {
    let issue = issue(text);
    NewRun {
        prompt: format!("Resolve {issue}"),
        metadata: RunMetadata::new(InstallationId(42), &issue, attempt),
        repository: issue.repo.clone(),
    }
}

#[tokio::test]
async fn a_run_is_created_with_metadata_and_the_integer_repo_id() {
    let fake = FakeCodegen::start().await;
    // 150 repositories: the one we want is on the second page.
    for id in 1..=150 {
        fake.add_repo(id, &format!("acme/repo-{id}"));
    }
    fake.add_repo(9001, "Acme/API");
    let codegen = client(&fake);
    let run = codegen
        .create_run(&new_run("acme/api#12", 1))
        .await
        .unwrap();
    assert_eq!(run.status, AgentStatus::Running);
    assert_eq!(
        run.web_url.as_deref(),
        Some(&*format!("https://codegen.com/agent/trace/{}", run.id))
    );

    let created = fake
        .calls()
        .into_iter()
        .find(|c| c.method == "POST")
        .unwrap();
    assert_eq!(created.path, format!("/v1/organizations/{ORG}/agent/run"));
    assert_eq!(created.authorization, format!("Bearer {TOKEN}"));
    assert_eq!(
        created.body["repo_id"],
        json!(9001),
        "an integer, never the name"
    );
    assert_eq!(
        created.body["metadata"],
        json!({"installation_id": 42, "repository": "acme/api", "issue_number": 12, "attempt": 1})
    );
    assert_eq!(created.body["prompt"], "Resolve acme/api#12");

    // The repository list is cached: a second run reads it no more.
    let repo_pages = fake.calls_to("GET", "/repos");
    assert_eq!(repo_pages, 2);
    codegen
        .create_run(&new_run("acme/api#13", 1))
        .await
        .unwrap();
    assert_eq!(fake.calls_to("GET", "/repos"), repo_pages);
}

#[tokio::test]
async fn an_unknown_repository_is_created_without_repo_id() {
    let fake = FakeCodegen::start().await;
    fake.add_repo(1, "acme/other");
    client(&fake)
        .create_run(&new_run("acme/api#1", 1))
        .await
        .unwrap();
    assert_eq!(fake.runs()[0].repo_id, json!(null));
}

#[tokio::test]
async fn statuses_are_read_in_any_case_and_unknown_ones_keep_running() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    let id = codegen
        .create_run(&new_run("acme/api#1", 1))
        .await
        .unwrap()
        .id;
    for (status, expected) in [
        ("PENDING", AgentStatus::Running),
        ("in_progress", AgentStatus::Running),
        ("EVALUATION", AgentStatus::Running),
        ("SOMETHING_NEW", AgentStatus::Running),
        ("completed", AgentStatus::Succeeded),
        ("COMPLETE", AgentStatus::Succeeded),
        ("failed", AgentStatus::Failed),
        ("MAX_ITERATIONS_REACHED", AgentStatus::Failed),
    ] {
        fake.set_status(id.0, status);
        let run = codegen.run(id).await.unwrap();
        assert_eq!(run.status, expected, "{status}");
        assert_eq!(run.raw_status.as_deref(), Some(status));
    }
    fake.finish(id.0, "COMPLETE", Some("https://github.com/acme/api/pull/9"));
    let run = codegen.run(id).await.unwrap();
    assert_eq!(
        run.pull_requests[0].url,
        "https://github.com/acme/api/pull/9"
    );
    assert_eq!(run.summary.as_deref(), Some(&*format!("run {id} COMPLETE")));
}

#[tokio::test]
async fn a_429_backs_off_and_then_succeeds_with_one_run() {
    let fake = FakeCodegen::start().await;
    for _ in 0..2 {
        fake.fault(
            Target::Create,
            429,
            json!({"message": "Rate limit exceeded. Please try again later.", "status_code": 429}),
        );
    }
    let run = client(&fake)
        .create_run(&new_run("acme/api#1", 1))
        .await
        .unwrap();
    assert_eq!(fake.calls_to("POST", "/agent/run"), 3);
    assert_eq!(fake.runs().len(), 1);
    assert_eq!(fake.runs()[0].id, run.id.0);
}

#[tokio::test]
async fn a_lost_creation_answer_is_found_by_metadata_not_created_twice() {
    let fake = FakeCodegen::start().await;
    fake.add_foreign_run(
        "ACTIVE",
        json!({"installation_id": 42, "repository": "acme/api", "issue_number": 1, "attempt": 2}),
    );
    fake.push_fault(Fault {
        target: Target::Create,
        status: 502,
        body: json!({"message": "Bad Gateway"}),
        create_anyway: true,
        delay: Duration::ZERO,
    });
    let run = client(&fake)
        .create_run(&new_run("acme/api#1", 1))
        .await
        .unwrap();
    assert_eq!(fake.calls_to("POST", "/agent/run"), 1, "not posted again");
    let ours: Vec<_> = fake
        .runs()
        .into_iter()
        .filter(|r| r.metadata["attempt"] == 1)
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(
        run.id.0, ours[0].id,
        "the run the lost answer created was adopted"
    );
}

#[tokio::test]
async fn a_5xx_is_retried_up_to_the_configured_retries() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    let id = codegen
        .create_run(&new_run("acme/api#1", 1))
        .await
        .unwrap()
        .id;
    fake.fault(Target::Read, 503, json!({}));
    assert_eq!(codegen.run(id).await.unwrap().id, id);
    for _ in 0..4 {
        fake.fault(Target::Read, 500, json!({}));
    }
    let err = codegen.run(id).await.unwrap_err();
    assert_eq!(
        err,
        CodegenError::Unavailable {
            status: 500,
            attempts: 4
        }
    );
    assert!(err.is_transient());
    assert_eq!(fake.calls_to("GET", &format!("/agent/run/{id}")), 2 + 4);
}

#[tokio::test]
async fn quota_and_refusals_are_final_and_carry_the_message() {
    let fake = FakeCodegen::start().await;
    fake.fault(
        Target::Create,
        402,
        json!({"message": "Alloted agent runs for the current billing plan have been reached. Please upgrade your plan to continue.", "status_code": 402}),
    );
    let err = client(&fake)
        .create_run(&new_run("acme/api#1", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CodegenError::QuotaExhausted { message } if message.contains("billing plan")),
        "{err}"
    );
    assert!(!err.is_transient());
    assert_eq!(fake.calls_to("POST", "/agent/run"), 1);

    let wrong_org =
        Codegen::with_tuning(&fake.url, ORG + 1, &Secret::new(TOKEN), tuning()).unwrap();
    let err = wrong_org.run(RunId(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Codegen refused the request (403): You do not have access to this organization."
    );

    let err = client(&fake).run(RunId(424242)).await.unwrap_err();
    assert_eq!(
        err,
        CodegenError::Rejected {
            status: 404,
            message: "Agent run not found.".into()
        }
    );

    fake.fault(
        Target::Create,
        422,
        json!({"detail": [{"loc": ["body", "prompt"], "msg": "String should have at most 100000 characters", "type": "string_too_long"}]}),
    );
    let err = client(&fake)
        .create_run(&new_run("acme/api#2", 1))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Codegen refused the request (422): body.prompt: String should have at most 100000 characters"
    );
}

#[tokio::test]
async fn many_active_runs_are_tracked_with_one_list_call() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    let mut ids = Vec::new();
    for n in 1..=6 {
        ids.push(
            codegen
                .create_run(&new_run(&format!("acme/api#{n}"), 1))
                .await
                .unwrap()
                .id,
        );
    }
    fake.set_status(ids[0].0, "completed");
    fake.set_status(ids[5].0, "ERROR");
    let before = fake.calls().len();
    let tracked = codegen.track(&ids).await.unwrap();
    let calls = &fake.calls()[before..];
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].path.ends_with("/agent/runs"));
    assert!(calls[0].query.contains("limit=100"));
    assert_eq!(tracked.len(), 6);
    assert_eq!(tracked[&ids[0]].status, AgentStatus::Succeeded);
    assert_eq!(tracked[&ids[5]].status, AgentStatus::Failed);
    assert_eq!(tracked[&ids[2]].status, AgentStatus::Running);

    // Two runs are cheaper read one by one.
    let before = fake.calls().len();
    codegen.track(&ids[..2]).await.unwrap();
    let calls = &fake.calls()[before..];
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.path.contains("/agent/run/")));
}

#[tokio::test]
async fn a_run_is_found_by_metadata_among_others() {
    let fake = FakeCodegen::start().await;
    fake.add_foreign_run("ACTIVE", json!({"source": "slack"}));
    let codegen = client(&fake);
    let mine = codegen.create_run(&new_run("acme/api#5", 3)).await.unwrap();
    codegen.create_run(&new_run("acme/api#6", 3)).await.unwrap();
    let wanted = RunMetadata::new(InstallationId(42), &issue("acme/api#5"), 3);
    assert_eq!(
        codegen.find_run(&wanted).await.unwrap().unwrap().id,
        mine.id
    );
    let absent = RunMetadata::new(InstallationId(42), &issue("acme/api#5"), 4);
    assert_eq!(codegen.find_run(&absent).await.unwrap(), None);
}

#[tokio::test]
async fn a_run_is_stopped_on_cancel() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    let run = codegen.create_run(&new_run("acme/api#1", 1)).await.unwrap();
    codegen.stop_run(run.id).await.unwrap();
    let stop = fake
        .calls()
        .into_iter()
        .find(|c| c.path.ends_with("/agent/run/ban"))
        .unwrap();
    assert_eq!(stop.body, json!({"agent_run_id": run.id.0}));
    assert_eq!(
        codegen.run(run.id).await.unwrap().status,
        AgentStatus::Failed
    );
}

#[tokio::test]
async fn creations_stay_within_the_rate_limit() {
    let fake = FakeCodegen::start().await;
    let window = Duration::from_millis(400);
    let tuning = CodegenTuning {
        creations: (3, window),
        ..tuning()
    };
    let codegen = Codegen::with_tuning(&fake.url, ORG, &Secret::new(TOKEN), tuning).unwrap();
    for n in 1..=7 {
        codegen
            .create_run(&new_run(&format!("acme/api#{n}"), 1))
            .await
            .unwrap();
    }
    let times: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST")
        .map(|c| c.at)
        .collect();
    assert_eq!(times.len(), 7);
    // Allow for the network between the client's clock and the fake's.
    let slack = Duration::from_millis(50);
    for (i, &start) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .filter(|&&t| t < start + window - slack)
            .count();
        assert!(within <= 3, "{within} creations within {window:?}");
    }
    assert!(times[6] - times[0] >= 2 * window - slack);
}

#[tokio::test]
async fn errors_never_show_the_token() {
    // Nothing listens on this port: a transport error after every retry.
    let secret = "cg-secret-never-printed";
    let codegen =
        Codegen::with_tuning("http://127.0.0.1:9", ORG, &Secret::new(secret), tuning()).unwrap();
    let err = codegen.run(RunId(1)).await.unwrap_err();
    assert!(matches!(err, CodegenError::Transport(_)), "{err:?}");
    assert!(!format!("{err} {err:?} {codegen:?}").contains(secret));
}
