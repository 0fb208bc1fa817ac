//! Collection rate: of what was billed in the 30 days up to a day, how much has been collected
//! (allocated to those bills by payments booked up to that day), by customer class, customer
//! manager, paying bank, payment channel and in all; the average days from a bill's issue to the payments that
//! settled it; and the daily trend of the window (billed each day by issue date, collected each
//! day by booking date, and the rate so far: collected by that day over billed by that day).
//! The clock is the as-of date: bills issued up to it, payments booked up to it. And late fees
//! (违约金) charged, collected and waived in the window and outstanding at its end, by the
//! same groups and days. Collected principal and collected fees are kept apart: the rate is of
//! principal, and a fee's movements count by the day of its payment or waiver, whatever the
//! bill's issue date.

use crate::domain::money_text;
use crate::store::{self, DbContext, Store, StoreError};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};

pub const COLUMNS: &[&str] = &[
    "date",
    "window_from",
    "by",
    "group",
    "currency",
    "billed",
    "collected",
    "collection_rate_pct",
    "avg_days_to_payment",
    "late_fees_charged",
    "late_fees_collected",
    "late_fees_waived",
    "late_fees_outstanding",
];

/// The window's length in days.
pub const WINDOW_DAYS: i64 = 30;

#[derive(Default)]
struct Acc {
    billed: i64,
    collected: i64,
    /// sum of (days from issue to payment) weighted by the amount, and that amount
    day_weight: i128,
    weight: i64,
    /// late fees of the window: charged, collected, waived; outstanding at its end
    fees: [i64; 4],
}

