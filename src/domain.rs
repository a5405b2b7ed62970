//! The project's own names for the things it works on. Payload types from GitHub stay in
//! `events`; everything past the door speaks in these.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A repository, `owner/name`. Compared case-sensitively as GitHub sends it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    /// Builds a name from its two parts; both must be non-empty and free of `/`.
    pub fn new(owner: &str, name: &str) -> Result<Self, InvalidRepoName> {
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if valid(owner) && valid(name) {
            Ok(Self {
                owner: owner.to_owned(),
                name: name.to_owned(),
            })
        } else {
            Err(InvalidRepoName(format!("{owner}/{name}")))
        }
    }

    /// The repository of a REST API URL: `https://api.github.com/repos/octo/hello` (or a
    /// GitHub Enterprise `https://host/api/v3/repos/octo/hello`, or anything below it).
    pub fn from_api_url(url: &str) -> Option<Self> {
        let (_, rest) = url.split_once("/repos/")?;
        let mut parts = rest.split('/');
        Self::new(parts.next()?, parts.next()?).ok()
    }

    /// The repository of a web URL: `https://github.com/octo/hello/issues/12`.
    pub fn from_html_url(url: &str) -> Option<Self> {
        let (_, rest) = url.split_once("://")?;
        let mut parts = rest.split('/').skip(1);
        Self::new(parts.next()?, parts.next()?).ok()
    }

    /// The account that owns the repository.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The repository's name without its owner.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl FromStr for RepoName {
    type Err = InvalidRepoName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (owner, name) = s
            .split_once('/')
            .ok_or_else(|| InvalidRepoName(s.to_owned()))?;
        Self::new(owner, name)
    }
}

impl TryFrom<String> for RepoName {
    type Error = InvalidRepoName;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<RepoName> for String {
    fn from(value: RepoName) -> Self {
        value.to_string()
    }
}

/// A string that is not an `owner/name` repository name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a repository name of the form owner/name")]
pub struct InvalidRepoName(String);

/// An issue (or pull request, which GitHub counts as an issue) in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IssueRef {
    /// The repository the issue lives in.
    pub repo: RepoName,
    /// The issue's number within that repository.
    pub number: u64,
}

impl IssueRef {
    /// The issue `number` of `repo`.
    pub fn new(repo: RepoName, number: u64) -> Self {
        Self { repo, number }
    }
}

impl fmt::Display for IssueRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.repo, self.number)
    }
}

impl FromStr for IssueRef {
    type Err = InvalidIssueRef;

    /// `owner/repo#12`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidIssueRef(s.to_owned());
        let (repo, number) = s.rsplit_once('#').ok_or_else(invalid)?;
        let repo = repo.parse().map_err(|_| invalid())?;
        let number = number.parse().map_err(|_| invalid())?;
        Ok(Self::new(repo, number))
    }
}

/// A string that is not an `owner/repo#N` issue reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an issue reference of the form owner/repo#N")]
pub struct InvalidIssueRef(String);

/// A GitHub App installation (one org or user account that installed the App).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstallationId(pub u64);

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A Codegen agent run's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an agent run stands, from Codegen's free-text `status`, compared without regard to
/// case: `COMPLETE`/`completed` succeeded; `FAILED`, `ERROR`, `CANCELLED`, `STOPPED`,
/// `TIMEOUT`, `MAX_ITERATIONS_REACHED`, `OUT_OF_TOKENS` failed; anything else, unknown values
/// included, is still running (a new status must never be taken for an ending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Not finished.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished without success.
    Failed,
}

impl AgentStatus {
    /// Classifies a Codegen status string (`None`: not reported yet, so running).
    pub fn from_codegen(status: Option<&str>) -> Self {
        const SUCCESS: &[&str] = &["complete", "completed"];
        const FAILURE: &[&str] = &[
            "failed",
            "error",
            "cancelled",
            "canceled",
            "stopped",
            "timeout",
            "max_iterations_reached",
            "out_of_tokens",
        ];
        let Some(status) = status.map(str::trim) else {
            return Self::Running;
        };
        if SUCCESS.iter().any(|s| status.eq_ignore_ascii_case(s)) {
            Self::Succeeded
        } else if FAILURE.iter().any(|s| status.eq_ignore_ascii_case(s)) {
            Self::Failed
        } else {
            Self::Running
        }
    }
}

/// GitHub's id for one webhook delivery (`X-GitHub-Delivery`): 1 to 128 characters of
/// `[A-Za-z0-9-]`, so it is safe in logs, keys and file names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId(String);

