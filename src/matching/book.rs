//! The bills and accounts a matching run sees, kept in memory for the whole run and updated
//! as payments are applied, so that later payments see what earlier ones did.
//!
//! Two ways to fill it, chosen per run by the number of pending payments:
//! - **lazy** (small runs, the daemon's everyday case): each batch reads only the bills and
//!   accounts its references name, and the open bills of accounts it may allocate to;
//! - **complete** (large runs: a backlog, a first load, the benchmark): every open bill and
//!   every account is read once, in packed pages, before the first batch. Random lookups of
//!   bills in a million-row table cost far more than one sequential read of it. Bills that
//!   are already closed are not held; a compact set of their key hashes tells which
//!   reference tokens are worth a database lookup (a payment may name a bill already paid).
//!
//! The run holds the store's writer lock, so nothing else changes bills or customers under
//! it, and what the book holds stays true: each batch writes the book's changes
//! ([`Book::drain_deltas`]) in the transaction that commits its decisions.

use super::fees::{class_index, FeePolicy};
use super::{Alloc, Decision, Part, Rule};
use crate::config::dunning::LateFeeRule;
use crate::config::AllocationOrder;
use crate::domain::{late_fee, Currency};
use crate::store::bills::BillRow;
use crate::store::matching::{BillDelta, ChargeRow, NewLateFee, PendingPayment};
use crate::store::{self, StoreError};
use chrono::NaiveDate;
use hashbrown::{DefaultHashBuilder, HashTable};
use sqlx::AnyConnection;
use std::collections::{HashMap, HashSet};

/// Rows per page when a complete book is read.
const PAGE: i64 = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BillStatus {
    Open,
    Paid,
    Cancelled,
}

impl BillStatus {
    /// Anything but open or paid is treated as cancelled: no money goes to it.
    fn parse(s: &str) -> Self {
        match s {
            "open" => BillStatus::Open,
            "paid" => BillStatus::Paid,
            _ => BillStatus::Cancelled,
        }
    }
}

/// "No bill": the end of an account's chain of bills.
const NONE: u32 = u32::MAX;

/// A bill as this run sees it. Compact (40 bytes, its id in the book's string arena): a
/// complete book holds every open bill.
#[derive(Debug)]
pub(crate) struct Bill {
    id: Text,
    /// The account's next bill, in due-date order.
    next: u32,
    pub account: u32,
    pub amount: i64,
    pub paid: i64,
    /// The due date as YYYYMMDD, for ordering an account's bills.
    due: u32,
    pub currency: Currency,
    pub status: BillStatus,
    /// The late fee is waived: none is charged.
    pub fee_waived: bool,
}

/// A bill's late-fee totals (see migration 0008); held apart, for the few bills that have any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FeeState {
    pub accrued: i64,
    pub charged: i64,
    pub waived: i64,
    pub paid: i64,
}

impl FeeState {
    pub fn owed(&self) -> i64 {
        self.charged - self.waived - self.paid
    }
}

/// Changes of one bill since the last [`Book::drain_deltas`].
#[derive(Debug, Clone, Copy, Default)]
struct Delta {
    paid: i64,
    accrued: i64,
    charged: i64,
    waived: i64,
    fee_paid: i64,
}

/// "The class of this account is not known yet."
const NO_CLASS: u8 = u8::MAX;

impl Bill {
    /// What is still to be paid on an open bill (0 on a closed one).
    pub fn room(&self) -> i64 {
        if self.status == BillStatus::Open {
            (self.amount - self.paid).max(0)
        } else {
            0
        }
    }
}

/// A customer account and the first of the bills of it this run holds.
#[derive(Debug)]
struct Account {
    no: Text,
    /// The account's bill with the oldest due date, or NONE.
    first: u32,
    /// Every open bill of the account is in its chain.
    open_loaded: bool,
    /// The customer class ([`class_index`]), or [`NO_CLASS`] until read.
    class: u8,
}

/// A string in the book's arena.
#[derive(Debug, Clone, Copy)]
struct Text {
    at: u32,
    len: u32,
}

/// The characters of a string's normalized key ([`normalize_key`]) without allocating it.
fn key_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    s.trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
}

pub(crate) struct Book {
    /// Every id and account number held, end to end.
    arena: String,
    bills: Vec<Bill>,
    /// Bills by the normalized key of their id (which is how `bills.bill_key` is made).
    bill_ix: HashTable<u32>,
    accounts: Vec<Account>,
    /// Accounts by the normalized key of their number.
    account_ix: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Every open bill and every account is held (see the module docs).
    complete: bool,
    /// Complete book: hashes of the keys of closed bills, which are not held.
    closed: HashSet<u64>,
    /// Keys already looked up in the database: not to be asked again.
    looked_up: HashSet<Box<str>>,
    /// Changes per bill since the last [`Book::drain_deltas`].
    deltas: HashMap<u32, Delta>,
    /// Late-fee totals of the bills that have any.
    fees: HashMap<u32, FeeState>,
    /// Accounts whose class is still to be read.
    unclassed: Vec<u32>,
}

/// The day a fee is counted to from a date text (YYYY-MM-DD...).
pub(crate) fn date_of(s: &str) -> Option<NaiveDate> {
    s.get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

/// The day a payment's money reached the utility: its value date, else its booking date.
pub(crate) fn fee_day(p: &PendingPayment) -> Option<NaiveDate> {
    p.value_date
        .as_deref()
        .and_then(date_of)
        .or_else(|| p.booking_date.as_deref().and_then(date_of))
}

/// YYYYMMDD as a date.
fn due_date(due: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt((due / 10000) as i32, (due / 100) % 100, due % 100)
}

/// One payment's money on its way to bills.
struct Run<'a> {
    payment_id: i64,
    currency: &'a str,
    account_no: &'a str,
    /// The day the fee is counted to (none: no fee is charged).
    day: Option<NaiveDate>,
    rule: &'a LateFeeRule,
    minimum: i64,
    remaining: i64,
    allocations: Vec<Alloc>,
    fees: Vec<NewLateFee>,
}

