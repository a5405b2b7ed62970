//! Who acts on GitHub (people, Apps, nobody known) and what they may do in a repository.

use serde::{Deserialize, Serialize};

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
