//! One test per matching rule, each on its own small data set. Expected amounts are computed
//! from the test's own inputs.

use crate::helpers::{cents, Pay, TestApp};
use billrecon::domain::RfReference;

const A: &str = "4100000001";
const B: &str = "4100000002";

/// Two customers: A with an older and a newer bill, B with one bill; none due yet when the
/// test payments are booked (2026-11-12), so no late fee is charged (the late-fee rules have
/// their own tests in `late_fees`).
async fn two_customers() -> TestApp {
    let t = TestApp::spawn().await;
    t.bills(&[
        ("A-OLD", A, "100.00", "2026-11-20", ""),
        ("A-NEW", A, "200.00", "2026-12-20", ""),
        ("B-1", B, "300.00", "2026-12-20", ""),
    ])
    .await;
    t
}

#[tokio::test]
async fn bill_reference_applies_to_that_bill_then_oldest_first_then_credit() {
    let t = two_customers().await;
    // pays A-NEW by name with more than all of A's bills
    let amount = "350.00";
    t.pay("f1", &[Pay::new("R1", amount).reference("a-new")])
        .await;
    let p = t.payment("R1").await;
    let allocs = t.allocations().await;
    assert_eq!(allocs.len(), 2);
    assert_eq!(
        (allocs[0]["bill_id"].as_str(), allocs[0]["rule"].as_str()),
        ("A-NEW", "bill_reference")
    );
    assert_eq!(allocs[0]["amount"], "200.00");
    assert_eq!(
        (allocs[1]["bill_id"].as_str(), allocs[1]["rule"].as_str()),
        ("A-OLD", "bill_reference_remainder")
    );
    assert_eq!(allocs[1]["amount"], "100.00");
    let credit = cents(amount) - cents("200.00") - cents("100.00");
    assert_eq!(t.credit(A).await, credit);
    assert_eq!(p["status"], "partially_applied");
    assert_eq!(p["applied"], "300.00");
    assert_eq!(cents(&p["credit"]), credit);
    assert_eq!(t.bill("A-NEW").await.2, "paid");
    assert_eq!(t.bill("A-OLD").await.2, "paid");
    assert_eq!(t.bill("B-1").await.1, 0, "the other customer is untouched");
    t.assert_verified().await;
}

#[tokio::test]
async fn rf_reference_with_valid_check_digits_names_the_bill() {
    let t = two_customers().await;
    let rf = RfReference::wrap("B-1").unwrap();
    let mut bad = rf.to_string();
    // break the check digits
    bad.replace_range(2..4, if &bad[2..4] == "11" { "12" } else { "11" });
    t.pay(
        "f1",
        &[
            Pay::new("R1", "300.00").reference(rf.as_str()),
            Pay::new("R2", "10.00").reference(&bad),
        ],
    )
    .await;
    let p = t.payment("R1").await;
    assert_eq!(p["status"], "applied");
    assert_eq!(t.bill("B-1").await, (30000, 30000, "paid".into()));
    let bad_p = t.payment("R2").await;
    assert_eq!(bad_p["status"], "exception");
    assert_eq!(bad_p["exception_reason"], "unknown_reference");
    t.assert_verified().await;
}

#[tokio::test]
async fn account_number_in_chinese_free_text_pays_oldest_bill_first() {
    let t = two_customers().await;
    t.pay(
        "f1",
        &[Pay::new("R1", "150.00").text(&format!("电费 户号{A} 11月"))],
    )
    .await;
    let allocs = t.allocations().await;
    assert_eq!(allocs[0]["bill_id"], "A-OLD");
    assert_eq!(allocs[0]["amount"], "100.00");
    assert_eq!(allocs[0]["rule"], "account_oldest_first");
    assert_eq!(allocs[1]["bill_id"], "A-NEW");
    assert_eq!(allocs[1]["amount"], "50.00");
    assert_eq!(t.bill("A-NEW").await, (20000, 5000, "open".into()));
    assert_eq!(t.payment("R1").await["status"], "applied");
    t.assert_verified().await;
}

#[tokio::test]
async fn short_payment_leaves_the_bill_open_with_its_balance() {
    let t = two_customers().await;
    t.pay("f1", &[Pay::new("R1", "120.50").reference("B-1")])
        .await;
    let (amount, paid, status) = t.bill("B-1").await;
    assert_eq!(paid, cents("120.50"));
    assert_eq!(amount - paid, cents("300.00") - cents("120.50"));
    assert_eq!(status, "open");
    assert_eq!(t.payment("R1").await["status"], "applied");
    t.assert_verified().await;
}

