//! The outbox: a step (a delivery's outcome, issue and setting changes, new decisions) is
//! committed whole or not at all; effects come back due and in order, are retried, given
//! up on, and marked done by the step that executed them.

use codegen_orchestrator::domain::InstallationId;
use codegen_orchestrator::store::{DeliveryOutcome, DeliveryState, OutboxEntry, Step, Store};
use sqlx::Connection;

use crate::support::stores;
use crate::{T0, delivery, issue};

/// Stores delivery `id` and claims it; returns its seq.
async fn claimed(store: &Store, id: &str) -> i64 {
    store.record_delivery(delivery(id, "{}")).await.unwrap();
    let claimed = store.claim_deliveries(1, T0, 60_000).await.unwrap();
    assert_eq!(claimed[0].id, id);
    claimed[0].seq
}

/// A step of `decisions` for installation 42 and nothing else.
pub(crate) fn deciding(decisions: &[&str]) -> Step {
    Step {
        decisions: decisions
            .iter()
            .map(|decision| (InstallationId(42), (*decision).to_owned()))
            .collect(),
        ..Step::default()
    }
}

fn decisions(entries: &[OutboxEntry]) -> Vec<&str> {
    entries
        .iter()
        .map(|entry| entry.decision.as_str())
        .collect()
}

#[tokio::test]
async fn a_step_commits_the_outcome_the_state_and_the_decisions_together() {
    each_store!(|store, name| {
        let seq = claimed(&store, "step-1").await;
        let second = claimed(&store, "step-2").await;
        store
            .save_issue(InstallationId(42), &issue("acme/api#9"), "{}", T0)
            .await
            .unwrap();
        store
            .set_setting("paused:acme/web", Some("x"))
            .await
            .unwrap();
        let step = Step {
            deliveries: vec![
                (seq, DeliveryOutcome::Processed),
                (second, DeliveryOutcome::Processed),
            ],
            issues: vec![
                (InstallationId(42), issue("acme/api#1"), "{\"a\":1}".into()),
                (InstallationId(43), issue("acme/web#2"), "{\"b\":2}".into()),
            ],
            forgotten: vec![issue("Acme/API#9")],
            settings: vec![
                ("paused:acme/api".into(), Some("maintainer".into())),
                ("paused:acme/web".into(), None),
            ],
            decisions: vec![
                (InstallationId(42), "{\"launch\":1}".into()),
                (InstallationId(43), "{\"comment\":2}".into()),
                (InstallationId(42), "{\"label\":1}".into()),
            ],
            ..Step::default()
        };
        let ids = store.commit_step(&step, T0 + 10).await.unwrap();
        assert_eq!(ids.len(), 3, "{name}");
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "{name}: {ids:?}"
        );

        for id in ["step-1", "step-2"] {
            let record = store.delivery(&id.parse().unwrap()).await.unwrap();
            assert_eq!(record.unwrap().state, DeliveryState::Processed, "{name}");
        }
        let saved: Vec<_> = store
            .issues()
            .await
            .unwrap()
            .into_iter()
            .map(|(installation, issue, data)| (installation.0, issue.to_string(), data))
            .collect();
        assert_eq!(
            saved,
            [
                (42, "acme/api#1".to_owned(), "{\"a\":1}".to_owned()),
                (43, "acme/web#2".to_owned(), "{\"b\":2}".to_owned()),
            ],
            "{name}: two saved, #9 forgotten"
        );
        assert_eq!(
            store.settings_with_prefix("paused:").await.unwrap(),
            [("paused:acme/api".to_owned(), "maintainer".to_owned())],
            "{name}"
        );
        let pending = store.pending_effects(10, T0 + 10).await.unwrap();
        let found: Vec<_> = pending.iter().map(|entry| entry.id).collect();
        assert_eq!(
            found, ids,
            "{name}: the ids returned are the entries, in order"
        );
        assert_eq!(
            pending[1],
            OutboxEntry {
                id: ids[1],
                installation: InstallationId(43),
                decision: "{\"comment\":2}".into(),
                attempts: 0,
                created_at: T0 + 10,
                next_attempt_at: T0 + 10,
            },
            "{name}"
        );
        assert_eq!(store.outbox_counts().await.unwrap(), (3, 0), "{name}");
        // A step with nothing in it commits nothing and fails nothing.
        assert!(
            store
                .commit_step(&Step::default(), T0)
                .await
                .unwrap()
                .is_empty()
        );
    });
}

