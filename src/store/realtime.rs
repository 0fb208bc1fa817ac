//! What the partner API reads and writes: real-time postings (migration 0006), the day's
//! pseudo-file that carries them, and a customer's open bills.

use super::{dialect, DbContext, StoreError};
use sqlx::{AnyConnection, Row};

/// The `bank_files` row and statement that carry a bank's real-time payments of one business
/// day (`sha256` = `realtime:BANK:DATE`, format `partner_api`, nothing archived): every payment
/// belongs to a file, and reports per file and per day see real-time money like any other.
pub async fn realtime_file(
    conn: &mut AnyConnection,
    bank_id: &str,
    date: &str,
) -> Result<(i64, i64), StoreError> {
    let key = format!("realtime:{bank_id}:{date}");
    let sql = dialect(
        conn,
        "SELECT f.id, s.id FROM bank_files f JOIN statements s ON s.file_id = f.id WHERE f.sha256 = $1",
    );
    if let Some(r) = sqlx::query(&sql)
        .bind(key.clone())
        .fetch_optional(&mut *conn)
        .await
        .op("finding the real-time file")?
    {
        return Ok((
            r.try_get(0).op("finding the real-time file")?,
            r.try_get(1).op("finding the real-time file")?,
        ));
    }
    let file_id = super::files::insert_file(
        conn,
        super::files::NewFile {
            bank_id,
            sha256: &key,
            file_name: &format!("partner API {bank_id} {date}"),
            size_bytes: 0,
            format: "partner_api",
            message_id: None,
            archive_path: "",
        },
    )
    .await?;
    let sql = dialect(
        conn,
        "INSERT INTO statements (file_id, seq, account) VALUES ($1, 0, 'partner_api') RETURNING id",
    );
    let st: i64 = sqlx::query(&sql)
        .bind(file_id)
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .op("creating the real-time statement")?;
    Ok((file_id, st))
}

/// A real-time payment to store (pending; the partner API decides it in the same transaction).
pub struct NewRealtime<'a> {
    pub file_id: i64,
    pub statement_row: i64,
    pub bank_id: &'a str,
    pub bank_txn_id: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub reversal: bool,
    pub business_date: &'a str,
    pub value_date: &'a str,
    pub reference: Option<&'a str>,
    pub channel: Option<&'a str>,
}

pub async fn insert_realtime_payment(
    conn: &mut AnyConnection,
    p: &NewRealtime<'_>,
) -> Result<i64, StoreError> {
    let seq: i64 = {
        let sql = dialect(
            conn,
            "SELECT CAST(COALESCE(MAX(entry_seq), 0) + 1 AS BIGINT) FROM payments WHERE file_id = $1",
        );
        sqlx::query(&sql)
            .bind(p.file_id)
            .fetch_one(&mut *conn)
            .await
            .and_then(|r| r.try_get(0))
            .op("numbering a real-time payment")?
    };
    let key = if p.reversal {
        format!("rt-rev:{}", p.bank_txn_id)
    } else {
        format!("rt:{}", p.bank_txn_id)
    };
    let sql = dialect(
        conn,
        "INSERT INTO payments (file_id, statement_row, bank_id, entry_seq, tx_seq, bank_ref, end_to_end_id, txn_key, \
         amount_minor, currency, direction, reversal, booking_date, value_date, reference, status, source, channel) \
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending', 'realtime', $15) RETURNING id",
    );
    sqlx::query(&sql)
        .bind(p.file_id)
        .bind(p.statement_row)
        .bind(p.bank_id.to_string())
        .bind(seq)
        .bind(p.bank_txn_id.to_string())
        .bind(p.bank_txn_id.to_string())
        .bind(key)
        .bind(p.amount_minor)
        .bind(p.currency.to_string())
        .bind(if p.amount_minor < 0 {
            "debit"
        } else {
            "credit"
        })
        .bind(i64::from(p.reversal))
        .bind(p.business_date.to_string())
        .bind(p.value_date.to_string())
        .bind(p.reference.map(str::to_string))
        .bind(p.channel.map(str::to_string))
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .op("storing a real-time payment")
}

