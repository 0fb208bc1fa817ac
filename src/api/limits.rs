//! Limits on failed authentication, and the client's address they are counted by.
//!
//! - **Web login** (`POST /ui/login`): failed attempts are counted per client address and per
//!   user name; once either is over its budget, the next attempts for it are refused with 429
//!   and `Retry-After` *before* the token is checked (so a guess during the block cannot
//!   succeed), until the budget refills. A successful login does not count.
//! - **Partner tokens** (`/partner/v1`): requests whose token is not valid are counted per
//!   client address; over the budget they are answered 429 with `Retry-After` instead of 401.
//!   A valid token is never refused for its address (a bank's forgotten job still sending a
//!   revoked token from the bank's own host must not shut out the bank's live postings); the
//!   bank's own rate ([`super::partner::auth`]) is counted only once a request is authentic.
//!
//! The counting is [`governor`]'s (GCRA: a bucket of `burst` that refills one every
//! `period`); the blocks are remembered beside it so that a key can be checked without
//! spending from it. All of it is per daemon process (see docs/SECURITY.md).

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed web logins from one address: 10 at once, then one more every 6 seconds.
pub const LOGIN_PER_ADDRESS: (u32, Duration) = (10, Duration::from_secs(6));
/// Failed web logins naming one user: 5 at once, then one more every 30 seconds.
pub const LOGIN_PER_USER: (u32, Duration) = (5, Duration::from_secs(30));
/// Partner API requests with a token that is not valid, from one address: 20 at once, then
/// one a second.
pub const PARTNER_INVALID_PER_ADDRESS: (u32, Duration) = (20, Duration::from_secs(1));

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// Counts failures per key; a key whose budget is spent is blocked until it has room again.
pub struct FailureLimiter<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    blocked: Mutex<HashMap<K, Instant>>,
    calls: std::sync::atomic::AtomicU64,
}

impl<K: Hash + Eq + Clone> FailureLimiter<K> {
    /// `burst` failures at once, then one more every `period`.
    pub fn new((burst, period): (u32, Duration)) -> FailureLimiter<K> {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        FailureLimiter {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            blocked: Mutex::new(HashMap::new()),
            calls: Default::default(),
        }
    }

    /// Seconds until `key` may try again, when it is blocked now.
    pub fn blocked(&self, key: &K) -> Option<u64> {
        let now = Instant::now();
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked
            .get(key)
            .filter(|until| **until > now)
            .map(|until| secs(*until - now))
    }

    /// Counts one failure of `key`. When that spends the last of its budget, `key` is blocked
    /// from now on (this failure is still answered as usual); when it was over its budget
    /// already, returns the seconds to wait (the answer is then 429).
    pub fn failed(&self, key: &K) -> Option<u64> {
        self.housekeeping();
        let (wait, over) = match self.limiter.check_key(key) {
            Ok(state) if state.remaining_burst_capacity() > 0 => return None,
            // the last failure allowed: the next may come when a cell is back
            Ok(state) => (state.quota().replenish_interval(), false),
            Err(not_until) => (
                not_until.wait_time_from(DefaultClock::default().now()),
                true,
            ),
        };
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked.insert(key.clone(), Instant::now() + wait);
        over.then(|| secs(wait))
    }

    /// Forgets keys whose buckets are full again, now and then (memory stays bounded by the
    /// keys seen within a refill period).
    fn housekeeping(&self) {
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % 1024 == 1023 {
            self.limiter.retain_recent();
            let now = Instant::now();
            self.blocked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, until| *until > now);
        }
    }
}

fn secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// A 429 with `Retry-After: SECONDS` and a plain-text reason.
pub fn too_many(what: &str, retry_after: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, retry_after.to_string())],
        format!("{what}; try again in {retry_after} s\n"),
    )
        .into_response()
}

/// The client's address: the last address of the configured header
/// (`daemon.client_address_header`, e.g. `X-Forwarded-For` as the daemon's own reverse proxy
/// appends it) when set, else the TCP peer's. `"unknown"` when neither is known (a router
/// served without connection info, as in some tests).
pub fn client_address(parts: &Parts, header_name: &str) -> String {
    client_address_of(
        &parts.headers,
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0),
        header_name,
    )
}

/// The client's address of a request (see [`client_address`]), as an extractor.
pub struct ClientAddress(pub String);

impl axum::extract::FromRequestParts<std::sync::Arc<crate::app::state::DaemonState>>
    for ClientAddress
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &std::sync::Arc<crate::app::state::DaemonState>,
    ) -> Result<ClientAddress, Self::Rejection> {
        Ok(ClientAddress(client_address(
            parts,
            &state.app.config.daemon.client_address_header,
        )))
    }
}

pub fn client_address_of(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    header_name: &str,
) -> String {
    if !header_name.is_empty() {
        if let Some(last) = headers
            .get_all(header_name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
        {
            return last.to_string();
        }
    }
    peer.map(|p| p.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_blocked_after_its_burst_and_others_are_not() {
        let l = FailureLimiter::<String>::new((3, Duration::from_secs(60)));
        let a = "10.0.0.1".to_string();
        let b = "10.0.0.2".to_string();
        for _ in 0..2 {
            assert_eq!(l.blocked(&a), None);
            assert_eq!(l.failed(&a), None);
        }
        assert_eq!(l.blocked(&a), None);
        assert_eq!(l.failed(&a), None, "the third failure spends the budget");
        let wait = l.blocked(&a).expect("blocked from now on");
        assert!((1..=60).contains(&wait), "{wait}");
        let wait = l.failed(&a).expect("a fourth is over the budget");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(l.blocked(&b), None);
        assert_eq!(l.failed(&b), None);
    }

    #[test]
    fn the_address_is_the_peer_unless_a_header_is_configured() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "203.0.113.9, 10.1.1.1".parse().unwrap());
        let peer: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        assert_eq!(client_address_of(&h, Some(peer), ""), "127.0.0.1");
        assert_eq!(
            client_address_of(&h, Some(peer), "x-forwarded-for"),
            "10.1.1.1"
        );
        assert_eq!(
            client_address_of(&HeaderMap::new(), Some(peer), "x-forwarded-for"),
            "127.0.0.1"
        );
        assert_eq!(client_address_of(&HeaderMap::new(), None, ""), "unknown");
    }
}
