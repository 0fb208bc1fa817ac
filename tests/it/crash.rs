//! Crash loops (issue 23): the real daemon binary, as a child process, with the bank simulator
//! (`billrecon bank-sim`, an HTTPS-protocol bank) and an inbox bank, dunning on a short
//! schedule with a notification gateway (this test's own HTTP server) and payment receipts,
//! and the reports published every two seconds. It is killed with SIGKILL at random moments,
//! over and over, while new bank files keep arriving: during pulls, ingest, matching, dunning
//! runs, notice delivery and report publishing. After each kill the test checks, on the
//! database and the files the daemon left:
//!
//! - no file is half-ingested: every stored file has exactly the payments its bytes hold (as
//!   `billrecon parse` reads them), and no file is stored twice;
//! - no payment is lost or doubled: the payments are exactly the lines of the stored files;
//! - no notice is sent twice: every notice POSTed to the gateway is one outbox row with a
//!   stable `Idempotency-Key` and the same body each time it is sent again (the gateway
//!   deduplicates on the key, as its contract says), and no row is sent without the gateway
//!   having it;
//! - each published day is complete (its manifest lists every file, with the right SHA-256)
//!   or absent.
//!
//! Then it lets the daemon finish everything, stops it, checks that every file was taken
//! once, and runs `billrecon verify`. On SQLite and on PostgreSQL.
//!
//! By default 120 kills on SQLite and 80 on PostgreSQL, each loop bounded to 100 s. A longer
//! run by hand (docs/SECURITY.md):
//! `BILLRECON_CRASH_KILLS=1000 BILLRECON_CRASH_SECS=1800 cargo test --test it crash -- --nocapture`

use crate::helpers::pg_admin_url;
use axum::extract::State;
use axum::http::HeaderMap;
use rand::{Rng, SeedableRng};
use sqlx::{AnyPool, Row};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_billrecon");

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the gateway received: per idempotency key, each body POSTed.
#[derive(Default)]
struct Gateway {
    posts: Mutex<BTreeMap<String, Vec<String>>>,
}

async fn gateway_post(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(!key.is_empty(), "a notice without an Idempotency-Key");
    g.posts.lock().unwrap().entry(key).or_default().push(body);
    axum::http::StatusCode::OK
}

