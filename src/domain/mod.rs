//! The project's own names for the things it works on. Payload types from GitHub stay in
//! `events`; everything past the door speaks in these.

mod accounts;
mod issue;
mod names;
mod run;

pub use accounts::{Actor, AppIdentity, Permission, User};
pub use issue::{IssueSnapshot, IssueStatus, SubIssueCounts};
pub use names::{
    DeliveryId, InstallationId, InvalidDeliveryId, InvalidIssueRef, InvalidRepoName, IssueRef,
    RepoName,
};
pub use run::{AgentStatus, PullRequestLink, RunId, RunRecord, RunState};
