//! The fake effects on a virtual clock: GitHub and Codegen as the engine's decisions find
//! them. A writer pauses the repository, labels every task's issue and resumes it (so that
//! the first launches see the whole graph); every read is answered as GitHub would answer
//! it; a launch runs for its task's duration and then succeeds, or fails with the chosen
//! probability; the follower reports the runs that ended, and GitHub closes the issue of a
//! successful run as completed. Whatever else the engine decides (status comments,
//! reactions, replies) is counted, not acted on.

use std::collections::{BTreeMap, VecDeque};

use super::graph::Task;
use super::{Dispatch, SimError, SimLaunch, SimOptions};
use crate::config::Config;
use crate::domain::{
    Actor, InstallationId, IssueRef, IssueSnapshot, IssueStatus, Permission, RepoName, RunId,
    RunRecord, RunState, User,
};
use crate::engine::UnblockOn;
use crate::engine::machine::{
    AfterConfig, Decision, Engine, EngineSettings, Facts, Input, Outcome,
};
use crate::events::{
    CloseReason, Comment, CommentAction, DomainEvent, Event, Issue, IssueAction, IssueState,
};

/// The installation the simulated repository belongs to.
const ID: InstallationId = InstallationId(1);
/// Virtual time 0 as the engine sees it (unix ms: 2026-01-01T00:00:00Z).
const EPOCH_MS: i64 = 1_767_225_600_000;

/// A run on the fake Codegen.
struct Flight {
    run: RunRecord,
    /// Whether it ends in failure (drawn at launch).
    fails: bool,
    /// Its entry in [`World::launches`].
    launch: usize,
}

/// The engine, the simulated repository's issues and the runs in flight.
pub(super) struct World<'a> {
    engine: Engine,
    tasks: &'a [Task],
    repo: RepoName,
    trigger: String,
    command: String,
    writer: User,
    estimates: bool,
    dispatch: Dispatch,
    fail_rate: f64,
    rng: fastrand::Rng,
    /// Virtual time, in ms.
    pub now: u64,
    /// Whether each task's issue carries the trigger label.
    labelled: Vec<bool>,
    /// Whether each task's issue is closed (as completed).
    pub closed: Vec<bool>,
    /// Whether each task was ever launched.
    pub launched: Vec<bool>,
    /// Runs of each task that ran their whole duration.
    pub full_runs: Vec<u32>,
    /// Agent time of runs cancelled before their end, in seconds.
    pub partial_secs: f64,
    /// Runs in flight by (end, task index).
    flying: BTreeMap<(u64, usize), Flight>,
    /// Runs that ended and were not reported yet.
    ended: Vec<RunRecord>,
    /// Inputs waiting for the engine (answers to its reads, mostly).
    inputs: VecDeque<Input>,
    /// Every launch, in order.
    pub launches: Vec<SimLaunch>,
    /// The engine's decisions by kind.
    pub decisions: BTreeMap<String, usize>,
    runs: u64,
    comments: u64,
}

impl<'a> World<'a> {
    /// The bot with default settings, `agents` at once and `options.retry_failed`
    /// automatic retries, before anything happened.
    pub fn new(tasks: &'a [Task], agents: usize, options: SimOptions, repo: RepoName) -> Self {
        let mut settings = EngineSettings::from_config(&Config::default());
        settings.agents = true;
        settings.app_mode = true;
        settings.max_concurrent = agents;
        settings.per_repository = None;
        settings.retry_failed_runs = options.retry_failed;
        // A run's success closes its issue at the same virtual instant; its dependents are
        // released with the agent it frees, as they are when the close comes first.
        settings.orchestrator.unblock_on = UnblockOn::AgentCompleted;
        let trigger = settings.orchestrator.trigger_label.clone();
        let command = settings.orchestrator.command.clone();
        Self {
            engine: Engine::new(settings),
            tasks,
            repo,
            trigger,
            command,
            writer: User {
                id: 1,
                login: "simulated-writer".into(),
                is_bot: false,
            },
            estimates: options.estimates,
            dispatch: options.dispatch,
            fail_rate: options.fail_rate,
            // Its own stream: the graph's draws are not repeated as failures.
            rng: fastrand::Rng::with_seed(options.seed ^ 0x9e37_79b9_7f4a_7c15),
            now: 0,
            labelled: vec![false; tasks.len()],
            closed: vec![false; tasks.len()],
            launched: vec![false; tasks.len()],
            full_runs: vec![0; tasks.len()],
            partial_secs: 0.0,
            flying: BTreeMap::new(),
            ended: Vec::new(),
            inputs: VecDeque::new(),
            launches: Vec::new(),
            decisions: BTreeMap::new(),
            runs: 0,
            comments: 0,
        }
    }

