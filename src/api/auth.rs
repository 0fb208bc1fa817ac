//! Who is calling the finance HTTP API, and what they may do.
//!
//! **Roles**, ordered: `viewer` (read) < `clerk` (resolve exceptions) < `supervisor` (reopen,
//! write off, approve refunds above the limit) < `admin` (users and tokens). A higher role
//! can do everything a lower one can: handlers call [`User::require`] with the least role
//! they need.
//!
//! **Tokens** are 32 bytes from the operating system's generator (`OsRng`), shown once as
//! `brk_` + 64 hex digits (the prefix makes a leaked token recognizable to secret scanners
//! and people). Only the SHA-256 hex digest is stored (`user_tokens.token_sha256`); a token
//! is found by its digest through the database's unique index. No constant-time comparison
//! is needed there: the attacker does not control the digest of a guess closely enough for
//! a timing difference to help, and a match needs a preimage of 256 random bits.
//! Kinds: `api` tokens (from `billrecon users add|token` or the admin API) never expire
//! and are accepted only as `Authorization: Bearer`; `session` tokens (from the web login,
//! `POST /ui/login`) expire after `exceptions.session_hours` and are accepted only from the
//! `billrecon_session` cookie.
//!
//! **Only users.** The [`User`] extractor looks only in `user_tokens` (joined with `users`).
//! Partner banks will have their own credentials table and extractor: a user token never
//! authenticates a partner request, and a partner credential never authenticates a user.
//!
//! **Web login.** `POST /ui/login` (form `user=NAME&token=...`: the token must be one of that
//! user's API tokens) trades a valid API token for a session
//! token in the cookie `billrecon_session` (HttpOnly, SameSite=Strict, Path=/, no Max-Age:
//! the server enforces the expiry) and redirects (303) to `/ui/`, or to `/ui/login?failed=1`.
//! `POST /ui/logout` revokes the session and clears the cookie. The cookie is marked
//! `Secure` only when the request came over TLS as a proxy reports it
//! (`X-Forwarded-Proto: https`): the daemon itself serves plain HTTP on loopback, where a
//! `Secure` cookie would never be sent back. Serve it to other hosts only behind a TLS proxy.
//!
//! **CSRF.** Besides SameSite=Strict, a request authenticated by the cookie whose method is
//! not GET/HEAD/OPTIONS is refused (403) when it carries an `Origin` that is not the `Host`
//! it was sent to, or `Sec-Fetch-Site: cross-site|same-site`. Bearer tokens are not sent by
//! browsers on their own, so they need no such check. Login and logout are checked the same
//! way. Failed logins are limited per client address and per user name
//! ([`super::limits`]): over the limit the form answers 429 with `Retry-After`, before the
//! token is even looked at.

use super::error::ApiError;
use super::limits::{self, FailureLimiter};
use crate::app::state::DaemonState;
use crate::store::users::{self as db, TokenKind};
use crate::store::Store;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The cookie of a web-login session.
pub const SESSION_COOKIE: &str = "billrecon_session";
/// Every user token starts with this.
pub const TOKEN_PREFIX: &str = "brk_";

pub use crate::workbench::{Role, UnknownRole};

/// A new token and its SHA-256 hex digest (the only form stored).
pub fn new_token() -> (String, String) {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let digest = digest(&token);
    (token, digest)
}

