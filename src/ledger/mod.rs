//! The ledger's proof: `billrecon verify` shows that the money adds up.
//!
//! Every check states what it proves, how many items it looked at, and lists each break with
//! the ids needed to find it. The run fails if any check has a break.

use crate::domain::money_text;
use crate::store::ledger::{self as q, CHECKS};
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::fmt;

/// Breaks listed per check (the count is always complete).
const LISTED: i64 = 20;

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub proves: &'static str,
    pub checked: i64,
    pub break_count: i64,
    pub breaks: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CurrencyTotals {
    pub currency: String,
    pub payments: i64,
    pub amount: String,
    pub applied: String,
    pub credit: String,
    pub refunded: String,
    pub held: String,
    pub written_off: String,
    /// the amount of lines that carry no money (rejected duplicates, cancelled pairs, lines
    /// confirming real-time payments, own-account transfers): not in `amount`
    pub carrying_none: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub checks: Vec<CheckResult>,
    pub totals: Vec<CurrencyTotals>,
}

/// Runs every check.
pub async fn verify(store: &Store) -> Result<VerifyReport, StoreError> {
    let mut conn = store
        .pool()
        .acquire()
        .await
        .map_err(|source| StoreError::Db {
            op: "connecting",
            source,
        })?;
    let mut checks = Vec::new();
    for c in CHECKS {
        let checked = q::population(&mut conn, c.population).await?;
        let (rows, total) = q::breaks(&mut conn, c.breaks, LISTED).await?;
        let breaks = rows
            .into_iter()
            .map(|(subject, expected, actual, cur)| {
                describe(c.name, &subject, expected, actual, &cur)
            })
            .collect();
        checks.push(CheckResult {
            name: c.name,
            proves: c.proves,
            checked,
            break_count: total,
            breaks,
        });
    }
    checks.push(file_totals(&mut conn).await?);
    let totals = q::grand_totals(&mut conn)
        .await?
        .into_iter()
        .map(
            |(cur, n, [amount, applied, credit, refunded, held, written_off, no_money])| {
                CurrencyTotals {
                    payments: n,
                    amount: money_text(amount, &cur),
                    applied: money_text(applied, &cur),
                    credit: money_text(credit, &cur),
                    refunded: money_text(refunded, &cur),
                    held: money_text(held, &cur),
                    written_off: money_text(written_off, &cur),
                    carrying_none: money_text(no_money, &cur),
                    currency: cur,
                }
            },
        )
        .collect();
    Ok(VerifyReport {
        ok: checks.iter().all(|c| c.break_count == 0),
        checks,
        totals,
    })
}

fn describe(check: &str, subject: &str, expected: i64, actual: i64, cur: &str) -> String {
    let m = |v| money_text(v, cur);
    match check {
        "payment_conservation" => format!(
            "{subject}: amount {} {cur} but applied + credit + refunded + held = {}",
            m(expected),
            m(actual)
        ),
        "every_payment_matched" => format!("{subject}: {} {cur} not matched yet", m(actual)),
        "bill_never_over_allocated" => format!(
            "{subject}: amount {} {cur} but {} allocated",
            m(expected),
            m(actual)
        ),
        "bill_status_consistent" => format!(
            "{subject}: amount {} {cur}, paid {}",
            m(expected),
            m(actual)
        ),
        "allocation_matches_bill" => {
            format!("{subject}: account or currency differs from the bill's")
        }
        "no_transaction_counted_twice" => {
            format!("{subject}: carries money in {actual} payments")
        }
        "credit_balances_not_negative" => format!("{subject}: credit balance {} {cur}", m(actual)),
        _ => format!(
            "{subject}: {} {cur} recorded but {} in the ledger",
            m(expected),
            m(actual)
        ),
    }
}

async fn file_totals(conn: &mut sqlx::AnyConnection) -> Result<CheckResult, StoreError> {
    const NAMES: [&str; 7] = [
        "entry count",
        "sum",
        "net",
        "credit count",
        "credit sum",
        "debit count",
        "debit sum",
    ];
    let rows = q::statement_totals(conn).await?;
    let mut breaks = Vec::new();
    for s in &rows {
        for (i, name) in NAMES.iter().enumerate() {
            if let Some(d) = s.declared[i] {
                if d != s.actual[i] {
                    let is_count = matches!(i, 0 | 3 | 5);
                    let show = |v: i64| {
                        if is_count {
                            v.to_string()
                        } else {
                            money_text(v, &s.currency)
                        }
                    };
                    breaks.push(format!(
                        "file {} ({}) statement {}: declared {} {} but stored lines give {}",
                        s.file_id,
                        s.file_name,
                        s.statement_id.as_deref().unwrap_or("?"),
                        name,
                        show(d),
                        show(s.actual[i])
                    ));
                }
            }
        }
    }
    let count = breaks.len() as i64;
    breaks.truncate(LISTED as usize);
    Ok(CheckResult {
        name: "file_totals_match_declared",
        proves: "each statement's stored lines add up to the totals the file declares",
        checked: rows.len() as i64,
        break_count: count,
        breaks,
    })
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            let mark = if c.break_count == 0 { "ok  " } else { "FAIL" };
            writeln!(
                f,
                "{mark} {:<30} {} ({} checked)",
                c.name, c.proves, c.checked
            )?;
            for b in &c.breaks {
                writeln!(f, "       break: {b}")?;
            }
            if c.break_count > c.breaks.len() as i64 {
                writeln!(
                    f,
                    "       ... and {} more",
                    c.break_count - c.breaks.len() as i64
                )?;
            }
        }
        for t in &self.totals {
            writeln!(
                f,
                "totals {}: {} payments, amount {} = applied {} + credit {} + refunded {} + held {} + written off {} (lines carrying no money: {})",
                t.currency,
                t.payments,
                t.amount,
                t.applied,
                t.credit,
                t.refunded,
                t.held,
                t.written_off,
                t.carrying_none
            )?;
        }
        let failed = self.checks.iter().filter(|c| c.break_count > 0).count();
        if self.ok {
            write!(
                f,
                "verify: OK, the money adds up ({} checks)",
                self.checks.len()
            )
        } else {
            write!(
                f,
                "verify: FAILED, {failed} of {} checks have breaks",
                self.checks.len()
            )
        }
    }
}
