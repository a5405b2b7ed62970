//! What the dashboard keeps: sessions (saved, read until they end, refreshed, ended, and
//! ended ones forgotten), the one cookie key every replica shares, and one installation's
//! issues and runs read apart from the others'.

use codegen_orchestrator::config::Secret;
use codegen_orchestrator::domain::InstallationId;
use codegen_orchestrator::store::DashboardSession;

use crate::{T0, issue};

fn session(id: &str, expires_at: i64) -> DashboardSession {
    DashboardSession {
        id: id.to_owned(),
        login: "octocat".to_owned(),
        token: Secret::new("ghu_token"),
        reach: "[[42,\"acme/api\"]]".to_owned(),
        checked_at: T0,
        expires_at,
    }
}

#[tokio::test]
async fn sessions_are_read_until_they_end_and_ended_ones_are_forgotten() {
    each_store!(|store, name| {
        store
            .create_dashboard_session(&session("a", T0 + 1_000), T0)
            .await
            .unwrap();
        let read = store.dashboard_session("a", T0).await.unwrap().unwrap();
        assert_eq!(read.login, "octocat", "{name}");
        assert_eq!(read.token.expose(), "ghu_token", "{name}");
        assert_eq!(read.reach, "[[42,\"acme/api\"]]", "{name}");
        assert_eq!(read.expires_at, T0 + 1_000, "{name}");
        assert!(
            store.dashboard_session("b", T0).await.unwrap().is_none(),
            "{name}"
        );
        assert!(
            store
                .dashboard_session("a", T0 + 1_001)
                .await
                .unwrap()
                .is_none(),
            "{name}: ended"
        );

        store
            .refresh_dashboard_session("a", "[]", T0 + 500)
            .await
            .unwrap();
        let read = store.dashboard_session("a", T0).await.unwrap().unwrap();
        assert_eq!(
            (read.reach.as_str(), read.checked_at),
            ("[]", T0 + 500),
            "{name}"
        );

        // A new session forgets the ended ones.
        store
            .create_dashboard_session(&session("b", T0 + 9_000), T0 + 2_000)
            .await
            .unwrap();
        assert!(
            store.dashboard_session("a", T0).await.unwrap().is_none(),
            "{name}"
        );
        store.delete_dashboard_session("b").await.unwrap();
        assert!(
            store.dashboard_session("b", T0).await.unwrap().is_none(),
            "{name}"
        );
    });
}

#[tokio::test]
async fn the_first_key_written_is_the_one_every_process_gets() {
    each_store!(|store, name| {
        let first = store
            .setting_or_insert("dashboard:cookie_key", "k1")
            .await
            .unwrap();
        let second = store
            .setting_or_insert("dashboard:cookie_key", "k2")
            .await
            .unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("k1", "k1"), "{name}");
    });
}

#[tokio::test]
async fn one_installations_issues_and_runs_are_read_apart() {
    each_store!(|store, name| {
        store
            .save_issue(InstallationId(42), &issue("acme/api#1"), "{}", T0)
            .await
            .unwrap();
        store
            .save_issue(InstallationId(7), &issue("other/lib#2"), "{}", T0)
            .await
            .unwrap();
        store
            .begin_launch(InstallationId(42), &issue("acme/api#1"), 1, "p", T0, 1_000)
            .await
            .unwrap();
        store
            .begin_launch(InstallationId(7), &issue("other/lib#2"), 1, "p", T0, 1_000)
            .await
            .unwrap();
        let issues = store.issues_of(InstallationId(42)).await.unwrap();
        assert_eq!(issues.len(), 1, "{name}");
        assert_eq!(issues[0].0, issue("acme/api#1"), "{name}");
        let runs = store
            .runs_of_installation(InstallationId(42))
            .await
            .unwrap();
        assert_eq!(runs.len(), 1, "{name}");
        assert_eq!(runs[0].issue, issue("acme/api#1"), "{name}");
    });
}