pub async fn collection_rate(
    store: &Store,
    date: NaiveDate,
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    let from = date - chrono::Duration::days(WINDOW_DAYS - 1);
    let (from_s, to_s) = (
        from.format("%Y-%m-%d").to_string(),
        date.format("%Y-%m-%d").to_string(),
    );
    let mut conn = store.pool().acquire().await.op("connecting")?;
    let bills = store::reports::issued_bills(&mut conn, &from_s, &to_s).await?;
    let allocs = store::reports::allocations_by_payment(&mut conn, &from_s, &to_s).await?;
    let by_id: HashMap<&str, &store::reports::IssuedBill> =
        bills.iter().map(|b| (b.bill_id.as_str(), b)).collect();
    let mut acc: BTreeMap<(u8, String, String), Acc> = BTreeMap::new();
    let keys = |b: &store::reports::IssuedBill| {
        [
            (0u8, format!("class:{}", b.class)),
            (
                1,
                format!(
                    "manager:{}",
                    b.manager.clone().unwrap_or_else(|| "(none)".into())
                ),
            ),
            (3, "all:all".to_string()),
        ]
    };
    for b in &bills {
        for (o, k) in keys(b) {
            acc.entry((o, k, b.currency.clone())).or_default().billed += b.amount_minor;
        }
    }
    let mut trend: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for b in &bills {
        trend
            .entry((b.issued_on.clone(), b.currency.clone()))
            .or_default()
            .0 += b.amount_minor;
    }
    for (bill_id, bank, booked, amount, channel) in &allocs {
        if let Some(b) = by_id.get(bill_id.as_str()) {
            let days = match (
                NaiveDate::parse_from_str(&b.issued_on, "%Y-%m-%d"),
                NaiveDate::parse_from_str(booked, "%Y-%m-%d"),
            ) {
                (Ok(i), Ok(p)) => (p - i).num_days().max(0),
                _ => 0,
            };
            let mut ks: Vec<(u8, String)> = keys(b).to_vec();
            ks.push((2, format!("bank:{bank}")));
            ks.push((2, format!("channel:{channel}")));
            for (o, k) in ks {
                let a = acc.entry((o, k, b.currency.clone())).or_default();
                a.collected += amount;
                a.day_weight += i128::from(days) * i128::from(*amount);
                a.weight += amount;
            }
        }
        if booked.as_str() >= from_s.as_str() {
            if let Some(b) = by_id.get(bill_id.as_str()) {
                trend
                    .entry((booked.clone(), b.currency.clone()))
                    .or_default()
                    .1 += amount;
            }
        }
    }
    // late fees: the window's movements (by the day of the payment or waiver, whatever the
    // bill's issue date), and what is outstanding at its end
    let mut fee_trend: BTreeMap<(String, String), [i64; 3]> = BTreeMap::new();
    for e in store::reports::late_fee_events(&mut conn, &from_s, &to_s).await? {
        let k = match e.what.as_str() {
            "charged" => 0,
            "collected" => 1,
            _ => 2,
        };
        let mut groups = vec![
            (0u8, format!("class:{}", e.class)),
            (
                1,
                format!(
                    "manager:{}",
                    e.manager.clone().unwrap_or_else(|| "(none)".into())
                ),
            ),
            (3, "all:all".to_string()),
        ];
        if let (Some(bank), Some(channel)) = (&e.bank_id, &e.channel) {
            groups.push((2, format!("bank:{bank}")));
            groups.push((2, format!("channel:{channel}")));
        }
        for (o, g) in groups {
            acc.entry((o, g, e.currency.clone())).or_default().fees[k] += e.amount_minor;
        }
        fee_trend.entry((e.day, e.currency)).or_default()[k] += e.amount_minor;
    }
    for (class, manager, ccy, owed) in
        store::reports::late_fees_outstanding(&mut conn, &to_s).await?
    {
        for (o, g) in [
            (0u8, format!("class:{class}")),
            (
                1,
                format!("manager:{}", manager.unwrap_or_else(|| "(none)".into())),
            ),
            (3, "all:all".to_string()),
        ] {
            acc.entry((o, g, ccy.clone())).or_default().fees[3] += owed;
        }
    }
    let mut out = Vec::new();
    for ((_, key, ccy), a) in &acc {
        let (by, group) = key.split_once(':').unwrap_or(("all", "all"));
        let rate = (a.billed > 0).then(|| {
            (Decimal::from(a.collected) * Decimal::from(100) / Decimal::from(a.billed)).round_dp(2)
        });
        let avg = (a.weight > 0).then(|| {
            (Decimal::from_i128_with_scale(a.day_weight, 0) / Decimal::from(a.weight)).round_dp(1)
        });
        out.push(vec![
            Some(to_s.clone()),
            Some(from_s.clone()),
            Some(by.to_string()),
            Some(group.to_string()),
            Some(ccy.clone()),
            // what a bank (or a channel) collected is not billed by it
            (by != "bank" && by != "channel").then(|| money_text(a.billed, ccy)),
            Some(money_text(a.collected, ccy)),
            rate.filter(|_| by != "bank" && by != "channel")
                .map(|r| format!("{r:.2}")),
            avg.map(|d| format!("{d:.1}")),
            Some(money_text(a.fees[0], ccy)),
            Some(money_text(a.fees[1], ccy)),
            // a waiver, and what is owed, belong to no bank or channel
            (by != "bank" && by != "channel").then(|| money_text(a.fees[2], ccy)),
            (by != "bank" && by != "channel").then(|| money_text(a.fees[3], ccy)),
        ]);
    }
    // per (day, currency): (billed, collected) and the late fees (charged, collected, waived)
    type DayRow = ((i64, i64), [i64; 3]);
    let mut days: BTreeMap<(String, String), DayRow> = BTreeMap::new();
    for (k, v) in trend {
        days.entry(k).or_default().0 = v;
    }
    for (k, f) in fee_trend {
        days.entry(k).or_default().1 = f;
    }
    // each day's row carries the rate so far: collected by then over billed by then
    let mut so_far: HashMap<String, (i64, i64)> = HashMap::new();
    for ((day, ccy), ((billed, collected), [charged, fee_collected, waived])) in days {
        let s = so_far.entry(ccy.clone()).or_default();
        s.0 += billed;
        s.1 += collected;
        let rate = (s.0 > 0)
            .then(|| (Decimal::from(s.1) * Decimal::from(100) / Decimal::from(s.0)).round_dp(2));
        out.push(vec![
            Some(to_s.clone()),
            Some(from_s.clone()),
            Some("day".into()),
            Some(day),
            Some(ccy.clone()),
            Some(money_text(billed, &ccy)),
            Some(money_text(collected, &ccy)),
            rate.map(|r| format!("{r:.2}")),
            None,
            Some(money_text(charged, &ccy)),
            Some(money_text(fee_collected, &ccy)),
            Some(money_text(waived, &ccy)),
            None,
        ]);
    }
    Ok(out)
}
