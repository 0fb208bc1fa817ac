//! Reports, checked against independent sums of the raw exported lines.

use crate::helpers::{fixture, Pay, TestApp};
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
        // money received: credits, not reversals, not rejected as duplicates
        let received: Vec<&&HashMap<String, String>> = mine
            .iter()
            .filter(|p| {
                p["direction"] == "credit" && p["reversal"] == "false" && p["status"] != "rejected"
            })
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
        // held of the money received only: the debit and the reversals held in the queue
        // are under debits and reversed, never netted into it
        assert_eq!(
            dec(&r["held_in_exceptions"]),
            sum(&received, "held"),
            "{bank}"
        );
        assert_eq!(dec(&r["refunded"]), sum(&received, "refunded"), "{bank}");
        assert_eq!(
            dec(&r["written_off"]),
            sum(&received, "written_off"),
            "{bank}"
        );
        assert_eq!(
            dec(&r["received"]),
            [
                "applied",
                "credit",
                "held_in_exceptions",
                "refunded",
                "written_off"
            ]
            .iter()
            .map(|c| dec(&r[*c]))
            .sum::<Decimal>(),
            "{bank}: received = applied + credit + held + refunded + written off"
        );
        assert_eq!(r["reversal_count"], reversals.len().to_string(), "{bank}");
        assert_eq!(dec(&r["reversed"]), -sum(&reversals, "amount"), "{bank}");
    }
    assert_eq!(report.len(), keys.len(), "no other rows: {report:?}");
    // the differences, line by line: every line of the day held or reversed
    let day_date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    let listed = crate::helpers::to_maps(
        billrecon::reports::settlement::LINE_COLUMNS,
        billrecon::reports::settlement::lines(&t.app.store, day_date)
            .await
            .unwrap(),
    );
    let mut want: Vec<(String, String)> = lines
        .iter()
        .filter(|p| p["status"] == "exception" || p["status"] == "reversed")
        .map(|p| (p["bank_ref"].clone(), p["amount"].clone()))
        .collect();
    let mut got: Vec<(String, String)> = listed
        .iter()
        .map(|p| (p["bank_ref"].clone(), p["amount"].clone()))
        .collect();
    want.sort();
    got.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    // the statements declare what was received: no difference to explain for ICBC in CNY
    let icbc = report
        .iter()
        .find(|r| r["bank_id"] == "ICBC" && r["currency"] == "CNY")
        .unwrap();
    assert_eq!(icbc["declared_credits"], icbc["read_credits"]);
    assert_eq!(icbc["difference"], "0.00");
    // the day's debit held in the queue is not in what the money received holds
    let all = report
        .iter()
        .find(|r| r["bank_id"] == "ALL" && r["currency"] == "CNY")
        .unwrap();
    assert!(dec(&all["debits"]) > Decimal::ZERO, "{all:?}");
}