    /// Runs the whole simulation, telling `progress` how many tasks are completed of how
    /// many at each instant a run ends.
    pub fn run(&mut self, progress: &mut dyn FnMut(usize, usize)) -> Result<(), SimError> {
        if self.tasks.is_empty() {
            return Ok(());
        }
        let pause = self.comment(0, "pause");
        self.feed(pause)?;
        for index in 0..self.tasks.len() {
            self.labelled[index] = true;
            let label = self.trigger.clone();
            self.feed(self.issue_event(index, IssueAction::Labeled { label }))?;
        }
        let resume = self.comment(0, "resume");
        self.feed(resume)?;
        while let Some(&(end, _)) = self.flying.keys().next() {
            self.now = end;
            while let Some(entry) = self.flying.first_entry()
                && entry.key().0 == end
            {
                let flight = entry.remove();
                self.end(flight);
            }
            // In waves, nothing is taken in until the whole batch is done.
            if self.dispatch == Dispatch::ReadyQueue || self.flying.is_empty() {
                self.report()?;
            }
            let done = self.closed.iter().filter(|closed| **closed).count();
            progress(done, self.tasks.len());
        }
        Ok(())
    }

    /// Gives the engine `input` and the answers to every read it decides on, in order.
    fn feed(&mut self, input: Input) -> Result<(), SimError> {
        // Far more than one input and its reads take: only an engine that keeps deciding
        // without end gets there.
        let limit = 1_000 + 10 * self.tasks.len();
        self.inputs.push_back(input);
        let mut handled = 0;
        while let Some(input) = self.inputs.pop_front() {
            handled += 1;
            if handled > limit {
                return Err(SimError::Runaway(handled));
            }
            let again = matches!(input, Input::Delivery(_)).then(|| input.clone());
            let clock = EPOCH_MS + self.now as i64;
            for decision in self.engine.handle(input, clock) {
                self.carry_out(decision, again.as_ref());
            }
        }
        Ok(())
    }

    /// Does what a decision asks, as GitHub and Codegen would; `input` is what it came
    /// from, when the engine may defer it (`AfterConfig::Retry`).
    fn carry_out(&mut self, decision: Decision, input: Option<&Input>) {
        *self
            .decisions
            .entry(decision.name().to_owned())
            .or_default() += 1;
        if let Some(outcome) = decision.answer(&*self) {
            self.inputs.push_back(Input::Result(outcome));
            let again = matches!(
                decision,
                Decision::ReadRepoConfig {
                    then: AfterConfig::Retry,
                    ..
                }
            );
            if again && let Some(input) = input {
                self.inputs.push_back(input.clone());
            }
            return;
        }
        let outcome = match decision {
            Decision::Launch {
                installation,
                issue,
                attempt,
                prompt,
                ..
            } => self.launch(installation, issue, attempt, prompt),
            Decision::Cancel {
                installation,
                issue,
            } => match self.cancel(&issue) {
                Some(run) => Outcome::RunRecorded { installation, run },
                None => return,
            },
            // Status comments, labels, reactions, replies, resuming: counted only.
            _ => return,
        };
        self.inputs.push_back(Input::Result(outcome));
    }

    /// Starts an agent on the fake Codegen: it runs for the task's duration and fails
    /// with probability `fail_rate`.
    fn launch(
        &mut self,
        installation: InstallationId,
        issue: IssueRef,
        attempt: u32,
        prompt: String,
    ) -> Outcome {
        let Some(index) = self.index_of(&issue) else {
            // Not a simulated issue: nothing was started.
            return Outcome::Launched {
                installation,
                issue,
                latest: None,
                quota_exhausted: None,
            };
        };
        self.launched[index] = true;
        let end = self.now + self.tasks[index].duration_ms;
        let fails = self.fail_rate > 0.0 && self.rng.f64() < self.fail_rate;
        self.runs += 1;
        let clock = EPOCH_MS + self.now as i64;
        let run = RunRecord {
            row: self.runs as i64,
            installation,
            issue: issue.clone(),
            attempt,
            state: RunState::Running,
            prompt,
            run_id: Some(RunId(self.runs)),
            web_url: None,
            summary: None,
            pull_requests: Vec::new(),
            failure: None,
            created_at: clock,
            started_at: Some(clock),
            finished_at: None,
        };
        self.launches.push(SimLaunch {
            id: self.tasks[index].name.clone(),
            start_secs: self.now as f64 / 1000.0,
            end_secs: end as f64 / 1000.0,
            attempt,
            failed: fails,
            cancelled: false,
        });
        let launch = self.launches.len() - 1;
        self.flying.insert(
            (end, index),
            Flight {
                run: run.clone(),
                fails,
                launch,
            },
        );
        Outcome::Launched {
            installation,
            issue,
            latest: Some(run),
            quota_exhausted: None,
        }
    }

