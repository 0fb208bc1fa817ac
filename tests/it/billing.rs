//! The billing system's exports: all rows or none, line numbers in errors, re-imports.

use crate::helpers::{fixture, Pay, TestApp};
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
async fn a_later_export_updates_unpaid_bills_and_refuses_to_shrink_paid_ones() {
    let t = TestApp::spawn().await;
    t.bills(&[
        ("B-1", "4100000001", "100.00", "2026-10-20", ""),
        ("B-2", "4100000001", "200.00", "2026-10-25", ""),
    ])
    .await;
    t.pay("f", &[Pay::new("R1", "30.00").reference("B-1")])
        .await;

    // B-2 unpaid: its amount may change; B-1 cancelled
    let p = t.write(
        "b2.csv",
        &format!(
            "{BILLS_HEAD}B-1,4100000001,2026-10,100.00,CNY,2026-10-01,2026-10-20,cancelled\n\
             B-2,4100000001,2026-10,210.00,CNY,2026-10-01,2026-10-25,\n"
        ),
    );
    let s = import_bills(&t.app.store, &p).await.unwrap();
    assert_eq!((s.updated, s.cancelled), (2, 1));
    assert_eq!(t.bill("B-2").await, (21000, 0, "open".into()));
    assert_eq!(t.bill("B-1").await, (10000, 3000, "cancelled".into()));

    // B-1 has money applied: changing its amount is refused, the file rejected whole
    let p = t.write(
        "b3.csv",
        &format!(
            "{BILLS_HEAD}B-2,4100000001,2026-10,220.00,CNY,2026-10-01,2026-10-25,\n\
             B-1,4100000001,2026-10,20.00,CNY,2026-10-01,2026-10-20,\n"
        ),
    );
    let errs = rows(import_bills(&t.app.store, &p).await.unwrap_err());
    assert_eq!(errs[0].0, 3);
    assert!(errs[0].1.contains("refused"), "{}", errs[0].1);
    assert_eq!(t.bill("B-2").await.0, 21000, "rolled back");
    t.assert_verified().await;
}
