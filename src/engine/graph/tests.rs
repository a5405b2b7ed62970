use super::*;

fn r(text: &str) -> IssueRef {
    let (repo, number) = text.split_once('#').unwrap();
    let repo = if repo.is_empty() { "acme/api" } else { repo };
    IssueRef::new(repo.parse().unwrap(), number.parse().unwrap())
}

fn set(refs: &[&str]) -> BTreeSet<IssueRef> {
    refs.iter().map(|s| r(s)).collect()
}

fn names(refs: impl IntoIterator<Item = IssueRef>) -> Vec<String> {
    refs.into_iter().map(|r| r.to_string()).collect()
}

fn managed_open(text: &str) -> IssueNode {
    IssueNode::new(r(text), IssueStatus::Open).managed()
}

/// #1 <- #2 <- #3, and #4 alone; all managed and open.
fn chain() -> DependencyGraph {
    let mut graph = DependencyGraph::new();
    for n in ["#1", "#2", "#3", "#4"] {
        graph.upsert(managed_open(n));
    }
    graph.set_dependencies(&r("#2"), &set(&["#1"])).unwrap();
    graph.set_dependencies(&r("#3"), &set(&["#2"])).unwrap();
    graph
}

#[test]
fn ready_follows_blockers_closing_and_reopening() {
    let mut graph = chain();
    assert_eq!(names(graph.ready()), ["acme/api#1", "acme/api#4"]);
    graph.set_state(&r("#1"), IssueStatus::ClosedCompleted);
    assert_eq!(names(graph.ready()), ["acme/api#2", "acme/api#4"]);
    graph.set_state(&r("#1"), IssueStatus::Open);
    assert_eq!(names(graph.ready()), ["acme/api#1", "acme/api#4"]);
}

