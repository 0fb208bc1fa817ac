//! Receivables ageing as of a date: what was owed at the end of that day, by how long past due
//! (not yet due, 1-30, 31-60, 61-90, over 90 days), by customer class and by customer manager,
//! with the late fees due by then (charged and still owed, also after the principal was paid,
//! plus what the outstanding principal accrued by the dunning policy), and of them the charged
//! ones still owed (a charge counts from its payment's booking day, a fee payment too, a waiver
//! from the day it was recorded).
//!
//! The bills as they stood that day: issued on or before it (cancelled bills left out: the
//! billing export does not say since when), minus what payments booked on or before it paid
//! (net of reversals booked by then). A payment counts on its booking day, as in the
//! settlement, even when its file or its resolution in the workbench came later.

use crate::config::Config;
use crate::domain::{money_text, Currency};
use crate::store::{self, DbContext, Store, StoreError};
use chrono::NaiveDate;
use std::collections::BTreeMap;

pub const COLUMNS: &[&str] = &[
    "date",
    "by",
    "group",
    "currency",
    "bills",
    "not_yet_due",
    "days_1_30",
    "days_31_60",
    "days_61_90",
    "over_90",
    "total",
    "late_fees",
    "late_fees_owed",
];

/// The bucket of a bill `days` past due: 0 not yet due, then 1-30, 31-60, 61-90, over 90.
pub fn bucket(days: i64) -> usize {
    match days {
        i64::MIN..=0 => 0,
        1..=30 => 1,
        31..=60 => 2,
        61..=90 => 3,
        _ => 4,
    }
}

#[derive(Default)]
struct Acc {
    bills: i64,
    buckets: [i64; 5],
    /// late fees due (owed and accrued), and of them charged but unpaid
    fees: i64,
    owed: i64,
}

/// Rows by class, then by manager (`(none)` for customers without one), then `all`.
pub async fn ageing(
    config: &Config,
    store: &Store,
    date: NaiveDate,
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    let mut conn = store.pool().acquire().await.op("connecting")?;
    let day = date.format("%Y-%m-%d").to_string();
    let bills = store::reports::issued_bills(&mut conn, "0000-01-01", &day).await?;
    let mut paid: std::collections::HashMap<String, i64> = Default::default();
    for (bill_id, _, _, amount, _) in
        store::reports::allocations_by_payment(&mut conn, "0000-01-01", &day).await?
    {
        *paid.entry(bill_id).or_default() += amount;
    }
    let fee_states = store::reports::late_fees_by_bill(&mut conn, &day).await?;
    let mut acc: BTreeMap<(&'static str, String, String), Acc> = BTreeMap::new();
    for b in &bills {
        let outstanding = (b.amount_minor - paid.get(&b.bill_id).copied().unwrap_or(0)).max(0);
        let fee_state = fee_states.get(&b.bill_id).copied().unwrap_or_default();
        if outstanding <= 0 && fee_state.owed() <= 0 {
            continue; // paid by then, its late fee too
        }
        let due = NaiveDate::parse_from_str(&b.due_on, "%Y-%m-%d").unwrap_or(date);
        let days = (date - due).num_days();
        let currency = Currency::parse(&b.currency).unwrap_or(config.ledger.currency);
        let rules = config.dunning.for_class(&b.class);
        let fee = crate::dunning::fees::fee_due(
            rules.late_fee,
            currency,
            outstanding,
            due,
            date,
            &fee_state,
        );
        let manager = b.manager.clone().unwrap_or_else(|| "(none)".into());
        for key in [
            ("class", b.class.clone()),
            ("manager", manager),
            ("all", "all".to_string()),
        ] {
            let a = acc.entry((key.0, key.1, b.currency.clone())).or_default();
            a.bills += 1;
            a.buckets[bucket(days)] += outstanding;
            a.fees += fee.total();
            a.owed += fee.owed;
        }
    }
    let order = |k: &str| match k {
        "class" => 0,
        "manager" => 1,
        _ => 2,
    };
    let mut keys: Vec<&(&str, String, String)> = acc.keys().collect();
    keys.sort_by_key(|k| (order(k.0), k.1.clone(), k.2.clone()));
    Ok(keys
        .into_iter()
        .map(|k| {
            let a = &acc[k];
            let m = |v: i64| Some(money_text(v, &k.2));
            let mut row = vec![
                Some(day.clone()),
                Some(k.0.to_string()),
                Some(k.1.clone()),
                Some(k.2.clone()),
                Some(a.bills.to_string()),
            ];
            row.extend(a.buckets.iter().map(|v| m(*v)));
            row.push(m(a.buckets.iter().sum()));
            row.push(m(a.fees));
            row.push(m(a.owed));
            row
        })
        .collect())
}