/// What undoing a payment's money on bills produced.
#[derive(Debug, Default)]
pub(crate) struct Undone {
    pub allocations: Vec<Alloc>,
    pub fees: Vec<NewLateFee>,
    /// Bills whose late fee would now be over-paid by other payments' money: (bill, amount)
    /// to give back to them.
    pub overflow: Vec<(u32, i64)>,
}

/// "2026-11-30" -> 20261130 (0 if it holds no digits).
fn due_number(s: &str) -> u32 {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .take(8)
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
}

impl Book {
    /// An empty book that reads what each batch needs.
    pub fn lazy() -> Book {
        Book {
            arena: String::new(),
            bills: Vec::new(),
            bill_ix: HashTable::new(),
            accounts: Vec::new(),
            account_ix: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            complete: false,
            closed: HashSet::new(),
            looked_up: HashSet::new(),
            deltas: HashMap::new(),
            fees: HashMap::new(),
            unclassed: Vec::new(),
        }
    }

    /// Reads every open bill and every account, and the key hashes of closed bills.
    pub async fn complete(conn: &mut AnyConnection) -> Result<Book, StoreError> {
        let mut book = Book {
            complete: true,
            ..Book::lazy()
        };
        let mut after = String::new();
        loop {
            let page = store::customers::keys_page(conn, &after, PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            for (no, class) in &page {
                let i = book.add_account(no);
                book.accounts[i as usize].open_loaded = true;
                book.accounts[i as usize].class = class_index(class);
            }
        }
        let mut after = String::new();
        loop {
            let page = store::bills::page(conn, &after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.bill_id.clone();
            for b in &page {
                if b.status == "open" || b.fee.owed() > 0 {
                    book.add(b);
                } else {
                    let h = book.key_hash(&b.bill_id);
                    book.closed.insert(h);
                }
            }
        }
        book.unclassed.clear();
        book.arena.shrink_to_fit();
        book.bills.shrink_to_fit();
        book.accounts.shrink_to_fit();
        tracing::debug!(
            bills = book.bills.len(),
            accounts = book.accounts.len(),
            closed = book.closed.len(),
            "matching book loaded"
        );
        Ok(book)
    }

    fn key_hash(&self, s: &str) -> u64 {
        rehash(&self.hasher, s)
    }

    fn text(&self, t: Text) -> &str {
        &self.arena[t.at as usize..(t.at + t.len) as usize]
    }

    fn push_text(&mut self, s: &str) -> Text {
        let at = self.arena.len() as u32;
        self.arena.push_str(s);
        Text {
            at,
            len: s.len() as u32,
        }
    }

    pub fn bill_id(&self, i: u32) -> &str {
        self.text(self.bills[i as usize].id)
    }

    pub fn account_no(&self, a: u32) -> &str {
        self.text(self.accounts[a as usize].no)
    }

    pub fn bill(&self, i: u32) -> &Bill {
        &self.bills[i as usize]
    }

    /// The bill whose id has this normalized key.
    pub fn bill_by_key(&self, key: &str) -> Option<u32> {
        let h = self.key_hash(key);
        self.bill_ix
            .find(h, |i| key_chars(self.bill_id(*i)).eq(key_chars(key)))
            .copied()
    }

    /// The account whose number has this normalized key.
    pub fn account_by_key(&self, key: &str) -> Option<u32> {
        let h = self.key_hash(key);
        self.account_ix
            .find(h, |a| key_chars(self.account_no(*a)).eq(key_chars(key)))
            .copied()
    }

    pub fn bill_by_id(&self, id: &str) -> Option<u32> {
        self.bill_by_key(id)
    }

    fn add_account(&mut self, no: &str) -> u32 {
        if let Some(a) = self.account_by_key(no) {
            return a;
        }
        let a = self.accounts.len() as u32;
        let text = self.push_text(no);
        self.accounts.push(Account {
            no: text,
            first: NONE,
            open_loaded: false,
            class: NO_CLASS,
        });
        self.unclassed.push(a);
        let h = self.key_hash(no);
        let (arena, accounts, hasher) = (&self.arena, &self.accounts, &self.hasher);
        self.account_ix.insert_unique(h, a, |x| {
            let t = accounts[*x as usize].no;
            rehash(hasher, &arena[t.at as usize..(t.at + t.len) as usize])
        });
        a
    }

    /// Adds a bill read from the database, unless the book already holds it (then the
    /// book's copy, which carries this run's changes, is the true one).
    pub fn add(&mut self, b: &BillRow) -> u32 {
        if let Some(i) = self.bill_by_key(&b.bill_id) {
            return i;
        }
        let account = self.add_account(&b.account_no);
        let i = self.bills.len() as u32;
        let id = self.push_text(&b.bill_id);
        let due = due_number(&b.due_on);
        self.bills.push(Bill {
            id,
            next: NONE,
            account,
            amount: b.amount_minor,
            paid: b.paid_minor,
            due,
            currency: Currency::parse(&b.currency).unwrap_or(Currency::XXX),
            status: BillStatus::parse(&b.status),
            fee_waived: b.fee.waived_flag,
        });
        if b.fee != Default::default() {
            self.fees.insert(
                i,
                FeeState {
                    accrued: b.fee.accrued,
                    charged: b.fee.charged,
                    waived: b.fee.waived,
                    paid: b.fee.paid,
                },
            );
        }
        let h = self.key_hash(&b.bill_id);
        let (arena, bills, hasher) = (&self.arena, &self.bills, &self.hasher);
        self.bill_ix.insert_unique(h, i, |x| {
            let t = bills[*x as usize].id;
            rehash(hasher, &arena[t.at as usize..(t.at + t.len) as usize])
        });
        // into the account's chain, ordered by (due date, bill id)
        let before = |book: &Book, x: u32| {
            let o = &book.bills[x as usize];
            (o.due, book.bill_id(x)) < (due, &*b.bill_id)
        };
        let first = self.accounts[account as usize].first;
        if first == NONE || !before(self, first) {
            self.bills[i as usize].next = first;
            self.accounts[account as usize].first = i;
        } else {
            let mut at = first;
            loop {
                let next = self.bills[at as usize].next;
                if next == NONE || !before(self, next) {
                    break;
                }
                at = next;
            }
            self.bills[i as usize].next = self.bills[at as usize].next;
            self.bills[at as usize].next = i;
        }
        i
    }

    /// The account's bills held, oldest due date first.
    fn account_bills(&self, a: u32) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.accounts[a as usize].first;
        std::iter::from_fn(move || {
            (at != NONE).then(|| {
                let i = at;
                at = self.bills[i as usize].next;
                i
            })
        })
    }

    /// Makes sure the book can answer for every key: reads the bills and accounts of keys
    /// it has not looked up yet. A complete book reads only keys that may be closed bills.
    pub async fn prepare(
        &mut self,
        conn: &mut AnyConnection,
        keys: &[String],
    ) -> Result<(), StoreError> {
        let ask: Vec<String> = keys
            .iter()
            .filter(|k| !self.looked_up.contains(k.as_str()))
            .filter(|k| {
                !self.complete
                    || (self.bill_by_key(k).is_none() && self.closed.contains(&self.key_hash(k)))
            })
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if ask.is_empty() {
            return Ok(());
        }
        for b in store::bills::by_keys(conn, &ask).await? {
            self.add(&b);
        }
        if !self.complete {
            for (_, no) in store::customers::accounts_by_key(conn, &ask).await? {
                self.add_account(&no);
            }
        }
        self.looked_up
            .extend(ask.into_iter().map(String::into_boxed_str));
        self.read_classes(conn).await
    }

    /// Reads the customer class of the accounts added since the last call (one query).
    async fn read_classes(&mut self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        let need = std::mem::take(&mut self.unclassed);
        let nos: Vec<String> = need
            .iter()
            .filter(|a| self.accounts[**a as usize].class == NO_CLASS)
            .map(|a| self.account_no(*a).to_string())
            .collect();
        if nos.is_empty() {
            return Ok(());
        }
        for (no, class) in store::customers::classes(conn, &nos).await? {
            if let Some(a) = self.account_by_key(&no) {
                self.accounts[a as usize].class = class_index(&class);
            }
        }
        Ok(())
    }

    /// Reads the open bills of these accounts, where the book does not hold them all yet.
    pub async fn load_open_bills(
        &mut self,
        conn: &mut AnyConnection,
        accounts: &[u32],
    ) -> Result<(), StoreError> {
        let mut need: Vec<u32> = accounts
            .iter()
            .copied()
            .filter(|a| !self.accounts[*a as usize].open_loaded)
            .collect();
        need.sort_unstable();
        need.dedup();
        if need.is_empty() {
            return Ok(());
        }
        let nos: Vec<String> = need
            .iter()
            .map(|a| self.account_no(*a).to_string())
            .collect();
        for b in store::bills::open_for_accounts(conn, &nos).await? {
            self.add(&b);
        }
        for a in need {
            self.accounts[a as usize].open_loaded = true;
        }
        self.read_classes(conn).await
    }

    /// Makes sure the book holds these bills (by bill id), e.g. those a reversal gives back to.
    pub async fn ensure_bills(
        &mut self,
        conn: &mut AnyConnection,
        ids: &[String],
    ) -> Result<(), StoreError> {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| self.bill_by_id(id).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            for b in store::bills::by_ids(conn, &missing).await? {
                self.add(&b);
            }
        }
        self.read_classes(conn).await
    }

