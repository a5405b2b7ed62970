//! The tests' world: the engine, and the effects' answers to its reads (permissions, who
//! labelled, native blockers, issues, configuration files), so that a test says only what
//! matters to it.

use std::collections::{HashMap, VecDeque};

use super::*;
use crate::config::Config;
use crate::engine::machine::{Engine, EngineSettings, Facts, Tracked};

/// The settings of a bot with Codegen configured, running as an App.
fn settings() -> EngineSettings {
    let mut settings = EngineSettings::from_config(&Config::default());
    settings.agents = true;
    settings.app_id = Some(APP_ID);
    settings.app_mode = true;
    settings
}

/// The engine, and the effects' answers to its reads.
pub(super) struct World {
    pub(super) engine: Engine,
    pub(super) now: i64,
    /// Each login's permission on the repository (anyone else has none).
    pub(super) permissions: HashMap<String, Permission>,
    /// Who applied the trigger label to each issue, as its events tell (else the writer).
    pub(super) label_actors: HashMap<IssueRef, Actor>,
    /// What reading an issue finds (else: the App cannot see it).
    pub(super) issues: HashMap<IssueRef, IssueSnapshot>,
    /// Each issue's native blockers (else none).
    pub(super) native: HashMap<IssueRef, Vec<IssueSnapshot>>,
    /// Each issue's sub-issues the App can read (else none).
    pub(super) children: HashMap<IssueRef, Vec<IssueSnapshot>>,
}

impl World {
    /// A bot with [`settings`].
    pub(super) fn new() -> Self {
        Self::with(|_| {})
    }

    /// A bot with [`settings`] changed by `change`, which knows [`repo`]'s settings (it has
    /// no configuration file); what it saved so far is taken.
    pub(super) fn with(change: impl FnOnce(&mut EngineSettings)) -> Self {
        let mut settings = settings();
        change(&mut settings);
        let mut world = Self {
            engine: Engine::new(settings),
            now: T0,
            permissions: HashMap::from([
                (writer().login, Permission::Write),
                (reader().login, Permission::Read),
            ]),
            label_actors: HashMap::new(),
            issues: HashMap::new(),
            native: HashMap::new(),
            children: HashMap::new(),
        };
        world.answer(config_absent(repo(), None, AfterConfig::Nothing));
        world.engine.take_changes();
        world
    }

    /// A bot with [`settings`] that trusts the App `slug` (as its configuration spells it).
    pub(super) fn trusting(slug: &str) -> Self {
        Self::with(|s| s.orchestrator.trusted_apps = vec![slug.into()])
    }

    /// What the engine decides on `input` alone.
    pub(super) fn step(&mut self, input: Input) -> Vec<Decision> {
        self.engine.handle(input, self.now)
    }

    /// Feeds the result of a decision.
    pub(super) fn answer(&mut self, outcome: Outcome) -> Vec<Decision> {
        self.step(Input::Result(outcome))
    }

    /// What the engine decides on `input` and on the answers to every read that follows,
    /// in order (the reads included).
    pub(super) fn run(&mut self, input: Input) -> Vec<Decision> {
        let mut inputs = VecDeque::from([input]);
        let mut all = Vec::new();
        while let Some(input) = inputs.pop_front() {
            assert!(all.len() < 500, "the engine keeps deciding: {all:#?}");
            let decisions = self.step(input.clone());
            for decision in &decisions {
                inputs.extend(self.answers(decision, &input));
            }
            all.extend(decisions);
        }
        all
    }

    /// What the engine decides on `inputs` and their reads when it settles once, after
    /// all of them, as the processor does with a batch of deliveries (the reads
    /// included, in order).
    pub(super) fn run_settling_once(&mut self, inputs: Vec<Input>) -> Vec<Decision> {
        let mut inputs = VecDeque::from(inputs);
        let mut all = Vec::new();
        loop {
            while let Some(input) = inputs.pop_front() {
                assert!(all.len() < 500, "the engine keeps deciding: {all:#?}");
                let decisions = self.engine.handle_unsettled(input.clone(), self.now);
                for decision in &decisions {
                    inputs.extend(self.answers(decision, &input));
                }
                all.extend(decisions);
            }
            let settled = self.engine.settle(self.now);
            for decision in &settled {
                // A read decided by settling answers nothing that must be handled again.
                inputs.extend(decision.answer(self).map(Input::Result));
            }
            all.extend(settled);
            if inputs.is_empty() {
                return all;
            }
        }
    }

    /// A writer labels issue `n` (labels and body as given): it is managed.
    pub(super) fn managed(&mut self, n: u64, labels: &[&str], body: &str) -> Vec<Decision> {
        self.run(labeled_by(&writer(), issue(n, labels, body)))
    }

