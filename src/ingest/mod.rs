//! Ingest: one bank file, one transaction.
//!
//! archive (bytes by SHA-256) -> already seen? (same digest: log the re-delivery, stop) ->
//! parse as a stream on a blocking thread -> validate (the reader checks what the file
//! declares: each failed check is a finding) -> store statements, payment lines and findings in
//! batches inside the file's transaction -> commit. A syntax error, or under the bank's
//! `checks = "strict"` policy (the default) a finding of severity `error`, rolls back
//! everything and quarantines the file (its reason record lists every finding). Under
//! `checks = "warn"` the file is ingested and each finding stored; warnings are stored under
//! either policy. Matching runs after.

pub mod archive;
pub mod https;
pub mod inbox;
pub mod pull;
pub mod quarantine;

use crate::config::{Bank, ChecksPolicy};
use crate::domain::{Currency, Entry, EntryStatus, Money, Statement};
use crate::formats::{self, Event, Finding, ParseError, Severity};
use crate::store::files::{NewFile, NewFinding, NewPayment, NewStatement};
use crate::store::{self, DbContext, Store, StoreError};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};

/// Payment lines written per INSERT statement.
const BATCH: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IngestOutcome {
    Ingested {
        file_id: i64,
        statements: i64,
        payments: i64,
        /// Failed checks stored with the file (warnings, and errors under `checks = "warn"`).
        findings: i64,
    },
    /// The same bytes were ingested before (as `file_id`); nothing was stored twice.
    DuplicateFile { file_id: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{error} (quarantined to {})", quarantined_to.display())]
    Rejected {
        error: ParseError,
        quarantined_to: PathBuf,
    },
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Ingests one file received from `bank`. The file itself is not moved or changed; callers
/// that own an inbox move it afterwards.
#[tracing::instrument(skip_all, fields(bank_id = %bank.id, file = %path.display()))]
pub async fn ingest_file(
    store: &Store,
    data_dir: &Path,
    bank: &Bank,
    path: &Path,
    default_currency: Currency,
) -> Result<IngestOutcome, IngestError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let io = |source| IngestError::Io {
        file: path.display().to_string(),
        source,
    };
    let (dd, src) = (data_dir.to_path_buf(), path.to_path_buf());
    let archived = tokio::task::spawn_blocking(move || archive::archive_file(&dd, &src))
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)?;
    ingest_archived(
        store,
        data_dir,
        bank,
        &file_name,
        archived,
        default_currency,
    )
    .await
}