/// The SHA-256 hex digest of a token, as stored.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `s` looks like a user token (prefix and 64 lowercase hex digits).
pub fn looks_like_token(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX).is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A user name: 1-64 letters, digits, `.`, `_`, `-` or `@` (no `:`, so it never looks like
/// the CLI's `cli:USER` actors in the audit trail).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

// ---- the use-cases, shared by the admin API and the CLI ----

/// Adds a user and returns their first API token (to be shown once). `actor` is recorded in
/// the audit trail. 422 for a bad name, 409 when the name is taken (also by a revoked user:
/// names are never reused).
pub async fn add_user(
    store: &Store,
    name: &str,
    role: Role,
    actor: &str,
) -> Result<String, ApiError> {
    if !valid_name(name) {
        return Err(ApiError::Unprocessable(format!(
            "`{name}` is not a valid user name (1-64 letters, digits, `.`, `_`, `-`, `@`)"
        )));
    }
    let (token, digest) = new_token();
    db::add_user(store, name, role.as_str(), actor, &digest).await?;
    Ok(token)
}

/// A new API token for an active user (their other tokens stay valid). 404 unknown, 409
/// revoked.
pub async fn issue_api_token(store: &Store, name: &str, actor: &str) -> Result<String, ApiError> {
    let (token, digest) = new_token();
    match db::issue_token(store, name, &digest, TokenKind::Api, None, actor).await? {
        Some(()) => Ok(token),
        None => Err(ApiError::NotFound(format!("no user `{name}`"))),
    }
}

/// Revokes a user and all their tokens; returns how many tokens were revoked. 404 unknown,
/// 409 already revoked.
pub async fn revoke_user(store: &Store, name: &str, actor: &str) -> Result<i64, ApiError> {
    match db::revoke_user(store, name, actor).await? {
        db::RevokeOutcome::Revoked { tokens } => Ok(tokens),
        db::RevokeOutcome::AlreadyRevoked { at } => Err(ApiError::Conflict(format!(
            "user `{name}` is already revoked (since {at})"
        ))),
        db::RevokeOutcome::NotFound => Err(ApiError::NotFound(format!("no user `{name}`"))),
    }
}

/// The owner of an active token of that kind, recording its use (at most once a minute, in
/// the background so a request never waits for the writer).
pub async fn authenticate(
    store: &Store,
    token: &str,
    kind: TokenKind,
) -> Result<Option<User>, ApiError> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    let now = chrono::Utc::now();
    let owner = {
        let mut conn = store.pool().acquire().await.map_err(ApiError::internal)?;
        db::lookup(&mut conn, &digest(token), &db::stamp(now)).await?
    };
    let Some(owner) = owner.filter(|o| o.kind == kind.as_str()) else {
        return Ok(None);
    };
    let role: Role = owner.role.parse().map_err(ApiError::internal)?;
    if db::touch_due(owner.last_used_at.as_deref(), now) {
        touch_later(store.clone(), owner.token_id, now);
    }
    Ok(Some(User {
        name: owner.name,
        role,
    }))
}

/// Token ids whose `last_used_at` update is under way (so a burst of requests during a
/// long write does not queue one update per request).
static TOUCHING: Mutex<Option<HashSet<i64>>> = Mutex::new(None);

fn touch_later(store: Store, token_id: i64, at: chrono::DateTime<chrono::Utc>) {
    {
        let Ok(mut t) = TOUCHING.lock() else { return };
        if !t.get_or_insert_with(HashSet::new).insert(token_id) {
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
            db::touch(&mut conn, token_id, at).await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = format!("{e:#}"), "recording a token's use");
        }
        if let Ok(mut t) = TOUCHING.lock() {
            if let Some(t) = t.as_mut() {
                t.remove(&token_id);
            }
        }
    });
}

// ---- the extractor ----

/// The authenticated user of a request: from `Authorization: Bearer <api token>`, else from
/// the `billrecon_session` cookie (a web-login session). Rejects with 401 (JSON) when there
/// are no valid credentials, and with 403 for a cross-origin cookie-authenticated write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
}

impl User {
    /// Ok when the user's role is `role` or higher; else 403 saying what is needed.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {role} role or higher; {} is {}",
                self.name, self.role
            )))
        }
    }
}

/// Where the credentials of a request are.
enum Credentials {
    Bearer(String),
    Cookie(String),
}

fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or("");
        return match v.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(Credentials::Bearer(token.trim().to_string())))
            }
            _ => Err(ApiError::Unauthorized(
                "expected `Authorization: Bearer <token>`".into(),
            )),
        };
    }
    Ok(CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .map(|c| Credentials::Cookie(c.value().to_string())))
}

