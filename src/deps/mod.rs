//! Dependencies written by people: "Depends on #12", "Blocked by acme/api#3", a
//! `Dependencies` heading over a task list, `depends:#N` labels. Pure text in, issue
//! references out; no I/O.
//!
//! The body is parsed as Markdown (pulldown-cmark) first, so that nothing inside code spans,
//! code blocks, block quotes or HTML comments counts.

use std::collections::BTreeSet;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use regex::Regex;

use crate::domain::{IssueRef, RepoName};

/// Finds the issues an issue depends on. Built once (it compiles its patterns) for the web
/// host references may point to: `github.com`, or a GitHub Enterprise Server's host.
pub struct DependencyParser {
    phrase: Regex,
    reference: Regex,
    heading: Regex,
    closing: Regex,
}

impl DependencyParser {
    /// A parser for references on `web_host` (and always github.com).
    pub fn new(web_host: &str) -> Self {
        let hosts = if web_host.eq_ignore_ascii_case("github.com") {
            regex::escape("github.com")
        } else {
            format!("{}|github\\.com", regex::escape(web_host))
        };
        let reference = reference_pattern(&hosts, true);
        let unnamed = reference_pattern(&hosts, false);
        let separator = r"(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*|\s+)";
        let phrase = format!(
            r"(?i)(?-u:\b)(?:depends?\s+on|blocked\s+by|requires|needs|after)\s*:?\s*(?P<list>(?:{unnamed})(?:{separator}(?:{unnamed}))*)"
        );
        let closing = format!(
            r"(?i)(?-u:\b)(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+(?P<reference>{unnamed})"
        );
        Self {
            closing: Regex::new(&closing).expect("the closing keyword pattern is valid"),
            phrase: Regex::new(&phrase).expect("the dependency phrase pattern is valid"),
            reference: Regex::new(&reference).expect("the reference pattern is valid"),
            heading: Regex::new(r"(?i)^\s*(?:dependencies|depends\s+on|blocked\s+by)\s*:?\s*$")
                .expect("the heading pattern is valid"),
        }
    }

    /// The issues `issue` depends on according to its body and labels, resolved against its
    /// own repository; never itself, no duplicates.
    pub fn dependencies(
        &self,
        issue: &IssueRef,
        body: &str,
        labels: &[String],
    ) -> BTreeSet<IssueRef> {
        let mut found = self.from_body(&issue.repo, body);
        found.extend(
            labels
                .iter()
                .filter_map(|label| label_dependency(&issue.repo, label)),
        );
        found.remove(issue);
        found
    }

    /// References after a dependency phrase, and in lists under a dependency heading.
    pub fn from_body(&self, repo: &RepoName, body: &str) -> BTreeSet<IssueRef> {
        let mut found = BTreeSet::new();
        let text = extract_text(&self.heading, body);
        for block in &text.blocks {
            for phrase in self.phrase.captures_iter(block) {
                self.collect_references(repo, &phrase["list"], &mut found);
            }
        }
        for item in &text.dependency_items {
            self.collect_references(repo, item, &mut found);
        }
        found
    }

    /// Every reference in `text` (`#N`, `owner/repo#N`, issue or pull URLs), resolved
    /// against `repo`; for command arguments, where no phrase is needed.
    pub fn references(&self, repo: &RepoName, text: &str) -> BTreeSet<IssueRef> {
        let mut found = BTreeSet::new();
        self.collect_references(repo, text, &mut found);
        found
    }

    /// The issues a pull request's body says it closes, with GitHub's closing keywords
    /// (`close`, `closes`, `closed`, `fix`, `fixes`, `fixed`, `resolve`, `resolves`,
    /// `resolved`, any case, an optional colon), outside code and quotes.
    pub fn closing_references(&self, repo: &RepoName, body: &str) -> BTreeSet<IssueRef> {
        let mut found = BTreeSet::new();
        let text = extract_text(&self.heading, body);
        for block in &text.blocks {
            for closing in self.closing.captures_iter(block) {
                self.collect_references(repo, &closing["reference"], &mut found);
            }
        }
        found
    }

    fn collect_references(&self, repo: &RepoName, text: &str, into: &mut BTreeSet<IssueRef>) {
        for reference in self.reference.captures_iter(text) {
            if let Some(found) = resolve(repo, &reference) {
                into.insert(found);
            }
        }
    }
}

/// A URL on one of `hosts`, `owner/repo#N` or `#N`; with `named`, the parts are captured as
/// `uo`/`ur`/`un` (URL) and `o`/`r`/`n` (short form).
fn reference_pattern(hosts: &str, named: bool) -> String {
    let group = |name: &str| {
        if named {
            format!("?P<{name}>")
        } else {
            "?:".to_owned()
        }
    };
    let name = r"[A-Za-z0-9_.-]+";
    format!(
        r"(?i:https?://(?:www\.)?(?:{hosts})/({uo}{name})/({ur}{name})/(?:issues|pull)/({un}\d+))|(?:({o}{name})/({r}{name}))?#({n}\d+)\b",
        uo = group("uo"),
        ur = group("ur"),
        un = group("un"),
        o = group("o"),
        r = group("r"),
        n = group("n"),
    )
}

