//! Who is calling the partner API, whether the request is genuine, and whether the bank is
//! within its rate.
//!
//! **Credentials.** A bank's token is 32 bytes from the operating system's generator
//! (`OsRng`), shown once as `bpk_` + 64 hex digits (a prefix of its own: a leaked token says
//! what it opens, and it can never be mistaken for a finance user's `brk_` token). Only the
//! SHA-256 hex digest is stored (`partner_credentials.token_sha256`). The middleware looks a
//! token up only in `partner_credentials`, and the users' extractor only in `user_tokens`:
//! a user token never opens `/partner/v1`, a partner token never opens `/api/v1` or `/ui`.
//! A credential works only while its bank is in the config *with* a `[bank.partner]` table:
//! taking the table away shuts the bank out without revoking anything.
//!
//! **Checks, in order** (each failure answers with [`PartnerError`]):
//! 1. `Authorization: Bearer bpk_...` of an active credential → else 401. Requests whose
//!    token is missing or not valid are counted per client address
//!    ([`crate::api::limits::PARTNER_INVALID_PER_ADDRESS`]); over that budget they get 429
//!    with `Retry-After` instead of 401. A valid token is never refused for its address.
//! 2. the bank is configured for the partner API → else 401; its client certificate when its
//!    config names one (mutual TLS) → else 401.
//! 3. the body is read (at most [`BODY_LIMIT`] bytes → else 413) and handed on unchanged.
//! 4. when the bank has a signing secret: `X-Billrecon-Timestamp: UNIX_SECONDS` within
//!    ±`replay_window_secs` of the server's clock, and `X-Billrecon-Signature: sha256=HEX`
//!    where HEX = HMAC-SHA256(secret, METHOD "\n" PATH_AND_QUERY "\n" TIMESTAMP "\n" BODY)
//!    (see [`signature`]; compared in constant time) → else 401 (counted against the client
//!    address like a bad token). A signature already accepted within the window is a replay
//!    → **409** `conflict` (not 401: the credentials are fine, a bank's retry just has to be
//!    signed anew with a fresh timestamp; idempotency of postings themselves is by the bank's
//!    transaction id, not by the signature). The used signatures are recorded in the database
//!    (`partner_signatures`, [`db::first_use`]) until their window ends: a replay is refused
//!    after a restart and by every daemon instance on the same database.
//! 5. the bank's rate limit (`rate_limit_per_sec` sustained, `burst` the bucket size; one
//!    limiter per bank) → else 429 with `Retry-After: SECONDS`. Counted only for a request
//!    that passed 1-4: someone holding a stolen token but not the signing secret, or
//!    replaying a captured request, cannot use up the bank's rate. (A 429 spends the
//!    signature: the retry is signed anew, as every retry.)
//! 6. [`Partner`] goes into the request's extensions; the credential's `last_used_at` is
//!    written at most once a minute, in the background (a request never waits for the
//!    writer lock).
//!
//! **State.** The limiters and the signing secrets (read once, when the router is built: a new
//! secret needs a restart, as any config change does) live in one [`PartnerGuard`] made when
//! the router is built and shared by its routes; they are per process: with several daemon
//! instances behind a balancer, each has its own limiters (a bank gets up to N times its
//! rate). The record of used signatures is in the database and shared by all of them.

use super::error::PartnerError;
use crate::api::limits::{self, FailureLimiter};
use crate::app::state::DaemonState;
use crate::app::App;
use crate::config::Bank;
use crate::store::partners as db;
use crate::store::Store;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Every partner token starts with this.
pub const TOKEN_PREFIX: &str = "bpk_";
/// The largest request body the partner API reads.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// The signed request's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-billrecon-timestamp";
/// `sha256=HEX` of [`signature`].
pub const SIGNATURE_HEADER: &str = "x-billrecon-signature";

/// The bank a partner request is authenticated as. The middleware puts it in the request's
/// extensions: handlers take `Extension<Partner>` and show the bank only its own data.
#[derive(Clone, Debug)]
pub struct Partner {
    pub bank_id: String,
}

