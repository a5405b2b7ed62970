//! GitHub's GraphQL API: Projects v2 (the `Status` field of every project an issue is on),
//! node ids from webhooks, and the pull requests that close an issue. The documents live
//! in `graphql/*.graphql`; a test validates every one against GitHub's published schema.
//!
//! GitHub answers GraphQL with partial data when part of a query is out of reach: the
//! resolved parts in `data`, null where it could not go, and an error with the `path` of
//! each null. A Projects v2 board the App may not see comes back that way; it is skipped
//! and reported, and the issue's other boards are still read and set.

use std::collections::HashMap;

use axum::http::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{GitHub, GithubError};
use crate::domain::{IssueRef, RepoName};

/// An issue's project items with the value of a named single-select field.
pub const ISSUE_PROJECT_ITEMS: &str = include_str!("graphql/issue_project_items.graphql");
/// A project's single-select fields and their options.
pub const PROJECT_FIELDS: &str = include_str!("graphql/project_fields.graphql");
/// Sets a single-select field of a project item.
pub const SET_SINGLE_SELECT: &str = include_str!("graphql/set_single_select.graphql");
/// Adds an issue (or pull request) to a project.
pub const ADD_PROJECT_ITEM: &str = include_str!("graphql/add_project_item.graphql");
/// The issue a node id (from a `projects_v2_item` webhook) stands for.
pub const ISSUE_BY_NODE: &str = include_str!("graphql/issue_by_node.graphql");
/// The pull requests that will close an issue when merged.
pub const CLOSING_PULL_REQUESTS: &str = include_str!("graphql/closing_pull_requests.graphql");

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

/// The path of an issue's project items in [`ISSUE_PROJECT_ITEMS`]'s answer.
const PROJECT_ITEMS_PATH: &[&str] = &["repository", "issue", "projectItems", "nodes"];

/// A project item as far as the App can see it.
enum Board {
    Reachable(ProjectItem),
    Unreachable {
        project: Option<String>,
        message: String,
    },
}

/// A single-select field with its options, as cached per project.
#[derive(Debug, Clone)]
pub(super) struct SingleSelectField {
    id: String,
    name: String,
    options: Vec<(String, String)>, // (id, name)
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

    /// The issue's items on Projects v2 boards, with the current option of `field`; boards
    /// the App may not see are left out.
    pub async fn project_items(
        &self,
        issue: &IssueRef,
        field: &str,
    ) -> Result<Vec<ProjectItem>, GithubError> {
        Ok(self
            .boards_of(issue, field)
            .await?
            .into_iter()
            .filter_map(|board| match board {
                Board::Reachable(item) => Some(item),
                Board::Unreachable { .. } => None,
            })
            .collect())
    }

