//! Names and ids of the things on GitHub the app works on: repositories, issues,
//! installations and webhook deliveries.

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
}
