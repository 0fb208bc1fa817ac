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
    // temporary files of a publish killed between write and rename
    for entry in std::fs::read_dir(&target).map_err(io(&target))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((_, pid)) = name
            .strip_prefix('.')
            .and_then(|rest| rest.rsplit_once(".tmp-"))
        {
            if left_by_a_dead_writer(pid, &entry) {
                std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            }
        }
    }
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

/// Whether a hidden folder or file named with its writer's `pid` was left behind: the writer is
/// no longer alive on this host (or is this process, which is not writing it now), or it is
/// over an hour old (a stuck writer).
fn left_by_a_dead_writer(pid: &str, entry: &std::fs::DirEntry) -> bool {
    let alive = pid
        .parse::<u32>()
        .map(|pid| pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists())
        .unwrap_or(false);
    let aged = entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(3600));
    !alive || aged
}

/// Removes what publishes killed part-way left in a month's folder `parent`: the hidden
/// `.DD.staging-PID` and `.DD.old-PID` folders of any day. One whose writer is still alive on
/// this host is left alone unless it is over an hour old (a stuck writer). When a day's folder
/// is missing because the kill came between the two renames, the newest complete `.old` set
/// of that day (it has its manifest) is put back, so the day is whole again: each published
/// day is complete or absent, and nothing hidden stays behind.
pub fn sweep_leftovers(parent: &Path) -> std::io::Result<usize> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(0);
    };
    // (day, is_old, path)
    let mut stale: Vec<(String, bool, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.') else {
            continue;
        };
        let Some((day, rest)) = rest.split_once('.') else {
            continue;
        };
        let Some((kind, pid)) = rest.split_once('-') else {
            continue;
        };
        if day.len() != 2 || !day.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if kind != "staging" && kind != "old" {
            continue;
        }
        if !left_by_a_dead_writer(pid, &entry) {
            continue;
        }
        stale.push((day.to_string(), kind == "old", entry.path()));
    }
    let mut days: Vec<&String> = stale.iter().map(|(day, _, _)| day).collect();
    days.sort();
    days.dedup();
    let mut restore = Vec::new();
    for day in days {
        let target = parent.join(day);
        if target.exists() {
            continue;
        }
        if let Some((_, _, path)) = stale
            .iter()
            .filter(|(d, is_old, path)| d == day && *is_old && path.join("manifest.json").exists())
            .max_by_key(|(_, _, path)| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        {
            restore.push((path.clone(), target));
        }
    }
    for (from, to) in restore {
        std::fs::rename(from, to)?;
    }
    let mut removed = 0;
    for (_, _, path) in stale {
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
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
    sweep_leftovers(&parent).map_err(io(&parent))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_publish_leaves_nothing_behind_and_the_day_whole() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path();
        // killed between the two renames: the day's folder is gone, its old set hidden
        let old = parent.join(".05.old-999999998");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("manifest.json"), "{}\n").unwrap();
        std::fs::write(old.join("settlement.csv"), "a\n").unwrap();
        // killed while writing: a half staging folder
        let staging = parent.join(".05.staging-999999999");
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("settlement.csv"), "par").unwrap();
        // another day's dead writer's folder goes too; a live writer's is not ours to touch
        let other_day = parent.join(".06.staging-999999999");
        std::fs::create_dir_all(&other_day).unwrap();
        let live = parent.join(".05.staging-1");
        std::fs::create_dir_all(&live).unwrap();
        // a visible day and an unrelated hidden file stay
        std::fs::create_dir_all(parent.join("04")).unwrap();
        std::fs::write(parent.join(".keep"), "").unwrap();

        let removed = sweep_leftovers(parent).unwrap();
        assert_eq!(
            removed, 2,
            "the two staging folders; the old set was put back"
        );
        assert_eq!(
            std::fs::read_to_string(parent.join("05").join("settlement.csv")).unwrap(),
            "a\n"
        );
        assert!(!old.exists() && !staging.exists());
        assert!(!other_day.exists(), "a dead writer's folder of another day");
        assert!(live.exists(), "a live writer's folder");
        assert!(parent.join("04").exists() && parent.join(".keep").exists());
    }
}
