//! The notice outbox (see migrations 0003): written when a notice is decided, read and updated
//! by the delivery worker.

use super::{dialect, DbContext, StoreError};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// A notice to write.
#[derive(Debug, Clone)]
pub struct NewNotice {
    pub kind: String,
    pub account_no: String,
    pub bill_ids: Vec<String>,
    pub stage: Option<String>,
    pub channel: String,
    pub language: String,
    pub body: String,
    pub payload: String,
    pub idempotency_key: String,
    pub planned_for: String,
}

/// A stored notice.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeRow {
    pub id: i64,
    pub kind: String,
    pub account_no: String,
    pub bill_ids: String,
    pub stage: Option<String>,
    pub channel: String,
    pub language: String,
    pub body: String,
    pub payload: String,
    pub idempotency_key: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub planned_for: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub cancelled_reason: Option<String>,
}

const COLS: &str = "id, kind, account_no, bill_ids, stage, channel, language, body, payload, \
    idempotency_key, status, attempts, next_attempt_at, last_error, planned_for, created_at, sent_at, cancelled_reason";

fn row(r: &sqlx::any::AnyRow) -> Result<NoticeRow, sqlx::Error> {
    Ok(NoticeRow {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        account_no: r.try_get(2)?,
        bill_ids: r.try_get(3)?,
        stage: r.try_get(4)?,
        channel: r.try_get(5)?,
        language: r.try_get(6)?,
        body: r.try_get(7)?,
        payload: r.try_get(8)?,
        idempotency_key: r.try_get(9)?,
        status: r.try_get(10)?,
        attempts: r.try_get(11)?,
        next_attempt_at: r.try_get(12)?,
        last_error: r.try_get(13)?,
        planned_for: r.try_get(14)?,
        created_at: r.try_get(15)?,
        sent_at: r.try_get(16)?,
        cancelled_reason: r.try_get(17)?,
    })
}

/// Queues a notice unless one with the same idempotency key exists; its id when written.
pub async fn insert(conn: &mut AnyConnection, n: &NewNotice) -> Result<Option<i64>, StoreError> {
    let at = super::now();
    let sql = dialect(
        conn,
        "INSERT INTO notices (kind, account_no, bill_ids, stage, channel, language, body, payload, \
         idempotency_key, status, attempts, next_attempt_at, planned_for, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', 0, $10, $11, $12) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    );
    sqlx::query(&sql)
        .bind(n.kind.clone())
        .bind(n.account_no.clone())
        .bind(n.bill_ids.join(" "))
        .bind(n.stage.clone())
        .bind(n.channel.clone())
        .bind(n.language.clone())
        .bind(n.body.clone())
        .bind(n.payload.clone())
        .bind(n.idempotency_key.clone())
        // due from the start of the day it was planned for
        .bind(format!("{}T00:00:00Z", n.planned_for))
        .bind(n.planned_for.clone())
        .bind(at)
        .fetch_optional(&mut *conn)
        .await
        .and_then(|r| r.map(|r| r.try_get::<i64, _>(0)).transpose())
        .op("queueing a notice")
}

/// The day (planned_for) of each account's latest reminder that was not cancelled.
pub async fn last_reminders(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT account_no, MAX(planned_for) FROM notices WHERE kind IN ('dunning', 'manager_task') \
         AND status <> 'cancelled' GROUP BY account_no",
    )
    .fetch_all(&mut *conn)
    .await
    .op("reading the last reminders")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading the last reminders")
}

/// Notices to deliver now: queued or failed, their next attempt due.
pub async fn due(
    conn: &mut AnyConnection,
    now: &str,
    limit: i64,
) -> Result<Vec<NoticeRow>, StoreError> {
    let sql = dialect(
        conn,
        &format!(
            "SELECT {COLS} FROM notices WHERE status IN ('queued', 'failed') AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2"
        ),
    );
    let rows = sqlx::query(&sql)
        .bind(now.to_string())
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .op("reading due notices")?;
    rows.iter()
        .map(row)
        .collect::<Result<Vec<_>, _>>()
        .op("reading due notices")
}

/// Notices, newest first, optionally of one status.
pub async fn list(
    conn: &mut AnyConnection,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<NoticeRow>, StoreError> {
    let (sql, st) = match status {
        Some(s) => (
            format!("SELECT {COLS} FROM notices WHERE status = $1 ORDER BY id DESC LIMIT $2"),
            Some(s.to_string()),
        ),
        None => (
            format!("SELECT {COLS} FROM notices ORDER BY id DESC LIMIT $1"),
            None,
        ),
    };
    let sql = dialect(conn, &sql);
    let mut q = sqlx::query(&sql);
    if let Some(s) = st {
        q = q.bind(s);
    }
    let rows = q
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .op("listing notices")?;
    rows.iter()
        .map(row)
        .collect::<Result<Vec<_>, _>>()
        .op("listing notices")
}

/// Records a delivery attempt's outcome. `status` is sent, failed, dead or cancelled; only a
/// notice still queued or failed changes (a notice sent is never touched again).
#[allow(clippy::too_many_arguments)]
pub async fn record(
    conn: &mut AnyConnection,
    id: i64,
    status: &str,
    attempts: i64,
    next_attempt_at: &str,
    error: Option<&str>,
    sent_at: Option<&str>,
    cancelled_reason: Option<&str>,
) -> Result<bool, StoreError> {
    let sql = dialect(
        conn,
        "UPDATE notices SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, \
         sent_at = $5, cancelled_reason = $6 WHERE id = $7 AND status IN ('queued', 'failed')",
    );
    sqlx::query(&sql)
        .bind(status.to_string())
        .bind(attempts)
        .bind(next_attempt_at.to_string())
        .bind(error.map(str::to_string))
        .bind(sent_at.map(str::to_string))
        .bind(cancelled_reason.map(str::to_string))
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
        .op("recording a delivery")
}

/// Status of bills by id: (bill_id, status), where a paid bill whose late fee is still owed
/// is `fee_owed`.
pub async fn bill_statuses(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = dialect(
            conn,
            &format!(
                "SELECT bill_id, CASE WHEN status = 'paid' \
                 AND fee_charged_minor > fee_waived_minor + fee_paid_minor THEN 'fee_owed' ELSE status END \
                 FROM bills WHERE bill_id IN ({})",
                super::in_list(chunk.len(), 1)
            ),
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.clone());
        }
        for r in q.fetch_all(&mut *conn).await.op("reading bill statuses")? {
            out.push((
                r.try_get(0).op("reading bill statuses")?,
                r.try_get(1).op("reading bill statuses")?,
            ));
        }
    }
    Ok(out)
}

