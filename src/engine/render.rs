//! The graph as people read it: a Mermaid flowchart (GitHub renders it in comments) and a
//! JSON export.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::Serialize;

use super::DependencyGraph;
use crate::domain::{IssueRef, IssueStatus};

/// A Mermaid `flowchart` of `issues` (all of the graph when `None`): one node per issue
/// styled by state, an arrow from each blocker to what it blocks.
pub fn to_mermaid(graph: &DependencyGraph, issues: Option<&BTreeSet<IssueRef>>) -> String {
    let mut shown: Vec<_> = graph
        .nodes()
        .filter(|node| issues.is_none_or(|set| set.contains(&node.issue)))
        .collect();
    shown.sort_by(|a, b| a.issue.cmp(&b.issue));
    let ids: std::collections::HashMap<&IssueRef, usize> = shown
        .iter()
        .enumerate()
        .map(|(id, node)| (&node.issue, id))
        .collect();
    let id_of = |issue: &IssueRef| ids.get(issue).copied();
    let mut out = String::from("flowchart TD\n");
    for (id, node) in shown.iter().enumerate() {
        let label = match &node.title {
            Some(title) => format!("{}<br/>{}", node.issue, escape(title)),
            None => node.issue.to_string(),
        };
        let class = match (node.state, node.started) {
            (IssueStatus::Open, _) if node.held => "held",
            (IssueStatus::Open, true) => "running",
            (IssueStatus::Open, false) if node.managed => "open",
            (IssueStatus::Open, false) => "unmanaged",
            (IssueStatus::ClosedCompleted, _) => "done",
            (IssueStatus::ClosedNotPlanned, _) => "notplanned",
            (IssueStatus::Deleted, _) => "deleted",
            (IssueStatus::Unknown, _) => "unknown",
        };
        let _ = writeln!(out, "  n{id}[\"{label}\"]:::{class}");
    }
    let mut edges: Vec<_> = graph
        .dependencies()
        .into_iter()
        .filter_map(|(issue, blocker)| Some((id_of(&blocker)?, id_of(&issue)?)))
        .collect();
    edges.sort();
    for (from, to) in edges {
        let _ = writeln!(out, "  n{from} --> n{to}");
    }
    out.push_str(
        "  classDef open fill:#ddf4ff,stroke:#0969da\n\
         \x20 classDef running fill:#fff8c5,stroke:#9a6700\n\
         \x20 classDef done fill:#dafbe1,stroke:#1a7f37\n\
         \x20 classDef notplanned fill:#eaeef2,stroke:#57606a,stroke-dasharray:4\n\
         \x20 classDef deleted fill:#ffebe9,stroke:#cf222e,stroke-dasharray:4\n\
         \x20 classDef unknown fill:#ffffff,stroke:#8c959f,stroke-dasharray:2\n\
         \x20 classDef unmanaged fill:#f6f8fa,stroke:#8c959f\n\
         \x20 classDef held fill:#ffebe9,stroke:#cf222e,stroke-width:2px\n",
    );
    out
}

/// Mermaid labels are quoted; quotes and angle brackets inside them are written as entities.
fn escape(text: &str) -> String {
    text.replace('&', "#amp;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

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
