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
