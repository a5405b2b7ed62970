//! Every text the dashboard shows, one function each (snapshot-tested in `tests.rs`): the
//! page with its live part, the page that says how to enable sign-in, and the refusals.
//! Everything from outside (titles, logins, names, reasons) is escaped here. The page
//! reads without JavaScript; a small inline script swaps in the live part every second.

use std::fmt::Write;

use super::Refusal;
use super::svg::{colours, graph_svg};
use crate::engine::board::{NodeState, RepoBoard};

pub(super) use crate::http::setup::escape;

/// A link to an address from outside (Codegen's run page, a pull request): a link only
/// for `https://` and `http://` addresses, plain text otherwise (a `javascript:` address
/// from a misbehaving service must not run in the viewer's session).
pub(super) fn outside_link(url: &str, text: &str) -> String {
    let web = url.starts_with("https://") || url.starts_with("http://");
    if web {
        format!(r#"<a href="{}">{}</a>"#, escape(url), escape(text))
    } else {
        escape(text)
    }
}

/// The page of a signed-in viewer.
pub(super) struct PageView<'a> {
    /// The viewer's login.
    pub login: &'a str,
    /// Every repository they may see, for the picker.
    pub repos: &'a [String],
    /// The one picked (`?repo=`), if any.
    pub selected: Option<&'a str>,
    /// The boards shown.
    pub boards: &'a [RepoBoard],
    /// GitHub's web address, for links to issues.
    pub web_url: &'a str,
}