/// Ingests a file already in the archive.
pub async fn ingest_archived(
    store: &Store,
    data_dir: &Path,
    bank: &Bank,
    file_name: &str,
    archived: archive::Archived,
    default_currency: Currency,
) -> Result<IngestOutcome, IngestError> {
    let _writer = store.writer().await;
    let mut tx = store.begin().await?;
    if let Some(file_id) = store::files::find_by_sha(&mut tx, &archived.sha256).await? {
        store::files::record_delivery(
            &mut tx,
            &bank.id,
            file_name,
            &archived.sha256,
            "duplicate_file",
            Some(file_id),
        )
        .await?;
        tx.commit().await.op("committing a delivery record")?;
        tracing::info!(file_id, sha256 = %archived.sha256, "file delivered again; already ingested, ignored");
        return Ok(IngestOutcome::DuplicateFile { file_id });
    }

    // Parse on a blocking thread; hand events over a bounded channel (back-pressure keeps
    // memory flat whatever the file size).
    let (send, mut recv) = tokio::sync::mpsc::channel::<Vec<Result<Event, ParseError>>>(16);
    let (apath, fname, format, layout) = (
        archived.path.clone(),
        file_name.to_string(),
        bank.format,
        bank.layout.clone(),
    );
    let parser = tokio::task::spawn_blocking(move || {
        // Events travel in chunks: one hand-off per few hundred entries, not per entry.
        // plain, .gz or .zip (recognized by content)
        match formats::compressed::open_file(format, layout, &apath, &fname) {
            Ok(events) => {
                let mut chunk = Vec::with_capacity(256);
                for ev in events {
                    let stop = ev.is_err();
                    chunk.push(ev);
                    if chunk.len() == 256 || stop {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(256));
                        if send.blocking_send(full).is_err() || stop {
                            return;
                        }
                    }
                }
                if !chunk.is_empty() {
                    let _ = send.blocking_send(chunk);
                }
            }
            Err(e) => {
                let _ = send.blocking_send(vec![Err(e)]);
            }
        }
    });

    let mut w = Writer {
        bank_id: &bank.id,
        file_name,
        default_currency,
        file_id: None,
        format: None,
        statement_row: 0,
        statement_currency: default_currency,
        statements: 0,
        payments: 0,
        batch: Vec::with_capacity(BATCH),
        in_statement: false,
        findings: Vec::new(),
    };
    let mut failure: Option<ParseError> = None;
    'events: while let Some(chunk) = recv.recv().await {
        for ev in chunk {
            let res = match ev {
                Ok(Event::Finding(f)) => {
                    if failure.is_none()
                        && bank.checks == ChecksPolicy::Strict
                        && f.severity == Severity::Error
                    {
                        failure = Some(f.to_error(file_name));
                    }
                    let seq = w.in_statement.then_some(w.statements);
                    w.findings.push((seq, f));
                    Ok(())
                }
                // after a strict failure the rest is read for its findings only
                Ok(_) if failure.is_some() => Ok(()),
                Ok(ev) => w.handle(&mut tx, ev, &archived).await,
                Err(e) => Err(WriteError::Parse(e)),
            };
            match res {
                Ok(()) => {}
                Err(WriteError::Parse(e)) => {
                    if failure.is_none() {
                        failure = Some(e);
                    }
                    break 'events;
                }
                Err(WriteError::Store(e)) => {
                    drop(recv);
                    let _ = parser.await;
                    return Err(e.into());
                }
            }
        }
    }
    drop(recv);
    let _ = parser.await;
    if failure.is_none() && w.file_id.is_none() {
        failure = Some(ParseError::new(
            file_name,
            "end of file",
            "no statement found",
        ));
    }
    if failure.is_none() {
        if let Err(e) = w.flush(&mut tx).await {
            return Err(e.into());
        }
    }
    if let Some(error) = failure {
        tx.rollback().await.op("rolling back a rejected file")?;
        let (dd, sha, ap, fname, bid) = (
            data_dir.to_path_buf(),
            archived.sha256.clone(),
            archived.path.clone(),
            file_name.to_string(),
            bank.id.clone(),
        );
        let err2 = error.clone();
        let found: Vec<Finding> = w.findings.iter().map(|(_, f)| f.clone()).collect();
        let quarantined_to = tokio::task::spawn_blocking(move || {
            quarantine::quarantine(&dd, &bid, &fname, &sha, &ap, &err2, &found)
        })
        .await
        .map_err(|e| IngestError::Io {
            file: file_name.to_string(),
            source: std::io::Error::other(e),
        })?
        .map_err(|source| IngestError::Io {
            file: file_name.to_string(),
            source,
        })?;
        tracing::warn!(location = %error.location, reason = %crate::domain::mask_accounts(&error.reason.to_string()), quarantined_to = %quarantined_to.display(), "file rejected");
        return Err(IngestError::Rejected {
            error,
            quarantined_to,
        });
    }
    let file_id = w.file_id.unwrap_or_default();
    store::files::finish_file(&mut tx, file_id, w.statements, w.payments).await?;
    let findings = w.findings.len() as i64;
    if !w.findings.is_empty() {
        for (_, f) in &w.findings {
            tracing::warn!(
                check = f.check,
                severity = f.severity.as_str(),
                location = %f.location,
                declared = %f.declared,
                computed = %f.computed,
                policy = bank.checks.as_str(),
                reason = %crate::domain::mask_accounts(&f.message),
                "file ingested with a failed check"
            );
        }
        let rows = std::mem::take(&mut w.findings)
            .into_iter()
            .map(|(seq, f)| NewFinding {
                file_id,
                bank_id: bank.id.clone(),
                statement_seq: seq,
                statement_id: f.statement,
                check: f.check.to_string(),
                severity: f.severity.as_str().to_string(),
                line: i64::try_from(f.line).unwrap_or(i64::MAX),
                location: f.location,
                declared: f.declared,
                computed: f.computed,
                message: f.message,
                policy: bank.checks.as_str().to_string(),
            })
            .collect();
        store::files::insert_findings(&mut tx, rows).await?;
    }
    store::files::record_delivery(
        &mut tx,
        &bank.id,
        file_name,
        &archived.sha256,
        "ingested",
        Some(file_id),
    )
    .await?;
    tx.commit().await.op("committing a bank file")?;
    tracing::info!(
        file_id,
        format = w.format.map(|f| f.as_str()).unwrap_or("?"),
        detected = bank.format.is_none(),
        statements = w.statements,
        payments = w.payments,
        findings,
        "file ingested"
    );
    Ok(IngestOutcome::Ingested {
        file_id,
        statements: w.statements,
        payments: w.payments,
        findings,
    })
}

enum WriteError {
    Parse(ParseError),
    Store(StoreError),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

struct Writer<'a> {
    bank_id: &'a str,
    file_name: &'a str,
    default_currency: Currency,
    file_id: Option<i64>,
    /// The format the file was read as (sniffed when the bank says `auto`).
    format: Option<formats::Format>,
    statement_row: i64,
    statement_currency: Currency,
    statements: i64,
    payments: i64,
    batch: Vec<NewPayment>,
    /// Between a `Statement` and its `StatementEnd`.
    in_statement: bool,
    /// Every finding, with the statement (its `seq`) it is about.
    findings: Vec<(Option<i64>, Finding)>,
}

