//! Every report and the morning check, rendered in headless Chromium (Debian's chromium driven
//! by Playwright, tests/browser/reports.mjs) and read back as a person sees them: the titles
//! in the page's language, the summary's figures against the data, the charts' values against
//! the data (and their drawn sizes against each other), the empty-report text, the morning
//! check's links; and one-click resolutions in Chinese. The screenshots (and PDFs on A4) stay
//! in `target/test-artifacts/render/`.
//!
//! The data: yesterday's and today's files (in the daemon's time zone), a partner bank's day,
//! a bank whose pulls fail, exceptions of every age.

use crate::helpers::{camt054_on, serve, Pay, TestApp};
use billrecon::api::auth::{self, Role};
use billrecon::reports::ReportKind;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::HashMap;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

/// Where the screenshots are kept.
fn artifacts() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/render");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const CONFIG: &str = "[daemon]\ntime_zone = \"Asia/Shanghai\"\nunhealthy_after = 1\n\
[reports]\nlanguage = \"zh\"\n\
[[bank]]\nid = \"PB\"\nname = \"Partner bank\"\nformat = \"auto\"\n\
[bank.partner]\ncutoff = \"17:00\"\nfee_rate = \"0.001\"\n\
[[bank]]\nid = \"DOWN\"\nname = \"Down bank\"\nformat = \"camt054\"\n\
source = { kind = \"https\", base_url = \"http://127.0.0.1:9/api\", retries = 0, timeout_secs = 2 }\n";

