//! The engine's specification: given these inputs, it decides this. Each test feeds
//! deliveries and the results of earlier decisions, and asserts on the decisions that
//! follow. [`World`] plays the effects for reads (permissions, who labelled, native
//! blockers, issues, configuration files) so that a test says only what matters to it;
//! launches, merges and run ends are fed by the test itself.
//!
//! The tests are grouped by subject in the `tests_*.rs` files beside this one.

use std::collections::{HashMap, VecDeque};

use super::io::{AfterConfig, AfterPermission, Decision, Input, Outcome, ReadPurpose, RepoFile};
use super::{Engine, EngineSettings};
use crate::config::Config;
use crate::domain::{
    Actor, AppIdentity, InstallationId, IssueRef, IssueSnapshot, IssueStatus, Permission,
    PullRequestLink, RepoName, RunRecord, RunState, User,
};
use crate::events::{
    CloseReason, Comment, CommentAction, DomainEvent, Event, Issue, IssueAction, IssueState,
};

#[path = "tests_blockers.rs"]
mod blockers;
#[path = "tests_commands.rs"]
mod commands;
#[path = "tests_comments.rs"]
mod comments;
#[path = "tests_labels.rs"]
mod labels;
#[path = "tests_reconcile.rs"]
mod reconcile;
#[path = "tests_runs.rs"]
mod runs;

/// The installation every test works in.
const ID: InstallationId = InstallationId(7);
/// This App's id.
const APP_ID: u64 = 99;
/// The time the tests start at (unix ms).
const T0: i64 = 1_800_000_000_000;

/// The settings of a bot with Codegen configured, running as an App.
fn settings() -> EngineSettings {
    let mut settings = EngineSettings::from_config(&Config::default());
    settings.agents = true;
    settings.app_id = Some(APP_ID);
    settings.app_mode = true;
    settings
}

/// The repository the tests work in.
fn repo() -> RepoName {
    "acme/api".parse().expect("a valid name")
}

/// Issue `n` of [`repo`].
fn r(n: u64) -> IssueRef {
    IssueRef::new(repo(), n)
}

/// A person with write permission (as [`World`] answers).
fn writer() -> User {
    User {
        id: 1,
        login: "wendy".into(),
        is_bot: false,
    }
}

/// A person with read permission (as [`World`] answers).
fn reader() -> User {
    User {
        id: 2,
        login: "rick".into(),
        is_bot: false,
    }
}

/// A bot account (GitHub Actions, another App).
fn bot_account() -> User {
    User {
        id: 3,
        login: "helper[bot]".into(),
        is_bot: true,
    }
}

/// An App acting through its bot account.
fn app(id: u64, slug: &str) -> Actor {
    Actor::App {
        app: Some(AppIdentity {
            id,
            slug: slug.into(),
        }),
        login: format!("{slug}[bot]"),
    }
}

/// Open issue `n` of [`repo`] titled "Issue n", with these labels and body.
fn issue(n: u64, labels: &[&str], body: &str) -> Issue {
    Issue {
        reference: r(n),
        id: 1000 + n,
        node_id: format!("I_{n}"),
        title: format!("Issue {n}"),
        body: body.into(),
        state: IssueState::Open,
        labels: labels.iter().map(|l| l.to_string()).collect(),
        author: Some(writer()),
        is_pull_request: false,
        html_url: format!("https://github.com/acme/api/issues/{n}"),
        created_at: "2027-01-15T08:00:00Z".into(),
        open_blockers: None,
    }
}

/// The same issue, closed for `reason`.
fn closed(mut issue: Issue, reason: CloseReason) -> Issue {
    issue.state = IssueState::Closed(reason);
    issue
}

/// What the engine makes of an issue in a delivery.
fn snapshot(issue: &Issue) -> IssueSnapshot {
    super::issues::snapshot_of(issue)
}

/// A delivery for [`ID`] sent by `sender`.
fn delivery(sender: Option<User>, kind: Event) -> Input {
    Input::Delivery(Box::new(DomainEvent {
        installation: Some(ID),
        sender,
        kind,
    }))
}

/// `action` happened to `issue`, by `sender`.
fn issue_event(sender: &User, action: IssueAction, issue: Issue) -> Input {
    delivery(Some(sender.clone()), Event::Issue { action, issue })
}

/// `user` applied the trigger label `codegen` to `issue` (which carries it now).
fn labeled_by(user: &User, mut issue: Issue) -> Input {
    if !issue.labels.iter().any(|l| l == "codegen") {
        issue.labels.push("codegen".into());
    }
    issue_event(
        user,
        IssueAction::Labeled {
            label: "codegen".into(),
        },
        issue,
    )
}

