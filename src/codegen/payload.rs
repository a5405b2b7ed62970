//! Codegen's JSON, as `../shared/fixtures/codegen/openapi.json` describes it. These types
//! stay here; the rest of the app sees [`AgentRun`].

use serde::Deserialize;

use super::{AgentRun, PullRequestLink, RunMetadata};
use crate::domain::{AgentStatus, RunId};

/// `AgentRunResponse`.
#[derive(Debug, Deserialize)]
pub(super) struct ApiRun {
    id: u64,
    status: Option<String>,
    web_url: Option<String>,
    result: Option<String>,
    summary: Option<String>,
    github_pull_requests: Option<Vec<ApiPullRequest>>,
    metadata: Option<serde_json::Value>,
}

/// `GithubPullRequestResponse`.
#[derive(Debug, Deserialize)]
struct ApiPullRequest {
    url: Option<String>,
    head_branch_name: Option<String>,
}

impl ApiRun {
    pub(super) fn into_run(self) -> AgentRun {
        AgentRun {
            id: RunId(self.id),
            status: AgentStatus::from_codegen(self.status.as_deref()),
            raw_status: self.status,
            web_url: self.web_url,
            result: self.result,
            summary: self.summary,
            pull_requests: self
                .github_pull_requests
                .unwrap_or_default()
                .into_iter()
                .filter_map(|pr| {
                    Some(PullRequestLink {
                        url: pr.url?,
                        head_branch: pr.head_branch_name,
                    })
                })
                .collect(),
            // Metadata is free JSON: runs created by others may carry anything.
            metadata: self
                .metadata
                .and_then(|value| serde_json::from_value::<RunMetadata>(value).ok()),
        }
    }
}

/// `Page[AgentRunResponse]`.
#[derive(Debug, Deserialize)]
pub(super) struct ApiRunsPage {
    pub(super) items: Vec<ApiRun>,
}

/// `UserResponse`, the field used.
#[derive(Debug, Deserialize)]
pub(super) struct ApiUser {
    pub(super) id: u64,
}

/// `Page[RepoResponse]`, the fields used.
#[derive(Debug, Deserialize)]
pub(super) struct ApiReposPage {
    pub(super) items: Vec<ApiRepo>,
    #[serde(default)]
    pub(super) total: usize,
}

/// `RepoResponse`, the fields used.
#[derive(Debug, Deserialize)]
pub(super) struct ApiRepo {
    pub(super) id: u64,
    pub(super) full_name: String,
}

/// The error bodies: `{"message": ...}` for most, `{"detail": [{"msg": ...}]}` for 422.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    message: Option<String>,
    detail: Option<serde_json::Value>,
}

impl ErrorBody {
    /// The human-readable message of an error answer, if it has one.
    pub(super) fn message_of(body: &[u8]) -> Option<String> {
        let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
        if let Some(message) = parsed.message {
            return Some(message);
        }
        match parsed.detail? {
            serde_json::Value::String(text) => Some(text),
            serde_json::Value::Array(items) => {
                let messages: Vec<String> = items
                    .iter()
                    .filter_map(|item| {
                        let msg = item.get("msg")?.as_str()?;
                        let at = item.get("loc").and_then(|loc| loc.as_array()).map(|loc| {
                            loc.iter()
                                .map(|part| part.to_string().trim_matches('"').to_owned())
                                .collect::<Vec<_>>()
                                .join(".")
                        });
                        Some(match at {
                            Some(at) if !at.is_empty() => format!("{at}: {msg}"),
                            _ => msg.to_owned(),
                        })
                    })
                    .collect();
                (!messages.is_empty()).then(|| messages.join("; "))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_read_from_both_shapes() {
        assert_eq!(
            ErrorBody::message_of(
                br#"{"message":"You do not have access to this organization.","status_code":403}"#
            ),
            Some("You do not have access to this organization.".into())
        );
        assert_eq!(
            ErrorBody::message_of(
                br#"{"detail":[{"loc":["body","repo_id"],"msg":"Input should be a valid integer","type":"int_parsing"}]}"#
            ),
            Some("body.repo_id: Input should be a valid integer".into())
        );
        assert_eq!(ErrorBody::message_of(b"<html>502</html>"), None);
    }

    #[test]
    fn a_run_keeps_what_the_status_needs() {
        let run: ApiRun = serde_json::from_str(
            r#"{"id": 7, "organization_id": 1, "status": "COMPLETE", "web_url": "https://codegen.com/agent/trace/7",
                "result": "done", "summary": "fixed it",
                "github_pull_requests": [{"id": 1, "url": "https://github.com/a/b/pull/3", "created_at": "x", "head_branch_name": "codegen/3"}, {"id": 2, "created_at": "x"}],
                "metadata": {"installation_id": 42, "repository": "a/b", "issue_number": 12, "attempt": 1}}"#,
        )
        .unwrap();
        let run = run.into_run();
        assert_eq!(run.status, AgentStatus::Succeeded);
        assert_eq!(run.pull_requests.len(), 1);
        assert_eq!(
            run.pull_requests[0].head_branch.as_deref(),
            Some("codegen/3")
        );
        assert_eq!(run.metadata.unwrap().issue_number, 12);
        let foreign: ApiRun = serde_json::from_str(
            r#"{"id": 8, "organization_id": 1, "metadata": {"source": "slack"}}"#,
        )
        .unwrap();
        let foreign = foreign.into_run();
        assert_eq!(foreign.metadata, None);
        assert_eq!(foreign.status, AgentStatus::Running);
    }
}
