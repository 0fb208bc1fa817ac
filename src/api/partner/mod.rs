//! The partner API, `/partner/v1`: what partner banks call (issue 8). Each bank has its own
//! credentials (`billrecon partners token BANK`) and sees only its own data: a handler
//! answers 404 for another bank's data, exactly as for data that does not exist.
//!
//! Public: `GET /partner/v1/openapi.json` (the API's description). Everything else goes
//! through [`auth`]'s middleware (token, bank configured, rate limit, signature, replay) and
//! errors are [`error::PartnerError`] (`{"error": {"code", "message"}}`).
//!
//! **Adding a route.** Add it to [`protected_routes`] (or to a function of your module that
//! returns a `Router<Arc<DaemonState>>`, merged there); its handler takes
//! `Extension<Partner>` for the authenticated bank and returns `Result<_, PartnerError>`:
//!
//! ```ignore
//! // in protected_routes():
//! .route("/partner/v1/payments", post(payments::post))
//! // the handler:
//! async fn post(
//!     State(state): State<Arc<DaemonState>>,
//!     Extension(partner): Extension<Partner>,
//!     body: Result<Json<PaymentIn>, JsonRejection>,
//! ) -> Result<Json<PaymentOut>, PartnerError> { .. }
//! ```
//!
//! The middleware has already read the body (at most [`auth::BODY_LIMIT`]) and hands it on
//! unchanged, so `Json`, `Bytes` or `String` extractors work as usual. Routes that must be
//! public go in [`routes`] beside `openapi.json`, outside [`auth::protect`].

pub mod auth;
pub mod error;
pub mod handlers;

pub use auth::{Partner, PartnerGuard};
pub use error::PartnerError;

use crate::app::state::DaemonState;
use axum::extract::Extension;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

/// Every `/partner/v1` route: the public ones, and [`protected_routes`] behind the
/// middleware with a new [`PartnerGuard`] (its limiters and replay cache live as long as the
/// router: one per daemon process).
pub fn routes(state: &Arc<DaemonState>) -> Router<Arc<DaemonState>> {
    let guard = Arc::new(PartnerGuard::new(&state.app.banks));
    Router::new()
        .route("/partner/v1/openapi.json", get(openapi))
        .merge(auth::protect(protected_routes(), state.clone(), guard))
}

/// The routes that need an authenticated bank (handlers take `Extension<Partner>`).
pub fn protected_routes() -> Router<Arc<DaemonState>> {
    Router::new()
        .route("/partner/v1/whoami", get(whoami))
        .merge(handlers::routes())
}

/// `GET /partner/v1/whoami` → `{"bank_id": "..."}`: which bank the credentials are of (to
/// test a bank's set-up: token, signature, clock).
async fn whoami(Extension(partner): Extension<Partner>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "bank_id": partner.bank_id }))
}

/// `GET /partner/v1/openapi.json`: the API's description (public), kept in the repo as
/// `docs/openapi/partner-v1.json`.
async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../../docs/openapi/partner-v1.json"),
    )
}
