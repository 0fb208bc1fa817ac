//! Suggestions for payments in the exceptions queue, on the fixture customers and bills:
//! each payment below becomes an exception, and the bill or account it really pays must come
//! first, for the right reasons.

use crate::helpers::{camt054, cents, Pay, TestApp};
use billrecon::domain::RfReference;
use billrecon::workbench::suggest::{
    auto_pick, refresh_suggested_accounts, suggest, Suggestion, DEFAULT_LIMIT,
};
use sqlx::Row;

async fn payment_id(t: &TestApp, bank_ref: &str) -> i64 {
    let sql = "SELECT id FROM payments WHERE bank_ref = $1 ORDER BY id DESC";
    let q = if t.app.store.backend() == billrecon::store::Backend::Sqlite {
        sql.replace("$1", "?")
    } else {
        sql.to_string()
    };
    sqlx::query(&q)
        .bind(bank_ref.to_string())
        .fetch_one(t.app.store.pool())
        .await
        .unwrap()
        .get(0)
}

async fn suggestions(t: &TestApp, bank_ref: &str, limit: usize) -> Vec<Suggestion> {
    let id = payment_id(t, bank_ref).await;
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    let bank = t.app.bank("TEST").unwrap();
    suggest(&mut conn, id, &bank.reference_patterns, limit)
        .await
        .unwrap()
}

fn kinds(s: &Suggestion) -> Vec<&'static str> {
    s.reasons.iter().map(|r| r.kind()).collect()
}

/// Ingests one payment from bank TEST, the payer's bank account given.
async fn pay_from(t: &TestApp, name: &str, pay: Pay, payer_account: &str) {
    let xml = camt054(name, &[pay]).replace(
        "</Dbtr>",
        &format!("</Dbtr><DbtrAcct><Id><Othr><Id>{payer_account}</Id></Othr></Id></DbtrAcct>"),
    );
    let p = t.write(name, &xml);
    t.ingest("TEST", &[p]).await;
}

async fn assert_exception(t: &TestApp, bank_ref: &str, reason: &str) {
    let p = t.payment(bank_ref).await;
    assert_eq!(
        (p["status"].as_str(), p["exception_reason"].as_str()),
        ("exception", reason),
        "{bank_ref}: {p:?}"
    );
}

/// A bad RF: the reference of `bill` with its check digits broken.
fn broken_rf(bill: &str) -> String {
    let rf = RfReference::wrap(bill).unwrap();
    let mut bad = rf.to_string();
    bad.replace_range(2..4, if &bad[2..4] == "11" { "12" } else { "11" });
    bad
}

/// The payments of the scenario, all exceptions.
async fn queue(t: &TestApp) {
    t.import_fixtures().await;
    t.pay(
        "f1",
        &[
            // B202610-0005 with one digit wrong
            Pay::new("TYPO", "100.00").reference("B202610-0095"),
            // B202610-0012 with two digits swapped
            Pay::new("SWAP", "4000.00").text("电费 B202601-0012"),
            // B202610-0007 as an RF reference with wrong check digits
            Pay::new("RFBAD", "10.00").reference(&broken_rf("B202610-0007")),
            // nothing but the amount of B202610-0005 and its holder's name, written otherwise
            Pay {
                payer: "NORTHERN STEEL WORKS CO., LTD.",
                ..Pay::new("NOREF", "12000.00")
            },
            // names two customers; pays the one whose bill it equals
            Pay::new("TWO", "180.00").text("3100000001 3100000002"),
            // nothing resembles anything
            Pay {
                payer: "Nobody Known",
                ..Pay::new("NOTHING", "77.77").reference("ZZTOP")
            },
        ],
    )
    .await;
    // a payer account pays 3100000010's bill by reference, then sends money without one
    pay_from(
        t,
        "f2",
        Pay::new("EARLIER", "700.00").reference("3100000010"),
        "6222020200099990010",
    )
    .await;
    assert_eq!(t.payment("EARLIER").await["status"], "applied");
    pay_from(
        t,
        "f3",
        Pay {
            payer: "Sun Lei",
            ..Pay::new("AGAIN", "123.45")
        },
        "6222020200099990010",
    )
    .await;
    for r in ["TYPO", "SWAP", "RFBAD", "NOREF", "NOTHING", "AGAIN"] {
        assert_exception(t, r, "unknown_reference").await;
    }
    assert_exception(t, "TWO", "ambiguous_reference").await;
}

/// The first suggestion is `bill` (None: the account as a whole) of `account`, clearly ahead
/// of the next one, and carries `kind`.
fn assert_first(s: &[Suggestion], account: &str, bill: Option<&str>, kind: &str) {
    let first = s
        .first()
        .unwrap_or_else(|| panic!("no suggestion, wanted {account}"));
    assert_eq!(
        (first.account_no.as_str(), first.bill_id.as_deref()),
        (account, bill),
        "{s:#?}"
    );
    assert!(kinds(first).contains(&kind), "{kind} missing: {first:#?}");
    if let Some(second) = s.get(1) {
        assert!(second.score < first.score, "{s:#?}");
    }
    assert!(s.windows(2).all(|w| w[0].score >= w[1].score), "{s:#?}");
}