/// Makes the database refuse to insert an outbox entry whose decision is `boom`, the way
/// a full disk or a lost connection would refuse a statement half-way through a step.
async fn refuse_boom(url: &str) {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON outbox WHEN NEW.decision = 'boom'
             BEGIN SELECT RAISE(ABORT, 'forced failure'); END",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(
            "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.decision = 'boom' THEN RAISE EXCEPTION 'forced failure'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_boom BEFORE INSERT ON outbox
                 FOR EACH ROW EXECUTE FUNCTION refuse_boom();",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_step_that_fails_half_way_leaves_nothing_behind() {
    for test_store in stores::all().await {
        let name = test_store.name;
        let store = Store::open(&test_store.url).await.unwrap();
        refuse_boom(&test_store.url).await;
        let seq = claimed(&store, "half-1").await;
        store
            .save_issue(InstallationId(42), &issue("acme/api#9"), "old", T0)
            .await
            .unwrap();
        let mut step = Step {
            deliveries: vec![(seq, DeliveryOutcome::Processed)],
            issues: vec![(InstallationId(42), issue("acme/api#1"), "new".into())],
            forgotten: vec![issue("acme/api#9")],
            settings: vec![("paused:acme/api".into(), Some("x".into()))],
            decisions: vec![
                (InstallationId(42), "first".into()),
                (InstallationId(42), "boom".into()),
                (InstallationId(42), "third".into()),
            ],
            ..Step::default()
        };
        let refused = store.commit_step(&step, T0 + 10).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|err| err.to_string().contains("forced failure")),
            "{name}: {refused:?}"
        );

        // Everything before the failing insert is rolled back with it.
        let record = store.delivery(&"half-1".parse().unwrap()).await.unwrap();
        assert_eq!(record.unwrap().state, DeliveryState::Pending, "{name}");
        let saved: Vec<_> = store
            .issues()
            .await
            .unwrap()
            .into_iter()
            .map(|(_, issue, data)| (issue.to_string(), data))
            .collect();
        assert_eq!(
            saved,
            [("acme/api#9".to_owned(), "old".to_owned())],
            "{name}"
        );
        assert_eq!(
            store.setting("paused:acme/api").await.unwrap(),
            None,
            "{name}"
        );
        assert_eq!(store.outbox_counts().await.unwrap(), (0, 0), "{name}");
        assert!(
            store.pending_effects(10, T0 + 10).await.unwrap().is_empty(),
            "{name}"
        );

        // The same step without the refused decision then commits whole.
        step.decisions.remove(1);
        let ids = store.commit_step(&step, T0 + 20).await.unwrap();
        assert_eq!(ids.len(), 2, "{name}");
        let pending = store.pending_effects(10, T0 + 20).await.unwrap();
        assert_eq!(decisions(&pending), ["first", "third"], "{name}");
        let record = store.delivery(&"half-1".parse().unwrap()).await.unwrap();
        assert_eq!(record.unwrap().state, DeliveryState::Processed, "{name}");
        println!("{name}: a refused insert after four other writes left none of them");
        store.close().await;
    }
}

#[tokio::test]
async fn effects_come_back_due_in_order_and_leave_when_done_or_given_up() {
    each_store!(|store, name| {
        let ids = store
            .commit_step(&deciding(&["a", "b", "c"]), T0)
            .await
            .unwrap();
        let later = store
            .commit_step(&deciding(&["d"]), T0 + 7000)
            .await
            .unwrap();
        let (a, b, c, d) = (ids[0], ids[1], ids[2], later[0]);

        let pending = |limit: u32, now: i64| {
            let store = store.clone();
            async move { store.pending_effects(limit, now).await.unwrap() }
        };
        assert_eq!(decisions(&pending(10, T0).await), ["a", "b", "c"], "{name}");
        assert_eq!(
            decisions(&pending(2, T0).await),
            ["a", "b"],
            "{name}: limit"
        );
        assert!(
            pending(10, T0 - 1).await.is_empty(),
            "{name}: not due before"
        );
        // A replica reads only the entries of the installations it holds (`deciding`
        // decides for installation 42).
        let of = |ids: &'static [InstallationId]| {
            let store = store.clone();
            async move { store.pending_effects_of(10, T0, Some(ids)).await.unwrap() }
        };
        assert_eq!(
            decisions(&of(&[InstallationId(42)]).await),
            ["a", "b", "c"],
            "{name}"
        );
        assert!(of(&[InstallationId(7)]).await.is_empty(), "{name}");
        assert!(of(&[]).await.is_empty(), "{name}: holding none, none");

        // A retry waits for its time, then comes back in its place, counted.
        store
            .retry_effect(a, "GitHub 502", T0 + 5000)
            .await
            .unwrap();
        assert_eq!(
            decisions(&pending(10, T0 + 1000).await),
            ["b", "c"],
            "{name}"
        );
        let due = pending(10, T0 + 5000).await;
        assert_eq!(decisions(&due), ["a", "b", "c"], "{name}");
        assert_eq!((due[0].id, due[0].attempts), (a, 1), "{name}");

        // Given up: not pending, counted as failed.
        store.fail_effect(b, "gone", T0 + 6000).await.unwrap();
        assert_eq!(store.outbox_counts().await.unwrap(), (3, 1), "{name}");

        // Executing c yields e in the same step; c is done and never comes back.
        let mut step = deciding(&["e"]);
        step.effects_done = vec![c];
        let e = store.commit_step(&step, T0 + 8000).await.unwrap()[0];
        let due: Vec<_> = pending(10, T0 + 8000).await.iter().map(|x| x.id).collect();
        assert_eq!(due, [a, d, e], "{name}");
        assert_eq!(store.outbox_counts().await.unwrap(), (3, 1), "{name}");

        // Finished entries are not moved again: a late retry of c or b changes nothing.
        store.retry_effect(c, "late", T0).await.unwrap();
        store.retry_effect(b, "late", T0).await.unwrap();
        assert_eq!(pending(10, T0 + 8000).await.len(), 3, "{name}");
        assert_eq!(store.outbox_counts().await.unwrap(), (3, 1), "{name}");
    });
}
