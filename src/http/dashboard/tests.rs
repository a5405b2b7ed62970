//! The dashboard's texts from one fixed view: the page, its SVG, the JSON and each refusal
//! (snapshots), and that no title reaches the page unescaped.

use super::Refusal;
use super::page::{PageView, boards_html, dashboard_page, refusal_page};
use super::svg::graph_svg;
use crate::engine::board::{
    BlockedRow, BlockerRow, DoneRow, FailedRow, GraphView, NodeState, NodeView, QueuedRow,
    RepoBoard, RunningRow, Totals,
};

/// 2026-12-01 14:00 UTC.
const NOW: i64 = 1_796_133_600_000;

fn node(issue: &str, title: &str, state: NodeState, depth: usize) -> NodeView {
    NodeView {
        issue: issue.into(),
        number: issue.rsplit('#').next().unwrap().parse().unwrap(),
        title: Some(title.into()),
        state,
        cycle: false,
        depth,
    }
}

/// A repository with one issue in each state, a chain, a cycle and a hostile title.
fn board() -> RepoBoard {
    let mut held = node(
        "acme/api#7",
        "Cache <script>alert(1)</script>",
        NodeState::Blocked,
        0,
    );
    held.cycle = true;
    RepoBoard {
        repo: "acme/api".into(),
        paused_by: Some("octocat".into()),
        resume: Some("/codegen resume".into()),
        quota_pause: None,
        suspended: false,
        graph: GraphView {
            nodes: vec![
                node("acme/api#1", "Schema for accounts", NodeState::Done, 0),
                node("acme/api#5", "Flaky importer", NodeState::Failed, 0),
                held,
                node("acme/api#2", "Accounts API", NodeState::Running, 1),
                node("acme/api#3", "Billing API", NodeState::Queued, 1),
                node(
                    "acme/api#4",
                    "Dashboard for accounts & billing",
                    NodeState::Blocked,
                    2,
                ),
            ],
            edges: vec![(0, 3), (0, 4), (3, 5), (4, 5)],
        },
        running: vec![RunningRow {
            issue: "acme/api#2".into(),
            title: Some("Accounts API".into()),
            attempt: 1,
            run_url: Some("https://codegen.com/agent/trace/42".into()),
            elapsed_secs: 754,
            expected_finish: Some(NOW + 40 * 60_000),
            agent_hours: None,
        }],
        queued: vec![QueuedRow {
            issue: "acme/api#3".into(),
            title: Some("Billing API".into()),
            position: Some(1),
            expected_start: Some(NOW + 20 * 60_000),
            expected_finish: None,
            agent_hours: Some(1.5),
        }],
        blocked: vec![
            BlockedRow {
                issue: "acme/api#4".into(),
                title: Some("Dashboard for accounts & billing".into()),
                blockers: vec![
                    BlockerRow {
                        issue: "acme/api#2".into(),
                        title: Some("Accounts API".into()),
                        why: "running".into(),
                    },
                    BlockerRow {
                        issue: "acme/api#3".into(),
                        title: Some("Billing API".into()),
                        why: "queued".into(),
                    },
                ],
                hidden_blockers: 1,
                cycle: None,
                expected_start: None,
                expected_finish: None,
                agent_hours: None,
            },
            BlockedRow {
                issue: "acme/api#7".into(),
                title: Some("Cache <script>alert(1)</script>".into()),
                blockers: vec![],
                hidden_blockers: 0,
                cycle: Some("#7 -> #8 -> #7".into()),
                expected_start: None,
                expected_finish: None,
                agent_hours: None,
            },
        ],
        failed: vec![FailedRow {
            issue: "acme/api#5".into(),
            title: Some("Flaky importer".into()),
            attempt: 2,
            reason: Some("the agent ran out of tokens".into()),
            run_url: None,
            retry: "/codegen retry".into(),
        }],
        done: vec![DoneRow {
            issue: "acme/api#1".into(),
            title: Some("Schema for accounts".into()),
            pull_requests: vec!["https://github.com/acme/api/pull/11".into()],
        }],
        totals: Totals {
            issues: 6,
            blocked: 2,
            queued: 1,
            running: 1,
            done: 1,
            failed: 1,
            expected_finish: None,
            agent_hours: None,
        },
    }
}

