//! Dunning: who is reminded of what, when, by the published rules, and never someone who has
//! paid.
//!
//! [`plan`] looks at every open bill past its due date on a given day and decides, per bill,
//! one action: `notice` (the stage's reminder to the customer), `manager_task` (key accounts:
//! their customer manager is told instead), `wait` (not yet, or not safe yet: within grace,
//! not a business day, a payment that may be this customer's is not settled, a bank's file
//! for the previous business day is missing) or `none` (nothing is due: before the first stage,
//! under the stage's minimum). Each decision carries its reason. The plan has no side effects.
//!
//! A bill whose principal is paid but whose late fee is still owed is in the plan too, at the
//! policy's `late_fee_stage` (or with action `none` when there is none).
//!
//! Never remind someone who has paid: a bill with nothing owed is not in the plan; a
//! payment still pending or held in an open exception whose references name the customer's
//! account or one of its bills makes the customer wait; and a bank that has not delivered
//! the previous business day's file makes everybody wait, because the payment may be in it.

pub mod calendar;
pub mod fees;
pub mod notices;
/// The `[dunning]` configuration lives in `config` (read before anything runs); its name here
/// is kept for the engines that apply it.
pub use crate::config::dunning as policy;

use crate::config::Config;
use crate::domain::{money_text, normalize_key};
use crate::matching::references::{candidates, PaymentTexts};
use crate::store::{self, DbContext, Store, StoreError};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

pub use calendar::Calendar;

/// What the plan does about one overdue bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Notice,
    ManagerTask,
    Wait,
    None,
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Notice => "notice",
            Action::ManagerTask => "manager_task",
            Action::Wait => "wait",
            Action::None => "none",
        }
    }
}

/// A wait that protects a customer who may have paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// A payment not yet applied names the customer's account or one of its bills.
    UnsettledPayment,
    /// A bank's file for the previous business day is missing.
    LateBank,
}

/// One overdue bill in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    pub bill_id: String,
    pub account_no: String,
    pub customer: String,
    /// The customer's language, when set (else the configured one).
    pub language: Option<String>,
    pub class: String,
    pub manager: Option<String>,
    pub due_on: String,
    pub days_overdue: i64,
    /// Still owed on the bill (decimal text).
    pub outstanding: String,
    pub currency: String,
    /// The late fee due on the plan's date (decimal text): charged and still owed, plus what
    /// the outstanding principal accrued.
    pub late_fee: String,
    /// Only the late fee is owed: the principal was paid (the `late_fee_stage`, or nothing).
    pub fee_only: bool,
    /// The stage reached, if any.
    pub stage: Option<String>,
    pub channels: Vec<String>,
    pub action: Action,
    pub reason: String,
    /// Why a `wait` may not be ignored even once a notice is queued: the delivery worker and
    /// field operations check it again right before acting.
    pub hold: Option<Hold>,
}