impl DeliveryId {
    /// The longest delivery id accepted.
    pub const MAX_LEN: usize = 128;

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DeliveryId {
    type Err = InvalidDeliveryId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let well_formed = (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if well_formed {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidDeliveryId)
        }
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A delivery id header that is empty, too long or has characters outside `[A-Za-z0-9-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("X-GitHub-Delivery must be 1 to 128 characters of A-Z, a-z, 0-9 and '-'")]
pub struct InvalidDeliveryId;

/// A GitHub account, identified by its id (logins can be renamed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct User {
    /// The stable numeric id.
    pub id: u64,
    /// The login at the time of the event.
    pub login: String,
    /// Whether GitHub marks the account as a bot (`type: Bot`).
    pub is_bot: bool,
}

/// A GitHub App, as payloads name it (`performed_via_github_app`). Trust goes by these,
/// never by a login.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppIdentity {
    /// The App's numeric id.
    pub id: u64,
    /// The App's slug (`codegen-orchestrator`), empty when the payload has none.
    pub slug: String,
}

/// Who did something on GitHub (applied a label, typed a command), as far as the bot
/// can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// A person.
    Person(User),
    /// A bot account: a GitHub App (Actions included), named by the App when GitHub says
    /// which.
    App {
        /// The App it acted for, when known.
        app: Option<AppIdentity>,
        /// The bot account's login (`name[bot]`), for messages only.
        login: String,
    },
    /// Nobody GitHub still knows (a deleted account), or no record of who it was.
    Unknown,
}

/// Where an issue stands, as far as its dependents are concerned.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum IssueStatus {
    /// Open.
    Open,
    /// Closed as completed: its dependents may go.
    ClosedCompleted,
    /// Closed as not planned (or as a duplicate): its dependents stay blocked.
    ClosedNotPlanned,
    /// Deleted: its dependents stay blocked.
    Deleted,
    /// Not fetched yet.
    Unknown,
}

impl IssueStatus {
    /// Whether a dependent of an issue in this state may start.
    pub fn satisfies(self) -> bool {
        self == Self::ClosedCompleted
    }
}

/// An issue as the bot reads it from GitHub: what the graph and the planner need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueSnapshot {
    /// Where it is.
    pub reference: IssueRef,
    /// Title.
    pub title: String,
    /// Body Markdown; empty when there is none.
    pub body: String,
    /// Open, closed (and how), or unknown.
    pub status: IssueStatus,
    /// Label names.
    pub labels: Vec<String>,
    /// How many open issues GitHub counts as blocking it (`issue_dependencies_summary.blocked_by`),
    /// including those the App cannot read; `None` when the payload has no summary.
    pub open_blockers: Option<u32>,
}

impl IssueStatus {
    /// The status GitHub's `state` and `state_reason` describe.
    pub fn from_github(state: &str, state_reason: Option<&str>) -> Self {
        match (state, state_reason) {
            ("open", _) => Self::Open,
            ("closed", Some("not_planned" | "duplicate")) => Self::ClosedNotPlanned,
            ("closed", _) => Self::ClosedCompleted,
            _ => Self::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_parse_and_print() {
        let repo: RepoName = "octo-org/hello.world".parse().unwrap();
        assert_eq!(repo.owner(), "octo-org");
        assert_eq!(repo.name(), "hello.world");
        assert_eq!(repo.to_string(), "octo-org/hello.world");
        assert_eq!(
            IssueRef::new(repo, 12).to_string(),
            "octo-org/hello.world#12"
        );
    }

    #[test]
    fn issue_references_parse_back_from_their_text() {
        let issue: IssueRef = "octo-org/hello#12".parse().unwrap();
        assert_eq!(issue.to_string(), "octo-org/hello#12");
        for bad in ["octo-org/hello", "#12", "octo-org/hello#x", "hello#12"] {
            assert!(bad.parse::<IssueRef>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn malformed_repo_names_are_refused() {
        for bad in ["", "owner", "/name", "owner/", "a/b/c", "own er/x"] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn delivery_ids_follow_githubs_alphabet() {
        assert!(
            "72d3162e-cc78-11e3-81ab-4c9367dc0958"
                .parse::<DeliveryId>()
                .is_ok()
        );
        assert!("a".repeat(128).parse::<DeliveryId>().is_ok());
        for bad in ["", "a b", "../etc", "id_1", "ü"] {
            assert!(bad.parse::<DeliveryId>().is_err(), "{bad:?} was accepted");
        }
        assert!("a".repeat(129).parse::<DeliveryId>().is_err());
    }

    #[test]
    fn codegen_statuses_are_classified_without_regard_to_case() {
        for s in ["COMPLETE", "completed", "Complete"] {
            assert_eq!(
                AgentStatus::from_codegen(Some(s)),
                AgentStatus::Succeeded,
                "{s}"
            );
        }
        for s in [
            "FAILED",
            "failed",
            "ERROR",
            "CANCELLED",
            "STOPPED",
            "TIMEOUT",
            "MAX_ITERATIONS_REACHED",
            "OUT_OF_TOKENS",
            "out_of_tokens",
        ] {
            assert_eq!(
                AgentStatus::from_codegen(Some(s)),
                AgentStatus::Failed,
                "{s}"
            );
        }
        for s in [
            "ACTIVE",
            "RUNNING",
            "PENDING",
            "EVALUATION",
            "PAUSED",
            "queued",
            "in_progress",
            "SOMETHING_NEW",
            "",
        ] {
            assert_eq!(
                AgentStatus::from_codegen(Some(s)),
                AgentStatus::Running,
                "{s}"
            );
        }
        assert_eq!(AgentStatus::from_codegen(None), AgentStatus::Running);
    }
}

/// Where an agent run stands: one enum for the store, the engine and the effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// The intent is recorded; its holder is asking Codegen (or crashed doing so).
    Launching,
    /// Codegen accepted it and it has not ended.
    Running,
    /// The agent reported success.
    Succeeded,
    /// The agent reported failure, or Codegen refused the launch.
    Failed,
    /// It ran longer than `codegen.run_timeout_secs` and was stopped.
    TimedOut,
    /// Stopped by `/codegen cancel` or because the issue left management.
    Cancelled,
}

impl RunState {
    /// Every state, in the order a run goes through them.
    pub const ALL: [RunState; 6] = [
        Self::Launching,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Cancelled,
    ];

    /// The name stored in the database and shown in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Launching => "launching",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Launching | Self::Running)
    }

    /// Whether it ended without success (a retry may follow).
    pub fn ended_badly(self) -> bool {
        self.is_final() && self != Self::Succeeded
    }
}

/// One attempt at an issue, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The row's key.
    pub row: i64,
    /// The installation the issue belongs to.
    pub installation: InstallationId,
    /// The issue.
    pub issue: IssueRef,
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// Where it stands.
    pub state: RunState,
    /// The agent's instructions.
    pub prompt: String,
    /// Codegen's id, once it accepted the run.
    pub run_id: Option<RunId>,
    /// The run's page on codegen.com.
    pub web_url: Option<String>,
    /// The agent's summary, once ended.
    pub summary: Option<String>,
    /// Pull requests the agent opened.
    pub pull_requests: Vec<PullRequestLink>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Unix ms the intent was recorded.
    pub created_at: i64,
    /// Unix ms Codegen accepted it.
    pub started_at: Option<i64>,
    /// Unix ms it ended.
    pub finished_at: Option<i64>,
}

/// A pull request by its page: the URL as GitHub or Codegen gave it, and the pull request
/// it names when the URL is a GitHub pull request page (`https://host/owner/repo/pull/12`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct PullRequestLink {
    /// The page.
    pub url: String,
    /// The pull request, when the URL names one.
    pub pull: Option<IssueRef>,
}

impl PullRequestLink {
    /// The link for `url`, parsed once.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let pull = pull_of(&url);
        Self { url, pull }
    }
}

