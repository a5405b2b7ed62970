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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppIdentity {
    /// The App's numeric id.
    pub id: u64,
    /// The App's slug (`codegen-orchestrator`), empty when the payload has none.
    pub slug: String,
}

/// Who did something on GitHub (applied a label, typed a command), as far as the bot
/// can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
