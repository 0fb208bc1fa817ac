//! The daily settlement: per bank and for all banks, the payments booked on a day (its clock
//! is the booking day), and what became of them as recorded when the report is made. The
//! money received adds up: received = applied + credit + held in exceptions + refunded +
//! written off, per bank and currency. Apart from it: lines rejected as duplicates, reversals
//! and debits booked that day; what the banks' statements declare as credits beside what was
//! read from them, and the difference; the money by channel; and for partner banks the
//! real-time versus file result (their business day), the transfer expected and its
//! settlement status; and the failed checks of the bank files that carry the day's lines
//! (`findings`: a file ingested under a bank's `checks = "warn"` policy whose balances did not
//! close, or with a warning, is counted here, so the signed page says which figures came from
//! files that contradict themselves); and late fees: charged and collected by the day's
//! payments, waived that day and outstanding at its end (the last two for all banks).
//! The page a finance officer signs.

use crate::domain::money_text;
use crate::store::{self, DbContext, Store, StoreError};
use chrono::NaiveDate;

pub const COLUMNS: &[&str] = &[
    "date",
    "bank_id",
    "currency",
    "received_count",
    "received",
    "applied",
    "credit",
    "held_in_exceptions",
    "refunded",
    "written_off",
    "rejected_duplicates",
    "reversal_count",
    "reversed",
    "debit_count",
    "debits",
    "files",
    "declared_credits",
    "read_credits",
    "difference",
    "channels",
    "realtime_vs_file",
    "expected_transfer",
    "settlement",
    "findings",
    "late_fees_charged",
    "late_fees_collected",
    "late_fees_waived",
    "late_fees_outstanding",
];

