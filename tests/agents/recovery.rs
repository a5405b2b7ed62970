//! Launches a crash or an outage left unsettled: recovery adopts the run Codegen made, or
//! creates it, and never creates one it cannot first look for.

use crate::support::fake_codegen::USER_ID;
use codegen_orchestrator::codegen::{Creation, NewRun, RunMetadata};

use super::*;

#[tokio::test]
async fn a_crash_between_codegen_and_the_store_is_recovered_by_adoption() {
    for s in setups().await {
        // Codegen creates the run but answers slowly; meanwhile the store goes away, so the
        // answer cannot be written (the process "dies" between the call and the store).
        s.fake.push_fault(Fault {
            target: Target::Create,
            status: 200,
            body: json!({}),
            create_anyway: true,
            delay: Duration::from_millis(300),
        });
        let store = s.store.clone();
        let closer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            store.close().await;
        });
        let lost = s.agents.launch(&launch(7, 1), T0).await;
        closer.await.unwrap();
        assert!(lost.is_err(), "the answer could not be stored: {lost:?}");
        assert_eq!(s.fake.runs().len(), 1, "Codegen did create the run");

        // Restart: a new store on the same file, new agents.
        let store = Store::open(&s.url).await.unwrap();
        let restarted = agents(&s.fake, &store);
        let row = &store.runs_of(&issue(7)).await.unwrap()[0];
        assert_eq!((row.state, row.run_id), (RunState::Launching, None));
        // Within the lease nothing is touched: the holder may still be at work.
        assert!(
            restarted
                .recover(T0 + 1000, &Scope::All)
                .await
                .unwrap()
                .is_empty()
        );

        let settled = restarted
            .recover(T0 + LEASE.as_millis() as i64 + 1, &Scope::All)
            .await
            .unwrap();
        assert_eq!(settled.len(), 1);
        let LaunchOutcome::Started { run, adopted, .. } = &settled[0].1 else {
            panic!("{settled:?}")
        };
        assert!(adopted);
        assert_eq!(run.0, s.fake.runs()[0].id);
        assert_eq!(
            s.fake.calls_to("POST", "/agent/run"),
            1,
            "not launched again"
        );
        let row = &store.runs_of(&issue(7)).await.unwrap()[0];
        assert_eq!((row.state, row.run_id), (RunState::Running, Some(*run)));
        // And it is tracked again.
        s.fake.set_status(run.0, "completed");
        let ended = restarted.poll(T0 + 400_000, &Scope::All).await.unwrap();
        assert_eq!(ended[0].record.state, RunState::Succeeded);
    }
}

#[tokio::test]
async fn a_crash_before_codegen_was_asked_launches_on_recovery() {
    for s in setups().await {
        s.store
            .begin_launch(
                InstallationId(42),
                &issue(3),
                1,
                "Resolve acme/api#3",
                T0,
                LEASE.as_millis() as i64,
            )
            .await
            .unwrap()
            .unwrap();
        let settled = s
            .agents
            .recover(T0 + LEASE.as_millis() as i64 + 1, &Scope::All)
            .await
            .unwrap();
        assert!(
            matches!(settled[0].1, LaunchOutcome::Started { adopted: false, .. }),
            "{settled:?}"
        );
        assert_eq!(s.fake.runs().len(), 1);
        assert_eq!(s.fake.runs()[0].prompt, "Resolve acme/api#3");
        // Recovering again finds nothing left to do.
        assert!(
            s.agents
                .recover(T0 + 10 * LEASE.as_millis() as i64, &Scope::All)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.fake.runs().len(), 1);
    }
}

