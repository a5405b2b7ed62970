//! Dependencies written by people: "Depends on #12", "Blocked by acme/api#3", a
//! `Dependencies` heading over a task list, `depends:#N` labels. Pure text in, issue
//! references out; no I/O.
//!
//! The body is parsed as Markdown (pulldown-cmark) first, so that nothing inside code spans,
//! code blocks, block quotes, HTML comments or struck-through text counts; a table reads row
//! by row. Then:
//! - a phrase (`depends on`, `blocked by`, `requires`, `needs`, `after`) counts when its
//!   subject is the issue itself ("This depends on #8", "Depends on #8"), not when it is
//!   another issue ("#9 depends on #8" states #9's dependency);
//! - the references after a phrase run to the end of the line, and on to the next line only
//!   when a separator (`,`, `and`, `&`) joins them or that line holds only references;
//! - under a `Dependencies` / `Depends on` / `Blocked by` heading (`###` or a bold line)
//!   every list counts until the next heading of the same or a higher level, introductory
//!   sentences notwithstanding, and so does a paragraph holding only references (how an
//!   issue form renders a "Depends on" answer); under a plain `Depends on:` line, the lists
//!   right below it.

use std::collections::BTreeSet;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use regex::Regex;

use crate::domain::{IssueRef, RepoName};

/// Finds the issues an issue depends on. Built once (it compiles its patterns) for the web
/// host references may point to: `github.com`, or a GitHub Enterprise Server's host.
pub struct DependencyParser {
    phrase: Regex,
    continuation: Regex,
    reference_line: Regex,
    subject: Regex,
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
        let list = format!(r"(?:{unnamed})(?:{separator}(?:{unnamed}))*");
        let phrase = format!(
            r"(?i)(?-u:\b)(?:depends?\s+on|blocked\s+by|requires|needs|after)\s*:?\s*(?P<first>{unnamed})"
        );
        let continuation = format!(r"(?i)^(?P<separator>{separator})(?:{unnamed})");
        let reference_line = format!(r"(?i)^\s*{list}\s*[.,;:!?]?\s*$");
        // What may stand between a sentence's subject and its dependency phrase:
        // "#9 depends on", "acme/api#4 is blocked by", "#3 (blocked by", "#9, which is now
        // blocked by", "#9 no longer needs".
        let auxiliary = r"is|are|was|were|be|been|being|has|have|had|does|do|did|will|would|shall|should|can|could|may|might|must|also|still|now|currently|already|itself|then|too|both|all|only|probably|likely|actually|really|definitely|directly|indirectly|partly|partially|which|that|got|gets|getting|becomes?|became|not|never|no\s+longer|cannot|(?:is|are|was|does|do|did|wo|ca)n[’']t";
        let subject = format!(
            r"(?i)(?P<subject>{list})[ \t]*(?:\([^()\n]*\)[ \t]*)?(?:[:(–—-][ \t]*)?(?:,[ \t]*(?:which|that)[ \t]+)?(?:(?:{auxiliary})(?-u:\b)[ \t]*)*$"
        );
        let closing = format!(
            r"(?i)(?-u:\b)(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+(?P<reference>{unnamed})"
        );
        Self {
            closing: Regex::new(&closing).expect("the closing keyword pattern is valid"),
            phrase: Regex::new(&phrase).expect("the dependency phrase pattern is valid"),
            continuation: Regex::new(&continuation).expect("the continuation pattern is valid"),
            reference_line: Regex::new(&reference_line)
                .expect("the reference line pattern is valid"),
            subject: Regex::new(&subject).expect("the subject pattern is valid"),
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
        let mut found = self.body_dependencies(issue, body);
        found.extend(
            labels
                .iter()
                .filter_map(|label| label_dependency(&issue.repo, label)),
        );
        found.remove(issue);
        found
    }

    /// References after a dependency phrase whose subject is `issue` itself, and in lists
    /// under a dependency heading.
    fn body_dependencies(&self, issue: &IssueRef, body: &str) -> BTreeSet<IssueRef> {
        let mut found = BTreeSet::new();
        let text = extract_text(&self.heading, body);
        for block in &text.blocks {
            for phrase in self.phrase.captures_iter(block) {
                let (Some(whole), Some(first)) = (phrase.get(0), phrase.name("first")) else {
                    continue;
                };
                if self.is_about_another_issue(issue, &block[..whole.start()]) {
                    continue;
                }
                let end = self.list_end(block, first.end());
                self.collect_references(&issue.repo, &block[first.start()..end], &mut found);
            }
        }
        for item in &text.dependency_items {
            self.collect_references(&issue.repo, item, &mut found);
        }
        for paragraph in &text.section_paragraphs {
            let only_references = paragraph
                .lines()
                .filter(|line| !line.trim().is_empty())
                .all(|line| self.reference_line.is_match(line));
            if only_references {
                self.collect_references(&issue.repo, paragraph, &mut found);
            }
        }
        found
    }