    /// Takes up to `remaining` of principal for an open bill in this currency; returns what
    /// it took.
    fn take(&mut self, i: u32, currency: &str, remaining: i64) -> i64 {
        let b = &mut self.bills[i as usize];
        if b.status != BillStatus::Open || b.currency.as_str() != currency {
            return 0;
        }
        let take = (b.amount - b.paid).min(remaining).max(0);
        if take > 0 {
            b.paid += take;
            if b.paid >= b.amount {
                b.status = BillStatus::Paid;
            }
            self.deltas.entry(i).or_default().paid += take;
        }
        take
    }

    /// Undoes `amount` paid on a bill (a reversal): a paid bill reopens.
    pub fn give_back(&mut self, i: u32, amount: i64) {
        let b = &mut self.bills[i as usize];
        b.paid -= amount;
        if b.status == BillStatus::Paid && b.paid < b.amount {
            b.status = BillStatus::Open;
        }
        self.deltas.entry(i).or_default().paid -= amount;
    }

    /// The late-fee totals of a bill.
    pub fn fee(&self, i: u32) -> FeeState {
        self.fees.get(&i).copied().unwrap_or_default()
    }

    /// Changes a bill's late-fee totals (and records the change).
    fn change_fee(&mut self, i: u32, accrued: i64, charged: i64, waived: i64, paid: i64) {
        let f = self.fees.entry(i).or_default();
        f.accrued += accrued;
        f.charged += charged;
        f.waived += waived;
        f.paid += paid;
        let d = self.deltas.entry(i).or_default();
        d.accrued += accrued;
        d.charged += charged;
        d.waived += waived;
        d.fee_paid += paid;
    }