impl From<String> for PullRequestLink {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

impl From<PullRequestLink> for String {
    fn from(link: PullRequestLink) -> Self {
        link.url
    }
}

impl fmt::Display for PullRequestLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// The pull request a GitHub URL names (`https://host/owner/repo/pull/12`).
fn pull_of(url: &str) -> Option<IssueRef> {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let number = parts.next()?.parse().ok()?;
    (parts.next()? == "pull").then_some(())?;
    let name = parts.next()?;
    let owner = parts.next()?;
    Some(IssueRef::new(RepoName::new(owner, name).ok()?, number))
}

#[cfg(test)]
mod run_tests {
    use super::*;

    #[test]
    fn a_pull_request_link_names_its_pull_request_when_it_is_a_github_pull_page() {
        let link = PullRequestLink::new("https://github.com/acme/api/pull/12/");
        assert_eq!(link.pull.unwrap().to_string(), "acme/api#12");
        assert_eq!(
            PullRequestLink::new("https://github.com/acme/api/issues/12").pull,
            None
        );
        assert_eq!(PullRequestLink::new("not a url").pull, None);
    }

    #[test]
    fn run_states_round_trip_through_their_stored_names() {
        for state in RunState::ALL {
            assert_eq!(RunState::parse(state.as_str()), Some(state));
        }
        assert_eq!(RunState::parse("sleeping"), None);
        assert!(RunState::Failed.ended_badly() && RunState::Cancelled.ended_badly());
        assert!(!RunState::Succeeded.ended_badly() && !RunState::Running.ended_badly());
    }
}

/// What a user may do in a repository, as GitHub names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    /// Administer.
    Admin,
    /// Maintain.
    Maintain,
    /// Push.
    Write,
    /// Triage.
    Triage,
    /// Read only.
    Read,
    /// No access.
    None,
}

impl Permission {
    /// GitHub's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Maintain => "maintain",
            Self::Write => "write",
            Self::Triage => "triage",
            Self::Read => "read",
            Self::None => "none",
        }
    }

    /// Whether the user may spend agents on the repository (write, maintain or admin).
    pub fn may_run_agents(self) -> bool {
        matches!(self, Self::Admin | Self::Maintain | Self::Write)
    }
}
