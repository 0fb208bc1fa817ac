//! What matching reads (pending payments and their context) and writes (its outcomes), in
//! batches: never one query per payment.

use super::{bind_vals, in_list, insert_rows, placeholders, DbContext, StoreError, Val};
use sqlx::{AnyConnection, Row};

/// A payment waiting to be matched.
#[derive(Debug, Clone)]
pub struct PendingPayment {
    pub id: i64,
    pub bank_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub direction: String,
    pub reversal: bool,
    pub txn_key: Option<String>,
    pub bank_ref: Option<String>,
    pub entry_ref: Option<String>,
    pub end_to_end_id: Option<String>,
    pub tx_id: Option<String>,
    pub reference: Option<String>,
    pub remittance: Option<String>,
    pub additional_info: Option<String>,
}

/// The oldest pending payments, in ingest order.
pub async fn pending(
    conn: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<PendingPayment>, StoreError> {
    let cols = [
        "id",
        "bank_id",
        "amount_minor",
        "currency",
        "direction",
        "reversal",
        "txn_key",
        "bank_ref",
        "entry_ref",
        "end_to_end_id",
        "tx_id",
        "reference",
        "remittance",
        "additional_info",
    ];
    // the LIMIT sits in a subquery so the packed aggregate sees only these rows
    let rest = "(SELECT * FROM payments WHERE status = 'pending' ORDER BY id LIMIT $1) p";
    let rows = super::fetch_packed(conn, &cols, rest, "id", vec![Val::I(limit)]).await?;
    Ok(rows
        .into_iter()
        .map(|r| PendingPayment {
            id: super::num(&r, 0),
            bank_id: super::cell(&r, 1).unwrap_or_default(),
            amount_minor: super::num(&r, 2),
            currency: super::cell(&r, 3).unwrap_or_default(),
            direction: super::cell(&r, 4).unwrap_or_default(),
            reversal: super::num(&r, 5) != 0,
            txn_key: super::cell(&r, 6),
            bank_ref: super::cell(&r, 7),
            entry_ref: super::cell(&r, 8),
            end_to_end_id: super::cell(&r, 9),
            tx_id: super::cell(&r, 10),
            reference: super::cell(&r, 11),
            remittance: super::cell(&r, 12),
            additional_info: super::cell(&r, 13),
        })
        .collect())
}

pub async fn pending_count(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    sqlx::query("SELECT COUNT(*) FROM payments WHERE status = 'pending'")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("counting pending payments")
}

/// For these dedupe keys, the first already-matched payment carrying each: (bank, key, id).
pub async fn first_with_keys(
    conn: &mut AnyConnection,
    keys: &[String],
) -> Result<Vec<(String, String, i64)>, StoreError> {
    let mut out = Vec::new();
    for chunk in keys.chunks(1000) {
        let sql = format!(
            "SELECT bank_id, txn_key, MIN(id) FROM payments WHERE txn_key IN ({}) \
             AND status NOT IN ('pending', 'not_booked') GROUP BY bank_id, txn_key",
            in_list(chunk.len(), 1)
        );
        let sql = super::dialect(conn, &sql);
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q.bind(k.clone());
        }
        for r in q.fetch_all(&mut *conn).await.op("looking up duplicates")? {
            out.push((
                r.try_get(0).op("reading duplicates")?,
                r.try_get(1).op("reading duplicates")?,
                r.try_get(2).op("reading duplicates")?,
            ));
        }
    }
    Ok(out)
}

/// An earlier payment that a reversal may undo.
#[derive(Debug, Clone)]
pub struct ReversalCandidate {
    pub id: i64,
    pub amount_minor: i64,
    pub status: String,
    pub account_no: Option<String>,
    pub applied_minor: i64,
    pub credit_minor: i64,
    pub bank_ref: Option<String>,
    pub reversed_by: Option<i64>,
}

