//! The engine: the dependency graph, the scheduler, command parsing, the status, the
//! prompt and every text users read on GitHub. Pure logic: it imports nothing from http,
//! store, github or codegen and does no I/O.

pub mod board;
pub mod commands;
pub mod durations;
pub mod forecast;
mod graph;
pub mod machine;
pub mod prompt;
mod render;
pub mod repo_config;
mod scheduler;
pub mod status;
pub mod texts;

pub use graph::{
    Blocker, CycleError, DEFAULT_ESTIMATE_MINUTES, DependencyGraph, IssueNode, LaunchOrder,
    Priority, UnblockOn, estimate_from_labels,
};
pub use render::{GraphExport, to_json};
pub use scheduler::{Pick, Scheduler};
// `plan` prints the same diagram as the `graph` reply.
pub use texts::to_mermaid;
