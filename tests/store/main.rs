//! The store API, the same suite against SQLite and PostgreSQL: the inbox (redelivery,
//! claims in arrival order, leases, concurrent claimers), run rows (exactly once, leases,
//! endings), issues, status comments, settings and job locks; the outbox (a step commits
//! whole or not at all, effects due in order, retried and given up); retention (old
//! deliveries and effects pruned, failed ones kept longer, two replicas pruning at once)
//! and, on SQLite, a WAL that stays bounded over a long run; the dashboard's sessions.

#[path = "../support/mod.rs"]
mod support;

/// Runs `check` against every available backend.
macro_rules! each_store {
    (|$store:ident, $name:ident| $body:block) => {
        for test_store in $crate::support::stores::all().await {
            let $name = test_store.name;
            let $store = codegen_orchestrator::store::Store::open(&test_store.url)
                .await
                .unwrap();
            $body
            $store.close().await;
        }
    };
}

mod dashboard;
mod inbox;
mod load;
mod outbox;
mod retention;
mod runs;
mod state;

use bytes::Bytes;
use codegen_orchestrator::domain::{InstallationId, IssueRef};
use codegen_orchestrator::store::NewDelivery;

/// The tests' "now": unix ms in 2027.
const T0: i64 = 1_800_000_000_000;
/// A day in unix ms.
const DAY: i64 = 24 * 60 * 60 * 1000;

/// A delivery of `body` received at [`T0`].
fn delivery(id: &str, body: &str) -> NewDelivery {
    NewDelivery {
        id: id.parse().unwrap(),
        event: "issues".into(),
        action: Some("labeled".into()),
        installation: Some(InstallationId(42)),
        repository: Some("acme/api".into()),
        received_at: T0,
        body: Bytes::from(body.to_owned()),
    }
}

fn issue(text: &str) -> IssueRef {
    text.parse().unwrap()
}