/// Notices per (kind, stage, status), for the metrics.
pub async fn counts(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, String, String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT kind, COALESCE(stage, ''), status, COUNT(*) FROM notices GROUP BY kind, stage, status",
    )
    .fetch_all(&mut *conn)
    .await
    .op("counting notices")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("counting notices")
}

/// A payment applied (or held as credit) that has no receipt yet.
#[derive(Debug, Clone)]
pub struct ReceiptDue {
    pub payment_id: i64,
    pub account_no: String,
    pub customer: String,
    pub amount_minor: i64,
    pub applied_minor: i64,
    pub credit_minor: i64,
    pub currency: String,
    pub booking_date: Option<String>,
    pub bank_id: String,
    pub language: Option<String>,
}

/// Payments matched since `since` (RFC 3339) to a customer, credits, not reversed, without a
/// receipt notice.
pub async fn receipts_due(
    conn: &mut AnyConnection,
    since: &str,
) -> Result<Vec<ReceiptDue>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT p.id, p.account_no, COALESCE(c.name, ''), p.amount_minor, p.applied_minor, p.credit_minor, \
         p.currency, p.booking_date, p.bank_id, c.language FROM payments p LEFT JOIN customers c ON c.account_no = p.account_no \
         WHERE p.status IN ('applied', 'partially_applied', 'credit') AND p.reversal = 0 \
         AND p.direction = 'credit' AND p.account_no IS NOT NULL AND p.matched_at >= $1 \
         AND NOT EXISTS (SELECT 1 FROM notices n WHERE n.payment_id = p.id AND n.kind = 'receipt') \
         ORDER BY p.id LIMIT 5000",
    );
    let rows = sqlx::query(&sql)
        .bind(since.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("finding payments to confirm")?;
    rows.iter()
        .map(|r| {
            Ok(ReceiptDue {
                payment_id: r.try_get(0)?,
                account_no: r.try_get(1)?,
                customer: r.try_get(2)?,
                amount_minor: r.try_get(3)?,
                applied_minor: r.try_get(4)?,
                credit_minor: r.try_get(5)?,
                currency: r.try_get(6)?,
                booking_date: r.try_get(7)?,
                bank_id: r.try_get(8)?,
                language: r.try_get::<Option<String>, _>(9)?.filter(|l| !l.is_empty()),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("finding payments to confirm")
}

/// Links a notice to the payment it confirms.
pub async fn set_payment(
    conn: &mut AnyConnection,
    id: i64,
    payment_id: i64,
) -> Result<(), StoreError> {
    let sql = dialect(conn, "UPDATE notices SET payment_id = $1 WHERE id = $2");
    sqlx::query(&sql)
        .bind(payment_id)
        .bind(id)
        .execute(&mut *conn)
        .await
        .op("linking a receipt")?;
    Ok(())
}

/// Sent notices of these kinds (optionally only those of a stage), oldest first.
pub async fn sent_of_kind(
    conn: &mut AnyConnection,
    kind: &str,
) -> Result<Vec<NoticeRow>, StoreError> {
    let sql = dialect(
        conn,
        &format!(
            "SELECT {COLS} FROM notices WHERE kind = $1 AND status IN ('sent', 'delivered') ORDER BY id"
        ),
    );
    let rows = sqlx::query(&sql)
        .bind(kind.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("reading sent notices")?;
    rows.iter()
        .map(row)
        .collect::<Result<Vec<_>, _>>()
        .op("reading sent notices")
}

/// The gateway's word on a sent notice: `delivered`, or `dead` (undeliverable), with the
/// detail. Only a sent notice changes; false when none matched.
pub async fn confirm(
    conn: &mut AnyConnection,
    idempotency_key: &str,
    status: &str,
    detail: Option<&str>,
) -> Result<bool, StoreError> {
    let sql = dialect(
        conn,
        "UPDATE notices SET status = $1, delivered_at = $2, last_error = $3 \
         WHERE idempotency_key = $4 AND status = 'sent'",
    );
    sqlx::query(&sql)
        .bind(status.to_string())
        .bind(super::now())
        .bind(detail.map(str::to_string))
        .bind(idempotency_key.to_string())
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
        .op("recording a delivery receipt")
}