/// A camt.054 with the credit totals it declares (TxsSummry), as banks send them.
fn declared(xml: String, pays: &[Pay]) -> String {
    let mut out = String::new();
    let mut rest = xml.as_str();
    while let Some(i) = rest.find("</Acct>") {
        let (head, tail) = rest.split_at(i + "</Acct>".len());
        // the notification's currency
        let ccy = head
            .rsplit("<Ccy>")
            .next()
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        let credits: Vec<&Pay> = pays
            .iter()
            .filter(|p| !p.debit && p.currency == ccy)
            .collect();
        let sum: i64 = credits
            .iter()
            .map(|p| crate::helpers::cents(p.amount))
            .sum();
        out.push_str(head);
        out.push_str(&format!(
            "<TxsSummry><TtlCdtNtries><NbOfNtries>{}</NbOfNtries><Sum>{}.{:02}</Sum></TtlCdtNtries></TxsSummry>",
            credits.len(),
            sum / 100,
            sum % 100
        ));
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_report_and_the_morning_check_render_in_chromium_with_the_datas_figures() {
    let tools = crate::ui::browser_tools();
    let t = TestApp::spawn_with(CONFIG).await;
    let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let yesterday = today - chrono::Duration::days(1);
    let ago = |n: i64| today - chrono::Duration::days(n);
    // customers of every class, bills issued over the last 40 days
    let c = t.write(
        "customers.csv",
        "account_no,name,class,key_account,manager,phone,email\n\
         4100000001,张伟,residential,false,,,\n\
         4100000002,李娜,residential,false,,,\n\
         4100000003,华东商贸有限公司,commercial,false,M01,,\n\
         4100000004,Northern Steel Works,large_industrial,true,M01,,\n\
         4100000005,周家农场,agricultural,false,,,\n\
         4100000006,宏达机械厂,industrial,false,M02,,\n",
    );
    billrecon::billing::import_customers(&t.app.store, &c)
        .await
        .unwrap();
    let mut bills = String::from("bill_id,account_no,period,amount,currency,issued_on,due_on\n");
    let amounts = [
        "120.00",
        "86.50",
        "3400.00",
        "125000.00",
        "66.60",
        "9800.00",
        "77.00",
        "240.00",
        "1500.00",
        "31000.00",
        "45.00",
        "5200.00",
    ];
    for (i, amount) in amounts.iter().enumerate() {
        let issued = ago(40 - 3 * i as i64);
        bills.push_str(&format!(
            "B{i:02},41000000{:02},{},{amount},CNY,{issued},{}\n",
            i % 6 + 1,
            issued.format("%Y-%m"),
            issued + chrono::Duration::days(15)
        ));
    }
    let b = t.write("bills.csv", &bills);
    billrecon::billing::import_bills(&t.app.store, &b)
        .await
        .unwrap();
    // yesterday's ICBC file: paid bills, an overpayment, an unknown reference whose amount is
    // one bill's balance, a debit, a payment in dollars
    let icbc = vec![
        Pay::new("I-1", "120.00").reference("B00"),
        Pay::new("I-2", "3400.00").reference("B02"),
        Pay::new("I-3", "150000.00").reference("4100000004"),
        Pay::new("I-4", "77.00").text("电费"),
        Pay::new("I-5", "15.00").debit(),
        Pay::new("I-6", "100.00").currency("USD").reference("B01"),
    ];
    let f = t.write(
        "icbc-1.xml",
        &declared(camt054_on("ICBC-1", &yesterday.to_string(), &icbc), &icbc),
    );
    t.ingest("ICBC", &[f]).await;
    // the same transaction again in a second file: a duplicate
    let again = vec![Pay::new("I-1", "120.00").reference("B00")];
    let f = t.write(
        "icbc-2.xml",
        &declared(camt054_on("ICBC-2", &yesterday.to_string(), &again), &again),
    );
    t.ingest("ICBC", &[f]).await;
    // today's CMB file
    let cmb = vec![
        Pay::new("C-1", "1500.00").reference("B08"),
        Pay::new("C-2", "240.00").reference("B07"),
    ];
    let f = t.write(
        "cmb.xml",
        &declared(camt054_on("CMB-1", &today.to_string(), &cmb), &cmb),
    );
    t.ingest("CMB", &[f]).await;
    // older exceptions: 12 and 40 days ago
    for (n, name) in [(12, "old-12"), (40, "old-40")] {
        let p = vec![Pay::new(name, "10.00").text("unknown")];
        let f = t.write(name, &camt054_on(name, &ago(n).to_string(), &p));
        t.ingest("TEST", &[f]).await;
    }
    // the partner bank's day: two postings yesterday, then its file with one of them at
    // another amount and one it never posted online
    let pb = t.app.bank("PB").unwrap().clone();
    for (txn, bill, amount) in [("T1", "B05", "9800.00"), ("T2", "B03", "1000.00")] {
        billrecon::partner::post_payment(
            &t.app.store,
            &t.app.config,
            &pb,
            &billrecon::partner::PaymentRequest {
                bank_txn_id: txn.into(),
                account_no: None,
                bill_id: Some(bill.into()),
                amount: amount.parse().unwrap(),
                currency: "CNY".into(),
                paid_at: format!("{yesterday}T10:00:00+08:00").parse().unwrap(),
                channel: Some("counter".into()),
            },
        )
        .await
        .unwrap();
    }
    let pb_file = vec![
        Pay::new("T1", "9800.00"),
        Pay::new("T2", "1100.00"),
        Pay::new("X9", "66.60").reference("B04"),
    ];
    let f = t.write(
        "pb.xml",
        &camt054_on("PB-EOD", &yesterday.to_string(), &pb_file),
    );
    t.ingest("PB", &[f]).await;
    let eod = billrecon::partner::eod::day_result(&t.app.store, "PB", &yesterday.to_string())
        .await
        .unwrap()
        .expect("the partner's day was compared");
    assert!(!eod.discrepancies.is_empty());
    t.assert_verified().await;

    // what the pages must show, from the data
    let exports_payments = t.payments().await;
    let open: Vec<HashMap<String, String>> = t.exceptions().await;
    let dup_id: i64 = open.iter().find(|e| e["reason"] == "duplicate").unwrap()["exception_id"]
        .parse()
        .unwrap();
    let unknown_id: i64 = open.iter().find(|e| e["bank_ref"] == "I-4").unwrap()["exception_id"]
        .parse()
        .unwrap();
    let usd_id: i64 = open.iter().find(|e| e["bank_ref"] == "I-6").unwrap()["exception_id"]
        .parse()
        .unwrap();
    type Table<'a> = (Vec<&'a str>, Vec<Vec<Option<String>>>);
    let mut reports: HashMap<String, Table> = HashMap::new();
    let mut plan = vec![];
    let report_day = yesterday;
    for kind in ReportKind::ALL {
        let (cols, rows) = kind
            .build(&t.app.config, &t.app.store, report_day)
            .await
            .unwrap();
        reports.insert(kind.name().to_string(), (cols.to_vec(), rows));
        for lang in ["zh", "en"] {
            plan.push(json!({
                "name": format!("{}-{lang}", kind.name()),
                "path": format!("/ui/reports/{}?date={report_day}&lang={lang}", kind.name()),
                "pdf": lang == "zh",
            }));
        }
    }
    // empty reports: a day long before anything
    let early = NaiveDate::from_ymd_opt(2025, 1, 15).unwrap();
    for kind in [
        ReportKind::DailySettlement,
        ReportKind::CollectionRate,
        ReportKind::Ageing,
    ] {
        for lang in ["zh", "en"] {
            plan.push(json!({
                "name": format!("{}-empty-{lang}", kind.name()),
                "path": format!("/ui/reports/{}?date={early}&lang={lang}", kind.name()),
            }));
        }
    }
    plan.push(json!({"name": "dashboard-zh", "path": "/ui/?lang=zh", "follow_reasons": true, "pdf": false}));
    plan.push(json!({"name": "dashboard-en", "path": "/ui/?lang=en"}));
    plan.push(json!({"name": "queue-zh", "path": "/ui/queue?lang=zh&sort=oldest"}));

    // the morning check's figures, as the data stands before the browser resolves anything
    let mut day_rows = HashMap::new();
    for d in [yesterday, today] {
        let rows = billrecon::reports::settlement::daily_settlement(&t.app.store, d)
            .await
            .unwrap();
        day_rows.insert(
            d,
            crate::helpers::to_maps(billrecon::reports::settlement::COLUMNS, rows),
        );
    }
    let rate_today = crate::helpers::to_maps(
        billrecon::reports::collection::COLUMNS,
        billrecon::reports::collection::collection_rate(&t.app.store, today)
            .await
            .unwrap(),
    );
    let token = auth::add_user(&t.app.store, "wang", Role::Supervisor, "cli:test")
        .await
        .unwrap();
    let s = serve(t).await;
    // the failing bank's first pull has run and made it unhealthy
    for i in 0..200 {
        let (_, ready) = s.get("/readyz", None).await;
        if ready["unhealthy_banks"].to_string().contains("DOWN") {
            break;
        }
        assert!(i < 199, "DOWN never turned unhealthy: {ready}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let dir = artifacts();
    let plan_file = s.dir.path().join("plan.json");
    std::fs::write(
        &plan_file,
        serde_json::to_string(&json!({
            "pages": plan,
            "one_click": [
                {"name": "duplicate", "id": dup_id},
                {"name": "only-bill", "id": unknown_id},
                {"name": "dollars", "id": usd_id},
            ],
        }))
        .unwrap(),
    )
    .unwrap();
    let out = tokio::process::Command::new("node")
        .arg(tools.join("reports.mjs"))
        .arg(&s.http)
        .arg("wang")
        .arg(&token)
        .arg(&dir)
        .arg(&plan_file)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    std::fs::write(
        dir.join("seen.json"),
        serde_json::to_string_pretty(&seen).unwrap(),
    )
    .unwrap();
    let page = |name: &str| seen["pages"][name].clone();

    // every report: its title in the page's language, the clock in its header, a screenshot
    for kind in ReportKind::ALL {
        for lang in ["zh", "en"] {
            let p = page(&format!("{}-{lang}", kind.name()));
            assert_eq!(
                p["title"],
                billrecon::reports::view::title(kind, lang),
                "{}",
                kind.name()
            );
            let clock = billrecon::reports::view::clock_name(kind, lang);
            assert!(p["date"].as_str().unwrap().starts_with(&clock), "{p}");
            assert!(p["clock"].as_str().unwrap().len() > 20);
            let png = std::fs::read(p["screenshot"].as_str().unwrap()).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            // the detail's headings are the columns' names for people
            for h in p["headings"].as_array().unwrap() {
                let column = h["column"].as_str().unwrap();
                if column == "group" {
                    continue; // named by the section's dimension
                }
                assert_eq!(
                    h["text"],
                    billrecon::reports::labels::heading(column, lang),
                    "{column}"
                );
            }
            if lang == "zh" {
                // printed on A4: the PDF exists and the charts fit the page
                let pdf = std::fs::read(p["pdf"].as_str().unwrap()).unwrap();
                assert!(pdf.starts_with(b"%PDF"));
                let body = p["print"]["body"].as_f64().unwrap();
                for w in p["print"]["charts"].as_array().unwrap() {
                    assert!(
                        w.as_f64().unwrap() <= body + 0.5,
                        "a chart wider than the page"
                    );
                }
            }
        }
    }
    // the settlement: received = applied + credit + held + refunded + written off, per bank,
    // the summary's figures the lines of the export, the bars the figures
    let settlement = page("daily-settlement-zh");
    let day = report_day.to_string();
    let lines: Vec<&HashMap<String, String>> = exports_payments
        .iter()
        .filter(|p| p["booking_date"] == day)
        .collect();
    let fact = |p: &Value, key: &str| -> String {
        p["facts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
            .unwrap_or_else(|| panic!("no figure {key} in {}", p["facts"]))["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut banks: Vec<(String, String)> = lines
        .iter()
        .filter(|p| p["status"] != "confirmed")
        .map(|p| (p["bank_id"].clone(), p["currency"].clone()))
        .collect();
    banks.sort();
    banks.dedup();
    assert!(banks.len() >= 3, "{banks:?}");
    for (bank, ccy) in &banks {
        let mine: Vec<&&HashMap<String, String>> = lines
            .iter()
            .filter(|p| {
                &p["bank_id"] == bank
                    && &p["currency"] == ccy
                    && p["direction"] == "credit"
                    && p["reversal"] == "false"
                    && !["rejected", "cancelled", "confirmed"].contains(&p["status"].as_str())
            })
            .collect();
        let sum = |c: &str| -> Decimal { mine.iter().map(|p| dec(&p[c])).sum() };
        let key = |c: &str| format!("{c}:{bank}:{ccy}");
        assert_eq!(
            dec(&fact(&settlement, &key("received"))),
            sum("amount"),
            "{bank}"
        );
        let mut went = Decimal::ZERO;
        for (c, e) in [
            ("applied", "applied"),
            ("credit", "credit"),
            ("held_in_exceptions", "held"),
            ("refunded", "refunded"),
            ("written_off", "written_off"),
        ] {
            assert_eq!(dec(&fact(&settlement, &key(c))), sum(e), "{bank} {c}");
            went += sum(e);
        }
        assert_eq!(went, sum("amount"), "{bank}: it adds up");
        // the stacked bar of the bank: its segments are the figures, drawn to scale
        let chart = settlement["charts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["title"].as_str().unwrap().contains(ccy.as_str()))
            .unwrap();
        let segs: Vec<&Value> = chart["segs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["category"] == bank.as_str())
            .collect();
        assert_eq!(segs.len(), 5, "{bank}: five segments");
        for s in &segs {
            let c = s["series"].as_str().unwrap();
            let e = if c == "held_in_exceptions" { "held" } else { c };
            assert_eq!(dec(s["value"].as_str().unwrap()), sum(e), "{bank} {c} bar");
        }
    }
    // drawn to scale: within a chart, width per unit is the same for every segment
    for chart in settlement["charts"].as_array().unwrap() {
        let segs: Vec<(f64, f64)> = chart["segs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    dec(s["value"].as_str().unwrap())
                        .to_string()
                        .parse::<f64>()
                        .unwrap(),
                    s["w"].as_f64().unwrap(),
                )
            })
            .filter(|(v, _)| *v > 0.0)
            .collect();
        let (v0, w0) = segs
            .iter()
            .copied()
            .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
        for (v, w) in &segs {
            assert!(
                (w - v / v0 * w0).abs() < 1.5,
                "{v} drawn {w}, {v0} drawn {w0}"
            );
        }
    }
    // the exceptions report: the day's queue by reason, its charts the report's counts
    let (cols, rows) = &reports["exceptions"];
    let ex = crate::helpers::to_maps(cols, rows.clone());
    let exceptions = page("exceptions-zh");
    for r in ex.iter().filter(|r| r["reason"] == "all") {
        let ccy = &r["currency"];
        for c in [
            "booked_count",
            "booked_amount",
            "open_received_amount",
            "queue_count",
        ] {
            assert_eq!(fact(&exceptions, &format!("{c}:all:{ccy}")), r[c], "{c}");
        }
    }
    let by_reason = &exceptions["charts"][0];
    for r in ex.iter().filter(|r| r["reason"] != "all") {
        let word = billrecon::reports::labels::word("reason", &r["reason"], "zh");
        let drawn: Decimal = by_reason["segs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["category"] == word.as_str() && s["series"] != "booked_resolved")
            .map(|s| dec(s["value"].as_str().unwrap()))
            .sum();
        let queued: Decimal = ex
            .iter()
            .filter(|x| x["reason"] == r["reason"])
            .map(|x| dec(&x["queue_count"]))
            .sum();
        assert_eq!(drawn, queued, "{}", r["reason"]);
    }
    let by_age = &exceptions["charts"][1];
    let all_cny = ex
        .iter()
        .find(|r| r["reason"] == "all" && r["currency"] == "CNY")
        .unwrap();
    for (i, c) in [
        "queue_0_1_days",
        "queue_2_7_days",
        "queue_8_30_days",
        "queue_over_30_days",
    ]
    .iter()
    .enumerate()
    {
        let total = &by_age["totals"][i];
        let usd: Decimal = ex
            .iter()
            .filter(|r| r["reason"] == "all" && r["currency"] != "CNY")
            .map(|r| dec(&r[*c]))
            .sum();
        assert_eq!(
            dec(total["value"].as_str().unwrap()),
            dec(&all_cny[*c]) + usd,
            "{c}"
        );
    }
    // ageing: buckets by class
    let (cols, rows) = &reports["ageing"];
    let ageing_rows = crate::helpers::to_maps(cols, rows.clone());
    let ageing = page("ageing-zh");
    let all = ageing_rows.iter().find(|r| r["by"] == "all").unwrap();
    assert_eq!(fact(&ageing, "total:all:CNY"), all["total"]);
    assert_eq!(fact(&ageing, "late_fees:all:CNY"), all["late_fees"]);
    for r in ageing_rows.iter().filter(|r| r["by"] == "class") {
        let word = billrecon::reports::labels::word("class", &r["group"], "zh");
        for b in [
            "not_yet_due",
            "days_1_30",
            "days_31_60",
            "days_61_90",
            "over_90",
        ] {
            let drawn = ageing["charts"][0]["segs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["category"] == word.as_str() && s["series"] == b)
                .unwrap_or_else(|| panic!("no {word} {b}"));
            assert_eq!(drawn["value"], r[b].as_str(), "{word} {b}");
        }
    }
    // the collection rate: the figures, and the line's points the day rows' rate so far
    let (cols, rows) = &reports["collection-rate"];
    let rate_rows = crate::helpers::to_maps(cols, rows.clone());
    let rate = page("collection-rate-zh");
    let all = rate_rows.iter().find(|r| r["by"] == "all").unwrap();
    assert_eq!(
        fact(&rate, "collection_rate_pct:all:CNY"),
        all["collection_rate_pct"]
    );
    let points = rate["charts"][0]["points"].as_array().unwrap();
    let days: Vec<&HashMap<String, String>> =
        rate_rows.iter().filter(|r| r["by"] == "day").collect();
    assert!(days.len() >= 3);
    assert_eq!(points.len(), days.len());
    for d in &days {
        let p = points
            .iter()
            .find(|p| p["x"] == d["group"].as_str())
            .unwrap();
        assert_eq!(p["value"], d["collection_rate_pct"].as_str());
    }
    assert_eq!(
        points.last().unwrap()["value"],
        all["collection_rate_pct"].as_str(),
        "the line ends at the window's rate"
    );
    // key customers: the Pareto bars, the cumulative line and the 80 % line
    let (cols, rows) = &reports["key-customers"];
    let key_rows = crate::helpers::to_maps(cols, rows.clone());
    let key = page("key-customers-zh");
    let chart = &key["charts"][0];
    assert_eq!(chart["guides"], json!(["80"]));
    assert_eq!(chart["bars"].as_array().unwrap().len(), key_rows.len());
    for (i, r) in key_rows.iter().enumerate() {
        assert_eq!(chart["bars"][i]["value"], r["billed"].as_str());
        assert_eq!(
            chart["cumulative"][i]["value"],
            r["cumulative_pct"].as_str()
        );
    }
    assert!(dec(key_rows.last().unwrap()["cumulative_pct"].as_str()) >= Decimal::from(80));
    // payment behaviour: customers by risk
    let (cols, rows) = &reports["payment-behaviour"];
    let beh = crate::helpers::to_maps(cols, rows.clone());
    let behaviour = page("payment-behaviour-zh");
    for risk in ["high", "medium", "low"] {
        let n = beh.iter().filter(|r| r["risk"] == risk).count();
        assert_eq!(
            fact(&behaviour, &format!("risk:{risk}")),
            n.to_string(),
            "{risk}"
        );
    }
    // the lines behind the settlement
    let (cols, rows) = &reports["settlement-lines"];
    let lines_page = page("settlement-lines-en");
    assert_eq!(fact(&lines_page, "lines"), rows.len().to_string());
    assert!(cols.contains(&"detail"));
    assert!(
        page("settlement-lines-zh")["body"]
            .as_str()
            .unwrap()
            .contains("与付款"),
        "the details in Chinese"
    );
    // empty reports say why
    for kind in [
        ReportKind::DailySettlement,
        ReportKind::CollectionRate,
        ReportKind::Ageing,
    ] {
        for lang in ["zh", "en"] {
            let p = page(&format!("{}-empty-{lang}", kind.name()));
            let empty = p["empty"].as_str().unwrap_or_else(|| panic!("{p}"));
            let want = billrecon::reports::view::view(kind, early, &[], &[], lang)
                .empty
                .unwrap();
            assert_eq!(empty, want);
            assert!(p["charts"].as_array().unwrap().is_empty());
        }
    }
    assert!(page("collection-rate-empty-zh")["empty"]
        .as_str()
        .unwrap()
        .contains("期间没有开具账单"));

    // the morning check
    let dash = page("dashboard-zh");
    assert!(dash["title"].as_str().unwrap().starts_with("今日晨检"));
    assert_eq!(dash["unlinked"], 0, "every figure links to its detail");
    for f in dash["facts"].as_array().unwrap() {
        assert!(
            f["href"].as_str().is_some_and(|h| h.starts_with("/ui/")),
            "{f}"
        );
    }
    // yesterday's and today's settlement per bank, as the report of each day
    for d in [yesterday, today] {
        let rows = &day_rows[&d];
        assert!(!rows.is_empty(), "{d}");
        let section = format!("settlement-{d}");
        for r in rows {
            for c in [
                "received_count",
                "received",
                "applied",
                "credit",
                "held_in_exceptions",
                "read_credits",
                "declared_credits",
                "difference",
            ] {
                let shown = dash["facts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| {
                        f["section"] == section.as_str()
                            && f["key"] == c
                            && f["row"]["bank"] == r["bank_id"].as_str()
                            && f["row"]["currency"] == r["currency"].as_str()
                    })
                    .unwrap_or_else(|| panic!("{section} {} {c}", r["bank_id"]));
                assert_eq!(
                    shown["value"],
                    r[c].as_str(),
                    "{section} {} {c}",
                    r["bank_id"]
                );
            }
        }
        // the files as declared: no difference for ICBC yesterday
        if d == yesterday {
            let icbc = rows
                .iter()
                .find(|r| r["bank_id"] == "ICBC" && r["currency"] == "CNY")
                .unwrap();
            assert_eq!(icbc["difference"], "0.00");
            assert_eq!(icbc["declared_credits"], icbc["read_credits"]);
        }
    }
    // the banks: the failing one is flagged, its file late
    let banks = dash["rows"]["banks"].as_array().unwrap();
    let down = banks.iter().find(|b| b["bank"] == "DOWN").unwrap();
    assert_eq!(down["late"], true, "{down}");
    assert!(down["text"].as_str().unwrap().contains("异常"), "{down}");
    let icbc = banks.iter().find(|b| b["bank"] == "ICBC").unwrap();
    assert!(
        icbc["text"].as_str().unwrap().contains("icbc-2.xml"),
        "{icbc}"
    );
    // the queue by reason, oldest first; each reason's link leads to as many items
    let reasons = dash["rows"]["reasons"].as_array().unwrap();
    let mut expect: HashMap<String, usize> = HashMap::new();
    for e in &open {
        *expect.entry(e["reason"].clone()).or_default() += 1;
    }
    assert_eq!(reasons.len(), expect.len());
    assert_eq!(
        reasons[0]["reason"], "unknown_reference",
        "the 40-day-old one leads"
    );
    for r in reasons {
        let reason = r["reason"].as_str().unwrap();
        assert_eq!(dash["followed"][reason], expect[reason], "{reason}");
        let count = dash["facts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == "count" && f["row"]["reason"] == reason)
            .unwrap();
        assert_eq!(count["value"], expect[reason].to_string());
    }
    let ages: Vec<usize> = (0..4)
        .map(|i| {
            dash["facts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["key"] == format!("age{i}").as_str())
                .map(|f| f["value"].as_str().unwrap().parse::<usize>().unwrap())
                .sum()
        })
        .collect();
    assert_eq!(ages.iter().sum::<usize>(), open.len());
    assert!(ages[2] >= 1 && ages[3] >= 1, "12 and 40 days old: {ages:?}");
    // the collection rate's 30 days, as the report of today
    let all = rate_today.iter().find(|r| r["by"] == "all").unwrap();
    let kpi = dash["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "collection_rate_pct")
        .unwrap();
    assert_eq!(kpi["value"], all["collection_rate_pct"].as_str());
    let line = dash["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"].as_str().unwrap().contains("line"))
        .unwrap();
    assert_eq!(
        line["points"].as_array().unwrap().last().unwrap()["value"],
        all["collection_rate_pct"].as_str()
    );
    // the partner bank's day: real-time versus file
    let partners = dash["rows"]["partners"].as_array().unwrap();
    let pb = partners
        .iter()
        .find(|p| p["bank"] == "PB" && p["date"] == yesterday.to_string().as_str())
        .unwrap();
    let matched = dash["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "matched" && f["row"]["bank"] == "PB")
        .unwrap();
    assert_eq!(matched["value"], eod.matched.to_string());
    let disc = dash["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "discrepancies" && f["row"]["bank"] == "PB")
        .unwrap();
    assert_eq!(disc["value"], eod.discrepancies.len().to_string());
    assert!(pb["text"].as_str().unwrap().contains('¥'), "{pb}");
    // in English too
    let en = page("dashboard-en");
    assert!(en["title"]
        .as_str()
        .unwrap()
        .starts_with("The morning check"));
    assert!(!en["body"].as_str().unwrap().contains("异常队列"));

    // one click where one answer is clear, in Chinese
    let dup = &seen["one_click"]["duplicate"];
    assert_eq!(dup["before"]["reason"], "重复交易");
    assert!(
        dup["before"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("与付款 "),
        "{dup}"
    );
    assert_eq!(dup["before"]["direction"], "贷记（收入）");
    assert_eq!(dup["before"]["status"], "异常挂账");
    assert_eq!(dup["before"]["offered"], "reject_duplicate");
    assert_eq!(dup["after"]["status"], "rejected");
    assert_eq!(dup["after"]["status_text"], "已剔除（重复）");
    for english in ["credit", "exception", "same bank transaction", "Duplicate"] {
        assert!(
            !dup["before"]["body"].as_str().unwrap().contains(english),
            "English `{english}` on a Chinese page"
        );
    }
    let only = &seen["one_click"]["only-bill"];
    assert_eq!(only["before"]["offered"], "apply_bill");
    assert!(
        only["before"]["why"].as_str().unwrap().contains("B06"),
        "{only}"
    );
    assert_eq!(only["after"]["status"], "applied");
    let usd = &seen["one_click"]["dollars"];
    assert_eq!(usd["before"]["offered"], "refund");
    assert!(
        usd["before"]["detail"]
            .as_str()
            .unwrap()
            .contains("付款币种为 USD"),
        "{usd}"
    );
    assert_eq!(usd["after"]["status"], "refunded");
    let v = billrecon::ledger::verify(&s.app.store).await.unwrap();
    assert!(v.ok, "{v}");
    s.stop().await;
}
