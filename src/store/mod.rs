//! Storage: the only module with SQL. Use-case methods over a sqlx `Any` pool, so one set of
//! portable queries (`$N` placeholders, `CAST(SUM(..) AS BIGINT)`, `ON CONFLICT`, `UPDATE ..
//! FROM (VALUES ..)`) serves the embedded SQLite default and PostgreSQL.
//!
//! Money is stored as BIGINT minor units; dates as ISO 8601 text.

pub mod bills;
pub mod customers;
pub mod dunning;
pub mod export;
pub mod files;
pub mod ledger;
pub mod matching;
pub mod notices;
pub mod partners;
pub mod realtime;
pub mod reports;
pub mod runs;
pub mod suggest;
pub mod users;
pub mod workbench;

use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, Connection};
use std::sync::Arc;
use std::time::Duration;

/// Storage errors. `Db` carries the operation it happened in.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error while {op}: {source}")]
    Db {
        op: &'static str,
        source: sqlx::Error,
    },
    #[error("{0}")]
    Conflict(String),
    /// Stored data contradicts itself (what `verify` would report as a break).
    #[error("inconsistent data: {0}")]
    Inconsistent(String),
}

/// Adds the operation name to a sqlx error.
pub trait DbContext<T> {
    fn op(self, op: &'static str) -> Result<T, StoreError>;
}
impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Db { op, source })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Readers (SQLite), everything (PostgreSQL).
    pool: AnyPool,
    /// Write transactions: [`Store::begin`], and the reads of a matching run.
    write_pool: AnyPool,
    backend: Backend,
    /// Serializes the daemon's writers (ingest, matching, imports) inside one process, so
    /// SQLite's single writer never sees two of them and matching always sees committed work.
    writer: Arc<tokio::sync::Mutex<()>>,
}

static MIGRATIONS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static MIGRATIONS_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// How the database is opened.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// How long a statement waits for a lock held by another process before it fails
    /// (SQLite's busy timeout: "database is locked"; PostgreSQL's `lock_timeout`).
    pub busy_timeout: Duration,
    /// A statement slower than this is logged at DEBUG (sqlx's default is a WARN after 1 s:
    /// a large export or matching run is expected to take its time; see `docs/SECURITY.md`
    /// "Logs" on what a warning means). Every statement's text is logged at TRACE.
    pub slow_statement: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            busy_timeout: Duration::from_secs(30),
            slow_statement: Duration::from_secs(1),
        }
    }
}

