//! Test support: a fresh application per test (temp dir, own SQLite file or own PostgreSQL
//! database), fixture paths, and a small camt.054 writer for rule-by-rule tests.

use billrecon::app::App;
use billrecon::config::Config;
use billrecon::ingest::IngestOutcome;
use billrecon::ledger::VerifyReport;
use billrecon::matching::MatchSummary;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// A real third-party file from `../shared/fixtures/real/` (see SOURCES.md there).
pub fn real_fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/real")
        .join(rel)
}

/// Banks used by the tests: the example config's ICBC and CMB (with its reference pattern),
/// and TEST, which sniffs the format. No inbox sources: tests ingest by hand.
pub const BANKS: &str = r#"
[[bank]]
id = "ICBC"
name = "ICBC"
format = "camt054"
reference_patterns = ['户号\s*([0-9][0-9 ]{9,15})']

[[bank]]
id = "CMB"
name = "CMB"
format = "camt053"

[[bank]]
id = "TEST"
name = "Test"
format = "auto"
"#;

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub app: App,
}

static PG_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The PostgreSQL server tests use (`BILLRECON_TEST_PG`, default the local one).
pub fn pg_admin_url() -> String {
    std::env::var("BILLRECON_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestApp {
    /// A fresh app on its own SQLite file.
    pub async fn spawn() -> TestApp {
        Self::spawn_with("").await
    }

    /// A fresh app on its own SQLite file, with more config (TOML tables) added.
    pub async fn spawn_with(extra: &str) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("billrecon.db").display());
        Self::build(dir, url, extra).await
    }

    /// A fresh app on its own, newly created PostgreSQL database.
    pub async fn spawn_pg() -> TestApp {
        Self::spawn_pg_with("").await
    }

    /// [`TestApp::spawn_pg`] with more config (TOML tables) added.
    pub async fn spawn_pg_with(extra: &str) -> TestApp {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let admin = pg_admin_url();
        let name = format!(
            "billrecon_test_{}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros(),
            PG_SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .expect("PostgreSQL must be running for this test (see .ci/run)");
        // Databases left by earlier test runs (processes that have ended) are dropped first.
        let old: Vec<String> = sqlx::query(
            "SELECT CAST(datname AS TEXT) FROM pg_database WHERE datname LIKE 'billrecon_test_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, 0))
        .filter(|d| !d.starts_with(&format!("billrecon_test_{}_", std::process::id())))
        // only those of test processes that are gone: several test runs may share the server
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
        let base = admin.rsplit_once('/').unwrap().0;
        Self::build(
            tempfile::tempdir().unwrap(),
            format!("{base}/{name}"),
            extra,
        )
        .await
    }

    async fn build(dir: tempfile::TempDir, db_url: String, extra: &str) -> TestApp {
        let toml = format!(
            "[storage]\ndatabase_url = \"{db_url}\"\ndata_dir = \"{}\"\n{extra}\n{BANKS}",
            dir.path().join("data").display()
        );
        let config = Config::from_toml(&toml, "test config").unwrap();
        let app = App::build(config).await.unwrap();
        TestApp { dir, app }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Imports the fixture customers and bills.
    pub async fn import_fixtures(&self) {
        billrecon::billing::import_customers(&self.app.store, &fixture("customers.csv"))
            .await
            .unwrap();
        billrecon::billing::import_bills(&self.app.store, &fixture("bills.csv"))
            .await
            .unwrap();
    }

    /// Writes CSV text to a temp file and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Customers and bills from compact lists: (bill_id, account, amount, due_on, status).
    pub async fn bills(&self, bills: &[(&str, &str, &str, &str, &str)]) {
        self.bills_classed(bills, &[]).await
    }

    /// [`TestApp::bills`] with the customer class of some accounts: (account, class); the
    /// others are residential.
    pub async fn bills_classed(
        &self,
        bills: &[(&str, &str, &str, &str, &str)],
        classes: &[(&str, &str)],
    ) {
        let mut accounts: Vec<&str> = bills.iter().map(|b| b.1).collect();
        accounts.sort();
        accounts.dedup();
        let mut c = String::from("account_no,name,class,key_account,manager,phone,email\n");
        for a in accounts {
            let class = classes
                .iter()
                .find(|x| x.0 == a)
                .map(|x| x.1)
                .unwrap_or("residential");
            c.push_str(&format!("{a},Customer {a},{class},false,,,\n"));
        }
        let cp = self.write("customers.csv", &c);
        billrecon::billing::import_customers(&self.app.store, &cp)
            .await
            .unwrap();
        let mut b =
            String::from("bill_id,account_no,period,amount,currency,issued_on,due_on,status\n");
        for (id, acct, amount, due, status) in bills {
            b.push_str(&format!(
                "{id},{acct},2026-10,{amount},CNY,2026-08-01,{due},{status}\n"
            ));
        }
        let bp = self.write("bills.csv", &b);
        billrecon::billing::import_bills(&self.app.store, &bp)
            .await
            .unwrap();
    }

    /// Ingests files from a bank; panics on anything but success or a duplicate file.
    pub async fn ingest(
        &self,
        bank: &str,
        files: &[PathBuf],
    ) -> (Vec<IngestOutcome>, MatchSummary) {
        let bank = self.app.bank(bank).unwrap().clone();
        let (results, summary) = self.app.ingest_paths(&bank, files).await.unwrap();
        let outcomes = results
            .into_iter()
            .map(|r| {
                r.result
                    .unwrap_or_else(|e| panic!("{}: {e}", r.path.display()))
            })
            .collect();
        (outcomes, summary)
    }

    /// Writes a camt.054 built from `pays` and ingests it from bank TEST.
    pub async fn pay(&self, name: &str, pays: &[Pay]) -> MatchSummary {
        let p = self.write(name, &camt054(name, pays));
        self.ingest("TEST", &[p]).await.1
    }

    /// [`TestApp::pay`] with every line booked (and valued) on `date` (YYYY-MM-DD).
    pub async fn pay_on(&self, name: &str, date: &str, pays: &[Pay]) -> MatchSummary {
        let p = self.write(name, &camt054_on(name, date, pays));
        self.ingest("TEST", &[p]).await.1
    }

    /// A bill's late fee totals straight from the database: (accrued, charged, waived, paid).
    pub async fn fee(&self, bill_id: &str) -> (i64, i64, i64, i64) {
        use sqlx::Row;
        let r = sqlx::query(
            "SELECT fee_accrued_minor, fee_charged_minor, fee_waived_minor, fee_paid_minor FROM bills WHERE bill_id = $1",
        )
        .bind(bill_id.to_string())
        .fetch_one(self.app.store.pool())
        .await
        .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    }

    pub async fn payments(&self) -> Vec<HashMap<String, String>> {
        let mut rows = Vec::new();
        billrecon::store::export::payments(self.app.store.pool(), |r| {
            rows.push(r);
            Ok(())
        })
        .await
        .unwrap();
        to_maps(billrecon::store::export::PAYMENT_COLUMNS, rows)
    }

    /// The payment whose bank reference is `bank_ref` (the last one if several).
    pub async fn payment(&self, bank_ref: &str) -> HashMap<String, String> {
        self.payments()
            .await
            .into_iter()
            .rfind(|p| p["bank_ref"] == bank_ref)
            .unwrap_or_else(|| panic!("no payment {bank_ref}"))
    }

    pub async fn allocations(&self) -> Vec<HashMap<String, String>> {
        let mut rows = Vec::new();
        billrecon::store::export::allocations(self.app.store.pool(), |r| {
            rows.push(r);
            Ok(())
        })
        .await
        .unwrap();
        to_maps(billrecon::store::export::ALLOCATION_COLUMNS, rows)
    }

    /// The late-fee ledger, as exported.
    pub async fn late_fees(&self) -> Vec<HashMap<String, String>> {
        let mut rows = Vec::new();
        billrecon::store::export::late_fees(self.app.store.pool(), |r| {
            rows.push(r);
            Ok(())
        })
        .await
        .unwrap();
        to_maps(billrecon::store::export::LATE_FEE_COLUMNS, rows)
    }

    pub async fn exceptions(&self) -> Vec<HashMap<String, String>> {
        let mut rows = Vec::new();
        billrecon::store::export::exceptions(self.app.store.pool(), false, |r| {
            rows.push(r);
            Ok(())
        })
        .await
        .unwrap();
        to_maps(billrecon::store::export::EXCEPTION_COLUMNS, rows)
    }

    /// A bill's (amount, paid, status) straight from the database.
    pub async fn bill(&self, bill_id: &str) -> (i64, i64, String) {
        use sqlx::Row;
        let r =
            sqlx::query("SELECT amount_minor, paid_minor, status FROM bills WHERE bill_id = $1")
                .bind(bill_id.to_string())
                .fetch_one(self.app.store.pool())
                .await
                .unwrap();
        (r.get(0), r.get(1), r.get(2))
    }

    /// A customer's credit balance in minor units.
    pub async fn credit(&self, account: &str) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM credit_ledger WHERE account_no = $1")
            .bind(account.to_string())
            .fetch_one(self.app.store.pool())
            .await
            .unwrap()
            .get(0)
    }

    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.app.store.pool())
            .await
            .unwrap()
            .get(0)
    }

    pub async fn verify(&self) -> VerifyReport {
        billrecon::ledger::verify(&self.app.store).await.unwrap()
    }

    /// Verify must pass; prints the report when it does not.
    pub async fn assert_verified(&self) {
        let r = self.verify().await;
        assert!(r.ok, "verify failed:\n{r}");
    }
}

