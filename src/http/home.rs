//! `GET /`: what this server is, for whoever opens its address in a browser. One page,
//! plain HTML (no JavaScript), its text from [`front_page`] (snapshot-tested below).

use super::setup::{escape, layout};

/// What the front page says about this server.
pub(super) struct Front<'a> {
    /// The running version (`CARGO_PKG_VERSION`).
    pub version: &'a str,
    /// `server.webhook_path`.
    pub webhook_path: &'a str,
    /// Whether `/metrics` answers on this port (not when `server.metrics_listen` moves it).
    pub metrics_here: bool,
}

/// The page of `GET /`: the product, its version and where to go from here.
pub(super) fn front_page(front: &Front<'_>) -> String {
    let metrics = if front.metrics_here {
        "\n  <li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>"
    } else {
        ""
    };
    let body = format!(
        r#"<p>A GitHub App that turns issues into a dependency graph and works through it with
Codegen AI agents. This server runs version <strong>{version}</strong> and receives GitHub's
webhooks at <code>POST {hook}</code>.</p>
<ul>
  <li><a href="/dashboard">/dashboard</a>: the dependency graph, what runs, what waits and what
  failed, after signing in with GitHub</li>
  <li><a href="/setup">/setup</a>: register the GitHub App (with the link <code>serve</code>
  printed in its log), or find its installation page</li>
  <li><a href="/healthz">/healthz</a>: answers <code>ok</code> while the server runs</li>{metrics}
</ul>"#,
        version = escape(front.version),
        hook = escape(front.webhook_path),
    );
    layout("codegen-orchestrator", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(metrics_here: bool) -> String {
        front_page(&Front {
            // Not the crate's version, so that a release does not change the snapshot.
            version: "1.2.3",
            webhook_path: "/webhook",
            metrics_here,
        })
    }

    #[test]
    fn front_page_with_metrics() {
        insta::assert_snapshot!(page(true));
    }

    #[test]
    fn front_page_with_metrics_on_their_own_port() {
        let page = page(false);
        assert!(!page.contains("/metrics"), "{page}");
        insta::assert_snapshot!(page);
    }
}
