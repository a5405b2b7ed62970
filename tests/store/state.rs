//! What the bot keeps besides runs: issues, status comments, settings; and job locks.

use codegen_orchestrator::domain::InstallationId;

use crate::{T0, issue};

#[tokio::test]
async fn issues_status_comments_settings_and_job_locks() {
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

        let first = store.try_job_lock("bot").await.unwrap();
        assert!(first.is_some(), "{name}");
        let second = store.try_job_lock("bot").await.unwrap();
        if store.is_shared() {
            assert!(second.is_none(), "{name}: held by the first");
            first.unwrap().release().await;
            assert!(
                store.try_job_lock("bot").await.unwrap().is_some(),
                "{name}: released on drop"
            );
        } else {
            assert!(second.is_some(), "{name}: one process holds every lock");
        }
    });
}