pub fn to_maps(cols: &[&str], rows: Vec<Vec<Option<String>>>) -> Vec<HashMap<String, String>> {
    rows.into_iter()
        .map(|r| {
            cols.iter()
                .zip(r)
                .map(|(c, v)| (c.to_string(), v.unwrap_or_default()))
                .collect()
        })
        .collect()
}

/// One payment line for [`camt054`].
#[derive(Clone, Debug)]
pub struct Pay {
    pub amount: &'static str,
    pub currency: &'static str,
    pub bank_ref: Option<String>,
    pub e2e: Option<String>,
    pub reference: Option<String>,
    pub ustrd: Option<String>,
    pub debit: bool,
    pub reversal: bool,
    pub payer: &'static str,
}

impl Pay {
    /// A credit with a bank reference.
    pub fn new(bank_ref: &str, amount: &'static str) -> Pay {
        Pay {
            amount,
            currency: "CNY",
            bank_ref: Some(bank_ref.into()),
            e2e: None,
            reference: None,
            ustrd: None,
            debit: false,
            reversal: false,
            payer: "Payer",
        }
    }
    pub fn reference(mut self, r: &str) -> Pay {
        self.reference = Some(r.into());
        self
    }
    pub fn text(mut self, t: &str) -> Pay {
        self.ustrd = Some(t.into());
        self
    }
    pub fn e2e(mut self, e: &str) -> Pay {
        self.e2e = Some(e.into());
        self
    }
    pub fn no_bank_ref(mut self) -> Pay {
        self.bank_ref = None;
        self
    }
    pub fn currency(mut self, c: &'static str) -> Pay {
        self.currency = c;
        self
    }
    pub fn debit(mut self) -> Pay {
        self.debit = true;
        self
    }
    pub fn reversal(mut self) -> Pay {
        self.debit = true;
        self.reversal = true;
        self
    }
}