#[test]
fn a_cycle_is_refused_with_its_path_and_the_graph_is_unchanged() {
    let mut graph = chain();
    let before = (graph.size(), graph.dependencies().len(), graph.ready());
    let err = graph
        .set_dependencies(&r("#1"), &set(&["#3", "#9"]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "dependency cycle: acme/api#1 -> acme/api#3 -> acme/api#2 -> acme/api#1"
    );
    assert_eq!(
        (graph.size(), graph.dependencies().len(), graph.ready()),
        before
    );
    assert!(
        !graph.contains(&r("#9")),
        "a node of the refused update stayed"
    );

    let err = graph.add_dependency(&r("#1"), &r("#2")).unwrap_err();
    assert_eq!(names(err.path), ["acme/api#1", "acme/api#2", "acme/api#1"]);
    assert!(
        graph.add_dependency(&r("#4"), &r("#4")).is_err(),
        "an issue depended on itself"
    );
}

#[test]
fn a_batch_is_added_whole_or_not_at_all() {
    let mut graph = chain();
    let before = graph.size();
    let batch = vec![
        (managed_open("#5"), set(&["#4"])),
        (managed_open("#6"), set(&["#5"])),
        (managed_open("#1"), set(&["#6", "#3"])), // closes #1 -> #3 -> #2 -> #1
    ];
    assert!(graph.add_batch(batch).is_err());
    assert_eq!(graph.size(), before);
    assert!(!graph.contains(&r("#5")));

    let batch = vec![
        (managed_open("#5"), set(&["#4"])),
        (managed_open("#6"), set(&["#5", "#3"])),
    ];
    graph.add_batch(batch).unwrap();
    assert_eq!(
        names(graph.blockers(&r("#6")).into_iter().map(|b| b.issue)),
        ["acme/api#3", "acme/api#5"]
    );
}

#[test]
fn edits_keep_progress() {
    let mut graph = chain();
    graph.set_started(&r("#1"), true);
    graph.set_state(&r("#1"), IssueStatus::ClosedCompleted);
    graph.set_started(&r("#2"), true);
    // #3's body is edited to depend on #4 as well; #2 keeps running, #1 stays done.
    graph
        .set_dependencies(&r("#3"), &set(&["#2", "#4"]))
        .unwrap();
    assert!(graph.get(&r("#2")).unwrap().started);
    assert_eq!(
        graph.get(&r("#1")).unwrap().state,
        IssueStatus::ClosedCompleted
    );
    assert_eq!(names(graph.ready()), ["acme/api#4"]);
    // Upserting fresher data about #2 does not forget that it was started.
    graph.upsert(managed_open("#2").titled("Second"));
    assert!(graph.get(&r("#2")).unwrap().started);
    assert_eq!(
        graph.get(&r("#2")).unwrap().title.as_deref(),
        Some("Second")
    );
    // Dropping a dependency unblocks.
    graph.set_dependencies(&r("#3"), &set(&[])).unwrap();
    assert_eq!(names(graph.ready()), ["acme/api#3", "acme/api#4"]);
}

#[test]
fn not_planned_or_deleted_blockers_keep_dependents_blocked_and_say_why() {
    let mut graph = chain();
    graph.set_state(&r("#1"), IssueStatus::ClosedNotPlanned);
    assert_eq!(names(graph.ready()), ["acme/api#4"]);
    let blockers = graph.blockers(&r("#2"));
    assert_eq!(blockers[0].blocks_because(), Some("closed as not planned"));
    graph.set_state(&r("#1"), IssueStatus::Deleted);
    assert_eq!(
        graph.blockers(&r("#2"))[0].blocks_because(),
        Some("deleted")
    );
    assert_eq!(names(graph.ready()), ["acme/api#4"]);
    graph.set_state(&r("#1"), IssueStatus::ClosedCompleted);
    assert_eq!(graph.blockers(&r("#2"))[0].blocks_because(), None);
    assert_eq!(names(graph.ready()), ["acme/api#2", "acme/api#4"]);
}

#[test]
fn blockers_in_other_repositories_are_nodes_too() {
    let mut graph = chain();
    graph.add_dependency(&r("#4"), &r("acme/lib#7")).unwrap();
    assert_eq!(
        graph.get(&r("acme/lib#7")).unwrap().state,
        IssueStatus::Unknown
    );
    assert!(!graph.get(&r("acme/lib#7")).unwrap().managed);
    assert_eq!(names(graph.ready()), ["acme/api#1"]);
    graph.set_state(&r("acme/lib#7"), IssueStatus::ClosedCompleted);
    assert_eq!(names(graph.ready()), ["acme/api#1", "acme/api#4"]);
    assert_eq!(
        names(graph.component(&r("#4"))),
        ["acme/api#4", "acme/lib#7"]
    );
}

#[test]
fn dependents_critical_paths_and_order() {
    let mut graph = chain();
    graph.add_dependency(&r("#5"), &r("#1")).unwrap();
    assert_eq!(
        names(graph.dependents(&r("#1"))),
        ["acme/api#2", "acme/api#3", "acme/api#5"]
    );
    assert_eq!(graph.critical_path_len(&r("#1")), 2);
    assert_eq!(graph.critical_path_len(&r("#4")), 0);
    let lens = graph.critical_path_lens();
    assert_eq!((lens[&r("#1")], lens[&r("#2")], lens[&r("#3")]), (2, 1, 0));
    let order = graph.topological_order();
    let at = |s: &str| order.iter().position(|x| *x == r(s)).unwrap();
    assert!(at("#1") < at("#2") && at("#2") < at("#3") && at("#1") < at("#5"));
    // A completed dependent no longer counts in the chain.
    graph.set_state(&r("#3"), IssueStatus::ClosedCompleted);
    assert_eq!(graph.critical_path_len(&r("#1")), 1);
}

#[test]
fn waves_start_the_longest_chain_first_within_the_pool() {
    let mut graph = chain();
    graph.upsert(managed_open("#5"));
    // Pool of two: #1 (chain of 2 behind it) goes before #4 and #5 (nothing behind).
    let waves = graph.waves(2);
    let waves: Vec<Vec<String>> = waves.into_iter().map(names).collect();
    assert_eq!(
        waves,
        [
            vec!["acme/api#1", "acme/api#4"],
            vec!["acme/api#2", "acme/api#5"],
            vec!["acme/api#3"],
        ]
    );
}

#[test]
fn building_from_scratch_matches_incremental_updates_and_finds_cycles() {
    let nodes = ["#1", "#2", "#3"].map(managed_open);
    let deps = vec![
        (r("#2"), r("#1")),
        (r("#3"), r("#2")),
        (r("#3"), r("acme/lib#9")),
    ];
    let graph = DependencyGraph::build(nodes.clone(), deps.clone()).unwrap();
    assert_eq!(names(graph.ready()), ["acme/api#1"]);
    assert_eq!(graph.size(), (4, 3));

    let mut cyclic = deps;
    cyclic.push((r("#1"), r("#3")));
    let err = DependencyGraph::build(nodes, cyclic).unwrap_err();
    assert_eq!(err.path.len(), 4, "{err}");
    assert_eq!(err.path.first(), err.path.last());
}

#[test]
fn mermaid_and_json_show_every_state() {
    let mut graph = chain();
    graph.upsert(managed_open("#1").titled("Schema \"v2\""));
    graph.set_state(&r("#1"), IssueStatus::ClosedCompleted);
    graph.set_started(&r("#2"), true);
    graph.add_dependency(&r("#4"), &r("acme/lib#7")).unwrap();
    graph.add_dependency(&r("#4"), &r("acme/lib#8")).unwrap();
    graph.set_state(&r("acme/lib#8"), IssueStatus::ClosedNotPlanned);
    insta::assert_snapshot!(crate::engine::to_mermaid(&graph, None));
    let component = graph.component(&r("#4"));
    insta::assert_snapshot!(
        "component",
        crate::engine::to_mermaid(&graph, Some(&component))
    );
    insta::assert_snapshot!(
        "json",
        serde_json::to_string_pretty(&crate::engine::to_json(&graph)).unwrap()
    );
}

#[test]
fn started_unfinished_follows_every_agent_change_without_a_scan() {
    let mut graph = chain();
    let working = |graph: &DependencyGraph| {
        let mut found: Vec<String> = graph
            .started_unfinished()
            .map(|n| n.issue.to_string())
            .collect();
        found.sort();
        found
    };
    graph.set_started(&r("#1"), true);
    graph.set_agent(&r("#2"), 1, true, false);
    assert_eq!(working(&graph), ["acme/api#1", "acme/api#2"]);

    graph.set_agent(&r("#1"), 1, true, true);
    graph.set_agent(&r("#2"), 1, false, false);
    assert!(
        working(&graph).is_empty(),
        "succeeded, and cleared for a retry"
    );

    graph.set_started(&r("#3"), true);
    let before = graph.clone();
    let refused = graph.set_dependencies(&r("#9"), &set(&["#3", "#9"]));
    assert!(refused.is_err());
    assert!(
        !graph.contains(&r("#9")),
        "the refused issue's node is rolled back"
    );
    assert_eq!(graph.size(), before.size());
    assert_eq!(working(&graph), working(&before));
    let rebuilt: Vec<String> = graph
        .nodes()
        .filter(|n| n.started && !n.agent_done)
        .map(|n| n.issue.to_string())
        .collect();
    assert_eq!(working(&graph), rebuilt, "the same as a scan");
}
