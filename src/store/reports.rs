//! What the reports read.

use super::{dialect, DbContext, StoreError};
use sqlx::{AnyConnection, Row};

/// One bank's (and currency's) booked lines of a day, summed by what became of them.
///
/// `received` is the money received: the day's credit lines that are not reversals and carry
/// money (a rejected duplicate and a cancelled real-time pair carry none). Each such payment's
/// amount is applied + credit + held + refunded + written off (`verify` proves it line by
/// line), so the sums add up the same way. Reversals, debits and rejected duplicates are
/// summed apart: they are never netted into what became of the money received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettlementSums {
    pub bank_id: String,
    pub currency: String,
    pub received_count: i64,
    pub received_minor: i64,
    pub applied_minor: i64,
    pub credit_minor: i64,
    /// Of the money received: still held in the exceptions queue.
    pub held_minor: i64,
    /// Of the money received: refunded to the payer, written off (signed).
    pub refunded_minor: i64,
    pub written_off_minor: i64,
    /// Lines rejected as duplicates (their amount: money not counted).
    pub rejected_minor: i64,
    pub reversal_count: i64,
    pub reversal_minor: i64,
    pub debit_count: i64,
    pub debit_minor: i64,
    pub files: i64,
    /// What the statements carrying the day's lines declare as credits (when they all
    /// declare it), and what was read as credits from those statements (every credit line,
    /// whatever became of it): the file's own check, as `verify` makes it.
    pub declared_credit_minor: Option<i64>,
    pub read_credit_minor: Option<i64>,
}

/// Lines that carry money in the settlement: not lines that only confirm a real-time payment,
/// settlement transfers on the utility's own account, cancelled real-time pairs or lines not
/// booked.
const SETTLED: &str = "p.status NOT IN ('not_booked', 'confirmed', 'transfer', 'cancelled')";
/// Money received: credits, not reversals, not rejected as duplicates.
const RECEIVED: &str = "p.direction = 'credit' AND p.reversal = 0 AND p.status <> 'rejected'";

