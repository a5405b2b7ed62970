//! Projects v2 over GraphQL against the fake: the `Status` field set on every project an
//! issue is on, with the right ids, looked up once per project; a project without the
//! field is skipped, an unknown option reported; GitHub Enterprise's `/api/graphql`; a
//! board GitHub refuses the App (partial data with `FORBIDDEN`) skipped alone and said once
//! in the status comment.

mod support;

use std::collections::BTreeMap;

use codegen_orchestrator::config::{GithubConfig, Secret};
use codegen_orchestrator::domain::IssueRef;
use codegen_orchestrator::github::GitHub;
use codegen_orchestrator::github::graphql::ProjectUpdate;
use serde_json::json;
use support::fake_github::{FakeGithub, FakeProject};
use support::world::{MAINTAINER, World};

fn issue() -> IssueRef {
    IssueRef::new("acme/api".parse().unwrap(), 1)
}

fn options() -> Vec<(String, String)> {
    [
        ("OPT_todo", "Todo"),
        ("OPT_progress", "In Progress"),
        ("OPT_done", "Done"),
    ]
    .map(|(id, name)| (id.to_owned(), name.to_owned()))
    .to_vec()
}

async fn setup(api_suffix: &str) -> (FakeGithub, GitHub) {
    let github = FakeGithub::start().await;
    github.add_issue("acme/api", 1, "One", "", &["codegen"]);
    {
        let mut state = github.state.lock().unwrap();
        let item = |id: &str, values: &[(&str, &str)]| {
            let values: BTreeMap<String, String> = values
                .iter()
                .map(|(f, o)| ((*f).to_owned(), (*o).to_owned()))
                .collect();
            (id.to_owned(), ("acme/api".to_owned(), 1), values)
        };
        state.projects.insert(
            "PVT_roadmap".into(),
            FakeProject {
                title: "Roadmap".into(),
                fields: vec![
                    (
                        "PVTF_priority".into(),
                        "Priority".into(),
                        vec![("OPT_p1".into(), "P1".into())],
                    ),
                    ("PVTF_status".into(), "Status".into(), options()),
                ],
                items: vec![item("PVTI_roadmap_1", &[("PVTF_status", "OPT_todo")])],
            },
        );
        state.projects.insert(
            "PVT_sprint".into(),
            FakeProject {
                title: "Sprint 12".into(),
                fields: vec![(
                    "PVTF_sprint_status".into(),
                    "Status".into(),
                    vec![
                        ("OPT_s_todo".into(), "Todo".into()),
                        ("OPT_s_progress".into(), "In Progress".into()),
                        ("OPT_s_done".into(), "Done".into()),
                    ],
                )],
                items: vec![item("PVTI_sprint_1", &[])],
            },
        );
        state.projects.insert(
            "PVT_bugs".into(),
            FakeProject {
                title: "Bug triage".into(),
                fields: vec![("PVTF_severity".into(), "Severity".into(), vec![])],
                items: vec![item("PVTI_bugs_1", &[])],
            },
        );
    }
    let config = GithubConfig {
        api_url: format!("{}{api_suffix}", github.url),
        token: Some(Secret::new("ghp_projects")),
        ..GithubConfig::default()
    };
    let client = GitHub::for_repository(&config, &"acme/api".parse().unwrap())
        .await
        .unwrap();
    (github, client)
}

#[tokio::test]
async fn the_status_is_set_on_every_project_with_the_right_ids() {
    let (github, client) = setup("").await;
    let updates = client
        .set_project_status(&issue(), "Status", "In Progress")
        .await
        .unwrap();
    let set = |project: &str| ProjectUpdate::Set {
        project: project.into(),
    };
    let skipped = ProjectUpdate::NoSuchField {
        project: "Bug triage".into(),
    };
    assert_eq!(updates, [skipped, set("Roadmap"), set("Sprint 12")]);
    let mutations = github.state.lock().unwrap().mutations.clone();
    let sent: Vec<_> = mutations
        .iter()
        .map(|(_, variables)| variables.clone())
        .collect();
    assert_eq!(
        sent,
        [
            json!({"project": "PVT_roadmap", "item": "PVTI_roadmap_1", "field": "PVTF_status", "option": "OPT_progress"}),
            json!({"project": "PVT_sprint", "item": "PVTI_sprint_1", "field": "PVTF_sprint_status", "option": "OPT_s_progress"}),
        ]
    );

    // Again: already set, nothing written; the fields were looked up once per project.
    let again = client
        .set_project_status(&issue(), "Status", "In Progress")
        .await
        .unwrap();
    assert!(again.contains(&ProjectUpdate::Unchanged {
        project: "Roadmap".into()
    }));
    client
        .set_project_status(&issue(), "Status", "Done")
        .await
        .unwrap();
    let state = github.state.lock().unwrap();
    assert_eq!(state.mutations.len(), 4);
    let calls = state
        .requests
        .iter()
        .filter(|r| r.path == "/graphql")
        .count();
    // 3 item reads + 4 mutations + the fields of 3 projects, once each.
    assert_eq!(calls, 3 + 4 + 3);
}

