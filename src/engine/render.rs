//! The graph as data: the JSON export of `plan --format json`. The Mermaid diagram people
//! read is a text, in [`super::texts`].

use serde::Serialize;

use super::DependencyGraph;
use crate::domain::IssueStatus;

/// The graph as data.
#[derive(Debug, Serialize)]
pub struct GraphExport {
    /// Every issue.
    pub issues: Vec<ExportedIssue>,
}

/// One issue of the export.
#[derive(Debug, Serialize)]
pub struct ExportedIssue {
    /// `owner/repo#N`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Its title, when known.
    pub title: Option<String>,
    /// Its state.
    pub state: IssueStatus,
    /// Whether the bot manages it.
    pub managed: bool,
    /// Whether an agent was started for it.
    pub started: bool,
    /// What it depends on, sorted.
    pub depends_on: Vec<String>,
}

/// The whole graph as a JSON-ready export, issues sorted.
pub fn to_json(graph: &DependencyGraph) -> GraphExport {
    let mut issues: Vec<_> = graph
        .nodes()
        .map(|node| ExportedIssue {
            reference: node.issue.to_string(),
            title: node.title.clone(),
            state: node.state,
            managed: node.managed,
            started: node.started,
            depends_on: graph
                .blockers(&node.issue)
                .iter()
                .map(|b| b.issue.to_string())
                .collect(),
        })
        .collect();
    issues.sort_by(|a, b| a.reference.cmp(&b.reference));
    GraphExport { issues }
}
