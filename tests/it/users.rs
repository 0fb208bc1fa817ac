//! Users, roles and tokens: the CLI on a real SQLite file, and the HTTP API on a real
//! loopback server (the daemon's own listener), SQLite and PostgreSQL.

use crate::helpers::{serve, TestApp};
use billrecon::api::auth::{self, Role};
use billrecon::store::users::{self as db, TokenKind};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_billrecon");

// ---- the CLI ----

struct Cli {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("billrecon.toml");
        std::fs::write(
            &config,
            format!(
                "[storage]\ndatabase_url = \"sqlite://{}\"\ndata_dir = \"{}\"\n[daemon]\nhttp_addr = \"\"\n",
                dir.path().join("db.sqlite").display(),
                dir.path().join("data").display(),
            ),
        )
        .unwrap();
        Cli { dir, config }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("USER", "operator")
            .env_remove("BILLRECON_DATABASE_URL")
            .env_remove("BILLRECON_DATA_DIR")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let o = self.run(args);
        let (out, err) = (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        );
        assert!(o.status.success(), "{args:?}: {out}\n{err}");
        (out, err)
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "{args:?} should fail");
        String::from_utf8(o.stderr).unwrap()
    }

    fn list(&self) -> Vec<Value> {
        let (out, _) = self.ok(&["users", "list", "--format", "json"]);
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

#[tokio::test]
async fn cli_adds_lists_issues_and_revokes() {
    let cli = Cli::new();
    let (token, err) = cli.ok(&["users", "add", "alice", "--role", "admin"]);
    let token = token.trim().to_string();
    assert!(auth::looks_like_token(&token), "{token}");
    assert!(err.contains("cannot be shown again"), "{err}");

    let users = cli.list();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(users[0]["role"], "admin");
    assert_eq!(users[0]["created_by"], "cli:operator");
    assert_eq!(users[0]["active_tokens"], "1");
    assert!(users[0]["revoked_at"].is_null());

    let (second, _) = cli.ok(&["users", "token", "alice"]);
    let second = second.trim().to_string();
    assert!(auth::looks_like_token(&second) && second != token);
    assert_eq!(cli.list()[0]["active_tokens"], "2");

    let e = cli.fails(&["users", "add", "bob", "--role", "root"]);
    assert!(e.contains("unknown role"), "{e}");
    let e = cli.fails(&["users", "token", "nobody"]);
    assert!(e.contains("no user `nobody`"), "{e}");

    let (out, _) = cli.ok(&["users", "revoke", "alice"]);
    assert!(out.contains("2 token(s) revoked"), "{out}");
    let users = cli.list();
    assert!(!users[0]["revoked_at"].is_null());
    assert_eq!(users[0]["active_tokens"], "0");
    // a revoked name stays taken; revoking again says so
    let e = cli.fails(&["users", "add", "alice", "--role", "viewer"]);
    assert!(e.contains("revoked"), "{e}");
    let e = cli.fails(&["users", "revoke", "alice"]);
    assert!(e.contains("already revoked"), "{e}");
    let e = cli.fails(&["users", "token", "alice"]);
    assert!(e.contains("revoked"), "{e}");

    let (csv, _) = cli.ok(&["users", "list"]);
    assert!(
        csv.starts_with("name,role,created_by,created_at,revoked_at,active_tokens,last_used_at\n")
    );

    // the database holds digests, and the audit trail neither tokens nor digests
    let store = billrecon::store::Store::open(&format!(
        "sqlite://{}",
        cli.dir.path().join("db.sqlite").display()
    ))
    .await
    .unwrap();
    assert_no_plaintext(&store, &[&token, &second]).await;
    let audit = audit(&store).await;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|(actor, action, _)| (actor.as_str(), action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("cli:operator", "user_add"),
            ("cli:operator", "user_token"),
            ("cli:operator", "user_revoke")
        ]
    );
    store.close().await;
}

