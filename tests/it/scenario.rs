//! The fixture data set end to end (see fixtures/README.md): every line lands where the rules
//! say, and the money adds up. Runs on SQLite and on PostgreSQL.

use crate::helpers::{cents, fixture, TestApp};
use std::collections::HashMap;

async fn run_scenario(t: &TestApp) {
    t.import_fixtures().await;
    t.ingest("ICBC", &[fixture("banks/icbc/ICBC_20261112_camt054.xml")])
        .await;
    t.ingest("CMB", &[fixture("banks/cmb/CMB_20261112_camt053.xml")])
        .await;
    t.ingest("ICBC", &[fixture("banks/icbc/ICBC_20261113_camt054.xml")])
        .await;

    let payments = t.payments().await;
    let by_ref: HashMap<&str, Vec<&HashMap<String, String>>> =
        payments.iter().fold(HashMap::new(), |mut m, p| {
            m.entry(p["bank_ref"].as_str()).or_default().push(p);
            m
        });
    let status = |r: &str, i: usize| {
        let p = by_ref.get(r).unwrap_or_else(|| panic!("no payment {r}"))[i];
        (p["status"].clone(), p["exception_reason"].clone())
    };
    let ok = |s: &str| (s.to_string(), String::new());
    let exc = |r: &str| ("exception".to_string(), r.to_string());

    // day 1, ICBC
    assert_eq!(status("ICBC-TX-0001", 0), ok("applied"));
    assert_eq!(status("ICBC-TX-0002", 0), ok("applied"), "RF reference");
    assert_eq!(
        status("ICBC-TX-0003", 0),
        ok("applied"),
        "account in free text, two bills"
    );
    assert_eq!(
        status("ICBC-TX-0004", 0),
        ok("applied"),
        "short payment is fully applied"
    );
    assert_eq!(
        status("ICBC-TX-0005", 0),
        ok("partially_applied"),
        "overpayment"
    );
    assert_eq!(status("ICBC-TX-0006", 0), ok("applied"));
    assert_eq!(
        status("ICBC-TX-0007", 0),
        ok("applied"),
        "电费 户号3100000007 11月"
    );
    assert_eq!(
        status("ICBC-TX-0008", 0),
        ok("reversed"),
        "reversed on day 2"
    );
    assert_eq!(
        status("ICBC-TX-0009A", 0),
        ok("credit"),
        "cancelled bill, nothing else open"
    );
    assert_eq!(status("ICBC-TX-0009B", 0), exc("ambiguous_reference"));
    assert_eq!(status("ICBC-TX-0010", 0), exc("unknown_reference"));
    assert_eq!(status("ICBC-FEE-0011", 0), exc("unexpected_debit"));
    assert_eq!(status("ICBC-TX-0001", 1), exc("duplicate"));
    assert_eq!(status("ICBC-USD-0001", 0), exc("currency_mismatch"));
    // CMB statement
    assert_eq!(status("CMB2026111200017", 0), ok("applied"));
    assert_eq!(
        status("CMB2026111200018", 0),
        ok("applied"),
        "e2e id names the bill"
    );
    // day 2, ICBC
    assert_eq!(
        status("ICBC-TX-0007", 1),
        exc("duplicate"),
        "re-delivered from day 1"
    );
    assert_eq!(
        status("ICBC-TX-0101", 0),
        ok("applied"),
        "paid bill named, redirected"
    );
    assert_eq!(status("ICBC-RV-0102", 0), ok("reversed"));
    assert_eq!(status("ICBC-RV-0103", 0), exc("reversal_unmatched"));
    assert_eq!(status("ICBC-TX-0104", 0), ok("applied"), "bank pattern");
    assert!(
        !by_ref.contains_key("ICBC-TX-0105"),
        "pending entry is not a payment"
    );
    let no_ref: Vec<_> = payments
        .iter()
        .filter(|p| p["end_to_end_id"] == "E2E-0200")
        .collect();
    assert_eq!(no_ref.len(), 2);
    assert_eq!(no_ref[0]["status"], "applied");
    assert_eq!(no_ref[1]["exception_reason"], "duplicate");

    // bills
    assert_eq!(t.bill("B202610-0001").await.2, "paid");
    assert_eq!(
        t.bill("B202610-0004").await,
        (50000, 25000, "open".into()),
        "200 + 50 paid"
    );
    assert_eq!(
        t.bill("B202610-0008").await,
        (21000, 0, "open".into()),
        "reopened by the reversal"
    );
    assert_eq!(t.bill("B202609-0006").await.2, "paid");
    assert_eq!(t.bill("B202610-0006").await, (9500, 9500, "paid".into()));
    assert_eq!(t.bill("B202610-0010").await.2, "paid");
    assert_eq!(t.bill("B202610-0011").await.2, "paid");
    assert_eq!(t.bill("B202610-0012").await.2, "paid");
    // credit balances
    assert_eq!(t.credit("3100000005").await, 1_500_000 - 1_200_000);
    assert_eq!(t.credit("3100000009").await, 40000);
    // allocation rules as named in the export: account 3 (commercial) paid its September
    // bill (due 2026-10-20) 23 days late, so its late fee came first: 320.00 x 0.002 x 23
    let fee = cents("320.00") * 2 * 23 / 1000;
    let allocs = t.allocations().await;
    let rules: Vec<(&str, &str, i64)> = allocs
        .iter()
        .filter(|a| a["bank_ref"] == "ICBC-TX-0003")
        .map(|a| {
            (
                a["bill_id"].as_str(),
                a["rule"].as_str(),
                cents(&a["amount"]),
            )
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            ("B202609-0003", "late_fee", fee),
            ("B202609-0003", "account_oldest_first", cents("320.00")),
            (
                "B202610-0003",
                "account_oldest_first",
                cents("620.00") - fee - cents("320.00")
            )
        ]
    );
    // B202609-0006, due on the day it was paid (2026-11-12), was on time: no fee
    assert!(allocs
        .iter()
        .all(|a| a["rule"] != "late_fee" || a["bill_id"] == "B202609-0003"));
    let fees = t.late_fees().await;
    assert_eq!(fees.len(), 1, "{fees:?}");
    assert_eq!(
        (
            fees[0]["bill_id"].as_str(),
            fees[0]["days"].as_str(),
            fees[0]["rate"].as_str(),
            cents(&fees[0]["base"]),
            cents(&fees[0]["amount"])
        ),
        ("B202609-0003", "23", "0.002", cents("320.00"), fee)
    );
    t.assert_verified().await;
}

#[tokio::test]
async fn fixture_scenario_on_sqlite() {
    run_scenario(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn fixture_scenario_with_every_bill_preloaded() {
    // the way large runs work: every open bill and account read into memory first, closed
    // bills looked up only when a reference may name one
    run_scenario(&TestApp::spawn_with("[matching]\npreload_from = 0").await).await;
}

#[tokio::test]
async fn fixture_scenario_on_postgres() {
    run_scenario(&TestApp::spawn_pg().await).await;
}
