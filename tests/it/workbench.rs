//! The exceptions workbench: each resolution, its effect on bills, credit and the payment,
//! its audit entry, reopening that undoes it exactly, four eyes, limits and escalation.
//! Expected amounts come from the test's own inputs; `verify` must hold after every step.

use crate::helpers::{cents, Pay, TestApp};
use billrecon::workbench::resolve::{self, Action, SplitPart, WorkbenchError};
use billrecon::workbench::{Actor, Role};
use sqlx::Row;

const A: &str = "4100000001";
const B: &str = "4100000002";

fn actor(name: &str, role: Role) -> Actor {
    Actor {
        name: name.into(),
        role,
    }
}

fn clerk() -> Actor {
    actor("li.clerk", Role::Clerk)
}
fn supervisor() -> Actor {
    actor("wang.super", Role::Supervisor)
}

/// Bills not due yet when the test payments are booked (2026-11-12): no late fee (the late
/// fees of resolutions have their own tests in `late_fees`).
async fn setup(t: &TestApp) {
    t.bills(&[
        ("A-OLD", A, "100.00", "2026-11-20", ""),
        ("A-NEW", A, "200.00", "2026-12-20", ""),
        ("B-1", B, "300.00", "2026-12-20", ""),
    ])
    .await;
}

/// The open exception of the payment with this bank reference.
async fn exception_of(t: &TestApp, bank_ref: &str) -> i64 {
    t.exceptions()
        .await
        .into_iter()
        .find(|e| e["bank_ref"] == bank_ref)
        .unwrap_or_else(|| panic!("no open exception for {bank_ref}"))["exception_id"]
        .parse()
        .unwrap()
}

/// Pays `amount` with a reference nobody knows: an exception.
async fn unmatched(t: &TestApp, file: &str, bank_ref: &str, amount: &'static str) -> i64 {
    t.pay(
        file,
        &[Pay::new(bank_ref, amount).reference("NO-SUCH-BILL")],
    )
    .await;
    exception_of(t, bank_ref).await
}

async fn resolve(
    t: &TestApp,
    who: &Actor,
    id: i64,
    action: Action,
) -> Result<resolve::Outcome, WorkbenchError> {
    resolve::resolve(
        &t.app.store,
        &t.app.config,
        who,
        id,
        &action,
        "checked the payer's call",
    )
    .await
}

