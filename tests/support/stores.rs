//! The stores a store test runs against: a temporary SQLite file always, and a fresh
//! PostgreSQL database when `TEST_POSTGRES_URL` names a server (`.ci/run` starts one; in CI
//! its absence is an error, so the PostgreSQL half can never be skipped silently). Run
//! locally without it, each test that skips its PostgreSQL half says so on the terminal.

use std::io::Write;

use sqlx::Connection;

/// A store URL and what keeps it alive: the SQLite file's directory, or the PostgreSQL
/// database, dropped with it so that a full run does not leave a database per test behind.
pub struct TestStore {
    pub name: &'static str,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    admin: Option<String>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Some(admin) = self.admin.take() else {
            return;
        };
        let Some((_, name)) = self.url.rsplit_once('/') else {
            return;
        };
        let name = name.to_owned();
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with a
        // runtime of its own drops the database (FORCE: the store's pool may still be open).
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        });
        let _ = dropped.join();
    }
}

/// The admin URL of the test PostgreSQL server, if there is one.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL and sets it")
        }
        _ => {
            report_skip();
            None
        }
    }
}

/// Prints `SKIPPED (PostgreSQL) <test>` where the person running the tests sees it: the
/// test harness captures `eprintln!` and shows it only for a failing test, but not what is
/// written to stderr directly. Without it a green local run reads as a full one.
fn report_skip() {
    let current = std::thread::current();
    let test = current.name().unwrap_or("a test");
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED (PostgreSQL) {test}: TEST_POSTGRES_URL is not set; \
         `export TEST_POSTGRES_URL=$(.ci/postgres.sh)` runs it"
    );
}

/// A new, empty PostgreSQL database on the test server.
pub async fn fresh_postgres(admin: &str) -> String {
    let name = format!("t_{}", fastrand::u64(..));
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connecting to TEST_POSTGRES_URL");
    // The name is ours (t_ and digits): safe to put in the statement.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    format!("{base}/{name}")
}

/// A temporary SQLite store, and a PostgreSQL one when available.
pub async fn all() -> Vec<TestStore> {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = vec![TestStore {
        name: "sqlite",
        url: format!("sqlite://{}", dir.path().join("store.db").display()),
        _dir: Some(dir),
        admin: None,
    }];
    if let Some(admin) = postgres_admin_url() {
        stores.push(TestStore {
            name: "postgres",
            url: fresh_postgres(&admin).await,
            _dir: None,
            admin: Some(admin),
        });
    }
    stores
}