fn csv_rows(path: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(fixture(path)).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn ageing_buckets_what_is_owed_by_class_and_manager() {
    let t = icbc_days(&["20261112", "20261113"]).await;
    let day = chrono::NaiveDate::from_ymd_opt(2027, 1, 10).unwrap();
    let rows = billrecon::reports::ageing::ageing(&t.app.config, &t.app.store, day)
        .await
        .unwrap();
    let report = crate::helpers::to_maps(billrecon::reports::ageing::COLUMNS, rows);

    // independently: the billing export minus the allocations, by the customer master's class
    let customers: HashMap<String, HashMap<String, String>> = csv_rows("customers.csv")
        .into_iter()
        .map(|c| (c["account_no"].clone(), c))
        .collect();
    let mut paid: HashMap<String, Decimal> = HashMap::new();
    for a in t.allocations().await {
        *paid.entry(a["bill_id"].clone()).or_default() += dec(&a["amount"]);
    }
    let mut expect: HashMap<(String, String), [Decimal; 5]> = HashMap::new();
    for b in csv_rows("bills.csv") {
        if b["status"] == "cancelled" {
            continue;
        }
        let owed = dec(&b["amount"]) - paid.get(&b["bill_id"]).copied().unwrap_or_default();
        if owed <= Decimal::ZERO {
            continue;
        }
        let due = chrono::NaiveDate::parse_from_str(&b["due_on"], "%Y-%m-%d").unwrap();
        let days = (day - due).num_days();
        let i = billrecon::reports::ageing::bucket(days);
        let c = &customers[&b["account_no"]];
        let manager = if c["manager"].is_empty() {
            "(none)".to_string()
        } else {
            c["manager"].clone()
        };
        for key in [
            ("class".to_string(), c["class"].clone()),
            ("manager".to_string(), manager),
            ("all".to_string(), "all".to_string()),
        ] {
            expect.entry(key).or_default()[i] += owed;
        }
    }
    assert!(!expect.is_empty());
    assert_eq!(report.len(), expect.len(), "{report:?}");
    let cols = [
        "not_yet_due",
        "days_1_30",
        "days_31_60",
        "days_61_90",
        "over_90",
    ];
    for ((by, group), buckets) in &expect {
        let r = report
            .iter()
            .find(|r| &r["by"] == by && &r["group"] == group)
            .unwrap_or_else(|| panic!("no row {by} {group}"));
        for (i, col) in cols.iter().enumerate() {
            assert_eq!(dec(&r[*col]), buckets[i], "{by} {group} {col}");
        }
        assert_eq!(dec(&r["total"]), buckets.iter().sum::<Decimal>());
        assert!(
            dec(&r["late_fees"]) > Decimal::ZERO,
            "{by} {group}: overdue on 2027-01-10"
        );
    }
}

#[tokio::test]
async fn the_exceptions_report_dates_exceptions_by_the_booking_day_as_the_settlement_does() {
    // the files of the 12th and the 13th, ingested today (weeks later): each exception counts
    // on its payment's booking day, not on the day matching ran
    let t = icbc_days(&["20261112", "20261113"]).await;
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let exceptions = t.exceptions().await;
    let report = |day: &'static str| {
        let store = t.app.store.clone();
        async move {
            crate::helpers::to_maps(
                billrecon::reports::exceptions::COLUMNS,
                billrecon::reports::exceptions::exceptions(&store, d(day))
                    .await
                    .unwrap(),
            )
        }
    };
    for day in ["2026-11-12", "2026-11-13", "2026-11-20"] {
        let rows = report(day).await;
        // (booked that day, its amount, open through the day, by age)
        type Expect = (usize, Decimal, usize, [usize; 4]);
        let mut expect: HashMap<(String, String), Expect> = HashMap::new();
        for e in &exceptions {
            let booked = d(&e["booking_date"]);
            if booked > d(day) {
                continue;
            }
            let age = (d(day) - booked).num_days();
            for reason in [e["reason"].clone(), "all".to_string()] {
                let x = expect.entry((reason, e["currency"].clone())).or_default();
                if e["booking_date"] == day {
                    x.0 += 1;
                    x.1 += dec(&e["amount"]);
                }
                x.2 += 1;
                x.3[billrecon::reports::exceptions::age_bucket(age)] += 1;
            }
        }
        assert!(expect.len() > 2, "{day}");
        assert_eq!(rows.len(), expect.len(), "{day}: {rows:?}");
        for ((reason, ccy), (booked, amount, queue, ages)) in &expect {
            let r = rows
                .iter()
                .find(|r| &r["reason"] == reason && &r["currency"] == ccy)
                .unwrap();
            assert_eq!(r["booked_count"], booked.to_string(), "{day} {reason}");
            assert_eq!(dec(&r["booked_amount"]), *amount, "{day} {reason}");
            assert_eq!(r["open_count"], booked.to_string(), "nothing resolved yet");
            assert_eq!(r["queue_count"], queue.to_string(), "{day} {reason}");
            for (i, c) in [
                "queue_0_1_days",
                "queue_2_7_days",
                "queue_8_30_days",
                "queue_over_30_days",
            ]
            .iter()
            .enumerate()
            {
                assert_eq!(r[*c], ages[i].to_string(), "{day} {reason} {c}");
            }
        }
        // the settlement of the day holds what the day's money received holds in the queue
        let settlement = crate::helpers::to_maps(
            billrecon::reports::settlement::COLUMNS,
            billrecon::reports::settlement::daily_settlement(&t.app.store, d(day))
                .await
                .unwrap(),
        );
        for s in settlement.iter().filter(|s| s["bank_id"] == "ALL") {
            let e = rows
                .iter()
                .find(|r| r["reason"] == "all" && r["currency"] == s["currency"])
                .unwrap();
            assert_eq!(e["open_received_amount"], s["held_in_exceptions"], "{day}");
        }
    }
    // the 13th's queue: the 12th's exceptions are a day old, both in the first bucket; on the
    // 20th they are 8 and 7 days old
    let on_20th = report("2026-11-20").await;
    let all = on_20th
        .iter()
        .find(|r| r["reason"] == "all" && r["currency"] == "CNY")
        .unwrap();
    assert_eq!(all["booked_count"], "0", "nothing was booked on the 20th");
    assert_ne!(all["queue_8_30_days"], "0");
    assert_ne!(all["queue_2_7_days"], "0");
    // the day before anything was booked, nothing was open
    assert!(report("2026-11-11").await.is_empty());
}

