//! What the exceptions workbench reads and writes: the queue, one exception with its payment,
//! resolutions, and the append-only audit trail (see migration 0005).

use super::{bind_vals, dialect, insert_rows, DbContext, StoreError, Val};
use crate::store::matching::NewAllocation;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// An exception as the workbench shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionRow {
    pub id: i64,
    pub payment_id: i64,
    pub reason: String,
    pub detail: String,
    pub amount_minor: i64,
    pub currency: String,
    /// open | resolved
    pub status: String,
    pub related_payment_id: Option<i64>,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub escalated_at: Option<String>,
    pub suggested_account: Option<String>,
}

const EXC_COLS: &str =
    "e.id, e.payment_id, e.reason, e.detail, e.amount_minor, e.currency, e.status, \
    e.related_payment_id, e.created_at, e.resolved_at, e.escalated_at, e.suggested_account";

fn exception_row(r: &sqlx::any::AnyRow) -> Result<ExceptionRow, sqlx::Error> {
    Ok(ExceptionRow {
        id: r.try_get(0)?,
        payment_id: r.try_get(1)?,
        reason: r.try_get(2)?,
        detail: r.try_get(3)?,
        amount_minor: r.try_get(4)?,
        currency: r.try_get(5)?,
        status: r.try_get(6)?,
        related_payment_id: r.try_get(7)?,
        created_at: r.try_get(8)?,
        resolved_at: r.try_get(9)?,
        escalated_at: r.try_get(10)?,
        suggested_account: r.try_get(11)?,
    })
}

/// A payment with everything a person needs to resolve it.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentRow {
    pub id: i64,
    pub bank_id: String,
    pub bank_ref: Option<String>,
    pub end_to_end_id: Option<String>,
    pub txn_key: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub direction: String,
    pub reversal: bool,
    pub booking_date: Option<String>,
    pub value_date: Option<String>,
    pub payer_name: Option<String>,
    pub payer_account: Option<String>,
    pub reference: Option<String>,
    pub remittance: Option<String>,
    pub additional_info: Option<String>,
    pub file_name: String,
    pub state: PaymentState,
}

impl PaymentRow {
    /// The payment as the allocation rules take it.
    pub fn pending(&self) -> crate::store::matching::PendingPayment {
        crate::store::matching::PendingPayment {
            id: self.id,
            bank_id: self.bank_id.clone(),
            amount_minor: self.amount_minor,
            currency: self.currency.clone(),
            direction: self.direction.clone(),
            reversal: self.reversal,
            txn_key: self.txn_key.clone(),
            bank_ref: self.bank_ref.clone(),
            entry_ref: None,
            end_to_end_id: self.end_to_end_id.clone(),
            tx_id: None,
            reference: self.reference.clone(),
            remittance: self.remittance.clone(),
            additional_info: self.additional_info.clone(),
            booking_date: self.booking_date.clone(),
            value_date: self.value_date.clone(),
        }
    }
}

/// The part of a payment a resolution changes (and a reopening puts back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PaymentState {
    pub status: String,
    pub account_no: Option<String>,
    pub applied_minor: i64,
    pub credit_minor: i64,
    pub refunded_minor: i64,
    pub held_minor: i64,
    pub written_off_minor: i64,
}

const PAY_COLS: &str = "p.id, p.bank_id, p.bank_ref, p.end_to_end_id, p.txn_key, p.amount_minor, p.currency, \
    p.direction, p.reversal, p.booking_date, p.value_date, p.payer_name, p.payer_account, p.reference, \
    p.remittance, p.additional_info, f.file_name, p.status, p.account_no, p.applied_minor, p.credit_minor, \
    p.refunded_minor, p.held_minor, p.written_off_minor";

