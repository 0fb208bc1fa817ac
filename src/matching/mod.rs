//! Matching: every pending payment is applied to bills, held as customer credit, or sent to
//! the exceptions queue with a reason. Never a guess: when the rules do not give one clear
//! answer the payment is an exception, because a wrong automatic match is worse than one.
//!
//! Order is deterministic: payments are taken in ingest order (files in the order they were
//! ingested, lines in file order), so the same inputs always give the same allocations.
//! Work goes in batches: one batch reads its context (duplicates, referenced bills and
//! accounts, the open bills of those accounts) in a few queries, decides in memory, and
//! writes everything in one transaction. A reversal is decided alone, after everything
//! before it is written, because it must see the payment it undoes.

mod book;
pub mod fees;
mod moves;
pub mod references;

pub use fees::FeePolicy;
pub use moves::{
    allocate_parts, allocate_to, bill_total_due, settle_bill, undo_payment, waive_fee, BillChange,
    ManualAllocation, Moved, Mover, Overflow, Settled, Target, Undo, WaivedFee,
};

use crate::config::Bank;
use crate::domain::Currency;
use crate::store::matching::{
    BatchWrite, ChargeRow, NewAllocation, NewLateFee, PaymentShift, PaymentUpdate, PendingPayment,
    ReversalCandidate,
};
use crate::store::{self, DbContext, Store, StoreError};
use book::Book;
use references::{candidates, PaymentTexts};
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Pending payments decided per batch.
pub const BATCH: i64 = 5000;

/// Why a payment was not applied automatically. The names are stable: they appear in
/// exports, reports and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionReason {
    /// No reference, or none that names a known bill or account.
    UnknownReference,
    /// The references name more than one customer.
    AmbiguousReference,
    /// Not the ledger currency, or not the currency of the bill it names.
    CurrencyMismatch,
    /// Money going out of the collection account that is not a reversal.
    UnexpectedDebit,
    /// The same bank transaction was already counted.
    Duplicate,
    /// A zero amount.
    ZeroAmount,
    /// A reversal whose original payment cannot be found (or is already reversed).
    ReversalUnmatched,
    /// A reversal that fits more than one earlier payment.
    ReversalAmbiguous,
    /// A reversal of a payment that is itself in the exceptions queue.
    ReversalOfException,
}

impl ExceptionReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UnknownReference => "unknown_reference",
            Self::AmbiguousReference => "ambiguous_reference",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::UnexpectedDebit => "unexpected_debit",
            Self::Duplicate => "duplicate",
            Self::ZeroAmount => "zero_amount",
            Self::ReversalUnmatched => "reversal_unmatched",
            Self::ReversalAmbiguous => "reversal_ambiguous",
            Self::ReversalOfException => "reversal_of_exception",
        }
    }
}

/// The rule that produced an allocation (the `rule` column of the allocations export).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Applied to the bill the payment names.
    BillReference,
    /// What was left after the named bill(s), to the account's other open bills, oldest first.
    BillReferenceRemainder,
    /// The named bill was already paid or cancelled: to the account's other open bills.
    ClosedBillRedirect,
    /// The payment names the account: its open bills, oldest due date first.
    AccountOldestFirst,
    /// A bill's late fee (part `late_fee`): owed, or accrued on the principal paid late.
    LateFee,
    /// Undoes an earlier allocation (negative amount): a bank reversal.
    Reversal,
    /// Undoes a resolution (negative amount): a supervisor reopened it.
    Reopen,
    /// A person sent the payment to a bill.
    Manual,
    /// A person split the payment across bills.
    ManualSplit,
    /// The small difference to a bill a supervisor wrote off (a shortfall the utility absorbs).
    WriteOff,
    /// Takes money off a bill the billing system cancelled (negative amount).
    BillCancelled,
    /// Takes money off a bill the billing system lowered below what was paid (negative).
    BillLowered,
    /// Gives back late-fee money whose charge was undone (negative; the money becomes the
    /// payer's credit).
    LateFeeReleased,
}