async fn audit_actions(t: &TestApp, payment_id: i64) -> Vec<(String, String)> {
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    billrecon::store::workbench::audit(
        &mut conn,
        &billrecon::store::workbench::AuditFilter {
            payment_id: Some(payment_id),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .into_iter()
    .map(|e| (e.actor, e.action))
    .collect()
}

async fn net_allocated(t: &TestApp, payment_id: i64) -> i64 {
    sqlx::query("SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM allocations WHERE payment_id = $1")
        .bind(payment_id)
        .fetch_one(t.app.store.pool())
        .await
        .unwrap()
        .get(0)
}

async fn apply_bill_then_reopen(t: TestApp) {
    setup(&t).await;
    let id = unmatched(&t, "f1", "R1", "150.00").await;
    t.assert_verified().await;
    let o = resolve(
        &t,
        &clerk(),
        id,
        Action::ApplyBill {
            bill_id: "a-new".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(o.status, "done");
    // the core's rules: A-NEW takes 150 of its 200
    assert_eq!(
        t.bill("A-NEW").await,
        (cents("200.00"), cents("150.00"), "open".into())
    );
    assert_eq!(t.bill("A-OLD").await.1, 0);
    let p = t.payment("R1").await;
    assert_eq!(p["status"], "applied");
    assert_eq!(p["held"], "0.00");
    assert!(t.exceptions().await.is_empty(), "the queue is empty");
    t.assert_verified().await;

    // the audit entry holds before and after
    let d = billrecon::workbench::detail(&t.app.store, id)
        .await
        .unwrap()
        .unwrap();
    let e = d.audit.last().unwrap();
    assert_eq!(
        (e.actor.as_str(), e.action.as_str()),
        ("li.clerk", "apply_bill")
    );
    assert_eq!(e.comment, "checked the payer's call");
    assert_eq!(e.before["payment"]["status"], "exception");
    assert_eq!(e.before["payment"]["held_minor"], cents("150.00"));
    assert_eq!(e.after["payment"]["status"], "applied");
    assert_eq!(e.before["bills"][0]["paid_minor"], 0);
    assert_eq!(e.after["bills"][0]["paid_minor"], cents("150.00"));
    assert_eq!(e.bill_ids, vec!["A-NEW".to_string()]);

    // a clerk may not reopen; a supervisor may, and it undoes exactly
    let err = resolve::reopen(&t.app.store, &clerk(), o.resolution_id, "wrong bill")
        .await
        .unwrap_err();
    assert!(matches!(err, WorkbenchError::Forbidden(_)), "{err}");
    resolve::reopen(&t.app.store, &supervisor(), o.resolution_id, "wrong bill")
        .await
        .unwrap();
    assert_eq!(t.bill("A-NEW").await, (cents("200.00"), 0, "open".into()));
    assert_eq!(net_allocated(&t, o.payment_id).await, 0);
    let p = t.payment("R1").await;
    assert_eq!(
        (p["status"].as_str(), p["held"].as_str()),
        ("exception", "150.00")
    );
    assert_eq!(exception_of(&t, "R1").await, id, "back in the queue");
    t.assert_verified().await;

    // and it can be resolved again, to the right place
    resolve(
        &t,
        &clerk(),
        id,
        Action::ApplyBill {
            bill_id: "B-1".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(t.bill("B-1").await.1, cents("150.00"));
    assert_eq!(
        audit_actions(&t, o.payment_id).await,
        vec![
            ("li.clerk".to_string(), "apply_bill".to_string()),
            ("wang.super".to_string(), "reopen".to_string()),
            ("li.clerk".to_string(), "apply_bill".to_string()),
        ]
    );
    t.assert_verified().await;
}

#[tokio::test]
async fn apply_to_a_bill_and_reopen_undoes_it_exactly() {
    apply_bill_then_reopen(TestApp::spawn().await).await;
}

#[tokio::test]
async fn apply_to_a_bill_and_reopen_on_postgres() {
    apply_bill_then_reopen(TestApp::spawn_pg().await).await;
}

#[tokio::test]
async fn apply_to_an_account_pays_oldest_first_and_keeps_the_rest_as_credit() {
    let t = TestApp::spawn().await;
    setup(&t).await;
    let amount = "350.00";
    let id = unmatched(&t, "f1", "R1", amount).await;
    let o = resolve(
        &t,
        &clerk(),
        id,
        Action::ApplyAccount {
            account_no: A.into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(t.bill("A-OLD").await.2, "paid");
    assert_eq!(t.bill("A-NEW").await.2, "paid");
    let rest = cents(amount) - cents("100.00") - cents("200.00");
    assert_eq!(t.credit(A).await, rest);
    assert_eq!(o.payment.status, "partially_applied");
    t.assert_verified().await;
    resolve::reopen(&t.app.store, &supervisor(), o.resolution_id, "not theirs")
        .await
        .unwrap();
    assert_eq!(t.credit(A).await, 0, "the credit is taken back");
    assert_eq!(t.bill("A-OLD").await, (cents("100.00"), 0, "open".into()));
    t.assert_verified().await;
}

#[tokio::test]
async fn split_across_bills_of_two_accounts_needs_to_say_where_the_rest_goes() {
    let t = TestApp::spawn().await;
    setup(&t).await;
    let id = unmatched(&t, "f1", "R1", "400.00").await;
    let parts = vec![
        SplitPart {
            bill_id: "A-OLD".into(),
            amount: "100.00".parse().unwrap(),
        },
        SplitPart {
            bill_id: "B-1".into(),
            amount: "250.00".parse().unwrap(),
        },
    ];
    let err = resolve(
        &t,
        &clerk(),
        id,
        Action::Split {
            parts: parts.clone(),
            rest_to_account: None,
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("rest_to_account"), "{err}");
    // a part above a bill's open balance is refused
    let err = resolve(
        &t,
        &clerk(),
        id,
        Action::Split {
            parts: vec![SplitPart {
                bill_id: "A-OLD".into(),
                amount: "100.01".parse().unwrap(),
            }],
            rest_to_account: None,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, WorkbenchError::Invalid(_)), "{err}");
    t.assert_verified().await;
    resolve(
        &t,
        &clerk(),
        id,
        Action::Split {
            parts,
            rest_to_account: Some(B.into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(t.bill("A-OLD").await.2, "paid");
    assert_eq!(t.bill("B-1").await.1, cents("250.00"));
    assert_eq!(
        t.credit(B).await,
        cents("400.00") - cents("100.00") - cents("250.00")
    );
    t.assert_verified().await;
}

#[tokio::test]
async fn credit_refund_and_the_payout_reference() {
    let t = TestApp::spawn().await;
    setup(&t).await;
    let c = unmatched(&t, "f1", "R1", "80.00").await;
    resolve(
        &t,
        &clerk(),
        c,
        Action::Credit {
            account_no: B.into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(t.credit(B).await, cents("80.00"));

    let r = unmatched(&t, "f2", "R2", "60.00").await;
    let o = resolve(&t, &clerk(), r, Action::Refund { to: None })
        .await
        .unwrap();
    assert_eq!(o.status, "done", "below the approval limit");
    let p = t.payment("R2").await;
    assert_eq!(
        (p["status"].as_str(), p["refunded"].as_str()),
        ("refunded", "60.00")
    );
    t.assert_verified().await;
    resolve::refund_paid(
        &t.app.store,
        &clerk(),
        o.resolution_id,
        "TRF-2026-1",
        "paid back",
    )
    .await
    .unwrap();
    let again = resolve::refund_paid(&t.app.store, &clerk(), o.resolution_id, "TRF-X", "again")
        .await
        .unwrap_err();
    assert!(matches!(again, WorkbenchError::Conflict(_)), "{again}");
    // money that has left cannot be put back in the queue
    let err = resolve::reopen(&t.app.store, &supervisor(), o.resolution_id, "oops")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TRF-2026-1"), "{err}");
    t.assert_verified().await;
}

#[tokio::test]
async fn a_large_refund_needs_a_second_person() {
    let t = TestApp::spawn_with("[exceptions]\nrefund_approval_limit = \"100.00\"\n").await;
    setup(&t).await;
    let id = unmatched(&t, "f1", "R1", "100.01").await;
    let boss = supervisor();
    let o = resolve(&t, &boss, id, Action::Refund { to: None })
        .await
        .unwrap();
    assert_eq!(o.status, "proposed");
    let p = t.payment("R1").await;
    assert_eq!(p["status"], "exception", "nothing moves before approval");
    assert_eq!(exception_of(&t, "R1").await, id);
    // no second resolution while one awaits approval
    let err = resolve(
        &t,
        &clerk(),
        id,
        Action::Credit {
            account_no: A.into(),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, WorkbenchError::Conflict(_)), "{err}");
    // the proposer cannot approve, nor can a clerk
    let own = resolve::approve(&t.app.store, &boss, o.resolution_id, "ok")
        .await
        .unwrap_err();
    assert!(own.to_string().contains("four eyes"), "{own}");
    let clerk_try = resolve::approve(&t.app.store, &clerk(), o.resolution_id, "ok")
        .await
        .unwrap_err();
    assert!(matches!(clerk_try, WorkbenchError::Forbidden(_)));
    let other = actor("zhao.super", Role::Supervisor);
    let done = resolve::approve(&t.app.store, &other, o.resolution_id, "payer's letter seen")
        .await
        .unwrap();
    assert_eq!(done.payment.status, "refunded");
    assert_eq!(done.payment.refunded_minor, cents("100.01"));
    assert!(t.exceptions().await.is_empty());
    let actions: Vec<String> = audit_actions(&t, o.payment_id)
        .await
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert_eq!(actions, vec!["propose_refund", "approve_refund"]);
    t.assert_verified().await;

    // a declined proposal leaves the exception open for another resolution
    let id2 = unmatched(&t, "f2", "R2", "500.00").await;
    let o2 = resolve(&t, &clerk(), id2, Action::Refund { to: None })
        .await
        .unwrap();
    resolve::decline(
        &t.app.store,
        &boss,
        o2.resolution_id,
        "customer wants it applied",
    )
    .await
    .unwrap();
    resolve(
        &t,
        &clerk(),
        id2,
        Action::ApplyAccount {
            account_no: B.into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(t.bill("B-1").await.2, "paid");
    t.assert_verified().await;
}

#[tokio::test]
async fn write_off_a_small_difference_within_the_limit() {
    let t = TestApp::spawn_with("[exceptions]\nwrite_off_limit = \"1.00\"\n").await;
    setup(&t).await;
    // short by 0.50 on A-OLD (100.00)
    let short = unmatched(&t, "f1", "R1", "99.50").await;
    let err = resolve(
        &t,
        &clerk(),
        short,
        Action::WriteOff {
            bill_id: "A-OLD".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, WorkbenchError::Forbidden(_)),
        "a clerk may not write off"
    );
    let o = resolve(
        &t,
        &supervisor(),
        short,
        Action::WriteOff {
            bill_id: "A-OLD".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(t.bill("A-OLD").await.2, "paid");
    assert_eq!(
        o.payment.written_off_minor,
        cents("99.50") - cents("100.00")
    );
    t.assert_verified().await;
    // over by 0.40 on B-1 (300.00): the surplus is written off, not credit
    let over = unmatched(&t, "f2", "R2", "300.40").await;
    let o2 = resolve(
        &t,
        &supervisor(),
        over,
        Action::WriteOff {
            bill_id: "B-1".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        o2.payment.written_off_minor,
        cents("300.40") - cents("300.00")
    );
    assert_eq!(t.credit(B).await, 0);
    t.assert_verified().await;
    // 1.01 short of A-NEW is above the limit
    let far = unmatched(&t, "f3", "R3", "198.99").await;
    let err = resolve(
        &t,
        &supervisor(),
        far,
        Action::WriteOff {
            bill_id: "A-NEW".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("above the write-off limit"),
        "{err}"
    );
    // reopening a write-off undoes it too
    resolve::reopen(
        &t.app.store,
        &supervisor(),
        o.resolution_id,
        "the customer will pay the rest",
    )
    .await
    .unwrap();
    assert_eq!(t.bill("A-OLD").await, (cents("100.00"), 0, "open".into()));
    assert_eq!(t.payment("R1").await["written_off"], "0.00");
    t.assert_verified().await;
}

#[tokio::test]
async fn a_duplicate_is_rejected_and_cannot_be_applied() {
    let t = TestApp::spawn().await;
    setup(&t).await;
    // the same bank transaction in two different files
    t.pay("f1", &[Pay::new("DUP1", "100.00").reference("A-OLD")])
        .await;
    t.pay("f2", &[Pay::new("DUP1", "100.00").reference("A-OLD")])
        .await;
    let id = exception_of(&t, "DUP1").await;
    let err = resolve(
        &t,
        &clerk(),
        id,
        Action::ApplyAccount {
            account_no: A.into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("reject it as a duplicate"),
        "{err}"
    );
    let o = resolve(&t, &clerk(), id, Action::RejectDuplicate)
        .await
        .unwrap();
    assert_eq!(o.payment.status, "rejected");
    assert_eq!(t.bill("A-OLD").await.1, cents("100.00"), "counted once");
    t.assert_verified().await;
    // and a non-duplicate cannot be rejected as one
    let other = unmatched(&t, "f3", "R9", "5.00").await;
    let err = resolve(&t, &clerk(), other, Action::RejectDuplicate)
        .await
        .unwrap_err();
    assert!(matches!(err, WorkbenchError::Invalid(_)));
}

#[tokio::test]
async fn rules_every_resolution_keeps() {
    let t = TestApp::spawn().await;
    setup(&t).await;
    let id = unmatched(&t, "f1", "R1", "10.00").await;
    // a comment is required
    let err = resolve::resolve(
        &t.app.store,
        &t.app.config,
        &clerk(),
        id,
        &Action::Credit {
            account_no: A.into(),
        },
        "  ",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("comment"), "{err}");
    // a viewer reads only
    let err = resolve(
        &t,
        &actor("v", Role::Viewer),
        id,
        Action::Credit {
            account_no: A.into(),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, WorkbenchError::Forbidden(_)));
    // an unknown bill names itself in the error; nothing is written
    let err = resolve(
        &t,
        &clerk(),
        id,
        Action::ApplyBill {
            bill_id: "NOPE-1".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("NOPE-1"), "{err}");
    assert_eq!(t.count("resolutions").await, 0);
    assert_eq!(t.count("audit_log").await, 0);
    resolve(
        &t,
        &clerk(),
        id,
        Action::Credit {
            account_no: A.into(),
        },
    )
    .await
    .unwrap();
    // resolving twice is a conflict
    let err = resolve(
        &t,
        &clerk(),
        id,
        Action::Credit {
            account_no: B.into(),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, WorkbenchError::Conflict(_)));
    // money in another currency cannot go to bills
    t.pay(
        "f2",
        &[Pay::new("USD1", "10.00").currency("USD").reference("A-OLD")],
    )
    .await;
    let usd = exception_of(&t, "USD1").await;
    let err = resolve(
        &t,
        &clerk(),
        usd,
        Action::ApplyBill {
            bill_id: "A-OLD".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("refund it"), "{err}");
    t.assert_verified().await;
}

async fn audit_is_append_only(t: TestApp) {
    setup(&t).await;
    let id = unmatched(&t, "f1", "R1", "10.00").await;
    resolve(
        &t,
        &clerk(),
        id,
        Action::Credit {
            account_no: A.into(),
        },
    )
    .await
    .unwrap();
    let upd = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(t.app.store.pool())
        .await;
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = sqlx::query("DELETE FROM audit_log")
        .execute(t.app.store.pool())
        .await;
    assert!(del.unwrap_err().to_string().contains("append-only"));
    assert_eq!(t.count("audit_log").await, 1);
}

#[tokio::test]
async fn the_audit_trail_refuses_changes() {
    audit_is_append_only(TestApp::spawn().await).await;
}

#[tokio::test]
async fn the_audit_trail_refuses_changes_on_postgres() {
    audit_is_append_only(TestApp::spawn_pg().await).await;
}

#[tokio::test]
async fn old_exceptions_are_escalated_once_with_a_notice_to_the_supervisors() {
    let t = TestApp::spawn_with(
        "[exceptions]\nescalate_after_hours = 24\nsupervisor_contact = \"recon-desk@utility.example\"\n",
    )
    .await;
    setup(&t).await;
    let id = unmatched(&t, "f1", "R1", "10.00").await;
    let now = chrono::Utc::now();
    let n = resolve::escalate(&t.app.store, &t.app.config, now)
        .await
        .unwrap();
    assert_eq!(n, 0, "not old enough yet");
    let later = now + chrono::Duration::hours(25);
    assert_eq!(
        resolve::escalate(&t.app.store, &t.app.config, later)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        resolve::escalate(&t.app.store, &t.app.config, later)
            .await
            .unwrap(),
        0,
        "once"
    );
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    let e = billrecon::store::workbench::exception(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    assert!(e.escalated_at.is_some());
    let notice = sqlx::query("SELECT kind, channel, payload FROM notices")
        .fetch_one(t.app.store.pool())
        .await
        .unwrap();
    assert_eq!(notice.get::<String, _>(0), "escalation");
    assert_eq!(notice.get::<String, _>(1), "supervisor");
    let payload: serde_json::Value = serde_json::from_str(&notice.get::<String, _>(2)).unwrap();
    assert_eq!(payload["to"], "recon-desk@utility.example");
    assert_eq!(payload["exception_id"], id);
    let escalated = billrecon::store::workbench::queue(
        &mut conn,
        &billrecon::store::workbench::QueueFilter {
            escalated: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0].exception.id, id);
}

#[tokio::test]
async fn the_queue_puts_key_accounts_first_then_larger_amounts() {
    let t = TestApp::spawn().await;
    setup(&t).await;
    sqlx::query("UPDATE customers SET key_account = 1 WHERE account_no = $1")
        .bind(B)
        .execute(t.app.store.pool())
        .await
        .unwrap();
    let small = unmatched(&t, "f1", "R1", "10.00").await;
    let big = unmatched(&t, "f2", "R2", "900.00").await;
    let key = unmatched(&t, "f3", "R3", "5.00").await;
    sqlx::query("UPDATE exceptions SET suggested_account = $1 WHERE id = $2")
        .bind(B)
        .bind(key)
        .execute(t.app.store.pool())
        .await
        .unwrap();
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    let q = billrecon::store::workbench::queue(&mut conn, &Default::default())
        .await
        .unwrap();
    let order: Vec<i64> = q.iter().map(|i| i.exception.id).collect();
    assert_eq!(order, vec![key, big, small]);
    assert!(q[0].key_account);
}

/// A report as maps of column -> cell.
async fn report(
    t: &TestApp,
    kind: billrecon::reports::ReportKind,
    date: &str,
) -> Vec<std::collections::HashMap<String, String>> {
    let (cols, rows) = kind
        .build(&t.app.config, &t.app.store, date.parse().unwrap())
        .await
        .unwrap();
    crate::helpers::to_maps(cols, rows)
}

#[tokio::test]
async fn the_settlement_shows_what_resolutions_made_of_the_days_money() {
    use billrecon::reports::ReportKind;
    let t = TestApp::spawn_with("[exceptions]\nwrite_off_limit = \"1.00\"\n").await;
    setup(&t).await;
    // the camt helper books every line on 2026-11-12
    let day = "2026-11-12";
    let refund_amount = "42.00";
    let short_amount = "99.70";
    let dup_amount = "200.00";
    let r = unmatched(&t, "f1", "R1", refund_amount).await;
    let w = unmatched(&t, "f2", "R2", short_amount).await;
    t.pay("f3", &[Pay::new("D1", dup_amount).reference("A-NEW")])
        .await;
    t.pay("f4", &[Pay::new("D1", dup_amount).reference("A-NEW")])
        .await;
    let d = exception_of(&t, "D1").await;
    let open_amount = "7.00";
    unmatched(&t, "f5", "R5", open_amount).await;
    resolve(&t, &clerk(), r, Action::Refund { to: None })
        .await
        .unwrap();
    resolve(
        &t,
        &supervisor(),
        w,
        Action::WriteOff {
            bill_id: "A-OLD".into(),
        },
    )
    .await
    .unwrap();
    resolve(&t, &clerk(), d, Action::RejectDuplicate)
        .await
        .unwrap();
    t.assert_verified().await;

    let rows = report(&t, ReportKind::DailySettlement, day).await;
    let all = rows.iter().find(|r| r["bank_id"] == "ALL").unwrap();
    assert_eq!(cents(&all["refunded"]), cents(refund_amount));
    assert_eq!(
        cents(&all["written_off"]),
        cents(short_amount) - cents("100.00")
    );
    assert_eq!(cents(&all["rejected_duplicates"]), cents(dup_amount));
    assert_eq!(cents(&all["held_in_exceptions"]), cents(open_amount));
    // received = applied + credit + held + refunded + written off: a rejected duplicate was
    // never money received, it is shown apart
    let parts = [
        "applied",
        "credit",
        "held_in_exceptions",
        "refunded",
        "written_off",
    ];
    let sum: i64 = parts.iter().map(|c| cents(&all[*c])).sum();
    assert_eq!(sum, cents(&all["received"]));
    // each of them is a line behind the settlement
    let lines = report(&t, ReportKind::SettlementLines, day).await;
    let mut refs: Vec<&str> = lines.iter().map(|l| l["bank_ref"].as_str()).collect();
    refs.sort();
    assert_eq!(refs, vec!["D1", "R1", "R2", "R5"]);

    // verify's totals add up with written-off money, and name what carries none
    let v = t.verify().await;
    let tt = &v.totals[0];
    let parts: i64 = [
        &tt.applied,
        &tt.credit,
        &tt.refunded,
        &tt.held,
        &tt.written_off,
    ]
    .iter()
    .map(|x| cents(x))
    .sum();
    assert_eq!(cents(&tt.amount), parts);
    assert_eq!(cents(&tt.carrying_none), cents(dup_amount));
    // escalation shows in the exceptions report of the day it happened
    let later = chrono::Utc::now() + chrono::Duration::hours(25);
    resolve::escalate(&t.app.store, &t.app.config, later)
        .await
        .unwrap();
    let rows = report(
        &t,
        ReportKind::Exceptions,
        &later.format("%Y-%m-%d").to_string(),
    )
    .await;
    let all = rows.iter().find(|r| r["reason"] == "all").unwrap();
    assert_eq!(all["escalated_count"], "1");
    assert_eq!(cents(&all["escalated_amount"]), cents(open_amount));
}