impl Store {
    /// Opens (creating a SQLite file and its folder when missing) and migrates.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, OpenOptions::default()).await
    }

    /// [`Store::open`] with [`OpenOptions`].
    pub async fn open_with(url: &str, options: OpenOptions) -> Result<Store, StoreError> {
        use sqlx::ConnectOptions;
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut url = url.to_string();
        if backend == Backend::Sqlite {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or("")
                .to_string();
            if !path.is_empty() && path != ":memory:" {
                if let Some(parent) = std::path::Path::new(&path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| StoreError::Connect {
                            url: url.clone(),
                            source: sqlx::Error::Io(e),
                        })?;
                    }
                }
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        // SQLite: one connection for the writers, with a large page cache (matching and
        // ingest walk million-row indexes), and a few for readers with small ones. Each
        // SQLite connection has its own cache, so sharing one pool let every connection grow
        // a writer-sized cache. PostgreSQL: one pool for both.
        let connect_options: sqlx::any::AnyConnectOptions = url
            .parse::<sqlx::any::AnyConnectOptions>()
            .map_err(|source| StoreError::Connect {
                url: redact(&url),
                source,
            })?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Debug, options.slow_statement);
        let busy_ms = options.busy_timeout.as_millis();
        let connect = |max: u32, cache_kib: i64| {
            let url = url.clone();
            let connect_options = connect_options.clone();
            async move {
                AnyPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(Duration::from_secs(60))
                    .after_connect(move |conn, _meta| {
                        Box::pin(async move {
                            if backend == Backend::Sqlite {
                                for pragma in [
                                    "PRAGMA journal_mode = WAL".to_string(),
                                    "PRAGMA synchronous = NORMAL".into(),
                                    "PRAGMA foreign_keys = ON".into(),
                                    format!("PRAGMA busy_timeout = {busy_ms}"),
                                    format!("PRAGMA cache_size = -{cache_kib}"),
                                    "PRAGMA wal_autocheckpoint = 10000".into(),
                                    "PRAGMA temp_store = MEMORY".into(),
                                ] {
                                    sqlx::query(&pragma).execute(&mut *conn).await?;
                                }
                            } else {
                                // a lock held by another session fails the statement after
                                // the same time as SQLite's busy timeout, instead of waiting
                                // for ever
                                sqlx::query(&format!("SET lock_timeout = {busy_ms}"))
                                    .execute(&mut *conn)
                                    .await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_with(connect_options)
                    .await
                    .map_err(|source| StoreError::Connect {
                        url: redact(&url),
                        source,
                    })
            }
        };
        let (pool, write_pool) = match backend {
            Backend::Sqlite if url.contains(":memory:") => {
                // an in-memory database exists only on its one connection
                let pool = connect(1, 98_304).await?;
                (pool.clone(), pool)
            }
            Backend::Sqlite => {
                // the writer first: it creates the file and switches it to WAL
                let write_pool = connect(1, 98_304).await?;
                (connect(4, 16_384).await?, write_pool)
            }
            Backend::Postgres => {
                let pool = connect(10, 0).await?;
                (pool.clone(), pool)
            }
        };
        let store = Store {
            pool,
            write_pool,
            backend,
            writer: Arc::new(tokio::sync::Mutex::new(())),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                // sqlx takes no lock on SQLite: two processes opening a new database at once
                // (the daemon starting, `banks status` run beside it) may both try to apply
                // a migration; the loser's transaction rolls back. Trying again then finds it
                // applied.
                let mut attempt = 0;
                loop {
                    match MIGRATIONS_SQLITE.run(&self.write_pool).await {
                        Ok(()) => break,
                        Err(e) if attempt < 5 => {
                            attempt += 1;
                            tracing::debug!(error = %e, attempt, "migration raced another process; trying again");
                            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            // sqlx holds an advisory lock while migrating PostgreSQL
            Backend::Postgres => MIGRATIONS_POSTGRES.run(&self.write_pool).await?,
        }
        Ok(())
    }

    /// Connections for reading (exports, verify, the API).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The writers' connection (SQLite: the only one, so hold it briefly and never while
    /// waiting for [`Store::begin`]).
    pub fn write_pool(&self) -> &AnyPool {
        &self.write_pool
    }
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Takes the in-process writer lock. Hold it for the whole of a write transaction.
    pub async fn writer(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, Any>, StoreError> {
        self.write_pool.begin().await.op("starting a transaction")
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.write_pool.close().await;
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.op("connecting")?;
        conn.ping().await.op("pinging")
    }
}

/// Hides a password in a database URL.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The current time as RFC 3339 UTC text, to the second.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A value to bind in a dynamically built statement.
#[derive(Debug, Clone)]
pub enum Val {
    I(i64),
    OI(Option<i64>),
    S(String),
    OS(Option<String>),
}

pub(crate) type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

pub(crate) fn bind_vals(mut q: AnyQuery<'_>, vals: Vec<Val>) -> AnyQuery<'_> {
    for v in vals {
        q = match v {
            Val::I(x) => q.bind(x),
            Val::OI(x) => q.bind(x),
            Val::S(x) => q.bind(x),
            Val::OS(x) => q.bind(x),
        };
    }
    q
}

/// `($1,$2,..),($n+1,..)` for `rows` rows of `cols` placeholders each, starting at `$start`.
pub(crate) fn placeholders(rows: usize, cols: usize, start: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = start;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&n.to_string());
            n += 1;
        }
        s.push(')');
    }
    s
}

/// Rewrites `$1, $2, ..` to `?` for SQLite when they appear once each and in order (as every
/// generated statement here does). SQLite looks a named parameter up by a linear scan, so a
/// statement with thousands of `$N` binds costs O(n²); plain `?` binds are O(1).
pub(crate) fn dialect(conn: &AnyConnection, sql: &str) -> String {
    if conn.backend_name() != "SQLite" {
        return sql.to_string();
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut expect = 1u64;
    let mut i = 0;
    let mut last = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let start = i + 1;
            let mut j = start;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if j > start {
                let n: u64 = sql[start..j].parse().unwrap_or(0);
                if n != expect {
                    return sql.to_string();
                }
                expect += 1;
                out.push_str(&sql[last..i]);
                out.push('?');
                last = j;
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&sql[last..]);
    out
}

/// Separators of [`fetch_packed`]: rows, columns, and the marker of a NULL.
const ROW_SEP: char = '\u{1e}';
const COL_SEP: char = '\u{1f}';
const NULL_MARK: &str = "\u{1}";

/// Runs `SELECT cols FROM rest ORDER BY order` and returns the rows as text cells, fetched
/// as ONE aggregated value (`group_concat` / `string_agg`). The SQLite driver hands rows
/// from its worker thread one at a time, which dominated batch reads; one packed value costs
/// one hand-off. Only for columns whose text cannot hold the ASCII control separators (ids,
/// codes, numbers, and free text that ingest has cleaned of control characters).
pub(crate) async fn fetch_packed(
    conn: &mut AnyConnection,
    cols: &[&str],
    rest: &str,
    order: &str,
    vals: Vec<Val>,
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    let sqlite = conn.backend_name() == "SQLite";
    let ch = |n: u8| {
        if sqlite {
            format!("char({n})")
        } else {
            format!("chr({n})")
        }
    };
    let row_expr = cols
        .iter()
        .map(|c| format!("COALESCE(CAST({c} AS TEXT), {})", ch(1)))
        .collect::<Vec<_>>()
        .join(&format!(" || {} || ", ch(31)));
    let order_cols: Vec<String> = order
        .split(',')
        .enumerate()
        .map(|(i, _)| format!("o{i}"))
        .collect();
    let order_select = order
        .split(',')
        .enumerate()
        .map(|(i, c)| format!("{} AS o{i}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let agg = if sqlite { "group_concat" } else { "string_agg" };
    let sql = format!(
        "SELECT {agg}(r, {} ORDER BY {}) FROM (SELECT {row_expr} AS r, {order_select} FROM {rest}) packed",
        ch(30),
        order_cols.join(", ")
    );
    let sql = dialect(conn, &sql);
    let row = bind_vals(sqlx::query(&sql), vals)
        .fetch_one(&mut *conn)
        .await
        .op("reading a batch")?;
    let packed: Option<String> = sqlx::Row::try_get(&row, 0).op("reading a batch")?;
    let Some(packed) = packed else {
        return Ok(vec![]);
    };
    Ok(packed
        .split(ROW_SEP)
        .map(|r| {
            r.split(COL_SEP)
                .map(|c| (c != NULL_MARK).then(|| c.to_string()))
                .collect()
        })
        .collect())
}

/// Reads a cell of a packed row.
pub(crate) fn cell(row: &[Option<String>], i: usize) -> Option<String> {
    row.get(i).cloned().flatten()
}

/// Reads a number cell of a packed row (0 when empty).
pub(crate) fn num(row: &[Option<String>], i: usize) -> i64 {
    row.get(i)
        .and_then(|c| c.as_deref())
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// `$start,$start+1,..` for an `IN (..)` list.
pub(crate) fn in_list(n: usize, start: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Executes a multi-row INSERT of `rows` (each `cols` values) in chunks that stay under the
/// backends' bind-parameter limits.
pub(crate) async fn insert_rows(
    conn: &mut AnyConnection,
    head: &str,
    cols: usize,
    rows: Vec<Vec<Val>>,
    op: &'static str,
) -> Result<(), StoreError> {
    let per = (30_000 / cols).clamp(1, 1000);
    let mut it = rows.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<Vec<Val>> = it.by_ref().take(per).collect();
        let sql = dialect(
            conn,
            &format!("{head} VALUES {}", placeholders(chunk.len(), cols, 1)),
        );
        let q = bind_vals(sqlx::query(&sql), chunk.into_iter().flatten().collect());
        q.execute(&mut *conn).await.op(op)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_positional_marks_only_when_in_order() {
        // the rewrite itself, without a connection
        fn rewrite(sql: &str) -> String {
            let mut out = String::new();
            let mut rest = sql;
            while let Some(i) = rest.find('$') {
                out.push_str(&rest[..i]);
                let d: String = rest[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                out.push('?');
                rest = &rest[i + 1 + d.len()..];
            }
            out.push_str(rest);
            out
        }
        assert_eq!(rewrite("a = $1 AND b IN ($2,$3)"), "a = ? AND b IN (?,?)");
    }

    #[test]
    fn placeholder_lists() {
        assert_eq!(placeholders(2, 2, 1), "($1,$2),($3,$4)");
        assert_eq!(in_list(3, 2), "$2,$3,$4");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://var/x.db"), "sqlite://var/x.db");
    }
}
