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

use super::{Decision, Rule};
use crate::domain::Currency;
use crate::store::bills::BillRow;
use crate::store::matching::PendingPayment;
use crate::store::{self, StoreError};
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
}

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
    /// Change of the paid amount per bill since the last [`Book::drain_deltas`].
    deltas: HashMap<u32, i64>,
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
            for (no, _) in &page {
                let i = book.add_account(no);
                book.accounts[i as usize].open_loaded = true;
            }
        }
        let mut after = String::new();
        loop {
            let page = store::bills::page(conn, &after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.bill_id.clone();
            for b in &page {
                if b.status == "open" {
                    book.add(b);
                } else {
                    let h = book.key_hash(&b.bill_id);
                    book.closed.insert(h);
                }
            }
        }
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
        });
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
        });
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
        Ok(())
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
        Ok(())
    }

    /// Takes up to `remaining` for an open bill in this currency; returns what it took.
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
            *self.deltas.entry(i).or_default() += take;
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
        *self.deltas.entry(i).or_default() -= amount;
    }

    /// The changes of paid amounts since the last call, by bill id, in bill id order.
    pub fn drain_deltas(&mut self) -> Vec<(String, i64)> {
        let deltas = std::mem::take(&mut self.deltas);
        let mut out: Vec<(String, i64)> = deltas
            .into_iter()
            .filter(|(_, d)| *d != 0)
            .map(|(i, d)| (self.bill_id(i).to_string(), d))
            .collect();
        out.sort();
        out
    }

    /// Named bills first, then the account's other open bills oldest first, then credit.
    pub fn allocate(&mut self, p: &PendingPayment, account: u32, named: &[u32]) -> Decision {
        let account_no = self.account_no(account).to_string();
        let mut remaining = p.amount_minor;
        let mut allocations = Vec::new();
        let mut named_open = false;
        for &i in named {
            named_open |= self.bills[i as usize].status == BillStatus::Open;
            let t = self.take(i, &p.currency, remaining);
            if t > 0 {
                allocations.push((
                    self.bill_id(i).to_string(),
                    account_no.clone(),
                    t,
                    Rule::BillReference,
                ));
                remaining -= t;
            }
        }
        let rest_rule = if named.is_empty() {
            Rule::AccountOldestFirst
        } else if named_open || !allocations.is_empty() {
            Rule::BillReferenceRemainder
        } else {
            Rule::ClosedBillRedirect
        };
        let others: Vec<u32> = self
            .account_bills(account)
            .filter(|i| !named.contains(i))
            .collect();
        for i in others {
            if remaining == 0 {
                break;
            }
            let t = self.take(i, &p.currency, remaining);
            if t > 0 {
                allocations.push((
                    self.bill_id(i).to_string(),
                    account_no.clone(),
                    t,
                    rest_rule,
                ));
                remaining -= t;
            }
        }
        let status = match (allocations.is_empty(), remaining) {
            (false, 0) => "applied",
            (false, _) => "partially_applied",
            (true, _) => "credit",
        };
        Decision {
            status,
            account_no: Some(account_no),
            allocations,
            credit: remaining,
            exception: None,
            reverses: None,
            confirms: None,
        }
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
        assert_eq!(book.drain_deltas(), vec![("B1".to_string(), 60)]);
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
        assert_eq!(book.drain_deltas(), vec![("B1".to_string(), 60)]);
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

    #[test]
    fn due_dates_order_as_numbers() {
        assert_eq!(due_number("2026-11-30"), 20261130);
        assert!(due_number("2026-02-01") < due_number("2026-10-01"));
    }
}
