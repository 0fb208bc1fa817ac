//! Publishing a day's reports: every report, as CSV (with BOM, Excel-safe), JSON, XLSX and HTML, into
//! `DIR/YYYY/MM/DD/`, with a `manifest.json` holding each file's size and SHA-256. The folder
//! is built aside and renamed into place, so readers see the old set or the new one, never
//! half of one. The same data gives the same bytes, so a report can be regenerated for an
//! audit and compared with the manifest.

use super::{TableFormat, TableWriter};
use crate::config::Config;
use crate::store::{Store, StoreError};
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A report's four forms: (file name, bytes).
fn forms(
    kind: super::ReportKind,
    columns: &[&str],
    rows: &[Vec<Option<String>>],
    date: NaiveDate,
    language: &str,
) -> Vec<(String, std::io::Result<Vec<u8>>)> {
    let table = |format: TableFormat| -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut w = TableWriter::with_bom(&mut bytes, format, columns, format == TableFormat::Csv)?;
        for r in rows {
            w.row(r.clone())?;
        }
        w.finish()?;
        Ok(bytes)
    };
    let name = kind.name();
    let xlsx =
        super::xlsx::workbook(kind, columns, rows, date, language).map_err(std::io::Error::other);
    let html = super::html::report_page(kind, date, columns, rows, language);
    [
        ("csv", table(TableFormat::Csv)),
        ("json", table(TableFormat::Json)),
        ("html", Ok(html.into_bytes())),
        ("xlsx", xlsx),
    ]
    .into_iter()
    .map(|(ext, b)| (format!("{name}.{ext}"), b))
    .collect()
}

/// A manifest entry: the file, its report and the clock the report uses, its rows, size and
/// SHA-256.
fn entry(file: &str, kind: super::ReportKind, rows: usize, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "file": file,
        "report": kind.name(),
        "clock": super::view::clock_name(kind, "en").to_lowercase(),
        "rows": rows,
        "bytes": bytes.len(),
        "sha256": hex::encode(Sha256::digest(bytes)),
    })
}

fn day_dir(dir: &Path, date: NaiveDate) -> PathBuf {
    dir.join(date.format("%Y").to_string())
        .join(date.format("%m").to_string())
        .join(date.format("%d").to_string())
}

/// Writes one report of `date` (its four forms) into the day's folder under `dir`, beside the
/// others, and updates the manifest: each file and then the manifest is replaced by a rename,
/// so a reader sees a whole file, old or new. For reports on their own schedules
/// (`reports.schedules`). Returns the day's folder.
pub async fn publish_one(
    config: &Config,
    store: &Store,
    kind: super::ReportKind,
    date: NaiveDate,
    dir: &Path,
) -> Result<PathBuf, PublishError> {
    let (columns, rows) = kind.build(config, store, date).await?;
    let name = kind.name();
    let target = day_dir(dir, date);
    std::fs::create_dir_all(&target).map_err(io(&target))?;
    let replace = |file: &str, bytes: &[u8]| -> Result<(), PublishError> {
        let path = target.join(file);
        let tmp = target.join(format!(".{file}.tmp-{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    };
    let mut entries = Vec::new();
    for (file, bytes) in forms(kind, columns, &rows, date, &config.reports.language) {
        let bytes = bytes.map_err(io(&target.join(&file)))?;
        replace(&file, &bytes)?;
        entries.push(entry(&file, kind, rows.len(), &bytes));
    }
    let mpath = target.join("manifest.json");
    let mut files: Vec<serde_json::Value> = std::fs::read(&mpath)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|m| m["files"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f["report"] != name)
        .collect();
    files.extend(entries);
    files.sort_by(|a, b| a["file"].as_str().cmp(&b["file"].as_str()));
    let manifest = serde_json::json!({
        "date": date.format("%Y-%m-%d").to_string(),
        "generator": format!("billrecon {}", env!("CARGO_PKG_VERSION")),
        "files": files,
    });
    replace(
        "manifest.json",
        (serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n").as_bytes(),
    )?;
    Ok(target)
}

/// Writes the reports of `date` under `dir`; returns the folder.
pub async fn publish(
    config: &Config,
    store: &Store,
    date: NaiveDate,
    dir: &Path,
) -> Result<PathBuf, PublishError> {
    let mut reports = Vec::new();
    for kind in super::ReportKind::ALL {
        reports.push((kind, kind.build(config, store, date).await?));
    }
    let target = day_dir(dir, date);
    let parent = target.parent().unwrap_or(dir).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let staging = parent.join(format!(
        ".{}.staging-{}",
        date.format("%d"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let language = config.reports.language.as_str();
    let mut manifest = Vec::new();
    for (kind, (columns, rows)) in &reports {
        for (file, bytes) in forms(*kind, columns, rows, date, language) {
            let path = staging.join(&file);
            let bytes = bytes.map_err(io(&path))?;
            std::fs::write(&path, &bytes).map_err(io(&path))?;
            manifest.push(entry(&file, *kind, rows.len(), &bytes));
        }
    }
    let manifest = serde_json::json!({
        "date": date.format("%Y-%m-%d").to_string(),
        "generator": format!("billrecon {}", env!("CARGO_PKG_VERSION")),
        "files": manifest,
    });
    let mpath = staging.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
    std::fs::write(&mpath, text).map_err(io(&mpath))?;
    // swap into place: the previous set, if any, is replaced as a whole
    if target.exists() {
        let old = parent.join(format!(".{}.old-{}", date.format("%d"), std::process::id()));
        std::fs::rename(&target, &old).map_err(io(&target))?;
        std::fs::rename(&staging, &target).map_err(io(&target))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&staging, &target).map_err(io(&target))?;
    }
    Ok(target)
}
