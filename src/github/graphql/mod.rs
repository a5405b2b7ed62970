//! GitHub's GraphQL API: Projects v2 (the `Status` field of every project an issue is on),
//! node ids from webhooks, and the pull requests that close an issue. The documents live
//! in `graphql/*.graphql`; a test validates every one against GitHub's published schema.
//!
//! GitHub answers GraphQL with partial data when part of a query is out of reach: the
//! resolved parts in `data`, null where it could not go, and an error with the `path` of
//! each null. A Projects v2 board the App may not see comes back that way; it is skipped
//! and reported, and the issue's other boards are still read and set.
//!
//! This file holds the documents, the answer types and the sending; Projects v2 boards are
//! read and set in `projects`, issues and their closing pull requests read in `issues`.

mod issues;
mod projects;

use axum::http::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{GitHub, GithubError};
use crate::domain::IssueRef;

pub(super) use projects::FieldCache;

/// An issue's project items with the value of a named single-select field.
pub const ISSUE_PROJECT_ITEMS: &str = include_str!("issue_project_items.graphql");
/// A project's single-select fields and their options.
pub const PROJECT_FIELDS: &str = include_str!("project_fields.graphql");
/// Sets a single-select field of a project item.
pub const SET_SINGLE_SELECT: &str = include_str!("set_single_select.graphql");
/// Adds an issue (or pull request) to a project.
pub const ADD_PROJECT_ITEM: &str = include_str!("add_project_item.graphql");
/// The issue a node id (from a `projects_v2_item` webhook) stands for.
pub const ISSUE_BY_NODE: &str = include_str!("issue_by_node.graphql");
/// The pull requests that will close an issue when merged.
pub const CLOSING_PULL_REQUESTS: &str = include_str!("closing_pull_requests.graphql");

/// Every document the app can send, by name (for the schema validation test).
pub const DOCUMENTS: &[(&str, &str)] = &[
    ("issue_project_items", ISSUE_PROJECT_ITEMS),
    ("project_fields", PROJECT_FIELDS),
    ("set_single_select", SET_SINGLE_SELECT),
    ("add_project_item", ADD_PROJECT_ITEM),
    ("issue_by_node", ISSUE_BY_NODE),
    ("closing_pull_requests", CLOSING_PULL_REQUESTS),
];

/// One project item of an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectItem {
    /// The item's node id.
    pub item_id: String,
    /// The project's node id.
    pub project_id: String,
    /// The project's title.
    pub project_title: String,
    /// The option the field has now, by name.
    pub current: Option<String>,
}

/// What setting the status did on one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectUpdate {
    /// The field was set.
    Set {
        /// Which project.
        project: String,
    },
    /// The field already had that option.
    Unchanged {
        /// Which project.
        project: String,
    },
    /// The project has no single-select field of that name; skipped.
    NoSuchField {
        /// Which project.
        project: String,
    },
    /// The field has no option of that name: a configuration problem, reported.
    NoSuchOption {
        /// Which project.
        project: String,
        /// The options it does have.
        available: Vec<String>,
    },
    /// GitHub refused the App the board (`FORBIDDEN`, "Resource not accessible by
    /// integration"); skipped, the other boards are still set.
    Unreachable {
        /// Which project, when GitHub said: a board hidden from the App comes back as a
        /// null item, without its title.
        project: Option<String>,
        /// GitHub's message.
        message: String,
    },
}

/// One entry of a GraphQL answer's `errors`, as GitHub sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GraphqlError {
    /// GitHub's kind of error (`FORBIDDEN`, `NOT_FOUND`, ...); absent on some errors.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Where in `data` it happened (field names and list positions); empty for errors
    /// about the whole document.
    #[serde(default)]
    pub path: Vec<PathSegment>,
    /// GitHub's message.
    pub message: String,
}

/// One step of a GraphQL error's `path`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PathSegment {
    /// A position in a list.
    Index(usize),
    /// A field, by its name (or alias).
    Field(String),
}

impl GraphqlError {
    /// Whether GitHub refused the credentials what the path points at.
    pub fn is_forbidden(&self) -> bool {
        self.kind.as_deref() == Some("FORBIDDEN")
    }

    /// The list position that follows the fields `prefix` in the path, if it goes there.
    fn position_under(&self, prefix: &[&str]) -> Option<usize> {
        let fields_match = self.path.len() > prefix.len()
            && prefix
                .iter()
                .zip(&self.path)
                .all(|(want, got)| matches!(got, PathSegment::Field(name) if name == want));
        match self.path.get(prefix.len()) {
            Some(PathSegment::Index(position)) if fields_match => Some(*position),
            _ => None,
        }
    }
}