#[tokio::test]
async fn the_collection_rate_is_what_was_collected_of_what_was_billed() {
    let t = icbc_days(&["20261112", "20261113"]).await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let rows = billrecon::reports::collection::collection_rate(&t.app.store, day)
        .await
        .unwrap();
    let report = crate::helpers::to_maps(billrecon::reports::collection::COLUMNS, rows);
    // independently: bills issued in the 30 days up to the 20th, and what was allocated to them
    let from = day - chrono::Duration::days(29);
    let customers: HashMap<String, String> = csv_rows("customers.csv")
        .into_iter()
        .map(|c| (c["account_no"].clone(), c["class"].clone()))
        .collect();
    let mut collected_by_bill: HashMap<String, Decimal> = HashMap::new();
    for a in t.allocations().await {
        *collected_by_bill.entry(a["bill_id"].clone()).or_default() += dec(&a["amount"]);
    }
    let mut expect: HashMap<String, (Decimal, Decimal)> = HashMap::new();
    for b in csv_rows("bills.csv") {
        let issued = chrono::NaiveDate::parse_from_str(&b["issued_on"], "%Y-%m-%d").unwrap();
        if b["status"] == "cancelled" || issued < from || issued > day {
            continue;
        }
        let collected = collected_by_bill
            .get(&b["bill_id"])
            .copied()
            .unwrap_or_default();
        for group in [customers[&b["account_no"]].clone(), "all".to_string()] {
            let e = expect.entry(group).or_default();
            e.0 += dec(&b["amount"]);
            e.1 += collected;
        }
    }
    assert!(expect.len() > 2);
    for (group, (billed, collected)) in &expect {
        let r = report
            .iter()
            .find(|r| &r["group"] == group && (r["by"] == "class" || r["by"] == "all"))
            .unwrap_or_else(|| panic!("no row for {group}"));
        assert_eq!(dec(&r["billed"]), *billed, "{group}");
        assert_eq!(dec(&r["collected"]), *collected, "{group}");
        let rate = (*collected * Decimal::from(100) / *billed).round_dp(2);
        assert_eq!(dec(&r["collection_rate_pct"]), rate, "{group}");
    }
    // the daily trend adds up to what was collected in the window
    let trend: Decimal = report
        .iter()
        .filter(|r| r["by"] == "day")
        .map(|r| dec(&r["collected"]))
        .sum();
    assert_eq!(trend, expect["all"].1);
    // by channel: every payment here came in a bank file
    let channels: Vec<&HashMap<String, String>> =
        report.iter().filter(|r| r["by"] == "channel").collect();
    assert_eq!(channels.len(), 1, "{channels:?}");
    assert_eq!(channels[0]["group"], "file");
    assert_eq!(dec(&channels[0]["collected"]), expect["all"].1);
}

