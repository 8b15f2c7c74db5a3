//! Hot reads: one SQL text, positional columns, rows handed one at a time to a
//! fold that may stop early, so a list decodes only the columns and rows its view
//! needs.
//!
//! On SQLite (the embedded default) the fold runs on a blocking thread over a small
//! set of read-only `rusqlite` connections to the same WAL file: a row is read in
//! place (borrowed `&str`, no owned copy per column, no row shipped through a
//! channel), which is what made lists cost ~20 µs per server through sqlx's `Any`
//! driver (measured with perf: allocation, `AnyRow` conversion and a channel hop
//! per row). On PostgreSQL the fold streams rows from a small native `PgPool`
//! (typed rows read by position, no `AnyRow` conversion); an in-memory SQLite
//! database (tests) reads through the `Any` pool. The mapping code is the same
//! through [`Cols`].
//!
//! Placeholders are `$1`, `$2`, … on both backends (SQLite treats `$N` as a named
//! parameter, so binding is by name, whatever the order they appear in).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt as _;
use sqlx::any::AnyRow;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{AnyPool, AssertSqlSafe, Row as _};

use super::DbError;

/// A value bound to a `$N` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// Positional access to the current row. Columns are numbered from 0 in the
/// order of the SELECT list.
pub trait Cols {
    fn text(&self, i: usize) -> Result<&str, DbError>;
    fn opt_text(&self, i: usize) -> Result<Option<&str>, DbError>;
    fn int(&self, i: usize) -> Result<i64, DbError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError>;
    /// A BOOLEAN column: PostgreSQL's bool, SQLite's 0/1.
    fn flag(&self, i: usize) -> Result<bool, DbError>;
}

fn bad_column(i: usize, want: &str) -> DbError {
    DbError::Column(format!("column {i} is not {want}"))
}

impl Cols for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<&str, DbError> {
        self.opt_text(i)?.ok_or_else(|| bad_column(i, "text"))
    }
    fn opt_text(&self, i: usize) -> Result<Option<&str>, DbError> {
        use rusqlite::types::ValueRef;
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(Some)
                .map_err(|_| bad_column(i, "UTF-8 text")),
            _ => Err(bad_column(i, "text")),
        }
    }
    fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?.ok_or_else(|| bad_column(i, "an integer"))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        use rusqlite::types::ValueRef;
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            _ => Err(bad_column(i, "an integer")),
        }
    }
    fn flag(&self, i: usize) -> Result<bool, DbError> {
        Ok(self.int(i)? != 0)
    }
}

