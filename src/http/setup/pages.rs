//! Every text the setup pages show, one function each (snapshot-tested in `tests.rs`).
//! Values from outside (addresses, names, errors) are escaped here, and nothing here
//! is Markdown: code is `<code>`, a place to go is a link.

use super::address::Unreachable;
use super::handlers::SetupRefusal;

/// The registration form's page.
pub(super) struct Registration<'a> {
    /// The organisation the App is for; `None`: the personal account.
    pub organisation: Option<&'a str>,
    /// GitHub's "new App" form, with the state.
    pub action: &'a str,
    /// The manifest as JSON.
    pub manifest: &'a str,
    /// The webhook URL the manifest names.
    pub hook: &'a str,
    /// Why GitHub could not reach that URL, if it could not.
    pub unreachable: Option<&'a Unreachable>,
    /// Where the credentials will be saved.
    pub app_file: &'a str,
}

/// `GET /setup` with the setup token: the button that posts the manifest to GitHub.
pub(super) fn registration(page: &Registration<'_>) -> String {
    let target = match page.organisation {
        Some(org) => format!("the organisation <strong>{}</strong>", escape(org)),
        None => "your personal account".to_owned(),
    };
    let warning = page
        .unreachable
        .map(|why| unreachable_warning(why, page.hook))
        .unwrap_or_default();
    let body = format!(
        r#"{warning}<p>This creates the GitHub App <em>codegen-orchestrator</em> from <code>app-manifest.yml</code>
for {target}, with its webhook pointing at <code>{hook}</code>.</p>
<form id="register" method="post" action="{action}">
  <input type="hidden" name="manifest" value="{manifest}">
  <button type="submit">Register GitHub App</button>
</form>
<h2>For an organisation</h2>
{organisation_form}
<p>After GitHub creates the App you come back here; the App's id, private key and webhook
secret are saved to <code>{file}</code> and used from the next start of <code>serve</code>.</p>"#,
        hook = escape(page.hook),
        action = escape(page.action),
        manifest = escape(page.manifest),
        organisation_form = organisation_form(""),
        file = escape(page.app_file),
    );
    layout("Register codegen-orchestrator", &body)
}

/// The warning above the form when GitHub cannot deliver to the webhook URL.
fn unreachable_warning(why: &Unreachable, hook: &str) -> String {
    let (host, reason) = match why {
        Unreachable::Loopback(host) => (host, "this machine's own (loopback) address"),
        Unreachable::Private(host) => (host, "an address in a private network"),
        Unreachable::LocalName(host) => (host, "a name only your own network knows"),
    };
    format!(
        r#"<p id="unreachable" role="alert"><strong>GitHub cannot deliver webhooks to <code>{hook}</code></strong>:
<code>{host}</code> is {reason}. Set <code>server.public_url</code> to the address GitHub reaches
this server at (in <code>config.yaml</code>, or as
<code>CODEGEN_ORCHESTRATOR__SERVER__PUBLIC_URL=https://bot.example.com</code>) and restart
<code>serve</code>, or open the setup link with that address in place of <code>{host}</code>.
A machine GitHub cannot reach can get such an address from a tunnel (ngrok, cloudflared).</p>
"#,
        hook = escape(hook),
        host = escape(host),
    )
}

/// The form that asks for an organisation's login, `value` filled in.
fn organisation_form(value: &str) -> String {
    format!(
        r#"<form id="organisation" method="get" action="/setup">
  <label>Organisation <input name="org" value="{value}" required maxlength="39" pattern="[A-Za-z0-9][A-Za-z0-9\-]*"></label>
  <button type="submit">Continue</button>
</form>"#,
        value = escape(value)
    )
}

/// Where the configured App is installed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum InstallLink {
    /// Its own installation page.
    Page(String),
    /// GitHub did not say which App this is: the list of the user's Apps.
    AppsList(String),
}

/// `GET /setup` when the configuration holds App credentials.
pub(super) fn app_configured(link: &InstallLink) -> String {
    let install = match link {
        InstallLink::Page(page) => format!(
            r#"<p><a id="install" href="{}">Install the App</a> on the accounts and repositories it should manage.</p>"#,
            escape(page)
        ),
        InstallLink::AppsList(apps) => format!(
            r#"<p>Install it from its page on GitHub: open <a id="apps" href="{}">your GitHub Apps</a>
(or an organisation's, in its settings under Developer settings), choose the App, then
<em>Install App</em>. GitHub did not say which App this is just now, so this page cannot link to
it directly; this server's log says why.</p>"#,
            escape(apps)
        ),
    };
    layout(
        "codegen-orchestrator is registered",
        &format!(
            "<p>This server runs as a GitHub App already; it registers no other.</p>\n{install}"
        ),
    )
}

/// `GET /setup` after the credentials were saved, before the restart that uses them.
pub(super) fn saved(app_file: &str, install: Option<&str>) -> String {
    let install = install
        .map(|page| {
            format!(
                r#"
<p>Then <a id="install" href="{}">install the App</a> on the accounts and repositories it should manage.</p>"#,
                escape(page)
            )
        })
        .unwrap_or_default();
    layout(
        "GitHub App registered",
        &format!(
            "<p>The App's id, private key and webhook secret are saved in <code>{}</code>; \
             restart <code>serve</code> to use them. No second App is registered.</p>{install}",
            escape(app_file)
        ),
    )
}

/// What the callback reports after saving the credentials.
pub(super) struct Created<'a> {
    /// The App's URL name.
    pub name: &'a str,
    /// The App's id.
    pub id: u64,
    /// Where the credentials were saved.
    pub app_file: &'a str,
    /// The App's installation page.
    pub install: &'a str,
}

