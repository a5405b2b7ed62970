//! Run rows: one per (issue, attempt), written before Codegen is asked, so that no attempt
//! is ever launched twice. A row reads as the domain's [`RunRecord`].

use super::rows::ReadRow;
use super::sql::Statement;
use super::{Store, StoreError};
use crate::domain::{InstallationId, IssueRef, RunId, RunRecord, RunState};

/// How a run ended, to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnding {
    /// The final state (not launching or running).
    pub state: RunState,
    /// Why, when it did not succeed.
    pub failure: Option<String>,
    /// The agent's summary.
    pub summary: Option<String>,
    /// Pull requests the agent opened.
    pub pull_requests: Vec<String>,
}

impl Store {
    /// Records the intent to launch `attempt` at `issue` with `prompt`, held until
    /// `now + lease_ms`.
    /// `None` when that attempt is already recorded: someone else launches (or launched)
    /// it, and the caller must not call Codegen.
    pub async fn begin_launch(
        &self,
        installation: InstallationId,
        issue: &IssueRef,
        attempt: u32,
        prompt: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<RunRecord>, StoreError> {
        let inserted = self
            .write(
                Statement::rows(
                    "INSERT INTO runs (installation_id, repository, issue_number, attempt,
                                       prompt, state, lease_until, created_at)
                     VALUES ($1, $2, $3, $4, $5, 'launching', $6, $7)
                     ON CONFLICT DO NOTHING RETURNING *",
                )
                .bind(installation.0 as i64)
                .bind(issue.repo.to_string())
                .bind(issue.number as i64)
                .bind(i64::from(attempt))
                .bind(prompt)
                .bind(now + lease_ms)
                .bind(now),
            )
            .await?;
        Ok(inserted
            .rows
            .first()
            .and_then(|row| run_record(row.as_ref())))
    }

    /// Takes over a launch whose holder's lease ran out (it crashed, or gave up for now);
    /// `false` when it is no longer stale (another replica took it, or it was recorded).
    pub async fn take_over_launch(
        &self,
        row: i64,
        now: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let taken = self
            .write(
                Statement::count(
                    "UPDATE runs SET lease_until = $1
                     WHERE id = $2 AND state = 'launching' AND lease_until < $3",
                )
                .bind(now + lease_ms)
                .bind(row)
                .bind(now),
            )
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// Gives up a launch Codegen certainly did not create (402): the attempt can be made
    /// again later.
    pub async fn abandon_launch(&self, row: i64) -> Result<(), StoreError> {
        self.write(
            Statement::count("DELETE FROM runs WHERE id = $1 AND state = 'launching'").bind(row),
        )
        .await
        .map(drop)
    }

    /// Stores the id of the run Codegen created for a launching row; `false` when the
    /// row is no longer launching (it was cancelled meanwhile).
    pub async fn record_started(
        &self,
        row: i64,
        run_id: RunId,
        web_url: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let started = self
            .write(
                Statement::count(
                    "UPDATE runs SET state = 'running', codegen_run_id = $1, web_url = $2,
                            started_at = $3, lease_until = NULL
                     WHERE id = $4 AND state = 'launching'",
                )
                .bind(run_id.0 as i64)
                .bind(web_url)
                .bind(now)
                .bind(row),
            )
            .await?;
        Ok(started.rows_affected == 1)
    }

    /// Stores how a launching or running row ended; `false` if it had already ended.
    pub async fn record_ended(
        &self,
        row: i64,
        ending: &RunEnding,
        now: i64,
    ) -> Result<bool, StoreError> {
        let pull_requests =
            serde_json::to_string(&ending.pull_requests).unwrap_or_else(|_| "[]".into());
        let ended = self
            .write(
                Statement::count(
                    "UPDATE runs SET state = $1, failure = $2, summary = $3, pull_requests = $4,
                            finished_at = $5, lease_until = NULL
                     WHERE id = $6 AND state IN ('launching', 'running')",
                )
                .bind(ending.state.as_str())
                .bind(ending.failure.as_deref())
                .bind(ending.summary.as_deref())
                .bind(pull_requests)
                .bind(now)
                .bind(row),
            )
            .await?;
        Ok(ended.rows_affected == 1)
    }

    /// Launching rows whose lease ran out before `now`.
    pub async fn stale_launches(&self, now: i64) -> Result<Vec<RunRecord>, StoreError> {
        self.runs(
            Statement::rows(
                "SELECT * FROM runs WHERE state = 'launching' AND lease_until < $1 ORDER BY id",
            )
            .bind(now),
        )
        .await
    }

    /// Runs Codegen accepted that have not ended.
    pub async fn running_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.runs(Statement::rows(
            "SELECT * FROM runs WHERE state = 'running' ORDER BY id",
        ))
        .await
    }

    /// Every attempt at `issue`, oldest first.
    pub async fn runs_of(&self, issue: &IssueRef) -> Result<Vec<RunRecord>, StoreError> {
        self.runs(
            Statement::rows(
                "SELECT * FROM runs WHERE lower(repository) = lower($1) AND issue_number = $2
                 ORDER BY attempt",
            )
            .bind(issue.repo.to_string())
            .bind(issue.number as i64),
        )
        .await
    }

    /// Every run row, oldest first.
    pub async fn all_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.runs(Statement::rows("SELECT * FROM runs ORDER BY id"))
            .await
    }

    /// The run rows `select` reads.
    pub(super) async fn runs(&self, select: Statement) -> Result<Vec<RunRecord>, StoreError> {
        let rows = self.read(select).await?;
        Ok(rows
            .iter()
            .filter_map(|row| run_record(row.as_ref()))
            .collect())
    }
}

/// A run row as [`RunRecord`]; a row that does not read (written by a newer version) is
/// skipped with an error in the log rather than failing every caller.
fn run_record(row: &dyn ReadRow) -> Option<RunRecord> {
    let read = || -> Result<RunRecord, sqlx::Error> {
        let repo = row
            .text("repository")?
            .parse()
            .map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
        let state = row.text("state")?;
        Ok(RunRecord {
            row: row.int("id")?,
            installation: InstallationId(row.int("installation_id")? as u64),
            issue: IssueRef::new(repo, row.int("issue_number")? as u64),
            attempt: row.int("attempt")? as u32,
            state: RunState::parse(&state)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown run state {state}").into()))?,
            prompt: row.text("prompt")?,
            run_id: row
                .optional_int("codegen_run_id")?
                .map(|id| RunId(id as u64)),
            web_url: row.optional_text("web_url")?,
            summary: row.optional_text("summary")?,
            pull_requests: serde_json::from_str(&row.text("pull_requests")?).unwrap_or_default(),
            failure: row.optional_text("failure")?,
            created_at: row.int("created_at")?,
            started_at: row.optional_int("started_at")?,
            finished_at: row.optional_int("finished_at")?,
        })
    };
    read()
        .map_err(|err| tracing::error!(error = %err, "a run row could not be read"))
        .ok()
}