#[tokio::test]
async fn a_paid_bill_named_again_pays_other_open_bills_else_credit() {
    let t = two_customers().await;
    t.pay("f1", &[Pay::new("R1", "100.00").reference("A-OLD")])
        .await;
    assert_eq!(t.bill("A-OLD").await.2, "paid");
    t.pay("f2", &[Pay::new("R2", "100.00").reference("A-OLD")])
        .await;
    let allocs = t.allocations().await;
    let second: Vec<_> = allocs.iter().filter(|a| a["bank_ref"] == "R2").collect();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["bill_id"], "A-NEW");
    assert_eq!(second[0]["rule"], "closed_bill_redirect");
    // and when nothing is open, it becomes credit
    t.pay("f3", &[Pay::new("R3", "100.00").reference("A-OLD")])
        .await;
    t.pay("f4", &[Pay::new("R4", "100.00").reference("A-OLD")])
        .await;
    let p4 = t.payment("R4").await;
    assert_eq!(p4["status"], "credit");
    assert_eq!(t.credit(A).await, cents("100.00"));
    t.assert_verified().await;
}

#[tokio::test]
async fn a_cancelled_bill_named_goes_to_credit_when_nothing_else_is_open() {
    let t = TestApp::spawn().await;
    t.bills(&[("C-1", A, "80.00", "2026-10-20", "cancelled")])
        .await;
    t.pay("f1", &[Pay::new("R1", "80.00").reference("C-1")])
        .await;
    let p = t.payment("R1").await;
    assert_eq!(p["status"], "credit");
    assert_eq!(p["account_no"], A);
    assert_eq!(t.credit(A).await, cents("80.00"));
    assert_eq!(t.bill("C-1").await, (8000, 0, "cancelled".into()));
    t.assert_verified().await;
}

#[tokio::test]
async fn exceptions_hold_the_money_and_apply_none() {
    let t = two_customers().await;
    t.pay(
        "f1",
        &[
            Pay::new("CUR", "300.00").currency("USD").reference("B-1"),
            Pay::new("UNK", "10.00").text("for flat 12"),
            Pay::new("NONE", "10.00"),
            Pay::new("TWO", "300.00").text(&format!("B-1 and {A}")),
            Pay::new("FEE", "5.00").debit().text("service fee"),
        ],
    )
    .await;
    let expect = [
        ("CUR", "currency_mismatch"),
        ("UNK", "unknown_reference"),
        ("NONE", "unknown_reference"),
        ("TWO", "ambiguous_reference"),
        ("FEE", "unexpected_debit"),
    ];
    for (r, reason) in expect {
        let p = t.payment(r).await;
        assert_eq!(p["status"], "exception", "{r}");
        assert_eq!(p["exception_reason"], reason, "{r}");
        assert_eq!(p["applied"], "0.00", "{r}");
        assert_eq!(p["held"], p["amount"], "{r}");
    }
    assert_eq!(t.count("allocations").await, 0);
    assert_eq!(t.bill("B-1").await.1, 0);
    let queue = t.exceptions().await;
    assert_eq!(queue.len(), expect.len());
    assert!(queue.iter().all(|e| !e["detail"].is_empty()));
    t.assert_verified().await;
}

#[tokio::test]
async fn the_same_bank_transaction_is_never_counted_twice() {
    let t = two_customers().await;
    // same AcctSvcrRef twice in one file, again in a later file; same e2e+amount without a ref
    t.pay(
        "f1",
        &[
            Pay::new("R1", "50.00").reference("B-1"),
            Pay::new("R1", "50.00").reference("B-1"),
            Pay::new("X", "20.00")
                .no_bank_ref()
                .e2e("E-7")
                .reference("B-1"),
            Pay::new("X", "20.00")
                .no_bank_ref()
                .e2e("E-7")
                .reference("B-1"),
        ],
    )
    .await;
    t.pay("f2", &[Pay::new("R1", "50.00").reference("B-1")])
        .await;
    let ps = t.payments().await;
    let dups: Vec<_> = ps
        .iter()
        .filter(|p| p["exception_reason"] == "duplicate")
        .collect();
    assert_eq!(dups.len(), 3);
    assert_eq!(t.bill("B-1").await.1, cents("50.00") + cents("20.00"));
    t.assert_verified().await;
}

