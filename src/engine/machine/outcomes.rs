//! Where the result of each decision goes.

use super::Engine;
use super::io::{Decision, Outcome};

impl Engine {
    /// Routes the result of a decision.
    pub(super) fn on_outcome(&mut self, outcome: Outcome, now: i64, out: &mut Vec<Decision>) {
        match outcome {
            Outcome::RepoConfigRead {
                repo,
                file,
                report_on,
                then,
            } => self.on_repo_config(repo, file, report_on, then, out),
            Outcome::LabelActorRead {
                installation,
                issue,
                actor,
            } => self.on_label_actor(installation, issue, actor, out),
            Outcome::PermissionRead {
                installation,
                user,
                permission,
                then,
            } => self.on_permission(installation, user, permission, then, out),
            Outcome::NativeBlockersRead {
                installation,
                issue,
                blockers,
                open_blockers,
            } => self.on_native_blockers(installation, &issue, blockers, open_blockers, out),
            Outcome::SubIssuesRead {
                installation,
                issue,
                children,
                counts,
                adopt,
            } => self.on_sub_issues_read(installation, &issue, children, counts, adopt, out),
            Outcome::NativeDependencySynced {
                installation,
                issue,
                blocker,
                add,
                failure,
                lasting,
            } => self.on_native_synced(installation, &issue, &blocker, add, failure, lasting),
            Outcome::IssueRead {
                installation,
                issue,
                snapshot,
                purpose,
            } => self.on_issue_read(installation, &issue, snapshot, purpose, out),
            Outcome::ProjectItemRead {
                installation,
                issue,
                moved_to_queued,
                sender,
            } => self.on_project_item_read(installation, issue, moved_to_queued, sender, out),
            Outcome::RepositoriesListed {
                installation,
                repos,
            } => {
                for repo in repos {
                    self.reconcile_repo(installation, &repo, out);
                }
            }
            Outcome::LabelledListed {
                installation,
                repo,
                issues,
            } => self.on_labelled_listed(installation, &repo, issues, out),
            Outcome::Launched {
                installation,
                issue,
                latest,
                quota_exhausted,
            } => self.on_launched(installation, &issue, latest, quota_exhausted, now),
            Outcome::RunRecorded { installation, run } => self.record_run(installation, run),
            Outcome::Merged {
                installation,
                issue,
                pull,
            } => self.on_merged(installation, &issue, pull),
            Outcome::NotMergeable { issue } => {
                self.merging.remove(&issue);
            }
            Outcome::StatusNotPublished {
                installation,
                issue,
                add_label,
                remove_label,
                project,
            } => {
                self.published.remove(&issue);
                if let Some(tracked) = self
                    .installations
                    .get_mut(&installation)
                    .and_then(|i| i.issues.get_mut(&issue))
                {
                    if add_label.is_some() {
                        tracked.state_label = remove_label;
                    }
                    if project {
                        tracked.project_option = None;
                    }
                    self.changed.insert((installation, issue.clone()));
                }
                self.unpublished.insert((installation, issue));
            }
            Outcome::ProjectNotes {
                installation,
                issue,
                notes,
            } => self.on_project_notes(installation, &issue, notes),
        }
    }
}
