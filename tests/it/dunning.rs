//! Dunning plans as "today" moves through a bill's life: due, grace, each stage, a payment, an
//! unsettled payment that may be the customer's, a late bank file, a key account.

use crate::helpers::{cents, Pay, TestApp};
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
    // booked 2026-11-12, 10 days after the due date: a residential customer's late fee is
    // 1 per mille a day, a total under 1.00 charged as 1.00, collected first
    // - B1: 100.00 x 0.001 x 10 = 1.00, so the bill and its fee take 101.00;
    // - B2: of 40.00, the fee on the principal it pays (39.00 x 0.001 x 10 = 0.39) is
    //   lifted to 1.00, so 39.00 reaches the principal
    t.pay(
        "pay.xml",
        &[
            Pay::new("P1", "101.00").reference("B1"),
            Pay::new("P2", "40.00").reference("B2"),
        ],
    )
    .await;
    let items = plan_on(&t, "2026-11-06").await;
    assert!(items.iter().all(|i| i.bill_id != "B1"), "paid: {items:?}");
    let b2 = item(&items, "B2");
    assert_eq!(
        cents(&b2.outstanding),
        cents("100.00") - (cents("40.00") - cents("1.00"))
    );
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
    import(
        &t,
        "account_no,name,class,key_account,manager,phone,email\n\
         31000001,Steel Works,large_industrial,true,M007,,\n\
         31000002,A Household,residential,false,,,\n",
        "bill_id,account_no,period,amount,currency,issued_on,due_on\n\
         K1,31000001,2026-10,90000.00,CNY,2026-10-05,2026-11-02\n\
         S1,31000002,2026-10,0.50,CNY,2026-10-05,2026-11-02\n",
    )
    .await;
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

// ---- the outbox and the gateway ----

use std::sync::{Arc, Mutex};

/// A notification gateway on loopback: records what it receives, answers `fail_with` to the
/// first `fail_times` requests.
#[derive(Clone, Default)]
struct Gateway {
    seen: Arc<Mutex<Vec<(String, String, String)>>>, // (idempotency key, signature, body)
    fail_times: Arc<Mutex<(u32, u16)>>,
}

