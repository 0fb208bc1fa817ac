//! Bank files, their statements and their transaction lines, written by ingest inside the
//! file's one transaction.

use super::{bind_vals, insert_rows, now, DbContext, StoreError, Val};
use sqlx::{AnyConnection, Row};

/// A new file row; counters are filled in at the end of the ingest.
pub struct NewFile<'a> {
    pub bank_id: &'a str,
    pub sha256: &'a str,
    pub file_name: &'a str,
    pub size_bytes: i64,
    pub format: &'a str,
    pub message_id: Option<String>,
    pub archive_path: &'a str,
}

pub async fn find_by_sha(
    conn: &mut AnyConnection,
    sha256: &str,
) -> Result<Option<i64>, StoreError> {
    sqlx::query("SELECT id FROM bank_files WHERE sha256 = $1")
        .bind(sha256.to_string())
        .fetch_optional(&mut *conn)
        .await
        .op("looking up a file digest")?
        .map(|r| r.try_get::<i64, _>(0))
        .transpose()
        .op("reading a file id")
}

pub async fn insert_file(conn: &mut AnyConnection, f: NewFile<'_>) -> Result<i64, StoreError> {
    let q = sqlx::query(
        "INSERT INTO bank_files (bank_id, sha256, file_name, size_bytes, format, message_id, archive_path, received_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id",
    );
    bind_vals(
        q,
        vec![
            Val::S(f.bank_id.into()),
            Val::S(f.sha256.into()),
            Val::S(f.file_name.into()),
            Val::I(f.size_bytes),
            Val::S(f.format.into()),
            Val::OS(f.message_id),
            Val::S(f.archive_path.into()),
            Val::S(now()),
        ],
    )
    .fetch_one(&mut *conn)
    .await
    .and_then(|r| r.try_get::<i64, _>(0))
    .op("recording a bank file")
}

pub async fn finish_file(
    conn: &mut AnyConnection,
    file_id: i64,
    statements: i64,
    payments: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE bank_files SET statements = $2, payments = $3 WHERE id = $1")
        .bind(file_id)
        .bind(statements)
        .bind(payments)
        .execute(&mut *conn)
        .await
        .op("finishing a bank file")?;
    Ok(())
}

pub async fn record_delivery(
    conn: &mut AnyConnection,
    bank_id: &str,
    file_name: &str,
    sha256: &str,
    outcome: &str,
    file_id: Option<i64>,
) -> Result<(), StoreError> {
    bind_vals(
        sqlx::query(
            "INSERT INTO file_deliveries (bank_id, file_name, sha256, received_at, outcome, file_id) VALUES ($1,$2,$3,$4,$5,$6)",
        ),
        vec![
            Val::S(bank_id.into()),
            Val::S(file_name.into()),
            Val::S(sha256.into()),
            Val::S(now()),
            Val::S(outcome.into()),
            Val::OI(file_id),
        ],
    )
    .execute(&mut *conn)
    .await
    .op("recording a file delivery")?;
    Ok(())
}

/// A statement header with its declared totals in minor units.
pub struct NewStatement {
    pub file_id: i64,
    pub seq: i64,
    pub statement_id: Option<String>,
    pub account: String,
    pub currency: Option<String>,
    pub opening_minor: Option<i64>,
    pub closing_minor: Option<i64>,
    pub declared_entries: Option<i64>,
    pub declared_sum_minor: Option<i64>,
    pub declared_net_minor: Option<i64>,
    pub declared_credit_count: Option<i64>,
    pub declared_credit_minor: Option<i64>,
    pub declared_debit_count: Option<i64>,
    pub declared_debit_minor: Option<i64>,
}

