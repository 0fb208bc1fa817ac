//! Partner banks online, below HTTP: real-time postings with the core's rules, idempotency,
//! same-day reversals, and the end-of-day comparison with the bank's file. Expected amounts
//! come from the test's own inputs; `verify` must hold after every step.

use crate::helpers::{camt054, cents, Pay, TestApp};
use billrecon::partner::{self, PartnerError, PaymentRequest};

const A: &str = "4100000001";
const B: &str = "4100000002";

/// A partner bank PB (cut-off 17:00 in Shanghai, 0.1 % fee, its transfer recognized by "PB
/// settlement", optionally a return file) and the utility's own account OWN, beside the
/// helper's banks.
fn pb(return_dir: Option<&std::path::Path>) -> String {
    let ret = match return_dir {
        Some(d) => format!(
            "[bank.partner.return_file]\ndir = \"{}\"\nencoding = \"gbk\"\ncolumns = [\"business_date\", \"bank_txn_id\", \"category\", \"realtime_amount\", \"file_amount\", \"detail\"]\n",
            d.display()
        ),
        None => String::new(),
    };
    format!(
        "[daemon]\ntime_zone = \"Asia/Shanghai\"\n[[bank]]\nid = \"PB\"\nname = \"Partner bank\"\nformat = \"auto\"\n\
         [bank.partner]\ncutoff = \"17:00\"\nfee_rate = \"0.001\"\nsettlement_match = \"PB settlement\"\n{ret}\
         [[bank]]\nid = \"OWN\"\nname = \"The utility's own account\"\nformat = \"auto\"\nown_account = true\n"
    )
}

async fn setup() -> TestApp {
    setup_with(None).await
}

async fn setup_with(return_dir: Option<&std::path::Path>) -> TestApp {
    let t = TestApp::spawn_with(&pb(return_dir)).await;
    // not due yet on the business day of the postings (2026-11-12): no late fee here (the
    // late fees of postings have their own tests in `late_fees`)
    t.bills(&[
        ("A-OLD", A, "100.00", "2026-11-20", ""),
        ("A-NEW", A, "200.00", "2026-12-20", ""),
        ("B-1", B, "300.00", "2026-12-20", ""),
    ])
    .await;
    t
}

fn req(txn: &str, account: Option<&str>, bill: Option<&str>, amount: &str) -> PaymentRequest {
    PaymentRequest {
        bank_txn_id: txn.into(),
        account_no: account.map(str::to_string),
        bill_id: bill.map(str::to_string),
        amount: amount.parse().unwrap(),
        currency: "CNY".into(),
        // the camt helper books its lines on 2026-11-12: the same business day
        paid_at: "2026-11-12T10:00:00+08:00".parse().unwrap(),
        channel: Some("counter".into()),
    }
}

fn same_day() -> chrono::DateTime<chrono::Utc> {
    "2026-11-12T11:00:00+08:00".parse().unwrap()
}

async fn post(t: &TestApp, r: &PaymentRequest) -> Result<partner::Posted, PartnerError> {
    let bank = t.app.bank("PB").unwrap();
    partner::post_payment(&t.app.store, &t.app.config, bank, r).await
}

async fn reverse(t: &TestApp, txn: &str) -> Result<(partner::ReversalAnswer, bool), PartnerError> {
    let bank = t.app.bank("PB").unwrap();
    partner::reverse(&t.app.store, &t.app.config, bank, txn, same_day()).await
}

