//! The partner API end to end over real HTTP on loopback: a simulated bank client posts
//! payments concurrently (each sent twice, as a bank retries), reverses some, posts for one
//! account twice, tries another bank's payments; then the bank's daily file arrives with
//! deliberate differences, and the day's reconciliation shows every category. `verify` holds.

use crate::helpers::{camt054_on, serve, Pay, Server, TestApp};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Two partner banks; the day's cut-off is late in the UTC day.
const BANKS: &str = "[daemon]\ntime_zone = \"UTC\"\n\
[[bank]]\nid = \"PA\"\nname = \"Partner A\"\nformat = \"auto\"\n[bank.partner]\ncutoff = \"23:59\"\nrate_limit_per_sec = 100000\nburst = 100000\n\
[[bank]]\nid = \"PB\"\nname = \"Partner B\"\nformat = \"auto\"\n[bank.partner]\ncutoff = \"23:59\"\nrate_limit_per_sec = 100000\nburst = 100000\n";

const ACCOUNTS: usize = 200;
const PAYMENTS: usize = 1000;

fn account(i: usize) -> String {
    format!("51{:08}", i % ACCOUNTS)
}

fn cents(v: &str) -> i64 {
    crate::helpers::cents(v)
}

/// The amount of payment `i`: between 10.01 and 99.99, so every account's bills take many.
fn amount(i: usize) -> String {
    let c = 1001 + (i * 7919) % 8999;
    format!("{}.{:02}", c / 100, c % 100)
}

