//! What dunning reads: overdue bills with their customers, payments that may still belong to
//! someone (pending, or held in an open exception), and how far each bank's files reach.

use super::{cell, fetch_packed, num, DbContext, StoreError, Val};
use sqlx::{AnyConnection, Row};

/// An open bill past its due date, with what dunning needs of its customer.
#[derive(Debug, Clone)]
pub struct OverdueBill {
    pub bill_id: String,
    pub account_no: String,
    pub amount_minor: i64,
    pub paid_minor: i64,
    pub currency: String,
    pub due_on: String,
    pub class: String,
    pub key_account: bool,
    pub manager: Option<String>,
    pub name: String,
    pub language: Option<String>,
    /// open (principal owed) | paid (only its late fee is owed)
    pub status: String,
    pub fee: super::bills::BillFee,
}

/// Bills due before `date` (YYYY-MM-DD) that owe principal, or still a late fee, by account
/// then due date.
pub async fn overdue_bills(
    conn: &mut AnyConnection,
    date: &str,
) -> Result<Vec<OverdueBill>, StoreError> {
    let cols = [
        "b.bill_id",
        "b.account_no",
        "b.amount_minor",
        "b.paid_minor",
        "b.currency",
        "b.due_on",
        "c.class",
        "c.key_account",
        "c.manager",
        "c.name",
        "c.language",
        "b.status",
        "b.fee_accrued_minor",
        "b.fee_charged_minor",
        "b.fee_waived_minor",
        "b.fee_paid_minor",
        "b.late_fee_waived",
    ];
    let rest = "bills b JOIN customers c ON c.account_no = b.account_no \
                WHERE (b.status = 'open' OR (b.status = 'paid' \
                AND b.fee_charged_minor > b.fee_waived_minor + b.fee_paid_minor)) AND b.due_on < $1";
    let rows = fetch_packed(
        conn,
        &cols,
        rest,
        "b.account_no, b.due_on, b.bill_id",
        vec![Val::S(date.to_string())],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| OverdueBill {
            bill_id: cell(&r, 0).unwrap_or_default(),
            account_no: cell(&r, 1).unwrap_or_default(),
            amount_minor: num(&r, 2),
            paid_minor: num(&r, 3),
            currency: cell(&r, 4).unwrap_or_default(),
            due_on: cell(&r, 5).unwrap_or_default(),
            class: cell(&r, 6).unwrap_or_default(),
            key_account: num(&r, 7) != 0,
            manager: cell(&r, 8),
            name: cell(&r, 9).unwrap_or_default(),
            language: cell(&r, 10).filter(|l| !l.is_empty()),
            status: cell(&r, 11).unwrap_or_default(),
            fee: super::bills::BillFee {
                accrued: num(&r, 12),
                charged: num(&r, 13),
                waived: num(&r, 14),
                paid: num(&r, 15),
                waived_flag: num(&r, 16) != 0,
            },
        })
        .collect())
}

/// A payment whose money has not reached a bill yet: pending, or held in an open exception.
#[derive(Debug, Clone)]
pub struct UnsettledPayment {
    pub id: i64,
    pub bank_id: String,
    pub state: String,
    pub reference: Option<String>,
    pub end_to_end_id: Option<String>,
    pub remittance: Option<String>,
    pub additional_info: Option<String>,
}

pub async fn unsettled_payments(
    conn: &mut AnyConnection,
) -> Result<Vec<UnsettledPayment>, StoreError> {
    let cols = [
        "p.id",
        "p.bank_id",
        "p.status",
        "p.reference",
        "p.end_to_end_id",
        "p.remittance",
        "p.additional_info",
    ];
    let rest = "payments p WHERE p.direction = 'credit' AND (p.status = 'pending' \
                OR EXISTS (SELECT 1 FROM exceptions x WHERE x.payment_id = p.id AND x.status = 'open'))";
    let rows = fetch_packed(conn, &cols, rest, "p.id", vec![]).await?;
    Ok(rows
        .into_iter()
        .map(|r| UnsettledPayment {
            id: num(&r, 0),
            bank_id: cell(&r, 1).unwrap_or_default(),
            state: cell(&r, 2).unwrap_or_default(),
            reference: cell(&r, 3),
            end_to_end_id: cell(&r, 4),
            remittance: cell(&r, 5),
            additional_info: cell(&r, 6),
        })
        .collect())
}

