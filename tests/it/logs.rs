//! The logs keep secrets and personal data out (issue 23). A whole scenario runs on the real
//! binary at debug level (`RUST_LOG=debug`, every crate): an HTTPS bank (the simulator, with a
//! bearer token) and an inbox bank ingested and matched, dunning notices and receipts sent to
//! a signed gateway, the reports published and POSTed with a token, a finance user logging in
//! and using the API, a partner bank posting signed payments and looking up an account, bad
//! tokens tried, /metrics behind its token. Then every line the daemon and the commands wrote
//! is searched for each secret and token, each customer's full account number, phone number
//! and name. And expected noise is no warning: `export` with every statement counted as slow
//! logs no WARN line.

use rand::Rng;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_billrecon");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn secret(prefix: &str) -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("{prefix}-{n:016x}-s3cr3t")
}

/// Runs a command of the binary; returns (stdout, stderr), asserting success.
fn cli(config: &Path, args: &[&str], logs: &Mutex<String>) -> String {
    let o = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "debug")
        .env_remove("BILLRECON_DATABASE_URL")
        .env_remove("BILLRECON_DATA_DIR")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    logs.lock().unwrap().push_str(&err);
    assert!(o.status.success(), "{args:?}: {err}");
    String::from_utf8(o.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_scenario_at_debug_level_logs_no_secret_and_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let logs = Mutex::new(String::new());
    // data: customers with names and phones, overdue bills, bank files naming them
    let gen = root.join("gen");
    let o = Command::new(BIN)
        .args([
            "gen",
            "--customers",
            "40",
            "--bills",
            "80",
            "--payments",
            "120",
        ])
        .args(["--per-file", "30", "--seed", "7", "--out"])
        .arg(&gen)
        .output()
        .unwrap();
    assert!(o.status.success());
    let (sim_dir, inbox) = (root.join("sim"), root.join("inbox"));
    std::fs::create_dir_all(&sim_dir).unwrap();
    std::fs::create_dir_all(&inbox).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&gen)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    for (i, f) in files.iter().enumerate() {
        let to = if i % 2 == 0 { &sim_dir } else { &inbox };
        std::fs::copy(f, to.join(f.file_name().unwrap())).unwrap();
    }

    // every secret the daemon holds
    let secrets_dir = root.join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut write_secret = |name: &str| {
        let s = secret(name);
        let p = secrets_dir.join(name);
        std::fs::write(&p, &s).unwrap();
        secrets.push((name.to_string(), s));
        p
    };
    let bank_token = write_secret("bank-token");
    let gateway_secret = write_secret("gateway-secret");
    let reports_token = write_secret("reports-token");
    let signing_secret = write_secret("signing-secret");
    let metrics_token = write_secret("metrics-token");

    // the bank simulator asks for its token
    let sim_port = free_port();
    let mut sim = Command::new(BIN)
        .args(["bank-sim", "--dir", sim_dir.to_str().unwrap()])
        .args(["--addr", &format!("127.0.0.1:{sim_port}")])
        .arg("--token-file")
        .arg(&bank_token)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // the gateway and the reports endpoint: this test's server
    let reports_posted = Arc::new(Mutex::new(0usize));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink = listener.local_addr().unwrap();
    let r2 = reports_posted.clone();
    let app = axum::Router::new()
        .route("/notices", axum::routing::post(|| async { "ok" }))
        .route(
            "/reports",
            axum::routing::post(move || {
                let r = r2.clone();
                async move {
                    *r.lock().unwrap() += 1;
                    "ok"
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http_port = free_port();
    let config = root.join("billrecon.toml");
    std::fs::write(
        &config,
        format!(
            r#"[storage]
database_url = "sqlite://{db}"
data_dir = "{data}"
[billing]
customers_file = "{gen}/customers.csv"
bills_file = "{gen}/bills.csv"
[daemon]
default_schedule = "* * * * * *"
http_addr = "127.0.0.1:{http_port}"
metrics_token_file = "{metrics_token}"
[dunning]
schedule = "*/2 * * * * *"
templates_dir = "{templates}"
quiet_hours_start = "00:00:00"
quiet_hours_end = "00:00:00"
receipt_channels = ["sms"]
delivery_interval_secs = 1
gateway = {{ url = "http://{sink}/notices", secret_file = "{gateway_secret}", backoff_secs = 1 }}
[reports]
dir = "{reports}"
publish_schedule = "*/2 * * * * *"
[[reports.post]]
url = "http://{sink}/reports"
token_file = "{reports_token}"
[[bank]]
id = "SIM"
name = "Simulated bank"
format = "camt054"
source = {{ kind = "https", base_url = "http://127.0.0.1:{sim_port}", token_file = "{bank_token}" }}
[bank.partner]
signing_secret_file = "{signing_secret}"
[[bank]]
id = "DROP"
name = "Inbox bank"
format = "camt054"
source = {{ kind = "directory", path = "{inbox}" }}
"#,
            db = root.join("db.sqlite").display(),
            data = root.join("data").display(),
            gen = gen.display(),
            templates = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/templates")
                .display(),
            reports = root.join("reports").display(),
            inbox = inbox.display(),
            metrics_token = metrics_token.display(),
            gateway_secret = gateway_secret.display(),
            reports_token = reports_token.display(),
            bank_token = bank_token.display(),
            signing_secret = signing_secret.display(),
        ),
    )
    .unwrap();

    // a finance user and a partner credential, from the commands
    let user_token = cli(
        &config,
        &["users", "add", "fin.clerk", "--role", "clerk"],
        &logs,
    )
    .trim()
    .to_string();
    let partner_token = cli(&config, &["partners", "token", "SIM"], &logs)
        .trim()
        .to_string();
    secrets.push(("user token".into(), user_token.clone()));
    secrets.push(("partner token".into(), partner_token.clone()));

    let daemon = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{http_port}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the daemon did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // everything ingested (both banks), notices and reports handed over
    sqlx::any::install_default_drivers();
    let db = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", root.join("db.sqlite").display()))
        .await
        .unwrap();
    loop {
        use sqlx::Row;
        let stored: i64 = sqlx::query("SELECT COUNT(*) FROM bank_files")
            .fetch_one(&db)
            .await
            .unwrap()
            .get(0);
        let sent: i64 = sqlx::query("SELECT COUNT(*) FROM notices WHERE status = 'sent'")
            .fetch_one(&db)
            .await
            .unwrap()
            .get(0);
        if stored as usize == files.len() && sent > 0 && *reports_posted.lock().unwrap() > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scenario not done: {stored} files, {sent} notices"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // the customers: their account numbers, phones and names
    let customers = std::fs::read_to_string(gen.join("customers.csv")).unwrap();
    let mut personal: Vec<(String, String)> = Vec::new();
    for line in customers.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        personal.push(("account number".into(), f[0].to_string()));
        personal.push(("name".into(), f[1].to_string()));
        if !f[5].is_empty() {
            personal.push(("phone".into(), f[5].to_string()));
        }
    }
    let account = customers
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();

    // a finance user: web login (a session), the queue, the audit trail
    let r = client
        .post(format!("{base}/ui/login"))
        .form(&[("user", "fin.clerk"), ("token", user_token.as_str())])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    secrets.push((
        "session".into(),
        cookie.split_once('=').unwrap().1.to_string(),
    ));
    for path in ["/ui/", "/api/v1/exceptions", "/api/v1/audit"] {
        let r = client
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    // a wrong token and a wrong login
    let _ = client
        .get(format!("{base}/api/v1/exceptions"))
        .bearer_auth("brk_0000000000000000000000000000000000000000000000000000000000000000")
        .send()
        .await
        .unwrap();
    let _ = client
        .post(format!("{base}/ui/login"))
        .form(&[("user", "fin.clerk"), ("token", "brk_wrong")])
        .send()
        .await
        .unwrap();
    // the partner bank: signed look-up of an account and a payment to it
    let signing = std::fs::read_to_string(&signing_secret).unwrap();
    let signed = |method: &str, path: &str, body: &str| {
        let ts = chrono::Utc::now().timestamp().to_string();
        let sig = billrecon::api::partner::auth::signature(
            signing.as_bytes(),
            method,
            path,
            &ts,
            body.as_bytes(),
        );
        client
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .bearer_auth(&partner_token)
            .header("X-Billrecon-Timestamp", ts)
            .header("X-Billrecon-Signature", format!("sha256={sig}"))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let r = signed("GET", &format!("/partner/v1/accounts/{account}/bills"), "")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let body = serde_json::json!({
        "bank_txn_id": "LOGS-1", "account_no": account, "amount": "12.34", "currency": "CNY",
        "paid_at": chrono::Utc::now().to_rfc3339(), "channel": "app",
    })
    .to_string();
    let r = signed("POST", "/partner/v1/payments", &body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let _ = client
        .get(format!("{base}/partner/v1/whoami"))
        .bearer_auth(&partner_token)
        .send()
        .await
        .unwrap();
    let r = client
        .get(format!("{base}/metrics"))
        .bearer_auth(std::fs::read_to_string(&metrics_token).unwrap())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    tokio::time::sleep(Duration::from_millis(1500)).await;

    Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    let out = daemon.wait_with_output().unwrap();
    assert!(out.status.success());
    logs.lock()
        .unwrap()
        .push_str(&String::from_utf8_lossy(&out.stderr));
    let _ = sim.kill();
    let sim_out = sim.wait_with_output().unwrap();
    logs.lock()
        .unwrap()
        .push_str(&String::from_utf8_lossy(&sim_out.stderr));
    // the commands too
    cli(&config, &["banks", "status"], &logs);
    cli(&config, &["exceptions", "list"], &logs);
    cli(&config, &["verify"], &logs);
    db.close().await;

    let logs = logs.into_inner().unwrap();
    assert!(
        logs.lines().count() > 100 && logs.contains("DEBUG"),
        "a debug-level log of the whole run: {} lines",
        logs.lines().count()
    );
    // the scenario did what it says (the messages of each part)
    for said in [
        "web login",
        "real-time payment",
        "notices delivered",
        "reports published",
        "reports posted",
        "run done",
        "web login refused",
    ] {
        assert!(logs.contains(said), "no `{said}` in the logs");
    }
    let mut found = Vec::new();
    for (what, value) in secrets.iter().chain(personal.iter()) {
        if let Some(line) = logs.lines().find(|l| l.contains(value.as_str())) {
            found.push(format!(
                "{what} `{value}` in: {}",
                &line[..line.len().min(300)]
            ));
        }
    }
    assert!(found.is_empty(), "the logs hold:\n{}", found.join("\n"));
}

/// Expected noise is no warning: with every statement counted as slow
/// (`storage.slow_statement_ms = 0`), an export logs them at DEBUG, not as WARN lines.
#[test]
fn slow_statements_are_not_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndatabase_url = \"sqlite://{}\"\ndata_dir = \"{}\"\nslow_statement_ms = 0\n",
            dir.path().join("db.sqlite").display(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let run = |level: &str| {
        let o = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["export", "allocations"])
            .env("RUST_LOG", level)
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let info = run("info");
    assert!(
        !info.contains("WARN"),
        "warnings at the default level:\n{info}"
    );
    // at debug the slow statements are there, as DEBUG lines
    let debug = run("sqlx=debug");
    assert!(
        debug
            .lines()
            .any(|l| l.contains("slow statement") && l.contains("DEBUG")),
        "{debug}"
    );
}
