//! The partner API's authentication, signing and rate limiting (issue 8): real HTTP on
//! loopback through the daemon's own listener, SQLite and PostgreSQL, and the CLI.

use crate::helpers::{serve, Server, TestApp};
use billrecon::api::auth::Role;
use billrecon::api::partner::auth::{self as pauth, Partner, PartnerGuard};
use billrecon::app::App;
use billrecon::config::Config;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Row;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const SECRET: &str = "the-shared-secret-of-SIGNED";

/// Partner banks: ABC (unsigned, default rate), SIGNED (signed with the secret in
/// `secret_file`, 300 s window), SLOW (1 request/s, burst 2). The helper's ICBC, CMB and TEST
/// follow, without `[bank.partner]`.
fn partner_banks(secret_file: &std::path::Path) -> String {
    format!(
        r#"
[[bank]]
id = "ABC"
name = "ABC Bank"
[bank.partner]

[[bank]]
id = "SIGNED"
name = "Signed Bank"
[bank.partner]
signing_secret_file = "{}"
replay_window_secs = 300

[[bank]]
id = "SLOW"
name = "Slow Bank"
[bank.partner]
rate_limit_per_sec = 1
burst = 2
"#,
        secret_file.display()
    )
}

/// A test app with the partner banks, and the folder holding the secret file.
async fn spawn(pg: bool) -> (TestApp, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("signed.secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let extra = partner_banks(&file);
    let t = if pg {
        TestApp::spawn_pg_with(&extra).await
    } else {
        TestApp::spawn_with(&extra).await
    };
    (t, secrets)
}

async fn issue(app: &App, bank: &str) -> String {
    let (_, token) = pauth::issue_credential(app, bank, "test").await.unwrap();
    token
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A request to `path` with the bank's token, signed with `secret` at `ts` over `signed_body`
/// but sending `body`.
fn signed(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    token: &str,
    ts: i64,
    signed_body: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    let ts = ts.to_string();
    let sig = pauth::signature(
        SECRET.as_bytes(),
        method.as_str(),
        path,
        &ts,
        signed_body.as_bytes(),
    );
    s.client
        .request(method, s.url(path))
        .bearer_auth(token)
        .header("X-Billrecon-Timestamp", ts)
        .header("X-Billrecon-Signature", format!("sha256={sig}"))
        .body(body.to_string())
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("{v}"))
}

#[tokio::test]
async fn tokens_banks_and_revocation() {
    let (t, _secrets) = spawn(false).await;
    let abc = issue(&t.app, "ABC").await;
    let abc2 = issue(&t.app, "ABC").await;
    let slow = issue(&t.app, "SLOW").await;
    assert!(pauth::looks_like_token(&abc) && abc != abc2);
    let user = billrecon::api::auth::add_user(&t.app.store, "alice", Role::Admin, "test")
        .await
        .unwrap();
    // the bank must be configured for the partner API to get a credential
    let e = pauth::issue_credential(&t.app, "TEST", "test")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "forbidden", "{e}");
    let e = pauth::issue_credential(&t.app, "NOPE", "test")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found", "{e}");
    // a bank left without [bank.partner] (as if the table was taken away after issuing)
    let test_token = {
        let (token, digest) = pauth::new_token();
        billrecon::store::partners::issue(&t.app.store, "TEST", &digest, "test")
            .await
            .unwrap();
        token
    };
    let s = serve(t).await;

    // public: the API's description
    let (st, doc) = s.get("/partner/v1/openapi.json", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["paths"]["/partner/v1/whoami"].is_object(), "{doc}");

    let (st, v) = s.get("/partner/v1/whoami", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(code(&v), "unauthorized");
    let (st, v) = s.get("/partner/v1/whoami", Some("bpk_nonsense")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    // a finance user's token never opens the partner API ...
    let (st, v) = s.get("/partner/v1/whoami", Some(&user)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(code(&v), "unauthorized");
    let (st, _) = s.get("/api/v1/me", Some(&user)).await;
    assert_eq!(st, StatusCode::OK);
    // ... and a partner token never opens the finance API
    let (st, v) = s.get("/api/v1/me", Some(&abc)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");

    let (st, v) = s.get("/partner/v1/whoami", Some(&abc)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, serde_json::json!({"bank_id": "ABC"}));
    let (st, v) = s.get("/partner/v1/whoami", Some(&slow)).await;
    assert_eq!((st, v["bank_id"].as_str()), (StatusCode::OK, Some("SLOW")));
    let (st, v) = s.get("/partner/v1/whoami", Some(&test_token)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not enabled"),
        "{v}"
    );

    // the first use is recorded (in the background)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = s.app.store.pool().acquire().await.unwrap();
        let rows = billrecon::store::partners::list(&mut conn, Some("ABC"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        if rows[0].last_used_at.is_some() {
            assert!(rows[1].last_used_at.is_none());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "last_used_at never set"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // revoking one credential leaves the other
    let mut conn = s.app.store.pool().acquire().await.unwrap();
    let rows = billrecon::store::partners::list(&mut conn, Some("ABC"))
        .await
        .unwrap();
    drop(conn);
    let n = pauth::revoke_credentials(&s.app.store, "ABC", Some(rows[0].id), "test")
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (st, v) = s.get("/partner/v1/whoami", Some(&abc)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let (st, _) = s.get("/partner/v1/whoami", Some(&abc2)).await;
    assert_eq!(st, StatusCode::OK);
    let e = pauth::revoke_credentials(&s.app.store, "ABC", Some(rows[0].id), "test")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "conflict");
    // another bank's credential id is not found for this bank
    let e = pauth::revoke_credentials(&s.app.store, "SLOW", Some(rows[1].id), "test")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found");
    // all of a bank's
    let n = pauth::revoke_credentials(&s.app.store, "ABC", None, "test")
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (st, _) = s.get("/partner/v1/whoami", Some(&abc2)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // the database holds digests only; the audit trail neither tokens nor digests
    let mut texts = Vec::new();
    for sql in [
        "SELECT token_sha256 || ' ' || created_by FROM partner_credentials",
        "SELECT action || ' ' || actor || ' ' || comment || ' ' || before_state || ' ' || after_state FROM audit_log",
    ] {
        for r in sqlx::query(sql)
            .fetch_all(s.app.store.pool())
            .await
            .unwrap()
        {
            texts.push(r.get::<String, _>(0));
        }
    }
    let audit = texts.join("\n");
    assert!(audit.contains("partner_token") && audit.contains("partner_revoke"));
    for token in [&abc, &abc2, &slow, &test_token] {
        let digest = billrecon::api::auth::digest(token);
        assert!(!audit.contains(&token[4..]), "plaintext token stored");
        let stored = texts.iter().filter(|t| t.contains(&digest)).count();
        assert_eq!(stored, 1, "the digest only in partner_credentials");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_bank_taken_out_of_the_partner_api_is_refused() {
    let (t, _secrets) = spawn(false).await;
    let token = issue(&t.app, "ABC").await;
    let TestApp { dir, app } = t;
    let url = app.config.storage.database_url.clone();
    app.store.close().await;
    // the same database, the config without ABC's [bank.partner]
    let toml = format!(
        "[storage]\ndatabase_url = \"{url}\"\ndata_dir = \"{}\"\n[[bank]]\nid = \"ABC\"\nname = \"ABC Bank\"\n",
        dir.path().join("data").display()
    );
    let app = App::build(Config::from_toml(&toml, "test").unwrap())
        .await
        .unwrap();
    let s = serve(TestApp { dir, app }).await;
    let (st, v) = s.get("/partner/v1/whoami", Some(&token)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(code(&v), "unauthorized");
    s.stop().await;
}

#[tokio::test]
async fn signed_requests_and_replays() {
    let (t, _secrets) = spawn(false).await;
    let token = issue(&t.app, "SIGNED").await;
    let s = serve(t).await;
    let get = reqwest::Method::GET;
    let path = "/partner/v1/whoami";

    // unsigned
    let (st, v) = s.get(path, Some(&token)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(code(&v), "unauthorized");
    // signed right
    let (st, v) = s
        .call(signed(&s, get.clone(), path, &token, now(), "", ""))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["bank_id"], "SIGNED");
    // the body counts (even on a GET)
    let (st, _) = s
        .call(signed(&s, get.clone(), path, &token, now() - 1, "{}", "{}"))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s
        .call(signed(
            &s,
            get.clone(),
            path,
            &token,
            now() - 2,
            r#"{"amount":"10.00"}"#,
            r#"{"amount":"99.00"}"#,
        ))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("does not match"));
    // the query is signed too
    let ts = now() - 3;
    let sig = pauth::signature(SECRET.as_bytes(), "GET", path, &ts.to_string(), b"");
    let (st, _) = s
        .call(
            s.client
                .get(s.url(&format!("{path}?x=1")))
                .bearer_auth(&token)
                .header("X-Billrecon-Timestamp", ts.to_string())
                .header("X-Billrecon-Signature", format!("sha256={sig}")),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // another secret
    let sig = pauth::signature(b"guess", "GET", path, &ts.to_string(), b"");
    let (st, _) = s
        .call(
            s.client
                .get(s.url(path))
                .bearer_auth(&token)
                .header("X-Billrecon-Timestamp", ts.to_string())
                .header("X-Billrecon-Signature", format!("sha256={sig}")),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // a signature without a timestamp, garbage
    let (st, _) = s
        .call(
            s.client
                .get(s.url(path))
                .bearer_auth(&token)
                .header("X-Billrecon-Signature", "sha256=00"),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // outside the window, either way (signed right, with that timestamp)
    for ts in [now() - 301, now() + 301] {
        let (st, v) = s
            .call(signed(&s, get.clone(), path, &token, ts, "", ""))
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("from the server's time"));
    }
    // a replay of an accepted request: refused with 409 (see the auth module's docs)
    let ts = now() - 10;
    let (st, _) = s
        .call(signed(&s, get.clone(), path, &token, ts, "", ""))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s
        .call(signed(&s, get.clone(), path, &token, ts, "", ""))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(code(&v), "conflict");
    // a signed bank's token alone does not open it either on another path
    let (st, _) = s.get("/partner/v1/whoami?x=1", Some(&token)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn rate_limit_per_bank() {
    let (t, _secrets) = spawn(false).await;
    let slow = issue(&t.app, "SLOW").await;
    let abc = issue(&t.app, "ABC").await;
    let s = serve(t).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let r = s
            .client
            .get(s.url("/partner/v1/whoami"))
            .bearer_auth(&slow)
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let v: Value = r.json().await.unwrap();
            assert_eq!(code(&v), "rate_limited");
        }
        // another bank is not affected
        let (st, _) = s.get("/partner/v1/whoami", Some(&abc)).await;
        assert_eq!(st, StatusCode::OK);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert!(
        retry_after.is_some_and(|s| (1..=2).contains(&s)),
        "{retry_after:?}"
    );
    // one request a second comes back
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (st, _) = s.get("/partner/v1/whoami", Some(&slow)).await;
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
}

/// A route added the documented way gets the bank and the body unchanged; bodies over the
/// limit are refused.
#[tokio::test]
async fn added_routes_get_the_bank_and_the_body() {
    use axum::routing::post;
    use axum::Extension;
    let (t, _secrets) = spawn(false).await;
    let token = issue(&t.app, "SIGNED").await;
    let daemon = billrecon::app::state::DaemonState::new(std::sync::Arc::new(t.app));
    let guard = std::sync::Arc::new(PartnerGuard::new(&daemon.app.banks));
    let echo = axum::Router::new().route(
        "/partner/v1/echo",
        post(
            |Extension(p): Extension<Partner>, body: String| async move {
                format!("{}:{body}", p.bank_id)
            },
        ),
    );
    let router = pauth::protect(echo, daemon.clone(), guard).with_state(daemon.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let send = |body: String, ts: i64| {
        let sig = pauth::signature(
            SECRET.as_bytes(),
            "POST",
            "/partner/v1/echo",
            &ts.to_string(),
            body.as_bytes(),
        );
        client
            .post(format!("{base}/partner/v1/echo"))
            .bearer_auth(&token)
            .header("X-Billrecon-Timestamp", ts.to_string())
            .header("X-Billrecon-Signature", format!("sha256={sig}"))
            .body(body)
            .send()
    };
    let body = r#"{"bank_txn_id":"T1","amount":"12.30","note":"电费"}"#.to_string();
    let r = send(body.clone(), now()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), format!("SIGNED:{body}"));
    let r = send("x".repeat(pauth::BODY_LIMIT + 1), now())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "too_large");
    let r = send("y".repeat(pauth::BODY_LIMIT), now()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    server.abort();
}

#[tokio::test]
async fn on_postgres() {
    let (t, _secrets) = spawn(true).await;
    let token = issue(&t.app, "SIGNED").await;
    let abc = issue(&t.app, "ABC").await;
    let s = serve(t).await;
    let path = "/partner/v1/whoami";
    let (st, v) = s
        .call(signed(
            &s,
            reqwest::Method::GET,
            path,
            &token,
            now(),
            "",
            "",
        ))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["bank_id"], "SIGNED");
    let (st, v) = s.get(path, Some(&abc)).await;
    assert_eq!((st, v["bank_id"].as_str()), (StatusCode::OK, Some("ABC")));
    let n = pauth::revoke_credentials(&s.app.store, "ABC", None, "test")
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (st, _) = s.get(path, Some(&abc)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let mut conn = s.app.store.pool().acquire().await.unwrap();
    let rows = billrecon::store::partners::list(&mut conn, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].bank_id, "ABC");
    assert!(rows[0].revoked_at.is_some() && rows[1].revoked_at.is_none());
    drop(conn);
    s.stop().await;
}

// ---- the CLI ----

const BIN: &str = env!("CARGO_BIN_EXE_billrecon");

fn cli(config: &PathBuf, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("USER", "operator")
        .env_remove("BILLRECON_DATABASE_URL")
        .env_remove("BILLRECON_DATA_DIR")
        .output()
        .unwrap()
}

#[tokio::test]
async fn cli_issues_lists_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("billrecon.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndatabase_url = \"sqlite://{}\"\ndata_dir = \"{}\"\n[daemon]\nhttp_addr = \"\"\n\
             [[bank]]\nid = \"ABC\"\nname = \"ABC\"\n[bank.partner]\n\n[[bank]]\nid = \"FILES\"\nname = \"Files only\"\n",
            dir.path().join("db.sqlite").display(),
            dir.path().join("data").display(),
        ),
    )
    .unwrap();
    let ok = |args: &[&str]| {
        let o = cli(&config, args);
        let (out, err) = (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        );
        assert!(o.status.success(), "{args:?}: {out}\n{err}");
        (out, err)
    };
    let fails = |args: &[&str]| {
        let o = cli(&config, args);
        assert!(!o.status.success(), "{args:?} should fail");
        String::from_utf8(o.stderr).unwrap()
    };
    let (t1, err) = ok(&["partners", "token", "ABC"]);
    assert!(pauth::looks_like_token(t1.trim()), "{t1}");
    assert!(err.contains("cannot be shown again"), "{err}");
    let (t2, _) = ok(&["partners", "token", "ABC"]);
    assert_ne!(t1, t2);
    let e = fails(&["partners", "token", "FILES"]);
    assert!(e.contains("[bank.partner]"), "{e}");
    let e = fails(&["partners", "token", "NOPE"]);
    assert!(e.contains("not in the config"), "{e}");

    let (json, _) = ok(&["partners", "list", "--format", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["bank"], "ABC");
    assert_eq!(rows[0]["created_by"], "cli:operator");
    assert!(rows[0]["revoked_at"].is_null());
    assert!(!json.contains(&t1.trim()[4..]));
    let (csv, _) = ok(&["partners", "list", "--bank", "FILES"]);
    assert_eq!(
        csv,
        "id,bank,created_by,created_at,last_used_at,revoked_at\n"
    );

    let id = rows[0]["id"].as_str().unwrap().to_string();
    let (out, _) = ok(&["partners", "revoke", "ABC", "--id", &id]);
    assert!(out.contains("1 credential(s) revoked"), "{out}");
    let e = fails(&["partners", "revoke", "ABC", "--id", &id]);
    assert!(e.contains("already revoked"), "{e}");
    let e = fails(&["partners", "revoke", "ABC", "--id", "999"]);
    assert!(e.contains("no credential 999"), "{e}");
    let (out, _) = ok(&["partners", "revoke", "ABC"]);
    assert!(out.contains("1 credential(s) revoked"), "{out}");
    let (json, _) = ok(&["partners", "list", "--bank", "ABC", "--format", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert!(rows.iter().all(|r| !r["revoked_at"].is_null()));
}
