//! The application: configuration, storage and the use-cases wired together. The CLI and
//! the daemon call these; tests build one the same way.

use crate::config::{AfterIngest, Bank, Config, SourceConfig};
use crate::ingest::{self, inbox::InboxState, IngestError, IngestOutcome};
use crate::matching::{MatchSummary, Matcher};
use crate::store::{Store, StoreError};
use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
        let store = Store::open(&config.storage.database_url).await?;
        let banks = config.banks();
        let matcher = Matcher::new(config.ledger.currency, &banks)
            .with_preload_from(config.matching.preload_from);
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

    pub async fn match_pending(&self) -> Result<MatchSummary, StoreError> {
        self.matcher.run(&self.store).await
    }

    /// Imports the billing exports named in the config, if any.
    pub async fn import_billing(&self) -> anyhow::Result<()> {
        if let Some(p) = &self.config.billing.customers_file {
            let s = crate::billing::import_customers(&self.store, p).await?;
            tracing::info!(file = %p.display(), %s, "customers imported");
        }
        if let Some(p) = &self.config.billing.bills_file {
            let s = crate::billing::import_bills(&self.store, p).await?;
            tracing::info!(file = %p.display(), %s, "bills imported");
        }
        Ok(())
    }

    /// One pass over every bank's inbox directory: ingest what is ready, then match.
    pub async fn poll_inboxes(
        &self,
        state: &mut HashMap<String, InboxState>,
        settle: bool,
    ) -> anyhow::Result<MatchSummary> {
        for bank in &self.banks {
            let Some(SourceConfig::Directory { path, after_ingest, .. }) = &bank.source else {
                continue;
            };
            let st = state.entry(bank.id.clone()).or_default();
            let ready = st
                .ready(path, settle)
                .with_context(|| format!("bank {}: reading inbox {}", bank.id, path.display()))?;
            for file in ready {
                let res = ingest::ingest_file(
                    &self.store,
                    &self.config.storage.data_dir,
                    bank,
                    &file,
                    self.config.ledger.currency,
                )
                .await;
                let handled = match &res {
                    Ok(_) | Err(IngestError::Rejected { .. }) => true,
                    Err(e) => {
                        tracing::error!(bank_id = %bank.id, file = %file.display(), error = %e, "ingest failed; will retry");
                        false
                    }
                };
                if handled {
                    match after_ingest {
                        AfterIngest::Move => {
                            if let Err(e) = std::fs::remove_file(&file) {
                                tracing::warn!(file = %file.display(), error = %e, "cannot remove ingested file from the inbox");
                            }
                        }
                        AfterIngest::Keep => st.mark_handled(&file),
                    }
                }
            }
        }
        Ok(self.match_pending().await?)
    }

    /// The daemon: import billing exports, poll inboxes, match; until `shutdown` fires.
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut state = HashMap::new();
        let interval = Duration::from_secs(30);
        // The first pass takes what is already at rest in the inboxes.
        let mut settle = false;
        loop {
            if let Err(e) = self.import_billing().await {
                tracing::error!(error = format!("{e:#}"), "billing import failed");
            }
            match self.poll_inboxes(&mut state, settle).await {
                Ok(s) if s.processed > 0 => tracing::info!(%s, "cycle done"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = format!("{e:#}"), "cycle failed"),
            }
            settle = true;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
        tracing::info!("shutting down");
        self.store.close().await;
        Ok(())
    }
}

/// Resolves the config path: `--config`, else `BILLRECON_CONFIG`, else the default.
pub fn config_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("BILLRECON_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH))
}
