//! Customers, over the bills issued in the 365 days up to a day:
//! - [`key_customers`]: the customers who together make up 80 % of the billed amount (Pareto),
//!   largest first, with their arrears and how they pay;
//! - [`payment_behaviour`]: per customer, the share of bills paid by their due date, the
//!   average days late, payments reversed (returned direct debits among them), and a risk flag
//!   (`high`, `medium`, `low`) that dunning can use to start earlier.
//!
//! As of the date: the bills issued in the window, the payments booked on or before the date
//! (a payment counts on its booking day), the reversals booked in the window. A bill counts as
//! paid on the booking date of the payment that completed it; a bill not paid by the date and
//! past its due date counts as late by the days it has been overdue; what is outstanding is
//! the bills' amount less what was paid by the date.

use crate::domain::money_text;
use crate::store::{self, DbContext, Store, StoreError};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};

pub const WINDOW_DAYS: i64 = 365;

pub const BEHAVIOUR_COLUMNS: &[&str] = &[
    "date",
    "account_no",
    "name",
    "bills",
    "on_time",
    "late",
    "on_time_rate_pct",
    "avg_days_late",
    "reversed_payments",
    "risk",
];

pub const KEY_COLUMNS: &[&str] = &[
    "date",
    "rank",
    "account_no",
    "name",
    "class",
    "manager",
    "currency",
    "billed",
    "share_pct",
    "cumulative_pct",
    "outstanding",
    "on_time_rate_pct",
    "risk",
];

/// How one customer paid.
#[derive(Debug, Default, Clone)]
pub struct Behaviour {
    pub name: String,
    pub class: String,
    pub manager: Option<String>,
    pub currency: String,
    pub billed: i64,
    pub outstanding: i64,
    /// Bills whose payment was due by the day (paid, or open and overdue).
    pub due_bills: i64,
    pub on_time: i64,
    pub late: i64,
    pub days_late: i64,
    pub reversed: i64,
}

impl Behaviour {
    pub fn on_time_rate(&self) -> Option<Decimal> {
        (self.due_bills > 0).then(|| {
            (Decimal::from(self.on_time) * Decimal::from(100) / Decimal::from(self.due_bills))
                .round_dp(2)
        })
    }

    pub fn avg_days_late(&self) -> Option<Decimal> {
        (self.late > 0)
            .then(|| (Decimal::from(self.days_late) / Decimal::from(self.late)).round_dp(1))
    }

    /// `high`: fewer than half the bills on time, a month late on average, or two payments
    /// reversed; `medium`: fewer than 80 % on time or one reversal; else `low`.
    pub fn risk(&self) -> &'static str {
        let rate = self.on_time_rate().unwrap_or(Decimal::from(100));
        let avg = self.avg_days_late().unwrap_or_default();
        if rate < Decimal::from(50) || avg > Decimal::from(30) || self.reversed >= 2 {
            "high"
        } else if rate < Decimal::from(80) || self.reversed == 1 {
            "medium"
        } else {
            "low"
        }
    }
}

