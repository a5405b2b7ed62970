use proptest::prelude::*;

use super::*;

fn parser() -> DependencyParser {
    DependencyParser::new("github.com")
}

fn own() -> IssueRef {
    IssueRef::new("acme/app".parse().unwrap(), 10)
}

fn deps_of(body: &str) -> Vec<String> {
    parser()
        .dependencies(&own(), body, &[])
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn every_phrase_in_any_case_with_or_without_colon() {
    for body in [
        "Depends on #1",
        "depends on #1",
        "DEPENDS ON #1",
        "Depend on #1",
        "Depends on: #1",
        "Blocked by #1",
        "blocked BY: #1",
        "Requires #1",
        "requires: #1",
        "Needs #1",
        "After #1",
        "This can only start after #1 is merged.",
        "We need this.\n\nIt depends on #1.",
        "Depends\ton  #1",
    ] {
        assert_eq!(deps_of(body), ["acme/app#1"], "{body:?}");
    }
}

#[test]
fn lists_of_references_after_one_phrase() {
    assert_eq!(
        deps_of("Depends on #1, #2 and acme/api#3"),
        ["acme/api#3", "acme/app#1", "acme/app#2"]
    );
    assert_eq!(deps_of("Blocked by #4 & #5"), ["acme/app#4", "acme/app#5"]);
    assert_eq!(deps_of("Requires #6 #7"), ["acme/app#6", "acme/app#7"]);
    assert_eq!(
        deps_of("needs #1, #2, and #3."),
        ["acme/app#1", "acme/app#2", "acme/app#3"]
    );
}

#[test]
fn url_references_to_issues_and_pull_requests() {
    assert_eq!(
        deps_of("Depends on https://github.com/octo/lib/issues/12"),
        ["octo/lib#12"]
    );
    assert_eq!(
        deps_of("Blocked by https://github.com/octo/lib/pull/13"),
        ["octo/lib#13"]
    );
    assert_eq!(
        deps_of("Blocked by [the fix](https://github.com/octo/lib/pull/14)"),
        ["octo/lib#14"]
    );
    // Another host does not count unless it is the configured Enterprise host.
    assert!(deps_of("Depends on https://gitlab.com/octo/lib/issues/12").is_empty());
    let ghe = DependencyParser::new("git.example.com");
    let found = ghe.dependencies(
        &own(),
        "Depends on https://git.example.com/octo/lib/issues/9",
        &[],
    );
    assert_eq!(
        found.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["octo/lib#9"]
    );
}

#[test]
fn headings_and_bold_lines_over_lists() {
    let bodies = [
        "## Dependencies\n\n- [ ] #4\n- [x] acme/api#5\n* https://github.com/o/r/issues/6\n",
        "**Depends on**\n- #4\n- acme/api#5\n- https://github.com/o/r/issues/6\n",
        "### Blocked by:\n\n1. #4\n2. acme/api#5 (the API)\n3. https://github.com/o/r/issues/6\n",
        "Depends on:\n- #4\n- acme/api#5\n- https://github.com/o/r/issues/6\n",
    ];
    for body in bodies {
        assert_eq!(
            deps_of(body),
            ["acme/api#5", "acme/app#4", "o/r#6"],
            "{body:?}"
        );
    }
}

#[test]
fn a_list_that_does_not_follow_a_dependency_heading_is_not_dependencies() {
    assert!(deps_of("## Tasks\n\n- [ ] #4\n- [ ] #5\n").is_empty());
    assert!(deps_of("## Dependencies\n\nNone yet.\n\n- #4\n").is_empty());
}

#[test]
fn labels_in_the_python_tools_forms() {
    let labels: Vec<String> = [
        "depends:#3",
        "depends:4",
        "depends:issue-5",
        "Depends: #6",
        "bug",
        "depends:x",
    ]
    .map(String::from)
    .to_vec();
    let found = parser().dependencies(&own(), "", &labels);
    let found: Vec<_> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        ["acme/app#3", "acme/app#4", "acme/app#5", "acme/app#6"]
    );
}

#[test]
fn code_quotes_and_comments_do_not_count() {
    for body in [
        "`Depends on #1`",
        "```\nDepends on #1\n```",
        "~~~md\nBlocked by #1\n~~~",
        "    Depends on #1 (indented code)",
        "> Depends on #1",
        "> quoted\n> blocked by #1",
        "<!-- Depends on #1 -->",
        "<!--\nDepends on #1\n-->",
        "Depends on `#1`",
    ] {
        assert!(
            deps_of(body).is_empty(),
            "{body:?} yielded {:?}",
            deps_of(body)
        );
    }
}

#[test]
fn mentions_are_not_dependencies() {
    for body in [
        "#12",
        "See #12",
        "Fixes #12",
        "Closes acme/api#12",
        "Related: https://github.com/acme/app/issues/12",
        "Depends on 123",
        "depends on issue 12",
        "after all, see #12",
        "independs on #12",
    ] {
        assert!(
            deps_of(body).is_empty(),
            "{body:?} yielded {:?}",
            deps_of(body)
        );
    }
}

#[test]
fn never_itself_and_no_duplicates() {
    assert_eq!(
        deps_of("Depends on #10, #1, #1 and acme/app#1"),
        ["acme/app#1"]
    );
    assert!(deps_of("Depends on acme/app#10").is_empty());
}

#[test]
fn empty_or_missing_bodies_are_fine() {
    assert!(deps_of("").is_empty());
    assert!(deps_of("\n\n   \n").is_empty());
}

fn prose() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z]{1,8}", 0..12).prop_map(|words| words.join(" "))
}

proptest! {
    #[test]
    fn any_text_parses_without_panic(body in "\\PC{0,400}") {
        let _ = parser().dependencies(&own(), &body, std::slice::from_ref(&body));
    }

    #[test]
    fn a_reference_after_a_phrase_in_prose_is_always_found(
        before in prose(),
        after in prose(),
        phrase in prop::sample::select(vec!["depends on", "Depends on:", "blocked by", "REQUIRES", "needs", "after"]),
        number in 1u64..100_000,
        cross_repo in any::<bool>(),
    ) {
        prop_assume!(number != 10 || cross_repo);
        let reference = if cross_repo { format!("octo/lib#{number}") } else { format!("#{number}") };
        let body = format!("{before} {phrase} {reference} {after}");
        let expected = if cross_repo {
            IssueRef::new("octo/lib".parse().unwrap(), number)
        } else {
            IssueRef::new("acme/app".parse().unwrap(), number)
        };
        prop_assert!(parser().dependencies(&own(), &body, &[]).contains(&expected), "{}", body);
    }
}

#[test]
fn closing_keywords_name_the_issues_a_pull_request_closes() {
    let parser = DependencyParser::new("github.com");
    let repo: RepoName = "acme/api".parse().unwrap();
    let found = parser.closing_references(
        &repo,
        "Fixes #12, closes acme/web#3 and Resolved: https://github.com/acme/api/issues/9\n\n`fixes #4`\n> closes #5\nsee #6, prefixes #7",
    );
    let found: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(found, ["acme/api#9", "acme/api#12", "acme/web#3"]);
}

#[test]
fn command_arguments_are_plain_reference_lists() {
    let parser = DependencyParser::new("github.com");
    let repo: RepoName = "acme/api".parse().unwrap();
    let found: Vec<String> = parser
        .references(
            &repo,
            "#1, other/x#2 and https://github.com/acme/api/pull/3",
        )
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(found, ["acme/api#1", "acme/api#3", "other/x#2"]);
}
