//! The five holes of issue 23, each closed and proven over real HTTP on loopback: the partner
//! rate limit counted only for authentic requests, limits on invalid partner tokens and failed
//! web logins, security headers, the queue search's limits and escaping, the comment limit,
//! the replay record kept in the database (restart, two instances on one PostgreSQL), and
//! `/metrics` on its own address or behind a token.

use crate::helpers::{serve, Pay, Server, TestApp};
use billrecon::api::auth::{self, Role};
use billrecon::api::partner::auth as pauth;
use billrecon::app::App;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SECRET: &str = "signing-secret-of-SIGNED";

/// SIGNED: a bank that signs, with a small rate (burst 5) so that using it up is quick.
fn signed_bank(secret_file: &std::path::Path) -> String {
    format!(
        "[[bank]]\nid = \"SIGNED\"\nname = \"Signed\"\n[bank.partner]\nsigning_secret_file = \"{}\"\n\
         replay_window_secs = 300\nrate_limit_per_sec = 1\nburst = 5\n",
        secret_file.display()
    )
}

async fn signed_app(pg: bool, extra: &str) -> (TestApp, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("signed.secret");
    std::fs::write(&file, SECRET).unwrap();
    let extra = format!("{extra}\n{}", signed_bank(&file));
    let t = if pg {
        TestApp::spawn_pg_with(&extra).await
    } else {
        TestApp::spawn_with(&extra).await
    };
    (t, secrets)
}

fn signed_get(s: &Server, path: &str, token: &str, ts: i64) -> reqwest::RequestBuilder {
    let sig = pauth::signature(SECRET.as_bytes(), "GET", path, &ts.to_string(), b"");
    s.client
        .get(s.url(path))
        .bearer_auth(token)
        .header("X-Billrecon-Timestamp", ts.to_string())
        .header("X-Billrecon-Signature", format!("sha256={sig}"))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .expect("429 says when to come back")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// 600 unsigned requests with the stolen token of a signing bank do not use up the bank's
/// rate: its next correctly signed request is answered. The attacker's address is refused
/// with 429 once over its budget of failed requests; a bogus token the same way.
#[tokio::test]
async fn a_stolen_token_cannot_use_up_a_signing_banks_rate() {
    let (t, _secrets) = signed_app(false, "").await;
    let (_, token) = pauth::issue_credential(&t.app, "SIGNED", "test")
        .await
        .unwrap();
    let s = serve(t).await;
    let path = "/partner/v1/whoami";
    let (mut unauthorized, mut limited) = (0, 0);
    let began = std::time::Instant::now();
    for _ in 0..600 {
        let r = s
            .client
            .get(s.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        match r.status() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(retry_after(&r) >= 1);
                limited += 1
            }
            other => panic!("unsigned request answered {other}"),
        }
    }
    // the address's budget of failed requests (20 at once, then one a second) ran out
    let (burst, _) = billrecon::api::limits::PARTNER_INVALID_PER_ADDRESS;
    let refilled = began.elapsed().as_secs() as usize + 1;
    assert!(
        unauthorized >= burst as usize && unauthorized <= burst as usize + refilled,
        "{unauthorized} in {refilled} s"
    );
    assert_eq!(unauthorized + limited, 600);
    // the bank itself (the same address here: loopback) is served, its whole burst of 5
    for i in 0..5 {
        let r = signed_get(&s, path, &token, now() - i)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "signed request {i}");
    }
    // and only its own authentic requests used up its rate
    let r = signed_get(&s, path, &token, now() - 10)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");

    // bogus tokens: 401, then 429 with Retry-After for that address
    let bogus = pauth::new_token().0;
    let r = s
        .client
        .get(s.url(path))
        .bearer_auth(&bogus)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address is still over"
    );
    assert!(retry_after(&r) >= 1);
    s.stop().await;
}

#[tokio::test]
async fn invalid_partner_tokens_are_limited_per_address() {
    let (t, _secrets) = signed_app(
        false,
        "[daemon]\nclient_address_header = \"x-forwarded-for\"\n",
    )
    .await;
    let s = serve(t).await;
    let path = "/partner/v1/whoami";
    let (burst, _) = billrecon::api::limits::PARTNER_INVALID_PER_ADDRESS;
    let from = |addr: &str, token: &str| {
        s.client
            .get(s.url(path))
            .bearer_auth(token)
            .header("x-forwarded-for", format!("198.51.100.1, {addr}"))
            .send()
    };
    let bogus = pauth::new_token().0;
    for i in 0..burst {
        let r = from("203.0.113.7", &bogus).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // then 429 (a slow machine may have earned a request back meanwhile: one a second)
    let mut r = from("203.0.113.7", &bogus).await.unwrap();
    for _ in 0..10 {
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        r = from("203.0.113.7", &bogus).await.unwrap();
    }
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&r) >= 1);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");
    // the last address of the header is the client's: another address is not affected
    let r = from("203.0.113.8", &bogus).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // garbage in the Authorization header counts the same
    let r = s
        .client
        .get(s.url(path))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    s.stop().await;
}