impl Rule {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::BillReference => "bill_reference",
            Self::BillReferenceRemainder => "bill_reference_remainder",
            Self::ClosedBillRedirect => "closed_bill_redirect",
            Self::AccountOldestFirst => "account_oldest_first",
            Self::LateFee => "late_fee",
            Self::Reversal => "reversal",
            Self::Reopen => "reopen",
            Self::Manual => "manual",
            Self::ManualSplit => "manual_split",
            Self::WriteOff => "write_off",
            Self::BillCancelled => "bill_cancelled",
            Self::BillLowered => "bill_lowered",
            Self::LateFeeReleased => "late_fee_released",
        }
    }
}

/// What an allocation settles of a bill (the `part` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Principal,
    LateFee,
}

impl Part {
    pub fn as_str(&self) -> &'static str {
        match self {
            Part::Principal => "principal",
            Part::LateFee => "late_fee",
        }
    }

    pub fn parse(s: &str) -> Part {
        if s == "late_fee" {
            Part::LateFee
        } else {
            Part::Principal
        }
    }
}

/// One allocation decided in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alloc {
    pub bill_id: String,
    pub account_no: String,
    pub amount: i64,
    pub rule: Rule,
    pub part: Part,
}

impl Alloc {
    fn to_new(&self, payment_id: i64, currency: &str) -> NewAllocation {
        NewAllocation {
            payment_id,
            bill_id: self.bill_id.clone(),
            account_no: self.account_no.clone(),
            amount_minor: self.amount,
            currency: currency.to_string(),
            rule: self.rule.as_str(),
            part: self.part.as_str(),
        }
    }
}

/// A charge row decided in memory, as an undo needs it.
fn charge_of(f: &NewLateFee) -> Option<ChargeRow> {
    (f.kind == "charge").then(|| ChargeRow {
        bill_id: f.bill_id.clone(),
        account_no: f.account_no.clone(),
        currency: f.currency.clone(),
        payment_id: f.payment_id.unwrap_or_default(),
        due_on: f.due_on.clone().unwrap_or_default(),
        from_on: f.from_on.clone().unwrap_or_default(),
        to_on: f.to_on.clone().unwrap_or_default(),
        days: f.days,
        rate: f.rate.clone(),
        base_minor: f.base_minor,
        computed_minor: f.computed_minor,
        minimum_minor: f.minimum_minor,
    })
}

/// Counts of what a matching run decided.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct MatchSummary {
    pub processed: u64,
    pub applied: u64,
    pub partially_applied: u64,
    pub credit: u64,
    pub exception: u64,
    pub reversed: u64,
    /// Money applied to bills, held as credit, held in exceptions (minor units, signed).
    pub applied_minor: i64,
    pub credit_minor: i64,
    pub held_minor: i64,
}

impl MatchSummary {
    fn count(&mut self, status: &str) {
        self.processed += 1;
        match status {
            "applied" => self.applied += 1,
            "partially_applied" => self.partially_applied += 1,
            "credit" => self.credit += 1,
            "exception" => self.exception += 1,
            "reversed" => self.reversed += 1,
            _ => {}
        }
    }
}

impl std::fmt::Display for MatchSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} payments matched: {} applied, {} partially applied, {} credit, {} exceptions, {} reversals",
            self.processed,
            self.applied,
            self.partially_applied,
            self.credit,
            self.exception,
            self.reversed
        )
    }
}

/// What matching needs to know about the configuration.
pub struct Matcher {
    currency: Currency,
    patterns: HashMap<String, Vec<Regex>>,
    /// From this many pending payments on, a run reads every open bill and account first
    /// (a complete [`Book`]) instead of what each batch names.
    preload_from: i64,
    /// Banks on the partner API: their files' lines may confirm real-time payments.
    partners: HashSet<String>,
    /// Sources of the utility's own account statements: their lines are transfers.
    own_accounts: HashSet<String>,
    /// Late fees and the allocation order.
    fees: FeePolicy,
}