pub async fn insert_statement(
    conn: &mut AnyConnection,
    s: NewStatement,
) -> Result<i64, StoreError> {
    let q = sqlx::query(
        "INSERT INTO statements (file_id, seq, statement_id, account, currency, opening_minor, closing_minor, \
         declared_entries, declared_sum_minor, declared_net_minor, declared_credit_count, declared_credit_minor, \
         declared_debit_count, declared_debit_minor) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) RETURNING id",
    );
    bind_vals(
        q,
        vec![
            Val::I(s.file_id),
            Val::I(s.seq),
            Val::OS(s.statement_id),
            Val::S(s.account),
            Val::OS(s.currency),
            Val::OI(s.opening_minor),
            Val::OI(s.closing_minor),
            Val::OI(s.declared_entries),
            Val::OI(s.declared_sum_minor),
            Val::OI(s.declared_net_minor),
            Val::OI(s.declared_credit_count),
            Val::OI(s.declared_credit_minor),
            Val::OI(s.declared_debit_count),
            Val::OI(s.declared_debit_minor),
        ],
    )
    .fetch_one(&mut *conn)
    .await
    .and_then(|r| r.try_get::<i64, _>(0))
    .op("recording a statement")
}

/// A transaction line as ingested (status `pending`, or `not_booked`).
pub struct NewPayment {
    pub file_id: i64,
    pub statement_row: i64,
    pub bank_id: String,
    pub entry_seq: i64,
    pub tx_seq: i64,
    pub bank_ref: Option<String>,
    pub entry_ref: Option<String>,
    pub end_to_end_id: Option<String>,
    pub tx_id: Option<String>,
    pub txn_key: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub direction: &'static str,
    pub reversal: bool,
    pub booking_date: Option<String>,
    pub value_date: Option<String>,
    pub payer_name: Option<String>,
    pub payer_account: Option<String>,
    pub reference: Option<String>,
    pub remittance: Option<String>,
    pub additional_info: Option<String>,
    pub return_reason: Option<String>,
    pub instructed_minor: Option<i64>,
    pub status: &'static str,
}

const PAYMENT_COLS: usize = 24;