fn resolve(repo: &RepoName, captures: &regex::Captures<'_>) -> Option<IssueRef> {
    let (owner, name, number) = match (captures.name("un"), captures.name("n")) {
        (Some(number), _) => (captures.name("uo"), captures.name("ur"), number),
        (None, Some(number)) => (captures.name("o"), captures.name("r"), number),
        (None, None) => return None,
    };
    let number: u64 = number.as_str().parse().ok().filter(|n| *n > 0)?;
    let target = match (owner, name) {
        (Some(owner), Some(name)) => RepoName::new(owner.as_str(), name.as_str()).ok()?,
        _ => repo.clone(),
    };
    Some(IssueRef::new(target, number))
}

/// `depends:#12`, `depends:12`, `depends:issue-12` (the Python tool's labels).
fn label_dependency(repo: &RepoName, label: &str) -> Option<IssueRef> {
    let (prefix, rest) = label.split_once(':')?;
    if !prefix.trim().eq_ignore_ascii_case("depends") {
        return None;
    }
    let rest = rest.trim();
    let digits = rest
        .strip_prefix('#')
        .or_else(|| rest.strip_prefix("issue-"))
        .unwrap_or(rest);
    let number: u64 = digits.parse().ok().filter(|n| *n > 0)?;
    Some(IssueRef::new(repo.clone(), number))
}

/// What of a body is searched for dependencies.
#[derive(Default)]
struct BodyText {
    /// The text of each paragraph, heading and list item, with code, quotes and HTML left
    /// out; links contribute their destination (so `[this](…/issues/5)` is a reference).
    blocks: Vec<String>,
    /// Items of lists that directly follow a `Dependencies` / `Depends on` / `Blocked by`
    /// heading or bold line: every reference in them counts.
    dependency_items: Vec<String>,
}

/// One pass over the Markdown collecting both kinds of text.
fn extract_text(heading: &Regex, body: &str) -> BodyText {
    let mut out = BodyText::default();
    let mut text = MarkdownText::default();
    let mut after_heading = false; // the last top-level block was a dependency heading
    let mut list_depth = 0usize;
    let mut in_dependency_list = false;
    for event in Parser::new_ext(body, markdown_options()) {
        match &event {
            Event::Start(Tag::List(_)) => {
                if list_depth == 0 {
                    in_dependency_list = after_heading;
                    after_heading = false;
                }
                list_depth += 1;
            }
            Event::End(TagEnd::List(_)) => {
                list_depth = list_depth.saturating_sub(1);
                if list_depth == 0 {
                    // A list right after it (another bullet character starts a new list
                    // in CommonMark) still belongs to the heading.
                    after_heading = in_dependency_list;
                    in_dependency_list = false;
                }
            }
            Event::Start(Tag::Item) | Event::End(TagEnd::Item) => {
                out.push(text.take(), in_dependency_list);
            }
            Event::Start(Tag::Heading { .. } | Tag::Paragraph) => {
                out.push(text.take(), in_dependency_list);
            }
            Event::End(TagEnd::Heading(_) | TagEnd::Paragraph) => {
                let block = text.take();
                if list_depth == 0 {
                    after_heading = heading.is_match(&block);
                }
                out.push(block, in_dependency_list);
            }
            Event::Start(Tag::CodeBlock(_) | Tag::BlockQuote(_) | Tag::Table(_))
                if list_depth == 0 =>
            {
                after_heading = false;
                text.feed(&event);
            }
            _ => text.feed(&event),
        }
    }
    out.push(text.take(), false);
    out
}

impl BodyText {
    fn push(&mut self, block: String, in_dependency_list: bool) {
        if block.trim().is_empty() {
            return;
        }
        if in_dependency_list {
            self.dependency_items.push(block.clone());
        }
        self.blocks.push(block);
    }
}

fn markdown_options() -> Options {
    Options::ENABLE_TASKLISTS | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES
}

/// Collects visible text, skipping code, quotes and HTML.
#[derive(Default)]
struct MarkdownText {
    text: String,
    hidden_depth: usize,
    link_depth: usize,
}

impl MarkdownText {
    fn feed(&mut self, event: &Event<'_>) {
        match event {
            Event::Start(Tag::CodeBlock(_) | Tag::BlockQuote(_) | Tag::HtmlBlock) => {
                self.hidden_depth += 1
            }
            Event::End(TagEnd::CodeBlock | TagEnd::BlockQuote(_) | TagEnd::HtmlBlock) => {
                self.hidden_depth = self.hidden_depth.saturating_sub(1)
            }
            _ if self.hidden_depth > 0 => {}
            Event::Start(Tag::Link { dest_url, .. }) => {
                self.text.push(' ');
                self.text.push_str(dest_url);
                self.text.push(' ');
                self.link_depth += 1;
            }
            Event::End(TagEnd::Link) => self.link_depth = self.link_depth.saturating_sub(1),
            Event::Text(text) if self.link_depth == 0 => self.text.push_str(text),
            Event::SoftBreak | Event::HardBreak => self.text.push(' '),
            // Inline code, inline HTML (comments included) and link texts do not count;
            // they still separate words.
            Event::Code(_) | Event::InlineHtml(_) | Event::Html(_) => self.text.push(' '),
            _ => {}
        }
    }

    fn take(&mut self) -> String {
        std::mem::take(&mut self.text)
    }
}

#[cfg(test)]
mod tests;
