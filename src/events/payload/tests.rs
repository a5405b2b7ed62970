use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::domain::SubIssueCounts;
use crate::events::{CommentAction, DependencyAction, IssueAction, SubIssueAction};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/github-webhooks")
}

fn fixture(relative: &str) -> Value {
    let path = fixtures_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn decode_value(event: &str, payload: &Value) -> Result<Decoded, DecodeError> {
    decode_payload(event, &serde_json::to_vec(payload).unwrap())
}

fn event_of(decoded: Decoded) -> DomainEvent {
    match decoded {
        Decoded::Event(event) => *event,
        Decoded::Ignored(why) => panic!("ignored: {why}"),
    }
}

/// Every real payload decodes into an event or is deliberately ignored; the summary of each
/// is pinned, so a change in what a payload means shows up in review.
#[test]
fn every_fixture_decodes_or_is_ignored() {
    let mut lines = Vec::new();
    let mut events: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("../shared/fixtures must sit beside the repository")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir() && !path.ends_with("schema"))
        .collect();
    events.sort();
    for dir in events {
        let event = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let body = std::fs::read(&file).unwrap();
            let name = file.file_name().unwrap().to_str().unwrap();
            let outcome = match decode_payload(&event, &body) {
                Ok(Decoded::Event(e)) => e.summary(),
                Ok(Decoded::Ignored(why)) => format!("ignored: {why}"),
                Err(err) => panic!("{event}/{name} failed to decode: {err}"),
            };
            lines.push(format!("{event}/{name}: {outcome}"));
        }
    }
    assert!(lines.len() > 60, "only {} fixtures found", lines.len());
    insta::assert_snapshot!(lines.join("\n"));
}

/// GitHub's schema allows `user: null` (a deleted account) and labels as plain names; the
/// dependency summary counts blockers the App may not be able to read.
#[test]
fn issues_decode_as_the_schema_allows() {
    let mut payload = fixture("issues/labeled.with-organization.payload.json");
    payload["issue"]["user"] = Value::Null;
    payload["issue"]["labels"] = json!(["codegen", {"name": "priority:high"}]);
    payload["issue"]["issue_dependencies_summary"] =
        json!({"blocked_by": 2, "total_blocked_by": 3, "blocking": 0, "total_blocking": 0});
    let event = event_of(decode_value("issues", &payload).unwrap());
    let Event::Issue { issue, .. } = event.kind else {
        panic!("not an issue event: {event:?}")
    };
    assert_eq!(issue.author, None);
    assert_eq!(issue.labels, ["codegen", "priority:high"]);
    assert_eq!(issue.open_blockers, Some(2));

    let blocked = fixture("issue_dependencies/blocked_by_added.payload.json");
    let event = event_of(decode_value("issue_dependencies", &blocked).unwrap());
    let Event::IssueDependency { blocked, .. } = event.kind else {
        panic!("not a dependency event: {event:?}")
    };
    assert_eq!(
        blocked.open_blockers,
        Some(1),
        "the fixture's summary after the link"
    );
}

/// Both ends of a sub-issue link mean the same link; `repository`, `sender` and
/// `installation` may be absent; the summary counts sub-issues the App may not read.
#[test]
fn sub_issue_links_decode_from_either_end() {
    for (file, action) in [
        ("sub_issue_added", SubIssueAction::Added),
        ("parent_issue_added", SubIssueAction::Added),
        ("sub_issue_removed", SubIssueAction::Removed),
        ("parent_issue_removed", SubIssueAction::Removed),
    ] {
        let mut payload = fixture(&format!("sub_issues/{file}.payload.json"));
        let event = event_of(decode_value("sub_issues", &payload).unwrap());
        let Event::SubIssue {
            action: decoded,
            parent,
            child,
        } = event.kind
        else {
            panic!("not a sub-issue event: {event:?}")
        };
        assert_eq!(decoded, action, "{file}");
        assert_eq!(parent.reference.to_string(), "Codertocat/Hello-World#1");
        assert_eq!(child.reference.to_string(), "Codertocat/Hello-World#2");
        let total = u32::from(action == SubIssueAction::Added);
        assert_eq!(
            parent.sub_issues,
            Some(SubIssueCounts {
                total,
                completed: 0
            }),
            "{file}"
        );
        assert_eq!(event.installation, Some(InstallationId(1)));

        for key in ["repository", "sender", "installation", "organization"] {
            payload.as_object_mut().unwrap().remove(key);
        }
        let event = event_of(decode_value("sub_issues", &payload).unwrap());
        assert_eq!(event.sender, None);
        assert_eq!(event.installation, None);
    }
    let mut opened_by_app = fixture("sub_issues/sub_issue_added.payload.json");
    opened_by_app["sub_issue"]["performed_via_github_app"] =
        json!({"id": 42, "slug": "codegen-sh"});
    let event = event_of(decode_value("sub_issues", &opened_by_app).unwrap());
    let Event::SubIssue { child, .. } = event.kind else {
        unreachable!()
    };
    assert_eq!(
        child.via_app,
        Some(crate::domain::AppIdentity {
            id: 42,
            slug: "codegen-sh".into()
        })
    );
}

#[test]
fn a_labeled_issue_carries_the_label_and_the_issue() {
    let event = event_of(
        decode_value(
            "issues",
            &fixture("issues/labeled.with-organization.payload.json"),
        )
        .unwrap(),
    );
    let Event::Issue { action, issue } = event.kind else {
        panic!("not an issue event: {event:?}")
    };
    assert!(matches!(action, IssueAction::Labeled { .. }));
    assert_eq!(issue.state, IssueState::Open);
    assert!(!issue.is_pull_request);
    assert!(event.sender.is_some());
}

