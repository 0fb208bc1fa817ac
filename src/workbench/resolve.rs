//! Resolutions of exceptions, their approval and reopening, and escalation.
//!
//! Every function here takes the store's writer lock and does its work in one transaction:
//! the payment's new state, its exception, allocations, customer credit, bills' paid amounts,
//! the resolution row and the audit entry are written together or not at all.
//!
//! Before a resolution a payment in the queue is always in the same state: status
//! `exception`, no account, nothing applied, credited, refunded or written off, its whole
//! amount held. That is why reopening can undo a resolution exactly: it takes back the
//! allocations (negative rows, rule `reopen`), the late fees its money was charged (`undo`
//! rows) and the credit (a negative credit row) and puts that state back.

use super::{Actor, Role};
use crate::config::Config;
use crate::domain::{money_text, normalize_key, Currency, Money};
use crate::matching::{
    allocate_parts, allocate_to, bill_total_due, settle_bill, undo_payment, FeePolicy, Overflow,
    Rule, Target,
};
use crate::store::matching::{
    apply_bill_deltas, insert_late_fees, BillDelta, NewAllocation, NewLateFee, PendingPayment,
};
use crate::store::workbench::{self as q, NewAudit, NewResolution, PaymentRow, PaymentState};
use crate::store::{self, DbContext, Store, StoreError, Val};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