impl Matcher {
    pub fn new(currency: Currency, banks: &[Bank]) -> Self {
        Matcher {
            currency,
            patterns: banks
                .iter()
                .map(|b| (b.id.clone(), b.reference_patterns.clone()))
                .collect(),
            preload_from: 20_000,
            partners: banks
                .iter()
                .filter(|b| b.partner.is_some())
                .map(|b| b.id.clone())
                .collect(),
            own_accounts: banks
                .iter()
                .filter(|b| b.own_account)
                .map(|b| b.id.clone())
                .collect(),
            fees: FeePolicy::default(),
        }
    }

    /// The late-fee policy and allocation order (default: [`FeePolicy::default`]).
    pub fn with_fees(mut self, fees: FeePolicy) -> Self {
        self.fees = fees;
        self
    }

    /// Changes from how many pending payments on a run preloads every open bill and account
    /// (tests use 0 to exercise it on small data).
    pub fn with_preload_from(mut self, pending: i64) -> Self {
        self.preload_from = pending;
        self
    }

    /// Matches every pending payment. Safe to run at any time and more than once.
    ///
    /// Holds the store's writer lock for the whole run, so the bills and customers it looks
    /// at cannot change under it.
    #[tracing::instrument(skip_all)]
    pub async fn run(&self, store: &Store) -> Result<MatchSummary, StoreError> {
        let mut summary = MatchSummary::default();
        let _w = store.writer().await;
        let started = std::time::Instant::now();
        let mut book = {
            let mut conn = store.write_pool().acquire().await.op("connecting")?;
            if store::matching::pending_count(&mut conn).await? >= self.preload_from {
                Book::complete(&mut conn).await?
            } else {
                Book::lazy()
            }
        };
        // where the time goes, for the debug log
        let mut times = [std::time::Duration::ZERO; 4];
        let preload = started.elapsed();
        loop {
            let t = std::time::Instant::now();
            let mut tx = store.begin().await?;
            let pending = store::matching::pending(&mut tx, BATCH).await?;
            if pending.is_empty() {
                break;
            }
            times[0] += t.elapsed();
            let t = std::time::Instant::now();
            let write = self.decide_batch(&mut tx, &pending, &mut book).await?;
            for p in &write.payments {
                summary.count(p.status);
                summary.applied_minor += p.applied_minor;
                summary.credit_minor += p.credit_minor;
                summary.held_minor += p.held_minor;
            }
            times[1] += t.elapsed();
            let t = std::time::Instant::now();
            store::matching::write_batch(&mut tx, write, &store::now()).await?;
            times[2] += t.elapsed();
            if !book.is_complete() {
                // a lazy book holds one batch's context: memory stays bounded by the batch
                book = Book::lazy();
            }
            let t = std::time::Instant::now();
            tx.commit().await.op("committing match outcomes")?;
            times[3] += t.elapsed();
        }
        if summary.processed > 0 {
            tracing::info!(%summary, "matching done");
            tracing::debug!(
                total = ?started.elapsed(),
                ?preload,
                read_pending = ?times[0],
                decide = ?times[1],
                write = ?times[2],
                commit = ?times[3],
                "matching times"
            );
        }
        Ok(summary)
    }

