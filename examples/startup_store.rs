//! Fills a SQLite store with managed issues and their dependencies, written as the bot
//! writes them, for `bench/startup.sh` (start-up time and memory with a large graph).
//!
//! `cargo run --release --example startup_store -- <store.db> <issues> [closed fraction]`
//!
//! The issues are `simulate --random`'s layered graph (each issue depends on one to three
//! issues of earlier layers, named in its body: `Depends on #2, #5.`) in one repository.
//! The bot's own engine takes them in: a writer labels each one `codegen` (token mode, as
//! `serve` with `GITHUB_TOKEN` runs), its reads are answered from the graph, a fraction of
//! the issues is then closed as completed; what the engine saves (`Engine::take_changes`)
//! goes to the store in `Store::commit_step`, as the orchestrator saves it. Codegen is
//! not configured, as in the script's `serve`: nothing is launched, so no run is recorded.

use std::collections::VecDeque;

use codegen_orchestrator::config::Config;
use codegen_orchestrator::domain::{
    Actor, IssueRef, IssueSnapshot, IssueStatus, Permission, RepoName, User,
};
use codegen_orchestrator::engine::machine::{Engine, EngineSettings, Facts, Input};
use codegen_orchestrator::events::{
    CloseReason, DomainEvent, Event, Issue, IssueAction, IssueState,
};
use codegen_orchestrator::simulate::random_graph;
use codegen_orchestrator::store::{Step, Store};

/// The repository as GitHub would show it to the engine's reads.
struct Repository {
    writer: User,
    issues: Vec<IssueSnapshot>,
}

impl Facts for Repository {
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
        let index = usize::try_from(issue.number).ok()?.checked_sub(1)?;
        self.issues.get(index).cloned()
    }
}

impl Repository {
    /// `action` on issue `index` by the writer, as a delivery.
    fn delivery(&self, index: usize, action: IssueAction) -> Input {
        let snapshot = &self.issues[index];
        let number = snapshot.reference.number;
        let issue = Issue {
            reference: snapshot.reference.clone(),
            id: number,
            node_id: format!("I_startup{number}"),
            title: snapshot.title.clone(),
            body: snapshot.body.clone(),
            state: match snapshot.status {
                IssueStatus::ClosedCompleted => IssueState::Closed(CloseReason::Completed),
                _ => IssueState::Open,
            },
            labels: snapshot.labels.clone(),
            author: Some(self.writer.clone()),
            is_pull_request: false,
            html_url: format!(
                "https://github.com/{}/issues/{number}",
                snapshot.reference.repo
            ),
            created_at: "2026-01-01T00:00:00Z".to_owned(),
            open_blockers: None,
            sub_issues: None,
            via_app: None,
        };
        Input::Delivery(Box::new(DomainEvent {
            installation: None,
            sender: Some(self.writer.clone()),
            kind: Event::Issue { action, issue },
        }))
    }
}

/// Hands `input` to the engine, and the answers to its reads after it, in order.
fn feed(engine: &mut Engine, repository: &Repository, input: Input, now: i64) {
    let mut inputs = VecDeque::from([input]);
    while let Some(input) = inputs.pop_front() {
        for decision in engine.handle(input, now) {
            if let Some(outcome) = decision.answer(repository) {
                inputs.push_back(Input::Result(outcome));
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: startup_store <store.db> <issues> [closed fraction]";
    let path = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let count: usize = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let closed: f64 = args.next().map_or(Ok(0.3), |f| f.parse())?;

    let repo: RepoName = "bench/startup".parse()?;
    let config = Config::default();
    let mut settings = EngineSettings::from_config(&config);
    settings.agents = false;
    settings.app_mode = false;
    let trigger = settings.orchestrator.trigger_label.clone();
    let mut engine = Engine::new(settings);

    let graph = random_graph(count, 1, 10);
    let issues = graph
        .tasks
        .iter()
        .enumerate()
        .map(|(index, task)| {
            let refs: Vec<String> = task
                .deps
                .iter()
                .map(|dep| {
                    format!(
                        "#{}",
                        dep.trim_start_matches('t').parse::<u64>().unwrap_or(0) + 1
                    )
                })
                .collect();
            IssueSnapshot {
                reference: IssueRef::new(repo.clone(), index as u64 + 1),
                title: format!("Task {}", task.id),
                body: if refs.is_empty() {
                    String::new()
                } else {
                    format!("Depends on {}.", refs.join(", "))
                },
                status: IssueStatus::Open,
                labels: vec![trigger.clone()],
                open_blockers: None,
                sub_issues: None,
            }
        })
        .collect();
    let mut repository = Repository {
        writer: User {
            id: 1,
            login: "startup-writer".into(),
            is_bot: false,
        },
        issues,
    };
    let now = 1_767_225_600_000;
    for index in 0..count {
        let label = trigger.clone();
        let labeled = repository.delivery(index, IssueAction::Labeled { label });
        feed(&mut engine, &repository, labeled, now);
    }
    // Every so many issues closed as completed: done, queued and blocked ones side by side.
    let step = if closed > 0.0 {
        (1.0 / closed).round().max(1.0) as usize
    } else {
        usize::MAX
    };
    for index in (0..count).step_by(step) {
        repository.issues[index].status = IssueStatus::ClosedCompleted;
        let reason = CloseReason::Completed;
        let closing = repository.delivery(index, IssueAction::Closed { reason });
        feed(&mut engine, &repository, closing, now);
    }

    // Committed as the orchestrator commits a step's state changes, in chunks (one
    // transaction of 100,000 rows would hold SQLite's writer for long).
    let store = Store::open(&format!("sqlite://{path}")).await?;
    let changes = engine.take_changes();
    for chunk in changes.issues.chunks(5_000) {
        let step = Step {
            issues: chunk.to_vec(),
            ..Step::default()
        };
        store.commit_step(&step, now).await?;
    }
    store.close().await;
    println!("{} issues saved to {path}", changes.issues.len());
    Ok(())
}
