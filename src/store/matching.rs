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
    pub booking_date: Option<String>,
    /// The day the money reached the collection account: a late fee is counted to it (to the
    /// booking date when the bank gives none).
    pub value_date: Option<String>,
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
        "booking_date",
        "value_date",
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
            booking_date: super::cell(&r, 14),
            value_date: super::cell(&r, 15),
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

/// A payment's net allocation to one part of one bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetAllocation {
    pub bill_id: String,
    pub account_no: String,
    pub currency: String,
    /// principal | late_fee
    pub part: String,
    pub amount_minor: i64,
}

/// Net allocations of a payment per bill and part, in the order they were first made.
pub async fn net_allocations(
    conn: &mut AnyConnection,
    payment_id: i64,
) -> Result<Vec<NetAllocation>, StoreError> {
    let rows = sqlx::query(
        "SELECT bill_id, account_no, currency, part, CAST(SUM(amount_minor) AS BIGINT) FROM allocations \
         WHERE payment_id = $1 GROUP BY bill_id, account_no, currency, part ORDER BY MIN(id)",
    )
    .bind(payment_id)
    .fetch_all(&mut *conn)
    .await
    .op("reading allocations")?;
    rows.iter()
        .map(|r| {
            Ok(NetAllocation {
                bill_id: r.try_get(0)?,
                account_no: r.try_get(1)?,
                currency: r.try_get(2)?,
                part: r.try_get(3)?,
                amount_minor: r.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading allocations")
}

/// The money of each payment on these bills, net: (bill_id, payment_id, part, of it by the
/// rule `write_off`, amount), payments in id order. Only what is not zero.
pub async fn allocations_on_bills(
    conn: &mut AnyConnection,
    bills: &[String],
) -> Result<Vec<(String, i64, String, bool, i64)>, StoreError> {
    let mut out = Vec::new();
    for chunk in bills.chunks(500) {
        let sql = format!(
            "SELECT bill_id, payment_id, part, CASE WHEN rule = 'write_off' THEN 1 ELSE 0 END, \
             CAST(SUM(amount_minor) AS BIGINT) FROM allocations WHERE bill_id IN ({}) \
             GROUP BY bill_id, payment_id, part, CASE WHEN rule = 'write_off' THEN 1 ELSE 0 END \
             HAVING SUM(amount_minor) <> 0 ORDER BY payment_id, bill_id",
            in_list(chunk.len(), 1)
        );
        let sql = super::dialect(conn, &sql);
        let mut q = sqlx::query(&sql);
        for b in chunk {
            q = q.bind(b.clone());
        }
        for r in q
            .fetch_all(&mut *conn)
            .await
            .op("reading the money on bills")?
        {
            let wo: i64 = r.try_get(3).op("reading the money on bills")?;
            out.push((
                r.try_get(0).op("reading the money on bills")?,
                r.try_get(1).op("reading the money on bills")?,
                r.try_get(2).op("reading the money on bills")?,
                wo != 0,
                r.try_get(4).op("reading the money on bills")?,
            ));
        }
    }
    out.sort_by_key(|r| r.1);
    Ok(out)
}

/// A late-fee charge still standing (not undone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRow {
    pub bill_id: String,
    pub account_no: String,
    pub currency: String,
    pub payment_id: i64,
    pub due_on: String,
    pub from_on: String,
    pub to_on: String,
    pub days: i64,
    pub rate: String,
    pub base_minor: i64,
    pub computed_minor: i64,
    pub minimum_minor: i64,
}

/// The charges of a payment that stand: per bill, those after the payment's last undo there
/// (an undo always takes back every standing charge of the payment on the bill at once).
pub async fn live_charges(
    conn: &mut AnyConnection,
    payment_id: i64,
) -> Result<Vec<ChargeRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT kind, bill_id, account_no, currency, COALESCE(due_on, ''), COALESCE(from_on, ''), \
         COALESCE(to_on, ''), days, rate, base_minor, computed_minor, minimum_minor FROM late_fees \
         WHERE payment_id = $1 AND kind IN ('charge', 'undo') ORDER BY id",
    )
    .bind(payment_id)
    .fetch_all(&mut *conn)
    .await
    .op("reading late-fee charges")?;
    let mut out: Vec<ChargeRow> = Vec::new();
    for r in &rows {
        let kind: String = r.try_get(0).op("reading late-fee charges")?;
        let bill: String = r.try_get(1).op("reading late-fee charges")?;
        if kind == "undo" {
            out.retain(|c| c.bill_id != bill);
            continue;
        }
        let get = |i: usize| -> Result<String, StoreError> {
            r.try_get::<String, _>(i).op("reading late-fee charges")
        };
        let num = |i: usize| -> Result<i64, StoreError> {
            r.try_get::<i64, _>(i).op("reading late-fee charges")
        };
        out.push(ChargeRow {
            bill_id: bill,
            account_no: get(2)?,
            currency: get(3)?,
            payment_id,
            due_on: get(4)?,
            from_on: get(5)?,
            to_on: get(6)?,
            days: num(7)?,
            rate: get(8)?,
            base_minor: num(9)?,
            computed_minor: num(10)?,
            minimum_minor: num(11)?,
        });
    }
    Ok(out)
}

/// One row of the late-fee ledger to write (see migration 0008).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLateFee {
    pub bill_id: String,
    pub account_no: String,
    pub currency: String,
    /// charge | undo | waiver | waiver_undo
    pub kind: &'static str,
    pub payment_id: Option<i64>,
    pub by_payment_id: Option<i64>,
    pub reason: String,
    pub actor: String,
    pub due_on: Option<String>,
    pub from_on: Option<String>,
    pub to_on: Option<String>,
    pub days: i64,
    pub rate: String,
    pub base_minor: i64,
    pub computed_minor: i64,
    pub amount_minor: i64,
    pub minimum_minor: i64,
}

