//! Projects v2 over GraphQL against the fake: the `Status` field set on every project an
//! issue is on, with the right ids, looked up once per project; a project without the
//! field is skipped, an unknown option reported; GitHub Enterprise's `/api/graphql`.

mod support;

use std::collections::BTreeMap;

use codegen_orchestrator::config::{GithubConfig, Secret};
use codegen_orchestrator::domain::IssueRef;
use codegen_orchestrator::github::GitHub;
use codegen_orchestrator::github::graphql::ProjectUpdate;
use serde_json::json;
use support::fake_github::{FakeGithub, FakeProject};

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
