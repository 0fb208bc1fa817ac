//! Ranked suggestions for a payment in the exceptions queue: which bills (or accounts) it
//! most likely pays, and why, so finance staff resolve most exceptions with one click.
//!
//! # Where candidates come from
//! - **References**: every token of the payment ([`crate::matching::references::candidates`]
//!   with the bank's patterns; an `RF` token with wrong check digits also gives its body) is
//!   compared with the normalized keys of OPEN bills and of all accounts whose key length is
//!   within the token's edit budget (SQL `LENGTH(key) BETWEEN`). The comparison is the
//!   optimal-string-alignment distance (Levenshtein, an adjacent transposition counting as
//!   one edit), bounded: tokens of 10+ characters may be 2 edits away, of 6 to 9 one edit,
//!   shorter ones (and tokens without a digit) only exact.
//! - **Payer history**: accounts that earlier payments from the same `payer_account` were
//!   applied to.
//! - **Amount**: open bills whose open balance (amount - paid) equals the payment's amount
//!   (at most [`AMOUNT_BILLS`]).
//! - **Name**: accounts whose holder's name is the payer's name (trimmed, ASCII case-folded;
//!   an exact SQL lookup). The fuzzy name comparison is made only for accounts found by one of
//!   the ways above, never over all customers.
//!
//! Of every candidate account (at most [`MAX_ACCOUNTS`]) the open bills are read; each bill
//! that a reference, a repaired check digit or its balance points at becomes a candidate, and
//! the account as a whole becomes one when nothing points at one of its bills or when the
//! amount equals the account's open balance and it has more than one open bill.
//!
//! # Cost
//! Per payment: a handful of queries (the payment, its payer history, bills by balance,
//! customers by name: each a scan of its table without a dedicated index, see
//! `store::suggest`), plus the key comparison. Keys are read once per length range and kept
//! by a [`Suggester`] for all the payments it serves (a refresh of the whole queue reads
//! them once). Comparing is O(tokens x keys of similar length x L²) with L the key length
//! (about 11): bill ids of a fixed width mean "similar length" is nearly every open bill, so
//! with a million open bills a payment costs some tens of millions of cell updates (well
//! under a second) and the key set some tens of MB of memory. An n-gram or deletion index
//! would be the next step if that ever matters.
//!
//! # Score (0 to 100, deterministic)
//! The sum of the reasons' points, at most 100:
//! - a reference: the best one only: exact (0 edits) 50, check digit repaired 45, 1 edit 35,
//!   2 edits 20;
//! - same payer paid this account before: 45;
//! - amount equals the bill's open balance: 30; equals the account's open balance: 25
//!   (never both: a bill candidate carries the first, an account candidate the second);
//! - name resembles: 50 x (similarity - 0.5), so 5 at [`NAME_MIN`] (0.6) up to 25 for the
//!   same name; plus 10 when the amount equals the balance too and the similarity is at
//!   least 0.8.
//!
//! Ties are broken by due date (of the bill; of the account's oldest open bill), then bill
//! id, then account number. Candidates under [`MIN_SCORE`] are dropped.

use crate::config::Bank;
use crate::domain::{normalize_key, RfReference};
use crate::matching::references::{candidates, PaymentTexts};
use crate::store::{self, DbContext, Store, StoreError};
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Candidates under this score are not suggested.
pub const MIN_SCORE: u8 = 10;
/// A name counts as resembling from this similarity on.
pub const NAME_MIN: f64 = 0.6;
/// At most this many bills found by their open balance alone.
pub const AMOUNT_BILLS: i64 = 200;
/// At most this many candidate accounts per payment.
pub const MAX_ACCOUNTS: usize = 50;
/// The default number of suggestions.
pub const DEFAULT_LIMIT: usize = 5;

/// Why a bill or account is suggested. Serialized with a `kind` (snake_case) and its data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SuggestReason {
    /// The payment's amount equals the bill's open balance.
    AmountEqualsBillBalance,
    /// The payment's amount equals the sum of the account's open balances.
    AmountEqualsAccountBalance,
    /// The payer's name resembles the account holder's (0.0 to 1.0, 1.0 the same after
    /// normalization).
    NameResembles { similarity: f64 },
    /// A reference token of the payment is `edits` edits from the bill's id (0: exactly it).
    ReferenceNearBill { token: String, edits: u8 },
    /// A reference token of the payment is `edits` edits from the account number.
    ReferenceNearAccount { token: String, edits: u8 },
    /// An RF creditor reference with wrong check digits whose body names this bill/account.
    CheckDigitRepaired { token: String },
    /// Earlier payments from the same payer account went to this account.
    SamePayerPaidThisAccountBefore { payments: u32 },
}