#[tokio::test]
async fn an_unknown_option_is_a_reported_configuration_problem() {
    let (github, client) = setup("").await;
    let updates = client
        .set_project_status(&issue(), "Status", "Running")
        .await
        .unwrap();
    assert!(updates.contains(&ProjectUpdate::NoSuchOption {
        project: "Roadmap".into(),
        available: vec!["Todo".into(), "In Progress".into(), "Done".into()],
    }));
    assert!(github.state.lock().unwrap().mutations.is_empty());
}

#[tokio::test]
async fn items_nodes_and_adding_to_a_project() {
    let (github, client) = setup("").await;
    let items = client.project_items(&issue(), "Status").await.unwrap();
    let roadmap = items.iter().find(|i| i.project_title == "Roadmap").unwrap();
    assert_eq!(roadmap.current.as_deref(), Some("Todo"));
    let node_id = github.state.lock().unwrap().issues[&("acme/api".to_owned(), 1)]["node_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        client.issue_for_node(&node_id).await.unwrap(),
        Some(issue())
    );
    assert_eq!(client.issue_for_node("DI_draft").await.unwrap(), None);
    let item = client
        .add_to_project("PVT_roadmap", &node_id)
        .await
        .unwrap();
    assert_eq!(item, format!("PVTI_{node_id}"));
}

#[tokio::test]
async fn github_enterprise_graphql_lives_at_api_graphql() {
    let (github, client) = setup("/api/v3").await;
    client
        .set_project_status(&issue(), "Status", "Done")
        .await
        .unwrap();
    let requests = github.requests();
    let graphql: Vec<_> = requests
        .iter()
        .filter(|r| r.path.contains("graphql"))
        .collect();
    assert!(!graphql.is_empty());
    assert!(
        graphql.iter().all(|r| r.path == "/api/graphql"),
        "{graphql:#?}"
    );
    assert!(
        graphql
            .iter()
            .all(|r| r.authorization == "Bearer ghp_projects"),
        "{graphql:#?}"
    );
}

#[tokio::test]
async fn the_pull_requests_that_close_an_issue() {
    let (github, client) = setup("").await;
    github.state.lock().unwrap().closing.insert(
        ("acme/api".into(), 1),
        vec![json!({"number": 9, "url": "https://github.com/acme/api/pull/9", "state": "OPEN", "merged": false,
                    "headRefName": "codegen/1-one", "repository": {"nameWithOwner": "acme/api"}})],
    );
    let pulls = client.closing_pull_requests(&issue()).await.unwrap();
    assert_eq!(pulls.len(), 1);
    assert_eq!(
        pulls[0].reference,
        IssueRef::new("acme/api".parse().unwrap(), 9)
    );
    assert_eq!(pulls[0].head_ref, "codegen/1-one");
    assert_eq!(pulls[0].state, "OPEN");
}

/// GitHub answers the items query with partial data when one board of several is out of
/// reach: `null` for its item and a `FORBIDDEN` error whose path points there. The other
/// boards are read and set; the refused one is reported, not the whole update failed.
#[tokio::test]
async fn a_board_out_of_reach_is_skipped_and_the_others_are_set() {
    let (github, client) = setup("").await;
    github
        .state
        .lock()
        .unwrap()
        .forbidden_projects
        .insert("PVT_sprint".into());
    let updates = client
        .set_project_status(&issue(), "Status", "In Progress")
        .await
        .unwrap();
    assert_eq!(
        updates,
        [
            ProjectUpdate::NoSuchField {
                project: "Bug triage".into()
            },
            ProjectUpdate::Set {
                project: "Roadmap".into()
            },
            ProjectUpdate::Unreachable {
                project: None,
                message: "Resource not accessible by integration".into()
            },
        ]
    );
    let mutations = github.state.lock().unwrap().mutations.clone();
    assert_eq!(mutations.len(), 1, "{mutations:#?}");
    assert_eq!(mutations[0].1["project"], "PVT_roadmap");
    let items = client.project_items(&issue(), "Status").await.unwrap();
    let titles: Vec<&str> = items.iter().map(|i| i.project_title.as_str()).collect();
    assert_eq!(titles, ["Bug triage", "Roadmap"]);
}

