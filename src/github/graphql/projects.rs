//! Projects v2: the boards an issue is on, setting a single-select field (the status) on
//! each, and adding an issue to a board. A board the App may not see is skipped and
//! reported; the issue's other boards are still read and set.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ADD_PROJECT_ITEM, GraphqlError, ISSUE_PROJECT_ITEMS, PROJECT_FIELDS, Partial, ProjectItem,
    ProjectUpdate, SET_SINGLE_SELECT, messages,
};
use crate::domain::IssueRef;
use crate::github::{GitHub, GithubError};

impl GitHub {
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
pub(in crate::github) struct SingleSelectField {
    id: String,
    name: String,
    options: Vec<(String, String)>, // (id, name)
}

/// Field ids per project id.
pub(in crate::github) type FieldCache = HashMap<String, Vec<SingleSelectField>>;

/// A GraphQL connection's `nodes` (entries may be null).
#[derive(Deserialize)]
struct Nodes<T> {
    #[serde(default = "Vec::new")]
    nodes: Vec<Option<T>>,
}
