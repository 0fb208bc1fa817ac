//! HTTP (axum): `GET /healthz` (the process is up), `GET /readyz` (the database answers and
//! every bank is healthy, else 503 with the list of what is not), `GET /metrics`
//! (Prometheus text format).

use crate::scheduler::DaemonState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

pub fn router(state: Arc<DaemonState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
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
        if let Ok(counts) = crate::store::notices::counts(&mut conn).await {
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
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
