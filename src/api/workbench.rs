//! The finance staff's JSON API under `/api/v1` (user tokens only; see [`super::auth`]):
//!
//! - `GET  /api/v1/exceptions` the queue (`status`, `reason`, `bank`, `escalated`,
//!   `min_amount`, `q`, `booked_from`, `booked_to`, `limit`), key accounts first, then by
//!   amount and age, or `sort=oldest` (viewer);
//! - `GET  /api/v1/exceptions/{id}` one exception: payment, suggestions, the one resolution
//!   that is clear for it (`one_click`, when one is), resolutions, audit;
//! - `POST /api/v1/exceptions/{id}/resolve` `{"action": "apply_bill", "bill_id": "..",
//!   "comment": ".."}` (see [`Action`]; clerk, write-off supervisor);
//! - `POST /api/v1/resolutions/{id}/approve|decline|reopen` `{"comment": ".."}` (supervisor),
//!   `POST /api/v1/resolutions/{id}/refund-paid` `{"reference": "..", "comment": ".."}`;
//! - `GET  /api/v1/audit?payment_id=&bill_id=&format=json|csv` the trail (viewer);
//! - `GET  /api/v1/reports/{kind}?date=&format=json|csv|html|xlsx` any report (viewer).

use super::auth::{Role, User};
use super::error::ApiError;
use crate::app::state::DaemonState;
use crate::reports::{ReportKind, TableFormat, TableWriter};
use crate::store::workbench::{self as q, AuditFilter, QueueFilter};
use crate::workbench::resolve::{self, Action, Outcome, WorkbenchError};
use crate::workbench::{self, Actor};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

pub fn routes() -> Router<Arc<DaemonState>> {
    Router::new()
        .route("/api/v1/exceptions", get(queue))
        .route("/api/v1/exceptions/{id}", get(detail))
        .route("/api/v1/exceptions/{id}/resolve", post(resolve_one))
        .route("/api/v1/resolutions/{id}/{step}", post(step))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/reports/{kind}", get(report))
}

impl From<WorkbenchError> for ApiError {
    fn from(e: WorkbenchError) -> ApiError {
        match e {
            WorkbenchError::NotFound(m) => ApiError::NotFound(m),
            WorkbenchError::Forbidden(m) => ApiError::Forbidden(m),
            WorkbenchError::Invalid(m) => ApiError::Unprocessable(m),
            WorkbenchError::Conflict(m) => ApiError::Conflict(m),
            WorkbenchError::Store(e) => e.into(),
        }
    }
}

