//! The fake effects on a virtual clock: GitHub and Codegen as the engine's decisions find
//! them. A writer pauses the repository, labels every task's issue and resumes it (so that
//! the first launches see the whole graph); every read is answered as GitHub would answer
//! it; a launch runs for its task's duration and then succeeds, or fails with the chosen
//! probability; the follower reports the runs that ended, and GitHub closes the issue of a
//! successful run as completed. A run that discovers tasks opens each one's issue when it
//! gets that far, and the writer labels it. Whatever else the engine decides (status
//! comments, reactions, replies) is counted, not acted on.

mod github;

use std::collections::{BTreeMap, VecDeque};

use super::graph::Task;
use super::{Dispatch, SimError, SimFound, SimLaunch, SimOptions};
use crate::config::Config;
use crate::domain::{InstallationId, IssueRef, RepoName, RunId, RunRecord, RunState, User};
use crate::engine::UnblockOn;
use crate::engine::machine::{AfterConfig, Decision, Engine, EngineSettings, Input, Outcome};
use crate::events::{CloseReason, IssueAction};

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
    /// Each task's issue number, once its issue exists.
    numbers: Vec<Option<u64>>,
    /// The task of each issue, by issue number - 1 (numbers are given as issues appear).
    by_number: Vec<usize>,
    /// When each task's issue was opened, in virtual ms.
    opened_ms: Vec<u64>,
    /// Whether each task's issue carries the trigger label.
    labelled: Vec<bool>,
    /// Whether each task's issue is closed (as completed).
    pub closed: Vec<bool>,
    /// How many of `closed` are true (counted as they close: the progress is told at
    /// every step).
    closed_count: usize,
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
    /// Discoveries the runs in flight will make, by (time, order of scheduling): the task
    /// that appears.
    pending: BTreeMap<(u64, u64), usize>,
    scheduled: u64,
    /// In waves: tasks that appeared during the batch; the dispatcher looks for work only
    /// between batches, so they are labelled (taken in) when the batch is done.
    held: Vec<usize>,
    /// Every task that appeared, in order.
    pub found: Vec<SimFound>,
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
        // The file's tasks are issues 1..=n from the start; discovered ones get theirs
        // when they appear.
        let numbers: Vec<Option<u64>> = tasks
            .iter()
            .scan(0, |count, task| {
                Some(task.found.is_none().then(|| {
                    *count += 1;
                    *count
                }))
            })
            .collect();
        let by_number = (0..tasks.len()).filter(|&i| numbers[i].is_some()).collect();
        let mut settings = EngineSettings::from_config(&Config::default());
        settings.agents = true;
        settings.app_mode = true;
        settings.max_concurrent = agents;
        settings.per_repository = None;
        settings.retry_failed_runs = options.retry_failed;
        // Statuses are counted, not read: no expected starts (see `simulate --forecast`).
        settings.forecasts = false;
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
            numbers,
            by_number,
            opened_ms: vec![0; tasks.len()],
            labelled: vec![false; tasks.len()],
            closed: vec![false; tasks.len()],
            closed_count: 0,
            launched: vec![false; tasks.len()],
            full_runs: vec![0; tasks.len()],
            partial_secs: 0.0,
            flying: BTreeMap::new(),
            ended: Vec::new(),
            pending: BTreeMap::new(),
            scheduled: 0,
            held: Vec::new(),
            found: Vec::new(),
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
            if self.tasks[index].found.is_none() {
                self.label(index)?;
            }
        }
        let resume = self.comment(0, "resume");
        self.feed(resume)?;
        loop {
            let next_end = self.flying.keys().next().map(|&(end, _)| end);
            let next_found = self.pending.keys().next().map(|&(at, _)| at);
            let Some(now) = next_end.into_iter().chain(next_found).min() else {
                break;
            };
            self.now = now;
            // A run meets its discoveries before it ends; and what one sets off at this
            // instant (a launch, that run's discoveries at 0) comes before the ends too.
            if next_found == Some(now) {
                if let Some((_, index)) = self.pending.pop_first() {
                    self.discover(index)?;
                }
                continue;
            }
            while let Some(entry) = self.flying.first_entry()
                && entry.key().0 == now
            {
                let flight = entry.remove();
                self.end(flight);
            }
            // In waves, nothing is taken in until the whole batch is done: neither the
            // ended runs nor the tasks that appeared meanwhile.
            if self.dispatch == Dispatch::ReadyQueue || self.flying.is_empty() {
                for index in std::mem::take(&mut self.held) {
                    self.label(index)?;
                }
                self.report()?;
            }
            progress(self.closed_count, self.tasks.len());
        }
        Ok(())
    }

    /// The writer labels task `index`'s issue with the trigger label.
    fn label(&mut self, index: usize) -> Result<(), SimError> {
        self.labelled[index] = true;
        let label = self.trigger.clone();
        self.feed(self.issue_event(index, IssueAction::Labeled { label }))
    }

    /// Task `index` appears: its issue is opened (it takes the next number) and labelled
    /// at once, except in waves (see `held`).
    fn discover(&mut self, index: usize) -> Result<(), SimError> {
        let Some(found) = self.tasks[index].found else {
            return Ok(());
        };
        if self.numbers[index].is_some() {
            // A task is discovered once, whatever runs reach it again.
            return Ok(());
        }
        self.by_number.push(index);
        self.numbers[index] = Some(self.by_number.len() as u64);
        self.opened_ms[index] = self.now;
        self.found.push(SimFound {
            id: self.tasks[index].name.clone(),
            by: self.tasks[found.by].name.clone(),
            at_secs: self.now as f64 / 1000.0,
        });
        match self.dispatch {
            Dispatch::ReadyQueue => self.label(index),
            Dispatch::Waves => {
                self.held.push(index);
                Ok(())
            }
        }
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
        // What this run will discover: what no earlier run of the task got to.
        for &found in &self.tasks[index].discovers {
            if self.numbers[found].is_none() {
                let after = self.tasks[found].found.map_or(0, |f| f.after_ms);
                self.scheduled += 1;
                self.pending
                    .insert((self.now + after, self.scheduled), found);
            }
        }
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
        // What the run had not reached yet it does not discover; a retry may.
        let tasks = self.tasks;
        self.pending
            .retain(|_, found| tasks[*found].found.is_none_or(|f| f.by != index));
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
            if !std::mem::replace(&mut self.closed[index], true) {
                self.closed_count += 1;
            }
            let reason = CloseReason::Completed;
            self.feed(self.issue_event(index, IssueAction::Closed { reason }))?;
        }
        Ok(())
    }

    /// The task index of a simulated issue.
    fn index_of(&self, issue: &IssueRef) -> Option<usize> {
        let position = (issue.number as usize).checked_sub(1)?;
        let index = self.by_number.get(position).copied()?;
        (issue.repo == self.repo).then_some(index)
    }
}
