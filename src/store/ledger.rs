//! The queries behind `billrecon verify`. Each check query returns its breaks as rows of
//! (subject, expected, actual, currency); the checked-population query returns one count.

use super::{DbContext, StoreError};
use sqlx::{AnyConnection, Row};

/// A conservation check: what it proves, how many items it looked at, and the SQL of its
/// breaks.
pub struct CheckSql {
    pub name: &'static str,
    pub proves: &'static str,
    pub population: &'static str,
    pub breaks: &'static str,
}

const MATCHED: &str = "status NOT IN ('pending', 'not_booked')";
/// Statuses of lines that carry no money (see `payment_conservation`).
const NO_MONEY: &str = "'rejected', 'cancelled', 'confirmed', 'transfer'";

pub const CHECKS: &[CheckSql] = &[
    CheckSql {
        name: "payment_conservation",
        proves: "every payment's amount = applied + credit + refunded + held in exceptions + written off (a rejected duplicate, a cancelled pair, a file line confirming a real-time payment, a settlement transfer on the utility's own account: nothing)",
        population: "SELECT COUNT(*) FROM payments WHERE status NOT IN ('pending', 'not_booked')",
        breaks: "SELECT 'payment ' || CAST(id AS TEXT), CASE WHEN status IN ('rejected', 'cancelled', 'confirmed', 'transfer') THEN 0 ELSE amount_minor END, \
                 applied_minor + credit_minor + refunded_minor + held_minor + written_off_minor, currency \
                 FROM payments WHERE status NOT IN ('pending', 'not_booked') \
                 AND CASE WHEN status IN ('rejected', 'cancelled', 'confirmed', 'transfer') THEN 0 ELSE amount_minor END <> applied_minor + credit_minor + refunded_minor + held_minor + written_off_minor ORDER BY id",
    },
    CheckSql {
        name: "every_payment_matched",
        proves: "no booked payment is left unmatched (run `billrecon match`)",
        population: "SELECT COUNT(*) FROM payments WHERE status <> 'not_booked'",
        breaks: "SELECT 'payment ' || CAST(id AS TEXT), 0, amount_minor, currency FROM payments WHERE status = 'pending' ORDER BY id",
    },
    CheckSql {
        name: "applied_equals_allocations",
        proves: "what a payment says it applied equals its allocation rows",
        population: "SELECT COUNT(*) FROM payments",
        breaks: "SELECT 'payment ' || CAST(p.id AS TEXT), p.applied_minor, COALESCE(a.s, 0), p.currency FROM payments p \
                 LEFT JOIN (SELECT payment_id, CAST(SUM(amount_minor) AS BIGINT) AS s FROM allocations GROUP BY payment_id) a \
                 ON a.payment_id = p.id WHERE p.applied_minor <> COALESCE(a.s, 0) ORDER BY p.id",
    },
    CheckSql {
        name: "credit_equals_ledger",
        proves: "what a payment says it left as credit equals its customer-credit ledger rows",
        population: "SELECT COUNT(*) FROM payments",
        breaks: "SELECT 'payment ' || CAST(p.id AS TEXT), p.credit_minor, COALESCE(c.s, 0), p.currency FROM payments p \
                 LEFT JOIN (SELECT payment_id, CAST(SUM(amount_minor) AS BIGINT) AS s FROM credit_ledger GROUP BY payment_id) c \
                 ON c.payment_id = p.id WHERE p.credit_minor <> COALESCE(c.s, 0) ORDER BY p.id",
    },
    CheckSql {
        name: "held_equals_open_exceptions",
        proves: "what a payment holds equals its open exception",
        population: "SELECT COUNT(*) FROM payments",
        breaks: "SELECT 'payment ' || CAST(p.id AS TEXT), p.held_minor, COALESCE(e.s, 0), p.currency FROM payments p \
                 LEFT JOIN (SELECT payment_id, CAST(SUM(amount_minor) AS BIGINT) AS s FROM exceptions WHERE status = 'open' GROUP BY payment_id) e \
                 ON e.payment_id = p.id WHERE p.held_minor <> COALESCE(e.s, 0) ORDER BY p.id",
    },
    CheckSql {
        name: "bill_paid_equals_allocations",
        proves: "every bill's paid amount equals the allocations to its principal (amount = paid + balance)",
        population: "SELECT COUNT(*) FROM bills",
        breaks: "SELECT 'bill ' || b.bill_id, b.paid_minor, COALESCE(a.s, 0), b.currency FROM bills b \
                 LEFT JOIN (SELECT bill_id, CAST(SUM(amount_minor) AS BIGINT) AS s FROM allocations WHERE part = 'principal' GROUP BY bill_id) a \
                 ON a.bill_id = b.bill_id WHERE b.paid_minor <> COALESCE(a.s, 0) ORDER BY b.bill_id",
    },
    CheckSql {
        name: "bill_fee_paid_equals_allocations",
        proves: "every bill's late fee paid equals the allocations to its late fee",
        population: "SELECT COUNT(*) FROM bills",
        breaks: "SELECT 'bill ' || b.bill_id, b.fee_paid_minor, COALESCE(a.s, 0), b.currency FROM bills b \
                 LEFT JOIN (SELECT bill_id, CAST(SUM(amount_minor) AS BIGINT) AS s FROM allocations WHERE part = 'late_fee' GROUP BY bill_id) a \
                 ON a.bill_id = b.bill_id WHERE b.fee_paid_minor <> COALESCE(a.s, 0) ORDER BY b.bill_id",
    },
    CheckSql {
        name: "bill_fees_equal_late_fee_rows",
        proves: "every bill's late fee accrued, charged and waived equal its rows of the late-fee ledger",
        population: "SELECT COUNT(*) FROM bills",
        breaks: "SELECT 'bill ' || b.bill_id || CASE WHEN b.fee_charged_minor <> COALESCE(l.charged, 0) THEN ' (charged)' \
                 WHEN b.fee_accrued_minor <> COALESCE(l.accrued, 0) THEN ' (accrued)' ELSE ' (waived)' END, \
                 CASE WHEN b.fee_charged_minor <> COALESCE(l.charged, 0) THEN b.fee_charged_minor \
                 WHEN b.fee_accrued_minor <> COALESCE(l.accrued, 0) THEN b.fee_accrued_minor ELSE b.fee_waived_minor END, \
                 CASE WHEN b.fee_charged_minor <> COALESCE(l.charged, 0) THEN COALESCE(l.charged, 0) \
                 WHEN b.fee_accrued_minor <> COALESCE(l.accrued, 0) THEN COALESCE(l.accrued, 0) ELSE COALESCE(l.waived, 0) END, \
                 b.currency FROM bills b LEFT JOIN ( \
                 SELECT bill_id, CAST(SUM(CASE WHEN kind IN ('charge', 'undo') THEN amount_minor ELSE 0 END) AS BIGINT) AS charged, \
                 CAST(SUM(CASE WHEN kind IN ('charge', 'undo') THEN computed_minor ELSE 0 END) AS BIGINT) AS accrued, \
                 CAST(-SUM(CASE WHEN kind IN ('waiver', 'waiver_undo') THEN amount_minor ELSE 0 END) AS BIGINT) AS waived \
                 FROM late_fees GROUP BY bill_id) l ON l.bill_id = b.bill_id \
                 WHERE b.fee_charged_minor <> COALESCE(l.charged, 0) OR b.fee_accrued_minor <> COALESCE(l.accrued, 0) \
                 OR b.fee_waived_minor <> COALESCE(l.waived, 0) ORDER BY b.bill_id",
    },
    CheckSql {
        name: "late_fee_minimum_applied",
        proves: "a bill's late-fee charges add up to what they computed, lifted to the minimum (a total under it charged as it)",
        population: "SELECT COUNT(DISTINCT bill_id) FROM late_fees WHERE kind IN ('charge', 'undo')",
        breaks: "SELECT 'bill ' || l.bill_id, CASE WHEN SUM(l.computed_minor) <= 0 THEN 0 \
                 WHEN SUM(l.computed_minor) < MAX(m.minimum_minor) THEN MAX(m.minimum_minor) ELSE SUM(l.computed_minor) END, \
                 CAST(SUM(l.amount_minor) AS BIGINT), MIN(l.currency) \
                 FROM late_fees l \
                 JOIN (SELECT bill_id, MAX(id) AS last FROM late_fees WHERE kind IN ('charge', 'undo') GROUP BY bill_id) x ON x.bill_id = l.bill_id \
                 JOIN late_fees m ON m.id = x.last \
                 WHERE l.kind IN ('charge', 'undo') GROUP BY l.bill_id \
                 HAVING CASE WHEN SUM(l.computed_minor) <= 0 THEN 0 \
                 WHEN SUM(l.computed_minor) < MAX(m.minimum_minor) THEN MAX(m.minimum_minor) ELSE SUM(l.computed_minor) END <> SUM(l.amount_minor) ORDER BY l.bill_id",
    },
    CheckSql {
        name: "late_fee_never_over_allocated",
        proves: "a bill's late-fee payments never exceed what was charged and not waived, nor go below zero; waivers never exceed charges",
        population: "SELECT COUNT(*) FROM bills",
        breaks: "SELECT 'bill ' || bill_id, fee_charged_minor - fee_waived_minor, fee_paid_minor, currency FROM bills \
                 WHERE fee_paid_minor < 0 OR fee_paid_minor > fee_charged_minor - fee_waived_minor \
                 OR fee_waived_minor < 0 OR fee_waived_minor > fee_charged_minor ORDER BY bill_id",
    },
    CheckSql {
        name: "no_money_on_cancelled_bills",
        proves: "a cancelled bill holds no money (its payments moved to other bills or credit)",
        population: "SELECT COUNT(*) FROM bills WHERE status = 'cancelled'",
        breaks: "SELECT 'bill ' || bill_id, 0, paid_minor + fee_paid_minor, currency FROM bills \
                 WHERE status = 'cancelled' AND (paid_minor <> 0 OR fee_paid_minor <> 0) ORDER BY bill_id",
    },
    CheckSql {
        name: "bill_never_over_allocated",
        proves: "allocations never exceed a bill, nor go below zero",
        population: "SELECT COUNT(*) FROM bills",
        breaks: "SELECT 'bill ' || bill_id, amount_minor, paid_minor, currency FROM bills \
                 WHERE paid_minor > amount_minor OR paid_minor < 0 ORDER BY bill_id",
    },
    CheckSql {
        name: "bill_status_consistent",
        proves: "a bill is `paid` exactly when nothing is left to pay (unless cancelled)",
        population: "SELECT COUNT(*) FROM bills",
        breaks: "SELECT 'bill ' || bill_id || ' (' || status || ')', amount_minor, paid_minor, currency FROM bills \
                 WHERE (status = 'paid' AND paid_minor < amount_minor) OR (status = 'open' AND paid_minor >= amount_minor) ORDER BY bill_id",
    },
    CheckSql {
        name: "allocation_matches_bill",
        proves: "every allocation goes to a bill of the same account and currency",
        population: "SELECT COUNT(*) FROM allocations",
        breaks: "SELECT 'allocation ' || CAST(a.id AS TEXT) || ' to bill ' || a.bill_id, 0, a.amount_minor, a.currency \
                 FROM allocations a JOIN bills b ON b.bill_id = a.bill_id \
                 WHERE a.account_no <> b.account_no OR a.currency <> b.currency ORDER BY a.id",
    },
    CheckSql {
        name: "no_transaction_counted_twice",
        proves: "no bank transaction (bank + dedupe key) carries money more than once",
        population: "SELECT COUNT(*) FROM payments WHERE txn_key IS NOT NULL",
        breaks: "SELECT bank_id || ' ' || txn_key, 1, COUNT(*), MIN(currency) FROM payments \
                 WHERE txn_key IS NOT NULL AND status IN ('applied', 'partially_applied', 'credit', 'reversed') \
                 GROUP BY bank_id, txn_key HAVING COUNT(*) > 1 ORDER BY 1",
    },
    CheckSql {
        name: "reversals_undo_exactly",
        proves: "every reversed payment is undone by exactly one reversal of the same applied and credit amounts",
        population: "SELECT COUNT(*) FROM payments WHERE status = 'reversed' AND reversal = 0",
        breaks: "SELECT 'payment ' || CAST(o.id AS TEXT), o.applied_minor + o.credit_minor, -COALESCE(r.applied_minor + r.credit_minor, 0), o.currency \
                 FROM payments o LEFT JOIN payments r ON r.id = o.reversed_by_payment_id \
                 WHERE o.status = 'reversed' AND o.reversal = 0 AND (r.id IS NULL OR r.reverses_payment_id <> o.id \
                 OR r.applied_minor <> -o.applied_minor OR r.credit_minor <> -o.credit_minor) ORDER BY o.id",
    },
    CheckSql {
        name: "credit_balances_not_negative",
        proves: "no customer's credit balance is negative",
        population: "SELECT COUNT(DISTINCT account_no) FROM credit_ledger",
        breaks: "SELECT 'account ' || account_no, 0, CAST(SUM(amount_minor) AS BIGINT), currency FROM credit_ledger \
                 GROUP BY account_no, currency HAVING SUM(amount_minor) < 0 ORDER BY account_no",
    },
];

