//! The database handle: one `sqlx` Any pool over SQLite (embedded default, WAL) or
//! PostgreSQL, plus the few things that differ between the two (write transactions,
//! database creation, boolean columns). Domain crates own their tables and
//! migrations; they write SQL that runs on both backends (`$N` placeholders, no
//! backend-specific types).
//!
//! Hot reads (lists, shows) go through [`Db::fold`] and [`read::Cols`]: positional,
//! projected and, on SQLite, on native read-only connections (see `read.rs`).

pub mod read;

pub use read::{Cols, Param};

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migrate, MigrateDatabase, Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Row, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("cannot open database {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("unexpected column value: {0}")]
    Column(String),
    /// The blocking task of a native read panicked or was cancelled.
    #[error("database read task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A cloneable handle to the pool.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// Native connections for hot reads (a SQLite file, PostgreSQL).
    reader: Option<read::Reader>,
}

static DRIVERS: Once = Once::new();

/// Native PostgreSQL connections for hot reads, opened on first use, beside the
/// `Any` pool.
const PG_READERS: u32 = 4;

impl Db {
    /// Opens (and creates when missing) the database at `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = backend_of(url)?;
        let mut reader = None;
        let connect_err = |source| DbError::Connect {
            url: redact_url(url),
            source,
        };
        match backend {
            Backend::Sqlite => {
                // Create the file owner-only (SQLite gives -wal/-shm the same mode),
                // then switch it to WAL once; the mode is persistent.
                if let Some(path) = sqlite_path(url) {
                    create_private_file(&path).map_err(|e| DbError::Connect {
                        url: url.to_string(),
                        source: sqlx::Error::Io(e),
                    })?;
                    reader = Some(read::Reader::Sqlite(read::Readers::new(path)));
                }
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(connect_err)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal);
                let conn = opts.connect().await.map_err(connect_err)?;
                conn.close().await.map_err(connect_err)?;
            }
            Backend::Postgres => {
                if !Any::database_exists(url).await.map_err(connect_err)? {
                    Any::create_database(url).await.map_err(connect_err)?;
                }
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(connect_err)?;
        if backend == Backend::Postgres {
            let pg = sqlx::postgres::PgPoolOptions::new()
                .max_connections(PG_READERS)
                .acquire_timeout(Duration::from_secs(30))
                .connect_lazy(url)
                .map_err(connect_err)?;
            reader = Some(read::Reader::Postgres(pg));
        }
        Ok(Db {
            pool,
            backend,
            reader,
        })
    }

    /// The URL of the embedded default: a SQLite file in the state directory.
    pub fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}", path.display())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs a read (`sql` with `$N` placeholders bound from `params`) and folds its
    /// rows into `init` with `f`, which sees each row through [`Cols`] and may stop
    /// the read early with `ControlFlow::Break`. `f` runs on a blocking thread on
    /// SQLite: keep it to decoding and filtering.
    pub async fn fold<A, E, F>(
        &self,
        sql: String,
        params: Vec<Param>,
        init: A,
        f: F,
    ) -> Result<A, E>
    where
        A: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnMut(&mut A, &dyn Cols) -> Result<std::ops::ControlFlow<()>, E> + Send + 'static,
    {
        read::fold(self.reader.as_ref(), &self.pool, sql, params, init, f).await
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of
    /// failing when a read lock cannot be upgraded.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Applies a crate's migrations. Each crate numbers its migrations in its own
    /// range so that all of them can share sqlx's bookkeeping table.
    ///
    /// Migrations are written once for both backends. The one type that cannot be
    /// shared is `BOOLEAN`: sqlx's Any driver cannot read SQLite columns declared
    /// BOOLEAN, so on SQLite they are declared `INTEGER` (SQLite stores booleans as
    /// 0/1 anyway); read them with [`get_bool`].
    pub async fn migrate(
        &self,
        migrations: &[(i64, &'static str, &'static str)],
    ) -> Result<(), DbError> {
        let list = migrations
            .iter()
            .map(|(version, desc, sql)| {
                let sql = match self.backend {
                    Backend::Sqlite => sql.replace("BOOLEAN", "INTEGER"),
                    Backend::Postgres => sql.to_string(),
                };
                Migration::new(
                    *version,
                    Cow::Borrowed(*desc),
                    MigrationType::Simple,
                    sqlx::AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect();
        let mut migrator = Migrator::with_migrations(list);
        migrator.set_ignore_missing(true);
        let mut conn = self.pool.acquire().await?;
        conn.ensure_migrations_table(&migrator.table_name).await?;
        migrator.run(&mut *conn).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        if let Some(read::Reader::Postgres(pg)) = &self.reader {
            pg.close().await;
        }
        self.pool.close().await;
    }
}

use sqlx::SqlSafeStr as _;

/// The file of a `sqlite://PATH[?...]` URL, unless it is an in-memory database.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn backend_of(url: &str) -> Result<Backend, DbError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(DbError::UnsupportedUrl(redact_url(url)))
    }
}

/// A database URL with any password replaced, for logs and `config show`.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _password)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

/// True when `err` is a unique-constraint violation (a duplicate), on either backend.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// True when `err` is a foreign-key violation (the row is still referenced).
pub fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}

