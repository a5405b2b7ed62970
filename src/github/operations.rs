//! The operations the bot performs on issues: labels, the status comment, reactions,
//! state, permissions and native dependencies. Each is one or two calls through
//! [`GitHub::send`], so all share its headers, metrics and retry rules.

pub use crate::domain::Permission;
use std::time::{Duration, Instant};

use axum::http::Method;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::json;

use super::{GitHub, GithubError, RestIssue};
use crate::domain::{Actor, AppIdentity, IssueRef, IssueSnapshot, RepoName, User};

/// How long a user's permission on a repository is trusted before asking again.
pub const PERMISSION_TTL: Duration = Duration::from_secs(300);

/// A comment on an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueComment {
    /// Its id.
    pub id: u64,
    /// Its Markdown.
    pub body: String,
}

fn issue_route(issue: &IssueRef) -> String {
    format!(
        "/repos/{}/{}/issues/{}",
        issue.repo.owner(),
        issue.repo.name(),
        issue.number
    )
}

fn repo_route(repo: &RepoName) -> String {
    format!("/repos/{}/{}", repo.owner(), repo.name())
}

impl GitHub {
    /// Creates the label in `repo` with this colour and description unless it exists.
    pub async fn ensure_label(
        &self,
        repo: &RepoName,
        name: &str,
        color: &str,
        description: &str,
    ) -> Result<(), GithubError> {
        let key = (repo.clone(), name.to_lowercase());
        if self.label_known(&key) {
            return Ok(());
        }
        let route = format!("{}/labels/{}", repo_route(repo), segment(name));
        match self.send(Method::GET, &route, None).await?.success() {
            Ok(_) => {
                self.remember_label(key);
                return Ok(());
            }
            Err(err) if err.status() == Some(404) => {}
            Err(err) => return Err(err),
        }
        let body = json!({"name": name, "color": color, "description": description});
        let created = self
            .send(
                Method::POST,
                &format!("{}/labels", repo_route(repo)),
                Some(&body),
            )
            .await?;
        match created.success() {
            Ok(_) => {}
            // Created meanwhile by someone else: what we wanted.
            Err(err) if err.status() == Some(422) => {}
            Err(err) => return Err(err),
        }
        self.remember_label(key);
        Ok(())
    }

    /// Adds labels to an issue.
    pub async fn add_labels(&self, issue: &IssueRef, labels: &[&str]) -> Result<(), GithubError> {
        let body = json!({ "labels": labels });
        let route = format!("{}/labels", issue_route(issue));
        self.send(Method::POST, &route, Some(&body))
            .await?
            .success()?;
        Ok(())
    }

