//! The Codegen client against the stateful fake Codegen: what it sends, how it reads
//! statuses, what it retries, what it reports, and the limits it keeps.

mod support;

#[path = "codegen_client/creation.rs"]
mod creation;

use std::time::Duration;

use codegen_orchestrator::codegen::{
    AgentRun, Codegen, CodegenError, CodegenTuning, Creation, NewRun, RunMetadata,
};
use codegen_orchestrator::config::Secret;
use codegen_orchestrator::domain::{AgentStatus, InstallationId, IssueRef, RunId};
use serde_json::json;
use support::fake_codegen::{FakeCodegen, ORG, TOKEN, Target, USER_ID};

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

/// A run created through the client as a new launch makes it.
async fn create(codegen: &Codegen, run: &NewRun) -> Result<AgentRun, CodegenError> {
    codegen.create_run(run, Creation::New).await.map(|c| c.run)
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
    let run = create(&codegen, &new_run("acme/api#12", 1)).await.unwrap();
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
    create(&codegen, &new_run("acme/api#13", 1)).await.unwrap();
    assert_eq!(fake.calls_to("GET", "/repos"), repo_pages);
}

#[tokio::test]
async fn an_unknown_repository_is_created_without_repo_id() {
    let fake = FakeCodegen::start().await;
    fake.add_repo(1, "acme/other");
    create(&client(&fake), &new_run("acme/api#1", 1))
        .await
        .unwrap();
    assert_eq!(fake.runs()[0].repo_id, json!(null));
}

#[tokio::test]
async fn statuses_are_read_in_any_case_and_unknown_ones_keep_running() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    let id = create(&codegen, &new_run("acme/api#1", 1))
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
    let run = create(&client(&fake), &new_run("acme/api#1", 1))
        .await
        .unwrap();
    assert_eq!(fake.calls_to("POST", "/agent/run"), 3);
    assert_eq!(fake.runs().len(), 1);
    assert_eq!(fake.runs()[0].id, run.id.0);
}

#[tokio::test]
async fn a_5xx_is_retried_up_to_the_configured_retries() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    let id = create(&codegen, &new_run("acme/api#1", 1))
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
    let err = create(&client(&fake), &new_run("acme/api#1", 1))
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
    let err = create(&client(&fake), &new_run("acme/api#2", 1))
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
            create(&codegen, &new_run(&format!("acme/api#{n}"), 1))
                .await
                .unwrap()
                .id,
        );
    }
    fake.set_status(ids[0].0, "completed");
    fake.set_status(ids[5].0, "ERROR");
    // Others' runs, newer than ours, do not cost more pages.
    fake.add_busy_organisation(500);
    let before = fake.calls().len();
    let tracked = codegen.track(&ids).await.unwrap();
    let calls = &fake.calls()[before..];
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[0].path, "/v1/users/me",
        "read once, before the first list"
    );
    assert!(calls[1].path.ends_with("/agent/runs"));
    assert!(calls[1].query.contains("limit=100"));
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
    let mine = create(&codegen, &new_run("acme/api#5", 3)).await.unwrap();
    create(&codegen, &new_run("acme/api#6", 3)).await.unwrap();
    let wanted = RunMetadata::new(InstallationId(42), &issue("acme/api#5"), 3);
    assert_eq!(
        codegen.find_run(&wanted).await.unwrap().unwrap().id,
        mine.id
    );
    let absent = RunMetadata::new(InstallationId(42), &issue("acme/api#5"), 4);
    assert_eq!(codegen.find_run(&absent).await.unwrap(), None);
}

