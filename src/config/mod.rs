//! Configuration: one typed struct read from a TOML file, overridden by `BILLRECON_*`
//! environment variables, validated before anything starts.
//!
//! The commented example `config/billrecon.toml` documents every key. Unknown keys are errors
//! (a typo must not silently fall back to a default). Relative paths are relative to the
//! working directory the daemon runs in.

use crate::domain::Currency;
use regex::Regex;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where the config is looked for when `--config` and `BILLRECON_CONFIG` are absent.
pub mod dunning;
mod format;
pub mod layout;
mod report_kind;

pub use format::Format;
pub use layout::TextLayout;
pub use report_kind::ReportKind;

pub const DEFAULT_PATH: &str = "config/billrecon.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Syntax { path: String, message: String },
    #[error("config {path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub ledger: LedgerConfig,
    #[serde(default)]
    pub billing: BillingConfig,
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub matching: MatchingConfig,
    #[serde(default)]
    pub dunning: dunning::DunningConfig,
    #[serde(default)]
    pub reports: ReportsConfig,
    #[serde(default)]
    pub exceptions: ExceptionsConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// Partner banks, one `[[bank]]` table each.
    #[serde(default, rename = "bank")]
    pub banks: Vec<BankConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite://PATH` (created when missing) or `postgres://...`.
    #[serde(default = "default_db_url")]
    pub database_url: String,
    /// Holds `archive/` (every bank file received, by SHA-256) and `quarantine/`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// How long a statement waits for a lock held by another process (a backup, a second
    /// command, a migration) before it fails (SQLite's busy timeout, PostgreSQL's
    /// `lock_timeout`): the run is recorded as failed and tried again on the next schedule.
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
    /// Statements slower than this are logged at DEBUG level (not as warnings: a large export
    /// or a backlog's matching run takes its time).
    #[serde(default = "default_slow_statement_ms")]
    pub slow_statement_ms: u64,
}

fn default_busy_timeout_ms() -> u64 {
    30_000
}
fn default_slow_statement_ms() -> u64 {
    1_000
}

impl StorageConfig {
    /// How [`crate::store::Store`] opens this database.
    pub fn open_options(&self) -> crate::store::OpenOptions {
        crate::store::OpenOptions {
            busy_timeout: std::time::Duration::from_millis(self.busy_timeout_ms),
            slow_statement: std::time::Duration::from_millis(self.slow_statement_ms),
        }
    }
}

fn default_db_url() -> String {
    "sqlite://var/billrecon.db".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("var")
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            database_url: default_db_url(),
            data_dir: default_data_dir(),
            busy_timeout_ms: default_busy_timeout_ms(),
            slow_statement_ms: default_slow_statement_ms(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// The utility's billing currency. A payment in another currency is an exception.
    #[serde(default = "default_currency")]
    pub currency: Currency,
}

fn default_currency() -> Currency {
    Currency::CNY
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            currency: default_currency(),
        }
    }
}

/// The billing system's exports, imported by the daemon on each cycle when configured
/// (an import of an unchanged file is a no-op).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingConfig {
    pub customers_file: Option<PathBuf>,
    pub bills_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// The time zone schedules are read in (IANA name, e.g. `Asia/Shanghai`).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The schedule of banks that set none (cron with seconds: `sec min hour dom month dow`).
    #[serde(default = "default_schedule")]
    pub default_schedule: String,
    /// When the billing exports are imported again (cron with seconds).
    #[serde(default = "default_billing_schedule")]
    pub billing_schedule: String,
    /// The HTTP address of /healthz, /readyz and /metrics; `""` turns HTTP off.
    #[serde(default = "default_http_addr")]
    pub http_addr: String,
    /// After SIGTERM/SIGINT, how long work in hand may take before it is rolled back.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// A bank is reported unhealthy after this many failed runs in a row.
    #[serde(default = "default_unhealthy_after")]
    pub unhealthy_after: u32,
    /// Serve HTTPS on `http_addr` with this certificate chain and key (PEM) ...
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// ... and accept client certificates signed by this CA (mutual TLS for partner banks
    /// that name theirs).
    pub client_ca: Option<PathBuf>,
    /// Behind a reverse proxy: the header whose last address is the client's (e.g.
    /// `X-Forwarded-For`, as the proxy appends it), for the limits on failed logins and
    /// invalid partner tokens. Empty (default): the TCP peer's address. Set it only when every
    /// request comes through that proxy (anyone else could write the header).
    #[serde(default)]
    pub client_address_header: String,
    /// `/metrics` on its own address (e.g. `127.0.0.1:9464`, for a Prometheus that scrapes
    /// locally or through a firewall rule) instead of `http_addr`. Empty (default): on
    /// `http_addr`, as `/healthz` and `/readyz`.
    #[serde(default)]
    pub metrics_addr: String,
    /// `/metrics` answers only `Authorization: Bearer TOKEN` with the token in this file ...
    pub metrics_token_file: Option<PathBuf>,
    /// ... or in this environment variable. Neither (default): no token asked.
    pub metrics_token_env: Option<String>,
}