/// The report's rows: one per bank and currency, then one `ALL` row per currency.
pub async fn daily_settlement(
    store: &Store,
    date: NaiveDate,
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    let day = date.format("%Y-%m-%d").to_string();
    let mut conn = store.pool().acquire().await.op("connecting")?;
    let rows = store::reports::settlement(&mut conn, &day).await?;
    let channels = store::reports::settlement_channels(&mut conn, &day).await?;
    let eod = store::reports::settlement_eod(&mut conn, &day).await?;
    let findings = store::files::findings_for_day(&mut conn, &day).await?;
    // late fees: charged and collected by the day's payments of each bank; waived on the day
    // and outstanding at its end, for all banks only (they belong to no bank)
    let fees = store::reports::late_fee_events(&mut conn, &day, &day).await?;
    let outstanding = store::reports::late_fees_outstanding(&mut conn, &day).await?;
    let fee_of = |what: &str, bank: &str, cur: &str| -> i64 {
        fees.iter()
            .filter(|e| {
                e.what == what
                    && e.currency == cur
                    && (bank == "ALL" || e.bank_id.as_deref() == Some(bank))
            })
            .map(|e| e.amount_minor)
            .sum()
    };
    // "2 (balance 1 error, batch_count 1 warning)" per bank and currency (and for all banks)
    let findings_text = |bank: &str, cur: &str| -> Option<String> {
        let mut per: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
        for (b, c, check, severity, n) in &findings {
            if (bank == "ALL" || b == bank) && c == cur {
                *per.entry((check.as_str(), severity.as_str())).or_default() += n;
            }
        }
        let total: i64 = per.values().sum();
        Some(if total == 0 {
            "0".to_string()
        } else {
            let parts: Vec<String> = per
                .iter()
                .map(|((check, severity), n)| format!("{check} {n} {severity}"))
                .collect();
            format!("{total} ({})", parts.join(", "))
        })
    };
    // "counter 12 × 1234.00; app 3 × 50.00" per bank and currency (and for all banks)
    let channel_text = |bank: &str, cur: &str| -> Option<String> {
        let mut per: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
        for (b, c, ch, n, sum) in &channels {
            if (bank == "ALL" || b == bank) && c == cur {
                let e = per.entry(ch.as_str()).or_default();
                e.0 += n;
                e.1 += sum;
            }
        }
        (!per.is_empty()).then(|| {
            per.iter()
                .map(|(ch, (n, sum))| format!("{ch} {n} × {}", money_text(*sum, cur)))
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    let eod_of = |bank: &str, cur: &str| {
        eod.iter().find(|e| e.0 == bank && e.1 == cur).map(
            |(_, _, matched, disc, net, fee, settlement)| {
                (
                    format!("{matched} matched, {disc} differences"),
                    money_text(net - fee, cur),
                    settlement.clone(),
                )
            },
        )
    };
    let mut totals: Vec<store::reports::SettlementSums> = Vec::new();
    for r in &rows {
        let t = match totals.iter_mut().find(|t| t.currency == r.currency) {
            Some(t) => t,
            None => {
                totals.push(store::reports::SettlementSums {
                    bank_id: "ALL".into(),
                    currency: r.currency.clone(),
                    declared_credit_minor: Some(0),
                    read_credit_minor: Some(0),
                    ..Default::default()
                });
                totals.last_mut().expect("just pushed")
            }
        };
        t.received_count += r.received_count;
        t.received_minor += r.received_minor;
        t.applied_minor += r.applied_minor;
        t.credit_minor += r.credit_minor;
        t.held_minor += r.held_minor;
        t.refunded_minor += r.refunded_minor;
        t.written_off_minor += r.written_off_minor;
        t.rejected_minor += r.rejected_minor;
        t.reversal_count += r.reversal_count;
        t.reversal_minor += r.reversal_minor;
        t.debit_count += r.debit_count;
        t.debit_minor += r.debit_minor;
        t.files += r.files;
        t.declared_credit_minor = match (t.declared_credit_minor, r.declared_credit_minor) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        t.read_credit_minor = match (t.read_credit_minor, r.read_credit_minor) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    Ok(rows
        .iter()
        .chain(totals.iter())
        .map(|r| {
            let m = |v: i64| Some(money_text(v, &r.currency));
            vec![
                Some(day.clone()),
                Some(r.bank_id.clone()),
                Some(r.currency.clone()),
                Some(r.received_count.to_string()),
                m(r.received_minor),
                m(r.applied_minor),
                m(r.credit_minor),
                m(r.held_minor),
                m(r.refunded_minor),
                m(r.written_off_minor),
                m(r.rejected_minor),
                Some(r.reversal_count.to_string()),
                m(r.reversal_minor),
                Some(r.debit_count.to_string()),
                m(r.debit_minor),
                Some(r.files.to_string()),
                r.declared_credit_minor.and_then(m),
                r.read_credit_minor.and_then(m),
                match (r.declared_credit_minor, r.read_credit_minor) {
                    (Some(d), Some(read)) => m(read - d),
                    _ => None,
                },
                channel_text(&r.bank_id, &r.currency),
                eod_of(&r.bank_id, &r.currency).map(|e| e.0),
                eod_of(&r.bank_id, &r.currency).map(|e| e.1),
                eod_of(&r.bank_id, &r.currency).map(|e| e.2),
                findings_text(&r.bank_id, &r.currency),
                m(fee_of("charged", &r.bank_id, &r.currency)),
                m(fee_of("collected", &r.bank_id, &r.currency)),
                (r.bank_id == "ALL")
                    .then(|| money_text(fee_of("waived", "ALL", &r.currency), &r.currency)),
                (r.bank_id == "ALL").then(|| {
                    money_text(
                        outstanding
                            .iter()
                            .filter(|o| o.2 == r.currency)
                            .map(|o| o.3)
                            .sum(),
                        &r.currency,
                    )
                }),
            ]
        })
        .collect())
}

pub const LINE_COLUMNS: &[&str] = &[
    "date",
    "bank_id",
    "bank_ref",
    "amount",
    "currency",
    "status",
    "exception_reason",
    "detail",
];

/// The differences behind the settlement, line by line: the day's lines held in the
/// exceptions queue or reversed, with the reason.
pub async fn lines(store: &Store, date: NaiveDate) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    let day = date.format("%Y-%m-%d").to_string();
    let mut conn = store.pool().acquire().await.op("connecting")?;
    Ok(store::reports::settlement_lines(&mut conn, &day)
        .await?
        .into_iter()
        .map(|r| {
            let ccy = r.get(3).cloned().flatten().unwrap_or_default();
            let amount: i64 = r
                .get(2)
                .cloned()
                .flatten()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            vec![
                Some(day.clone()),
                r.first().cloned().flatten(),
                r.get(1).cloned().flatten(),
                Some(money_text(amount, &ccy)),
                Some(ccy),
                r.get(4).cloned().flatten(),
                r.get(5).cloned().flatten(),
                r.get(6).cloned().flatten(),
            ]
        })
        .collect())
}