#[tokio::test]
async fn creations_stay_within_the_rate_limit_at_the_server() {
    let fake = FakeCodegen::start().await;
    let window = Duration::from_millis(400);
    let tuning = CodegenTuning {
        creations: (3, window),
        ..tuning()
    };
    let codegen = Codegen::with_tuning(&fake.url, ORG, &Secret::new(TOKEN), tuning).unwrap();
    codegen.repo_id(&"acme/api".parse().unwrap()).await.unwrap();
    // The first creation reaches Codegen 100 ms after it left; the others at once.
    fake.delay_arrivals(&[Duration::from_millis(100)]);
    for n in 1..=7 {
        create(&codegen, &new_run(&format!("acme/api#{n}"), 1))
            .await
            .unwrap();
    }
    let is_creation = |c: &support::fake_codegen::SeenCall| c.method == "POST";
    assert_eq!(fake.calls().iter().filter(|c| is_creation(c)).count(), 7);
    let most = fake.most_within(window, is_creation);
    assert!(
        most <= 3,
        "{most} creations reached Codegen within {window:?}"
    );
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

#[tokio::test]
async fn the_token_user_is_read_through_the_retries_and_a_refusal_is_reported() {
    let fake = FakeCodegen::start().await;
    fake.fault(Target::Read, 503, json!({}));
    let codegen = client(&fake);
    assert_eq!(codegen.user_id().await.unwrap(), USER_ID);
    assert_eq!(
        fake.calls_to("GET", "/v1/users/me"),
        2,
        "one 503, then the answer"
    );
    assert_eq!(codegen.user_id().await.unwrap(), USER_ID);
    assert_eq!(fake.calls_to("GET", "/v1/users/me"), 2, "cached");

    let wrong = Codegen::with_tuning(&fake.url, ORG, &Secret::new("cg-wrong"), tuning()).unwrap();
    let err = wrong.list_runs(0, 10).await.unwrap_err();
    assert_eq!(
        err,
        CodegenError::Rejected {
            status: 403,
            message: "You do not have access to this organization.".into()
        }
    );
}

#[tokio::test]
async fn reads_of_every_endpoint_stay_within_60_in_any_window_at_the_server() {
    let fake = FakeCodegen::start().await;
    fake.add_repo(501, "acme/api");
    let setup = client(&fake);
    let run = create(&setup, &new_run("acme/api#1", 1)).await.unwrap();
    fake.state.lock().unwrap().calls.clear();

    // Codegen's 60 reads per 30 s with time running 15 times faster. The first read opens
    // a connection and reaches Codegen 200 ms after it left; the rest follow at once.
    let window = Duration::from_secs(2);
    let codegen = Codegen::with_tuning(
        &fake.url,
        ORG,
        &Secret::new(TOKEN),
        CodegenTuning {
            reads: (60, window),
            ..tuning()
        },
    )
    .unwrap();
    fake.delay_arrivals(&[Duration::from_millis(200)]);
    let wanted = RunMetadata::new(InstallationId(42), &issue("acme/api#1"), 1);
    codegen.repo_id(&"acme/api".parse().unwrap()).await.unwrap();
    for n in 0..75 {
        match n % 3 {
            0 => drop(codegen.run(run.id).await.unwrap()),
            1 => drop(codegen.list_runs(0, 100).await.unwrap()),
            _ => drop(codegen.find_run(&wanted).await.unwrap()),
        }
    }
    let reads = fake.calls().iter().filter(|c| c.method == "GET").count();
    assert!(reads > 60, "{reads} reads: enough to fill a window");
    let most = fake.most_within(window, |c| c.method == "GET");
    assert!(most <= 60, "{most} reads reached Codegen within {window:?}");
}

#[tokio::test]
async fn a_ban_stops_every_agent_on_the_pull_request_until_it_is_lifted() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    let ours = create(&codegen, &new_run("acme/api#1", 1)).await.unwrap();
    fake.finish(
        ours.id.0,
        "ACTIVE",
        Some("https://github.com/acme/api/pull/9"),
    );
    // Someone's check-fixing agent works on the same pull request.
    let other = fake.add_run_by(USER_ID + 1, "GITHUB_CHECK_SUITE", "ACTIVE", json!(null));
    fake.state
        .lock()
        .unwrap()
        .runs
        .get_mut(&other)
        .unwrap()
        .pull_requests = fake.runs()[0].pull_requests.clone();

    codegen.ban_run(ours.id).await.unwrap();
    let ban = fake
        .calls()
        .into_iter()
        .find(|c| c.path.ends_with("/agent/run/ban"))
        .unwrap();
    assert_eq!(ban.body, json!({"agent_run_id": ours.id.0}));
    assert!(
        fake.runs()
            .iter()
            .all(|r| r.banned && r.status == "CANCELLED")
    );
    assert_eq!(
        codegen.run(ours.id).await.unwrap().status,
        AgentStatus::Failed
    );

    codegen.unban_run(ours.id).await.unwrap();
    let unban = fake
        .calls()
        .into_iter()
        .find(|c| c.path.ends_with("/agent/run/unban"))
        .unwrap();
    assert_eq!(unban.body, json!({"agent_run_id": ours.id.0}));
    assert!(fake.runs().iter().all(|r| !r.banned), "the flag is lifted");
    assert!(
        fake.runs().iter().all(|r| r.status == "CANCELLED"),
        "stopped runs stay stopped"
    );

    let err = codegen.unban_run(RunId(424242)).await.unwrap_err();
    assert!(
        matches!(err, CodegenError::Rejected { status: 404, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_429_waits_as_long_as_codegen_s_retry_after_asks() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    codegen.repo_id(&"acme/api".parse().unwrap()).await.unwrap();
    // Throttled for a second: the backoff alone (5, 10, 20 ms) would spend every retry
    // inside it.
    fake.throttle(Target::Create, Duration::from_secs(1));
    let started = std::time::Instant::now();
    let run = create(&codegen, &new_run("acme/api#1", 1)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.calls_to("POST", "/agent/run"), 2, "one 429, one run");
    assert_eq!(fake.runs().len(), 1);
    assert_eq!(fake.runs()[0].id, run.id.0);
}

#[tokio::test]
async fn a_retry_after_beyond_the_longest_wait_ends_the_tries_at_once() {
    let fake = FakeCodegen::start().await;
    let codegen = Codegen::with_tuning(
        &fake.url,
        ORG,
        &Secret::new(TOKEN),
        CodegenTuning {
            longest_wait: Duration::from_secs(5),
            ..tuning()
        },
    )
    .unwrap();
    fake.throttle(Target::Read, Duration::from_secs(60));
    let err = codegen.run(RunId(1)).await.unwrap_err();
    assert_eq!(
        err,
        CodegenError::Unavailable {
            status: 429,
            attempts: 1
        }
    );
    assert_eq!(fake.calls().len(), 1, "asked once, not four times");
}