struct Scenario {
    dir: tempfile::TempDir,
    config: PathBuf,
    db_url: String,
    /// Files not yet handed to a bank: (destination folder, path in the pool).
    pending: Vec<(PathBuf, PathBuf)>,
    /// Payment lines of each file, by SHA-256 (from `billrecon parse`).
    lines: HashMap<String, i64>,
    total_files: usize,
    gateway: Arc<Gateway>,
    sim: Child,
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Payment lines of a file as `billrecon parse` reads it.
fn parse_lines(path: &Path) -> i64 {
    let o = Command::new(BIN)
        .args(["parse", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["entries"].as_array().unwrap().len() as i64)
        .sum()
}

async fn new_database(pg: bool, dir: &Path) -> String {
    if !pg {
        return format!("sqlite://{}", dir.join("billrecon.db").display());
    }
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let admin = pg_admin_url();
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
    // not `billrecon_test_*`: test runs of older trees drop those of other processes
    let old: Vec<String> = sqlx::query(
        "SELECT CAST(datname AS TEXT) FROM pg_database WHERE datname LIKE 'billrecon_crash_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .filter(|d| {
        d.split('_')
            .nth(2)
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_none_or(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    })
    .collect();
    for d in old {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {d} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
    let name = format!(
        "billrecon_crash_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

impl Scenario {
    async fn new(pg: bool) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // a coherent data set: customers with phones, overdue bills, 24 files of 50 payments
        // (every case the matcher knows: references, free text, duplicates, reversals, fees)
        let gen = root.join("gen");
        let o = Command::new(BIN)
            .args([
                "gen",
                "--customers",
                "300",
                "--bills",
                "600",
                "--payments",
                "1200",
            ])
            .args(["--per-file", "50", "--seed", "23", "--out"])
            .arg(&gen)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&gen)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        files.sort();
        let mut lines = HashMap::new();
        for f in &files {
            lines.insert(sha256_hex(&std::fs::read(f).unwrap()), parse_lines(f));
        }
        let (sim_dir, inbox) = (root.join("sim"), root.join("inbox"));
        std::fs::create_dir_all(&sim_dir).unwrap();
        std::fs::create_dir_all(&inbox).unwrap();
        // odd files to the simulated HTTPS bank, even ones to the inbox bank; the first two
        // of each are there at the start, the rest arrive during the loop
        let mut pending = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let to = if i % 2 == 0 { &sim_dir } else { &inbox };
            if i < 4 {
                std::fs::copy(f, to.join(f.file_name().unwrap())).unwrap();
            } else {
                pending.push((to.clone(), f.clone()));
            }
        }

        let sim_port = free_port();
        let sim = Command::new(BIN)
            .args(["bank-sim", "--dir", sim_dir.to_str().unwrap()])
            .args(["--addr", &format!("127.0.0.1:{sim_port}")])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();

        let gateway = Arc::new(Gateway::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw_addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/notices", axum::routing::post(gateway_post))
            .with_state(gateway.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let secret = root.join("gateway.secret");
        std::fs::write(&secret, "crash-loop-gateway-secret").unwrap();

        let db_url = new_database(pg, root).await;
        let config = root.join("billrecon.toml");
        std::fs::write(
            &config,
            format!(
                r#"[storage]
database_url = "{db_url}"
data_dir = "{data}"
[billing]
customers_file = "{gen}/customers.csv"
bills_file = "{gen}/bills.csv"
[daemon]
time_zone = "Asia/Shanghai"
default_schedule = "* * * * * *"
billing_schedule = "*/5 * * * * *"
http_addr = ""
shutdown_timeout_secs = 5
[dunning]
schedule = "*/3 * * * * *"
templates_dir = "{templates}"
quiet_hours_start = "00:00:00"
quiet_hours_end = "00:00:00"
receipt_channels = ["sms"]
delivery_interval_secs = 1
gateway = {{ url = "http://{gw_addr}/notices", secret_file = "{secret}", backoff_secs = 1, timeout_secs = 5 }}
[reports]
dir = "{reports}"
publish_schedule = "*/2 * * * * *"
[exceptions]
escalate_after_hours = 0
[[bank]]
id = "SIM"
name = "Simulated bank"
format = "camt054"
source = {{ kind = "https", base_url = "http://127.0.0.1:{sim_port}", retries = 2, backoff_ms = 50, timeout_secs = 5 }}
[[bank]]
id = "DROP"
name = "Inbox bank"
format = "camt054"
source = {{ kind = "directory", path = "{inbox}" }}
"#,
                data = root.join("data").display(),
                gen = gen.display(),
                templates = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("config/templates")
                    .display(),
                secret = secret.display(),
                reports = root.join("reports").display(),
                inbox = inbox.display(),
            ),
        )
        .unwrap();
        let total_files = files.len();
        Scenario {
            dir,
            config,
            db_url,
            pending,
            lines,
            total_files,
            gateway,
            sim,
        }
    }

    fn spawn(&self, log: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .env_remove("BILLRECON_DATABASE_URL")
            .env_remove("BILLRECON_DATA_DIR")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// One more bank file arrives (a bank's delivery: written aside, then renamed in).
    fn deliver_one(&mut self) {
        if let Some((to, f)) = self.pending.pop() {
            let name = f.file_name().unwrap();
            let tmp = to.join(format!(".{}.part", name.to_string_lossy()));
            std::fs::copy(&f, &tmp).unwrap();
            std::fs::rename(&tmp, to.join(name)).unwrap();
        }
    }
}

/// What the checks found, for the summary.
#[derive(Default, Debug)]
struct Seen {
    files: i64,
    payments: i64,
    notices_sent: i64,
    resent: usize,
    days_complete: usize,
}

/// The invariants after a kill (the daemon is not running).
async fn check(s: &Scenario, db: &AnyPool) -> Seen {
    let mut seen = Seen::default();
    // files: each stored once, with exactly its lines
    let rows = sqlx::query(
        "SELECT f.sha256, f.payments, (SELECT COUNT(*) FROM payments p WHERE p.file_id = f.id) FROM bank_files f",
    )
    .fetch_all(db)
    .await
    .unwrap();
    for r in &rows {
        let sha: String = r.get(0);
        let declared: i64 = r.get(1);
        let stored: i64 = r.get(2);
        let expected = s
            .lines
            .get(&sha)
            .copied()
            .unwrap_or_else(|| panic!("a stored file that no bank delivered: {sha}"));
        assert_eq!(
            (declared, stored),
            (expected, expected),
            "file {sha} is half-ingested"
        );
        seen.files += 1;
        seen.payments += stored;
    }
    // payments: only those of stored files (none lost in between, none doubled)
    let all: i64 = sqlx::query("SELECT COUNT(*) FROM payments WHERE file_id IS NOT NULL")
        .fetch_one(db)
        .await
        .unwrap()
        .get(0);
    assert_eq!(all, seen.payments, "payments outside their files' count");
    // notices: every POST is one outbox row, sent again only as the same notice
    let notices: HashMap<String, (String, String)> =
        sqlx::query("SELECT idempotency_key, status, body FROM notices")
            .fetch_all(db)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<String, _>(0), (r.get(1), r.get(2))))
            .collect();
    let posts = s.gateway.posts.lock().unwrap();
    for (key, bodies) in posts.iter() {
        assert!(
            notices.contains_key(key),
            "the gateway got a notice the outbox does not hold: {key}"
        );
        assert!(
            bodies.windows(2).all(|w| w[0] == w[1]),
            "notice {key} was sent again with another body"
        );
        seen.resent += bodies.len() - 1;
    }
    for (key, (status, _)) in &notices {
        if status == "sent" || status == "delivered" {
            assert!(
                posts.contains_key(key),
                "notice {key} is `{status}` but the gateway never got it"
            );
            seen.notices_sent += 1;
        }
    }
    drop(posts);
    // published days: complete or absent
    let reports = s.dir.path().join("reports");
    for day in day_dirs(&reports) {
        let manifest = day.join("manifest.json");
        let text = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|e| panic!("{}: a day without its manifest: {e}", day.display()));
        let m: serde_json::Value = serde_json::from_str(&text).unwrap();
        let files = m["files"].as_array().unwrap();
        assert!(!files.is_empty());
        let mut listed: Vec<String> = Vec::new();
        for f in files {
            let name = f["file"]
                .as_str()
                .or(f["name"].as_str())
                .unwrap()
                .to_string();
            let bytes = std::fs::read(day.join(&name))
                .unwrap_or_else(|e| panic!("{}: {name} is missing: {e}", day.display()));
            assert_eq!(
                f["sha256"].as_str().unwrap(),
                sha256_hex(&bytes),
                "{}: {name} differs from its manifest",
                day.display()
            );
            listed.push(name);
        }
        listed.push("manifest.json".into());
        for e in std::fs::read_dir(&day).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name.starts_with('.') || listed.contains(&name),
                "{}: {name} is not in the manifest",
                day.display()
            );
        }
        seen.days_complete += 1;
    }
    seen
}

