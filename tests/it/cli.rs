//! The real binary: the commands a finance officer or a bank's integration engineer types.

use crate::helpers::{fixture, real_fixture};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_billrecon");

/// A temp working folder with a config whose paths point into it and at the fixtures.
struct Workdir {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Workdir {
    fn new(inbox: bool) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        let icbc_source = if inbox {
            let inbox = dir.path().join("inbox/icbc");
            std::fs::create_dir_all(&inbox).unwrap();
            for f in ["ICBC_20261112_camt054.xml", "ICBC_20261113_camt054.xml"] {
                std::fs::copy(fixture(&format!("banks/icbc/{f}")), inbox.join(f)).unwrap();
            }
            format!(
                "source = {{ kind = \"directory\", path = \"{}\" }}",
                inbox.display()
            )
        } else {
            String::new()
        };
        let config = dir.path().join("billrecon.toml");
        std::fs::write(
            &config,
            format!(
                "[storage]\ndatabase_url = \"sqlite://{db}\"\ndata_dir = \"{data}\"\n\
                 [billing]\ncustomers_file = \"{c}\"\nbills_file = \"{b}\"\n\
                 [daemon]\ndefault_schedule = \"* * * * * *\"\nhttp_addr = \"\"\n\
                 [[bank]]\nid = \"ICBC\"\nname = \"ICBC\"\nformat = \"camt054\"\n{icbc_source}\n\
                 [[bank]]\nid = \"TEST\"\nname = \"Test\"\n",
                db = dir.path().join("db.sqlite").display(),
                data = dir.path().join("data").display(),
                c = fixture("customers.csv").display(),
                b = fixture("bills.csv").display(),
            ),
        )
        .unwrap();
        Workdir { dir, config }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("BILLRECON_DATABASE_URL")
            .env_remove("BILLRECON_DATA_DIR")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
}

impl Workdir {
    /// Runs the daemon until the inbox is empty (both files taken and moved to the archive;
    /// bounded wait), then stops it with SIGTERM and returns how it ended.
    fn run_until_inbox_drained(&self) -> Output {
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let inbox = self.dir.path().join("inbox/icbc");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::fs::read_dir(&inbox).unwrap().count() > 0 {
            if std::time::Instant::now() > deadline {
                let _ = Command::new("kill")
                    .args(["-KILL", &child.id().to_string()])
                    .status();
                panic!("inbox not drained");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // the run that took the files ends after matching and its housekeeping: wait until
        // the bank's newest run is finished (runs of one bank never overlap)
        while std::time::Instant::now() < deadline {
            let o = self.run(&["banks", "status", "--format", "json"]);
            let rows: Vec<serde_json::Value> =
                serde_json::from_slice(&o.stdout).unwrap_or_default();
            let done = rows
                .iter()
                .find(|r| r["bank_id"] == "ICBC")
                .is_some_and(|r| r["last_run_outcome"] == "ok");
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        child.wait_with_output().unwrap()
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn parse_prints_the_normalized_statement_without_storing_anything() {
    let w = Workdir::new(false);
    let out = w.ok(&["parse", p(&real_fixture("camt053/oca-test-camt053.xml"))]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format"], "camt053");
    let st = &v["statements"][0];
    assert_eq!(st["account"], "NL77ABNA0574908765");
    let entries = st["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for key in [
        "amount",
        "currency",
        "direction",
        "reversal",
        "booking_date",
        "value_date",
        "bank_ref",
        "end_to_end_id",
        "payer_name",
        "reference",
        "remittance",
    ] {
        assert!(entries[0].get(key).is_some(), "entry lacks {key}");
    }
    assert_eq!(entries[2]["amount"], "1405.31");
    assert_eq!(entries[2]["direction"], "credit");
    assert_eq!(entries[1]["reversal"], true);
    assert!(
        !w.dir.path().join("db.sqlite").exists(),
        "parse opens no database"
    );
}

#[test]
fn parse_of_a_broken_file_names_the_place_and_exits_non_zero() {
    let w = Workdir::new(false);
    let f = w.dir.path().join("trunc.xml");
    let text = std::fs::read_to_string(fixture("banks/cmb/CMB_20261112_camt053.xml")).unwrap();
    std::fs::write(&f, &text[..text.len() / 2]).unwrap();
    let o = w.run(&["parse", p(&f)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("trunc.xml") && err.contains("line"), "{err}");
    // what was read before the cut is printed, with the error
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["error"]["location"]
        .as_str()
        .unwrap()
        .starts_with("line "));
    assert!(v["summary"]["ingest"]
        .as_str()
        .unwrap()
        .starts_with("quarantined"));
}

#[test]
fn import_ingest_export_verify_from_the_command_line() {
    let w = Workdir::new(false);
    assert!(w
        .ok(&["customers", "import", p(&fixture("customers.csv"))])
        .contains("12 rows"));
    assert!(w
        .ok(&["bills", "import", p(&fixture("bills.csv"))])
        .contains("14 rows"));
    let out = w.ok(&[
        "ingest",
        "--bank",
        "ICBC",
        p(&fixture("banks/icbc/ICBC_20261112_camt054.xml")),
    ]);
    assert!(out.contains("ingested as file 1"), "{out}");
    let again = w.ok(&[
        "ingest",
        "--bank",
        "ICBC",
        p(&fixture("banks/icbc/ICBC_20261112_camt054.xml")),
    ]);
    assert!(again.contains("already ingested as file 1"), "{again}");

    let csv = w.ok(&["export", "payments"]);
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with(
        "bank_id,bank_ref,end_to_end_id,amount,currency,status,applied,credit,exception_reason"
    ));
    assert_eq!(csv.lines().count(), 1 + 14, "14 payment lines on day 1");
    let alloc = w.ok(&["export", "allocations"]);
    assert!(alloc
        .lines()
        .next()
        .unwrap()
        .starts_with("bank_id,bank_ref,end_to_end_id,bill_id,account_no,amount,rule"));

    let out_file = w.dir.path().join("payments.json");
    w.ok(&[
        "export",
        "payments",
        "--format",
        "json",
        "--out",
        p(&out_file),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 14);

    let exc = w.ok(&["exceptions", "list"]);
    assert!(
        exc.contains("ambiguous_reference") && exc.contains("duplicate"),
        "{exc}"
    );
    let verify = w.ok(&["verify"]);
    assert!(verify.contains("verify: OK"), "{verify}");
    let json: serde_json::Value =
        serde_json::from_str(&w.ok(&["verify", "--format", "json"])).unwrap();
    assert_eq!(json["ok"], true);
    assert!(json["checks"].as_array().unwrap().len() >= 13);
    let exc_json: serde_json::Value =
        serde_json::from_str(&w.ok(&["exceptions", "list", "--format", "json"])).unwrap();
    let reasons: Vec<&str> = exc_json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"unexpected_debit") && reasons.contains(&"currency_mismatch"),
        "{reasons:?}"
    );

    // tamper: verify exits non-zero and says why
    let db = w.dir.path().join("db.sqlite");
    let status = Command::new("python3")
        .args(["-c", &format!("import sqlite3;c=sqlite3.connect('{}');c.execute(\"UPDATE bills SET paid_minor=1 WHERE bill_id='B202610-0002'\");c.commit()", db.display())])
        .status()
        .unwrap();
    assert!(status.success());
    let o = w.run(&["verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("B202610-0002"));
}

#[test]
fn ingest_of_a_bad_file_reports_it_and_exits_2() {
    let w = Workdir::new(false);
    let f = w.dir.path().join("empty.xml");
    std::fs::write(&f, "").unwrap();
    let o = w.run(&["ingest", "--bank", "TEST", p(&f)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("empty.xml") && err.contains("REJECTED") && err.contains("quarantined"),
        "{err}"
    );
    let o = w.run(&["ingest", "--bank", "NOPE", p(&f)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("NOPE"));
}

#[test]
fn a_config_error_names_the_file_and_the_key() {
    let w = Workdir::new(false);
    std::fs::write(&w.config, "[storage]\ndatabse_url = 'x'\n").unwrap();
    let o = w.run(&["verify"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("billrecon.toml") && err.contains("databse_url"),
        "{err}"
    );
}

#[test]
fn run_ingests_the_inbox_and_stops_cleanly_on_sigterm() {
    let w = Workdir::new(true);
    let out = w.run_until_inbox_drained();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = w.ok(&["export", "payments"]);
    assert!(csv.contains("ICBC-RV-0102"), "day 2 ingested");
    assert!(w.ok(&["verify"]).contains("verify: OK"));
}

#[test]
fn check_config_accepts_a_good_config_and_names_what_is_wrong_in_a_bad_one() {
    let w = Workdir::new(true);
    let out = w.ok(&["check-config"]);
    assert!(
        out.contains("config OK") && out.contains("2 bank(s)"),
        "{out}"
    );

    let good = std::fs::read_to_string(&w.config).unwrap();
    for (bad, expect) in [
        (
            good.replace("default_schedule = \"* * * * * *\"", "default_schedule = \"hourly\""),
            "hourly",
        ),
        (
            format!(
                "{good}\n[[bank]]\nid = \"H\"\nname = \"H\"\nsource = {{ kind = \"https\", base_url = \"https://bank.example\", token_file = \"/nonexistent/h.token\" }}\n"
            ),
            "/nonexistent/h.token",
        ),
    ] {
        std::fs::write(&w.config, bad).unwrap();
        let o = w.run(&["check-config"]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expect), "{err}");
    }
    // an unreachable data directory: a file where the folder should be
    let blocker = w.dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    std::fs::write(
        &w.config,
        good.replace(
            &format!("data_dir = \"{}\"", w.dir.path().join("data").display()),
            &format!("data_dir = \"{}\"", blocker.join("data").display()),
        ),
    )
    .unwrap();
    let o = w.run(&["check-config"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("data directory"), "{err}");
}

#[test]
fn banks_status_shows_last_run_next_run_and_health() {
    let w = Workdir::new(true);
    assert_eq!(w.run_until_inbox_drained().status.code(), Some(0));
    let out = w.ok(&["banks", "status", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let icbc = rows.iter().find(|r| r["bank_id"] == "ICBC").unwrap();
    assert_eq!(icbc["source"], "directory");
    assert_eq!(icbc["health"], "healthy");
    assert_eq!(icbc["last_run_outcome"], "ok");
    assert!(icbc["next_run"].as_str().unwrap() > icbc["last_run_started"].as_str().unwrap());
    assert!(icbc["last_success"].is_string());
    let test = rows.iter().find(|r| r["bank_id"] == "TEST").unwrap();
    assert_eq!(test["source"], "none (manual ingest only)");
    assert!(test["last_run_started"].is_null());
}

#[test]
fn the_daemon_never_logs_a_bank_secret() {
    let w = Workdir::new(false);
    let secret = "Zq9-very-secret-token-77";
    let token = w.dir.path().join("bank.token");
    std::fs::write(&token, secret).unwrap();
    let mut cfg = std::fs::read_to_string(&w.config).unwrap();
    cfg.push_str(&format!(
        "\n[[bank]]\nid = \"SECRETBANK\"\nname = \"S\"\nformat = \"camt054\"\n\
         source = {{ kind = \"https\", base_url = \"http://127.0.0.1:9/api\", token_file = \"{}\", retries = 1, backoff_ms = 10, timeout_secs = 2 }}\n",
        token.display()
    ));
    std::fs::write(&w.config, cfg).unwrap();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&w.config)
        .arg("run")
        .env("RUST_LOG", "debug")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // wait until a run of the bank has failed (recorded), then stop
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = w.ok(&["banks", "status", "--format", "json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        if rows
            .iter()
            .any(|r| r["bank_id"] == "SECRETBANK" && r["last_run_outcome"] == "failed")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no failed run: {out}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("SECRETBANK"), "the failure is logged: {logs}");
    assert!(!logs.contains(secret), "the token leaked into the logs");
    let status = w.ok(&["banks", "status"]);
    assert!(!status.contains(secret));
}

#[test]
fn bank_sim_serves_a_folder_over_the_listing_protocol() {
    let w = Workdir::new(false);
    let files = w.dir.path().join("bank");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::copy(
        fixture("banks/icbc/ICBC_20261112_camt054.xml"),
        files.join("ICBC_20261112_camt054.xml"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "bank-sim",
            "--dir",
            p(&files),
            "--addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listing: serde_json::Value = rt.block_on(async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match reqwest::get(format!("http://127.0.0.1:{port}/files")).await {
                Ok(r) => break r.json().await.unwrap(),
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "{e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    let f = &listing[0];
    assert_eq!(f["name"], "ICBC_20261112_camt054.xml");
    let bytes = std::fs::read(files.join("ICBC_20261112_camt054.xml")).unwrap();
    assert_eq!(f["size"], bytes.len() as u64);
    use sha2::Digest;
    assert_eq!(f["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
}

#[test]
fn run_tells_systemd_it_is_ready_pings_the_watchdog_and_says_when_it_stops() {
    use std::os::unix::net::UnixDatagram;
    let w = Workdir::new(true);
    let sock_path = w.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    // systemd names the watched process in WATCHDOG_PID: the shell execs the binary, so its
    // pid is the daemon's
    let child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\"", BIN, "--config"])
        .arg(&w.config)
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("a notification within 30 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(recv().trim(), "READY=1");
    assert_eq!(recv().trim(), "WATCHDOG=1");
    assert_eq!(recv().trim(), "WATCHDOG=1", "pinged again");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let m = recv();
        let stop = m.trim() == "STOPPING=1";
        seen.push(m);
        if stop {
            break;
        }
        assert!(seen.len() < 100, "no STOPPING=1 among {seen:?}");
    }
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(0));
}

#[test]
fn dunning_plan_prints_one_row_per_overdue_bill_with_action_and_reason() {
    let w = Workdir::new(false);
    w.ok(&["customers", "import", p(&fixture("customers.csv"))]);
    w.ok(&["bills", "import", p(&fixture("bills.csv"))]);
    let out = w.ok(&[
        "dunning",
        "plan",
        "--date",
        "2027-01-15",
        "--format",
        "json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(!rows.is_empty());
    for r in &rows {
        for key in [
            "bill_id",
            "account_no",
            "days_overdue",
            "late_fee",
            "stage",
            "action",
            "reason",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert!(
            ["notice", "manager_task", "wait", "none"].contains(&r["action"].as_str().unwrap()),
            "{r}"
        );
        assert!(!r["reason"].as_str().unwrap().is_empty());
    }
    // the plan changes nothing
    assert_eq!(
        out,
        w.ok(&[
            "dunning",
            "plan",
            "--date",
            "2027-01-15",
            "--format",
            "json"
        ])
    );
}

#[test]
fn exceptions_are_resolved_from_the_command_line_by_a_named_user() {
    let w = Workdir::new(false);
    w.ok(&["customers", "import", p(&fixture("customers.csv"))]);
    w.ok(&["bills", "import", p(&fixture("bills.csv"))]);
    w.ok(&[
        "ingest",
        "--bank",
        "ICBC",
        p(&fixture("banks/icbc/ICBC_20261112_camt054.xml")),
    ]);
    let list: serde_json::Value =
        serde_json::from_str(&w.ok(&["exceptions", "list", "--format", "json"])).unwrap();
    let open = list.as_array().unwrap();
    let e = open
        .iter()
        .find(|e| {
            e["reason"] == "unknown_reference" && !e["amount"].as_str().unwrap().starts_with('-')
        })
        .expect("the fixture day has an unknown reference");
    let id = e["exception_id"].as_str().unwrap();
    // the first customer of the fixture keeps it as credit
    let customers = std::fs::read_to_string(fixture("customers.csv")).unwrap();
    let account = customers.lines().nth(1).unwrap().split(',').next().unwrap();
    let args = |by: &str| {
        vec![
            "exceptions".to_string(),
            "resolve".into(),
            id.into(),
            "--by".into(),
            by.into(),
            "--comment".into(),
            "customer called".into(),
            "--credit".into(),
            account.into(),
        ]
    };
    let nobody = w.run(
        &args("nobody")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("not an active user"));
    w.ok(&["users", "add", "li", "--role", "clerk"]);
    let out: serde_json::Value =
        serde_json::from_str(&w.ok(&args("li").iter().map(String::as_str).collect::<Vec<_>>()))
            .unwrap();
    assert_eq!(out["payment"]["status"], "credit");
    assert_eq!(out["payment"]["account_no"], account);
    let rid = out["resolution_id"].to_string();
    // a clerk cannot reopen
    let reopen = w.run(&[
        "exceptions",
        "reopen",
        &rid,
        "--by",
        "li",
        "--comment",
        "oops",
    ]);
    assert!(!reopen.status.success());
    assert!(String::from_utf8_lossy(&reopen.stderr).contains("supervisor"));
    let trail = w.ok(&["audit", "--format", "csv"]);
    let lines: Vec<&str> = trail.lines().collect();
    assert!(lines[0].starts_with("audit_id,at,actor,action,payment_id"));
    let entry = lines
        .iter()
        .find(|l| l.contains(",li,credit,"))
        .expect("the resolution is in the trail");
    assert!(entry.contains("customer called"));
    w.ok(&["verify"]);
}

/// `billrecon parse` is the onboarding tool: what it read, every failed check with its line
/// and both figures, what ingest would do under the bank's policy; exit 0 unless the file
/// cannot be read at all.
#[test]
fn parse_lists_every_failed_check_and_what_each_policy_would_do() {
    let w = Workdir::new(false);
    // ../shared/fixtures/real/mt940/wolph_jejik_abnamro.sta (WoLpH/mt940): two statements
    // whose balances do not close
    let f = real_fixture("mt940/wolph_jejik_abnamro.sta");
    let out = w.ok(&["parse", p(&f)]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format"], "mt940");
    assert_eq!(v["statements"].as_array().unwrap().len(), 2);
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2);
    for c in checks {
        assert_eq!(c["check"], "balance");
        assert_eq!(c["severity"], "error");
        assert!(c["line"].as_u64().unwrap() > 0);
        for k in ["declared", "computed", "location", "message"] {
            assert!(!c[k].as_str().unwrap().is_empty(), "{k}: {c}");
        }
    }
    // the first page's closing balance, as stated in the file, and what its entries make
    let st = &v["statements"][0];
    assert_eq!(checks[0]["declared"], st["closing_balance"]);
    assert_eq!(v["summary"]["errors"], 2);
    assert_eq!(v["summary"]["policy"], "strict");
    assert!(v["summary"]["ingest"]
        .as_str()
        .unwrap()
        .starts_with("quarantined"));

    // with a bank whose policy is warn
    let mut config = std::fs::read_to_string(&w.config).unwrap();
    config.push_str(
        "\n[[bank]]\nid = \"WARN\"\nname = \"Warn\"\nformat = \"mt940\"\nchecks = \"warn\"\n",
    );
    std::fs::write(&w.config, config).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&w.ok(&["parse", "--bank", "WARN", p(&f)])).unwrap();
    assert_eq!(v["summary"]["policy"], "warn");
    assert_eq!(v["summary"]["ingest"], "ingested with 2 findings stored");

    // a file that cannot be read at all: exit 2, the reason names the line
    let o = w.run(&[
        "parse",
        p(&real_fixture(
            "mt940/wolph_self-provided_invalid_statement.sta",
        )),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["location"], "line 1");
    assert_eq!(v["summary"]["statements"], 0);
}

#[test]
fn banks_status_and_findings_show_what_a_warn_bank_stored() {
    let w = Workdir::new(false);
    let mut config = std::fs::read_to_string(&w.config).unwrap();
    config.push_str(
        "\n[[bank]]\nid = \"WARN\"\nname = \"Warn\"\nformat = \"mt940\"\nchecks = \"warn\"\n",
    );
    std::fs::write(&w.config, config).unwrap();
    let f = real_fixture("mt940/wolph_jejik_abnamro.sta");
    let out = w.ok(&["ingest", "--bank", "WARN", p(&f)]);
    assert!(out.contains("2 failed checks stored"), "{out}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&w.ok(&["banks", "status", "--format", "json"])).unwrap();
    let warn = rows.iter().find(|r| r["bank_id"] == "WARN").unwrap();
    assert_eq!(warn["checks"], "warn");
    assert_eq!(warn["findings"], "2 (balance 2)");
    let last = warn["last_finding"].as_str().unwrap();
    assert!(
        last.contains("wolph_jejik_abnamro.sta") && last.contains("error balance at line 40"),
        "{last}"
    );
    let test = rows.iter().find(|r| r["bank_id"] == "TEST").unwrap();
    assert_eq!(
        (&test["checks"], &test["findings"]),
        (&"strict".into(), &"0".into())
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&w.ok(&["banks", "findings", "--bank", "WARN", "--format", "json"]))
            .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["check"], "balance");
    assert_eq!(rows[0]["line"], "40");
    assert_eq!(rows[1]["line"], "27");
    assert_eq!(rows[0]["policy"], "warn");
    let o = w.run(&["banks", "findings", "--bank", "NOPE"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn late_fees_are_exported_and_waived_by_a_supervisor_from_the_command_line() {
    let w = Workdir::new(false);
    w.ok(&["customers", "import", p(&fixture("customers.csv"))]);
    w.ok(&["bills", "import", p(&fixture("bills.csv"))]);
    w.ok(&[
        "ingest",
        "--bank",
        "ICBC",
        p(&fixture("banks/icbc/ICBC_20261112_camt054.xml")),
    ]);
    // account 3 paid its September bill (commercial, due 2026-10-20) 23 days late
    let fees = w.ok(&["export", "late-fees"]);
    let lines: Vec<&str> = fees.lines().collect();
    assert!(lines[0].starts_with("late_fee_id,bill_id,account_no,kind,payment_id"));
    assert_eq!(lines.len(), 2, "{fees}");
    assert!(lines[1].contains("B202609-0003") && lines[1].contains(",charge,"));
    assert!(w
        .ok(&["export", "allocations"])
        .lines()
        .next()
        .unwrap()
        .ends_with(",part"));
    // a waiver needs a supervisor
    w.ok(&["users", "add", "li", "--role", "clerk"]);
    w.ok(&["users", "add", "wang", "--role", "supervisor"]);
    let waive = |by: &str| {
        w.run(&[
            "dunning",
            "waive",
            "--bill",
            "B202610-0004",
            "--by",
            by,
            "--reason",
            "hardship case 17",
        ])
    };
    let o = waive("li");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("supervisor"));
    let out = String::from_utf8(waive("wang").stdout).unwrap();
    assert!(out.contains("waived by wang"), "{out}");
    let again = String::from_utf8(waive("wang").stdout).unwrap();
    assert!(again.contains("already waived"), "{again}");
    assert!(w
        .ok(&["audit", "--format", "csv"])
        .contains(",wang,waive_late_fee,"));
    let verify = w.ok(&["verify"]);
    assert!(verify.contains("late fees"), "{verify}");
}