/// False for a request a browser made on behalf of another site: an `Origin` that is not
/// the `Host`, or `Sec-Fetch-Site` cross-site / same-site. Requests without these headers
/// (not from a browser) pass.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |h: header::HeaderName| headers.get(h).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
            return false;
        }
    }
    let Some(origin) = text(header::ORIGIN) else {
        return true;
    };
    let Some(host) = text(header::HOST) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    origin_host.is_some_and(|o| o.trim_end_matches('/').eq_ignore_ascii_case(host))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<Arc<DaemonState>> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<DaemonState>,
    ) -> Result<User, ApiError> {
        let store = &state.app.store;
        match credentials(&parts.headers)? {
            None => Err(ApiError::Unauthorized(
                "authentication required: `Authorization: Bearer <token>` or a web-login session"
                    .into(),
            )),
            Some(Credentials::Bearer(token)) => authenticate(store, &token, TokenKind::Api)
                .await?
                .ok_or_else(|| {
                    ApiError::Unauthorized("the token is not valid (unknown or revoked)".into())
                }),
            Some(Credentials::Cookie(token)) => {
                if !is_safe(&parts.method) && !same_origin(&parts.headers) {
                    return Err(ApiError::Forbidden(
                        "cross-origin request refused (the Origin does not match the Host)".into(),
                    ));
                }
                authenticate(store, &token, TokenKind::Session)
                    .await?
                    .ok_or_else(|| {
                        ApiError::Unauthorized(
                            "the session is not valid (expired, logged out or revoked); log in again"
                                .into(),
                        )
                    })
            }
        }
    }
}

// ---- web login ----

/// The failed-login counters of one daemon process.
pub struct LoginLimits {
    by_address: FailureLimiter<String>,
    by_user: FailureLimiter<String>,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            by_address: FailureLimiter::new(limits::LOGIN_PER_ADDRESS),
            by_user: FailureLimiter::new(limits::LOGIN_PER_USER),
        }
    }
}

/// `POST /ui/login` and `POST /ui/logout`.
pub fn routes() -> Router<Arc<DaemonState>> {
    let limits = Arc::new(LoginLimits::default());
    Router::new()
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .layer(axum::Extension(limits))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    token: String,
}

fn session_cookie(value: String, headers: &HeaderMap) -> Cookie<'static> {
    let tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(tls)
        .build()
}

fn cross_origin() -> Response {
    ApiError::Forbidden("cross-origin request refused (the Origin does not match the Host)".into())
        .into_response()
}

#[allow(clippy::too_many_arguments)]
async fn login(
    State(state): State<Arc<DaemonState>>,
    axum::Extension(limits): axum::Extension<Arc<LoginLimits>>,
    limits::ClientAddress(address): limits::ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return cross_origin();
    }
    if let Some(wait) = limits.by_address.blocked(&address) {
        tracing::warn!(%address, "web login refused: too many failed attempts from this address");
        return limits::too_many("too many failed logins from this address", wait);
    }
    let Ok(Form(form)) = form else {
        return match limits.by_address.failed(&address) {
            Some(wait) => limits::too_many("too many failed logins from this address", wait),
            None => Redirect::to("/ui/login?failed=1").into_response(),
        };
    };
    // the name as the limiter's key: bounded, so a flood of long names costs little memory
    let name = form.user.trim();
    let key: String = name.to_lowercase().chars().take(64).collect();
    if let Some(wait) = limits.by_user.blocked(&key) {
        tracing::warn!(user = %key, "web login refused: too many failed attempts for this user");
        return limits::too_many("too many failed logins for this user", wait);
    }
    let failed = |why: &str| {
        tracing::info!(%address, "web login refused: {why}");
        let a = limits.by_address.failed(&address);
        let u = limits.by_user.failed(&key);
        match a.max(u) {
            Some(wait) => limits::too_many("too many failed logins", wait),
            None => Redirect::to("/ui/login?failed=1").into_response(),
        }
    };
    let store = &state.app.store;
    let user = match authenticate(store, form.token.trim(), TokenKind::Api).await {
        Ok(Some(u)) if u.name == name => u,
        Ok(Some(_)) => return failed("the token is not the named user's"),
        Ok(None) => return failed("token not valid"),
        Err(e) => return e.into_response(),
    };
    let (session, digest) = new_token();
    let hours = i64::from(state.app.config.exceptions.session_hours);
    let expires = db::stamp(chrono::Utc::now() + chrono::Duration::hours(hours));
    match db::issue_token(
        store,
        &user.name,
        &digest,
        TokenKind::Session,
        Some(expires),
        &user.name,
    )
    .await
    {
        Ok(Some(())) => {}
        Ok(None) => return Redirect::to("/ui/login?failed=1").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    }
    tracing::info!(user = %user.name, role = %user.role, "web login");
    (
        jar.add(session_cookie(session, &headers)),
        Redirect::to("/ui/"),
    )
        .into_response()
}