/// A stored real-time posting.
#[derive(Debug, Clone)]
pub struct Posting {
    pub id: i64,
    pub bank_id: String,
    pub bank_txn_id: String,
    pub request_sha256: String,
    pub payment_id: i64,
    pub business_date: String,
    pub amount_minor: i64,
    pub currency: String,
    pub response: String,
    pub reversal_payment_id: Option<i64>,
    pub reversal_response: Option<String>,
}

const POSTING_COLS: &str =
    "id, bank_id, bank_txn_id, request_sha256, payment_id, business_date, amount_minor, \
    currency, response, reversal_payment_id, reversal_response";

fn posting(r: &sqlx::any::AnyRow) -> Result<Posting, sqlx::Error> {
    Ok(Posting {
        id: r.try_get(0)?,
        bank_id: r.try_get(1)?,
        bank_txn_id: r.try_get(2)?,
        request_sha256: r.try_get(3)?,
        payment_id: r.try_get(4)?,
        business_date: r.try_get(5)?,
        amount_minor: r.try_get(6)?,
        currency: r.try_get(7)?,
        response: r.try_get(8)?,
        reversal_payment_id: r.try_get(9)?,
        reversal_response: r.try_get(10)?,
    })
}

pub async fn find_posting(
    conn: &mut AnyConnection,
    bank_id: &str,
    bank_txn_id: &str,
) -> Result<Option<Posting>, StoreError> {
    let sql = dialect(
        conn,
        &format!(
            "SELECT {POSTING_COLS} FROM partner_payments WHERE bank_id = $1 AND bank_txn_id = $2"
        ),
    );
    sqlx::query(&sql)
        .bind(bank_id.to_string())
        .bind(bank_txn_id.to_string())
        .fetch_optional(&mut *conn)
        .await
        .and_then(|r| r.map(|r| posting(&r)).transpose())
        .op("reading a real-time posting")
}

/// The bank's postings of a business day, in the order they came.
pub async fn postings_of_day(
    conn: &mut AnyConnection,
    bank_id: &str,
    date: &str,
) -> Result<Vec<Posting>, StoreError> {
    let sql = dialect(
        conn,
        &format!(
            "SELECT {POSTING_COLS} FROM partner_payments WHERE bank_id = $1 AND business_date = $2 ORDER BY id"
        ),
    );
    let rows = sqlx::query(&sql)
        .bind(bank_id.to_string())
        .bind(date.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("reading the day's postings")?;
    rows.iter()
        .map(posting)
        .collect::<Result<_, _>>()
        .op("reading the day's postings")
}

pub struct NewPosting<'a> {
    pub bank_id: &'a str,
    pub bank_txn_id: &'a str,
    pub request_sha256: &'a str,
    pub payment_id: i64,
    pub business_date: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub channel: Option<&'a str>,
    pub response: &'a str,
    pub at: &'a str,
}

