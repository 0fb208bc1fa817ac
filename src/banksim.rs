//! A partner bank's file service, simulated: serves a folder of bank files over the protocol
//! that [`crate::ingest::https`] pulls (see there), for tests and demos (`billrecon bank-sim`).
//!
//! - `GET /files?since=CURSOR`: the regular files of the folder (not hidden, not `*.part`,
//!   `*.tmp`, `*.done`), oldest first, with `created_at` from the modification time (UTC,
//!   nine fractional digits, so the text compares like the time). A file that appears while
//!   the simulator runs gets at least the time it was first seen: a file moved in with an
//!   old modification time (`mv`, `cp -p`) would otherwise sort before a client's cursor and
//!   never be listed.
//! - `GET /files/{name}`: the bytes.
//! - `POST /_sim/fail?mode=500|hang|cut|badbody&count=N[&file=PATTERN]`: makes the next N
//!   requests (or the next N downloads of files whose name contains PATTERN) fail, for a
//!   human trying the daemon against a misbehaving bank. Needs no credentials.
//!
//! Wrong or missing credentials give 401, an unknown file 404. Injected 429 and 503 answers
//! carry `Retry-After: 1`, as a real bank's would.
//!
//! With [`SimTls`] it serves HTTPS (HTTP/2 or 1.1), and with `client_ca_pem` it requires a
//! client certificate signed by that CA (mutual TLS), as banks commonly do. It uses ring as
//! its crypto provider explicitly: rustls is built with two providers in this crate graph
//! (ring for reqwest, aws-lc-rs for axum-server), so it cannot pick one by itself.

use crate::ingest::https::Listed;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// What the simulator serves and how it checks clients.
#[derive(Clone)]
pub struct SimConfig {
    pub dir: PathBuf,
    /// When set, `Authorization: Bearer TOKEN` is accepted.
    pub bearer_token: Option<String>,
    /// When set, HTTP basic auth with this user and password is accepted.
    pub basic: Option<(String, String)>,
    pub tls: Option<SimTls>,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("dir", &self.dir)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "***"))
            .field("basic", &self.basic.as_ref().map(|(u, _)| (u, "***")))
            .field("tls", &self.tls)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct SimTls {
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    /// When set, client certificates signed by it are REQUIRED (mTLS).
    pub client_ca_pem: Option<PathBuf>,
}

/// How a request is made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Answer this HTTP status (429 and 503 with `Retry-After: 1`).
    Status(u16),
    /// Accept the request and never answer (until the simulator shuts down).
    Hang,
    /// Send the headers with the full `Content-Length`, then close mid-body.
    CutBody,
    /// Serve the bytes altered, so the SHA-256 no longer matches the listing.
    BadBody,
}

impl std::str::FromStr for FailMode {
    type Err = String;

    /// `hang`, `cut`, `badbody`, or an HTTP status from 400 to 599.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hang" => Ok(FailMode::Hang),
            "cut" => Ok(FailMode::CutBody),
            "badbody" => Ok(FailMode::BadBody),
            _ => match s.parse::<u16>() {
                Ok(n @ 400..=599) => Ok(FailMode::Status(n)),
                _ => Err(format!(
                    "fail mode `{s}`: use hang, cut, badbody or an HTTP status 400-599"
                )),
            },
        }
    }
}

