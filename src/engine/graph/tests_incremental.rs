//! The structures the graph keeps up to date as it changes (blocker counts, critical work,
//! the ordered ready set, what joined it, what became satisfied) against the same worked
//! out from scratch, after random sequences of changes.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

use proptest::prelude::*;

use super::*;

/// Few issues in two repositories, so that random changes meet each other (and cycles).
fn issue(n: u8) -> IssueRef {
    let repo = if n.is_multiple_of(3) {
        "acme/web"
    } else {
        "acme/api"
    };
    IssueRef::new(repo.parse().unwrap(), u64::from(n))
}

const STATES: [IssueStatus; 5] = [
    IssueStatus::Open,
    IssueStatus::Open,
    IssueStatus::ClosedCompleted,
    IssueStatus::ClosedNotPlanned,
    IssueStatus::Unknown,
];

const PRIORITIES: [Priority; 4] = [
    Priority::High,
    Priority::Medium,
    Priority::Unset,
    Priority::Low,
];

#[derive(Debug, Clone)]
enum Change {
    Upsert {
        n: u8,
        state: usize,
        managed: bool,
        weight: u64,
        priority: usize,
        umbrella: bool,
        pr_open: bool,
    },
    State(u8, usize),
    Agent(u8, u32, bool, bool),
    Held(u8, bool),
    Managed(u8, bool),
    Started(u8, bool),
    Depend(u8, u8),
    Undepend(u8, u8),
    Dependencies(u8, Vec<u8>),
    Batch(Vec<(u8, Vec<u8>)>),
    /// The engine asks what joined the queue and what became satisfied.
    Take,
}

fn change() -> impl Strategy<Value = Change> {
    let n = 1..10_u8;
    prop_oneof![
        (
            n.clone(),
            0..STATES.len(),
            any::<bool>(),
            0..4_u64,
            0..PRIORITIES.len(),
            prop::bool::weighted(0.1),
            any::<bool>()
        )
            .prop_map(|(n, state, managed, weight, priority, umbrella, pr_open)| {
                Change::Upsert {
                    n,
                    state,
                    managed,
                    weight: weight * 30,
                    priority,
                    umbrella,
                    pr_open,
                }
            }),
        (n.clone(), 0..STATES.len()).prop_map(|(n, s)| Change::State(n, s)),
        (n.clone(), 0..3_u32, any::<bool>(), any::<bool>())
            .prop_map(|(n, a, s, d)| Change::Agent(n, a, s, d)),
        (n.clone(), prop::bool::weighted(0.2)).prop_map(|(n, h)| Change::Held(n, h)),
        (n.clone(), any::<bool>()).prop_map(|(n, m)| Change::Managed(n, m)),
        (n.clone(), any::<bool>()).prop_map(|(n, s)| Change::Started(n, s)),
        (n.clone(), n.clone()).prop_map(|(a, b)| Change::Depend(a, b)),
        (n.clone(), n.clone()).prop_map(|(a, b)| Change::Undepend(a, b)),
        (n.clone(), prop::collection::vec(n.clone(), 0..4))
            .prop_map(|(a, bs)| Change::Dependencies(a, bs)),
        prop::collection::vec((n.clone(), prop::collection::vec(n, 0..3)), 1..3)
            .prop_map(Change::Batch),
        Just(Change::Take),
    ]
}

