//! Late fees (违约金) as receivables, end to end: charged when money reaches an overdue bill,
//! collected with it in the configured order, still owed after the principal (partner API,
//! plan, ageing), waived by a supervisor, undone by reversals and reopenings, moved with the
//! money off bills the billing system cancels or lowers, proven by `verify`, and reported.
//!
//! The built-in rates are the supply rules': residential 1 per mille a day whatever the year,
//! other classes 2 on the current year's arrears and 3 on earlier years', a bill's total under
//! 1.00 charged as 1.00. Every expected amount below is worked out from those rates and the
//! test's own dates; the camt helper books and values lines on 2026-11-12 unless said.

use crate::helpers::{cents, serve, Pay, TestApp};
use billrecon::workbench::resolve::{self, Action, WorkbenchError};
use billrecon::workbench::{Actor, Role};
use std::collections::HashMap;

const A: &str = "4100000001";
const B: &str = "4100000002";
const BILLS_HEAD: &str = "bill_id,account_no,period,amount,currency,issued_on,due_on,status\n";

fn supervisor() -> Actor {
    Actor {
        name: "wang.super".into(),
        role: Role::Supervisor,
    }
}

/// `base` (minor units) x rate (per mille) x days, rounded half away from zero.
fn accrual(base: i64, per_mille: i64, days: i64) -> i64 {
    (2 * base * per_mille * days + 1000) / 2000
}

/// The minimum fee total, 1.00.
const MINIMUM: i64 = 100;

fn allocs_of<'a>(
    all: &'a [HashMap<String, String>],
    bank_ref: &str,
) -> Vec<(&'a str, &'a str, &'a str, i64)> {
    all.iter()
        .filter(|a| a["bank_ref"] == bank_ref)
        .map(|a| {
            (
                a["bill_id"].as_str(),
                a["rule"].as_str(),
                a["part"].as_str(),
                cents(&a["amount"]),
            )
        })
        .collect()
}

async fn on_time_and_a_day_late(t: &TestApp) {
    t.bills(&[
        ("ON", A, "100.00", "2026-11-12", ""),
        ("LATE", B, "100.00", "2026-11-11", ""),
    ])
    .await;
    // ON is paid on its due date: on time. LATE one day after: 0.10 accrues, a total under the
    // minimum is charged as 1.00, so the bill and its fee take 101.00.
    let computed = accrual(cents("100.00"), 1, 1);
    assert!(computed < MINIMUM);
    t.pay(
        "f",
        &[
            Pay::new("P-ON", "100.00").reference("ON"),
            Pay::new("P-LATE", "101.00").reference("LATE"),
        ],
    )
    .await;
    let on = t.payment("P-ON").await;
    assert_eq!(
        (
            on["status"].as_str(),
            on["applied"].as_str(),
            on["credit"].as_str()
        ),
        ("applied", "100.00", "0.00")
    );
    assert_eq!(t.bill("ON").await, (10000, 10000, "paid".into()));
    assert_eq!(t.fee("ON").await, (0, 0, 0, 0));
    let late = t.payment("P-LATE").await;
    assert_eq!(
        (
            late["status"].as_str(),
            late["applied"].as_str(),
            late["credit"].as_str()
        ),
        ("applied", "101.00", "0.00")
    );
    assert_eq!(t.bill("LATE").await, (10000, 10000, "paid".into()));
    assert_eq!(t.fee("LATE").await, (computed, MINIMUM, 0, MINIMUM));
    let allocs = t.allocations().await;
    assert_eq!(
        allocs_of(&allocs, "P-LATE"),
        vec![
            ("LATE", "late_fee", "late_fee", MINIMUM),
            ("LATE", "bill_reference", "principal", cents("100.00")),
        ]
    );
    let fees = t.late_fees().await;
    assert_eq!(fees.len(), 1, "none for the bill paid on time: {fees:?}");
    let f = &fees[0];
    assert_eq!(
        (
            f["bill_id"].as_str(),
            f["kind"].as_str(),
            f["due_on"].as_str(),
            f["from_on"].as_str(),
            f["to_on"].as_str(),
            f["days"].as_str(),
            f["rate"].as_str(),
        ),
        (
            "LATE",
            "charge",
            "2026-11-11",
            "2026-11-12",
            "2026-11-12",
            "1",
            "0.001"
        )
    );
    assert_eq!(
        (
            cents(&f["base"]),
            cents(&f["computed"]),
            cents(&f["amount"]),
            cents(&f["minimum"])
        ),
        (cents("100.00"), computed, MINIMUM, MINIMUM)
    );
    t.assert_verified().await;
}

