//! This server's public address: the manifest that tells GitHub where to send webhooks and
//! browsers, and whether GitHub can reach that address at all.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};

use super::SetupState;

/// The manifest, as shipped at the repository's top level.
const MANIFEST: &str = include_str!("../../../app-manifest.yml");

/// Why GitHub could not deliver webhooks to this server's address, if it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unreachable {
    /// A loopback address or `localhost`: this machine only.
    Loopback(String),
    /// An address of a private network (github.com only; a GitHub Enterprise Server on
    /// the same network reaches it).
    Private(String),
    /// A name public DNS does not know: one label, or `.local`, `.internal`, `.lan`,
    /// `.home.arpa` (github.com only, as above).
    LocalName(String),
}

/// Whether GitHub can reach `base` (`scheme://host[:port]`).
pub(super) fn unreachable(base: &str, on_github_com: bool) -> Option<Unreachable> {
    let host = host_of(base);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        if ip.is_loopback() || ip.is_unspecified() {
            return Some(Unreachable::Loopback(host.to_owned()));
        }
        let private = match ip {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                // 100.64.0.0/10 is carrier-grade NAT: not reachable from outside either.
                v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
            }
        };
        return (private && on_github_com).then(|| Unreachable::Private(host.to_owned()));
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(Unreachable::Loopback(host.to_owned()));
    }
    let local = !name.contains('.')
        || [".local", ".internal", ".lan", ".home.arpa"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
    (local && on_github_com).then(|| Unreachable::LocalName(host.to_owned()))
}

/// The host of `scheme://[user@]host[:port][/...]`, IPv6 brackets kept.
fn host_of(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host_port.starts_with('[') {
        return host_port
            .find(']')
            .map_or(host_port, |end| &host_port[..=end]);
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => host_port,
    }
}

/// The manifest as JSON with this server's addresses filled in.
pub(super) fn manifest_json(public: &str, webhook_path: &str) -> Result<String, String> {
    let mut manifest: serde_json::Value =
        serde_yaml_ng::from_str(MANIFEST).map_err(|e| e.to_string())?;
    manifest["hook_attributes"]["url"] = format!("{public}{webhook_path}").into();
    manifest["redirect_url"] = format!("{public}/setup/callback").into();
    serde_json::to_string(&manifest).map_err(|e| e.to_string())
}

/// `server.public_url`, else the scheme and host this request came to.
pub(super) fn public_url(setup: &SetupState, headers: &HeaderMap) -> String {
    if let Some(url) = &setup.public_url {
        return url.clone();
    }
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{}://{host}", request_scheme(headers))
}

/// The scheme the browser used: a proxy in front says so in `X-Forwarded-Proto`.
pub(in crate::http) fn request_scheme(headers: &HeaderMap) -> &str {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http")
}
