//! POSTing a published day's reports to the endpoints of `[[reports.post]]`: each chosen file
//! of the day's folder as the body of one request (with its name, report, date and SHA-256 in
//! headers, so the receiver can check it against the manifest), then the manifest itself.
//! Failed requests (connection errors, 5xx, 429) are retried three times with a growing
//! pause; a 4xx other than 429 is not. An endpoint that fails is reported, and the others
//! still receive theirs.

use crate::config::ReportPost;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("{0}")]
    Config(String),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("POST {url} {file}: {reason}")]
    Post {
        url: String,
        file: String,
        reason: String,
    },
}

/// What one endpoint received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub url: String,
    pub files: usize,
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("csv") => "text/csv; charset=utf-8",
        Some("json") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// POSTs the day in `day_dir` (a folder `publish` wrote) to every endpoint (only report
/// `only`'s files, when given, and the manifest); the results in the order of the config.
pub async fn deliver(
    posts: &[ReportPost],
    day_dir: &Path,
    only: Option<&str>,
) -> Vec<Result<Delivered, DeliverError>> {
    let mut out = Vec::new();
    for p in posts {
        out.push(deliver_one(p, day_dir, only).await);
    }
    out
}

async fn deliver_one(
    p: &ReportPost,
    day_dir: &Path,
    only: Option<&str>,
) -> Result<Delivered, DeliverError> {
    let mpath = day_dir.join("manifest.json");
    let text = std::fs::read_to_string(&mpath).map_err(|source| DeliverError::Io {
        path: mpath.display().to_string(),
        source,
    })?;
    let manifest: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| DeliverError::Config(format!("{}: {e}", mpath.display())))?;
    let date = manifest["date"].as_str().unwrap_or_default().to_string();
    let token = p.token().map_err(DeliverError::Config)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| DeliverError::Config(e.to_string()))?;
    let mut files: Vec<(String, String, String)> = manifest["files"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            let file = f["file"].as_str()?.to_string();
            let report = f["report"].as_str()?.to_string();
            let ext = file.rsplit('.').next()?.to_string();
            (p.formats.contains(&ext)
                && (p.reports.is_empty() || p.reports.contains(&report))
                && only.is_none_or(|o| o == report))
            .then(|| {
                (
                    file,
                    report,
                    f["sha256"].as_str().unwrap_or_default().to_string(),
                )
            })
        })
        .collect();
    files.push((
        "manifest.json".into(),
        "manifest".into(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
    ));
    for (file, report, sha) in &files {
        let path = day_dir.join(file);
        let body = std::fs::read(&path).map_err(|source| DeliverError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut attempt = 0u32;
        loop {
            let mut rb = client
                .post(&p.url)
                .header(reqwest::header::CONTENT_TYPE, content_type(file))
                .header("X-Billrecon-Report", report.as_str())
                .header("X-Billrecon-Date", date.as_str())
                .header("X-Billrecon-File", file.as_str())
                .header("X-Billrecon-Sha256", sha.as_str())
                .body(body.clone());
            if let Some(t) = &token {
                rb = rb.bearer_auth(t);
            }
            let fail = |reason: String| DeliverError::Post {
                url: p.url.clone(),
                file: file.clone(),
                reason,
            };
            let retry = match rb.send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                    format!("HTTP {}", r.status())
                }
                Ok(r) => return Err(fail(format!("HTTP {}", r.status()))),
                Err(e) => e.to_string(),
            };
            attempt += 1;
            if attempt > 3 {
                return Err(fail(format!("{retry} (gave up after {attempt} attempts)")));
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt * attempt))).await;
        }
    }
    Ok(Delivered {
        url: p.url.clone(),
        files: files.len(),
    })
}
