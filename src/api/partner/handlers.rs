//! The partner API's handlers (behind [`super::auth`]'s middleware): bills, payments,
//! reversals and the day's reconciliation. The rules are in [`crate::partner`]; a bank sees
//! only its own payments, and another bank's are answered exactly like ones that do not exist.

use super::{Partner, PartnerError};
use crate::app::state::DaemonState;
use crate::partner::{self as core, PaymentRequest};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;

pub fn routes() -> Router<Arc<DaemonState>> {
    Router::new()
        .route("/partner/v1/accounts/{account_no}/bills", get(bills))
        .route("/partner/v1/payments", post(post_payment))
        .route("/partner/v1/payments/{bank_txn_id}", get(payment))
        .route(
            "/partner/v1/payments/{bank_txn_id}/reversal",
            post(reversal),
        )
        .route("/partner/v1/reconciliation/{date}", get(reconciliation))
        .route("/partner/v1/settlement/{date}", get(settlement))
}

impl From<core::PartnerError> for PartnerError {
    fn from(e: core::PartnerError) -> PartnerError {
        match e {
            core::PartnerError::Invalid(m) => PartnerError::Invalid(m),
            core::PartnerError::NotFound(m) => PartnerError::NotFound(m),
            core::PartnerError::Conflict(m) => PartnerError::Conflict(m),
            core::PartnerError::Store(e) => e.into(),
        }
    }
}

fn bank(state: &DaemonState, partner: &Partner) -> Result<crate::config::Bank, PartnerError> {
    state
        .app
        .banks
        .iter()
        .find(|b| b.id == partner.bank_id)
        .cloned()
        .ok_or_else(|| PartnerError::Unauthorized("the bank is not configured".into()))
}

const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The first answer: 201; the same answer again: 201 with `Idempotent-Replayed: true`.
fn created<T: Serialize>(body: T, first: bool) -> Response {
    let mut r = (StatusCode::CREATED, Json(body)).into_response();
    if !first {
        r.headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    r
}

/// `GET /partner/v1/accounts/{account_no}/bills`: any account (customers pay at any bank).
async fn bills(
    State(state): State<Arc<DaemonState>>,
    Extension(_partner): Extension<Partner>,
    Path(account_no): Path<String>,
) -> Result<Response, PartnerError> {
    let b = core::open_bills(&state.app.store, &state.app.config, &account_no).await?;
    Ok(Json(b).into_response())
}

async fn post_payment(
    State(state): State<Arc<DaemonState>>,
    Extension(partner): Extension<Partner>,
    body: Result<Json<PaymentRequest>, JsonRejection>,
) -> Result<Response, PartnerError> {
    let Json(req) = body.map_err(|e| PartnerError::Invalid(e.body_text()))?;
    let bank = bank(&state, &partner)?;
    let posted = core::post_payment(&state.app.store, &state.app.config, &bank, &req).await?;
    if posted.first {
        tracing::info!(bank = %bank.id, txn = %req.bank_txn_id, status = %posted.answer.status, "real-time payment");
    }
    Ok(created(posted.answer, posted.first))
}

/// `GET /partner/v1/payments/{bank_txn_id}`: the answer given (and the reversal's, if any).
async fn payment(
    State(state): State<Arc<DaemonState>>,
    Extension(partner): Extension<Partner>,
    Path(txn): Path<String>,
) -> Result<Response, PartnerError> {
    let mut conn = state
        .app
        .store
        .pool()
        .acquire()
        .await
        .map_err(|e| PartnerError::Internal(e.into()))?;
    let p = crate::store::realtime::find_posting(&mut conn, &partner.bank_id, &txn)
        .await?
        .ok_or_else(|| PartnerError::NotFound(format!("no payment {txn}")))?;
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
    Ok(Json(serde_json::json!({
        "payment": parse(&p.response),
        "reversal": p.reversal_response.as_deref().map(parse),
    }))
    .into_response())
}

async fn reversal(
    State(state): State<Arc<DaemonState>>,
    Extension(partner): Extension<Partner>,
    Path(txn): Path<String>,
) -> Result<Response, PartnerError> {
    let bank = bank(&state, &partner)?;
    let (answer, first) = core::reverse(
        &state.app.store,
        &state.app.config,
        &bank,
        &txn,
        chrono::Utc::now(),
    )
    .await?;
    if first {
        tracing::info!(bank = %bank.id, %txn, status = %answer.status, "real-time reversal");
    }
    Ok(created(answer, first))
}

/// `GET /partner/v1/reconciliation/{date}`: the utility's view of the bank's business day
/// (its real-time postings), and after the end-of-day comparison its result.
async fn reconciliation(
    State(state): State<Arc<DaemonState>>,
    Extension(partner): Extension<Partner>,
    Path(date): Path<String>,
) -> Result<Response, PartnerError> {
    let day = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
        .map_err(|_| PartnerError::Invalid(format!("`{date}` is not a date (YYYY-MM-DD)")))?
        .to_string();
    let view =
        core::eod::bank_view(&state.app.store, &state.app.config, &partner.bank_id, &day).await?;
    Ok(Json(view).into_response())
}

/// `GET /partner/v1/settlement/{date}`: the bank's own rows of the daily settlement report
/// (the page the utility's finance officer signs), never another bank's or the totals.
async fn settlement(
    State(state): State<Arc<DaemonState>>,
    Extension(partner): Extension<Partner>,
    Path(date): Path<String>,
) -> Result<Response, PartnerError> {
    let day = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
        .map_err(|_| PartnerError::Invalid(format!("`{date}` is not a date (YYYY-MM-DD)")))?;
    let (columns, rows) = crate::reports::ReportKind::DailySettlement
        .build(&state.app.config, &state.app.store, day)
        .await
        .map_err(PartnerError::internal)?;
    let bank_col = columns.iter().position(|c| *c == "bank_id").unwrap_or(1);
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .into_iter()
        .filter(|r| r.get(bank_col).cloned().flatten().as_deref() == Some(partner.bank_id.as_str()))
        .map(|r| {
            columns
                .iter()
                .zip(r)
                .map(|(c, v)| {
                    (
                        c.to_string(),
                        v.map(serde_json::Value::String).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .collect();
    Ok(Json(rows).into_response())
}
