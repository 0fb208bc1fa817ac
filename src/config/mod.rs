//! Configuration: one typed struct read from a TOML file, overridden by `BILLRECON_*`
//! environment variables, validated before anything starts.
//!
//! The commented example `config/billrecon.toml` documents every key. Unknown keys are errors
//! (a typo must not silently fall back to a default). Relative paths are relative to the
//! working directory the daemon runs in.

use crate::domain::Currency;
use crate::formats::Format;
use regex::Regex;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where the config is looked for when `--config` and `BILLRECON_CONFIG` are absent.
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
    /// Seconds between two looks at the inbox directories.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
}

fn default_poll() -> u64 {
    30
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            poll_interval_secs: default_poll(),
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
}

fn default_preload_from() -> i64 {
    20_000
}

impl Default for MatchingConfig {
    fn default() -> Self {
        MatchingConfig {
            preload_from: default_preload_from(),
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
    pub source: Option<SourceConfig>,
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
    },
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
    pub source: Option<SourceConfig>,
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
        if self.daemon.poll_interval_secs == 0 {
            return Err(bad("daemon.poll_interval_secs must be at least 1".into()));
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
            Format::parse(&b.format).map_err(|e| bad(format!("bank `{}`: {e}", b.id)))?;
            for p in &b.reference_patterns {
                Regex::new(p)
                    .map_err(|e| bad(format!("bank `{}`: reference pattern `{p}`: {e}", b.id)))?;
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
                source: b.source.clone(),
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
}
