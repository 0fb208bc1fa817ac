//! HTTP (axum): `GET /healthz` (the process is up), `GET /readyz` (the database answers and
//! every bank is healthy, else 503 with the list of what is not), `GET /metrics`
//! (Prometheus text format; on `daemon.metrics_addr` instead when that is set, and only with
//! `Authorization: Bearer TOKEN` when `daemon.metrics_token_file|env` is set).
//!
//! Every response carries the security headers of [`headers`].

pub mod auth;
pub mod error;
pub mod headers;
pub mod limits;
pub mod partner;
pub mod tls;
pub mod ui;
pub mod users;
pub mod workbench;

use crate::app::state::DaemonState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

/// Everything the daemon serves on `daemon.http_addr`.
pub fn router(state: Arc<DaemonState>) -> Router {
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if state.app.config.daemon.metrics_addr.is_empty() {
        r = r.merge(metrics_routes(&state));
    }
    let r = r
        .route("/gateway/receipts", axum::routing::post(gateway_receipt))
        .merge(users::routes())
        .merge(workbench::routes())
        .merge(headers::ui(auth::routes().merge(ui::routes())))
        .merge(partner::routes(&state));
    headers::all(r).with_state(state)
}

/// What the daemon serves on `daemon.metrics_addr`: `/metrics` and `/healthz`.
pub fn metrics_router(state: Arc<DaemonState>) -> Router {
    let r = metrics_routes(&state).route("/healthz", get(healthz));
    headers::all(r).with_state(state)
}

/// `/metrics`, behind the bearer token when one is configured.
fn metrics_routes(state: &Arc<DaemonState>) -> Router<Arc<DaemonState>> {
    let token = state
        .app
        .config
        .daemon
        .metrics_token()
        .map(|t| t.map(|t| auth::digest(&t)));
    if let Err(e) = &token {
        tracing::error!(error = %e, "/metrics will answer 503");
    }
    Router::new()
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            metrics_auth,
        ))
}

/// With a metrics token: 401 unless `Authorization: Bearer TOKEN` (compared as SHA-256
/// digests, in constant time).
async fn metrics_auth(
    State(token): State<Arc<Result<Option<String>, String>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use subtle::ConstantTimeEq;
    match token.as_ref() {
        Ok(None) => next.run(req).await,
        Ok(Some(want)) => {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| auth::digest(t.trim()));
            match given {
                Some(g) if bool::from(g.as_bytes().ct_eq(want.as_bytes())) => next.run(req).await,
                _ => (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "/metrics needs `Authorization: Bearer TOKEN` (daemon.metrics_token_file)\n",
                )
                    .into_response(),
            }
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the metrics token cannot be read (logged)\n",
        )
            .into_response(),
    }
}

/// The notification gateway's delivery receipt for a notice:
/// `{"idempotency_key": "...", "status": "delivered" | "undeliverable", "detail": "..."}`,
/// signed like the notices (`X-Billrecon-Signature: sha256=HEX`, HMAC-SHA256 of the body with
/// the gateway secret). 200 when recorded, 401 when the signature is wrong, 404 when no sent
/// notice has that key.
async fn gateway_receipt(
    State(state): State<Arc<DaemonState>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    use hmac::{Hmac, Mac};
    let Some(gw) = &state.app.config.dunning.gateway else {
        return (StatusCode::NOT_FOUND, "no gateway configured\n").into_response();
    };
    let Ok(secret) = gw.secret() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "gateway secret unavailable\n",
        )
            .into_response();
    };
    let given = headers
        .get("x-billrecon-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok());
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    mac.update(body.as_bytes());
    if given.is_none_or(|g| mac.verify_slice(&g).is_err()) {
        return (StatusCode::UNAUTHORIZED, "bad signature\n").into_response();
    }
    #[derive(serde::Deserialize)]
    struct Receipt {
        idempotency_key: String,
        status: String,
        detail: Option<String>,
    }
    let Ok(r) = serde_json::from_str::<Receipt>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected {idempotency_key, status, detail}\n",
        )
            .into_response();
    };
    let status = match r.status.as_str() {
        "delivered" => "delivered",
        "undeliverable" => "dead",
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "status: delivered or undeliverable\n",
            )
                .into_response()
        }
    };
    let _w = state.app.store.writer().await;
    let recorded = match state.app.store.write_pool().acquire().await {
        Ok(mut conn) => {
            crate::store::notices::confirm(
                &mut conn,
                &r.idempotency_key,
                status,
                r.detail.as_deref(),
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "delivery receipt");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    match recorded {
        Ok(true) => (StatusCode::OK, "recorded\n").into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, "no sent notice with that key\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "delivery receipt");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<DaemonState>>) -> Response {
    let database = match state.app.store.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let unhealthy = state.unhealthy();
    let banks = state.banks.lock().map(|b| b.clone()).unwrap_or_default();
    let ready = database == "ok" && unhealthy.is_empty();
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": database,
        "unhealthy_banks": unhealthy,
        "banks": banks,
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<DaemonState>>) -> Response {
    // what must survive restarts is read from the database at scrape time
    if let Ok(mut conn) = state.app.store.pool().acquire().await {
        if let Ok(open) = crate::store::export::open_exceptions_by_reason(&mut conn).await {
            state.metrics.exceptions_open.clear();
            for (reason, n) in open {
                state
                    .metrics
                    .exceptions_open
                    .get_or_create(&crate::metrics::ReasonLabel { reason })
                    .set(n);
            }
        }
    }
    if let Ok(mut conn) = state.app.store.pool().acquire().await {
        match crate::store::files::finding_counts(&mut conn).await {
            Err(e) => tracing::warn!(error = %e, "metrics: counting findings"),
            Ok(counts) => state.metrics.sync_findings(&counts),
        }
    }
    if let Ok(mut conn) = state.app.store.pool().acquire().await {
        match crate::store::notices::counts(&mut conn).await {
            Err(e) => tracing::warn!(error = %e, "metrics: counting notices"),
            Ok(counts) => {
                state.metrics.notices.clear();
                for (kind, stage, status, n) in counts {
                    state
                        .metrics
                        .notices
                        .get_or_create(&crate::metrics::NoticeLabel {
                            kind,
                            stage,
                            status,
                        })
                        .set(n);
                }
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
