//! HTTPS pull: the client of a partner bank's file service.
//!
//! # The protocol
//! - `GET {base_url}/files?since=CURSOR` (no `since` on the very first pull) answers a JSON
//!   array `[{"name", "size", "sha256", "created_at"}]`: the files created strictly after
//!   CURSOR, oldest first. CURSOR is the `created_at` of the newest file the client has already
//!   taken. It is RFC 3339 text compared *as text*, which is why the bank writes it at a fixed
//!   width (`2026-11-25T08:00:00.000000000Z`); the client passes it back verbatim.
//! - `GET {base_url}/files/{name}` answers the file's bytes (the name percent-encoded as one
//!   path segment).
//!
//! # Failures
//! One call ([`HttpsClient::list`], [`HttpsClient::download`]) retries what may heal by itself
//! (timeouts, refused or reset connections, TLS handshake failures, a body cut mid-transfer,
//! HTTP 5xx and 429) up to `retries` times with exponential backoff and jitter, honouring a
//! `Retry-After` on 429/503. A download whose size or SHA-256 differs from the listing is
//! deleted and fetched again. Any other 4xx means the request itself is wrong (credentials,
//! a file that is gone): retrying cannot help, so it is reported at once.
//!
//! Secrets (bearer token, basic password, the client key) never reach a log line or an error
//! message: errors carry the request path and a reason, never a header.

use crate::config::{Auth, HttpsSource};
use rand::Rng;
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The longest a `Retry-After` from the bank is allowed to hold a call up.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest one computed backoff delay may be, whatever `backoff_ms` and the attempt.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One file as the bank lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    /// Lower-case or upper-case hex; compared case-insensitively.
    pub sha256: String,
    /// Fixed-width RFC 3339 text; the next `since` cursor once this file is taken.
    pub created_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Network trouble, a timeout, 5xx or 429 that outlasted the retries: try again later.
    #[error("{what}: {reason} (gave up after {attempts} attempt(s))")]
    Transient {
        what: String,
        reason: String,
        attempts: u32,
    },
    /// The bank refused the request (4xx other than 429); retrying cannot help.
    #[error("{what}: the bank answered HTTP {status}{detail}")]
    Rejected {
        status: u16,
        what: String,
        /// `": "` and the start of the bank's answer, or empty.
        detail: String,
    },
    /// The file kept arriving with another size or SHA-256 than the listing declared.
    #[error("{name}: the download does not match the listing: {reason}")]
    Integrity { name: String, reason: String },
    /// The bank broke the protocol: bad JSON, an unsafe file name, an unexpected redirect.
    #[error("bank protocol error: {0}")]
    Protocol(String),
    /// The source's own settings: unreadable certificate, key, CA or secret.
    #[error("https source setup: {0}")]
    Setup(String),
    /// Writing the download locally failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl PullError {
    /// Whether the same call may succeed later unchanged (the bank or the network was down).
    /// An integrity failure counts as transient too: a later pull fetches the file again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PullError::Transient { .. } | PullError::Integrity { .. }
        )
    }
}

/// A client of one bank's file service. Cheap to share (`&self` everywhere); connections
/// are pooled.
#[derive(Debug)]
pub struct HttpsClient {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    retries: u32,
    backoff_ms: u64,
    timeout: Duration,
}

/// Why one attempt failed, and whether another may help.
enum Fail {
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Integrity(String),
    Fatal(PullError),
}