#[tokio::test]
async fn key_customers_are_the_largest_until_80_percent_of_billing() {
    let t = TestApp::spawn().await;
    t.import_fixtures().await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
    let rows = billrecon::reports::customers::key_customers(&t.app.store, day)
        .await
        .unwrap();
    let report = crate::helpers::to_maps(billrecon::reports::customers::KEY_COLUMNS, rows);
    // independently: billed per account in the year, largest first, until 80 % is reached
    let mut billed: HashMap<String, Decimal> = HashMap::new();
    for b in csv_rows("bills.csv") {
        if b["status"] != "cancelled" {
            *billed.entry(b["account_no"].clone()).or_default() += dec(&b["amount"]);
        }
    }
    let total: Decimal = billed.values().sum();
    let mut ranked: Vec<(String, Decimal)> = billed.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut expect = Vec::new();
    let mut cum = Decimal::ZERO;
    for (a, v) in ranked {
        if cum * Decimal::from(100) >= total * Decimal::from(80) {
            break;
        }
        cum += v;
        expect.push((a, v));
    }
    let got: Vec<(String, Decimal)> = report
        .iter()
        .map(|r| (r["account_no"].clone(), dec(&r["billed"])))
        .collect();
    assert_eq!(got, expect);
    assert!(dec(&report.last().unwrap()["cumulative_pct"]) >= Decimal::from(80));
}

#[tokio::test]
async fn payment_behaviour_counts_bills_on_time_and_late_and_flags_the_risky() {
    let t = TestApp::spawn().await;
    // the test camt file books every payment on 2026-11-12
    t.bills(&[
        ("A1", "31000001", "100.00", "2026-11-20", ""), // paid 8 days early
        ("B1", "31000002", "100.00", "2026-11-02", ""), // paid 10 days late
        ("B2", "31000002", "100.00", "2026-11-20", ""), // paid on time
        ("C1", "31000003", "100.00", "2026-11-02", ""), // never paid: 28 days late on the 30th
    ])
    .await;
    // B1 is paid with its late fee: 100.00 x 0.001 (residential) x 10 days = 1.00
    t.pay(
        "p.xml",
        &[
            Pay::new("P1", "100.00").reference("A1"),
            Pay::new("P2", "101.00").reference("B1"),
            Pay::new("P3", "100.00").reference("B2"),
        ],
    )
    .await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let rows = billrecon::reports::customers::payment_behaviour(&t.app.store, day)
        .await
        .unwrap();
    let report = crate::helpers::to_maps(billrecon::reports::customers::BEHAVIOUR_COLUMNS, rows);
    let row = |a: &str| {
        report
            .iter()
            .find(|r| r["account_no"] == a)
            .unwrap()
            .clone()
    };
    let a = row("31000001");
    assert_eq!(
        (
            a["on_time"].as_str(),
            a["late"].as_str(),
            a["risk"].as_str()
        ),
        ("1", "0", "low")
    );
    let b = row("31000002");
    assert_eq!((b["on_time"].as_str(), b["late"].as_str()), ("1", "1"));
    assert_eq!(b["avg_days_late"], "10.0");
    assert_eq!(b["on_time_rate_pct"], "50.00");
    assert_eq!(b["risk"], "medium");
    let c = row("31000003");
    assert_eq!(
        (
            c["late"].as_str(),
            c["avg_days_late"].as_str(),
            c["risk"].as_str()
        ),
        ("1", "28.0", "high")
    );
}

