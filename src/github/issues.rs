//! Reading issues and installations: the open issues with a label, one issue, the
//! repositories an installation covers and the installation that covers a repository.

use axum::http::Method;
use serde::Deserialize;

use super::transport::next_page;
use super::{GitHub, GithubError, InstallationRef, RestIssue};
use crate::domain::{InstallationId, IssueRef, IssueSnapshot, IssueStatus, RepoName};

impl GitHub {
    /// The open issues of `repo` carrying `label` (every page), pull requests left out.
    pub async fn open_issues_labeled(
        &self,
        repo: &RepoName,
        label: &str,
    ) -> Result<Vec<IssueSnapshot>, GithubError> {
        #[derive(serde::Serialize)]
        struct Query<'a> {
            labels: &'a str,
            state: &'static str,
            per_page: u8,
        }
        let query = serde_urlencoded::to_string(Query {
            labels: label,
            state: "open",
            per_page: 100,
        })
        .map_err(|err| GithubError::Setup(err.to_string()))?;
        let all: Vec<RestIssue> = self
            .all_pages(format!(
                "/repos/{}/{}/issues?{query}",
                repo.owner(),
                repo.name()
            ))
            .await?;
        Ok(all
            .into_iter()
            .filter(|issue| !issue.is_pull_request())
            .filter_map(|issue| {
                let number = issue.number;
                let snapshot = issue.into_snapshot();
                if snapshot.is_none() {
                    tracing::warn!(%repo, number, "an issue without a repository URL was skipped");
                }
                snapshot
            })
            .collect())
    }

    /// The repositories this installation may act on (every page).
    pub async fn installation_repositories(&self) -> Result<Vec<RepoName>, GithubError> {
        #[derive(Deserialize)]
        struct Page {
            repositories: Vec<Repository>,
        }
        #[derive(Deserialize)]
        struct Repository {
            full_name: String,
        }
        let mut repos = Vec::new();
        let mut route = Some("/installation/repositories?per_page=100".to_owned());
        while let Some(current) = route.take() {
            let answer = self.send(Method::GET, &current, None).await?.success()?;
            route = next_page(&answer.headers, &self.base_path);
            let page: Page = answer.json()?;
            repos.extend(
                page.repositories
                    .into_iter()
                    .filter_map(|r| r.full_name.parse().ok()),
            );
        }
        Ok(repos)
    }

    /// One issue; a deleted one (410) is reported as deleted, one that cannot be seen (404:
    /// missing, or outside what the credentials reach) as unknown.
    pub async fn issue(&self, issue: &IssueRef) -> Result<IssueSnapshot, GithubError> {
        let route = format!(
            "/repos/{}/{}/issues/{}",
            issue.repo.owner(),
            issue.repo.name(),
            issue.number
        );
        let unseen = |status| IssueSnapshot {
            reference: issue.clone(),
            title: String::new(),
            body: String::new(),
            status,
            labels: Vec::new(),
            open_blockers: None,
            sub_issues: None,
        };
        match self.send(Method::GET, &route, None).await?.success() {
            Ok(answer) => Ok(answer
                .json::<RestIssue>()?
                .into_snapshot()
                .unwrap_or_else(|| unseen(IssueStatus::Unknown))),
            Err(err) if err.status() == Some(410) => Ok(unseen(IssueStatus::Deleted)),
            Err(err) if err.status() == Some(404) => Ok(unseen(IssueStatus::Unknown)),
            Err(err) => Err(err),
        }
    }

    /// `GET /repos/{owner}/{repo}/installation` (as the App, with its JWT).
    pub(super) async fn installation_covering(
        &self,
        repo: &RepoName,
    ) -> Result<InstallationId, GithubError> {
        let route = format!("/repos/{}/{}/installation", repo.owner(), repo.name());
        let installation: InstallationRef = self
            .send(Method::GET, &route, None)
            .await?
            .success()?
            .json()?;
        Ok(InstallationId(installation.id))
    }
}