/// The published days' folders (`YYYY/MM/DD`, not the hidden staging ones).
fn day_dirs(reports: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let visible = |p: &Path| !p.file_name().unwrap().to_string_lossy().starts_with('.');
    let Ok(years) = std::fs::read_dir(reports) else {
        return out;
    };
    for y in years
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && visible(p))
    {
        for m in std::fs::read_dir(&y).unwrap().map(|e| e.unwrap().path()) {
            if !(m.is_dir() && visible(&m)) {
                continue;
            }
            for d in std::fs::read_dir(&m).unwrap().map(|e| e.unwrap().path()) {
                if d.is_dir() && visible(&d) {
                    out.push(d);
                }
            }
        }
    }
    out
}

fn kill9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

async fn crash_loop(pg: bool, default_kills: u64) {
    let kills = env_num("BILLRECON_CRASH_KILLS", default_kills);
    let budget = Duration::from_secs(env_num("BILLRECON_CRASH_SECS", 100));
    let mut s = Scenario::new(pg).await;
    sqlx::any::install_default_drivers();
    let log = s.dir.path().join("daemon.log");
    // the test's own reader (the daemon creates and migrates the database on its first start)
    let mut rng = rand::rngs::SmallRng::seed_from_u64(env_num("BILLRECON_CRASH_SEED", 23));
    let started = Instant::now();
    let mut child = s.spawn(&log);
    std::thread::sleep(Duration::from_millis(1500));
    kill9(&mut child);
    let db = sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(&s.db_url)
        .await
        .unwrap();
    let mut done = 1u64;
    let mut last = check(&s, &db).await;
    while done < kills && started.elapsed() < budget {
        if rng.gen_bool(0.35) {
            s.deliver_one();
        }
        let mut child = s.spawn(&log);
        // mostly short lives (a kill early in start-up, a pull, an ingest), some long enough
        // to reach matching, dunning, delivery and publishing
        let life = if rng.gen_bool(0.7) {
            rng.gen_range(20..700)
        } else {
            rng.gen_range(700..2500)
        };
        tokio::time::sleep(Duration::from_millis(life)).await;
        kill9(&mut child);
        done += 1;
        last = check(&s, &db).await;
    }
    let loop_time = started.elapsed();
    // the rest arrives; the daemon runs undisturbed until every file is taken and every
    // notice handed over, then stops on SIGTERM
    while !s.pending.is_empty() {
        s.deliver_one();
    }
    let mut child = s.spawn(&log);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let files: i64 = sqlx::query("SELECT COUNT(*) FROM bank_files")
            .fetch_one(&db)
            .await
            .unwrap()
            .get(0);
        let open: i64 =
            sqlx::query("SELECT COUNT(*) FROM notices WHERE status IN ('queued', 'failed')")
                .fetch_one(&db)
                .await
                .unwrap()
                .get(0);
        let running: i64 = sqlx::query("SELECT COUNT(*) FROM runs WHERE outcome = 'running'")
            .fetch_one(&db)
            .await
            .unwrap()
            .get(0);
        if files as usize == s.total_files && open == 0 && running == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not finished after the loop: {files} of {} files, {open} notices open",
            s.total_files
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // a day published after the last delivery
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "the daemon stops cleanly on SIGTERM");
    let end = check(&s, &db).await;
    assert_eq!(end.files as usize, s.total_files, "every file taken once");
    assert_eq!(
        end.payments,
        s.lines.values().sum::<i64>(),
        "every line once"
    );
    assert!(end.notices_sent > 0, "notices were delivered");
    assert!(end.days_complete > 0, "a day was published");
    // what publishes killed part-way left (hidden staging and old sets) is swept by the next
    // publish in that month's folder
    let newest = day_dirs(&s.dir.path().join("reports"))
        .into_iter()
        .max_by_key(|d| std::fs::metadata(d).and_then(|m| m.modified()).ok())
        .expect("a published day");
    let month = newest.parent().unwrap();
    let leftovers: Vec<String> = std::fs::read_dir(month)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".staging-") || n.contains(".old-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "{}: left behind by killed publishes: {leftovers:?}",
        month.display()
    );
    // kills landed inside runs (pull, ingest, matching): those runs were closed at the next start
    let interrupted: i64 =
        sqlx::query("SELECT COUNT(*) FROM runs WHERE error = 'the daemon stopped during the run'")
            .fetch_one(&db)
            .await
            .unwrap()
            .get(0);
    assert!(interrupted > 0, "no kill landed inside a run");
    let verify = Command::new(BIN)
        .arg("--config")
        .arg(&s.config)
        .arg("verify")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "verify after the crash loop:\n{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let panics = logs.lines().filter(|l| l.contains("panicked")).count();
    assert_eq!(panics, 0, "the daemon panicked:\n{logs}");
    println!(
        "crash loop on {}: {done} kills in {:.0} s ({} runs interrupted; {} notices re-sent after a kill, same key and body); at the end {:?}; during the loop last {:?}",
        if pg { "PostgreSQL" } else { "SQLite" },
        loop_time.as_secs_f64(),
        interrupted,
        end.resent,
        end,
        last
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_on_sqlite() {
    crash_loop(false, 120).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_on_postgres() {
    crash_loop(true, 80).await;
}