#[tokio::test]
async fn a_lost_launch_in_a_busy_organisation_is_adopted_from_our_own_runs() {
    for s in setups().await {
        // The run was created, the answer lost with the process; since then the
        // organisation's other users started 3,000 runs.
        s.store
            .begin_launch(
                InstallationId(42),
                &issue(7),
                1,
                "Resolve acme/api#7",
                T0,
                LEASE.as_millis() as i64,
            )
            .await
            .unwrap()
            .unwrap();
        let lost = codegen(&s.fake)
            .create_run(
                &NewRun {
                    prompt: "Resolve acme/api#7".into(),
                    metadata: RunMetadata::new(InstallationId(42), &issue(7), 1),
                    repository: "acme/api".parse().unwrap(),
                },
                Creation::New,
            )
            .await
            .unwrap()
            .run;
        s.fake.add_busy_organisation(3_000);
        let lists_before = s.fake.calls_to("GET", "/agent/runs");

        let settled = s
            .agents
            .recover(T0 + LEASE.as_millis() as i64 + 1, &Scope::All)
            .await
            .unwrap();
        assert!(
            matches!(&settled[0].1, LaunchOutcome::Started { run, adopted: true, .. } if *run == lost.id),
            "{settled:?}"
        );
        assert_eq!(
            s.fake.calls_to("POST", "/agent/run"),
            1,
            "not launched twice"
        );
        assert_eq!(
            s.fake
                .runs()
                .iter()
                .filter(|r| r.user_id == USER_ID)
                .count(),
            1
        );
        assert_eq!(
            s.fake.calls_to("GET", "/agent/runs") - lists_before,
            1,
            "one page of this App's runs"
        );
    }
}

#[tokio::test]
async fn a_launch_codegen_cannot_settle_is_deferred_and_recovery_adopts_its_run() {
    for s in setups().await {
        // A first launch fills the client's caches (user, repositories), so that the
        // faults below hit the creation and the searches only.
        started_run(&s.agents.launch(&launch(9, 1), T0).await.unwrap());
        s.fake.push_fault(Fault {
            target: Target::Create,
            status: 502,
            body: json!({"message": "Bad Gateway"}),
            create_anyway: true,
            delay: Duration::ZERO,
        });
        // Every search for it fails: three retries and the last look.
        for _ in 0..4 {
            s.fake.fault(Target::Read, 503, json!({}));
        }
        let outcome = s.agents.launch(&launch(1, 1), T0).await.unwrap();
        assert!(
            matches!(&outcome, LaunchOutcome::Deferred { reason } if reason.contains("not known")),
            "{outcome:?}"
        );
        let row = &s.store.runs_of(&issue(1)).await.unwrap()[0];
        assert_eq!((row.state, row.run_id), (RunState::Launching, None));

        let settled = s
            .agents
            .recover(T0 + LEASE.as_millis() as i64 + 1, &Scope::All)
            .await
            .unwrap();
        let created = s.fake.runs().last().unwrap().id;
        assert!(
            matches!(&settled[..], [(_, LaunchOutcome::Started { run, adopted: true, .. })] if run.0 == created),
            "{settled:?}"
        );
        assert_eq!(
            s.fake.calls_to("POST", "/agent/run"),
            2,
            "issue 9 and issue 1, once each"
        );
        let row = &s.store.runs_of(&issue(1)).await.unwrap()[0];
        assert_eq!(row.state, RunState::Running);
    }
}

#[tokio::test]
async fn recovery_that_cannot_ask_codegen_leaves_the_launch_for_later() {
    for s in setups().await {
        s.store
            .begin_launch(
                InstallationId(42),
                &issue(3),
                1,
                "Resolve acme/api#3",
                T0,
                LEASE.as_millis() as i64,
            )
            .await
            .unwrap()
            .unwrap();
        // Codegen cannot be asked whether a run exists: four tries and the last look.
        for _ in 0..5 {
            s.fake.fault(Target::Read, 503, json!({}));
        }
        let first = T0 + LEASE.as_millis() as i64 + 1;
        assert!(
            s.agents
                .recover(first, &Scope::All)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.fake.calls_to("POST", "/agent/run"),
            0,
            "not created blind"
        );
        let row = &s.store.runs_of(&issue(3)).await.unwrap()[0];
        assert_eq!(row.state, RunState::Launching);

        // The lease taken for the try runs out; Codegen answers again.
        let settled = s
            .agents
            .recover(first + LEASE.as_millis() as i64 + 1, &Scope::All)
            .await
            .unwrap();
        assert!(
            matches!(
                &settled[..],
                [(_, LaunchOutcome::Started { adopted: false, .. })]
            ),
            "{settled:?}"
        );
        assert_eq!(s.fake.calls_to("POST", "/agent/run"), 1);
    }
}
