//! Partner banks online: what a bank asks in real time (a customer's open bills), the payments
//! it posts the moment a customer pays at its counter, app or ATM, and same-day reversals
//! (冲正). The HTTP edge is `api::partner`; this module holds the rules.
//!
//! - A posting is idempotent on (bank, bank_txn_id): the same request again gets the first
//!   answer; a different request under the same id is a conflict. The request's digest and the
//!   answer are stored with the payment, in the transaction that decides it.
//! - A posted payment is decided at once with the core's allocation rules
//!   ([`crate::matching::allocate_to`]): the named bill first, the account's other open bills
//!   oldest first, the rest as credit; an unknown account or bill, or another currency, goes to
//!   the exceptions queue like any file payment.
//! - The business day of a payment is the day of `paid_at` in `daemon.time_zone`, or the next
//!   day when it is at or after the bank's cut-off. A reversal is accepted only on the business
//!   day of the payment, before the cut-off; later, the bank's file and the workbench handle it.
//! - Real-time payments are rows of `payments` like any other (source `realtime`), carried by a
//!   per-bank, per-day pseudo-file, so verify, reports and the workbench see them unchanged.

pub mod eod;

use crate::config::{Bank, Config};
use crate::domain::{money_text, normalize_key, Currency, Money};
use crate::matching::{allocate_to, undo_payment, FeePolicy, Overflow, Rule, Target};
use crate::store::matching::{apply_bill_deltas, insert_late_fees, NewAllocation, PendingPayment};
use crate::store::realtime as q;
use crate::store::workbench::{self as wq, PaymentState};
use crate::store::{self, DbContext, Store, StoreError};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::Digest;

#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    /// The request is not acceptable (the message says which field and why).
    #[error("{0}")]
    Invalid(String),
    /// Not this bank's, or not there: the same answer either way.
    #[error("{0}")]
    NotFound(String),
    /// The same bank_txn_id with a different request, or a reversal too late.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, PartnerError>;

/// `POST /partner/v1/payments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub bank_txn_id: String,
    #[serde(default)]
    pub account_no: Option<String>,
    #[serde(default)]
    pub bill_id: Option<String>,
    /// A decimal string, e.g. "120.50".
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    /// RFC 3339 with an offset, e.g. "2026-11-25T10:15:00+08:00".
    pub paid_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub channel: Option<String>,
}

/// What a posting did, as the bank is told (and told again on a retry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentAnswer {
    pub bank_txn_id: String,
    pub payment_id: i64,
    pub business_date: String,
    /// applied | partially_applied | credit | exception
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub account_no: Option<String>,
    pub allocations: Vec<AllocationView>,
    /// held as the customer's credit
    pub credit: String,
    /// why it was not applied (then a person resolves it)
    pub exception: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationView {
    pub bill_id: String,
    pub amount: String,
    /// principal | late_fee
    #[serde(default = "principal")]
    pub part: String,
}

fn principal() -> String {
    "principal".into()
}

/// `POST /partner/v1/payments/{bank_txn_id}/reversal`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReversalAnswer {
    pub bank_txn_id: String,
    pub reversal_payment_id: i64,
    pub business_date: String,
    /// reversed (the allocation and credit undone) | cancelled (it was in the exceptions
    /// queue: both lines now carry nothing)
    pub status: String,
    pub amount: String,
    pub currency: String,
}

fn valid_txn_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// The business day of an instant for a bank with this cut-off.
pub fn business_date(config: &Config, cutoff: chrono::NaiveTime, at: DateTime<Utc>) -> NaiveDate {
    let local = at.with_timezone(&config.daemon.tz());
    if local.time() >= cutoff {
        local.date_naive() + chrono::Duration::days(1)
    } else {
        local.date_naive()
    }
}

fn partner_of(bank: &Bank) -> Result<&crate::config::PartnerConfig> {
    bank.partner
        .as_ref()
        .ok_or_else(|| PartnerError::NotFound(format!("bank {} is not a partner", bank.id)))
}