/// Every customer billed in the window, by account.
pub async fn behaviours(
    store: &Store,
    date: NaiveDate,
) -> Result<BTreeMap<String, Behaviour>, StoreError> {
    let from = date - chrono::Duration::days(WINDOW_DAYS - 1);
    let (from_s, to_s) = (
        from.format("%Y-%m-%d").to_string(),
        date.format("%Y-%m-%d").to_string(),
    );
    let mut conn = store.pool().acquire().await.op("connecting")?;
    let bills = store::reports::issued_bills(&mut conn, &from_s, &to_s).await?;
    let mut allocs = store::reports::allocations_by_payment(&mut conn, &from_s, &to_s).await?;
    allocs.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
    let reversed: HashMap<String, i64> =
        store::reports::reversals_by_account(&mut conn, &from_s, &to_s)
            .await?
            .into_iter()
            .collect();
    // the day each bill was completed: allocations in booking order until the amount is met
    let amounts: HashMap<&str, i64> = bills
        .iter()
        .map(|b| (b.bill_id.as_str(), b.amount_minor))
        .collect();
    let mut paid_on: HashMap<String, String> = HashMap::new();
    let mut running: HashMap<&str, i64> = HashMap::new();
    let mut paid_by_then: HashMap<&str, i64> = HashMap::new();
    for (bill, _, booked, amount, _) in &allocs {
        let Some(total) = amounts.get(bill.as_str()) else {
            continue;
        };
        *paid_by_then.entry(bill.as_str()).or_default() += amount;
        let r = running.entry(bill.as_str()).or_default();
        *r += amount;
        if *r >= *total {
            paid_on
                .entry(bill.clone())
                .or_insert_with(|| booked.clone());
        } else {
            paid_on.remove(bill);
        }
    }
    let mut out: BTreeMap<String, Behaviour> = BTreeMap::new();
    for b in &bills {
        let e = out.entry(b.account_no.clone()).or_default();
        e.name = b.name.clone();
        e.class = b.class.clone();
        e.manager = b.manager.clone();
        e.currency = b.currency.clone();
        e.billed += b.amount_minor;
        let owed = b.amount_minor - paid_by_then.get(b.bill_id.as_str()).copied().unwrap_or(0);
        e.outstanding += owed.max(0);
        let Ok(due) = NaiveDate::parse_from_str(&b.due_on, "%Y-%m-%d") else {
            continue;
        };
        let settled = paid_on
            .get(&b.bill_id)
            .filter(|_| owed <= 0)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let late_by = match settled {
            Some(p) => Some((p - due).num_days()),
            None if owed > 0 && date > due => Some((date - due).num_days()),
            None => None,
        };
        if let Some(days) = late_by {
            e.due_bills += 1;
            if days <= 0 {
                e.on_time += 1;
            } else {
                e.late += 1;
                e.days_late += days;
            }
        }
    }
    for (account, n) in reversed {
        if let Some(e) = out.get_mut(&account) {
            e.reversed = n;
        }
    }
    Ok(out)
}

pub async fn payment_behaviour(
    store: &Store,
    date: NaiveDate,
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    let day = date.format("%Y-%m-%d").to_string();
    Ok(behaviours(store, date)
        .await?
        .into_iter()
        .map(|(account, b)| {
            vec![
                Some(day.clone()),
                Some(account),
                Some(b.name.clone()),
                Some(b.due_bills.to_string()),
                Some(b.on_time.to_string()),
                Some(b.late.to_string()),
                b.on_time_rate().map(|r| format!("{r:.2}")),
                b.avg_days_late().map(|r| format!("{r:.1}")),
                Some(b.reversed.to_string()),
                Some(b.risk().to_string()),
            ]
        })
        .collect())
}

/// The customers making up 80 % of the billed amount, largest first (per currency).
pub async fn key_customers(
    store: &Store,
    date: NaiveDate,
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    let day = date.format("%Y-%m-%d").to_string();
    let all = behaviours(store, date).await?;
    let mut by_ccy: BTreeMap<String, Vec<(&String, &Behaviour)>> = BTreeMap::new();
    for (a, b) in &all {
        by_ccy.entry(b.currency.clone()).or_default().push((a, b));
    }
    let mut out = Vec::new();
    for (ccy, mut list) in by_ccy {
        list.sort_by(|x, y| y.1.billed.cmp(&x.1.billed).then(x.0.cmp(y.0)));
        let total: i64 = list.iter().map(|(_, b)| b.billed).sum();
        if total <= 0 {
            continue;
        }
        let mut cumulative = 0i64;
        for (rank, (account, b)) in list.into_iter().enumerate() {
            // stop once the customers listed already make up 80 %
            if Decimal::from(cumulative) * Decimal::from(100)
                >= Decimal::from(total) * Decimal::from(80)
            {
                break;
            }
            cumulative += b.billed;
            let pct = |v: i64| {
                format!(
                    "{:.2}",
                    (Decimal::from(v) * Decimal::from(100) / Decimal::from(total)).round_dp(2)
                )
            };
            out.push(vec![
                Some(day.clone()),
                Some((rank + 1).to_string()),
                Some(account.clone()),
                Some(b.name.clone()),
                Some(b.class.clone()),
                b.manager.clone(),
                Some(ccy.clone()),
                Some(money_text(b.billed, &ccy)),
                Some(pct(b.billed)),
                Some(pct(cumulative)),
                Some(money_text(b.outstanding, &ccy)),
                b.on_time_rate().map(|r| format!("{r:.2}")),
                Some(b.risk().to_string()),
            ]);
        }
    }
    Ok(out)
}
