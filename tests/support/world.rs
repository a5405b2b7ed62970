//! The whole app against the fake GitHub and the fake Codegen: signed webhooks built from
//! the real payloads in `../shared/fixtures` go through the real router, the inbox and the
//! bot; tests look at what the fakes were asked to do.

use std::path::PathBuf;
use std::sync::Mutex;

use axum::http::StatusCode;
use codegen_orchestrator::config::{Config, Secret, SecretList};
use codegen_orchestrator::http::DoorLimits;
use codegen_orchestrator::runtime::{App, Tuning};
use serde_json::{Value, json};

use super::fake_codegen::{self, FakeCodegen};
use super::fake_github::{FakeGithub, FakeProject};
use super::{SECRET, fixture, quick_retries, webhook};

/// The installation every repository of the world belongs to.
pub const INSTALLATION: u64 = 42;
/// A maintainer with write permission everywhere.
pub const MAINTAINER: &str = "maintainer";
/// Someone who may only read.
pub const READER: &str = "reader";

/// The fakes and the app.
pub struct World {
    pub github: FakeGithub,
    pub codegen: FakeCodegen,
    pub app: App,
    pub dir: tempfile::TempDir,
    config: Config,
    tuning: Tuning,
    /// Every delivery sent: (event, id, body).
    pub sent: Mutex<Vec<(String, String, Vec<u8>)>>,
}

fn test_key() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/test-app-key.pem")
}

