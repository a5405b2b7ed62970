//! What an issue shows when its trigger label was applied by someone who may not start
//! agents. Posted once, as the status comment (same marker), so that a later
//! status replaces it when a writer acts.

use std::fmt::Write;

use super::status::STATUS_MARKER;
use crate::domain::Actor;

/// How the actor is named in the refusal: `@login`, `the App slug`, or "someone GitHub
/// no longer knows".
pub fn actor_name(actor: &Actor) -> String {
    match actor {
        Actor::Person(user) => format!("@{}", user.login),
        Actor::App { app: Some(app), .. } if !app.slug.is_empty() => {
            format!("the App `{}`", app.slug)
        }
        Actor::App { login, .. } => format!("the bot `{login}`"),
        Actor::Unknown => "an account GitHub no longer knows".to_owned(),
    }
}

/// The status comment of an issue whose trigger label `label` was applied by `actor`, who
/// cannot start agents. `command` is the command prefix.
pub fn render_refusal(label: &str, actor: &Actor, command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{STATUS_MARKER}");
    let _ = writeln!(out, "### 🚫 codegen-orchestrator: **not started**\n");
    let who = actor_name(actor);
    let why = match actor {
        Actor::Person(_) => {
            "who cannot start agents (write, maintain or admin permission on the repository is needed)"
        }
        Actor::App { .. } => {
            "which cannot start agents (only Apps listed in `orchestrator.trusted_apps` can)"
        }
        Actor::Unknown => "which cannot start agents",
    };
    let _ = writeln!(out, "The `{label}` label was added by {who}, {why}.\n");
    let _ = writeln!(
        out,
        "Nothing runs for this issue until someone with write access adds the `{label}` label \
         again or comments `{command} run`."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AppIdentity, User};

    #[test]
    fn a_reader_is_named_and_told_what_would_work() {
        let reader = Actor::Person(User {
            id: 7,
            login: "octo-reader".into(),
            is_bot: false,
        });
        insta::assert_snapshot!(render_refusal("codegen", &reader, "/codegen"));
    }

    #[test]
    fn apps_and_unknown_accounts_are_named_by_what_github_says() {
        let actions = Actor::App {
            app: Some(AppIdentity {
                id: 15368,
                slug: "github-actions".into(),
            }),
            login: "github-actions[bot]".into(),
        };
        let text = render_refusal("codegen", &actions, "/codegen");
        assert!(text.starts_with(STATUS_MARKER));
        assert!(text.contains("added by the App `github-actions`"), "{text}");
        assert!(text.contains("orchestrator.trusted_apps"), "{text}");
        let nameless = Actor::App {
            app: None,
            login: "helper[bot]".into(),
        };
        assert_eq!(actor_name(&nameless), "the bot `helper[bot]`");
        // An App GitHub names without a slug is named by its bot account.
        let slugless = Actor::App {
            app: Some(AppIdentity {
                id: 9,
                slug: String::new(),
            }),
            login: "helper[bot]".into(),
        };
        assert_eq!(actor_name(&slugless), "the bot `helper[bot]`");
        assert!(render_refusal("ai", &Actor::Unknown, "/bot").contains("comments `/bot run`"));
    }
}