impl HttpsClient {
    /// Builds the client: reads the secrets, the client identity and the extra CA now, so a
    /// bad setting fails at startup rather than at the first pull.
    pub fn new(src: &HttpsSource) -> Result<HttpsClient, PullError> {
        let base = Url::parse(&src.base_url)
            .map_err(|e| PullError::Setup(format!("base_url is not a URL: {e}")))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "https" | "http") {
            return Err(PullError::Setup(
                "base_url must be an http(s):// URL".into(),
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            // Credentials in a URL end up in logs and error messages; refuse them.
            return Err(PullError::Setup(
                "base_url must not carry credentials; use basic_user and password_file".into(),
            ));
        }
        let auth = src.auth().map_err(PullError::Setup)?;
        let timeout = Duration::from_secs(src.timeout_secs.max(1));
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(timeout)
            .timeout(timeout)
            // The protocol has no redirects; following one could hand the credentials to
            // another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("billrecon/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &src.client_identity {
            let pem = read_setup_file(path, "client_identity")?;
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                PullError::Setup(format!(
                    "client_identity {}: not a PEM certificate with its private key ({})",
                    path.display(),
                    chain(&e)
                ))
            })?;
            builder = builder.identity(identity);
        }
        if let Some(path) = &src.ca_cert {
            let pem = read_setup_file(path, "ca_cert")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                PullError::Setup(format!("ca_cert {}: {}", path.display(), chain(&e)))
            })?;
            if certs.is_empty() {
                return Err(PullError::Setup(format!(
                    "ca_cert {}: no PEM certificate in it",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| {
            PullError::Setup(format!("cannot build the HTTP client: {}", chain(&e)))
        })?;
        Ok(HttpsClient {
            http,
            base,
            auth,
            retries: src.retries,
            backoff_ms: src.backoff_ms,
            timeout,
        })
    }

    /// The files created strictly after `since` (all files when `None`), as the bank orders
    /// them (oldest first). Every name is checked safe to use as a file name.
    pub async fn list(&self, since: Option<&str>) -> Result<Vec<Listed>, PullError> {
        let mut url = self.url(&["files"]);
        if let Some(since) = since {
            url.query_pairs_mut().append_pair("since", since);
        }
        let what = format!("GET {}", url.path());
        let body = self
            .retrying(&what, None, |attempt| self.list_once(&url, attempt))
            .await?;
        let files: Vec<Listed> = serde_json::from_slice(&body).map_err(|e| {
            PullError::Protocol(format!("{what}: the listing is not the expected JSON: {e}"))
        })?;
        for f in &files {
            check_name(&f.name)?;
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PullError::Protocol(format!(
                    "{}: sha256 `{}` is not 64 hex digits",
                    f.name, f.sha256
                )));
            }
            if f.created_at.is_empty() {
                return Err(PullError::Protocol(format!("{}: empty created_at", f.name)));
            }
        }
        tracing::debug!(path = %url.path(), files = files.len(), "listing received");
        Ok(files)
    }

    /// Streams the file to `dest` (written under a temporary name in the same folder, renamed when complete), checks size and SHA-256 against the listing; returns the byte count.
    ///
    /// The temporary file is `.{dest name}.{random}.part` (hidden, so inbox scanners skip it)
    /// and is removed on every failure, and also when the returned future is dropped midway
    /// (a shutdown), so nothing half-written is ever left at `dest` or beside it.
    pub async fn download(&self, file: &Listed, dest: &Path) -> Result<u64, PullError> {
        check_name(&file.name)?;
        let url = self.url(&["files", &file.name]);
        let what = format!("GET {}", url.path());
        self.retrying(&what, Some(&file.name), |attempt| {
            self.download_once(&url, file, dest, attempt)
        })
        .await
    }

    /// `base_url` with `segments` appended, each percent-encoded as one path segment.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Runs `once` until it succeeds, fails for good, or the retries are spent.
    async fn retrying<T, F, Fut>(
        &self,
        what: &str,
        name: Option<&str>,
        mut once: F,
    ) -> Result<T, PullError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        let mut attempt = 0u32;
        loop {
            let (reason, retry_after, integrity) = match once(attempt).await {
                Ok(v) => return Ok(v),
                Err(Fail::Fatal(e)) => return Err(e),
                Err(Fail::Retry {
                    reason,
                    retry_after,
                }) => (reason, retry_after, false),
                Err(Fail::Integrity(reason)) => (reason, None, true),
            };
            if attempt >= self.retries {
                tracing::warn!(%what, attempts = attempt + 1, %reason, "giving up");
                return Err(if integrity {
                    PullError::Integrity {
                        name: name.unwrap_or(what).to_string(),
                        reason,
                    }
                } else {
                    PullError::Transient {
                        what: what.to_string(),
                        reason,
                        attempts: attempt + 1,
                    }
                });
            }
            let delay = retry_after.unwrap_or_else(|| backoff(self.backoff_ms, attempt));
            tracing::warn!(%what, attempt = attempt + 1, %reason, delay_ms = delay.as_millis() as u64, "request failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn get(&self, url: &Url) -> reqwest::RequestBuilder {
        let req = self.http.get(url.clone());
        // reqwest marks these headers sensitive: they are kept out of its Debug output.
        match &self.auth {
            Auth::None => req,
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
        }
    }

    /// Sends the request; a success status gives the response, anything else a [`Fail`].
    async fn send(&self, url: &Url, attempt: u32) -> Result<reqwest::Response, Fail> {
        tracing::debug!(path = %url.path(), attempt = attempt + 1, "GET");
        let req = self.get(url).build().map_err(|e| self.classify(e))?;
        // The credential as sent (base64 for basic auth), to scrub from anything quoted back.
        let credential = req
            .headers()
            .get(reqwest::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(_, c)| c.to_string());
        let resp = self.http.execute(req).await.map_err(|e| self.classify(e))?;
        let status = resp.status();
        tracing::debug!(path = %url.path(), status = status.as_u16(), "response");
        if status.is_success() {
            return Ok(resp);
        }
        let what = format!("GET {}", url.path());
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let retry_after = if matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                resp.headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
            } else {
                None
            };
            return Err(Fail::Retry {
                reason: format!("HTTP {}", status.as_u16()),
                retry_after,
            });
        }
        if status.is_redirection() {
            return Err(Fail::Fatal(PullError::Protocol(format!(
                "{what}: unexpected redirect (HTTP {}), not followed",
                status.as_u16()
            ))));
        }
        // A short excerpt of the bank's explanation helps whoever reads the alert.
        let detail = match tokio::time::timeout(Duration::from_secs(2), resp.bytes()).await {
            Ok(Ok(b)) if !b.is_empty() => {
                let text = self.redact(&String::from_utf8_lossy(&b), credential.as_deref());
                let text: String = text
                    .chars()
                    .take(200)
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                format!(": {}", text.trim())
            }
            _ => String::new(),
        };
        Err(Fail::Fatal(PullError::Rejected {
            status: status.as_u16(),
            what,
            detail,
        }))
    }

    /// `text` with every secret of this client replaced by `***`: a bank (or a proxy) that
    /// quotes the request back in an error page must not put the secret into an alert.
    fn redact(&self, text: &str, credential: Option<&str>) -> String {
        let secrets: [Option<&str>; 2] = match &self.auth {
            Auth::None => [None, credential],
            Auth::Bearer(t) => [Some(t.as_str()), credential],
            Auth::Basic { password, .. } => [Some(password.as_str()), credential],
        };
        let mut out = text.to_string();
        for secret in secrets.into_iter().flatten().filter(|s| !s.is_empty()) {
            out = out.replace(secret, "***");
        }
        out
    }

    async fn list_once(&self, url: &Url, attempt: u32) -> Result<Vec<u8>, Fail> {
        let resp = self.send(url, attempt).await?;
        let body = resp.bytes().await.map_err(|e| self.classify(e))?;
        Ok(body.to_vec())
    }

    async fn download_once(
        &self,
        url: &Url,
        file: &Listed,
        dest: &Path,
        attempt: u32,
    ) -> Result<u64, Fail> {
        let mut resp = self.send(url, attempt).await?;
        if let Some(len) = resp.content_length() {
            if len != file.size {
                return Err(Fail::Integrity(format!(
                    "the bank sends {len} bytes, the listing says {}",
                    file.size
                )));
            }
        }
        let (part, mut out) = TempFile::create(dest).await.map_err(Fail::Fatal)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.classify(e))? {
            size += chunk.len() as u64;
            if size > file.size {
                return Err(Fail::Integrity(format!(
                    "more than the {} bytes listed",
                    file.size
                )));
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(|e| part.io(e))?;
        }
        out.flush().await.map_err(|e| part.io(e))?;
        if size != file.size {
            return Err(Fail::Integrity(format!(
                "{size} bytes received, {} listed",
                file.size
            )));
        }
        let digest = hex::encode(hasher.finalize());
        if !digest.eq_ignore_ascii_case(&file.sha256) {
            return Err(Fail::Integrity(format!(
                "SHA-256 {digest}, listed {}",
                file.sha256
            )));
        }
        // On disk before it has its real name: a crash must not leave a short file at `dest`.
        out.sync_all().await.map_err(|e| part.io(e))?;
        drop(out);
        part.persist(dest).await.map_err(Fail::Fatal)?;
        tracing::debug!(path = %url.path(), bytes = size, "downloaded");
        Ok(size)
    }

    /// Sorts a reqwest error into retry-or-not, with a reason that carries no secret (no URL
    /// either: the caller names the request path).
    fn classify(&self, e: reqwest::Error) -> Fail {
        if e.is_builder() {
            return Fail::Fatal(PullError::Setup(format!(
                "cannot build the request: {}",
                chain(&e.without_url())
            )));
        }
        let reason = if e.is_timeout() {
            format!("timed out after {} s", self.timeout.as_secs())
        } else if e.is_connect() {
            format!("cannot connect: {}", chain(&e.without_url()))
        } else if e.is_body() || e.is_decode() {
            format!("transfer cut: {}", chain(&e.without_url()))
        } else {
            chain(&e.without_url())
        };
        Fail::Retry {
            reason,
            retry_after: None,
        }
    }
}