/// A running simulator. Dropping it stops the server too; [`BankSim::shutdown`] also waits.
pub struct BankSim {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    handle: axum_server::Handle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

struct Shared {
    dir: PathBuf,
    /// SHA-256 of each accepted `Authorization` value (normalized); empty: no auth asked.
    accepted: Vec<[u8; 32]>,
    log: Mutex<Vec<String>>,
    fails: Mutex<Fails>,
    files: Mutex<FileMemory>,
    /// Cancelled at shutdown: ends the requests held by [`FailMode::Hang`].
    stop: CancellationToken,
}

#[derive(Default)]
struct Fails {
    next: Option<(FailMode, u32)>,
    by_file: Vec<(String, FailMode, u32)>,
}

#[derive(Default)]
struct FileMemory {
    /// Name -> the earliest `created_at` it may have: empty for files there at startup, the
    /// time of the first listing that saw it for the others.
    floor: HashMap<String, String>,
    /// Name -> (size, mtime, sha256): a file is hashed again only when it changes.
    digests: HashMap<String, (u64, SystemTime, String)>,
}

/// Locks a mutex, carrying on with the data if a holder panicked (the simulator's state
/// stays usable; the panic is reported where it happened).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl BankSim {
    /// Binds `addr` (port 0 picks a free port) and serves `cfg.dir` in the background.
    pub async fn start(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<BankSim> {
        let tls = match &cfg.tls {
            Some(t) => Some(tls_config(t)?),
            None => None,
        };
        if !cfg.dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("bank simulator folder {} does not exist", cfg.dir.display()),
            ));
        }
        let mut accepted = Vec::new();
        if let Some(t) = &cfg.bearer_token {
            accepted.push(digest(&format!("bearer {t}")));
        }
        if let Some((u, p)) = &cfg.basic {
            accepted.push(digest(&format!(
                "basic {}",
                base64(format!("{u}:{p}").as_bytes())
            )));
        }
        let mut memory = FileMemory::default();
        for name in visible_files(&cfg.dir)? {
            memory.floor.insert(name, String::new());
        }
        let shared = Arc::new(Shared {
            dir: cfg.dir.clone(),
            accepted,
            log: Mutex::default(),
            fails: Mutex::default(),
            files: Mutex::new(memory),
            stop: CancellationToken::new(),
        });

        let protocol = Router::new()
            .route("/files", get(list))
            .route("/files/{name}", get(download))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), gate));
        let app = Router::new()
            .merge(protocol)
            .route("/_sim/fail", post(control))
            .with_state(shared.clone());

        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let handle = axum_server::Handle::new();
        let is_tls = tls.is_some();
        let task = match tls {
            Some(tls) => tokio::spawn(
                axum_server::from_tcp_rustls(listener, tls)
                    .handle(handle.clone())
                    .serve(app.into_make_service()),
            ),
            None => tokio::spawn(
                axum_server::from_tcp(listener)
                    .handle(handle.clone())
                    .serve(app.into_make_service()),
            ),
        };
        Ok(BankSim {
            addr,
            tls: is_tls,
            shared,
            handle,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` with TLS (certificates name
    /// hosts, and `localhost` is the one a test certificate can carry).
    pub fn base_url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://127.0.0.1:{}", self.addr.port())
        }
    }

    /// The next `count` requests (listing or download) fail this way. Replaces what an
    /// earlier call left pending.
    pub fn fail_next(&self, mode: FailMode, count: u32) {
        lock(&self.shared.fails).next = (count > 0).then_some((mode, count));
    }

    /// Fail only downloads of files whose name contains `pattern`, `count` times.
    pub fn fail_file(&self, pattern: &str, mode: FailMode, count: u32) {
        lock(&self.shared.fails)
            .by_file
            .push((pattern.to_string(), mode, count));
    }

    /// Every protocol request received, in order, as `METHOD /path?query` (as sent,
    /// percent-encoding included); requests refused for their credentials too.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }

    /// Stops accepting, ends held requests, and waits (up to 5 s) for the server to finish.
    pub async fn shutdown(mut self) {
        self.shared.stop.cancel();
        self.handle.graceful_shutdown(Some(Duration::from_secs(2)));
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(error = %e, "bank simulator stopped with an error")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "bank simulator task failed"),
                Err(_) => tracing::warn!("bank simulator did not stop within 5 s"),
            }
        }
    }
}

impl Drop for BankSim {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        self.handle.shutdown();
    }
}

/// Runs until `shutdown` is cancelled (for the CLI).
pub async fn serve(
    cfg: SimConfig,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let dir = cfg.dir.clone();
    let mut sim = BankSim::start(cfg, addr).await?;
    tracing::info!(url = %sim.base_url(), dir = %dir.display(), "bank simulator listening");
    let Some(mut task) = sim.task.take() else {
        return Ok(());
    };
    tokio::select! {
        _ = shutdown.cancelled() => {
            sim.task = Some(task);
            sim.shutdown().await;
            Ok(())
        }
        res = &mut task => match res {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        },
    }
}

/// The server's TLS settings: its certificate chain and key, and when `client_ca_pem` is
/// set a verifier that requires a client certificate signed by that CA.
fn tls_config(tls: &SimTls) -> std::io::Result<axum_server::tls_rustls::RustlsConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &Path, e: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bank simulator TLS: {}: {e}", what.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert_pem)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(&tls.cert_pem, &e))?;
    if certs.is_empty() {
        return Err(bad(&tls.cert_pem, &"no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_pem).map_err(|e| bad(&tls.key_pem, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&tls.cert_pem, &e))?;
    let builder = match &tls.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(ca, &e))? {
                roots
                    .add(cert.map_err(|e| bad(ca, &e))?)
                    .map_err(|e| bad(ca, &e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| bad(ca, &e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| bad(&tls.key_pem, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(config),
    ))
}

/// Logs the request, then checks its credentials.
async fn gate(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let line = format!(
        "{} {}",
        req.method(),
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    lock(&s.log).push(line);
    if !s.authorized(req.headers()) {
        let mut resp = (StatusCode::UNAUTHORIZED, "credentials missing or wrong\n").into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"banksim\", Basic realm=\"banksim\""),
        );
        return resp;
    }
    next.run(req).await
}

impl Shared {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        if self.accepted.is_empty() {
            return true;
        }
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, cred)) = value.trim().split_once(' ') else {
            return false;
        };
        // Compared as digests: no early exit on the first differing byte of a secret.
        let d = digest(&format!("{} {}", scheme.to_ascii_lowercase(), cred.trim()));
        self.accepted.contains(&d)
    }

    /// The failure this request should suffer, if any (a per-file one first), used up.
    fn take_fail(&self, file: Option<&str>) -> Option<FailMode> {
        let mut f = lock(&self.fails);
        if let Some(name) = file {
            if let Some(i) = f
                .by_file
                .iter()
                .position(|(p, _, n)| *n > 0 && name.contains(p.as_str()))
            {
                let mode = f.by_file[i].1;
                f.by_file[i].2 -= 1;
                if f.by_file[i].2 == 0 {
                    f.by_file.remove(i);
                }
                return Some(mode);
            }
        }
        let (mode, n) = f.next?;
        f.next = (n > 1).then_some((mode, n - 1));
        Some(mode)
    }

    /// The listing of the folder now, oldest first.
    fn listing(&self) -> std::io::Result<Vec<Listed>> {
        let now = created_at(SystemTime::now());
        let mut out = Vec::new();
        for name in visible_files(&self.dir)? {
            let path = self.dir.join(&name);
            // A file may vanish between the directory read and here: skip it.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let mtime = meta.modified()?;
            let size = meta.len();
            let known = {
                let mem = lock(&self.files);
                mem.digests
                    .get(&name)
                    .filter(|(s, m, _)| *s == size && *m == mtime)
                    .map(|(_, _, d)| d.clone())
            };
            let sha256 = match known {
                Some(d) => d,
                None => {
                    let Ok(d) = sha256_file(&path) else { continue };
                    lock(&self.files)
                        .digests
                        .insert(name.clone(), (size, mtime, d.clone()));
                    d
                }
            };
            let floor = lock(&self.files)
                .floor
                .entry(name.clone())
                .or_insert_with(|| now.clone())
                .clone();
            let created = created_at(mtime).max(floor);
            out.push(Listed {
                name,
                size,
                sha256,
                created_at: created,
            });
        }
        out.sort_by(|a, b| (&a.created_at, &a.name).cmp(&(&b.created_at, &b.name)));
        Ok(out)
    }
}

async fn list(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let fail = s.take_fail(None);
    if let Some(resp) = early_failure(&s, fail).await {
        return resp;
    }
    let s2 = s.clone();
    let files = match tokio::task::spawn_blocking(move || s2.listing()).await {
        Ok(Ok(files)) => files,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "bank simulator cannot list its folder");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot list the folder\n",
            )
                .into_response();
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let since = q.get("since").map(String::as_str).unwrap_or("");
    let files: Vec<&Listed> = files
        .iter()
        .filter(|f| f.created_at.as_str() > since)
        .collect();
    let body = match serde_json::to_vec(&files) {
        Ok(b) => b,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let len = body.len() as u64;
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(body))]);
    body_response(stream, len, "application/json", fail)
}

async fn download(State(s): State<Arc<Shared>>, UrlPath(name): UrlPath<String>) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "no such file\n").into_response();
    if !is_listed_name(&name) || name.contains("..") || name.contains('\\') {
        return not_found();
    }
    let path = s.dir.join(&name);
    let fail = s.take_fail(Some(&name));
    if let Some(resp) = early_failure(&s, fail).await {
        return resp;
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return not_found(),
    };
    let size = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return not_found(),
    };
    body_response(file_chunks(file), size, "application/octet-stream", fail)
}

/// The failures that need no body: a status, or never answering.
async fn early_failure(s: &Shared, fail: Option<FailMode>) -> Option<Response> {
    match fail? {
        FailMode::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = (status, "simulated failure\n").into_response();
            if matches!(code, 429 | 503) {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Some(resp)
        }
        FailMode::Hang => {
            s.stop.cancelled().await;
            Some((StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response())
        }
        FailMode::CutBody | FailMode::BadBody => None,
    }
}

/// A response streaming `chunks` (`len` bytes in all), spoiled as `fail` says.
fn body_response<S>(
    chunks: S,
    len: u64,
    content_type: &'static str,
    fail: Option<FailMode>,
) -> Response
where
    S: futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    use futures_util::StreamExt;
    let (body, declared) = match fail {
        Some(FailMode::CutBody) => {
            // Half the bytes, then an error: the server drops the connection mid-body.
            let keep = len / 2;
            let cut = chunks
                .scan(0u64, move |sent, chunk| {
                    let out = chunk.map(|c| {
                        let room = keep.saturating_sub(*sent) as usize;
                        *sent += c.len() as u64;
                        c.slice(..c.len().min(room))
                    });
                    futures_util::future::ready(Some(out))
                })
                .chain(futures_util::stream::once(async {
                    // A pause first, so the server flushes the headers and the first half
                    // before the error makes it drop the connection.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(std::io::Error::other("simulated cut"))
                }));
            (Body::from_stream(cut), len.max(1))
        }
        Some(FailMode::BadBody) if len == 0 => {
            let one =
                futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"!"))]);
            (Body::from_stream(one), 1)
        }
        Some(FailMode::BadBody) => {
            let spoiled = chunks.enumerate().map(|(i, chunk)| {
                chunk.map(|c| {
                    if i == 0 && !c.is_empty() {
                        let mut v = c.to_vec();
                        v[0] ^= 0x20;
                        Bytes::from(v)
                    } else {
                        c
                    }
                })
            });
            (Body::from_stream(spoiled), len)
        }
        _ => (Body::from_stream(chunks), len),
    };
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
    resp
}

/// `POST /_sim/fail?mode=...&count=N[&file=PATTERN]`.
async fn control(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mode: FailMode = match q.get("mode").map(|m| m.parse()) {
        Some(Ok(m)) => m,
        Some(Err(e)) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        None => return (StatusCode::BAD_REQUEST, "mode is required\n").into_response(),
    };
    let count = match q.get("count").map(|c| c.parse::<u32>()) {
        None => 1,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return (StatusCode::BAD_REQUEST, "count must be a number\n").into_response()
        }
    };
    let mut f = lock(&s.fails);
    match q.get("file") {
        Some(p) => {
            f.by_file.push((p.clone(), mode, count));
            format!("downloads of files matching `{p}` fail {count} time(s): {mode:?}\n")
        }
        None => {
            f.next = (count > 0).then_some((mode, count));
            format!("the next {count} request(s) fail: {mode:?}\n")
        }
    }
    .into_response()
}

/// The file's bytes in 64 KiB chunks.
fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Names the listing shows: not hidden, not a temporary or marker file.
fn is_listed_name(name: &str) -> bool {
    !(name.is_empty()
        || name.starts_with('.')
        || name.contains('/')
        || name.ends_with(".part")
        || name.ends_with(".tmp")
        || name.ends_with(".done"))
}

fn visible_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_listed_name(&name) && entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            names.push(name);
        }
    }
    Ok(names)
}

/// `2026-11-25T08:00:00.000000000Z`: always this width, so text order is time order.
fn created_at(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Standard base64 with padding (what HTTP basic auth uses).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> SimConfig {
        SimConfig {
            dir: dir.to_path_buf(),
            bearer_token: None,
            basic: None,
            tls: None,
        }
    }

    async fn start(cfg: SimConfig) -> BankSim {
        BankSim::start(cfg, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    }

    fn write(dir: &Path, name: &str, body: &[u8], mtime: SystemTime) {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    async fn listing(url: &str) -> Vec<Listed> {
        let resp = reqwest::get(url).await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    #[tokio::test]
    async fn lists_only_finished_files_oldest_first_after_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_593_600); // 2026-11-25T08:00:00Z
        write(dir.path(), "b.xml", b"bbb", t0);
        write(dir.path(), "a.xml", b"aa", t0); // same time: ordered by name
        write(dir.path(), "c.xml", b"c", t0 + Duration::from_nanos(1_500));
        for skipped in [".hidden", "d.xml.part", "e.tmp", "a.xml.done"] {
            write(dir.path(), skipped, b"x", t0);
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let sim = start(config(dir.path())).await;
        let base = sim.base_url();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");

        let all = listing(&format!("{base}/files")).await;
        let names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.xml", "b.xml", "c.xml"]);
        assert_eq!(all[0].created_at, "2026-11-25T08:00:00.000000000Z");
        assert_eq!(all[2].created_at, "2026-11-25T08:00:00.000001500Z");
        assert_eq!(all[0].size, 2);
        assert_eq!(all[1].sha256, hex::encode(Sha256::digest(b"bbb")));

        let after = listing(&format!(
            "{base}/files?since=2026-11-25T08%3A00%3A00.000000000Z"
        ))
        .await;
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].name, "c.xml");

        let bytes = reqwest::get(format!("{base}/files/b.xml"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"bbb");
        for missing in ["nope.xml", ".hidden", "d.xml.part", "..%2Fetc", "sub"] {
            let resp = reqwest::get(format!("{base}/files/{missing}"))
                .await
                .unwrap();
            assert_eq!(resp.status(), 404, "{missing}");
        }
        assert_eq!(
            sim.requests()[..3],
            [
                "GET /files",
                "GET /files?since=2026-11-25T08%3A00%3A00.000000000Z",
                "GET /files/b.xml"
            ]
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn credentials_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.bearer_token = Some("t0k".into());
        cfg.basic = Some(("user".into(), "pass word:1".into()));
        assert!(!format!("{cfg:?}").contains("t0k") && !format!("{cfg:?}").contains("pass word"));
        let sim = start(cfg).await;
        let url = format!("{}/files", sim.base_url());
        let http = reqwest::Client::new();
        let status = |r: reqwest::RequestBuilder| async move { r.send().await.unwrap().status() };

        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(status(http.get(&url).bearer_auth("t0k")).await, 200);
        assert_eq!(status(http.get(&url).bearer_auth("t0K")).await, 401);
        assert_eq!(
            status(http.get(&url).basic_auth("user", Some("pass word:1"))).await,
            200
        );
        assert_eq!(
            status(http.get(&url).basic_auth("user", Some("pass"))).await,
            401
        );
        assert_eq!(status(http.get(format!("{url}/x.xml"))).await, 401);
        assert_eq!(sim.requests().len(), 6, "refused requests are logged too");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn failures_can_be_injected_over_http() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.xml", b"abc", SystemTime::now());
        write(dir.path(), "b.xml", b"abc", SystemTime::now());
        let sim = start(config(dir.path())).await;
        let base = sim.base_url();
        let http = reqwest::Client::new();
        let post = |q: &str| http.post(format!("{base}/_sim/fail?{q}")).send();

        assert_eq!(post("mode=500&count=2").await.unwrap().status(), 200);
        assert_eq!(
            reqwest::get(format!("{base}/files"))
                .await
                .unwrap()
                .status(),
            500
        );
        assert_eq!(
            reqwest::get(format!("{base}/files/a.xml"))
                .await
                .unwrap()
                .status(),
            500
        );
        assert_eq!(
            reqwest::get(format!("{base}/files"))
                .await
                .unwrap()
                .status(),
            200
        );

        assert_eq!(post("mode=badbody&file=b.").await.unwrap().status(), 200);
        let a = reqwest::get(format!("{base}/files/a.xml")).await.unwrap();
        assert_eq!(&a.bytes().await.unwrap()[..], b"abc");
        let b = reqwest::get(format!("{base}/files/b.xml")).await.unwrap();
        assert_eq!(
            &b.bytes().await.unwrap()[..],
            b"Abc",
            "same size, other bytes"
        );

        sim.fail_next(FailMode::Status(503), 1);
        let r = reqwest::get(format!("{base}/files")).await.unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");

        assert_eq!(post("mode=cut").await.unwrap().status(), 200);
        let r = reqwest::get(format!("{base}/files/a.xml")).await.unwrap();
        assert_eq!(r.content_length(), Some(3));
        assert!(r.bytes().await.is_err(), "the body is cut");

        assert_eq!(post("mode=teapot").await.unwrap().status(), 400);
        assert_eq!(post("count=1").await.unwrap().status(), 400);
        assert!(
            !sim.requests().iter().any(|r| r.contains("_sim")),
            "control requests are not in the protocol log"
        );
        sim.shutdown().await;
    }

    #[test]
    fn fail_modes_parse() {
        assert_eq!("500".parse::<FailMode>(), Ok(FailMode::Status(500)));
        assert_eq!("hang".parse::<FailMode>(), Ok(FailMode::Hang));
        assert_eq!("cut".parse::<FailMode>(), Ok(FailMode::CutBody));
        assert_eq!("badbody".parse::<FailMode>(), Ok(FailMode::BadBody));
        assert!("200".parse::<FailMode>().is_err());
        assert!("slow".parse::<FailMode>().is_err());
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[tokio::test]
    async fn serve_runs_until_cancelled_and_bad_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let run = tokio::spawn(serve(
            config(dir.path()),
            "127.0.0.1:0".parse().unwrap(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!run.is_finished());
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .unwrap()
            .unwrap()
            .unwrap();

        let mut cfg = config(dir.path());
        cfg.tls = Some(SimTls {
            cert_pem: dir.path().join("c.pem"),
            key_pem: dir.path().join("k.pem"),
            client_ca_pem: None,
        });
        let e = BankSim::start(cfg, "127.0.0.1:0".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("c.pem"), "{e}");
        let e = BankSim::start(
            config(&dir.path().join("none")),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
