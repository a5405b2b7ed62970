//! Creations whose answers were lost: found by their metadata among this token's runs, never
//! created twice, and searched for within the creation's own retries.

use crate::support::fake_codegen::Fault;

use super::*;

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
    let created = client(&fake)
        .create_run(&new_run("acme/api#1", 1), Creation::New)
        .await
        .unwrap();
    assert!(created.adopted);
    let run = created.run;
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
async fn a_lost_creation_is_found_among_our_runs_in_a_busy_organisation() {
    let fake = FakeCodegen::start().await;
    // The creation succeeds but its answer is lost; before the client looks for it, the
    // organisation's other users start 3,000 runs (1,200 of them through the API too).
    fake.push_fault(Fault {
        target: Target::Create,
        status: 502,
        body: json!({"message": "Bad Gateway"}),
        create_anyway: true,
        delay: Duration::from_millis(300),
    });
    let codegen = client(&fake);
    let creation = tokio::spawn({
        let codegen = codegen.clone();
        async move { create(&codegen, &new_run("acme/api#1", 1)).await }
    });
    while fake.runs().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fake.add_busy_organisation(3_000);
    let run = creation.await.unwrap().unwrap();

    let ours: Vec<_> = fake
        .runs()
        .into_iter()
        .filter(|r| r.user_id == USER_ID)
        .collect();
    assert_eq!(ours.len(), 1, "created once, not again");
    assert_eq!(run.id.0, ours[0].id, "the lost creation was adopted");
    assert_eq!(fake.calls_to("POST", "/agent/run"), 1);
    let lists: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/agent/runs"))
        .collect();
    assert_eq!(
        lists.len(),
        1,
        "one page of our own runs, not the organisation's"
    );
    assert!(
        lists[0].query.contains(&format!("user_id={USER_ID}"))
            && lists[0].query.contains("source_type=API"),
        "{}",
        lists[0].query
    );
    assert_eq!(fake.calls_to("GET", "/v1/users/me"), 1);

    // The user id is read once per client, whatever is listed afterwards.
    let wanted = RunMetadata::new(InstallationId(42), &issue("acme/api#1"), 1);
    assert_eq!(codegen.find_run(&wanted).await.unwrap().unwrap().id, run.id);
    codegen
        .track(&[run.id, RunId(1), RunId(2), RunId(3)])
        .await
        .ok();
    assert_eq!(fake.calls_to("GET", "/v1/users/me"), 1);
}

#[tokio::test]
async fn an_interrupted_creation_adopts_the_run_it_finds_and_creates_only_when_there_is_none() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    let first = codegen
        .create_run(&new_run("acme/api#1", 1), Creation::New)
        .await
        .unwrap();
    assert!(!first.adopted);
    assert_eq!(
        fake.calls_to("GET", "/agent/runs"),
        0,
        "a new run is not searched for"
    );

    let again = codegen
        .create_run(&new_run("acme/api#1", 1), Creation::Interrupted)
        .await
        .unwrap();
    assert!(again.adopted);
    assert_eq!(again.run.id, first.run.id);
    assert_eq!(fake.calls_to("POST", "/agent/run"), 1);

    let missing = codegen
        .create_run(&new_run("acme/api#2", 1), Creation::Interrupted)
        .await
        .unwrap();
    assert!(!missing.adopted);
    assert_eq!(fake.calls_to("POST", "/agent/run"), 2);
    let calls = fake.calls();
    let searched = calls
        .iter()
        .rposition(|c| c.path.ends_with("/agent/runs"))
        .unwrap();
    let posted = calls.iter().rposition(|c| c.method == "POST").unwrap();
    assert!(searched < posted, "searched before creating");
}

#[tokio::test]
async fn a_creation_lost_on_every_try_is_looked_for_once_more_before_it_fails() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    codegen.user_id().await.unwrap();
    for _ in 0..4 {
        fake.fault(Target::Create, 502, json!({"message": "Bad Gateway"}));
    }
    let err = create(&codegen, &new_run("acme/api#1", 1))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CodegenError::Unavailable {
            status: 502,
            attempts: 4
        }
    );
    assert_eq!(fake.calls_to("POST", "/agent/run"), 4);
    assert_eq!(
        fake.calls_to("GET", "/agent/runs"),
        4,
        "a search after each lost answer, the last one included"
    );

    // The last lost answer did create the run: the last search adopts it.
    for created in [false, false, false, true] {
        fake.push_fault(Fault {
            target: Target::Create,
            status: 502,
            body: json!({"message": "Bad Gateway"}),
            create_anyway: created,
            delay: Duration::ZERO,
        });
    }
    let adopted = codegen
        .create_run(&new_run("acme/api#2", 1), Creation::New)
        .await
        .unwrap();
    assert!(adopted.adopted);
    assert_eq!(fake.runs().len(), 1);
    assert_eq!(adopted.run.id.0, fake.runs()[0].id);
}

#[tokio::test]
async fn a_failing_search_spends_the_creation_s_retries_not_retries_of_its_own() {
    let fake = FakeCodegen::start().await;
    let codegen = client(&fake);
    codegen.repo_id(&"acme/api".parse().unwrap()).await.unwrap();
    // The answer is lost (nothing created), then every search fails three times.
    fake.fault(Target::Create, 502, json!({"message": "Bad Gateway"}));
    for _ in 0..3 {
        fake.fault(Target::Read, 503, json!({}));
    }
    let err = create(&codegen, &new_run("acme/api#1", 1))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CodegenError::Unavailable {
            status: 503,
            attempts: 4
        },
        "four tries in all: one creation, three failed searches"
    );
    assert_eq!(
        fake.calls_to("POST", "/agent/run"),
        1,
        "never created twice"
    );
    assert_eq!(
        fake.calls_to("GET", "/v1/users/me"),
        4,
        "three failed searches and the last look that found nothing"
    );
    assert!(fake.runs().is_empty());
}

#[tokio::test]
async fn an_interrupted_creation_that_cannot_search_never_creates() {
    let fake = FakeCodegen::start().await;
    for _ in 0..5 {
        fake.fault(Target::Read, 503, json!({}));
    }
    let err = client(&fake)
        .create_run(&new_run("acme/api#1", 1), Creation::Interrupted)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CodegenError::CreationUnknown { cause }
            if **cause == CodegenError::Unavailable { status: 503, attempts: 4 }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(fake.calls_to("POST", "/agent/run"), 0);
    assert_eq!(fake.calls_to("GET", "/v1/users/me"), 5);
}