pub(crate) fn actor(user: &User) -> Actor {
    Actor {
        name: user.name.clone(),
        role: user.role,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct QueueQuery {
    pub status: Option<String>,
    pub reason: Option<String>,
    pub bank: Option<String>,
    pub escalated: Option<bool>,
    /// in the ledger currency, e.g. `100.00`
    pub min_amount: Option<rust_decimal::Decimal>,
    pub q: Option<String>,
    /// the payment's booking day from / to (YYYY-MM-DD)
    pub booked_from: Option<chrono::NaiveDate>,
    pub booked_to: Option<chrono::NaiveDate>,
    /// `oldest`: oldest booking day first
    pub sort: Option<String>,
    pub limit: Option<i64>,
}

impl QueueQuery {
    pub(crate) fn filter(&self, state: &DaemonState) -> Result<QueueFilter, ApiError> {
        let min_minor = match self.min_amount {
            Some(m) => Some(
                crate::domain::Money::from_decimal(m, state.app.config.ledger.currency)
                    .map_err(|e| ApiError::Unprocessable(format!("min_amount: {e}")))?
                    .minor(),
            ),
            None => None,
        };
        if let Some(q) = &self.q {
            let n = q.trim().chars().count();
            if n > q::QUEUE_SEARCH_MAX_CHARS {
                return Err(ApiError::BadRequest(format!(
                    "q: the search text is {n} characters long; at most {} are searched for",
                    q::QUEUE_SEARCH_MAX_CHARS
                )));
            }
        }
        if let Some(l) = self.limit {
            if !(1..=q::QUEUE_LIMIT_MAX).contains(&l) {
                return Err(ApiError::BadRequest(format!(
                    "limit {l}: from 1 to {} items",
                    q::QUEUE_LIMIT_MAX
                )));
            }
        }
        Ok(QueueFilter {
            status: self.status.clone().filter(|s| !s.is_empty()),
            reason: self.reason.clone().filter(|s| !s.is_empty()),
            bank: self.bank.clone().filter(|s| !s.is_empty()),
            escalated: self.escalated,
            min_minor,
            q: self.q.clone(),
            booked_from: self.booked_from.map(|d| d.to_string()),
            booked_to: self.booked_to.map(|d| d.to_string()),
            oldest_first: self.sort.as_deref() == Some("oldest"),
            limit: self.limit,
        })
    }
}

async fn queue(
    State(state): State<Arc<DaemonState>>,
    user: User,
    Query(query): Query<QueueQuery>,
) -> Result<Response, ApiError> {
    user.require(Role::Viewer)?;
    let filter = query.filter(&state)?;
    let mut conn = state
        .app
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let items = q::queue(&mut conn, &filter).await?;
    Ok(Json(items).into_response())
}

/// An exception with its ranked suggestions, and the one resolution that is clear for it
/// (if one is).
#[derive(Debug, serde::Serialize)]
pub(crate) struct DetailView {
    #[serde(flatten)]
    pub detail: workbench::Detail,
    pub suggestions: Vec<crate::workbench::suggest::Suggestion>,
    pub one_click: Option<crate::workbench::suggest::OneClick>,
}

/// Candidates scored to decide whether one answer is clear.
const ALL_CANDIDATES: usize = 200;

pub(crate) async fn detail_view(state: &DaemonState, id: i64) -> Result<DetailView, ApiError> {
    let d = workbench::detail(&state.app.store, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no exception {id}")))?;
    if d.exception.status != "open" {
        return Ok(DetailView {
            detail: d,
            suggestions: vec![],
            one_click: None,
        });
    }
    let patterns = state
        .app
        .banks
        .iter()
        .find(|b| b.id == d.payment.bank_id)
        .map(|b| b.reference_patterns.clone())
        .unwrap_or_default();
    let mut conn = state
        .app
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let mut all =
        crate::workbench::suggest::suggest(&mut conn, d.payment.id, &patterns, ALL_CANDIDATES)
            .await?;
    let related = match d.exception.related_payment_id {
        Some(r) => q::payment(&mut conn, r).await?,
        None => None,
    };
    let one_click = crate::workbench::suggest::one_click(
        &d.exception.reason,
        &d.payment,
        related.as_ref(),
        &all,
        state.app.config.ledger.currency.as_str(),
    );
    all.truncate(crate::workbench::suggest::DEFAULT_LIMIT);
    Ok(DetailView {
        detail: d,
        suggestions: all,
        one_click,
    })
}

async fn detail(
    State(state): State<Arc<DaemonState>>,
    user: User,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    user.require(Role::Viewer)?;
    Ok(Json(detail_view(&state, id).await?).into_response())
}

#[derive(Debug, Deserialize)]
struct ResolveBody {
    comment: String,
    #[serde(flatten)]
    action: Action,
}

async fn resolve_one(
    State(state): State<Arc<DaemonState>>,
    user: User,
    Path(id): Path<i64>,
    body: Result<Json<ResolveBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    comment_fits(&body.comment)?;
    let o = resolve::resolve(
        &state.app.store,
        &state.app.config,
        &actor(&user),
        id,
        &body.action,
        &body.comment,
    )
    .await?;
    Ok(outcome(o))
}

/// 400 for a comment over [`resolve::COMMENT_MAX_CHARS`] (the audit trail keeps comments for
/// good), before anything is looked up.
pub(crate) fn comment_fits(comment: &str) -> Result<(), ApiError> {
    match resolve::comment_too_long(comment) {
        Some(m) => Err(ApiError::BadRequest(m)),
        None => Ok(()),
    }
}

fn outcome(o: Outcome) -> Response {
    let code = if o.status == "proposed" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    (code, Json(o)).into_response()
}

#[derive(Debug, Deserialize)]
struct StepBody {
    comment: String,
    reference: Option<String>,
}

async fn step(
    State(state): State<Arc<DaemonState>>,
    user: User,
    Path((id, step)): Path<(i64, String)>,
    body: Result<Json<StepBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    comment_fits(&body.comment)?;
    if let Some(r) = &body.reference {
        if r.trim().chars().count() > resolve::REFERENCE_MAX_CHARS {
            return Err(ApiError::BadRequest(format!(
                "the payout reference is longer than {} characters",
                resolve::REFERENCE_MAX_CHARS
            )));
        }
    }
    let store = &state.app.store;
    let a = actor(&user);
    let o = match step.as_str() {
        "approve" => resolve::approve(store, &a, id, &body.comment).await?,
        "decline" => resolve::decline(store, &a, id, &body.comment).await?,
        "reopen" => resolve::reopen(store, &a, id, &body.comment).await?,
        "refund-paid" => {
            let reference = body.reference.as_deref().unwrap_or("");
            resolve::refund_paid(store, &a, id, reference, &body.comment).await?
        }
        other => {
            return Err(ApiError::NotFound(format!(
                "no step `{other}` (approve, decline, reopen, refund-paid)"
            )))
        }
    };
    Ok(outcome(o))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    payment_id: Option<i64>,
    bill_id: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    format: Option<String>,
}

async fn audit(
    State(state): State<Arc<DaemonState>>,
    user: User,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    user.require(Role::Viewer)?;
    let mut conn = state
        .app
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let entries = q::audit(
        &mut conn,
        &AuditFilter {
            payment_id: query.payment_id,
            bill_id: query.bill_id,
            actor: query.actor,
            since: query.since,
        },
    )
    .await?;
    match query.format.as_deref() {
        None | Some("json") => Ok(Json(entries).into_response()),
        Some("csv") => {
            let mut buf = Vec::new();
            let mut w = TableWriter::new(&mut buf, TableFormat::Csv, q::AUDIT_COLUMNS)
                .map_err(ApiError::internal)?;
            for e in entries {
                w.row(e.cells()).map_err(ApiError::internal)?;
            }
            w.finish().map_err(ApiError::internal)?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"audit.csv\"",
                    ),
                ],
                buf,
            )
                .into_response())
        }
        Some(f) => Err(ApiError::BadRequest(format!("format `{f}`: json or csv"))),
    }
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    date: Option<chrono::NaiveDate>,
    format: Option<String>,
}