impl World {
    /// A world with `acme/api`, `acme/web` and `other/lib` in one installation.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_tuned(adjust, quick_tuning()).await
    }

    pub async fn start_tuned(adjust: impl FnOnce(&mut Config), tuning: Tuning) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            codegen_orchestrator::telemetry::init_logging();
        }
        let github = FakeGithub::start().await;
        let codegen = FakeCodegen::start().await;
        {
            let mut state = github.state.lock().unwrap();
            for repo in ["acme/api", "acme/web", "other/lib"] {
                state.installations.insert(repo.into(), INSTALLATION);
                state.permissions.insert(
                    (repo.into(), MAINTAINER.into()),
                    ("write".into(), "write".into()),
                );
                state
                    .permissions
                    .insert((repo.into(), READER.into()), ("read".into(), "read".into()));
            }
        }
        codegen.add_repo(7001, "acme/api");
        codegen.add_repo(7002, "other/lib");
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.url = format!("sqlite://{}", dir.path().join("orchestrator.db").display());
        config.github.webhook_secret = SecretList::new(vec![Secret::new(SECRET)]);
        config.github.api_url = github.url.clone();
        config.github.app_id = Some(1);
        config.github.private_key = Some(Secret::new(std::fs::read_to_string(test_key()).unwrap()));
        config.codegen.api_url = codegen.url.clone();
        config.codegen.org_id = Some(fake_codegen::ORG);
        config.codegen.api_token = Some(Secret::new(fake_codegen::TOKEN));
        config.codegen.max_concurrent_agents = 2;
        // The fakes have no limits; the limiters are tested on their own.
        config.codegen.creations_per_minute = 10_000;
        config.github.writes_per_minute = 100_000;
        config.github.writes_per_hour = 1_000_000;
        adjust(&mut config);
        let app = App::build_tuned(&config, tuning).await.unwrap();
        Self {
            github,
            codegen,
            app,
            dir,
            config,
            tuning,
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Another app (a second replica) on the same configuration, database and fakes.
    pub async fn replica(&self) -> App {
        App::build_tuned(&self.config, self.tuning).await.unwrap()
    }

    /// Stops the app and starts a new one on the same database and fakes.
    pub async fn restart(mut self) -> Self {
        self.app.store.close().await;
        self.app = App::build_tuned(&self.config, self.tuning).await.unwrap();
        self
    }

    /// Posts a signed delivery and lets the inbox process it.
    pub async fn send(&self, event: &str, payload: &Value) -> StatusCode {
        let body = serde_json::to_vec(payload).unwrap();
        let id = {
            let mut sent = self.sent.lock().unwrap();
            let id = format!("delivery-{}", sent.len() + 1);
            sent.push((event.to_owned(), id.clone(), body.clone()));
            id
        };
        self.post(event, &id, &body).await
    }

    /// Posts a signed delivery to `app`'s router without processing it.
    pub async fn post_to(app: &App, event: &str, id: &str, body: &[u8]) -> StatusCode {
        use tower::ServiceExt;
        let request = webhook(event, id, body).signed(SECRET);
        app.router().oneshot(request).await.unwrap().status()
    }

    /// The payload of `issues.labeled` for an issue of the fake, as GitHub sends it.
    pub fn labeled_payload(&self, repo: &str, number: u64, label: &str, sender: &str) -> Value {
        self.set_labels(repo, number, |labels| {
            if !labels.contains(&label.to_owned()) {
                labels.push(label.to_owned());
            }
        });
        self.record_labeled(repo, number, label, sender);
        let mut payload = self.issue_payload("labeled", repo, number, sender);
        payload["label"]["name"] = json!(label);
        payload
    }

    async fn post(&self, event: &str, id: &str, body: &[u8]) -> StatusCode {
        use tower::ServiceExt;
        let request = webhook(event, id, body).signed(SECRET);
        let status = self.app.router().oneshot(request).await.unwrap().status();
        self.app.processor.drain().await.unwrap();
        status
    }

    /// Sends every delivery again, as GitHub's "redeliver" does.
    pub async fn redeliver_all(&self) {
        let sent = self.sent.lock().unwrap().clone();
        for (event, id, body) in sent {
            assert_eq!(self.post(&event, &id, &body).await, StatusCode::OK, "{id}");
        }
    }

    /// Follows the runs once (what the poll interval does).
    pub async fn tick(&self) {
        self.app
            .orchestrator
            .as_ref()
            .unwrap()
            .tick()
            .await
            .unwrap();
    }

    /// Follows runs and carries out the outbox until nothing is pending in it (effects
    /// waiting for a retry included), for at most 30 seconds.
    pub async fn settle_effects(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            self.tick().await;
            let (pending, _) = self.app.store.outbox_counts().await.unwrap();
            if pending == 0 || std::time::Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn reconcile(&self) {
        self.app
            .orchestrator
            .as_ref()
            .unwrap()
            .reconcile()
            .await
            .unwrap();
    }

    // ---- GitHub's side: the fake's state changes and the webhooks they cause ----

    pub fn add_issue(&self, repo: &str, number: u64, title: &str, body: &str, labels: &[&str]) {
        self.github.add_issue(repo, number, title, body, labels);
    }

    /// The issue as GitHub's webhooks show it now, `issue_dependencies_summary` included.
    fn issue_json(&self, repo: &str, number: u64) -> Value {
        let state = self.github.state.lock().unwrap();
        let key = (repo.to_owned(), number);
        super::fake_github::with_dependency_summary(&state, &key, &state.issues[&key])
    }

    fn issue_payload(&self, action: &str, repo: &str, number: u64, sender: &str) -> Value {
        let mut payload: Value =
            serde_json::from_slice(&fixture("issues/labeled.payload.json")).unwrap();
        payload["action"] = json!(action);
        payload["issue"] = self.issue_json(repo, number);
        set_common(&mut payload, repo, sender);
        payload
    }

    /// Someone adds a label; GitHub sends `issues.labeled`.
    pub async fn label(&self, repo: &str, number: u64, label: &str, sender: &str) -> StatusCode {
        self.set_labels(repo, number, |labels| {
            if !labels.contains(&label.to_owned()) {
                labels.push(label.to_owned());
            }
        });
        self.record_labeled(repo, number, label, sender);
        let mut payload = self.issue_payload("labeled", repo, number, sender);
        payload["label"]["name"] = json!(label);
        self.send("issues", &payload).await
    }

    /// GitHub records who applied a label in the issue's events: a person, or (for a
    /// `name[bot]` sender) that App's bot account and the App.
    pub fn record_labeled(&self, repo: &str, number: u64, label: &str, sender: &str) {
        let (actor, app) = match sender.strip_suffix("[bot]") {
            Some(slug) => {
                let (actor, app) = super::fake_github::app_actor(slug, 500 + slug.len() as u64);
                (actor, Some(app))
            }
            None => (super::fake_github::person(sender, user_id(sender)), None),
        };
        self.github
            .state
            .lock()
            .unwrap()
            .record_labeled(repo, number, label, actor, app);
    }

    pub async fn unlabel(&self, repo: &str, number: u64, label: &str) -> StatusCode {
        self.set_labels(repo, number, |labels| labels.retain(|l| l != label));
        let mut payload = self.issue_payload("unlabeled", repo, number, MAINTAINER);
        payload["label"]["name"] = json!(label);
        self.send("issues", &payload).await
    }

    fn set_labels(&self, repo: &str, number: u64, change: impl FnOnce(&mut Vec<String>)) {
        let mut state = self.github.state.lock().unwrap();
        let issue = state.issues.get_mut(&(repo.to_owned(), number)).unwrap();
        let mut names: Vec<String> = issue["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_owned())
            .collect();
        change(&mut names);
        issue["labels"] = Value::Array(
            names
                .iter()
                .map(|n| json!({"id": 1, "node_id": "LA_x", "url": "", "name": n, "color": "ededed", "default": false, "description": null}))
                .collect(),
        );
    }

    /// The issue is closed (`completed` or `not_planned`); GitHub sends `issues.closed`.
    pub async fn close(&self, repo: &str, number: u64, reason: &str) -> StatusCode {
        self.github.close(repo, number, reason);
        let payload = self.issue_payload("closed", repo, number, MAINTAINER);
        self.send("issues", &payload).await
    }

    pub async fn reopen(&self, repo: &str, number: u64) -> StatusCode {
        {
            let mut state = self.github.state.lock().unwrap();
            let issue = state.issues.get_mut(&(repo.to_owned(), number)).unwrap();
            issue["state"] = json!("open");
            issue["state_reason"] = json!("reopened");
        }
        let payload = self.issue_payload("reopened", repo, number, MAINTAINER);
        self.send("issues", &payload).await
    }

    /// The body is edited; GitHub sends `issues.edited` with the old body.
    pub async fn edit_body(&self, repo: &str, number: u64, body: &str) -> StatusCode {
        let old = {
            let mut state = self.github.state.lock().unwrap();
            let issue = state.issues.get_mut(&(repo.to_owned(), number)).unwrap();
            let old = issue["body"].clone();
            issue["body"] = json!(body);
            old
        };
        let mut payload = self.issue_payload("edited", repo, number, MAINTAINER);
        payload["changes"] = json!({"body": {"from": old}});
        self.send("issues", &payload).await
    }

    /// A comment is posted; returns its id.
    pub async fn comment(&self, repo: &str, number: u64, body: &str, author: &str) -> u64 {
        self.comment_event("created", repo, number, body, None, author, None)
            .await
    }

    /// A comment by `login` with the account id `id` (a renamed user keeps their id).
    pub async fn comment_by_id(&self, repo: &str, number: u64, body: &str, login: &str, id: u64) {
        let mut payload = self.comment_payload("created", repo, number, body, None, login, None);
        payload["comment"]["user"]["id"] = json!(id);
        payload["sender"]["id"] = json!(id);
        self.send("issue_comment", &payload).await;
    }

    /// A comment is edited from `old` to `new`.
    pub async fn edit_comment(
        &self,
        repo: &str,
        number: u64,
        id: u64,
        old: &str,
        new: &str,
        author: &str,
    ) {
        self.comment_event("edited", repo, number, new, Some(old), author, Some(id))
            .await;
    }

    /// A comment by a bot account (`type: Bot`).
    pub async fn bot_comment(&self, repo: &str, number: u64, body: &str) {
        let mut payload =
            self.comment_payload("created", repo, number, body, None, "ci-helper[bot]", None);
        payload["comment"]["user"]["type"] = json!("Bot");
        payload["sender"]["type"] = json!("Bot");
        self.send("issue_comment", &payload).await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn comment_event(
        &self,
        action: &str,
        repo: &str,
        number: u64,
        body: &str,
        old: Option<&str>,
        author: &str,
        id: Option<u64>,
    ) -> u64 {
        let payload = self.comment_payload(action, repo, number, body, old, author, id);
        let id = payload["comment"]["id"].as_u64().unwrap();
        assert_eq!(
            self.send("issue_comment", &payload).await,
            StatusCode::ACCEPTED
        );
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn comment_payload(
        &self,
        action: &str,
        repo: &str,
        number: u64,
        body: &str,
        old: Option<&str>,
        author: &str,
        id: Option<u64>,
    ) -> Value {
        let mut payload: Value =
            serde_json::from_slice(&fixture("issue_comment/created.payload.json")).unwrap();
        payload["action"] = json!(action);
        payload["issue"] = self.issue_json(repo, number);
        let id = id.unwrap_or_else(|| 5_000_000 + self.sent.lock().unwrap().len() as u64);
        payload["comment"]["id"] = json!(id);
        payload["comment"]["body"] = json!(body);
        payload["comment"]["user"]["login"] = json!(author);
        payload["comment"]["user"]["id"] = json!(user_id(author));
        payload["comment"]["user"]["type"] = json!("User");
        payload["comment"]["performed_via_github_app"] = Value::Null;
        if let Some(old) = old {
            payload["changes"] = json!({"body": {"from": old}});
        }
        set_common(&mut payload, repo, author);
        payload
    }

    /// A pull request whose body closes issues is merged.
    pub async fn merge_pull_request(&self, repo: &str, number: u64, body: &str) -> StatusCode {
        let mut payload: Value =
            serde_json::from_slice(&fixture("pull_request/closed.payload.json")).unwrap();
        payload["action"] = json!("closed");
        payload["number"] = json!(number);
        let pr = &mut payload["pull_request"];
        pr["number"] = json!(number);
        pr["body"] = json!(body);
        pr["merged"] = json!(true);
        pr["html_url"] = json!(format!("https://github.com/{repo}/pull/{number}"));
        set_common(&mut payload, repo, MAINTAINER);
        self.send("pull_request", &payload).await
    }

    /// A Projects v2 board with a single-select `Status` field of `options`, holding an
    /// item for each of `issues`.
    pub fn add_project(&self, id: &str, title: &str, options: &[&str], issues: &[(&str, u64)]) {
        let options: Vec<(String, String)> = options
            .iter()
            .map(|name| {
                (
                    format!("OPT_{id}_{}", name.replace(' ', "_")),
                    (*name).to_owned(),
                )
            })
            .collect();
        let items = issues
            .iter()
            .map(|(repo, n)| {
                (
                    format!("PVTI_{id}_{n}"),
                    ((*repo).to_owned(), *n),
                    Default::default(),
                )
            })
            .collect();
        self.github.state.lock().unwrap().projects.insert(
            id.to_owned(),
            FakeProject {
                title: title.to_owned(),
                fields: vec![(format!("PVTF_{id}_status"), "Status".into(), options)],
                items,
            },
        );
    }

    /// The `Status` option an issue's item has on a board.
    pub fn project_status(&self, project: &str, repo: &str, n: u64) -> Option<String> {
        let state = self.github.state.lock().unwrap();
        let board = &state.projects[project];
        let (field, _, options) = &board.fields[0];
        let item = board
            .items
            .iter()
            .find(|(_, content, _)| *content == (repo.to_owned(), n))?;
        let option = item.2.get(field)?;
        options
            .iter()
            .find(|(id, _)| id == option)
            .map(|(_, name)| name.clone())
    }

    /// A file on a repository's default branch.
    pub fn put_file(&self, repo: &str, path: &str, text: &str) {
        self.github
            .state
            .lock()
            .unwrap()
            .files
            .insert((repo.to_owned(), path.to_owned()), text.to_owned());
    }

    /// A push to the default branch touching `paths` (GitHub's `push` webhook; no example
    /// of it is among the fixtures, so the fields the app reads are written here).
    pub async fn push(&self, repo: &str, paths: &[&str]) -> StatusCode {
        let mut payload = json!({
            "ref": "refs/heads/main",
            "before": "0000000000000000000000000000000000000000",
            "after": "1111111111111111111111111111111111111111",
            "repository": {"full_name": repo, "name": repo.split('/').nth(1).unwrap(), "default_branch": "main"},
            "commits": [{"id": "1111111111111111111111111111111111111111", "added": [], "modified": paths, "removed": []}],
            "sender": {"login": MAINTAINER, "id": 101, "type": "User"},
        });
        set_common(&mut payload, repo, MAINTAINER);
        self.send("push", &payload).await
    }

    /// A pull request is opened from `head` with `body`.
    pub async fn open_pull_request(
        &self,
        repo: &str,
        number: u64,
        body: &str,
        head: &str,
    ) -> StatusCode {
        let mut payload: Value =
            serde_json::from_slice(&fixture("pull_request/opened.payload.json")).unwrap();
        payload["action"] = json!("opened");
        payload["number"] = json!(number);
        let pr = &mut payload["pull_request"];
        pr["number"] = json!(number);
        pr["body"] = json!(body);
        pr["head"]["ref"] = json!(head);
        pr["html_url"] = json!(format!("https://github.com/{repo}/pull/{number}"));
        set_common(&mut payload, repo, MAINTAINER);
        self.send("pull_request", &payload).await
    }

    /// Someone moves an issue's card on a board to `option` (GitHub sends
    /// `projects_v2_item.edited`).
    pub async fn move_card(
        &self,
        project: &str,
        repo: &str,
        n: u64,
        option: &str,
        sender: &str,
    ) -> StatusCode {
        let item_id = {
            let mut state = self.github.state.lock().unwrap();
            let board = state.projects.get_mut(project).unwrap();
            let (field, _, options) = board.fields[0].clone();
            let option_id = options
                .iter()
                .find(|(_, name)| name == option)
                .unwrap()
                .0
                .clone();
            let item = board
                .items
                .iter_mut()
                .find(|(_, content, _)| *content == (repo.to_owned(), n))
                .unwrap();
            item.2.insert(field, option_id);
            item.0.clone()
        };
        let mut payload: Value =
            serde_json::from_slice(&fixture("projects_v2_item/edited.payload.json")).unwrap();
        payload["projects_v2_item"]["node_id"] = json!(item_id);
        payload["projects_v2_item"]["project_node_id"] = json!(project);
        payload["projects_v2_item"]["content_node_id"] =
            self.issue_json(repo, n)["node_id"].clone();
        payload["projects_v2_item"]["content_type"] = json!("Issue");
        set_common(&mut payload, repo, sender);
        self.send("projects_v2_item", &payload).await
    }

    /// A native "blocked by" link is added or removed on GitHub (`issue_dependencies`; no
    /// example of it is among the fixtures, so the payload is built from the issues).
    pub async fn native_dependency(
        &self,
        repo: &str,
        blocked: u64,
        blocking: u64,
        added: bool,
    ) -> StatusCode {
        let action = if added {
            "blocked_by_added"
        } else {
            "blocked_by_removed"
        };
        let mut payload = json!({
            "action": action,
            "blocked_issue": self.issue_json(repo, blocked),
            "blocking_issue": self.issue_json(repo, blocking),
            "repository": {"full_name": repo, "name": repo.split('/').nth(1).unwrap()},
            "sender": {"login": MAINTAINER, "id": 101, "type": "User"},
        });
        set_common(&mut payload, repo, MAINTAINER);
        self.send("issue_dependencies", &payload).await
    }

    /// `sender` attaches (or detaches) a sub-issue on GitHub; GitHub sends `sub_issues`
    /// (the payload is the schema-built fixture with these issues in it).
    pub async fn sub_issue(
        &self,
        repo: &str,
        parent: u64,
        child: u64,
        added: bool,
        sender: &str,
    ) -> StatusCode {
        {
            let mut state = self.github.state.lock().unwrap();
            let children = state
                .sub_issues
                .entry((repo.to_owned(), parent))
                .or_default();
            let key = (repo.to_owned(), child);
            children.retain(|c| *c != key);
            if added {
                children.push(key);
            }
        }
        let action = if added {
            "sub_issue_added"
        } else {
            "sub_issue_removed"
        };
        let mut payload: Value =
            serde_json::from_slice(&fixture(&format!("sub_issues/{action}.payload.json"))).unwrap();
        let (parent_json, child_json) =
            (self.issue_json(repo, parent), self.issue_json(repo, child));
        payload["parent_issue_id"] = parent_json["id"].clone();
        payload["parent_issue"] = parent_json;
        payload["sub_issue_id"] = child_json["id"].clone();
        payload["sub_issue"] = child_json;
        payload["sub_issue_repo"]["full_name"] = json!(repo);
        set_common(&mut payload, repo, sender);
        self.send("sub_issues", &payload).await
    }

    /// An App (`slug`) opens an issue, as an agent declaring follow-up work does: GitHub
    /// records the App in `performed_via_github_app` and sends `issues.opened`.
    pub async fn open_issue_as_app(
        &self,
        repo: &str,
        number: u64,
        title: &str,
        body: &str,
        slug: &str,
    ) -> StatusCode {
        self.add_issue(repo, number, title, body, &[]);
        let sender = format!("{slug}[bot]");
        {
            let (user, app) = super::fake_github::app_actor(slug, 500 + slug.len() as u64);
            let mut state = self.github.state.lock().unwrap();
            let issue = state.issues.get_mut(&(repo.to_owned(), number)).unwrap();
            issue["user"] = user;
            issue["performed_via_github_app"] = app;
        }
        let payload = self.issue_payload("opened", repo, number, &sender);
        self.send("issues", &payload).await
    }

    // ---- What tests look at ----

    /// Bodies of the comments on an issue that carry the status marker.
    pub fn status_comments(&self, repo: &str, number: u64) -> Vec<String> {
        self.comments(repo, number)
            .into_iter()
            .filter(|c| c.contains("<!-- codegen-orchestrator:status -->"))
            .collect()
    }

    /// Bodies of all comments on an issue, oldest first.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<String> {
        self.github
            .state
            .lock()
            .unwrap()
            .comments
            .get(&(repo.to_owned(), number))
            .map(|all| all.iter().map(|(_, body)| body.clone()).collect())
            .unwrap_or_default()
    }

    /// The comments that are not the status comment.
    pub fn replies(&self, repo: &str, number: u64) -> Vec<String> {
        self.comments(repo, number)
            .into_iter()
            .filter(|c| !c.contains("<!-- codegen-orchestrator:status -->"))
            .collect()
    }

    pub fn labels(&self, repo: &str, number: u64) -> Vec<String> {
        let mut labels: Vec<String> = self.issue_json(repo, number)["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_owned())
            .collect();
        labels.sort();
        labels
    }

    /// The state labels (`codegen:*`) of an issue.
    pub fn state_labels(&self, repo: &str, number: u64) -> Vec<String> {
        self.labels(repo, number)
            .into_iter()
            .filter(|l| l.starts_with("codegen:"))
            .collect()
    }

    /// Issues launched, in creation order, as `owner/repo#N (attempt A)`.
    pub fn launches(&self) -> Vec<String> {
        self.codegen
            .runs()
            .iter()
            .map(|run| {
                let m = &run.metadata;
                format!(
                    "{}#{} (attempt {})",
                    m["repository"].as_str().unwrap_or("?"),
                    m["issue_number"],
                    m["attempt"]
                )
            })
            .collect()
    }

    /// The fake run id of the latest run for an issue.
    pub fn run_of(&self, repo: &str, number: u64) -> u64 {
        self.codegen
            .runs()
            .iter()
            .rev()
            .find(|r| r.metadata["repository"] == repo && r.metadata["issue_number"] == number)
            .unwrap_or_else(|| panic!("no run for {repo}#{number}"))
            .id
    }

    /// Reactions posted to a comment.
    pub fn reactions(&self, comment: u64) -> Vec<String> {
        self.github
            .state
            .lock()
            .unwrap()
            .reactions
            .iter()
            .filter(|(id, _)| *id == comment)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// Timings for tests: inbox retries without delay, GitHub and Codegen retries within
/// milliseconds.
pub fn quick_tuning() -> Tuning {
    Tuning {
        limits: DoorLimits::default(),
        connections: codegen_orchestrator::http::ConnectionLimits::default(),
        inbox_retry: quick_retries(2),
        // Nonzero, so that a failing effect waits in the outbox (as in production) rather
        // than using up its tries within one pass.
        effect_retry: codegen_orchestrator::processor::RetryPolicy {
            max_attempts: 5,
            first_delay: std::time::Duration::from_millis(100),
            max_delay: std::time::Duration::from_millis(400),
        },
        github_retry: codegen_orchestrator::github::retry::RetryPolicy {
            max_attempts: 8,
            base_delay: std::time::Duration::from_millis(2),
            max_delay: std::time::Duration::from_millis(20),
            secondary_wait: std::time::Duration::from_millis(5),
            max_wait: std::time::Duration::from_secs(5),
        },
        codegen_backoff: Some((
            std::time::Duration::from_millis(2),
            std::time::Duration::from_millis(20),
        )),
    }
}

/// A stable id per login (GitHub ids never change when a login does).
pub fn user_id(login: &str) -> u64 {
    match login {
        MAINTAINER => 101,
        READER => 202,
        _ => 303,
    }
}

fn set_common(payload: &mut Value, repo: &str, sender: &str) {
    payload["installation"] =
        json!({"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI="});
    payload["repository"]["full_name"] = json!(repo);
    payload["repository"]["name"] = json!(repo.split('/').nth(1).unwrap());
    payload["sender"]["login"] = json!(sender);
    payload["sender"]["id"] = json!(user_id(sender));
    payload["sender"]["type"] = json!(if sender.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    });
}
