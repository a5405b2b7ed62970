//! codegen-orchestrator: a GitHub App that turns issues into a dependency graph and works
//! through it with Codegen AI agents. See DESIGN in the README for the architecture; data
//! flows one way: http -> store -> events -> engine -> effects.

pub mod agents;
pub mod clock;
pub mod codegen;
pub mod config;
pub mod deps;
pub mod domain;
pub mod effects;
pub mod engine;
pub mod events;
pub mod github;
pub mod http;
pub mod network;
pub mod orchestrator;
pub mod ownership;
pub mod plan;
pub mod processor;
pub mod runtime;
pub mod simulate;
pub mod store;
pub mod telemetry;