pub async fn insert_late_fees(
    conn: &mut AnyConnection,
    rows: &[NewLateFee],
    at: &str,
) -> Result<(), StoreError> {
    let vals = rows
        .iter()
        .map(|f| {
            vec![
                Val::S(f.bill_id.clone()),
                Val::S(f.account_no.clone()),
                Val::S(f.currency.clone()),
                Val::S(f.kind.into()),
                Val::OI(f.payment_id),
                Val::OI(f.by_payment_id),
                Val::S(f.reason.clone()),
                Val::S(f.actor.clone()),
                Val::OS(f.due_on.clone()),
                Val::OS(f.from_on.clone()),
                Val::OS(f.to_on.clone()),
                Val::I(f.days),
                Val::S(f.rate.clone()),
                Val::I(f.base_minor),
                Val::I(f.computed_minor),
                Val::I(f.amount_minor),
                Val::I(f.minimum_minor),
                Val::S(at.to_string()),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO late_fees (bill_id, account_no, currency, kind, payment_id, by_payment_id, reason, actor, \
         due_on, from_on, to_on, days, rate, base_minor, computed_minor, amount_minor, minimum_minor, created_at)",
        18,
        vals,
        "saving late fees",
    )
    .await
}

/// A change of a payment decided elsewhere than its own matching (money moved off a bill).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentShift {
    pub payment_id: i64,
    pub applied_minor: i64,
    pub credit_minor: i64,
    pub written_off_minor: i64,
}

/// Applies shifts to payments' buckets; an applied / partially applied / credit payment's
/// status follows what it holds now.
pub async fn shift_payments(
    conn: &mut AnyConnection,
    shifts: &[PaymentShift],
) -> Result<(), StoreError> {
    for s in shifts {
        let sql = super::dialect(
            conn,
            "UPDATE payments SET applied_minor = applied_minor + $1, credit_minor = credit_minor + $2, \
             written_off_minor = written_off_minor + $3, \
             status = CASE WHEN status NOT IN ('applied', 'partially_applied', 'credit') THEN status \
                           WHEN applied_minor + $4 = 0 THEN 'credit' \
                           WHEN credit_minor + $5 > 0 THEN 'partially_applied' ELSE 'applied' END \
             WHERE id = $6",
        );
        sqlx::query(&sql)
            .bind(s.applied_minor)
            .bind(s.credit_minor)
            .bind(s.written_off_minor)
            .bind(s.applied_minor)
            .bind(s.credit_minor)
            .bind(s.payment_id)
            .execute(&mut *conn)
            .await
            .op("moving a payment's money")?;
    }
    Ok(())
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
    /// principal | late_fee
    pub part: &'static str,
}

/// Changes of a bill's paid amount and late-fee totals (minor units, signed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillDelta {
    pub bill_id: String,
    pub paid: i64,
    pub fee_accrued: i64,
    pub fee_charged: i64,
    pub fee_waived: i64,
    pub fee_paid: i64,
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
    /// changes of bills' paid amounts and late fees
    pub bill_deltas: Vec<BillDelta>,
    /// (original payment id, reversal payment id)
    pub reversed: Vec<(i64, i64)>,
    pub late_fees: Vec<NewLateFee>,
    /// other payments whose money a decision moved (fee money given back when the charge it
    /// paid was undone)
    pub shifts: Vec<PaymentShift>,
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
                Val::S(a.part.into()),
                Val::S(at.clone()),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO allocations (payment_id, bill_id, account_no, amount_minor, currency, rule, part, created_at)",
        8,
        allocs,
        "saving allocations",
    )
    .await?;
    insert_late_fees(conn, &w.late_fees, &at).await?;
    shift_payments(conn, &w.shifts).await?;
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