async fn report(
    State(state): State<Arc<DaemonState>>,
    user: User,
    Path(kind): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    user.require(Role::Viewer)?;
    let what = <ReportKind as clap::ValueEnum>::from_str(&kind, false)
        .map_err(|_| ApiError::NotFound(format!("no report `{kind}`")))?;
    let config = &state.app.config;
    let today = chrono::Utc::now()
        .with_timezone(&config.daemon.tz())
        .date_naive();
    let date = query.date.unwrap_or_else(|| what.default_date(today));
    let (columns, rows) = what
        .build(config, &state.app.store, date)
        .await
        .map_err(ApiError::internal)?;
    let lang = &config.reports.language;
    let name = format!("{}-{date}", what.name());
    match query.format.as_deref().unwrap_or("json") {
        "json" | "csv" => {
            let csv = query.format.as_deref() == Some("csv");
            let mut buf = Vec::new();
            let fmt = if csv {
                TableFormat::Csv
            } else {
                TableFormat::Json
            };
            let mut w =
                TableWriter::with_bom(&mut buf, fmt, columns, csv).map_err(ApiError::internal)?;
            for r in rows {
                w.row(r).map_err(ApiError::internal)?;
            }
            w.finish().map_err(ApiError::internal)?;
            let ct = if csv {
                "text/csv; charset=utf-8"
            } else {
                "application/json"
            };
            Ok(([(header::CONTENT_TYPE, ct)], buf).into_response())
        }
        "html" => {
            let html = crate::reports::html::report_page(what, date, columns, &rows, lang);
            Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
        }
        "xlsx" => {
            let bytes = crate::reports::xlsx::workbook(what, columns, &rows, date, lang)
                .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.xlsx\""),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        f => Err(ApiError::BadRequest(format!(
            "format `{f}`: json, csv, html or xlsx"
        ))),
    }
}
