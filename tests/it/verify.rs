//! `verify` proves the money adds up, and catches it when it does not.

use crate::helpers::{cents, Pay, TestApp};

async fn paid_once() -> TestApp {
    let t = TestApp::spawn().await;
    t.bills(&[("B-1", "4100000001", "100.00", "2026-10-20", "")])
        .await;
    t.pay(
        "f1",
        &[
            Pay::new("R1", "150.00").reference("B-1"),
            Pay::new("R2", "1.00").text("?"),
        ],
    )
    .await;
    t
}

#[tokio::test]
async fn verify_passes_on_consistent_data_and_reports_what_it_checked() {
    let t = paid_once().await;
    let r = t.verify().await;
    assert!(r.ok, "{r}");
    let names: Vec<&str> = r.checks.iter().map(|c| c.name).collect();
    for must in [
        "payment_conservation",
        "bill_paid_equals_allocations",
        "bill_never_over_allocated",
        "no_transaction_counted_twice",
        "file_totals_match_declared",
    ] {
        assert!(names.contains(&must), "{must} missing from {names:?}");
    }
    let conservation = r
        .checks
        .iter()
        .find(|c| c.name == "payment_conservation")
        .unwrap();
    assert_eq!(conservation.checked, 2);
    // booked 2026-11-12, 23 days after the due date: the bill's late fee (a residential
    // customer's 1 per mille a day) came first, 100.00 x 0.001 x 23
    let fee = cents("100.00") * 23 / 1000;
    let m = |v: i64| billrecon::domain::money_text(v, "CNY");
    assert_eq!(r.totals[0].amount, "151.00");
    assert_eq!(r.totals[0].applied, m(cents("100.00") + fee));
    assert_eq!(r.totals[0].applied_principal, "100.00");
    assert_eq!(r.totals[0].applied_late_fees, m(fee));
    assert_eq!(r.totals[0].credit, m(cents("50.00") - fee));
    assert_eq!(r.totals[0].held, "1.00");
    assert_eq!(
        (
            r.totals[0].late_fees_charged.as_str(),
            r.totals[0].late_fees_collected.as_str(),
            r.totals[0].late_fees_outstanding.as_str()
        ),
        (m(fee).as_str(), m(fee).as_str(), "0.00")
    );
    for must in [
        "late_fees_follow_the_rule",
        "late_fee_never_over_allocated",
        "no_money_on_cancelled_bills",
    ] {
        let c = r.checks.iter().find(|c| c.name == must).unwrap();
        assert!(c.break_count == 0, "{must}");
    }
    assert_eq!(
        r.checks
            .iter()
            .find(|c| c.name == "late_fees_follow_the_rule")
            .unwrap()
            .checked,
        1
    );
    let text = r.to_string();
    assert!(
        text.contains(&format!("(principal 100.00 + late fees {})", m(fee))),
        "{text}"
    );
}

async fn tamper(t: &TestApp, sql: &str) -> billrecon::ledger::VerifyReport {
    sqlx::query(sql).execute(t.app.store.pool()).await.unwrap();
    t.verify().await
}

#[tokio::test]
async fn verify_names_a_bill_whose_paid_amount_was_changed() {
    let t = paid_once().await;
    let r = tamper(
        &t,
        "UPDATE bills SET paid_minor = 9000 WHERE bill_id = 'B-1'",
    )
    .await;
    assert!(!r.ok);
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "bill_paid_equals_allocations")
        .unwrap();
    assert_eq!(c.break_count, 1);
    assert!(c.breaks[0].contains("B-1"), "{}", c.breaks[0]);
    assert!(r.to_string().contains("FAIL"));
}

#[tokio::test]
async fn verify_catches_money_that_vanished_or_was_counted_twice() {
    let t = paid_once().await;
    let r = tamper(&t, "DELETE FROM credit_ledger").await;
    assert!(!r.ok);
    assert!(r
        .checks
        .iter()
        .any(|c| c.name == "credit_equals_ledger" && c.break_count == 1));

    let t = paid_once().await;
    let r = tamper(&t, "UPDATE payments SET status = 'applied', exception_reason = NULL, txn_key = 'ref:R1' WHERE bank_ref = 'R2'").await;
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "no_transaction_counted_twice" && c.break_count == 1),
        "{r}"
    );

    let t = paid_once().await;
    let r = tamper(&t, "UPDATE statements SET declared_entries = 5").await;
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "file_totals_match_declared")
        .unwrap();
    assert_eq!(c.break_count, 1);
    assert!(c.breaks[0].contains("entry count 5"), "{}", c.breaks[0]);

    let t = paid_once().await;
    let r = tamper(
        &t,
        "UPDATE payments SET status = 'pending' WHERE bank_ref = 'R2'",
    )
    .await;
    assert!(r
        .checks
        .iter()
        .any(|c| c.name == "every_payment_matched" && c.break_count == 1));
}