    /// Removes a label from an issue; a label it does not carry is not an error.
    pub async fn remove_label(&self, issue: &IssueRef, label: &str) -> Result<(), GithubError> {
        let route = format!("{}/labels/{}", issue_route(issue), segment(label));
        match self.send(Method::DELETE, &route, None).await?.success() {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(404) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Every comment on an issue, oldest first.
    pub async fn comments(&self, issue: &IssueRef) -> Result<Vec<IssueComment>, GithubError> {
        #[derive(Deserialize)]
        struct RestComment {
            id: u64,
            #[serde(default)]
            body: Option<String>,
        }
        let comments: Vec<RestComment> = self
            .all_pages(format!("{}/comments?per_page=100", issue_route(issue)))
            .await?;
        Ok(comments
            .into_iter()
            .map(|c| IssueComment {
                id: c.id,
                body: c.body.unwrap_or_default(),
            })
            .collect())
    }

    /// Posts a comment; returns its id.
    pub async fn create_comment(&self, issue: &IssueRef, body: &str) -> Result<u64, GithubError> {
        #[derive(Deserialize)]
        struct Created {
            id: u64,
        }
        let route = format!("{}/comments", issue_route(issue));
        let created: Created = self
            .send(Method::POST, &route, Some(&json!({ "body": body })))
            .await?
            .success()?
            .json()?;
        Ok(created.id)
    }

    /// Replaces a comment's body.
    pub async fn update_comment(
        &self,
        repo: &RepoName,
        comment_id: u64,
        body: &str,
    ) -> Result<(), GithubError> {
        let route = format!("{}/issues/comments/{comment_id}", repo_route(repo));
        self.send(Method::PATCH, &route, Some(&json!({ "body": body })))
            .await?
            .success()?;
        Ok(())
    }

    /// The first comment containing `marker` (a hidden HTML comment the bot writes).
    pub async fn find_marked_comment(
        &self,
        issue: &IssueRef,
        marker: &str,
    ) -> Result<Option<IssueComment>, GithubError> {
        Ok(self
            .comments(issue)
            .await?
            .into_iter()
            .find(|c| c.body.contains(marker)))
    }

    /// Keeps exactly one comment with `marker` on the issue: edits it in place, or posts it
    /// the first time. `body` must contain the marker. Returns the comment's id.
    pub async fn upsert_marked_comment(
        &self,
        issue: &IssueRef,
        marker: &str,
        body: &str,
    ) -> Result<u64, GithubError> {
        debug_assert!(
            body.contains(marker),
            "a marked comment must carry its marker"
        );
        match self.find_marked_comment(issue, marker).await? {
            Some(existing) if existing.body == body => Ok(existing.id),
            Some(existing) => {
                self.update_comment(&issue.repo, existing.id, body).await?;
                Ok(existing.id)
            }
            None => self.create_comment(issue, body).await,
        }
    }

    /// Reacts to a comment (`+1`, `eyes`, `rocket`, `confused`, ...).
    pub async fn react_to_comment(
        &self,
        repo: &RepoName,
        comment_id: u64,
        reaction: &str,
    ) -> Result<(), GithubError> {
        let route = format!(
            "{}/issues/comments/{comment_id}/reactions",
            repo_route(repo)
        );
        self.send(Method::POST, &route, Some(&json!({ "content": reaction })))
            .await?
            .success()?;
        Ok(())
    }

    /// A file's text on the default branch; `None` when there is no such file.
    pub async fn file(&self, repo: &RepoName, path: &str) -> Result<Option<String>, GithubError> {
        #[derive(Deserialize)]
        struct Contents {
            content: String,
            encoding: String,
        }
        let segments: Vec<String> = path.split('/').map(segment).collect();
        let route = format!("{}/contents/{}", repo_route(repo), segments.join("/"));
        let answer = match self.send(Method::GET, &route, None).await?.success() {
            Ok(answer) => answer,
            Err(err) if err.status() == Some(404) => return Ok(None),
            Err(err) => return Err(err),
        };
        let contents: Contents = answer.json()?;
        if contents.encoding != "base64" {
            return Err(GithubError::Transport(format!(
                "{path}: unexpected encoding {}",
                contents.encoding
            )));
        }
        use base64::Engine;
        let compact: String = contents.content.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|err| GithubError::Transport(format!("{path}: {err}")))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| GithubError::Transport(format!("{path} is not UTF-8 text")))
    }

    /// Closes an issue as completed.
    pub async fn close_issue(&self, issue: &IssueRef) -> Result<(), GithubError> {
        let body = json!({"state": "closed", "state_reason": "completed"});
        self.send(Method::PATCH, &issue_route(issue), Some(&body))
            .await?
            .success()?;
        Ok(())
    }

    /// Reopens an issue.
    pub async fn reopen_issue(&self, issue: &IssueRef) -> Result<(), GithubError> {
        let body = json!({"state": "open"});
        self.send(Method::PATCH, &issue_route(issue), Some(&body))
            .await?
            .success()?;
        Ok(())
    }