/// One break: (subject, expected, actual, currency).
pub type BreakRow = (String, i64, i64, String);

pub async fn population(conn: &mut AnyConnection, sql: &str) -> Result<i64, StoreError> {
    sqlx::query(sql)
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("verifying")
}

pub async fn breaks(
    conn: &mut AnyConnection,
    sql: &str,
    limit: i64,
) -> Result<(Vec<BreakRow>, i64), StoreError> {
    let rows = sqlx::query(sql)
        .fetch_all(&mut *conn)
        .await
        .op("verifying")?;
    let total = rows.len() as i64;
    let mut out = Vec::new();
    for r in rows.iter().take(limit as usize) {
        out.push((
            r.try_get(0).op("verifying")?,
            r.try_get(1).op("verifying")?,
            r.try_get(2).op("verifying")?,
            r.try_get(3).op("verifying")?,
        ));
    }
    Ok((out, total))
}

/// Per statement: what it declares and what its stored lines add up to.
#[derive(Debug, Clone)]
pub struct StatementTotalsRow {
    pub statement_row: i64,
    pub file_id: i64,
    pub file_name: String,
    pub statement_id: Option<String>,
    pub currency: String,
    pub declared: [Option<i64>; 7],
    /// entries, sum of absolute amounts, net, credit count, credit sum, debit count, debit sum
    pub actual: [i64; 7],
}