/// Decides what to do about every overdue bill on `date`.
pub async fn plan(
    config: &Config,
    store: &Store,
    date: NaiveDate,
) -> Result<Vec<PlanItem>, StoreError> {
    let d = &config.dunning;
    let calendar = Calendar::new(d.holidays.iter().copied(), d.workdays.iter().copied());
    let mut conn = store.pool().acquire().await.op("connecting")?;
    let day = date.format("%Y-%m-%d").to_string();
    let bills = store::dunning::overdue_bills(&mut conn, &day).await?;
    if bills.is_empty() {
        return Ok(vec![]);
    }

    // Banks whose previous-business-day file is not in yet.
    let previous = calendar.previous_business_day(date);
    let coverage: HashMap<String, String> = store::dunning::bank_coverage(&mut conn)
        .await?
        .into_iter()
        .collect();
    let expected: Vec<String> = match &d.wait_for_banks {
        Some(list) => list.clone(),
        None => config
            .banks
            .iter()
            .filter(|b| b.source.is_some())
            .map(|b| b.id.clone())
            .collect(),
    };
    let prev_text = previous.format("%Y-%m-%d").to_string();
    let late_banks: Vec<String> = expected
        .into_iter()
        .filter(|b| {
            coverage
                .get(b)
                .is_none_or(|reached| reached.as_str() < prev_text.as_str())
        })
        .collect();

    // Payments not settled yet, by the keys their references carry.
    let patterns: HashMap<String, Vec<regex::Regex>> = config
        .banks()
        .into_iter()
        .map(|b| (b.id, b.reference_patterns))
        .collect();
    let mut unsettled_by_key: HashMap<String, Vec<i64>> = HashMap::new();
    for p in store::dunning::unsettled_payments(&mut conn).await? {
        let texts = PaymentTexts {
            reference: p.reference.as_deref(),
            end_to_end_id: p.end_to_end_id.as_deref(),
            remittance: p.remittance.as_deref(),
            additional_info: p.additional_info.as_deref(),
        };
        let pats = patterns.get(&p.bank_id).map(Vec::as_slice).unwrap_or(&[]);
        for c in candidates(&texts, pats) {
            unsettled_by_key.entry(c.key).or_default().push(p.id);
        }
    }

    let waived: HashMap<String, (String, String)> = store::dunning::waivers(&mut conn)
        .await?
        .into_iter()
        .map(|(b, by, why)| (b, (by, why)))
        .collect();
    let acks: HashMap<(String, String), String> = store::dunning::acks(&mut conn)
        .await?
        .into_iter()
        .map(|(a, s, by)| ((a, s), by))
        .collect();
    let top: HashSet<String> = if d.key_accounts_top_n > 0 {
        store::dunning::top_billed_accounts(&mut conn, d.key_accounts_top_n)
            .await?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };

    // Per account: what is overdue in all, and which unsettled payments may be its.
    let mut by_account: BTreeMap<&str, Vec<&store::dunning::OverdueBill>> = BTreeMap::new();
    for b in &bills {
        by_account.entry(b.account_no.as_str()).or_default().push(b);
    }

    let business_day = calendar.is_business_day(date);
    let mut out = Vec::with_capacity(bills.len());
    for (account, acct_bills) in by_account {
        let mut suspects: HashSet<i64> = HashSet::new();
        for key in std::iter::once(normalize_key(account))
            .chain(acct_bills.iter().map(|b| normalize_key(&b.bill_id)))
        {
            if let Some(ids) = unsettled_by_key.get(&key) {
                suspects.extend(ids);
            }
        }
        let mut suspects: Vec<i64> = suspects.into_iter().collect();
        suspects.sort_unstable();
        let owed: i64 = acct_bills
            .iter()
            .filter(|b| b.status == "open")
            .map(|b| b.amount_minor - b.paid_minor)
            .sum();
        for b in acct_bills {
            let rules = d.for_class(&b.class);
            let due = NaiveDate::parse_from_str(&b.due_on, "%Y-%m-%d").unwrap_or(date);
            let days = (date - due).num_days();
            let fee_only = b.status != "open";
            let outstanding = if fee_only {
                0
            } else {
                b.amount_minor - b.paid_minor
            };
            let currency =
                crate::domain::Currency::parse(&b.currency).unwrap_or(config.ledger.currency);
            let fee = fees::fee_due(rules.late_fee, currency, outstanding, due, date, &b.fee);
            let key_account = b.key_account || top.contains(&b.account_no);
            // within grace no stage is reached yet, whatever the stages say; a bill owing only
            // its late fee reaches the late-fee stage, if the policy has one
            let stage = if days <= rules.grace_days {
                None
            } else if fee_only {
                d.late_fee_stage
                    .as_ref()
                    .filter(|s| days >= s.days_after_due)
            } else {
                rules.stage_for(days)
            };
            // a bill owing only its fee is weighed by the fee, the others by what the account owes
            let owed_major = if fee_only {
                rust_decimal::Decimal::new(fee.owed, currency.exponent())
            } else {
                rust_decimal::Decimal::new(owed, currency.exponent())
            };
            let mut hold = None;
            let (action, reason) = if fee_only && d.late_fee_stage.is_none() {
                (
                    Action::None,
                    format!(
                        "only its late fee of {} is owed (the policy has no late-fee stage)",
                        money_text(fee.owed, &b.currency)
                    ),
                )
            } else if fee_only && stage.is_none() {
                (
                    Action::None,
                    format!(
                        "only its late fee of {} is owed, before the late-fee stage",
                        money_text(fee.owed, &b.currency)
                    ),
                )
            } else if days <= rules.grace_days {
                (
                    Action::Wait,
                    format!("within the {} grace days", rules.grace_days),
                )
            } else if stage.is_none() {
                (Action::None, "before the first stage".to_string())
            } else if !suspects.is_empty() {
                hold = Some(Hold::UnsettledPayment);
                (
                    Action::Wait,
                    format!(
                        "payment(s) {} not yet applied may be this customer's",
                        suspects
                            .iter()
                            .map(|i| i.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            } else if !late_banks.is_empty() {
                hold = Some(Hold::LateBank);
                (
                    Action::Wait,
                    format!(
                        "waiting for the file of {} for {previous} (the customer may have paid there)",
                        late_banks.join(", ")
                    ),
                )
            } else if !business_day {
                (Action::Wait, format!("{date} is not a business day"))
            } else if stage.is_some_and(|s| owed_major < s.min_amount) {
                (
                    Action::None,
                    format!(
                        "owes {} in all, under the stage minimum {}",
                        money_text(if fee_only { fee.owed } else { owed }, &b.currency),
                        stage.map(|s| s.min_amount).unwrap_or_default()
                    ),
                )
            } else if let (true, Some(by)) = (
                key_account,
                stage
                    .filter(|s| s.disconnection_notice_days.is_some())
                    .and_then(|s| acks.get(&(b.account_no.clone(), s.name.clone()))),
            ) {
                (
                    Action::Notice,
                    format!("key account: the last stage, acknowledged by its manager {by}"),
                )
            } else if key_account {
                (
                    Action::ManagerTask,
                    format!(
                        "key account: a task for its customer manager {}{}",
                        b.manager.as_deref().unwrap_or("(none set)"),
                        if stage.is_some_and(|s| s.disconnection_notice_days.is_some()) {
                            " (the last stage needs the manager's acknowledgement: `billrecon dunning ack`)"
                        } else {
                            ""
                        }
                    ),
                )
            } else if fee_only {
                (
                    Action::Notice,
                    format!(
                        "the principal is paid, its late fee of {} is owed: stage {}",
                        money_text(fee.owed, &b.currency),
                        stage.map(|s| s.name.as_str()).unwrap_or("")
                    ),
                )
            } else {
                (
                    Action::Notice,
                    format!(
                        "{} days overdue: stage {}",
                        days,
                        stage.map(|s| s.name.as_str()).unwrap_or("")
                    ),
                )
            };
            let reason = match waived.get(&b.bill_id) {
                Some((by, why)) => format!("{reason}; late fee waived by {by}: {why}"),
                None => reason,
            };
            out.push(PlanItem {
                bill_id: b.bill_id.clone(),
                account_no: b.account_no.clone(),
                customer: b.name.clone(),
                language: b.language.clone(),
                class: b.class.clone(),
                manager: b.manager.clone(),
                due_on: b.due_on.clone(),
                days_overdue: days,
                outstanding: money_text(outstanding, &b.currency),
                currency: b.currency.clone(),
                late_fee: money_text(fee.total(), &b.currency),
                fee_only,
                stage: stage.map(|s| s.name.clone()),
                channels: match action {
                    Action::ManagerTask => vec!["manager".into()],
                    Action::Notice => stage.map(|s| s.channels.clone()).unwrap_or_default(),
                    _ => vec![],
                },
                action,
                reason,
                hold,
            });
        }
    }
    Ok(out)
}
