//! The end-of-day reconciliation of a partner bank's business day: its daily file against the
//! real-time postings of that day, by bank_txn_id, then amount.
//!
//! Matching has already decided each file line: a line naming a posting is `confirmed` (it
//! carries no money: the money was counted when it was posted); a line naming none was applied
//! like any file payment ("posted now"); a reversal line of a posting not reversed through the
//! API reversed it with the core's rules. This module compares and records:
//!
//! | category | what |
//! |---|---|
//! | matched | the file line confirms the posting with the same amount (or both were reversed) |
//! | `bank_only` | in the file, never posted online: posted now, flagged |
//! | `utility_only` | posted online, missing from the file: flagged, never reversed |
//! | `amount_mismatch` | the file line names the posting with another amount |
//! | `reversed_utility_only` | reversed through the API, but the file shows the payment standing |
//! | `reversed_bank_only` | the file reverses a payment that was not reversed online |
//!
//! The day's result is one `eod_runs` row (counts, the net collections, the fees the bank's
//! contract deducts, the settlement status) and one `eod_discrepancies` row per line that needs
//! a word. A later file for the same day compares again and replaces the day's result.

use crate::config::{Bank, Config};
use crate::domain::{money_text, Money};
use crate::store::{self, dialect, DbContext, Store, StoreError};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// One discrepancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    pub category: String,
    pub bank_txn_id: String,
    pub payment_id: Option<i64>,
    pub file_payment_id: Option<i64>,
    pub realtime_amount: Option<String>,
    pub file_amount: Option<String>,
    pub currency: String,
    pub detail: String,
}

/// A bank's business day, compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayResult {
    pub bank_id: String,
    pub business_date: String,
    pub matched: i64,
    pub discrepancies: Vec<Discrepancy>,
    /// what the bank owes the utility for the day, before fees
    pub net_collections: String,
    pub fees: String,
    /// net collections minus fees: the transfer expected
    pub expected_transfer: String,
    pub currency: String,
    /// pending | settled | short | over | missing
    pub settlement: String,
}

/// A file line of the day, as the comparison needs it.
struct FileLine {
    id: i64,
    ids: Vec<String>,
    amount: i64,
    reversal: bool,
    status: String,
    confirms: Option<i64>,
    reverses: Option<i64>,
}

