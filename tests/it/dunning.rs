//! Dunning plans as "today" moves through a bill's life: due, grace, each stage, a payment, an
//! unsettled payment that may be the customer's, a late bank file, a key account.

use crate::helpers::{Pay, TestApp};
use billrecon::dunning::{plan, Action, PlanItem};
use chrono::NaiveDate;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn plan_on(t: &TestApp, day: &str) -> Vec<PlanItem> {
    plan(&t.app.config, &t.app.store, d(day)).await.unwrap()
}

fn item<'a>(items: &'a [PlanItem], bill: &str) -> &'a PlanItem {
    items
        .iter()
        .find(|i| i.bill_id == bill)
        .unwrap_or_else(|| panic!("{bill} not in the plan: {items:?}"))
}

#[tokio::test]
async fn a_bill_moves_through_grace_and_every_stage() {
    let t = TestApp::spawn().await;
    // due Monday 2026-11-02
    t.bills(&[("B1", "31000001", "100.00", "2026-11-02", "")])
        .await;
    assert!(
        plan_on(&t, "2026-11-02").await.is_empty(),
        "not overdue on its due date"
    );
    let steps = [
        ("2026-11-04", Action::Wait, None, "grace"),
        ("2026-11-05", Action::Wait, None, "grace"),
        (
            "2026-11-06",
            Action::Notice,
            Some("reminder"),
            "stage reminder",
        ),
        (
            "2026-11-07",
            Action::Wait,
            Some("reminder"),
            "not a business day",
        ),
        (
            "2026-11-18",
            Action::Notice,
            Some("second_reminder"),
            "stage second_reminder",
        ),
        (
            "2026-12-02",
            Action::Notice,
            Some("final_notice"),
            "stage final_notice",
        ),
        (
            "2026-12-17",
            Action::Notice,
            Some("disconnection_warning"),
            "disconnection_warning",
        ),
    ];
    for (day, action, stage, why) in steps {
        let items = plan_on(&t, day).await;
        let i = item(&items, "B1");
        assert_eq!(i.action, action, "{day}: {i:?}");
        assert_eq!(i.stage.as_deref(), stage, "{day}");
        assert!(i.reason.contains(why), "{day}: {}", i.reason);
    }
    let i = &plan_on(&t, "2026-12-02").await[0];
    assert_eq!(i.days_overdue, 30);
    assert_eq!(i.late_fee, "3.00", "100.00 x 0.1% x 30 days");
    assert_eq!(i.channels, ["sms", "letter"]);
}

#[tokio::test]
async fn a_paid_bill_is_never_reminded_and_a_part_payment_lowers_what_is_owed() {
    let t = TestApp::spawn().await;
    t.bills(&[
        ("B1", "31000001", "100.00", "2026-11-02", ""),
        ("B2", "31000002", "100.00", "2026-11-02", ""),
    ])
    .await;
    assert_eq!(plan_on(&t, "2026-11-06").await.len(), 2);
    t.pay(
        "pay.xml",
        &[
            Pay::new("P1", "100.00").reference("B1"),
            Pay::new("P2", "40.00").reference("B2"),
        ],
    )
    .await;
    let items = plan_on(&t, "2026-11-06").await;
    assert!(items.iter().all(|i| i.bill_id != "B1"), "paid: {items:?}");
    let b2 = item(&items, "B2");
    assert_eq!(b2.outstanding, "60.00");
    assert_eq!(b2.action, Action::Notice);
}

#[tokio::test]
async fn a_payment_not_yet_applied_that_names_the_customer_makes_it_wait() {
    let t = TestApp::spawn().await;
    t.bills(&[("B1", "31000001", "100.00", "2026-11-02", "")])
        .await;
    // paid in euros: held in the exceptions queue (currency_mismatch), money not yet applied
    t.pay(
        "eur.xml",
        &[Pay::new("P1", "12.00").reference("B1").currency("EUR")],
    )
    .await;
    let i = item(&plan_on(&t, "2026-11-06").await, "B1").clone();
    assert_eq!(i.action, Action::Wait);
    assert!(i.reason.contains("may be this customer's"), "{}", i.reason);
    // a payment naming the account number in free text counts too
    let u = TestApp::spawn().await;
    u.bills(&[("B1", "31000001", "100.00", "2026-11-02", "")])
        .await;
    u.pay(
        "eur.xml",
        &[Pay::new("P1", "12.00")
            .text("electricity 31000001")
            .currency("EUR")],
    )
    .await;
    assert_eq!(
        item(&plan_on(&u, "2026-11-06").await, "B1").action,
        Action::Wait
    );
}

#[tokio::test]
async fn a_bank_whose_file_for_the_previous_business_day_is_missing_makes_everyone_wait() {
    let t = TestApp::spawn_with("[dunning]\nwait_for_banks = [\"TEST\"]\n").await;
    t.bills(&[
        ("B1", "31000001", "100.00", "2026-11-02", ""),
        ("B9", "31000009", "5.00", "2026-10-01", ""),
    ])
    .await;
    // Friday 2026-11-13: TEST's file for Thursday the 12th is not in
    let i = item(&plan_on(&t, "2026-11-13").await, "B1").clone();
    assert_eq!(i.action, Action::Wait);
    assert!(
        i.reason.contains("TEST") && i.reason.contains("2026-11-12"),
        "{}",
        i.reason
    );
    // TEST's file booked on the 12th arrives (an unrelated payment)
    t.pay("day.xml", &[Pay::new("P1", "5.00").reference("B9")])
        .await;
    assert_eq!(
        item(&plan_on(&t, "2026-11-13").await, "B1").action,
        Action::Notice
    );
    // on Monday the 16th the previous business day is Friday the 13th: missing again
    assert_eq!(
        item(&plan_on(&t, "2026-11-16").await, "B1").action,
        Action::Wait
    );
}

#[tokio::test]
async fn key_accounts_go_to_their_manager_and_small_debts_wait_for_the_minimum() {
    let t = TestApp::spawn().await;
    let c = t.write(
        "customers.csv",
        "account_no,name,class,key_account,manager,phone,email\n\
         31000001,Steel Works,large_industrial,true,M007,,\n\
         31000002,A Household,residential,false,,,\n",
    );
    billrecon::billing::import_customers(&t.app.store, &c)
        .await
        .unwrap();
    let b = t.write(
        "bills.csv",
        "bill_id,account_no,period,amount,currency,issued_on,due_on\n\
         K1,31000001,2026-10,90000.00,CNY,2026-10-05,2026-11-02\n\
         S1,31000002,2026-10,0.50,CNY,2026-10-05,2026-11-02\n",
    );
    billrecon::billing::import_bills(&t.app.store, &b)
        .await
        .unwrap();
    let items = plan_on(&t, "2026-11-06").await;
    let k = item(&items, "K1");
    assert_eq!(k.action, Action::ManagerTask);
    assert!(k.reason.contains("M007"), "{}", k.reason);
    assert_eq!(k.channels, ["manager"]);
    let s = item(&items, "S1");
    assert_eq!(
        s.action,
        Action::None,
        "0.50 is under the 1.00 minimum of the first stage"
    );
    assert!(s.reason.contains("minimum"), "{}", s.reason);
}