impl SuggestReason {
    /// The stable name (as serialized in `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AmountEqualsBillBalance => "amount_equals_bill_balance",
            Self::AmountEqualsAccountBalance => "amount_equals_account_balance",
            Self::NameResembles { .. } => "name_resembles",
            Self::ReferenceNearBill { .. } => "reference_near_bill",
            Self::ReferenceNearAccount { .. } => "reference_near_account",
            Self::CheckDigitRepaired { .. } => "check_digit_repaired",
            Self::SamePayerPaidThisAccountBefore { .. } => "same_payer_paid_this_account_before",
        }
    }

    /// A sentence for finance staff: `zh` in Chinese, anything else in English.
    pub fn describe(&self, lang: &str) -> String {
        let zh = lang.eq_ignore_ascii_case("zh") || lang.to_ascii_lowercase().starts_with("zh-");
        match (self, zh) {
            (Self::AmountEqualsBillBalance, true) => "付款金额等于该账单的未付余额".into(),
            (Self::AmountEqualsBillBalance, false) => {
                "The amount equals the open balance of this bill".into()
            }
            (Self::AmountEqualsAccountBalance, true) => {
                "付款金额等于该户所有未付账单的余额合计".into()
            }
            (Self::AmountEqualsAccountBalance, false) => {
                "The amount equals the total open balance of this account".into()
            }
            (Self::NameResembles { similarity }, true) => {
                format!("付款人名称与户名相似（相似度 {:.0}%）", similarity * 100.0)
            }
            (Self::NameResembles { similarity }, false) => format!(
                "The payer's name resembles the account holder's ({:.0}% similar)",
                similarity * 100.0
            ),
            (Self::ReferenceNearBill { token, edits: 0 }, true) => {
                format!("附言中的 {token} 即该账单号")
            }
            (Self::ReferenceNearBill { token, edits: 0 }, false) => {
                format!("Reference {token} names this bill")
            }
            (Self::ReferenceNearBill { token, edits }, true) => {
                format!("附言中的 {token} 与该账单号仅差 {edits} 个字符")
            }
            (Self::ReferenceNearBill { token, edits }, false) => format!(
                "Reference {token} is {edits} edit{} away from this bill's id",
                if *edits == 1 { "" } else { "s" }
            ),
            (Self::ReferenceNearAccount { token, edits: 0 }, true) => {
                format!("附言中的 {token} 即该户号")
            }
            (Self::ReferenceNearAccount { token, edits: 0 }, false) => {
                format!("Reference {token} names this account")
            }
            (Self::ReferenceNearAccount { token, edits }, true) => {
                format!("附言中的 {token} 与该户号仅差 {edits} 个字符")
            }
            (Self::ReferenceNearAccount { token, edits }, false) => format!(
                "Reference {token} is {edits} edit{} away from this account number",
                if *edits == 1 { "" } else { "s" }
            ),
            (Self::CheckDigitRepaired { token }, true) => {
                format!("参考号 {token} 的校验位有误，去掉校验位后即指向此项")
            }
            (Self::CheckDigitRepaired { token }, false) => {
                format!("Reference {token} has wrong check digits; without them it names this")
            }
            (Self::SamePayerPaidThisAccountBefore { payments }, true) => {
                format!("同一付款账户此前已为该户缴费 {payments} 次")
            }
            (Self::SamePayerPaidThisAccountBefore { payments }, false) => format!(
                "The same payer account paid this account before ({payments} payment{})",
                if *payments == 1 { "" } else { "s" }
            ),
        }
    }
}

/// A suggested bill (or account as a whole) for a payment.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub account_no: String,
    pub customer_name: String,
    pub key_account: bool,
    /// None: the account as a whole.
    pub bill_id: Option<String>,
    /// The open balance of the bill, or of the account.
    pub open_minor: i64,
    pub currency: String,
    pub score: u8,
    pub reasons: Vec<SuggestReason>,
}

impl Suggestion {
    /// The name similarity among the reasons (0.0 when the name is not one of them).
    pub fn name_similarity(&self) -> f64 {
        self.reasons
            .iter()
            .find_map(|r| match r {
                SuggestReason::NameResembles { similarity } => Some(*similarity),
                _ => None,
            })
            .unwrap_or(0.0)
    }

    pub fn has(&self, kind: &str) -> bool {
        self.reasons.iter().any(|r| r.kind() == kind)
    }
}

// ---------------------------------------------------------------------------------------
// Pure parts: edit distance, names, scoring.

/// The optimal-string-alignment distance of `a` and `b` (Levenshtein where swapping two
/// adjacent characters is one edit), or None when it is more than `max`. Compares chars.
pub fn edit_distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    osa_bounded(&a, &b, max)
}