#[tokio::test]
async fn a_published_day_is_complete_matches_its_manifest_and_regenerates_to_the_same_bytes() {
    let t = icbc_days(&["20261112"]).await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 12).unwrap();
    let (a, b) = (t.dir.path().join("a"), t.dir.path().join("b"));
    use billrecon::reports::publish::publish;
    let first = publish(&t.app.config, &t.app.store, day, &a).await.unwrap();
    assert_eq!(first, a.join("2026/11/12"));
    let second = publish(&t.app.config, &t.app.store, day, &b).await.unwrap();
    let again = publish(&t.app.config, &t.app.store, day, &a).await.unwrap();
    assert_eq!(again, first, "republishing replaces the day's set");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 28, "seven reports, CSV, JSON, XLSX and HTML");
    use sha2::Digest;
    for f in files {
        let name = f["file"].as_str().unwrap();
        let bytes = std::fs::read(first.join(name)).unwrap();
        assert_eq!(
            f["sha256"],
            hex::encode(sha2::Sha256::digest(&bytes)),
            "{name}"
        );
        assert_eq!(
            bytes,
            std::fs::read(second.join(name)).unwrap(),
            "{name}: deterministic"
        );
        if name.ends_with(".csv") {
            assert!(
                bytes.starts_with("\u{feff}".as_bytes()),
                "{name}: BOM for Excel"
            );
        }
    }
    assert_eq!(
        std::fs::read(first.join("manifest.json")).unwrap(),
        std::fs::read(second.join("manifest.json")).unwrap()
    );
    // nothing half-written is left beside it
    let leftovers: Vec<_> = std::fs::read_dir(a.join("2026/11"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["12"]);
}

#[tokio::test]
async fn an_xlsx_report_reads_back_with_the_csv_values_as_numbers() {
    use calamine::{Data, Reader};
    let t = icbc_days(&["20261112"]).await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 12).unwrap();
    let rows = billrecon::reports::settlement::daily_settlement(&t.app.store, day)
        .await
        .unwrap();
    let cols = billrecon::reports::settlement::COLUMNS;
    let kind = billrecon::reports::ReportKind::DailySettlement;
    let bytes = billrecon::reports::xlsx::workbook(kind, cols, &rows, day, "zh").unwrap();
    assert_eq!(
        bytes,
        billrecon::reports::xlsx::workbook(kind, cols, &rows, day, "zh").unwrap(),
        "the same report gives the same bytes"
    );
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(wb.sheet_names(), ["日结算报表", "说明"]);
    // the about sheet: the title, the day and its clock, the summary
    let about = wb.worksheet_range("说明").unwrap();
    let text: Vec<String> = about
        .rows()
        .flat_map(|r| r.iter().map(|c| c.to_string()))
        .collect();
    assert_eq!(text[0], "日结算报表");
    assert!(
        text.iter().any(|c| c == "记账日 2026年11月12日"),
        "{text:?}"
    );
    assert!(
        text.iter().any(|c| c.starts_with("口径：记账日")),
        "{text:?}"
    );
    assert!(text.iter().any(|c| c.contains("收款金额 ¥")), "{text:?}");
    let range = wb.worksheet_range("日结算报表").unwrap();
    let header: Vec<String> = range
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let zh: Vec<String> = cols
        .iter()
        .map(|c| billrecon::reports::labels::heading(c, "zh"))
        .collect();
    assert_eq!(header, zh, "headings for people, in Chinese");
    let expected = crate::helpers::to_maps(cols, rows);
    for (row, want) in range.rows().skip(1).zip(&expected) {
        let cell = |name: &str| &row[cols.iter().position(|c| *c == name).unwrap()];
        assert_eq!(cell("bank_id"), &Data::String(want["bank_id"].clone()));
        match cell("received") {
            Data::Float(f) => assert_eq!(format!("{f:.2}"), want["received"], "a number, not text"),
            other => panic!("received is {other:?}"),
        }
        match cell("received_count") {
            Data::Float(f) => assert_eq!(format!("{f}"), want["received_count"]),
            other => panic!("received_count is {other:?}"),
        }
    }
    assert_eq!(range.rows().count(), expected.len() + 1);
}

/// A fresh app with the fixture customers and bills and ICBC's files of these days ingested.
async fn icbc_days(days: &[&str]) -> TestApp {
    let t = TestApp::spawn().await;
    t.import_fixtures().await;
    let files: Vec<_> = days
        .iter()
        .map(|d| fixture(&format!("banks/icbc/ICBC_{d}_camt054.xml")))
        .collect();
    t.ingest("ICBC", &files).await;
    t
}

