//! What the bot keeps of one issue between events (saved as JSON in the store).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::domain::{IssueRef, IssueStatus};

/// What the bot knows of an issue it manages, or of a blocker of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    /// Its title, when known.
    pub title: Option<String>,
    /// Its body (managed issues only: the prompt is made from it).
    #[serde(default)]
    pub body: String,
    /// Open, closed (and how), deleted or unknown.
    pub status: IssueStatus,
    /// Its labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Whether the bot manages it.
    #[serde(default)]
    pub managed: bool,
    /// Dependencies its body and labels declare.
    #[serde(default)]
    pub declared: BTreeSet<IssueRef>,
    /// Its native `blocked_by` dependencies.
    #[serde(default)]
    pub native: BTreeSet<IssueRef>,
    /// Dependencies added by `/codegen depends on`.
    #[serde(default)]
    pub added: BTreeSet<IssueRef>,
    /// Dependencies removed by `/codegen unblock`.
    #[serde(default)]
    pub removed: BTreeSet<IssueRef>,
    /// Pull requests that close it.
    #[serde(default)]
    pub pulls: BTreeSet<String>,
    /// Head branches of its open pull requests, by URL (for stacked work).
    #[serde(default)]
    pub branches: std::collections::BTreeMap<String, String>,
    /// A dependency refused as a cycle, with the cycle's path.
    #[serde(default)]
    pub cycle: Option<String>,
    /// Problems reported once in the status (Projects, configuration).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Runs up to this attempt no longer count (`/codegen retry` asked for another).
    #[serde(default)]
    pub cleared_attempt: u32,
    /// The state label last applied, to change labels only when the state changes.
    #[serde(default)]
    pub state_label: Option<String>,
    /// The Projects option last set, to touch the board only when it changes.
    #[serde(default)]
    pub project_option: Option<String>,
    /// Put under management by a writer's `/codegen run` rather than by the label.
    #[serde(default)]
    pub by_command: bool,
    /// Who applied the trigger label without the right to start agents, as the refusal
    /// posted on the issue names them (said once; cleared when a writer acts).
    #[serde(default)]
    pub refused: Option<String>,
    /// Open issues GitHub counts as blocking it, including those the App cannot read
    /// (`issue_dependencies_summary.blocked_by`), as last seen.
    #[serde(default)]
    pub open_blockers: Option<u32>,
    /// Open blockers GitHub counts but the App cannot list: they hold the issue.
    #[serde(default)]
    pub unseen_blockers: u32,
}

impl Tracked {
    /// A blocker known only by its state.
    pub fn new(status: IssueStatus) -> Self {
        Self {
            title: None,
            body: String::new(),
            status,
            labels: Vec::new(),
            managed: false,
            declared: BTreeSet::new(),
            native: BTreeSet::new(),
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
            pulls: BTreeSet::new(),
            branches: Default::default(),
            cycle: None,
            notes: Vec::new(),
            cleared_attempt: 0,
            state_label: None,
            project_option: None,
            by_command: false,
            refused: None,
            open_blockers: None,
            unseen_blockers: 0,
        }
    }

    /// Every dependency from every source, less those removed by command.
    pub fn blockers(&self) -> BTreeSet<IssueRef> {
        self.declared
            .iter()
            .chain(&self.native)
            .chain(&self.added)
            .filter(|issue| !self.removed.contains(issue))
            .cloned()
            .collect()
    }
}