/// Changes bills' paid amounts and late-fee totals, and their status with them: a bill is
/// `paid` once no principal is left, `open` again when money is taken back; a cancelled bill
/// stays cancelled.
pub async fn apply_bill_deltas(
    conn: &mut AnyConnection,
    deltas: &[BillDelta],
    at: &str,
) -> Result<(), StoreError> {
    let (plain, fees): (Vec<&BillDelta>, Vec<&BillDelta>) = deltas.iter().partition(|d| {
        d.fee_accrued == 0 && d.fee_charged == 0 && d.fee_waived == 0 && d.fee_paid == 0
    });
    for chunk in plain.chunks(1000) {
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
                .flat_map(|d| vec![Val::S(d.bill_id.clone()), Val::I(d.paid)]),
        );
        let sql = super::dialect(conn, &sql);
        bind_vals(sqlx::query(&sql), vals)
            .execute(&mut *conn)
            .await
            .op("updating paid amounts")?;
    }
    for chunk in fees.chunks(500) {
        let sql = format!(
            "UPDATE bills SET paid_minor = bills.paid_minor + v.column2, \
             fee_accrued_minor = bills.fee_accrued_minor + v.column3, \
             fee_charged_minor = bills.fee_charged_minor + v.column4, \
             fee_waived_minor = bills.fee_waived_minor + v.column5, \
             fee_paid_minor = bills.fee_paid_minor + v.column6, \
             status = CASE WHEN bills.status = 'cancelled' THEN 'cancelled' \
                           WHEN bills.paid_minor + v.column2 >= bills.amount_minor THEN 'paid' ELSE 'open' END, \
             updated_at = $1 FROM (VALUES {}) AS v WHERE bills.bill_id = v.column1",
            placeholders(chunk.len(), 6, 2)
        );
        let mut vals: Vec<Val> = vec![Val::S(at.to_string())];
        vals.extend(chunk.iter().flat_map(|d| {
            vec![
                Val::S(d.bill_id.clone()),
                Val::I(d.paid),
                Val::I(d.fee_accrued),
                Val::I(d.fee_charged),
                Val::I(d.fee_waived),
                Val::I(d.fee_paid),
            ]
        }));
        let sql = super::dialect(conn, &sql);
        bind_vals(sqlx::query(&sql), vals)
            .execute(&mut *conn)
            .await
            .op("updating paid amounts and late fees")?;
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