/// `issue` was closed for `reason` by a writer.
fn closed_event(issue: Issue, reason: CloseReason) -> Input {
    issue_event(
        &writer(),
        IssueAction::Closed { reason },
        closed(issue, reason),
    )
}

/// What a writer's comment `body` on `issue` decides, permission read included.
fn writer_says(world: &mut World, issue: Issue, body: &str) -> Vec<Decision> {
    world.run(comment_by(&writer(), issue, body))
}

/// The id of every comment the tests post.
const COMMENT: u64 = 500;

/// `author` commented `body` on `issue`.
fn comment_by(author: &User, issue: Issue, body: &str) -> Input {
    comment_event(author, CommentAction::Created, issue, body, None)
}

fn comment_event(
    author: &User,
    action: CommentAction,
    issue: Issue,
    body: &str,
    via_app: Option<AppIdentity>,
) -> Input {
    delivery(
        Some(author.clone()),
        Event::IssueComment {
            action,
            issue,
            comment: Comment {
                id: COMMENT,
                body: body.into(),
                author: author.clone(),
                via_app,
            },
        },
    )
}

/// Attempt `attempt` at issue `n`, in `state`.
fn run_record(n: u64, attempt: u32, state: RunState) -> RunRecord {
    RunRecord {
        row: attempt as i64,
        installation: ID,
        issue: r(n),
        attempt,
        state,
        prompt: "do it".into(),
        run_id: None,
        web_url: None,
        summary: None,
        pull_requests: Vec::new(),
        failure: None,
        created_at: T0,
        started_at: None,
        finished_at: None,
    }
}

/// The engine, and the effects' answers to its reads.
struct World {
    engine: Engine,
    now: i64,
    /// Each login's permission on the repository (anyone else has none).
    permissions: HashMap<String, Permission>,
    /// Who applied the trigger label to each issue, as its events tell (else the writer).
    label_actors: HashMap<IssueRef, Actor>,
    /// What reading an issue finds (else: the App cannot see it).
    issues: HashMap<IssueRef, IssueSnapshot>,
    /// Each issue's native blockers (else none).
    native: HashMap<IssueRef, Vec<IssueSnapshot>>,
}

impl World {
    /// A bot with [`settings`].
    fn new() -> Self {
        Self::with(|_| {})
    }

    /// A bot with [`settings`] changed by `change`, which knows [`repo`]'s settings (it has
    /// no configuration file); what it saved so far is taken.
    fn with(change: impl FnOnce(&mut EngineSettings)) -> Self {
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
        };
        world.step(Input::Result(Outcome::RepoConfigRead {
            repo: repo(),
            file: RepoFile::Absent,
            report_on: None,
            then: AfterConfig::Nothing,
        }));
        world.engine.take_changes();
        world
    }

    /// What the engine decides on `input` alone.
    fn step(&mut self, input: Input) -> Vec<Decision> {
        self.engine.handle(input, self.now)
    }

    /// Feeds the result of a decision.
    fn answer(&mut self, outcome: Outcome) -> Vec<Decision> {
        self.step(Input::Result(outcome))
    }

    /// What the engine decides on `input` and on the answers to every read that follows,
    /// in order (the reads included).
    fn run(&mut self, input: Input) -> Vec<Decision> {
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

    /// A writer labels issue `n` (labels and body as given): it is managed.
    fn managed(&mut self, n: u64, labels: &[&str], body: &str) -> Vec<Decision> {
        self.run(labeled_by(&writer(), issue(n, labels, body)))
    }

    /// Issue `n`'s launch was settled: attempt `attempt` runs.
    fn launched(&mut self, n: u64, attempt: u32) -> Vec<Decision> {
        self.answer(Outcome::Launched {
            installation: ID,
            issue: r(n),
            latest: Some(run_record(n, attempt, RunState::Running)),
            quota_exhausted: None,
        })
    }

    /// Attempt `attempt` at issue `n` ended in `state`.
    fn ended(&mut self, n: u64, attempt: u32, state: RunState) -> Vec<Decision> {
        self.run(Input::RunsFollowed {
            recovered: Vec::new(),
            ended: vec![run_record(n, attempt, state)],
        })
    }

    /// What is tracked of issue `n`.
    fn tracked(&self, n: u64) -> &super::Tracked {
        self.engine.tracked(ID, &r(n)).expect("issue is tracked")
    }

    /// The effects' answers to a read (the input again after a configuration read that
    /// asks for it).
    fn answers(&self, decision: &Decision, input: &Input) -> Vec<Input> {
        let outcome = match decision.clone() {
            Decision::CheckPermission {
                installation,
                user,
                then,
                ..
            } => Outcome::PermissionRead {
                installation,
                permission: self
                    .permissions
                    .get(&user.login)
                    .copied()
                    .unwrap_or(Permission::None),
                user,
                then,
            },
            Decision::ReadLabelActor {
                installation,
                issue,
                ..
            } => Outcome::LabelActorRead {
                installation,
                actor: self
                    .label_actors
                    .get(&issue.reference)
                    .cloned()
                    .unwrap_or(Actor::Person(writer())),
                issue,
            },
            Decision::ReadNativeBlockers {
                installation,
                issue,
                open_blockers,
            } => Outcome::NativeBlockersRead {
                installation,
                blockers: self.native.get(&issue).cloned().unwrap_or_default(),
                issue,
                open_blockers,
            },
            Decision::ReadIssue {
                installation,
                issue,
                purpose,
            } => Outcome::IssueRead {
                installation,
                snapshot: self.issues.get(&issue).cloned(),
                issue,
                purpose,
            },
            Decision::ReadRepoConfig {
                repo,
                report_on,
                then,
                ..
            } => {
                let read = Input::Result(Outcome::RepoConfigRead {
                    repo,
                    file: RepoFile::Absent,
                    report_on,
                    then,
                });
                return match then {
                    AfterConfig::Retry => vec![read, input.clone()],
                    _ => vec![read],
                };
            }
            _ => return Vec::new(),
        };
        vec![Input::Result(outcome)]
    }
}