fn default_time_zone() -> String {
    "UTC".into()
}
fn default_schedule() -> String {
    "0 */15 * * * *".into()
}
fn default_billing_schedule() -> String {
    "0 */10 * * * *".into()
}
fn default_http_addr() -> String {
    "127.0.0.1:8080".into()
}
fn default_shutdown_timeout() -> u64 {
    30
}
fn default_unhealthy_after() -> u32 {
    3
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            time_zone: default_time_zone(),
            default_schedule: default_schedule(),
            billing_schedule: default_billing_schedule(),
            http_addr: default_http_addr(),
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            client_address_header: String::new(),
            metrics_addr: String::new(),
            metrics_token_file: None,
            metrics_token_env: None,
            shutdown_timeout_secs: default_shutdown_timeout(),
            unhealthy_after: default_unhealthy_after(),
        }
    }
}

impl DaemonConfig {
    /// The configured time zone (validated when the config is loaded).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// The bearer token `/metrics` asks for, when one is configured.
    pub fn metrics_token(&self) -> Result<Option<String>, String> {
        read_secret(
            &self.metrics_token_file,
            &self.metrics_token_env,
            "daemon.metrics token",
        )
    }
}

fn header_name_ok(name: &str) -> Option<()> {
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(())
}

/// Parses a cron expression (six or seven fields: seconds first).
pub fn parse_schedule(expr: &str) -> Result<cron::Schedule, String> {
    use std::str::FromStr;
    cron::Schedule::from_str(expr).map_err(|e| {
        format!(
            "`{expr}` is not a cron schedule (sec min hour day-of-month month day-of-week): {e}"
        )
    })
}

/// The exceptions workbench: limits of what people may resolve, and escalation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionsConfig {
    /// An exception still open after this many hours is escalated (flagged, and a notice to
    /// the supervisor goes through the outbox). 0: never.
    #[serde(default = "default_escalate_after_hours")]
    pub escalate_after_hours: u32,
    /// The largest difference a supervisor may write off (in the ledger currency).
    #[serde(default = "default_write_off_limit")]
    pub write_off_limit: rust_decimal::Decimal,
    /// Refunds above this amount need a second person, a supervisor, to approve them.
    #[serde(default = "default_refund_approval_limit")]
    pub refund_approval_limit: rust_decimal::Decimal,
    /// Where escalation notices go (an e-mail address or a messaging handle of the
    /// supervisors' desk); empty: escalations are flagged but no notice is queued.
    #[serde(default)]
    pub supervisor_contact: String,
    /// Hours a web-login session lasts.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
}

fn default_escalate_after_hours() -> u32 {
    24
}
fn default_write_off_limit() -> rust_decimal::Decimal {
    rust_decimal::Decimal::new(100, 2)
}
fn default_refund_approval_limit() -> rust_decimal::Decimal {
    rust_decimal::Decimal::new(500000, 2)
}
fn default_session_hours() -> u32 {
    12
}

impl Default for ExceptionsConfig {
    fn default() -> Self {
        ExceptionsConfig {
            escalate_after_hours: default_escalate_after_hours(),
            write_off_limit: default_write_off_limit(),
            refund_approval_limit: default_refund_approval_limit(),
            supervisor_contact: String::new(),
            session_hours: default_session_hours(),
        }
    }
}

/// A bank's narrow rule for resolving exceptions without a person: a suggestion is applied
/// only when it is the only one whose amount equals the open balance of a bill exactly and
/// whose account holder's name resembles the payer's at least this much.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoResolve {
    /// 0.0 to 1.0 (1.0: the same name after normalization).
    pub min_name_similarity: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// Where `billrecon publish` and the daemon write the day's reports (DIR/YYYY/MM/DD).
    #[serde(default = "default_reports_dir")]
    pub dir: PathBuf,
    /// When the daemon publishes the previous day's reports (cron with seconds); `""` never.
    #[serde(default = "default_publish_schedule")]
    pub publish_schedule: String,
    /// Headings of the HTML and XLSX reports: `zh` or `en`.
    #[serde(default = "default_reports_language")]
    pub language: String,
    /// Endpoints each published day's files are also POSTed to (`[[reports.post]]`).
    #[serde(default)]
    pub post: Vec<ReportPost>,
    /// Reports generated on their own schedule as well (report name -> cron with seconds,
    /// in `daemon.time_zone`), e.g. `exceptions = "0 0 * * * *"` for an hourly exceptions
    /// report; each writes into its day's folder beside the others and updates the manifest.
    #[serde(default)]
    pub schedules: std::collections::BTreeMap<String, String>,
}

