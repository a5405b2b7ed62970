//! The engine's specification: given these inputs, it decides this. Each test feeds
//! deliveries and the results of earlier decisions, and asserts on the decisions that
//! follow. [`World`] (in `tests_world.rs`) plays the effects for reads (permissions, who
//! labelled, native blockers, issues, configuration files) so that a test says only what
//! matters to it; launches, merges and run ends are fed by the test itself. This file
//! holds what the tests build their inputs and expectations from.
//!
//! The tests are grouped by subject in the `tests_*.rs` files beside this one.

use super::io::{AfterConfig, AfterPermission, Decision, Input, Outcome, ReadPurpose, RepoFile};
use crate::domain::{
    Actor, AppIdentity, InstallationId, IssueRef, IssueSnapshot, IssueStatus, Permission,
    PullRequestLink, RepoName, RunRecord, RunState, User,
};
use crate::events::{
    CloseReason, Comment, CommentAction, DomainEvent, Event, Issue, IssueAction, IssueState,
    PullRequest, PullRequestAction,
};

#[path = "tests_blockers.rs"]
mod blockers;
#[path = "tests_commands.rs"]
mod commands;
#[path = "tests_comments.rs"]
mod comments;
#[path = "tests_discovery.rs"]
mod discovery;
#[path = "tests_forecast.rs"]
mod forecast;
#[path = "tests_labels.rs"]
mod labels;
#[path = "tests_native_sync.rs"]
mod native_sync;
#[path = "tests_reconcile.rs"]
mod reconcile;
#[path = "tests_runs.rs"]
mod runs;
#[path = "tests_settle.rs"]
mod settle;
#[path = "tests_sub_issues.rs"]
mod sub_issues;
#[path = "tests_world.rs"]
mod world;

use world::World;

/// The installation every test works in.
const ID: InstallationId = InstallationId(7);
/// This App's id.
const APP_ID: u64 = 99;
/// The time the tests start at (unix ms).
const T0: i64 = 1_800_000_000_000;

// ---- Who and where ----

/// The repository the tests work in.
fn repo() -> RepoName {
    "acme/api".parse().expect("a valid name")
}

/// Issue `n` of [`repo`].
fn r(n: u64) -> IssueRef {
    IssueRef::new(repo(), n)
}

/// The GitHub account `login`.
fn account(id: u64, login: &str, is_bot: bool) -> User {
    let login = login.into();
    User { id, login, is_bot }
}

/// A person with write permission (as [`World`] answers).
fn writer() -> User {
    account(1, "wendy", false)
}

/// A person with read permission (as [`World`] answers).
fn reader() -> User {
    account(2, "rick", false)
}

/// A bot account (GitHub Actions, another App).
fn bot_account() -> User {
    account(3, "helper[bot]", true)
}

/// The App `slug`, as GitHub names it.
fn identity(id: u64, slug: &str) -> AppIdentity {
    AppIdentity {
        id,
        slug: slug.into(),
    }
}

/// An App acting through its bot account.
fn app(id: u64, slug: &str) -> Actor {
    Actor::App {
        app: Some(identity(id, slug)),
        login: format!("{slug}[bot]"),
    }
}

// ---- Issues, pull requests and runs ----

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
        // GitHub's issue objects carry `sub_issues_summary`.
        sub_issues: Some(crate::domain::SubIssueCounts {
            total: 0,
            completed: 0,
        }),
        via_app: None,
    }
}

