//! Storage faults (issue 23), with the daemon running in process on a real inbox, real HTTP
//! and the real `banks status` command:
//!
//! - the data directory full (a 1 MiB tmpfs the test mounts and fills; we run as root),
//! - the data directory read-only (the same tmpfs remounted read-only),
//! - the database locked by another process (`sqlite3` / `psql` holding a lock) for longer
//!   than `storage.busy_timeout_ms`.
//!
//! Each must give a clear error, a failed run in `banks status` and `/metrics`, nothing half
//! stored, the bank's file left in its inbox, and once the fault is gone the next run takes
//! the file and `verify` holds, on SQLite and on PostgreSQL.

use crate::helpers::{fixture, pg_admin_url};
use billrecon::app::App;
use billrecon::config::Config;
use billrecon::store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_billrecon");
const FILE: &str = "ICBC_20261112_camt054.xml";

/// A folder with the daemon's config, its inbox, its data directory (a mount point when the
/// test mounts one) and, on SQLite, its database (outside the data directory, so that the
/// data directory's fault is the one under test).
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    db_url: String,
}

impl Setup {
    async fn new(pg: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let db_url = if pg {
            new_pg_database().await
        } else {
            format!("sqlite://{}", dir.path().join("db.sqlite").display())
        };
        std::fs::create_dir_all(dir.path().join("inbox")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let config = dir.path().join("billrecon.toml");
        std::fs::write(
            &config,
            format!(
                "[storage]\ndatabase_url = \"{db_url}\"\ndata_dir = \"{data}\"\nbusy_timeout_ms = 300\n\
                 [billing]\ncustomers_file = \"{c}\"\nbills_file = \"{b}\"\n\
                 [daemon]\ndefault_schedule = \"* * * * * *\"\nunhealthy_after = 1\nhttp_addr = \"\"\n\
                 [dunning]\nschedule = \"\"\n[reports]\npublish_schedule = \"\"\n\
                 [[bank]]\nid = \"ICBC\"\nname = \"ICBC\"\nformat = \"camt054\"\n\
                 source = {{ kind = \"directory\", path = \"{inbox}\" }}\n",
                data = dir.path().join("data").display(),
                c = fixture("customers.csv").display(),
                b = fixture("bills.csv").display(),
                inbox = dir.path().join("inbox").display(),
            ),
        )
        .unwrap();
        Setup {
            dir,
            config,
            db_url,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("BILLRECON_DATABASE_URL")
            .env_remove("BILLRECON_DATA_DIR")
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    }

    /// `banks status` of ICBC, as JSON.
    fn status(&self) -> serde_json::Value {
        let o = self.cli(&["banks", "status", "--format", "json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
            panic!(
                "banks status: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
        rows.into_iter().find(|r| r["bank_id"] == "ICBC").unwrap()
    }

    fn drop_file(&self) {
        std::fs::copy(
            fixture(&format!("banks/icbc/{FILE}")),
            self.path(&format!("inbox/{FILE}")),
        )
        .unwrap();
    }

    fn inbox_has_the_file(&self) -> bool {
        self.path(&format!("inbox/{FILE}")).exists()
    }
}

async fn new_pg_database() -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let admin = pg_admin_url();
    let name = format!(
        // not `billrecon_test_*`: test runs of older trees drop those of other processes
        "billrecon_faults_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    );
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
    // those of earlier runs whose process has ended
    let old: Vec<String> = sqlx::query(
        "SELECT CAST(datname AS TEXT) FROM pg_database WHERE datname LIKE 'billrecon_faults_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| sqlx::Row::get::<String, _>(r, 0))
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
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

/// The daemon in process, with its HTTP on a loopback port of its own.
struct Running {
    http: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    store: Store,
}

async fn start(s: &Setup) -> Running {
    let config = Config::load(&s.config).unwrap();
    let app = App::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let task = tokio::spawn(billrecon::scheduler::run_with_listener(
        Arc::new(app),
        stop.clone(),
        Some(listener),
    ));
    let store = Store::open(&s.db_url).await.unwrap();
    Running {
        http,
        stop,
        task,
        store,
    }
}

impl Running {
    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn failed_runs(&self) -> f64 {
        crate::daemon::metric(
            &self.metrics().await,
            "billrecon_runs_total{bank=\"ICBC\",outcome=\"failed\"}",
        )
        .unwrap_or(0.0)
    }

    async fn payments(&self) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) FROM payments")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
            .get(0)
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the daemon stops")
            .unwrap()
            .unwrap();
        self.store.close().await;
    }
}

async fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The payment lines of the fixture file, as `billrecon parse` reads them (derived, not typed
/// in).
fn lines_in_file() -> i64 {
    let o = Command::new(BIN)
        .args([
            "parse",
            fixture(&format!("banks/icbc/{FILE}")).to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["entries"].as_array().unwrap().len() as i64)
        .sum()
}

/// A tmpfs of `size` at `at`. We run as root (CI does); without the right to mount, the test
/// says so and fails rather than pretend.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount(8) is there");
        assert!(
            o.status.success(),
            "these storage-fault tests mount a small tmpfs and need root (CI runs as root): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs(at.to_path_buf())
    }

    fn remount(&self, opt: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// Fills the file system to the last byte with `filler`.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let _ = f.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// What every fault must leave: the failed run in `banks status` and `/metrics` with a clear
/// error, nothing stored, the file still in the inbox, nothing half-written in the archive.
async fn assert_failed_cleanly(s: &Setup, d: &Running, expect: &[&str]) {
    until("a failed run in banks status", 60, || {
        s.status()["last_run_outcome"] == "failed"
    })
    .await;
    let status = s.status();
    let error = status["last_run_error"].as_str().unwrap_or_default();
    for e in expect {
        assert!(error.contains(e), "the error says `{e}`: {status}");
    }
    assert!(d.failed_runs().await >= 1.0, "{}", d.metrics().await);
    let m = d.metrics().await;
    assert_eq!(
        crate::daemon::metric(&m, "billrecon_bank_healthy{bank=\"ICBC\"}"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(d.payments().await, 0, "nothing of the file is stored");
    assert!(s.inbox_has_the_file(), "the file waits in the inbox");
    let archive = s.path("data/archive");
    if archive.exists() {
        let leftovers: Vec<_> = walk(&archive)
            .into_iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "half-written files: {leftovers:?}");
    }
}

/// After the fault: the next run takes the file, every line once, and `verify` holds.
async fn assert_recovers(s: &Setup, d: &Running) {
    until("the file taken after the fault", 60, || {
        !s.inbox_has_the_file()
    })
    .await;
    until("an ok run", 60, || s.status()["last_run_outcome"] == "ok").await;
    assert_eq!(d.payments().await, lines_in_file());
    assert_eq!(s.status()["health"], "healthy", "{}", s.status());
    let v = s.cli(&["verify"]);
    assert!(
        v.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn data_directory_full(pg: bool) {
    let s = Setup::new(pg).await;
    let fs = Tmpfs::mount(&s.path("data"), "1m");
    let filler = fs.fill();
    s.drop_file();
    let d = start(&s).await;
    assert_failed_cleanly(&s, &d, &["archiving into", "No space left on device"]).await;
    // still failing while full: each scheduled run tries again, none stores anything
    let before = d.failed_runs().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(d.failed_runs().await > before, "retried on schedule");
    assert_eq!(d.payments().await, 0);
    std::fs::remove_file(filler).unwrap();
    assert_recovers(&s, &d).await;
    d.stop().await;
    drop(fs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_directory_on_sqlite() {
    data_directory_full(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_directory_on_postgres() {
    data_directory_full(true).await;
}

async fn data_directory_read_only(pg: bool) {
    let s = Setup::new(pg).await;
    let fs = Tmpfs::mount(&s.path("data"), "8m");
    fs.remount("ro");
    s.drop_file();
    let d = start(&s).await;
    assert_failed_cleanly(&s, &d, &["archiving into", "Read-only file system"]).await;
    fs.remount("rw");
    assert_recovers(&s, &d).await;
    d.stop().await;
    drop(fs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_on_sqlite() {
    data_directory_read_only(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_on_postgres() {
    data_directory_read_only(true).await;
}

/// Another process holding a lock on the database: `sqlite3` in an exclusive transaction, or
/// `psql` holding an exclusive lock on the runs table. Released when dropped.
struct Locker(Child);

impl Locker {
    fn hold(db_url: &str) -> Locker {
        let (mut child, sql) = if let Some(path) = db_url.strip_prefix("sqlite://") {
            (
                Command::new("sqlite3")
                    .arg(path)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("sqlite3 (scripts/test-setup installs it)"),
                "BEGIN EXCLUSIVE;\nSELECT 'locked';\n",
            )
        } else {
            (
                Command::new("psql")
                    .args(["-X", "-q", "-At", db_url])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("psql"),
                "BEGIN;\nLOCK TABLE runs IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n",
            )
        };
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        // wait until it says it holds the lock
        use std::io::BufRead;
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "locked");
        Locker(child)
    }

    fn release(mut self) {
        let mut stdin = self.0.stdin.take().unwrap();
        stdin.write_all(b"ROLLBACK;\n").unwrap();
        drop(stdin);
        self.0.wait().unwrap();
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn database_locked(pg: bool) {
    let s = Setup::new(pg).await;
    let d = start(&s).await;
    until("a first ok run", 60, || {
        s.status()["last_run_outcome"] == "ok"
    })
    .await;
    let lock = Locker::hold(&s.db_url);
    s.drop_file();
    // the run cannot even be recorded: it counts at once in /metrics and the bank's health
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.failed_runs().await < 1.0 {
        assert!(Instant::now() < deadline, "no failed run in /metrics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = d.metrics().await;
    assert_eq!(
        crate::daemon::metric(&m, "billrecon_bank_healthy{bank=\"ICBC\"}"),
        Some(0.0)
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(s.inbox_has_the_file());
    lock.release();
    assert_recovers(&s, &d).await;
    // the runs that failed under the lock were written once the database took writes again,
    // with the reason
    let mut conn = d.store.pool().acquire().await.unwrap();
    let runs = billrecon::store::runs::of_bank(&mut conn, "ICBC", 1000)
        .await
        .unwrap();
    let locked: Vec<_> = runs
        .iter()
        .filter(|r| r.outcome == "failed")
        .filter_map(|r| r.error.as_deref())
        .collect();
    assert!(!locked.is_empty(), "{runs:?}");
    let expected = if pg {
        "lock timeout"
    } else {
        "database is locked"
    };
    assert!(locked.iter().all(|e| e.contains(expected)), "{locked:?}");
    assert!(runs.iter().all(|r| r.outcome != "running"));
    drop(conn);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_on_sqlite() {
    database_locked(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_on_postgres() {
    database_locked(true).await;
}