/// Refuses a listed name that could escape the destination folder or confuse a log:
/// empty, `.`, path separators, `..`, control characters, longer than a file name may be.
fn check_name(name: &str) -> Result<(), PullError> {
    let bad = |why: &str| {
        Err(PullError::Protocol(format!(
            "unsafe file name {name:?} in the listing: {why}"
        )))
    };
    if name.is_empty() || name == "." {
        return bad("empty");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("contains a path separator");
    }
    if name.contains("..") {
        return bad("contains `..`");
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    if name.len() > 255 {
        return bad("longer than 255 bytes");
    }
    Ok(())
}

/// `backoff_ms * 2^attempt`, times a random factor in 0.5..1.5 so that clients that failed
/// together do not come back together.
fn backoff(backoff_ms: u64, attempt: u32) -> Duration {
    let base = backoff_ms.saturating_mul(1u64 << attempt.min(30)) as f64;
    let factor: f64 = rand::thread_rng().gen_range(0.5..1.5);
    Duration::from_millis((base * factor) as u64).min(MAX_BACKOFF)
}

/// A `Retry-After` value: delay seconds or an HTTP date; capped at [`MAX_RETRY_AFTER`].
fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    let delay = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        (when.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// An error and its causes on one line (reqwest's own message alone is "error sending
/// request", the useful part is in the sources).
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn read_setup_file(path: &Path, what: &str) -> Result<Vec<u8>, PullError> {
    std::fs::read(path)
        .map_err(|e| PullError::Setup(format!("cannot read {what} {}: {e}", path.display())))
}

/// The download's temporary file; removed on drop unless persisted.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    async fn create(dest: &Path) -> Result<(TempFile, tokio::fs::File), PullError> {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stem = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "download".into());
        let tag: u32 = rand::thread_rng().gen();
        let path = dir.join(format!(".{stem}.{tag:08x}.part"));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|source| PullError::Io {
                path: path.display().to_string(),
                source,
            })?;
        Ok((TempFile { path, keep: false }, file))
    }

    fn io(&self, source: std::io::Error) -> Fail {
        Fail::Fatal(PullError::Io {
            path: self.path.display().to_string(),
            source,
        })
    }

    async fn persist(mut self, dest: &Path) -> Result<(), PullError> {
        tokio::fs::rename(&self.path, dest)
            .await
            .map_err(|source| PullError::Io {
                path: dest.display().to_string(),
                source,
            })?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::banksim::{BankSim, FailMode, SimConfig};
    use std::time::{Instant, SystemTime};

    fn source(base_url: &str) -> HttpsSource {
        HttpsSource {
            base_url: base_url.to_string(),
            token_file: None,
            token_env: None,
            basic_user: None,
            password_file: None,
            password_env: None,
            client_identity: None,
            ca_cert: None,
            timeout_secs: 5,
            retries: 3,
            backoff_ms: 1,
        }
    }

    fn sim_config(dir: &Path) -> SimConfig {
        SimConfig {
            dir: dir.to_path_buf(),
            bearer_token: None,
            basic: None,
            tls: None,
        }
    }

    async fn sim(cfg: SimConfig) -> BankSim {
        BankSim::start(cfg, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    }

    /// Writes a bank file with a given age, so listings have a known order.
    fn bank_file(dir: &Path, name: &str, body: &[u8], secs_ago: u64) {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs_ago))
            .unwrap();
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn lists_downloads_and_follows_the_cursor() {
        let bank = tempfile::tempdir().unwrap();
        let inbox = tempfile::tempdir().unwrap();
        bank_file(bank.path(), "b-first.xml", b"<first/>", 300);
        bank_file(bank.path(), "a-second.xml", b"<second/>", 200);
        let sim = sim(sim_config(bank.path())).await;
        let client = HttpsClient::new(&source(&sim.base_url())).unwrap();

        let files = client.list(None).await.unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["b-first.xml", "a-second.xml"], "oldest first");
        for f in &files {
            let dest = inbox.path().join(&f.name);
            assert_eq!(client.download(f, &dest).await.unwrap(), f.size);
            assert_eq!(
                std::fs::read(&dest).unwrap(),
                std::fs::read(bank.path().join(&f.name)).unwrap()
            );
        }
        assert_eq!(files_in(inbox.path()), ["a-second.xml", "b-first.xml"]);

        let cursor = files[1].created_at.clone();
        assert!(client.list(Some(&cursor)).await.unwrap().is_empty());
        // A file dropped later (even with an old modification time) shows up after the cursor.
        bank_file(bank.path(), "c-third.xml", b"<third/>", 1000);
        let later = client.list(Some(&cursor)).await.unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].name, "c-third.xml");
        assert!(later[0].created_at > cursor);

        let log = sim.requests();
        assert_eq!(log[0], "GET /files");
        assert!(log[1].starts_with("GET /files/b-first.xml"), "{log:?}");
        let encoded = cursor.replace(':', "%3A");
        assert_eq!(log[3], format!("GET /files?since={encoded}"));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn names_are_percent_encoded_in_the_path() {
        let bank = tempfile::tempdir().unwrap();
        let inbox = tempfile::tempdir().unwrap();
        bank_file(bank.path(), "stmt 2026#1?.xml", b"x", 10);
        let sim = sim(sim_config(bank.path())).await;
        let client = HttpsClient::new(&source(&sim.base_url())).unwrap();
        let files = client.list(None).await.unwrap();
        client
            .download(&files[0], &inbox.path().join("s.xml"))
            .await
            .unwrap();
        assert_eq!(sim.requests()[1], "GET /files/stmt%202026%231%3F.xml");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn bearer_auth_is_required_and_the_token_never_shows() {
        let bank = tempfile::tempdir().unwrap();
        let secrets = tempfile::tempdir().unwrap();
        bank_file(bank.path(), "a.xml", b"a", 10);
        let mut cfg = sim_config(bank.path());
        cfg.bearer_token = Some("tok-SECRET-123".into());
        let sim = sim(cfg).await;

        let anonymous = HttpsClient::new(&source(&sim.base_url())).unwrap();
        let e = anonymous.list(None).await.unwrap_err();
        assert!(matches!(e, PullError::Rejected { status: 401, .. }), "{e}");
        assert!(!e.is_transient());

        let wrong = secrets.path().join("wrong.token");
        std::fs::write(&wrong, "tok-SECRET-wrong\n").unwrap();
        let mut src = source(&sim.base_url());
        src.token_file = Some(wrong);
        let client = HttpsClient::new(&src).unwrap();
        let e = client.list(None).await.unwrap_err();
        assert!(matches!(e, PullError::Rejected { status: 401, .. }), "{e}");
        for text in [e.to_string(), format!("{e:?}"), format!("{client:?}")] {
            assert!(!text.contains("SECRET"), "{text}");
        }

        let right = secrets.path().join("right.token");
        std::fs::write(&right, "tok-SECRET-123\n").unwrap();
        src.token_file = Some(right);
        let client = HttpsClient::new(&src).unwrap();
        assert_eq!(client.list(None).await.unwrap().len(), 1);
        assert!(!format!("{client:?}").contains("SECRET"));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn basic_auth_is_required_and_the_password_never_shows() {
        let bank = tempfile::tempdir().unwrap();
        let secrets = tempfile::tempdir().unwrap();
        bank_file(bank.path(), "a.xml", b"a", 10);
        let mut cfg = sim_config(bank.path());
        cfg.basic = Some(("recon".into(), "pw-SECRET-9".into()));
        let sim = sim(cfg).await;

        let pw = secrets.path().join("pw");
        std::fs::write(&pw, "pw-SECRET-8").unwrap();
        let mut src = source(&sim.base_url());
        src.basic_user = Some("recon".into());
        src.password_file = Some(pw.clone());
        let e = HttpsClient::new(&src)
            .unwrap()
            .list(None)
            .await
            .unwrap_err();
        assert!(matches!(e, PullError::Rejected { status: 401, .. }), "{e}");
        assert!(!e.to_string().contains("SECRET") && !format!("{e:?}").contains("SECRET"));

        std::fs::write(&pw, "pw-SECRET-9\n").unwrap();
        let client = HttpsClient::new(&src).unwrap();
        assert_eq!(client.list(None).await.unwrap().len(), 1);
        assert!(!format!("{client:?}").contains("SECRET"));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_they_pass() {
        let bank = tempfile::tempdir().unwrap();
        let inbox = tempfile::tempdir().unwrap();
        bank_file(bank.path(), "a.xml", b"<a/>", 10);
        let sim = sim(sim_config(bank.path())).await;
        let client = HttpsClient::new(&source(&sim.base_url())).unwrap();

        sim.fail_next(FailMode::Status(500), 2);
        let files = client.list(None).await.unwrap();
        assert_eq!(sim.requests(), ["GET /files"; 3]);

        sim.fail_file("a.xml", FailMode::Status(502), 1);
        client
            .download(&files[0], &inbox.path().join("a.xml"))
            .await
            .unwrap();
        assert_eq!(sim.requests().len(), 5);

        // More failures than retries: transient, after 1 + retries attempts.
        sim.fail_next(FailMode::Status(503), 10);
        let mut src = source(&sim.base_url());
        src.retries = 1;
        let e = HttpsClient::new(&src)
            .unwrap()
            .list(None)
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(matches!(e, PullError::Transient { attempts: 2, .. }), "{e}");
        assert_eq!(sim.requests().len(), 7);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn retry_after_is_honoured() {
        let bank = tempfile::tempdir().unwrap();
        let sim = sim(sim_config(bank.path())).await;
        let client = HttpsClient::new(&source(&sim.base_url())).unwrap();
        sim.fail_next(FailMode::Status(429), 1);
        let t = Instant::now();
        client.list(None).await.unwrap();
        // backoff_ms is 1: only the bank's `Retry-After: 1` explains a wait of a second.
        assert!(
            t.elapsed() >= Duration::from_millis(950),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(sim.requests().len(), 2);
        sim.shutdown().await;

        let now = chrono::Utc::now();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("3600", now), Some(MAX_RETRY_AFTER));
        let in_5s = (now + chrono::Duration::seconds(5)).to_rfc2822();
        let d = parse_retry_after(&in_5s, now).unwrap();
        assert!(
            d <= Duration::from_secs(5) && d >= Duration::from_secs(4),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn client_errors_are_rejected_at_once() {
        let bank = tempfile::tempdir().unwrap();
        let inbox = tempfile::tempdir().unwrap();
        let sim = sim(sim_config(bank.path())).await;
        let client = HttpsClient::new(&source(&sim.base_url())).unwrap();

        sim.fail_next(FailMode::Status(403), 1);
        let e = client.list(None).await.unwrap_err();
        assert!(matches!(e, PullError::Rejected { status: 403, .. }), "{e}");
        assert!(!e.is_transient());
        assert_eq!(sim.requests().len(), 1);

        let gone = Listed {
            name: "gone.xml".into(),
            size: 1,
            sha256: "0".repeat(64),
            created_at: "2026-01-01T00:00:00.000000000Z".into(),
        };
        let dest = inbox.path().join("gone.xml");
        let e = client.download(&gone, &dest).await.unwrap_err();
        assert!(matches!(e, PullError::Rejected { status: 404, .. }), "{e}");
        assert!(e.to_string().contains("GET /files/gone.xml"), "{e}");
        assert_eq!(sim.requests().len(), 2, "a 404 is not retried");
        assert!(files_in(inbox.path()).is_empty());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_bank_that_never_answers_times_out() {
        let bank = tempfile::tempdir().unwrap();
        let sim = sim(sim_config(bank.path())).await;
        let mut src = source(&sim.base_url());
        src.timeout_secs = 1;
        src.retries = 1;
        let client = HttpsClient::new(&src).unwrap();
        sim.fail_next(FailMode::Hang, 5);
        let t = Instant::now();
        let e = client.list(None).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("timed out"), "{e}");
        assert!(matches!(e, PullError::Transient { attempts: 2, .. }), "{e}");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(8),
            "{took:?}"
        );
        assert_eq!(sim.requests().len(), 2);
        let t = Instant::now();
        sim.shutdown().await;
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "held requests end at shutdown"
        );
    }

    #[tokio::test]
    async fn a_cut_transfer_is_fetched_again() {
        let bank = tempfile::tempdir().unwrap();
        let inbox = tempfile::tempdir().unwrap();
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        bank_file(bank.path(), "big.xml", &body, 10);
        let sim = sim(sim_config(bank.path())).await;
        let client = HttpsClient::new(&source(&sim.base_url())).unwrap();
        let files = client.list(None).await.unwrap();
        sim.fail_file("big", FailMode::CutBody, 2);
        let dest = inbox.path().join("big.xml");
        assert_eq!(client.download(&files[0], &dest).await.unwrap(), 200_000);
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        assert_eq!(sim.requests().len(), 4, "listing + 2 cut + 1 whole");
        assert_eq!(
            files_in(inbox.path()),
            ["big.xml"],
            "no temporary file left"
        );

        // Cut every time: transient, nothing left behind.
        sim.fail_file("big", FailMode::CutBody, 10);
        let dest2 = inbox.path().join("again.xml");
        let e = client.download(&files[0], &dest2).await.unwrap_err();
        assert!(
            e.is_transient() && matches!(e, PullError::Transient { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("transfer cut"), "{e}");
        assert_eq!(files_in(inbox.path()), ["big.xml"]);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_corrupted_download_is_retried_then_refused() {
        let bank = tempfile::tempdir().unwrap();
        let inbox = tempfile::tempdir().unwrap();
        bank_file(bank.path(), "a.xml", b"<statement>42.00</statement>", 10);
        let sim = sim(sim_config(bank.path())).await;
        let mut src = source(&sim.base_url());
        src.retries = 2;
        let client = HttpsClient::new(&src).unwrap();
        let files = client.list(None).await.unwrap();
        let dest = inbox.path().join("a.xml");

        sim.fail_file("a.xml", FailMode::BadBody, 2);
        client.download(&files[0], &dest).await.unwrap();
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            b"<statement>42.00</statement>"
        );
        assert_eq!(sim.requests().len(), 4);
        std::fs::remove_file(&dest).unwrap();

        sim.fail_file("a.xml", FailMode::BadBody, 3);
        let e = client.download(&files[0], &dest).await.unwrap_err();
        match &e {
            PullError::Integrity { name, reason } => {
                assert_eq!(name, "a.xml");
                assert!(reason.contains("SHA-256"), "{reason}");
            }
            other => panic!("expected Integrity, got {other}"),
        }
        assert_eq!(sim.requests().len(), 7, "1 + 2 retries");
        assert!(
            files_in(inbox.path()).is_empty(),
            "no file at dest, no temporary file"
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn unsafe_names_in_a_listing_are_refused() {
        for name in [
            "a..b.xml",
            "back\\slash.xml",
            "line\nbreak.xml",
            "bell\u{7}.xml",
        ] {
            let bank = tempfile::tempdir().unwrap();
            bank_file(bank.path(), name, b"x", 10);
            let sim = sim(sim_config(bank.path())).await;
            let client = HttpsClient::new(&source(&sim.base_url())).unwrap();
            let e = client.list(None).await.unwrap_err();
            assert!(matches!(e, PullError::Protocol(_)), "{name:?}: {e}");
            assert!(!e.is_transient());
            sim.shutdown().await;
        }
        for name in ["", ".", "../etc/passwd", "a/b", "..", &"x".repeat(256)] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert!(check_name("CAMT053_2026-11-25_001.xml").is_ok());

        // download() checks too, before any request.
        let bank = tempfile::tempdir().unwrap();
        let inbox = tempfile::tempdir().unwrap();
        let sim = sim(sim_config(bank.path())).await;
        let client = HttpsClient::new(&source(&sim.base_url())).unwrap();
        let evil = Listed {
            name: "../evil.xml".into(),
            size: 1,
            sha256: "0".repeat(64),
            created_at: "x".into(),
        };
        let e = client
            .download(&evil, &inbox.path().join("evil.xml"))
            .await
            .unwrap_err();
        assert!(matches!(e, PullError::Protocol(_)), "{e}");
        assert!(sim.requests().is_empty());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_listing_that_is_not_json_is_a_protocol_error() {
        let bank = tempfile::tempdir().unwrap();
        bank_file(bank.path(), "a.xml", b"x", 10);
        let sim = sim(sim_config(bank.path())).await;
        let client = HttpsClient::new(&source(&sim.base_url())).unwrap();
        sim.fail_next(FailMode::BadBody, 1);
        let e = client.list(None).await.unwrap_err();
        assert!(matches!(e, PullError::Protocol(_)), "{e}");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut src = source(&format!("http://127.0.0.1:{port}"));
        src.retries = 2;
        let e = HttpsClient::new(&src)
            .unwrap()
            .list(None)
            .await
            .unwrap_err();
        assert!(matches!(e, PullError::Transient { attempts: 3, .. }), "{e}");
        assert!(e.to_string().contains("cannot connect"), "{e}");
    }

    #[test]
    fn bad_settings_are_setup_errors_that_show_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = source("https://recon:pw-SECRET@bank.example/api");
        let e = HttpsClient::new(&src).unwrap_err();
        assert!(
            matches!(e, PullError::Setup(_)) && !e.to_string().contains("SECRET"),
            "{e}"
        );

        src.base_url = "https://bank.example/api".into();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        src.ca_cert = Some(junk.clone());
        let e = HttpsClient::new(&src).unwrap_err();
        assert!(
            matches!(e, PullError::Setup(_)) && e.to_string().contains("junk.pem"),
            "{e}"
        );

        src.ca_cert = None;
        std::fs::write(
            &junk,
            "-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        src.client_identity = Some(junk);
        let e = HttpsClient::new(&src).unwrap_err();
        assert!(matches!(e, PullError::Setup(_)), "{e}");
        assert!(!e.to_string().contains("SECRETSECRET"), "{e}");

        src.client_identity = Some(dir.path().join("missing.pem"));
        let e = HttpsClient::new(&src).unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }

    #[test]
    fn secrets_quoted_back_by_the_bank_are_scrubbed() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "pw-SECRET").unwrap();
        let mut src = source("https://bank.example");
        src.basic_user = Some("recon".into());
        src.password_file = Some(pw);
        let c = HttpsClient::new(&src).unwrap();
        let req = c.get(&c.url(&["files"])).build().unwrap();
        let header = req.headers()["authorization"].to_str().unwrap().to_string();
        let cred = header.split_once(' ').unwrap().1;
        let echoed = format!("denied: Authorization: {header} (password pw-SECRET)");
        let clean = c.redact(&echoed, Some(cred));
        assert_eq!(clean, "denied: Authorization: Basic *** (password ***)");
    }

    #[test]
    fn urls_keep_the_base_path() {
        let mut src = source("https://bank.example/api/v1/");
        src.base_url = "https://bank.example/api/v1/".into();
        let c = HttpsClient::new(&src).unwrap();
        assert_eq!(
            c.url(&["files"]).as_str(),
            "https://bank.example/api/v1/files"
        );
        src.base_url = "https://bank.example/api/v1".into();
        let c = HttpsClient::new(&src).unwrap();
        assert_eq!(
            c.url(&["files", "a b/c.xml"]).as_str(),
            "https://bank.example/api/v1/files/a%20b%2Fc.xml"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for attempt in 0..5 {
            let base = 100u64 << attempt;
            let d = backoff(100, attempt).as_millis() as u64;
            assert!(
                d >= base / 2 && d <= base * 3 / 2,
                "attempt {attempt}: {d} ms"
            );
        }
        assert_eq!(backoff(u64::MAX, 40), MAX_BACKOFF);
    }

    /// A throwaway PKI: a CA, a server certificate for `localhost`, a client identity.
    struct Pki {
        dir: tempfile::TempDir,
    }

    impl Pki {
        fn new() -> Pki {
            use rcgen::{
                BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
                KeyPair, KeyUsagePurpose,
            };
            let dir = tempfile::tempdir().unwrap();
            let ca_key = KeyPair::generate().unwrap();
            let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca.distinguished_name
                .push(DnType::CommonName, "billrecon test bank CA");
            ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let ca = ca.self_signed(&ca_key).unwrap();

            let server_key = KeyPair::generate().unwrap();
            let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let server = server.signed_by(&server_key, &ca, &ca_key).unwrap();

            let client_key = KeyPair::generate().unwrap();
            let mut client = CertificateParams::new(vec!["billrecon".to_string()]).unwrap();
            client
                .distinguished_name
                .push(DnType::CommonName, "billrecon");
            client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let client = client.signed_by(&client_key, &ca, &ca_key).unwrap();

            let d = dir.path();
            std::fs::write(d.join("ca.pem"), ca.pem()).unwrap();
            std::fs::write(d.join("server.pem"), server.pem()).unwrap();
            std::fs::write(d.join("server.key"), server_key.serialize_pem()).unwrap();
            let identity = format!("{}{}", client.pem(), client_key.serialize_pem());
            std::fs::write(d.join("client-identity.pem"), identity).unwrap();
            Pki { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }
    }

    async fn tls_sim(pki: &Pki, bank: &Path, require_client_cert: bool) -> BankSim {
        let mut cfg = sim_config(bank);
        cfg.tls = Some(crate::banksim::SimTls {
            cert_pem: pki.path("server.pem"),
            key_pem: pki.path("server.key"),
            client_ca_pem: require_client_cert.then(|| pki.path("ca.pem")),
        });
        sim(cfg).await
    }

    #[tokio::test]
    async fn https_with_the_bank_private_ca() {
        let pki = Pki::new();
        let bank = tempfile::tempdir().unwrap();
        let inbox = tempfile::tempdir().unwrap();
        bank_file(bank.path(), "a.xml", b"<a/>", 10);
        let sim = tls_sim(&pki, bank.path(), false).await;
        assert!(sim.base_url().starts_with("https://localhost:"));
        let mut src = source(&sim.base_url());
        src.retries = 0;

        // Without the bank's CA the server certificate is not trusted: a TLS failure.
        let e = HttpsClient::new(&src)
            .unwrap()
            .list(None)
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("UnknownIssuer"), "{e}");

        src.ca_cert = Some(pki.path("ca.pem"));
        let client = HttpsClient::new(&src).unwrap();
        let files = client.list(None).await.unwrap();
        assert_eq!(files.len(), 1);
        let dest = inbox.path().join("a.xml");
        client.download(&files[0], &dest).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"<a/>");
        // Over HTTP/2 (negotiated by ALPN) a cut body is retried as well.
        sim.fail_file("a.xml", FailMode::CutBody, 1);
        src.retries = 1;
        let client = HttpsClient::new(&src).unwrap();
        let again = inbox.path().join("again.xml");
        client.download(&files[0], &again).await.unwrap();
        assert_eq!(std::fs::read(&again).unwrap(), b"<a/>");
        assert_eq!(sim.requests().len(), 4);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn mutual_tls_needs_the_client_identity() {
        let pki = Pki::new();
        let bank = tempfile::tempdir().unwrap();
        bank_file(bank.path(), "a.xml", b"<a/>", 10);
        let sim = tls_sim(&pki, bank.path(), true).await;
        let mut src = source(&sim.base_url());
        src.retries = 0;
        src.ca_cert = Some(pki.path("ca.pem"));

        let e = HttpsClient::new(&src)
            .unwrap()
            .list(None)
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("CertificateRequired"), "{e}");

        src.client_identity = Some(pki.path("client-identity.pem"));
        let files = HttpsClient::new(&src).unwrap().list(None).await.unwrap();
        assert_eq!(files.len(), 1);
        sim.shutdown().await;
    }
}
