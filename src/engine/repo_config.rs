//! `.github/codegen-orchestrator.yml`: a repository's own settings on its default branch.
//! It may override the trigger label, the label prefix, the prompt template, the agent cap
//! of the repository and the Projects field mapping; anything else is refused, and an
//! invalid file leaves the defaults in force (the problem is reported on the issue that
//! caused the file to be read, and in the log).

use serde::{Deserialize, Serialize};

use crate::config::StatusOptions;

/// Where the file lives.
pub const REPO_CONFIG_PATH: &str = ".github/codegen-orchestrator.yml";

/// What the file may set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepoOverrides {
    /// `orchestrator.trigger_label` for this repository.
    pub trigger_label: Option<String>,
    /// `orchestrator.label_prefix` for this repository.
    pub label_prefix: Option<String>,
    /// `orchestrator.prompt_template` for this repository.
    pub prompt_template: Option<String>,
    /// Agents running at once in this repository.
    pub max_agents: Option<usize>,
    /// `projects.*` for this repository.
    pub projects: Option<ProjectsOverrides>,
}

/// The `projects` part of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectsOverrides {
    /// The single-select field's name.
    pub status_field: Option<String>,
    /// The option for each state (a whole mapping; states left out leave the field alone).
    pub status_options: Option<StatusOptions>,
}

/// The settings that apply in one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSettings {
    /// The label that manages an issue.
    pub trigger_label: String,
    /// The state labels' prefix.
    pub label_prefix: String,
    /// The prompt template.
    pub prompt_template: String,
    /// The repository's agent cap, if any.
    pub max_agents: Option<usize>,
    /// The Projects field.
    pub status_field: String,
    /// The Projects options.
    pub status_options: StatusOptions,
}

impl RepoSettings {
    /// The settings `overrides` make of the global ones.
    pub fn with(defaults: &RepoSettings, overrides: RepoOverrides) -> Self {
        let projects = overrides.projects.unwrap_or_default();
        Self {
            trigger_label: overrides
                .trigger_label
                .unwrap_or_else(|| defaults.trigger_label.clone()),
            label_prefix: overrides
                .label_prefix
                .unwrap_or_else(|| defaults.label_prefix.clone()),
            prompt_template: overrides
                .prompt_template
                .unwrap_or_else(|| defaults.prompt_template.clone()),
            max_agents: overrides.max_agents.or(defaults.max_agents),
            status_field: projects
                .status_field
                .unwrap_or_else(|| defaults.status_field.clone()),
            status_options: projects
                .status_options
                .unwrap_or_else(|| defaults.status_options.clone()),
        }
    }
}

/// Reads the file's text; the error names the key and the problem.
pub fn parse_overrides(text: &str) -> Result<RepoOverrides, String> {
    if text.trim().is_empty() {
        return Ok(RepoOverrides::default());
    }
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let problem = err.into_inner().to_string();
        if path == "." || path.is_empty() {
            problem
        } else {
            format!("key `{path}`: {problem}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_mistakes_are_named() {
        let overrides =
            parse_overrides("trigger_label: ai\nmax_agents: 2\nprojects:\n  status_field: Stage\n")
                .unwrap();
        assert_eq!(overrides.trigger_label.as_deref(), Some("ai"));
        assert_eq!(overrides.max_agents, Some(2));
        let err = parse_overrides("trigger_lable: ai\n").unwrap_err();
        assert!(
            err.contains("trigger_lable") && err.contains("trigger_label"),
            "{err}"
        );
        let err = parse_overrides("max_agents: lots\n").unwrap_err();
        assert!(err.starts_with("key `max_agents`"), "{err}");
        assert!(parse_overrides("[1, 2").is_err());
        assert_eq!(parse_overrides("").unwrap(), RepoOverrides::default());
    }
}