    /// Marks a bill's late fee waived and writes off what is owed of it (a supervisor's
    /// decision); returns the amount written off.
    pub fn waive(&mut self, i: u32) -> i64 {
        self.bills[i as usize].fee_waived = true;
        let owed = self.fee(i).owed().max(0);
        if owed > 0 {
            self.change_fee(i, 0, 0, owed, 0);
        }
        owed
    }

    /// The changes since the last call, by bill id, in bill id order.
    pub fn drain_deltas(&mut self) -> Vec<BillDelta> {
        let deltas = std::mem::take(&mut self.deltas);
        let mut out: Vec<BillDelta> = deltas
            .into_iter()
            .filter(|(_, d)| {
                d.paid != 0 || d.accrued != 0 || d.charged != 0 || d.waived != 0 || d.fee_paid != 0
            })
            .map(|(i, d)| BillDelta {
                bill_id: self.bill_id(i).to_string(),
                paid: d.paid,
                fee_accrued: d.accrued,
                fee_charged: d.charged,
                fee_waived: d.waived,
                fee_paid: d.fee_paid,
            })
            .collect();
        out.sort_by(|a, b| a.bill_id.cmp(&b.bill_id));
        out
    }

    /// The day from which principal of bill `i` paid on `day` is late, when a fee applies.
    fn late(&self, i: u32, day: Option<NaiveDate>) -> Option<(NaiveDate, NaiveDate)> {
        let b = &self.bills[i as usize];
        let day = day?;
        if b.fee_waived {
            return None;
        }
        let due = due_date(b.due)?;
        (day > due).then_some((due, day))
    }

    /// What charging the fee on `base` paid late (due, day) adds to bill `i`'s fee: the
    /// segments, their computed total, and the amount charged (the minimum applied to the
    /// bill's total).
    fn price(
        &self,
        i: u32,
        base: i64,
        (due, day): (NaiveDate, NaiveDate),
        rule: &LateFeeRule,
        minimum: i64,
    ) -> (Vec<late_fee::Segment>, i64, i64) {
        let segs = late_fee::segments(rule.rates(), base, due, day);
        let computed: i64 = segs.iter().map(|s| s.amount_minor).sum();
        let f = self.fee(i);
        let amount = late_fee::with_minimum(f.accrued + computed, minimum) - f.charged;
        (segs, computed, amount)
    }

    /// Charges the fee on `base` paid late by the run's payment to bill `i`: one row per rate
    /// segment, the minimum's top-up on the last. Returns the amount charged.
    fn charge(&mut self, run: &mut Run, i: u32, base: i64, late: (NaiveDate, NaiveDate)) -> i64 {
        let (segs, computed, amount) = self.price(i, base, late, run.rule, run.minimum);
        if computed == 0 && amount == 0 {
            return 0;
        }
        let n = segs.len();
        for (k, seg) in segs.iter().enumerate() {
            let top_up = if k + 1 == n { amount - computed } else { 0 };
            run.fees.push(NewLateFee {
                bill_id: self.bill_id(i).to_string(),
                account_no: run.account_no.to_string(),
                currency: run.currency.to_string(),
                kind: "charge",
                payment_id: Some(run.payment_id),
                by_payment_id: None,
                reason: String::new(),
                actor: String::new(),
                due_on: Some(late.0.to_string()),
                from_on: Some(seg.from.to_string()),
                to_on: Some(seg.to.to_string()),
                days: seg.days,
                rate: seg.rate.normalize().to_string(),
                base_minor: base,
                computed_minor: seg.amount_minor,
                amount_minor: seg.amount_minor + top_up,
                minimum_minor: run.minimum,
            });
        }
        self.change_fee(i, computed, amount, 0, 0);
        amount
    }

    /// Pays what is owed of bill `i`'s late fee.
    fn pay_fee(&mut self, run: &mut Run, i: u32) {
        if run.remaining == 0 || self.bills[i as usize].currency.as_str() != run.currency {
            return;
        }
        let t = self.fee(i).owed().min(run.remaining);
        if t > 0 {
            self.change_fee(i, 0, 0, 0, t);
            run.remaining -= t;
            run.allocations.push(Alloc {
                bill_id: self.bill_id(i).to_string(),
                account_no: run.account_no.to_string(),
                amount: t,
                rule: Rule::LateFee,
                part: Part::LateFee,
            });
        }
    }

