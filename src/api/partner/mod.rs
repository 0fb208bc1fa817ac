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

pub use auth::{Partner, PartnerGuard};
pub use error::PartnerError;

use crate::scheduler::DaemonState;
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
    Router::new().route("/partner/v1/whoami", get(whoami))
}

/// `GET /partner/v1/whoami` → `{"bank_id": "..."}`: which bank the credentials are of (to
/// test a bank's set-up: token, signature, clock).
async fn whoami(Extension(partner): Extension<Partner>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "bank_id": partner.bank_id }))
}

/// `GET /partner/v1/openapi.json`: the API's description (public).
async fn openapi() -> Json<serde_json::Value> {
    let error = serde_json::json!({
        "description": "an error",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    });
    Json(serde_json::json!({
        "openapi": "3.0.3",
        "info": {
            "title": "billrecon partner API",
            "version": "1",
            "description": "For partner banks. Authenticate with `Authorization: Bearer bpk_...`. \
    When the bank's requests must be signed: `X-Billrecon-Timestamp: UNIX_SECONDS` (within the \
    replay window of the server's clock) and `X-Billrecon-Signature: sha256=HEX`, HEX = \
    HMAC-SHA256(secret, METHOD + \"\\n\" + PATH_AND_QUERY + \"\\n\" + TIMESTAMP + \"\\n\" + BODY). \
    A signature is accepted once (409 for a replay). Over the rate limit: 429 with Retry-After. \
    Bodies up to 1 MiB (413)."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": { "type": "string", "enum": [
                                "unauthorized", "forbidden", "not_found", "conflict",
                                "invalid", "rate_limited", "too_large", "internal"
                            ] },
                            "message": { "type": "string" }
                        }
                    } }
                }
            }
        },
        "security": [ { "bearer": [] } ],
        "paths": {
            "/partner/v1/whoami": { "get": {
                "summary": "The bank the credentials are of",
                "responses": {
                    "200": { "description": "the bank", "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["bank_id"],
                        "properties": { "bank_id": { "type": "string" } }
                    } } } },
                    "401": error, "409": error, "413": error, "429": error
                }
            } }
        }
    }))
}
