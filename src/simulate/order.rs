//! Whether a task's dependencies exist when it appears. An issue can refer only to issues
//! there are: the file's tasks exist from the start, a discovered one from the moment its
//! discoverer's run reaches it. So a task of the file may depend only on the file's tasks,
//! and a discovered task on those and on the tasks that appear before it in every run of
//! the simulation, whatever the scheduler, the agents and the failures do.

use super::SimError;
use super::graph::Task;

/// Refuses the first dependency that may not exist yet when its dependent appears.
pub(super) fn refuse_deps_not_yet_there(tasks: &[Task]) -> Result<(), SimError> {
    // Built on first need: most graphs have no dependency between two discovered tasks.
    let mut events: Option<Events> = None;
    for (index, task) in tasks.iter().enumerate() {
        for &dep in &task.deps {
            if tasks[dep].found.is_none() {
                continue;
            }
            let there = match task.found {
                None => false,
                // It appears during its discoverer's run, so after the discoverer.
                Some(found) if found.by == dep => true,
                Some(_) => events
                    .get_or_insert_with(|| Events::new(tasks))
                    .before(Events::appear(dep), Events::appear(index)),
            };
            if !there {
                return Err(SimError::NotThereYet {
                    task: task.name.clone(),
                    dependency: tasks[dep].name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// What happens before what in any run: the start of each task's first run, the success
/// of its last, and the appearance of each discovered task, with an edge from each event
/// to one that cannot come earlier.
struct Events {
    next: Vec<Vec<usize>>,
}

impl Events {
    fn start(task: usize) -> usize {
        3 * task
    }

    fn success(task: usize) -> usize {
        3 * task + 1
    }

    fn appear(task: usize) -> usize {
        3 * task + 2
    }

    fn new(tasks: &[Task]) -> Self {
        let mut next = vec![Vec::new(); 3 * tasks.len()];
        for (index, task) in tasks.iter().enumerate() {
            next[Self::start(index)].push(Self::success(index));
            // The bot launches a task once each dependency succeeded (its agent done)...
            for &dep in &task.deps {
                next[Self::success(dep)].push(Self::start(index));
            }
            // ... and once its issue exists.
            if task.found.is_some() {
                next[Self::appear(index)].push(Self::start(index));
            }
            // A run meets its discoveries in order, after its launch and before it ends
            // (a retry discovers only what is left, still in order).
            let mut previous = Self::start(index);
            for &found in &task.discovers {
                next[previous].push(Self::appear(found));
                next[Self::appear(found)].push(Self::success(index));
                previous = Self::appear(found);
            }
        }
        Self { next }
    }

    /// Whether `from` comes no later than `to` in every run (a path leads from one to the
    /// other; events at one instant are handled in this order too).
    fn before(&self, from: usize, to: usize) -> bool {
        let mut seen = vec![false; self.next.len()];
        let mut stack = vec![from];
        while let Some(event) = stack.pop() {
            if event == to {
                return true;
            }
            if !std::mem::replace(&mut seen[event], true) {
                stack.extend(&self.next[event]);
            }
        }
        false
    }
}
