//! The engine: the dependency graph, the scheduler, command parsing, the status and the
//! prompt. Pure logic: it imports nothing from http, store, github or codegen and does no I/O.

pub mod commands;
mod graph;
pub mod prompt;
pub mod refusal;
mod render;
mod scheduler;
pub mod status;

pub use graph::{
    Blocker, CycleError, DEFAULT_ESTIMATE_MINUTES, DependencyGraph, IssueNode, Priority, UnblockOn,
    estimate_from_labels,
};
pub use render::{GraphExport, to_json, to_mermaid};
pub use scheduler::{Decision, Scheduler};