impl Writer<'_> {
    async fn handle(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        ev: Event,
        archived: &archive::Archived,
    ) -> Result<(), WriteError> {
        match ev {
            Event::File(format, header) => {
                let id = store::files::insert_file(
                    conn,
                    NewFile {
                        bank_id: self.bank_id,
                        sha256: &archived.sha256,
                        file_name: self.file_name,
                        size_bytes: archived.size as i64,
                        format: format.as_str(),
                        message_id: header.file_id,
                        archive_path: &archived.path.display().to_string(),
                    },
                )
                .await?;
                self.file_id = Some(id);
                self.format = Some(format);
            }
            Event::Statement(s) => {
                self.flush(conn).await?;
                self.statements += 1;
                self.in_statement = true;
                let row = self.statement_row(&s)?;
                self.statement_row = store::files::insert_statement(conn, row).await?;
            }
            Event::Entry(e) => {
                let p = self.payment(e);
                self.batch.push(p);
                if self.batch.len() >= BATCH {
                    self.flush(conn).await?;
                }
            }
            Event::StatementEnd => self.in_statement = false,
            // collected by the caller (policy)
            Event::Finding(_) => {}
        }
        Ok(())
    }

    async fn flush(&mut self, conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let rows = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        store::files::insert_payments(conn, rows).await
    }

    fn statement_row(&mut self, s: &Statement) -> Result<NewStatement, WriteError> {
        let currency = s.currency.unwrap_or(self.default_currency);
        self.statement_currency = currency;
        let file = self.file_name;
        let minor = |what: &str, d: Option<Decimal>| -> Result<Option<i64>, WriteError> {
            d.map(|d| {
                Money::from_decimal(d, currency)
                    .map(|m| m.minor())
                    .map_err(|e| {
                        WriteError::Parse(ParseError::new(
                            file,
                            format!("statement {}", s.statement_id.as_deref().unwrap_or("?")),
                            format!("{what}: {e}"),
                        ))
                    })
            })
            .transpose()
        };
        let count = |n: Option<u64>| n.map(|n| n as i64);
        Ok(NewStatement {
            file_id: self.file_id.unwrap_or_default(),
            seq: self.statements,
            statement_id: s.statement_id.clone(),
            account: s.account.clone(),
            currency: s.currency.map(|c| c.to_string()),
            opening_minor: minor("opening balance", s.opening_balance)?,
            closing_minor: minor("closing balance", s.closing_balance)?,
            declared_entries: count(s.declared.entry_count),
            declared_sum_minor: minor("declared sum", s.declared.sum)?,
            declared_net_minor: minor("declared net", s.declared.net)?,
            declared_credit_count: count(s.declared.credit_count),
            declared_credit_minor: minor("declared credit sum", s.declared.credit_sum)?,
            declared_debit_count: count(s.declared.debit_count),
            declared_debit_minor: minor("declared debit sum", s.declared.debit_sum)?,
        })
    }

    fn payment(&mut self, e: Entry) -> NewPayment {
        self.payments += 1;
        let key = txn_key(&e);
        NewPayment {
            file_id: self.file_id.unwrap_or_default(),
            statement_row: self.statement_row,
            bank_id: self.bank_id.to_string(),
            entry_seq: e.entry_seq as i64,
            tx_seq: e.tx_seq as i64,
            amount_minor: e.signed().minor(),
            currency: e.currency.to_string(),
            direction: e.direction.as_str(),
            reversal: e.reversal,
            booking_date: e.booking_date.map(|d| d.to_string()),
            value_date: e.value_date.map(|d| d.to_string()),
            status: if e.status == EntryStatus::Booked {
                "pending"
            } else {
                "not_booked"
            },
            instructed_minor: e.instructed_amount.map(|m| m.minor()),
            txn_key: key.map(clean),
            bank_ref: e.bank_ref.map(clean),
            entry_ref: e.entry_ref.map(clean),
            end_to_end_id: e.end_to_end_id.map(clean),
            tx_id: e.tx_id.map(clean),
            payer_name: e.payer_name.map(clean),
            payer_account: e.payer_account.map(clean),
            reference: e.reference.map(clean),
            remittance: e.remittance.map(clean),
            additional_info: e.additional_info.map(clean),
            return_reason: e.return_reason.map(clean),
        }
    }
}

/// Bank texts are stored without control characters (a tab or line break becomes a space):
/// they are never meaningful in a reference and the store relies on their absence.
fn clean(s: String) -> String {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    } else {
        s
    }
}

/// The key under which the same bank transaction is recognized when it is delivered again:
/// the transaction's own bank reference (AcctSvcrRef); without one, its end-to-end id and
/// amount; for a batch whose transactions carry neither, the entry's reference and the
/// transaction's position in it. Reversals get their own key space, so a reversal quoting its
/// original's reference is never taken for a duplicate of it.
pub fn txn_key(e: &Entry) -> Option<String> {
    let prefix = if e.reversal { "R|" } else { "" };
    let own_ref = match (&e.bank_ref, &e.entry_ref) {
        (Some(b), Some(en)) if e.tx_count > 1 && b == en => None,
        (b, _) => b.as_ref(),
    };
    if let Some(r) = own_ref {
        return Some(format!("{prefix}ref:{r}"));
    }
    if let Some(e2e) = &e.end_to_end_id {
        return Some(format!("{prefix}e2e:{e2e}:{}", e.signed().minor()));
    }
    e.entry_ref
        .as_ref()
        .map(|r| format!("{prefix}ref:{r}#{}", e.tx_seq))
}