#[test]
fn a_closed_issue_keeps_githubs_reason() {
    let mut payload = fixture("issues/opened.payload.json");
    payload["action"] = json!("closed");
    payload["issue"]["state"] = json!("closed");
    for (reason, expected) in [
        (json!("not_planned"), CloseReason::NotPlanned),
        (json!("completed"), CloseReason::Completed),
        (json!("duplicate"), CloseReason::Duplicate),
        (Value::Null, CloseReason::Completed),
    ] {
        payload["issue"]["state_reason"] = reason;
        let event = event_of(decode_value("issues", &payload).unwrap());
        let Event::Issue { action, issue } = event.kind else {
            panic!()
        };
        assert_eq!(action, IssueAction::Closed { reason: expected });
        assert_eq!(issue.state, IssueState::Closed(expected));
    }
}

#[test]
fn an_edited_body_keeps_the_old_text() {
    let mut payload = fixture("issues/edited.payload.json");
    payload["changes"] = json!({"body": {"from": "Depends on #1"}});
    let event = event_of(decode_value("issues", &payload).unwrap());
    let Event::Issue { action, .. } = event.kind else {
        panic!()
    };
    assert_eq!(
        action,
        IssueAction::Edited {
            old_body: Some("Depends on #1".into())
        }
    );
}

#[test]
fn a_transfer_names_the_new_place() {
    let event =
        event_of(decode_value("issues", &fixture("issues/transferred.payload.json")).unwrap());
    let Event::Issue {
        action: IssueAction::Transferred { to },
        ..
    } = event.kind
    else {
        panic!()
    };
    assert!(to.is_some());
}

#[test]
fn an_edited_comment_keeps_the_old_body() {
    let event = event_of(
        decode_value(
            "issue_comment",
            &fixture("issue_comment/edited.payload.json"),
        )
        .unwrap(),
    );
    let Event::IssueComment {
        action: CommentAction::Edited { old_body },
        ..
    } = event.kind
    else {
        panic!()
    };
    assert_eq!(
        old_body.as_deref(),
        Some("You are totally right! I'll get this fixed right away.")
    );
}

/// GitHub publishes no example of `issue_dependencies`; this one is built from real issue
/// objects in the shape GitHub's documentation gives (`blocked_issue`, `blocking_issue`).
#[test]
fn a_native_dependency_links_two_issues() {
    let base = fixture("issues/opened.with-organization.payload.json");
    let mut blocking = base["issue"].clone();
    blocking["number"] = json!(7);
    blocking["state"] = json!("closed");
    blocking["state_reason"] = json!("completed");
    for (action, expected) in [
        ("blocked_by_added", DependencyAction::Added),
        ("blocked_by_removed", DependencyAction::Removed),
    ] {
        let payload = json!({
            "action": action,
            "blocked_issue": base["issue"],
            "blocking_issue": blocking,
            "repository": base["repository"],
            "organization": base["organization"],
            "installation": {"id": 42},
            "sender": base["sender"],
        });
        let event = event_of(decode_value("issue_dependencies", &payload).unwrap());
        assert_eq!(event.installation, Some(InstallationId(42)));
        let Event::IssueDependency {
            action,
            blocked,
            blocking,
        } = event.kind
        else {
            panic!()
        };
        assert_eq!(action, expected);
        assert_eq!(blocking.reference.number, 7);
        assert_eq!(blocking.state, IssueState::Closed(CloseReason::Completed));
        assert_eq!(blocked.reference.repo, blocking.reference.repo);
    }
}

#[test]
fn a_payload_missing_a_field_names_it() {
    let mut payload = fixture("issues/opened.payload.json");
    payload["issue"].as_object_mut().unwrap().remove("number");
    let err = decode_value("issues", &payload).unwrap_err().to_string();
    assert!(err.contains("issues payload"), "{err}");
    assert!(err.contains("issue"), "{err}");
    assert!(err.contains("number"), "{err}");
}

#[test]
fn an_event_the_app_does_not_handle_is_ignored() {
    assert_eq!(
        decode_payload("watch", b"{}").unwrap(),
        Decoded::Ignored("event not handled")
    );
}

mod properties {
    use proptest::prelude::*;

    use super::super::decode_payload;
    use crate::events::SUPPORTED_EVENTS;

    /// Arbitrary JSON, nested a few levels, with the keys payloads use.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[ -~]{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            let key = prop_oneof![
                Just("action".to_owned()),
                Just("issue".to_owned()),
                Just("number".to_owned()),
                Just("repository".to_owned()),
                Just("full_name".to_owned()),
                Just("labels".to_owned()),
                Just("comment".to_owned()),
                Just("body".to_owned()),
                Just("user".to_owned()),
                Just("installation".to_owned()),
                Just("id".to_owned()),
                "[a-z_]{1,12}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(key, inner, 0..6)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any bytes under any supported event: decoded, ignored or refused, never a panic.
        #[test]
        fn any_bytes_decode_without_panic(
            event in prop::sample::select(SUPPORTED_EVENTS),
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let _ = decode_payload(event, &body);
        }

        /// Any JSON shape under any supported event: the same.
        #[test]
        fn any_json_decodes_without_panic(
            event in prop::sample::select(SUPPORTED_EVENTS),
            value in json(),
        ) {
            let _ = decode_payload(event, value.to_string().as_bytes());
        }
    }
}