/// Earlier non-reversal payments of the bank with this end-to-end id or one of these bank
/// references.
pub async fn reversal_candidates(
    conn: &mut AnyConnection,
    bank_id: &str,
    before_id: i64,
    end_to_end_id: Option<&str>,
    refs: &[String],
) -> Result<Vec<ReversalCandidate>, StoreError> {
    let mut conds = Vec::new();
    let mut vals = vec![Val::S(bank_id.into()), Val::I(before_id)];
    if let Some(e) = end_to_end_id {
        vals.push(Val::S(e.into()));
        conds.push(format!("end_to_end_id = ${}", vals.len()));
    }
    if !refs.is_empty() {
        conds.push(format!(
            "bank_ref IN ({})",
            in_list(refs.len(), vals.len() + 1)
        ));
        vals.extend(refs.iter().map(|r| Val::S(r.clone())));
    }
    if conds.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!(
        "SELECT id, amount_minor, status, account_no, applied_minor, credit_minor, bank_ref, reversed_by_payment_id \
         FROM payments WHERE bank_id = $1 AND id < $2 AND reversal = 0 \
         AND status NOT IN ('pending', 'not_booked', 'confirmed', 'cancelled', 'rejected') \
         AND (exception_reason IS NULL OR exception_reason <> 'duplicate') AND ({}) ORDER BY id",
        conds.join(" OR ")
    );
    let sql = super::dialect(conn, &sql);
    let rows = bind_vals(sqlx::query(&sql), vals)
        .fetch_all(&mut *conn)
        .await
        .op("looking up the original of a reversal")?;
    rows.iter()
        .map(|r| {
            Ok(ReversalCandidate {
                id: r.try_get(0)?,
                amount_minor: r.try_get(1)?,
                status: r.try_get(2)?,
                account_no: r.try_get(3)?,
                applied_minor: r.try_get(4)?,
                credit_minor: r.try_get(5)?,
                bank_ref: r.try_get(6)?,
                reversed_by: r.try_get(7)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading reversal candidates")
}

/// Net allocations of a payment per bill: (bill_id, account_no, currency, amount).
pub async fn net_allocations(
    conn: &mut AnyConnection,
    payment_id: i64,
) -> Result<Vec<(String, String, String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT bill_id, account_no, currency, CAST(SUM(amount_minor) AS BIGINT) FROM allocations \
         WHERE payment_id = $1 GROUP BY bill_id, account_no, currency ORDER BY MIN(id)",
    )
    .bind(payment_id)
    .fetch_all(&mut *conn)
    .await
    .op("reading allocations")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading allocations")
}

/// One allocation to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAllocation {
    pub payment_id: i64,
    pub bill_id: String,
    pub account_no: String,
    pub amount_minor: i64,
    pub currency: String,
    pub rule: &'static str,
}

/// What matching decided for one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentUpdate {
    pub id: i64,
    pub status: &'static str,
    pub account_no: Option<String>,
    pub applied_minor: i64,
    pub credit_minor: i64,
    pub held_minor: i64,
    pub exception_reason: Option<&'static str>,
    pub exception_detail: Option<String>,
    pub reverses_payment_id: Option<i64>,
    pub related_payment_id: Option<i64>,
    /// the real-time payment this file line confirms (status `confirmed`)
    pub confirms_payment_id: Option<i64>,
    pub currency: String,
}

/// Everything one matching batch writes, in one transaction.
#[derive(Debug, Default)]
pub struct BatchWrite {
    pub payments: Vec<PaymentUpdate>,
    pub allocations: Vec<NewAllocation>,
    /// (account, payment, amount, currency, kind)
    pub credits: Vec<(String, i64, i64, String, &'static str)>,
    /// bill_id -> change of paid amount
    pub bill_deltas: Vec<(String, i64)>,
    /// (original payment id, reversal payment id)
    pub reversed: Vec<(i64, i64)>,
}

pub async fn write_batch(
    conn: &mut AnyConnection,
    w: BatchWrite,
    at: &str,
) -> Result<(), StoreError> {
    let at = at.to_string();
    // payments
    for chunk in w.payments.chunks(1000) {
        let cols = 11;
        let sql = format!(
            "UPDATE payments SET status = v.column2, account_no = v.column3, applied_minor = v.column4, \
             credit_minor = v.column5, held_minor = v.column6, exception_reason = v.column7, \
             exception_detail = v.column8, reverses_payment_id = v.column9, matched_at = v.column10, \
             confirms_payment_id = v.column11 \
             FROM (VALUES {}) AS v WHERE payments.id = v.column1",
            placeholders(chunk.len(), cols, 1)
        );
        let vals = chunk
            .iter()
            .flat_map(|p| {
                vec![
                    Val::I(p.id),
                    Val::S(p.status.into()),
                    Val::OS(p.account_no.clone()),
                    Val::I(p.applied_minor),
                    Val::I(p.credit_minor),
                    Val::I(p.held_minor),
                    Val::OS(p.exception_reason.map(str::to_string)),
                    Val::OS(p.exception_detail.clone()),
                    Val::OI(p.reverses_payment_id),
                    Val::S(at.clone()),
                    Val::OI(p.confirms_payment_id),
                ]
            })
            .collect();
        let sql = super::dialect(conn, &sql);
        bind_vals(sqlx::query(&sql), vals)
            .execute(&mut *conn)
            .await
            .op("saving match outcomes")?;
    }
    for (orig, rev) in &w.reversed {
        sqlx::query(
            "UPDATE payments SET status = 'reversed', reversed_by_payment_id = $2 WHERE id = $1",
        )
        .bind(*orig)
        .bind(*rev)
        .execute(&mut *conn)
        .await
        .op("marking a payment reversed")?;
    }
    // exceptions
    let exceptions: Vec<Vec<Val>> = w
        .payments
        .iter()
        .filter_map(|p| {
            p.exception_reason.map(|reason| {
                vec![
                    Val::I(p.id),
                    Val::S(reason.into()),
                    Val::S(p.exception_detail.clone().unwrap_or_default()),
                    Val::I(p.held_minor),
                    Val::S(p.currency.clone()),
                    Val::S("open".into()),
                    Val::OI(p.related_payment_id),
                    Val::S(at.clone()),
                ]
            })
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO exceptions (payment_id, reason, detail, amount_minor, currency, status, related_payment_id, created_at)",
        8,
        exceptions,
        "saving exceptions",
    )
    .await?;
    let allocs = w
        .allocations
        .into_iter()
        .map(|a| {
            vec![
                Val::I(a.payment_id),
                Val::S(a.bill_id),
                Val::S(a.account_no),
                Val::I(a.amount_minor),
                Val::S(a.currency),
                Val::S(a.rule.into()),
                Val::S(at.clone()),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO allocations (payment_id, bill_id, account_no, amount_minor, currency, rule, created_at)",
        7,
        allocs,
        "saving allocations",
    )
    .await?;
    let credits = w
        .credits
        .into_iter()
        .map(|(account, pid, amount, currency, kind)| {
            vec![
                Val::S(account),
                Val::I(pid),
                Val::I(amount),
                Val::S(currency),
                Val::S(kind.into()),
                Val::S(at.clone()),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO credit_ledger (account_no, payment_id, amount_minor, currency, kind, created_at)",
        6,
        credits,
        "saving customer credit",
    )
    .await?;
    apply_bill_deltas(conn, &w.bill_deltas, &at).await
}

/// Changes bills' paid amounts (bill_id -> delta) and their status with them: a bill is
/// `paid` once nothing is left, `open` again when money is taken back; a cancelled bill
/// stays cancelled.
pub async fn apply_bill_deltas(
    conn: &mut AnyConnection,
    deltas: &[(String, i64)],
    at: &str,
) -> Result<(), StoreError> {
    for chunk in deltas.chunks(1000) {
        // updated_at is $1 so that every placeholder appears in order (see `dialect`)
        let sql = format!(
            "UPDATE bills SET paid_minor = bills.paid_minor + v.column2, \
             status = CASE WHEN bills.status = 'cancelled' THEN 'cancelled' \
                           WHEN bills.paid_minor + v.column2 >= bills.amount_minor THEN 'paid' ELSE 'open' END, \
             updated_at = $1 FROM (VALUES {}) AS v WHERE bills.bill_id = v.column1",
            placeholders(chunk.len(), 2, 2)
        );
        let mut vals: Vec<Val> = vec![Val::S(at.to_string())];
        vals.extend(
            chunk
                .iter()
                .flat_map(|(b, d)| vec![Val::S(b.clone()), Val::I(*d)]),
        );
        let sql = super::dialect(conn, &sql);
        bind_vals(sqlx::query(&sql), vals)
            .execute(&mut *conn)
            .await
            .op("updating paid amounts")?;
    }
    Ok(())
}

/// Real-time postings of these banks with one of these transaction ids:
/// (bank, bank_txn_id, payment, amount, reversal payment).
pub async fn realtime_postings(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<(String, String, i64, i64, Option<i64>)>, StoreError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(1000) {
        let sql = format!(
            "SELECT bank_id, bank_txn_id, payment_id, amount_minor, reversal_payment_id FROM partner_payments \
             WHERE bank_txn_id IN ({})",
            in_list(chunk.len(), 1)
        );
        let sql = super::dialect(conn, &sql);
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q.bind(k.clone());
        }
        for r in q
            .fetch_all(&mut *conn)
            .await
            .op("looking up real-time postings")?
        {
            out.push((
                r.try_get(0).op("reading real-time postings")?,
                r.try_get(1).op("reading real-time postings")?,
                r.try_get(2).op("reading real-time postings")?,
                r.try_get(3).op("reading real-time postings")?,
                r.try_get(4).op("reading real-time postings")?,
            ));
        }
    }
    Ok(out)
}