/// Every column of `user_tokens` and `audit_log` as text: no token, and (in the audit) no
/// digest either.
async fn assert_no_plaintext(store: &billrecon::store::Store, tokens: &[&str]) {
    let cells = |sql: &'static str| async move {
        let rows = sqlx::query(sql).fetch_all(store.pool()).await.unwrap();
        rows.iter()
            .flat_map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .unwrap()
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<String>>()
    };
    let stored = cells(
        "SELECT CAST(id AS TEXT), CAST(user_id AS TEXT), token_sha256, kind, created_at, \
         expires_at, revoked_at, last_used_at FROM user_tokens",
    )
    .await;
    let audit =
        cells("SELECT at, actor, action, comment, before_state, after_state FROM audit_log").await;
    assert!(!stored.is_empty() && !audit.is_empty());
    for t in tokens {
        let hex = &t[4..];
        for c in stored.iter().chain(&audit) {
            assert!(!c.contains(hex), "a token is stored in plain text: {c}");
        }
        let d = auth::digest(t);
        assert!(stored.contains(&d), "the digest is what is stored");
        for c in &audit {
            assert!(!c.contains(&d), "a token digest is in the audit trail: {c}");
        }
    }
}

async fn audit(store: &billrecon::store::Store) -> Vec<(String, String, String)> {
    sqlx::query("SELECT actor, action, after_state FROM audit_log ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

// ---- the HTTP API ----

/// Roles and tokens over HTTP, on whichever database `t` has.
async fn roles_and_tokens(t: TestApp) {
    let admin = auth::add_user(&t.app.store, "root", Role::Admin, "cli:test")
        .await
        .unwrap();
    let viewer = auth::add_user(&t.app.store, "vic", Role::Viewer, "cli:test")
        .await
        .unwrap();
    let s = serve(t).await;

    // no token, a malformed header, a wrong token: 401 with a JSON error
    let (st, body) = s.get("/api/v1/me", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("authentication required"));
    let (st, _) = s
        .call(
            s.client
                .get(s.url("/api/v1/me"))
                .header("authorization", "Basic eDp5"),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s.get("/api/v1/me", Some(&auth::new_token().0)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // a viewer may read who they are, not administer
    let (st, body) = s.get("/api/v1/me", Some(&viewer)).await;
    assert_eq!(
        (st, body),
        (StatusCode::OK, json!({"name": "vic", "role": "viewer"}))
    );
    let (st, body) = s.get("/api/v1/users", Some(&viewer)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("admin role"),
        "{body}"
    );
    let (st, _) = s
        .post(
            "/api/v1/users",
            &viewer,
            json!({"name": "x", "role": "admin"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // the admin adds a clerk, whose token works at once
    let (st, body) = s
        .post(
            "/api/v1/users",
            &admin,
            json!({"name": "clara", "role": "clerk"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["name"].clone(), body["role"].clone()),
        (json!("clara"), json!("clerk"))
    );
    let clerk = body["token"].as_str().unwrap().to_string();
    assert!(auth::looks_like_token(&clerk));
    let (st, body) = s.get("/api/v1/me", Some(&clerk)).await;
    assert_eq!(
        (st, body),
        (StatusCode::OK, json!({"name": "clara", "role": "clerk"}))
    );
    let (st, _) = s.get("/api/v1/users", Some(&clerk)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // refused additions
    let (st, _) = s
        .post(
            "/api/v1/users",
            &admin,
            json!({"name": "clara", "role": "viewer"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, body) = s
        .post(
            "/api/v1/users",
            &admin,
            json!({"name": "eve", "role": "root"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("unknown role"));
    let (st, _) = s
        .post(
            "/api/v1/users",
            &admin,
            json!({"name": "a b", "role": "viewer"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = s
        .call(
            s.client
                .post(s.url("/api/v1/users"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // another token for the clerk
    let (st, body) = s
        .post("/api/v1/users/clara/tokens", &admin, json!({}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let clerk2 = body["token"].as_str().unwrap().to_string();
    assert_eq!(s.get("/api/v1/me", Some(&clerk2)).await.0, StatusCode::OK);
    let (st, _) = s
        .post("/api/v1/users/nobody/tokens", &admin, json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, body) = s.get("/api/v1/users", Some(&admin)).await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["clara", "root", "vic"]);
    assert_eq!(body[0]["active_tokens"], 2);
    assert_eq!(body[0]["created_by"], "root");

    // revoking the clerk kills both tokens; the admin cannot revoke themselves
    let (st, body) = s.delete("/api/v1/users/clara", &admin).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["tokens_revoked"], 2);
    for t in [&clerk, &clerk2] {
        assert_eq!(
            s.get("/api/v1/me", Some(t)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        s.delete("/api/v1/users/clara", &admin).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.delete("/api/v1/users/nobody", &admin).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.delete("/api/v1/users/root", &admin).await.0,
        StatusCode::CONFLICT
    );
    let (st, _) = s
        .post("/api/v1/users/clara/tokens", &admin, json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    // the database holds no token; the audit names the admin
    assert_no_plaintext(&s.app.store, &[&admin, &viewer, &clerk, &clerk2]).await;
    let audit = audit(&s.app.store).await;
    let by_root: Vec<&str> = audit
        .iter()
        .filter(|(actor, _, _)| actor == "root")
        .map(|(_, action, _)| action.as_str())
        .collect();
    assert_eq!(by_root, ["user_add", "user_token", "user_revoke"]);

    // use is recorded (in the background, at most once a minute)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = s.app.store.pool().acquire().await.unwrap();
        let users = db::list(&mut conn).await.unwrap();
        if users
            .iter()
            .find(|u| u.name == "vic")
            .unwrap()
            .last_used_at
            .is_some()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "last_used_at never set"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn http_roles_and_tokens_on_sqlite() {
    roles_and_tokens(TestApp::spawn().await).await;
}

#[tokio::test]
async fn http_roles_and_tokens_on_postgres() {
    roles_and_tokens(TestApp::spawn_pg().await).await;
}

/// The session cookie's value from a response's `Set-Cookie`, with the whole header.
fn session_cookie(r: &reqwest::Response) -> Option<(String, String)> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("billrecon_session="))
        .map(|c| {
            let value = c["billrecon_session=".len()..]
                .split(';')
                .next()
                .unwrap()
                .to_string();
            (value, c)
        })
}

#[tokio::test]
async fn web_login_session_logout_and_csrf() {
    let t = TestApp::spawn_with("[exceptions]\nsession_hours = 2\n").await;
    let admin = auth::add_user(&t.app.store, "root", Role::Admin, "cli:test")
        .await
        .unwrap();
    let s = serve(t).await;
    let login = |token: &str| {
        s.client
            .post(s.url("/ui/login"))
            .form(&[("user", "root".to_string()), ("token", token.to_string())])
            .send()
    };

    // a wrong token: back to the login page, no cookie
    let r = login(&auth::new_token().0).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/ui/login?failed=1");
    assert!(session_cookie(&r).is_none());

    // the admin's API token: a session cookie, HttpOnly, SameSite=Strict, not Secure (HTTP)
    let r = login(&admin).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/ui/");
    let (session, header) = session_cookie(&r).expect("a session cookie");
    assert!(header.contains("HttpOnly"), "{header}");
    assert!(header.contains("SameSite=Strict"), "{header}");
    assert!(header.contains("Path=/"), "{header}");
    assert!(!header.contains("Secure"), "{header}");
    assert!(auth::looks_like_token(&session) && session != admin);
    let cookie = format!("billrecon_session={session}");
    // behind a TLS proxy (X-Forwarded-Proto: https) the cookie is Secure
    let r = s
        .client
        .post(s.url("/ui/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("user", "root".to_string()), ("token", admin.clone())])
        .send()
        .await
        .unwrap();
    let (_, header) = session_cookie(&r).expect("a session cookie");
    assert!(header.contains("Secure"), "{header}");

    let with_cookie = |rb: reqwest::RequestBuilder| rb.header("cookie", cookie.clone());
    let (st, body) = s.call(with_cookie(s.client.get(s.url("/api/v1/me")))).await;
    assert_eq!(
        (st, body),
        (StatusCode::OK, json!({"name": "root", "role": "admin"}))
    );

    // the session expires as configured
    {
        let mut conn = s.app.store.pool().acquire().await.unwrap();
        let expires: String =
            sqlx::query("SELECT expires_at FROM user_tokens WHERE kind = 'session'")
                .fetch_one(&mut *conn)
                .await
                .unwrap()
                .get(0);
        let expires = chrono::DateTime::parse_from_rfc3339(&expires).unwrap();
        let hours = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
        assert!((115..=120).contains(&hours), "{hours} minutes");
    }

    // a session token is not a bearer token, nor an API token a cookie
    let (st, _) = s.get("/api/v1/me", Some(&session)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s
        .call(
            s.client
                .get(s.url("/api/v1/me"))
                .header("cookie", format!("billrecon_session={admin}")),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // a cookie-authenticated write from another origin is refused; from the same origin not
    let add = |name: &str| {
        with_cookie(s.client.post(s.url("/api/v1/users")))
            .json(&json!({"name": name, "role": "viewer"}))
    };
    let (st, body) = s
        .call(add("x1").header("origin", "http://evil.example"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].as_str().unwrap().contains("cross-origin"));
    let (st, _) = s
        .call(add("x2").header("sec-fetch-site", "cross-site"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s.call(add("x3").header("origin", s.http.clone())).await;
    assert_eq!(st, StatusCode::CREATED);
    // bearer requests need no Origin check (browsers do not send them on their own)
    let (st, _) = s
        .call(
            s.client
                .post(s.url("/api/v1/users"))
                .bearer_auth(&admin)
                .header("origin", "http://elsewhere.example")
                .json(&json!({"name": "x4", "role": "viewer"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // a cross-origin logout is refused too (the session lives on)
    let r = with_cookie(s.client.post(s.url("/ui/logout")))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // logout revokes the session and clears the cookie
    let r = with_cookie(s.client.post(s.url("/ui/logout")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/ui/login");
    let (cleared, header) = session_cookie(&r).expect("the cookie is cleared");
    assert!(
        cleared.is_empty() && header.contains("Max-Age=0"),
        "{header}"
    );
    let (st, _) = s.call(with_cookie(s.client.get(s.url("/api/v1/me")))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // the API token itself still works
    assert_eq!(s.get("/api/v1/me", Some(&admin)).await.0, StatusCode::OK);

    // an expired session is refused
    let (expired, digest) = auth::new_token();
    let past = db::stamp(chrono::Utc::now() - chrono::Duration::minutes(1));
    db::issue_token(
        &s.app.store,
        "root",
        &digest,
        TokenKind::Session,
        Some(past),
        "root",
    )
    .await
    .unwrap()
    .unwrap();
    let (st, body) = s
        .call(
            s.client
                .get(s.url("/api/v1/me"))
                .header("cookie", format!("billrecon_session={expired}")),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"].as_str().unwrap().contains("session"),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test]
async fn last_use_is_written_at_most_once_a_minute() {
    let t = TestApp::spawn().await;
    let token = auth::add_user(&t.app.store, "vic", Role::Viewer, "cli:test")
        .await
        .unwrap();
    let mut conn = t.app.store.write_pool().acquire().await.unwrap();
    let now = chrono::Utc::now();
    let owner = db::lookup(&mut conn, &auth::digest(&token), &db::stamp(now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (owner.name.as_str(), owner.role.as_str()),
        ("vic", "viewer")
    );
    assert!(db::touch(&mut conn, owner.token_id, now).await.unwrap());
    assert!(!db::touch(
        &mut conn,
        owner.token_id,
        now + chrono::Duration::seconds(30)
    )
    .await
    .unwrap());
    assert!(db::touch(
        &mut conn,
        owner.token_id,
        now + chrono::Duration::seconds(61)
    )
    .await
    .unwrap());
    // a revoked user's token is not found
    drop(conn);
    auth::revoke_user(&t.app.store, "vic", "cli:test")
        .await
        .unwrap();
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    assert!(
        db::lookup(&mut conn, &auth::digest(&token), &db::stamp(now))
            .await
            .unwrap()
            .is_none()
    );
}