#[tokio::test]
async fn the_same_file_twice_is_recorded_once() {
    let t = two_customers().await;
    let f = t.write(
        "same.xml",
        &crate::helpers::camt054("SAME", &[Pay::new("R1", "50.00").reference("B-1")]),
    );
    let (first, _) = t.ingest("TEST", std::slice::from_ref(&f)).await;
    let (second, _) = t.ingest("TEST", &[f]).await;
    let file_id = match first[0] {
        billrecon::ingest::IngestOutcome::Ingested { file_id, .. } => file_id,
        ref o => panic!("{o:?}"),
    };
    assert_eq!(
        second[0],
        billrecon::ingest::IngestOutcome::DuplicateFile { file_id }
    );
    assert_eq!(t.count("payments").await, 1);
    assert_eq!(t.count("file_deliveries").await, 2);
    t.assert_verified().await;
}

#[tokio::test]
async fn a_reversal_undoes_its_payment_exactly() {
    let t = two_customers().await;
    t.pay(
        "f1",
        &[Pay::new("R1", "350.00").e2e("E-1").reference("A-NEW")],
    )
    .await;
    let credit_before = t.credit(A).await;
    assert!(credit_before > 0);
    t.pay("f2", &[Pay::new("RV1", "350.00").e2e("E-1").reversal()])
        .await;
    assert_eq!(t.payment("R1").await["status"], "reversed");
    let rv = t.payment("RV1").await;
    assert_eq!(rv["status"], "reversed");
    assert_eq!(rv["amount"], "-350.00");
    assert_eq!(t.bill("A-NEW").await, (20000, 0, "open".into()));
    assert_eq!(t.bill("A-OLD").await, (10000, 0, "open".into()));
    assert_eq!(t.credit(A).await, 0);
    let undo: Vec<_> = t
        .allocations()
        .await
        .into_iter()
        .filter(|a| a["rule"] == "reversal")
        .collect();
    assert_eq!(undo.len(), 2);
    t.assert_verified().await;
}

#[tokio::test]
async fn a_reversal_may_quote_the_original_bank_reference() {
    let t = two_customers().await;
    t.pay("f1", &[Pay::new("ORIG-77", "300.00").reference("B-1")])
        .await;
    t.pay(
        "f2",
        &[Pay::new("RV-1", "300.00")
            .reversal()
            .text("RETURN OF ORIG-77 AC04")],
    )
    .await;
    assert_eq!(t.payment("ORIG-77").await["status"], "reversed");
    assert_eq!(t.bill("B-1").await.2, "open");
    t.assert_verified().await;
}

#[tokio::test]
async fn reversals_that_do_not_fit_one_payment_are_exceptions() {
    let t = two_customers().await;
    t.pay(
        "f1",
        &[
            Pay::new("R1", "30.00").e2e("E-1").reference("B-1"),
            Pay::new("R2", "10.00").e2e("E-2").text("x"),
        ],
    )
    .await;
    t.pay(
        "f2",
        &[
            Pay::new("RV-UNKNOWN", "30.00").e2e("E-404").reversal(),
            Pay::new("RV-AMOUNT", "31.00").e2e("E-1").reversal(),
            Pay::new("RV-EXC", "10.00").e2e("E-2").reversal(),
            Pay::new("RV-OK", "30.00").e2e("E-1").reversal(),
            Pay::new("RV-TWICE", "30.00").e2e("E-1").reversal(),
        ],
    )
    .await;
    let reason = |p: std::collections::HashMap<String, String>| p["exception_reason"].clone();
    assert_eq!(reason(t.payment("RV-UNKNOWN").await), "reversal_unmatched");
    assert_eq!(reason(t.payment("RV-AMOUNT").await), "reversal_unmatched");
    assert_eq!(reason(t.payment("RV-EXC").await), "reversal_of_exception");
    assert_eq!(t.payment("RV-OK").await["status"], "reversed");
    assert_eq!(reason(t.payment("RV-TWICE").await), "reversal_unmatched");
    assert_eq!(t.bill("B-1").await.1, 0);
    t.assert_verified().await;
}