/// A camt.054.001.08 with one notification per currency and one entry per payment.
pub fn camt054(msg_id: &str, pays: &[Pay]) -> String {
    camt054_on(msg_id, "2026-11-12", pays)
}

/// [`camt054`] with every line booked on `date` (YYYY-MM-DD).
pub fn camt054_on(msg_id: &str, date: &str, pays: &[Pay]) -> String {
    let mut currencies: Vec<&str> = pays.iter().map(|p| p.currency).collect();
    currencies.dedup();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.08\"><BkToCstmrDbtCdtNtfctn>\n<GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>2026-11-12T20:00:00</CreDtTm></GrpHdr>\n"
    );
    for (i, cur) in currencies.iter().enumerate() {
        x.push_str(&format!(
            "<Ntfctn><Id>{msg_id}-{i}</Id><Acct><Id><Othr><Id>COLLECTION-{cur}</Id></Othr></Id><Ccy>{cur}</Ccy></Acct>\n"
        ));
        for p in pays.iter().filter(|p| p.currency == *cur) {
            let dir = if p.debit { "DBIT" } else { "CRDT" };
            x.push_str(&format!(
                "<Ntry><Amt Ccy=\"{cur}\">{}</Amt><CdtDbtInd>{dir}</CdtDbtInd>",
                p.amount
            ));
            if p.reversal {
                x.push_str("<RvslInd>true</RvslInd>");
            }
            x.push_str(&format!("<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{date}</Dt></BookgDt><ValDt><Dt>{date}</Dt></ValDt>"));
            if let Some(r) = &p.bank_ref {
                x.push_str(&format!("<AcctSvcrRef>{r}</AcctSvcrRef>"));
            }
            x.push_str("<NtryDtls><TxDtls><Refs>");
            if let Some(r) = &p.bank_ref {
                x.push_str(&format!("<AcctSvcrRef>{r}</AcctSvcrRef>"));
            }
            if let Some(e) = &p.e2e {
                x.push_str(&format!("<EndToEndId>{e}</EndToEndId>"));
            }
            x.push_str(&format!(
                "</Refs><Amt Ccy=\"{cur}\">{}</Amt><CdtDbtInd>{dir}</CdtDbtInd><RltdPties><Dbtr><Pty><Nm>{}</Nm></Pty></Dbtr></RltdPties>",
                p.amount, p.payer
            ));
            if p.reference.is_some() || p.ustrd.is_some() {
                x.push_str("<RmtInf>");
                if let Some(u) = &p.ustrd {
                    x.push_str(&format!("<Ustrd>{u}</Ustrd>"));
                }
                if let Some(r) = &p.reference {
                    x.push_str(&format!(
                        "<Strd><CdtrRefInf><Ref>{r}</Ref></CdtrRefInf></Strd>"
                    ));
                }
                x.push_str("</RmtInf>");
            }
            x.push_str("</TxDtls></NtryDtls></Ntry>\n");
        }
        x.push_str("</Ntfctn>\n");
    }
    x.push_str("</BkToCstmrDbtCdtNtfctn></Document>\n");
    x
}

