//! Forecasts of hand-checked graphs: exact starts and finishes.

use super::*;
use crate::domain::IssueStatus;

const T: i64 = 1_800_000_000_000;
const MIN: i64 = 60_000;

fn r(repo: &str, n: u64) -> IssueRef {
    IssueRef::new(repo.parse().unwrap(), n)
}

fn add(graph: &mut DependencyGraph, issue: &IssueRef, minutes: u64) {
    let mut node = IssueNode::new(issue.clone(), IssueStatus::Open).managed();
    node.weight = minutes;
    graph.upsert(node);
}

fn start(now: i64) -> Start {
    Start {
        running: Vec::new(),
        launches_from: now,
        launches_per_minute: CODEGEN_LAUNCHES_PER_MINUTE,
        now,
    }
}

fn at(forecast: &Forecast, issue: &IssueRef) -> (i64, i64) {
    let expected = forecast
        .of(issue)
        .unwrap_or_else(|| panic!("{issue} not forecast"));
    ((expected.start - T) / MIN, (expected.finish - T) / MIN)
}

/// a/x#1 (30 min) <- #2 (60) <- #3 (10); #4 (20) alone.
fn chain() -> DependencyGraph {
    let mut graph = DependencyGraph::new();
    for (n, minutes) in [(1, 30), (2, 60), (3, 10), (4, 20)] {
        add(&mut graph, &r("a/x", n), minutes);
    }
    graph.add_dependency(&r("a/x", 2), &r("a/x", 1)).unwrap();
    graph.add_dependency(&r("a/x", 3), &r("a/x", 2)).unwrap();
    graph
}

#[test]
fn two_agents_work_a_chain_and_a_loner_in_the_schedulers_order() {
    let forecast = forecast(&chain(), &Scheduler::new(2), &start(T));
    assert_eq!(at(&forecast, &r("a/x", 1)), (0, 30));
    assert_eq!(at(&forecast, &r("a/x", 4)), (0, 20));
    assert_eq!(at(&forecast, &r("a/x", 2)), (30, 90));
    assert_eq!(at(&forecast, &r("a/x", 3)), (90, 100));
    assert_eq!(forecast.finish, Some(T + 100 * MIN));
    assert_eq!(forecast.agent_ms, 120 * MIN);
    assert_eq!(forecast.agent_hours(), 2.0);
    assert_eq!(forecast.made_at, T);
}

#[test]
fn one_agent_takes_the_heaviest_chain_first() {
    let forecast = forecast(&chain(), &Scheduler::new(1), &start(T));
    assert_eq!(at(&forecast, &r("a/x", 1)), (0, 30));
    assert_eq!(at(&forecast, &r("a/x", 2)), (30, 90));
    // Then the longer of the two chains left: #4 (20 minutes) before #3 (10).
    assert_eq!(at(&forecast, &r("a/x", 4)), (90, 110));
    assert_eq!(at(&forecast, &r("a/x", 3)), (110, 120));
    assert_eq!(forecast.finish, Some(T + 120 * MIN));
}

#[test]
fn running_runs_end_at_their_expected_duration_and_late_ones_soon_after_now() {
    let mut graph = chain();
    graph.set_started(&r("a/x", 1), true);
    graph.set_started(&r("a/x", 4), true);
    let mut from = start(T);
    // #1 started 25 minutes ago (5 left); #4 started 50 minutes ago, 30 late: it is
    // given a tenth of its 20 minutes.
    from.running = vec![(r("a/x", 1), T - 25 * MIN), (r("a/x", 4), T - 50 * MIN)];
    let forecast = forecast(&graph, &Scheduler::new(2), &from);
    assert_eq!(at(&forecast, &r("a/x", 1)), (-25, 5));
    assert_eq!(at(&forecast, &r("a/x", 4)), (-50, 2));
    assert_eq!(at(&forecast, &r("a/x", 2)), (5, 65));
    assert_eq!(at(&forecast, &r("a/x", 3)), (65, 75));
    // What is left: 5 + 2 minutes of the running runs, then 70.
    assert_eq!(forecast.agent_ms, 77 * MIN);

    // A long run far behind still has a tenth of its duration to go.
    let mut graph = DependencyGraph::new();
    add(&mut graph, &r("a/x", 9), 300);
    graph.set_started(&r("a/x", 9), true);
    let mut from = start(T);
    from.running = vec![(r("a/x", 9), T - 600 * MIN)];
    let forecast = super::forecast(&graph, &Scheduler::new(2), &from);
    assert_eq!(at(&forecast, &r("a/x", 9)), (-600, 30));
}

