//! Reports, checked against independent sums of the raw exported lines.

use crate::helpers::{fixture, TestApp};
use rust_decimal::Decimal;
use std::collections::HashMap;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

#[tokio::test]
async fn the_daily_settlement_adds_up_to_the_lines_of_the_day_per_bank_and_in_all() {
    settlement_adds_up(TestApp::spawn().await).await;
}

#[tokio::test]
async fn the_daily_settlement_adds_up_on_postgres_too() {
    settlement_adds_up(TestApp::spawn_pg().await).await;
}

async fn settlement_adds_up(t: TestApp) {
    t.import_fixtures().await;
    t.ingest("ICBC", &[fixture("banks/icbc/ICBC_20261112_camt054.xml")])
        .await;
    t.ingest("CMB", &[fixture("banks/cmb/CMB_20261112_camt053.xml")])
        .await;
    t.ingest("ICBC", &[fixture("banks/icbc/ICBC_20261113_camt054.xml")])
        .await;
    let day = "2026-11-12";
    let rows = billrecon::reports::settlement::daily_settlement(
        &t.app.store,
        chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap(),
    )
    .await
    .unwrap();
    let cols = billrecon::reports::settlement::COLUMNS;
    let report: Vec<HashMap<String, String>> = crate::helpers::to_maps(cols, rows);

    // independently: the exported payment lines booked that day
    let lines: Vec<HashMap<String, String>> = t
        .payments()
        .await
        .into_iter()
        .filter(|p| p["booking_date"] == day)
        .collect();
    assert!(!lines.is_empty());
    // one row per bank and currency, then ALL per currency
    let mut keys: Vec<(String, String)> = lines
        .iter()
        .flat_map(|p| {
            [
                (p["bank_id"].clone(), p["currency"].clone()),
                ("ALL".to_string(), p["currency"].clone()),
            ]
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert!(keys.len() >= 4, "two banks and two currencies: {keys:?}");
    for (bank, ccy) in &keys {
        let mine: Vec<&HashMap<String, String>> = lines
            .iter()
            .filter(|p| (bank == "ALL" || &p["bank_id"] == bank) && &p["currency"] == ccy)
            .collect();
        let received: Vec<&&HashMap<String, String>> = mine
            .iter()
            .filter(|p| p["direction"] == "credit" && p["reversal"] == "false")
            .collect();
        let sum = |rows: &[&&HashMap<String, String>], col: &str| -> Decimal {
            rows.iter().map(|p| dec(&p[col])).sum()
        };
        let reversals: Vec<&&HashMap<String, String>> =
            mine.iter().filter(|p| p["reversal"] == "true").collect();
        let r = report
            .iter()
            .find(|r| &r["bank_id"] == bank && &r["currency"] == ccy)
            .unwrap_or_else(|| panic!("no row for {bank} {ccy}: {report:?}"));
        assert_eq!(r["received_count"], received.len().to_string(), "{bank}");
        assert_eq!(dec(&r["received"]), sum(&received, "amount"), "{bank}");
        assert_eq!(dec(&r["applied"]), sum(&received, "applied"), "{bank}");
        assert_eq!(dec(&r["credit"]), sum(&received, "credit"), "{bank}");
        let all: Vec<&&HashMap<String, String>> = mine.iter().collect();
        assert_eq!(dec(&r["held_in_exceptions"]), sum(&all, "held"), "{bank}");
        assert_eq!(r["reversal_count"], reversals.len().to_string(), "{bank}");
        assert_eq!(dec(&r["reversed"]), -sum(&reversals, "amount"), "{bank}");
    }
    assert_eq!(report.len(), keys.len(), "no other rows: {report:?}");
    // the statements declare what was received: no difference to explain for ICBC in CNY
    let icbc = report
        .iter()
        .find(|r| r["bank_id"] == "ICBC" && r["currency"] == "CNY")
        .unwrap();
    assert_eq!(icbc["declared_credits"], icbc["received"]);
    assert_eq!(icbc["difference"], "0.00");
}
