//! The daemon's runs (one per scheduled pull of a bank) and each bank's state between runs.

use super::{now, DbContext, StoreError};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RunStats {
    pub files: i64,
    pub duplicates: i64,
    pub rejected: i64,
    pub payments: i64,
    pub bytes: i64,
}

/// A stored run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub bank_id: String,
    pub trigger: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    #[serde(flatten)]
    pub stats: RunStats,
    pub outcome: String,
    pub error: Option<String>,
}

/// A bank's state between runs.
#[derive(Debug, Default, Clone, Serialize)]
pub struct BankState {
    pub bank_id: String,
    pub cursor: Option<String>,
    pub consecutive_failures: i64,
    pub last_success_at: Option<String>,
    pub last_failure: Option<String>,
}

/// Records a run as started; returns its id.
pub async fn start(
    conn: &mut AnyConnection,
    bank_id: &str,
    trigger: &str,
) -> Result<i64, StoreError> {
    let sql = super::dialect(
        conn,
        "INSERT INTO runs (bank_id, trigger_kind, started_at, outcome) VALUES ($1, $2, $3, 'running') RETURNING id",
    );
    sqlx::query(&sql)
        .bind(bank_id.to_string())
        .bind(trigger.to_string())
        .bind(now())
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("recording a run")
}

/// Records how a run ended and updates the bank's failure streak.
pub async fn finish(
    conn: &mut AnyConnection,
    id: i64,
    bank_id: &str,
    stats: &RunStats,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let at = now();
    let sql = super::dialect(
        conn,
        "UPDATE runs SET finished_at = $1, files = $2, duplicates = $3, rejected = $4, payments = $5, \
         bytes = $6, outcome = $7, error = $8 WHERE id = $9",
    );
    sqlx::query(&sql)
        .bind(at.clone())
        .bind(stats.files)
        .bind(stats.duplicates)
        .bind(stats.rejected)
        .bind(stats.payments)
        .bind(stats.bytes)
        .bind(outcome.to_string())
        .bind(error.map(str::to_string))
        .bind(id)
        .execute(&mut *conn)
        .await
        .op("recording the end of a run")?;
    ensure_state(conn, bank_id).await?;
    let (sql, first) = match outcome {
        "ok" => (
            "UPDATE bank_state SET consecutive_failures = 0, last_success_at = $1, updated_at = $2 WHERE bank_id = $3",
            at.clone(),
        ),
        "failed" => (
            "UPDATE bank_state SET consecutive_failures = consecutive_failures + 1, last_failure = $1, \
             updated_at = $2 WHERE bank_id = $3",
            error.unwrap_or("").to_string(),
        ),
        // a cancelled run (shutdown) says nothing about the bank
        _ => return Ok(()),
    };
    let sql = super::dialect(conn, sql);
    let q = sqlx::query(&sql)
        .bind(first)
        .bind(at)
        .bind(bank_id.to_string());
    q.execute(&mut *conn)
        .await
        .op("updating the bank's state")?;
    Ok(())
}

/// A run that failed before it could be recorded (the database took no writes then): written
/// now as a finished failed run that started at `started_at`, counted in the bank's failure
/// streak like any failed run.
pub async fn record_failed(
    conn: &mut AnyConnection,
    bank_id: &str,
    trigger: &str,
    started_at: &str,
    error: &str,
) -> Result<(), StoreError> {
    let sql = super::dialect(
        conn,
        "INSERT INTO runs (bank_id, trigger_kind, started_at, outcome) VALUES ($1, $2, $3, 'running') RETURNING id",
    );
    let id: i64 = sqlx::query(&sql)
        .bind(bank_id.to_string())
        .bind(trigger.to_string())
        .bind(started_at.to_string())
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("recording a run")?;
    finish(
        conn,
        id,
        bank_id,
        &RunStats::default(),
        "failed",
        Some(error),
    )
    .await
}