/// `GET /setup/callback` once the credentials are saved.
pub(super) fn app_created(created: &Created<'_>) -> String {
    let body = format!(
        r#"<p>GitHub created the App <strong>{name}</strong> (id {id}). Its id, private key and
webhook secret are saved in <code>{file}</code> (readable by this user only); restart
<code>serve</code> to use them.</p>
<p><a id="install" href="{install}">Install the App</a> on the accounts and repositories it should manage.</p>"#,
        name = escape(created.name),
        id = created.id,
        file = escape(created.app_file),
        install = escape(created.install),
    );
    layout("GitHub App registered", &body)
}

/// The page of a refusal or failure; `app_file` is where credentials are saved.
pub(super) fn refusal(refusal: &SetupRefusal, app_file: &str) -> String {
    const START_AGAIN: &str = r#"<a href="/setup">start again at /setup</a>"#;
    const DELETE_EXTRA: &str = "delete that App in GitHub's settings \
         (Developer settings, GitHub Apps, the App, Advanced)";
    let file = escape(app_file);
    let (title, body) = match refusal {
        SetupRefusal::TokenMode => (
            "No registration in token mode",
            "<p>This server acts on GitHub with a token (<code>github.token</code> or \
             <code>GITHUB_TOKEN</code>), so it registers no GitHub App. To run it as an App \
             instead, remove the token, restart <code>serve</code> and open the setup link \
             it prints in its log.</p>"
                .to_owned(),
        ),
        SetupRefusal::LinkNeeded => (
            "Open the setup link from the log",
            "<p>Registering the App needs the link <code>serve</code> printed in its log when \
             it started, <code>http://HOST:PORT/setup?token=...</code>: open that link in \
             this browser. It works until an App is registered, and each start of \
             <code>serve</code> prints a new one.</p>"
                .to_owned(),
        ),
        SetupRefusal::WrongToken => (
            "This setup link is not valid",
            "<p>The token in this link is not the one this run of <code>serve</code> \
             printed: each start prints a new link. Open the link from its latest log.</p>"
                .to_owned(),
        ),
        SetupRefusal::InvalidOrganisation(given) => (
            "Not an organisation's login",
            format!(
                "<p><code>{}</code> is not an organisation's login: a login has letters, \
                 digits and hyphens only, at most 39 of them, and does not start with a \
                 hyphen. It is the name in the organisation's address, \
                 <code>github.com/LOGIN</code>.</p>\n{}\n<p>Or \
                 <a href=\"/setup\">register the App for your personal account</a>.</p>",
                escape(given),
                organisation_form(given)
            ),
        ),
        SetupRefusal::NoCode => (
            "Setup did not complete",
            format!(
                "<p>This address is where GitHub sends you back with a <code>code</code> \
                 after creating the App, and this request has none: {START_AGAIN}.</p>"
            ),
        ),
        SetupRefusal::NotStartedHere => (
            "Setup did not complete",
            format!(
                "<p>This registration was not started in this browser by this server, or it \
                 is over an hour old, or the server restarted since. Any App GitHub created \
                 for it is not used: {DELETE_EXTRA}, and {START_AGAIN}.</p>"
            ),
        ),
        SetupRefusal::AlreadyRegistered => (
            "Already registered",
            format!(
                "<p>This server has GitHub credentials already, in its configuration or saved \
                 in <code>{file}</code>, so it registers no second App. The App GitHub just \
                 created is not used: {DELETE_EXTRA}.</p>\n<p>To replace the App, remove \
                 <code>{file}</code> and the <code>github.*</code> credentials, restart \
                 <code>serve</code> and open the setup link it prints.</p>"
            ),
        ),
        SetupRefusal::InProgress => (
            "Registration in progress",
            "<p>Another registration is being saved at this moment. Wait a few seconds, \
             then open <a href=\"/setup\">/setup</a> to see its result.</p>"
                .to_owned(),
        ),
        SetupRefusal::CodeRejected(problem) => (
            "Setup did not complete",
            format!(
                "<p>GitHub did not accept the code: {}. A code works once and for an hour; \
                 {START_AGAIN}.</p>",
                escape(problem)
            ),
        ),
        SetupRefusal::CannotSave(err) => (
            "Setup did not complete",
            format!(
                "<p>GitHub created the App, but its credentials could not be saved to \
                 <code>{file}</code>: {}. Make that directory writable by the user \
                 <code>serve</code> runs as; GitHub shows the private key only once, so \
                 {DELETE_EXTRA}, and {START_AGAIN}.</p>",
                escape(&err.to_string())
            ),
        ),
        SetupRefusal::BadManifest(problem) => (
            "Setup did not complete",
            format!(
                "<p>The App manifest built into this program (<code>app-manifest.yml</code>) \
                 cannot be read: {}. This is a bug in codegen-orchestrator.</p>",
                escape(problem)
            ),
        ),
        SetupRefusal::NoRandomness(err) => (
            "Setup did not complete",
            format!(
                "<p>This machine's random number generator failed ({}), so no secret could be \
                 made for this registration. Try again in a moment: {START_AGAIN}.</p>",
                escape(&err.to_string())
            ),
        ),
    };
    layout(title, &body)
}

/// A whole page around `body`; the referrer policy keeps the setup token in this page's
/// address from reaching GitHub.
pub(in crate::http) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"referrer\" content=\"no-referrer\"></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto\">\
         <h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title)
    )
}

/// Text safe inside HTML content and attribute values.
pub(in crate::http) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
