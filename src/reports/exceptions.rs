//! The exceptions report: by reason, what is open on a day (count, amount, by age since the
//! exception was raised), how many of those were escalated by then, and what was resolved
//! that day.

use crate::domain::money_text;
use crate::store::{self, DbContext, Store, StoreError};
use chrono::NaiveDate;
use std::collections::BTreeMap;

pub const COLUMNS: &[&str] = &[
    "date",
    "reason",
    "currency",
    "open_count",
    "open_amount",
    "open_0_1_days",
    "open_2_7_days",
    "open_8_30_days",
    "open_over_30_days",
    "escalated_count",
    "escalated_amount",
    "resolved_that_day",
];

#[derive(Default)]
struct Acc {
    open: i64,
    amount: i64,
    ages: [i64; 4],
    escalated: i64,
    escalated_amount: i64,
    resolved: i64,
}

/// One row per reason and currency, then `all` per currency.
pub async fn exceptions(
    store: &Store,
    date: NaiveDate,
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    let mut conn = store.pool().acquire().await.op("connecting")?;
    let day = date.format("%Y-%m-%d").to_string();
    let mut acc: BTreeMap<(bool, String, String), Acc> = BTreeMap::new();
    for (reason, status, amount, currency, created, resolved, escalated) in
        store::reports::exceptions(&mut conn).await?
    {
        let raised = &created[..created.len().min(10)];
        if raised > day.as_str() {
            continue; // not raised yet on that day
        }
        let resolved_day = resolved.as_deref().map(|r| &r[..r.len().min(10)]);
        let open_then = status == "open" || resolved_day.is_some_and(|r| r > day.as_str());
        let escalated_then = escalated
            .as_deref()
            .is_some_and(|e| &e[..e.len().min(10)] <= day.as_str());
        for key in [(false, reason.clone()), (true, "all".to_string())] {
            let a = acc.entry((key.0, key.1, currency.clone())).or_default();
            if open_then {
                a.open += 1;
                a.amount += amount;
                let age = NaiveDate::parse_from_str(raised, "%Y-%m-%d")
                    .map(|r| (date - r).num_days())
                    .unwrap_or(0);
                a.ages[match age {
                    i64::MIN..=1 => 0,
                    2..=7 => 1,
                    8..=30 => 2,
                    _ => 3,
                }] += 1;
                if escalated_then {
                    a.escalated += 1;
                    a.escalated_amount += amount;
                }
            }
            if resolved_day == Some(day.as_str()) {
                a.resolved += 1;
            }
        }
    }
    Ok(acc
        .iter()
        .map(|((_, reason, ccy), a)| {
            let mut row = vec![
                Some(day.clone()),
                Some(reason.clone()),
                Some(ccy.clone()),
                Some(a.open.to_string()),
                Some(money_text(a.amount, ccy)),
            ];
            row.extend(a.ages.iter().map(|n| Some(n.to_string())));
            row.push(Some(a.escalated.to_string()));
            row.push(Some(money_text(a.escalated_amount, ccy)));
            row.push(Some(a.resolved.to_string()));
            row
        })
        .collect())
}