fn apply(graph: &mut DependencyGraph, change: &Change) {
    let refs = |ns: &[u8]| -> BTreeSet<IssueRef> { ns.iter().map(|n| issue(*n)).collect() };
    match change {
        Change::Upsert {
            n,
            state,
            managed,
            weight,
            priority,
            umbrella,
            pr_open,
        } => {
            let mut node = IssueNode::new(issue(*n), STATES[*state]);
            node.managed = *managed;
            node.weight = *weight;
            node.priority = PRIORITIES[*priority];
            node.umbrella = *umbrella;
            node.pr_open = *pr_open;
            graph.upsert(node);
        }
        Change::State(n, state) => graph.set_state(&issue(*n), STATES[*state]),
        Change::Agent(n, attempts, started, done) => {
            graph.set_agent(&issue(*n), *attempts, *started, *done)
        }
        Change::Held(n, held) => graph.set_held(&issue(*n), *held),
        Change::Managed(n, managed) => graph.set_managed(&issue(*n), *managed),
        Change::Started(n, started) => graph.set_started(&issue(*n), *started),
        Change::Depend(a, b) => {
            let _ = graph.add_dependency(&issue(*a), &issue(*b));
        }
        Change::Undepend(a, b) => {
            graph.remove_dependency(&issue(*a), &issue(*b));
        }
        Change::Dependencies(a, bs) => {
            let mut blockers = refs(bs);
            blockers.remove(&issue(*a));
            let _ = graph.set_dependencies(&issue(*a), &blockers);
        }
        Change::Batch(batch) => {
            let batch = batch
                .iter()
                .map(|(a, bs)| {
                    let mut blockers = refs(bs);
                    blockers.remove(&issue(*a));
                    (
                        IssueNode::new(issue(*a), IssueStatus::Open).managed(),
                        blockers,
                    )
                })
                .collect();
            let _ = graph.add_batch(batch);
        }
        Change::Take => {}
    }
}

/// What the graph keeps, worked out from its nodes and edges alone.
struct FromScratch {
    unsatisfied: HashMap<IssueRef, usize>,
    satisfied: HashSet<IssueRef>,
    work: HashMap<IssueRef, u64>,
    order: Vec<IssueRef>,
    working: BTreeSet<IssueRef>,
}

fn from_scratch(graph: &DependencyGraph) -> FromScratch {
    let order = graph.topological_order();
    let pairs = graph.dependencies();
    let mut blockers: HashMap<&IssueRef, Vec<&IssueRef>> = HashMap::new();
    let mut dependents: HashMap<&IssueRef, Vec<&IssueRef>> = HashMap::new();
    for (issue, blocker) in &pairs {
        blockers.entry(issue).or_default().push(blocker);
        dependents.entry(blocker).or_default().push(issue);
    }
    let mut unsatisfied = HashMap::new();
    let mut satisfied = HashSet::new();
    for issue in &order {
        let node = graph.get(issue).unwrap();
        let open_blockers = blockers.get(issue).map_or(0, |bs| {
            bs.iter().filter(|b| !satisfied.contains(**b)).count()
        });
        let early = match graph.unblock_on {
            UnblockOn::IssueClosed => false,
            UnblockOn::AgentCompleted => node.agent_done,
            UnblockOn::PrOpened => node.agent_done || node.pr_open,
        };
        if node.state.satisfies()
            || (early && node.state == IssueStatus::Open && open_blockers == 0)
        {
            satisfied.insert(issue.clone());
        }
        unsatisfied.insert(issue.clone(), open_blockers);
    }
    let mut work: HashMap<IssueRef, u64> = HashMap::new();
    for issue in order.iter().rev() {
        let behind = dependents
            .get(issue)
            .into_iter()
            .flatten()
            .filter(|d| !satisfied.contains(**d))
            .map(|d| work[*d])
            .max()
            .unwrap_or(0);
        let weight = graph.get(issue).unwrap().weight;
        work.insert(issue.clone(), weight.saturating_add(behind));
    }
    let mut ready: Vec<(Reverse<u64>, Priority, IssueRef)> = order
        .iter()
        .filter(|issue| {
            let node = graph.get(issue).unwrap();
            node.managed
                && node.state == IssueStatus::Open
                && !node.started
                && !node.held
                && !node.umbrella
                && unsatisfied[*issue] == 0
        })
        .map(|issue| {
            let priority = graph.get(issue).unwrap().priority;
            (Reverse(work[issue]), priority, issue.clone())
        })
        .collect();
    ready.sort();
    let working = graph
        .nodes()
        .filter(|n| n.started && !n.agent_done)
        .map(|n| n.issue.clone())
        .collect();
    FromScratch {
        unsatisfied,
        satisfied,
        work,
        order: ready.into_iter().map(|(_, _, issue)| issue).collect(),
        working,
    }
}