fn payment_row(r: &sqlx::any::AnyRow) -> Result<PaymentRow, sqlx::Error> {
    Ok(PaymentRow {
        id: r.try_get(0)?,
        bank_id: r.try_get(1)?,
        bank_ref: r.try_get(2)?,
        end_to_end_id: r.try_get(3)?,
        txn_key: r.try_get(4)?,
        amount_minor: r.try_get(5)?,
        currency: r.try_get(6)?,
        direction: r.try_get(7)?,
        reversal: r.try_get::<i64, _>(8)? != 0,
        booking_date: r.try_get(9)?,
        value_date: r.try_get(10)?,
        payer_name: r.try_get(11)?,
        payer_account: r.try_get(12)?,
        reference: r.try_get(13)?,
        remittance: r.try_get(14)?,
        additional_info: r.try_get(15)?,
        file_name: r.try_get(16)?,
        state: PaymentState {
            status: r.try_get(17)?,
            account_no: r.try_get(18)?,
            applied_minor: r.try_get(19)?,
            credit_minor: r.try_get(20)?,
            refunded_minor: r.try_get(21)?,
            held_minor: r.try_get(22)?,
            written_off_minor: r.try_get(23)?,
        },
    })
}

pub async fn exception(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<ExceptionRow>, StoreError> {
    let sql = dialect(
        conn,
        &format!("SELECT {EXC_COLS} FROM exceptions e WHERE e.id = $1"),
    );
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .and_then(|r| r.map(|r| exception_row(&r)).transpose())
        .op("reading an exception")
}

/// The exceptions of a payment, newest first.
pub async fn exceptions_of_payment(
    conn: &mut AnyConnection,
    payment_id: i64,
) -> Result<Vec<ExceptionRow>, StoreError> {
    let sql = dialect(
        conn,
        &format!("SELECT {EXC_COLS} FROM exceptions e WHERE e.payment_id = $1 ORDER BY e.id DESC"),
    );
    let rows = sqlx::query(&sql)
        .bind(payment_id)
        .fetch_all(&mut *conn)
        .await
        .op("reading exceptions")?;
    rows.iter()
        .map(exception_row)
        .collect::<Result<_, _>>()
        .op("reading exceptions")
}

pub async fn payment(conn: &mut AnyConnection, id: i64) -> Result<Option<PaymentRow>, StoreError> {
    let sql = dialect(
        conn,
        &format!(
            "SELECT {PAY_COLS} FROM payments p JOIN bank_files f ON f.id = p.file_id WHERE p.id = $1"
        ),
    );
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .and_then(|r| r.map(|r| payment_row(&r)).transpose())
        .op("reading a payment")
}

/// Filters of the queue.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct QueueFilter {
    /// open (default), resolved or all
    pub status: Option<String>,
    pub reason: Option<String>,
    pub bank: Option<String>,
    pub escalated: Option<bool>,
    /// minimum amount in minor units
    pub min_minor: Option<i64>,
    /// text in the payer name, reference or remittance
    pub q: Option<String>,
    /// the payment's booking day from / to (YYYY-MM-DD, inclusive; the day the exception
    /// was raised when the line has none)
    #[serde(default)]
    pub booked_from: Option<String>,
    #[serde(default)]
    pub booked_to: Option<String>,
    /// oldest booking day first, instead of key accounts, then amount, then age
    #[serde(default)]
    pub oldest_first: bool,
    pub limit: Option<i64>,
}

/// One line of the queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueueItem {
    pub exception: ExceptionRow,
    pub bank_id: String,
    pub payer_name: Option<String>,
    pub reference: Option<String>,
    pub booking_date: Option<String>,
    /// the payment's account, else the best suggestion's
    pub account_no: Option<String>,
    pub key_account: bool,
    /// the payment's current status (resolved items: what the resolution made of it)
    pub payment_status: String,
}

/// Items of the queue returned when no `limit` is given, and the most a `limit` may ask for.
pub const QUEUE_LIMIT_DEFAULT: i64 = 500;
pub const QUEUE_LIMIT_MAX: i64 = 5000;
/// The longest search text of the queue (characters).
pub const QUEUE_SEARCH_MAX_CHARS: usize = 200;