pub async fn insert_posting(
    conn: &mut AnyConnection,
    p: &NewPosting<'_>,
) -> Result<(), StoreError> {
    let sql = dialect(
        conn,
        "INSERT INTO partner_payments (bank_id, bank_txn_id, request_sha256, payment_id, business_date, \
         amount_minor, currency, channel, response, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    );
    sqlx::query(&sql)
        .bind(p.bank_id.to_string())
        .bind(p.bank_txn_id.to_string())
        .bind(p.request_sha256.to_string())
        .bind(p.payment_id)
        .bind(p.business_date.to_string())
        .bind(p.amount_minor)
        .bind(p.currency.to_string())
        .bind(p.channel.map(str::to_string))
        .bind(p.response.to_string())
        .bind(p.at.to_string())
        .execute(&mut *conn)
        .await
        .op("storing a real-time posting")?;
    Ok(())
}

pub async fn set_reversal(
    conn: &mut AnyConnection,
    posting_id: i64,
    reversal_payment_id: i64,
    response: &str,
    at: &str,
) -> Result<(), StoreError> {
    let sql = dialect(
        conn,
        "UPDATE partner_payments SET reversal_payment_id = $2, reversal_response = $3, reversed_at = $4 WHERE id = $1",
    );
    sqlx::query(&sql)
        .bind(posting_id)
        .bind(reversal_payment_id)
        .bind(response.to_string())
        .bind(at.to_string())
        .execute(&mut *conn)
        .await
        .op("recording a reversal")?;
    Ok(())
}

/// Marks a pair of payments (a real-time payment in the exceptions queue and its reversal)
/// `cancelled`: together they carry no money. The original's exception is resolved.
pub async fn cancel_pair(
    conn: &mut AnyConnection,
    original: i64,
    reversal: i64,
    at: &str,
) -> Result<(), StoreError> {
    for (id, other, col) in [
        (original, reversal, "reversed_by_payment_id"),
        (reversal, original, "reverses_payment_id"),
    ] {
        let sql = dialect(
            conn,
            &format!(
                "UPDATE payments SET status = 'cancelled', held_minor = 0, {col} = $2, matched_at = $3 WHERE id = $1"
            ),
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(other)
            .bind(at.to_string())
            .execute(&mut *conn)
            .await
            .op("cancelling a real-time payment")?;
    }
    let sql = dialect(
        conn,
        "UPDATE exceptions SET status = 'resolved', resolved_at = $2 WHERE payment_id = $1 AND status = 'open'",
    );
    sqlx::query(&sql)
        .bind(original)
        .bind(at.to_string())
        .execute(&mut *conn)
        .await
        .op("closing a cancelled payment's exception")?;
    Ok(())
}

/// Marks a payment reversed by a real-time reversal and the reversal `reversed`.
pub async fn mark_reversed(
    conn: &mut AnyConnection,
    original: i64,
    reversal: i64,
) -> Result<(), StoreError> {
    let sql = dialect(
        conn,
        "UPDATE payments SET status = 'reversed', reversed_by_payment_id = $2 WHERE id = $1",
    );
    sqlx::query(&sql)
        .bind(original)
        .bind(reversal)
        .execute(&mut *conn)
        .await
        .op("marking a payment reversed")?;
    let sql = dialect(
        conn,
        "UPDATE payments SET reverses_payment_id = $2 WHERE id = $1",
    );
    sqlx::query(&sql)
        .bind(reversal)
        .bind(original)
        .execute(&mut *conn)
        .await
        .op("linking a reversal")?;
    Ok(())
}

/// Opens an exception for a payment (held in full).
pub async fn insert_exception(
    conn: &mut AnyConnection,
    payment_id: i64,
    reason: &str,
    detail: &str,
    amount_minor: i64,
    currency: &str,
    at: &str,
) -> Result<(), StoreError> {
    let sql = dialect(
        conn,
        "INSERT INTO exceptions (payment_id, reason, detail, amount_minor, currency, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'open', $6)",
    );
    sqlx::query(&sql)
        .bind(payment_id)
        .bind(reason.to_string())
        .bind(detail.to_string())
        .bind(amount_minor)
        .bind(currency.to_string())
        .bind(at.to_string())
        .execute(&mut *conn)
        .await
        .op("opening an exception")?;
    let sql = dialect(
        conn,
        "UPDATE payments SET exception_reason = $2, exception_detail = $3 WHERE id = $1",
    );
    sqlx::query(&sql)
        .bind(payment_id)
        .bind(reason.to_string())
        .bind(detail.to_string())
        .execute(&mut *conn)
        .await
        .op("opening an exception")?;
    Ok(())
}

/// A customer as the partner API shows it: (name, class).
pub async fn customer(
    conn: &mut AnyConnection,
    account_key: &str,
) -> Result<Option<(String, String, String)>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT account_no, name, class FROM customers WHERE account_key = $1",
    );
    sqlx::query(&sql)
        .bind(account_key.to_string())
        .fetch_optional(&mut *conn)
        .await
        .and_then(|r| {
            r.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .transpose()
        })
        .op("reading a customer")
}

/// An open bill: (bill_id, period, amount, paid, currency, due_on, fee waived).
pub type OpenBill = (String, String, i64, i64, String, String, bool);

pub async fn open_bills(
    conn: &mut AnyConnection,
    account_no: &str,
) -> Result<Vec<OpenBill>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT b.bill_id, b.period, b.amount_minor, b.paid_minor, b.currency, b.due_on, \
         CASE WHEN w.bill_id IS NULL THEN 0 ELSE 1 END \
         FROM bills b LEFT JOIN late_fee_waivers w ON w.bill_id = b.bill_id \
         WHERE b.account_no = $1 AND b.status = 'open' ORDER BY b.due_on, b.bill_id",
    );
    let rows = sqlx::query(&sql)
        .bind(account_no.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("reading open bills")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get::<i64, _>(6)? != 0,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .op("reading open bills")
}