/// Failed web logins: limited per address and per user name, with 429 and Retry-After before
/// the token is even looked at; a successful login does not count.
#[tokio::test]
async fn failed_web_logins_are_limited_per_address_and_per_user() {
    let t = TestApp::spawn_with("[daemon]\nclient_address_header = \"x-real-ip\"\n").await;
    let root = auth::add_user(&t.app.store, "root", Role::Admin, "test")
        .await
        .unwrap();
    let ann = auth::add_user(&t.app.store, "ann", Role::Viewer, "test")
        .await
        .unwrap();
    let s = serve(t).await;
    let login = |addr: &str, user: &str, token: &str| {
        s.client
            .post(s.url("/ui/login"))
            .header("x-real-ip", addr.to_string())
            .form(&[("user", user.to_string()), ("token", token.to_string())])
            .send()
    };
    let wrong = auth::new_token().0;

    // the right token under another user's name fails too
    let r = login("192.0.2.1", "root", &ann).await.unwrap();
    assert_eq!(r.headers()["location"], "/ui/login?failed=1");
    // per user: 5 failures naming root (from different addresses), then root is refused,
    // even with the right token, until the budget refills
    let (per_user, _) = billrecon::api::limits::LOGIN_PER_USER;
    for i in 1..=per_user - 1 {
        let r = login(&format!("192.0.2.{}", 10 + i), "root", &wrong)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "attempt {i}");
    }
    let r = login("192.0.2.99", "root", &wrong).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = login("192.0.2.100", "root", &root).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "blocked before the token is checked"
    );
    let wait = retry_after(&r);
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(r.text().await.unwrap().contains("too many failed logins"));
    // another user is not affected
    let r = login("192.0.2.101", "ann", &ann).await.unwrap();
    assert_eq!(r.headers()["location"], "/ui/");

    // per address: 10 failures from one address, naming anybody, then that address is refused
    let (per_address, _) = billrecon::api::limits::LOGIN_PER_ADDRESS;
    for i in 0..per_address {
        let r = login("198.51.100.5", &format!("nobody{i}"), &wrong)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "attempt {i}");
    }
    // (a slow machine may have earned an attempt back meanwhile: one per 6 s)
    for i in 0..3 {
        let r = login("198.51.100.5", &format!("more{i}"), &wrong)
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    let r = login("198.51.100.5", "ann", &ann).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&r) >= 1);
    // from elsewhere ann still logs in, and successes are never counted
    for _ in 0..(per_address + per_user) {
        let r = login("198.51.100.6", "ann", &ann).await.unwrap();
        assert_eq!(r.headers()["location"], "/ui/");
    }
    s.stop().await;
}

fn header<'r>(r: &'r reqwest::Response, name: &str) -> &'r str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{} has no {name}", r.url()))
        .to_str()
        .unwrap()
}

