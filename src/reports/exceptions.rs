//! The exceptions report of a day, on the settlement's clock: the booking day of the lines.
//!
//! By reason and currency:
//! - the lines booked on the day that went to the exceptions queue (`booked_*`), how many of
//!   them are still open and what they hold (`open_*`; `open_received_amount` is what the
//!   money received among them holds: the daily settlement's "held in exceptions" of the same
//!   day, for all banks), and how many were resolved since;
//! - the queue through the day: every exception still open whose line was booked on or before
//!   the day (`queue_*`), by age in days from its booking day to the report's day, and how many
//!   of those were escalated.
//!
//! What became of each line is as recorded when the report is made, as in the settlement: a
//! day's file normally arrives the next day, and its exceptions count on the day the money was
//! booked, not on the day matching ran.

use crate::domain::money_text;
use crate::store::{self, DbContext, Store, StoreError};
use chrono::NaiveDate;
use std::collections::BTreeMap;

pub const COLUMNS: &[&str] = &[
    "date",
    "reason",
    "currency",
    "booked_count",
    "booked_amount",
    "open_count",
    "open_amount",
    "open_received_amount",
    "resolved_count",
    "queue_count",
    "queue_amount",
    "queue_0_1_days",
    "queue_2_7_days",
    "queue_8_30_days",
    "queue_over_30_days",
    "escalated_count",
    "escalated_amount",
];

/// The age bucket of an exception `days` after its booking day: 0-1, 2-7, 8-30, over 30.
pub fn age_bucket(days: i64) -> usize {
    match days {
        i64::MIN..=1 => 0,
        2..=7 => 1,
        8..=30 => 2,
        _ => 3,
    }
}

#[derive(Default)]
struct Acc {
    booked: i64,
    booked_amount: i64,
    open: i64,
    open_amount: i64,
    open_received: i64,
    resolved: i64,
    queue: i64,
    queue_amount: i64,
    ages: [i64; 4],
    escalated: i64,
    escalated_amount: i64,
}

/// One row per reason and currency, then `all` per currency.
pub async fn exceptions(
    store: &Store,
    date: NaiveDate,
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    let mut conn = store.pool().acquire().await.op("connecting")?;
    let day = date.format("%Y-%m-%d").to_string();
    let mut acc: BTreeMap<(bool, String, String), Acc> = BTreeMap::new();
    for e in store::reports::exceptions(&mut conn, &day).await? {
        let open = e.status == "open";
        let age = NaiveDate::parse_from_str(&e.booking_date, "%Y-%m-%d")
            .map(|b| (date - b).num_days())
            .unwrap_or(0);
        for key in [(false, e.reason.clone()), (true, "all".to_string())] {
            let a = acc.entry((key.0, key.1, e.currency.clone())).or_default();
            if e.booking_date == day {
                a.booked += 1;
                a.booked_amount += e.amount_minor;
                if open {
                    a.open += 1;
                    a.open_amount += e.amount_minor;
                    if e.received {
                        a.open_received += e.held_minor;
                    }
                } else {
                    a.resolved += 1;
                }
            }
            if open {
                a.queue += 1;
                a.queue_amount += e.amount_minor;
                a.ages[age_bucket(age)] += 1;
                if e.escalated {
                    a.escalated += 1;
                    a.escalated_amount += e.amount_minor;
                }
            }
        }
    }
    Ok(acc
        .iter()
        // a reason with nothing booked that day and nothing open is not worth a row
        .filter(|(_, a)| a.booked > 0 || a.queue > 0)
        .map(|((_, reason, ccy), a)| {
            let m = |v: i64| Some(money_text(v, ccy));
            let n = |v: i64| Some(v.to_string());
            let mut row = vec![
                Some(day.clone()),
                Some(reason.clone()),
                Some(ccy.clone()),
                n(a.booked),
                m(a.booked_amount),
                n(a.open),
                m(a.open_amount),
                m(a.open_received),
                n(a.resolved),
                n(a.queue),
                m(a.queue_amount),
            ];
            row.extend(a.ages.iter().map(|v| n(*v)));
            row.push(n(a.escalated));
            row.push(m(a.escalated_amount));
            row
        })
        .collect())
}
