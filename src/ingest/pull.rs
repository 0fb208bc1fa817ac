//! One pull of one bank's source: take what is new, ingest each file (archive, parse, store:
//! one transaction per file), and report what happened. Matching runs after, in the
//! scheduler.
//!
//! - `directory`: the files of the inbox that are complete (stable size, or a `.done`
//!   marker); after ingest they leave the inbox (`move`: the bytes are in the archive; a
//!   rejected file is in quarantine with its reason) or stay (`keep`).
//! - `https`: list the files created after the stored cursor, download each to
//!   `DATA_DIR/incoming/BANK/`, check size and SHA-256 against the listing, ingest, and move
//!   the cursor past it. A file whose digest is already stored is not downloaded again.

use super::https::{HttpsClient, PullError};
use super::inbox::{self, InboxState};
use super::{ingest_file, IngestError, IngestOutcome};
use crate::config::{AfterIngest, Bank, SourceConfig};
use crate::domain::Currency;
use crate::store::runs::RunStats;
use crate::store::{self, DbContext, Store, StoreError};
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// What a source keeps between pulls.
#[derive(Default)]
pub struct SourceState {
    inbox: InboxState,
    client: Option<HttpsClient>,
    /// The first pull of a directory takes every file at rest (settle = false).
    pulled_before: bool,
}

/// Why a pull failed (the run is recorded as failed; files taken before the failure stay).
#[derive(Debug, thiserror::Error)]
pub enum PullFailure {
    #[error(transparent)]
    Bank(#[from] PullError),
    #[error("inbox {path}: {source}")]
    Inbox {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Ingest(IngestError),
}

/// What a pull needs from the application.
pub struct PullContext<'a> {
    pub store: &'a Store,
    pub data_dir: &'a Path,
    pub currency: Currency,
    pub cancel: &'a CancellationToken,
}

/// Pulls once. Stops between files when `cancel` fires (the file in hand is finished first).
pub async fn pull(
    cx: &PullContext<'_>,
    bank: &Bank,
    state: &mut SourceState,
    stats: &mut RunStats,
) -> Result<(), PullFailure> {
    let settle = std::mem::replace(&mut state.pulled_before, true);
    match &bank.source {
        None => Ok(()),
        Some(SourceConfig::Directory {
            path,
            after_ingest,
            done_marker,
        }) => {
            let ready = state
                .inbox
                .ready(path, settle, *done_marker)
                .map_err(|source| PullFailure::Inbox {
                    path: path.display().to_string(),
                    source,
                })?;
            for file in ready {
                if cx.cancel.is_cancelled() {
                    break;
                }
                let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                let res = ingest_file(cx.store, cx.data_dir, bank, &file, cx.currency).await;
                count(stats, &res, size);
                match res {
                    Ok(_) | Err(IngestError::Rejected { .. }) => {}
                    Err(e) => return Err(PullFailure::Ingest(e)),
                }
                match after_ingest {
                    AfterIngest::Move => {
                        for f in [file.clone(), inbox::marker(&file)] {
                            if let Err(e) = std::fs::remove_file(&f) {
                                if e.kind() != std::io::ErrorKind::NotFound {
                                    tracing::warn!(file = %f.display(), error = %e, "cannot remove an ingested file from the inbox");
                                }
                            }
                        }
                    }
                    AfterIngest::Keep => state.inbox.mark_handled(&file),
                }
            }
            Ok(())
        }
        Some(SourceConfig::Https(src)) => {
            if state.client.is_none() {
                state.client = Some(HttpsClient::new(src)?);
            }
            let Some(client) = state.client.as_ref() else {
                return Ok(());
            };
            let cursor = {
                let mut conn = cx.store.pool().acquire().await.op("connecting")?;
                store::runs::states(&mut conn)
                    .await?
                    .into_iter()
                    .find(|s| s.bank_id == bank.id)
                    .and_then(|s| s.cursor)
            };
            let listed = client.list(cursor.as_deref()).await?;
            let incoming = cx.data_dir.join("incoming").join(&bank.id);
            std::fs::create_dir_all(&incoming).map_err(|source| PullFailure::Inbox {
                path: incoming.display().to_string(),
                source,
            })?;
            for (i, file) in listed.iter().enumerate() {
                if cx.cancel.is_cancelled() {
                    break;
                }
                let known = {
                    let mut conn = cx.store.pool().acquire().await.op("connecting")?;
                    store::files::find_by_sha(&mut conn, &file.sha256.to_ascii_lowercase()).await?
                };
                if known.is_some() {
                    tracing::info!(bank_id = %bank.id, file = %file.name, "listed file already ingested (same SHA-256); not downloaded");
                    stats.duplicates += 1;
                } else {
                    let dest = incoming.join(&file.name);
                    let bytes = client.download(file, &dest).await?;
                    let res = ingest_file(cx.store, cx.data_dir, bank, &dest, cx.currency).await;
                    count(stats, &res, bytes);
                    let _ = std::fs::remove_file(&dest);
                    if let Err(e) = res {
                        if !matches!(e, IngestError::Rejected { .. }) {
                            return Err(PullFailure::Ingest(e));
                        }
                    }
                }
                // `since` means strictly after: the cursor may pass a created_at only once every
                // file carrying it is taken (a failure in between leaves it where it was, and
                // what was taken is recognized by digest next time).
                let last_of_its_time = listed
                    .get(i + 1)
                    .is_none_or(|next| next.created_at != file.created_at);
                if last_of_its_time {
                    let mut conn = cx.store.write_pool().acquire().await.op("connecting")?;
                    store::runs::set_cursor(&mut conn, &bank.id, &file.created_at).await?;
                }
            }
            Ok(())
        }
    }
}

fn count(stats: &mut RunStats, res: &Result<IngestOutcome, IngestError>, bytes: u64) {
    stats.bytes += bytes as i64;
    match res {
        Ok(IngestOutcome::Ingested { payments, .. }) => {
            stats.files += 1;
            stats.payments += payments;
        }
        Ok(IngestOutcome::DuplicateFile { .. }) => stats.duplicates += 1,
        Err(IngestError::Rejected { .. }) => stats.rejected += 1,
        Err(_) => {}
    }
}
