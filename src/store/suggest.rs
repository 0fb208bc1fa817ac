//! What the exceptions workbench's suggestions read (see `workbench::suggest`), and the one
//! column they write (`exceptions.suggested_account`).
//!
//! Costs, without new indexes (none are added here):
//! - [`payment`], [`customers`]: primary-key lookups.
//! - [`open_bill_keys`], [`account_keys`]: scan bills / customers, filtered in SQL by key
//!   length, so only the keys of plausible length travel to the process.
//! - [`open_bills_with_balance`]: a scan of the bills table (no index on the open balance),
//!   at most `limit` rows returned.
//! - [`accounts_named`]: a scan of customers (no index on the name), at most `limit` rows.
//! - [`payer_history`]: a scan of payments (no index on `payer_account`); an index
//!   `payments (payer_account)` would make it a lookup.

use super::{bind_vals, dialect, in_list, DbContext, StoreError, Val};
use sqlx::{AnyConnection, Row};

/// A payment as suggestions need it.
#[derive(Debug, Clone)]
pub struct SuggestPayment {
    pub id: i64,
    pub bank_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub direction: String,
    pub reversal: bool,
    pub status: String,
    pub payer_name: Option<String>,
    pub payer_account: Option<String>,
    pub reference: Option<String>,
    pub end_to_end_id: Option<String>,
    pub remittance: Option<String>,
    pub additional_info: Option<String>,
    /// The reason of its open exception, if it has one.
    pub open_exception: Option<String>,
}

pub async fn payment(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<SuggestPayment>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT p.id, p.bank_id, p.amount_minor, p.currency, p.direction, p.reversal, p.status, \
         p.payer_name, p.payer_account, p.reference, p.end_to_end_id, p.remittance, p.additional_info, \
         (SELECT MIN(e.reason) FROM exceptions e WHERE e.payment_id = p.id AND e.status = 'open') \
         FROM payments p WHERE p.id = $1",
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .op("reading a payment for suggestions")?;
    let Some(r) = row else { return Ok(None) };
    (|| -> Result<SuggestPayment, sqlx::Error> {
        Ok(SuggestPayment {
            id: r.try_get(0)?,
            bank_id: r.try_get(1)?,
            amount_minor: r.try_get(2)?,
            currency: r.try_get(3)?,
            direction: r.try_get(4)?,
            reversal: r.try_get::<i64, _>(5)? != 0,
            status: r.try_get(6)?,
            payer_name: r.try_get(7)?,
            payer_account: r.try_get(8)?,
            reference: r.try_get(9)?,
            end_to_end_id: r.try_get(10)?,
            remittance: r.try_get(11)?,
            additional_info: r.try_get(12)?,
            open_exception: r.try_get(13)?,
        })
    })()
    .map(Some)
    .op("reading a payment for suggestions")
}

/// (bill_key, bill_id, account_no) of every open bill whose key is `min..=max` characters.
pub async fn open_bill_keys(
    conn: &mut AnyConnection,
    min: i64,
    max: i64,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let rows = super::fetch_packed(
        conn,
        &["bill_key", "bill_id", "account_no"],
        "bills WHERE status = 'open' AND LENGTH(bill_key) BETWEEN $1 AND $2",
        "bill_key",
        vec![Val::I(min), Val::I(max)],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                super::cell(&r, 0).unwrap_or_default(),
                super::cell(&r, 1).unwrap_or_default(),
                super::cell(&r, 2).unwrap_or_default(),
            )
        })
        .collect())
}

/// (account_key, account_no) of every customer whose key is `min..=max` characters.
pub async fn account_keys(
    conn: &mut AnyConnection,
    min: i64,
    max: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = super::fetch_packed(
        conn,
        &["account_key", "account_no"],
        "customers WHERE LENGTH(account_key) BETWEEN $1 AND $2",
        "account_key",
        vec![Val::I(min), Val::I(max)],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                super::cell(&r, 0).unwrap_or_default(),
                super::cell(&r, 1).unwrap_or_default(),
            )
        })
        .collect())
}