/// `text` for a `LIKE .. ESCAPE '\'` pattern: `\`, `%` and `_` match only themselves.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The queue: key-account customers' items first, then the largest amounts, then the oldest.
pub async fn queue(
    conn: &mut AnyConnection,
    f: &QueueFilter,
) -> Result<Vec<QueueItem>, StoreError> {
    let mut conds: Vec<String> = Vec::new();
    let mut vals: Vec<Val> = Vec::new();
    match f.status.as_deref().unwrap_or("open") {
        "all" => {}
        s => {
            vals.push(Val::S(s.to_string()));
            conds.push(format!("e.status = ${}", vals.len()));
        }
    }
    if let Some(r) = f.reason.as_ref().filter(|s| !s.is_empty()) {
        vals.push(Val::S(r.clone()));
        conds.push(format!("e.reason = ${}", vals.len()));
    }
    if let Some(b) = f.bank.as_ref().filter(|s| !s.is_empty()) {
        vals.push(Val::S(b.clone()));
        conds.push(format!("p.bank_id = ${}", vals.len()));
    }
    match f.escalated {
        Some(true) => conds.push("e.escalated_at IS NOT NULL".into()),
        Some(false) => conds.push("e.escalated_at IS NULL".into()),
        None => {}
    }
    if let Some(m) = f.min_minor {
        vals.push(Val::I(m));
        conds.push(format!("e.amount_minor >= ${}", vals.len()));
    }
    if let Some(q) = f.q.as_ref().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        // the text is searched for as it is: `%`, `_` and the escape character itself are
        // escaped, so they match only themselves
        vals.push(Val::S(format!("%{}%", like_escape(&q.to_lowercase()))));
        let n = vals.len();
        conds.push(format!(
            "(LOWER(COALESCE(p.payer_name, '')) LIKE ${n} ESCAPE '\\' OR LOWER(COALESCE(p.reference, '')) LIKE ${n} ESCAPE '\\' \
             OR LOWER(COALESCE(p.remittance, '')) LIKE ${n} ESCAPE '\\' OR LOWER(COALESCE(p.bank_ref, '')) LIKE ${n} ESCAPE '\\')"
        ));
    }
    const BOOKED: &str = "COALESCE(p.booking_date, SUBSTR(e.created_at, 1, 10))";
    if let Some(d) = f.booked_from.as_ref().filter(|s| !s.is_empty()) {
        vals.push(Val::S(d.clone()));
        conds.push(format!("{BOOKED} >= ${}", vals.len()));
    }
    if let Some(d) = f.booked_to.as_ref().filter(|s| !s.is_empty()) {
        vals.push(Val::S(d.clone()));
        conds.push(format!("{BOOKED} <= ${}", vals.len()));
    }
    vals.push(Val::I(
        f.limit
            .unwrap_or(QUEUE_LIMIT_DEFAULT)
            .clamp(1, QUEUE_LIMIT_MAX),
    ));
    let limit = vals.len();
    let order = if f.oldest_first {
        format!("{BOOKED}, e.created_at, e.id")
    } else {
        "COALESCE(c.key_account, 0) DESC, ABS(e.amount_minor) DESC, e.created_at, e.id".to_string()
    };
    let sql = format!(
        "SELECT {EXC_COLS}, p.bank_id, p.payer_name, p.reference, p.booking_date, \
         COALESCE(p.account_no, e.suggested_account), COALESCE(c.key_account, 0), p.status \
         FROM exceptions e JOIN payments p ON p.id = e.payment_id \
         LEFT JOIN customers c ON c.account_no = COALESCE(p.account_no, e.suggested_account) \
         {} ORDER BY {order} LIMIT ${limit}",
        if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        }
    );
    let sql = dialect(conn, &sql);
    let rows = bind_vals(sqlx::query(&sql), vals)
        .fetch_all(&mut *conn)
        .await
        .op("reading the exceptions queue")?;
    rows.iter()
        .map(|r| {
            Ok(QueueItem {
                exception: exception_row(r)?,
                bank_id: r.try_get(12)?,
                payer_name: r.try_get(13)?,
                reference: r.try_get(14)?,
                booking_date: r.try_get(15)?,
                account_no: r.try_get(16)?,
                key_account: r.try_get::<i64, _>(17)? != 0,
                payment_status: r.try_get(18)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .op("reading the exceptions queue")
}

/// A bill's paid amount and status, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillState {
    pub bill_id: String,
    pub account_no: String,
    pub amount_minor: i64,
    pub paid_minor: i64,
    pub status: String,
    pub currency: String,
    /// the late fee charged, waived and paid
    pub fee_charged_minor: i64,
    pub fee_waived_minor: i64,
    pub fee_paid_minor: i64,
}

pub async fn bill_states(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<BillState>, StoreError> {
    let rows = crate::store::bills::by_ids(conn, ids).await?;
    let mut out: Vec<BillState> = rows
        .into_iter()
        .map(|b| BillState {
            bill_id: b.bill_id,
            account_no: b.account_no,
            amount_minor: b.amount_minor,
            paid_minor: b.paid_minor,
            status: b.status,
            currency: b.currency,
            fee_charged_minor: b.fee.charged,
            fee_waived_minor: b.fee.waived,
            fee_paid_minor: b.fee.paid,
        })
        .collect();
    out.sort_by(|a, b| a.bill_id.cmp(&b.bill_id));
    Ok(out)
}

/// Whether an account exists; its number as stored.
pub async fn account(conn: &mut AnyConnection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(
        crate::store::customers::accounts_by_key(conn, &[key.to_string()])
            .await?
            .into_iter()
            .next()
            .map(|(_, no)| no),
    )
}

/// The customer credit balance of an account in a currency.
pub async fn credit_balance(
    conn: &mut AnyConnection,
    account_no: &str,
    currency: &str,
) -> Result<i64, StoreError> {
    let sql = dialect(
        conn,
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM credit_ledger WHERE account_no = $1 AND currency = $2",
    );
    sqlx::query(&sql)
        .bind(account_no.to_string())
        .bind(currency.to_string())
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("reading a credit balance")
}

pub async fn set_payment_state(
    conn: &mut AnyConnection,
    id: i64,
    s: &PaymentState,
) -> Result<(), StoreError> {
    let sql = dialect(
        conn,
        "UPDATE payments SET status = $2, account_no = $3, applied_minor = $4, credit_minor = $5, \
         refunded_minor = $6, held_minor = $7, written_off_minor = $8, matched_at = $9 WHERE id = $1",
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(s.status.clone())
        .bind(s.account_no.clone())
        .bind(s.applied_minor)
        .bind(s.credit_minor)
        .bind(s.refunded_minor)
        .bind(s.held_minor)
        .bind(s.written_off_minor)
        .bind(super::now())
        .execute(&mut *conn)
        .await
        .op("updating a payment")?;
    Ok(())
}

/// Closes (`resolved`, with the time) or reopens (`open`) an exception.
pub async fn set_exception_status(
    conn: &mut AnyConnection,
    id: i64,
    status: &str,
    resolved_at: Option<&str>,
) -> Result<(), StoreError> {
    let sql = dialect(
        conn,
        "UPDATE exceptions SET status = $2, resolved_at = $3 WHERE id = $1",
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(status.to_string())
        .bind(resolved_at.map(str::to_string))
        .execute(&mut *conn)
        .await
        .op("updating an exception")?;
    Ok(())
}

pub async fn insert_allocations(
    conn: &mut AnyConnection,
    allocations: &[NewAllocation],
    at: &str,
) -> Result<(), StoreError> {
    let rows = allocations
        .iter()
        .map(|a| {
            vec![
                Val::I(a.payment_id),
                Val::S(a.bill_id.clone()),
                Val::S(a.account_no.clone()),
                Val::I(a.amount_minor),
                Val::S(a.currency.clone()),
                Val::S(a.rule.into()),
                Val::S(a.part.into()),
                Val::S(at.to_string()),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO allocations (payment_id, bill_id, account_no, amount_minor, currency, rule, part, created_at)",
        8,
        rows,
        "saving allocations",
    )
    .await
}

pub async fn insert_credit(
    conn: &mut AnyConnection,
    account_no: &str,
    payment_id: i64,
    amount_minor: i64,
    currency: &str,
    kind: &str,
    at: &str,
) -> Result<(), StoreError> {
    let sql = dialect(
        conn,
        "INSERT INTO credit_ledger (account_no, payment_id, amount_minor, currency, kind, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    );
    sqlx::query(&sql)
        .bind(account_no.to_string())
        .bind(payment_id)
        .bind(amount_minor)
        .bind(currency.to_string())
        .bind(kind.to_string())
        .bind(at.to_string())
        .execute(&mut *conn)
        .await
        .op("saving customer credit")?;
    Ok(())
}

/// A resolution as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ResolutionRow {
    pub id: i64,
    pub exception_id: i64,
    pub payment_id: i64,
    pub action: String,
    pub status: String,
    /// the request (JSON), as the person made it
    pub request: serde_json::Value,
    pub amount_minor: i64,
    pub currency: String,
    pub comment: String,
    pub created_by: String,
    pub created_at: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub refund_ref: Option<String>,
    pub refund_paid_at: Option<String>,
    pub reopened_by: Option<String>,
    pub reopened_at: Option<String>,
}

const RES_COLS: &str = "id, exception_id, payment_id, action, status, request, amount_minor, currency, comment, \
    created_by, created_at, approved_by, approved_at, refund_ref, refund_paid_at, reopened_by, reopened_at";

fn resolution_row(r: &sqlx::any::AnyRow) -> Result<ResolutionRow, sqlx::Error> {
    let request: String = r.try_get(5)?;
    Ok(ResolutionRow {
        id: r.try_get(0)?,
        exception_id: r.try_get(1)?,
        payment_id: r.try_get(2)?,
        action: r.try_get(3)?,
        status: r.try_get(4)?,
        request: serde_json::from_str(&request).unwrap_or(serde_json::Value::String(request)),
        amount_minor: r.try_get(6)?,
        currency: r.try_get(7)?,
        comment: r.try_get(8)?,
        created_by: r.try_get(9)?,
        created_at: r.try_get(10)?,
        approved_by: r.try_get(11)?,
        approved_at: r.try_get(12)?,
        refund_ref: r.try_get(13)?,
        refund_paid_at: r.try_get(14)?,
        reopened_by: r.try_get(15)?,
        reopened_at: r.try_get(16)?,
    })
}

pub async fn resolution(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<ResolutionRow>, StoreError> {
    let sql = dialect(
        conn,
        &format!("SELECT {RES_COLS} FROM resolutions WHERE id = $1"),
    );
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .and_then(|r| r.map(|r| resolution_row(&r)).transpose())
        .op("reading a resolution")
}

pub async fn resolutions_of_payment(
    conn: &mut AnyConnection,
    payment_id: i64,
) -> Result<Vec<ResolutionRow>, StoreError> {
    let sql = dialect(
        conn,
        &format!("SELECT {RES_COLS} FROM resolutions WHERE payment_id = $1 ORDER BY id"),
    );
    let rows = sqlx::query(&sql)
        .bind(payment_id)
        .fetch_all(&mut *conn)
        .await
        .op("reading resolutions")?;
    rows.iter()
        .map(resolution_row)
        .collect::<Result<_, _>>()
        .op("reading resolutions")
}

/// A new resolution.
pub struct NewResolution<'a> {
    pub exception_id: i64,
    pub payment_id: i64,
    pub action: &'a str,
    pub status: &'a str,
    pub request: &'a serde_json::Value,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub comment: &'a str,
    pub created_by: &'a str,
    pub at: &'a str,
}

pub async fn insert_resolution(
    conn: &mut AnyConnection,
    r: &NewResolution<'_>,
) -> Result<i64, StoreError> {
    let sql = dialect(
        conn,
        "INSERT INTO resolutions (exception_id, payment_id, action, status, request, amount_minor, currency, \
         comment, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    );
    sqlx::query(&sql)
        .bind(r.exception_id)
        .bind(r.payment_id)
        .bind(r.action.to_string())
        .bind(r.status.to_string())
        .bind(r.request.to_string())
        .bind(r.amount_minor)
        .bind(r.currency.to_string())
        .bind(r.comment.to_string())
        .bind(r.created_by.to_string())
        .bind(r.at.to_string())
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("saving a resolution")
}

/// Moves a resolution on: approved (by, at), declined, reopened (by, at), refund paid (ref).
pub async fn update_resolution(
    conn: &mut AnyConnection,
    id: i64,
    set: &str,
    vals: Vec<Val>,
) -> Result<(), StoreError> {
    // `set` is built by the workbench from fixed column names; values are bound
    let mut all = vec![Val::I(id)];
    all.extend(vals);
    let sql = dialect(conn, &format!("UPDATE resolutions SET {set} WHERE id = $1"));
    bind_vals(sqlx::query(&sql), all)
        .execute(&mut *conn)
        .await
        .op("updating a resolution")?;
    Ok(())
}

/// One entry of the audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub payment_id: Option<i64>,
    pub exception_id: Option<i64>,
    pub resolution_id: Option<i64>,
    pub comment: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    /// the bills it touched
    pub bill_ids: Vec<String>,
}

/// The columns of the trail's export.
pub const AUDIT_COLUMNS: &[&str] = &[
    "audit_id",
    "at",
    "actor",
    "action",
    "payment_id",
    "exception_id",
    "resolution_id",
    "bill_ids",
    "comment",
    "before",
    "after",
];

impl AuditEntry {
    /// The entry as export cells ([`AUDIT_COLUMNS`]).
    pub fn cells(self) -> Vec<Option<String>> {
        let n = |v: Option<i64>| v.map(|v| v.to_string());
        vec![
            Some(self.id.to_string()),
            Some(self.at),
            Some(self.actor),
            Some(self.action),
            n(self.payment_id),
            n(self.exception_id),
            n(self.resolution_id),
            Some(self.bill_ids.join(" ")),
            Some(self.comment),
            Some(self.before.to_string()),
            Some(self.after.to_string()),
        ]
    }
}

/// An entry to append.
pub struct NewAudit<'a> {
    pub at: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub payment_id: Option<i64>,
    pub exception_id: Option<i64>,
    pub resolution_id: Option<i64>,
    pub comment: &'a str,
    pub before: &'a serde_json::Value,
    pub after: &'a serde_json::Value,
    pub bill_ids: &'a [String],
}

pub async fn append_audit(conn: &mut AnyConnection, a: &NewAudit<'_>) -> Result<i64, StoreError> {
    let sql = dialect(
        conn,
        "INSERT INTO audit_log (at, actor, action, payment_id, exception_id, resolution_id, comment, \
         before_state, after_state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    );
    let id = sqlx::query(&sql)
        .bind(a.at.to_string())
        .bind(a.actor.to_string())
        .bind(a.action.to_string())
        .bind(a.payment_id)
        .bind(a.exception_id)
        .bind(a.resolution_id)
        .bind(a.comment.to_string())
        .bind(a.before.to_string())
        .bind(a.after.to_string())
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("appending to the audit trail")?;
    let mut bills: Vec<&String> = a.bill_ids.iter().collect();
    bills.sort();
    bills.dedup();
    insert_rows(
        conn,
        "INSERT INTO audit_bills (audit_id, bill_id)",
        2,
        bills
            .into_iter()
            .map(|b| vec![Val::I(id), Val::S(b.clone())])
            .collect(),
        "appending to the audit trail",
    )
    .await?;
    Ok(id)
}

/// Which entries of the trail to read.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuditFilter {
    pub payment_id: Option<i64>,
    pub bill_id: Option<String>,
    pub actor: Option<String>,
    /// entries at or after this time (RFC 3339 or a date)
    pub since: Option<String>,
}

/// The trail, oldest first.
pub async fn audit(
    conn: &mut AnyConnection,
    f: &AuditFilter,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut conds: Vec<String> = Vec::new();
    let mut vals: Vec<Val> = Vec::new();
    if let Some(p) = f.payment_id {
        vals.push(Val::I(p));
        conds.push(format!("a.payment_id = ${}", vals.len()));
    }
    if let Some(b) = &f.bill_id {
        vals.push(Val::S(b.clone()));
        conds.push(format!(
            "a.id IN (SELECT audit_id FROM audit_bills WHERE bill_id = ${})",
            vals.len()
        ));
    }
    if let Some(x) = &f.actor {
        vals.push(Val::S(x.clone()));
        conds.push(format!("a.actor = ${}", vals.len()));
    }
    if let Some(s) = &f.since {
        vals.push(Val::S(s.clone()));
        conds.push(format!("a.at >= ${}", vals.len()));
    }
    let sql = format!(
        "SELECT a.id, a.at, a.actor, a.action, a.payment_id, a.exception_id, a.resolution_id, a.comment, \
         a.before_state, a.after_state FROM audit_log a {} ORDER BY a.id",
        if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        }
    );
    let sql = dialect(conn, &sql);
    let rows = bind_vals(sqlx::query(&sql), vals)
        .fetch_all(&mut *conn)
        .await
        .op("reading the audit trail")?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let json = |i: usize| -> Result<serde_json::Value, sqlx::Error> {
            let s: String = r.try_get(i)?;
            Ok(serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)))
        };
        out.push(
            (|| -> Result<AuditEntry, sqlx::Error> {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    payment_id: r.try_get(4)?,
                    exception_id: r.try_get(5)?,
                    resolution_id: r.try_get(6)?,
                    comment: r.try_get(7)?,
                    before: json(8)?,
                    after: json(9)?,
                    bill_ids: vec![],
                })
            })()
            .op("reading the audit trail")?,
        );
    }
    // the bills of each entry
    if !out.is_empty() {
        let ids: Vec<i64> = out.iter().map(|e| e.id).collect();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT audit_id, bill_id FROM audit_bills WHERE audit_id IN ({}) ORDER BY audit_id, bill_id",
                super::in_list(chunk.len(), 1)
            );
            let sql = dialect(conn, &sql);
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q
                .fetch_all(&mut *conn)
                .await
                .op("reading the audit trail")?
            {
                let id: i64 = r.try_get(0).op("reading the audit trail")?;
                let bill: String = r.try_get(1).op("reading the audit trail")?;
                if let Some(e) = out.iter_mut().find(|e| e.id == id) {
                    e.bill_ids.push(bill);
                }
            }
        }
    }
    Ok(out)
}

