//! Several installations at once, as the replica test and bench use them: installation
//! `100 + i` holds the one repository `org{i}/api`, where a maintainer has write permission.

use serde_json::{Value, json};

use super::fake_codegen::FakeCodegen;
use super::fake_github::FakeGithub;
use super::fixture;

/// The maintainer with write permission in every repository.
pub const MAINTAINER: &str = "octo-maintainer";

/// The repository of installation `i`.
pub fn repo(i: u64) -> String {
    format!("org{i}/api")
}

/// Fake GitHub and Codegen with installations 1..=`installations`, each repository holding
/// `issues` issues whose bodies `body(n)` gives.
pub async fn fakes(
    installations: u64,
    issues: u64,
    body: impl Fn(u64) -> String,
) -> (FakeGithub, FakeCodegen) {
    let github = FakeGithub::start().await;
    let codegen = FakeCodegen::start().await;
    for i in 1..=installations {
        let repo = repo(i);
        {
            let mut state = github.state.lock().unwrap();
            state.installations.insert(repo.clone(), 100 + i);
            state.permissions.insert(
                (repo.clone(), MAINTAINER.into()),
                ("write".into(), "write".into()),
            );
        }
        codegen.add_repo(7000 + i, &repo);
        for n in 1..=issues {
            github.add_issue(&repo, n, &format!("Issue {n}"), &body(n), &[]);
        }
    }
    (github, codegen)
}

/// The maintainer labels issue `n` of installation `i` `codegen`: the fake's issue carries
/// the label from now on, and this is the `issues.labeled` delivery GitHub sends.
pub fn labelled(github: &FakeGithub, i: u64, n: u64) -> Vec<u8> {
    let repo = repo(i);
    let issue = {
        let mut state = github.state.lock().unwrap();
        let issue = state.issues.get_mut(&(repo.clone(), n)).unwrap();
        issue["labels"] = json!([{"id": 1, "node_id": "LA_1", "url": "", "name": "codegen",
            "color": "ededed", "default": false, "description": null}]);
        issue.clone()
    };
    let mut payload: Value =
        serde_json::from_slice(&fixture("issues/labeled.payload.json")).unwrap();
    payload["issue"] = issue;
    payload["label"]["name"] = json!("codegen");
    payload["installation"] = json!({"id": 100 + i});
    payload["repository"]["full_name"] = json!(repo);
    payload["repository"]["name"] = json!("api");
    payload["repository"]["owner"]["login"] = json!(format!("org{i}"));
    payload["sender"] = json!({"login": MAINTAINER, "id": 101, "type": "User"});
    serde_json::to_vec(&payload).unwrap()
}
