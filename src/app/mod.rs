//! The application: configuration, storage and the use-cases wired together. The CLI and
//! the daemon call these; tests build one the same way.

use crate::config::{Bank, Config};
use crate::ingest::{self, IngestError, IngestOutcome};
use crate::matching::{MatchSummary, Matcher};
use crate::store::{Store, StoreError};
use anyhow::Context;
use std::path::{Path, PathBuf};

pub mod state;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub banks: Vec<Bank>,
    matcher: Matcher,
}

/// What happened to one file handed to [`App::ingest_paths`].
#[derive(Debug)]
pub struct FileResult {
    pub path: PathBuf,
    pub result: Result<IngestOutcome, IngestError>,
}

impl App {
    /// Opens the database (creating and migrating it when needed) and the data directory.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        std::fs::create_dir_all(&config.storage.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.storage.data_dir.display()
            )
        })?;
        let store =
            Store::open_with(&config.storage.database_url, config.storage.open_options()).await?;
        let banks = config.banks();
        let matcher = Matcher::new(config.ledger.currency, &banks)
            .with_preload_from(config.matching.preload_from)
            .with_fees(crate::matching::FeePolicy::from_config(&config));
        Ok(App {
            config,
            store,
            banks,
            matcher,
        })
    }

    pub fn bank(&self, id: &str) -> anyhow::Result<&Bank> {
        self.banks.iter().find(|b| b.id == id).with_context(|| {
            let known: Vec<&str> = self.banks.iter().map(|b| b.id.as_str()).collect();
            format!(
                "bank `{id}` is not in the config (configured: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })
    }

    /// Ingests files from one bank in the order given, then matches. A rejected file does not
    /// stop the others.
    pub async fn ingest_paths(
        &self,
        bank: &Bank,
        paths: &[PathBuf],
    ) -> Result<(Vec<FileResult>, MatchSummary), StoreError> {
        let mut results = Vec::new();
        for p in paths {
            let result = ingest::ingest_file(
                &self.store,
                &self.config.storage.data_dir,
                bank,
                p,
                self.config.ledger.currency,
            )
            .await;
            results.push(FileResult {
                path: p.clone(),
                result,
            });
        }
        let summary = self.match_pending().await?;
        Ok((results, summary))
    }

    /// Matches every pending payment; when exceptions were raised, applies the banks'
    /// auto-rules and refreshes the queue's suggested accounts; then queues receipts for what
    /// was applied (when `dunning.receipt_channels` asks for them).
    pub async fn match_pending(&self) -> Result<MatchSummary, StoreError> {
        let before = crate::workbench::last_exception_id(&self.store).await?;
        let summary = self.matcher.run(&self.store).await?;
        // a large run (a backlog, a first load) leaves suggestions to the on-demand path:
        // each one compares references with every open bill's key
        if summary.exception > 0 && summary.processed < 20_000 {
            match crate::workbench::after_matching(&self.store, &self.config, &self.banks, before)
                .await
            {
                Ok(h) if h.auto_resolved > 0 => {
                    tracing::info!(
                        auto_resolved = h.auto_resolved,
                        "exceptions resolved by auto-rules"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "exception housekeeping failed"),
            }
        }
        // partner banks: a day whose file lines were just decided is compared with the
        // real-time postings of that day
        match crate::partner::eod::compare_due(&self.store, &self.config, &self.banks).await {
            Ok(days) => {
                for d in days {
                    tracing::info!(bank = %d.bank_id, day = %d.business_date, matched = d.matched,
                        discrepancies = d.discrepancies.len(), "end-of-day comparison");
                }
            }
            Err(e) => tracing::error!(error = %e, "end-of-day comparison failed"),
        }
        let today = chrono::Utc::now()
            .with_timezone(&self.config.daemon.tz())
            .date_naive();
        match crate::partner::eod::settle_due(&self.store, &self.banks, today).await {
            Ok(changed) => {
                for (bank, day, status) in changed {
                    tracing::info!(%bank, %day, %status, "settlement checked");
                }
            }
            Err(e) => tracing::error!(error = %e, "settlement check failed"),
        }
        if summary.processed > 0 {
            match crate::dunning::notices::queue_receipts(&self.config, &self.store).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(receipts = n, "receipts queued"),
                Err(e) => tracing::error!(error = %e, "queueing receipts failed"),
            }
            // a payment after a disconnection warning cancels it at once
            let today = chrono::Utc::now()
                .with_timezone(&self.config.daemon.tz())
                .date_naive();
            if let Err(e) =
                crate::dunning::notices::field_ops_events(&self.config, &self.store, today).await
            {
                tracing::error!(error = %e, "disconnection events failed");
            }
        }
        Ok(summary)
    }

    /// Imports the billing exports named in the config, if any.
    pub async fn import_billing(&self) -> anyhow::Result<()> {
        if let Some(p) = &self.config.billing.customers_file {
            let s = crate::billing::import_customers(&self.store, p).await?;
            tracing::info!(file = %p.display(), %s, "customers imported");
        }
        if let Some(p) = &self.config.billing.bills_file {
            let s = crate::billing::import_bills_with(
                &self.store,
                p,
                &crate::matching::FeePolicy::from_config(&self.config),
            )
            .await?;
            tracing::info!(file = %p.display(), %s, "bills imported");
        }
        Ok(())
    }
}

/// Resolves the config path: `--config`, else `BILLRECON_CONFIG`, else the default.
pub fn config_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("BILLRECON_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH))
}
