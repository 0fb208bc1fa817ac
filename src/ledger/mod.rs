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
    /// `applied` split: to bills' principal, and to their late fees
    pub applied_principal: String,
    pub applied_late_fees: String,
    /// the late fees on bills: charged, waived, paid (collected) and still outstanding
    pub late_fees_charged: String,
    pub late_fees_waived: String,
    pub late_fees_collected: String,
    pub late_fees_outstanding: String,
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
    checks.push(late_fee_rule(&mut conn).await?);
    let fees = q::fee_totals(&mut conn).await?;
    let totals = q::grand_totals(&mut conn)
        .await?
        .into_iter()
        .map(
            |(cur, n, [amount, applied, credit, refunded, held, written_off, no_money])| {
                let [principal, fee_alloc, charged, waived, paid] = fees
                    .iter()
                    .find(|f| f.0 == cur)
                    .map(|f| f.1)
                    .unwrap_or_default();
                CurrencyTotals {
                    payments: n,
                    amount: money_text(amount, &cur),
                    applied: money_text(applied, &cur),
                    credit: money_text(credit, &cur),
                    refunded: money_text(refunded, &cur),
                    held: money_text(held, &cur),
                    written_off: money_text(written_off, &cur),
                    carrying_none: money_text(no_money, &cur),
                    applied_principal: money_text(principal, &cur),
                    applied_late_fees: money_text(fee_alloc, &cur),
                    late_fees_charged: money_text(charged, &cur),
                    late_fees_waived: money_text(waived, &cur),
                    late_fees_collected: money_text(paid, &cur),
                    late_fees_outstanding: money_text(charged - waived - paid, &cur),
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
        "bill_fee_paid_equals_allocations" => format!(
            "{subject}: late fee paid {} {cur} recorded but {} allocated",
            m(expected),
            m(actual)
        ),
        "bill_fees_equal_late_fee_rows" => format!(
            "{subject}: {} {cur} recorded but {} in the late-fee ledger",
            m(expected),
            m(actual)
        ),
        "late_fee_minimum_applied" => format!(
            "{subject}: its charges should add up to {} {cur} but add up to {}",
            m(expected),
            m(actual)
        ),
        "late_fee_never_over_allocated" => format!(
            "{subject}: late fee charged and not waived {} {cur}, but {} paid (or waived more than charged)",
            m(expected),
            m(actual)
        ),
        "no_money_on_cancelled_bills" => {
            format!("{subject}: cancelled, but holds {} {cur}", m(actual))
        }
        _ => format!(
            "{subject}: {} {cur} recorded but {} in the ledger",
            m(expected),
            m(actual)
        ),
    }
}

/// Recomputes every late-fee charge (and its undo) from its own base, days and rate: the
/// days are the late days from the day after the due date to the day its payment's money
/// arrived, split at the due date's year end, and the amount is base x rate x days rounded
/// half away from zero; an undo mirrors a charge of the same payment and bill.
async fn late_fee_rule(conn: &mut sqlx::AnyConnection) -> Result<CheckResult, StoreError> {
    use crate::domain::late_fee::accrual;
    use chrono::{Datelike, NaiveDate};
    use std::collections::HashMap;
    let rows = q::late_fee_rows(conn).await?;
    let date = |s: &str| {
        s.get(..10)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    let mut breaks = Vec::new();
    // standing charges by (payment, bill, from, to, rate, base)
    type ChargeKey = (Option<i64>, String, String, String, String, i64);
    let mut standing: HashMap<ChargeKey, i64> = HashMap::new();
    for r in &rows {
        let m = |v: i64| money_text(v, &r.currency);
        let rate: Option<rust_decimal::Decimal> = r.rate.parse().ok();
        let (due, from, to) = (date(&r.due_on), date(&r.from_on), date(&r.to_on));
        let why = match (rate, due, from, to) {
            (Some(rate), Some(due), Some(from), Some(to)) => {
                let sign = if r.kind == "undo" { -1 } else { 1 };
                let year_end = NaiveDate::from_ymd_opt(due.year(), 12, 31);
                if from <= due {
                    Some(format!(
                        "its first late day {from} is not after the due date {due}"
                    ))
                } else if (to - from).num_days() + 1 != r.days || r.days <= 0 {
                    Some(format!("{} days counted from {from} to {to}", r.days))
                } else if year_end.is_some_and(|y| from <= y && to > y) {
                    Some(format!(
                        "its days {from} to {to} cross the due date's year end: two rates apply"
                    ))
                } else if r.kind == "charge"
                    && date(&r.paid_on)
                        .is_some_and(|p| p != to && !(Some(to) == year_end && p > to))
                {
                    Some(format!(
                        "counted to {to}, but the payment's money arrived on {}",
                        r.paid_on
                    ))
                } else if r.base_minor <= 0 {
                    Some(format!("base {} is not above zero", m(r.base_minor)))
                } else if sign * accrual(r.base_minor, rate, r.days) != r.computed_minor {
                    Some(format!(
                        "{} x {rate} x {} days = {} {}, but {} recorded",
                        m(r.base_minor),
                        r.days,
                        m(sign * accrual(r.base_minor, rate, r.days)),
                        r.currency,
                        m(r.computed_minor)
                    ))
                } else {
                    None
                }
            }
            _ => Some(format!(
                "unreadable rate `{}` or dates `{}`/`{}`/`{}`",
                r.rate, r.due_on, r.from_on, r.to_on
            )),
        };
        let key = (
            r.payment_id,
            r.bill_id.clone(),
            r.from_on.clone(),
            r.to_on.clone(),
            r.rate.clone(),
            r.base_minor,
        );
        let why = why.or_else(|| {
            let n = standing.entry(key).or_default();
            if r.kind == "undo" {
                if *n == 0 {
                    return Some("undoes no charge of its payment on this bill".to_string());
                }
                *n -= 1;
            } else {
                *n += 1;
            }
            None
        });
        if let Some(why) = why {
            breaks.push(format!(
                "late fee {} ({}) of bill {} for payment {}: {why}",
                r.id,
                r.kind,
                r.bill_id,
                r.payment_id.map(|p| p.to_string()).unwrap_or_default()
            ));
        }
    }
    let count = breaks.len() as i64;
    breaks.truncate(LISTED as usize);
    Ok(CheckResult {
        name: "late_fees_follow_the_rule",
        proves: "every late-fee charge equals base x rate x its late days (from the day after the due date to the day the money arrived, split at the year end), and every undo mirrors a charge",
        checked: rows.len() as i64,
        break_count: count,
        breaks,
    })
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
                "totals {}: {} payments, amount {} = applied {} (principal {} + late fees {}) + credit {} + refunded {} + held {} + written off {} (lines carrying no money: {}); late fees charged {}, collected {}, waived {}, outstanding {}",
                t.currency,
                t.payments,
                t.amount,
                t.applied,
                t.applied_principal,
                t.applied_late_fees,
                t.credit,
                t.refunded,
                t.held,
                t.written_off,
                t.carrying_none,
                t.late_fees_charged,
                t.late_fees_collected,
                t.late_fees_waived,
                t.late_fees_outstanding
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