    /// Duplicates among `batch`: payment id -> the id of the first payment with its key.
    async fn duplicates(
        &self,
        conn: &mut sqlx::AnyConnection,
        batch: &[PendingPayment],
    ) -> Result<HashMap<i64, i64>, StoreError> {
        let keys: Vec<String> = batch
            .iter()
            .filter_map(|p| p.txn_key.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut first: HashMap<(String, String), i64> =
            store::matching::first_with_keys(conn, &keys)
                .await?
                .into_iter()
                .map(|(b, k, id)| ((b, k), id))
                .collect();
        let mut dups = HashMap::new();
        for p in batch {
            if let Some(k) = &p.txn_key {
                match first.get(&(p.bank_id.clone(), k.clone())) {
                    Some(id) if *id < p.id => {
                        dups.insert(p.id, *id);
                    }
                    _ => {
                        first.insert((p.bank_id.clone(), k.clone()), p.id);
                    }
                }
            }
        }
        Ok(dups)
    }

    fn texts<'p>(&self, p: &'p PendingPayment) -> PaymentTexts<'p> {
        PaymentTexts {
            reference: p.reference.as_deref(),
            end_to_end_id: p.end_to_end_id.as_deref(),
            remittance: p.remittance.as_deref(),
            additional_info: p.additional_info.as_deref(),
        }
    }

    /// Decides a batch of payments in order. Reads its context in a few queries, then
    /// decides in memory, so later payments see what earlier ones (and reversals) did.
    async fn decide_batch(
        &self,
        conn: &mut sqlx::AnyConnection,
        batch: &[PendingPayment],
        book: &mut Book,
    ) -> Result<BatchWrite, StoreError> {
        let dups = self.duplicates(conn, batch).await?;
        let confirms = self.confirmations(conn, batch).await?;
        let no_patterns = Vec::new();
        let cands: Vec<Vec<references::Candidate>> = batch
            .iter()
            .map(|p| {
                if p.reversal || p.direction != "credit" {
                    return vec![];
                }
                let pats = self.patterns.get(&p.bank_id).unwrap_or(&no_patterns);
                candidates(&self.texts(p), pats)
            })
            .collect();
        let keys: Vec<String> = cands.iter().flatten().map(|c| c.key.clone()).collect();
        book.prepare(conn, &keys).await?;
        if !book.is_complete() {
            let accounts = accounts_needing_all_bills(batch, &cands, book);
            book.load_open_bills(conn, &accounts).await?;
        }

        let mut write = BatchWrite::default();
        let mut decisions: Vec<Decision> = Vec::with_capacity(batch.len());
        // Payments of earlier batches reversed by this one.
        let mut reversed_here: HashSet<i64> = HashSet::new();
        for (i, (p, cands)) in batch.iter().zip(&cands).enumerate() {
            let decision = if self.own_accounts.contains(&p.bank_id) {
                // the utility's own account: a settlement transfer, checked per bank's day
                Decision {
                    status: "transfer",
                    account_no: None,
                    allocations: vec![],
                    fees: vec![],
                    credit: 0,
                    exception: None,
                    reverses: None,
                    confirms: None,
                }
            } else if let Some(rt) = confirms.get(&p.id) {
                Decision {
                    status: "confirmed",
                    account_no: None,
                    allocations: vec![],
                    fees: vec![],
                    credit: 0,
                    exception: None,
                    reverses: None,
                    confirms: Some(*rt),
                }
            } else if let Some(first) = dups.get(&p.id) {
                Decision::exception(
                    ExceptionReason::Duplicate,
                    format!(
                        "same bank transaction as payment {first} (key {})",
                        p.txn_key.as_deref().unwrap_or("")
                    ),
                    Some(*first),
                )
            } else if p.reversal {
                self.decide_reversal(
                    conn,
                    p,
                    &batch[..i],
                    &mut decisions,
                    &mut reversed_here,
                    book,
                    &mut write,
                )
                .await?
            } else if p.direction == "debit" {
                Decision::exception(
                    ExceptionReason::UnexpectedDebit,
                    "a debit that is not a reversal: money leaving the collection account".into(),
                    None,
                )
            } else if p.amount_minor == 0 {
                Decision::exception(ExceptionReason::ZeroAmount, "amount is zero".into(), None)
            } else if p.currency != self.currency.as_str() {
                Decision::exception(
                    ExceptionReason::CurrencyMismatch,
                    format!("payment in {}, bills are in {}", p.currency, self.currency),
                    None,
                )
            } else {
                self.decide_credit(p, cands, book)
            };
            decisions.push(decision);
        }
        for (p, d) in batch.iter().zip(decisions) {
            d.into_write(p, &mut write);
        }
        write.bill_deltas = book.drain_deltas();
        Ok(write)
    }

    /// Lines of partner banks' files that confirm a real-time payment: line id -> the real-time
    /// payment it confirms. A payment line names the posting by its bank reference,
    /// end-to-end id or transaction id; a reversal line confirms the posting's reversal (when
    /// the bank reversed it through the API; otherwise the core reverses it as usual).
    async fn confirmations(
        &self,
        conn: &mut sqlx::AnyConnection,
        batch: &[PendingPayment],
    ) -> Result<HashMap<i64, i64>, StoreError> {
        let mine: Vec<&PendingPayment> = batch
            .iter()
            .filter(|p| self.partners.contains(&p.bank_id))
            .collect();
        if mine.is_empty() {
            return Ok(HashMap::new());
        }
        let ids_of = |p: &PendingPayment| -> Vec<String> {
            [&p.bank_ref, &p.end_to_end_id, &p.tx_id]
                .into_iter()
                .flatten()
                .cloned()
                .collect()
        };
        let mut ids: Vec<String> = mine.iter().flat_map(|p| ids_of(p)).collect();
        ids.sort();
        ids.dedup();
        let postings: HashMap<(String, String), (i64, i64, Option<i64>)> =
            store::matching::realtime_postings(conn, &ids)
                .await?
                .into_iter()
                .map(|(b, t, pid, amount, rev)| ((b, t), (pid, amount, rev)))
                .collect();
        let mut out = HashMap::new();
        for p in mine {
            let found = ids_of(p)
                .into_iter()
                .find_map(|id| postings.get(&(p.bank_id.clone(), id)).copied());
            match found {
                Some((pid, _, _)) if !p.reversal => {
                    out.insert(p.id, pid);
                }
                Some((_, _, Some(rev))) => {
                    out.insert(p.id, rev);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// A credit in the ledger currency, not a duplicate: find the customer and allocate.
    fn decide_credit(
        &self,
        p: &PendingPayment,
        cands: &[references::Candidate],
        book: &mut Book,
    ) -> Decision {
        // account -> how it was named (for the exception detail)
        let mut named: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        let mut named_bills: Vec<u32> = Vec::new();
        for c in cands {
            if let Some(i) = book.bill_by_key(&c.key) {
                named
                    .entry(book.bill(i).account)
                    .or_default()
                    .push(format!("bill {}", book.bill_id(i)));
                if !named_bills.contains(&i) {
                    named_bills.push(i);
                }
            }
            if let Some(a) = book.account_by_key(&c.key) {
                let how = format!("account {}", book.account_no(a));
                named.entry(a).or_default().push(how);
            }
        }
        if named.is_empty() {
            let detail = if cands.is_empty() {
                "the payment carries no reference".to_string()
            } else {
                let list: Vec<&str> = cands.iter().take(8).map(|c| c.key.as_str()).collect();
                format!(
                    "no known bill or account among: {}{}",
                    list.join(", "),
                    if cands.len() > 8 { ", ..." } else { "" }
                )
            };
            return Decision::exception(ExceptionReason::UnknownReference, detail, None);
        }
        if named.len() > 1 {
            let detail = named
                .iter()
                .map(|(a, how)| format!("{} (via {})", book.account_no(*a), how.join(", ")))
                .collect::<Vec<_>>()
                .join(" and ");
            return Decision::exception(
                ExceptionReason::AmbiguousReference,
                format!("references name different customers: {detail}"),
                None,
            );
        }
        let Some(&account) = named.keys().next() else {
            unreachable!("exactly one account is named here")
        };
        if let Some(&i) = named_bills
            .iter()
            .find(|i| book.bill(**i).currency.as_str() != p.currency)
        {
            return Decision::exception(
                ExceptionReason::CurrencyMismatch,
                format!(
                    "payment in {}, bill {} is in {}",
                    p.currency,
                    book.bill_id(i),
                    book.bill(i).currency
                ),
                None,
            );
        }
        book.allocate(p, account, &named_bills, &self.fees)
    }

    /// A reversal: find the one earlier payment of the bank with the same end-to-end id (or
    /// whose bank reference the reversal quotes) and the same amount, and undo it exactly.
    /// Earlier payments of this batch are looked at in memory, older ones in the database.
    #[allow(clippy::too_many_arguments)]
    async fn decide_reversal(
        &self,
        conn: &mut sqlx::AnyConnection,
        p: &PendingPayment,
        before: &[PendingPayment],
        decisions: &mut [Decision],
        reversed_here: &mut HashSet<i64>,
        book: &mut Book,
        write: &mut BatchWrite,
    ) -> Result<Decision, StoreError> {
        // References under which the bank may quote the original's AcctSvcrRef.
        let mut refs: Vec<String> = [&p.bank_ref, &p.entry_ref, &p.reference, &p.tx_id]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for text in [&p.remittance, &p.additional_info].into_iter().flatten() {
            refs.extend(
                text.split_whitespace()
                    .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
                    .filter(|w| w.len() >= 4),
            );
        }
        refs.sort();
        refs.dedup();
        let mut found = store::matching::reversal_candidates(
            conn,
            &p.bank_id,
            p.id,
            p.end_to_end_id.as_deref(),
            &refs,
        )
        .await?;
        for c in found.iter_mut() {
            if reversed_here.contains(&c.id) {
                c.status = "reversed".into();
            }
        }
        // Earlier payments of this batch, as decided so far.
        let mut in_batch: HashMap<i64, usize> = HashMap::new();
        for (j, q) in before.iter().enumerate() {
            let same_e2e = p.end_to_end_id.is_some() && q.end_to_end_id == p.end_to_end_id;
            let quoted = q.bank_ref.as_ref().is_some_and(|r| refs.contains(r));
            let d = &decisions[j];
            let duplicate = matches!(d.exception, Some((ExceptionReason::Duplicate, _, _)))
                || d.confirms.is_some();
            if q.bank_id == p.bank_id && !q.reversal && !duplicate && (same_e2e || quoted) {
                in_batch.insert(q.id, j);
                found.push(ReversalCandidate {
                    id: q.id,
                    amount_minor: q.amount_minor,
                    status: d.status.to_string(),
                    account_no: d.account_no.clone(),
                    applied_minor: d.allocations.iter().map(|a| a.amount).sum(),
                    credit_minor: d.credit,
                    bank_ref: q.bank_ref.clone(),
                    reversed_by: None,
                });
            }
        }
        let same_amount: Vec<&ReversalCandidate> = found
            .iter()
            .filter(|c| c.amount_minor == -p.amount_minor)
            .collect();
        let live: Vec<&ReversalCandidate> = same_amount
            .iter()
            .copied()
            .filter(|c| c.status != "reversed")
            .collect();
        Ok(match live.as_slice() {
            [] => {
                let detail = if let Some(c) = same_amount.first() {
                    format!("payment {} fits but was already reversed", c.id)
                } else if let Some(c) = found.first() {
                    format!(
                        "payment {} has the same reference but amount {} instead of {}",
                        c.id,
                        crate::domain::money_text(c.amount_minor, &p.currency),
                        crate::domain::money_text(-p.amount_minor, &p.currency)
                    )
                } else {
                    "no earlier payment with the same end-to-end id or bank reference and amount"
                        .into()
                };
                Decision::exception(ExceptionReason::ReversalUnmatched, detail, None)
            }
            [orig] if orig.status == "exception" => Decision::exception(
                ExceptionReason::ReversalOfException,
                format!(
                    "reverses payment {}, which is itself in the exceptions queue",
                    orig.id
                ),
                Some(orig.id),
            ),
            [orig] => {
                let orig = (*orig).clone();
                // net allocations per (bill, part), and the charges standing
                let (net, charges): (Vec<(String, Part, i64)>, Vec<ChargeRow>) = match in_batch
                    .get(&orig.id)
                {
                    Some(j) => {
                        let d = &mut decisions[*j];
                        d.status = "reversed";
                        let mut net: Vec<(String, Part, i64)> = Vec::new();
                        for a in &d.allocations {
                            match net.iter_mut().find(|n| n.0 == a.bill_id && n.1 == a.part) {
                                Some(n) => n.2 += a.amount,
                                None => net.push((a.bill_id.clone(), a.part, a.amount)),
                            }
                        }
                        (net, d.fees.iter().filter_map(charge_of).collect())
                    }
                    None => {
                        let net = store::matching::net_allocations(conn, orig.id).await?;
                        let charges = store::matching::live_charges(conn, orig.id).await?;
                        let mut ids: Vec<String> = net.iter().map(|n| n.bill_id.clone()).collect();
                        ids.extend(charges.iter().map(|c| c.bill_id.clone()));
                        book.ensure_bills(conn, &ids).await?;
                        (
                            net.into_iter()
                                .map(|n| (n.bill_id, Part::parse(&n.part), n.amount_minor))
                                .collect(),
                            charges,
                        )
                    }
                };
                let mut undo_net = Vec::with_capacity(net.len());
                for (bill_id, part, amount) in net {
                    if amount == 0 {
                        continue;
                    }
                    let Some(i) = book.bill_by_id(&bill_id) else {
                        return Err(StoreError::Inconsistent(format!(
                            "payment {} was allocated to bill {bill_id}, which does not exist",
                            orig.id
                        )));
                    };
                    undo_net.push((i, part, amount));
                }
                reversed_here.insert(orig.id);
                write.reversed.push((orig.id, p.id));
                let undone = book.undo(&undo_net, &charges, Rule::Reversal, "reversal", Some(p.id));
                for (i, amount) in undone.overflow {
                    self.release_fee_overflow(
                        conn, book, i, amount, orig.id, before, decisions, write,
                    )
                    .await?;
                }
                Decision {
                    status: "reversed",
                    account_no: orig.account_no.clone(),
                    allocations: undone.allocations,
                    fees: undone.fees,
                    credit: -orig.credit_minor,
                    exception: None,
                    reverses: Some(orig.id),
                    confirms: None,
                }
            }
            many => Decision::exception(
                ExceptionReason::ReversalAmbiguous,
                format!(
                    "fits payments {}",
                    many.iter()
                        .map(|c| c.id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None,
            ),
        })
    }

    /// The late fee of bill `i` is over-paid by `amount` because a charge it paid was undone
    /// (a reversal of `orig`): the other payments' fee money on the bill goes back to them as
    /// their customer's credit, latest payment first (this batch's, then earlier ones).
    #[allow(clippy::too_many_arguments)]
    async fn release_fee_overflow(
        &self,
        conn: &mut sqlx::AnyConnection,
        book: &mut Book,
        i: u32,
        mut amount: i64,
        orig: i64,
        before: &[PendingPayment],
        decisions: &mut [Decision],
        write: &mut BatchWrite,
    ) -> Result<(), StoreError> {
        let bill_id = book.bill_id(i).to_string();
        for j in (0..decisions.len()).rev() {
            if amount == 0 || before[j].id == orig {
                continue;
            }
            let d = &mut decisions[j];
            let paid: i64 = d
                .allocations
                .iter()
                .filter(|a| a.bill_id == bill_id && a.part == Part::LateFee)
                .map(|a| a.amount)
                .sum();
            let t = paid.min(amount);
            if t <= 0 {
                continue;
            }
            let account = d.allocations[0].account_no.clone();
            d.allocations.push(Alloc {
                bill_id: bill_id.clone(),
                account_no: account,
                amount: -t,
                rule: Rule::LateFeeReleased,
                part: Part::LateFee,
            });
            d.credit += t;
            let applied: i64 = d.allocations.iter().map(|a| a.amount).sum();
            if d.status != "reversed" {
                d.status = if applied == 0 {
                    "credit"
                } else {
                    "partially_applied"
                };
            }
            book.release_fee(i, t);
            amount -= t;
        }
        if amount == 0 {
            return Ok(());
        }
        let on_bill =
            store::matching::allocations_on_bills(conn, std::slice::from_ref(&bill_id)).await?;
        for (_, q, part, _, net) in on_bill.into_iter().rev() {
            if amount == 0 {
                break;
            }
            if q == orig
                || part != "late_fee"
                || net <= 0
                || write.reversed.iter().any(|r| r.0 == q)
            {
                continue;
            }
            let t = net.min(amount);
            let (account, currency) = {
                let b = book.bill(i);
                (
                    book.account_no(b.account).to_string(),
                    b.currency.to_string(),
                )
            };
            write.allocations.push(NewAllocation {
                payment_id: q,
                bill_id: bill_id.clone(),
                account_no: account.clone(),
                amount_minor: -t,
                currency: currency.clone(),
                rule: Rule::LateFeeReleased.as_str(),
                part: Part::LateFee.as_str(),
            });
            write
                .credits
                .push((account, q, t, currency, "late_fee_released"));
            write.shifts.push(PaymentShift {
                payment_id: q,
                applied_minor: -t,
                credit_minor: t,
                written_off_minor: 0,
            });
            book.release_fee(i, t);
            amount -= t;
        }
        if amount != 0 {
            return Err(StoreError::Inconsistent(format!(
                "bill {bill_id}: late fee over-paid by {amount} with no payment to give it back to"
            )));
        }
        Ok(())
    }
}

/// The accounts whose every open bill the batch may need: those named by account number,
/// and those of payments that the bills they name may not cover. The second is found by
/// playing the batch in order over the named bills alone. Anything the simulation ignores
/// (exceptions, reversals) only leaves more room in reality, so it errs towards loading; for
/// an account it does not select, the batch touches only the named bills, exactly as
/// simulated.
fn accounts_needing_all_bills(
    batch: &[PendingPayment],
    cands: &[Vec<references::Candidate>],
    book: &Book,
) -> Vec<u32> {
    let mut need: Vec<u32> = Vec::new();
    let mut room: HashMap<u32, i64> = HashMap::new();
    for (p, cands) in batch.iter().zip(cands) {
        need.extend(cands.iter().filter_map(|c| book.account_by_key(&c.key)));
        let named: Vec<u32> = cands
            .iter()
            .filter_map(|c| book.bill_by_key(&c.key))
            .collect();
        if named.is_empty() {
            continue;
        }
        let mut remaining = p.amount_minor;
        for &i in &named {
            let r = room.entry(i).or_insert_with(|| book.bill(i).room());
            let take = (*r).min(remaining).max(0);
            *r -= take;
            remaining -= take;
        }
        if remaining > 0 {
            need.extend(named.iter().map(|i| book.bill(*i).account));
        }
    }
    need.retain(|a| !book.open_loaded(*a));
    need
}

/// The decision for one payment.
#[derive(Debug)]
struct Decision {
    status: &'static str,
    account_no: Option<String>,
    allocations: Vec<Alloc>,
    /// late-fee rows (charges, undos) the decision writes
    fees: Vec<NewLateFee>,
    credit: i64,
    exception: Option<(ExceptionReason, String, Option<i64>)>,
    reverses: Option<i64>,
    /// the real-time payment a file line confirms
    confirms: Option<i64>,
}

impl Decision {
    fn exception(reason: ExceptionReason, detail: String, related: Option<i64>) -> Self {
        Decision {
            status: "exception",
            account_no: None,
            allocations: vec![],
            fees: vec![],
            credit: 0,
            exception: Some((reason, detail, related)),
            reverses: None,
            confirms: None,
        }
    }

    fn into_write(self, p: &PendingPayment, w: &mut BatchWrite) {
        let applied: i64 = self.allocations.iter().map(|a| a.amount).sum();
        for a in &self.allocations {
            w.allocations.push(a.to_new(p.id, &p.currency));
        }
        w.late_fees.extend(self.fees);
        if self.credit != 0 {
            if let Some(a) = &self.account_no {
                w.credits.push((
                    a.clone(),
                    p.id,
                    self.credit,
                    p.currency.clone(),
                    if self.reverses.is_some() {
                        "reversal"
                    } else {
                        "overpayment"
                    },
                ));
            }
        }
        let held = if self.exception.is_some() {
            p.amount_minor
        } else {
            0
        };
        let (reason, detail, related) = match self.exception {
            Some((r, d, rel)) => (Some(r.as_str()), Some(d), rel),
            None => (None, None, None),
        };
        w.payments.push(PaymentUpdate {
            id: p.id,
            status: self.status,
            account_no: self.account_no,
            applied_minor: applied,
            credit_minor: self.credit,
            held_minor: held,
            exception_reason: reason,
            exception_detail: detail,
            reverses_payment_id: self.reverses,
            related_payment_id: related,
            confirms_payment_id: self.confirms,
            currency: p.currency.clone(),
        });
    }
}