/// Open issue `n` labelled with the trigger label, without a body.
fn labelled(n: u64) -> Issue {
    issue(n, &["codegen"], "")
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

/// An open issue as reading it finds it.
fn open_snapshot(n: u64) -> IssueSnapshot {
    snapshot(&issue(n, &[], ""))
}

/// Pull request 10 of [`repo`], from `head`, with this body.
fn pull(body: &str, head: &str) -> PullRequest {
    PullRequest {
        reference: r(10),
        title: "Add the endpoint".into(),
        body: body.into(),
        head_ref: head.into(),
        base_ref: "main".into(),
        html_url: "https://github.com/acme/api/pull/10".into(),
        author: None,
    }
}

/// A pull request link of [`repo`].
fn pull_link(n: u64) -> PullRequestLink {
    PullRequestLink::new(format!("https://github.com/acme/api/pull/{n}"))
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

// ---- Inputs ----

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

/// A writer removed the trigger label from `issue` (which no longer carries it).
fn unlabeled(issue: Issue) -> Input {
    let unlabeled = IssueAction::Unlabeled {
        label: "codegen".into(),
    };
    issue_event(&writer(), unlabeled, issue)
}

/// `user` reopened `issue`.
fn reopened_by(user: &User, issue: Issue) -> Input {
    issue_event(user, IssueAction::Reopened, issue)
}

/// A writer edited `issue` (its body is as given).
fn edited(issue: Issue) -> Input {
    issue_event(&writer(), IssueAction::Edited { old_body: None }, issue)
}

/// `issue` was closed for `reason` by a writer.
fn closed_event(issue: Issue, reason: CloseReason) -> Input {
    issue_event(
        &writer(),
        IssueAction::Closed { reason },
        closed(issue, reason),
    )
}

/// The id of every comment the tests post.
const COMMENT: u64 = 500;

/// `author` commented `body` on `issue`.
fn comment_by(author: &User, issue: Issue, body: &str) -> Input {
    comment_event(author, CommentAction::Created, issue, body, None)
}

/// `action` happened to `author`'s comment `body` on `issue`, typed through the App
/// `via_app` if any.
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

/// A writer did `action` to `pull`.
fn pull_event(action: PullRequestAction, pull: PullRequest) -> Input {
    delivery(Some(writer()), Event::PullRequest { action, pull })
}

/// The agent runs of the installation were followed: these ended.
fn runs_followed(ended: Vec<RunRecord>) -> Input {
    Input::RunsFollowed {
        recovered: Vec::new(),
        ended,
    }
}

// ---- The effects' answers ----

/// Reading `repo`'s configuration file found none.
fn config_absent(repo: RepoName, report_on: Option<IssueRef>, then: AfterConfig) -> Outcome {
    Outcome::RepoConfigRead {
        repo,
        file: RepoFile::Absent,
        report_on,
        then,
    }
}

/// A writer's permission was read, for `then`.
fn writer_may(then: AfterPermission) -> Outcome {
    Outcome::PermissionRead {
        installation: ID,
        user: writer(),
        permission: Permission::Write,
        then,
    }
}

/// The `then` of a label's permission read.
fn label_check(issue: &Issue) -> AfterPermission {
    AfterPermission::Label(snapshot(issue))
}

/// `issue` has no native blockers.
fn no_native_blockers(issue: IssueRef) -> Outcome {
    Outcome::NativeBlockersRead {
        installation: ID,
        issue,
        blockers: Vec::new(),
        open_blockers: None,
    }
}

/// The reconciler's listing of [`repo`]'s labelled issues found these.
fn listed(issues: Vec<IssueSnapshot>) -> Outcome {
    Outcome::LabelledListed {
        installation: ID,
        repo: repo(),
        issues,
    }
}

// ---- Expected decisions ----

/// The decision to read issue `n`'s native blockers (GitHub counting `open_blockers`).
fn read_native_blockers(n: u64, open_blockers: Option<u32>) -> Decision {
    Decision::ReadNativeBlockers {
        installation: ID,
        issue: r(n),
        open_blockers,
    }
}

/// The decision to ask who applied the trigger label to `issue`.
fn read_label_actor(issue: &Issue) -> Decision {
    Decision::ReadLabelActor {
        installation: ID,
        issue: snapshot(issue),
        trigger: "codegen".into(),
    }
}

/// The decision to read issue `n`, for `purpose`.
fn read_issue(n: u64, purpose: ReadPurpose) -> Decision {
    Decision::ReadIssue {
        installation: ID,
        issue: r(n),
        purpose,
    }
}

/// The decision to list [`repo`]'s labelled issues.
fn list_labelled() -> Decision {
    Decision::ListLabelled {
        installation: ID,
        repo: repo(),
        trigger: "codegen".into(),
    }
}

/// A setting saved as `key` = `value` (`None`: removed).
fn setting(key: &str, value: Option<&str>) -> (String, Option<String>) {
    (key.into(), value.map(Into::into))
}

// ---- Views of the decisions, and assertions ----

/// The issue a decision is about, by number, with the decision's name: a compact view of
/// a list of decisions for assertions on their order.
fn names(decisions: &[Decision]) -> Vec<(&'static str, Option<u64>)> {
    decisions
        .iter()
        .map(|d| (d.name(), d.issue().map(|i| i.number)))
        .collect()
}

/// What `pick` finds in the decisions, in order.
fn picked<T>(decisions: &[Decision], pick: impl FnMut(&Decision) -> Option<T>) -> Vec<T> {
    decisions.iter().filter_map(pick).collect()
}

/// The launches decided: (issue number, attempt).
fn launches(decisions: &[Decision]) -> Vec<(u64, u32)> {
    picked(decisions, |d| match d {
        Decision::Launch { issue, attempt, .. } => Some((issue.number, *attempt)),
        _ => None,
    })
}

/// The status comments decided for issue `n`, in order.
fn statuses(decisions: &[Decision], n: u64) -> Vec<Status> {
    picked(decisions, |d| match d {
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

impl Status {
    /// Asserts that the comment says `text`.
    fn assert_says(&self, text: &str) {
        assert!(self.body.contains(text), "{text:?} not in:\n{}", self.body);
    }

    /// The state labels it adds and removes.
    fn labels(&self) -> (Option<&str>, Option<&str>) {
        (self.add.as_deref(), self.remove.as_deref())
    }
}

/// The replies decided, in order.
fn replies(decisions: &[Decision]) -> Vec<String> {
    picked(decisions, |d| match d {
        Decision::Reply { body, .. } => Some(body.clone()),
        _ => None,
    })
}

/// The reactions decided, in order.
fn reactions(decisions: &[Decision]) -> Vec<String> {
    picked(decisions, |d| match d {
        Decision::React { reaction, .. } => Some(reaction.clone()),
        _ => None,
    })
}

/// The decisions named `name` (see [`Decision::name`]).
fn named<'a>(decisions: &'a [Decision], name: &str) -> Vec<&'a Decision> {
    decisions.iter().filter(|d| d.name() == name).collect()
}

/// Whether a Cancel of issue `n` is among the decisions.
fn cancels(decisions: &[Decision], n: u64) -> bool {
    decisions
        .iter()
        .any(|d| matches!(d, Decision::Cancel { issue, .. } if issue.number == n))
}

/// Asserts that the decisions carry out a writer's commands: 👀 then 🚀, and no reply.
fn assert_carried_out(decisions: &[Decision]) {
    assert_eq!(
        reactions(decisions),
        vec!["eyes", "rocket"],
        "{decisions:#?}"
    );
    assert_eq!(replies(decisions), Vec::<String>::new());
}

/// Asserts that the decisions refuse a writer's commands with exactly `reply`: 👀 then
/// 😕, and nothing launched.
fn assert_refused(decisions: &[Decision], reply: &str) {
    assert_eq!(replies(decisions), vec![reply]);
    assert_eq!(reactions(decisions), vec!["eyes", "confused"]);
    assert_eq!(launches(decisions), vec![]);
}

// ---- The harness itself ----

/// Sanity of the harness itself: a world starts knowing the repository's settings and
/// nothing else.
#[test]
fn a_new_world_knows_the_repository_and_tracks_nothing() {
    let mut world = World::new();
    assert!(world.engine.installation(ID).is_none());
    assert_eq!(world.engine.take_changes(), super::Changes::default());
    assert_eq!(open_snapshot(1).status, IssueStatus::Open);
}