/// Sums of the lines booked on `date` (YYYY-MM-DD) per bank and currency.
pub async fn settlement(
    conn: &mut AnyConnection,
    date: &str,
) -> Result<Vec<SettlementSums>, StoreError> {
    let of_received = |col: &str| {
        format!("CAST(COALESCE(SUM(CASE WHEN {RECEIVED} THEN {col} ELSE 0 END), 0) AS BIGINT)")
    };
    let sql = dialect(
        conn,
        &format!(
            "SELECT p.bank_id, p.currency, \
             CAST(SUM(CASE WHEN {RECEIVED} THEN 1 ELSE 0 END) AS BIGINT), \
             {}, {}, {}, {}, {}, {}, \
             CAST(COALESCE(SUM(CASE WHEN p.status = 'rejected' THEN p.amount_minor ELSE 0 END), 0) AS BIGINT), \
             CAST(SUM(CASE WHEN p.reversal = 1 AND p.status <> 'rejected' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN p.reversal = 1 AND p.status <> 'rejected' THEN -p.amount_minor ELSE 0 END), 0) AS BIGINT), \
             CAST(SUM(CASE WHEN p.direction = 'debit' AND p.reversal = 0 AND p.status <> 'rejected' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN p.direction = 'debit' AND p.reversal = 0 AND p.status <> 'rejected' THEN -p.amount_minor ELSE 0 END), 0) AS BIGINT), \
             CAST(COUNT(DISTINCT p.file_id) AS BIGINT) \
             FROM payments p WHERE p.booking_date = $1 AND {SETTLED} \
             GROUP BY p.bank_id, p.currency ORDER BY p.bank_id, p.currency",
            of_received("p.amount_minor"),
            of_received("p.applied_minor"),
            of_received("p.credit_minor"),
            of_received("p.held_minor"),
            of_received("p.refunded_minor"),
            of_received("p.written_off_minor"),
        ),
    );
    let rows = sqlx::query(&sql)
        .bind(date.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("summing the day's payments")?;
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(SettlementSums {
                bank_id: r.try_get(0)?,
                currency: r.try_get(1)?,
                received_count: r.try_get(2)?,
                received_minor: r.try_get(3)?,
                applied_minor: r.try_get(4)?,
                credit_minor: r.try_get(5)?,
                held_minor: r.try_get(6)?,
                refunded_minor: r.try_get(7)?,
                written_off_minor: r.try_get(8)?,
                rejected_minor: r.try_get(9)?,
                reversal_count: r.try_get(10)?,
                reversal_minor: r.try_get(11)?,
                debit_count: r.try_get(12)?,
                debit_minor: r.try_get(13)?,
                files: r.try_get(14)?,
                declared_credit_minor: None,
                read_credit_minor: None,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("summing the day's payments")?;
    // the statements that carry the day's lines, each once: what they declare ...
    let sql = dialect(
        conn,
        "SELECT f.bank_id, COALESCE(s.currency, ''), CAST(SUM(s.declared_credit_minor) AS BIGINT), \
         CAST(SUM(CASE WHEN s.declared_credit_minor IS NULL THEN 1 ELSE 0 END) AS BIGINT) \
         FROM statements s JOIN bank_files f ON f.id = s.file_id \
         WHERE s.id IN (SELECT DISTINCT statement_row FROM payments WHERE booking_date = $1) \
         AND f.format <> 'partner_api' \
         GROUP BY f.bank_id, s.currency",
    );
    for r in sqlx::query(&sql)
        .bind(date.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("reading declared totals")?
    {
        let (bank, ccy): (String, String) = (
            r.try_get(0).op("reading declared totals")?,
            r.try_get(1).op("reading declared totals")?,
        );
        let sum: Option<i64> = r.try_get(2).op("reading declared totals")?;
        let undeclared: i64 = r.try_get(3).op("reading declared totals")?;
        if let Some(row) = out
            .iter_mut()
            .find(|o| o.bank_id == bank && (ccy.is_empty() || o.currency == ccy))
        {
            // only when every statement declares its credits
            row.declared_credit_minor = if undeclared == 0 { sum } else { None };
        }
    }
    // ... and what was read from them: every credit line, whatever became of it
    let sql = dialect(
        conn,
        "SELECT f.bank_id, p.currency, \
         CAST(COALESCE(SUM(CASE WHEN p.direction = 'credit' THEN p.amount_minor ELSE 0 END), 0) AS BIGINT) \
         FROM payments p JOIN bank_files f ON f.id = p.file_id \
         WHERE p.statement_row IN (SELECT DISTINCT statement_row FROM payments WHERE booking_date = $1) \
         AND f.format <> 'partner_api' \
         GROUP BY f.bank_id, p.currency",
    );
    for r in sqlx::query(&sql)
        .bind(date.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("reading the credits of the day's statements")?
    {
        let (bank, ccy): (String, String) = (
            r.try_get(0)
                .op("reading the credits of the day's statements")?,
            r.try_get(1)
                .op("reading the credits of the day's statements")?,
        );
        let read: i64 = r
            .try_get(2)
            .op("reading the credits of the day's statements")?;
        if let Some(row) = out
            .iter_mut()
            .find(|o| o.bank_id == bank && o.currency == ccy)
        {
            row.read_credit_minor = Some(read);
        }
    }
    Ok(out)
}

/// An exception as the reports need it, dated by its payment's booking day (the settlement's
/// clock; the day it was raised when the line has none).
#[derive(Debug, Clone)]
pub struct ExceptionFact {
    pub reason: String,
    /// open or resolved, now
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub booking_date: String,
    pub escalated: bool,
    /// The line is money received (a credit, not a reversal): its held amount is the
    /// settlement's "held in exceptions".
    pub received: bool,
    /// What the line still holds in the queue.
    pub held_minor: i64,
}

/// Every exception whose line was booked on or before `to` (YYYY-MM-DD).
pub async fn exceptions(
    conn: &mut AnyConnection,
    to: &str,
) -> Result<Vec<ExceptionFact>, StoreError> {
    let rows = super::fetch_packed(
        conn,
        &[
            "e.reason",
            "e.status",
            "e.amount_minor",
            "e.currency",
            "COALESCE(p.booking_date, SUBSTR(e.created_at, 1, 10))",
            "CASE WHEN e.escalated_at IS NULL THEN 0 ELSE 1 END",
            "CASE WHEN p.direction = 'credit' AND p.reversal = 0 THEN 1 ELSE 0 END",
            "p.held_minor",
        ],
        "exceptions e JOIN payments p ON p.id = e.payment_id \
         WHERE COALESCE(p.booking_date, SUBSTR(e.created_at, 1, 10)) <= $1",
        "e.id",
        vec![super::Val::S(to.into())],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ExceptionFact {
            reason: super::cell(&r, 0).unwrap_or_default(),
            status: super::cell(&r, 1).unwrap_or_default(),
            amount_minor: super::num(&r, 2),
            currency: super::cell(&r, 3).unwrap_or_default(),
            booking_date: super::cell(&r, 4).unwrap_or_default(),
            escalated: super::num(&r, 5) != 0,
            received: super::num(&r, 6) != 0,
            held_minor: super::num(&r, 7),
        })
        .collect())
}

/// A bill issued in a window, with its customer's class and manager.
#[derive(Debug, Clone)]
pub struct IssuedBill {
    pub bill_id: String,
    pub account_no: String,
    pub name: String,
    pub due_on: String,
    pub status: String,
    pub outstanding_minor: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub issued_on: String,
    pub class: String,
    pub manager: Option<String>,
}

/// Bills issued from `from` to `to` (inclusive, YYYY-MM-DD), cancelled ones left out.
pub async fn issued_bills(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
) -> Result<Vec<IssuedBill>, StoreError> {
    let rows = super::fetch_packed(
        conn,
        &[
            "b.bill_id",
            "b.amount_minor",
            "b.currency",
            "b.issued_on",
            "c.class",
            "c.manager",
            "b.account_no",
            "c.name",
            "b.due_on",
            "b.status",
            "b.amount_minor - b.paid_minor",
        ],
        "bills b JOIN customers c ON c.account_no = b.account_no \
         WHERE b.status <> 'cancelled' AND b.issued_on >= $1 AND b.issued_on <= $2",
        "b.bill_id",
        vec![super::Val::S(from.into()), super::Val::S(to.into())],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| IssuedBill {
            bill_id: super::cell(&r, 0).unwrap_or_default(),
            amount_minor: super::num(&r, 1),
            currency: super::cell(&r, 2).unwrap_or_default(),
            issued_on: super::cell(&r, 3).unwrap_or_default(),
            class: super::cell(&r, 4).unwrap_or_default(),
            manager: super::cell(&r, 5).filter(|m| !m.is_empty()),
            account_no: super::cell(&r, 6).unwrap_or_default(),
            name: super::cell(&r, 7).unwrap_or_default(),
            due_on: super::cell(&r, 8).unwrap_or_default(),
            status: super::cell(&r, 9).unwrap_or_default(),
            outstanding_minor: super::num(&r, 10),
        })
        .collect())
}

/// Payments reversed by reversals booked from `from` to `to` (inclusive), per account:
/// (account_no, count).
pub async fn reversals_by_account(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT p.account_no, COUNT(*) FROM payments p JOIN payments r ON r.id = p.reversed_by_payment_id \
         WHERE p.status = 'reversed' AND p.reversal = 0 AND p.account_no IS NOT NULL \
         AND r.booking_date >= $1 AND r.booking_date <= $2 GROUP BY p.account_no",
    );
    let rows = sqlx::query(&sql)
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("counting reversals")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("counting reversals")
}

/// Money allocated to the principal of the bills issued from `issued_from` to `to` (inclusive) by payments
/// booked up to `to` (net of reversals), with the paying bank, the payment's booking date and
/// its channel (a reversal's is its original's; `online` for a real-time payment that names
/// none, `file` for a bank file's line): (bill_id, bank_id, booking_date, amount, channel). Late fees apart: [`late_fee_events`].
pub async fn allocations_by_payment(
    conn: &mut AnyConnection,
    issued_from: &str,
    to: &str,
) -> Result<Vec<(String, String, String, i64, String)>, StoreError> {
    let rows = super::fetch_packed(
        conn,
        &[
            "a.bill_id",
            "p.bank_id",
            "p.booking_date",
            "a.amount_minor",
            "COALESCE(p.channel, o.channel, CASE WHEN p.source = 'realtime' THEN 'online' ELSE 'file' END)",
        ],
        "allocations a JOIN payments p ON p.id = a.payment_id \
         JOIN bills b ON b.bill_id = a.bill_id \
         LEFT JOIN payments o ON o.id = p.reverses_payment_id \
         WHERE a.part = 'principal' AND p.booking_date IS NOT NULL AND p.booking_date <= $2 \
         AND b.issued_on >= $1 AND b.issued_on <= $2",
        "a.id",
        vec![super::Val::S(issued_from.into()), super::Val::S(to.into())],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                super::cell(&r, 0).unwrap_or_default(),
                super::cell(&r, 1).unwrap_or_default(),
                super::cell(&r, 2).unwrap_or_default(),
                super::num(&r, 3),
                super::cell(&r, 4).unwrap_or_default(),
            )
        })
        .collect())
}