/// What the receiver got: (headers, body) per request.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(HashMap<String, String>, Vec<u8>)>>>;

/// A receiver of posted reports on loopback: it wants a bearer token, answers 503 to the
/// very first request (the sender must retry), and keeps what it got.
async fn receiver(token: &'static str) -> (String, Received) {
    use axum::http::{HeaderMap, StatusCode};
    let got: Received = Default::default();
    let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (g, f) = (got.clone(), first.clone());
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (g, f) = (g.clone(), f.clone());
            async move {
                if f.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    != Some(&format!("Bearer {token}"))
                {
                    return StatusCode::UNAUTHORIZED;
                }
                let h = headers
                    .iter()
                    .filter(|(k, _)| {
                        k.as_str().starts_with("x-billrecon-") || k.as_str() == "content-type"
                    })
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                g.lock().unwrap().push((h, body.to_vec()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test]
async fn a_published_day_is_posted_to_the_configured_endpoint_file_by_file() {
    use sha2::Digest;
    let (url, got) = receiver("r3ports").await;
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, "r3ports\n").unwrap();
    let t = TestApp::spawn_with(&format!(
        "[reports]\n[[reports.post]]\nurl = \"{url}\"\ntoken_file = \"{}\"\nformats = [\"csv\", \"json\"]\nreports = [\"daily-settlement\", \"exceptions\"]\n",
        token_file.display()
    ))
    .await;
    t.import_fixtures().await;
    t.ingest("ICBC", &[fixture("banks/icbc/ICBC_20261112_camt054.xml")])
        .await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 12).unwrap();
    let dir = billrecon::reports::publish::publish(
        &t.app.config,
        &t.app.store,
        day,
        &t.dir.path().join("r"),
    )
    .await
    .unwrap();
    let results =
        billrecon::reports::deliver::deliver(&t.app.config.reports.post, &dir, None).await;
    assert_eq!(results.len(), 1);
    let d = results[0].as_ref().unwrap();
    // two reports in two forms, then the manifest
    assert_eq!(d.files, 5);
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 5);
    let manifest_bytes = std::fs::read(dir.join("manifest.json")).unwrap();
    for (headers, body) in got.iter() {
        let file = &headers["x-billrecon-file"];
        let on_disk = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(body, &on_disk, "{file} arrives byte for byte");
        assert_eq!(
            headers["x-billrecon-sha256"],
            hex::encode(sha2::Sha256::digest(body))
        );
        assert_eq!(headers["x-billrecon-date"], "2026-11-12");
    }
    let names: Vec<&str> = got
        .iter()
        .map(|(h, _)| h["x-billrecon-file"].as_str())
        .collect();
    assert_eq!(names.last(), Some(&"manifest.json"));
    assert!(names.contains(&"daily-settlement.csv") && names.contains(&"exceptions.json"));
    assert_eq!(got.last().unwrap().1, manifest_bytes);
    // a wrong token is a failure named with the endpoint and the file, not retried forever
    let bad = billrecon::config::ReportPost {
        token_file: None,
        token_env: None,
        ..t.app.config.reports.post[0].clone()
    };
    let r = billrecon::reports::deliver::deliver(&[bad], &dir, None).await;
    let e = r[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("401") && e.contains(&url), "{e}");
}