pub async fn insert_payments(
    conn: &mut AnyConnection,
    rows: Vec<NewPayment>,
) -> Result<(), StoreError> {
    let vals = rows
        .into_iter()
        .map(|p| {
            vec![
                Val::I(p.file_id),
                Val::I(p.statement_row),
                Val::S(p.bank_id),
                Val::I(p.entry_seq),
                Val::I(p.tx_seq),
                Val::OS(p.bank_ref),
                Val::OS(p.entry_ref),
                Val::OS(p.end_to_end_id),
                Val::OS(p.tx_id),
                Val::OS(p.txn_key),
                Val::I(p.amount_minor),
                Val::S(p.currency),
                Val::S(p.direction.into()),
                Val::I(p.reversal as i64),
                Val::OS(p.booking_date),
                Val::OS(p.value_date),
                Val::OS(p.payer_name),
                Val::OS(p.payer_account),
                Val::OS(p.reference),
                Val::OS(p.remittance),
                Val::OS(p.additional_info),
                Val::OS(p.return_reason),
                Val::OI(p.instructed_minor),
                Val::S(p.status.into()),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO payments (file_id, statement_row, bank_id, entry_seq, tx_seq, bank_ref, entry_ref, end_to_end_id, tx_id, txn_key, \
         amount_minor, currency, direction, reversal, booking_date, value_date, payer_name, payer_account, reference, remittance, \
         additional_info, return_reason, instructed_minor, status)",
        PAYMENT_COLS,
        vals,
        "storing payments",
    )
    .await
}

pub async fn count_files(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    sqlx::query("SELECT COUNT(*) FROM bank_files")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("counting files")
}

/// A failed check of a file, stored with the file (see migrations 0007).
pub struct NewFinding {
    pub file_id: i64,
    pub bank_id: String,
    pub statement_seq: Option<i64>,
    pub statement_id: Option<String>,
    pub check: String,
    pub severity: String,
    pub line: i64,
    pub location: String,
    pub declared: String,
    pub computed: String,
    pub message: String,
    pub policy: String,
}

const FINDING_COLS: usize = 13;

pub async fn insert_findings(
    conn: &mut AnyConnection,
    rows: Vec<NewFinding>,
) -> Result<(), StoreError> {
    let at = now();
    let vals = rows
        .into_iter()
        .map(|f| {
            vec![
                Val::I(f.file_id),
                Val::S(f.bank_id),
                Val::OI(f.statement_seq),
                Val::OS(f.statement_id),
                Val::S(f.check),
                Val::S(f.severity),
                Val::I(f.line),
                Val::S(f.location),
                Val::S(f.declared),
                Val::S(f.computed),
                Val::S(f.message),
                Val::S(f.policy),
                Val::S(at.clone()),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO file_findings (file_id, bank_id, statement_seq, statement_id, check_name, severity, line, \
         location, declared, computed, message, policy, created_at)",
        FINDING_COLS,
        vals,
        "storing a file's findings",
    )
    .await
}

/// A stored finding with its file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredFinding {
    pub file_id: i64,
    pub file_name: String,
    pub bank_id: String,
    pub statement_seq: Option<i64>,
    pub statement_id: Option<String>,
    pub check: String,
    pub severity: String,
    pub line: i64,
    pub location: String,
    pub declared: String,
    pub computed: String,
    pub message: String,
    pub policy: String,
    pub created_at: String,
}

/// The findings of one bank (every bank when `None`), newest first, at most `limit`.
pub async fn findings(
    conn: &mut AnyConnection,
    bank_id: Option<&str>,
    limit: i64,
) -> Result<Vec<StoredFinding>, StoreError> {
    let rows = sqlx::query(
        "SELECT ff.file_id, f.file_name, ff.bank_id, ff.statement_seq, ff.statement_id, ff.check_name, ff.severity, \
         ff.line, ff.location, ff.declared, ff.computed, ff.message, ff.policy, ff.created_at \
         FROM file_findings ff JOIN bank_files f ON f.id = ff.file_id \
         WHERE ($1 = '' OR ff.bank_id = $1) ORDER BY ff.id DESC LIMIT $2",
    )
    .bind(bank_id.unwrap_or("").to_string())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .op("reading findings")?;
    rows.iter()
        .map(|r| {
            Ok(StoredFinding {
                file_id: r.try_get(0)?,
                file_name: r.try_get(1)?,
                bank_id: r.try_get(2)?,
                statement_seq: r.try_get(3)?,
                statement_id: r.try_get(4)?,
                check: r.try_get(5)?,
                severity: r.try_get(6)?,
                line: r.try_get(7)?,
                location: r.try_get(8)?,
                declared: r.try_get(9)?,
                computed: r.try_get(10)?,
                message: r.try_get(11)?,
                policy: r.try_get(12)?,
                created_at: r.try_get(13)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading findings")
}

/// How many findings each bank has, by check and severity (for `/metrics`).
pub async fn finding_counts(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, String, String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT bank_id, check_name, severity, CAST(COUNT(*) AS BIGINT) FROM file_findings \
         GROUP BY bank_id, check_name, severity ORDER BY bank_id, check_name, severity",
    )
    .fetch_all(&mut *conn)
    .await
    .op("counting findings")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("counting findings")
}

/// The findings of the files that carry a day's booked lines, per bank, currency and check:
/// `(bank_id, currency, check, severity, count)` (for the daily settlement).
pub async fn findings_for_day(
    conn: &mut AnyConnection,
    day: &str,
) -> Result<Vec<(String, String, String, String, i64)>, StoreError> {
    let sql = super::dialect(
        conn,
        "SELECT ff.bank_id, fc.currency, ff.check_name, ff.severity, CAST(COUNT(*) AS BIGINT) \
         FROM file_findings ff \
         JOIN (SELECT DISTINCT file_id, currency FROM payments WHERE booking_date = $1 \
               AND status NOT IN ('not_booked', 'confirmed', 'transfer')) fc ON fc.file_id = ff.file_id \
         GROUP BY ff.bank_id, fc.currency, ff.check_name, ff.severity \
         ORDER BY ff.bank_id, fc.currency, ff.check_name, ff.severity",
    );
    let rows = sqlx::query(&sql)
        .bind(day.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("reading the day's findings")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading the day's findings")
}