/// The lines booked on a day that did not simply settle: held in exceptions, reversed,
/// refunded, rejected as duplicates or partly written off, as
/// cells (bank_id, bank_ref, amount_minor, currency, status, exception_reason, detail).
pub async fn settlement_lines(
    conn: &mut AnyConnection,
    date: &str,
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    super::fetch_packed(
        conn,
        &[
            "p.bank_id",
            "p.bank_ref",
            "p.amount_minor",
            "p.currency",
            "p.status",
            "p.exception_reason",
            "p.exception_detail",
        ],
        "payments p WHERE p.booking_date = $1 AND (p.status IN ('exception', 'reversed', 'refunded', 'rejected', 'cancelled') OR p.written_off_minor <> 0)",
        "p.bank_id, p.id",
        vec![super::Val::S(date.into())],
    )
    .await
}

/// The day's money in per bank, currency and channel (`file` for lines of bank files that
/// name none): (bank, currency, channel, count, sum).
pub async fn settlement_channels(
    conn: &mut AnyConnection,
    date: &str,
) -> Result<Vec<(String, String, String, i64, i64)>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT bank_id, currency, COALESCE(channel, CASE WHEN source = 'realtime' THEN 'online' ELSE 'file' END), \
         CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM payments \
         WHERE booking_date = $1 AND direction = 'credit' AND reversal = 0 \
         AND status NOT IN ('not_booked', 'confirmed', 'transfer', 'cancelled', 'rejected') \
         GROUP BY bank_id, currency, COALESCE(channel, CASE WHEN source = 'realtime' THEN 'online' ELSE 'file' END) \
         ORDER BY 1, 2, 3",
    );
    let rows = sqlx::query(&sql)
        .bind(date.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("summing the day's channels")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .op("summing the day's channels")
}

