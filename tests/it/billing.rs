//! The billing system's exports: all rows or none, line numbers in errors, re-imports.

use crate::helpers::{cents, fixture, Pay, TestApp};
use billrecon::billing::{import_bills, import_customers, ImportError};

const CUSTOMERS_HEAD: &str = "account_no,name,class,key_account,manager,phone,email\n";
const BILLS_HEAD: &str = "bill_id,account_no,period,amount,currency,issued_on,due_on,status\n";

fn rows(err: ImportError) -> Vec<(u64, String)> {
    match err {
        ImportError::Rows { rows, .. } => rows.into_iter().map(|r| (r.line, r.reason)).collect(),
        other => panic!("expected row errors, got {other}"),
    }
}

#[tokio::test]
async fn fixture_exports_import_and_reimport_as_no_ops() {
    let t = TestApp::spawn().await;
    let c = import_customers(&t.app.store, &fixture("customers.csv"))
        .await
        .unwrap();
    let lines = std::fs::read_to_string(fixture("customers.csv"))
        .unwrap()
        .lines()
        .count() as u64
        - 1;
    assert_eq!((c.rows, c.inserted), (lines, lines));
    let b = import_bills(&t.app.store, &fixture("bills.csv"))
        .await
        .unwrap();
    let text = std::fs::read_to_string(fixture("bills.csv")).unwrap();
    let bill_lines = text.lines().count() as u64 - 1;
    let cancelled = text.lines().filter(|l| l.ends_with(",cancelled")).count() as u64;
    assert_eq!(
        (b.rows, b.inserted, b.cancelled),
        (bill_lines, bill_lines, cancelled)
    );
    let again = import_bills(&t.app.store, &fixture("bills.csv"))
        .await
        .unwrap();
    assert_eq!(
        (again.unchanged, again.inserted, again.updated),
        (bill_lines, 0, 0)
    );
    assert_eq!(t.count("bills").await as u64, bill_lines);
}

#[tokio::test]
async fn bad_customer_rows_reject_the_file_with_line_numbers() {
    let t = TestApp::spawn().await;
    let p = t.write(
        "c.csv",
        &format!(
            "{CUSTOMERS_HEAD}4100000001,A,residential,false,,,\n4100000002,B,household,false,,,\n,C,residential,false,,,\n4100000001,D,commercial,true,M1,,\n4100000005,E,residential,maybe,,,\n"
        ),
    );
    let errs = rows(import_customers(&t.app.store, &p).await.unwrap_err());
    let lines: Vec<u64> = errs.iter().map(|e| e.0).collect();
    assert_eq!(lines, vec![3, 4, 5, 6]);
    assert!(errs[0].1.contains("household"));
    assert!(errs[1].1.contains("empty"));
    assert!(
        errs[2].1.contains("line 2"),
        "duplicate names the first line: {}",
        errs[2].1
    );
    assert!(errs[3].1.contains("maybe"));
    assert_eq!(t.count("customers").await, 0, "nothing half-imported");
}

#[tokio::test]
async fn a_missing_column_is_a_header_error() {
    let t = TestApp::spawn().await;
    let p = t.write("c.csv", "account_no,name,class\n1,a,residential\n");
    let e = import_customers(&t.app.store, &p).await.unwrap_err();
    assert!(matches!(e, ImportError::Header { .. }));
    assert!(e.to_string().contains("key_account"), "{e}");
}

#[tokio::test]
async fn bad_bill_rows_reject_the_file_and_keep_what_was_stored() {
    let t = TestApp::spawn().await;
    t.bills(&[("B-1", "4100000001", "100.00", "2026-10-20", "")])
        .await;
    let p = t.write(
        "b.csv",
        &format!(
            "{BILLS_HEAD}B-2,4100000001,2026-10,50.00,CNY,2026-10-01,2026-10-20,\n\
             B-3,4199999999,2026-10,50.00,CNY,2026-10-01,2026-10-20,\n\
             B-4,4100000001,2026-13,50.00,CNY,2026-10-01,2026-10-20,\n\
             B-5,4100000001,2026-10,50.005,CNY,2026-10-01,2026-10-20,\n\
             B-6,4100000001,2026-10,50.00,CNY,2026-10-01,2026-09-20,\n\
             B-7,4100000001,2026-10,-5.00,CNY,2026-10-01,2026-10-20,\n\
             B 1,4100000001,2026-10,50.00,CNY,2026-10-01,2026-10-20,\n"
        ),
    );
    let errs = rows(import_bills(&t.app.store, &p).await.unwrap_err());
    let lines: Vec<u64> = errs.iter().map(|e| e.0).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8]);
    assert!(errs[0].1.contains("customer master"));
    assert!(errs[1].1.contains("period"));
    assert!(errs[2].1.contains("decimal places"));
    assert!(errs[3].1.contains("before"));
    assert!(errs[4].1.contains("positive"));
    assert!(errs[5].1.contains("collides"));
    assert_eq!(
        t.count("bills").await,
        1,
        "B-2 was valid but the file is rejected whole"
    );
}