/// `GET /dashboard`: the picker, then the live part (the boards).
pub(super) fn dashboard_page(view: &PageView<'_>) -> String {
    let mut picker = String::from(r#"<nav class="picker"><a href="/dashboard""#);
    if view.selected.is_none() {
        picker.push_str(r#" aria-current="page""#);
    }
    picker.push_str(">all repositories</a>");
    for repo in view.repos {
        let current = if view.selected == Some(repo.as_str()) {
            r#" aria-current="page""#
        } else {
            ""
        };
        let query = serde_urlencoded::to_string([("repo", repo.as_str())]).unwrap_or_default();
        let _ = write!(
            picker,
            r#" · <a href="/dashboard?{query}"{current}>{}</a>"#,
            escape(repo),
            query = escape(&query),
        );
    }
    picker.push_str("</nav>");
    let source = match view.selected {
        Some(repo) => format!(
            "/dashboard/live?{}",
            serde_urlencoded::to_string([("repo", repo)]).unwrap_or_default()
        ),
        None => "/dashboard/live".to_owned(),
    };
    let body = format!(
        r#"<form class="viewer" method="post" action="/dashboard/signout">Signed in with GitHub as
<strong>{login}</strong>. You see the repositories your GitHub account can read through the
App's installations. <button type="submit">Sign out</button></form>
{picker}
{legend}
<div id="live" data-source="{source}">
{live}
</div>
<script>{LIVE_SCRIPT}</script>"#,
        login = escape(view.login),
        source = escape(&source),
        live = boards_html(view.boards, view.web_url),
        legend = legend(),
    );
    layout("codegen-orchestrator dashboard", &body)
}

/// What the graph's colours mean.
fn legend() -> String {
    let mut out = String::from(r#"<p class="legend">"#);
    for state in [
        NodeState::Blocked,
        NodeState::Queued,
        NodeState::Running,
        NodeState::Done,
        NodeState::Failed,
        NodeState::Open,
        NodeState::NotPlanned,
    ] {
        let (fill, stroke) = colours(state);
        let _ = write!(
            out,
            r#"<span style="background:{fill};border:2px solid {stroke}">{}</span> "#,
            state.name().replace('_', " ")
        );
    }
    out.push_str("(a dashed red border: held by a dependency cycle)</p>");
    out
}

/// Fetches the live part every second and swaps it in when it changed: no reload, so
/// whatever the page holds (scroll position, a marker a test sets) stays.
pub(super) const LIVE_SCRIPT: &str = r#"
(function () {
  var live = document.getElementById('live');
  var source = live.getAttribute('data-source');
  var last = null, busy = false;
  window.dashboardSwaps = 0;
  setInterval(function () {
    if (busy) { return; }
    busy = true;
    fetch(source, {credentials: 'same-origin'}).then(function (answer) {
      if (answer.status === 401) { window.location.reload(); return null; }
      return answer.ok ? answer.text() : null;
    }).then(function (html) {
      if (html !== null && html !== last) {
        live.innerHTML = html;
        window.dashboardSwaps += 1;
        last = html;
      }
    }).catch(function () {}).then(function () { busy = false; });
  }, 1000);
})();
"#;

/// The live part: one section per repository.
pub(super) fn boards_html(boards: &[RepoBoard], web_url: &str) -> String {
    if boards.is_empty() {
        return "<p>No repository to show.</p>".to_owned();
    }
    let mut out = String::new();
    for board in boards {
        repo_section(&mut out, board, web_url);
    }
    out
}

fn repo_section(out: &mut String, board: &RepoBoard, web_url: &str) {
    let repo = escape(&board.repo);
    let _ = writeln!(
        out,
        r#"<section class="repo" data-repo="{repo}"><h2>{repo}</h2>"#
    );
    if let Some(by) = &board.paused_by {
        let _ = writeln!(
            out,
            r#"<p class="paused">⏸️ Launching is paused in this repository by <strong>{}</strong>; a <code>{}</code> comment on one of its issues restarts it.</p>"#,
            escape(by),
            escape(board.resume.as_deref().unwrap_or("resume")),
        );
    }
    if let Some(message) = &board.quota_pause {
        let _ = writeln!(
            out,
            r#"<p class="paused">⏸️ Codegen's plan quota is used up, so launches wait until it is back. Codegen said: {}</p>"#,
            escape(message)
        );
    }
    if board.suspended {
        out.push_str(r#"<p class="paused">⏸️ The App's installation is suspended: nothing runs until it is unsuspended.</p>"#);
        out.push('\n');
    }
    let totals = &board.totals;
    let _ = write!(
        out,
        r#"<p class="totals">{} managed issue{}: {} running, {} queued, {} blocked, {} failed, {} done."#,
        totals.issues,
        if totals.issues == 1 { "" } else { "s" },
        totals.running,
        totals.queued,
        totals.blocked,
        totals.failed,
        totals.done
    );
    if let Some(finish) = totals.expected_finish {
        let _ = write!(out, " All expected done around {}.", clock(finish));
    }
    if let Some(hours) = totals.agent_hours {
        let _ = write!(out, " About {hours:.1} agent hours to go.");
    }
    out.push_str("</p>\n");
    if totals.issues == 0 {
        out.push_str("<p>Nothing is managed here yet: label an issue <code>codegen</code> to start.</p>\n</section>\n");
        return;
    }
    let _ = writeln!(out, "{}", graph_svg(&board.graph, &board.repo));
    let link = |issue: &str, title: &Option<String>| issue_link(web_url, issue, title.as_deref());

    list_head(out, "running", "Running", board.running.len());
    for row in &board.running {
        let run = row
            .run_url
            .as_deref()
            .map(|url| format!(", {}", outside_link(url, "the run")))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<li data-issue="{}">{}: attempt {}, running for {}{run}"#,
            escape(&row.issue),
            link(&row.issue, &row.title),
            row.attempt,
            elapsed(row.elapsed_secs),
        );
        forecast(out, None, row.expected_finish, row.agent_hours);
        out.push_str("</li>\n");
    }
    list_tail(out, board.running.len());

    list_head(out, "queued", "Queued", board.queued.len());
    for row in &board.queued {
        let place = match row.position {
            Some(position) => format!("place {position} in the queue"),
            None => "waiting while launching is paused".to_owned(),
        };
        let _ = write!(
            out,
            r#"<li data-issue="{}">{}: {place}"#,
            escape(&row.issue),
            link(&row.issue, &row.title),
        );
        forecast(
            out,
            row.expected_start,
            row.expected_finish,
            row.agent_hours,
        );
        out.push_str("</li>\n");
    }
    list_tail(out, board.queued.len());

    list_head(out, "blocked", "Blocked", board.blocked.len());
    for row in &board.blocked {
        let mut why: Vec<String> = row
            .blockers
            .iter()
            .map(|b| format!("{} ({})", link(&b.issue, &b.title), escape(&b.why)))
            .collect();
        if row.hidden_blockers > 0 {
            why.push(format!(
                "{} blocker{} you or the App cannot see",
                row.hidden_blockers,
                if row.hidden_blockers == 1 { "" } else { "s" }
            ));
        }
        let mut text = if why.is_empty() {
            "held back".to_owned()
        } else {
            format!("waits for {}", why.join(", "))
        };
        if let Some(cycle) = &row.cycle {
            let _ = write!(
                text,
                r#"; <span class="cycle">a dependency would close the cycle <code>{}</code></span>"#,
                escape(cycle)
            );
        }
        let _ = write!(
            out,
            r#"<li data-issue="{}">{}: {text}"#,
            escape(&row.issue),
            link(&row.issue, &row.title),
        );
        forecast(
            out,
            row.expected_start,
            row.expected_finish,
            row.agent_hours,
        );
        out.push_str("</li>\n");
    }
    list_tail(out, board.blocked.len());

    list_head(out, "failed", "Failed", board.failed.len());
    for row in &board.failed {
        let reason = row.reason.as_deref().unwrap_or("no reason given");
        let run = row
            .run_url
            .as_deref()
            .map(|url| format!(" ({})", outside_link(url, "the run")))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            r#"<li data-issue="{}">{}: attempt {} failed: {}{run}. Comment <code>{}</code> on the issue to try again.</li>"#,
            escape(&row.issue),
            link(&row.issue, &row.title),
            row.attempt,
            escape(reason),
            escape(&row.retry),
        );
    }
    list_tail(out, board.failed.len());

    list_head(out, "done", "Done", board.done.len());
    for row in &board.done {
        let pulls: Vec<String> = row
            .pull_requests
            .iter()
            .map(|url| outside_link(url, url))
            .collect();
        let pulls = if pulls.is_empty() {
            String::new()
        } else {
            format!(": {}", pulls.join(", "))
        };
        let _ = writeln!(
            out,
            r#"<li data-issue="{}">{}{pulls}</li>"#,
            escape(&row.issue),
            link(&row.issue, &row.title),
        );
    }
    list_tail(out, board.done.len());
    out.push_str("</section>\n");
}

/// Opens a list; an empty one is left out altogether (its items loop over nothing and
/// [`list_tail`] closes nothing: both look at `count`).
fn list_head(out: &mut String, class: &str, heading: &str, count: usize) {
    if count > 0 {
        let _ = write!(
            out,
            "<h3>{heading} ({count})</h3>\n<ul class=\"{class}\">\n"
        );
    }
}

fn list_tail(out: &mut String, count: usize) {
    if count > 0 {
        out.push_str("</ul>\n");
    }
}

/// The forecast of a row, when it has one.
fn forecast(out: &mut String, start: Option<i64>, finish: Option<i64>, hours: Option<f64>) {
    if let Some(start) = start {
        let _ = write!(out, "; expected to start around {}", clock(start));
    }
    if let Some(finish) = finish {
        let _ = write!(out, "; expected to finish around {}", clock(finish));
    }
    if let Some(hours) = hours {
        let _ = write!(out, "; about {hours:.1} agent hours");
    }
}

/// `14:20 UTC` for unix ms, without the date: forecasts reach hours ahead, not days.
fn clock(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|at| at.format("%H:%M UTC").to_string())
        .unwrap_or_else(|| "an unknown time".to_owned())
}

/// `12 min`, `2 h 5 min`: how long a run has been going.
fn elapsed(secs: i64) -> String {
    match secs / 60 {
        0 => "less than a minute".to_owned(),
        minutes if minutes < 60 => format!("{minutes} min"),
        minutes => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}

/// A link to an issue on GitHub with its title.
fn issue_link(web_url: &str, issue: &str, title: Option<&str>) -> String {
    let href = issue
        .split_once('#')
        .map(|(repo, number)| format!("{web_url}/{repo}/issues/{number}"))
        .unwrap_or_default();
    let title = title.map(|t| format!(" {}", escape(t))).unwrap_or_default();
    format!(
        r#"<a href="{}">{}</a>{title}"#,
        escape(&href),
        escape(issue)
    )
}

/// The page of a refusal, or of what the viewer cannot see.
pub(super) fn refusal_page(refusal: &Refusal) -> String {
    let (title, body) = match refusal {
        Refusal::NotConfigured { callback } => (
            "Dashboard sign-in is not set up",
            format!(
                r#"<p>The dashboard shows who may see what only after they sign in with GitHub, with the
App's own OAuth credentials, and none are configured.</p>
<p>To enable it, either</p>
<ul>
<li>set <code>github.client_id</code> and <code>github.client_secret</code> (or the environment
variables <code>GITHUB_CLIENT_ID</code> and <code>GITHUB_CLIENT_SECRET</code>) to the "Client ID"
and a client secret from the App's settings page on GitHub, or</li>
<li>register the App again through <a href="/setup">/setup</a>, which saves them,</li>
</ul>
<p>and set the App's "Callback URL" on GitHub to <code>{}</code>. Then restart
<code>serve</code>.</p>"#,
                escape(callback)
            ),
        ),
        Refusal::StateMismatch => (
            "Sign-in not started here",
            r#"<p>This sign-in was not started in this browser, or took more than ten minutes. Nothing
was signed in. <a href="/dashboard">Sign in again</a>.</p>"#
                .to_owned(),
        ),
        Refusal::SignInFailed(reason) => (
            "Sign-in failed",
            format!(
                r#"<p>GitHub did not sign you in: {}.</p>
<p>A sign-in link works once and for a few minutes. <a href="/dashboard">Sign in again</a>.</p>"#,
                escape(reason)
            ),
        ),
        Refusal::NothingToSee { login } => (
            "Nothing to show",
            format!(
                r#"<p>You are signed in as <strong>{}</strong>, but your GitHub account can read no repository
the App is installed on, so there is nothing here you may see.</p>
<p>To get access, ask an owner of an organisation the App is installed on to give you read
access to its repositories there, or install the App on your own repositories; then
<a href="/dashboard">open the dashboard again</a>.</p>"#,
                escape(login)
            ),
        ),
        Refusal::NoSuchRepository => (
            "No such repository",
            r#"<p>None of the repositories you may see has this name. <a href="/dashboard">See them all</a>.</p>"#
                .to_owned(),
        ),
        Refusal::GithubUnavailable => (
            "GitHub does not answer",
            r#"<p>GitHub could not be asked who you are or what you may read, so nothing is shown.
<a href="/dashboard">Try again</a> in a minute.</p>"#
                .to_owned(),
        ),
        Refusal::Store => (
            "The dashboard cannot read its store",
            "<p>The server cannot read its database right now; its log says why. Try again in a minute.</p>"
                .to_owned(),
        ),
    };
    layout(title, &body)
}

/// The frame of every dashboard page: no external assets, styles inline.
fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"referrer\" content=\"no-referrer\"><style>{STYLE}</style></head>\
         <body>\n<h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:72rem;\
padding:0 1rem;color:#1f2328}section.repo{border-top:1px solid #d0d7de;margin-top:1.5rem}\
svg.graph{max-width:100%;height:auto;display:block;margin:.5rem 0}\
ul{padding-left:1.2rem}li{margin:.2rem 0}.paused{background:#fff8c5;padding:.4rem .6rem}\
.cycle{color:#cf222e}nav.picker a[aria-current]{font-weight:600}code{background:#f6f8fa;padding:0 .2rem}\
.legend span{border-radius:4px;padding:0 .4rem;font-size:.85rem}form.viewer{margin:0 0 1rem}";
