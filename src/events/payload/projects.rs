//! `projects_v2_item`: an issue added to, changed on or removed from a project board.

use serde::Deserialize;

use super::{DecodeError, InstallationRef, UserPayload, domain_event};
use crate::events::{Decoded, Event, ProjectItem, ProjectItemAction};

#[derive(Deserialize)]
pub(super) struct ProjectItemEventPayload {
    action: String,
    projects_v2_item: ProjectItemPayload,
    changes: Option<ProjectItemChanges>,
    installation: Option<InstallationRef>,
    sender: Option<UserPayload>,
}

#[derive(Deserialize)]
struct ProjectItemPayload {
    node_id: String,
    project_node_id: String,
    content_node_id: String,
    content_type: String,
}

#[derive(Deserialize)]
struct ProjectItemChanges {
    field_value: Option<FieldValueChange>,
}

#[derive(Deserialize)]
struct FieldValueChange {
    field_node_id: Option<String>,
}

pub(super) fn project_item(payload: ProjectItemEventPayload) -> Result<Decoded, DecodeError> {
    let action = match payload.action.as_str() {
        "created" => ProjectItemAction::Created,
        "edited" => ProjectItemAction::Edited {
            field_node_id: payload
                .changes
                .and_then(|c| c.field_value)
                .and_then(|f| f.field_node_id),
        },
        "archived" => ProjectItemAction::Archived,
        "restored" => ProjectItemAction::Restored,
        "deleted" => ProjectItemAction::Deleted,
        _ => return Ok(Decoded::Ignored("project item action not handled")),
    };
    let item = payload.projects_v2_item;
    Ok(domain_event(
        payload.installation,
        payload.sender,
        Event::ProjectItem {
            action,
            item: ProjectItem {
                node_id: item.node_id,
                project_node_id: item.project_node_id,
                content_node_id: item.content_node_id,
                content_type: item.content_type,
            },
        },
    ))
}