impl Gateway {
    async fn start(&self) -> String {
        use axum::routing::post;
        let me = self.clone();
        let app = axum::Router::new().route(
            "/notify",
            post(move |headers: axum::http::HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    let h = |k: &str| {
                        headers
                            .get(k)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    me.seen.lock().unwrap().push((
                        h("idempotency-key"),
                        h("x-billrecon-signature"),
                        body,
                    ));
                    let mut f = me.fail_times.lock().unwrap();
                    if f.0 > 0 {
                        f.0 -= 1;
                        axum::http::StatusCode::from_u16(f.1).unwrap()
                    } else {
                        axum::http::StatusCode::ACCEPTED
                    }
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        format!("http://{addr}/notify")
    }

    fn seen(&self) -> Vec<(String, String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn with_gateway(g: &Gateway) -> TestApp {
    with_gateway_on(g, false).await
}

/// An app (SQLite, or PostgreSQL when `pg`) whose notices go to `g`, with bill B1 due
/// 2026-11-02.
async fn with_gateway_on(g: &Gateway, pg: bool) -> TestApp {
    let url = g.start().await;
    let secret = t_dir().join("gw.secret");
    std::fs::write(&secret, "gw-secret-1").unwrap();
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    let extra = format!(
        "[dunning]\ntemplates_dir = \"{}\"\nlanguage = \"en\"\n\
         gateway = {{ url = \"{url}\", secret_file = \"{}\", max_attempts = 3, backoff_secs = 60 }}\n",
        templates.display(),
        secret.display()
    );
    let t = if pg {
        TestApp::spawn_pg_with(&extra).await
    } else {
        TestApp::spawn_with(&extra).await
    };
    t.bills(&[("B1", "31000001", "100.00", "2026-11-02", "")])
        .await;
    t
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

async fn notices(t: &TestApp) -> Vec<billrecon::store::notices::NoticeRow> {
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    billrecon::store::notices::list(&mut conn, None, 100)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_notice_is_queued_once_signed_delivered_once_and_spaced_out() {
    use billrecon::dunning::notices::{deliver_due, run};
    use hmac::Mac;
    let g = Gateway::default();
    let t = with_gateway(&g).await;
    let (cfg, store) = (&t.app.config, &t.app.store);
    let s = run(cfg, store, d("2026-11-06")).await.unwrap();
    assert_eq!((s.notices, s.already_queued), (1, 0), "{s:?}");
    let again = run(cfg, store, d("2026-11-06")).await.unwrap();
    assert_eq!(
        (again.notices, again.already_queued),
        (0, 1),
        "the same day queues nothing twice"
    );
    let n = &notices(&t).await[0];
    assert_eq!((n.status.as_str(), n.channel.as_str()), ("queued", "sms"));
    assert!(
        n.body.contains("B1") && n.body.contains("100.00") && n.body.contains("95598"),
        "{}",
        n.body
    );
    assert!(
        n.body.contains("If you have already paid"),
        "courteous: {}",
        n.body
    );

    let out = deliver_due(cfg, store, at("2026-11-06T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(out.sent, 1, "{out:?}");
    let out = deliver_due(cfg, store, at("2026-11-06T10:05:00Z"))
        .await
        .unwrap();
    assert_eq!(out.sent, 0, "a sent notice is never sent again");
    let seen = g.seen();
    assert_eq!(seen.len(), 1);
    let (key, sig, body) = &seen[0];
    assert_eq!(key, &n.idempotency_key);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"gw-secret-1").unwrap();
    mac.update(body.as_bytes());
    assert_eq!(
        sig,
        &format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["account_no"], "31000001");

    // within the notice interval (7 days): nothing new; at the second stage: sms and email
    assert_eq!(run(cfg, store, d("2026-11-10")).await.unwrap().too_soon, 1);
    let later = run(cfg, store, d("2026-11-18")).await.unwrap();
    assert_eq!(later.notices, 2, "{later:?}");
}

#[tokio::test]
async fn a_gateway_that_fails_is_retried_with_backoff_and_a_refusal_is_a_dead_letter() {
    use billrecon::dunning::notices::{deliver_due, run};
    let g = Gateway::default();
    *g.fail_times.lock().unwrap() = (2, 503);
    let t = with_gateway(&g).await;
    let (cfg, store) = (&t.app.config, &t.app.store);
    run(cfg, store, d("2026-11-06")).await.unwrap();
    assert_eq!(
        deliver_due(cfg, store, at("2026-11-06T10:00:00Z"))
            .await
            .unwrap()
            .retrying,
        1
    );
    // not due again before its backoff (60 s)
    assert_eq!(
        deliver_due(cfg, store, at("2026-11-06T10:00:30Z"))
            .await
            .unwrap(),
        Default::default()
    );
    assert_eq!(
        deliver_due(cfg, store, at("2026-11-06T10:01:01Z"))
            .await
            .unwrap()
            .retrying,
        1
    );
    // second backoff: 120 s
    let out = deliver_due(cfg, store, at("2026-11-06T10:03:02Z"))
        .await
        .unwrap();
    assert_eq!(out.sent, 1, "{out:?}");
    let n = &notices(&t).await[0];
    assert_eq!((n.status.as_str(), n.attempts), ("sent", 3));
    let keys: Vec<String> = g.seen().into_iter().map(|s| s.0).collect();
    assert_eq!(
        keys,
        vec![n.idempotency_key.clone(); 3],
        "one key for every attempt"
    );

    // a gateway that refuses the notice (4xx): no blind retries, dead letter
    let g2 = Gateway::default();
    *g2.fail_times.lock().unwrap() = (1, 400);
    let u = with_gateway(&g2).await;
    run(&u.app.config, &u.app.store, d("2026-11-06"))
        .await
        .unwrap();
    let out = deliver_due(&u.app.config, &u.app.store, at("2026-11-06T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(out.dead, 1, "{out:?}");
    assert_eq!(notices(&u).await[0].status, "dead");
}

#[tokio::test]
async fn a_notice_whose_bill_is_paid_before_sending_is_cancelled_and_sms_waits_for_morning() {
    use billrecon::dunning::notices::{deliver_due, run};
    let g = Gateway::default();
    let t = with_gateway(&g).await;
    let (cfg, store) = (&t.app.config, &t.app.store);
    run(cfg, store, d("2026-11-06")).await.unwrap();
    // 22:00 UTC (the test daemon's time zone): quiet hours
    let out = deliver_due(cfg, store, at("2026-11-06T22:00:00Z"))
        .await
        .unwrap();
    assert_eq!(out.deferred, 1);
    let n = &notices(&t).await[0];
    assert_eq!(n.next_attempt_at, "2026-11-07T08:00:00Z");
    assert!(n
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("quiet hours"));
    // the customer pays overnight, with the late fee (booked 2026-11-12, 10 days late:
    // 100.00 x 0.001 x 10 = 1.00): the notice is cancelled, never sent
    t.pay("pay.xml", &[Pay::new("P1", "101.00").reference("B1")])
        .await;
    let out = deliver_due(cfg, store, at("2026-11-07T08:00:00Z"))
        .await
        .unwrap();
    assert_eq!(out.cancelled, 1, "{out:?}");
    assert!(g.seen().is_empty(), "nothing reached the gateway");
    let n = &notices(&t).await[0];
    assert_eq!(n.status, "cancelled");
    assert!(n.cancelled_reason.as_deref().unwrap_or("").contains("B1"));
}

#[tokio::test]
async fn a_supervisor_can_waive_a_late_fee_with_a_reason() {
    let t = TestApp::spawn().await;
    t.bills(&[("B1", "31000001", "100.00", "2026-11-02", "")])
        .await;
    assert_eq!(
        item(&plan_on(&t, "2026-12-02").await, "B1").late_fee,
        "3.00"
    );
    let mut conn = t.app.store.write_pool().acquire().await.unwrap();
    use billrecon::store::dunning::waive_late_fee;
    assert!(waive_late_fee(&mut conn, "B1", "SUP1", "hardship case 17")
        .await
        .unwrap());
    assert!(
        !waive_late_fee(&mut conn, "B1", "SUP2", "again")
            .await
            .unwrap(),
        "first waiver stands"
    );
    assert!(
        waive_late_fee(&mut conn, "NOPE", "SUP1", "x")
            .await
            .is_err(),
        "no such bill"
    );
    drop(conn);
    let i = item(&plan_on(&t, "2026-12-02").await, "B1").clone();
    assert_eq!(i.late_fee, "0.00");
    assert!(
        i.reason.contains("waived by SUP1: hardship case 17"),
        "{}",
        i.reason
    );
}

#[tokio::test]
async fn the_largest_customers_can_be_treated_as_key_accounts() {
    let t = TestApp::spawn_with("[dunning]\nkey_accounts_top_n = 1\n").await;
    t.bills(&[
        ("B1", "31000001", "900.00", "2026-11-02", ""),
        ("B2", "31000002", "50.00", "2026-11-02", ""),
    ])
    .await;
    let items = plan_on(&t, "2026-11-06").await;
    assert_eq!(item(&items, "B1").action, Action::ManagerTask);
    assert_eq!(item(&items, "B2").action, Action::Notice);
}

#[tokio::test]
async fn an_applied_payment_gets_a_receipt_once_per_channel() {
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    let t = TestApp::spawn_with(&format!(
        "[dunning]\ntemplates_dir = \"{}\"\nreceipt_channels = [\"sms\", \"email\"]\n",
        templates.display()
    ))
    .await;
    t.bills(&[("B1", "31000001", "100.00", "2026-11-02", "")])
        .await;
    t.pay(
        "pay.xml",
        &[
            Pay::new("P1", "120.00").reference("B1"),
            Pay::new("P2", "5.00").reference("NOBODY"),
        ],
    )
    .await;
    let n = notices(&t).await;
    let receipts: Vec<_> = n.iter().filter(|n| n.kind == "receipt").collect();
    assert_eq!(
        receipts.len(),
        2,
        "sms and email for P1; nothing for the exception P2: {n:?}"
    );
    assert!(receipts.iter().all(|r| r.account_no == "31000001"));
    assert!(
        receipts[0].body.contains("120.00") && receipts[0].body.contains("20.00"),
        "{}",
        receipts[0].body
    );
    // matching again (another file) does not confirm P1 twice
    t.pay("more.xml", &[Pay::new("P3", "1.00").reference("B1")])
        .await;
    let n = notices(&t).await;
    assert_eq!(
        n.iter().filter(|n| n.kind == "receipt").count(),
        4,
        "P3 gets its own two"
    );
}

#[tokio::test]
async fn after_the_notice_period_field_ops_learn_who_may_be_disconnected_and_a_payment_cancels_it()
{
    use billrecon::dunning::notices::{deliver_due, field_ops_events, run};
    let (g, ops) = (Gateway::default(), Gateway::default());
    let gw = g.start().await;
    let ops_url = ops.start().await;
    let dir = t_dir();
    let secret = dir.join("gw.secret");
    std::fs::write(&secret, "s").unwrap();
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    let t = TestApp::spawn_with(&format!(
        "[dunning]\ntemplates_dir = \"{}\"\n\
         gateway = {{ url = \"{gw}\", secret_file = \"{s}\" }}\n\
         field_ops = {{ url = \"{ops_url}\", secret_file = \"{s}\" }}\n",
        templates.display(),
        s = secret.display()
    ))
    .await;
    t.bills(&[("B1", "31000001", "100.00", "2026-11-02", "")])
        .await;
    let (cfg, store) = (&t.app.config, &t.app.store);
    // 45 days overdue (Thursday 2026-12-17): the disconnection warning, by letter and sms
    let s = run(cfg, store, d("2026-12-17")).await.unwrap();
    assert_eq!(s.notices, 2, "{s:?}");
    assert_eq!(
        deliver_due(cfg, store, at("2026-12-17T10:00:00Z"))
            .await
            .unwrap()
            .sent,
        2
    );
    // within the 7 days' notice: nothing for field operations
    assert_eq!(
        field_ops_events(cfg, store, d("2026-12-20")).await.unwrap(),
        (0, 0)
    );
    // notice period over, still unpaid: published once (not once per channel)
    assert_eq!(
        field_ops_events(cfg, store, d("2026-12-24")).await.unwrap(),
        (1, 0)
    );
    assert_eq!(
        field_ops_events(cfg, store, d("2026-12-25")).await.unwrap(),
        (0, 0)
    );
    assert_eq!(
        deliver_due(cfg, store, at("2026-12-24T10:00:00Z"))
            .await
            .unwrap()
            .sent,
        1
    );
    let published = ops.seen();
    assert_eq!(published.len(), 1);
    assert!(
        published[0].2.contains("\"kind\":\"disconnection\""),
        "{}",
        published[0].2
    );
    assert!(
        g.seen()
            .iter()
            .all(|s| !s.2.contains("\"kind\":\"disconnection\"")),
        "field ops only"
    );
    // the customer pays, with the late fee (booked 2026-11-12, 10 days late: 100.00 x 0.001
    // x 10 = 1.00): a cancellation event, once
    t.pay("pay.xml", &[Pay::new("P1", "101.00").reference("B1")])
        .await;
    let cancels: Vec<_> = notices(&t)
        .await
        .into_iter()
        .filter(|n| n.kind == "disconnection_cancelled")
        .collect();
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    assert_eq!(
        field_ops_events(cfg, store, d("2026-12-26")).await.unwrap(),
        (0, 0)
    );
    assert_eq!(
        deliver_due(cfg, store, at("2026-12-26T10:00:00Z"))
            .await
            .unwrap()
            .sent,
        1
    );
    assert!(ops.seen()[1].2.contains("disconnection_cancelled"));
}

fn t_dir() -> std::path::PathBuf {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_path_buf();
    std::mem::forget(d);
    p
}

#[tokio::test]
async fn a_key_accounts_last_stage_waits_for_its_managers_acknowledgement() {
    let t = TestApp::spawn().await;
    import(
        &t,
        "account_no,name,class,key_account,manager,phone,email\n31000001,Steel Works,large_industrial,true,M007,,\n",
        "bill_id,account_no,period,amount,currency,issued_on,due_on\nK1,31000001,2026-10,90000.00,CNY,2026-10-05,2026-11-02\n",
    )
    .await;
    let i = item(&plan_on(&t, "2026-12-17").await, "K1").clone();
    assert_eq!(i.action, Action::ManagerTask);
    assert!(i.reason.contains("acknowledgement"), "{}", i.reason);
    let mut conn = t.app.store.write_pool().acquire().await.unwrap();
    billrecon::store::dunning::acknowledge(&mut conn, "31000001", "disconnection_warning", "M007")
        .await
        .unwrap();
    drop(conn);
    let i = item(&plan_on(&t, "2026-12-17").await, "K1").clone();
    assert_eq!(i.action, Action::Notice, "{}", i.reason);
    assert!(i.reason.contains("acknowledged by its manager M007"));
    // an earlier stage is still the manager's task: the acknowledgement is for the last one
    assert_eq!(
        item(&plan_on(&t, "2026-12-02").await, "K1").action,
        Action::ManagerTask
    );
}

#[tokio::test]
async fn each_customer_is_written_to_in_their_language() {
    use billrecon::dunning::notices::run;
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    let t = TestApp::spawn_with(&format!(
        "[dunning]\ntemplates_dir = \"{}\"\n",
        templates.display()
    ))
    .await;
    import(
        &t,
        "account_no,name,class,key_account,manager,phone,email,language\n\
         31000001,张伟,residential,false,,,,\n\
         31000002,John Smith,residential,false,,,,en\n",
        "bill_id,account_no,period,amount,currency,issued_on,due_on\n\
         B1,31000001,2026-10,100.00,CNY,2026-10-05,2026-11-02\n\
         B2,31000002,2026-10,100.00,CNY,2026-10-05,2026-11-02\n",
    )
    .await;
    run(&t.app.config, &t.app.store, d("2026-11-06"))
        .await
        .unwrap();
    let n = notices(&t).await;
    let zh = n.iter().find(|n| n.account_no == "31000001").unwrap();
    let en = n.iter().find(|n| n.account_no == "31000002").unwrap();
    assert_eq!((zh.language.as_str(), en.language.as_str()), ("zh", "en"));
    assert!(zh.body.contains("尊敬的张伟客户"), "{}", zh.body);
    assert!(en.body.starts_with("Dear John Smith"), "{}", en.body);
    // a language the templates do not have is refused at import
    let bad = t.write(
        "bad.csv",
        "account_no,name,class,key_account,manager,phone,email,language\n31000003,X,residential,false,,,,fr\n",
    );
    let err = billrecon::billing::import_customers(&t.app.store, &bad)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("fr"), "{err}");
}

#[tokio::test]
async fn a_queued_notice_waits_again_if_a_bank_is_late_when_it_is_about_to_be_sent() {
    use billrecon::dunning::notices::{deliver_due, run};
    let g = Gateway::default();
    let url = g.start().await;
    let dir = t_dir();
    let secret = dir.join("gw.secret");
    std::fs::write(&secret, "s").unwrap();
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    let t = TestApp::spawn_with(&format!(
        "[dunning]\ntemplates_dir = \"{}\"\nwait_for_banks = [\"TEST\"]\n\
         gateway = {{ url = \"{url}\", secret_file = \"{}\" }}\n",
        templates.display(),
        secret.display()
    ))
    .await;
    t.bills(&[
        ("B1", "31000001", "100.00", "2026-11-02", ""),
        ("B9", "31000009", "5.00", "2026-12-01", ""),
    ])
    .await;
    // TEST's file booked on Thursday the 12th is in: Friday's run queues the reminder
    t.pay("day.xml", &[Pay::new("P1", "5.00").reference("B9")])
        .await;
    let (cfg, store) = (&t.app.config, &t.app.store);
    assert_eq!(run(cfg, store, d("2026-11-13")).await.unwrap().notices, 1);
    // Monday the 16th, before Friday's file came: not sent, it waits and says why
    let out = deliver_due(cfg, store, at("2026-11-16T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!((out.sent, out.deferred), (0, 1), "{out:?}");
    let n = &notices(&t).await[0];
    assert_eq!(n.status, "queued");
    assert!(
        n.last_error.as_deref().unwrap_or("").contains("TEST"),
        "{n:?}"
    );
    assert!(g.seen().is_empty());
}

#[tokio::test]
async fn the_gateway_confirms_delivery_with_a_signed_receipt() {
    use billrecon::dunning::notices::{deliver_due, run};
    use hmac::Mac;
    let g = Gateway::default();
    let t = with_gateway(&g).await;
    let (cfg, store) = (&t.app.config, &t.app.store);
    run(cfg, store, d("2026-11-06")).await.unwrap();
    deliver_due(cfg, store, at("2026-11-06T10:00:00Z"))
        .await
        .unwrap();
    let key = notices(&t).await[0].idempotency_key.clone();
    // the daemon's HTTP endpoint, on loopback
    let app = billrecon::app::App::build(cfg.clone()).await.unwrap();
    let router = billrecon::api::router(billrecon::app::state::DaemonState::new(Arc::new(app)));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gateway/receipts", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    let post = |body: String, secret: &'static [u8]| {
        let url = url.clone();
        async move {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(body.as_bytes());
            reqwest::Client::new()
                .post(url)
                .header(
                    "X-Billrecon-Signature",
                    format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
                )
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let receipt = serde_json::json!({"idempotency_key": key, "status": "delivered"}).to_string();
    assert_eq!(post(receipt.clone(), b"wrong-secret").await, 401);
    assert_eq!(notices(&t).await[0].status, "sent");
    assert_eq!(post(receipt.clone(), b"gw-secret-1").await, 200);
    assert_eq!(notices(&t).await[0].status, "delivered");
    assert_eq!(
        post(receipt, b"gw-secret-1").await,
        404,
        "only a sent notice is confirmed"
    );
    let unknown = serde_json::json!({"idempotency_key": "nope", "status": "delivered"}).to_string();
    assert_eq!(post(unknown, b"gw-secret-1").await, 404);
}

#[tokio::test]
async fn dunning_runs_on_postgres_too() {
    use billrecon::dunning::notices::{deliver_due, field_ops_events, queue_receipts, run};
    let g = Gateway::default();
    let t = with_gateway_on(&g, true).await;
    let (cfg, store) = (&t.app.config, &t.app.store);
    let mut conn = t.app.store.write_pool().acquire().await.unwrap();
    billrecon::store::dunning::waive_late_fee(&mut conn, "B1", "SUP1", "test")
        .await
        .unwrap();
    drop(conn);
    let i = item(&plan_on(&t, "2026-12-02").await, "B1").clone();
    assert_eq!((i.action, i.late_fee.as_str()), (Action::Notice, "0.00"));
    assert_eq!(run(cfg, store, d("2026-12-02")).await.unwrap().notices, 2);
    assert_eq!(
        run(cfg, store, d("2026-12-02"))
            .await
            .unwrap()
            .already_queued,
        2
    );
    assert_eq!(
        deliver_due(cfg, store, at("2026-12-02T10:00:00Z"))
            .await
            .unwrap()
            .sent,
        2
    );
    assert_eq!(
        field_ops_events(cfg, store, d("2026-12-03")).await.unwrap(),
        (0, 0)
    );
    assert_eq!(queue_receipts(cfg, store).await.unwrap(), 0);
    assert_eq!(g.seen().len(), 2);
    assert!(notices(&t).await.iter().all(|n| n.status == "sent"));
}

/// Imports customers and bills from CSV text.
async fn import(t: &TestApp, customers: &str, bills: &str) {
    let c = t.write("customers.csv", customers);
    billrecon::billing::import_customers(&t.app.store, &c)
        .await
        .unwrap();
    let b = t.write("bills.csv", bills);
    billrecon::billing::import_bills(&t.app.store, &b)
        .await
        .unwrap();
}