async fn check(t: &TestApp) {
    let s = suggestions(t, "TYPO", DEFAULT_LIMIT).await;
    assert_first(
        &s,
        "3100000005",
        Some("B202610-0005"),
        "reference_near_bill",
    );
    assert_eq!(
        serde_json::to_value(&s[0].reasons[0]).unwrap(),
        serde_json::json!({"kind": "reference_near_bill", "token": "B2026100095", "edits": 1})
    );
    assert!(s[0].key_account);
    assert_eq!(s[0].customer_name, "Northern Steel Works");
    assert_eq!(s[0].open_minor, cents("12000.00"));
    assert!(s.len() <= DEFAULT_LIMIT);

    let s = suggestions(t, "SWAP", DEFAULT_LIMIT).await;
    assert_first(
        &s,
        "3100000012",
        Some("B202610-0012"),
        "reference_near_bill",
    );
    assert_eq!(
        serde_json::to_value(&s[0].reasons[0]).unwrap()["edits"],
        1,
        "a transposition is one edit"
    );

    let s = suggestions(t, "RFBAD", DEFAULT_LIMIT).await;
    assert_first(
        &s,
        "3100000007",
        Some("B202610-0007"),
        "check_digit_repaired",
    );

    let s = suggestions(t, "NOREF", DEFAULT_LIMIT).await;
    assert_first(
        &s,
        "3100000005",
        Some("B202610-0005"),
        "amount_equals_bill_balance",
    );
    assert!(kinds(&s[0]).contains(&"name_resembles"), "{s:#?}");
    assert_eq!(s[0].name_similarity(), 1.0);
    let picked = auto_pick(&s, cents("12000.00"), 0.9).expect("the unique exact case");
    assert_eq!(picked.bill_id.as_deref(), Some("B202610-0005"));
    assert!(auto_pick(&s, cents("12000.01"), 0.9).is_none());

    let s = suggestions(t, "TWO", DEFAULT_LIMIT).await;
    assert_first(
        &s,
        "3100000002",
        Some("B202610-0002"),
        "amount_equals_bill_balance",
    );
    assert!(kinds(&s[0]).contains(&"reference_near_account"));
    assert!(
        s.iter().any(|c| c.account_no == "3100000001"),
        "the other named customer is still offered: {s:#?}"
    );

    let s = suggestions(t, "AGAIN", DEFAULT_LIMIT).await;
    assert_first(
        &s,
        "3100000010",
        None,
        "same_payer_paid_this_account_before",
    );
    assert_eq!(s[0].open_minor, 0, "its only bill is paid");

    let s = suggestions(t, "NOTHING", DEFAULT_LIMIT).await;
    assert!(s.iter().all(|c| c.score < 20), "{s:#?}");

    // the limit holds
    assert!(suggestions(t, "TYPO", 2).await.len() <= 2);

    // the queue's suggested accounts
    let set = refresh_suggested_accounts(&t.app.store, &t.app.banks)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT p.bank_ref, e.suggested_account FROM exceptions e \
         JOIN payments p ON p.id = e.payment_id WHERE e.status = 'open' ORDER BY e.id",
    )
    .fetch_all(t.app.store.pool())
    .await
    .unwrap();
    let got: std::collections::HashMap<String, Option<String>> = rows
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<Option<String>, _>(1)))
        .collect();
    for (r, a) in [
        ("TYPO", "3100000005"),
        ("SWAP", "3100000012"),
        ("RFBAD", "3100000007"),
        ("NOREF", "3100000005"),
        ("TWO", "3100000002"),
        ("AGAIN", "3100000010"),
    ] {
        assert_eq!(got[r].as_deref(), Some(a), "{r}: {got:?}");
    }
    assert_eq!(got["NOTHING"], None);
    let expected = got.values().filter(|a| a.is_some()).count() as u64;
    assert_eq!(set, expected);
    // a second refresh changes nothing and says the same
    assert_eq!(
        refresh_suggested_accounts(&t.app.store, &t.app.banks)
            .await
            .unwrap(),
        set
    );
    t.assert_verified().await;
}

#[tokio::test]
async fn each_exception_gets_the_bill_it_pays_first() {
    let t = TestApp::spawn().await;
    queue(&t).await;
    check(&t).await;
}

#[tokio::test]
async fn each_exception_gets_the_bill_it_pays_first_on_postgres() {
    let t = TestApp::spawn_pg().await;
    queue(&t).await;
    check(&t).await;
}

#[tokio::test]
async fn auto_pick_refuses_two_bills_with_the_same_balance() {
    let t = TestApp::spawn().await;
    t.bills(&[
        ("SAME-A", "4100000001", "150.00", "2026-10-20", ""),
        ("SAME-B", "4100000002", "150.00", "2026-10-19", ""),
        ("ONLY-C", "4100000003", "275.00", "2026-10-20", ""),
    ])
    .await;
    t.pay(
        "f1",
        &[
            Pay {
                payer: "Customer 4100000001",
                ..Pay::new("SAME", "150.00")
            },
            Pay {
                payer: "CUSTOMER 4100000003",
                ..Pay::new("ONLY", "275.00")
            },
        ],
    )
    .await;
    assert_exception(&t, "SAME", "unknown_reference").await;
    assert_exception(&t, "ONLY", "unknown_reference").await;

    let s = suggestions(&t, "SAME", 50).await;
    let exact: Vec<_> = s
        .iter()
        .filter(|c| kinds(c).contains(&"amount_equals_bill_balance"))
        .collect();
    assert_eq!(exact.len(), 2, "{s:#?}");
    // the payer's own name ranks their bill first (the other is due earlier), but two bills
    // fit: no automatic pick
    assert_eq!(s[0].bill_id.as_deref(), Some("SAME-A"), "{s:#?}");
    assert!(auto_pick(&s, cents("150.00"), 0.5).is_none());

    let s = suggestions(&t, "ONLY", 50).await;
    assert_eq!(s[0].bill_id.as_deref(), Some("ONLY-C"), "{s:#?}");
    let pick = auto_pick(&s, cents("275.00"), 0.95).expect("one bill fits");
    assert_eq!(pick.bill_id.as_deref(), Some("ONLY-C"));
    assert!(
        auto_pick(&s, cents("275.00"), 1.01).is_none(),
        "a name threshold above the similarity refuses"
    );
}