#[tokio::test]
async fn a_later_export_updates_bills_and_moves_money_off_cancelled_or_lowered_ones() {
    let t = TestApp::spawn().await;
    // not due yet when the payments are booked (2026-11-12): no late fee in this test (the
    // late-fee side of moving money has its own tests in `late_fees`)
    t.bills(&[
        ("B-1", "4100000001", "100.00", "2026-11-20", ""),
        ("B-2", "4100000001", "200.00", "2026-11-25", ""),
        ("B-3", "4100000001", "100.00", "2026-11-30", ""),
    ])
    .await;
    t.pay(
        "f",
        &[
            Pay::new("R1", "30.00").reference("B-1"),
            Pay::new("R3", "100.00").reference("B-3"),
        ],
    )
    .await;

    // B-2 unpaid: its amount changes; B-1 cancelled: its 30.00 moves on to B-2 (the
    // account's other open bill, oldest first), in the import's transaction
    let p = t.write(
        "b2.csv",
        &format!(
            "{BILLS_HEAD}B-1,4100000001,2026-10,100.00,CNY,2026-10-01,2026-11-20,cancelled\n\
             B-2,4100000001,2026-10,210.00,CNY,2026-10-01,2026-11-25,\n"
        ),
    );
    let s = import_bills(&t.app.store, &p).await.unwrap();
    assert_eq!((s.updated, s.cancelled), (2, 1));
    assert_eq!(
        (s.cancelled_paid, s.lowered_paid, s.payments_moved),
        (1, 0, 1)
    );
    assert_eq!(s.moved["CNY"], (cents("30.00"), 0));
    assert!(s.to_string().contains("1 cancelled and 0 lowered"), "{s}");
    assert_eq!(t.bill("B-1").await, (10000, 0, "cancelled".into()));
    assert_eq!(t.bill("B-2").await, (21000, cents("30.00"), "open".into()));
    let r1 = t.payment("R1").await;
    assert_eq!(
        (r1["status"].as_str(), r1["applied"].as_str()),
        ("applied", "30.00")
    );
    let r1_rows: Vec<(String, String, i64)> = t
        .allocations()
        .await
        .into_iter()
        .filter(|a| a["bank_ref"] == "R1")
        .map(|a| (a["bill_id"].clone(), a["rule"].clone(), cents(&a["amount"])))
        .collect();
    assert_eq!(
        r1_rows,
        vec![
            ("B-1".into(), "bill_reference".into(), cents("30.00")),
            ("B-1".into(), "bill_cancelled".into(), -cents("30.00")),
            ("B-2".into(), "account_oldest_first".into(), cents("30.00")),
        ]
    );
    let audit = audit_of(&t, "bill_cancelled").await;
    assert_eq!(audit.len(), 1);
    assert!(
        audit[0].contains("b2.csv line 2") && audit[0].contains("B-1"),
        "{}",
        audit[0]
    );
    t.assert_verified().await;

    // B-3 (paid 100.00) lowered to 80.00: the 20.00 paid above it moves on to B-2; B-2's
    // amount may change although money is on it; re-importing changes nothing more
    let lower = format!(
        "{BILLS_HEAD}B-2,4100000001,2026-10,220.00,CNY,2026-10-01,2026-11-25,\n\
         B-3,4100000001,2026-10,80.00,CNY,2026-10-01,2026-11-30,\n"
    );
    let p = t.write("b3.csv", &lower);
    let s = import_bills(&t.app.store, &p).await.unwrap();
    assert_eq!(
        (s.cancelled_paid, s.lowered_paid, s.payments_moved),
        (0, 1, 1)
    );
    assert_eq!(s.moved["CNY"], (cents("20.00"), 0));
    assert_eq!(t.bill("B-3").await, (8000, 8000, "paid".into()));
    assert_eq!(
        t.bill("B-2").await,
        (22000, cents("30.00") + cents("20.00"), "open".into())
    );
    let r3 = t.payment("R3").await;
    assert_eq!(
        (r3["status"].as_str(), r3["applied"].as_str()),
        ("applied", "100.00")
    );
    assert!(audit_of(&t, "bill_lowered").await[0].contains("b3.csv line 3"));
    let again = import_bills(&t.app.store, &t.write("b3b.csv", &lower))
        .await
        .unwrap();
    assert_eq!((again.unchanged, again.payments_moved), (2, 0));
    t.assert_verified().await;

    // nothing else open: lowering B-2 (holding 30.00 of R1 and 20.00 of R3) to 10.00 takes
    // the latest payments off it until 40.00 is covered (R3, then R1), and allocates them
    // again: 10.00 back to B-2 (not counted as moved off), the rest to credit
    let p = t.write(
        "b4.csv",
        &format!("{BILLS_HEAD}B-2,4100000001,2026-10,10.00,CNY,2026-10-01,2026-11-25,\n"),
    );
    let s = import_bills(&t.app.store, &p).await.unwrap();
    assert_eq!(s.payments_moved, 2);
    assert_eq!(s.moved["CNY"], (0, cents("50.00") - cents("10.00")));
    assert_eq!(t.bill("B-2").await, (1000, 1000, "paid".into()));
    assert_eq!(t.credit("4100000001").await, cents("40.00"));
    assert_eq!(t.payment("R3").await["status"], "partially_applied");
    t.assert_verified().await;

    // a bill with money on it may not change currency: the file is rejected whole
    let p = t.write(
        "b5.csv",
        &format!(
            "{BILLS_HEAD}B-9,4100000001,2026-10,5.00,CNY,2026-10-01,2026-11-25,\n\
             B-3,4100000001,2026-10,80.00,EUR,2026-10-01,2026-11-30,\n"
        ),
    );
    let errs = rows(import_bills(&t.app.store, &p).await.unwrap_err());
    assert_eq!(errs[0].0, 3);
    assert!(errs[0].1.contains("refused"), "{}", errs[0].1);
    assert_eq!(t.count("bills").await, 3, "rolled back");
    t.assert_verified().await;
}

/// The comments of the audit entries with this action.
async fn audit_of(t: &TestApp, action: &str) -> Vec<String> {
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    billrecon::store::workbench::audit(
        &mut conn,
        &billrecon::store::workbench::AuditFilter::default(),
    )
    .await
    .unwrap()
    .into_iter()
    .filter(|e| e.action == action)
    .map(|e| e.comment)
    .collect()
}