fn page() -> String {
    let boards = [board()];
    let repos = ["acme/api".to_owned(), "acme/web".to_owned()];
    dashboard_page(&PageView {
        login: "octocat",
        repos: &repos,
        selected: Some("acme/api"),
        boards: &boards,
        web_url: "https://github.com",
    })
}

#[test]
fn the_page_shows_every_list_the_graph_and_the_forecast_when_known() {
    let page = page();
    assert!(
        page.contains("expected to start around 14:20 UTC"),
        "{page}"
    );
    assert!(
        page.contains("expected to finish around 14:40 UTC"),
        "{page}"
    );
    assert!(page.contains("about 1.5 agent hours"), "{page}");
    assert!(page.contains("<code>/codegen retry</code>"), "{page}");
    insta::assert_snapshot!(page);
}

#[test]
fn the_graph_is_svg_with_a_node_per_issue_and_an_arrow_per_dependency() {
    let svg = graph_svg(&board().graph, "acme/api");
    assert_eq!(svg.matches("<g class=\"node\"").count(), 6);
    assert_eq!(svg.matches("class=\"edge\"").count(), 4);
    assert!(svg.contains("stroke-dasharray"), "the cycle is marked");
    insta::assert_snapshot!(svg);
}

#[test]
fn the_json_has_the_same_rows() {
    let json = serde_json::to_string_pretty(&board()).unwrap();
    insta::assert_snapshot!(json);
}

#[test]
fn no_title_reaches_the_page_or_the_svg_unescaped() {
    let page = page();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // The one script is the page's own.
    assert_eq!(page.matches("<script>").count(), 1);
    let live = boards_html(&[board()], "https://github.com");
    assert!(!live.contains("<script"), "{live}");
}

#[test]
fn a_repository_without_managed_issues_says_how_to_start() {
    let mut empty = board();
    empty.graph = GraphView {
        nodes: vec![],
        edges: vec![],
    };
    empty.running.clear();
    empty.queued.clear();
    empty.blocked.clear();
    empty.failed.clear();
    empty.done.clear();
    empty.totals = Totals::default();
    empty.paused_by = None;
    empty.resume = None;
    insta::assert_snapshot!(boards_html(&[empty], "https://github.com"));
}

#[test]
fn every_refusal_says_what_happened_and_what_to_do() {
    let refusals = [
        Refusal::NotConfigured {
            callback: "https://bot.example.com/dashboard/callback".into(),
        },
        Refusal::StateMismatch,
        Refusal::SignInFailed(
            "bad_verification_code (The code passed is incorrect or expired.)".into(),
        ),
        Refusal::NothingToSee {
            login: "<b>mallory</b>".into(),
        },
        Refusal::NoSuchRepository,
        Refusal::GithubUnavailable,
        Refusal::Store,
    ];
    let pages: Vec<String> = refusals
        .iter()
        .map(|r| format!("{} {}\n{}", r.status().as_u16(), r, refusal_page(r)))
        .collect();
    assert!(!refusal_page(&refusals[3]).contains("<b>mallory"));
    insta::assert_snapshot!(pages.join("\n----\n"));
}

#[test]
fn only_web_addresses_from_outside_become_links() {
    use super::page::outside_link;
    assert_eq!(
        outside_link("https://codegen.com/run/1?a=1&b=2", "the run"),
        r#"<a href="https://codegen.com/run/1?a=1&amp;b=2">the run</a>"#
    );
    assert_eq!(outside_link("javascript:alert(1)", "the run"), "the run");
    assert_eq!(outside_link("data:text/html,<b>", "<x>"), "&lt;x&gt;");
}

#[test]
fn the_pages_run_only_their_own_script() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let policy = super::handlers::content_security_policy();
    let hash = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(super::page::LIVE_SCRIPT.as_bytes()));
    assert!(policy.starts_with("default-src 'none'; "), "{policy}");
    assert!(
        policy.contains(&format!("script-src 'sha256-{hash}';")),
        "{policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
}
