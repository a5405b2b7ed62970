//! The simulated repository as GitHub shows it: the writer's deliveries, the issues as a
//! read finds them, and the facts the engine asks for.

use super::{EPOCH_MS, ID, World};
use crate::domain::{Actor, IssueRef, IssueSnapshot, IssueStatus, Permission, User};
use crate::engine::machine::{Facts, Input};
use crate::events::{
    CloseReason, Comment, CommentAction, DomainEvent, Event, Issue, IssueAction, IssueState,
};

impl World<'_> {
    /// The writer's `command verb` comment on task `index`'s issue.
    pub(super) fn comment(&mut self, index: usize, verb: &str) -> Input {
        self.comments += 1;
        let comment = Comment {
            id: self.comments,
            body: format!("{} {verb}", self.command),
            author: self.writer.clone(),
            via_app: None,
        };
        self.delivery(Event::IssueComment {
            action: CommentAction::Created,
            issue: self.issue(index),
            comment,
        })
    }

    /// `action` happened to task `index`'s issue, by the writer.
    pub(super) fn issue_event(&self, index: usize, action: IssueAction) -> Input {
        self.delivery(Event::Issue {
            action,
            issue: self.issue(index),
        })
    }

    fn delivery(&self, kind: Event) -> Input {
        Input::Delivery(Box::new(DomainEvent {
            installation: Some(ID),
            sender: Some(self.writer.clone()),
            kind,
        }))
    }

    /// Task `index`'s issue as a delivery shows it now (it exists: the file's tasks from
    /// the start, a discovered one once it appeared).
    fn issue(&self, index: usize) -> Issue {
        let snapshot = self.snapshot(index);
        let number = snapshot.reference.number;
        // A discovered issue is as old as its discovery.
        let opened =
            chrono::DateTime::from_timestamp_millis(EPOCH_MS + self.opened_ms[index] as i64)
                .map_or_else(
                    || "2026-01-01T00:00:00Z".to_owned(),
                    |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                );
        Issue {
            id: number,
            node_id: format!("I_sim{number}"),
            html_url: format!("https://github.com/{}/issues/{number}", self.repo),
            title: snapshot.title,
            body: snapshot.body,
            state: if self.closed[index] {
                IssueState::Closed(CloseReason::Completed)
            } else {
                IssueState::Open
            },
            labels: snapshot.labels,
            author: Some(self.writer.clone()),
            is_pull_request: false,
            created_at: opened,
            open_blockers: None,
            sub_issues: Some(NO_SUB_ISSUES),
            via_app: None,
            reference: snapshot.reference,
        }
    }

    /// The issue number of task `index`, which exists.
    fn number(&self, index: usize) -> u64 {
        self.numbers[index]
            .expect("a task's dependencies exist before it appears (checked by order.rs)")
    }

    /// Task `index`'s issue as reading it finds it now: titled by the task, its
    /// dependencies in its body (`Depends on #2, #5.`), the trigger label once labelled.
    /// With estimates it carries an `estimate:` label with its duration in milliseconds
    /// in place of minutes: the scheduler compares estimates only with each other, so it
    /// sees the durations at full precision.
    pub(super) fn snapshot(&self, index: usize) -> IssueSnapshot {
        let task = &self.tasks[index];
        let body = if task.deps.is_empty() {
            String::new()
        } else {
            let refs: Vec<String> = task
                .deps
                .iter()
                .map(|&dep| format!("#{}", self.number(dep)))
                .collect();
            format!("Depends on {}.", refs.join(", "))
        };
        let mut labels = Vec::new();
        if self.labelled[index] {
            labels.push(self.trigger.clone());
        }
        if self.estimates {
            labels.push(format!("estimate:{}m", task.duration_ms));
        }
        IssueSnapshot {
            reference: IssueRef::new(self.repo.clone(), self.number(index)),
            title: task.name.clone(),
            body,
            status: if self.closed[index] {
                IssueStatus::ClosedCompleted
            } else {
                IssueStatus::Open
            },
            labels,
            open_blockers: None,
            sub_issues: Some(NO_SUB_ISSUES),
        }
    }
}

/// Simulated issues have no sub-issues, and say so as GitHub's issues do.
const NO_SUB_ISSUES: crate::domain::SubIssueCounts = crate::domain::SubIssueCounts {
    total: 0,
    completed: 0,
};

/// What the simulated GitHub says: everyone may start agents (the writer labels every
/// issue), no native blockers, every task's issue readable once it exists, no
/// configuration files.
impl Facts for World<'_> {
    fn permission(&self, _user: &User) -> Permission {
        Permission::Write
    }

    fn label_actor(&self, _issue: &IssueRef) -> Actor {
        Actor::Person(self.writer.clone())
    }

    fn native_blockers(&self, _issue: &IssueRef) -> Vec<IssueSnapshot> {
        Vec::new()
    }

    fn issue(&self, issue: &IssueRef) -> Option<IssueSnapshot> {
        self.index_of(issue).map(|index| self.snapshot(index))
    }
}