/// The latest booking date each bank's files reached: (bank_id, YYYY-MM-DD).
pub async fn bank_coverage(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT bank_id, MAX(booking_date) FROM payments WHERE booking_date IS NOT NULL GROUP BY bank_id",
    )
    .fetch_all(&mut *conn)
    .await
    .op("reading how far bank files reach")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading how far bank files reach")
}

/// Records that a bill's late fee is waived (a supervisor's decision, with its reason) and
/// marks the bill so that no more fee is charged. Idempotent: a second waiver of the same
/// bill keeps the first (false). What was owed is written off by the caller
/// (`workbench::resolve::waive_late_fee`), which also audits it.
pub async fn waive_late_fee(
    conn: &mut AnyConnection,
    bill_id: &str,
    by: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    let sql = super::dialect(
        conn,
        "INSERT INTO late_fee_waivers (bill_id, waived_by, reason, waived_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (bill_id) DO NOTHING",
    );
    let first = sqlx::query(&sql)
        .bind(bill_id.to_string())
        .bind(by.to_string())
        .bind(reason.to_string())
        .bind(super::now())
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
        .op("waiving a late fee")?;
    sqlx::query("UPDATE bills SET late_fee_waived = 1 WHERE bill_id = $1")
        .bind(bill_id.to_string())
        .execute(&mut *conn)
        .await
        .op("waiving a late fee")?;
    Ok(first)
}

/// Bills whose late fee is waived: (bill_id, by, reason).
pub async fn waivers(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let rows = sqlx::query("SELECT bill_id, waived_by, reason FROM late_fee_waivers")
        .fetch_all(&mut *conn)
        .await
        .op("reading late-fee waivers")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading late-fee waivers")
}

/// The `n` accounts with the largest billed amount in all.
pub async fn top_billed_accounts(
    conn: &mut AnyConnection,
    n: i64,
) -> Result<Vec<String>, StoreError> {
    let sql = super::dialect(
        conn,
        "SELECT account_no FROM bills WHERE status <> 'cancelled' GROUP BY account_no \
         ORDER BY SUM(amount_minor) DESC, account_no LIMIT $1",
    );
    let rows = sqlx::query(&sql)
        .bind(n)
        .fetch_all(&mut *conn)
        .await
        .op("ranking accounts by billed amount")?;
    rows.iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<String>, sqlx::Error>>()
        .op("ranking accounts by billed amount")
}

/// A customer manager acknowledges a key account's stage (the last stage needs it).
pub async fn acknowledge(
    conn: &mut AnyConnection,
    account_no: &str,
    stage: &str,
    by: &str,
) -> Result<bool, StoreError> {
    let sql = super::dialect(
        conn,
        "INSERT INTO manager_acks (account_no, stage, acked_by, acked_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_no, stage) DO NOTHING",
    );
    sqlx::query(&sql)
        .bind(account_no.to_string())
        .bind(stage.to_string())
        .bind(by.to_string())
        .bind(super::now())
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
        .op("recording an acknowledgement")
}

/// Acknowledged (account, stage) pairs, with who acknowledged.
pub async fn acks(conn: &mut AnyConnection) -> Result<Vec<(String, String, String)>, StoreError> {
    let rows = sqlx::query("SELECT account_no, stage, acked_by FROM manager_acks")
        .fetch_all(&mut *conn)
        .await
        .op("reading acknowledgements")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading acknowledgements")
}