    /// A writer labels issue `n` and its attempt 1 runs.
    pub(super) fn running(&mut self, n: u64) {
        self.managed(n, &[], "");
        self.launched(n, 1);
    }

    /// A writer labels issue `n`, and its attempt 1 runs and ends in `state`.
    pub(super) fn ran(&mut self, n: u64, state: RunState) {
        self.running(n);
        self.ended(n, 1, state);
    }

    /// Issue `n`'s launch was settled: attempt `attempt` runs.
    pub(super) fn launched(&mut self, n: u64, attempt: u32) -> Vec<Decision> {
        self.launch_settled(n, Some(run_record(n, attempt, RunState::Running)), None)
    }

    /// Issue `n`'s launch was settled: `latest` is its latest run, and the quota was used
    /// up if `quota_exhausted` says why.
    pub(super) fn launch_settled(
        &mut self,
        n: u64,
        latest: Option<RunRecord>,
        quota_exhausted: Option<&str>,
    ) -> Vec<Decision> {
        self.answer(Outcome::Launched {
            installation: ID,
            issue: r(n),
            latest,
            quota_exhausted: quota_exhausted.map(Into::into),
        })
    }

    /// Attempt `attempt` at issue `n` ended in `state`.
    pub(super) fn ended(&mut self, n: u64, attempt: u32, state: RunState) -> Vec<Decision> {
        self.run(runs_followed(vec![run_record(n, attempt, state)]))
    }

    /// A writer comments `body` on issue `n`, labelled (see [`labelled`]).
    pub(super) fn comment(&mut self, n: u64, body: &str) -> Vec<Decision> {
        self.comment_on(labelled(n), body)
    }

    /// A writer comments `body` on `issue`, permission read included.
    pub(super) fn comment_on(&mut self, issue: Issue, body: &str) -> Vec<Decision> {
        self.run(comment_by(&writer(), issue, body))
    }

    /// A writer labels issue `n`, whose body says it depends on issue `blocker`, which
    /// reading finds open.
    pub(super) fn managed_waiting_for(&mut self, n: u64, blocker: u64) -> Vec<Decision> {
        self.open_issue(blocker);
        self.managed(n, &[], &format!("Depends on #{blocker}"))
    }

    /// The settings saved since the last look (see [`Engine::take_changes`]).
    pub(super) fn settings_saved(&mut self) -> Vec<(String, Option<String>)> {
        self.engine.take_changes().settings
    }

    /// Reading issue `n` finds it open.
    pub(super) fn open_issue(&mut self, n: u64) {
        self.issues.insert(r(n), open_snapshot(n));
    }

    /// What is tracked of issue `n`.
    pub(super) fn tracked(&self, n: u64) -> &Tracked {
        self.engine.tracked(ID, &r(n)).expect("issue is tracked")
    }

    /// Whether nothing at all is tracked of issue `n`.
    pub(super) fn untracked(&self, n: u64) -> bool {
        self.engine.tracked(ID, &r(n)).is_none()
    }

    /// Issue `n`'s state label.
    pub(super) fn state_label(&self, n: u64) -> Option<&str> {
        self.tracked(n).state_label.as_deref()
    }

    /// The effects' answers to a read (the input again after a configuration read that
    /// asks for it).
    pub(super) fn answers(&self, decision: &Decision, input: &Input) -> Vec<Input> {
        let Some(outcome) = decision.answer(self) else {
            return Vec::new();
        };
        let again = matches!(
            decision,
            Decision::ReadRepoConfig {
                then: AfterConfig::Retry,
                ..
            }
        );
        let mut inputs = vec![Input::Result(outcome)];
        inputs.extend(again.then(|| input.clone()));
        inputs
    }
}

/// What the fake GitHub of these tests says: permissions by login (none by default),
/// label actors (a writer by default), native blockers (none by default), issues (unreadable
/// unless known), configuration files (absent).
impl Facts for World {
    fn permission(&self, user: &User) -> Permission {
        let permission = self.permissions.get(&user.login);
        permission.copied().unwrap_or(Permission::None)
    }

    fn label_actor(&self, issue: &IssueRef) -> Actor {
        let actor = self.label_actors.get(issue);
        actor.cloned().unwrap_or(Actor::Person(writer()))
    }

    fn native_blockers(&self, issue: &IssueRef) -> Vec<IssueSnapshot> {
        self.native.get(issue).cloned().unwrap_or_default()
    }

    fn issue(&self, issue: &IssueRef) -> Option<IssueSnapshot> {
        self.issues.get(issue).cloned()
    }

    fn sub_issues(&self, issue: &IssueRef) -> Vec<IssueSnapshot> {
        self.children.get(issue).cloned().unwrap_or_default()
    }
}
