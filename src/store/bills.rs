//! Bills as exported by the billing system, with what has been paid on them.

use super::{bind_vals, in_list, insert_rows, now, DbContext, StoreError, Val};
use sqlx::{AnyConnection, Row};

/// A bill as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRow {
    pub bill_id: String,
    pub bill_key: String,
    pub account_no: String,
    pub period: String,
    pub amount_minor: i64,
    pub currency: String,
    pub issued_on: String,
    pub due_on: String,
    pub paid_minor: i64,
    /// open | paid | cancelled (of the principal; a late fee may still be owed on a paid bill)
    pub status: String,
    /// The late fee's running totals (see migration 0008): what the charges computed, what
    /// was charged (the minimum applied), waived, and paid.
    pub fee: BillFee,
}

/// A bill's late-fee totals, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BillFee {
    pub accrued: i64,
    pub charged: i64,
    pub waived: i64,
    pub paid: i64,
    /// A supervisor waived the fee: no more is charged.
    pub waived_flag: bool,
}

impl BillFee {
    /// What is still owed of the late fee.
    pub fn owed(&self) -> i64 {
        self.charged - self.waived - self.paid
    }
}

const COLS: &str = "bill_id, bill_key, account_no, period, amount_minor, currency, issued_on, due_on, paid_minor, status";
/// The late-fee columns read with [`COLS`].
const FEE_COLS: [&str; 5] = [
    "fee_accrued_minor",
    "fee_charged_minor",
    "fee_waived_minor",
    "fee_paid_minor",
    "late_fee_waived",
];
/// A bill that still owes something: principal (open) or late fee.
pub const OWES: &str = "(status = 'open' OR fee_charged_minor > fee_waived_minor + fee_paid_minor)";

fn fee_of(r: &[Option<String>], at: usize) -> BillFee {
    BillFee {
        accrued: super::num(r, at),
        charged: super::num(r, at + 1),
        waived: super::num(r, at + 2),
        paid: super::num(r, at + 3),
        waived_flag: super::num(r, at + 4) != 0,
    }
}

async fn select_in(
    conn: &mut AnyConnection,
    column: &str,
    values: &[String],
    extra: &str,
) -> Result<Vec<BillRow>, StoreError> {
    let mut cols: Vec<&str> = COLS.split(", ").collect();
    cols.extend(FEE_COLS);
    let mut out = Vec::new();
    for chunk in values.chunks(1000) {
        let rest = format!(
            "bills WHERE {column} IN ({}) {extra}",
            in_list(chunk.len(), 1)
        );
        let vals = chunk.iter().map(|v| Val::S(v.clone())).collect();
        let rows =
            super::fetch_packed(conn, &cols, &rest, "account_no, due_on, bill_id", vals).await?;
        for r in rows {
            out.push(BillRow {
                bill_id: super::cell(&r, 0).unwrap_or_default(),
                bill_key: super::cell(&r, 1).unwrap_or_default(),
                account_no: super::cell(&r, 2).unwrap_or_default(),
                period: super::cell(&r, 3).unwrap_or_default(),
                amount_minor: super::num(&r, 4),
                currency: super::cell(&r, 5).unwrap_or_default(),
                issued_on: super::cell(&r, 6).unwrap_or_default(),
                due_on: super::cell(&r, 7).unwrap_or_default(),
                paid_minor: super::num(&r, 8),
                status: super::cell(&r, 9).unwrap_or_default(),
                fee: fee_of(&r, 10),
            });
        }
    }
    Ok(out)
}

pub async fn by_ids(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<BillRow>, StoreError> {
    select_in(conn, "bill_id", ids, "").await
}

pub async fn by_keys(
    conn: &mut AnyConnection,
    keys: &[String],
) -> Result<Vec<BillRow>, StoreError> {
    select_in(conn, "bill_key", keys, "").await
}

/// Bills of these accounts that still owe something (open, or a late fee owed), oldest due
/// date first (then bill id), for allocation.
pub async fn open_for_accounts(
    conn: &mut AnyConnection,
    accounts: &[String],
) -> Result<Vec<BillRow>, StoreError> {
    select_in(conn, "account_no", accounts, &format!("AND {OWES}")).await
}

pub async fn insert(conn: &mut AnyConnection, rows: Vec<BillRow>) -> Result<(), StoreError> {
    let at = now();
    let vals = rows
        .into_iter()
        .map(|b| {
            vec![
                Val::S(b.bill_id),
                Val::S(b.bill_key),
                Val::S(b.account_no),
                Val::S(b.period),
                Val::I(b.amount_minor),
                Val::S(b.currency),
                Val::S(b.issued_on),
                Val::S(b.due_on),
                Val::I(b.paid_minor),
                Val::S(b.status),
                Val::S(at.clone()),
            ]
        })
        .collect();
    insert_rows(
        conn,
        &format!("INSERT INTO bills ({COLS}, updated_at)"),
        11,
        vals,
        "saving bills",
    )
    .await
}

/// Rewrites the billing-system fields of a bill (not what has been paid on it).
pub async fn update(conn: &mut AnyConnection, b: &BillRow) -> Result<(), StoreError> {
    let q = sqlx::query(
        "UPDATE bills SET account_no = $2, period = $3, amount_minor = $4, currency = $5, \
         issued_on = $6, due_on = $7, status = $8, updated_at = $9 WHERE bill_id = $1",
    );
    bind_vals(
        q,
        vec![
            Val::S(b.bill_id.clone()),
            Val::S(b.account_no.clone()),
            Val::S(b.period.clone()),
            Val::I(b.amount_minor),
            Val::S(b.currency.clone()),
            Val::S(b.issued_on.clone()),
            Val::S(b.due_on.clone()),
            Val::S(b.status.clone()),
            Val::S(now()),
        ],
    )
    .execute(&mut *conn)
    .await
    .op("updating a bill")?;
    Ok(())
}

pub async fn count(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    sqlx::query("SELECT COUNT(*) FROM bills")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("counting bills")
}

/// Every bill in pages of `limit`, by bill id after `after`: what a large matching run keeps
/// in memory (see `matching::book`). Only the columns matching needs; `period` and
/// `issued_on` are left empty.
pub async fn page(
    conn: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<BillRow>, StoreError> {
    let cols = [
        "bill_id",
        "bill_key",
        "account_no",
        "amount_minor",
        "currency",
        "due_on",
        "paid_minor",
        "status",
        "fee_accrued_minor",
        "fee_charged_minor",
        "fee_waived_minor",
        "fee_paid_minor",
        "late_fee_waived",
    ];
    let rest = "(SELECT * FROM bills WHERE bill_id > $1 ORDER BY bill_id LIMIT $2) b";
    let rows = super::fetch_packed(
        conn,
        &cols,
        rest,
        "bill_id",
        vec![Val::S(after.to_string()), Val::I(limit)],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| BillRow {
            bill_id: super::cell(&r, 0).unwrap_or_default(),
            bill_key: super::cell(&r, 1).unwrap_or_default(),
            account_no: super::cell(&r, 2).unwrap_or_default(),
            period: String::new(),
            amount_minor: super::num(&r, 3),
            currency: super::cell(&r, 4).unwrap_or_default(),
            issued_on: String::new(),
            due_on: super::cell(&r, 5).unwrap_or_default(),
            paid_minor: super::num(&r, 6),
            status: super::cell(&r, 7).unwrap_or_default(),
            fee: fee_of(&r, 8),
        })
        .collect())
}