impl Cols for AnyRow {
    fn text(&self, i: usize) -> Result<&str, DbError> {
        Ok(self.try_get::<&str, _>(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<&str>, DbError> {
        Ok(self.try_get::<Option<&str>, _>(i)?)
    }
    fn int(&self, i: usize) -> Result<i64, DbError> {
        Ok(self.try_get::<i64, _>(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        Ok(self.try_get::<Option<i64>, _>(i)?)
    }
    fn flag(&self, i: usize) -> Result<bool, DbError> {
        match self.try_get::<bool, _>(i) {
            Ok(b) => Ok(b),
            Err(_) => Ok(self.try_get::<i64, _>(i)? != 0),
        }
    }
}

impl Cols for PgRow {
    fn text(&self, i: usize) -> Result<&str, DbError> {
        Ok(self.try_get::<&str, _>(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<&str>, DbError> {
        Ok(self.try_get::<Option<&str>, _>(i)?)
    }
    fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?.ok_or_else(|| bad_column(i, "an integer"))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        // BIGINT by convention; an INTEGER column reads as i32.
        match self.try_get::<Option<i64>, _>(i) {
            Ok(v) => Ok(v),
            Err(_) => Ok(self.try_get::<Option<i32>, _>(i)?.map(i64::from)),
        }
    }
    fn flag(&self, i: usize) -> Result<bool, DbError> {
        Ok(self.try_get::<bool, _>(i)?)
    }
}

/// Where hot reads run, when not on the shared `Any` pool.
#[derive(Debug, Clone)]
pub(super) enum Reader {
    /// Read-only connections to the SQLite file, on blocking threads.
    Sqlite(Arc<Readers>),
    /// A few native PostgreSQL connections (opened on first use).
    Postgres(PgPool),
}

/// Read-only SQLite connections kept between reads.
#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

/// Idle read connections kept open; more are opened under load and closed after.
const IDLE_READERS: usize = 4;

impl Readers {
    pub(super) fn new(path: PathBuf) -> Arc<Readers> {
        Arc::new(Readers {
            path,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> Result<rusqlite::Connection, DbError> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // Read through the OS page cache, shared by all readers, instead of each
        // connection's own 2 MB cache (a 10,000-server scan read every page).
        conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    fn put(&self, conn: rusqlite::Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }

    fn fold<A, E, F>(&self, sql: &str, params: &[Param], mut acc: A, mut f: F) -> Result<A, E>
    where
        E: From<DbError>,
        F: FnMut(&mut A, &dyn Cols) -> Result<ControlFlow<()>, E>,
    {
        let conn = self.take()?;
        let result = (|| {
            let mut stmt = conn.prepare_cached(sql).map_err(DbError::from)?;
            for (k, p) in params.iter().enumerate() {
                let name = format!("${}", k + 1);
                let Some(idx) = stmt.parameter_index(&name).map_err(DbError::from)? else {
                    continue;
                };
                match p {
                    Param::Text(s) => stmt.raw_bind_parameter(idx, s.as_str()),
                    Param::Int(n) => stmt.raw_bind_parameter(idx, *n),
                    Param::Bool(b) => stmt.raw_bind_parameter(idx, *b),
                }
                .map_err(DbError::from)?;
            }
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(DbError::from)? {
                if f(&mut acc, row)?.is_break() {
                    break;
                }
            }
            Ok(acc)
        })();
        // A connection whose read failed is dropped, not reused.
        if result.is_ok() {
            self.put(conn);
        }
        result
    }
}

/// Binds `params` to `sql` and folds the rows `exec` streams: one body for the
/// native PostgreSQL pool and the `Any` pool, whose query types differ.
macro_rules! fold_rows {
    ($db:ty, $exec:expr, $sql:expr, $params:expr, $init:expr, $f:expr) => {{
        let mut q = sqlx::query::<$db>(AssertSqlSafe($sql));
        for p in $params {
            q = match p {
                Param::Text(s) => q.bind(s),
                Param::Int(n) => q.bind(n),
                Param::Bool(b) => q.bind(b),
            };
        }
        let mut acc = $init;
        let mut rows = q.fetch($exec);
        while let Some(row) = rows.try_next().await.map_err(DbError::from)? {
            if $f(&mut acc, &row)?.is_break() {
                break;
            }
        }
        Ok(acc)
    }};
}

/// Runs `sql` with `params` and folds its rows into `init` (see the module doc).
pub(super) async fn fold<A, E, F>(
    reader: Option<&Reader>,
    pool: &AnyPool,
    sql: String,
    params: Vec<Param>,
    init: A,
    mut f: F,
) -> Result<A, E>
where
    A: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnMut(&mut A, &dyn Cols) -> Result<ControlFlow<()>, E> + Send + 'static,
{
    match reader {
        Some(Reader::Sqlite(readers)) => {
            let readers = readers.clone();
            return tokio::task::spawn_blocking(move || readers.fold(&sql, &params, init, f))
                .await
                .map_err(|e| E::from(DbError::Task(e)))?;
        }
        Some(Reader::Postgres(pg)) => {
            return fold_rows!(sqlx::Postgres, pg, sql, params, init, f);
        }
        None => {}
    }
    fold_rows!(sqlx::Any, pool, sql, params, init, f)
}
