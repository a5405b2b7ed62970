//! Creating an agent run exactly once, and the one place that asks Codegen whether a
//! creation whose answer was lost happened after all.
//!
//! Creating a run is not idempotent and Codegen takes no idempotency key, so the run's
//! `metadata` (installation, repository, issue, attempt) is its key: whenever a run for
//! it may exist (an answer lost to a 5xx or a dropped connection, or a launch a crash
//! interrupted), the runs are searched for it before anything is created. Each try of
//! [`Codegen::create_run`] is "look if in doubt, then create"; the client's one retry loop
//! runs the tries, so a failing search uses the creation's retries rather than retries of
//! its own.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::Method;

use super::payload::ApiRun;
use super::retry::Failure;
use super::{AgentRun, Codegen, CodegenError, NewRun, PAGE_SIZE, RunMetadata, decode};

/// How many pages of this token's runs a search by metadata reads before giving up.
const SEARCH_PAGES: usize = 10;

/// What is known, before asking, about earlier tries at a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// Never asked for: create it.
    New,
    /// An earlier try may have created it (the process asking died before it stored the
    /// answer): look for it first, and create it only if it is not there.
    Interrupted,
}

/// A run [`Codegen::create_run`] made or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRun {
    /// The run.
    pub run: AgentRun,
    /// Found by its metadata (a creation whose answer was lost) rather than created now.
    pub adopted: bool,
}

impl Codegen {
    /// Creates the run `run` describes, or adopts the one an earlier, lost try created.
    ///
    /// Errors: [`CodegenError::QuotaExhausted`] (402) and [`CodegenError::Rejected`]
    /// (403, 404, 422) at once; a transient error when the retries are spent and no run
    /// exists; [`CodegenError::CreationUnknown`] when one may exist but Codegen could not
    /// be asked.
    pub async fn create_run(
        &self,
        run: &NewRun,
        creation: Creation,
    ) -> Result<CreatedRun, CodegenError> {
        let path = self.org_path("/agent/run");
        // Shared by the tries, which borrow them from outside the closure that makes each
        // try; atomic and `tokio`'s cell only so that the future stays `Send`.
        let body = tokio::sync::OnceCell::new();
        let may_exist = AtomicBool::new(creation == Creation::Interrupted);
        let (body, may_exist, path) = (&body, &may_exist, &path);
        let tried = self
            .retrying("POST /agent/run", || async move {
                if may_exist.load(Ordering::Relaxed) {
                    if let Some(found) = self.lookup_once(&run.metadata).await? {
                        tracing::info!(run = %found.id, "a creation whose answer was lost had succeeded; adopting its run");
                        return Ok(CreatedRun {
                            run: found,
                            adopted: true,
                        });
                    }
                    tracing::info!(issue = run.metadata.issue_number, attempt = run.metadata.attempt,
                        "no run carries this metadata; creating it");
                    may_exist.store(false, Ordering::Relaxed);
                }
                let body = body.get_or_try_init(|| self.creation_body(run)).await?;
                match self
                    .send(&self.inner.creations, Method::POST, path, Some(body))
                    .await
                {
                    Ok(answer) => Ok(CreatedRun {
                        run: decode::<ApiRun>(&answer.body)?.into_run(),
                        adopted: false,
                    }),
                    Err(failure) => {
                        may_exist.store(failure.lost, Ordering::Relaxed);
                        Err(failure)
                    }
                }
            })
            .await;
        match tried {
            Err(err) if may_exist.load(Ordering::Relaxed) && err.is_transient() => {
                self.settle(run, err).await
            }
            tried => tried,
        }
    }

    /// The run created with `metadata`, searched in the most recent pages of this token's
    /// runs (through the retries).
    pub async fn find_run(&self, metadata: &RunMetadata) -> Result<Option<AgentRun>, CodegenError> {
        self.retrying("finding a run by metadata", || self.lookup_once(metadata))
            .await
    }

    /// The retries are spent and the last try may have created the run: one last look
    /// tells a failure (no run) from a creation that cannot be settled now.
    async fn settle(&self, run: &NewRun, err: CodegenError) -> Result<CreatedRun, CodegenError> {
        match self.lookup_once(&run.metadata).await {
            Ok(Some(found)) => {
                tracing::info!(run = %found.id, "the last creation had succeeded; adopting its run");
                Ok(CreatedRun {
                    run: found,
                    adopted: true,
                })
            }
            Ok(None) => Err(err),
            Err(_) => Err(CodegenError::CreationUnknown {
                cause: Box::new(err),
            }),
        }
    }

    /// The lookup: the run carrying `metadata`, one try per page. The runs list covers
    /// the whole organisation unless asked otherwise, so it is narrowed to this token's
    /// user and to runs made through the API.
    async fn lookup_once(&self, metadata: &RunMetadata) -> Result<Option<AgentRun>, Failure> {
        for page in 0..SEARCH_PAGES {
            let runs = self.list_page_once(page * PAGE_SIZE, PAGE_SIZE).await?;
            let last_page = runs.len() < PAGE_SIZE;
            if let Some(found) = runs
                .into_iter()
                .find(|run| run.metadata.as_ref().is_some_and(|m| m.same_run(metadata)))
            {
                return Ok(Some(found));
            }
            if last_page {
                break;
            }
        }
        Ok(None)
    }

    /// What a creation sends: the prompt, the metadata, and Codegen's integer id of the
    /// repository when it knows it.
    async fn creation_body(&self, run: &NewRun) -> Result<serde_json::Value, Failure> {
        let repo_id = self.repo_id_once(&run.repository).await?;
        Ok(serde_json::json!({
            "prompt": run.prompt,
            "metadata": run.metadata,
            "repo_id": repo_id,
        }))
    }
}