    /// A user's permission on a repository, asked once per user id every
    /// [`PERMISSION_TTL`] (a renamed user keeps their id, and so their cache entry).
    pub async fn permission(
        &self,
        repo: &RepoName,
        user: &User,
    ) -> Result<Permission, GithubError> {
        let key = (repo.clone(), user.id);
        if let Some((permission, at)) = self
            .permissions
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied())
            && at.elapsed() < PERMISSION_TTL
        {
            return Ok(permission);
        }
        #[derive(Deserialize)]
        struct RestPermission {
            permission: String,
            #[serde(default)]
            role_name: Option<String>,
        }
        let route = format!(
            "{}/collaborators/{}/permission",
            repo_route(repo),
            segment(&user.login)
        );
        let permission = match self.send(Method::GET, &route, None).await?.success() {
            Ok(answer) => {
                let found: RestPermission = answer.json()?;
                permission_from_github(&found.permission, found.role_name.as_deref())
            }
            // Not a collaborator at all.
            Err(err) if err.status() == Some(404) => Permission::None,
            Err(err) => return Err(err),
        };
        if let Ok(mut cache) = self.permissions.lock() {
            cache.insert(key, (permission, Instant::now()));
        }
        Ok(permission)
    }

    /// Who applied `label` to `issue` most recently, from the issue's events (every page;
    /// GitHub lists them oldest first); `None` when no `labeled` event names it.
    pub async fn last_labeled_by(
        &self,
        issue: &IssueRef,
        label: &str,
    ) -> Result<Option<Actor>, GithubError> {
        #[derive(Deserialize)]
        struct RestEvent {
            event: String,
            #[serde(default)]
            label: Option<RestEventLabel>,
            #[serde(default)]
            actor: Option<RestActor>,
            #[serde(default)]
            performed_via_github_app: Option<RestApp>,
        }
        #[derive(Deserialize)]
        struct RestEventLabel {
            name: String,
        }
        #[derive(Deserialize)]
        struct RestActor {
            id: u64,
            login: String,
            #[serde(rename = "type", default)]
            kind: Option<String>,
        }
        #[derive(Deserialize)]
        struct RestApp {
            id: u64,
            #[serde(default)]
            slug: Option<String>,
        }
        let events: Vec<RestEvent> = self
            .all_pages(format!("{}/events?per_page=100", issue_route(issue)))
            .await?;
        let latest = events.into_iter().rev().find(|event| {
            event.event == "labeled"
                && event
                    .label
                    .as_ref()
                    .is_some_and(|l| l.name.eq_ignore_ascii_case(label))
        });
        Ok(latest.map(|event| match event.actor {
            // A bot acts for its App; a person acting through an App (Slack, Teams) is
            // still that person.
            Some(actor) if actor.kind.as_deref() == Some("Bot") => Actor::App {
                app: event.performed_via_github_app.map(|app| AppIdentity {
                    id: app.id,
                    slug: app.slug.unwrap_or_default(),
                }),
                login: actor.login,
            },
            Some(actor) => Actor::Person(User {
                id: actor.id,
                login: actor.login,
                is_bot: false,
            }),
            None => Actor::Unknown,
        }))
    }

    /// The issues GitHub records as blocking `issue` (native dependencies).
    pub async fn blocked_by(&self, issue: &IssueRef) -> Result<Vec<IssueSnapshot>, GithubError> {
        let issues: Vec<RestIssue> = self
            .all_pages(format!(
                "{}/dependencies/blocked_by?per_page=100",
                issue_route(issue)
            ))
            .await?;
        Ok(issues
            .into_iter()
            .filter_map(RestIssue::into_snapshot)
            .collect())
    }

    /// `issue`'s sub-issues (GitHub's parent/child links) the App can read, every page.
    pub async fn sub_issues(&self, issue: &IssueRef) -> Result<Vec<IssueSnapshot>, GithubError> {
        let issues: Vec<RestIssue> = self
            .all_pages(format!("{}/sub_issues?per_page=100", issue_route(issue)))
            .await?;
        Ok(issues
            .into_iter()
            .filter_map(RestIssue::into_snapshot)
            .collect())
    }

    /// Records natively that `issue` is blocked by `blocker`. GitHub wants the blocker's
    /// database id, never its number, so it is looked up first.
    pub async fn add_blocked_by(
        &self,
        issue: &IssueRef,
        blocker: &IssueRef,
    ) -> Result<(), GithubError> {
        let blocker_id = self.database_id(blocker).await?;
        let route = format!("{}/dependencies/blocked_by", issue_route(issue));
        self.send(
            Method::POST,
            &route,
            Some(&json!({ "issue_id": blocker_id })),
        )
        .await?
        .success()?;
        Ok(())
    }

    /// Removes a native "blocked by" link; a link that is not there is not an error.
    pub async fn remove_blocked_by(
        &self,
        issue: &IssueRef,
        blocker: &IssueRef,
    ) -> Result<(), GithubError> {
        let blocker_id = self.database_id(blocker).await?;
        let route = format!(
            "{}/dependencies/blocked_by/{blocker_id}",
            issue_route(issue)
        );
        match self.send(Method::DELETE, &route, None).await?.success() {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(404) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn database_id(&self, issue: &IssueRef) -> Result<u64, GithubError> {
        let found: RestIssue = self
            .send(Method::GET, &issue_route(issue), None)
            .await?
            .success()?
            .json()?;
        found
            .id
            .ok_or_else(|| GithubError::Transport(format!("{issue} came without its id")))
    }
}

/// A pull request as the bot needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestInfo {
    /// Where it is.
    pub reference: IssueRef,
    /// Title.
    pub title: String,
    /// `open` or `closed`.
    pub state: String,
    /// Whether it was merged.
    pub merged: bool,
    /// GitHub's mergeability (`None` while GitHub is still computing it).
    pub mergeable: Option<bool>,
    /// GitHub's `mergeable_state`: `clean` when mergeable and every check passed.
    pub mergeable_state: Option<String>,
    /// The branch it merges from, and that branch's head commit.
    pub head_ref: String,
    /// The head commit.
    pub head_sha: String,
    /// The branch it merges into.
    pub base_ref: String,
    /// Its page.
    pub html_url: String,
}