/// Reads a BOOLEAN column: PostgreSQL returns a bool, SQLite an integer.
pub fn get_bool(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(col)? != 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://fs:s3cret@db:5432/fs"),
            "postgres://fs:***@db:5432/fs"
        );
        assert_eq!(redact_url("postgres://fs@db/fs"), "postgres://fs@db/fs");
        assert_eq!(redact_url("sqlite:///x/y.db"), "sqlite:///x/y.db");
    }

    #[tokio::test]
    async fn sqlite_database_is_created_in_wal_mode_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let url = Db::sqlite_url(&dir.path().join("t.db"));
        let db = Db::connect(&url, 2).await.unwrap();
        db.migrate(&[(
            900_001,
            "t",
            "CREATE TABLE t (id TEXT PRIMARY KEY, on_ BOOLEAN NOT NULL)",
        )])
        .await
        .unwrap();
        // applying the same list again is a no-op
        db.migrate(&[(
            900_001,
            "t",
            "CREATE TABLE t (id TEXT PRIMARY KEY, on_ BOOLEAN NOT NULL)",
        )])
        .await
        .unwrap();
        let mut tx = db.begin_write().await.unwrap();
        sqlx::query("INSERT INTO t (id, on_) VALUES ($1, $2)")
            .bind("a")
            .bind(true)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let row = sqlx::query("SELECT on_ FROM t WHERE id = $1")
            .bind("a")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert!(get_bool(&row, "on_").unwrap());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::metadata(dir.path().join("t.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(perms & 0o777, 0o600, "the database is private");
        let dup = sqlx::query("INSERT INTO t (id, on_) VALUES ($1, $2)")
            .bind("a")
            .bind(false)
            .execute(db.pool())
            .await
            .unwrap_err();
        assert!(is_unique_violation(&dup));
        db.close().await;
    }

    #[tokio::test]
    async fn folds_read_rows_by_position_bind_by_name_and_stop_early() {
        use std::ops::ControlFlow;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&Db::sqlite_url(&dir.path().join("r.db")), 2)
            .await
            .unwrap();
        assert!(
            matches!(db.reader, Some(read::Reader::Sqlite(_))),
            "a SQLite file gets native readers"
        );
        db.migrate(&[(
            900_002,
            "r",
            "CREATE TABLE r (id TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT, on_ BOOLEAN NOT NULL)",
        )])
        .await
        .unwrap();
        for (id, n, note, on) in [
            ("a", 1, Some("x"), true),
            ("b", 2, None, false),
            ("c", 3, Some("z"), true),
        ] {
            sqlx::query("INSERT INTO r (id, n, note, on_) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(n as i64)
                .bind(note)
                .bind(on)
                .execute(db.pool())
                .await
                .unwrap();
        }
        type Seen = Vec<(String, i64, Option<String>, bool)>;
        let run = |db: Db, stop_after: usize| async move {
            // `$2` before `$1` in the text: binding is by name, not by order.
            db.fold(
                "SELECT id, n, note, on_ FROM r WHERE n >= $2 AND id <> $1 ORDER BY n".to_string(),
                vec![Param::Text("c".into()), Param::Int(1)],
                Seen::new(),
                move |acc: &mut Seen, r| {
                    acc.push((
                        r.text(0)?.to_owned(),
                        r.int(1)?,
                        r.opt_text(2)?.map(str::to_owned),
                        r.flag(3)?,
                    ));
                    Ok::<_, DbError>(if acc.len() >= stop_after {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    })
                },
            )
            .await
            .unwrap()
        };
        let want: Seen = vec![
            ("a".into(), 1, Some("x".into()), true),
            ("b".into(), 2, None, false),
        ];
        assert_eq!(run(db.clone(), 10).await, want);
        assert_eq!(run(db.clone(), 1).await, want[..1].to_vec(), "stops early");
        // The same fold through the Any pool (PostgreSQL's path) reads the same.
        let any = Db {
            reader: None,
            ..db.clone()
        };
        assert_eq!(run(any, 10).await, want);
        // A write is visible to the next read (WAL, separate connections).
        sqlx::query("UPDATE r SET n = 0 WHERE id = $1")
            .bind("b")
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(run(db.clone(), 10).await, want[..1].to_vec());
        db.close().await;
    }
}