    /// Pays principal of bill `i`, charging the late fee on what is paid late. With
    /// `fee_first`, the principal paid is the most whose fee the money still covers, and that
    /// fee is paid first.
    fn pay_principal(&mut self, run: &mut Run, i: u32, rule: Rule, fee_first: bool) {
        let b = &self.bills[i as usize];
        if run.remaining == 0 || b.status != BillStatus::Open || b.currency.as_str() != run.currency
        {
            return;
        }
        let room = (b.amount - b.paid).max(0);
        let cap = room.min(run.remaining);
        let late = self.late(i, run.day);
        let x = match late {
            Some(late) if fee_first => {
                let fits =
                    |x: i64| x + self.price(i, x, late, run.rule, run.minimum).2 <= run.remaining;
                if fits(cap) {
                    cap
                } else {
                    // the largest x with x + fee(x) <= remaining: x + fee(x) grows with x
                    let (mut lo, mut hi) = (0i64, cap);
                    while hi - lo > 1 {
                        let mid = lo + (hi - lo) / 2;
                        if fits(mid) {
                            lo = mid;
                        } else {
                            hi = mid;
                        }
                    }
                    lo
                }
            }
            _ => cap,
        };
        if x <= 0 {
            return;
        }
        if let Some(late) = late {
            self.charge(run, i, x, late);
            if fee_first {
                self.pay_fee(run, i);
            }
        }
        let t = self.take(i, run.currency, x);
        run.remaining -= t;
        if t > 0 {
            run.allocations.push(Alloc {
                bill_id: self.bill_id(i).to_string(),
                account_no: run.account_no.to_string(),
                amount: t,
                rule,
                part: Part::Principal,
            });
        }
    }

    /// Settles `bills` (each with the rule of its principal) with the run's money, in the
    /// policy's order.
    fn settle(&mut self, run: &mut Run, bills: &[(u32, Rule)], order: AllocationOrder) {
        match order {
            AllocationOrder::FeeFirst => {
                for &(i, rule) in bills {
                    self.pay_fee(run, i);
                    self.pay_principal(run, i, rule, true);
                }
            }
            AllocationOrder::PrincipalFirst => {
                for &(i, rule) in bills {
                    self.pay_principal(run, i, rule, false);
                    self.pay_fee(run, i);
                }
            }
            AllocationOrder::PrincipalsThenFees => {
                for &(i, rule) in bills {
                    self.pay_principal(run, i, rule, false);
                }
                for &(i, _) in bills {
                    self.pay_fee(run, i);
                }
            }
        }
    }

    /// Whether a bill owes anything a payment in `currency` can settle.
    fn owes(&self, i: u32) -> bool {
        self.bills[i as usize].room() > 0 || self.fee(i).owed() > 0
    }

