//! Statements both backends run as written: SQL with `$1`-style placeholders, which
//! PostgreSQL reads natively and sqlx's SQLite binds by their numbers too, and the values
//! bound to them. A statement is plain owned data, so SQLite's writer task can take it as
//! it is; each backend only decides where it runs (a pool, the writer, a transaction).

use std::borrow::Cow;
use std::fmt::Write;

use sqlx::database::HasStatementCache;
use sqlx::{AssertSqlSafe, Connection, Database, Encode, Executor, IntoArguments, Type};

use super::rows::ReadRow;

/// A value bound to a placeholder: every column the store binds holds an integer or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    /// An integer, or NULL.
    Int(Option<i64>),
    /// A text, or NULL.
    Text(Option<String>),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(Some(value.to_owned()))
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(Some(value))
    }
}

impl From<Option<&str>> for Value {
    fn from(value: Option<&str>) -> Self {
        Self::Text(value.map(str::to_owned))
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Self {
        Self::Text(value)
    }
}

/// What a caller reads from a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Returns {
    /// How many rows it changed.
    Count,
    /// The rows it selected or returned.
    Rows,
}

/// One SQL statement with its values.
#[derive(Debug, Clone)]
pub(super) struct Statement {
    sql: Cow<'static, str>,
    values: Vec<Value>,
    returns: Returns,
    /// In a transaction: the rows it must change, else the transaction is rolled back.
    requires: Option<u64>,
}

impl Statement {
    /// A statement whose rows are read: a `SELECT`, or a write with `RETURNING`.
    pub(super) fn rows(sql: &'static str) -> Self {
        Self::with_text(Cow::Borrowed(sql), Returns::Rows)
    }

    /// A write whose count of changed rows is read.
    pub(super) fn count(sql: &'static str) -> Self {
        Self::with_text(Cow::Borrowed(sql), Returns::Count)
    }

    /// [`Statement::rows`] with text made at run time (an `IN` list of some length).
    pub(super) fn rows_of(sql: String) -> Self {
        Self::with_text(Cow::Owned(sql), Returns::Rows)
    }

    /// [`Statement::count`] with text made at run time.
    pub(super) fn count_of(sql: String) -> Self {
        Self::with_text(Cow::Owned(sql), Returns::Count)
    }

    fn with_text(sql: Cow<'static, str>, returns: Returns) -> Self {
        Self {
            sql,
            values: Vec::new(),
            returns,
            requires: None,
        }
    }

    /// In a transaction, the whole transaction fails (and changes nothing) unless this
    /// statement changes exactly `rows` rows: a condition checked where it is written.
    pub(super) fn requiring(mut self, rows: u64) -> Self {
        self.requires = Some(rows);
        self
    }

    /// Binds the next placeholder.
    pub(super) fn bind(mut self, value: impl Into<Value>) -> Self {
        self.values.push(value.into());
        self
    }
}

/// Most values in one `IN` list (SQLite allows 32,766 bound values, PostgreSQL 65,535).
pub(super) const MAX_IN_LIST: usize = 10_000;

/// `$first, $first+1, ...`: `count` placeholders for an `IN` list.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    let mut list = String::with_capacity(count * 6);
    for number in first..first + count {
        if number > first {
            list.push_str(", ");
        }
        let _ = write!(list, "${number}");
    }
    list
}

/// What running a statement gave.
pub(super) struct Outcome {
    /// Rows changed (for a statement read as a count) or rows read.
    pub(super) rows_affected: u64,
    /// The rows read; none for a statement read as a count.
    pub(super) rows: Vec<Box<dyn ReadRow>>,
}

/// What the shared code needs of a database beyond sqlx's own traits.
pub(super) trait Dialect: Database + HasStatementCache {
    /// Rows a statement changed (each driver has its own result type).
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

impl Dialect for sqlx::Sqlite {
    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for sqlx::Postgres {
    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Runs `statement` on `executor` (a pool, a connection or a transaction).
pub(super) async fn run<'c, DB, E>(
    executor: E,
    statement: Statement,
) -> Result<Outcome, sqlx::Error>
where
    DB: Dialect,
    DB::Row: ReadRow,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
{
    // Text made at run time differs from call to call: kept out of the statement cache.
    let persistent = matches!(statement.sql, Cow::Borrowed(_));
    let mut query = match statement.sql {
        Cow::Borrowed(sql) => sqlx::query::<DB>(sql),
        Cow::Owned(sql) => sqlx::query::<DB>(AssertSqlSafe(sql)),
    }
    .persistent(persistent);
    for value in statement.values {
        query = match value {
            Value::Int(value) => query.bind(value),
            Value::Text(value) => query.bind(value),
        };
    }
    match statement.returns {
        Returns::Count => {
            let result = query.execute(executor).await?;
            Ok(Outcome {
                rows_affected: DB::rows_affected(&result),
                rows: Vec::new(),
            })
        }
        Returns::Rows => {
            let rows = query.fetch_all(executor).await?;
            Ok(Outcome {
                rows_affected: rows.len() as u64,
                rows: rows
                    .into_iter()
                    .map(|row| Box::new(row) as Box<dyn ReadRow>)
                    .collect(),
            })
        }
    }
}

/// Runs `statements` in order in one transaction on `conn`: all of them take effect, or
/// (on the first error, or a statement that did not change the rows it requires) none;
/// the latter fails with `RowNotFound`.
pub(super) async fn run_in_transaction<DB>(
    conn: &mut DB::Connection,
    statements: Vec<Statement>,
) -> Result<Vec<Outcome>, sqlx::Error>
where
    DB: Dialect,
    DB::Row: ReadRow,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
{
    let mut tx = conn.begin().await?;
    let mut outcomes = Vec::with_capacity(statements.len());
    for statement in statements {
        let requires = statement.requires;
        let outcome = run(&mut *tx, statement).await?;
        if requires.is_some_and(|rows| rows != outcome.rows_affected) {
            tx.rollback().await?;
            return Err(sqlx::Error::RowNotFound);
        }
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_an_in_list_from_where_the_fixed_ones_end() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 1), "$1");
        assert_eq!(placeholders(2, 0), "");
    }
}