async fn ensure_state(conn: &mut AnyConnection, bank_id: &str) -> Result<(), StoreError> {
    let sql = super::dialect(
        conn,
        "INSERT INTO bank_state (bank_id, updated_at) VALUES ($1, $2) ON CONFLICT (bank_id) DO NOTHING",
    );
    sqlx::query(&sql)
        .bind(bank_id.to_string())
        .bind(now())
        .execute(&mut *conn)
        .await
        .op("creating the bank's state")?;
    Ok(())
}

/// Marks runs left `running` by a process that died as failed (at start-up).
pub async fn close_abandoned(conn: &mut AnyConnection) -> Result<u64, StoreError> {
    let sql = super::dialect(
        conn,
        "UPDATE runs SET outcome = 'failed', finished_at = $1, error = 'the daemon stopped during the run' \
         WHERE outcome = 'running'",
    );
    sqlx::query(&sql)
        .bind(now())
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected())
        .op("closing abandoned runs")
}

/// Stores an HTTPS source's cursor (the `created_at` of the newest file taken).
pub async fn set_cursor(
    conn: &mut AnyConnection,
    bank_id: &str,
    cursor: &str,
) -> Result<(), StoreError> {
    ensure_state(conn, bank_id).await?;
    let sql = super::dialect(
        conn,
        "UPDATE bank_state SET cursor = $1, updated_at = $2 WHERE bank_id = $3",
    );
    sqlx::query(&sql)
        .bind(cursor.to_string())
        .bind(now())
        .bind(bank_id.to_string())
        .execute(&mut *conn)
        .await
        .op("saving the bank's cursor")?;
    Ok(())
}

/// Every bank's stored state.
pub async fn states(conn: &mut AnyConnection) -> Result<Vec<BankState>, StoreError> {
    let rows = sqlx::query(
        "SELECT bank_id, cursor, consecutive_failures, last_success_at, last_failure FROM bank_state ORDER BY bank_id",
    )
    .fetch_all(&mut *conn)
    .await
    .op("reading bank states")?;
    rows.iter()
        .map(|r| {
            Ok(BankState {
                bank_id: r.try_get(0)?,
                cursor: r.try_get(1)?,
                consecutive_failures: r.try_get(2)?,
                last_success_at: r.try_get(3)?,
                last_failure: r.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading bank states")
}

/// The latest run of each bank.
pub async fn latest(conn: &mut AnyConnection) -> Result<Vec<RunRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, bank_id, trigger_kind, started_at, finished_at, files, duplicates, rejected, payments, \
         bytes, outcome, error FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY bank_id) ORDER BY bank_id",
    )
    .fetch_all(&mut *conn)
    .await
    .op("reading runs")?;
    rows.iter()
        .map(run_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading runs")
}

/// The runs of a bank, newest first.
pub async fn of_bank(
    conn: &mut AnyConnection,
    bank_id: &str,
    limit: i64,
) -> Result<Vec<RunRow>, StoreError> {
    let sql = super::dialect(
        conn,
        "SELECT id, bank_id, trigger_kind, started_at, finished_at, files, duplicates, rejected, payments, \
         bytes, outcome, error FROM runs WHERE bank_id = $1 ORDER BY id DESC LIMIT $2",
    );
    let rows = sqlx::query(&sql)
        .bind(bank_id.to_string())
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .op("reading runs")?;
    rows.iter()
        .map(run_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading runs")
}

fn run_row(r: &sqlx::any::AnyRow) -> Result<RunRow, sqlx::Error> {
    Ok(RunRow {
        id: r.try_get(0)?,
        bank_id: r.try_get(1)?,
        trigger: r.try_get(2)?,
        started_at: r.try_get(3)?,
        finished_at: r.try_get(4)?,
        stats: RunStats {
            files: r.try_get(5)?,
            duplicates: r.try_get(6)?,
            rejected: r.try_get(7)?,
            payments: r.try_get(8)?,
            bytes: r.try_get(9)?,
        },
        outcome: r.try_get(10)?,
        error: r.try_get(11)?,
    })
}