impl GitHub {
    /// A pull request.
    pub async fn pull_request(&self, pull: &IssueRef) -> Result<PullRequestInfo, GithubError> {
        #[derive(Deserialize)]
        struct Branch {
            #[serde(rename = "ref")]
            name: String,
            sha: String,
        }
        #[derive(Deserialize)]
        struct RestPull {
            title: String,
            state: String,
            #[serde(default)]
            merged: bool,
            mergeable: Option<bool>,
            #[serde(default)]
            mergeable_state: Option<String>,
            head: Branch,
            base: Branch,
            html_url: String,
        }
        let route = format!("{}/pulls/{}", repo_route(&pull.repo), pull.number);
        let found: RestPull = self
            .send(Method::GET, &route, None)
            .await?
            .success()?
            .json()?;
        Ok(PullRequestInfo {
            reference: pull.clone(),
            title: found.title,
            state: found.state,
            merged: found.merged,
            mergeable: found.mergeable,
            mergeable_state: found.mergeable_state,
            head_ref: found.head.name,
            head_sha: found.head.sha,
            base_ref: found.base.name,
            html_url: found.html_url,
        })
    }

    /// Squash-merges a pull request, only if its head is still `head_sha` (what was checked).
    pub async fn merge_pull_request(
        &self,
        pull: &IssueRef,
        head_sha: &str,
    ) -> Result<(), GithubError> {
        let route = format!("{}/pulls/{}/merge", repo_route(&pull.repo), pull.number);
        let body = json!({"merge_method": "squash", "sha": head_sha});
        self.send(Method::PUT, &route, Some(&body))
            .await?
            .success()?;
        Ok(())
    }

    /// Creates branch `new` at the head of branch `from` (the Python tool's
    /// `create_branch`); a branch that already exists is left as it is.
    pub async fn create_branch(
        &self,
        repo: &RepoName,
        new: &str,
        from: &str,
    ) -> Result<(), GithubError> {
        #[derive(Deserialize)]
        struct Ref {
            object: Object,
        }
        #[derive(Deserialize)]
        struct Object {
            sha: String,
        }
        let head_route = format!("{}/git/ref/heads/{}", repo_route(repo), segment_path(from));
        let head: Ref = self
            .send(Method::GET, &head_route, None)
            .await?
            .success()?
            .json()?;
        let body = json!({"ref": format!("refs/heads/{new}"), "sha": head.object.sha});
        let route = format!("{}/git/refs", repo_route(repo));
        match self
            .send(Method::POST, &route, Some(&body))
            .await?
            .success()
        {
            Ok(_) => Ok(()),
            Err(GithubError::Api {
                status: 422,
                message,
            }) if message.contains("already exists") => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// A branch name in a path: each segment encoded, the slashes kept (`codegen/12-x`).
fn segment_path(text: &str) -> String {
    text.split('/').map(segment).collect::<Vec<_>>().join("/")
}

/// The permission GitHub's collaborator-permission answer names.
fn permission_from_github(permission: &str, role: Option<&str>) -> Permission {
    // `permission` is the legacy coarse name (admin/write/read/none); `role_name` tells
    // maintain and triage apart.
    match (role, permission) {
        (Some("maintain"), _) => Permission::Maintain,
        (Some("triage"), _) => Permission::Triage,
        (_, "admin") => Permission::Admin,
        (_, "maintain") => Permission::Maintain,
        (_, "write") => Permission::Write,
        (_, "triage") => Permission::Triage,
        (_, "read") => Permission::Read,
        _ => Permission::None,
    }
}

fn segment(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_read_githubs_names() {
        assert_eq!(
            permission_from_github("write", Some("maintain")),
            Permission::Maintain
        );
        assert_eq!(
            permission_from_github("read", Some("triage")),
            Permission::Triage
        );
        assert_eq!(
            permission_from_github("admin", Some("admin")),
            Permission::Admin
        );
        assert_eq!(
            permission_from_github("write", Some("write")),
            Permission::Write
        );
        assert_eq!(permission_from_github("read", None), Permission::Read);
        assert_eq!(permission_from_github("none", None), Permission::None);
        assert!(Permission::Maintain.may_run_agents() && !Permission::Triage.may_run_agents());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("codegen:running"), "codegen%3Arunning");
        assert_eq!(segment("good first issue"), "good%20first%20issue");
    }
}