/// Minor units of a decimal string with two decimals ("12.50" -> 1250), for expectations.
pub fn cents(s: &str) -> i64 {
    if let Some(rest) = s.strip_prefix('-') {
        return -cents(rest);
    }
    let (a, b) = s.split_once('.').unwrap_or((s, "00"));
    a.parse::<i64>().unwrap() * 100 + format!("{b:0<2}")[..2].parse::<i64>().unwrap()
}

/// The app served on loopback by the daemon itself (`scheduler::run_with_listener`), with a
/// client that does not follow redirects.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub app: std::sync::Arc<App>,
    pub http: String,
    pub client: reqwest::Client,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Serves the app on loopback through the daemon (`scheduler::run_with_listener`).
pub async fn serve(t: TestApp) -> Server {
    let TestApp { dir, app } = t;
    let app = std::sync::Arc::new(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(billrecon::scheduler::run_with_listener(
        app.clone(),
        stop.clone(),
        Some(listener),
    ));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let s = Server {
        dir,
        app,
        http,
        client,
        stop,
        task,
    };
    for _ in 0..100 {
        if s.client.get(s.url("/healthz")).send().await.is_ok() {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the HTTP listener did not answer");
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    pub async fn call(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let r = rb.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut rb = self.client.get(self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        self.call(rb).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(
            self.client
                .post(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    pub async fn delete(
        &self,
        path: &str,
        token: &str,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(self.client.delete(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(20), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    /// Stops the daemon and hands back its folder and config (to start it again on the same
    /// database: a restart).
    pub async fn stop_keeping(self) -> (tempfile::TempDir, Config) {
        self.stop.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(20), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        self.app.store.close().await;
        (self.dir, self.app.config.clone())
    }
}