    fn run<'a>(
        &self,
        p: &'a PendingPayment,
        account_no: &'a str,
        account: u32,
        policy: &'a FeePolicy,
        amount: i64,
    ) -> Run<'a> {
        let rule = policy.rule(self.accounts[account as usize].class);
        let currency = Currency::parse(&p.currency).unwrap_or(Currency::XXX);
        Run {
            payment_id: p.id,
            currency: &p.currency,
            account_no,
            day: if policy.collect { fee_day(p) } else { None },
            rule,
            minimum: rule.minimum_minor(currency),
            remaining: amount,
            allocations: Vec::new(),
            fees: Vec::new(),
        }
    }

    /// Named bills first, then the account's other bills oldest first (in the policy's order
    /// of late fee and principal), then credit.
    pub fn allocate(
        &mut self,
        p: &PendingPayment,
        account: u32,
        named: &[u32],
        policy: &FeePolicy,
    ) -> Decision {
        self.allocate_amount(p, p.amount_minor, account, named, policy)
    }

    /// [`Book::allocate`] of `amount` of the payment's money (money moved off a bill).
    pub fn allocate_amount(
        &mut self,
        p: &PendingPayment,
        amount: i64,
        account: u32,
        named: &[u32],
        policy: &FeePolicy,
    ) -> Decision {
        let account_no = self.account_no(account).to_string();
        let rest_rule = if named.is_empty() {
            Rule::AccountOldestFirst
        } else if named
            .iter()
            .any(|i| self.bills[*i as usize].status == BillStatus::Open || self.fee(*i).owed() > 0)
        {
            Rule::BillReferenceRemainder
        } else {
            Rule::ClosedBillRedirect
        };
        let mut bills: Vec<(u32, Rule)> = named.iter().map(|i| (*i, Rule::BillReference)).collect();
        bills.extend(
            self.account_bills(account)
                .filter(|i| !named.contains(i) && self.owes(*i))
                .map(|i| (i, rest_rule)),
        );
        let mut run = self.run(p, &account_no, account, policy, amount);
        self.settle(&mut run, &bills, policy.order);
        let status = match (run.allocations.is_empty(), run.remaining) {
            (false, 0) => "applied",
            (false, _) => "partially_applied",
            (true, _) => "credit",
        };
        Decision {
            status,
            account_no: Some(account_no.clone()),
            allocations: run.allocations,
            fees: run.fees,
            credit: run.remaining,
            exception: None,
            reverses: None,
            confirms: None,
        }
    }

    /// Puts `amount` of the payment's money on bill `i` alone, by the policy's order of late
    /// fee and principal, principal under `rule` (a person's split); returns the allocations,
    /// the fees charged and what is left.
    pub fn allocate_to_bill(
        &mut self,
        p: &PendingPayment,
        amount: i64,
        i: u32,
        rule: Rule,
        policy: &FeePolicy,
    ) -> (Vec<Alloc>, Vec<NewLateFee>, i64) {
        let account = self.bills[i as usize].account;
        let account_no = self.account_no(account).to_string();
        let mut run = self.run(p, &account_no, account, policy, amount);
        self.settle(&mut run, &[(i, rule)], policy.order);
        (run.allocations, run.fees, run.remaining)
    }

    /// All a payment on `day` must bring to settle bill `i`: the late fee owed, the principal
    /// left, and the fee the principal accrues to that day (without changing anything).
    pub fn total_due(&self, p: &PendingPayment, i: u32, policy: &FeePolicy) -> i64 {
        let b = &self.bills[i as usize];
        let owed = self.fee(i).owed().max(0);
        let room = b.room();
        let day = if policy.collect { fee_day(p) } else { None };
        let rule = policy.rule(self.accounts[b.account as usize].class);
        let minimum = rule.minimum_minor(b.currency);
        let fee = match self.late(i, day) {
            Some(late) if room > 0 => self.price(i, room, late, rule, minimum).2,
            _ => 0,
        };
        owed + room + fee
    }

    /// Undoes a payment's money on bills exactly: a negative allocation per (bill, part) of
    /// `net` under `rule`, an `undo` row per standing charge of the payment, waivers given
    /// back where a charge they waived is gone, and the bills whose late fee other payments'
    /// money would now over-pay (the caller gives that back).
    pub fn undo(
        &mut self,
        net: &[(u32, Part, i64)],
        charges: &[ChargeRow],
        rule: Rule,
        reason: &str,
        by_payment: Option<i64>,
    ) -> Undone {
        let mut out = Undone::default();
        let mut touched: Vec<u32> = Vec::new();
        for &(i, part, amount) in net {
            if amount == 0 {
                continue;
            }
            match part {
                Part::Principal => self.give_back(i, amount),
                Part::LateFee => self.change_fee(i, 0, 0, 0, -amount),
            }
            let account = self.bills[i as usize].account;
            out.allocations.push(Alloc {
                bill_id: self.bill_id(i).to_string(),
                account_no: self.account_no(account).to_string(),
                amount: -amount,
                rule,
                part,
            });
            if !touched.contains(&i) {
                touched.push(i);
            }
        }
        for c in charges {
            let Some(i) = self.bill_by_id(&c.bill_id) else {
                continue;
            };
            let f = self.fee(i);
            let amount =
                late_fee::with_minimum(f.accrued - c.computed_minor, c.minimum_minor) - f.charged;
            self.change_fee(i, -c.computed_minor, amount, 0, 0);
            out.fees.push(NewLateFee {
                bill_id: c.bill_id.clone(),
                account_no: c.account_no.clone(),
                currency: c.currency.clone(),
                kind: "undo",
                payment_id: Some(c.payment_id),
                by_payment_id: by_payment,
                reason: reason.to_string(),
                actor: String::new(),
                due_on: Some(c.due_on.clone()),
                from_on: Some(c.from_on.clone()),
                to_on: Some(c.to_on.clone()),
                days: c.days,
                rate: c.rate.clone(),
                base_minor: c.base_minor,
                computed_minor: -c.computed_minor,
                amount_minor: amount,
                minimum_minor: c.minimum_minor,
            });
            if !touched.contains(&i) {
                touched.push(i);
            }
        }
        for i in touched {
            let f = self.fee(i);
            let mut over = -f.owed();
            if over <= 0 {
                continue;
            }
            let w = over.min(f.waived);
            if w > 0 {
                self.change_fee(i, 0, 0, -w, 0);
                let b = &self.bills[i as usize];
                out.fees.push(NewLateFee {
                    bill_id: self.bill_id(i).to_string(),
                    account_no: self.account_no(b.account).to_string(),
                    currency: b.currency.to_string(),
                    kind: "waiver_undo",
                    payment_id: None,
                    by_payment_id: by_payment,
                    reason: format!("{reason}: the charge it waived was undone"),
                    actor: String::new(),
                    due_on: None,
                    from_on: None,
                    to_on: None,
                    days: 0,
                    rate: "0".into(),
                    base_minor: 0,
                    computed_minor: 0,
                    amount_minor: w,
                    minimum_minor: 0,
                });
                over -= w;
            }
            if over > 0 {
                out.overflow.push((i, over));
            }
        }
        out
    }

    /// What is left of bill `i` after a payment: (principal, late fee owed).
    pub fn shortfall(&self, i: u32) -> (i64, i64) {
        (self.bills[i as usize].room(), self.fee(i).owed().max(0))
    }

    /// Records `amount` of bill `i`'s principal or late fee as settled without money (a
    /// shortfall a supervisor writes off).
    pub fn absorb(&mut self, i: u32, part: Part, amount: i64) {
        match part {
            Part::Principal => {
                let cur = self.bills[i as usize].currency;
                self.take(i, cur.as_str(), amount);
            }
            Part::LateFee => self.change_fee(i, 0, 0, 0, amount),
        }
    }

    /// Gives back `amount` of a bill's late fee paid by another payment (its charge was
    /// undone): the fee allocation's negative, under `rule`.
    pub fn release_fee(&mut self, i: u32, amount: i64) {
        self.change_fee(i, 0, 0, 0, -amount);
    }

    /// Whether every account and open bill is held.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether the book holds every open bill of this account.
    pub fn open_loaded(&self, account: u32) -> bool {
        self.accounts[account as usize].open_loaded
    }
}

