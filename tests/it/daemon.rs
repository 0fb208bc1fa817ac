//! The daemon end to end, in process: real schedules (every second), a real inbox folder, real
//! HTTP on loopback (/healthz, /readyz, /metrics), a real SQLite file.

use crate::helpers::fixture;
use billrecon::app::App;
use billrecon::config::Config;
use billrecon::store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Daemon {
    pub dir: tempfile::TempDir,
    toml: String,
    pub http: String,
    pub store: Store,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    /// Starts the daemon on `banks` (TOML `[[bank]]` tables; `{dir}` is replaced by the test's
    /// folder), with the fixture billing exports.
    pub async fn start(banks: &str) -> Daemon {
        Self::start_with(banks, 5).await
    }

    /// [`Daemon::start`] with a given shutdown timeout.
    pub async fn start_with(banks: &str, shutdown_timeout_secs: u64) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let toml = format!(
            "[storage]\ndatabase_url = \"{db}\"\ndata_dir = \"{}\"\n\
             [billing]\ncustomers_file = \"{}\"\nbills_file = \"{}\"\n\
             [daemon]\ndefault_schedule = \"* * * * * *\"\nunhealthy_after = 1\nshutdown_timeout_secs = {shutdown_timeout_secs}\n{}",
            dir.path().join("data").display(),
            fixture("customers.csv").display(),
            fixture("bills.csv").display(),
            banks.replace("{dir}", &dir.path().display().to_string()),
        );
        Self::launch(dir, toml).await
    }

    async fn launch(dir: tempfile::TempDir, toml: String) -> Daemon {
        let config = Config::from_toml(&toml, "daemon test config").unwrap();
        let db = config.storage.database_url.clone();
        let app = App::build(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let task = tokio::spawn(billrecon::scheduler::run_with_listener(
            Arc::new(app),
            stop.clone(),
            Some(listener),
        ));
        let store = Store::open(&db).await.unwrap();
        Daemon {
            dir,
            toml,
            http,
            store,
            stop,
            task,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.http)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Waits (up to 30 s) until `f` holds.
    pub async fn until<F, Fut>(&self, what: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !f().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for: {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn payments(&self) -> Vec<HashMap<String, String>> {
        let mut rows = Vec::new();
        billrecon::store::export::payments(self.store.pool(), |r| {
            rows.push(r);
            Ok(())
        })
        .await
        .unwrap();
        crate::helpers::to_maps(billrecon::store::export::PAYMENT_COLUMNS, rows)
    }

    pub async fn runs(&self, bank: &str) -> Vec<billrecon::store::runs::RunRow> {
        let mut conn = self.store.pool().acquire().await.unwrap();
        billrecon::store::runs::of_bank(&mut conn, bank, 1000)
            .await
            .unwrap()
    }

    /// Stops the daemon as SIGTERM would and checks it exits cleanly.
    pub async fn stop(self) -> (tempfile::TempDir, String) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the daemon stops within its shutdown timeout")
            .unwrap()
            .unwrap();
        self.store.close().await;
        (self.dir, self.toml)
    }

    /// Stops and starts again on the same database and folders.
    pub async fn restart(self) -> Daemon {
        let (dir, toml) = self.stop().await;
        Self::launch(dir, toml).await
    }
}

/// A value of a metric line such as `billrecon_files_ingested_total{bank="ICBC"} 1`.
pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

const INBOX_BANK: &str = r#"
[[bank]]
id = "ICBC"
name = "ICBC"
format = "camt054"
reference_patterns = ['户号\s*([0-9][0-9 ]{9,15})']
source = { kind = "directory", path = "{dir}/inbox" }
"#;

#[tokio::test]
async fn files_dropped_in_an_inbox_are_ingested_matched_recorded_and_counted() {
    let d = Daemon::start(INBOX_BANK).await;
    assert_eq!(d.get("/healthz").await.0, 200);
    std::fs::create_dir_all(d.path("inbox")).unwrap();
    // written under a temporary name, then renamed: as an SFTP drop does
    let part = d.path("inbox/ICBC_20261112_camt054.xml.part");
    std::fs::copy(fixture("banks/icbc/ICBC_20261112_camt054.xml"), &part).unwrap();
    std::fs::rename(&part, d.path("inbox/ICBC_20261112_camt054.xml")).unwrap();

    d.until("the file's payments are matched", || async {
        let p = d.payments().await;
        !p.is_empty() && p.iter().all(|p| p["status"] != "pending")
    })
    .await;
    d.until("the file leaves the inbox", || async {
        std::fs::read_dir(d.path("inbox")).unwrap().count() == 0
    })
    .await;
    // the run that took it ends after matching and its housekeeping
    d.until("the run that took the file is recorded", || async {
        d.runs("ICBC")
            .await
            .iter()
            .any(|r| r.stats.files == 1 && r.finished_at.is_some())
    })
    .await;
    let payments = d.payments().await;
    assert!(payments.iter().any(|p| p["status"] == "applied"));

    let runs = d.runs("ICBC").await;
    let with_file: Vec<_> = runs.iter().filter(|r| r.stats.files == 1).collect();
    assert_eq!(
        with_file.len(),
        1,
        "exactly one run took the file: {runs:?}"
    );
    assert_eq!(with_file[0].outcome, "ok");
    assert_eq!(with_file[0].stats.payments, payments.len() as i64);
    assert!(with_file[0].stats.bytes > 0);
    assert!(runs.iter().all(|r| r.outcome == "ok"), "{runs:?}");

    let (code, body) = d.get("/readyz").await;
    assert_eq!(code, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["status"], "ready");
    let (code, m) = d.get("/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(
        metric(&m, "billrecon_files_ingested_total{bank=\"ICBC\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "billrecon_payments_ingested_total{bank=\"ICBC\"}"),
        Some(payments.len() as f64)
    );
    assert_eq!(
        metric(&m, "billrecon_bank_healthy{bank=\"ICBC\"}"),
        Some(1.0)
    );
    assert!(
        metric(
            &m,
            "billrecon_last_successful_pull_timestamp_seconds{bank=\"ICBC\"}"
        )
        .unwrap()
            > 1.7e9
    );
    assert!(metric(&m, "billrecon_payments_matched_total{status=\"applied\"}").unwrap() >= 1.0);
    d.stop().await;
}

#[tokio::test]
async fn a_failing_bank_is_reported_unhealthy_and_does_not_block_a_healthy_one() {
    // DOWN: nothing listens on port 9 of loopback, connection refused on every pull;
    // BROKEN: the bank simulator answers 500 to everything
    let host = tempfile::tempdir().unwrap();
    let (sim, broken) = simulated_bank(host.path(), 1, 5).await;
    sim.fail_next(billrecon::banksim::FailMode::Status(500), 100_000);
    let broken = broken.replace("id = \"ICBC\"", "id = \"BROKEN\"");
    let banks = format!(
        "{INBOX_BANK}\n[[bank]]\nid = \"DOWN\"\nname = \"Down\"\nformat = \"camt054\"\n\
         source = {{ kind = \"https\", base_url = \"http://127.0.0.1:9/api\", retries = 0, timeout_secs = 2 }}\n{broken}"
    );
    let d = Daemon::start(&banks).await;
    std::fs::create_dir_all(d.path("inbox")).unwrap();
    std::fs::copy(
        fixture("banks/icbc/ICBC_20261112_camt054.xml"),
        d.path("inbox/ICBC_20261112_camt054.xml"),
    )
    .unwrap();
    d.until("DOWN and BROKEN are reported unhealthy", || async {
        let (code, body) = d.get("/readyz").await;
        code == 503 && body.contains("\"DOWN\"") && body.contains("\"BROKEN\"")
    })
    .await;
    d.until("ICBC's file is ingested anyway", || async {
        d.runs("ICBC").await.iter().any(|r| r.stats.files == 1)
    })
    .await;
    let down = d.runs("DOWN").await;
    assert!(
        down.iter()
            .any(|r| r.outcome == "failed" && r.error.is_some()),
        "{down:?}"
    );
    let (_, body) = d.get("/readyz").await;
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        ready["unhealthy_banks"],
        serde_json::json!(["BROKEN", "DOWN"]),
        "{body}"
    );
    let broken_runs = d.runs("BROKEN").await;
    assert!(
        broken_runs
            .iter()
            .any(|r| r.error.as_deref().unwrap_or("").contains("500")),
        "{broken_runs:?}"
    );
    assert_eq!(ready["database"], "ok");
    let (_, m) = d.get("/metrics").await;
    assert_eq!(
        metric(&m, "billrecon_bank_healthy{bank=\"DOWN\"}"),
        Some(0.0),
        "{m}"
    );
    assert!(metric(&m, "billrecon_pull_failures_total{bank=\"DOWN\"}").unwrap() >= 1.0);
    d.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn with_a_done_marker_a_file_waits_for_its_marker() {
    let d = Daemon::start(&INBOX_BANK.replace(
        "path = \"{dir}/inbox\" }",
        "path = \"{dir}/inbox\", done_marker = true }",
    ))
    .await;
    std::fs::create_dir_all(d.path("inbox")).unwrap();
    let f = d.path("inbox/ICBC_20261112_camt054.xml");
    std::fs::copy(fixture("banks/icbc/ICBC_20261112_camt054.xml"), &f).unwrap();
    // several runs pass without the marker
    d.until("three runs without the marker", || async {
        d.runs("ICBC").await.len() >= 3
    })
    .await;
    assert!(d.payments().await.is_empty(), "taken before its marker");
    std::fs::write(d.path("inbox/ICBC_20261112_camt054.xml.done"), b"").unwrap();
    d.until("the file is taken once marked", || async {
        !d.payments().await.is_empty()
    })
    .await;
    d.until("file and marker leave the inbox", || async {
        std::fs::read_dir(d.path("inbox")).unwrap().count() == 0
    })
    .await;
    d.stop().await;
}

/// A bank simulator serving `dir`, with a bearer token; returns it and the `[[bank]]` table of
/// an HTTPS bank pulling from it.
async fn simulated_bank(
    d_dir: &std::path::Path,
    retries: u32,
    timeout_secs: u64,
) -> (billrecon::banksim::BankSim, String) {
    let files = d_dir.join("bank-files");
    std::fs::create_dir_all(&files).unwrap();
    let token = d_dir.join("icbc.token");
    std::fs::write(&token, "tok-123").unwrap();
    let sim = billrecon::banksim::BankSim::start(
        billrecon::banksim::SimConfig {
            dir: files,
            bearer_token: Some("tok-123".into()),
            basic: None,
            tls: None,
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let bank = format!(
        "[[bank]]\nid = \"ICBC\"\nname = \"ICBC\"\nformat = \"camt054\"\n\
         reference_patterns = ['户号\\s*([0-9][0-9 ]{{9,15}})']\n\
         source = {{ kind = \"https\", base_url = \"{}\", token_file = \"{}\", retries = {retries}, backoff_ms = 10, timeout_secs = {timeout_secs} }}\n",
        sim.base_url(),
        token.display()
    );
    (sim, bank)
}

#[tokio::test]
async fn files_are_pulled_over_https_and_a_restart_resumes_from_the_cursor() {
    let host = tempfile::tempdir().unwrap();
    let (sim, bank) = simulated_bank(host.path(), 2, 10).await;
    std::fs::copy(
        fixture("banks/icbc/ICBC_20261112_camt054.xml"),
        host.path().join("bank-files/ICBC_20261112_camt054.xml"),
    )
    .unwrap();
    let d = Daemon::start(&bank).await;
    d.until("day 1 is pulled and matched", || async {
        let p = d.payments().await;
        !p.is_empty() && p.iter().all(|p| p["status"] != "pending")
    })
    .await;
    // the run that took the file ends after matching and its housekeeping
    d.until("the run that took day 1 is recorded", || async {
        d.runs("ICBC")
            .await
            .iter()
            .any(|r| r.outcome == "ok" && r.stats.files == 1)
    })
    .await;
    let day1 = d.payments().await.len();
    let cursor = {
        let mut conn = d.store.pool().acquire().await.unwrap();
        billrecon::store::runs::states(&mut conn).await.unwrap()[0]
            .cursor
            .clone()
    };
    let cursor = cursor.expect("the cursor is stored");
    let d = d.restart().await;
    // the bank publishes day 2 while the daemon restarts
    std::fs::copy(
        fixture("banks/icbc/ICBC_20261113_camt054.xml"),
        host.path().join("bank-files/ICBC_20261113_camt054.xml"),
    )
    .unwrap();
    d.until("day 2 is pulled", || async {
        d.payments()
            .await
            .iter()
            .any(|p| p["bank_ref"] == "ICBC-RV-0102")
    })
    .await;
    let requests = sim.requests();
    let downloads_day1 = requests
        .iter()
        .filter(|r| r.contains("/files/ICBC_20261112"))
        .count();
    assert_eq!(
        downloads_day1, 1,
        "day 1 downloaded once in all: {requests:?}"
    );
    let listings: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("/files?") || r.ends_with("/files"))
        .collect();
    assert!(
        !listings[0].contains("since="),
        "the very first listing has no cursor"
    );
    let after_restart = listings.iter().filter(|r| r.contains("since=")).count();
    assert!(after_restart >= 1);
    assert!(
        listings.iter().skip(1).all(|r| r.contains("since=")),
        "every later listing, after the restart too, resumes from a cursor: {listings:?}"
    );
    assert!(
        listings
            .iter()
            .any(|r| r.contains(&cursor) || r.contains(&cursor.replace(':', "%3A"))),
        "a listing after the restart asks for files since the stored cursor {cursor}: {listings:?}"
    );
    let p = d.payments().await;
    assert!(p.len() > day1);
    let report = billrecon::ledger::verify(&d.store).await.unwrap();
    assert!(report.ok, "{report}");
    let runs = d.runs("ICBC").await;
    assert_eq!(
        runs.iter().map(|r| r.stats.files).sum::<i64>(),
        2,
        "{runs:?}"
    );
    assert!(runs.iter().all(|r| r.outcome == "ok"), "{runs:?}");
    d.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_corrupted_download_is_retried_and_never_ingested() {
    let host = tempfile::tempdir().unwrap();
    let (sim, bank) = simulated_bank(host.path(), 1, 10).await;
    std::fs::copy(
        fixture("banks/icbc/ICBC_20261112_camt054.xml"),
        host.path().join("bank-files/ICBC_20261112_camt054.xml"),
    )
    .unwrap();
    // four corrupted bodies: two runs of two attempts each fail, the third run gets it right
    sim.fail_file("ICBC_20261112", billrecon::banksim::FailMode::BadBody, 4);
    let d = Daemon::start(&bank).await;
    d.until(
        "the file is finally ingested and its run recorded",
        || async {
            d.runs("ICBC")
                .await
                .iter()
                .any(|r| r.stats.files == 1 && r.outcome == "ok")
        },
    )
    .await;
    let runs = d.runs("ICBC").await;
    let failed: Vec<_> = runs.iter().filter(|r| r.outcome == "failed").collect();
    assert_eq!(failed.len(), 2, "{runs:?}");
    assert!(
        failed.iter().all(|r| r
            .error
            .as_deref()
            .unwrap_or("")
            .contains("does not match the listing")),
        "{failed:?}"
    );
    assert!(failed.iter().all(|r| r.stats.files == 0));
    // only the true bytes reached the archive and the database
    let archived: Vec<_> = walk(&d.path("data/archive"));
    assert_eq!(archived.len(), 1, "{archived:?}");
    let good = std::fs::read(fixture("banks/icbc/ICBC_20261112_camt054.xml")).unwrap();
    assert_eq!(std::fs::read(&archived[0]).unwrap(), good);
    let report = billrecon::ledger::verify(&d.store).await.unwrap();
    assert!(report.ok, "{report}");
    // healthy again once a run succeeded
    d.until("healthy again", || async {
        d.get("/readyz").await.0 == 200
    })
    .await;
    d.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_while_a_bank_hangs_ends_within_the_timeout_and_records_the_run() {
    let host = tempfile::tempdir().unwrap();
    let (sim, bank) = simulated_bank(host.path(), 0, 300).await;
    sim.fail_next(billrecon::banksim::FailMode::Hang, 1000);
    let d = Daemon::start_with(&bank, 1).await;
    d.until("a pull is hanging", || async {
        d.runs("ICBC").await.iter().any(|r| r.outcome == "running")
    })
    .await;
    let started = std::time::Instant::now();
    let (dir, _) = d.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let runs = {
        let s = Store::open(&format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .await
        .unwrap();
        let mut conn = s.pool().acquire().await.unwrap();
        billrecon::store::runs::of_bank(&mut conn, "ICBC", 10)
            .await
            .unwrap()
    };
    assert_eq!(runs[0].outcome, "cancelled", "{runs:?}");
    sim.shutdown().await;
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn runs_and_bank_state_work_on_postgres() {
    let t = crate::helpers::TestApp::spawn_pg().await;
    let mut conn = t.app.store.write_pool().acquire().await.unwrap();
    use billrecon::store::runs;
    let id = runs::start(&mut conn, "B1", "schedule").await.unwrap();
    let stats = runs::RunStats {
        files: 2,
        duplicates: 1,
        rejected: 0,
        payments: 7,
        bytes: 1234,
    };
    runs::finish(&mut conn, id, "B1", &stats, "failed", Some("HTTP 503"))
        .await
        .unwrap();
    let id2 = runs::start(&mut conn, "B1", "schedule").await.unwrap();
    assert!(id2 > id);
    assert_eq!(runs::close_abandoned(&mut conn).await.unwrap(), 1);
    runs::set_cursor(&mut conn, "B1", "2026-11-25T08:00:00.000000000Z")
        .await
        .unwrap();
    let st = runs::states(&mut conn).await.unwrap();
    assert_eq!(st.len(), 1);
    // an abandoned run (the daemon died) says nothing about the bank's health
    assert_eq!(st[0].consecutive_failures, 1, "{st:?}");
    assert_eq!(st[0].last_failure.as_deref(), Some("HTTP 503"));
    assert_eq!(
        st[0].cursor.as_deref(),
        Some("2026-11-25T08:00:00.000000000Z")
    );
    let all = runs::of_bank(&mut conn, "B1", 10).await.unwrap();
    assert_eq!(all[0].outcome, "failed");
    assert_eq!(all[1].stats, stats);
    let id3 = runs::start(&mut conn, "B1", "manual").await.unwrap();
    runs::finish(&mut conn, id3, "B1", &runs::RunStats::default(), "ok", None)
        .await
        .unwrap();
    let st = runs::states(&mut conn).await.unwrap();
    assert_eq!(st[0].consecutive_failures, 0);
    assert!(st[0].last_success_at.is_some());
    let latest = runs::latest(&mut conn).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].id, id3);
}
