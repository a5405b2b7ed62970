//! Why a request to GitHub or Codegen got no answer, in words a person can act on.
//! hyper reports a refused connection as `client error (Connect)` and keeps the cause
//! several `source()`s down; this walks the chain and names it: refused, DNS, TLS,
//! timeout, or the connection closed.

use std::error::Error;
use std::fmt;
use std::io;

/// The cause of a failed exchange, as far as the error chain tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkCause {
    /// Nothing listens at the address (or a firewall refused).
    Refused,
    /// The host name does not resolve.
    Dns(String),
    /// The TLS handshake failed (a certificate, or not TLS at all).
    Tls(String),
    /// No answer in time.
    Timeout,
    /// The connection was reset or closed before the answer was complete.
    Closed,
    /// The host or its network cannot be reached.
    Unreachable,
    /// Anything else: the chain's own words.
    Other(String),
}

impl fmt::Display for NetworkCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("connection refused"),
            Self::Dns(detail) => write!(f, "the host name does not resolve (DNS: {detail})"),
            Self::Tls(detail) => write!(f, "TLS failed: {detail}"),
            Self::Timeout => f.write_str("timed out"),
            Self::Closed => f.write_str("the connection was closed before the answer"),
            Self::Unreachable => f.write_str("the host cannot be reached"),
            Self::Other(detail) => f.write_str(detail),
        }
    }
}

/// Names the cause of `err` from its chain of sources.
pub fn cause_of(err: &(dyn Error + 'static)) -> NetworkCause {
    let mut chain: Vec<&(dyn Error + 'static)> = vec![err];
    let mut next = deeper(err);
    while let Some(cause) = next {
        chain.push(cause);
        next = deeper(cause);
    }
    let deepest = chain.last().map(ToString::to_string).unwrap_or_default();
    let words = chain
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
        .to_ascii_lowercase();
    // hyper-util's resolver says "dns error"; the system's getaddrinfo says the rest.
    if words.contains("dns error") || words.contains("failed to lookup address") {
        return NetworkCause::Dns(deepest);
    }
    for cause in &chain {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return NetworkCause::Refused,
                io::ErrorKind::TimedOut => return NetworkCause::Timeout,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => return NetworkCause::Closed,
                io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                    return NetworkCause::Unreachable;
                }
                // rustls reports every handshake failure as invalid data.
                io::ErrorKind::InvalidData => return NetworkCause::Tls(deepest),
                _ => {}
            }
        }
    }
    if words.contains("timed out") || words.contains("deadline has elapsed") {
        return NetworkCause::Timeout;
    }
    if words.contains("certificate") || words.contains("tls") || words.contains("handshake") {
        return NetworkCause::Tls(deepest);
    }
    if words.contains("connection closed") || words.contains("incomplete message") {
        return NetworkCause::Closed;
    }
    NetworkCause::Other(chain_text(&chain))
}

/// The error below `err`. An `io::Error` wrapping another error answers `source()` with
/// that error's source, skipping the error itself (where rustls puts its reason).
fn deeper<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    if let Some(io) = err.downcast_ref::<io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return Some(inner);
    }
    err.source()
}

/// The chain's messages joined, each once (wrappers often repeat their source's words).
fn chain_text(chain: &[&(dyn Error + 'static)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in chain {
        let text = cause.to_string();
        if !parts.iter().any(|seen| seen.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// `host[:port]` of `url`, for saying where a request went without the path, the query
/// or any user information (a URL may carry a password).
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_leaves_out_user_path_and_query() {
        assert_eq!(host_of("https://api.github.com"), "api.github.com");
        assert_eq!(host_of("http://127.0.0.1:1/v1/x?y=1"), "127.0.0.1:1");
        assert_eq!(
            host_of("https://u:secret@ghe.example.com/api/v3"),
            "ghe.example.com"
        );
        assert_eq!(host_of("http://nonexistent.invalid"), "nonexistent.invalid");
    }

    #[test]
    fn io_kinds_name_their_cause() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(cause_of(&refused), NetworkCause::Refused);
        let timeout = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(cause_of(&timeout).to_string(), "timed out");
        let other = io::Error::other("something odd");
        assert_eq!(cause_of(&other).to_string(), "something odd");
    }
}