    /// The issue's project items in GitHub's order, each reachable or not. A partial answer
    /// is used when every error is a refused item (`FORBIDDEN` under `projectItems.nodes`);
    /// any other error fails the read as before.
    async fn boards_of(&self, issue: &IssueRef, field: &str) -> Result<Vec<Board>, GithubError> {
        #[derive(Deserialize)]
        struct Data {
            repository: Option<Repository>,
        }
        #[derive(Deserialize)]
        struct Repository {
            issue: Option<IssueItems>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct IssueItems {
            project_items: Nodes<Item>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Item {
            id: String,
            // Non-null in the schema; optional so that a refusal GitHub reports on the
            // project alone, without nulling the item, is read as well.
            project: Option<Project>,
            field_value_by_name: Option<FieldValue>,
        }
        #[derive(Deserialize)]
        struct Project {
            id: String,
            title: String,
        }
        #[derive(Deserialize)]
        struct FieldValue {
            name: Option<String>,
        }
        let variables = json!({
            "owner": issue.repo.owner(),
            "repo": issue.repo.name(),
            "number": issue.number,
            "field": field,
        });
        let answer: Partial<Data> = self.graphql_partial(ISSUE_PROJECT_ITEMS, variables).await?;
        let mut refused: HashMap<usize, String> = HashMap::new();
        for error in &answer.errors {
            match error.position_under(PROJECT_ITEMS_PATH) {
                Some(position) if error.is_forbidden() => {
                    refused.entry(position).or_insert(error.message.clone());
                }
                _ => return Err(GithubError::Graphql(answer.errors)),
            }
        }
        let items = answer
            .data
            .repository
            .and_then(|r| r.issue)
            .map(|i| i.project_items.nodes)
            .unwrap_or_default();
        let mut boards = Vec::new();
        for (position, item) in items.into_iter().enumerate() {
            let project = item.as_ref().and_then(|i| i.project.as_ref());
            if let Some(message) = refused.remove(&position) {
                let project = project.map(|p| p.title.clone());
                tracing::warn!(%issue, position, project = project.as_deref(), message,
                    "GitHub refused the App a project board of the issue; skipped");
                boards.push(Board::Unreachable { project, message });
                continue;
            }
            // A null without an error to explain it says nothing usable.
            let Some(item) = item else { continue };
            let Some(project) = item.project else {
                continue;
            };
            boards.push(Board::Reachable(ProjectItem {
                item_id: item.id,
                project_id: project.id,
                project_title: project.title,
                current: item.field_value_by_name.and_then(|v| v.name),
            }));
        }
        Ok(boards)
    }

    /// Sets the single-select `field` to `option` on every project the issue is an item
    /// of. Field and option ids are looked up by name once per project and cached.
    pub async fn set_project_status(
        &self,
        issue: &IssueRef,
        field: &str,
        option: &str,
    ) -> Result<Vec<ProjectUpdate>, GithubError> {
        let mut updates = Vec::new();
        for board in self.boards_of(issue, field).await? {
            let item = match board {
                Board::Reachable(item) => item,
                Board::Unreachable { project, message } => {
                    updates.push(ProjectUpdate::Unreachable { project, message });
                    continue;
                }
            };
            let project = item.project_title.clone();
            if item.current.as_deref() == Some(option) {
                updates.push(ProjectUpdate::Unchanged { project });
                continue;
            }
            // A board can be readable as an item of the issue yet refuse its fields or
            // the write (read-only access): that board alone is skipped.
            let fields = match self.single_select_fields(&item.project_id).await {
                Ok(fields) => fields,
                Err(GithubError::Graphql(errors))
                    if errors.iter().all(GraphqlError::is_forbidden) =>
                {
                    updates.push(unreachable(issue, project, &errors));
                    continue;
                }
                Err(err) => return Err(err),
            };
            let Some(found) = fields.iter().find(|f| f.name == field) else {
                tracing::warn!(%issue, project, field, "the project has no such single-select field; skipped");
                updates.push(ProjectUpdate::NoSuchField { project });
                continue;
            };
            let Some((option_id, _)) = found.options.iter().find(|(_, name)| name == option) else {
                let available: Vec<String> = found.options.iter().map(|(_, n)| n.clone()).collect();
                tracing::error!(%issue, project, field, option, available = %available.join(", "),
                    "configuration problem: projects.status_options names an option the field does not have");
                updates.push(ProjectUpdate::NoSuchOption { project, available });
                continue;
            };
            let variables = json!({
                "project": item.project_id,
                "item": item.item_id,
                "field": found.id,
                "option": option_id,
            });
            match self.graphql::<Value>(SET_SINGLE_SELECT, variables).await {
                Ok(_) => updates.push(ProjectUpdate::Set { project }),
                Err(GithubError::Graphql(errors))
                    if errors.iter().all(GraphqlError::is_forbidden) =>
                {
                    updates.push(unreachable(issue, project, &errors));
                }
                Err(err) => return Err(err),
            }
        }
        Ok(updates)
    }

    /// Adds content (an issue's node id) to a project; returns the item's id.
    pub async fn add_to_project(
        &self,
        project_id: &str,
        content_id: &str,
    ) -> Result<String, GithubError> {
        let data: Value = self
            .graphql(
                ADD_PROJECT_ITEM,
                json!({ "project": project_id, "content": content_id }),
            )
            .await?;
        data.pointer("/addProjectV2ItemById/item/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| GithubError::Transport("addProjectV2ItemById returned no item".into()))
    }

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

    async fn single_select_fields(
        &self,
        project_id: &str,
    ) -> Result<Vec<SingleSelectField>, GithubError> {
        if let Some(fields) = self
            .project_fields
            .lock()
            .ok()
            .and_then(|c| c.get(project_id).cloned())
        {
            return Ok(fields);
        }
        let data: Value = self
            .graphql(PROJECT_FIELDS, json!({ "project": project_id }))
            .await?;
        let nodes = data
            .pointer("/node/fields/nodes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let fields: Vec<SingleSelectField> = nodes
            .iter()
            .filter_map(|field| {
                Some(SingleSelectField {
                    id: field.get("id")?.as_str()?.to_owned(),
                    name: field.get("name")?.as_str()?.to_owned(),
                    options: field
                        .get("options")?
                        .as_array()?
                        .iter()
                        .filter_map(|o| {
                            Some((
                                o.get("id")?.as_str()?.to_owned(),
                                o.get("name")?.as_str()?.to_owned(),
                            ))
                        })
                        .collect(),
                })
            })
            .collect();
        if let Ok(mut cache) = self.project_fields.lock() {
            cache.insert(project_id.to_owned(), fields.clone());
        }
        Ok(fields)
    }
}

/// The update of a board that refused a read or a write (`errors` are all `FORBIDDEN`).
fn unreachable(issue: &IssueRef, project: String, errors: &[GraphqlError]) -> ProjectUpdate {
    let message = messages(errors);
    tracing::warn!(%issue, project, message, "GitHub refused the App a project board; skipped");
    ProjectUpdate::Unreachable {
        project: Some(project),
        message,
    }
}

/// Field ids per project id.
pub(super) type FieldCache = HashMap<String, Vec<SingleSelectField>>;

/// A GraphQL connection's `nodes` (entries may be null).
#[derive(Deserialize)]
struct Nodes<T> {
    #[serde(default = "Vec::new")]
    nodes: Vec<Option<T>>,
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
