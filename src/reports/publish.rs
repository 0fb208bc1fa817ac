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

type Report = (
    &'static str,
    &'static [&'static str],
    Vec<Vec<Option<String>>>,
);

/// Writes the reports of `date` under `dir`; returns the folder.
pub async fn publish(
    config: &Config,
    store: &Store,
    date: NaiveDate,
    dir: &Path,
) -> Result<PathBuf, PublishError> {
    let reports: Vec<Report> = vec![
        (
            "daily-settlement",
            super::settlement::COLUMNS,
            super::settlement::daily_settlement(store, date).await?,
        ),
        (
            "settlement-lines",
            super::settlement::LINE_COLUMNS,
            super::settlement::lines(store, date).await?,
        ),
        (
            "exceptions",
            super::exceptions::COLUMNS,
            super::exceptions::exceptions(store, date).await?,
        ),
        (
            "ageing",
            super::ageing::COLUMNS,
            super::ageing::ageing(config, store, date).await?,
        ),
        (
            "collection-rate",
            super::collection::COLUMNS,
            super::collection::collection_rate(store, date).await?,
        ),
        (
            "key-customers",
            super::customers::KEY_COLUMNS,
            super::customers::key_customers(store, date).await?,
        ),
        (
            "payment-behaviour",
            super::customers::BEHAVIOUR_COLUMNS,
            super::customers::payment_behaviour(store, date).await?,
        ),
    ];
    let target = dir
        .join(date.format("%Y").to_string())
        .join(date.format("%m").to_string())
        .join(date.format("%d").to_string());
    let parent = target.parent().unwrap_or(dir).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let staging = parent.join(format!(
        ".{}.staging-{}",
        date.format("%d"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let mut manifest = Vec::new();
    for (name, columns, rows) in &reports {
        for (format, ext) in [(TableFormat::Csv, "csv"), (TableFormat::Json, "json")] {
            let mut bytes = Vec::new();
            let mut w =
                TableWriter::with_bom(&mut bytes, format, columns, format == TableFormat::Csv)
                    .map_err(io(&staging))?;
            for r in rows {
                w.row(r.clone()).map_err(io(&staging))?;
            }
            w.finish().map_err(io(&staging))?;
            let file = format!("{name}.{ext}");
            let path = staging.join(&file);
            std::fs::write(&path, &bytes).map_err(io(&path))?;
            manifest.push(serde_json::json!({
                "file": file,
                "report": name,
                "rows": rows.len(),
                "bytes": bytes.len(),
                "sha256": hex::encode(Sha256::digest(&bytes)),
            }));
        }
    }
    for (name, columns, rows) in &reports {
        let language = config.reports.language.as_str();
        let bytes =
            super::xlsx::workbook(name, columns, rows, date, language).map_err(|reason| {
                PublishError::Io {
                    path: format!("{name}.xlsx"),
                    source: std::io::Error::other(reason),
                }
            })?;
        let html = super::html::page(
            &format!("{name} {}", date.format("%Y-%m-%d")),
            columns,
            rows,
            super::chart_of(columns),
            language,
        );
        let hfile = format!("{name}.html");
        let hpath = staging.join(&hfile);
        std::fs::write(&hpath, &html).map_err(io(&hpath))?;
        manifest.push(serde_json::json!({
            "file": hfile,
            "report": name,
            "rows": rows.len(),
            "bytes": html.len(),
            "sha256": hex::encode(Sha256::digest(html.as_bytes())),
        }));
        let file = format!("{name}.xlsx");
        let path = staging.join(&file);
        std::fs::write(&path, &bytes).map_err(io(&path))?;
        manifest.push(serde_json::json!({
            "file": file,
            "report": name,
            "rows": rows.len(),
            "bytes": bytes.len(),
            "sha256": hex::encode(Sha256::digest(&bytes)),
        }));
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
