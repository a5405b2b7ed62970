//! Small settings that must survive restarts: paused repositories, reported problems.

use super::sql::Statement;
use super::{Backend, Store, StoreError};

impl Store {
    /// A setting's value.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .read(Statement::rows("SELECT value FROM settings WHERE key = $1").bind(key))
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(row.text("value")?)),
            None => Ok(None),
        }
    }

    /// Sets (`Some`) or removes (`None`) a setting.
    pub async fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        self.write(set_setting(key, value)).await.map(drop)
    }

    /// Settings whose key starts with `prefix`.
    pub async fn settings_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        // The dialects disagree here: SQLite has no starts_with, and PostgreSQL's substr
        // takes an INTEGER length where sqlx binds a BIGINT.
        let select = match self.backend {
            Backend::Sqlite(_) => Statement::rows(
                "SELECT key, value FROM settings WHERE substr(key, 1, $1) = $2 ORDER BY key",
            )
            .bind(prefix.len() as i64),
            Backend::Postgres(_) => Statement::rows(
                "SELECT key, value FROM settings WHERE starts_with(key, $1) ORDER BY key",
            ),
        };
        let rows = self.read(select.bind(prefix)).await?;
        rows.iter()
            .map(|row| Ok((row.text("key")?, row.text("value")?)))
            .collect()
    }
}

/// Sets or removes a setting (also one part of a step).
pub(super) fn set_setting(key: &str, value: Option<&str>) -> Statement {
    match value {
        Some(value) => Statement::count(
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value),
        None => Statement::count("DELETE FROM settings WHERE key = $1").bind(key),
    }
}

/// Settings whose key starts with `prefix`, read from the database at `url` without
/// opening the store: no migration, no process lock (a running `serve` holds an SQLite
/// file's), read-only. For commands run beside a deployment (`plan` reads the learned run
/// durations). A database without the table yet has none.
pub async fn peek_settings(url: &str, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
    use sqlx::Connection;
    let like = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
    let query = "SELECT key, value FROM settings WHERE key LIKE $1 ESCAPE '\\' ORDER BY key";
    let rows: Result<Vec<(String, String)>, sqlx::Error> = if url.starts_with("sqlite:") {
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?.read_only(true);
        if !options.get_filename().exists() {
            return Ok(Vec::new());
        }
        let mut connection = sqlx::SqliteConnection::connect_with(&options).await?;
        sqlx::query_as(query)
            .bind(&like)
            .fetch_all(&mut connection)
            .await
    } else {
        let mut connection = sqlx::PgConnection::connect(url).await?;
        sqlx::query_as(query)
            .bind(&like)
            .fetch_all(&mut connection)
            .await
    };
    match rows {
        Err(sqlx::Error::Database(err)) if err.message().contains("settings") => Ok(Vec::new()),
        rows => Ok(rows?),
    }
}
