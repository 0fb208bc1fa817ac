//! Quarantine: a file that cannot be ingested is copied here with a JSON record of why.
//! Nothing from it reaches the database.
//!
//! Layout: `DATA_DIR/quarantine/YYYY-MM-DD/<sha256 prefix>-<file name>` and, beside it,
//! `<same>.reason.json` with bank, file, digest, location and reason.

use crate::formats::{Finding, ParseError};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
pub struct QuarantineRecord<'a> {
    pub bank_id: &'a str,
    pub file: &'a str,
    pub sha256: &'a str,
    pub location: &'a str,
    pub reason: &'a str,
    /// Every failed check of the file (a `strict` bank's file is quarantined for the first
    /// of severity `error`; the rest of the file is still read for these).
    #[serde(skip_serializing_if = "<[Finding]>::is_empty")]
    pub findings: &'a [Finding],
    pub quarantined_at: String,
}

/// Copies `bytes_at` (the archived original) into quarantine and writes the reason beside
/// it. Returns the quarantined file's path.
pub fn quarantine(
    data_dir: &Path,
    bank_id: &str,
    file_name: &str,
    sha256: &str,
    bytes_at: &Path,
    err: &ParseError,
    findings: &[Finding],
) -> std::io::Result<PathBuf> {
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let dir = data_dir.join("quarantine").join(day);
    std::fs::create_dir_all(&dir)?;
    let safe: String = file_name
        .chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    let target = dir.join(format!("{}-{safe}", &sha256[..12.min(sha256.len())]));
    std::fs::copy(bytes_at, &target)?;
    let record = QuarantineRecord {
        bank_id,
        file: file_name,
        sha256,
        location: &err.location,
        reason: &err.reason,
        findings,
        quarantined_at: crate::store::now(),
    };
    let mut reason_path = target.clone().into_os_string();
    reason_path.push(".reason.json");
    std::fs::write(
        &reason_path,
        serde_json::to_vec_pretty(&record).unwrap_or_default(),
    )?;
    Ok(target)
}