// ---- tokens and signatures ----

/// A new partner token and its SHA-256 hex digest (the only form stored).
pub fn new_token() -> (String, String) {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let digest = crate::api::auth::digest(&token);
    (token, digest)
}

/// Whether `s` looks like a partner token (prefix and 64 lowercase hex digits).
pub fn looks_like_token(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX).is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn signing_mac(
    secret: &[u8],
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    body: &[u8],
) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(method.as_bytes());
    mac.update(b"\n");
    mac.update(path_and_query.as_bytes());
    mac.update(b"\n");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    mac
}

/// The signature of a request, as lowercase hex (the header is `sha256=` + this):
/// HMAC-SHA256 with `secret` of `METHOD "\n" PATH_AND_QUERY "\n" TIMESTAMP "\n" BODY`, where
/// METHOD is upper case (`POST`), PATH_AND_QUERY is exactly as sent
/// (`/partner/v1/payments?x=1`), TIMESTAMP is the `X-Billrecon-Timestamp` header's text and
/// BODY the raw bytes (empty for a GET).
pub fn signature(
    secret: &[u8],
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    body: &[u8],
) -> String {
    let mac = signing_mac(secret, method, path_and_query, timestamp, body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `given` (the raw bytes of the header's hex) is the signature; constant time.
fn signature_matches(
    secret: &[u8],
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    body: &[u8],
    given: &[u8],
) -> bool {
    signing_mac(secret, method, path_and_query, timestamp, body)
        .verify_slice(given)
        .is_ok()
}

// ---- the use-cases, for the CLI (and an admin API later) ----

/// Issues a credential for a bank of the config that has a `[bank.partner]` table; returns
/// its id and the token (to be shown once). 404 for a bank not in the config, 403 for one
/// without `[bank.partner]`.
pub async fn issue_credential(
    app: &App,
    bank_id: &str,
    actor: &str,
) -> Result<(i64, String), PartnerError> {
    let Some(bank) = app.banks.iter().find(|b| b.id == bank_id) else {
        return Err(PartnerError::NotFound(format!(
            "bank `{bank_id}` is not in the config"
        )));
    };
    if bank.partner.is_none() {
        return Err(PartnerError::Forbidden(format!(
            "bank `{bank_id}` has no [bank.partner] table in the config: it cannot use the partner API"
        )));
    }
    let (token, digest) = new_token();
    let id = db::issue(&app.store, bank_id, &digest, actor).await?;
    Ok((id, token))
}

/// Revokes one credential of a bank (`id`) or all of them; returns how many were revoked.
/// 404 when the bank has no credential `id`, 409 when it is already revoked. Works for a
/// bank no longer in the config.
pub async fn revoke_credentials(
    store: &Store,
    bank_id: &str,
    id: Option<i64>,
    actor: &str,
) -> Result<i64, PartnerError> {
    match db::revoke(store, bank_id, id, actor).await? {
        db::RevokeOutcome::Revoked { count } => Ok(count),
        db::RevokeOutcome::AlreadyRevoked { at } => Err(PartnerError::Conflict(format!(
            "credential {} of bank `{bank_id}` is already revoked (since {at})",
            id.unwrap_or_default()
        ))),
        db::RevokeOutcome::NotFound => Err(PartnerError::NotFound(format!(
            "bank `{bank_id}` has no credential {}",
            id.unwrap_or_default()
        ))),
    }
}

// ---- the guard: limiters, secrets, replay cache ----

struct BankPolicy {
    /// The SHA-256 (lower-case hex) of the client certificate the bank must present.
    client_cert: Option<String>,
    /// `Err` when the configured secret cannot be read: the bank's requests then fail (500)
    /// rather than go unsigned.
    secret: Result<Option<Vec<u8>>, String>,
    window_secs: i64,
    limiter: DefaultDirectRateLimiter,
}

/// The partner API's per-process state: each partner bank's rate limiter and signing secret,
/// and the per-address count of requests with tokens that are not valid. One per router (see
/// the module docs).
pub struct PartnerGuard {
    banks: HashMap<String, BankPolicy>,
    invalid: FailureLimiter<String>,
    /// When expired signature records are next purged from the database (Unix seconds).
    next_purge: AtomicI64,
}

impl PartnerGuard {
    /// The policies of the banks that have a `[bank.partner]` table.
    pub fn new(banks: &[Bank]) -> PartnerGuard {
        let banks = banks
            .iter()
            .filter_map(|b| {
                let p = b.partner.as_ref()?;
                let rate = NonZeroU32::new(p.rate_limit_per_sec).unwrap_or(NonZeroU32::MIN);
                let burst = NonZeroU32::new(p.burst).unwrap_or(NonZeroU32::MIN);
                let secret = p
                    .signing_secret()
                    .map(|s| s.map(String::into_bytes))
                    .inspect_err(|e| {
                        tracing::error!(bank = %b.id, error = %e, "partner API: signing secret unavailable; the bank's requests will fail")
                    });
                let policy = BankPolicy {
                    client_cert: p.client_cert_sha256.as_ref().map(|h| h.trim().to_lowercase()),
                    secret,
                    window_secs: i64::try_from(p.replay_window_secs).unwrap_or(i64::MAX / 4),
                    limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
                };
                Some((b.id.clone(), policy))
            })
            .collect();
        PartnerGuard {
            banks,
            invalid: FailureLimiter::new(limits::PARTNER_INVALID_PER_ADDRESS),
            next_purge: AtomicI64::new(0),
        }
    }

    /// Takes one request from the bank's rate; `Err(seconds to wait)` when over it.
    fn take(&self, policy: &BankPolicy) -> Result<(), u64> {
        policy.limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(policy.limiter.clock().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            secs.max(1)
        })
    }

    /// The answer to a request from `address` that failed authentication with `e`: `e`, or
    /// 429 once the address is over its budget of such requests.
    fn refused(&self, address: &str, e: PartnerError) -> PartnerError {
        match self.invalid.failed(&address.to_string()) {
            Some(wait) => {
                tracing::warn!(%address, "partner API: too many requests that failed authentication from this address");
                PartnerError::RateLimited(wait)
            }
            None => e,
        }
    }

    /// Records a signature accepted at `now` whose timestamp leaves the window at `until`;
    /// false when it was already used (a replay). In the database: see the module docs.
    async fn first_use(
        &self,
        store: &Store,
        bank_id: &str,
        sig: &[u8],
        until: i64,
        now: i64,
    ) -> Result<bool, PartnerError> {
        let next = self.next_purge.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_purge
                .compare_exchange(next, now + 60, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            if let Err(e) = db::purge_signatures(store, now).await {
                tracing::warn!(error = %e, "partner API: purging expired signatures");
            }
        }
        Ok(db::first_use(store, bank_id, &hex::encode(sig), until, now).await?)
    }
}

#[derive(Clone)]
struct GuardState {
    daemon: Arc<DaemonState>,
    guard: Arc<PartnerGuard>,
}

/// Layers the partner middleware over every route of `router` (use `route_layer` semantics:
/// only matched routes are guarded). The routes' handlers then take `Extension<Partner>`.
pub fn protect(
    router: Router<Arc<DaemonState>>,
    daemon: Arc<DaemonState>,
    guard: Arc<PartnerGuard>,
) -> Router<Arc<DaemonState>> {
    router.route_layer(axum::middleware::from_fn_with_state(
        GuardState { daemon, guard },
        middleware,
    ))
}

async fn middleware(State(s): State<GuardState>, req: Request, next: Next) -> Response {
    match check(&s, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, PartnerError> {
    let v = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            PartnerError::Unauthorized(
                "authentication required: `Authorization: Bearer bpk_...`".into(),
            )
        })?
        .to_str()
        .unwrap_or("");
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(PartnerError::Unauthorized(
            "expected `Authorization: Bearer bpk_...`".into(),
        )),
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn read_body(body: Body, declared: Option<u64>) -> Result<Bytes, PartnerError> {
    use futures_util::StreamExt;
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(PartnerError::TooLarge(BODY_LIMIT));
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| PartnerError::Invalid(format!("reading the request body: {e}")))?;
        if buf.len() + chunk.len() > BODY_LIMIT {
            return Err(PartnerError::TooLarge(BODY_LIMIT));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// The checks of the module docs; the request to hand on (body restored, [`Partner`] added).
async fn check(s: &GuardState, req: Request) -> Result<Request, PartnerError> {
    let store = &s.daemon.app.store;
    let address = limits::client_address_of(
        req.headers(),
        req.extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0),
        &s.daemon.app.config.daemon.client_address_header,
    );
    let token = bearer(req.headers()).map_err(|e| s.guard.refused(&address, e))?;
    let credential = if looks_like_token(token) {
        let digest = crate::api::auth::digest(token);
        let mut conn = store
            .pool()
            .acquire()
            .await
            .map_err(PartnerError::internal)?;
        db::lookup(&mut conn, &digest).await?
    } else {
        None
    };
    let Some(credential) = credential else {
        return Err(s.guard.refused(
            &address,
            PartnerError::Unauthorized("the token is not valid (unknown or revoked)".into()),
        ));
    };
    let bank_id = credential.bank_id.clone();
    let Some(policy) = s.guard.banks.get(&bank_id) else {
        tracing::info!(bank = %bank_id, "partner API: refused a bank not configured for it");
        return Err(PartnerError::Unauthorized(format!(
            "bank `{bank_id}` is not enabled for the partner API"
        )));
    };
    if let Some(want) = &policy.client_cert {
        let got = req
            .extensions()
            .get::<crate::api::tls::PeerCert>()
            .and_then(|p| p.sha256.as_deref());
        if got != Some(want.as_str()) {
            tracing::info!(bank = %bank_id, "partner API: refused without the bank's client certificate");
            return Err(PartnerError::Unauthorized(
                "this bank must present its client certificate (mutual TLS)".into(),
            ));
        }
    }

    let (parts, body) = req.into_parts();
    let declared = header_text(&parts.headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.parse::<u64>().ok());
    let body = read_body(body, declared).await?;

    let secret = policy.secret.as_ref().map_err(|e| {
        PartnerError::internal(anyhow::anyhow!(
            "bank {bank_id}: signing secret unavailable: {e}"
        ))
    })?;
    if let Some(secret) = secret {
        let unsigned = |what: &str| {
            s.guard.refused(
                &address,
                PartnerError::Unauthorized(format!(
                    "{what}: this bank's requests must be signed (`X-Billrecon-Timestamp: UNIX_SECONDS`, `X-Billrecon-Signature: sha256=HEX`)"
                )),
            )
        };
        let ts_text = header_text(&parts.headers, TIMESTAMP_HEADER)
            .ok_or_else(|| unsigned("no X-Billrecon-Timestamp"))?;
        let given = header_text(&parts.headers, SIGNATURE_HEADER)
            .ok_or_else(|| unsigned("no X-Billrecon-Signature"))?;
        let ts: i64 = ts_text
            .parse()
            .ok()
            .filter(|_| ts_text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| unsigned("X-Billrecon-Timestamp is not Unix seconds"))?;
        let now = chrono::Utc::now().timestamp();
        if ts.abs_diff(now) > policy.window_secs as u64 {
            return Err(s.guard.refused(
                &address,
                PartnerError::Unauthorized(format!(
                    "X-Billrecon-Timestamp {ts} is more than {} s from the server's time {now}",
                    policy.window_secs
                )),
            ));
        }
        let given = given
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| unsigned("X-Billrecon-Signature is not `sha256=HEX`"))?;
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if !signature_matches(
            secret,
            parts.method.as_str(),
            path_and_query,
            ts_text,
            &body,
            &given,
        ) {
            return Err(s.guard.refused(
                &address,
                PartnerError::Unauthorized("the signature does not match the request".into()),
            ));
        }
        if !s
            .guard
            .first_use(
                store,
                &bank_id,
                &given,
                ts.saturating_add(policy.window_secs),
                now,
            )
            .await?
        {
            tracing::warn!(bank = %bank_id, %address, "partner API: a replayed signature refused");
            return Err(PartnerError::Conflict(
                "this signature was already used (a replay): sign the retry anew with a fresh timestamp"
                    .into(),
            ));
        }
    }
    // only now, for an authentic request, is the bank's rate counted
    s.guard.take(policy).map_err(PartnerError::RateLimited)?;

    let at = chrono::Utc::now();
    if db::touch_due(credential.last_used_at.as_deref(), at) {
        touch_later(store.clone(), credential.id, at);
    }
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut().insert(Partner { bank_id });
    Ok(req)
}

/// Credential ids whose `last_used_at` update is under way.
static TOUCHING: Mutex<Option<HashSet<i64>>> = Mutex::new(None);

fn touch_later(store: Store, id: i64, at: chrono::DateTime<chrono::Utc>) {
    {
        let Ok(mut t) = TOUCHING.lock() else { return };
        if !t.get_or_insert_with(HashSet::new).insert(id) {
            return;
        }
    }
    tokio::spawn(async move {
        let result = async {
            let _w = store.writer().await;
            let mut conn = store
                .write_pool()
                .acquire()
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            db::touch(&mut conn, id, at).await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(
                error = format!("{e:#}"),
                "recording a partner credential's use"
            );
        }
        if let Ok(mut t) = TOUCHING.lock() {
            if let Some(t) = t.as_mut() {
                t.remove(&id);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_method_path_timestamp_and_body() {
        // computed independently: printf 'POST\n/partner/v1/payments?x=1\n1700000000\n{"a":1}' |
        //   openssl dgst -sha256 -hmac s3cret
        let s = signature(
            b"s3cret",
            "POST",
            "/partner/v1/payments?x=1",
            "1700000000",
            br#"{"a":1}"#,
        );
        assert_eq!(s.len(), 64);
        assert_eq!(
            s,
            "00602956c208dc12b14242efb5932ee29ec31f3679de1df7495ed41e85742247"
        );
        let raw = hex::decode(&s).unwrap();
        let ok = |m: &str, p: &str, t: &str, b: &[u8], sig: &[u8]| {
            signature_matches(b"s3cret", m, p, t, b, sig)
        };
        assert!(ok(
            "POST",
            "/partner/v1/payments?x=1",
            "1700000000",
            br#"{"a":1}"#,
            &raw
        ));
        // every part counts
        assert!(!ok(
            "PUT",
            "/partner/v1/payments?x=1",
            "1700000000",
            br#"{"a":1}"#,
            &raw
        ));
        assert!(!ok(
            "POST",
            "/partner/v1/payments?x=2",
            "1700000000",
            br#"{"a":1}"#,
            &raw
        ));
        assert!(!ok(
            "POST",
            "/partner/v1/payments?x=1",
            "1700000001",
            br#"{"a":1}"#,
            &raw
        ));
        assert!(!ok(
            "POST",
            "/partner/v1/payments?x=1",
            "1700000000",
            br#"{"a":2}"#,
            &raw
        ));
        assert!(!signature_matches(
            b"other",
            "POST",
            "/partner/v1/payments?x=1",
            "1700000000",
            br#"{"a":1}"#,
            &raw
        ));
        assert!(!ok(
            "POST",
            "/partner/v1/payments?x=1",
            "1700000000",
            br#"{"a":1}"#,
            &raw[..16]
        ));
    }

    #[test]
    fn tokens_are_prefixed_and_not_user_tokens() {
        let (t, d) = new_token();
        assert!(t.starts_with("bpk_") && t.len() == 68);
        assert!(looks_like_token(&t));
        assert!(!crate::api::auth::looks_like_token(&t));
        assert_eq!(d, crate::api::auth::digest(&t));
        let (u, _) = crate::api::auth::new_token();
        assert!(!looks_like_token(&u));
        assert_ne!(new_token().0, t);
    }
}
