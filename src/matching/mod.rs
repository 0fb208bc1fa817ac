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
pub mod references;

use crate::config::Bank;
use crate::domain::Currency;
use crate::store::matching::{
    BatchWrite, NewAllocation, PaymentUpdate, PendingPayment, ReversalCandidate,
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
    /// Undoes an earlier allocation (negative amount).
    Reversal,
}

impl Rule {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::BillReference => "bill_reference",
            Self::BillReferenceRemainder => "bill_reference_remainder",
            Self::ClosedBillRedirect => "closed_bill_redirect",
            Self::AccountOldestFirst => "account_oldest_first",
            Self::Reversal => "reversal",
        }
    }
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
        }
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
        book.allocate(p, account, &named_bills)
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
                    applied_minor: d.allocations.iter().map(|a| a.2).sum(),
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
                // net allocations per bill: (bill, account, amount)
                let allocs: Vec<(String, String, i64)> = match in_batch.get(&orig.id) {
                    Some(j) => {
                        let d = &mut decisions[*j];
                        d.status = "reversed";
                        let mut net: Vec<(String, String, i64)> = Vec::new();
                        for (bill, acct, amount, _) in &d.allocations {
                            match net.iter_mut().find(|n| &n.0 == bill) {
                                Some(n) => n.2 += amount,
                                None => net.push((bill.clone(), acct.clone(), *amount)),
                            }
                        }
                        net
                    }
                    None => {
                        let net = store::matching::net_allocations(conn, orig.id).await?;
                        let ids: Vec<String> = net.iter().map(|n| n.0.clone()).collect();
                        book.ensure_bills(conn, &ids).await?;
                        net.into_iter().map(|(b, a, _, m)| (b, a, m)).collect()
                    }
                };
                reversed_here.insert(orig.id);
                write.reversed.push((orig.id, p.id));
                let mut d = Decision {
                    status: "reversed",
                    account_no: orig.account_no.clone(),
                    allocations: vec![],
                    credit: -orig.credit_minor,
                    exception: None,
                    reverses: Some(orig.id),
                    confirms: None,
                };
                for (bill_id, account_no, amount) in allocs {
                    if amount != 0 {
                        let Some(i) = book.bill_by_id(&bill_id) else {
                            return Err(StoreError::Inconsistent(format!(
                                "payment {} was allocated to bill {bill_id}, which does not exist",
                                orig.id
                            )));
                        };
                        book.give_back(i, amount);
                        d.allocations
                            .push((bill_id, account_no, -amount, Rule::Reversal));
                    }
                }
                d
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
    /// (bill, account, amount, rule)
    allocations: Vec<(String, String, i64, Rule)>,
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
            credit: 0,
            exception: Some((reason, detail, related)),
            reverses: None,
            confirms: None,
        }
    }

    fn into_write(self, p: &PendingPayment, w: &mut BatchWrite) {
        let applied: i64 = self.allocations.iter().map(|a| a.2).sum();
        for (bill_id, account_no, amount, rule) in &self.allocations {
            w.allocations.push(NewAllocation {
                payment_id: p.id,
                bill_id: bill_id.clone(),
                account_no: account_no.clone(),
                amount_minor: *amount,
                currency: p.currency.clone(),
                rule: rule.as_str(),
            });
        }
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

/// Where a person sends a payment from the exceptions queue.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// This bill first; what is left to the account's other open bills, oldest first, then
    /// credit (the core's rules, as if the payment had named the bill).
    Bill(&'a str),
    /// The account's open bills, oldest due date first, then credit.
    Account(&'a str),
}

/// What the core's allocation rules make of a payment sent to a [`Target`].
#[derive(Debug, Clone)]
pub struct ManualAllocation {
    /// applied | partially_applied | credit
    pub status: &'static str,
    pub account_no: String,
    pub allocations: Vec<NewAllocation>,
    pub credit_minor: i64,
    /// bill_id -> change of its paid amount
    pub bill_deltas: Vec<(String, i64)>,
}

/// Allocates `p` to `target` with the same rules automatic matching uses. `Ok(Err(why))`
/// when the target does not exist or is in another currency. The caller holds the writer
/// lock and writes the result in its transaction.
pub async fn allocate_to(
    conn: &mut sqlx::AnyConnection,
    p: &PendingPayment,
    target: Target<'_>,
) -> Result<Result<ManualAllocation, String>, StoreError> {
    let key = match target {
        Target::Bill(id) | Target::Account(id) => crate::domain::normalize_key(id),
    };
    let mut book = Book::lazy();
    book.prepare(conn, std::slice::from_ref(&key)).await?;
    let (account, named) = match target {
        Target::Bill(id) => {
            let Some(i) = book.bill_by_key(&key) else {
                return Ok(Err(format!("no bill {id}")));
            };
            if book.bill(i).currency.as_str() != p.currency {
                return Ok(Err(format!(
                    "bill {id} is in {}, the payment in {}",
                    book.bill(i).currency,
                    p.currency
                )));
            }
            (book.bill(i).account, vec![i])
        }
        Target::Account(no) => match book.account_by_key(&key) {
            Some(a) => (a, vec![]),
            None => return Ok(Err(format!("no account {no}"))),
        },
    };
    book.load_open_bills(conn, &[account]).await?;
    let d = book.allocate(p, account, &named);
    let allocations = d
        .allocations
        .iter()
        .map(|(bill_id, account_no, amount, rule)| NewAllocation {
            payment_id: p.id,
            bill_id: bill_id.clone(),
            account_no: account_no.clone(),
            amount_minor: *amount,
            currency: p.currency.clone(),
            rule: rule.as_str(),
        })
        .collect();
    Ok(Ok(ManualAllocation {
        status: d.status,
        account_no: d.account_no.unwrap_or_default(),
        allocations,
        credit_minor: d.credit,
        bill_deltas: book.drain_deltas(),
    }))
}