/// The messages of `errors`, for a log line or an error.
pub(super) fn messages(errors: &[GraphqlError]) -> String {
    errors
        .iter()
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A GraphQL answer that may be partial: `data` with nulls where GitHub could not go, and
/// an error for each of them.
#[derive(Debug)]
pub struct Partial<T> {
    /// What came back.
    pub data: T,
    /// Why parts of it are null; empty for a complete answer.
    pub errors: Vec<GraphqlError>,
}

/// A pull request that closes an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingPullRequest {
    /// Where it is.
    pub reference: IssueRef,
    /// Its page.
    pub url: String,
    /// OPEN, CLOSED or MERGED.
    pub state: String,
    /// Its branch.
    pub head_ref: String,
}

impl GitHub {
    /// Sends a GraphQL document; any GraphQL error fails it as [`GithubError::Graphql`]
    /// (rate limiting was already waited out by the retry layer).
    pub async fn graphql<T: DeserializeOwned>(
        &self,
        document: &str,
        variables: Value,
    ) -> Result<T, GithubError> {
        let answer = self.graphql_partial(document, variables).await?;
        if answer.errors.is_empty() {
            Ok(answer.data)
        } else {
            Err(GithubError::Graphql(answer.errors))
        }
    }

    /// Sends a GraphQL document and keeps a partial answer: whatever data came back, with
    /// the errors that explain its nulls. Without usable data the errors are the error.
    pub async fn graphql_partial<T: DeserializeOwned>(
        &self,
        document: &str,
        variables: Value,
    ) -> Result<Partial<T>, GithubError> {
        #[derive(Deserialize)]
        struct Response {
            data: Option<Value>,
            #[serde(default)]
            errors: Vec<GraphqlError>,
        }
        let body = json!({ "query": document, "variables": variables });
        // Only mutations create content; queries are reads, whatever the HTTP method.
        let mutation = document.trim_start().starts_with("mutation");
        let (client, own_auth) = match &self.graphql_client {
            Some(enterprise) => (enterprise, true),
            None => (self.client.as_ref(), false),
        };
        let answer = self
            .send_via(
                client,
                own_auth,
                mutation,
                Method::POST,
                "/graphql",
                Some(&body),
            )
            .await?
            .success()?;
        let response: Response = answer.json()?;
        let errors = response.errors;
        let Some(data) = response.data else {
            return Err(if errors.is_empty() {
                GithubError::Transport("GraphQL answer without data".into())
            } else {
                GithubError::Graphql(errors)
            });
        };
        match serde_json::from_value(data) {
            Ok(data) => Ok(Partial { data, errors }),
            // A null where the reader needs a value: the errors say why.
            Err(_) if !errors.is_empty() => Err(GithubError::Graphql(errors)),
            Err(err) => Err(GithubError::Transport(format!(
                "unreadable GraphQL answer: {err}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use apollo_compiler::validation::Valid;
    use apollo_compiler::{ExecutableDocument, Schema};

    use super::DOCUMENTS;

    /// GitHub's published schema. Its SDL defines a few `EnterpriseOwnerInfo` fields twice,
    /// which a strict parser reports; those, and only those, are accepted (the first
    /// definition is kept). It is what GitHub's server validates against, so it is taken
    /// as valid.
    fn github_schema() -> Valid<Schema> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/github-graphql/schema.graphql"
        );
        let sdl = std::fs::read_to_string(path)
            .expect("../shared/fixtures/github-graphql/schema.graphql");
        let schema = match Schema::parse(&sdl, "schema.graphql") {
            Ok(schema) => schema,
            Err(with_errors) => {
                for error in with_errors.errors.iter() {
                    let text = error.to_string();
                    assert!(
                        text.contains("duplicate definitions"),
                        "unexpected schema error: {text}"
                    );
                }
                with_errors.partial
            }
        };
        Valid::assume_valid(schema)
    }

    #[test]
    fn every_document_is_valid_against_githubs_schema() {
        let schema = github_schema();
        for (name, document) in DOCUMENTS {
            if let Err(errors) = ExecutableDocument::parse_and_validate(&schema, *document, *name) {
                panic!("{name}.graphql is not valid against GitHub's schema:\n{errors}");
            }
        }
    }

    #[test]
    fn a_document_with_a_wrong_field_is_caught() {
        let schema = github_schema();
        let wrong = "query { viewer { loginName } }";
        assert!(ExecutableDocument::parse_and_validate(&schema, wrong, "wrong.graphql").is_err());
    }
}
