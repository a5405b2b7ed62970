//! The dependency graph as GitHub shows it: a Mermaid flowchart (GitHub renders it in
//! comments), and the reply to `graph` that carries one.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

use crate::domain::{IssueRef, IssueStatus};
use crate::engine::DependencyGraph;

/// The reply to `graph`: the Mermaid diagram of `component` (the issue's connected part of
/// `graph`), or a sentence when the issue stands alone.
pub fn graph_reply(graph: &DependencyGraph, component: &BTreeSet<IssueRef>) -> String {
    if component.len() <= 1 {
        return "This issue has no dependencies and nothing depends on it.".into();
    }
    format!("```mermaid\n{}```", to_mermaid(graph, Some(component)))
}

/// A Mermaid `flowchart` of `issues` (all of the graph when `None`): one node per issue
/// styled by state, an arrow from each blocker to what it blocks.
pub fn to_mermaid(graph: &DependencyGraph, issues: Option<&BTreeSet<IssueRef>>) -> String {
    let mut shown: Vec<_> = graph
        .nodes()
        .filter(|node| issues.is_none_or(|set| set.contains(&node.issue)))
        .collect();
    shown.sort_by(|a, b| a.issue.cmp(&b.issue));
    let ids: HashMap<&IssueRef, usize> = shown
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::IssueNode;

    fn r(text: &str) -> IssueRef {
        text.parse().unwrap()
    }

    #[test]
    fn the_graph_reply_is_a_mermaid_block_of_the_component() {
        let mut graph = DependencyGraph::new();
        for issue in ["acme/api#1", "acme/api#2", "acme/api#3"] {
            graph.upsert(IssueNode::new(r(issue), IssueStatus::Open).managed());
        }
        graph
            .add_dependency(&r("acme/api#2"), &r("acme/api#1"))
            .unwrap();
        let component = graph.component(&r("acme/api#2"));
        insta::assert_snapshot!(graph_reply(&graph, &component));
        let alone = graph.component(&r("acme/api#3"));
        assert_eq!(
            graph_reply(&graph, &alone),
            "This issue has no dependencies and nothing depends on it."
        );
    }
}