/// What a person decides for a payment in the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// To this bill; what is left to the account's other open bills, then credit.
    ApplyBill { bill_id: String },
    /// To the account's open bills, oldest first, then credit.
    ApplyAccount { account_no: String },
    /// Across several bills, each part at most the bill's open balance; the rest as credit
    /// of `rest_to_account` (default: the bills' account, when they share one).
    Split {
        parts: Vec<SplitPart>,
        #[serde(default)]
        rest_to_account: Option<String>,
    },
    /// The whole amount as the account's credit.
    Credit { account_no: String },
    /// Back to the payer (default: the payer's account in the bank file). Above
    /// `exceptions.refund_approval_limit` a second person, a supervisor, must approve.
    Refund {
        #[serde(default)]
        to: Option<String>,
    },
    /// To this bill, writing off the small difference to its open balance (within
    /// `exceptions.write_off_limit`): a surplus is kept, a shortfall absorbed. Supervisor.
    WriteOff { bill_id: String },
    /// The same bank transaction was already counted: this copy carries no money.
    RejectDuplicate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitPart {
    pub bill_id: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::ApplyBill { .. } => "apply_bill",
            Action::ApplyAccount { .. } => "apply_account",
            Action::Split { .. } => "split",
            Action::Credit { .. } => "credit",
            Action::Refund { .. } => "refund",
            Action::WriteOff { .. } => "write_off",
            Action::RejectDuplicate => "reject_duplicate",
        }
    }

    /// The least role that may take this action.
    pub fn role(&self) -> Role {
        match self {
            Action::WriteOff { .. } => Role::Supervisor,
            _ => Role::Clerk,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkbenchError {
    #[error("{0}")]
    NotFound(String),
    /// The actor's role does not allow it (or four eyes are needed).
    #[error("{0}")]
    Forbidden(String),
    /// The request does not fit the payment or the bills.
    #[error("{0}")]
    Invalid(String),
    /// The state moved on (already resolved, awaiting approval, reversed since, ...).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, WorkbenchError>;

/// What a resolution (or approval, reopening) did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub resolution_id: i64,
    /// done, proposed (awaiting approval), declined or reopened
    pub status: String,
    pub payment_id: i64,
    pub payment: PaymentState,
    pub audit_id: i64,
}

fn require(actor: &Actor, role: Role, what: &str) -> Result<()> {
    if actor.role >= role {
        Ok(())
    } else {
        Err(WorkbenchError::Forbidden(format!(
            "{what} needs the {role} role; {} is a {}",
            actor.name, actor.role
        )))
    }
}

/// The longest comment a person may write (characters, after trimming): a page of text. The
/// audit trail is append-only, so what goes in stays for good.
pub const COMMENT_MAX_CHARS: usize = 2000;
/// The longest payout reference of a refund (characters).
pub const REFERENCE_MAX_CHARS: usize = 200;

/// Why a comment is too long to be written, or `None`: at most [`COMMENT_MAX_CHARS`]
/// characters after trimming. The HTTP API checks with this before anything else and answers
/// 400 with the message; the resolutions below refuse it too (the CLI prints it).
pub fn comment_too_long(comment: &str) -> Option<String> {
    let n = comment.trim().chars().count();
    (n > COMMENT_MAX_CHARS).then(|| {
        format!(
            "the comment is {n} characters long; at most {COMMENT_MAX_CHARS} are kept in the audit trail"
        )
    })
}

fn comment_of(comment: &str) -> Result<&str> {
    let c = comment.trim();
    if c.is_empty() {
        return Err(WorkbenchError::Invalid(
            "a comment is required: say why".into(),
        ));
    }
    match comment_too_long(c) {
        Some(m) => Err(WorkbenchError::Invalid(m)),
        None => Ok(c),
    }
}

/// The state of a payment in the queue (see the module docs).
fn queued_state(amount_minor: i64) -> PaymentState {
    PaymentState {
        status: "exception".into(),
        account_no: None,
        applied_minor: 0,
        credit_minor: 0,
        refunded_minor: 0,
        held_minor: amount_minor,
        written_off_minor: 0,
    }
}

/// What a resolution changes, before it is written.
struct Change {
    state: PaymentState,
    allocations: Vec<NewAllocation>,
    /// late-fee rows: charges on the principal paid late, undos of them
    fees: Vec<NewLateFee>,
    /// (account, amount, kind)
    credit: Option<(String, i64, &'static str)>,
    bill_deltas: Vec<BillDelta>,
}

impl Change {
    fn bills(&self) -> Vec<String> {
        let mut b: Vec<String> = self.bill_deltas.iter().map(|d| d.bill_id.clone()).collect();
        b.sort();
        b.dedup();
        b
    }
}

async fn snapshot(
    conn: &mut AnyConnection,
    payment_id: i64,
    exception_id: i64,
    bills: &[String],
) -> Result<serde_json::Value> {
    let p = q::payment(conn, payment_id)
        .await?
        .ok_or_else(|| WorkbenchError::NotFound(format!("no payment {payment_id}")))?;
    let e = q::exception(conn, exception_id).await?;
    let b = q::bill_states(conn, bills).await?;
    Ok(serde_json::json!({
        "payment": p.state,
        "exception": e.map(|e| serde_json::json!({"id": e.id, "status": e.status, "resolved_at": e.resolved_at})),
        "bills": b,
    }))
}

fn pending_of(p: &PaymentRow) -> PendingPayment {
    p.pending()
}

fn limit_minor(limit: Decimal, currency: &str) -> i64 {
    let c = Currency::parse(currency).unwrap_or(Currency::CNY);
    Money::from_decimal(limit.round_dp(c.exponent()), c)
        .map(|m| m.minor())
        .unwrap_or(0)
}

/// Resolves exception `exception_id` as `action`, for `actor`, with a required comment.
pub async fn resolve(
    store: &Store,
    config: &Config,
    actor: &Actor,
    exception_id: i64,
    action: &Action,
    comment: &str,
) -> Result<Outcome> {
    let comment = comment_of(comment)?;
    require(actor, action.role(), action.name())?;
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let e = q::exception(&mut tx, exception_id)
        .await?
        .ok_or_else(|| WorkbenchError::NotFound(format!("no exception {exception_id}")))?;
    if e.status != "open" {
        return Err(WorkbenchError::Conflict(format!(
            "exception {exception_id} is already resolved; reopen its resolution first"
        )));
    }
    let earlier = q::resolutions_of_payment(&mut tx, e.payment_id).await?;
    if let Some(r) = earlier
        .iter()
        .find(|r| r.exception_id == e.id && r.status == "proposed")
    {
        return Err(WorkbenchError::Conflict(format!(
            "exception {exception_id} has resolution {} awaiting a supervisor's approval",
            r.id
        )));
    }
    let p = q::payment(&mut tx, e.payment_id)
        .await?
        .ok_or_else(|| WorkbenchError::NotFound(format!("no payment {}", e.payment_id)))?;
    if p.state != queued_state(p.amount_minor) {
        return Err(StoreError::Inconsistent(format!(
            "payment {} is in the queue but not in the queued state: {:?}",
            p.id, p.state
        ))
        .into());
    }
    check_fits(config, &e.reason, &p, action)?;
    let request = serde_json::to_value(action).unwrap_or_default();
    let at = store::now();
    // a large refund waits for a second person
    if let Action::Refund { .. } = action {
        let limit = limit_minor(config.exceptions.refund_approval_limit, &p.currency);
        if p.amount_minor > limit {
            let id = q::insert_resolution(
                &mut tx,
                &NewResolution {
                    exception_id,
                    payment_id: p.id,
                    action: action.name(),
                    status: "proposed",
                    request: &request,
                    amount_minor: p.amount_minor,
                    currency: &p.currency,
                    comment,
                    created_by: &actor.name,
                    at: &at,
                },
            )
            .await?;
            let snap = snapshot(&mut tx, p.id, e.id, &[]).await?;
            let audit_id = q::append_audit(
                &mut tx,
                &NewAudit {
                    at: &at,
                    actor: &actor.name,
                    action: "propose_refund",
                    payment_id: Some(p.id),
                    exception_id: Some(e.id),
                    resolution_id: Some(id),
                    comment,
                    before: &snap,
                    after: &snap,
                    bill_ids: &[],
                },
            )
            .await?;
            tx.commit().await.op("committing a resolution")?;
            return Ok(Outcome {
                resolution_id: id,
                status: "proposed".into(),
                payment_id: p.id,
                payment: p.state,
                audit_id,
            });
        }
    }
    let change = plan(&mut tx, config, &e.reason, &p, e.related_payment_id, action).await?;
    let id = q::insert_resolution(
        &mut tx,
        &NewResolution {
            exception_id,
            payment_id: p.id,
            action: action.name(),
            status: "done",
            request: &request,
            amount_minor: p.amount_minor,
            currency: &p.currency,
            comment,
            created_by: &actor.name,
            at: &at,
        },
    )
    .await?;
    let audit_id = write_change(
        &mut tx,
        &actor.name,
        action.name(),
        &p,
        e.id,
        id,
        comment,
        change,
        "resolved",
        &at,
    )
    .await?;
    let state = q::payment(&mut tx, p.id)
        .await?
        .map(|p| p.state)
        .unwrap_or_else(|| queued_state(p.amount_minor));
    tx.commit().await.op("committing a resolution")?;
    drop(_w);
    // the customer's receipt, as for a payment matched automatically
    if ["applied", "partially_applied", "credit"].contains(&state.status.as_str()) {
        if let Err(e) = crate::dunning::notices::queue_receipts(config, store).await {
            tracing::error!(error = %e, "queueing receipts after a resolution failed");
        }
    }
    Ok(Outcome {
        resolution_id: id,
        status: "done".into(),
        payment_id: p.id,
        payment: state,
        audit_id,
    })
}

/// Writes a change and its audit entry (before and after).
#[allow(clippy::too_many_arguments)]
async fn write_change(
    conn: &mut AnyConnection,
    actor: &str,
    audit_action: &str,
    p: &PaymentRow,
    exception_id: i64,
    resolution_id: i64,
    comment: &str,
    change: Change,
    exception_status: &str,
    at: &str,
) -> Result<i64> {
    let bills = change.bills();
    let before = snapshot(conn, p.id, exception_id, &bills).await?;
    q::set_payment_state(conn, p.id, &change.state).await?;
    q::set_exception_status(
        conn,
        exception_id,
        exception_status,
        (exception_status == "resolved").then_some(at),
    )
    .await?;
    q::insert_allocations(conn, &change.allocations, at).await?;
    insert_late_fees(conn, &change.fees, at).await?;
    if let Some((account, amount, kind)) = &change.credit {
        q::insert_credit(conn, account, p.id, *amount, &p.currency, kind, at).await?;
    }
    apply_bill_deltas(conn, &change.bill_deltas, at).await?;
    let after = snapshot(conn, p.id, exception_id, &bills).await?;
    Ok(q::append_audit(
        conn,
        &NewAudit {
            at,
            actor,
            action: audit_action,
            payment_id: Some(p.id),
            exception_id: Some(exception_id),
            resolution_id: Some(resolution_id),
            comment,
            before: &before,
            after: &after,
            bill_ids: &bills,
        },
    )
    .await?)
}

/// Whether `action` can apply to this payment at all.
fn check_fits(config: &Config, reason: &str, p: &PaymentRow, action: &Action) -> Result<()> {
    let incoming = p.direction == "credit" && !p.reversal && p.amount_minor > 0;
    let invalid = |m: String| Err(WorkbenchError::Invalid(m));
    match action {
        Action::RejectDuplicate => {
            if reason != "duplicate" {
                return invalid(format!(
                    "payment {} is not a duplicate (its exception is {reason})",
                    p.id
                ));
            }
        }
        Action::Refund { .. } => {
            if !incoming {
                return invalid(format!(
                    "payment {} is not money received: nothing to refund",
                    p.id
                ));
            }
        }
        _ => {
            if !incoming {
                return invalid(format!(
                    "payment {} is not money received (a debit, a reversal or zero): it cannot go to bills or credit",
                    p.id
                ));
            }
            if reason == "duplicate" {
                return invalid(format!(
                    "payment {} is a copy of a transaction already counted: reject it as a duplicate, or refund it",
                    p.id
                ));
            }
            if p.currency != config.ledger.currency.as_str() {
                return invalid(format!(
                    "payment {} is in {}, bills are in {}: refund it",
                    p.id, p.currency, config.ledger.currency
                ));
            }
        }
    }
    Ok(())
}

/// Decides what `action` changes.
async fn plan(
    conn: &mut AnyConnection,
    config: &Config,
    reason: &str,
    p: &PaymentRow,
    related: Option<i64>,
    action: &Action,
) -> Result<Change> {
    let _ = reason;
    let invalid = |m: String| WorkbenchError::Invalid(m);
    let base = queued_state(p.amount_minor);
    let policy = FeePolicy::from_config(config);
    match action {
        Action::ApplyBill { bill_id } => to_target(conn, &policy, p, Target::Bill(bill_id)).await,
        Action::ApplyAccount { account_no } => {
            to_target(conn, &policy, p, Target::Account(account_no)).await
        }
        Action::Credit { account_no } => {
            let account = q::account(conn, &normalize_key(account_no))
                .await?
                .ok_or_else(|| invalid(format!("no account {account_no}")))?;
            Ok(Change {
                state: PaymentState {
                    status: "credit".into(),
                    account_no: Some(account.clone()),
                    credit_minor: p.amount_minor,
                    held_minor: 0,
                    ..base
                },
                allocations: vec![],
                fees: vec![],
                credit: Some((account, p.amount_minor, "resolution")),
                bill_deltas: vec![],
            })
        }
        Action::Refund { .. } => Ok(refund_change(p)),
        Action::RejectDuplicate => {
            let first = match related {
                Some(id) => q::payment(conn, id).await?,
                None => None,
            }
            .ok_or_else(|| {
                invalid(format!(
                    "payment {} names no earlier payment it duplicates",
                    p.id
                ))
            })?;
            if first.amount_minor != p.amount_minor
                || first.currency != p.currency
                || first.bank_id != p.bank_id
            {
                return Err(invalid(format!(
                    "payment {} differs from payment {} in bank or amount: not a plain duplicate",
                    p.id, first.id
                )));
            }
            Ok(Change {
                state: PaymentState {
                    status: "rejected".into(),
                    held_minor: 0,
                    ..base
                },
                allocations: vec![],
                fees: vec![],
                credit: None,
                bill_deltas: vec![],
            })
        }
        Action::Split {
            parts,
            rest_to_account,
        } => split(conn, &policy, p, parts, rest_to_account.as_deref()).await,
        Action::WriteOff { bill_id } => {
            let pending = pending_of(p);
            let (bill, _, currency, due) = bill_total_due(conn, &policy, &pending, bill_id)
                .await?
                .ok_or_else(|| invalid(format!("no bill {bill_id}")))?;
            if currency != p.currency {
                return Err(invalid(format!(
                    "bill {bill} is in {currency}, the payment in {}",
                    p.currency
                )));
            }
            if due <= 0 {
                return Err(invalid(format!("bill {bill} has nothing open to pay")));
            }
            let diff = p.amount_minor - due;
            let limit = limit_minor(config.exceptions.write_off_limit, &p.currency);
            if diff == 0 {
                return Err(invalid(format!(
                    "the payment equals what bill {bill} is due (principal and late fee): apply it, nothing to write off"
                )));
            }
            if diff.abs() > limit {
                return Err(invalid(format!(
                    "the difference {} {} is above the write-off limit {} {}",
                    money_text(diff.abs(), &p.currency),
                    p.currency,
                    money_text(limit, &p.currency),
                    p.currency
                )));
            }
            let settled = settle_bill(conn, &policy, &pending, &bill)
                .await?
                .ok_or_else(|| invalid(format!("no bill {bill_id}")))?;
            Ok(Change {
                state: PaymentState {
                    status: "applied".into(),
                    account_no: Some(settled.account_no.clone()),
                    applied_minor: settled.applied_minor,
                    held_minor: 0,
                    written_off_minor: settled.written_off_minor,
                    ..base
                },
                allocations: settled.allocations,
                fees: settled.fees,
                credit: None,
                bill_deltas: settled.bill_deltas,
            })
        }
    }
}

fn refund_change(p: &PaymentRow) -> Change {
    Change {
        state: PaymentState {
            status: "refunded".into(),
            refunded_minor: p.amount_minor,
            held_minor: 0,
            ..queued_state(p.amount_minor)
        },
        allocations: vec![],
        fees: vec![],
        credit: None,
        bill_deltas: vec![],
    }
}

async fn to_target(
    conn: &mut AnyConnection,
    policy: &FeePolicy,
    p: &PaymentRow,
    target: Target<'_>,
) -> Result<Change> {
    let a = allocate_to(conn, policy, &pending_of(p), target)
        .await?
        .map_err(WorkbenchError::Invalid)?;
    let applied: i64 = a.allocations.iter().map(|x| x.amount_minor).sum();
    Ok(Change {
        state: PaymentState {
            status: a.status.into(),
            account_no: Some(a.account_no.clone()),
            applied_minor: applied,
            credit_minor: a.credit_minor,
            held_minor: 0,
            ..queued_state(p.amount_minor)
        },
        credit: (a.credit_minor != 0).then(|| (a.account_no.clone(), a.credit_minor, "resolution")),
        allocations: a.allocations,
        fees: a.fees,
        bill_deltas: a.bill_deltas,
    })
}

async fn split(
    conn: &mut AnyConnection,
    policy: &FeePolicy,
    p: &PaymentRow,
    parts: &[SplitPart],
    rest_to: Option<&str>,
) -> Result<Change> {
    let invalid = |m: String| WorkbenchError::Invalid(m);
    if parts.is_empty() {
        return Err(invalid("a split needs at least one part".into()));
    }
    let cur = Currency::parse(&p.currency)
        .map_err(|_| invalid(format!("unknown currency {}", p.currency)))?;
    let mut amounts: Vec<(String, i64)> = Vec::new();
    for part in parts {
        let amount = Money::from_decimal(part.amount, cur)
            .map_err(|e| invalid(format!("bill {}: {e}", part.bill_id)))?
            .minor();
        amounts.push((part.bill_id.clone(), amount));
    }
    let total: i64 = amounts.iter().map(|a| a.1).sum();
    if total > p.amount_minor {
        return Err(invalid(format!(
            "the parts add up to {}, more than the payment's {}",
            money_text(total, &p.currency),
            money_text(p.amount_minor, &p.currency)
        )));
    }
    let a = allocate_parts(conn, policy, &pending_of(p), &amounts)
        .await?
        .map_err(invalid)?;
    let mut accounts: Vec<String> = Vec::new();
    for x in &a.allocations {
        if !accounts.contains(&x.account_no) {
            accounts.push(x.account_no.clone());
        }
    }
    let applied: i64 = a.allocations.iter().map(|x| x.amount_minor).sum();
    let rest = p.amount_minor - applied;
    let account = match rest_to {
        Some(acct) => Some(
            q::account(conn, &normalize_key(acct))
                .await?
                .ok_or_else(|| invalid(format!("no account {acct}")))?,
        ),
        None if accounts.len() == 1 => accounts.first().cloned(),
        None if rest == 0 => None,
        None => {
            return Err(invalid(
                "the bills belong to several accounts: say which account keeps the rest (rest_to_account)"
                    .into(),
            ))
        }
    };
    Ok(Change {
        state: PaymentState {
            status: if rest == 0 {
                "applied"
            } else {
                "partially_applied"
            }
            .into(),
            account_no: account.clone().or_else(|| accounts.first().cloned()),
            applied_minor: applied,
            credit_minor: rest,
            held_minor: 0,
            ..queued_state(p.amount_minor)
        },
        credit: match (rest, account) {
            (0, _) => None,
            (r, Some(acct)) => Some((acct, r, "resolution")),
            (_, None) => unreachable!("a rest always has an account here"),
        },
        allocations: a.allocations,
        fees: a.fees,
        bill_deltas: a.bill_deltas,
    })
}

async fn resolution_for_update(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<(q::ResolutionRow, PaymentRow)> {
    let r = q::resolution(conn, id)
        .await?
        .ok_or_else(|| WorkbenchError::NotFound(format!("no resolution {id}")))?;
    let p = q::payment(conn, r.payment_id)
        .await?
        .ok_or_else(|| WorkbenchError::NotFound(format!("no payment {}", r.payment_id)))?;
    Ok((r, p))
}

/// A resolution awaiting approval, and its payment.
async fn proposed_for_update(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<(q::ResolutionRow, PaymentRow)> {
    let (r, p) = resolution_for_update(conn, id).await?;
    if r.status != "proposed" {
        return Err(WorkbenchError::Conflict(format!(
            "resolution {id} is {}, not awaiting approval",
            r.status
        )));
    }
    Ok((r, p))
}

/// A supervisor, not the one who proposed it, approves a proposed refund: it is carried out.
pub async fn approve(
    store: &Store,
    actor: &Actor,
    resolution_id: i64,
    comment: &str,
) -> Result<Outcome> {
    let comment = comment_of(comment)?;
    require(actor, Role::Supervisor, "approving a refund")?;
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let (r, p) = proposed_for_update(&mut tx, resolution_id).await?;
    if r.created_by == actor.name {
        return Err(WorkbenchError::Forbidden(format!(
            "four eyes: {} proposed resolution {resolution_id}; someone else must approve it",
            actor.name
        )));
    }
    if p.state != queued_state(p.amount_minor) {
        return Err(WorkbenchError::Conflict(format!(
            "payment {} is no longer in the queue",
            p.id
        )));
    }
    let at = store::now();
    let audit_id = write_change(
        &mut tx,
        &actor.name,
        "approve_refund",
        &p,
        r.exception_id,
        r.id,
        comment,
        refund_change(&p),
        "resolved",
        &at,
    )
    .await?;
    q::update_resolution(
        &mut tx,
        r.id,
        "status = 'done', approved_by = $2, approved_at = $3",
        vec![Val::S(actor.name.clone()), Val::S(at.clone())],
    )
    .await?;
    let state = q::payment(&mut tx, p.id).await?.map(|x| x.state);
    tx.commit().await.op("committing an approval")?;
    Ok(Outcome {
        resolution_id: r.id,
        status: "done".into(),
        payment_id: p.id,
        payment: state.unwrap_or(p.state),
        audit_id,
    })
}

/// A supervisor turns a proposed refund down; the exception stays open.
pub async fn decline(
    store: &Store,
    actor: &Actor,
    resolution_id: i64,
    comment: &str,
) -> Result<Outcome> {
    let comment = comment_of(comment)?;
    require(actor, Role::Supervisor, "declining a refund")?;
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let (r, p) = proposed_for_update(&mut tx, resolution_id).await?;
    let at = store::now();
    q::update_resolution(
        &mut tx,
        r.id,
        "status = 'declined', approved_by = $2, approved_at = $3",
        vec![Val::S(actor.name.clone()), Val::S(at.clone())],
    )
    .await?;
    let snap = snapshot(&mut tx, p.id, r.exception_id, &[]).await?;
    let audit_id = q::append_audit(
        &mut tx,
        &NewAudit {
            at: &at,
            actor: &actor.name,
            action: "decline_refund",
            payment_id: Some(p.id),
            exception_id: Some(r.exception_id),
            resolution_id: Some(r.id),
            comment,
            before: &snap,
            after: &snap,
            bill_ids: &[],
        },
    )
    .await?;
    tx.commit().await.op("committing a decline")?;
    Ok(Outcome {
        resolution_id: r.id,
        status: "declined".into(),
        payment_id: p.id,
        payment: p.state,
        audit_id,
    })
}

/// Records that a refund was paid out, with the payout's reference.
pub async fn refund_paid(
    store: &Store,
    actor: &Actor,
    resolution_id: i64,
    reference: &str,
    comment: &str,
) -> Result<Outcome> {
    let comment = comment_of(comment)?;
    require(actor, Role::Clerk, "recording a refund payout")?;
    let reference = reference.trim();
    if reference.is_empty() {
        return Err(WorkbenchError::Invalid(
            "the refund's payout reference is required".into(),
        ));
    }
    if reference.chars().count() > REFERENCE_MAX_CHARS {
        return Err(WorkbenchError::Invalid(format!(
            "the payout reference is longer than {REFERENCE_MAX_CHARS} characters"
        )));
    }
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let (r, p) = resolution_for_update(&mut tx, resolution_id).await?;
    if r.action != "refund" || r.status != "done" {
        return Err(WorkbenchError::Conflict(format!(
            "resolution {resolution_id} is not a refund carried out (it is a {} {})",
            r.status, r.action
        )));
    }
    if let Some(x) = &r.refund_ref {
        return Err(WorkbenchError::Conflict(format!(
            "refund {resolution_id} was already paid out (reference {x})"
        )));
    }
    let at = store::now();
    let before = serde_json::json!({"refund_ref": null, "refund_paid_at": null});
    q::update_resolution(
        &mut tx,
        r.id,
        "refund_ref = $2, refund_paid_at = $3",
        vec![Val::S(reference.to_string()), Val::S(at.clone())],
    )
    .await?;
    let after = serde_json::json!({"refund_ref": reference, "refund_paid_at": at});
    let audit_id = q::append_audit(
        &mut tx,
        &NewAudit {
            at: &at,
            actor: &actor.name,
            action: "refund_paid",
            payment_id: Some(p.id),
            exception_id: Some(r.exception_id),
            resolution_id: Some(r.id),
            comment,
            before: &before,
            after: &after,
            bill_ids: &[],
        },
    )
    .await?;
    tx.commit().await.op("committing a refund payout")?;
    Ok(Outcome {
        resolution_id: r.id,
        status: r.status,
        payment_id: p.id,
        payment: p.state,
        audit_id,
    })
}

/// A supervisor undoes a resolution made in error: the payment goes back to the queue
/// exactly as it was (see the module docs).
pub async fn reopen(
    store: &Store,
    actor: &Actor,
    resolution_id: i64,
    comment: &str,
) -> Result<Outcome> {
    let comment = comment_of(comment)?;
    require(actor, Role::Supervisor, "reopening a resolution")?;
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let (r, p) = resolution_for_update(&mut tx, resolution_id).await?;
    if r.status != "done" {
        return Err(WorkbenchError::Conflict(format!(
            "resolution {resolution_id} is {}: only a resolution carried out can be reopened",
            r.status
        )));
    }
    let e = q::exception(&mut tx, r.exception_id)
        .await?
        .ok_or_else(|| WorkbenchError::NotFound(format!("no exception {}", r.exception_id)))?;
    if e.status != "resolved" {
        return Err(WorkbenchError::Conflict(format!(
            "exception {} is not resolved",
            e.id
        )));
    }
    if p.state.status == "reversed" {
        return Err(WorkbenchError::Conflict(format!(
            "payment {} was reversed by the bank since; its reversal undid the resolution",
            p.id
        )));
    }
    if let Some(x) = &r.refund_ref {
        return Err(WorkbenchError::Conflict(format!(
            "the refund was paid out already (reference {x}): the money has left"
        )));
    }
    // undo the allocations and the late fees they were charged, exactly, bill by bill
    let undo = undo_payment(
        &mut tx,
        p.id,
        p.id,
        Rule::Reopen,
        "reopen",
        Overflow::Refuse,
    )
    .await?
    .map_err(WorkbenchError::Conflict)?;
    let credit = if p.state.credit_minor != 0 {
        let account = p.state.account_no.clone().ok_or_else(|| {
            StoreError::Inconsistent(format!("payment {} holds credit but no account", p.id))
        })?;
        let balance = q::credit_balance(&mut tx, &account, &p.currency).await?;
        if balance < p.state.credit_minor {
            return Err(WorkbenchError::Conflict(format!(
                "account {account}'s credit is {} now, less than the {} this resolution gave it: it was used since",
                money_text(balance, &p.currency),
                money_text(p.state.credit_minor, &p.currency)
            )));
        }
        Some((account, -p.state.credit_minor, "reopen"))
    } else {
        None
    };
    let change = Change {
        state: queued_state(p.amount_minor),
        allocations: undo.allocations,
        fees: undo.fees,
        credit,
        bill_deltas: undo.bill_deltas,
    };
    let at = store::now();
    let audit_id = write_change(
        &mut tx,
        &actor.name,
        "reopen",
        &p,
        e.id,
        r.id,
        comment,
        change,
        "open",
        &at,
    )
    .await?;
    q::update_resolution(
        &mut tx,
        r.id,
        "status = 'reopened', reopened_by = $2, reopened_at = $3",
        vec![Val::S(actor.name.clone()), Val::S(at.clone())],
    )
    .await?;
    tx.commit().await.op("committing a reopening")?;
    Ok(Outcome {
        resolution_id: r.id,
        status: "reopened".into(),
        payment_id: p.id,
        payment: queued_state(p.amount_minor),
        audit_id,
    })
}

/// What a late-fee waiver did.
#[derive(Debug, Clone, Serialize)]
pub struct Waived {
    pub bill_id: String,
    /// false: the fee was waived already (the first waiver stands, nothing changed)
    pub waived: bool,
    /// What was owed of the fee and is written off (decimal text).
    pub written_off: String,
    pub currency: String,
    pub audit_id: Option<i64>,
}

/// A supervisor waives a bill's late fee, with a reason: what is owed of it is written off
/// (a `waiver` row of the late-fee ledger) and no more fee is charged to the bill; fees
/// already paid stay paid (giving them back is a refund, decided apart). Audited.
pub async fn waive_late_fee(
    store: &Store,
    actor: &Actor,
    bill_id: &str,
    reason: &str,
) -> Result<Waived> {
    let reason = comment_of(reason)?;
    require(actor, Role::Supervisor, "waiving a late fee")?;
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let w = crate::matching::waive_fee(&mut tx, bill_id, &actor.name, reason)
        .await?
        .ok_or_else(|| WorkbenchError::NotFound(format!("no bill {bill_id}")))?;
    let bills = vec![w.bill_id.clone()];
    let before = serde_json::json!({ "bills": q::bill_states(&mut tx, &bills).await? });
    if !crate::store::dunning::waive_late_fee(&mut tx, &w.bill_id, &actor.name, reason).await? {
        return Ok(Waived {
            bill_id: w.bill_id,
            waived: false,
            written_off: money_text(0, &w.currency),
            currency: w.currency,
            audit_id: None,
        });
    }
    let at = store::now();
    insert_late_fees(&mut tx, &w.fees, &at).await?;
    apply_bill_deltas(&mut tx, &w.bill_deltas, &at).await?;
    let after = serde_json::json!({ "bills": q::bill_states(&mut tx, &bills).await? });
    let audit_id = q::append_audit(
        &mut tx,
        &NewAudit {
            at: &at,
            actor: &actor.name,
            action: "waive_late_fee",
            payment_id: None,
            exception_id: None,
            resolution_id: None,
            comment: &format!(
                "late fee of bill {} waived ({} {} owed written off): {reason}",
                w.bill_id,
                money_text(w.written_off_minor, &w.currency),
                w.currency
            ),
            before: &before,
            after: &after,
            bill_ids: &bills,
        },
    )
    .await?;
    tx.commit().await.op("committing a waiver")?;
    Ok(Waived {
        bill_id: w.bill_id,
        waived: true,
        written_off: money_text(w.written_off_minor, &w.currency),
        currency: w.currency,
        audit_id: Some(audit_id),
    })
}

/// Escalates the exceptions open for longer than `exceptions.escalate_after_hours` (as of
/// `now`): flags them, appends to the audit trail and, when `exceptions.supervisor_contact`
/// is set, queues a notice to the supervisors' desk. Returns how many were escalated.
pub async fn escalate(
    store: &Store,
    config: &Config,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64> {
    let hours = config.exceptions.escalate_after_hours;
    if hours == 0 {
        return Ok(0);
    }
    let cutoff = (now - chrono::Duration::hours(i64::from(hours)))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let at = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let due = q::due_for_escalation(&mut tx, &cutoff).await?;
    let zh = config.dunning.language == "zh";
    for e in &due {
        let p = q::payment(&mut tx, e.payment_id).await?;
        q::mark_escalated(&mut tx, e.id, &at).await?;
        let amount = format!("{} {}", money_text(e.amount_minor, &e.currency), e.currency);
        let bank = p.as_ref().map(|p| p.bank_id.as_str()).unwrap_or("");
        let payer = p
            .as_ref()
            .and_then(|p| p.payer_name.clone())
            .unwrap_or_default();
        let text = if zh {
            format!(
                "异常 {}（{}，{}，{} 付款人 {}）自 {} 起未处理，已超过 {} 小时，已升级。",
                e.id, e.reason, amount, bank, payer, e.created_at, hours
            )
        } else {
            format!(
                "Exception {} ({}, {amount} from {bank}, payer {payer}) open since {} for more than {hours} hours has been escalated.",
                e.id, e.reason, e.created_at
            )
        };
        let before = serde_json::json!({"escalated_at": null});
        let after = serde_json::json!({"escalated_at": at});
        q::append_audit(
            &mut tx,
            &NewAudit {
                at: &at,
                actor: "system",
                action: "escalate",
                payment_id: Some(e.payment_id),
                exception_id: Some(e.id),
                resolution_id: None,
                comment: &format!("open for more than {hours} hours"),
                before: &before,
                after: &after,
                bill_ids: &[],
            },
        )
        .await?;
        let contact = &config.exceptions.supervisor_contact;
        if !contact.is_empty() {
            let payload = serde_json::json!({
                "to": contact, "exception_id": e.id, "payment_id": e.payment_id,
                "reason": e.reason, "amount": money_text(e.amount_minor, &e.currency),
                "currency": e.currency, "bank_id": bank, "created_at": e.created_at,
            });
            store::notices::insert(
                &mut tx,
                &store::notices::NewNotice {
                    kind: "escalation".into(),
                    account_no: e.suggested_account.clone().unwrap_or_default(),
                    bill_ids: vec![],
                    stage: None,
                    channel: "supervisor".into(),
                    language: config.dunning.language.clone(),
                    body: text,
                    payload: payload.to_string(),
                    idempotency_key: format!("escalation:{}", e.id),
                    planned_for: at[..10].to_string(),
                },
            )
            .await?;
        }
    }
    tx.commit().await.op("committing escalations")?;
    Ok(due.len() as u64)
}