    /// Where the list of references that reaches `end` stops: at the first thing that is not
    /// a separator and a reference, or at a line break, unless the line before ends in a
    /// separator (`,`, `and`, `&`), the next line starts with one, or the next line holds
    /// only references. "Depends on #2" over "#3 is unrelated" is #2 alone.
    fn list_end(&self, block: &str, mut end: usize) -> usize {
        while let Some(next) = self.continuation.captures(&block[end..]) {
            let separator = &next["separator"];
            if separator.contains('\n') && separator.trim().is_empty() {
                let line = &block[end + separator.len()..];
                let line = line.split('\n').next().unwrap_or(line);
                if !self.reference_line.is_match(line) {
                    break;
                }
            }
            end += next[0].len();
        }
        end
    }

    /// Whether the sentence that reaches the end of `before` has another issue as its
    /// subject ("#9 depends on", "acme/api#4 is blocked by"): then it states that issue's
    /// dependency, not `issue`'s.
    fn is_about_another_issue(&self, issue: &IssueRef, before: &str) -> bool {
        let line = before.rsplit('\n').next().unwrap_or(before);
        self.subject.captures(line).is_some_and(|subject| {
            let mut named = BTreeSet::new();
            self.collect_references(&issue.repo, &subject["subject"], &mut named);
            !named.contains(issue)
        })
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
    /// The text of each paragraph, heading, list item and table, with code, quotes, HTML and
    /// struck-through text left out; links contribute their destination (so
    /// `[this](…/issues/5)` is a reference); line breaks stay `\n`.
    blocks: Vec<String>,
    /// Items of lists under a dependency heading: every reference in them counts.
    dependency_items: Vec<String>,
    /// Paragraphs under a dependency heading (an issue form's answer to a "Depends on"
    /// field is one): they count when they hold only references.
    section_paragraphs: Vec<String>,
}

/// Where the text being read stands relative to a dependency heading.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// No dependency heading above: lists are just lists.
    Outside,
    /// Right after a plain "Depends on:" line: the lists directly below it are dependencies.
    Lead,
    /// Under a `Dependencies` / `Depends on` / `Blocked by` heading (a Markdown heading or
    /// a bold line) of this rank: every list is dependencies until a heading of the same or
    /// a higher rank, introductory sentences, code and quotes notwithstanding.
    Section(u8),
}

/// The rank of a line in bold standing alone as a heading: below every Markdown heading.
const BOLD_LINE_RANK: u8 = 7;

impl Scope {
    /// The scope after a heading of `rank` (1 to 6 for `#` to `######`, [`BOLD_LINE_RANK`]),
    /// a dependency heading or not.
    fn after_heading(self, rank: u8, is_dependency_heading: bool) -> Scope {
        match self {
            Scope::Section(open) if open < rank => self,
            _ if is_dependency_heading => Scope::Section(rank),
            _ => Scope::Outside,
        }
    }

    /// The scope after a top-level paragraph, code block, quote or table that is not a
    /// heading: a section goes on; a plain lead reaches only the lists right below it.
    fn after_block(self, is_lead: bool) -> Scope {
        match self {
            Scope::Section(_) => self,
            _ if is_lead => Scope::Lead,
            _ => Scope::Outside,
        }
    }
}