    /// Stops the issue's run in flight, if it has one: the run as recorded now.
    fn cancel(&mut self, issue: &IssueRef) -> Option<RunRecord> {
        let index = self.index_of(issue)?;
        let key = *self.flying.keys().find(|(_, i)| *i == index)?;
        let flight = self.flying.remove(&key)?;
        let launch = &mut self.launches[flight.launch];
        launch.end_secs = self.now as f64 / 1000.0;
        launch.failed = false;
        launch.cancelled = true;
        self.partial_secs += launch.end_secs - launch.start_secs;
        let mut run = flight.run;
        run.state = RunState::Cancelled;
        run.finished_at = Some(EPOCH_MS + self.now as i64);
        Some(run)
    }

    /// A run reached its end: it succeeded or failed, and waits to be reported.
    fn end(&mut self, flight: Flight) {
        let mut run = flight.run;
        run.finished_at = Some(EPOCH_MS + self.now as i64);
        if flight.fails {
            run.state = RunState::Failed;
            run.failure = Some("the simulated agent failed".into());
        } else {
            run.state = RunState::Succeeded;
            run.summary = Some("done".into());
        }
        if let Some(index) = self.index_of(&run.issue) {
            self.full_runs[index] += 1;
        }
        self.ended.push(run);
    }

    /// The follower reports the runs that ended (one report: every agent they free is
    /// free at once), then GitHub closes the issue of each successful one as completed.
    fn report(&mut self) -> Result<(), SimError> {
        let ended = std::mem::take(&mut self.ended);
        let succeeded: Vec<usize> = ended
            .iter()
            .filter(|run| run.state == RunState::Succeeded)
            .filter_map(|run| self.index_of(&run.issue))
            .collect();
        self.feed(Input::RunsFollowed {
            recovered: Vec::new(),
            ended,
        })?;
        for index in succeeded {
            self.closed[index] = true;
            let reason = CloseReason::Completed;
            self.feed(self.issue_event(index, IssueAction::Closed { reason }))?;
        }
        Ok(())
    }

    /// The task index of a simulated issue.
    fn index_of(&self, issue: &IssueRef) -> Option<usize> {
        let index = (issue.number as usize).checked_sub(1)?;
        (issue.repo == self.repo && index < self.tasks.len()).then_some(index)
    }

    /// The writer's `command verb` comment on task `index`'s issue.
    fn comment(&mut self, index: usize, verb: &str) -> Input {
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
    fn issue_event(&self, index: usize, action: IssueAction) -> Input {
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

    /// Task `index`'s issue as a delivery shows it now.
    fn issue(&self, index: usize) -> Issue {
        let snapshot = self.snapshot(index);
        let number = index as u64 + 1;
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
            created_at: "2026-01-01T00:00:00Z".into(),
            open_blockers: None,
            sub_issues: Some(NO_SUB_ISSUES),
            via_app: None,
            reference: snapshot.reference,
        }
    }

    /// Task `index`'s issue as reading it finds it now: titled by the task, its
    /// dependencies in its body (`Depends on #2, #5.`), the trigger label once labelled.
    /// With estimates it carries an `estimate:` label with its duration in milliseconds
    /// in place of minutes: the scheduler compares estimates only with each other, so it
    /// sees the durations at full precision.
    fn snapshot(&self, index: usize) -> IssueSnapshot {
        let task = &self.tasks[index];
        let body = if task.deps.is_empty() {
            String::new()
        } else {
            let refs: Vec<String> = task.deps.iter().map(|n| format!("#{n}")).collect();
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
            reference: IssueRef::new(self.repo.clone(), index as u64 + 1),
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
/// issue), no native blockers, every task's issue readable, no configuration files.
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