/// An endpoint that receives the published reports: one POST per file (the file as the body,
/// `X-Billrecon-Report`, `-Date`, `-File` and `-Sha256` headers), the manifest last.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportPost {
    /// `https://...` (plain `http://` only on loopback).
    pub url: String,
    /// Bearer token: the content of this file (trimmed) ...
    pub token_file: Option<PathBuf>,
    /// ... or of this environment variable.
    pub token_env: Option<String>,
    /// Which forms to send: csv, json, html, xlsx (default json).
    #[serde(default = "default_post_formats")]
    pub formats: Vec<String>,
    /// Which reports (by name, e.g. daily-settlement); empty: all.
    #[serde(default)]
    pub reports: Vec<String>,
}

fn default_post_formats() -> Vec<String> {
    vec!["json".into()]
}

impl ReportPost {
    pub fn token(&self) -> Result<Option<String>, String> {
        read_secret(&self.token_file, &self.token_env, "reports.post token")
    }
}

fn default_reports_language() -> String {
    "zh".into()
}

fn default_reports_dir() -> PathBuf {
    "var/reports".into()
}
fn default_publish_schedule() -> String {
    "0 30 6 * * *".into()
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            dir: default_reports_dir(),
            publish_schedule: default_publish_schedule(),
            language: default_reports_language(),
            post: vec![],
            schedules: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchingConfig {
    /// From this many pending payments on, a matching run first reads every open bill and
    /// account into memory (about 200 bytes per bill) instead of looking bills up batch by
    /// batch: much faster for a backlog, pointless for the daemon's everyday handful.
    #[serde(default = "default_preload_from")]
    pub preload_from: i64,
    /// In what order a payment's money settles what a bill owes (see README "Allocation
    /// order"): `fee_first` (default: each bill's late fee, then its principal, oldest bill
    /// first), `principal_first` (each bill's principal, then its fee), `principals_then_fees`
    /// (every bill's principal oldest first, then the fees).
    #[serde(default)]
    pub allocation_order: AllocationOrder,
}

/// The order in which a payment settles late fees and principal (`[matching]
/// allocation_order`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AllocationOrder {
    /// Bill by bill: the bill's late fee (owed, and the one its late principal accrues), then
    /// its principal.
    #[default]
    FeeFirst,
    /// Bill by bill: the principal, then the bill's late fee.
    PrincipalFirst,
    /// Every bill's principal first (in bill order), then the late fees.
    PrincipalsThenFees,
}

fn default_preload_from() -> i64 {
    20_000
}

impl Default for MatchingConfig {
    fn default() -> Self {
        MatchingConfig {
            preload_from: default_preload_from(),
            allocation_order: AllocationOrder::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (human-readable) or `json` (one JSON object a line).
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A tracing filter such as `info` or `billrecon=debug`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn default_log_format() -> String {
    "text".into()
}
fn default_log_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankConfig {
    /// Short stable id (letters, digits, `_`, `-`); stored with every payment.
    pub id: String,
    pub name: String,
    /// `camt052`, `camt053`, `camt054` or `auto` (sniffed from the content).
    #[serde(default = "default_format")]
    pub format: String,
    /// Regular expressions for banks that write the reference their own way. Capture group 1
    /// (or the whole match) is a candidate bill id or account number.
    #[serde(default)]
    pub reference_patterns: Vec<String>,
    /// When to pull (cron with seconds, in `daemon.time_zone`); `daemon.default_schedule`
    /// when absent.
    pub schedule: Option<String>,
    /// The layout of a `text` format bank's files (delimited or fixed-width).
    pub layout: Option<TextLayout>,
    pub source: Option<SourceConfig>,
    /// Resolve this bank's exceptions without a person when a suggestion is this certain
    /// (absent: never).
    pub auto_resolve: Option<AutoResolve>,
    /// The partner API for this bank (absent: the bank cannot use it).
    pub partner: Option<PartnerConfig>,
    /// This source delivers the utility's own account statements (from its settlement
    /// bank), not customer payments: its lines are the partner banks' settlement transfers,
    /// checked against each bank's day (status `transfer`), never applied to bills.
    #[serde(default)]
    pub own_account: bool,
    /// What a failed check of the bank's files does: `strict` (the default) quarantines the
    /// file; `warn` ingests it and stores each finding (shown in `banks status`, the daily
    /// settlement report and `/metrics`).
    #[serde(default)]
    pub checks: ChecksPolicy,
}

/// A bank's policy for files whose declared totals do not hold (see `formats::check`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksPolicy {
    /// A failed check of severity `error` quarantines the file (nothing of it is stored).
    #[default]
    Strict,
    /// The file is ingested; every failed check is stored as a finding.
    Warn,
}

impl ChecksPolicy {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChecksPolicy::Strict => "strict",
            ChecksPolicy::Warn => "warn",
        }
    }
}

