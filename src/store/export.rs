//! Row streams for the exports: read with a cursor, never the whole table in memory.

use super::{DbContext, StoreError};
use crate::domain::money_text;
use futures_util::TryStreamExt;
use sqlx::{AnyPool, Row};

/// An export row: text cells, `None` for empty.
pub type Cells = Vec<Option<String>>;

pub const PAYMENT_COLUMNS: &[&str] = &[
    "bank_id",
    "bank_ref",
    "end_to_end_id",
    "amount",
    "currency",
    "status",
    "applied",
    "credit",
    "exception_reason",
    "refunded",
    "held",
    "direction",
    "reversal",
    "account_no",
    "payer_name",
    "reference",
    "remittance",
    "booking_date",
    "value_date",
    "exception_detail",
    "reverses_payment_id",
    "reversed_by_payment_id",
    "payment_id",
    "file_id",
    "file_name",
    "written_off",
    "channel",
];

pub const ALLOCATION_COLUMNS: &[&str] = &[
    "bank_id",
    "bank_ref",
    "end_to_end_id",
    "bill_id",
    "account_no",
    "amount",
    "rule",
    "currency",
    "payment_id",
    "allocation_id",
    "allocated_at",
    "file_name",
    "part",
];

/// The late-fee ledger's columns (see migration 0008).
pub const LATE_FEE_COLUMNS: &[&str] = &[
    "late_fee_id",
    "bill_id",
    "account_no",
    "kind",
    "payment_id",
    "by_payment_id",
    "due_on",
    "from_on",
    "to_on",
    "days",
    "rate",
    "base",
    "computed",
    "amount",
    "minimum",
    "currency",
    "reason",
    "actor",
    "created_at",
];

pub const EXCEPTION_COLUMNS: &[&str] = &[
    "exception_id",
    "payment_id",
    "bank_id",
    "bank_ref",
    "end_to_end_id",
    "amount",
    "currency",
    "reason",
    "detail",
    "payer_name",
    "reference",
    "remittance",
    "booking_date",
    "status",
    "created_at",
    "file_name",
    "resolved_at",
    "escalated_at",
];

fn s(r: &sqlx::any::AnyRow, i: usize) -> Result<Option<String>, sqlx::Error> {
    r.try_get::<Option<String>, _>(i)
}
fn n(r: &sqlx::any::AnyRow, i: usize) -> Result<Option<String>, sqlx::Error> {
    Ok(r.try_get::<Option<i64>, _>(i)?.map(|v| v.to_string()))
}

/// Streams every payment (booked lines) in ingest order.
pub async fn payments(
    pool: &AnyPool,
    mut sink: impl FnMut(Cells) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    let mut rows = sqlx::query(
        "SELECT p.bank_id, p.bank_ref, p.end_to_end_id, p.amount_minor, p.currency, p.status, p.applied_minor, \
         p.credit_minor, p.exception_reason, p.refunded_minor, p.held_minor, p.direction, p.reversal, p.account_no, \
         p.payer_name, p.reference, p.remittance, p.booking_date, p.value_date, p.exception_detail, \
         p.reverses_payment_id, p.reversed_by_payment_id, p.id, p.file_id, f.file_name, p.written_off_minor, \
         COALESCE(p.channel, CASE WHEN p.source = 'realtime' THEN 'online' ELSE 'file' END) \
         FROM payments p JOIN bank_files f ON f.id = p.file_id WHERE p.status <> 'not_booked' ORDER BY p.id",
    )
    .fetch(pool);
    let mut count = 0;
    while let Some(r) = rows.try_next().await.op("exporting payments")? {
        let cur: String = r.try_get(4).op("exporting payments")?;
        let money = |i: usize| -> Result<Option<String>, sqlx::Error> {
            Ok(Some(money_text(r.try_get::<i64, _>(i)?, &cur)))
        };
        let cells = (|| -> Result<Cells, sqlx::Error> {
            Ok(vec![
                s(&r, 0)?,
                s(&r, 1)?,
                s(&r, 2)?,
                money(3)?,
                Some(cur.clone()),
                s(&r, 5)?,
                money(6)?,
                money(7)?,
                s(&r, 8)?,
                money(9)?,
                money(10)?,
                s(&r, 11)?,
                Some((r.try_get::<i64, _>(12)? != 0).to_string()),
                s(&r, 13)?,
                s(&r, 14)?,
                s(&r, 15)?,
                s(&r, 16)?,
                s(&r, 17)?,
                s(&r, 18)?,
                s(&r, 19)?,
                n(&r, 20)?,
                n(&r, 21)?,
                n(&r, 22)?,
                n(&r, 23)?,
                s(&r, 24)?,
                money(25)?,
                s(&r, 26)?,
            ])
        })()
        .op("exporting payments")?;
        sink(cells).map_err(|e| StoreError::Conflict(format!("writing the export: {e}")))?;
        count += 1;
    }
    Ok(count)
}