/// The partner banks' end-of-day results of a day: (bank, currency, matched, discrepancies,
/// net, fee, settlement).
pub async fn settlement_eod(
    conn: &mut AnyConnection,
    date: &str,
) -> Result<Vec<(String, String, i64, i64, i64, i64, String)>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT bank_id, currency, matched, discrepancies, net_minor, fee_minor, settlement FROM eod_runs \
         WHERE business_date = $1 ORDER BY bank_id",
    );
    let rows = sqlx::query(&sql)
        .bind(date.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("reading the day's end-of-day results")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .op("reading the day's end-of-day results")
}

/// Each bank's latest file (bank files, not real-time postings): (bank, file name,
/// received at).
pub async fn latest_files(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT bank_id, file_name, received_at FROM bank_files WHERE id IN \
         (SELECT MAX(id) FROM bank_files WHERE format <> 'partner_api' GROUP BY bank_id) ORDER BY bank_id",
    )
    .fetch_all(&mut *conn)
    .await
    .op("reading the banks' latest files")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()
        .op("reading the banks' latest files")
}

/// A partner bank's end-of-day result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EodRow {
    pub bank_id: String,
    pub business_date: String,
    pub matched: i64,
    pub discrepancies: i64,
    pub net_minor: i64,
    pub fee_minor: i64,
    pub currency: String,
    pub settlement: String,
}