#[tokio::test]
async fn a_posting_is_decided_at_once_and_answered_the_same_way_again() {
    let t = setup().await;
    let r = req("T1", None, Some("A-NEW"), "250.00");
    let first = post(&t, &r).await.unwrap();
    assert!(first.first);
    let a = &first.answer;
    assert_eq!(
        (a.status.as_str(), a.business_date.as_str()),
        ("applied", "2026-11-12")
    );
    // the core's rules: the named bill, then the account's older bill
    let got: Vec<(&str, i64)> = a
        .allocations
        .iter()
        .map(|x| (x.bill_id.as_str(), cents(&x.amount)))
        .collect();
    assert_eq!(
        got,
        vec![("A-NEW", cents("200.00")), ("A-OLD", cents("50.00"))]
    );
    assert_eq!(t.bill("A-NEW").await.2, "paid");
    // a retry gets the first answer, and nothing moves twice
    let again = post(&t, &r).await.unwrap();
    assert!(!again.first);
    assert_eq!(&again.answer, a);
    assert_eq!(t.bill("A-OLD").await.1, cents("50.00"));
    // the same id with another body is refused
    let other = req("T1", None, Some("A-NEW"), "250.01");
    assert!(matches!(
        post(&t, &other).await,
        Err(PartnerError::Conflict(_))
    ));
    // an unknown account goes to the queue, like a file payment
    let lost = post(&t, &req("T2", Some("9999999999"), None, "10.00"))
        .await
        .unwrap();
    assert_eq!(lost.answer.status, "exception");
    assert_eq!(t.exceptions().await.len(), 1);
    // a bad request names the field
    let e = post(&t, &req("T3", Some(A), Some("A-OLD"), "1.00"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("exactly one"), "{e}");
    let e = post(&t, &req("T4", Some(A), None, "1.001"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("amount"), "{e}");
    t.assert_verified().await;
}

#[tokio::test]
async fn a_same_day_reversal_undoes_the_posting_exactly_and_only_once() {
    let t = setup().await;
    post(&t, &req("T1", Some(A), None, "120.00")).await.unwrap();
    assert_eq!(t.bill("A-OLD").await.2, "paid");
    let (r, first) = reverse(&t, "T1").await.unwrap();
    assert!(first);
    assert_eq!(r.status, "reversed");
    assert_eq!(t.bill("A-OLD").await, (cents("100.00"), 0, "open".into()));
    assert_eq!(t.bill("A-NEW").await.1, 0);
    assert_eq!(t.credit(A).await, 0);
    let (again, first) = reverse(&t, "T1").await.unwrap();
    assert!(!first);
    assert_eq!(again, r);
    // a payment in the queue and its reversal cancel out
    post(&t, &req("T2", Some("9999999999"), None, "10.00"))
        .await
        .unwrap();
    let (r2, _) = reverse(&t, "T2").await.unwrap();
    assert_eq!(r2.status, "cancelled");
    assert!(t.exceptions().await.is_empty());
    // another bank's id, or none, is not found; after the cut-off it is too late
    assert!(matches!(
        reverse(&t, "NOPE").await,
        Err(PartnerError::NotFound(_))
    ));
    post(&t, &req("T3", Some(B), None, "5.00")).await.unwrap();
    let bank = t.app.bank("PB").unwrap();
    let late: chrono::DateTime<chrono::Utc> = "2026-11-12T17:30:00+08:00".parse().unwrap();
    let e = partner::reverse(&t.app.store, &t.app.config, bank, "T3", late)
        .await
        .unwrap_err();
    assert!(matches!(e, PartnerError::Conflict(_)), "{e}");
    t.assert_verified().await;
}

#[tokio::test]
async fn the_end_of_day_file_is_compared_with_the_days_postings() {
    let out = tempfile::tempdir().unwrap();
    let t = setup_with(Some(out.path())).await;
    // online: P1 100, P2 50, P3 30 (reversed online), P4 20, P5 40
    for (txn, acct, amount) in [
        ("P1", A, "100.00"),
        ("P2", B, "50.00"),
        ("P3", B, "30.00"),
        ("P4", B, "20.00"),
        ("P5", A, "40.00"),
    ] {
        post(&t, &req(txn, Some(acct), None, amount)).await.unwrap();
    }
    reverse(&t, "P3").await.unwrap();
    let online: i64 = ["100.00", "50.00", "20.00", "40.00"]
        .iter()
        .map(|a| cents(a))
        .sum();
    // the bank's file: P1 as posted, P2 with another amount, P3 standing, P4 missing,
    // P5 and its reversal, and X9 never posted online
    let file = camt054(
        "PB-EOD-20261112",
        &[
            Pay::new("P1", "100.00"),
            Pay::new("P2", "55.00"),
            Pay::new("P3", "30.00"),
            Pay::new("P5", "40.00"),
            Pay::new("P5", "40.00").reversal(),
            Pay::new("X9", "70.00").reference(B),
        ],
    );
    let path = t.write("pb-eod.xml", &file);
    t.ingest("PB", &[path]).await;
    let day = partner::eod::day_result(&t.app.store, "PB", "2026-11-12")
        .await
        .unwrap()
        .expect("the day was compared after the file");
    let mut cats: Vec<(String, String)> = day
        .discrepancies
        .iter()
        .map(|d| (d.category.clone(), d.bank_txn_id.clone()))
        .collect();
    cats.sort();
    let want = |c: &str, t: &str| (c.to_string(), t.to_string());
    assert_eq!(
        cats,
        vec![
            want("amount_mismatch", "P2"),
            want("bank_only", "X9"),
            want("reversed_bank_only", "P5"),
            want("reversed_utility_only", "P3"),
            want("utility_only", "P4"),
        ]
    );
    // the file returned to the bank: GBK, header with the day's totals, a line per difference
    let bytes = std::fs::read(out.path().join("PB_20261112_recon.txt")).unwrap();
    let (text, _, bad) = encoding_rs::GBK.decode(&bytes);
    assert!(!bad);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(
        rows[0][..5],
        ["H", "PB", "2026-11-12", &day.matched.to_string(), "5"]
    );
    assert_eq!(rows[0][5], day.net_collections);
    let mut in_file: Vec<(String, String)> = rows[1..rows.len() - 1]
        .iter()
        .map(|r| {
            assert_eq!((r[0], r[1]), ("D", "2026-11-12"));
            (r[3].to_string(), r[2].to_string())
        })
        .collect();
    in_file.sort();
    assert_eq!(in_file, cats);
    assert_eq!(rows.last().unwrap(), &vec!["T", "5"]);
    // P1 matched, and P5's line confirms its posting before the bank reversed it
    assert_eq!(day.matched, 2);
    // the bank-only line was posted now, the bank's reversal of P5 applied
    assert_eq!(
        t.bill("B-1").await.1,
        cents("50.00") + cents("30.00") - cents("30.00") + cents("20.00") + cents("70.00")
    );
    assert_eq!(t.payment("X9").await["status"], "applied");
    // net: online (not reversed online) + bank-only - the bank's reversal
    let net = online + cents("70.00") - cents("40.00");
    assert_eq!(cents(&day.net_collections), net);
    // 0.1 % fee, rounded to the cent
    assert_eq!(cents(&day.fees), (net + 500) / 1000);
    // file lines confirming postings carry no money: the day is not counted twice
    let (cols, rows) = billrecon::reports::ReportKind::DailySettlement
        .build(&t.app.config, &t.app.store, "2026-11-12".parse().unwrap())
        .await
        .unwrap();
    let rows = crate::helpers::to_maps(cols, rows);
    let pb = rows.iter().find(|r| r["bank_id"] == "PB").unwrap();
    let posted: i64 = ["100.00", "50.00", "30.00", "20.00", "40.00", "70.00"]
        .iter()
        .map(|a| cents(a))
        .sum();
    assert_eq!(cents(&pb["received"]), posted);
    // by channel: the online postings came over the counter, X9 from the file only
    let counter: i64 = ["100.00", "50.00", "30.00", "20.00", "40.00"]
        .iter()
        .map(|a| cents(a))
        .sum();
    assert_eq!(
        pb["channels"],
        format!(
            "counter 5 × {}; file 1 × 70.00",
            billrecon::domain::money_text(counter, "CNY")
        )
    );
    assert_eq!(pb["realtime_vs_file"], "2 matched, 5 differences");
    assert_eq!(
        cents(&pb["expected_transfer"]),
        cents(&day.expected_transfer)
    );
    assert_eq!(pb["settlement"], day.settlement);
    t.assert_verified().await;
}

#[tokio::test]
async fn the_banks_transfer_on_the_utilitys_own_statement_settles_the_day() {
    let t = setup().await;
    post(&t, &req("P1", Some(A), None, "100.00")).await.unwrap();
    post(&t, &req("P2", Some(B), None, "50.00")).await.unwrap();
    let eod = camt054(
        "PB-EOD",
        &[Pay::new("P1", "100.00"), Pay::new("P2", "50.00")],
    );
    let path = t.write("pb-eod.xml", &eod);
    t.ingest("PB", &[path]).await;
    let day = partner::eod::day_result(&t.app.store, "PB", "2026-11-12")
        .await
        .unwrap()
        .unwrap();
    assert!(day.discrepancies.is_empty(), "{:?}", day.discrepancies);
    let expected = cents(&day.expected_transfer);
    assert_eq!(expected, cents("150.00") - (cents("150.00") + 500) / 1000);
    // the business day (2026-11-12) is long past its settlement day: missing until it comes
    assert_eq!(day.settlement, "missing");
    // the utility's own statement: the bank's transfer, short by a cent, and an unrelated credit
    let short: &'static str =
        Box::leak(format!("{}.{:02}", (expected - 1) / 100, (expected - 1) % 100).into_boxed_str());
    let own = camt054(
        "OWN-20261112",
        &[
            Pay {
                payer: "PB settlement 20261112",
                ..Pay::new("TR1", short)
            },
            Pay {
                payer: "Somebody else",
                ..Pay::new("TR2", "999.00")
            },
        ],
    );
    let path = t.write("own.xml", &own);
    t.ingest("OWN", &[path]).await;
    let day = partner::eod::day_result(&t.app.store, "PB", "2026-11-12")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(day.settlement, "short");
    // the own account's lines are no customer's money
    assert_eq!(t.payment("TR2").await["status"], "transfer");
    assert!(t.exceptions().await.is_empty());
    t.assert_verified().await;
}

#[tokio::test]
async fn a_transfer_that_never_comes_is_missing_after_the_settlement_days() {
    let t = setup().await;
    post(&t, &req("P1", Some(A), None, "100.00")).await.unwrap();
    let path = t.write("pb.xml", &camt054("PB-EOD", &[Pay::new("P1", "100.00")]));
    t.ingest("PB", &[path]).await;
    // the run after the file found no transfer, and today is past 2026-11-12 + 1 day
    let day = partner::eod::day_result(&t.app.store, "PB", "2026-11-12")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(day.settlement, "missing");
    // checking again as of a day within the window changes nothing it already decided
    let banks = t.app.banks.clone();
    let on = |d: &str| d.parse::<chrono::NaiveDate>().unwrap();
    let none = partner::eod::settle_due(&t.app.store, &banks, on("2026-11-13"))
        .await
        .unwrap();
    assert!(none.is_empty());
}
