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
    // A plain "Depends on:" line reaches only the lists right below it.
    assert!(deps_of("Depends on:\n\nNone yet.\n\n- #4\n").is_empty());
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
        "depends:0",
        "depends:#0",
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
        "Depends on #0",
        "Blocked by https://github.com/acme/app/issues/0",
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

/// Checks each row (a body, the dependencies of acme/app#10 it states) and reports every
/// wrong row at once.
fn check_table(table: &[(&str, &[&str])]) {
    let wrong: Vec<String> = table
        .iter()
        .filter_map(|(body, expected)| {
            let found = deps_of(body);
            (found != *expected)
                .then(|| format!("{body:?}\n  expected {expected:?}\n  found    {found:?}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} wrong rows:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Issue 13 (a): a dependency heading, an introductory sentence, then the list.
#[test]
fn an_issue_forms_answer_under_a_dependency_heading_counts_when_it_holds_only_references() {
    // GitHub renders an issue form's "Depends on" field as a heading over the answer.
    check_table(&[
        ("### Depends on\n\n#12\n", &["acme/app#12"]),
        (
            "### Blocked by\n\n#4, acme/api#5\n\n### Notes\n\n#9 is related.\n",
            &["acme/api#5", "acme/app#4"],
        ),
        ("### Depends on\n\n_No response_\n", &[]),
        ("### Dependencies\n\nSee #3 for the background.\n", &[]),
    ]);
}

#[test]
fn a_dependency_heading_keeps_its_lists_past_an_introductory_sentence() {
    check_table(&[
        (
            "## Dependencies\nThis PR is on hold until the dependencies are merged:\n- [ ] #4\n- [x] acme/api#5\n",
            &["acme/api#5", "acme/app#4"],
        ),
        (
            "### Blocked by\n\nThis can't start before these land:\n\n1. #4\n2. acme/api#5\n",
            &["acme/api#5", "acme/app#4"],
        ),
        (
            "**Dependencies**\nThis PR is on hold until the dependencies are merged:\n* #4\n* acme/api#5\n",
            &["acme/api#5", "acme/app#4"],
        ),
        (
            "**Depends on:**\n\nWaiting for:\n\n- [ ] #4\n- [ ] https://github.com/acme/api/pull/5\n",
            &["acme/api#5", "acme/app#4"],
        ),
        (
            "__Blocked by__:\nthe two below.\n\n+ #4\n+ acme/api#5\n",
            &["acme/api#5", "acme/app#4"],
        ),
        (
            "## Dependencies\n\nThe API change first:\n\n- #4\n\nThen, once it is out:\n\n- acme/api#5\n",
            &["acme/api#5", "acme/app#4"],
        ),
        (
            "Dependencies\n============\n\nOn hold until merged:\n\n- #4\n- acme/api#5\n",
            &["acme/api#5", "acme/app#4"],
        ),
        (
            "## Dependencies\n\n### Backend\n\n- #4\n\n### Client\n\n- acme/api#5\n",
            &["acme/api#5", "acme/app#4"],
        ),
        (
            "## Depends on\n\n```\nmake migrate\n```\n\n> The order matters.\n\n| after | what |\n|---|---|\n| - | - |\n\n- #4\n- acme/api#5\n",
            &["acme/api#5", "acme/app#4"],
        ),
    ]);
}

/// Where a dependency heading's reach ends: the next heading of the same or a higher level
/// (a bold line ranks below `######`); a plain "Depends on:" line reaches only the lists
/// right below it. Nothing in an introductory sentence is a dependency by itself.
#[test]
fn a_dependency_heading_reaches_the_next_heading_and_a_plain_lead_its_lists() {
    check_table(&[
        (
            "## Dependencies\n\nOn hold until merged:\n\n- #4\n\n## Tasks\n\n- [ ] #5\n",
            &["acme/app#4"],
        ),
        ("### Blocked by\n- #4\n\n## Tasks\n- #5\n", &["acme/app#4"]),
        ("### Blocked by\n- #4\n\n### Tasks\n- #5\n", &["acme/app#4"]),
        (
            "**Dependencies**\n- #4\n\n**Tasks**\n- [ ] #5\n",
            &["acme/app#4"],
        ),
        (
            "**Dependencies**\n- #4\n\n**Tasks**:\n- [ ] #5\n",
            &["acme/app#4"],
        ),
        (
            "**Dependencies**\nOn hold:\n- #4\n\n###### Tasks\n- #5\n",
            &["acme/app#4"],
        ),
        (
            "## Dependencies\n\n**Backend**\n- #4\n\n**Client**\n- #5\n\n## Tasks\n- #6\n",
            &["acme/app#4", "acme/app#5"],
        ),
        (
            "## Dependencies\n\nThis waits on #7, see the thread:\n\n- #4\n",
            &["acme/app#4"],
        ),
        ("Depends on:\n- #4\n\nTasks:\n- [ ] #5\n", &["acme/app#4"]),
        (
            "Depends on:\n- #4\n\n* #5\n\nTasks:\n- #6\n",
            &["acme/app#4", "acme/app#5"],
        ),
        (
            "Depends on:\nthese two.\n- #4\n- #5\n",
            &["acme/app#4", "acme/app#5"],
        ),
        (
            "Depends on:\n- #4\n\nBlocked by:\n- #5\n",
            &["acme/app#4", "acme/app#5"],
        ),
        ("Depends on:\n\nNone yet.\n\n- #4\n", &[]),
        ("Depends on:\n```\nlog\n```\n- #4\n", &[]),
        ("Depends on:\n> quoted\n\n- #4\n", &[]),
        ("Depends on:\n\n| a |\n|---|\n| b |\n\n- #4\n", &[]),
        (
            "Blocked by:\n<!-- one per line -->\n- #4\n",
            &["acme/app#4"],
        ),
        ("## Dependencies\n\n> - #4\n", &[]),
        ("> ## Dependencies\n\n- #4\n", &[]),
        ("> **Dependencies**\n\n- #4\n", &[]),
        (
            "## Dependencies\n- #4\n> ## Tasks\n- #5\n",
            &["acme/app#4", "acme/app#5"],
        ),
        ("- **Dependencies**\n- #4\n", &[]),
        ("- **Dependencies**\n\n- #4\n", &[]),
        ("**Depends** on:\n\nIntro.\n\n- #4\n", &[]),
        (
            "Depends on:\n- #4\n  ```\n  log\n  ```\n- #5\n",
            &["acme/app#4", "acme/app#5"],
        ),
        ("- Depends on\n\n  | #5 |\n  | -- |\n", &[]),
        ("*Dependencies*\n\nOn hold:\n\n- #4\n", &[]),
        ("**Dependencies** of the release\n- #4\n", &[]),
        (
            "**Dependencies**\n- #4 and #5, on\n  #6\n",
            &["acme/app#4", "acme/app#5", "acme/app#6"],
        ),
        (
            "## Dependencies\n- #4\n  - acme/api#5\n",
            &["acme/api#5", "acme/app#4"],
        ),
        (
            "## Dependencies\n- #4\n\n  Details in #5.\n",
            &["acme/app#4", "acme/app#5"],
        ),
    ]);
}

/// Issue 13 (b): a reference list ends at a line break.
#[test]
fn a_line_break_ends_a_reference_list() {
    check_table(&[
        ("Depends on #2\n#3 is unrelated", &["acme/app#2"]),
        (
            "Blocked by acme/api#2\nacme/api#3 was closed last week.",
            &["acme/api#2"],
        ),
        (
            "- [ ] Depends on #2\n  #3 is a duplicate of this one",
            &["acme/app#2"],
        ),
        ("1. Needs #2\n   #3 tracks the docs.", &["acme/app#2"]),
        ("**Blocked by** #2\n#3 is unrelated", &["acme/app#2"]),
        ("Depends on #2  \n#3 is unrelated", &["acme/app#2"]),
        ("Depends on #2\\\n#3 is unrelated", &["acme/app#2"]),
        (
            "Requires #2 #3\nhttps://github.com/acme/app/issues/4 is where it started",
            &["acme/app#2", "acme/app#3"],
        ),
    ]);
}

/// ...unless a separator joins the lines or the next line holds only references.
#[test]
fn a_reference_list_goes_on_after_a_separator_or_onto_a_line_of_references() {
    check_table(&[
        (
            "Depends on #2,\n#3 and #4",
            &["acme/app#2", "acme/app#3", "acme/app#4"],
        ),
        (
            "Depends on #2 and\n#3 once it lands",
            &["acme/app#2", "acme/app#3"],
        ),
        ("Depends on #2 &\n#3", &["acme/app#2", "acme/app#3"]),
        ("Depends on #2\nand #3 too", &["acme/app#2", "acme/app#3"]),
        (
            "Depends on #2\n#3, acme/api#4.",
            &["acme/api#4", "acme/app#2", "acme/app#3"],
        ),
        ("Blocked by\n#2", &["acme/app#2"]),
        ("- [ ] Depends on #2\n  #3", &["acme/app#2", "acme/app#3"]),
    ]);
}

/// Issue 13 (c): a sentence whose subject is another issue states that issue's dependency.
#[test]
fn a_dependency_of_another_issue_is_not_this_ones() {
    check_table(&[
        ("#9 depends on #8", &[]),
        ("acme/api#4 is blocked by #5", &[]),
        ("Issue #9 depends on #8.", &[]),
        ("- [ ] #3 (blocked by #2)\n- [ ] #4\n", &[]),
        ("1. #3: needs #2\n2. #4 - needs #2\n", &[]),
        ("* acme/api#3 — blocked by #2\n", &[]),
        ("#9 (the login page) requires #8", &[]),
        ("#3 and #4 depend on #8", &[]),
        ("#9 no longer depends on #8", &[]),
        (
            "[#9](https://github.com/acme/app/issues/9) depends on #8",
            &[],
        ),
        ("**Blocked by** #2. #9 also depends on #8.", &["acme/app#2"]),
        ("Depends on #2, which is blocked by #1.", &["acme/app#2"]),
        ("Needs #2.\n#9 needs #1.", &["acme/app#2"]),
    ]);
}

/// ...and counts when the subject is the issue itself, named or not.
#[test]
fn a_dependency_of_this_issue_counts_however_it_is_named() {
    check_table(&[
        ("This depends on #8", &["acme/app#8"]),
        ("Depends on #8", &["acme/app#8"]),
        ("This issue is blocked by #5", &["acme/app#5"]),
        ("#10 depends on #8", &["acme/app#8"]),
        ("acme/app#10 is blocked by #5", &["acme/app#5"]),
        ("#10 and #11 depend on #8", &["acme/app#8"]),
        ("Like #9, this depends on #8", &["acme/app#8"]),
        ("This, like #9, needs #8", &["acme/app#8"]),
        ("Once #3 is merged this is blocked by #8", &["acme/app#8"]),
        ("See #9\nDepends on #8", &["acme/app#8"]),
    ]);
}

/// What is outside code, quotes, links' texts, HTML and struck-through text still counts.
#[test]
fn text_around_code_quotes_links_and_html_counts() {
    check_table(&[
        ("```\nlog\n```\nDepends on #1", &["acme/app#1"]),
        ("> Blocked by #9\n\nBlocked by #2", &["acme/app#2"]),
        ("<!-- Depends on #9 -->\nDepends on #3", &["acme/app#3"]),
        (
            "See [the design](https://example.com/doc); depends on #4",
            &["acme/app#4"],
        ),
        ("Requires #5<br>#6", &["acme/app#5", "acme/app#6"]),
        ("Requires #5`v2`#6", &["acme/app#5", "acme/app#6"]),
        (
            "**Dependencies** `v2`\n\nOn hold:\n\n- #4\n",
            &["acme/app#4"],
        ),
    ]);
}

/// Struck-through text is withdrawn; a table reads row by row, one line per row.
#[test]
fn struck_through_text_is_withdrawn_and_tables_read_by_row() {
    check_table(&[
        ("~~Depends on #4~~", &[]),
        ("Blocked by ~~#4~~ #5", &["acme/app#5"]),
        (
            "## Dependencies\n- ~~#4~~ not needed after all\n- #5\n",
            &["acme/app#5"],
        ),
        ("## ~~Dependencies~~\n\nOn hold:\n\n- #4\n", &[]),
        (
            "| Issue | Status |\n|---|---|\n| this | blocked by #4 |\n| #9 | blocked by #8 |\n",
            &["acme/app#4"],
        ),
        (
            "| Blocked by | #4 |\n|---|---|\n| #5 | was closed |\n",
            &["acme/app#4"],
        ),
    ]);
}