#[tokio::test]
async fn a_report_on_its_own_schedule_replaces_its_files_and_its_manifest_entries_only() {
    use sha2::Digest;
    let t = icbc_days(&["20261112"]).await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 12).unwrap();
    let root = t.dir.path().join("r");
    let dir = billrecon::reports::publish::publish(&t.app.config, &t.app.store, day, &root)
        .await
        .unwrap();
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p.join("manifest.json")).unwrap()).unwrap()
    };
    let before = read(&dir);
    // an exception is resolved meanwhile: the exceptions report changes, nothing else does
    let ex = t.exceptions().await;
    let id: i64 = ex
        .iter()
        .find(|e| e["reason"] == "unknown_reference" && !e["amount"].starts_with('-'))
        .expect("the fixture day has an unknown reference")["exception_id"]
        .parse()
        .unwrap();
    billrecon::workbench::resolve::resolve(
        &t.app.store,
        &t.app.config,
        &billrecon::workbench::Actor {
            name: "li".into(),
            role: billrecon::workbench::Role::Clerk,
        },
        id,
        &billrecon::workbench::resolve::Action::Refund { to: None },
        "payer asked for it back",
    )
    .await
    .unwrap();
    let again = billrecon::reports::publish::publish_one(
        &t.app.config,
        &t.app.store,
        billrecon::reports::ReportKind::SettlementLines,
        day,
        &root,
    )
    .await
    .unwrap();
    assert_eq!(again, dir);
    let after = read(&dir);
    let files = |m: &serde_json::Value| -> HashMap<String, String> {
        m["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["file"].as_str().unwrap().to_string(),
                    f["sha256"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (b, a) = (files(&before), files(&after));
    assert_eq!(a.len(), 28, "every report still listed once");
    for (file, sha) in &a {
        // every entry matches its file on disk
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(&hex::encode(sha2::Sha256::digest(&bytes)), sha, "{file}");
        if file.starts_with("settlement-lines.") {
            continue;
        }
        assert_eq!(b[file], *sha, "{file} was not touched");
    }
    // the refunded line now shows in the lines behind the settlement
    let lines = std::fs::read_to_string(dir.join("settlement-lines.csv")).unwrap();
    assert!(lines.contains("refunded"), "{lines}");
    assert_ne!(b["settlement-lines.csv"], a["settlement-lines.csv"]);
}

#[tokio::test]
async fn a_customer_named_like_a_formula_is_neutralized_in_every_csv_and_amounts_stay_numbers() {
    let t = TestApp::spawn().await;
    let c = t.write(
        "customers.csv",
        "account_no,name,class,key_account,manager,phone,email\n\
         4100000001,-2+3,commercial,true,M1,,\n\
         4100000002,-1+1+cmd|' /C calc'!A0,residential,false,,,\n\
         4100000003,=HYPERLINK(\"x\"),residential,false,,,\n",
    );
    billrecon::billing::import_customers(&t.app.store, &c)
        .await
        .unwrap();
    let b = t.write(
        "bills.csv",
        "bill_id,account_no,period,amount,currency,issued_on,due_on\n\
         B1,4100000001,2026-10,900.00,CNY,2026-10-01,2026-10-20\n\
         B2,4100000002,2026-10,50.00,CNY,2026-10-01,2026-10-20\n\
         B3,4100000003,2026-10,50.00,CNY,2026-10-01,2026-10-20\n",
    );
    billrecon::billing::import_bills(&t.app.store, &b)
        .await
        .unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 12).unwrap();
    let dir = billrecon::reports::publish::publish(
        &t.app.config,
        &t.app.store,
        day,
        &t.dir.path().join("r"),
    )
    .await
    .unwrap();
    for file in ["key-customers.csv", "payment-behaviour.csv"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let mut r = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let headers = r.headers().unwrap().clone();
        let name = headers.iter().position(|h| h == "name").unwrap();
        let names: Vec<String> = r
            .records()
            .map(|rec| rec.unwrap()[name].to_string())
            .collect();
        assert!(names.contains(&"'-2+3".to_string()), "{file}: {names:?}");
        for n in &names {
            assert!(n.starts_with('\''), "{file}: {n} is not neutralized");
        }
    }
    // amounts are numbers, not text, in the same files
    let key = std::fs::read_to_string(dir.join("key-customers.csv")).unwrap();
    assert!(key.contains(",900.00,"), "{key}");
    // the HTML page shows the name as it is, escaped
    let html = std::fs::read_to_string(dir.join("key-customers.html")).unwrap();
    assert!(html.contains(">-2+3<"), "{html}");
}
