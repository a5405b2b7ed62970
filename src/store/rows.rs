//! Columns read the same way from a SQLite or a PostgreSQL row, so that each record is
//! mapped from its row by one function whichever backend read it.

use sqlx::{ColumnIndex, Decode, Row, Type};

/// A row whose columns are read by name.
pub(super) trait ReadRow: Send + Sync {
    /// An integer column.
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    /// An integer column that may be NULL.
    fn optional_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A text column.
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    /// A text column that may be NULL.
    fn optional_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
}

impl<R> ReadRow for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.optional_int(column)?
            .ok_or_else(|| sqlx::Error::Decode(format!("{column} is NULL").into()))
    }

    fn optional_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        // PostgreSQL's INTEGER columns (attempts) are 32 bits wide and sqlx decodes them only
        // as i32; every SQLite integer is 64 bits wide.
        self.try_get::<Option<i64>, _>(column).or_else(|wide| {
            self.try_get::<Option<i32>, _>(column)
                .map(|narrow| narrow.map(i64::from))
                .map_err(|_| wide)
        })
    }

    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.try_get(column)
    }

    fn optional_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
}

/// An integer column that holds a count or an attempt number; out of range reads as the
/// nearest end rather than failing the read.
pub(super) fn u32_column(row: &dyn ReadRow, column: &str) -> Result<u32, sqlx::Error> {
    Ok(row.int(column)?.try_into().unwrap_or(u32::MAX))
}