#[test]
fn launches_keep_to_codegens_limit_and_wait_out_a_quota_pause() {
    let mut graph = DependencyGraph::new();
    for n in 1..=3 {
        add(&mut graph, &r("a/x", n), 10);
    }
    let mut from = start(T);
    from.launches_per_minute = 2;
    let forecast = super::forecast(&graph, &Scheduler::new(3), &from);
    let starts: Vec<i64> = (1..=3)
        .map(|n| forecast.of(&r("a/x", n)).unwrap().start - T)
        .collect();
    assert_eq!(starts, [0, 0, MIN]);

    from.launches_from = T + 15 * MIN;
    let forecast = super::forecast(&graph, &Scheduler::new(3), &from);
    assert_eq!(at(&forecast, &r("a/x", 1)), (15, 25));
    assert_eq!(at(&forecast, &r("a/x", 3)), (16, 26));
}

#[test]
fn what_the_bot_will_not_do_is_not_forecast() {
    let mut graph = chain();
    // #5 waits for an issue nobody manages; #6 is in a paused repository; #7 is held.
    add(&mut graph, &r("a/x", 5), 10);
    graph.upsert(IssueNode::new(r("a/x", 50), IssueStatus::Open));
    graph.add_dependency(&r("a/x", 5), &r("a/x", 50)).unwrap();
    add(&mut graph, &r("a/p", 6), 10);
    add(&mut graph, &r("a/x", 7), 10);
    graph.set_held(&r("a/x", 7), true);
    let mut scheduler = Scheduler::new(2);
    scheduler.paused.insert("a/p".parse().unwrap());
    let forecast = forecast(&graph, &scheduler, &start(T));
    for issue in [r("a/x", 5), r("a/x", 50), r("a/p", 6), r("a/x", 7)] {
        assert_eq!(forecast.of(&issue), None, "{issue}");
    }
    assert_eq!(forecast.finish, Some(T + 100 * MIN));
    assert_eq!(forecast.issues.len(), 4);
}

#[test]
fn an_umbrella_is_done_when_its_last_sub_issue_is() {
    let mut graph = DependencyGraph::new();
    add(&mut graph, &r("a/x", 1), 30);
    add(&mut graph, &r("a/x", 2), 45);
    let mut parent = IssueNode::new(r("a/x", 10), IssueStatus::Open).managed();
    parent.umbrella = true;
    graph.upsert(parent);
    add(&mut graph, &r("a/x", 11), 5);
    graph.add_dependency(&r("a/x", 10), &r("a/x", 1)).unwrap();
    graph.add_dependency(&r("a/x", 10), &r("a/x", 2)).unwrap();
    graph.add_dependency(&r("a/x", 11), &r("a/x", 10)).unwrap();
    let forecast = forecast(&graph, &Scheduler::new(2), &start(T));
    assert_eq!(at(&forecast, &r("a/x", 10)), (45, 45));
    assert_eq!(at(&forecast, &r("a/x", 11)), (45, 50));
    // The umbrella costs no agent time.
    assert_eq!(forecast.agent_ms, 80 * MIN);
}

#[test]
fn a_graph_with_nothing_to_do_has_no_finish() {
    let forecast = forecast(&DependencyGraph::new(), &Scheduler::new(2), &start(T));
    assert_eq!(forecast.finish, None);
    assert_eq!(forecast.agent_ms, 0);
    assert!(forecast.issues.is_empty());
}

#[test]
fn an_absurd_estimate_is_far_away_without_overflowing() {
    // `estimate:99999999999999999d` saturates the weight; the forecast still adds it to now.
    let mut graph = DependencyGraph::new();
    add(&mut graph, &r("a/x", 1), u64::MAX);
    add(&mut graph, &r("a/x", 2), 10);
    graph.add_dependency(&r("a/x", 2), &r("a/x", 1)).unwrap();
    let forecast = forecast(&graph, &Scheduler::new(1), &start(T));
    let first = forecast.of(&r("a/x", 1)).unwrap();
    assert_eq!(first.start, T);
    assert_eq!(first.finish, T + i64::MAX / 4);
    assert_eq!(forecast.of(&r("a/x", 2)).unwrap().start, first.finish);
}

#[test]
fn the_launch_limit_counts_the_last_minute_not_the_last_launch() {
    // Two launches a minute, three agents. #1 (1 min, #5 of 10 min behind it) and #2 start
    // at once, #3 a minute later (the limit). When #1 ends, #5 may start at once: of the
    // two launches before it, the older was a minute ago.
    let mut graph = DependencyGraph::new();
    for (n, minutes) in [(1, 1), (2, 5), (3, 5), (4, 5), (5, 10)] {
        add(&mut graph, &r("a/x", n), minutes);
    }
    graph.add_dependency(&r("a/x", 5), &r("a/x", 1)).unwrap();
    let mut from = start(T);
    from.launches_per_minute = 2;
    let forecast = forecast(&graph, &Scheduler::new(3), &from);
    assert_eq!(at(&forecast, &r("a/x", 1)), (0, 1));
    assert_eq!(at(&forecast, &r("a/x", 2)), (0, 5));
    assert_eq!(at(&forecast, &r("a/x", 3)), (1, 6));
    assert_eq!(at(&forecast, &r("a/x", 5)), (1, 11));
}