/// One pass over the Markdown collecting both kinds of text.
fn extract_text(heading: &Regex, body: &str) -> BodyText {
    let mut out = BodyText::default();
    let mut text = MarkdownText::default();
    let mut scope = Scope::Outside;
    let mut list_depth = 0usize;
    for event in Parser::new_ext(body, markdown_options()) {
        let in_dependency_list = list_depth > 0 && scope != Scope::Outside;
        // Only blocks outside lists and quotes open or close a dependency section.
        let top_level = list_depth == 0 && text.is_visible();
        match &event {
            Event::Start(Tag::List(_)) => {
                out.push(text.take(), in_dependency_list);
                list_depth += 1;
            }
            Event::End(TagEnd::List(_)) => list_depth -= 1,
            Event::Start(Tag::Item | Tag::Heading { .. } | Tag::Paragraph)
            | Event::End(TagEnd::Item) => out.push(text.take(), in_dependency_list),
            Event::End(TagEnd::Heading(level)) if top_level => {
                let block = text.take();
                scope = scope.after_heading(*level as u8, heading.is_match(&block));
                out.push(block, in_dependency_list);
            }
            Event::End(TagEnd::Paragraph) if top_level => {
                // A paragraph's first line may be a heading ("**Dependencies**", "Depends
                // on:") over an introductory sentence.
                let bold_line = text.first_line_is_bold();
                let block = text.take();
                let first_line = block.split('\n').next().unwrap_or(&block);
                let is_dependency_heading = heading.is_match(first_line);
                if scope != Scope::Outside && !is_dependency_heading && !bold_line {
                    out.section_paragraphs.push(block.clone());
                }
                scope = if bold_line {
                    scope.after_heading(BOLD_LINE_RANK, is_dependency_heading)
                } else {
                    scope.after_block(is_dependency_heading)
                };
                out.push(block, in_dependency_list);
            }
            Event::End(TagEnd::Heading(_) | TagEnd::Paragraph) => {
                out.push(text.take(), in_dependency_list);
            }
            Event::Start(Tag::CodeBlock(_) | Tag::BlockQuote(_) | Tag::Table(_)) if top_level => {
                scope = scope.after_block(false);
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

/// Collects visible text, skipping code, quotes, HTML and struck-through text, and notes whether the first line
/// of the block is all bold (a heading written as `**Dependencies**`).
#[derive(Default)]
struct MarkdownText {
    text: String,
    hidden_depth: usize,
    link_depth: usize,
    strong_depth: usize,
    first_line: FirstLine,
}

/// What the first line of a block is made of, so far.
#[derive(Default)]
struct FirstLine {
    ended: bool,
    bold: bool,
    plain: bool,
}

impl MarkdownText {
    fn feed(&mut self, event: &Event<'_>) {
        match event {
            // Struck-through text is withdrawn: "~~Blocked by #4~~" no longer holds.
            Event::Start(
                Tag::CodeBlock(_) | Tag::BlockQuote(_) | Tag::HtmlBlock | Tag::Strikethrough,
            ) => self.hidden_depth += 1,
            Event::End(
                TagEnd::CodeBlock
                | TagEnd::BlockQuote(_)
                | TagEnd::HtmlBlock
                | TagEnd::Strikethrough,
            ) => self.hidden_depth -= 1,
            _ if self.hidden_depth > 0 => {}
            Event::Start(Tag::Link { dest_url, .. }) => {
                self.text.push(' ');
                self.text.push_str(dest_url);
                self.text.push(' ');
                self.link_depth += 1;
            }
            Event::End(TagEnd::Link) => self.link_depth -= 1,
            Event::Start(Tag::Strong) => self.strong_depth += 1,
            Event::End(TagEnd::Strong) => self.strong_depth -= 1,
            Event::Text(text) => {
                self.note_first_line(text);
                if self.link_depth == 0 {
                    self.text.push_str(text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                self.first_line.ended = true;
                self.text.push('\n');
            }
            // A table reads row by row: "| Blocked by | #4 |" is a line "Blocked by #4".
            Event::End(TagEnd::TableCell) => self.text.push(' '),
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => self.text.push('\n'),
            // Inline code, inline HTML (comments included) and link texts do not count;
            // they still separate words.
            Event::Code(_) | Event::InlineHtml(_) | Event::Html(_) => self.text.push(' '),
            _ => {}
        }
    }

    fn note_first_line(&mut self, text: &str) {
        let words = text.trim_matches(|c: char| c.is_whitespace() || c == ':');
        if self.first_line.ended || words.is_empty() {
            return;
        }
        if self.strong_depth > 0 {
            self.first_line.bold = true;
        } else {
            self.first_line.plain = true;
        }
    }

    /// Whether the block's first line has text and all of it is bold (a colon aside).
    fn first_line_is_bold(&self) -> bool {
        self.first_line.bold && !self.first_line.plain
    }

    /// Whether the text being read is outside code blocks, quotes and HTML blocks.
    fn is_visible(&self) -> bool {
        self.hidden_depth == 0
    }

    fn take(&mut self) -> String {
        self.first_line = FirstLine::default();
        std::mem::take(&mut self.text)
    }
}

#[cfg(test)]
mod tests;
