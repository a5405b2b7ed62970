//! Answers to the engine's reads from facts held in memory (`simulate`, the engine's
//! tests), without I/O.

use super::io::{Decision, Outcome, RepoFile};
use crate::domain::{Actor, IssueRef, IssueSnapshot, Permission, RepoName, User};

/// What GitHub would say, for callers that hold it in memory (`simulate`, the engine's
/// tests): with it, a read decision is answered without I/O by [`Decision::answer`].
pub trait Facts {
    /// `user`'s permission on the repositories.
    fn permission(&self, user: &User) -> Permission;
    /// Who applied the trigger label to `issue`.
    fn label_actor(&self, issue: &IssueRef) -> Actor;
    /// `issue`'s native blockers the App can read.
    fn native_blockers(&self, issue: &IssueRef) -> Vec<IssueSnapshot>;
    /// `issue` as the App reads it (`None`: it cannot).
    fn issue(&self, issue: &IssueRef) -> Option<IssueSnapshot>;
    /// `issue`'s sub-issues the App can read.
    fn sub_issues(&self, _issue: &IssueRef) -> Vec<IssueSnapshot> {
        Vec::new()
    }
    /// `repo`'s configuration file.
    fn repo_file(&self, _repo: &RepoName) -> RepoFile {
        RepoFile::Absent
    }
}

impl Decision {
    /// The answer `facts` give when this decision is one of the reads they cover
    /// (permission, label actor, native blockers, sub-issues, an issue, a configuration
    /// file); `None`
    /// for any other decision.
    pub fn answer(&self, facts: &impl Facts) -> Option<Outcome> {
        Some(match self.clone() {
            Self::CheckPermission {
                installation,
                user,
                then,
                ..
            } => Outcome::PermissionRead {
                installation,
                permission: facts.permission(&user),
                user,
                then,
            },
            Self::ReadLabelActor {
                installation,
                issue,
                ..
            } => Outcome::LabelActorRead {
                installation,
                actor: facts.label_actor(&issue.reference),
                issue,
            },
            Self::ReadNativeBlockers {
                installation,
                issue,
                open_blockers,
            } => Outcome::NativeBlockersRead {
                installation,
                blockers: facts.native_blockers(&issue),
                issue,
                open_blockers,
            },
            Self::ReadSubIssues {
                installation,
                issue,
                counts,
                adopt,
            } => Outcome::SubIssuesRead {
                installation,
                children: facts.sub_issues(&issue),
                issue,
                counts,
                adopt,
            },
            Self::ReadIssue {
                installation,
                issue,
                purpose,
            } => Outcome::IssueRead {
                installation,
                snapshot: facts.issue(&issue),
                issue,
                purpose,
            },
            Self::ReadRepoConfig {
                repo,
                report_on,
                then,
                ..
            } => Outcome::RepoConfigRead {
                file: facts.repo_file(&repo),
                repo,
                report_on,
                then,
            },
            _ => return None,
        })
    }
}
