//! What the bot keeps besides runs: issues, status comments, settings; and installation
//! leases.

use codegen_orchestrator::domain::InstallationId;
use codegen_orchestrator::store::{LeaseRound, StoreError};

use crate::{T0, issue};

#[tokio::test]
async fn issues_status_comments_and_settings() {
    each_store!(|store, name| {
        store
            .save_issue(InstallationId(42), &issue("acme/api#1"), "{\"a\":1}", T0)
            .await
            .unwrap();
        store
            .save_issue(InstallationId(42), &issue("Acme/Api#1"), "{\"a\":2}", T0)
            .await
            .unwrap();
        store
            .save_issue(InstallationId(42), &issue("acme/web#2"), "{}", T0)
            .await
            .unwrap();
        let saved = store.issues().await.unwrap();
        assert_eq!(
            saved.len(),
            2,
            "{name}: one row per issue, whatever the case"
        );
        assert!(
            saved.iter().any(|(_, _, data)| data == "{\"a\":2}"),
            "{name}"
        );
        store.delete_issue(&issue("acme/web#2")).await.unwrap();
        assert_eq!(store.issues().await.unwrap().len(), 1, "{name}");

        let target = issue("acme/api#1");
        assert!(
            store.claim_status_comment(&target, T0, 1000).await.unwrap(),
            "{name}"
        );
        assert!(
            !store
                .claim_status_comment(&target, T0 + 10, 1000)
                .await
                .unwrap(),
            "{name}: claimed"
        );
        assert!(
            store
                .claim_status_comment(&target, T0 + 2000, 1000)
                .await
                .unwrap(),
            "{name}: the lease ran out"
        );
        store
            .record_status_comment(&target, 99, "hash")
            .await
            .unwrap();
        assert!(
            !store
                .claim_status_comment(&target, T0 + 9000, 1000)
                .await
                .unwrap(),
            "{name}: it exists"
        );
        let comment = store.status_comment(&target).await.unwrap().unwrap();
        assert_eq!(
            (comment.comment_id, comment.body_hash.as_deref()),
            (Some(99), Some("hash")),
            "{name}"
        );

        store
            .set_setting("paused:acme/api", Some("maintainer"))
            .await
            .unwrap();
        store
            .set_setting("paused:acme/web", Some("x"))
            .await
            .unwrap();
        store.set_setting("other", Some("y")).await.unwrap();
        store.set_setting("paused:acme/web", None).await.unwrap();
        assert_eq!(
            store.settings_with_prefix("paused:").await.unwrap(),
            [("paused:acme/api".to_owned(), "maintainer".to_owned())],
            "{name}"
        );
        assert_eq!(
            store.setting("other").await.unwrap().as_deref(),
            Some("y"),
            "{name}"
        );
    });
}

/// Two replicas share six installations: the first takes all, gives half back when the
/// second shows up, a step of an installation not held is refused whole, and a replica's
/// installations go to the other when it leaves or its leases run out.
#[tokio::test]
async fn installation_leases_share_the_installations_out_between_replicas() {
    each_store!(|store, name| {
        const LEASE_MS: i64 = 60_000;
        let ids: Vec<InstallationId> = (1..=6).map(InstallationId).collect();
        store.know_installations(&ids).await.unwrap();
        let first = store.balance_leases("a", LEASE_MS).await.unwrap();
        let Some(first) = first else {
            assert!(
                !store.is_shared(),
                "{name}: one process holds every installation"
            );
            continue;
        };
        let held = |round: Option<LeaseRound>| -> Vec<u64> {
            round.unwrap().held.into_iter().map(|id| id.0).collect()
        };
        assert_eq!(first.held.len(), 6, "{name}: alone, a takes all");
        assert_eq!((first.live_replicas, first.known), (1, 6), "{name}");
        // b joins: nothing is free until a gives its share back.
        assert!(
            held(store.balance_leases("b", LEASE_MS).await.unwrap()).is_empty(),
            "{name}"
        );
        assert_eq!(
            held(store.balance_leases("a", LEASE_MS).await.unwrap()),
            [1, 2, 3],
            "{name}"
        );
        assert_eq!(
            held(store.balance_leases("b", LEASE_MS).await.unwrap()),
            [4, 5, 6],
            "{name}"
        );
        // Stable from now on: renewed, nothing taken.
        let again = store.balance_leases("a", LEASE_MS).await.unwrap().unwrap();
        assert!(again.taken.is_empty(), "{name}");
        assert_eq!(held(Some(again)), [1, 2, 3], "{name}");

        // A step acting on installation 4 commits only for its holder.
        let step = crate::outbox::deciding(&["x"]);
        let refused = store
            .commit_step_fenced(&step, T0, Some(("a", &[InstallationId(4)])))
            .await;
        assert!(
            matches!(refused, Err(StoreError::LeaseLost)),
            "{name}: {refused:?}"
        );
        assert_eq!(
            store.outbox_counts().await.unwrap().0,
            0,
            "{name}: nothing written"
        );
        let fence = [InstallationId(4), InstallationId(5)];
        assert_eq!(
            store
                .commit_step_fenced(&step, T0, Some(("b", &fence)))
                .await
                .unwrap()
                .len(),
            1,
            "{name}"
        );

        // b leaves: a takes everything at its next round, and installation 42, whose
        // entry now waits in the outbox, has become known.
        store.release_leases("b").await.unwrap();
        assert_eq!(
            held(store.balance_leases("a", LEASE_MS).await.unwrap()),
            [1, 2, 3, 4, 5, 6, 42],
            "{name}"
        );

        // a's leases run out (it stopped renewing): b takes them over.
        assert_eq!(
            held(store.balance_leases("a", 1).await.unwrap()).len(),
            7,
            "{name}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(
            store
                .renew_leases("a", LEASE_MS)
                .await
                .unwrap()
                .map(|held| held.len()),
            Some(0),
            "{name}: a lease that ran out is not renewed"
        );
        let round = store.balance_leases("b", LEASE_MS).await.unwrap().unwrap();
        assert!(!round.taken.is_empty(), "{name}: b takes what ran out");
        assert!(round.taken.is_subset(&round.held), "{name}");
    });
}