/// (bill_id, account_no) of open bills in `currency` whose open balance is `balance`, oldest
/// due date first, at most `limit`.
pub async fn open_bills_with_balance(
    conn: &mut AnyConnection,
    balance: i64,
    currency: &str,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT bill_id, account_no FROM bills WHERE status = 'open' \
         AND amount_minor - paid_minor = $1 AND currency = $2 ORDER BY due_on, bill_id LIMIT $3",
    );
    let rows = bind_vals(
        sqlx::query(&sql),
        vec![Val::I(balance), Val::S(currency.to_string()), Val::I(limit)],
    )
    .fetch_all(&mut *conn)
    .await
    .op("finding bills by open balance")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .op("finding bills by open balance")
}

/// Accounts whose holder's name, trimmed and with ASCII letters lower-cased, is `name`
/// (already trimmed and lower-cased by the caller), at most `limit`.
pub async fn accounts_named(
    conn: &mut AnyConnection,
    name: &str,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT account_no FROM customers WHERE LOWER(TRIM(name)) = $1 ORDER BY account_no LIMIT $2",
    );
    let rows = sqlx::query(&sql)
        .bind(name.to_string())
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .op("finding customers by name")?;
    rows.iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, sqlx::Error>>()
        .op("finding customers by name")
}

/// Accounts that earlier payments from `payer_account` (other than `except_payment`) were
/// applied to or held as credit for: (account_no, how many payments), most first.
pub async fn payer_history(
    conn: &mut AnyConnection,
    payer_account: &str,
    except_payment: i64,
    limit: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT account_no, COUNT(*) AS n FROM payments WHERE payer_account = $1 AND id <> $2 \
         AND account_no IS NOT NULL AND status IN ('applied', 'partially_applied', 'credit') \
         GROUP BY account_no ORDER BY n DESC, account_no LIMIT $3",
    );
    let rows = bind_vals(
        sqlx::query(&sql),
        vec![
            Val::S(payer_account.to_string()),
            Val::I(except_payment),
            Val::I(limit),
        ],
    )
    .fetch_all(&mut *conn)
    .await
    .op("reading a payer's history")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .op("reading a payer's history")
}

/// (account_no, name, key_account) of these accounts.
pub async fn customers(
    conn: &mut AnyConnection,
    accounts: &[String],
) -> Result<Vec<(String, String, bool)>, StoreError> {
    let mut out = Vec::new();
    for chunk in accounts.chunks(1000) {
        let sql = dialect(
            conn,
            &format!(
                "SELECT account_no, name, key_account FROM customers WHERE account_no IN ({})",
                in_list(chunk.len(), 1)
            ),
        );
        let vals = chunk.iter().map(|a| Val::S(a.clone())).collect();
        let rows = bind_vals(sqlx::query(&sql), vals)
            .fetch_all(&mut *conn)
            .await
            .op("reading customers for suggestions")?;
        for r in rows {
            out.push(
                (|| -> Result<_, sqlx::Error> {
                    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<i64, _>(2)? != 0))
                })()
                .op("reading customers for suggestions")?,
            );
        }
    }
    Ok(out)
}

/// An open exception: (exception id, payment id, bank id, reason, suggested_account).
pub type OpenException = (i64, i64, String, String, Option<String>);

/// Every open exception, oldest first.
pub async fn open_exceptions(conn: &mut AnyConnection) -> Result<Vec<OpenException>, StoreError> {
    let rows = sqlx::query(
        "SELECT e.id, e.payment_id, p.bank_id, e.reason, e.suggested_account \
         FROM exceptions e JOIN payments p ON p.id = e.payment_id \
         WHERE e.status = 'open' ORDER BY e.id",
    )
    .fetch_all(&mut *conn)
    .await
    .op("listing open exceptions")?;
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
        .collect::<Result<_, sqlx::Error>>()
        .op("listing open exceptions")
}

/// Sets `suggested_account` of these exceptions (only while they are open).
pub async fn set_suggested(
    conn: &mut AnyConnection,
    updates: &[(i64, Option<String>)],
) -> Result<(), StoreError> {
    let sql = dialect(
        conn,
        "UPDATE exceptions SET suggested_account = $1 WHERE id = $2 AND status = 'open'",
    );
    for (id, account) in updates {
        sqlx::query(&sql)
            .bind(account.clone())
            .bind(*id)
            .execute(&mut *conn)
            .await
            .op("saving suggested accounts")?;
    }
    Ok(())
}