#[tokio::test]
async fn a_bank_pattern_finds_references_written_the_bank_s_way() {
    let t = two_customers().await;
    // ICBC's configured pattern reads an account number written with spaces
    let spaced = format!("户号 {} {} {}", &B[..4], &B[4..8], &B[8..]);
    let f = t.write(
        "icbc.xml",
        &crate::helpers::camt054("P", &[Pay::new("R1", "300.00").text(&spaced)]),
    );
    t.ingest("ICBC", &[f]).await;
    assert_eq!(t.payment("R1").await["status"], "applied");
    // the same text from a bank without the pattern is an exception
    t.pay("f2", &[Pay::new("R2", "1.00").text(&spaced)]).await;
    assert_eq!(
        t.payment("R2").await["exception_reason"],
        "unknown_reference"
    );
}

#[tokio::test]
async fn the_same_inputs_always_give_the_same_allocations() {
    let mut exports = Vec::new();
    for _ in 0..2 {
        let t = two_customers().await;
        t.pay(
            "f1",
            &[
                Pay::new("R1", "120.00").text(A),
                Pay::new("R2", "120.00").text(A),
                Pay::new("R3", "500.00").reference("B-1"),
            ],
        )
        .await;
        let allocs: Vec<(String, String, String, String)> = t
            .allocations()
            .await
            .into_iter()
            .map(|a| {
                (
                    a["bank_ref"].clone(),
                    a["bill_id"].clone(),
                    a["amount"].clone(),
                    a["rule"].clone(),
                )
            })
            .collect();
        exports.push(allocs);
    }
    assert_eq!(exports[0], exports[1]);
    // first come, first served: R1 clears the older bill, R2 continues on the newer one
    assert_eq!(
        exports[0][0],
        (
            "R1".into(),
            "A-OLD".into(),
            "100.00".into(),
            "account_oldest_first".into()
        )
    );
    assert_eq!(exports[0][1].1, "A-NEW");
    assert_eq!(
        exports[0][2],
        (
            "R2".into(),
            "A-NEW".into(),
            "120.00".into(),
            "account_oldest_first".into()
        )
    );
}

#[tokio::test]
async fn matching_spans_many_batches_and_preloading_every_bill_changes_nothing() {
    // More payments than one matching batch, generated by `gen`, matched twice: once plainly,
    // once with every open bill and account preloaded, as large runs do. The allocations must be identical.
    let mut exports = Vec::new();
    for preload in [false, true] {
        let t = TestApp::spawn().await;
        let out = t.dir.path().join("gen");
        let args = billrecon::gen::GenArgs {
            customers: 300,
            bills: 600,
            payments: (billrecon::matching::BATCH as u64) * 2 + 345,
            out: out.clone(),
            seed: 7,
            per_file: 1000,
            days: 1,
        };
        let files = billrecon::gen::generate(&args).unwrap();
        billrecon::billing::import_customers(&t.app.store, &out.join("customers.csv"))
            .await
            .unwrap();
        billrecon::billing::import_bills(&t.app.store, &out.join("bills.csv"))
            .await
            .unwrap();
        let camt: Vec<_> = files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "xml"))
            .collect();
        assert_eq!(camt.len() as u64, args.payments.div_ceil(args.per_file));
        let bank = t.app.bank("TEST").unwrap().clone();
        for f in &camt {
            billrecon::ingest::ingest_file(
                &t.app.store,
                &t.data_dir(),
                &bank,
                f,
                billrecon::domain::Currency::CNY,
            )
            .await
            .unwrap();
        }
        let matcher =
            billrecon::matching::Matcher::new(billrecon::domain::Currency::CNY, &t.app.banks)
                .with_preload_from(if preload { 0 } else { i64::MAX });
        let summary = matcher.run(&t.app.store).await.unwrap();
        assert_eq!(summary.processed, args.payments);
        assert!(
            summary.applied > 0
                && summary.exception > 0
                && summary.credit + summary.partially_applied > 0,
            "{summary}"
        );
        t.assert_verified().await;
        let allocs: Vec<(String, String, String, String)> = t
            .allocations()
            .await
            .into_iter()
            .map(|a| {
                (
                    a["payment_id"].clone(),
                    a["bill_id"].clone(),
                    a["amount"].clone(),
                    a["rule"].clone(),
                )
            })
            .collect();
        exports.push(allocs);
    }
    assert!(!exports[0].is_empty());
    assert_eq!(exports[0], exports[1]);
}
