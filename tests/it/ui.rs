//! The workbench over HTTP: the JSON API with roles on a real loopback server, the banks'
//! auto-rule, and the web page driven in Debian's chromium by Playwright
//! (tests/browser/workbench.mjs).

use crate::helpers::{cents, serve, Pay, TestApp};
use billrecon::api::auth::{self, Role};
use reqwest::StatusCode;
use serde_json::{json, Value};

const A: &str = "4100000001";
const B: &str = "4100000002";
/// Long enough that a reference one edit away is suggested.
const BILL: &str = "B2026110042";

async fn setup(t: &TestApp) {
    t.bills(&[
        // not due when the test payments are booked (2026-11-12): no late fee
        (BILL, A, "120.00", "2026-11-20", ""),
        ("B2026110077", B, "300.00", "2026-11-20", ""),
    ])
    .await;
}

/// A payment whose reference has two digits swapped: an exception with a suggestion.
async fn typo_exception(t: &TestApp, bank_ref: &str) -> i64 {
    t.pay(
        bank_ref,
        &[Pay::new(bank_ref, "120.00").reference("B2026110024")],
    )
    .await;
    t.exceptions()
        .await
        .into_iter()
        .find(|e| e["bank_ref"] == bank_ref)
        .expect("an exception")["exception_id"]
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_finance_api_resolves_by_role_and_keeps_the_trail() {
    let t = TestApp::spawn().await;
    setup(&t).await;
    let id = typo_exception(&t, "R1").await;
    let store = &t.app.store;
    let viewer = auth::add_user(store, "vic", Role::Viewer, "cli:test")
        .await
        .unwrap();
    let clerk = auth::add_user(store, "li", Role::Clerk, "cli:test")
        .await
        .unwrap();
    let boss = auth::add_user(store, "wang", Role::Supervisor, "cli:test")
        .await
        .unwrap();
    let s = serve(t).await;

    let (code, _) = s.get("/api/v1/exceptions", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, queue) = s.get("/api/v1/exceptions", Some(&viewer)).await;
    assert_eq!(code, StatusCode::OK);
    let ids: Vec<i64> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["exception"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![id]);

    // the detail ranks the bill one swap away first
    let (code, d) = s
        .get(&format!("/api/v1/exceptions/{id}"), Some(&viewer))
        .await;
    assert_eq!(code, StatusCode::OK, "{d}");
    assert_eq!(d["suggestions"][0]["bill_id"], BILL);
    let kinds: Vec<&str> = d["suggestions"][0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"reference_near_bill"), "{kinds:?}");

    let path = format!("/api/v1/exceptions/{id}/resolve");
    let body = json!({"action": "apply_bill", "bill_id": BILL, "comment": "two digits swapped"});
    let (code, _) = s.post(&path, &viewer, body.clone()).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "a viewer reads only");
    let (code, e) = s
        .post(
            &path,
            &clerk,
            json!({"action": "apply_bill", "bill_id": BILL, "comment": ""}),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"].as_str().unwrap().contains("comment"));
    let (code, e) = s
        .post(&path, &clerk, json!({"action": "fly_away", "comment": "x"}))
        .await;
    assert!(code.is_client_error(), "{code} {e}");
    let (code, o) = s.post(&path, &clerk, body.clone()).await;
    assert_eq!(code, StatusCode::OK, "{o}");
    assert_eq!(o["payment"]["status"], "applied");
    let (code, _) = s.post(&path, &clerk, body).await;
    assert_eq!(code, StatusCode::CONFLICT, "already resolved");

    // the trail, as JSON and as CSV, per payment and per bill
    let pid = o["payment_id"].as_i64().unwrap();
    let (_, trail) = s
        .get(&format!("/api/v1/audit?payment_id={pid}"), Some(&viewer))
        .await;
    let trail = trail.as_array().unwrap().clone();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0]["actor"], "li");
    assert_eq!(trail[0]["comment"], "two digits swapped");
    assert_eq!(trail[0]["after"]["bills"][0]["paid_minor"], cents("120.00"));
    let (_, by_bill) = s
        .get(&format!("/api/v1/audit?bill_id={BILL}"), Some(&viewer))
        .await;
    assert_eq!(by_bill.as_array().unwrap().len(), 1);
    let csv = s
        .client
        .get(s.url(&format!("/api/v1/audit?payment_id={pid}&format=csv")))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("audit_id,at,actor,action"), "{csv}");
    assert!(csv.contains(",li,apply_bill,"), "{csv}");

    // reopening takes a supervisor
    let rid = o["resolution_id"].as_i64().unwrap();
    let reopen = format!("/api/v1/resolutions/{rid}/reopen");
    let (code, _) = s.post(&reopen, &clerk, json!({"comment": "wrong"})).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, r) = s
        .post(&reopen, &boss, json!({"comment": "wrong bill"}))
        .await;
    assert_eq!(code, StatusCode::OK, "{r}");
    assert_eq!(r["payment"]["status"], "exception");
    let (_, queue) = s.get("/api/v1/exceptions", Some(&viewer)).await;
    assert_eq!(queue.as_array().unwrap().len(), 1, "back in the queue");

    // reports are served to finance users too
    let (code, rows) = s
        .get(
            "/api/v1/reports/daily-settlement?date=2026-11-12&format=json",
            Some(&viewer),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let all = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["bank_id"] == "ALL")
        .unwrap()
        .clone();
    assert_eq!(cents(all["received"].as_str().unwrap()), cents("120.00"));
    assert_eq!(
        cents(all["held_in_exceptions"].as_str().unwrap()),
        cents("120.00")
    );
    let x = s
        .client
        .get(s.url("/api/v1/reports/exceptions?format=xlsx"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(x.status(), StatusCode::OK);
    assert!(x.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("spreadsheetml"));
    assert_eq!(&x.bytes().await.unwrap()[..2], b"PK", "an xlsx is a zip");
    let (code, _) = s.get("/api/v1/reports/nonsense", Some(&viewer)).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let v = billrecon::ledger::verify(&s.app.store).await.unwrap();
    assert!(v.ok, "{v}");
    s.stop().await;
}

#[tokio::test]
async fn a_banks_auto_rule_applies_only_the_one_certain_candidate() {
    let t = TestApp::spawn_with(
        "[[bank]]\nid = \"AUTO\"\nname = \"Auto-rule bank\"\nformat = \"auto\"\nauto_resolve = { min_name_similarity = 0.8 }\n",
    )
    .await;
    t.bills(&[
        // not due when the test payments are booked (2026-11-12): no late fee
        ("B2026110042", A, "120.00", "2026-11-20", ""),
        ("B2026110043", B, "55.00", "2026-11-15", ""),
        ("B2026110044", B, "55.00", "2026-11-20", ""),
    ])
    .await;
    // no reference; the amount is A's bill and the payer is A's holder
    let sure = Pay {
        payer: "Customer 4100000001",
        ..Pay::new("SURE", "120.00")
    };
    // B's holder paying 55.00: two bills fit, so a person decides
    let unsure = Pay {
        payer: "Customer 4100000002",
        ..Pay::new("UNSURE", "55.00")
    };
    let f = t.write("f1", &crate::helpers::camt054("f1", &[sure, unsure]));
    t.ingest("AUTO", &[f]).await;
    assert_eq!(t.bill("B2026110042").await.2, "paid");
    let p = t.payment("SURE").await;
    assert_eq!(p["status"], "applied");
    assert_eq!(t.payment("UNSURE").await["status"], "exception");
    let open: Vec<String> = t
        .exceptions()
        .await
        .into_iter()
        .map(|e| e["bank_ref"].clone())
        .collect();
    assert_eq!(open, vec!["UNSURE"]);
    let pid: i64 = p["payment_id"].parse().unwrap();
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    let trail = billrecon::store::workbench::audit(
        &mut conn,
        &billrecon::store::workbench::AuditFilter {
            payment_id: Some(pid),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].actor, "auto-rule:AUTO");
    assert!(trail[0].comment.contains("only such candidate"));
    // the queue knows whose the unsure one probably is
    let q = billrecon::store::workbench::queue(&mut conn, &Default::default())
        .await
        .unwrap();
    assert_eq!(q[0].account_no.as_deref(), Some(B));
    t.assert_verified().await;
}

/// Node.js and Playwright (tests/browser) with Debian's chromium; see .ci/run.
pub fn browser_tools() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` first (.ci/run does)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed (.ci/run installs it)"
    );
    dir
}

#[tokio::test]
async fn a_clerk_logs_in_resolves_with_one_click_and_sees_the_audit_entry() {
    let dir = browser_tools();
    let t = TestApp::spawn().await;
    setup(&t).await;
    let id = typo_exception(&t, "R1").await;
    let token = auth::add_user(&t.app.store, "li.na", Role::Clerk, "cli:test")
        .await
        .unwrap();
    let s = serve(t).await;
    let shot = s.dir.path().join("workbench.png");
    let out = tokio::process::Command::new("node")
        .arg(dir.join("workbench.mjs"))
        .arg(&s.http)
        .arg(&token)
        .arg(id.to_string())
        .arg("li.na")
        .arg(&shot)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        said["bill"], BILL,
        "the first suggestion was the right bill"
    );
    // what the page showed is what the database holds
    let (amount, paid, status) = {
        use sqlx::Row;
        let r =
            sqlx::query("SELECT amount_minor, paid_minor, status FROM bills WHERE bill_id = $1")
                .bind(BILL)
                .fetch_one(s.app.store.pool())
                .await
                .unwrap();
        (
            r.get::<i64, _>(0),
            r.get::<i64, _>(1),
            r.get::<String, _>(2),
        )
    };
    assert_eq!((paid, status.as_str()), (amount, "paid"));
    let mut conn = s.app.store.pool().acquire().await.unwrap();
    let trail = billrecon::store::workbench::audit(
        &mut conn,
        &billrecon::store::workbench::AuditFilter {
            bill_id: Some(BILL.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].actor, "li.na");
    assert!(trail[0].comment.contains(BILL));
    // the screenshot is a real PNG of the page
    let png = std::fs::read(&shot).unwrap();
    if let Some(keep) = std::env::var_os("BILLRECON_KEEP_SCREENSHOT") {
        std::fs::write(keep, &png).unwrap();
    }
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    drop(conn);
    s.stop().await;
}