/// The hash of a string's normalized key.
fn rehash(hasher: &DefaultHashBuilder, s: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = hasher.build_hasher();
    for c in key_chars(s) {
        h.write_u32(c as u32);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::normalize_key;

    fn row(id: &str, account: &str, due: &str, amount: i64, status: &str) -> BillRow {
        BillRow {
            bill_id: id.into(),
            bill_key: normalize_key(id),
            account_no: account.into(),
            period: String::new(),
            amount_minor: amount,
            currency: "CNY".into(),
            issued_on: String::new(),
            due_on: due.into(),
            paid_minor: 0,
            status: status.into(),
            fee: Default::default(),
        }
    }

    #[test]
    fn an_accounts_bills_stay_oldest_due_first_whatever_the_order_they_arrive_in() {
        let mut book = Book::lazy();
        for (id, due) in [
            ("B-3", "2026-03-01"),
            ("B-1", "2026-01-01"),
            ("B-2b", "2026-02-01"),
            ("B-2a", "2026-02-01"),
        ] {
            book.add(&row(id, "31000001", due, 100, "open"));
        }
        let a = book.account_by_key("31000001").unwrap();
        let ids: Vec<&str> = book.account_bills(a).map(|i| book.bill_id(i)).collect();
        assert_eq!(ids, ["B-1", "B-2a", "B-2b", "B-3"]);
        assert_eq!(book.bill_by_id("b 3"), book.bill_by_key("B3"));
    }

    #[test]
    fn a_bill_already_held_is_not_replaced_by_an_older_copy() {
        let mut book = Book::lazy();
        let i = book.add(&row("B1", "31000001", "2026-01-01", 100, "open"));
        book.take(i, "CNY", 60);
        book.add(&row("B1", "31000001", "2026-01-01", 100, "open"));
        assert_eq!(book.bill(i).paid, 60);
        let d = book.drain_deltas();
        assert_eq!((d.len(), d[0].bill_id.as_str(), d[0].paid), (1, "B1", 60));
        assert!(book.drain_deltas().is_empty());
    }

    #[test]
    fn paying_a_bill_in_full_closes_it_and_a_reversal_reopens_it() {
        let mut book = Book::lazy();
        let i = book.add(&row("B1", "31000001", "2026-01-01", 100, "open"));
        assert_eq!(
            book.take(i, "EUR", 100),
            0,
            "another currency takes nothing"
        );
        assert_eq!(book.take(i, "CNY", 250), 100);
        assert_eq!(book.bill(i).status, BillStatus::Paid);
        assert_eq!(book.bill(i).room(), 0);
        book.give_back(i, 40);
        assert_eq!(book.bill(i).status, BillStatus::Open);
        assert_eq!(book.bill(i).room(), 40);
        let d = book.drain_deltas();
        assert_eq!((d.len(), d[0].bill_id.as_str(), d[0].paid), (1, "B1", 60));
    }

    #[test]
    fn lookups_by_key_ignore_case_spaces_and_dashes_like_the_stored_keys() {
        let mut book = Book::lazy();
        let i = book.add(&row(
            "inv-2026 0001",
            "3100-0000 07",
            "2026-01-01",
            100,
            "open",
        ));
        assert_eq!(book.bill_by_key("INV20260001"), Some(i));
        assert_eq!(book.bill_by_key(&normalize_key("Inv 2026-0001")), Some(i));
        assert_eq!(book.bill_by_key("INV20260002"), None);
        let a = book.account_by_key("3100000007").unwrap();
        assert_eq!(book.account_no(a), "3100-0000 07");
        assert_eq!(book.bill(i).account, a);
    }

    fn payment(id: i64, amount: i64, day: &str) -> PendingPayment {
        PendingPayment {
            id,
            bank_id: "T".into(),
            amount_minor: amount,
            currency: "CNY".into(),
            direction: "credit".into(),
            reversal: false,
            txn_key: None,
            bank_ref: None,
            entry_ref: None,
            end_to_end_id: None,
            tx_id: None,
            reference: None,
            remittance: None,
            additional_info: None,
            booking_date: Some(day.into()),
            value_date: Some(day.into()),
        }
    }

    /// A residential customer's bill of 100.00 due 2026-11-02 (1 per mille a day, 1.00 min).
    fn residential_book() -> (Book, u32) {
        let mut book = Book::lazy();
        let i = book.add(&row("B1", "31000001", "2026-11-02", 10000, "open"));
        let a = book.bill(i).account;
        book.accounts[a as usize].class = class_index("residential");
        (book, i)
    }

    fn charges(d: &Decision) -> Vec<ChargeRow> {
        d.fees.iter().filter_map(super::super::charge_of).collect()
    }

    #[test]
    fn money_on_time_pays_no_fee_and_a_day_late_pays_the_minimum_first() {
        let policy = FeePolicy::default();
        let (mut book, i) = residential_book();
        let a = book.bill(i).account;
        let d = book.allocate(&payment(1, 10000, "2026-11-02"), a, &[i], &policy);
        assert!(d.fees.is_empty(), "paid on its due date: on time");
        assert_eq!((d.status, d.credit), ("applied", 0));

        let (mut book, i) = residential_book();
        // one day late: 0.10 accrued, charged as the 1.00 minimum; 101.00 settles all
        let d = book.allocate(&payment(1, 10100, "2026-11-03"), a, &[i], &policy);
        assert_eq!((d.status, d.credit), ("applied", 0));
        let got: Vec<(Rule, Part, i64)> = d
            .allocations
            .iter()
            .map(|x| (x.rule, x.part, x.amount))
            .collect();
        assert_eq!(
            got,
            vec![
                (Rule::LateFee, Part::LateFee, 100),
                (Rule::BillReference, Part::Principal, 10000)
            ]
        );
        assert_eq!(
            (
                d.fees[0].days,
                d.fees[0].computed_minor,
                d.fees[0].amount_minor
            ),
            (1, 10, 100)
        );
        assert_eq!(
            book.fee(i),
            FeeState {
                accrued: 10,
                charged: 100,
                waived: 0,
                paid: 100
            }
        );
    }

    #[test]
    fn fee_first_pays_the_most_principal_whose_fee_the_money_covers() {
        let policy = FeePolicy::default();
        let (mut book, i) = residential_book();
        let a = book.bill(i).account;
        // 30 days late: 3 per cent; of 50.00, x + round(x * 0.03) <= 50.00 gives x = 48.54
        let d = book.allocate(&payment(1, 5000, "2026-12-02"), a, &[i], &policy);
        let principal: i64 = d
            .allocations
            .iter()
            .filter(|x| x.part == Part::Principal)
            .map(|x| x.amount)
            .sum();
        let fee: i64 = d.fees.iter().map(|f| f.amount_minor).sum();
        assert_eq!((principal, fee, d.credit), (4854, 146, 0));
        assert_eq!(
            principal + 1 + late_fee::accrual(principal + 1, "0.001".parse().unwrap(), 30),
            5001
        );
        // over the bill and its fee: the rest is credit
        let (mut book, i) = residential_book();
        let d = book.allocate(&payment(1, 20000, "2026-12-02"), a, &[i], &policy);
        assert_eq!(
            (d.status, d.credit),
            ("partially_applied", 20000 - 10000 - 300)
        );
    }

    #[test]
    fn principal_first_leaves_the_fee_owed_and_the_next_payment_pays_it() {
        let policy = FeePolicy::new(
            &crate::config::dunning::DunningConfig::default(),
            AllocationOrder::PrincipalFirst,
        );
        let (mut book, i) = residential_book();
        let a = book.bill(i).account;
        let d = book.allocate(&payment(1, 10000, "2026-11-12"), a, &[i], &policy);
        assert_eq!((d.status, d.credit), ("applied", 0));
        assert_eq!(book.bill(i).status, BillStatus::Paid);
        assert_eq!(book.fee(i).owed(), 100);
        assert!(book.owes(i), "a paid bill with its fee owed still owes");
        let d = book.allocate(&payment(2, 60, "2026-11-20"), a, &[], &policy);
        assert_eq!(
            (d.allocations[0].rule, d.allocations[0].amount, d.status),
            (Rule::LateFee, 60, "applied")
        );
        assert!(d.fees.is_empty(), "no principal paid, no new fee");
        assert_eq!(book.fee(i).owed(), 40);
    }

    #[test]
    fn undoing_a_charge_recomputes_the_minimum_over_what_stands() {
        let policy = FeePolicy::default();
        let (mut book, i) = residential_book();
        let a = book.bill(i).account;
        // two partial payments ten days late: 0.30 accrued (charged as 1.00), then 0.40 more
        // (the total 0.70 stays under the minimum: nothing more charged)
        let d1 = book.allocate(&payment(1, 3100, "2026-11-12"), a, &[i], &policy);
        let d2 = book.allocate(&payment(2, 4000, "2026-11-12"), a, &[i], &policy);
        assert_eq!(book.fee(i).charged, 100);
        assert_eq!(
            (d2.fees[0].computed_minor, d2.fees[0].amount_minor),
            (40, 0),
            "the bill's total is still under the minimum"
        );
        // undo the first payment: its fee money goes back with it, and what stands (0.40) is
        // lifted to the minimum again, so the undo row takes back 0.00 of the charged amount
        // and the bill owes 1.00
        let net: Vec<(u32, Part, i64)> = d1
            .allocations
            .iter()
            .map(|x| (i, x.part, x.amount))
            .collect();
        let u = book.undo(&net, &charges(&d1), Rule::Reversal, "reversal", Some(9));
        assert_eq!(u.fees.len(), 1);
        assert_eq!((u.fees[0].computed_minor, u.fees[0].amount_minor), (-30, 0));
        assert_eq!(
            book.fee(i),
            FeeState {
                accrued: 40,
                charged: 100,
                waived: 0,
                paid: 0
            }
        );
        assert!(u.overflow.is_empty());
        // undo the second too: nothing accrued, nothing charged
        let net: Vec<(u32, Part, i64)> = d2
            .allocations
            .iter()
            .map(|x| (i, x.part, x.amount))
            .collect();
        let u = book.undo(&net, &charges(&d2), Rule::Reversal, "reversal", Some(10));
        assert_eq!(
            (u.fees[0].computed_minor, u.fees[0].amount_minor),
            (-40, -100)
        );
        assert_eq!(book.fee(i), FeeState::default());
        assert_eq!(book.bill(i).paid, 0);
    }

    #[test]
    fn a_waived_fee_is_not_charged_and_an_undone_charge_gives_its_waiver_back() {
        let policy = FeePolicy::new(
            &crate::config::dunning::DunningConfig::default(),
            AllocationOrder::PrincipalFirst,
        );
        let (mut book, i) = residential_book();
        let a = book.bill(i).account;
        let d = book.allocate(&payment(1, 5000, "2026-11-12"), a, &[i], &policy);
        assert_eq!(book.fee(i).owed(), 100);
        assert_eq!(book.waive(i), 100);
        assert_eq!(book.fee(i).owed(), 0);
        let d2 = book.allocate(&payment(2, 5000, "2026-11-12"), a, &[i], &policy);
        assert!(d2.fees.is_empty(), "waived: no more fee");
        assert_eq!(book.bill(i).status, BillStatus::Paid);
        let net: Vec<(u32, Part, i64)> = d
            .allocations
            .iter()
            .map(|x| (i, x.part, x.amount))
            .collect();
        let u = book.undo(&net, &charges(&d), Rule::Reopen, "reopen", None);
        let kinds: Vec<(&str, i64)> = u.fees.iter().map(|f| (f.kind, f.amount_minor)).collect();
        assert_eq!(kinds, vec![("undo", -100), ("waiver_undo", 100)]);
        assert_eq!(book.fee(i), FeeState::default());
    }

    #[test]
    fn due_dates_order_as_numbers() {
        assert_eq!(due_number("2026-11-30"), 20261130);
        assert!(due_number("2026-02-01") < due_number("2026-10-01"));
    }
}