/// The web pages and the HTML reports carry the security headers; the reports' policy allows
/// no script at all.
#[tokio::test]
async fn pages_and_html_reports_send_security_headers() {
    let t = TestApp::spawn().await;
    let viewer = auth::add_user(&t.app.store, "vic", Role::Viewer, "test")
        .await
        .unwrap();
    let s = serve(t).await;
    let page = s.client.get(s.url("/ui/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let queue = s
        .client
        .get(s.url("/ui/"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    let report = s
        .client
        .get(s.url("/api/v1/reports/daily-settlement?date=2026-11-12&format=html"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::OK);
    assert!(header(&report, "content-type").starts_with("text/html"));
    let json = s
        .client
        .get(s.url("/api/v1/exceptions"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    for r in [&page, &queue, &report, &json] {
        assert_eq!(header(r, "x-frame-options"), "DENY");
        assert_eq!(header(r, "x-content-type-options"), "nosniff");
        assert_eq!(header(r, "referrer-policy"), "same-origin");
        assert_eq!(header(r, "cache-control"), "no-store");
        let csp = header(r, "content-security-policy");
        for d in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(d), "{}: {csp}", r.url());
        }
    }
    for r in [&page, &queue] {
        let csp = header(r, "content-security-policy");
        assert!(csp.contains("form-action 'self'"), "{csp}");
    }
    let csp = header(&report, "content-security-policy");
    assert!(
        !csp.contains("script-src"),
        "a report runs no script: {csp}"
    );
    assert!(csp.contains("img-src data:"), "{csp}");
    s.stop().await;
}

async fn one_exception(t: &TestApp, bank_ref: &str, payer: &'static str) -> i64 {
    let mut p = Pay::new(bank_ref, "10.00").reference("NO-SUCH-BILL");
    p.payer = payer;
    t.pay(bank_ref, &[p]).await;
    t.exceptions()
        .await
        .into_iter()
        .find(|e| e["bank_ref"] == bank_ref)
        .expect("an exception")["exception_id"]
        .parse()
        .unwrap()
}

/// The search text is matched as it is (`%` and `_` only match themselves) on both backends;
/// a long text or a limit out of range is a clear 400, not a 500.
async fn queue_search(t: TestApp) {
    let pct = one_exception(&t, "S1", "ACME 100% Ltd").await;
    let und = one_exception(&t, "S2", "snake_case Co").await;
    let plain = one_exception(&t, "S3", "Plain Payer 1000 snakeXcase").await;
    let viewer = auth::add_user(&t.app.store, "vic", Role::Viewer, "test")
        .await
        .unwrap();
    let s = serve(t).await;
    let ids = |v: &Value| -> Vec<i64> {
        let mut ids: Vec<i64> = v
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|i| i["exception"]["id"].as_i64().unwrap())
            .collect();
        ids.sort();
        ids
    };
    let search = |q: &str| format!("/api/v1/exceptions?q={}", urlencode(q));
    let (st, v) = s.get(&search("100%"), Some(&viewer)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), vec![pct], "`%` is literal: not `1000`");
    let (_, v) = s.get(&search("%"), Some(&viewer)).await;
    assert_eq!(ids(&v), vec![pct], "`%` alone is not everything");
    let (_, v) = s.get(&search("snake_case"), Some(&viewer)).await;
    assert_eq!(ids(&v), vec![und], "`_` is literal: not snakeXcase");
    let (_, v) = s.get(&search("payer"), Some(&viewer)).await;
    assert_eq!(ids(&v), vec![plain]);
    let (_, v) = s.get(&search("\\"), Some(&viewer)).await;
    assert_eq!(ids(&v), Vec::<i64>::new());

    // 50,000 characters: 400 naming the limit (the 500 of the issue)
    let (st, v) = s.get(&search(&"a".repeat(50_000)), Some(&viewer)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("at most 200"), "{v}");
    let (st, _) = s.get(&search(&"é".repeat(200)), Some(&viewer)).await;
    assert_eq!(st, StatusCode::OK, "200 characters (not bytes) are fine");
    for limit in ["-1", "0", "5001", "abc"] {
        let (st, v) = s
            .get(&format!("/api/v1/exceptions?limit={limit}"), Some(&viewer))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "limit={limit}: {v}");
    }
    let (st, v) = s.get("/api/v1/exceptions?limit=2", Some(&viewer)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 2);
    // the page's search box goes through the same checks
    let r = s
        .client
        .get(s.url(&format!("/ui/queue?q={}", "b".repeat(201))))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn queue_search_on_sqlite() {
    queue_search(TestApp::spawn().await).await;
}

#[tokio::test]
async fn queue_search_on_postgres() {
    queue_search(TestApp::spawn_pg().await).await;
}

/// A comment over 2,000 characters is refused (400 from the API and the page, an error from
/// the CLI) and nothing reaches the audit trail; one of 2,000 is kept.
#[tokio::test]
async fn comments_are_limited_everywhere_they_are_written() {
    use billrecon::workbench::resolve::COMMENT_MAX_CHARS;
    let t = TestApp::spawn().await;
    t.bills(&[("B-1", "4100000001", "10.00", "2026-10-20", "")])
        .await;
    let id = one_exception(&t, "C1", "Payer").await;
    let clerk = auth::add_user(&t.app.store, "li", Role::Clerk, "test")
        .await
        .unwrap();
    let s = serve(t).await;
    let long = "评".repeat(COMMENT_MAX_CHARS + 1);
    let audit_rows = |s: &Server| {
        let store = s.app.store.clone();
        async move {
            use sqlx::Row;
            let n: i64 = sqlx::query("SELECT COUNT(*) FROM audit_log")
                .fetch_one(store.pool())
                .await
                .unwrap()
                .get(0);
            n
        }
    };
    let before = audit_rows(&s).await;
    let resolve_path = format!("/api/v1/exceptions/{id}/resolve");
    let resolve = |comment: &str| {
        s.post(
            &resolve_path,
            &clerk,
            json!({"action": "apply_bill", "bill_id": "B-1", "comment": comment}),
        )
    };
    let (st, v) = resolve(&long).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("at most 2000"), "{v}");
    // the issue's 1.9 MB comment
    let (st, _) = resolve(&"x".repeat(1_900_000)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // the page's form
    let r = s
        .client
        .post(s.url(&format!("/ui/exceptions/{id}/resolve")))
        .bearer_auth(&clerk)
        .form(&[
            ("action", "apply_bill"),
            ("target", "B-1"),
            ("comment", long.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("at most 2000"));
    // a step on a resolution
    let (st, _) = s
        .post(
            "/api/v1/resolutions/1/approve",
            &clerk,
            json!({"comment": long}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(audit_rows(&s).await, before, "nothing was written");
    // 2,000 characters are kept
    let (st, v) = resolve(&"评".repeat(COMMENT_MAX_CHARS)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(audit_rows(&s).await, before + 1);
    let config_path = s.dir.path().join("cli.toml");
    let cfg = format!(
        "[storage]\ndatabase_url = \"{}\"\ndata_dir = \"{}\"\n",
        s.app.config.storage.database_url,
        s.app.config.storage.data_dir.display()
    );
    std::fs::write(&config_path, cfg).unwrap();
    let (_dir, config) = s.stop_keeping().await;
    let store = billrecon::store::Store::open(&config.storage.database_url)
        .await
        .unwrap();
    // the CLI refuses a long waiver reason and a long resolution comment
    let bin = env!("CARGO_BIN_EXE_billrecon");
    let out = std::process::Command::new(bin)
        .args(["--config", config_path.to_str().unwrap()])
        .args([
            "dunning", "waive", "--bill", "B-1", "--by", "wang", "--reason", &long,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at most 2000"), "{err}");
    use sqlx::Row;
    let waivers: i64 = sqlx::query("SELECT COUNT(*) FROM late_fee_waivers")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(waivers, 0);
}

/// The record of used signatures is in the database: a replay after a restart is refused.
#[tokio::test]
async fn a_replay_after_a_restart_is_refused() {
    let (t, _secrets) = signed_app(false, "").await;
    let (_, token) = pauth::issue_credential(&t.app, "SIGNED", "test")
        .await
        .unwrap();
    let s = serve(t).await;
    let ts = now() - 5;
    let path = "/partner/v1/whoami";
    let r = signed_get(&s, path, &token, ts).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (dir, config) = s.stop_keeping().await;
    let app = App::build(config).await.unwrap();
    let s = serve(TestApp { dir, app }).await;
    let r = signed_get(&s, path, &token, ts).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "the replay after the restart"
    );
    let r = signed_get(&s, path, &token, ts + 1).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a fresh signature is fine");
    s.stop().await;
}

/// Two daemon instances on one PostgreSQL database: a request accepted by one is a replay
/// for the other, and of the same signature sent to both at once exactly one is accepted.
#[tokio::test]
async fn two_instances_on_one_postgres_share_the_replay_record() {
    let (t, _secrets) = signed_app(true, "").await;
    let (_, token) = pauth::issue_credential(&t.app, "SIGNED", "test")
        .await
        .unwrap();
    let config = t.app.config.clone();
    let a = serve(t).await;
    let b = serve(TestApp {
        dir: tempfile::tempdir().unwrap(),
        app: App::build(config).await.unwrap(),
    })
    .await;
    let path = "/partner/v1/whoami";
    let ts = now() - 5;
    let r = signed_get(&a, path, &token, ts).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = signed_get(&b, path, &token, ts).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // the same new signature at both at once, 4 times each (within each bank's burst of 5)
    let ts = now() - 6;
    let mut calls = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { &a } else { &b };
        calls.push(signed_get(s, path, &token, ts).send());
    }
    let statuses: Vec<StatusCode> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        7,
        "{statuses:?}"
    );
    b.stop().await;
    a.stop().await;
}

/// `/metrics` on its own address (and gone from the main one), behind a bearer token.
#[tokio::test]
async fn metrics_on_their_own_address_behind_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, "m3trics-t0ken\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = TestApp::spawn_with(&format!(
        "[daemon]\nmetrics_addr = \"127.0.0.1:{port}\"\nmetrics_token_file = \"{}\"\n",
        token_file.display()
    ))
    .await;
    let s = serve(t).await;
    let (st, _) = s.get("/metrics", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "not on the main address");
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(r) = s.client.get(&metrics).send().await {
            answered = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = answered.expect("the metrics address answers");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .client
        .get(&metrics)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .client
        .get(&metrics)
        .bearer_auth("m3trics-t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("billrecon_"));
    s.stop().await;
}