/// The partner banks' end-of-day results of business days from `from` on, newest first.
pub async fn recent_eod(conn: &mut AnyConnection, from: &str) -> Result<Vec<EodRow>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT bank_id, business_date, matched, discrepancies, net_minor, fee_minor, currency, settlement \
         FROM eod_runs WHERE business_date >= $1 ORDER BY business_date DESC, bank_id",
    );
    let rows = sqlx::query(&sql)
        .bind(from.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("reading the end-of-day results")?;
    rows.iter()
        .map(|r| {
            Ok(EodRow {
                bank_id: r.try_get(0)?,
                business_date: r.try_get(1)?,
                matched: r.try_get(2)?,
                discrepancies: r.try_get(3)?,
                net_minor: r.try_get(4)?,
                fee_minor: r.try_get(5)?,
                currency: r.try_get(6)?,
                settlement: r.try_get(7)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .op("reading the end-of-day results")
}

/// The open exceptions, oldest booking day first: (exception id, reason, amount, currency,
/// booking day, bank), at most `limit`.
pub async fn oldest_open_exceptions(
    conn: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<(i64, String, i64, String, String, String)>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT e.id, e.reason, e.amount_minor, e.currency, \
         COALESCE(p.booking_date, SUBSTR(e.created_at, 1, 10)), p.bank_id \
         FROM exceptions e JOIN payments p ON p.id = e.payment_id WHERE e.status = 'open' \
         ORDER BY COALESCE(p.booking_date, SUBSTR(e.created_at, 1, 10)), e.id LIMIT $1",
    );
    let rows = sqlx::query(&sql)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .op("reading the oldest exceptions")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .op("reading the oldest exceptions")
}

/// One movement of late fees, for the reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeEvent {
    /// charged | collected | waived
    pub what: String,
    /// the booking day of the payment that charged or paid it; a waiver's day
    pub day: String,
    pub class: String,
    pub manager: Option<String>,
    /// the paying bank and channel (none for a waiver)
    pub bank_id: Option<String>,
    pub channel: Option<String>,
    pub currency: String,
    pub amount_minor: i64,
}

/// The late fees charged (charges net of undos, by the payment whose money they are on, or
/// that undid them), collected (fee allocations) and waived from `from` to `to`
/// (YYYY-MM-DD, inclusive).
pub async fn late_fee_events(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
) -> Result<Vec<FeeEvent>, StoreError> {
    let channel = "COALESCE(p.channel, o.channel, CASE WHEN p.source = 'realtime' THEN 'online' ELSE 'file' END)";
    let queries = [
        (
            "charged",
            "late_fees l JOIN payments p ON p.id = COALESCE(l.by_payment_id, l.payment_id) \
             LEFT JOIN payments o ON o.id = p.reverses_payment_id \
             JOIN bills b ON b.bill_id = l.bill_id JOIN customers c ON c.account_no = b.account_no \
             WHERE l.kind IN ('charge', 'undo') AND p.booking_date >= $1 AND p.booking_date <= $2",
            ["p.booking_date", "p.bank_id", "l.amount_minor", "l.id"],
        ),
        (
            "collected",
            "allocations a JOIN payments p ON p.id = a.payment_id \
             LEFT JOIN payments o ON o.id = p.reverses_payment_id \
             JOIN bills b ON b.bill_id = a.bill_id JOIN customers c ON c.account_no = b.account_no \
             WHERE a.part = 'late_fee' AND p.booking_date >= $1 AND p.booking_date <= $2",
            ["p.booking_date", "p.bank_id", "a.amount_minor", "a.id"],
        ),
    ];
    let mut out = Vec::new();
    for (what, rest, [day, bank, amount, order]) in queries {
        let cols = [
            day,
            bank,
            channel,
            "c.class",
            "c.manager",
            "b.currency",
            amount,
        ];
        for r in super::fetch_packed(
            conn,
            &cols,
            rest,
            order,
            vec![super::Val::S(from.into()), super::Val::S(to.into())],
        )
        .await?
        {
            out.push(FeeEvent {
                what: what.into(),
                day: super::cell(&r, 0).unwrap_or_default(),
                bank_id: super::cell(&r, 1),
                channel: super::cell(&r, 2),
                class: super::cell(&r, 3).unwrap_or_default(),
                manager: super::cell(&r, 4).filter(|m| !m.is_empty()),
                currency: super::cell(&r, 5).unwrap_or_default(),
                amount_minor: super::num(&r, 6),
            });
        }
    }
    let rows = super::fetch_packed(
        conn,
        &[
            "substr(l.created_at, 1, 10)",
            "c.class",
            "c.manager",
            "b.currency",
            "-l.amount_minor",
        ],
        "late_fees l JOIN bills b ON b.bill_id = l.bill_id JOIN customers c ON c.account_no = b.account_no \
         WHERE l.kind IN ('waiver', 'waiver_undo') AND substr(l.created_at, 1, 10) >= $1 \
         AND substr(l.created_at, 1, 10) <= $2",
        "l.id",
        vec![super::Val::S(from.into()), super::Val::S(to.into())],
    )
    .await?;
    for r in rows {
        out.push(FeeEvent {
            what: "waived".into(),
            day: super::cell(&r, 0).unwrap_or_default(),
            bank_id: None,
            channel: None,
            class: super::cell(&r, 1).unwrap_or_default(),
            manager: super::cell(&r, 2).filter(|m| !m.is_empty()),
            currency: super::cell(&r, 3).unwrap_or_default(),
            amount_minor: super::num(&r, 4),
        });
    }
    Ok(out)
}

/// Late fees outstanding at the end of `day` (YYYY-MM-DD), per class, manager and
/// currency: charges (and their undos) by the booking day of the payment whose money they are
/// on (or that undid them), fee allocations by the booking day of the paying payment, waivers
/// by the day they were recorded.
pub async fn late_fees_outstanding(
    conn: &mut AnyConnection,
    day: &str,
) -> Result<Vec<(String, Option<String>, String, i64)>, StoreError> {
    let rows = super::fetch_packed(
        conn,
        &["c.class", "c.manager", "b.currency", "CAST(SUM(f.amount) AS BIGINT)"],
        "(SELECT l.bill_id, l.amount_minor AS amount FROM late_fees l \
          JOIN payments p ON p.id = COALESCE(l.by_payment_id, l.payment_id) \
          WHERE l.kind IN ('charge', 'undo') AND p.booking_date <= $1 \
          UNION ALL SELECT bill_id, amount_minor FROM late_fees \
          WHERE kind IN ('waiver', 'waiver_undo') AND substr(created_at, 1, 10) <= $2 \
          UNION ALL SELECT a.bill_id, -a.amount_minor FROM allocations a JOIN payments p ON p.id = a.payment_id \
          WHERE a.part = 'late_fee' AND p.booking_date <= $3) f \
         JOIN bills b ON b.bill_id = f.bill_id JOIN customers c ON c.account_no = b.account_no \
         GROUP BY c.class, c.manager, b.currency",
        "c.class, c.manager, b.currency",
        vec![
            super::Val::S(day.into()),
            super::Val::S(day.into()),
            super::Val::S(day.into()),
        ],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                super::cell(&r, 0).unwrap_or_default(),
                super::cell(&r, 1).filter(|m| !m.is_empty()),
                super::cell(&r, 2).unwrap_or_default(),
                super::num(&r, 3),
            )
        })
        .filter(|r| r.3 != 0)
        .collect())
}