fn osa_bounded(a: &[char], b: &[char], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    if a == b {
        return Some(0);
    }
    let n = b.len();
    let mut prev2: Vec<usize> = vec![0; n + 1];
    let mut prev: Vec<usize> = (0..=n).collect();
    let mut cur: Vec<usize> = vec![0; n + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=n {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[n];
    (d <= max).then_some(d)
}

/// How many edits a reference token may be away from a key.
fn edit_budget(token: &str) -> usize {
    let len = token.chars().count();
    if !token.chars().any(|c| c.is_ascii_digit()) {
        0
    } else if len >= 10 {
        2
    } else if len >= 6 {
        1
    } else {
        0
    }
}

const EN_SUFFIXES: &[&str] = &[
    "co",
    "company",
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "llc",
    "plc",
    "gmbh",
    "ag",
    "sa",
    "bv",
];
const ZH_SUFFIXES: &[&str] = &[
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "分公司",
    "公司",
    "集团",
];

/// A name reduced for comparison: case-folded, company suffixes (`Co., Ltd.`, `有限公司`, ..)
/// dropped, spaces and punctuation dropped.
pub fn normalize_name(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    while words.len() > 1 && words.last().is_some_and(|w| EN_SUFFIXES.contains(w)) {
        words.pop();
    }
    let mut s: String = words.concat();
    loop {
        let before = s.len();
        for suf in ZH_SUFFIXES {
            if s.len() > suf.len() && s.ends_with(suf) {
                s.truncate(s.len() - suf.len());
            }
        }
        if s.len() == before {
            break;
        }
    }
    s
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// How alike two names are, 0.0 to 1.0, after [`normalize_name`]. Names with Chinese
/// characters are compared char-wise (normalized Levenshtein: 张伟 vs 张玮 is 0.5); others by
/// the Sørensen-Dice coefficient of their character bigrams, which forgives a dropped letter
/// and a swapped word order (`Lei Sun` / `Sun Lei` 0.8) but gives unrelated names next to
/// nothing (Jaro-Winkler was tried and rated `Payer` / `Acme Trading` 0.62).
pub fn name_similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (normalize_name(a), normalize_name(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    if a.chars().chain(b.chars()).any(is_cjk) {
        strsim::normalized_levenshtein(&a, &b)
    } else {
        strsim::sorensen_dice(&a, &b)
    }
}

/// The score of a set of reasons (see the module doc).
pub fn score(reasons: &[SuggestReason]) -> u8 {
    let mut reference = 0u32;
    let mut total = 0u32;
    let mut amount = false;
    let mut name = 0.0f64;
    for r in reasons {
        match r {
            SuggestReason::ReferenceNearBill { edits, .. }
            | SuggestReason::ReferenceNearAccount { edits, .. } => {
                reference = reference.max(match edits {
                    0 => 50,
                    1 => 35,
                    2 => 20,
                    _ => 0,
                })
            }
            SuggestReason::CheckDigitRepaired { .. } => reference = reference.max(45),
            SuggestReason::SamePayerPaidThisAccountBefore { .. } => total += 45,
            SuggestReason::AmountEqualsBillBalance => {
                total += 30;
                amount = true;
            }
            SuggestReason::AmountEqualsAccountBalance => {
                total += 25;
                amount = true;
            }
            SuggestReason::NameResembles { similarity } => name = name.max(*similarity),
        }
    }
    if name >= NAME_MIN {
        total += (50.0 * (name.min(1.0) - 0.5)).round() as u32;
        if amount && name >= 0.8 {
            total += 10;
        }
    }
    (total + reference).min(100) as u8
}

/// The narrow auto-rule of a bank: Some(suggestion) only when exactly one candidate bill's
/// open balance equals the amount AND its name similarity >= min_similarity AND no other
/// candidate has score within 10 of it.
///
/// Give it every candidate (a large `limit`): a list cut short may hide a second bill with
/// the same balance.
pub fn auto_pick(s: &[Suggestion], amount_minor: i64, min_similarity: f64) -> Option<&Suggestion> {
    let mut exact = s.iter().filter(|c| {
        c.bill_id.is_some() && c.open_minor == amount_minor && c.has("amount_equals_bill_balance")
    });
    let pick = exact.next()?;
    if exact.next().is_some() {
        return None;
    }
    if pick.name_similarity() < min_similarity {
        return None;
    }
    let close = s
        .iter()
        .any(|o| !std::ptr::eq(o, pick) && o.score as i32 >= pick.score as i32 - 10);
    (!close).then_some(pick)
}

// ---------------------------------------------------------------------------------------
// One click where one answer is clear.

/// Why a resolution is the clear one for an exception.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Clear {
    /// A duplicate of an earlier payment of the same bank, amount and currency: reject it.
    SameTransactionAs { payment_id: i64 },
    /// Money in another currency than the bills': it cannot go to a bill, refund it.
    ForeignCurrency { currency: String, ledger: String },
    /// Exactly one open bill's balance equals the amount (of every candidate): apply to it.
    OnlyBillWithTheAmount { bill_id: String },
    /// A reference names exactly one bill (itself, or with its RF check digits repaired),
    /// and no other candidate comes close: apply to it.
    ReferenceNamesOneBill { bill_id: String, token: String },
}

impl Clear {
    /// A sentence for finance staff (the comment the one click records).
    pub fn describe(&self, lang: &str) -> String {
        let zh = lang.eq_ignore_ascii_case("zh") || lang.to_ascii_lowercase().starts_with("zh-");
        match (self, zh) {
            (Self::SameTransactionAs { payment_id }, true) => {
                format!("与付款 {payment_id} 为同一笔银行交易（银行、金额、币种相同）：剔除重复")
            }
            (Self::SameTransactionAs { payment_id }, false) => format!(
                "The same bank transaction as payment {payment_id} (bank, amount and currency alike): reject the duplicate"
            ),
            (Self::ForeignCurrency { currency, ledger }, true) => {
                format!("付款币种 {currency} 与账单币种 {ledger} 不同，无法销账：退回付款人")
            }
            (Self::ForeignCurrency { currency, ledger }, false) => format!(
                "Paid in {currency}, the bills are in {ledger}: it cannot go to a bill, refund it to the payer"
            ),
            (Self::OnlyBillWithTheAmount { bill_id }, true) => {
                format!("只有账单 {bill_id} 的未缴余额等于付款金额：销账到该账单")
            }
            (Self::OnlyBillWithTheAmount { bill_id }, false) => format!(
                "Bill {bill_id} is the only one whose open balance equals the amount: apply to it"
            ),
            (Self::ReferenceNamesOneBill { bill_id, token }, true) => {
                format!("附言中的 {token} 只指向账单 {bill_id}，且没有其他相近的候选：销账到该账单")
            }
            (Self::ReferenceNamesOneBill { bill_id, token }, false) => format!(
                "Reference {token} names bill {bill_id} alone, and no other candidate comes close: apply to it"
            ),
        }
    }
}

/// A resolution offered as one click, and why it is the clear one.
#[derive(Debug, Clone, Serialize)]
pub struct OneClick {
    pub action: super::resolve::Action,
    pub why: Clear,
}

/// The one resolution that is clear for an open exception, if there is one:
/// - a duplicate whose earlier payment has the same bank, amount and currency: reject it;
/// - money received in another currency than the ledger's: refund it;
/// - an unknown or ambiguous reference where exactly one candidate bill's open balance equals
///   the amount: apply to that bill; else one where a reference names exactly one bill (as it
///   is, or its RF check digits repaired) and every other candidate scores at least 30 less:
///   apply to that bill.
///
/// Nothing for the others (a debit, a zero amount, a reversal: no resolution moves them; a
/// reference that fits several bills: a person decides). `candidates` must be every candidate
/// (a large limit): a list cut short may hide a second bill with the same balance.
pub fn one_click(
    reason: &str,
    payment: &store::workbench::PaymentRow,
    related: Option<&store::workbench::PaymentRow>,
    candidates: &[Suggestion],
    ledger_currency: &str,
) -> Option<OneClick> {
    use super::resolve::Action;
    let incoming = payment.direction == "credit" && !payment.reversal && payment.amount_minor > 0;
    match reason {
        "duplicate" => {
            let first = related?;
            (first.bank_id == payment.bank_id
                && first.amount_minor == payment.amount_minor
                && first.currency == payment.currency)
                .then_some(OneClick {
                    action: Action::RejectDuplicate,
                    why: Clear::SameTransactionAs {
                        payment_id: first.id,
                    },
                })
        }
        _ if !incoming => None,
        _ if payment.currency != ledger_currency => Some(OneClick {
            action: Action::Refund { to: None },
            why: Clear::ForeignCurrency {
                currency: payment.currency.clone(),
                ledger: ledger_currency.to_string(),
            },
        }),
        "unknown_reference" | "ambiguous_reference" => {
            let same_amount: Vec<&Suggestion> = candidates
                .iter()
                .filter(|c| {
                    c.bill_id.is_some()
                        && c.open_minor == payment.amount_minor
                        && c.has("amount_equals_bill_balance")
                })
                .collect();
            if let [only] = same_amount.as_slice() {
                let bill_id = only.bill_id.clone()?;
                return Some(OneClick {
                    action: Action::ApplyBill {
                        bill_id: bill_id.clone(),
                    },
                    why: Clear::OnlyBillWithTheAmount { bill_id },
                });
            }
            let named: Vec<(&Suggestion, &String)> = candidates
                .iter()
                .filter(|c| c.bill_id.is_some())
                .filter_map(|c| {
                    c.reasons.iter().find_map(|r| match r {
                        SuggestReason::ReferenceNearBill { token, edits: 0 }
                        | SuggestReason::CheckDigitRepaired { token } => Some((c, token)),
                        _ => None,
                    })
                })
                .collect();
            let [(pick, token)] = named.as_slice() else {
                return None;
            };
            let close = candidates.iter().any(|o| {
                !std::ptr::eq(o, *pick) && i32::from(o.score) > i32::from(pick.score) - 30
            });
            if close {
                return None;
            }
            let bill_id = pick.bill_id.clone()?;
            Some(OneClick {
                action: Action::ApplyBill {
                    bill_id: bill_id.clone(),
                },
                why: Clear::ReferenceNamesOneBill {
                    bill_id,
                    token: (*token).clone(),
                },
            })
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Reading the context.

/// Key sets read once per length and reused for every payment it serves.
#[derive(Default)]
struct Suggester {
    /// length -> (bill_key as chars, bill_id, account_no)
    bills: HashMap<usize, Vec<(Vec<char>, String, String)>>,
    /// length -> (account_key as chars, account_no)
    accounts: HashMap<usize, Vec<(Vec<char>, String)>>,
}

impl Suggester {
    /// Makes sure every key of length `lo..=hi` is loaded (one query per missing run).
    async fn ensure(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        lo: usize,
        hi: usize,
    ) -> Result<(), StoreError> {
        let mut len = lo.max(1);
        while len <= hi {
            if self.bills.contains_key(&len) {
                len += 1;
                continue;
            }
            let start = len;
            while len <= hi && !self.bills.contains_key(&len) {
                len += 1;
            }
            let end = len - 1;
            for l in start..=end {
                self.bills.insert(l, Vec::new());
                self.accounts.insert(l, Vec::new());
            }
            for (key, bill, account) in
                store::suggest::open_bill_keys(conn, start as i64, end as i64).await?
            {
                let l = key.chars().count();
                self.bills
                    .entry(l)
                    .or_default()
                    .push((key.chars().collect(), bill, account));
            }
            for (key, account) in
                store::suggest::account_keys(conn, start as i64, end as i64).await?
            {
                let l = key.chars().count();
                self.accounts
                    .entry(l)
                    .or_default()
                    .push((key.chars().collect(), account));
            }
        }
        Ok(())
    }

    async fn suggest(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        payment_id: i64,
        patterns: &[Regex],
        limit: usize,
    ) -> Result<Vec<Suggestion>, StoreError> {
        let Some(p) = store::suggest::payment(conn, payment_id).await? else {
            return Ok(vec![]);
        };
        if p.direction != "credit" || p.reversal || p.amount_minor <= 0 || limit == 0 {
            return Ok(vec![]);
        }
        if matches!(
            p.open_exception.as_deref(),
            Some("duplicate" | "unexpected_debit" | "zero_amount")
                | Some("reversal_unmatched" | "reversal_ambiguous" | "reversal_of_exception")
        ) {
            return Ok(vec![]);
        }

        // account -> account-level reasons; bill -> bill-level reasons
        let mut acct_reasons: BTreeMap<String, Vec<SuggestReason>> = BTreeMap::new();
        let mut bill_reasons: BTreeMap<String, Vec<SuggestReason>> = BTreeMap::new();
        // candidate accounts in the order they were found (references first)
        let mut order: Vec<String> = Vec::new();
        let found = |order: &mut Vec<String>, a: &str| {
            if !order.iter().any(|o| o == a) {
                order.push(a.to_string());
            }
        };

        // 1. references
        let texts = PaymentTexts {
            reference: p.reference.as_deref(),
            end_to_end_id: p.end_to_end_id.as_deref(),
            remittance: p.remittance.as_deref(),
            additional_info: p.additional_info.as_deref(),
        };
        // (token compared, the token as the payer wrote it when it is a broken RF)
        let mut tokens: Vec<(String, Option<String>)> = Vec::new();
        for c in candidates(&texts, patterns) {
            if let Some(body) = broken_rf_body(&c.key) {
                tokens.push((body, Some(c.key.clone())));
            }
            if c.key.chars().count() >= 3 {
                tokens.push((c.key, None));
            }
        }
        // best (edits) per bill and per account, with the reason
        let mut best_bill: BTreeMap<String, (u8, SuggestReason, String)> = BTreeMap::new();
        let mut best_acct: BTreeMap<String, (u8, SuggestReason)> = BTreeMap::new();
        for (tok, rf) in &tokens {
            let budget = if rf.is_some() {
                edit_budget(tok).min(1)
            } else {
                edit_budget(tok)
            };
            let chars: Vec<char> = tok.chars().collect();
            let len = chars.len();
            self.ensure(conn, len.saturating_sub(budget), len + budget)
                .await?;
            for l in len.saturating_sub(budget)..=len + budget {
                for (key, bill, account) in self.bills.get(&l).into_iter().flatten() {
                    if let Some(d) = osa_bounded(&chars, key, budget) {
                        let (rank, reason) = token_reason(tok, rf, d, true);
                        if best_bill.get(bill).is_none_or(|b| rank < b.0) {
                            best_bill.insert(bill.clone(), (rank, reason, account.clone()));
                        }
                    }
                }
                for (key, account) in self.accounts.get(&l).into_iter().flatten() {
                    if let Some(d) = osa_bounded(&chars, key, budget) {
                        let (rank, reason) = token_reason(tok, rf, d, false);
                        if best_acct.get(account).is_none_or(|b| rank < b.0) {
                            best_acct.insert(account.clone(), (rank, reason));
                        }
                    }
                }
            }
        }
        // exact and repaired references first, then the nearer ones
        let mut ref_hits: Vec<(u8, String)> = best_bill
            .values()
            .map(|(r, _, a)| (*r, a.clone()))
            .chain(best_acct.iter().map(|(a, (r, _))| (*r, a.clone())))
            .collect();
        ref_hits.sort();
        for (_, a) in &ref_hits {
            found(&mut order, a);
        }
        for (bill, (_, reason, _)) in best_bill {
            bill_reasons.entry(bill).or_default().push(reason);
        }
        for (account, (_, reason)) in best_acct {
            acct_reasons.entry(account).or_default().push(reason);
        }

        // 2. payer history
        if let Some(pa) = p
            .payer_account
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            for (account, n) in store::suggest::payer_history(conn, pa, p.id, 5).await? {
                found(&mut order, &account);
                acct_reasons.entry(account).or_default().push(
                    SuggestReason::SamePayerPaidThisAccountBefore {
                        payments: u32::try_from(n).unwrap_or(u32::MAX),
                    },
                );
            }
        }

        // 3. names: accounts with exactly the payer's name
        let payer_name = p.payer_name.as_deref().map(str::trim).unwrap_or("");
        if !payer_name.is_empty() {
            let lowered = payer_name.to_ascii_lowercase();
            for account in store::suggest::accounts_named(conn, &lowered, 20).await? {
                found(&mut order, &account);
            }
        }

        // 4. bills with the payment's amount as open balance
        for (_bill, account) in
            store::suggest::open_bills_with_balance(conn, p.amount_minor, &p.currency, AMOUNT_BILLS)
                .await?
        {
            found(&mut order, &account);
        }

        order.truncate(MAX_ACCOUNTS);
        if order.is_empty() {
            return Ok(vec![]);
        }
        let customers: HashMap<String, (String, bool)> = store::suggest::customers(conn, &order)
            .await?
            .into_iter()
            .map(|(a, n, k)| (a, (n, k)))
            .collect();
        let mut open: BTreeMap<String, Vec<store::bills::BillRow>> = BTreeMap::new();
        for b in store::bills::open_for_accounts(conn, &order).await? {
            open.entry(b.account_no.clone()).or_default().push(b);
        }

        let mut out: Vec<(Suggestion, String)> = Vec::new();
        for account in &order {
            let Some((name, key_account)) = customers.get(account) else {
                continue;
            };
            let mut account_level: Vec<SuggestReason> =
                acct_reasons.get(account).cloned().unwrap_or_default();
            if !payer_name.is_empty() {
                let sim = name_similarity(payer_name, name);
                if sim >= NAME_MIN {
                    account_level.push(SuggestReason::NameResembles {
                        similarity: (sim * 100.0).round() / 100.0,
                    });
                }
            }
            let bills: Vec<&store::bills::BillRow> = open
                .get(account)
                .map(|v| v.iter().filter(|b| b.currency == p.currency).collect())
                .unwrap_or_default();
            let mut bill_candidates = 0;
            for b in &bills {
                let balance = b.amount_minor - b.paid_minor;
                let mut reasons: Vec<SuggestReason> =
                    bill_reasons.get(&b.bill_id).cloned().unwrap_or_default();
                if balance == p.amount_minor {
                    reasons.push(SuggestReason::AmountEqualsBillBalance);
                }
                if reasons.is_empty() {
                    continue;
                }
                bill_candidates += 1;
                reasons.extend(account_level.iter().cloned());
                reasons.sort_by_key(reason_order);
                out.push((
                    Suggestion {
                        account_no: account.clone(),
                        customer_name: name.clone(),
                        key_account: *key_account,
                        bill_id: Some(b.bill_id.clone()),
                        open_minor: balance,
                        currency: b.currency.clone(),
                        score: score(&reasons),
                        reasons,
                    },
                    b.due_on.clone(),
                ));
            }
            // reference reasons naming a bill of another currency (or no longer open) are
            // left out: those bills are not candidates
            let total: i64 = bills.iter().map(|b| b.amount_minor - b.paid_minor).sum();
            let whole_equals = bills.len() > 1 && total == p.amount_minor;
            if bill_candidates == 0 || whole_equals {
                let mut reasons = account_level.clone();
                if whole_equals {
                    reasons.push(SuggestReason::AmountEqualsAccountBalance);
                }
                if reasons.is_empty() {
                    continue;
                }
                reasons.sort_by_key(reason_order);
                let oldest = bills.iter().map(|b| b.due_on.clone()).min();
                out.push((
                    Suggestion {
                        account_no: account.clone(),
                        customer_name: name.clone(),
                        key_account: *key_account,
                        bill_id: None,
                        open_minor: total,
                        currency: p.currency.clone(),
                        score: score(&reasons),
                        reasons,
                    },
                    // no open bill: after every dated candidate of the same score
                    oldest.unwrap_or_else(|| "9999-99-99".into()),
                ));
            }
        }
        out.retain(|(s, _)| s.score >= MIN_SCORE);
        rank(&mut out);
        out.truncate(limit);
        Ok(out.into_iter().map(|(s, _)| s).collect())
    }
}

/// Score (high first), then due date, bill id (an account as a whole after its bills),
/// account number.
fn rank(out: &mut [(Suggestion, String)]) {
    out.sort_by(|(a, da), (b, db)| {
        b.score
            .cmp(&a.score)
            .then_with(|| da.cmp(db))
            .then_with(|| match (&a.bill_id, &b.bill_id) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.account_no.cmp(&b.account_no))
    });
}

/// Reasons listed strongest kind first.
fn reason_order(r: &SuggestReason) -> u8 {
    match r {
        SuggestReason::ReferenceNearBill { .. } => 0,
        SuggestReason::CheckDigitRepaired { .. } => 1,
        SuggestReason::ReferenceNearAccount { .. } => 2,
        SuggestReason::SamePayerPaidThisAccountBefore { .. } => 3,
        SuggestReason::AmountEqualsBillBalance => 4,
        SuggestReason::AmountEqualsAccountBalance => 5,
        SuggestReason::NameResembles { .. } => 6,
    }
}

/// The body of an `RF` token whose check digits are wrong (None for anything else).
fn broken_rf_body(key: &str) -> Option<String> {
    let b = key.as_bytes();
    if b.len() < 5 || &b[..2] != b"RF" || !b[2].is_ascii_digit() || !b[3].is_ascii_digit() {
        return None;
    }
    let body = &key[4..];
    if body.len() > 21 || !body.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    match RfReference::parse(key) {
        Err(crate::domain::RfError::CheckDigits(_)) => Some(normalize_key(body)),
        _ => None,
    }
}

/// The reason for a token `d` edits from a key, and its rank (lower is better).
fn token_reason(tok: &str, rf: &Option<String>, d: usize, bill: bool) -> (u8, SuggestReason) {
    let edits = u8::try_from(d).unwrap_or(u8::MAX);
    match rf {
        Some(orig) if d == 0 => (
            1,
            SuggestReason::CheckDigitRepaired {
                token: orig.clone(),
            },
        ),
        _ => {
            let token = tok.to_string();
            let rank = if d == 0 { 0 } else { 1 + edits };
            if bill {
                (rank, SuggestReason::ReferenceNearBill { token, edits })
            } else {
                (rank, SuggestReason::ReferenceNearAccount { token, edits })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Public entry points.

/// Ranked suggestions for a payment (at most `limit`; [`DEFAULT_LIMIT`] is the usual).
/// Empty for a payment that does not exist, is not a credit, is a reversal, or whose open
/// exception is a duplicate, a debit, a zero amount or about a reversal.
pub async fn suggest(
    conn: &mut sqlx::AnyConnection,
    payment_id: i64,
    patterns: &[Regex],
    limit: usize,
) -> Result<Vec<Suggestion>, StoreError> {
    Suggester::default()
        .suggest(conn, payment_id, patterns, limit)
        .await
}

/// Refreshes exceptions.suggested_account (the best suggestion's account) for open
/// exceptions; returns how many were set.
///
/// Suggestions are computed on a reader connection first (one key set shared by all
/// exceptions); the writer lock is then taken only to write the changed rows in one
/// transaction, so ingest and matching are not held up while the queue is scored. An
/// exception resolved in between is left alone (`status = 'open'` in the UPDATE); one whose
/// bills changed in between gets the new answer on the next refresh: the column is a hint for
/// ordering the queue, never used to move money.
pub async fn refresh_suggested_accounts(store: &Store, banks: &[Bank]) -> Result<u64, StoreError> {
    refresh(store, banks, None).await
}

/// [`refresh_suggested_accounts`] for the open exceptions with an id above `after` (those a
/// matching run just raised), at most `n` of the newest: what the daemon does after each run,
/// so each exception is scored once and a run costs a bounded amount (each suggestion compares
/// reference tokens with the open bills' keys).
pub async fn refresh_new_suggested_accounts(
    store: &Store,
    banks: &[Bank],
    after: i64,
    n: usize,
) -> Result<u64, StoreError> {
    refresh(store, banks, Some((after, n))).await
}

async fn refresh(
    store: &Store,
    banks: &[Bank],
    limit: Option<(i64, usize)>,
) -> Result<u64, StoreError> {
    let patterns: HashMap<&str, &[Regex]> = banks
        .iter()
        .map(|b| (b.id.as_str(), b.reference_patterns.as_slice()))
        .collect();
    let mut updates: Vec<(i64, Option<String>)> = Vec::new();
    let mut set = 0u64;
    {
        let mut conn = store.pool().acquire().await.op("connecting")?;
        let mut s = Suggester::default();
        let open = store::suggest::open_exceptions(&mut conn).await?;
        let open: Vec<_> = match limit {
            Some((after, n)) => open
                .into_iter()
                .rev()
                .filter(|o| o.0 > after && o.4.is_none())
                .take(n)
                .collect(),
            None => open,
        };
        // a payment has one open exception; should it have more, it is scored once
        let mut done: HashMap<i64, Option<String>> = HashMap::new();
        for (exception_id, payment_id, bank_id, _reason, current) in open {
            let pats = patterns.get(bank_id.as_str()).copied().unwrap_or(&[]);
            let best = match done.get(&payment_id) {
                Some(b) => b.clone(),
                None => {
                    let b = s
                        .suggest(&mut conn, payment_id, pats, 1)
                        .await?
                        .into_iter()
                        .next()
                        .map(|s| s.account_no);
                    done.insert(payment_id, b.clone());
                    b
                }
            };
            if best.is_some() {
                set += 1;
            }
            if best != current {
                updates.push((exception_id, best));
            }
        }
    }
    if !updates.is_empty() {
        let _w = store.writer().await;
        let mut tx = store.begin().await?;
        store::suggest::set_suggested(&mut tx, &updates).await?;
        tx.commit().await.op("committing suggested accounts")?;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_substitutions_insertions_and_deletions() {
        assert_eq!(edit_distance("B2026100005", "B2026100005", 2), Some(0));
        assert_eq!(edit_distance("B2026100005", "B2026100006", 2), Some(1));
        assert_eq!(edit_distance("B2026100005", "B202610005", 2), Some(1));
        assert_eq!(edit_distance("B2026100005", "B20261000055", 2), Some(1));
        assert_eq!(edit_distance("B2026100005", "B2026109995", 2), None);
        assert_eq!(edit_distance("B2026100005", "B2026109905", 2), Some(2));
        assert_eq!(edit_distance("3100000005", "31000005", 2), Some(2));
        assert_eq!(
            edit_distance("3100000005", "3100005", 2),
            None,
            "3 deletions"
        );
        assert_eq!(edit_distance("", "ab", 2), Some(2));
    }

    #[test]
    fn an_adjacent_transposition_is_one_edit() {
        assert_eq!(edit_distance("3100000012", "3100000021", 2), Some(1));
        assert_eq!(edit_distance("B2026100012", "B2026010012", 2), Some(1));
        // plain Levenshtein would say 2
        assert_eq!(strsim::levenshtein("3100000012", "3100000021"), 2);
        // two separate transpositions
        assert_eq!(edit_distance("3100000012", "1300000021", 2), Some(2));
        assert_eq!(edit_distance("ab", "ba", 0), None);
    }

    #[test]
    fn budget_depends_on_length_and_digits() {
        assert_eq!(edit_budget("3100000005"), 2);
        assert_eq!(edit_budget("B20261"), 1);
        assert_eq!(edit_budget("31000"), 0);
        assert_eq!(
            edit_budget("ELECTRICITY"),
            0,
            "words without digits are not ids"
        );
    }

    #[test]
    fn names_drop_case_spaces_punctuation_and_company_suffixes() {
        assert_eq!(normalize_name("Acme Trading Co., Ltd."), "acmetrading");
        assert_eq!(
            normalize_name("ACME TRADING COMPANY LIMITED"),
            "acmetrading"
        );
        assert_eq!(normalize_name("北京华电科技有限公司"), "北京华电科技");
        assert_eq!(normalize_name("华电集团股份有限公司"), "华电");
        assert_eq!(normalize_name(" 张 伟 "), "张伟");
        assert_eq!(normalize_name("Co."), "co", "a suffix alone is the name");
        assert_eq!(
            name_similarity("Harbour Logistics Ltd", "HARBOUR LOGISTICS LIMITED"),
            1.0
        );
        assert_eq!(name_similarity("张伟", "张 伟"), 1.0);
        assert!((name_similarity("张伟", "张玮") - 0.5).abs() < 1e-9);
        assert!(name_similarity("刘洋", "赵强") < NAME_MIN);
        assert!(name_similarity("Northern Steel Works", "Northern Steel Wrks") > 0.85);
        assert!((name_similarity("Lei Sun", "SUN LEI") - 0.8).abs() < 1e-9);
        assert!(name_similarity("Payer", "Acme Trading Co.") < 0.1);
        assert!(name_similarity("Northern Steel Works", "Green Farm Cooperative") < NAME_MIN);
        assert_eq!(name_similarity("", "x"), 0.0);
    }

    fn sugg(bill: Option<&str>, open: i64, reasons: Vec<SuggestReason>) -> Suggestion {
        Suggestion {
            account_no: "A".into(),
            customer_name: "N".into(),
            key_account: false,
            bill_id: bill.map(str::to_string),
            open_minor: open,
            currency: "CNY".into(),
            score: score(&reasons),
            reasons,
        }
    }

    #[test]
    fn scores_follow_the_documented_weights() {
        use SuggestReason::*;
        let near = |edits| ReferenceNearBill {
            token: "X".into(),
            edits,
        };
        assert_eq!(score(&[near(0)]), 50);
        assert_eq!(score(&[near(1)]), 35);
        assert_eq!(score(&[near(2)]), 20);
        assert_eq!(
            score(&[near(2), near(1)]),
            35,
            "only the best reference counts"
        );
        assert_eq!(score(&[CheckDigitRepaired { token: "RF".into() }]), 45);
        assert_eq!(score(&[AmountEqualsBillBalance]), 30);
        assert_eq!(
            score(&[NameResembles { similarity: 0.5 }]),
            0,
            "below NAME_MIN"
        );
        assert_eq!(
            score(&[AmountEqualsBillBalance, NameResembles { similarity: 1.0 }]),
            30 + 25 + 10
        );
        assert_eq!(
            score(&[AmountEqualsBillBalance, NameResembles { similarity: 0.7 }]),
            30 + 10
        );
        assert_eq!(
            score(&[
                near(0),
                SamePayerPaidThisAccountBefore { payments: 3 },
                AmountEqualsBillBalance,
                NameResembles { similarity: 1.0 }
            ]),
            100,
            "capped"
        );
    }

    #[test]
    fn ranking_is_by_score_then_due_date_then_bill_id() {
        use SuggestReason::*;
        let mut v = vec![
            (
                sugg(Some("B2"), 1, vec![AmountEqualsBillBalance]),
                "2026-10-20".to_string(),
            ),
            (
                sugg(Some("B1"), 1, vec![AmountEqualsBillBalance]),
                "2026-10-20".to_string(),
            ),
            (
                sugg(Some("B0"), 1, vec![AmountEqualsBillBalance]),
                "2026-11-20".to_string(),
            ),
            (
                sugg(
                    None,
                    1,
                    vec![SamePayerPaidThisAccountBefore { payments: 1 }],
                ),
                "2026-12-01".into(),
            ),
            (
                sugg(Some("B9"), 1, vec![AmountEqualsBillBalance]),
                "2026-09-20".to_string(),
            ),
        ];
        rank(&mut v);
        let ids: Vec<Option<&str>> = v.iter().map(|(s, _)| s.bill_id.as_deref()).collect();
        assert_eq!(
            ids,
            vec![None, Some("B9"), Some("B1"), Some("B2"), Some("B0")]
        );
    }

    #[test]
    fn auto_pick_only_in_the_unique_exact_case() {
        use SuggestReason::*;
        let exact = |b, sim| {
            sugg(
                Some(b),
                500,
                vec![AmountEqualsBillBalance, NameResembles { similarity: sim }],
            )
        };
        let one = vec![
            exact("B1", 1.0),
            sugg(Some("B2"), 400, vec![NameResembles { similarity: 1.0 }]),
        ];
        assert_eq!(
            auto_pick(&one, 500, 0.9).and_then(|s| s.bill_id.as_deref()),
            Some("B1")
        );
        assert!(auto_pick(&one, 501, 0.9).is_none(), "other amount");
        assert!(
            auto_pick(&one, 500, 1.01).is_none(),
            "name not similar enough"
        );
        let two = vec![exact("B1", 1.0), exact("B2", 1.0)];
        assert!(
            auto_pick(&two, 500, 0.9).is_none(),
            "two bills with that balance"
        );
        let close = vec![
            exact("B1", 1.0),
            sugg(
                Some("B2"),
                400,
                vec![near_ref(), SamePayerPaidThisAccountBefore { payments: 1 }],
            ),
        ];
        assert!(
            auto_pick(&close, 500, 0.9).is_none(),
            "a rival within 10 points"
        );
        assert!(auto_pick(&[], 500, 0.0).is_none());
    }

    fn near_ref() -> SuggestReason {
        SuggestReason::ReferenceNearBill {
            token: "X".into(),
            edits: 2,
        }
    }

    #[test]
    fn broken_rf_gives_its_body() {
        let good = RfReference::wrap("B2026100005").unwrap();
        assert_eq!(broken_rf_body(good.as_str()), None);
        let mut bad = good.as_str().to_string();
        bad.replace_range(2..4, if &bad[2..4] == "11" { "12" } else { "11" });
        assert_eq!(broken_rf_body(&bad).as_deref(), Some("B2026100005"));
        assert_eq!(broken_rf_body("3100000005"), None);
    }

    #[test]
    fn reasons_serialize_with_their_kind_and_describe_in_both_languages() {
        let r = SuggestReason::ReferenceNearBill {
            token: "B2026100095".into(),
            edits: 1,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"kind": "reference_near_bill", "token": "B2026100095", "edits": 1})
        );
        assert_eq!(
            serde_json::to_value(SuggestReason::AmountEqualsBillBalance).unwrap(),
            serde_json::json!({"kind": "amount_equals_bill_balance"})
        );
        assert!(r.describe("en").contains("1 edit away"));
        assert!(r.describe("zh").contains("仅差 1 个字符"));
        let n = SuggestReason::NameResembles { similarity: 0.87 };
        assert!(n.describe("en").contains("87%"));
        assert!(n.describe("zh").contains("87%"));
    }
}