/// A world where issue 1 is managed and its agent runs.
fn running_one(world: &mut World) {
    world.managed(1, &[], "");
    world.launched(1, 1);
}

/// The issue a decision is about, by number, with the decision's name: a compact view of
/// a list of decisions for assertions on their order.
fn names(decisions: &[Decision]) -> Vec<(&'static str, Option<u64>)> {
    decisions
        .iter()
        .map(|d| (d.name(), d.issue().map(|i| i.number)))
        .collect()
}

/// The launches decided: (issue number, attempt).
fn launches(decisions: &[Decision]) -> Vec<(u64, u32)> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Launch { issue, attempt, .. } => Some((issue.number, *attempt)),
            _ => None,
        })
        .collect()
}

/// The status comments decided for issue `n`, in order.
fn statuses(decisions: &[Decision], n: u64) -> Vec<Status> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::PublishStatus {
                issue,
                body,
                add_label,
                remove_label,
                project,
                ..
            } if issue.number == n => Some(Status {
                body: body.clone(),
                add: add_label.clone(),
                remove: remove_label.clone(),
                project: project.clone().map(|(_, option)| option),
            }),
            _ => None,
        })
        .collect()
}

/// The last status comment decided for issue `n`.
fn last_status(decisions: &[Decision], n: u64) -> Status {
    statuses(decisions, n)
        .pop()
        .unwrap_or_else(|| panic!("no status for #{n} in {:#?}", names(decisions)))
}

/// A decided status, in short.
#[derive(Debug, Clone, PartialEq)]
struct Status {
    body: String,
    add: Option<String>,
    remove: Option<String>,
    /// The Projects option set, if it changes.
    project: Option<String>,
}

/// The replies decided, in order.
fn replies(decisions: &[Decision]) -> Vec<String> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Reply { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect()
}

/// The reactions decided, in order.
fn reactions(decisions: &[Decision]) -> Vec<String> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::React { reaction, .. } => Some(reaction.clone()),
            _ => None,
        })
        .collect()
}

/// Whether a Cancel of issue `n` is among the decisions.
fn cancels(decisions: &[Decision], n: u64) -> bool {
    decisions
        .iter()
        .any(|d| matches!(d, Decision::Cancel { issue, .. } if issue.number == n))
}

/// A pull request link of [`repo`].
fn pull_link(n: u64) -> PullRequestLink {
    PullRequestLink::new(format!("https://github.com/acme/api/pull/{n}"))
}

/// An open issue as reading it finds it.
fn open_snapshot(n: u64) -> IssueSnapshot {
    snapshot(&issue(n, &[], ""))
}

/// The `then` of a label's permission read.
fn label_check(issue: &Issue) -> AfterPermission {
    AfterPermission::Label(snapshot(issue))
}

/// Sanity of the harness itself: a world starts knowing the repository's settings and
/// nothing else.
#[test]
fn a_new_world_knows_the_repository_and_tracks_nothing() {
    let mut world = World::new();
    assert!(world.engine.installation(ID).is_none());
    assert_eq!(world.engine.take_changes(), super::Changes::default());
    assert_eq!(open_snapshot(1).status, IssueStatus::Open);
}