/// A bank on the partner API (`/partner/v1`): its business day, request signing, rate limit,
/// and how its settlement transfer is checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// The business day's cut-off, `HH:MM` in `daemon.time_zone`: a payment after it belongs
    /// to the next day, and a same-day reversal (冲正) is accepted only before it.
    #[serde(default = "default_cutoff")]
    pub cutoff: String,
    /// Require every request to be signed (HMAC-SHA256 over method, path, timestamp and body)
    /// with the secret in this file ...
    pub signing_secret_file: Option<PathBuf>,
    /// ... or in this environment variable.
    pub signing_secret_env: Option<String>,
    /// A signed request's timestamp may be this far from the server's clock, and its
    /// signature is not accepted twice within it.
    #[serde(default = "default_replay_window")]
    pub replay_window_secs: u64,
    /// Requests per second the bank may make (sustained), and the burst above it.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_sec: u32,
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Fees the bank deducts from its settlement transfer: per payment, and a rate of the
    /// collected amount (e.g. 0.001 = 0.1 %).
    #[serde(default)]
    pub fee_per_payment: rust_decimal::Decimal,
    #[serde(default)]
    pub fee_rate: rust_decimal::Decimal,
    /// Business days after the business day by which the transfer must have arrived.
    #[serde(default = "default_settlement_days")]
    pub settlement_days: u32,
    /// How the transfer is recognized on the utility's own statement: the payer name or
    /// reference contains this text (e.g. the bank's name or its settlement account).
    #[serde(default)]
    pub settlement_match: String,
    /// The reconciliation result to return to the bank as a file in its own layout.
    pub return_file: Option<ReturnFile>,
    /// Mutual TLS: the SHA-256 (hex) of the client certificate the bank must present
    /// (needs `daemon.tls_cert`, `tls_key` and `client_ca`).
    pub client_cert_sha256: Option<String>,
}

/// The file returned to a bank after its day was compared: a header line with the day's
/// totals, one line per discrepancy (or per posting, with `all_lines`), a trailer with the
/// count. Written atomically to `dir` as `{bank}_{YYYYMMDD}_recon.txt` (re-written when the
/// day is compared again).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnFile {
    pub dir: PathBuf,
    /// Field separator (default `|`).
    #[serde(default = "default_return_delimiter")]
    pub delimiter: String,
    /// `utf-8` (default), `gbk` or `gb18030`.
    #[serde(default = "default_return_encoding")]
    pub encoding: String,
    /// The detail lines' fields, in order, from: business_date, bank_txn_id, category,
    /// realtime_amount, file_amount, currency, detail.
    #[serde(default = "default_return_columns")]
    pub columns: Vec<String>,
}

pub const RETURN_COLUMNS: &[&str] = &[
    "business_date",
    "bank_txn_id",
    "category",
    "realtime_amount",
    "file_amount",
    "currency",
    "detail",
];

fn default_return_delimiter() -> String {
    "|".into()
}
fn default_return_encoding() -> String {
    "utf-8".into()
}
fn default_return_columns() -> Vec<String> {
    ["bank_txn_id", "category", "realtime_amount", "file_amount"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn default_cutoff() -> String {
    "17:00".into()
}
fn default_replay_window() -> u64 {
    300
}
fn default_rate_limit() -> u32 {
    50
}
fn default_burst() -> u32 {
    200
}
fn default_settlement_days() -> u32 {
    1
}

impl PartnerConfig {
    /// The cut-off as a time of day.
    pub fn cutoff_time(&self) -> Result<chrono::NaiveTime, String> {
        chrono::NaiveTime::parse_from_str(&self.cutoff, "%H:%M")
            .map_err(|_| format!("cutoff `{}`: expected HH:MM", self.cutoff))
    }

    /// The signing secret, when signing is required.
    pub fn signing_secret(&self) -> Result<Option<String>, String> {
        read_secret(
            &self.signing_secret_file,
            &self.signing_secret_env,
            "partner signing secret",
        )
    }
}

fn default_format() -> String {
    "auto".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// An inbox folder filled by the bank's SFTP drop.
    Directory {
        path: PathBuf,
        /// `move` (default): ingested files go to the archive and leave the inbox;
        /// `keep`: files stay (re-reads are recognized by SHA-256 and ignored).
        #[serde(default)]
        after_ingest: AfterIngest,
        /// Take `FILE` only once `FILE.done` exists (instead of once its size is stable).
        #[serde(default)]
        done_marker: bool,
    },
    /// The bank's file service: `GET {base_url}/files?since=CURSOR`, `GET {base_url}/files/{name}`.
    Https(HttpsSource),
}

/// An HTTPS pull source. Secrets come from files or environment variables, never from this
/// file, and are never logged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsSource {
    pub base_url: String,
    /// Bearer token: the content of this file (trimmed) ...
    pub token_file: Option<PathBuf>,
    /// ... or of this environment variable.
    pub token_env: Option<String>,
    /// HTTP basic auth user; the password from `password_file` or `password_env`.
    pub basic_user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// Client certificate and private key (one PEM file) for mutual TLS.
    pub client_identity: Option<PathBuf>,
    /// Extra trusted CA certificate(s) (PEM), e.g. the bank's private CA.
    pub ca_cert: Option<PathBuf>,
    /// Seconds before a request is abandoned (connect and whole response).
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
    /// Retries of a failed request within one run (timeouts, 5xx, 429, connection errors),
    /// with exponential backoff and jitter.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First backoff delay in milliseconds (doubled on each retry).
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
}

fn default_http_timeout() -> u64 {
    60
}
fn default_retries() -> u32 {
    4
}
fn default_backoff_ms() -> u64 {
    500
}

/// How a request authenticates, with the secret already read.
#[derive(Clone)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
        }
    }
}