/// Open exceptions created before `cutoff` and not escalated yet.
pub async fn due_for_escalation(
    conn: &mut AnyConnection,
    cutoff: &str,
) -> Result<Vec<ExceptionRow>, StoreError> {
    let sql = dialect(
        conn,
        &format!(
            "SELECT {EXC_COLS} FROM exceptions e WHERE e.status = 'open' AND e.escalated_at IS NULL \
             AND e.created_at < $1 ORDER BY e.id"
        ),
    );
    let rows = sqlx::query(&sql)
        .bind(cutoff.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("finding exceptions to escalate")?;
    rows.iter()
        .map(exception_row)
        .collect::<Result<_, _>>()
        .op("finding exceptions to escalate")
}

pub async fn mark_escalated(conn: &mut AnyConnection, id: i64, at: &str) -> Result<(), StoreError> {
    let sql = dialect(
        conn,
        "UPDATE exceptions SET escalated_at = $2 WHERE id = $1",
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(at.to_string())
        .execute(&mut *conn)
        .await
        .op("escalating an exception")?;
    Ok(())
}

/// A user's role by name, when the user exists and is not revoked.
pub async fn active_user_role(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<String>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT role FROM users WHERE name = $1 AND revoked_at IS NULL",
    );
    sqlx::query(&sql)
        .bind(name.to_string())
        .fetch_optional(&mut *conn)
        .await
        .and_then(|r| r.map(|r| r.try_get::<String, _>(0)).transpose())
        .op("reading a user")
}

/// Open exceptions of a bank's incoming payments: (exception, payment, amount).
pub async fn open_exceptions_of_bank(
    conn: &mut AnyConnection,
    bank_id: &str,
) -> Result<Vec<(i64, i64, i64)>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT e.id, e.payment_id, p.amount_minor FROM exceptions e JOIN payments p ON p.id = e.payment_id \
         WHERE e.status = 'open' AND p.bank_id = $1 AND p.direction = 'credit' AND p.reversal = 0 \
         AND e.reason IN ('unknown_reference', 'ambiguous_reference') ORDER BY e.id",
    );
    let rows = sqlx::query(&sql)
        .bind(bank_id.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("listing a bank's open exceptions")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()
        .op("listing a bank's open exceptions")
}

pub async fn last_exception_id(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM exceptions")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("reading the last exception id")
}
