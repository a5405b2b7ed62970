//! Run rows: each attempt recorded once whoever asks, leases, starts and endings.

use codegen_orchestrator::domain::{InstallationId, RunId};
use codegen_orchestrator::store::{RunEnding, RunState};

use crate::{T0, issue};

#[tokio::test]
async fn a_run_attempt_is_recorded_once_whoever_asks() {
    each_store!(|store, name| {
        let target = issue("Acme/API#7");
        let mut attempts = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = store.clone();
            let target = target.clone();
            attempts.spawn(async move {
                store
                    .begin_launch(InstallationId(42), &target, 1, "prompt", T0, 1000)
                    .await
                    .unwrap()
            });
        }
        let holders = attempts.join_all().await;
        assert_eq!(holders.iter().filter(|h| h.is_some()).count(), 1, "{name}");
        // The same attempt under another spelling of the repository is the same row.
        assert!(
            store
                .begin_launch(InstallationId(42), &issue("acme/api#7"), 1, "p", T0, 1000)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        let row = holders.into_iter().flatten().next().unwrap();
        assert_eq!(
            (row.state, row.attempt, row.prompt.as_str()),
            (RunState::Launching, 1, "prompt"),
            "{name}"
        );

        // Within the lease it is not stale; after it, one taker wins.
        assert!(
            store.stale_launches(T0 + 500).await.unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(
            store.stale_launches(T0 + 1001).await.unwrap().len(),
            1,
            "{name}"
        );
        assert!(
            store
                .take_over_launch(row.row, T0 + 1001, 1000)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !store
                .take_over_launch(row.row, T0 + 1001, 1000)
                .await
                .unwrap(),
            "{name}"
        );

        assert!(
            store
                .record_started(
                    row.row,
                    RunId(555),
                    Some("https://codegen.com/agent/trace/555"),
                    T0 + 2000
                )
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !store
                .record_started(row.row, RunId(556), None, T0 + 2000)
                .await
                .unwrap(),
            "{name}: only once"
        );
        let running = store.running_runs().await.unwrap();
        assert_eq!(running[0].run_id, Some(RunId(555)), "{name}");
        let ending = RunEnding {
            state: RunState::Succeeded,
            failure: None,
            summary: Some("done".into()),
            pull_requests: vec!["https://github.com/acme/api/pull/8".into()],
        };
        assert!(
            store
                .record_ended(row.row, &ending, T0 + 3000)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !store
                .record_ended(row.row, &ending, T0 + 4000)
                .await
                .unwrap(),
            "{name}: ended once"
        );
        let runs = store.runs_of(&target).await.unwrap();
        assert_eq!(runs[0].state, RunState::Succeeded, "{name}");
        let pulls: Vec<_> = runs[0]
            .pull_requests
            .iter()
            .map(|pr| pr.url.as_str())
            .collect();
        assert_eq!(pulls, ["https://github.com/acme/api/pull/8"], "{name}");
        assert_eq!(
            runs[0].pull_requests[0].pull,
            Some(issue("acme/api#8")),
            "{name}: the link names its pull request"
        );
        assert_eq!(
            (runs[0].started_at, runs[0].finished_at),
            (Some(T0 + 2000), Some(T0 + 3000)),
            "{name}"
        );

        // A quota refusal gives the attempt back.
        let second = store
            .begin_launch(InstallationId(42), &target, 2, "p", T0, 1000)
            .await
            .unwrap()
            .unwrap();
        store.abandon_launch(second.row).await.unwrap();
        assert!(
            store
                .begin_launch(InstallationId(42), &target, 2, "p", T0, 1000)
                .await
                .unwrap()
                .is_some(),
            "{name}"
        );
        assert_eq!(store.all_runs().await.unwrap().len(), 2, "{name}");
    });
}
