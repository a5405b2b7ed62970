//! Issues through GraphQL: the issue a webhook's node id stands for, and the pull requests
//! that close an issue when merged.

use serde_json::{Value, json};

use super::{CLOSING_PULL_REQUESTS, ClosingPullRequest, ISSUE_BY_NODE};
use crate::domain::{IssueRef, RepoName};
use crate::github::{GitHub, GithubError};

impl GitHub {
    /// The issue a node id stands for; `None` for drafts, pull requests or unknown ids.
    pub async fn issue_for_node(&self, node_id: &str) -> Result<Option<IssueRef>, GithubError> {
        let data: Value = self
            .graphql(ISSUE_BY_NODE, json!({ "id": node_id }))
            .await?;
        let node = data.get("node");
        let number = node.and_then(|n| n.get("number")).and_then(Value::as_u64);
        let repo = node
            .and_then(|n| n.pointer("/repository/nameWithOwner"))
            .and_then(Value::as_str)
            .and_then(|name| name.parse::<RepoName>().ok());
        Ok(number
            .zip(repo)
            .map(|(number, repo)| IssueRef::new(repo, number)))
    }

    /// The pull requests that close `issue` when merged ("Fixes #N" and the like).
    pub async fn closing_pull_requests(
        &self,
        issue: &IssueRef,
    ) -> Result<Vec<ClosingPullRequest>, GithubError> {
        let variables = json!({
            "owner": issue.repo.owner(),
            "repo": issue.repo.name(),
            "number": issue.number,
        });
        let data: Value = self.graphql(CLOSING_PULL_REQUESTS, variables).await?;
        let nodes = data
            .pointer("/repository/issue/closedByPullRequestsReferences/nodes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(nodes
            .iter()
            .filter_map(|pr| {
                let repo: RepoName = pr
                    .pointer("/repository/nameWithOwner")?
                    .as_str()?
                    .parse()
                    .ok()?;
                Some(ClosingPullRequest {
                    reference: IssueRef::new(repo, pr.get("number")?.as_u64()?),
                    url: pr.get("url")?.as_str()?.to_owned(),
                    state: pr.get("state")?.as_str()?.to_owned(),
                    head_ref: pr.get("headRefName")?.as_str()?.to_owned(),
                })
            })
            .collect())
    }
}