/// Streams every allocation in the order it was made.
pub async fn allocations(
    pool: &AnyPool,
    mut sink: impl FnMut(Cells) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    let mut rows = sqlx::query(
        "SELECT p.bank_id, p.bank_ref, p.end_to_end_id, a.bill_id, a.account_no, a.amount_minor, a.rule, a.currency, \
         a.payment_id, a.id, a.created_at, f.file_name, a.part \
         FROM allocations a JOIN payments p ON p.id = a.payment_id JOIN bank_files f ON f.id = p.file_id ORDER BY a.id",
    )
    .fetch(pool);
    let mut count = 0;
    while let Some(r) = rows.try_next().await.op("exporting allocations")? {
        let cells = (|| -> Result<Cells, sqlx::Error> {
            let cur: String = r.try_get(7)?;
            Ok(vec![
                s(&r, 0)?,
                s(&r, 1)?,
                s(&r, 2)?,
                s(&r, 3)?,
                s(&r, 4)?,
                Some(money_text(r.try_get::<i64, _>(5)?, &cur)),
                s(&r, 6)?,
                Some(cur),
                n(&r, 8)?,
                n(&r, 9)?,
                s(&r, 10)?,
                s(&r, 11)?,
                s(&r, 12)?,
            ])
        })()
        .op("exporting allocations")?;
        sink(cells).map_err(|e| StoreError::Conflict(format!("writing the export: {e}")))?;
        count += 1;
    }
    Ok(count)
}

/// Streams the late-fee ledger in the order it was written.
pub async fn late_fees(
    pool: &AnyPool,
    mut sink: impl FnMut(Cells) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    let mut rows = sqlx::query(
        "SELECT id, bill_id, account_no, kind, payment_id, by_payment_id, due_on, from_on, to_on, days, rate, \
         base_minor, computed_minor, amount_minor, minimum_minor, currency, reason, actor, created_at \
         FROM late_fees ORDER BY id",
    )
    .fetch(pool);
    let mut count = 0;
    while let Some(r) = rows.try_next().await.op("exporting late fees")? {
        let cells = (|| -> Result<Cells, sqlx::Error> {
            let cur: String = r.try_get(15)?;
            let money = |i: usize| -> Result<Option<String>, sqlx::Error> {
                Ok(Some(money_text(r.try_get::<i64, _>(i)?, &cur)))
            };
            Ok(vec![
                n(&r, 0)?,
                s(&r, 1)?,
                s(&r, 2)?,
                s(&r, 3)?,
                n(&r, 4)?,
                n(&r, 5)?,
                s(&r, 6)?,
                s(&r, 7)?,
                s(&r, 8)?,
                n(&r, 9)?,
                s(&r, 10)?,
                money(11)?,
                money(12)?,
                money(13)?,
                money(14)?,
                Some(cur.clone()),
                s(&r, 16)?,
                s(&r, 17)?,
                s(&r, 18)?,
            ])
        })()
        .op("exporting late fees")?;
        sink(cells).map_err(|e| StoreError::Conflict(format!("writing the export: {e}")))?;
        count += 1;
    }
    Ok(count)
}

/// Streams exceptions (open ones, or all), oldest first.
pub async fn exceptions(
    pool: &AnyPool,
    all: bool,
    mut sink: impl FnMut(Cells) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    let sql = format!(
        "SELECT e.id, e.payment_id, p.bank_id, p.bank_ref, p.end_to_end_id, e.amount_minor, e.currency, e.reason, e.detail, \
         p.payer_name, p.reference, p.remittance, p.booking_date, e.status, e.created_at, f.file_name, \
         e.resolved_at, e.escalated_at \
         FROM exceptions e JOIN payments p ON p.id = e.payment_id JOIN bank_files f ON f.id = p.file_id {} ORDER BY e.id",
        if all { "" } else { "WHERE e.status = 'open'" }
    );
    let mut rows = sqlx::query(&sql).fetch(pool);
    let mut count = 0;
    while let Some(r) = rows.try_next().await.op("listing exceptions")? {
        let cells = (|| -> Result<Cells, sqlx::Error> {
            let cur: String = r.try_get(6)?;
            Ok(vec![
                n(&r, 0)?,
                n(&r, 1)?,
                s(&r, 2)?,
                s(&r, 3)?,
                s(&r, 4)?,
                Some(money_text(r.try_get::<i64, _>(5)?, &cur)),
                Some(cur),
                s(&r, 7)?,
                s(&r, 8)?,
                s(&r, 9)?,
                s(&r, 10)?,
                s(&r, 11)?,
                s(&r, 12)?,
                s(&r, 13)?,
                s(&r, 14)?,
                s(&r, 15)?,
                s(&r, 16)?,
                s(&r, 17)?,
            ])
        })()
        .op("listing exceptions")?;
        sink(cells).map_err(|e| StoreError::Conflict(format!("writing the list: {e}")))?;
        count += 1;
    }
    Ok(count)
}

/// Open exceptions per reason, for the metrics.
pub async fn open_exceptions_by_reason(
    conn: &mut sqlx::AnyConnection,
) -> Result<Vec<(String, i64)>, super::StoreError> {
    use super::DbContext;
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT reason, COUNT(*) FROM exceptions WHERE status = 'open' GROUP BY reason ORDER BY reason",
    )
    .fetch_all(&mut *conn)
    .await
    .op("counting open exceptions")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("counting open exceptions")
}