/// Each bill's late fee as it stood at the end of `day` (YYYY-MM-DD): charges and undos by the
/// booking day of the payment whose money they are on (or that undid them), fee allocations by
/// the booking day of the paying payment, waivers by the day they were recorded; waived when a
/// waiver was recorded by then. Only bills with any.
pub async fn late_fees_by_bill(
    conn: &mut AnyConnection,
    day: &str,
) -> Result<std::collections::HashMap<String, super::bills::BillFee>, StoreError> {
    let rows = super::fetch_packed(
        conn,
        &[
            "f.bill_id",
            "CAST(SUM(f.accrued) AS BIGINT)",
            "CAST(SUM(f.charged) AS BIGINT)",
            "CAST(SUM(f.waived) AS BIGINT)",
            "CAST(SUM(f.paid) AS BIGINT)",
            "CAST(MAX(f.flag) AS BIGINT)",
        ],
        "(SELECT l.bill_id, l.computed_minor AS accrued, l.amount_minor AS charged, 0 AS waived, 0 AS paid, 0 AS flag \
          FROM late_fees l JOIN payments p ON p.id = COALESCE(l.by_payment_id, l.payment_id) \
          WHERE l.kind IN ('charge', 'undo') AND p.booking_date <= $1 \
          UNION ALL SELECT bill_id, 0, 0, -amount_minor, 0, 0 FROM late_fees \
          WHERE kind IN ('waiver', 'waiver_undo') AND substr(created_at, 1, 10) <= $2 \
          UNION ALL SELECT a.bill_id, 0, 0, 0, a.amount_minor, 0 FROM allocations a JOIN payments p ON p.id = a.payment_id \
          WHERE a.part = 'late_fee' AND p.booking_date <= $3 \
          UNION ALL SELECT bill_id, 0, 0, 0, 0, 1 FROM late_fee_waivers WHERE substr(waived_at, 1, 10) <= $4) f \
         GROUP BY f.bill_id",
        "f.bill_id",
        vec![
            super::Val::S(day.into()),
            super::Val::S(day.into()),
            super::Val::S(day.into()),
            super::Val::S(day.into()),
        ],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                super::cell(&r, 0).unwrap_or_default(),
                super::bills::BillFee {
                    accrued: super::num(&r, 1),
                    charged: super::num(&r, 2),
                    waived: super::num(&r, 3),
                    paid: super::num(&r, 4),
                    waived_flag: super::num(&r, 5) != 0,
                },
            )
        })
        .collect())
}