async fn post(s: &Server, token: &str, body: &Value) -> (StatusCode, Value, bool) {
    let r = s
        .client
        .post(s.url("/partner/v1/payments"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let replayed = r.headers().contains_key("idempotent-replayed");
    (status, r.json().await.unwrap_or(Value::Null), replayed)
}

#[tokio::test]
async fn thousands_of_concurrent_postings_then_the_days_file() {
    let t = TestApp::spawn_with(BANKS).await;
    // every account has four bills of 300.00, due in a month: no late fee here (postings of
    // overdue bills have their own tests in `late_fees`)
    let bills: Vec<(String, String)> = (0..ACCOUNTS)
        .flat_map(|a| (0..4).map(move |k| (format!("E{a:04}{k}"), account(a))))
        .collect();
    let due = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let rows: Vec<(&str, &str, &str, &str, &str)> = bills
        .iter()
        .map(|(b, a)| (b.as_str(), a.as_str(), "300.00", due.as_str(), ""))
        .collect();
    t.bills(&rows).await;
    let pa = billrecon::api::partner::auth::issue_credential(&t.app, "PA", "cli:test")
        .await
        .unwrap()
        .1;
    let pb = billrecon::api::partner::auth::issue_credential(&t.app, "PB", "cli:test")
        .await
        .unwrap()
        .1;
    let now = chrono::Utc::now();
    let cutoff = chrono::NaiveTime::from_hms_opt(23, 59, 0).unwrap();
    let day = billrecon::partner::business_date(&t.app.config, cutoff, now).to_string();
    let s = serve(t).await;

    let body = |i: usize| {
        json!({
            "bank_txn_id": format!("PA-{i:05}"),
            "account_no": account(i),
            "amount": amount(i),
            "currency": "CNY",
            "paid_at": now.to_rfc3339(),
            "channel": if i % 3 == 0 { "app" } else { "counter" },
        })
    };
    // every payment twice (a retry after a lost answer), 32 at a time
    let sent: Vec<(usize, StatusCode, Value, bool)> =
        futures_util::stream::iter((0..PAYMENTS).flat_map(|i| [i, i]))
            .map(|i| {
                let (s, pa, b) = (&s, &pa, body(i));
                async move {
                    let (code, v, replayed) = post(s, pa, &b).await;
                    (i, code, v, replayed)
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
    let mut firsts = 0;
    for (i, code, v, replayed) in &sent {
        assert_eq!(*code, StatusCode::CREATED, "payment {i}: {v}");
        assert_eq!(v["status"], "applied", "payment {i}: {v}");
        assert_eq!(v["bank_txn_id"], format!("PA-{i:05}"));
        if !replayed {
            firsts += 1;
        }
    }
    assert_eq!(
        firsts, PAYMENTS,
        "each payment answered once first, then replayed"
    );
    // the twins got the same answer
    for i in [0, 1, PAYMENTS / 2, PAYMENTS - 1] {
        let answers: Vec<&Value> = sent.iter().filter(|x| x.0 == i).map(|x| &x.2).collect();
        assert_eq!(answers[0], answers[1]);
    }
    // the same id with another amount is refused
    let mut changed = body(7);
    changed["amount"] = json!("1.00");
    let (code, v, _) = post(&s, &pa, &changed).await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");

    // reversals of every 50th payment, each sent twice, concurrently
    let reversed: Vec<usize> = (0..PAYMENTS).step_by(50).collect();
    let answers: Vec<(StatusCode, Value)> =
        futures_util::stream::iter(reversed.iter().flat_map(|i| [*i, *i]))
            .map(|i| {
                let (s, pa) = (&s, &pa);
                async move {
                    let r = s
                        .client
                        .post(s.url(&format!("/partner/v1/payments/PA-{i:05}/reversal")))
                        .bearer_auth(pa)
                        .send()
                        .await
                        .unwrap();
                    (r.status(), r.json::<Value>().await.unwrap())
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
    for (code, v) in &answers {
        assert_eq!(*code, StatusCode::CREATED, "{v}");
        assert_eq!(v["status"], "reversed");
    }

    // another bank sees none of PA's payments
    let r = s
        .client
        .get(s.url("/partner/v1/payments/PA-00001"))
        .bearer_auth(&pb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s
        .client
        .post(s.url("/partner/v1/payments/PA-00001/reversal"))
        .bearer_auth(&pb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (code, own, _) = post(&s, &pb, &json!({"bank_txn_id": "PA-00001", "account_no": account(1), "amount": "5.00", "currency": "CNY", "paid_at": now.to_rfc3339()})).await;
    assert_eq!(code, StatusCode::CREATED, "PB's own id space: {own}");
    let pb_day: Value = s
        .client
        .get(s.url(&format!("/partner/v1/reconciliation/{day}")))
        .bearer_auth(&pb)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pb_day["postings"], 1, "PB sees only its own day");

    // the bills endpoint: the account paid twice by the bank shows what is left
    let b: Value = s
        .client
        .get(s.url(&format!("/partner/v1/accounts/{}/bills", account(3))))
        .bearer_auth(&pa)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paid_to_3: i64 = (0..PAYMENTS)
        .filter(|i| i % ACCOUNTS == 3 && !reversed.contains(i))
        .map(|i| cents(&amount(i)))
        .sum::<i64>();
    let outstanding: i64 = b["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| cents(x["outstanding"].as_str().unwrap()))
        .sum();
    assert_eq!(outstanding, 4 * cents("300.00") - paid_to_3);
    assert!(b["customer_name"].as_str().unwrap().contains('*'));

    // the bank's daily file, with deliberate differences
    let missing = [3usize, 4, 5]; // utility_only
    let other_amount = [10usize, 11]; // amount_mismatch
    let standing = [100usize, 150]; // reversed online, standing in the file
    let bank_reversed = 201usize; // the file reverses it; not reversed online
    let mut lines: Vec<Pay> = Vec::new();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    for i in 0..PAYMENTS {
        if missing.contains(&i) || (reversed.contains(&i) && !standing.contains(&i)) {
            continue;
        }
        let a = if other_amount.contains(&i) {
            leak(format!("{}.00", cents(&amount(i)) / 100 + 1))
        } else {
            leak(amount(i))
        };
        lines.push(Pay::new(&format!("PA-{i:05}"), a));
    }
    lines.push(
        Pay::new(
            &format!("PA-{bank_reversed:05}"),
            leak(amount(bank_reversed)),
        )
        .reversal(),
    );
    // never posted online
    lines.push(Pay::new("PA-X0001", "42.00").reference(&account(7)));
    lines.push(Pay::new("PA-X0002", "17.50").reference(&account(8)));
    let path = s.dir.path().join("pa-eod.xml");
    std::fs::write(&path, camt054_on("PA-EOD", &day, &lines)).unwrap();
    let bank = s.app.bank("PA").unwrap();
    let (results, _) = s.app.ingest_paths(bank, &[path]).await.unwrap();
    assert!(results[0].result.is_ok());

    let rec: Value = s
        .client
        .get(s.url(&format!("/partner/v1/reconciliation/{day}")))
        .bearer_auth(&pa)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rec["postings"], PAYMENTS as i64);
    assert_eq!(rec["reversals"], reversed.len() as i64);
    let eod = &rec["end_of_day"];
    let mut got: Vec<(String, String)> = eod["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["category"].as_str().unwrap().to_string(),
                d["bank_txn_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = Vec::new();
    let id = |i: usize| format!("PA-{i:05}");
    want.extend(missing.iter().map(|i| ("utility_only".to_string(), id(*i))));
    want.extend(
        other_amount
            .iter()
            .map(|i| ("amount_mismatch".to_string(), id(*i))),
    );
    want.extend(
        standing
            .iter()
            .map(|i| ("reversed_utility_only".to_string(), id(*i))),
    );
    want.push(("reversed_bank_only".into(), id(bank_reversed)));
    want.push(("bank_only".into(), "PA-X0001".into()));
    want.push(("bank_only".into(), "PA-X0002".into()));
    want.sort();
    assert_eq!(got, want);
    // matched: every posting but the flagged ones (reversed on both sides count as matched)
    let flagged = missing.len() + other_amount.len() + standing.len();
    assert_eq!(eod["matched"], (PAYMENTS - flagged) as i64);
    // net: postings not reversed online, the bank-only lines, minus the bank's reversal
    let net: i64 = (0..PAYMENTS)
        .filter(|i| !reversed.contains(i))
        .map(|i| cents(&amount(i)))
        .sum::<i64>()
        + cents("42.00")
        + cents("17.50")
        - cents(&amount(bank_reversed));
    assert_eq!(cents(eod["net_collections"].as_str().unwrap()), net);
    let v = billrecon::ledger::verify(&s.app.store).await.unwrap();
    assert!(v.ok, "{v}");
    // each bank gets its own rows of the settlement report, and only those
    let rows: Value = s
        .client
        .get(s.url(&format!("/partner/v1/settlement/{day}")))
        .bearer_auth(&pb)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["bank_id"], "PB");
    assert_eq!(cents(rows[0]["received"].as_str().unwrap()), cents("5.00"));
    let rows: Value = s
        .client
        .get(s.url(&format!("/partner/v1/settlement/{day}")))
        .bearer_auth(&pa)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pa_row = &rows.as_array().unwrap()[0];
    assert_eq!(pa_row["bank_id"], "PA");
    assert_eq!(
        pa_row["realtime_vs_file"],
        format!("{} matched, {} differences", PAYMENTS - flagged, want.len())
    );
    // the description served is the one in the repo, and names every route used here
    let (code, doc) = s.get("/partner/v1/openapi.json", None).await;
    assert_eq!(code, StatusCode::OK);
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi/partner-v1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(doc, file);
    for path in [
        "/partner/v1/payments",
        "/partner/v1/payments/{bank_txn_id}",
        "/partner/v1/payments/{bank_txn_id}/reversal",
        "/partner/v1/accounts/{account_no}/bills",
        "/partner/v1/reconciliation/{date}",
        "/partner/v1/settlement/{date}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not described");
    }
    s.stop().await;
}
