//! The morning check: what a finance supervisor looks at first in the workbench (`/ui/`).
//!
//! - yesterday's and today's settlement per bank (booking day, as the daily settlement):
//!   received and where it went, and the difference between what each bank's files declare
//!   and what was read from them;
//! - the banks' health: the last file, how far the booked days reach and whether the previous
//!   business day's file is late, failing pulls (failures in a row, the last error);
//! - the exceptions queue by reason and by age (days since the booking day), the oldest first,
//!   and the oldest items themselves;
//! - the collection rate's trend over the 30 days up to today (the collection-rate report's
//!   rate so far, day by day);
//! - the partner banks' real-time versus file results of their last business days.
//!
//! Everything is computed here from the store, in the page's language; the web page (`api`)
//! lays it out and links each figure to its detail.

use super::chart::{Line, Unit, PALETTE};
use super::labels::{self, is_zh};
use crate::config::Config;
use crate::domain::money_text;
use crate::store::{self, DbContext, Store, StoreError};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub today: String,
    pub yesterday: String,
    pub days: Vec<SettlementDay>,
    pub banks: Vec<BankLine>,
    pub reasons: Vec<ReasonLine>,
    /// The age buckets' names and their booking-day ranges (from, to; from empty: no bound).
    pub buckets: Vec<Bucket>,
    pub oldest: Vec<OldItem>,
    pub trend: Trend,
    pub partners: Vec<PartnerLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettlementDay {
    pub date: String,
    pub date_text: String,
    pub rows: Vec<SettlementLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettlementLine {
    pub bank_id: String,
    pub bank_text: String,
    pub currency: String,
    pub received_count: String,
    pub received: String,
    pub applied: String,
    pub credit: String,
    pub held: String,
    /// (figure as in the report, as people read it)
    pub read: String,
    pub declared: String,
    pub difference: String,
    pub difference_value: String,
    /// The files read differ from what they declare.
    pub differs: bool,
    pub adds_up: bool,
    pub files: String,
    /// The report's cells of the row, as in its CSV (for `data-value`).
    pub values: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BankLine {
    pub bank_id: String,
    pub name: String,
    pub last_file: Option<String>,
    pub last_file_at: Option<String>,
    /// The latest booking day the bank's lines reach.
    pub reached: Option<String>,
    /// The previous business day's file is expected and not in.
    pub late: bool,
    pub expected: Option<String>,
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_success_at: Option<String>,
    /// Filled in by the daemon from its runtime state.
    pub healthy: Option<bool>,
    pub next_run: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub name: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReasonLine {
    pub reason: String,
    pub reason_text: String,
    pub count: i64,
    pub amount: String,
    pub oldest: String,
    pub oldest_days: i64,
    pub ages: [i64; 4],
}

#[derive(Debug, Clone, Serialize)]
pub struct OldItem {
    pub id: i64,
    pub reason_text: String,
    pub amount: String,
    pub bank_id: String,
    pub booked: String,
    pub days: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    pub svg: String,
    pub rate: Option<String>,
    pub rate_value: Option<String>,
    pub billed: Option<String>,
    pub collected: Option<String>,
    pub window_from: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartnerLine {
    pub bank_id: String,
    pub date: String,
    pub date_text: String,
    pub matched: i64,
    pub discrepancies: i64,
    pub net: String,
    pub fee: String,
    pub transfer: String,
    pub settlement: String,
    pub settlement_text: String,
}

fn t(lang: &str, zh: &str, en: &str) -> String {
    if is_zh(lang) { zh } else { en }.to_string()
}

/// The booking-day ranges of the queue's age buckets on `today`: 0-1, 2-7, 8-30, over 30
/// days (as the exceptions report).
pub fn buckets(today: NaiveDate, lang: &str) -> Vec<Bucket> {
    let d = |n: i64| (today - chrono::Duration::days(n)).to_string();
    [
        ("queue_0_1_days", d(1), d(0)),
        ("queue_2_7_days", d(7), d(2)),
        ("queue_8_30_days", d(30), d(8)),
        ("queue_over_30_days", String::new(), d(31)),
    ]
    .into_iter()
    .map(|(c, from, to)| Bucket {
        name: labels::heading(c, lang),
        from,
        to,
    })
    .collect()
}

/// The morning check of `today`, in `lang`.
pub async fn dashboard(
    config: &Config,
    store: &Store,
    today: NaiveDate,
    lang: &str,
) -> Result<Dashboard, StoreError> {
    let yesterday = today - chrono::Duration::days(1);
    // the settlement of both days
    let mut days = Vec::new();
    for d in [yesterday, today] {
        let rows = super::settlement::daily_settlement(store, d).await?;
        let table = super::view::Table {
            columns: super::settlement::COLUMNS,
            rows: &rows,
        };
        let cell = |i: usize, c: &str| super::view::cell(&table, i, c, lang);
        let lines = (0..rows.len())
            .map(|i| {
                let went: Decimal = [
                    "applied",
                    "credit",
                    "held_in_exceptions",
                    "refunded",
                    "written_off",
                ]
                .iter()
                .map(|c| table.dec(i, c))
                .sum();
                SettlementLine {
                    bank_id: table.get(i, "bank_id").to_string(),
                    bank_text: cell(i, "bank_id"),
                    currency: table.get(i, "currency").to_string(),
                    received_count: cell(i, "received_count"),
                    received: cell(i, "received"),
                    applied: cell(i, "applied"),
                    credit: cell(i, "credit"),
                    held: cell(i, "held_in_exceptions"),
                    read: cell(i, "read_credits"),
                    declared: cell(i, "declared_credits"),
                    difference: cell(i, "difference"),
                    difference_value: table.get(i, "difference").to_string(),
                    differs: !table.get(i, "difference").is_empty()
                        && !table.dec(i, "difference").is_zero(),
                    adds_up: went == table.dec(i, "received"),
                    files: cell(i, "files"),
                    values: super::settlement::COLUMNS
                        .iter()
                        .map(|c| (c.to_string(), table.get(i, c).to_string()))
                        .collect(),
                }
            })
            .collect();
        days.push(SettlementDay {
            date: d.to_string(),
            date_text: labels::date(&d.to_string(), lang),
            rows: lines,
        });
    }
    let mut conn = store.pool().acquire().await.op("connecting")?;
    // the banks
    let states: BTreeMap<String, store::runs::BankState> = store::runs::states(&mut conn)
        .await?
        .into_iter()
        .map(|s| (s.bank_id.clone(), s))
        .collect();
    let runs: BTreeMap<String, store::runs::RunRow> = store::runs::latest(&mut conn)
        .await?
        .into_iter()
        .map(|r| (r.bank_id.clone(), r))
        .collect();
    let files: BTreeMap<String, (String, String)> = store::reports::latest_files(&mut conn)
        .await?
        .into_iter()
        .map(|(b, f, at)| (b, (f, at)))
        .collect();
    let reach: BTreeMap<String, String> = store::dunning::bank_coverage(&mut conn)
        .await?
        .into_iter()
        .collect();
    let tz = config.daemon.tz();
    let d = &config.dunning;
    let calendar =
        crate::dunning::Calendar::new(d.holidays.iter().copied(), d.workdays.iter().copied());
    let previous = calendar.previous_business_day(today).to_string();
    let expected: Vec<String> = match &d.wait_for_banks {
        Some(list) => list.clone(),
        None => config
            .banks
            .iter()
            .filter(|b| b.source.is_some())
            .map(|b| b.id.clone())
            .collect(),
    };
    let banks = config
        .banks
        .iter()
        .filter(|b| !b.own_account)
        .map(|b| {
            let state = states.get(&b.id);
            let run = runs.get(&b.id);
            let reached = reach.get(&b.id).cloned();
            let waits = expected.contains(&b.id);
            BankLine {
                bank_id: b.id.clone(),
                name: b.name.clone(),
                last_file: files.get(&b.id).map(|f| f.0.clone()),
                last_file_at: files.get(&b.id).map(|f| labels::local_time(&f.1, lang, tz)),
                late: waits && reached.as_deref().is_none_or(|r| r < previous.as_str()),
                expected: waits.then(|| labels::date(&previous, lang)),
                reached: reached.map(|r| labels::date(&r, lang)),
                failures: state.map(|s| s.consecutive_failures).unwrap_or(0),
                last_error: run
                    .filter(|r| r.outcome != "ok")
                    .and_then(|r| r.error.clone())
                    .or_else(|| {
                        state
                            .filter(|s| s.consecutive_failures > 0)
                            .and_then(|s| s.last_failure.clone())
                    }),
                last_success_at: state
                    .and_then(|s| s.last_success_at.clone())
                    .map(|s| labels::local_time(&s, lang, tz)),
                healthy: None,
                next_run: None,
            }
        })
        .collect();
    // the queue by reason and age
    // every open exception (one booked after today, a bank's clock ahead of ours, counts as
    // today's)
    let facts = store::reports::exceptions(&mut conn, "9999-12-31").await?;
    // reason -> (count, amount per currency, oldest booking day, age buckets)
    type ByReason = (i64, BTreeMap<String, i64>, String, [i64; 4]);
    let mut reasons: BTreeMap<String, ByReason> = BTreeMap::new();
    for e in facts.iter().filter(|e| e.status == "open") {
        let r = reasons
            .entry(e.reason.clone())
            .or_insert_with(|| (0, BTreeMap::new(), e.booking_date.clone(), [0; 4]));
        r.0 += 1;
        *r.1.entry(e.currency.clone()).or_default() += e.amount_minor;
        if e.booking_date < r.2 {
            r.2 = e.booking_date.clone();
        }
        let age = NaiveDate::parse_from_str(&e.booking_date, "%Y-%m-%d")
            .map(|b| (today - b).num_days())
            .unwrap_or(0);
        r.3[super::exceptions::age_bucket(age)] += 1;
    }
    let mut reasons: Vec<ReasonLine> = reasons
        .into_iter()
        .map(|(reason, (count, amounts, oldest, ages))| ReasonLine {
            reason_text: labels::word("reason", &reason, lang),
            reason,
            count,
            amount: amounts
                .iter()
                .map(|(c, m)| labels::money(&money_text(*m, c), c, lang))
                .collect::<Vec<_>>()
                .join(" + "),
            oldest_days: NaiveDate::parse_from_str(&oldest, "%Y-%m-%d")
                .map(|b| (today - b).num_days())
                .unwrap_or(0),
            oldest: labels::date(&oldest, lang),
            ages,
        })
        .collect();
    reasons.sort_by(|a, b| {
        b.oldest_days
            .cmp(&a.oldest_days)
            .then(a.reason.cmp(&b.reason))
    });
    let oldest = store::reports::oldest_open_exceptions(&mut conn, 10)
        .await?
        .into_iter()
        .map(|(id, reason, amount, ccy, booked, bank)| OldItem {
            id,
            reason_text: labels::word("reason", &reason, lang),
            amount: labels::money(&money_text(amount, &ccy), &ccy, lang),
            bank_id: bank,
            days: NaiveDate::parse_from_str(&booked, "%Y-%m-%d")
                .map(|b| (today - b).num_days())
                .unwrap_or(0),
            booked: labels::date(&booked, lang),
        })
        .collect();
    // the partner banks' last business days
    let since = (today - chrono::Duration::days(7)).to_string();
    let partners = store::reports::recent_eod(&mut conn, &since)
        .await?
        .into_iter()
        .map(|e| PartnerLine {
            date_text: labels::date(&e.business_date, lang),
            date: e.business_date,
            matched: e.matched,
            discrepancies: e.discrepancies,
            net: labels::money(&money_text(e.net_minor, &e.currency), &e.currency, lang),
            fee: labels::money(&money_text(e.fee_minor, &e.currency), &e.currency, lang),
            transfer: labels::money(
                &money_text(e.net_minor - e.fee_minor, &e.currency),
                &e.currency,
                lang,
            ),
            settlement_text: labels::word("settlement", &e.settlement, lang),
            settlement: e.settlement,
            bank_id: e.bank_id,
        })
        .collect();
    drop(conn);
    // the collection rate, day by day
    let rows = super::collection::collection_rate(store, today).await?;
    let table = super::view::Table {
        columns: super::collection::COLUMNS,
        rows: &rows,
    };
    let ccy = config.ledger.currency.as_str();
    let all =
        (0..rows.len()).find(|i| table.get(*i, "by") == "all" && table.get(*i, "currency") == ccy);
    let from = today - chrono::Duration::days(super::collection::WINDOW_DAYS - 1);
    let xs: Vec<String> = from
        .iter_days()
        .take_while(|d| *d <= today)
        .map(|d| d.to_string())
        .collect();
    let ys = xs
        .iter()
        .map(|x| {
            (0..rows.len())
                .find(|i| {
                    table.get(*i, "by") == "day"
                        && table.get(*i, "group") == x
                        && table.get(*i, "currency") == ccy
                })
                .and_then(|i| table.get(i, "collection_rate_pct").parse().ok())
        })
        .collect();
    let trend = Trend {
        svg: Line {
            title: t(
                lang,
                "回收率 30 天趋势（累计）",
                "Collection rate over 30 days (so far)",
            ),
            xs,
            ys,
            unit: Unit::Percent,
            name: labels::heading("collection_rate_pct", lang),
            color: PALETTE[1].into(),
            y_min_top: Decimal::from(100),
            axis: t(lang, "日期", "day"),
            step: true,
        }
        .svg(),
        rate: all.map(|i| super::view::cell(&table, i, "collection_rate_pct", lang)),
        rate_value: all.map(|i| table.get(i, "collection_rate_pct").to_string()),
        billed: all.map(|i| super::view::cell(&table, i, "billed", lang)),
        collected: all.map(|i| super::view::cell(&table, i, "collected", lang)),
        window_from: labels::date(&from.to_string(), lang),
    };
    Ok(Dashboard {
        today: today.to_string(),
        yesterday: yesterday.to_string(),
        days,
        banks,
        reasons,
        buckets: buckets(today, lang),
        oldest,
        trend,
        partners,
    })
}
