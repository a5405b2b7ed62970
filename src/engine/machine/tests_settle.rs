//! Settling once for inputs that belong together (a batch of deliveries and the answers
//! to their reads): the same launches as settling after each input, and no passing status.

use std::collections::VecDeque;

use super::*;

#[test]
fn handling_without_settling_launches_nothing_until_the_settle() {
    let mut world = World::new();

    let mut decisions = Vec::new();
    let mut inputs = VecDeque::from([labeled_by(&writer(), labelled(1))]);
    while let Some(input) = inputs.pop_front() {
        let decided = world.engine.handle_unsettled(input.clone(), world.now);
        for decision in &decided {
            inputs.extend(world.answers(decision, &input));
        }
        decisions.extend(decided);
    }

    assert!(world.tracked(1).managed, "handled: the issue is managed");
    assert_eq!(launches(&decisions), vec![], "{:#?}", names(&decisions));
    assert_eq!(statuses(&decisions, 1), vec![]);
    let settled = world.engine.settle(world.now);
    assert_eq!(launches(&settled), vec![(1, 1)]);
    assert_eq!(
        world.engine.settle(world.now),
        vec![],
        "a second settle has nothing left to decide"
    );
}

/// The batch both worlds are given: #1 waits for #2, #2 and #3 are ready, #4 is labelled by
/// someone who may not start agents.
fn batch() -> Vec<Input> {
    vec![
        labeled_by(&writer(), issue(1, &["codegen"], "Depends on #2")),
        labeled_by(&writer(), labelled(2)),
        labeled_by(&writer(), labelled(3)),
        labeled_by(&reader(), labelled(4)),
    ]
}

#[test]
fn a_batch_settled_once_decides_the_launches_of_settling_after_each_input_and_one_status_each() {
    let mut each = World::new();
    each.issues.insert(r(2), open_snapshot(2));
    let mut per_input = Vec::new();
    for input in batch() {
        per_input.extend(each.run(input));
    }
    let mut once = World::new();
    once.issues.insert(r(2), open_snapshot(2));

    let batched = once.run_settling_once(batch());

    assert_eq!(launches(&batched), launches(&per_input));
    assert_eq!(launches(&batched), vec![(2, 1), (3, 1)]);
    for n in 1..=4 {
        let published = statuses(&batched, n);
        assert!(
            published.len() <= 1,
            "#{n} is published once at most: {published:#?}"
        );
        // Settling after each input may publish a status more than once (#1 learns its
        // expected start when #2 is managed), so labels may have been set earlier: the
        // last comment is the same.
        assert_eq!(
            published.last().map(|s| &s.body),
            statuses(&per_input, n).last().map(|s| &s.body),
            "#{n} ends with the same status"
        );
        assert_eq!(once.tracked(n).managed, each.tracked(n).managed, "#{n}");
    }
}
