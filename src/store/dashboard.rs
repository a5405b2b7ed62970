//! What the dashboard keeps and reads: signed-in sessions (the viewer's token stays here,
//! never in the browser), the key that signs its cookies (one for every replica sharing the
//! database), and one installation's issues and runs, read without the running engine.

use super::sql::Statement;
use super::{Store, StoreError};
use crate::config::Secret;
use crate::domain::{InstallationId, IssueRef, RunRecord};

/// One signed-in browser, as stored.
#[derive(Debug, Clone)]
pub struct DashboardSession {
    /// Hex SHA-256 of the secret in the browser's cookie.
    pub id: String,
    /// The viewer's GitHub login.
    pub login: String,
    /// The viewer's OAuth token, to list what they may read again.
    pub token: Secret,
    /// The repositories the viewer may read, as JSON the dashboard wrote.
    pub reach: String,
    /// When `reach` was listed (unix ms).
    pub checked_at: i64,
    /// When the session ends (unix ms).
    pub expires_at: i64,
}

impl Store {
    /// Saves a new session, and forgets the sessions that have ended (`now`, unix ms).
    pub async fn create_dashboard_session(
        &self,
        session: &DashboardSession,
        now: i64,
    ) -> Result<(), StoreError> {
        self.transaction(vec![
            Statement::count("DELETE FROM dashboard_sessions WHERE expires_at < $1").bind(now),
            Statement::count(
                "INSERT INTO dashboard_sessions (id, login, token, reach, checked_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(session.id.as_str())
            .bind(session.login.as_str())
            .bind(session.token.expose())
            .bind(session.reach.as_str())
            .bind(session.checked_at)
            .bind(session.expires_at),
        ])
        .await
        .map(drop)
    }

    /// The session with this id, if it has not ended by `now`.
    pub async fn dashboard_session(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<DashboardSession>, StoreError> {
        let rows = self
            .read(
                Statement::rows(
                    "SELECT id, login, token, reach, checked_at, expires_at
                     FROM dashboard_sessions WHERE id = $1 AND expires_at >= $2",
                )
                .bind(id)
                .bind(now),
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(DashboardSession {
            id: row.text("id")?,
            login: row.text("login")?,
            token: Secret::new(row.text("token")?),
            reach: row.text("reach")?,
            checked_at: row.int("checked_at")?,
            expires_at: row.int("expires_at")?,
        }))
    }

    /// Records what the viewer of session `id` may read, listed at `checked_at`.
    pub async fn refresh_dashboard_session(
        &self,
        id: &str,
        reach: &str,
        checked_at: i64,
    ) -> Result<(), StoreError> {
        self.write(
            Statement::count(
                "UPDATE dashboard_sessions SET reach = $1, checked_at = $2 WHERE id = $3",
            )
            .bind(reach)
            .bind(checked_at)
            .bind(id),
        )
        .await
        .map(drop)
    }

    /// Ends a session (its viewer lost access, or their token was refused).
    pub async fn delete_dashboard_session(&self, id: &str) -> Result<(), StoreError> {
        self.write(Statement::count("DELETE FROM dashboard_sessions WHERE id = $1").bind(id))
            .await
            .map(drop)
    }

    /// The setting `key`, set to `value` first if it has none: every process asking gets the
    /// same value, whichever asked first (a key shared by replicas).
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        self.write(
            Statement::count(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value),
        )
        .await?;
        Ok(self.setting(key).await?.unwrap_or_else(|| value.to_owned()))
    }

    /// The saved issues of one installation, as [`Store::issues`] reads them.
    pub async fn issues_of(
        &self,
        installation: InstallationId,
    ) -> Result<Vec<(IssueRef, String)>, StoreError> {
        let rows = self
            .read(
                Statement::rows(
                    "SELECT repository, number, data FROM issues WHERE installation_id = $1
                     ORDER BY repository, number",
                )
                .bind(installation.0 as i64),
            )
            .await?;
        let mut issues = Vec::with_capacity(rows.len());
        for row in rows {
            let Ok(repo) = row.text("repository")?.parse() else {
                continue;
            };
            issues.push((
                IssueRef::new(repo, row.int("number")? as u64),
                row.text("data")?,
            ));
        }
        Ok(issues)
    }

    /// The run rows of one installation, oldest first.
    pub async fn runs_of_installation(
        &self,
        installation: InstallationId,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.runs(
            Statement::rows("SELECT * FROM runs WHERE installation_id = $1 ORDER BY id")
                .bind(installation.0 as i64),
        )
        .await
    }
}