pub async fn statement_totals(
    conn: &mut AnyConnection,
) -> Result<Vec<StatementTotalsRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.id, s.file_id, f.file_name, s.statement_id, COALESCE(s.currency, MIN(e.currency), ''), \
         s.declared_entries, s.declared_sum_minor, s.declared_net_minor, s.declared_credit_count, \
         s.declared_credit_minor, s.declared_debit_count, s.declared_debit_minor, \
         COUNT(e.entry_seq), \
         CAST(COALESCE(SUM(CASE WHEN e.amt < 0 THEN -e.amt ELSE e.amt END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(e.amt), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN e.dir = 'credit' THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN e.dir = 'credit' THEN e.amt ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN e.dir = 'debit' THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN e.dir = 'debit' THEN -e.amt ELSE 0 END), 0) AS BIGINT) \
         FROM statements s JOIN bank_files f ON f.id = s.file_id \
         LEFT JOIN (SELECT statement_row, entry_seq, CAST(SUM(amount_minor) AS BIGINT) AS amt, MIN(direction) AS dir, MIN(currency) AS currency \
                    FROM payments GROUP BY statement_row, entry_seq) e ON e.statement_row = s.id \
         GROUP BY s.id, s.file_id, f.file_name, s.statement_id, s.currency, s.declared_entries, s.declared_sum_minor, \
         s.declared_net_minor, s.declared_credit_count, s.declared_credit_minor, s.declared_debit_count, s.declared_debit_minor \
         ORDER BY s.id",
    )
    .fetch_all(&mut *conn)
    .await
    .op("verifying file totals")?;
    rows.iter()
        .map(|r| {
            Ok(StatementTotalsRow {
                statement_row: r.try_get(0)?,
                file_id: r.try_get(1)?,
                file_name: r.try_get(2)?,
                statement_id: r.try_get(3)?,
                currency: r.try_get(4)?,
                declared: [
                    r.try_get(5)?,
                    r.try_get(6)?,
                    r.try_get(7)?,
                    r.try_get(8)?,
                    r.try_get(9)?,
                    r.try_get(10)?,
                    r.try_get(11)?,
                ],
                actual: [
                    r.try_get(12)?,
                    r.try_get(13)?,
                    r.try_get(14)?,
                    r.try_get(15)?,
                    r.try_get(16)?,
                    r.try_get(17)?,
                    r.try_get(18)?,
                ],
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("verifying file totals")
}

/// Grand totals per currency over matched payments:
/// (currency, payments, amount, applied, credit, refunded, held).
/// Per currency: payments counted, then [amount carrying money, applied, credit, refunded,
/// held, written off, amount of the lines that carry none (rejected duplicates, cancelled
/// pairs, lines confirming real-time payments, own-account transfers)].
pub async fn grand_totals(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, i64, [i64; 7])>, StoreError> {
    let sql = format!(
        "SELECT currency, COUNT(*), \
         CAST(SUM(CASE WHEN status IN ({NO_MONEY}) THEN 0 ELSE amount_minor END) AS BIGINT), \
         CAST(SUM(applied_minor) AS BIGINT), CAST(SUM(credit_minor) AS BIGINT), \
         CAST(SUM(refunded_minor) AS BIGINT), CAST(SUM(held_minor) AS BIGINT), \
         CAST(SUM(written_off_minor) AS BIGINT), \
         CAST(SUM(CASE WHEN status IN ({NO_MONEY}) THEN amount_minor ELSE 0 END) AS BIGINT) \
         FROM payments WHERE {MATCHED} GROUP BY currency ORDER BY currency"
    );
    let rows = sqlx::query(&sql)
        .fetch_all(&mut *conn)
        .await
        .op("verifying totals")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                [
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                    r.try_get(6)?,
                    r.try_get(7)?,
                    r.try_get(8)?,
                ],
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("verifying totals")
}

/// A row of the late-fee ledger, with the day its payment's money arrived: what `verify`
/// recomputes.
#[derive(Debug, Clone)]
pub struct LateFeeRow {
    pub id: i64,
    pub bill_id: String,
    pub kind: String,
    pub payment_id: Option<i64>,
    pub currency: String,
    pub due_on: String,
    pub from_on: String,
    pub to_on: String,
    pub days: i64,
    pub rate: String,
    pub base_minor: i64,
    pub computed_minor: i64,
    /// the payment's value date, else its booking date
    pub paid_on: String,
}

/// Every charge and undo row of the late-fee ledger, in id order.
pub async fn late_fee_rows(conn: &mut AnyConnection) -> Result<Vec<LateFeeRow>, StoreError> {
    let rows = super::fetch_packed(
        conn,
        &[
            "l.id",
            "l.bill_id",
            "l.kind",
            "l.payment_id",
            "l.currency",
            "l.due_on",
            "l.from_on",
            "l.to_on",
            "l.days",
            "l.rate",
            "l.base_minor",
            "l.computed_minor",
            "COALESCE(p.value_date, p.booking_date)",
        ],
        "late_fees l LEFT JOIN payments p ON p.id = l.payment_id WHERE l.kind IN ('charge', 'undo')",
        "l.id",
        vec![],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LateFeeRow {
            id: super::num(&r, 0),
            bill_id: super::cell(&r, 1).unwrap_or_default(),
            kind: super::cell(&r, 2).unwrap_or_default(),
            payment_id: super::cell(&r, 3).and_then(|v| v.parse().ok()),
            currency: super::cell(&r, 4).unwrap_or_default(),
            due_on: super::cell(&r, 5).unwrap_or_default(),
            from_on: super::cell(&r, 6).unwrap_or_default(),
            to_on: super::cell(&r, 7).unwrap_or_default(),
            days: super::num(&r, 8),
            rate: super::cell(&r, 9).unwrap_or_default(),
            base_minor: super::num(&r, 10),
            computed_minor: super::num(&r, 11),
            paid_on: super::cell(&r, 12).unwrap_or_default(),
        })
        .collect())
}

/// Per currency: money allocated to principal and to late fees, and the late fee charged,
/// waived and paid on bills: (currency, [principal, fees, charged, waived, paid]).
pub async fn fee_totals(conn: &mut AnyConnection) -> Result<Vec<(String, [i64; 5])>, StoreError> {
    let mut out: Vec<(String, [i64; 5])> = Vec::new();
    let rows = sqlx::query(
        "SELECT currency, CAST(SUM(CASE WHEN part = 'principal' THEN amount_minor ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN part = 'late_fee' THEN amount_minor ELSE 0 END) AS BIGINT) \
         FROM allocations GROUP BY currency",
    )
    .fetch_all(&mut *conn)
    .await
    .op("verifying totals")?;
    for r in &rows {
        let cur: String = r.try_get(0).op("verifying totals")?;
        out.push((
            cur,
            [
                r.try_get(1).op("verifying totals")?,
                r.try_get(2).op("verifying totals")?,
                0,
                0,
                0,
            ],
        ));
    }
    let rows = sqlx::query(
        "SELECT currency, CAST(SUM(fee_charged_minor) AS BIGINT), CAST(SUM(fee_waived_minor) AS BIGINT), \
         CAST(SUM(fee_paid_minor) AS BIGINT) FROM bills GROUP BY currency",
    )
    .fetch_all(&mut *conn)
    .await
    .op("verifying totals")?;
    for r in &rows {
        let cur: String = r.try_get(0).op("verifying totals")?;
        let v: [i64; 3] = [
            r.try_get(1).op("verifying totals")?,
            r.try_get(2).op("verifying totals")?,
            r.try_get(3).op("verifying totals")?,
        ];
        match out.iter_mut().find(|o| o.0 == cur) {
            Some(o) => o.1[2..].copy_from_slice(&v),
            None => out.push((cur, [0, 0, v[0], v[1], v[2]])),
        }
    }
    Ok(out)
}