/// A board the App may read but not write refuses the mutation alone.
#[tokio::test]
async fn a_read_only_board_refuses_the_write_and_only_it_is_skipped() {
    let (github, client) = setup("").await;
    github
        .state
        .lock()
        .unwrap()
        .read_only_projects
        .insert("PVT_roadmap".into());
    let updates = client
        .set_project_status(&issue(), "Status", "Done")
        .await
        .unwrap();
    assert!(
        updates.contains(&ProjectUpdate::Unreachable {
            project: Some("Roadmap".into()),
            message: "Resource not accessible by integration".into()
        }),
        "{updates:#?}"
    );
    assert!(
        updates.contains(&ProjectUpdate::Set {
            project: "Sprint 12".into()
        }),
        "{updates:#?}"
    );
}

/// Errors other than a refused board still fail the read: nothing is guessed from them.
#[tokio::test]
async fn other_graphql_errors_still_fail_the_update() {
    let (github, client) = setup("").await;
    github.script(
        "/graphql",
        200,
        &[],
        json!({"data": {"repository": null}, "errors": [{"type": "NOT_FOUND", "path": ["repository"],
            "locations": [{"line": 2, "column": 3}], "message": "Could not resolve to a Repository with the name 'acme/api'."}]}),
    );
    let err = client
        .set_project_status(&issue(), "Status", "Done")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Could not resolve"), "{err}");
}

/// Through the whole app: the reachable board follows the issue, and the status comment
/// says once that the other one could not be updated, across several updates.
#[tokio::test]
async fn the_status_comment_says_once_that_a_board_is_out_of_reach() {
    let world = World::start().await;
    world.add_issue("acme/api", 1, "Schema", "", &[]);
    world.add_issue("acme/api", 2, "API", "Depends on #1", &[]);
    let states = ["Blocked", "Todo", "In Progress", "Done", "Failed"];
    world.add_project(
        "PVT_road",
        "Roadmap",
        &states,
        &[("acme/api", 1), ("acme/api", 2)],
    );
    world.add_project("PVT_private", "Private", &states, &[("acme/api", 1)]);
    world
        .github
        .state
        .lock()
        .unwrap()
        .forbidden_projects
        .insert("PVT_private".into());
    world.label("acme/api", 1, "codegen", MAINTAINER).await;
    world.label("acme/api", 2, "codegen", MAINTAINER).await;
    assert_eq!(
        world.project_status("PVT_road", "acme/api", 1).as_deref(),
        Some("In Progress")
    );
    assert_eq!(world.project_status("PVT_private", "acme/api", 1), None);
    let status = world.status_comments("acme/api", 1);
    assert_eq!(status.len(), 1, "{status:#?}");
    let note = "GitHub does not let the App reach it (\"Resource not accessible by integration\")";
    assert_eq!(status[0].matches(note).count(), 1, "{}", status[0]);
    assert!(status[0].contains("**running**"), "{}", status[0]);

    // The run finishes: the state changes, the board is refused again, and the note is
    // still said once.
    let run = world.run_of("acme/api", 1);
    world.codegen.finish(run, "COMPLETE", None);
    world.tick().await;
    assert_eq!(
        world.project_status("PVT_road", "acme/api", 1).as_deref(),
        Some("Done")
    );
    let status = world.status_comments("acme/api", 1);
    assert_eq!(status.len(), 1, "{status:#?}");
    assert!(status[0].contains("**done**"), "{}", status[0]);
    assert_eq!(status[0].matches(note).count(), 1, "{}", status[0]);
    // The issue that is on the reachable board only has no such note.
    let other = world.status_comments("acme/api", 2);
    assert!(
        !other.concat().contains("does not let the App reach"),
        "{other:#?}"
    );
}