#[tokio::test]
async fn on_time_no_fee_and_a_day_late_the_minimum() {
    on_time_and_a_day_late(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn on_time_no_fee_and_a_day_late_the_minimum_on_postgres() {
    on_time_and_a_day_late(&TestApp::spawn_pg().await).await;
}

#[tokio::test]
async fn a_fee_over_the_minimum_and_an_earlier_years_rate_follow_the_class() {
    let t = TestApp::spawn().await;
    let customers = t.write(
        "c.csv",
        &format!(
            "account_no,name,class,key_account,manager,phone,email\n\
             {A},Shop,commercial,false,,,\n{B},Mill,industrial,false,,,\n4100000003,Home,residential,false,,,\n"
        ),
    );
    billrecon::billing::import_customers(&t.app.store, &customers)
        .await
        .unwrap();
    let bills = t.write(
        "b.csv",
        &format!(
            "{BILLS_HEAD}SHOP,{A},2026-10,1000.00,CNY,2026-10-20,2026-11-02,\n\
             MILL,{B},2025-11,500.00,CNY,2025-12-01,2025-12-20,\n\
             HOME,4100000003,2025-11,500.00,CNY,2025-12-01,2025-12-20,\n"
        ),
    );
    billrecon::billing::import_bills(&t.app.store, &bills)
        .await
        .unwrap();
    // SHOP (commercial), 10 days late at 2 per mille: 20.00, above the minimum
    let shop_fee = accrual(cents("1000.00"), 2, 10);
    assert!(shop_fee > MINIMUM);
    t.pay("f1", &[Pay::new("P-SHOP", "1020.00").reference("SHOP")])
        .await;
    assert_eq!(t.payment("P-SHOP").await["status"], "applied");
    assert_eq!(t.fee("SHOP").await, (shop_fee, shop_fee, 0, shop_fee));
    // MILL (industrial), due 2025-12-20, paid 2026-01-09: Dec 21-31 (11 days) at 2 per mille
    // on the current year's arrears, Jan 1-9 (9 days) at 3 on an earlier year's
    let mill = [
        accrual(cents("500.00"), 2, 11),
        accrual(cents("500.00"), 3, 9),
    ];
    // HOME (residential): 1 per mille whatever the year, 20 days
    let home = [
        accrual(cents("500.00"), 1, 11),
        accrual(cents("500.00"), 1, 9),
    ];
    let total = |v: [i64; 2]| v[0] + v[1];
    let pay_mill = billrecon::domain::money_text(cents("500.00") + total(mill), "CNY");
    let pay_home = billrecon::domain::money_text(cents("500.00") + total(home), "CNY");
    let pays = [
        Pay::new("P-MILL", Box::leak(pay_mill.into_boxed_str())).reference("MILL"),
        Pay::new("P-HOME", Box::leak(pay_home.into_boxed_str())).reference("HOME"),
    ];
    t.pay_on("f2", "2026-01-09", &pays).await;
    for (bill, p, parts) in [("MILL", "P-MILL", mill), ("HOME", "P-HOME", home)] {
        let pay = t.payment(p).await;
        assert_eq!(
            (pay["status"].as_str(), pay["credit"].as_str()),
            ("applied", "0.00")
        );
        assert_eq!(t.bill(bill).await.2, "paid");
        let rows: Vec<(String, String, String, i64)> = t
            .late_fees()
            .await
            .into_iter()
            .filter(|f| f["bill_id"] == bill)
            .map(|f| {
                (
                    f["from_on"].clone(),
                    f["days"].clone(),
                    f["rate"].clone(),
                    cents(&f["computed"]),
                )
            })
            .collect();
        let (r1, r2) = if bill == "MILL" {
            ("0.002", "0.003")
        } else {
            ("0.001", "0.001")
        };
        assert_eq!(
            rows,
            vec![
                ("2025-12-21".into(), "11".into(), r1.into(), parts[0]),
                ("2026-01-01".into(), "9".into(), r2.into(), parts[1]),
            ],
            "{bill}"
        );
    }
    t.assert_verified().await;
}

#[tokio::test]
async fn partial_payments_pay_the_fee_on_what_they_pay_and_the_minimum_counts_once() {
    let t = TestApp::spawn().await;
    t.bills(&[("P", A, "100.00", "2026-11-02", "")]).await;
    // 50.00 ten days late, fee first: the most principal whose fee 50.00 still covers. The fee
    // on 49.00 (0.49) is lifted to the 1.00 minimum: 49.00 + 1.00 = 50.00.
    let first = accrual(cents("49.00"), 1, 10);
    assert!(first < MINIMUM);
    t.pay_on(
        "f1",
        "2026-11-12",
        &[Pay::new("P1", "50.00").reference("P")],
    )
    .await;
    assert_eq!(t.bill("P").await, (10000, cents("49.00"), "open".into()));
    assert_eq!(t.fee("P").await, (first, MINIMUM, 0, MINIMUM));
    assert_eq!(t.payment("P1").await["status"], "applied");
    // the rest, 51.00, twenty days late: 1.02 accrues; the bill's total 0.49 + 1.02 is above
    // the minimum already charged, so only the difference is charged now
    let second = accrual(cents("51.00"), 1, 20);
    let charge = first + second - MINIMUM;
    let amount = billrecon::domain::money_text(cents("51.00") + charge, "CNY");
    t.pay_on(
        "f2",
        "2026-11-22",
        &[Pay::new("P2", Box::leak(amount.into_boxed_str())).reference("P")],
    )
    .await;
    let p2 = t.payment("P2").await;
    assert_eq!(
        (p2["status"].as_str(), p2["credit"].as_str()),
        ("applied", "0.00")
    );
    assert_eq!(t.bill("P").await, (10000, 10000, "paid".into()));
    assert_eq!(
        t.fee("P").await,
        (first + second, first + second, 0, first + second)
    );
    let rows: Vec<(i64, i64)> = t
        .late_fees()
        .await
        .iter()
        .map(|f| (cents(&f["computed"]), cents(&f["amount"])))
        .collect();
    assert_eq!(rows, vec![(first, MINIMUM), (second, charge)]);
    t.assert_verified().await;
}

/// Principal first (`[matching] allocation_order`), with a stage for fees owed alone.
const PRINCIPAL_FIRST: &str = "[matching]\nallocation_order = \"principal_first\"\n\
    [dunning.late_fee_stage]\nname = \"late_fee\"\ndays_after_due = 10\nchannels = [\"sms\"]\ntemplate = \"late_fee\"\nmin_amount = \"0.50\"\n";

async fn a_fee_owed_after_the_principal(t: &TestApp) {
    t.bills(&[
        ("Q", A, "100.00", "2026-11-02", ""),
        ("Q2", A, "50.00", "2026-12-20", ""),
    ])
    .await;
    let fee = accrual(cents("100.00"), 1, 10);
    assert_eq!(fee, MINIMUM);
    // principal first: the 100.00 pays the principal, the fee charged on it stays owed
    t.pay("f1", &[Pay::new("P1", "100.00").reference("Q")])
        .await;
    let p1 = t.payment("P1").await;
    assert_eq!(
        (p1["status"].as_str(), p1["credit"].as_str()),
        ("applied", "0.00")
    );
    assert_eq!(t.bill("Q").await, (10000, 10000, "paid".into()));
    assert_eq!(t.fee("Q").await, (fee, fee, 0, 0));
    // the partner API shows it (the bill, with nothing but its fee owed)
    let answer = billrecon::partner::open_bills(&t.app.store, &t.app.config, A)
        .await
        .unwrap();
    let q = answer.bills.iter().find(|b| b.bill_id == "Q").unwrap();
    assert_eq!(
        (
            q.outstanding.as_str(),
            q.late_fee.as_str(),
            q.late_fee_owed.as_str()
        ),
        ("0.00", "1.00", "1.00")
    );
    assert_eq!(cents(&answer.total_due), fee + cents("50.00"));
    // the plan: the late-fee stage; the ageing report: owed
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let plan = billrecon::dunning::plan(&t.app.config, &t.app.store, day)
        .await
        .unwrap();
    let item = plan.iter().find(|i| i.bill_id == "Q").unwrap();
    assert!(item.fee_only);
    assert_eq!(
        (item.stage.as_deref(), item.action, item.late_fee.as_str()),
        (Some("late_fee"), billrecon::dunning::Action::Notice, "1.00")
    );
    let ageing = crate::helpers::to_maps(
        billrecon::reports::ageing::COLUMNS,
        billrecon::reports::ageing::ageing(&t.app.config, &t.app.store, day)
            .await
            .unwrap(),
    );
    let all = ageing.iter().find(|r| r["by"] == "all").unwrap();
    assert_eq!(cents(&all["late_fees_owed"]), fee);
    // 0.40 naming the bill pays part of the fee; then 10.00 naming the account settles the
    // rest of the fee first (the oldest bill), then Q2's principal
    t.pay("f2", &[Pay::new("P2", "0.40").reference("Q")]).await;
    assert_eq!(t.fee("Q").await.3, cents("0.40"));
    t.pay(
        "f3",
        &[Pay::new("P3", "10.00").text(&format!("electricity {A}"))],
    )
    .await;
    let allocs = t.allocations().await;
    assert_eq!(
        allocs_of(&allocs, "P2"),
        vec![("Q", "late_fee", "late_fee", cents("0.40"))]
    );
    assert_eq!(
        allocs_of(&allocs, "P3"),
        vec![
            ("Q", "late_fee", "late_fee", fee - cents("0.40")),
            (
                "Q2",
                "account_oldest_first",
                "principal",
                cents("10.00") - (fee - cents("0.40"))
            ),
        ]
    );
    assert_eq!(t.fee("Q").await, (fee, fee, 0, fee));
    let plan = billrecon::dunning::plan(&t.app.config, &t.app.store, day)
        .await
        .unwrap();
    assert!(plan.iter().all(|i| i.bill_id != "Q"), "{plan:?}");
    t.assert_verified().await;
}

#[tokio::test]
async fn a_fee_owed_after_the_principal_stays_owed_until_paid() {
    a_fee_owed_after_the_principal(&TestApp::spawn_with(PRINCIPAL_FIRST).await).await;
}

#[tokio::test]
async fn a_fee_owed_after_the_principal_stays_owed_until_paid_on_postgres() {
    a_fee_owed_after_the_principal(&TestApp::spawn_pg_with(PRINCIPAL_FIRST).await).await;
}

#[tokio::test]
async fn without_a_late_fee_stage_a_fee_owed_alone_is_shown_and_nobody_is_reminded() {
    let t = TestApp::spawn_with("[matching]\nallocation_order = \"principal_first\"\n").await;
    t.bills(&[("Q", A, "100.00", "2026-11-02", "")]).await;
    t.pay("f1", &[Pay::new("P1", "100.00").reference("Q")])
        .await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let plan = billrecon::dunning::plan(&t.app.config, &t.app.store, day)
        .await
        .unwrap();
    let item = plan.iter().find(|i| i.bill_id == "Q").unwrap();
    assert_eq!(item.action, billrecon::dunning::Action::None);
    assert!(item.reason.contains("late fee of 1.00"), "{}", item.reason);
}

#[tokio::test]
async fn every_principal_first_then_the_fees_when_so_configured() {
    let t = TestApp::spawn_with("[matching]\nallocation_order = \"principals_then_fees\"\n").await;
    t.bills(&[
        ("O1", A, "100.00", "2026-10-23", ""),
        ("O2", A, "100.00", "2026-11-02", ""),
    ])
    .await;
    // 20 and 10 days late at 1 per mille: 2.00 and 1.00; 201.00 pays both principals, then
    // the oldest bill's fee, then 1.00 of... nothing: O2's fee is what is left
    let (f1, f2) = (
        accrual(cents("100.00"), 1, 20),
        accrual(cents("100.00"), 1, 10),
    );
    t.pay(
        "f",
        &[Pay::new("P", "201.00").text(&format!("account {A}"))],
    )
    .await;
    let allocs = t.allocations().await;
    assert_eq!(
        allocs_of(&allocs, "P"),
        vec![
            ("O1", "account_oldest_first", "principal", cents("100.00")),
            ("O2", "account_oldest_first", "principal", cents("100.00")),
            ("O1", "late_fee", "late_fee", cents("1.00")),
        ]
    );
    assert_eq!(t.fee("O1").await, (f1, f1, 0, cents("1.00")));
    assert_eq!(t.fee("O2").await, (f2, f2, 0, 0));
    t.assert_verified().await;
}

#[tokio::test]
async fn a_waiver_before_payment_charges_nothing_and_after_it_writes_off_what_is_owed() {
    let t = TestApp::spawn_with("[matching]\nallocation_order = \"principal_first\"\n").await;
    t.bills(&[
        ("W1", A, "100.00", "2026-11-02", ""),
        ("W2", B, "100.00", "2026-11-02", ""),
    ])
    .await;
    let clerk = Actor {
        name: "li.clerk".into(),
        role: Role::Clerk,
    };
    assert!(matches!(
        resolve::waive_late_fee(&t.app.store, &clerk, "W1", "hardship").await,
        Err(WorkbenchError::Forbidden(_))
    ));
    assert!(matches!(
        resolve::waive_late_fee(&t.app.store, &supervisor(), "W1", " ").await,
        Err(WorkbenchError::Invalid(_))
    ));
    // before payment: nothing owed yet, and none is charged when the money comes
    let w = resolve::waive_late_fee(&t.app.store, &supervisor(), "W1", "hardship case 17")
        .await
        .unwrap();
    assert!(w.waived);
    assert_eq!(w.written_off, "0.00");
    t.pay(
        "f",
        &[
            Pay::new("P1", "100.00").reference("W1"),
            Pay::new("P2", "100.00").reference("W2"),
        ],
    )
    .await;
    assert_eq!(t.bill("W1").await, (10000, 10000, "paid".into()));
    assert_eq!(t.fee("W1").await, (0, 0, 0, 0));
    // after payment: W2's fee (charged on the principal, owed) is written off
    let fee = accrual(cents("100.00"), 1, 10);
    assert_eq!(t.fee("W2").await, (fee, fee, 0, 0));
    let w = resolve::waive_late_fee(&t.app.store, &supervisor(), "W2", "meter fault")
        .await
        .unwrap();
    assert_eq!(cents(&w.written_off), fee);
    assert_eq!(t.fee("W2").await, (fee, fee, fee, 0));
    let again = resolve::waive_late_fee(&t.app.store, &supervisor(), "W2", "again")
        .await
        .unwrap();
    assert!(!again.waived, "the first waiver stands");
    let waivers: Vec<_> = t
        .late_fees()
        .await
        .into_iter()
        .filter(|f| f["kind"] == "waiver")
        .collect();
    assert_eq!(waivers.len(), 1);
    assert_eq!(
        (
            waivers[0]["bill_id"].as_str(),
            cents(&waivers[0]["amount"]),
            waivers[0]["actor"].as_str(),
            waivers[0]["reason"].as_str()
        ),
        ("W2", -fee, "wang.super", "meter fault")
    );
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    let trail = billrecon::store::workbench::audit(
        &mut conn,
        &billrecon::store::workbench::AuditFilter {
            bill_id: Some("W2".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    drop(conn);
    assert_eq!(trail.len(), 1);
    assert_eq!(
        (trail[0].action.as_str(), trail[0].actor.as_str()),
        ("waive_late_fee", "wang.super")
    );
    assert!(trail[0].comment.contains("meter fault"));
    assert_eq!(trail[0].after["bills"][0]["fee_waived_minor"], fee);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let plan = billrecon::dunning::plan(&t.app.config, &t.app.store, day)
        .await
        .unwrap();
    assert!(plan.is_empty(), "nothing owed: {plan:?}");
    t.assert_verified().await;
}

async fn a_reversal_undoes_the_fee_too(t: &TestApp) {
    t.bills(&[("RV", A, "100.00", "2026-11-02", "")]).await;
    let fee = accrual(cents("100.00"), 1, 10);
    t.pay(
        "f1",
        &[Pay::new("P", "101.00").reference("RV").e2e("E2E-RV")],
    )
    .await;
    assert_eq!(t.fee("RV").await, (fee, fee, 0, fee));
    t.pay_on(
        "f2",
        "2026-11-13",
        &[Pay::new("P-R", "101.00").e2e("E2E-RV").reversal()],
    )
    .await;
    assert_eq!(t.payment("P").await["status"], "reversed");
    let allocs = t.allocations().await;
    assert_eq!(
        allocs_of(&allocs, "P-R"),
        vec![
            ("RV", "reversal", "late_fee", -fee),
            ("RV", "reversal", "principal", -cents("100.00")),
        ]
    );
    assert_eq!(t.bill("RV").await, (10000, 0, "open".into()));
    assert_eq!(t.fee("RV").await, (0, 0, 0, 0));
    let undo: Vec<_> = t
        .late_fees()
        .await
        .into_iter()
        .filter(|f| f["kind"] == "undo")
        .collect();
    assert_eq!(undo.len(), 1);
    assert_eq!(
        (
            cents(&undo[0]["computed"]),
            cents(&undo[0]["amount"]),
            undo[0]["reason"].as_str()
        ),
        (-fee, -fee, "reversal")
    );
    // paid again later: the fee is charged again, for all its late days
    let later = accrual(cents("100.00"), 1, 20);
    let amount = billrecon::domain::money_text(cents("100.00") + later, "CNY");
    t.pay_on(
        "f3",
        "2026-11-22",
        &[Pay::new("P2", Box::leak(amount.into_boxed_str())).reference("RV")],
    )
    .await;
    assert_eq!(t.payment("P2").await["status"], "applied");
    assert_eq!(t.fee("RV").await, (later, later, 0, later));
    t.assert_verified().await;
}

#[tokio::test]
async fn a_reversal_of_a_payment_that_paid_a_fee_undoes_the_fee_exactly() {
    a_reversal_undoes_the_fee_too(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn a_reversal_of_a_payment_that_paid_a_fee_undoes_the_fee_exactly_on_postgres() {
    a_reversal_undoes_the_fee_too(&TestApp::spawn_pg().await).await;
}

#[tokio::test]
async fn a_fee_paid_by_another_payment_goes_back_to_it_when_its_charge_is_undone() {
    let t = TestApp::spawn_with("[matching]\nallocation_order = \"principal_first\"\n").await;
    t.bills(&[("X", A, "100.00", "2026-11-02", "")]).await;
    let fee = accrual(cents("100.00"), 1, 10);
    // P1 pays the principal, its fee stays owed; P2 pays that fee
    t.pay("f1", &[Pay::new("P1", "100.00").reference("X").e2e("E1")])
        .await;
    t.pay("f2", &[Pay::new("P2", "1.00").reference("X")]).await;
    assert_eq!(t.fee("X").await, (fee, fee, 0, fee));
    // the bank reverses P1: its charge goes, so P2's fee money has nothing to pay: it becomes
    // the customer's credit
    t.pay_on(
        "f3",
        "2026-11-13",
        &[Pay::new("P1-R", "100.00").e2e("E1").reversal()],
    )
    .await;
    assert_eq!(t.fee("X").await, (0, 0, 0, 0));
    assert_eq!(t.bill("X").await, (10000, 0, "open".into()));
    let p2 = t.payment("P2").await;
    assert_eq!(
        (
            p2["status"].as_str(),
            p2["applied"].as_str(),
            p2["credit"].as_str()
        ),
        ("credit", "0.00", "1.00")
    );
    assert_eq!(t.credit(A).await, fee);
    let allocs = t.allocations().await;
    assert_eq!(
        allocs_of(&allocs, "P2"),
        vec![
            ("X", "late_fee", "late_fee", fee),
            ("X", "late_fee_released", "late_fee", -fee),
        ]
    );
    t.assert_verified().await;
}

/// A payment nobody's reference names, resolved by a person to an overdue bill.
async fn resolved_late(t: &TestApp) -> (i64, resolve::Outcome) {
    t.pay("f1", &[Pay::new("U", "101.00").reference("NOBODY")])
        .await;
    let id: i64 = t.exceptions().await[0]["exception_id"].parse().unwrap();
    let o = resolve::resolve(
        &t.app.store,
        &t.app.config,
        &supervisor(),
        id,
        &Action::ApplyBill {
            bill_id: "RS".into(),
        },
        "the payer called",
    )
    .await
    .unwrap();
    (id, o)
}

#[tokio::test]
async fn a_resolution_charges_the_fee_to_the_payments_day_and_reopening_undoes_it() {
    let t = TestApp::spawn().await;
    t.bills(&[("RS", A, "100.00", "2026-11-02", "")]).await;
    // counted to the day the money arrived (2026-11-12), not the day of the resolution
    let fee = accrual(cents("100.00"), 1, 10);
    let (_, o) = resolved_late(&t).await;
    assert_eq!(o.payment.status, "applied");
    assert_eq!(o.payment.credit_minor, 0);
    assert_eq!(t.fee("RS").await, (fee, fee, 0, fee));
    let r = resolve::reopen(&t.app.store, &supervisor(), o.resolution_id, "wrong bill")
        .await
        .unwrap();
    assert_eq!(r.payment.status, "exception");
    assert_eq!(t.fee("RS").await, (0, 0, 0, 0));
    assert_eq!(t.bill("RS").await, (10000, 0, "open".into()));
    let allocs = t.allocations().await;
    let reopen: Vec<_> = allocs_of(&allocs, "U")
        .into_iter()
        .filter(|a| a.1 == "reopen")
        .collect();
    assert_eq!(
        reopen,
        vec![
            ("RS", "reopen", "late_fee", -fee),
            ("RS", "reopen", "principal", -cents("100.00")),
        ]
    );
    t.assert_verified().await;
}

#[tokio::test]
async fn reopening_is_refused_when_another_payment_paid_the_fee_it_was_charged() {
    let t = TestApp::spawn_with("[matching]\nallocation_order = \"principal_first\"\n").await;
    t.bills(&[("RS", A, "100.00", "2026-11-02", "")]).await;
    let (_, o) = resolved_late(&t).await;
    // principal first: 100.00 principal, 1.00 of fee (all of it) from the 101.00
    assert_eq!(t.fee("RS").await.3, MINIMUM);
    let fee = t.fee("RS").await.1;
    assert_eq!(fee, MINIMUM);
    // nothing is owed, so another payment cannot have paid it: reopening works
    let r = resolve::reopen(&t.app.store, &supervisor(), o.resolution_id, "wrong bill")
        .await
        .unwrap();
    assert_eq!(r.payment.status, "exception");
    // now a split leaves the fee owed, another payment pays it, and reopening is refused
    let id: i64 = t.exceptions().await[0]["exception_id"].parse().unwrap();
    let o = resolve::resolve(
        &t.app.store,
        &t.app.config,
        &supervisor(),
        id,
        &Action::Split {
            parts: vec![resolve::SplitPart {
                bill_id: "RS".into(),
                amount: "100.00".parse().unwrap(),
            }],
            rest_to_account: None,
        },
        "only the principal",
    )
    .await
    .unwrap();
    assert_eq!(o.payment.credit_minor, cents("1.00"));
    assert_eq!(t.fee("RS").await, (fee, fee, 0, 0));
    t.pay("f2", &[Pay::new("FEE", "1.00").reference("RS")])
        .await;
    assert_eq!(t.fee("RS").await.3, fee);
    let e = resolve::reopen(&t.app.store, &supervisor(), o.resolution_id, "oops")
        .await
        .unwrap_err();
    assert!(matches!(e, WorkbenchError::Conflict(_)), "{e}");
    assert!(e.to_string().contains("moved on"), "{e}");
    t.assert_verified().await;
}

#[tokio::test]
async fn a_write_off_settles_principal_and_fee() {
    let t = TestApp::spawn().await;
    t.bills(&[("WO", A, "100.00", "2026-11-02", "")]).await;
    // due 101.00 (fee 1.00); 100.60 paid: 0.40 short, within the write-off limit
    t.pay("f1", &[Pay::new("U", "100.60").reference("NOBODY")])
        .await;
    let id: i64 = t.exceptions().await[0]["exception_id"].parse().unwrap();
    let o = resolve::resolve(
        &t.app.store,
        &t.app.config,
        &supervisor(),
        id,
        &Action::WriteOff {
            bill_id: "WO".into(),
        },
        "small shortfall",
    )
    .await
    .unwrap();
    assert_eq!(o.payment.written_off_minor, -cents("0.40"));
    assert_eq!(t.bill("WO").await, (10000, 10000, "paid".into()));
    let f = t.fee("WO").await;
    assert_eq!((f.1, f.3), (MINIMUM, MINIMUM), "the fee is settled too");
    t.assert_verified().await;
}

#[tokio::test]
async fn with_collection_off_fees_are_only_shown() {
    let t = TestApp::spawn_with("[dunning]\nlate_fee_collect = \"off\"\n").await;
    t.bills(&[("B1", A, "100.00", "2026-11-02", "")]).await;
    t.pay("f", &[Pay::new("P", "100.00").reference("B1")]).await;
    assert_eq!(t.bill("B1").await, (10000, 10000, "paid".into()));
    assert!(t.late_fees().await.is_empty());
    t.bills(&[("B2", B, "100.00", "2026-11-02", "")]).await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let plan = billrecon::dunning::plan(&t.app.config, &t.app.store, day)
        .await
        .unwrap();
    let i = plan.iter().find(|i| i.bill_id == "B2").unwrap();
    assert_eq!(cents(&i.late_fee), accrual(cents("100.00"), 1, 30));
    t.assert_verified().await;
}

async fn a_cancelled_paid_bill(t: &TestApp) {
    t.bills_classed(
        &[
            ("CX", A, "300.00", "2026-10-20", ""),
            ("CY", A, "200.00", "2026-12-20", ""),
        ],
        &[(A, "commercial")],
    )
    .await;
    // CX 23 days late at 2 per mille: 13.80 first, then its 300.00; 6.20 left to CY
    let fee = accrual(cents("300.00"), 2, 23);
    t.pay("f1", &[Pay::new("P", "320.00").reference("CX")])
        .await;
    assert_eq!(t.fee("CX").await, (fee, fee, 0, fee));
    let to_cy = cents("320.00") - fee - cents("300.00");
    assert_eq!(t.bill("CY").await.1, to_cy);
    // the billing system cancels CX: its principal and fee move on to CY, the rest is credit
    let p = t.write(
        "bills2.csv",
        &format!("{BILLS_HEAD}CX,{A},2026-10,300.00,CNY,2026-08-01,2026-10-20,cancelled\n"),
    );
    let s = billrecon::billing::import_bills(&t.app.store, &p)
        .await
        .unwrap();
    let moved = cents("300.00") + fee;
    let to_cy_now = cents("200.00") - to_cy;
    assert_eq!((s.cancelled, s.cancelled_paid, s.payments_moved), (1, 1, 1));
    assert_eq!(s.moved["CNY"], (to_cy_now, moved - to_cy_now));
    assert_eq!(t.bill("CX").await, (30000, 0, "cancelled".into()));
    assert_eq!(t.fee("CX").await, (0, 0, 0, 0));
    assert_eq!(t.bill("CY").await, (20000, 20000, "paid".into()));
    let pay = t.payment("P").await;
    assert_eq!(pay["status"], "partially_applied");
    assert_eq!(cents(&pay["applied"]), cents("200.00"));
    assert_eq!(cents(&pay["credit"]), moved - to_cy_now);
    assert_eq!(t.credit(A).await, moved - to_cy_now);
    // undone and done again, row by row
    let allocs = t.allocations().await;
    assert_eq!(
        allocs_of(&allocs, "P"),
        vec![
            ("CX", "late_fee", "late_fee", fee),
            ("CX", "bill_reference", "principal", cents("300.00")),
            ("CY", "bill_reference_remainder", "principal", to_cy),
            ("CX", "bill_cancelled", "late_fee", -fee),
            ("CX", "bill_cancelled", "principal", -cents("300.00")),
            ("CY", "account_oldest_first", "principal", to_cy_now),
        ]
    );
    let fees = t.late_fees().await;
    assert_eq!(
        fees.iter()
            .map(|f| (
                f["kind"].as_str(),
                cents(&f["amount"]),
                f["reason"].as_str()
            ))
            .collect::<Vec<_>>(),
        vec![("charge", fee, ""), ("undo", -fee, "bill_cancelled")]
    );
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    let trail = billrecon::store::workbench::audit(
        &mut conn,
        &billrecon::store::workbench::AuditFilter {
            bill_id: Some("CX".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    drop(conn);
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].action, "bill_cancelled");
    assert!(
        trail[0].comment.contains("bills2.csv line 2"),
        "{}",
        trail[0].comment
    );
    let v = t.verify().await;
    assert!(v.ok, "{v}");
    let c = v
        .checks
        .iter()
        .find(|c| c.name == "no_money_on_cancelled_bills")
        .unwrap();
    assert_eq!((c.checked, c.break_count), (1, 0));
}

#[tokio::test]
async fn a_cancelled_paid_bill_gives_its_money_and_fee_to_the_customers_other_bills() {
    a_cancelled_paid_bill(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn a_cancelled_paid_bill_gives_its_money_and_fee_to_the_customers_other_bills_on_postgres() {
    a_cancelled_paid_bill(&TestApp::spawn_pg().await).await;
}

async fn a_lowered_paid_bill(t: &TestApp) {
    t.bills(&[("L", A, "100.00", "2026-11-02", "")]).await;
    let fee = accrual(cents("100.00"), 1, 10);
    t.pay("f1", &[Pay::new("P", "101.00").reference("L")]).await;
    // lowered to 80.00: the payment comes off and is allocated again, L first: 80.00 and its
    // fee (0.80, lifted to the 1.00 minimum), the rest to credit
    let p = t.write(
        "bills2.csv",
        &format!("{BILLS_HEAD}L,{A},2026-10,80.00,CNY,2026-08-01,2026-11-02,\n"),
    );
    let s = billrecon::billing::import_bills(&t.app.store, &p)
        .await
        .unwrap();
    let new_fee = accrual(cents("80.00"), 1, 10);
    assert!(new_fee < MINIMUM);
    let credit = cents("101.00") - cents("80.00") - MINIMUM;
    assert_eq!((s.lowered_paid, s.payments_moved), (1, 1));
    assert_eq!(s.moved["CNY"], (0, credit));
    assert_eq!(t.bill("L").await, (8000, 8000, "paid".into()));
    assert_eq!(t.fee("L").await, (new_fee, MINIMUM, 0, MINIMUM));
    let pay = t.payment("P").await;
    assert_eq!(
        (pay["status"].as_str(), cents(&pay["credit"])),
        ("partially_applied", credit)
    );
    let fees: Vec<(String, i64, i64)> = t
        .late_fees()
        .await
        .iter()
        .map(|f| {
            (
                f["kind"].clone(),
                cents(&f["computed"]),
                cents(&f["amount"]),
            )
        })
        .collect();
    assert_eq!(
        fees,
        vec![
            ("charge".into(), fee, fee),
            ("undo".into(), -fee, -fee),
            ("charge".into(), new_fee, MINIMUM),
        ]
    );
    t.assert_verified().await;
}

#[tokio::test]
async fn a_lowered_paid_bill_gives_back_the_difference_and_its_fee_is_charged_again() {
    a_lowered_paid_bill(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn a_lowered_paid_bill_gives_back_the_difference_on_postgres() {
    a_lowered_paid_bill(&TestApp::spawn_pg().await).await;
}

#[tokio::test]
async fn verify_recomputes_every_fee_and_names_the_one_that_was_changed() {
    let t = TestApp::spawn().await;
    t.bills(&[("V", A, "100.00", "2026-10-20", "")]).await;
    t.pay("f", &[Pay::new("P", "110.00").reference("V")]).await;
    t.assert_verified().await;
    sqlx::query("UPDATE late_fees SET days = days + 1")
        .execute(t.app.store.pool())
        .await
        .unwrap();
    let r = t.verify().await;
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "late_fees_follow_the_rule")
        .unwrap();
    assert_eq!(c.break_count, 1, "{r}");
    assert!(c.breaks[0].contains("bill V"), "{}", c.breaks[0]);
    sqlx::query("UPDATE late_fees SET days = days - 1, computed_minor = computed_minor + 1")
        .execute(t.app.store.pool())
        .await
        .unwrap();
    let r = t.verify().await;
    assert!(!r.ok);
    for name in ["late_fees_follow_the_rule", "bill_fees_equal_late_fee_rows"] {
        assert!(
            r.checks
                .iter()
                .any(|c| c.name == name && c.break_count == 1),
            "{name}: {r}"
        );
    }
    sqlx::query("UPDATE late_fees SET computed_minor = computed_minor - 1")
        .execute(t.app.store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE bills SET fee_paid_minor = fee_paid_minor + 500, status = 'cancelled'")
        .execute(t.app.store.pool())
        .await
        .unwrap();
    let r = t.verify().await;
    for name in [
        "late_fee_never_over_allocated",
        "bill_fee_paid_equals_allocations",
        "no_money_on_cancelled_bills",
    ] {
        assert!(
            r.checks
                .iter()
                .any(|c| c.name == name && c.break_count == 1),
            "{name}: {r}"
        );
    }
}

#[tokio::test]
async fn the_reports_show_late_fees_charged_collected_waived_and_outstanding() {
    let t = TestApp::spawn_with("[matching]\nallocation_order = \"principal_first\"\n").await;
    // issued in the collection rate's window that ends on 2026-11-12
    let customers = t.write(
        "c.csv",
        &format!(
            "account_no,name,class,key_account,manager,phone,email\n\
             {A},Home,residential,false,,,\n{B},Shop,commercial,false,,,\n"
        ),
    );
    billrecon::billing::import_customers(&t.app.store, &customers)
        .await
        .unwrap();
    let bills = t.write(
        "b.csv",
        &format!(
            "{BILLS_HEAD}R1,{A},2026-10,100.00,CNY,2026-10-20,2026-11-02,\n\
             R2,{B},2026-10,1000.00,CNY,2026-10-20,2026-11-02,\n"
        ),
    );
    billrecon::billing::import_bills(&t.app.store, &bills)
        .await
        .unwrap();
    // R1: 100.00 + its 1.00 fee; R2 (commercial, 2 per mille): principal only, 20.00 owed
    let (f1, f2) = (
        accrual(cents("100.00"), 1, 10),
        accrual(cents("1000.00"), 2, 10),
    );
    t.pay(
        "f",
        &[
            Pay::new("P1", "101.00").reference("R1"),
            Pay::new("P2", "1000.00").reference("R2"),
        ],
    )
    .await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 12).unwrap();
    let settlement = crate::helpers::to_maps(
        billrecon::reports::settlement::COLUMNS,
        billrecon::reports::settlement::daily_settlement(&t.app.store, day)
            .await
            .unwrap(),
    );
    let test = settlement.iter().find(|r| r["bank_id"] == "TEST").unwrap();
    assert_eq!(
        (
            cents(&test["late_fees_charged"]),
            cents(&test["late_fees_collected"])
        ),
        (f1 + f2, f1)
    );
    assert_eq!(test["late_fees_outstanding"], "", "a bank owes no fee");
    let all = settlement.iter().find(|r| r["bank_id"] == "ALL").unwrap();
    assert_eq!(
        (
            cents(&all["late_fees_charged"]),
            cents(&all["late_fees_collected"]),
            cents(&all["late_fees_waived"]),
            cents(&all["late_fees_outstanding"])
        ),
        (f1 + f2, f1, 0, f2)
    );
    // R2's fee is waived (today): waived on the day it is recorded
    resolve::waive_late_fee(&t.app.store, &supervisor(), "R2", "goodwill")
        .await
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    let rate = crate::helpers::to_maps(
        billrecon::reports::collection::COLUMNS,
        billrecon::reports::collection::collection_rate(&t.app.store, today)
            .await
            .unwrap(),
    );
    let commercial = rate
        .iter()
        .find(|r| r["by"] == "class" && r["group"] == "commercial")
        .unwrap();
    assert_eq!(cents(&commercial["late_fees_waived"]), f2);
    assert_eq!(cents(&commercial["late_fees_outstanding"]), 0);
    let everything = rate.iter().find(|r| r["by"] == "all").unwrap();
    assert_eq!(cents(&everything["late_fees_outstanding"]), 0);
    // the payments of 2026-11-12 fall in the window only when it reaches back that far
    let window = crate::helpers::to_maps(
        billrecon::reports::collection::COLUMNS,
        billrecon::reports::collection::collection_rate(&t.app.store, day)
            .await
            .unwrap(),
    );
    let residential = window
        .iter()
        .find(|r| r["by"] == "class" && r["group"] == "residential")
        .unwrap();
    assert_eq!(
        (
            cents(&residential["late_fees_charged"]),
            cents(&residential["late_fees_collected"]),
            cents(&residential["collected"])
        ),
        (f1, f1, cents("100.00")),
        "collected principal and fees apart"
    );
    let bank = window
        .iter()
        .find(|r| r["by"] == "bank" && r["group"] == "TEST")
        .unwrap();
    assert_eq!(
        (
            cents(&bank["late_fees_charged"]),
            cents(&bank["late_fees_collected"])
        ),
        (f1 + f2, f1)
    );
    let on_the_day = window
        .iter()
        .find(|r| r["by"] == "day" && r["group"] == "2026-11-12")
        .unwrap();
    assert_eq!(cents(&on_the_day["late_fees_charged"]), f1 + f2);
    t.assert_verified().await;
}

/// The partner API end to end over loopback: the bills answer's `total_due`, posted exactly,
/// is applied in full, fees first, with nothing left as credit.
#[tokio::test]
async fn a_partner_posting_of_exactly_total_due_is_applied_with_its_late_fees() {
    let t = TestApp::spawn_with(
        "[daemon]\ntime_zone = \"Asia/Shanghai\"\n\
         [[bank]]\nid = \"PA\"\nname = \"Partner A\"\nformat = \"auto\"\n[bank.partner]\ncutoff = \"23:59\"\n",
    )
    .await;
    let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
    let now = chrono::Utc::now().with_timezone(&tz);
    let today = now.date_naive();
    let due = |days: i64| (today - chrono::Duration::days(days)).to_string();
    // two overdue bills of a residential customer (1 per mille a day, whatever the year), and
    // one not due yet
    let (d1, d2) = (due(40), due(10));
    t.bills(&[
        ("OLD", A, "300.00", d1.as_str(), ""),
        ("NEWER", A, "200.00", d2.as_str(), ""),
    ])
    .await;
    let fees = accrual(cents("300.00"), 1, 40) + accrual(cents("200.00"), 1, 10);
    let token = billrecon::api::partner::auth::issue_credential(&t.app, "PA", "cli:test")
        .await
        .unwrap()
        .1;
    let s = serve(t).await;
    let path = format!("/partner/v1/accounts/{A}/bills");
    let (code, bills) = s.get(&path, Some(&token)).await;
    assert_eq!(code, reqwest::StatusCode::OK, "{bills}");
    assert_eq!(cents(bills["late_fees"].as_str().unwrap()), fees);
    let total_due = bills["total_due"].as_str().unwrap().to_string();
    assert_eq!(cents(&total_due), cents("500.00") + fees);
    let (code, answer) = s
        .post(
            "/partner/v1/payments",
            &token,
            serde_json::json!({
                "bank_txn_id": "PA-TOTAL-1",
                "account_no": A,
                "amount": total_due,
                "currency": "CNY",
                "paid_at": now.to_rfc3339(),
                "channel": "counter",
            }),
        )
        .await;
    assert_eq!(code, reqwest::StatusCode::CREATED, "{answer}");
    assert_eq!(answer["status"], "applied", "{answer}");
    assert_eq!(answer["credit"], "0.00");
    let parts: Vec<(&str, &str, i64)> = answer["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["bill_id"].as_str().unwrap(),
                a["part"].as_str().unwrap(),
                cents(a["amount"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        parts,
        vec![
            ("OLD", "late_fee", accrual(cents("300.00"), 1, 40)),
            ("OLD", "principal", cents("300.00")),
            ("NEWER", "late_fee", accrual(cents("200.00"), 1, 10)),
            ("NEWER", "principal", cents("200.00")),
        ]
    );
    let (_, after) = s.get(&path, Some(&token)).await;
    assert_eq!(after["total_due"], "0.00", "{after}");
    assert!(after["bills"].as_array().unwrap().is_empty());
    let v = billrecon::ledger::verify(&s.app.store).await.unwrap();
    assert!(v.ok, "{v}");
    s.stop().await;
}
