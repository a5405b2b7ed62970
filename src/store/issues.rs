//! What the bot knows of each issue (JSON it wrote, the graph is rebuilt from it) and each
//! issue's one status comment.

use super::sql::Statement;
use super::{Store, StoreError};
use crate::domain::{InstallationId, IssueRef};

/// An issue's status comment as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCommentRecord {
    /// Its id, once created.
    pub comment_id: Option<u64>,
    /// Hash of the body last written.
    pub body_hash: Option<String>,
    /// Until when a creator holds the claim (unix ms).
    pub claimed_until: Option<i64>,
}

impl Store {
    /// Saves what the bot knows of `issue` (JSON it wrote).
    pub async fn save_issue(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        data: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(save_issue(installation, issue, data, now))
            .await
            .map(drop)
    }

    /// Forgets an issue.
    pub async fn delete_issue(&self, issue: &IssueRef) -> Result<(), StoreError> {
        self.write(delete_issue(issue)).await.map(drop)
    }

    /// Every saved issue with its installation and data.
    pub async fn issues(&self) -> Result<Vec<(InstallationId, IssueRef, String)>, StoreError> {
        let rows = self
            .read(Statement::rows(
                "SELECT installation_id, repository, number, data FROM issues
                 ORDER BY repository, number",
            ))
            .await?;
        let mut issues = Vec::with_capacity(rows.len());
        for row in rows {
            // A repository name this version cannot read is left out, not an error.
            let Ok(repo) = row.text("repository")?.parse() else {
                continue;
            };
            issues.push((
                InstallationId(row.int("installation_id")? as u64),
                IssueRef::new(repo, row.int("number")? as u64),
                row.text("data")?,
            ));
        }
        Ok(issues)
    }

    /// The installations that have saved issues, without reading the issues (start-up
    /// reads them once, for the graph).
    pub async fn installations_with_issues(&self) -> Result<Vec<InstallationId>, StoreError> {
        let rows = self
            .read(Statement::rows(
                "SELECT DISTINCT installation_id FROM issues ORDER BY installation_id",
            ))
            .await?;
        rows.iter()
            .map(|row| Ok(InstallationId(row.int("installation_id")? as u64)))
            .collect()
    }

    /// The status comment of `issue`: its id and the hash of the body last written.
    pub async fn status_comment(
        &self,
        issue: &IssueRef,
    ) -> Result<Option<StatusCommentRecord>, StoreError> {
        let rows = self
            .read(
                Statement::rows(
                    "SELECT comment_id, body_hash, claimed_until FROM status_comments
                     WHERE lower(repository) = lower($1) AND number = $2",
                )
                .bind(issue.repo.to_string())
                .bind(issue.number as i64),
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(StatusCommentRecord {
            comment_id: row.optional_int("comment_id")?.map(|id| id as u64),
            body_hash: row.optional_text("body_hash")?,
            claimed_until: row.optional_int("claimed_until")?,
        }))
    }

    /// Claims the right to create the status comment of `issue` until `now + lease_ms`;
    /// `false` when someone else holds it or the comment exists.
    pub async fn claim_status_comment(
        &self,
        issue: &IssueRef,
        now: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .write(
                Statement::count(
                    "INSERT INTO status_comments (repository, number, claimed_until)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(issue.repo.to_string())
                .bind(issue.number as i64)
                .bind(now + lease_ms),
            )
            .await?;
        if inserted.rows_affected == 1 {
            return Ok(true);
        }
        // A creator that did not finish within its lease: take over. The conditions make
        // the update safe on its own, whatever was written since the insert above.
        let taken = self
            .write(
                Statement::count(
                    "UPDATE status_comments SET claimed_until = $1
                     WHERE lower(repository) = lower($2) AND number = $3
                       AND comment_id IS NULL AND claimed_until < $4",
                )
                .bind(now + lease_ms)
                .bind(issue.repo.to_string())
                .bind(issue.number as i64)
                .bind(now),
            )
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// Records the status comment's id and the hash of its body.
    pub async fn record_status_comment(
        &self,
        issue: &IssueRef,
        comment_id: u64,
        body_hash: &str,
    ) -> Result<(), StoreError> {
        self.write(
            Statement::count(
                "INSERT INTO status_comments (repository, number, comment_id, body_hash)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (lower(repository), number)
                 DO UPDATE SET comment_id = excluded.comment_id,
                               body_hash = excluded.body_hash, claimed_until = NULL",
            )
            .bind(issue.repo.to_string())
            .bind(issue.number as i64)
            .bind(comment_id as i64)
            .bind(body_hash),
        )
        .await
        .map(drop)
    }
}

/// Upserts an issue row (also one part of a step).
pub(super) fn save_issue(
    installation: InstallationId,
    issue: &IssueRef,
    data: &str,
    now: i64,
) -> Statement {
    Statement::count(
        "INSERT INTO issues (installation_id, repository, number, data, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (lower(repository), number)
         DO UPDATE SET installation_id = excluded.installation_id,
                       repository = excluded.repository,
                       data = excluded.data, updated_at = excluded.updated_at",
    )
    .bind(installation.0 as i64)
    .bind(issue.repo.to_string())
    .bind(issue.number as i64)
    .bind(data)
    .bind(now)
}

/// Deletes an issue row (also one part of a step).
pub(super) fn delete_issue(issue: &IssueRef) -> Statement {
    Statement::count("DELETE FROM issues WHERE lower(repository) = lower($1) AND number = $2")
        .bind(issue.repo.to_string())
        .bind(issue.number as i64)
}