fn read_secret(
    file: &Option<PathBuf>,
    env: &Option<String>,
    what: &str,
) -> Result<Option<String>, String> {
    match (file, env) {
        (Some(_), Some(_)) => Err(format!(
            "{what}: set a file or an environment variable, not both"
        )),
        (Some(f), None) => std::fs::read_to_string(f)
            .map(|s| Some(s.trim().to_string()))
            .map_err(|e| format!("{what}: cannot read secrets file {}: {e}", f.display())),
        (None, Some(v)) => std::env::var(v)
            .map(|s| Some(s.trim().to_string()))
            .map_err(|_| format!("{what}: environment variable {v} is not set")),
        (None, None) => Ok(None),
    }
    .and_then(|s| match s {
        Some(s) if s.is_empty() => Err(format!("{what} is empty")),
        s => Ok(s),
    })
}

impl HttpsSource {
    /// Reads the secrets this source names. Errors name the file or variable, never a value.
    pub fn auth(&self) -> Result<Auth, String> {
        let token = read_secret(&self.token_file, &self.token_env, "bearer token")?;
        let password = read_secret(
            &self.password_file,
            &self.password_env,
            "basic auth password",
        )?;
        match (token, &self.basic_user, password) {
            (Some(_), Some(_), _) => Err("set a bearer token or basic auth, not both".into()),
            (Some(t), None, None) => Ok(Auth::Bearer(t)),
            (Some(_), None, Some(_)) => Err("a password is set without basic_user".into()),
            (None, Some(u), Some(p)) => Ok(Auth::Basic {
                user: u.clone(),
                password: p,
            }),
            (None, Some(_), None) => Err("basic_user needs password_file or password_env".into()),
            (None, None, Some(_)) => Err("a password is set without basic_user".into()),
            (None, None, None) => Ok(Auth::None),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.base_url)
            .map_err(|e| format!("base_url `{}`: {e}", self.base_url))?;
        if !["https", "http"].contains(&url.scheme()) {
            return Err(format!(
                "base_url `{}` must be https:// (or http:// on loopback)",
                self.base_url
            ));
        }
        if url.scheme() == "http"
            && !matches!(
                url.host_str(),
                Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
            )
        {
            return Err(format!(
                "base_url `{}`: plain http is allowed only on loopback (the bank simulator)",
                self.base_url
            ));
        }
        self.auth()?;
        for (what, f) in [
            ("client_identity", &self.client_identity),
            ("ca_cert", &self.ca_cert),
        ] {
            if let Some(f) = f {
                std::fs::metadata(f).map_err(|e| format!("{what} {}: {e}", f.display()))?;
            }
        }
        if self.timeout_secs == 0 {
            return Err("timeout_secs must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AfterIngest {
    #[default]
    Move,
    Keep,
}

/// A bank's settings in the form the code uses: validated and compiled.
#[derive(Debug, Clone)]
pub struct Bank {
    pub id: String,
    pub name: String,
    pub format: Option<Format>,
    pub reference_patterns: Vec<Regex>,
    pub schedule: cron::Schedule,
    pub layout: Option<std::sync::Arc<TextLayout>>,
    pub source: Option<SourceConfig>,
    pub auto_resolve: Option<AutoResolve>,
    pub partner: Option<PartnerConfig>,
    pub own_account: bool,
    pub checks: ChecksPolicy,
}

impl Config {
    /// Reads and validates the config at `path`, then applies `BILLRECON_DATABASE_URL` and
    /// `BILLRECON_DATA_DIR` when set.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut cfg = Config::from_toml(&text, &path.display().to_string())?;
        if let Ok(url) = std::env::var("BILLRECON_DATABASE_URL") {
            cfg.storage.database_url = url;
        }
        if let Ok(dir) = std::env::var("BILLRECON_DATA_DIR") {
            cfg.storage.data_dir = PathBuf::from(dir);
        }
        Ok(cfg)
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::Invalid {
            path: origin.to_string(),
            message,
        };
        if !(self.storage.database_url.starts_with("sqlite:")
            || self.storage.database_url.starts_with("postgres://")
            || self.storage.database_url.starts_with("postgresql://"))
        {
            return Err(bad(
                "storage.database_url must start with sqlite: or postgres://".into(),
            ));
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(bad(format!(
                "log.format is `{}`; use `text` or `json`",
                self.log.format
            )));
        }
        self.daemon
            .time_zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| {
                bad(format!(
                    "daemon.time_zone `{}` is not an IANA time zone",
                    self.daemon.time_zone
                ))
            })?;
        parse_schedule(&self.daemon.default_schedule)
            .map_err(|e| bad(format!("daemon.default_schedule: {e}")))?;
        parse_schedule(&self.daemon.billing_schedule)
            .map_err(|e| bad(format!("daemon.billing_schedule: {e}")))?;
        if !self.daemon.http_addr.is_empty() {
            self.daemon
                .http_addr
                .parse::<std::net::SocketAddr>()
                .map_err(|e| bad(format!("daemon.http_addr `{}`: {e}", self.daemon.http_addr)))?;
        }
        if !self.daemon.metrics_addr.is_empty() {
            self.daemon
                .metrics_addr
                .parse::<std::net::SocketAddr>()
                .map_err(|e| {
                    bad(format!(
                        "daemon.metrics_addr `{}`: {e}",
                        self.daemon.metrics_addr
                    ))
                })?;
            if self.daemon.metrics_addr == self.daemon.http_addr {
                return Err(bad(
                    "daemon.metrics_addr is daemon.http_addr: leave it empty to serve /metrics there"
                        .into(),
                ));
            }
        }
        if !self.daemon.client_address_header.is_empty()
            && header_name_ok(&self.daemon.client_address_header).is_none()
        {
            return Err(bad(format!(
                "daemon.client_address_header `{}` is not a header name",
                self.daemon.client_address_header
            )));
        }
        if !["zh", "en"].contains(&self.reports.language.as_str()) {
            return Err(bad(format!(
                "reports.language `{}`: use zh or en",
                self.reports.language
            )));
        }
        for (name, cron) in &self.reports.schedules {
            if !ReportKind::ALL.iter().any(|k| k.name() == name) {
                return Err(bad(format!(
                    "reports.schedules: `{name}` is not a report ({})",
                    ReportKind::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            parse_schedule(cron).map_err(|e| bad(format!("reports.schedules.{name}: {e}")))?;
        }
        for p in &self.reports.post {
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|l| p.url.starts_with(l));
            if !(p.url.starts_with("https://") || loopback) {
                return Err(bad(format!(
                    "reports.post url `{}`: https:// (plain http only on loopback)",
                    p.url
                )));
            }
            if let Some(f) = p
                .formats
                .iter()
                .find(|f| !["csv", "json", "html", "xlsx"].contains(&f.as_str()))
            {
                return Err(bad(format!(
                    "reports.post format `{f}`: csv, json, html or xlsx"
                )));
            }
        }
        match (&self.daemon.tls_cert, &self.daemon.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(bad("daemon.tls_cert and daemon.tls_key go together".into()))
            }
            (None, None) if self.daemon.client_ca.is_some() => {
                return Err(bad(
                    "daemon.client_ca needs daemon.tls_cert and tls_key (HTTPS)".into(),
                ))
            }
            _ => {}
        }
        if let Some(b) = self.banks.iter().find(|b| {
            b.partner
                .as_ref()
                .is_some_and(|p| p.client_cert_sha256.is_some())
        }) {
            if self.daemon.client_ca.is_none() {
                return Err(bad(format!(
                    "bank `{}`: partner.client_cert_sha256 needs daemon.client_ca (mutual TLS)",
                    b.id
                )));
            }
        }
        if !self.reports.publish_schedule.is_empty() {
            parse_schedule(&self.reports.publish_schedule)
                .map_err(|e| bad(format!("reports.publish_schedule: {e}")))?;
        }
        self.dunning
            .validate()
            .map_err(|e| bad(format!("dunning: {e}")))?;
        let x = &self.exceptions;
        if x.write_off_limit < rust_decimal::Decimal::ZERO
            || x.refund_approval_limit < rust_decimal::Decimal::ZERO
        {
            return Err(bad(
                "exceptions.write_off_limit and refund_approval_limit must not be negative".into(),
            ));
        }
        if x.session_hours == 0 {
            return Err(bad("exceptions.session_hours must be at least 1".into()));
        }
        if self.daemon.unhealthy_after == 0 {
            return Err(bad("daemon.unhealthy_after must be at least 1".into()));
        }
        let mut ids = HashSet::new();
        for b in &self.banks {
            if b.id.is_empty()
                || b.id.len() > 32
                || !b
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(bad(format!(
                    "bank id `{}` must be 1-32 letters, digits, `_` or `-`",
                    b.id
                )));
            }
            if !ids.insert(b.id.as_str()) {
                return Err(bad(format!("bank id `{}` appears twice", b.id)));
            }
            let format =
                Format::parse(&b.format).map_err(|e| bad(format!("bank `{}`: {e}", b.id)))?;
            match (&b.layout, format) {
                (None, Some(Format::Text)) => {
                    return Err(bad(format!(
                        "bank `{}`: format `text` needs a [bank.layout] table",
                        b.id
                    )))
                }
                (Some(_), f) if f != Some(Format::Text) => {
                    return Err(bad(format!(
                        "bank `{}`: a layout is only for format `text`",
                        b.id
                    )))
                }
                (Some(l), _) => l
                    .validate()
                    .map_err(|e| bad(format!("bank `{}`: layout: {e}", b.id)))?,
                _ => {}
            }
            for p in &b.reference_patterns {
                Regex::new(p)
                    .map_err(|e| bad(format!("bank `{}`: reference pattern `{p}`: {e}", b.id)))?;
            }
            if let Some(p) = &b.partner {
                p.cutoff_time()
                    .map_err(|e| bad(format!("bank `{}`: partner: {e}", b.id)))?;
                if let Some(r) = &p.return_file {
                    if let Some(c) = r
                        .columns
                        .iter()
                        .find(|c| !RETURN_COLUMNS.contains(&c.as_str()))
                    {
                        return Err(bad(format!(
                            "bank `{}`: partner.return_file column `{c}` is not one of {}",
                            b.id,
                            RETURN_COLUMNS.join(", ")
                        )));
                    }
                    if !["utf-8", "gbk", "gb18030"].contains(&r.encoding.as_str()) {
                        return Err(bad(format!(
                            "bank `{}`: partner.return_file encoding `{}`: utf-8, gbk or gb18030",
                            b.id, r.encoding
                        )));
                    }
                    if r.delimiter.is_empty() {
                        return Err(bad(format!(
                            "bank `{}`: partner.return_file delimiter is empty",
                            b.id
                        )));
                    }
                }
                p.signing_secret()
                    .map_err(|e| bad(format!("bank `{}`: partner: {e}", b.id)))?;
                if p.rate_limit_per_sec == 0 || p.burst == 0 {
                    return Err(bad(format!(
                        "bank `{}`: partner.rate_limit_per_sec and burst must be at least 1",
                        b.id
                    )));
                }
                if p.fee_per_payment < rust_decimal::Decimal::ZERO
                    || p.fee_rate < rust_decimal::Decimal::ZERO
                    || p.fee_rate >= rust_decimal::Decimal::ONE
                {
                    return Err(bad(format!(
                        "bank `{}`: partner fees must be >= 0 and fee_rate below 1",
                        b.id
                    )));
                }
            }
            if let Some(a) = &b.auto_resolve {
                if !(0.5..=1.0).contains(&a.min_name_similarity) {
                    return Err(bad(format!(
                        "bank `{}`: auto_resolve.min_name_similarity must be between 0.5 and 1.0",
                        b.id
                    )));
                }
            }
            if let Some(s) = &b.schedule {
                parse_schedule(s).map_err(|e| bad(format!("bank `{}`: schedule: {e}", b.id)))?;
            }
            if let Some(SourceConfig::Https(h)) = &b.source {
                h.validate()
                    .map_err(|e| bad(format!("bank `{}`: source: {e}", b.id)))?;
            }
        }
        Ok(())
    }

    /// The validated, compiled banks.
    pub fn banks(&self) -> Vec<Bank> {
        self.banks
            .iter()
            .map(|b| Bank {
                id: b.id.clone(),
                name: b.name.clone(),
                // validated in `validate`
                format: Format::parse(&b.format).ok().flatten(),
                reference_patterns: b
                    .reference_patterns
                    .iter()
                    .filter_map(|p| Regex::new(p).ok())
                    .collect(),
                // validated in `validate`
                schedule: parse_schedule(
                    b.schedule
                        .as_deref()
                        .unwrap_or(&self.daemon.default_schedule),
                )
                .or_else(|_| parse_schedule(&default_schedule()))
                .expect("the built-in default schedule parses"),
                layout: b.layout.clone().map(std::sync::Arc::new),
                source: b.source.clone(),
                auto_resolve: b.auto_resolve.clone(),
                partner: b.partner.clone(),
                own_account: b.own_account,
                checks: b.checks,
            })
            .collect()
    }

    pub fn bank(&self, id: &str) -> Option<Bank> {
        self.banks().into_iter().find(|b| b.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/billrecon.toml");
        let cfg = Config::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap();
        assert!(cfg.storage.database_url.starts_with("sqlite:"));
        assert!(!cfg.banks.is_empty());
        assert_eq!(cfg.banks().len(), cfg.banks.len());
        // the example's late fees are the built-in ones (the supply rules')
        for class in [
            "residential",
            "commercial",
            "industrial",
            "large_industrial",
            "agricultural",
        ] {
            assert_eq!(
                cfg.dunning.for_class(class).late_fee,
                dunning::LateFeeRule::builtin(class),
                "{class}"
            );
        }
    }

    #[test]
    fn defaults_apply_to_an_empty_file() {
        let cfg = Config::from_toml("", "empty").unwrap();
        assert_eq!(cfg.storage.database_url, "sqlite://var/billrecon.db");
        assert_eq!(cfg.ledger.currency, Currency::CNY);
        assert!(cfg.banks.is_empty());
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = Config::from_toml("[storage]\ndatabse_url = \"x\"\n", "t.toml").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("t.toml") && msg.contains("databse_url"),
            "{msg}"
        );
    }

    #[test]
    fn bad_banks_are_rejected() {
        let dup = "[[bank]]\nid='A'\nname='a'\n[[bank]]\nid='A'\nname='b'\n";
        assert!(Config::from_toml(dup, "t")
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let fmt = "[[bank]]\nid='A'\nname='a'\nformat='mt999'\n";
        assert!(Config::from_toml(fmt, "t")
            .unwrap_err()
            .to_string()
            .contains("mt999"));
        let re = "[[bank]]\nid='A'\nname='a'\nreference_patterns=['(']\n";
        assert!(Config::from_toml(re, "t")
            .unwrap_err()
            .to_string()
            .contains("pattern"));
        let cur = "[ledger]\ncurrency='yuan'\n";
        assert!(Config::from_toml(cur, "t").is_err());
    }

    fn err(toml: &str) -> String {
        Config::from_toml(toml, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn schedules_time_zones_and_addresses_are_checked() {
        let e = err("[[bank]]\nid='A'\nname='a'\nschedule='every minute'\n");
        assert!(e.contains("bank `A`") && e.contains("every minute"), "{e}");
        assert!(err("[daemon]\ntime_zone='Mars/Olympus'\n").contains("Mars/Olympus"));
        assert!(err("[daemon]\nhttp_addr='localhost'\n").contains("http_addr"));
        let ok = Config::from_toml(
            "[daemon]\ntime_zone='Asia/Shanghai'\n[[bank]]\nid='A'\nname='a'\nschedule='0 */15 8-18 * * Mon-Fri'\n",
            "t",
        )
        .unwrap();
        assert_eq!(ok.daemon.tz(), chrono_tz::Asia::Shanghai);
        assert!(ok.banks()[0]
            .schedule
            .upcoming(ok.daemon.tz())
            .next()
            .is_some());
    }

    #[test]
    fn https_secrets_must_exist_and_are_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.token");
        let e = err(&format!(
            "[[bank]]\nid='A'\nname='a'\nsource={{kind='https', base_url='https://bank.example/api', token_file='{}'}}\n",
            missing.display()
        ));
        assert!(
            e.contains("nope.token") && e.contains("secrets file"),
            "{e}"
        );
        let token = dir.path().join("bank.token");
        std::fs::write(&token, "s3cr3t-value\n").unwrap();
        let cfg = Config::from_toml(
            &format!(
                "[[bank]]\nid='A'\nname='a'\nsource={{kind='https', base_url='https://bank.example/api', token_file='{}'}}\n",
                token.display()
            ),
            "t",
        )
        .unwrap();
        let Some(SourceConfig::Https(h)) = &cfg.banks[0].source else {
            panic!()
        };
        let auth = h.auth().unwrap();
        assert!(matches!(&auth, Auth::Bearer(t) if t == "s3cr3t-value"));
        assert!(!format!("{auth:?}").contains("s3cr3t"));
        let e = err("[[bank]]\nid='A'\nname='a'\nsource={kind='https', base_url='https://b.example', token_env='BILLRECON_TEST_UNSET_VAR'}\n");
        assert!(e.contains("BILLRECON_TEST_UNSET_VAR"), "{e}");
        let e = err(
            "[[bank]]\nid='A'\nname='a'\nsource={kind='https', base_url='http://bank.example'}\n",
        );
        assert!(e.contains("loopback"), "{e}");
        let e = err("[[bank]]\nid='A'\nname='a'\nsource={kind='https', base_url='https://b.example', basic_user='u'}\n");
        assert!(e.contains("password"), "{e}");
    }
}