async fn file_lines(
    conn: &mut AnyConnection,
    bank: &str,
    date: &str,
) -> Result<Vec<FileLine>, StoreError> {
    let sql = dialect(
        conn,
        "SELECT id, bank_ref, end_to_end_id, tx_id, amount_minor, reversal, status, confirms_payment_id, \
         reverses_payment_id FROM payments WHERE bank_id = $1 AND booking_date = $2 AND source = 'file' \
         AND status NOT IN ('not_booked', 'pending') ORDER BY id",
    );
    let rows = sqlx::query(&sql)
        .bind(bank.to_string())
        .bind(date.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("reading the day's file lines")?;
    rows.iter()
        .map(|r| {
            Ok(FileLine {
                id: r.try_get(0)?,
                ids: [
                    r.try_get::<Option<String>, _>(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                ]
                .into_iter()
                .flatten()
                .collect(),
                amount: r.try_get(4)?,
                reversal: r.try_get::<i64, _>(5)? != 0,
                status: r.try_get(6)?,
                confirms: r.try_get(7)?,
                reverses: r.try_get(8)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .op("reading the day's file lines")
}

/// Compares `bank`'s business day `date` and records the result.
pub async fn compare(
    store: &Store,
    config: &Config,
    bank: &Bank,
    date: &str,
) -> Result<DayResult, StoreError> {
    let Some(partner) = &bank.partner else {
        return Err(StoreError::Conflict(format!(
            "bank {} is not on the partner API",
            bank.id
        )));
    };
    let cur = config.ledger.currency;
    let c = cur.as_str();
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let postings = store::realtime::postings_of_day(&mut tx, &bank.id, date).await?;
    let lines = file_lines(&mut tx, &bank.id, date).await?;
    let mut out: Vec<Discrepancy> = Vec::new();
    let mut matched = 0i64;
    let mut net = 0i64;
    let mut count = 0i64;
    let d = |category: &str,
             txn: &str,
             pid: Option<i64>,
             fid: Option<i64>,
             rt: Option<i64>,
             file: Option<i64>,
             detail: String| Discrepancy {
        category: category.into(),
        bank_txn_id: txn.into(),
        payment_id: pid,
        file_payment_id: fid,
        realtime_amount: rt.map(|v| money_text(v, c)),
        file_amount: file.map(|v| money_text(v, c)),
        currency: c.into(),
        detail,
    };
    for p in &postings {
        let line = lines
            .iter()
            .find(|l| !l.reversal && l.confirms == Some(p.payment_id));
        let reversed = p.reversal_payment_id.is_some();
        let rev_line = p
            .reversal_payment_id
            .and_then(|r| lines.iter().find(|l| l.reversal && l.confirms == Some(r)));
        if !reversed {
            net += p.amount_minor;
            count += 1;
        }
        match (line, reversed) {
            (Some(l), _) if l.amount != p.amount_minor => out.push(d(
                "amount_mismatch",
                &p.bank_txn_id,
                Some(p.payment_id),
                Some(l.id),
                Some(p.amount_minor),
                Some(l.amount),
                format!(
                    "posted online for {}, the file says {}",
                    money_text(p.amount_minor, c),
                    money_text(l.amount, c)
                ),
            )),
            (Some(l), true) if rev_line.is_none() => out.push(d(
                "reversed_utility_only",
                &p.bank_txn_id,
                Some(p.payment_id),
                Some(l.id),
                Some(p.amount_minor),
                Some(l.amount),
                "reversed through the API, but the file shows the payment standing".into(),
            )),
            (Some(_), _) => matched += 1,
            (None, true) => matched += 1, // cancelled the same day: neither side has it
            (None, false) => out.push(d(
                "utility_only",
                &p.bank_txn_id,
                Some(p.payment_id),
                None,
                Some(p.amount_minor),
                None,
                "posted online, missing from the bank's file (not reversed: to be checked with the bank)"
                    .into(),
            )),
        }
    }
    for l in &lines {
        if l.confirms.is_some() || l.status == "rejected" {
            continue;
        }
        let txn = l.ids.first().cloned().unwrap_or_default();
        if l.reversal {
            // a reversal line that undid a real-time payment not reversed online
            let of_posting = match l.reverses {
                Some(orig) => postings.iter().find(|p| p.payment_id == orig),
                None => None,
            };
            if let Some(p) = of_posting {
                net += l.amount;
                out.push(d(
                    "reversed_bank_only",
                    &p.bank_txn_id,
                    Some(p.payment_id),
                    Some(l.id),
                    Some(p.amount_minor),
                    Some(l.amount),
                    "the file reverses a payment that was not reversed online; the reversal was applied".into(),
                ));
            }
        } else if l.amount > 0 {
            net += l.amount;
            count += 1;
            out.push(d(
                "bank_only",
                &txn,
                None,
                Some(l.id),
                None,
                Some(l.amount),
                format!(
                    "in the file, never posted online: posted now ({})",
                    l.status
                ),
            ));
        }
    }
    // the bank's fees for the day, as its contract says
    let fee = {
        let rate = Money::from_decimal(
            (rust_decimal::Decimal::new(net.max(0), cur.exponent()) * partner.fee_rate)
                .round_dp(cur.exponent()),
            cur,
        )
        .map(|m| m.minor())
        .unwrap_or(0);
        let per = Money::from_decimal(partner.fee_per_payment, cur)
            .map(|m| m.minor())
            .unwrap_or(0);
        rate + per * count
    };
    let at = store::now();
    for sql in [
        "DELETE FROM eod_discrepancies WHERE bank_id = $1 AND business_date = $2",
        "DELETE FROM eod_runs WHERE bank_id = $1 AND business_date = $2",
    ] {
        let sql = dialect(&tx, sql);
        sqlx::query(&sql)
            .bind(bank.id.clone())
            .bind(date.to_string())
            .execute(&mut *tx)
            .await
            .op("replacing the day's comparison")?;
    }
    for x in &out {
        let sql = dialect(
            &tx,
            "INSERT INTO eod_discrepancies (bank_id, business_date, category, bank_txn_id, payment_id, \
             file_payment_id, realtime_minor, file_minor, currency, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        );
        let minor = |s: &Option<String>| {
            s.as_deref()
                .and_then(|v| Money::parse(v, cur).ok())
                .map(|m| m.minor())
        };
        sqlx::query(&sql)
            .bind(bank.id.clone())
            .bind(date.to_string())
            .bind(x.category.clone())
            .bind(x.bank_txn_id.clone())
            .bind(x.payment_id)
            .bind(x.file_payment_id)
            .bind(minor(&x.realtime_amount))
            .bind(minor(&x.file_amount))
            .bind(c.to_string())
            .bind(x.detail.clone())
            .bind(at.clone())
            .execute(&mut *tx)
            .await
            .op("recording a discrepancy")?;
    }
    let sql = dialect(
        &tx,
        "INSERT INTO eod_runs (bank_id, business_date, file_id, matched, discrepancies, net_minor, fee_minor, \
         currency, settlement, compared_at) VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, 'pending', $8)",
    );
    sqlx::query(&sql)
        .bind(bank.id.clone())
        .bind(date.to_string())
        .bind(matched)
        .bind(out.len() as i64)
        .bind(net)
        .bind(fee)
        .bind(c.to_string())
        .bind(at)
        .execute(&mut *tx)
        .await
        .op("recording the day's comparison")?;
    tx.commit().await.op("committing the day's comparison")?;
    Ok(DayResult {
        bank_id: bank.id.clone(),
        business_date: date.to_string(),
        matched,
        discrepancies: out,
        net_collections: money_text(net, c),
        fees: money_text(fee, c),
        expected_transfer: money_text(net - fee, c),
        currency: c.to_string(),
        settlement: "pending".into(),
    })
}

/// Compares every partner bank's day whose file lines were decided after its last comparison
/// (or never compared). Returns the days compared.
pub async fn compare_due(
    store: &Store,
    config: &Config,
    banks: &[Bank],
) -> Result<Vec<DayResult>, StoreError> {
    let partners: Vec<&Bank> = banks.iter().filter(|b| b.partner.is_some()).collect();
    if partners.is_empty() {
        return Ok(vec![]);
    }
    let due: Vec<(String, String)> = {
        let mut conn = store.pool().acquire().await.op("connecting")?;
        let sql = format!(
            "SELECT p.bank_id, p.booking_date FROM payments p \
             LEFT JOIN eod_runs r ON r.bank_id = p.bank_id AND r.business_date = p.booking_date \
             WHERE p.bank_id IN ({}) AND p.source = 'file' AND p.booking_date IS NOT NULL \
             AND p.matched_at IS NOT NULL AND (r.compared_at IS NULL OR p.matched_at > r.compared_at) \
             GROUP BY p.bank_id, p.booking_date ORDER BY p.bank_id, p.booking_date",
            store::in_list(partners.len(), 1)
        );
        let sql = dialect(&conn, &sql);
        let mut q = sqlx::query(&sql);
        for b in &partners {
            q = q.bind(b.id.clone());
        }
        let rows = q
            .fetch_all(&mut *conn)
            .await
            .op("finding days to compare")?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .op("finding days to compare")?
    };
    let mut out = Vec::new();
    for (bank_id, date) in due {
        if let Some(b) = partners.iter().find(|b| b.id == bank_id) {
            let day = compare(store, config, b, &date).await?;
            match write_return_file(b, &day) {
                Ok(Some(p)) => {
                    tracing::info!(bank = %b.id, file = %p.display(), "reconciliation file written")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(bank = %b.id, error = %e, "writing the reconciliation file failed")
                }
            }
            out.push(day);
        }
    }
    Ok(out)
}

/// The recorded result of a bank's day, `None` before its file was compared.
pub async fn day_result(
    store: &Store,
    bank_id: &str,
    date: &str,
) -> Result<Option<DayResult>, StoreError> {
    let mut conn = store.pool().acquire().await.op("connecting")?;
    let sql = dialect(
        &conn,
        "SELECT matched, net_minor, fee_minor, currency, settlement FROM eod_runs \
         WHERE bank_id = $1 AND business_date = $2",
    );
    let Some(r) = sqlx::query(&sql)
        .bind(bank_id.to_string())
        .bind(date.to_string())
        .fetch_optional(&mut *conn)
        .await
        .op("reading the day's comparison")?
    else {
        return Ok(None);
    };
    let (matched, net, fee, cur, settlement): (i64, i64, i64, String, String) = (
        r.try_get(0).op("reading")?,
        r.try_get(1).op("reading")?,
        r.try_get(2).op("reading")?,
        r.try_get(3).op("reading")?,
        r.try_get(4).op("reading")?,
    );
    let sql = dialect(
        &conn,
        "SELECT category, bank_txn_id, payment_id, file_payment_id, realtime_minor, file_minor, currency, detail \
         FROM eod_discrepancies WHERE bank_id = $1 AND business_date = $2 ORDER BY id",
    );
    let rows = sqlx::query(&sql)
        .bind(bank_id.to_string())
        .bind(date.to_string())
        .fetch_all(&mut *conn)
        .await
        .op("reading discrepancies")?;
    let discrepancies = rows
        .iter()
        .map(|r| {
            let c: String = r.try_get(6)?;
            Ok(Discrepancy {
                category: r.try_get(0)?,
                bank_txn_id: r.try_get(1)?,
                payment_id: r.try_get(2)?,
                file_payment_id: r.try_get(3)?,
                realtime_amount: r.try_get::<Option<i64>, _>(4)?.map(|v| money_text(v, &c)),
                file_amount: r.try_get::<Option<i64>, _>(5)?.map(|v| money_text(v, &c)),
                detail: r.try_get(7)?,
                currency: c,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .op("reading discrepancies")?;
    Ok(Some(DayResult {
        bank_id: bank_id.to_string(),
        business_date: date.to_string(),
        matched,
        discrepancies,
        net_collections: money_text(net, &cur),
        fees: money_text(fee, &cur),
        expected_transfer: money_text(net - fee, &cur),
        currency: cur,
        settlement,
    }))
}

/// A transfer line on the utility's own account statement.
struct Transfer {
    id: i64,
    amount: i64,
    booking_date: String,
    text: String,
}

/// The settlement check: for each compared day still `pending` (or `missing`), the partner
/// bank's lump-sum transfer on the utility's own statement (a `transfer` line whose payer name
/// or texts contain the bank's `settlement_match`, booked from the business day to
/// `settlement_days` days after it, not used for another day): equal to the expected transfer
/// (net collections minus fees) is `settled`, less `short`, more `over`; none by the last day
/// is `missing`. Returns the days whose status changed.
pub async fn settle_due(
    store: &Store,
    banks: &[Bank],
    today: chrono::NaiveDate,
) -> Result<Vec<(String, String, String)>, StoreError> {
    if !banks.iter().any(|b| b.own_account) {
        return Ok(vec![]);
    }
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let open: Vec<(String, String, i64, i64, String)> = {
        let rows = sqlx::query(
            "SELECT bank_id, business_date, net_minor, fee_minor, settlement FROM eod_runs \
             WHERE settlement IN ('pending', 'missing') ORDER BY business_date, bank_id",
        )
        .fetch_all(&mut *tx)
        .await
        .op("reading days to settle")?;
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
            .op("reading days to settle")?
    };
    if open.is_empty() {
        return Ok(vec![]);
    }
    let mut transfers: Vec<Transfer> = {
        let rows = sqlx::query(
            "SELECT p.id, p.amount_minor, COALESCE(p.booking_date, ''), \
             COALESCE(p.payer_name, '') || ' ' || COALESCE(p.reference, '') || ' ' || COALESCE(p.remittance, '') \
             || ' ' || COALESCE(p.additional_info, '') || ' ' || COALESCE(p.payer_account, '') \
             FROM payments p WHERE p.status = 'transfer' AND p.direction = 'credit' \
             AND NOT EXISTS (SELECT 1 FROM eod_runs r WHERE r.settlement_ref = CAST(p.id AS TEXT)) ORDER BY p.id",
        )
        .fetch_all(&mut *tx)
        .await
        .op("reading settlement transfers")?;
        rows.iter()
            .map(|r| {
                Ok(Transfer {
                    id: r.try_get(0)?,
                    amount: r.try_get(1)?,
                    booking_date: r.try_get(2)?,
                    text: r.try_get::<String, _>(3)?.to_lowercase(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .op("reading settlement transfers")?
    };
    let at = store::now();
    let mut changed = Vec::new();
    for (bank_id, date, net, fee, status) in open {
        let Some(partner) = banks
            .iter()
            .find(|b| b.id == bank_id)
            .and_then(|b| b.partner.as_ref())
        else {
            continue;
        };
        let Ok(day) = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d") else {
            continue;
        };
        let last = day + chrono::Duration::days(i64::from(partner.settlement_days));
        let needle = partner.settlement_match.to_lowercase();
        let expected = net - fee;
        let fits = |t: &Transfer| {
            !needle.is_empty()
                && t.text.contains(&needle)
                && t.booking_date.as_str() >= date.as_str()
                && t.booking_date.as_str() <= last.to_string().as_str()
        };
        // the exact amount first, else the first transfer of the window
        let pick = transfers
            .iter()
            .position(|t| fits(t) && t.amount == expected)
            .or_else(|| transfers.iter().position(fits));
        let (new_status, settled, reference) = match pick {
            Some(i) => {
                let t = transfers.remove(i);
                let s = match t.amount.cmp(&expected) {
                    std::cmp::Ordering::Equal => "settled",
                    std::cmp::Ordering::Less => "short",
                    std::cmp::Ordering::Greater => "over",
                };
                (s, Some(t.amount), Some(t.id.to_string()))
            }
            None if today > last => ("missing", None, None),
            None => continue,
        };
        if new_status == status {
            continue;
        }
        let sql = dialect(
            &tx,
            "UPDATE eod_runs SET settlement = $3, settled_minor = $4, settlement_ref = $5, settled_at = $6 \
             WHERE bank_id = $1 AND business_date = $2",
        );
        sqlx::query(&sql)
            .bind(bank_id.clone())
            .bind(date.clone())
            .bind(new_status.to_string())
            .bind(settled)
            .bind(reference)
            .bind(at.clone())
            .execute(&mut *tx)
            .await
            .op("recording a settlement")?;
        changed.push((bank_id, date, new_status.to_string()));
    }
    tx.commit().await.op("committing settlements")?;
    Ok(changed)
}

/// One real-time posting as the bank's day shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PostingView {
    pub bank_txn_id: String,
    pub amount: String,
    pub reversed: bool,
}

/// The utility's view of a bank's business day, for the bank.
#[derive(Debug, Clone, Serialize)]
pub struct BankDay {
    pub bank_id: String,
    pub business_date: String,
    pub currency: String,
    pub postings: i64,
    pub posted: String,
    pub reversals: i64,
    pub reversed: String,
    /// posted minus reversed
    pub net_posted: String,
    pub lines: Vec<PostingView>,
    /// after the bank's file was compared: matched, discrepancies, expected transfer,
    /// settlement status
    pub end_of_day: Option<DayResult>,
}

pub async fn bank_view(
    store: &Store,
    config: &Config,
    bank_id: &str,
    date: &str,
) -> Result<BankDay, StoreError> {
    let c = config.ledger.currency.as_str();
    let postings = {
        let mut conn = store.pool().acquire().await.op("connecting")?;
        store::realtime::postings_of_day(&mut conn, bank_id, date).await?
    };
    let posted: i64 = postings.iter().map(|p| p.amount_minor).sum();
    let reversed: i64 = postings
        .iter()
        .filter(|p| p.reversal_payment_id.is_some())
        .map(|p| p.amount_minor)
        .sum();
    Ok(BankDay {
        bank_id: bank_id.to_string(),
        business_date: date.to_string(),
        currency: c.to_string(),
        postings: postings.len() as i64,
        posted: money_text(posted, c),
        reversals: postings
            .iter()
            .filter(|p| p.reversal_payment_id.is_some())
            .count() as i64,
        reversed: money_text(reversed, c),
        net_posted: money_text(posted - reversed, c),
        lines: postings
            .iter()
            .map(|p| PostingView {
                bank_txn_id: p.bank_txn_id.clone(),
                amount: money_text(p.amount_minor, &p.currency),
                reversed: p.reversal_payment_id.is_some(),
            })
            .collect(),
        end_of_day: day_result(store, bank_id, date).await?,
    })
}

/// Writes the day's result in the bank's return-file layout, when its config describes one
/// (see [`crate::config::ReturnFile`]); the path written.
pub fn write_return_file(
    bank: &Bank,
    day: &DayResult,
) -> std::io::Result<Option<std::path::PathBuf>> {
    let Some(rf) = bank.partner.as_ref().and_then(|p| p.return_file.as_ref()) else {
        return Ok(None);
    };
    let sep = rf.delimiter.as_str();
    // a field never carries the separator or a line break
    let clean = |s: &str| s.replace(sep, " ").replace(['\n', '\r'], " ");
    let mut text = String::new();
    text.push_str(
        &[
            "H",
            &bank.id,
            &day.business_date,
            &day.matched.to_string(),
            &day.discrepancies.len().to_string(),
            &day.net_collections,
            &day.fees,
            &day.expected_transfer,
            &day.currency,
        ]
        .join(sep),
    );
    text.push_str("\r\n");
    for d in &day.discrepancies {
        let fields: Vec<String> = rf
            .columns
            .iter()
            .map(|c| match c.as_str() {
                "business_date" => day.business_date.clone(),
                "bank_txn_id" => clean(&d.bank_txn_id),
                "category" => d.category.clone(),
                "realtime_amount" => d.realtime_amount.clone().unwrap_or_default(),
                "file_amount" => d.file_amount.clone().unwrap_or_default(),
                "currency" => d.currency.clone(),
                "detail" => clean(&d.detail),
                _ => String::new(),
            })
            .collect();
        text.push_str(
            &["D".to_string()]
                .into_iter()
                .chain(fields)
                .collect::<Vec<_>>()
                .join(sep),
        );
        text.push_str("\r\n");
    }
    text.push_str(&["T", &day.discrepancies.len().to_string()].join(sep));
    text.push_str("\r\n");
    let bytes: Vec<u8> = match rf.encoding.as_str() {
        "gbk" => encoding_rs::GBK.encode(&text).0.into_owned(),
        "gb18030" => encoding_rs::GB18030.encode(&text).0.into_owned(),
        _ => text.into_bytes(),
    };
    std::fs::create_dir_all(&rf.dir)?;
    let name = format!(
        "{}_{}_recon.txt",
        bank.id,
        day.business_date.replace('-', "")
    );
    let path = rf.dir.join(&name);
    let tmp = rf.dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(Some(path))
}