fn cutoff_of(bank: &Bank) -> Result<chrono::NaiveTime> {
    partner_of(bank)?
        .cutoff_time()
        .map_err(|e| PartnerError::Invalid(format!("bank {}: {e}", bank.id)))
}

/// A name as a bank may show it to the person at its counter: `张*明`, `J*** S***`.
pub fn mask_name(name: &str) -> String {
    let name = name.trim();
    if name.is_ascii() {
        return name
            .split_whitespace()
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => format!("{f}***"),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    let chars: Vec<char> = name.chars().filter(|c| !c.is_whitespace()).collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".into(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut s = String::new();
            s.push(chars[0]);
            s.extend(std::iter::repeat_n('*', n - 2));
            s.push(chars[n - 1]);
            s
        }
    }
}

/// `GET /partner/v1/accounts/{account_no}/bills`.
#[derive(Debug, Clone, Serialize)]
pub struct BillsAnswer {
    pub account_no: String,
    pub customer_name: String,
    pub currency: String,
    pub bills: Vec<OpenBillView>,
    /// outstanding + late fees: exactly what a payment today must bring to settle every bill
    /// (such a payment is `applied`, nothing left as credit)
    pub total_due: String,
    pub late_fees: String,
    /// the day late fees are counted to
    pub as_of: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenBillView {
    pub bill_id: String,
    pub period: String,
    pub due_on: String,
    pub amount: String,
    pub paid: String,
    /// the principal still owed
    pub outstanding: String,
    /// the late fee due today: what is owed of fees already charged, and what the outstanding
    /// principal accrued to today
    pub late_fee: String,
    /// of `late_fee`, charged earlier and not yet paid
    pub late_fee_owed: String,
}

/// A customer's bills that still owe something (principal, or a late fee after the principal
/// was paid), with late fees as of today, the name masked.
pub async fn open_bills(store: &Store, config: &Config, account_no: &str) -> Result<BillsAnswer> {
    let mut conn = store.pool().acquire().await.op("connecting")?;
    let (account, name, class) = q::customer(&mut conn, &normalize_key(account_no))
        .await?
        .ok_or_else(|| PartnerError::NotFound(format!("no account {account_no}")))?;
    let bills = store::bills::open_for_accounts(&mut conn, std::slice::from_ref(&account)).await?;
    let today = Utc::now().with_timezone(&config.daemon.tz()).date_naive();
    let rules = config.dunning.for_class(&class);
    let cur = config.ledger.currency;
    let mut views = Vec::new();
    let (mut owed, mut fees) = (0i64, 0i64);
    for b in bills {
        if b.currency != cur.as_str() {
            continue;
        }
        let outstanding = if b.status == "open" {
            (b.amount_minor - b.paid_minor).max(0)
        } else {
            0
        };
        let fee = match NaiveDate::parse_from_str(&b.due_on, "%Y-%m-%d") {
            Ok(due) => {
                crate::dunning::fees::fee_due(rules.late_fee, cur, outstanding, due, today, &b.fee)
            }
            Err(_) => Default::default(),
        };
        owed += outstanding;
        fees += fee.total();
        views.push(OpenBillView {
            bill_id: b.bill_id,
            period: b.period,
            due_on: b.due_on,
            amount: money_text(b.amount_minor, cur.as_str()),
            paid: money_text(b.paid_minor, cur.as_str()),
            outstanding: money_text(outstanding, cur.as_str()),
            late_fee: money_text(fee.total(), cur.as_str()),
            late_fee_owed: money_text(fee.owed, cur.as_str()),
        });
    }
    Ok(BillsAnswer {
        account_no: account,
        customer_name: mask_name(&name),
        currency: cur.as_str().to_string(),
        bills: views,
        total_due: money_text(owed + fees, cur.as_str()),
        late_fees: money_text(fees, cur.as_str()),
        as_of: today.to_string(),
    })
}

/// The outcome of a posting: its answer, and whether it is the first one (false: a retry).
#[derive(Debug, Clone)]
pub struct Posted {
    pub answer: PaymentAnswer,
    pub first: bool,
}

/// Posts a payment for `bank` (see the module docs).
pub async fn post_payment(
    store: &Store,
    config: &Config,
    bank: &Bank,
    req: &PaymentRequest,
) -> Result<Posted> {
    let cutoff = cutoff_of(bank)?;
    if !valid_txn_id(&req.bank_txn_id) {
        return Err(PartnerError::Invalid(
            "bank_txn_id: 1 to 64 letters, digits, `-`, `_`, `.` or `/`".into(),
        ));
    }
    let (target_text, is_bill) = match (&req.account_no, &req.bill_id) {
        (Some(a), None) => (a.clone(), false),
        (None, Some(b)) => (b.clone(), true),
        _ => {
            return Err(PartnerError::Invalid(
                "give exactly one of account_no and bill_id".into(),
            ))
        }
    };
    let currency = Currency::parse(&req.currency)
        .map_err(|e| PartnerError::Invalid(format!("currency: {e}")))?;
    let amount = Money::from_decimal(req.amount, currency)
        .map_err(|e| PartnerError::Invalid(format!("amount: {e}")))?;
    if !amount.is_positive() {
        return Err(PartnerError::Invalid("amount must be above zero".into()));
    }
    let digest = hex::encode(sha2::Sha256::digest(
        serde_json::to_vec(req).unwrap_or_default(),
    ));
    let day = business_date(config, cutoff, req.paid_at.with_timezone(&Utc)).to_string();
    // the day the customer paid, in the utility's time zone: late fees are counted to it, as
    // `open_bills` counts them to today there
    let paid_on = req
        .paid_at
        .with_timezone(&config.daemon.tz())
        .date_naive()
        .to_string();
    let at = store::now();

    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    if let Some(p) = q::find_posting(&mut tx, &bank.id, &req.bank_txn_id).await? {
        if p.request_sha256 != digest {
            return Err(PartnerError::Conflict(format!(
                "bank_txn_id {} was already posted with a different request",
                req.bank_txn_id
            )));
        }
        let answer = serde_json::from_str(&p.response).map_err(|e| {
            StoreError::Inconsistent(format!("stored answer of {}: {e}", p.bank_txn_id))
        })?;
        return Ok(Posted {
            answer,
            first: false,
        });
    }
    let (file_id, statement_row) = q::realtime_file(&mut tx, &bank.id, &day).await?;
    let payment_id = q::insert_realtime_payment(
        &mut tx,
        &q::NewRealtime {
            file_id,
            statement_row,
            bank_id: &bank.id,
            bank_txn_id: &req.bank_txn_id,
            amount_minor: amount.minor(),
            currency: currency.as_str(),
            reversal: false,
            business_date: &day,
            value_date: &paid_on,
            reference: Some(&target_text),
            channel: req.channel.as_deref(),
        },
    )
    .await?;
    let pending = PendingPayment {
        id: payment_id,
        bank_id: bank.id.clone(),
        amount_minor: amount.minor(),
        currency: currency.as_str().to_string(),
        direction: "credit".into(),
        reversal: false,
        txn_key: None,
        bank_ref: Some(req.bank_txn_id.clone()),
        entry_ref: None,
        end_to_end_id: Some(req.bank_txn_id.clone()),
        tx_id: None,
        reference: Some(target_text.clone()),
        remittance: None,
        additional_info: None,
        booking_date: Some(day.clone()),
        value_date: Some(paid_on.clone()),
    };
    let target = if is_bill {
        Target::Bill(&target_text)
    } else {
        Target::Account(&target_text)
    };
    let decided = if currency != config.ledger.currency {
        Err((
            "currency_mismatch",
            format!(
                "payment in {currency}, bills are in {}",
                config.ledger.currency
            ),
        ))
    } else {
        match allocate_to(&mut tx, &FeePolicy::from_config(config), &pending, target).await? {
            Ok(a) => Ok(a),
            Err(why) => Err(("unknown_reference", why)),
        }
    };
    let (state, allocations) = match decided {
        Ok(a) => {
            let applied: i64 = a.allocations.iter().map(|x| x.amount_minor).sum();
            wq::insert_allocations(&mut tx, &a.allocations, &at).await?;
            insert_late_fees(&mut tx, &a.fees, &at).await?;
            if a.credit_minor != 0 {
                wq::insert_credit(
                    &mut tx,
                    &a.account_no,
                    payment_id,
                    a.credit_minor,
                    currency.as_str(),
                    "overpayment",
                    &at,
                )
                .await?;
            }
            apply_bill_deltas(&mut tx, &a.bill_deltas, &at).await?;
            (
                PaymentState {
                    status: a.status.into(),
                    account_no: Some(a.account_no.clone()),
                    applied_minor: applied,
                    credit_minor: a.credit_minor,
                    refunded_minor: 0,
                    held_minor: 0,
                    written_off_minor: 0,
                },
                a.allocations,
            )
        }
        Err((reason, detail)) => {
            q::insert_exception(
                &mut tx,
                payment_id,
                reason,
                &detail,
                amount.minor(),
                currency.as_str(),
                &at,
            )
            .await?;
            (
                PaymentState {
                    status: "exception".into(),
                    account_no: None,
                    applied_minor: 0,
                    credit_minor: 0,
                    refunded_minor: 0,
                    held_minor: amount.minor(),
                    written_off_minor: 0,
                },
                vec![],
            )
        }
    };
    wq::set_payment_state(&mut tx, payment_id, &state).await?;
    let cur = currency.as_str();
    let answer = PaymentAnswer {
        bank_txn_id: req.bank_txn_id.clone(),
        payment_id,
        business_date: day.clone(),
        status: state.status.clone(),
        amount: money_text(amount.minor(), cur),
        currency: cur.to_string(),
        account_no: state.account_no.clone(),
        allocations: allocations
            .iter()
            .map(|a: &NewAllocation| AllocationView {
                bill_id: a.bill_id.clone(),
                amount: money_text(a.amount_minor, cur),
                part: a.part.to_string(),
            })
            .collect(),
        credit: money_text(state.credit_minor, cur),
        exception: (state.status == "exception").then(|| "held for review".to_string()),
    };
    let response = serde_json::to_string(&answer).unwrap_or_default();
    q::insert_posting(
        &mut tx,
        &q::NewPosting {
            bank_id: &bank.id,
            bank_txn_id: &req.bank_txn_id,
            request_sha256: &digest,
            payment_id,
            business_date: &day,
            amount_minor: amount.minor(),
            currency: cur,
            channel: req.channel.as_deref(),
            response: &response,
            at: &at,
        },
    )
    .await?;
    tx.commit().await.op("committing a real-time payment")?;
    Ok(Posted {
        answer,
        first: true,
    })
}

/// Reverses a posting the same business day, before the cut-off (idempotent).
pub async fn reverse(
    store: &Store,
    config: &Config,
    bank: &Bank,
    bank_txn_id: &str,
    now: DateTime<Utc>,
) -> Result<(ReversalAnswer, bool)> {
    let cutoff = cutoff_of(bank)?;
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let p = q::find_posting(&mut tx, &bank.id, bank_txn_id)
        .await?
        .ok_or_else(|| PartnerError::NotFound(format!("no payment {bank_txn_id}")))?;
    if let Some(r) = &p.reversal_response {
        let answer = serde_json::from_str(r).map_err(|e| {
            StoreError::Inconsistent(format!("stored reversal of {bank_txn_id}: {e}"))
        })?;
        return Ok((answer, false));
    }
    let today = business_date(config, cutoff, now).to_string();
    if today != p.business_date {
        return Err(PartnerError::Conflict(format!(
            "payment {bank_txn_id} belongs to business day {}; a reversal is accepted only that day before the cut-off {} (it is now business day {today})",
            p.business_date,
            partner_of(bank)?.cutoff
        )));
    }
    let orig = wq::payment(&mut tx, p.payment_id).await?.ok_or_else(|| {
        StoreError::Inconsistent(format!("posting {bank_txn_id} lost its payment"))
    })?;
    let at = store::now();
    let (file_id, statement_row) = q::realtime_file(&mut tx, &bank.id, &p.business_date).await?;
    let rev_id = q::insert_realtime_payment(
        &mut tx,
        &q::NewRealtime {
            file_id,
            statement_row,
            bank_id: &bank.id,
            bank_txn_id,
            amount_minor: -p.amount_minor,
            currency: &p.currency,
            reversal: true,
            business_date: &p.business_date,
            value_date: &now
                .with_timezone(&config.daemon.tz())
                .date_naive()
                .to_string(),
            reference: Some(bank_txn_id),
            channel: None,
        },
    )
    .await?;
    let status = if orig.state.status == "exception" {
        // nothing was applied: the pair cancels out, the exception closes
        q::cancel_pair(&mut tx, orig.id, rev_id, &at).await?;
        "cancelled"
    } else {
        let undo = undo_payment(
            &mut tx,
            orig.id,
            rev_id,
            Rule::Reversal,
            "reversal",
            Overflow::ToCredit,
        )
        .await?
        .map_err(StoreError::Inconsistent)?;
        wq::insert_allocations(&mut tx, &undo.allocations, &at).await?;
        insert_late_fees(&mut tx, &undo.fees, &at).await?;
        apply_bill_deltas(&mut tx, &undo.bill_deltas, &at).await?;
        for (account, pid, amount, cur, kind) in &undo.credits {
            wq::insert_credit(&mut tx, account, *pid, *amount, cur, kind, &at).await?;
        }
        store::matching::shift_payments(&mut tx, &undo.shifts).await?;
        if orig.state.credit_minor != 0 {
            if let Some(account) = &orig.state.account_no {
                wq::insert_credit(
                    &mut tx,
                    account,
                    rev_id,
                    -orig.state.credit_minor,
                    &p.currency,
                    "reversal",
                    &at,
                )
                .await?;
            }
        }
        wq::set_payment_state(
            &mut tx,
            rev_id,
            &PaymentState {
                status: "reversed".into(),
                account_no: orig.state.account_no.clone(),
                applied_minor: -orig.state.applied_minor,
                credit_minor: -orig.state.credit_minor,
                refunded_minor: 0,
                held_minor: 0,
                written_off_minor: 0,
            },
        )
        .await?;
        q::mark_reversed(&mut tx, orig.id, rev_id).await?;
        "reversed"
    };
    let answer = ReversalAnswer {
        bank_txn_id: bank_txn_id.to_string(),
        reversal_payment_id: rev_id,
        business_date: p.business_date.clone(),
        status: status.into(),
        amount: money_text(p.amount_minor, &p.currency),
        currency: p.currency.clone(),
    };
    q::set_reversal(
        &mut tx,
        p.id,
        rev_id,
        &serde_json::to_string(&answer).unwrap_or_default(),
        &at,
    )
    .await?;
    tx.commit().await.op("committing a reversal")?;
    Ok((answer, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_masked_the_way_counters_show_them() {
        assert_eq!(mask_name("张三明"), "张*明");
        assert_eq!(mask_name("李娜"), "李*");
        assert_eq!(mask_name("北方钢铁有限公司"), "北******司");
        assert_eq!(mask_name("John Smith"), "J*** S***");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn a_payment_after_the_cutoff_belongs_to_the_next_business_day() {
        let cfg = Config::from_toml("[daemon]\ntime_zone = \"Asia/Shanghai\"\n", "t").unwrap();
        let cutoff = chrono::NaiveTime::from_hms_opt(17, 0, 0).unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            business_date(&cfg, cutoff, at("2026-11-25T16:59:59+08:00")).to_string(),
            "2026-11-25"
        );
        assert_eq!(
            business_date(&cfg, cutoff, at("2026-11-25T17:00:00+08:00")).to_string(),
            "2026-11-26"
        );
        // 23:30 UTC on the 24th is 07:30 on the 25th in Shanghai
        assert_eq!(
            business_date(&cfg, cutoff, at("2026-11-24T23:30:00Z")).to_string(),
            "2026-11-25"
        );
    }

    #[test]
    fn transaction_ids_are_short_plain_text() {
        assert!(valid_txn_id("ICBC-20261125-000123"));
        assert!(!valid_txn_id(""));
        assert!(!valid_txn_id("a b"));
        assert!(!valid_txn_id(&"x".repeat(65)));
    }
}