fn unblock_on() -> impl Strategy<Value = UnblockOn> {
    prop_oneof![
        Just(UnblockOn::IssueClosed),
        Just(UnblockOn::AgentCompleted),
        Just(UnblockOn::PrOpened),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn what_the_graph_keeps_equals_a_computation_from_scratch(
        unblock_on in unblock_on(),
        changes in prop::collection::vec(change(), 1..40),
    ) {
        let mut graph = DependencyGraph::with_unblock_on(unblock_on);
        let mut ready_at_take: BTreeSet<IssueRef> = BTreeSet::new();
        let mut satisfied_at_take: HashSet<IssueRef> = HashSet::new();
        let mut known_at_take: HashSet<IssueRef> = HashSet::new();
        for change in &changes {
            apply(&mut graph, change);
            let scratch = from_scratch(&graph);
            for node in graph.nodes() {
                let issue = &node.issue;
                prop_assert_eq!(node.unsatisfied, scratch.unsatisfied[issue], "unsatisfied {}", issue);
                prop_assert_eq!(node.work(), scratch.work[issue], "work of {} after {:?}", issue, change);
                prop_assert_eq!(graph.is_satisfied(issue), scratch.satisfied.contains(issue));
            }
            let order: Vec<IssueRef> = graph.launch_order().cloned().collect();
            prop_assert_eq!(&order, &scratch.order, "launch order after {:?}", change);
            let ready: BTreeSet<IssueRef> = order.iter().cloned().collect();
            prop_assert_eq!(graph.ready(), ready.iter().cloned().collect::<Vec<_>>());
            let working: BTreeSet<IssueRef> =
                graph.started_unfinished().map(|n| n.issue.clone()).collect();
            prop_assert_eq!(&working, &scratch.working);
            prop_assert!(graph.recount.is_empty(), "nothing is left to count between changes");
            if matches!(change, Change::Take) {
                let joined: BTreeSet<IssueRef> = graph.take_joined().into_iter().collect();
                let expected: BTreeSet<IssueRef> =
                    ready.difference(&ready_at_take).cloned().collect();
                prop_assert_eq!(joined, expected);
                ready_at_take = ready;
                let flipped: HashSet<IssueRef> =
                    graph.take_satisfaction_changes().into_iter().collect();
                // A node is born satisfied or not; only an edge added later shows it to a
                // dependent, and whoever adds the edge marks that dependent.
                let net: HashSet<IssueRef> = scratch
                    .satisfied
                    .symmetric_difference(&satisfied_at_take)
                    .filter(|issue| known_at_take.contains(*issue))
                    .cloned()
                    .collect();
                prop_assert!(flipped.is_superset(&net), "{flipped:?} misses some of {net:?}");
                satisfied_at_take = scratch.satisfied;
                known_at_take = graph.nodes().map(|n| n.issue.clone()).collect();
            }
        }
    }

    #[test]
    fn a_graph_rebuilt_carries_on_from_the_one_it_replaces(
        changes in prop::collection::vec(change(), 1..30),
        more in prop::collection::vec(change(), 0..10),
    ) {
        let mut graph = DependencyGraph::new();
        for change in &changes {
            apply(&mut graph, change);
        }
        graph.take_joined();
        for change in &more {
            apply(&mut graph, change);
        }
        let mut nodes: Vec<IssueNode> = graph.nodes().cloned().collect();
        nodes.sort_by(|a, b| a.issue.cmp(&b.issue));
        let mut rebuilt = DependencyGraph::build(nodes, graph.dependencies()).unwrap();
        rebuilt.carry_on_from(&graph);
        let mut expected = graph.take_joined();
        let mut joined = rebuilt.take_joined();
        expected.sort();
        joined.sort();
        prop_assert_eq!(joined, expected);
    }
}