async fn logout(
    State(state): State<Arc<DaemonState>>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    if !same_origin(&headers) {
        return cross_origin();
    }
    if let Some(c) = jar.get(SESSION_COOKIE) {
        let store = &state.app.store;
        let digest = digest(c.value());
        let _w = store.writer().await;
        let revoked = match store.write_pool().acquire().await {
            Ok(mut conn) => db::revoke_token(&mut conn, &digest, TokenKind::Session).await,
            Err(e) => return ApiError::internal(e).into_response(),
        };
        if let Err(e) = revoked {
            return ApiError::from(e).into_response();
        }
    }
    (
        jar.remove(session_cookie(String::new(), &headers)),
        Redirect::to("/ui/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Viewer < Role::Clerk);
        assert!(Role::Clerk < Role::Supervisor);
        assert!(Role::Supervisor < Role::Admin);
        let admin = User {
            name: "a".into(),
            role: Role::Admin,
        };
        let viewer = User {
            name: "v".into(),
            role: Role::Viewer,
        };
        for r in Role::ALL {
            assert!(admin.require(r).is_ok());
        }
        assert!(viewer.require(Role::Viewer).is_ok());
        let e = viewer.require(Role::Clerk).unwrap_err();
        assert!(matches!(e, ApiError::Forbidden(_)));
        assert!(e.to_string().contains("clerk"), "{e}");
    }

    #[test]
    fn roles_parse_and_print() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(r.to_string(), r.as_str());
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
            assert_eq!(
                serde_json::from_str::<Role>(&format!("\"{r}\"")).unwrap(),
                r
            );
        }
        assert_eq!("Admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
        assert!(serde_json::from_str::<Role>("\"root\"").is_err());
    }

    #[test]
    fn tokens_are_prefixed_random_and_stored_as_digests() {
        let (t1, d1) = new_token();
        let (t2, _) = new_token();
        assert!(t1.starts_with("brk_"));
        assert_eq!(t1.len(), 4 + 64);
        assert!(looks_like_token(&t1));
        assert_ne!(t1, t2);
        assert_eq!(d1.len(), 64);
        assert_eq!(d1, digest(&t1));
        assert!(!d1.contains(&t1[4..]));
        // the digest is SHA-256 of the whole token text
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!looks_like_token("brk_xyz"));
        assert!(!looks_like_token(&t1[4..]));
        assert!(!looks_like_token(&t1.to_uppercase()));
    }

    #[test]
    fn names() {
        assert!(valid_name("alice"));
        assert!(valid_name("li.wei@finance"));
        assert!(valid_name("王芳"));
        assert!(!valid_name(""));
        assert!(!valid_name("cli:root"));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"x".repeat(65)));
    }

    #[test]
    fn origin_must_match_host() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert!(same_origin(&h(&[("host", "127.0.0.1:8080")])));
        assert!(same_origin(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(same_origin(&h(&[
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin")
        ])));
    }
}
