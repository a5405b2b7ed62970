//! Serving connections: HTTP/1 through hyper with a header-read timeout, a cap on open
//! connections and a deadline on graceful shutdown. (`axum::serve` sets no timer, so a
//! connection that never finishes its headers stayed open for ever, held the process's
//! files and kept a graceful shutdown from finishing.)

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Files the process keeps for other uses than client connections: the store's files and
/// pool, connections to GitHub and Codegen, a metrics listener, stdio.
const FILES_FOR_THE_REST: u64 = 128;

/// Connections the kernel holds for `accept`. std and tokio ask for 128, which a burst of
/// connections overflows: the kernel then drops handshakes, and their clients (a health
/// check among them) retry only after a second.
const BACKLOG: u32 = 1024;

/// How long accepting pauses after an error that is not the client's (`EMFILE`, say), so
/// that a persistent one does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Limits on the connections of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers, from the moment the connection is
    /// ready for them: a new connection, or a kept-alive one after its last response (so it
    /// is also how long an idle keep-alive connection stays open).
    pub header_timeout: Duration,
    /// Connections open at once; above it, accepting waits until one closes. Lowered at
    /// start to what the open-files limit leaves room for.
    pub max_connections: usize,
    /// After a shutdown signal, how long requests in flight may take before their
    /// connections are dropped; shorter than the platform's grace (Fly.io's is 30 s).
    pub shutdown_timeout: Duration,
}

impl ConnectionLimits {
    /// The limits `server.*` sets.
    pub fn for_config(server: &crate::config::ServerConfig) -> Self {
        Self {
            header_timeout: Duration::from_secs(server.header_timeout_secs),
            max_connections: usize::try_from(server.max_connections).unwrap_or(usize::MAX),
            shutdown_timeout: Duration::from_secs(server.shutdown_timeout_secs),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(20),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets
/// requests in flight finish within `limits.shutdown_timeout` and drops what remains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = match open_files_soft_limit() {
        Some(files) => {
            let room = usize::try_from(files.saturating_sub(FILES_FOR_THE_REST).max(1))
                .unwrap_or(usize::MAX);
            limits.max_connections.min(room)
        }
        None => limits.max_connections,
    }
    .max(1);
    let address = listener
        .local_addr()
        .map_or_else(|_| "-".to_owned(), |address| address.to_string());
    info!(
        address,
        max_connections,
        header_timeout_secs = limits.header_timeout.as_secs_f64(),
        "accepting connections"
    );
    let slots = Arc::new(Semaphore::new(max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // A slot first, then the connection: above the cap, new connections wait in the
        // kernel's backlog rather than take files the process needs.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    on_accept_error(&err).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stopping.changed() => {
                    // Finishes the request in progress, then closes; an idle connection
                    // closes at once.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let open = connections.len();
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = connections.len(),
            of = open,
            deadline_secs = limits.shutdown_timeout.as_secs_f64(),
            "connections still open at the shutdown deadline are dropped"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Listens on `address` (`host:port`, as `server.listen` gives it) with a backlog of
/// [`BACKLOG`].
pub async fn bind(address: &str) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for address in tokio::net::lookup_host(address).await? {
        let socket = if address.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As std and tokio do: a restarted server can listen again at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(address).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

async fn on_accept_error(err: &std::io::Error) {
    use std::io::ErrorKind;
    // The client gave up between its handshake and our accept: nothing to do.
    if matches!(
        err.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    warn!(error = %err, "accepting a connection failed");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// The process's open-files soft limit, when it has one.
fn open_files_soft_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (read == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}
