//! The core's allocation rules for one payment at a time, outside a matching run: a person's
//! resolution, a partner bank's posting, a reversal or reopening, and money moved off a bill
//! the billing system cancelled or lowered. Each reads what it needs into a lazy [`Book`] and
//! decides with the same code as matching ([`Book::allocate`], [`Book::undo`]); the caller
//! holds the writer lock and writes the result in its transaction.

use super::book::{Book, Undone};
use super::{Alloc, FeePolicy, Part, Rule};
use crate::store::matching::{
    self as q, BillDelta, NewAllocation, NewLateFee, PaymentShift, PendingPayment,
};
use crate::store::StoreError;
use sqlx::AnyConnection;

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
    /// the late fees charged on the principal paid late
    pub fees: Vec<NewLateFee>,
    pub credit_minor: i64,
    pub bill_deltas: Vec<BillDelta>,
}

fn news(allocations: &[Alloc], payment_id: i64, currency: &str) -> Vec<NewAllocation> {
    allocations
        .iter()
        .map(|a| a.to_new(payment_id, currency))
        .collect()
}

/// Allocates `p` to `target` with the same rules automatic matching uses. `Ok(Err(why))`
/// when the target does not exist or is in another currency.
pub async fn allocate_to(
    conn: &mut AnyConnection,
    policy: &FeePolicy,
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
    let d = book.allocate(p, account, &named, policy);
    Ok(Ok(ManualAllocation {
        status: d.status,
        account_no: d.account_no.unwrap_or_default(),
        allocations: news(&d.allocations, p.id, &p.currency),
        fees: d.fees,
        credit_minor: d.credit,
        bill_deltas: book.drain_deltas(),
    }))
}

/// A book holding one bill (by id or key) and its account's open bills: (book, bill).
async fn book_with_bill(
    conn: &mut AnyConnection,
    bill_id: &str,
) -> Result<Option<(Book, u32)>, StoreError> {
    let key = crate::domain::normalize_key(bill_id);
    let mut book = Book::lazy();
    book.prepare(conn, std::slice::from_ref(&key)).await?;
    let Some(i) = book.bill_by_key(&key) else {
        return Ok(None);
    };
    let account = book.bill(i).account;
    book.load_open_bills(conn, &[account]).await?;
    Ok(Some((book, i)))
}

/// A person's split: each part's amount to its bill alone (late fee and principal in the
/// policy's order, principal under `manual_split`). `Ok(Err(why))` when a bill does not
/// exist, is in another currency, appears twice, or a part is more than the bill's total due
/// (principal left, late fee owed and the fee the principal accrues to the payment's day).
pub async fn allocate_parts(
    conn: &mut AnyConnection,
    policy: &FeePolicy,
    p: &PendingPayment,
    parts: &[(String, i64)],
) -> Result<Result<ManualAllocation, String>, StoreError> {
    let keys: Vec<String> = parts
        .iter()
        .map(|(b, _)| crate::domain::normalize_key(b))
        .collect();
    let mut book = Book::lazy();
    book.prepare(conn, &keys).await?;
    let mut bills = Vec::new();
    for ((id, _), key) in parts.iter().zip(&keys) {
        let Some(i) = book.bill_by_key(key) else {
            return Ok(Err(format!("no bill {id}")));
        };
        if bills.contains(&i) {
            return Ok(Err(format!("bill {} appears twice", book.bill_id(i))));
        }
        if book.bill(i).currency.as_str() != p.currency {
            return Ok(Err(format!(
                "bill {} is in {}, the payment in {}",
                book.bill_id(i),
                book.bill(i).currency,
                p.currency
            )));
        }
        bills.push(i);
    }
    let accounts: Vec<u32> = bills.iter().map(|i| book.bill(*i).account).collect();
    book.load_open_bills(conn, &accounts).await?;
    let mut allocations = Vec::new();
    let mut fees = Vec::new();
    for (&i, (_, amount)) in bills.iter().zip(parts) {
        let due = book.total_due(p, i, policy);
        if *amount <= 0 || *amount > due {
            return Ok(Err(format!(
                "bill {}: {} is not between 0 and its total due {} (principal left, late fee owed and accrued)",
                book.bill_id(i),
                crate::domain::money_text(*amount, &p.currency),
                crate::domain::money_text(due, &p.currency)
            )));
        }
        let (a, f, _) = book.allocate_to_bill(p, *amount, i, Rule::ManualSplit, policy);
        allocations.extend(a);
        fees.extend(f);
    }
    let applied: i64 = allocations.iter().map(|a| a.amount).sum();
    let account_no = allocations
        .first()
        .map(|a| a.account_no.clone())
        .unwrap_or_default();
    Ok(Ok(ManualAllocation {
        status: if applied == p.amount_minor {
            "applied"
        } else {
            "partially_applied"
        },
        account_no,
        allocations: news(&allocations, p.id, &p.currency),
        fees,
        credit_minor: p.amount_minor - applied,
        bill_deltas: book.drain_deltas(),
    }))
}

/// What a payment on its day must bring to settle a bill: (bill id, account, total due).
/// `None` when there is no such bill.
pub async fn bill_total_due(
    conn: &mut AnyConnection,
    policy: &FeePolicy,
    p: &PendingPayment,
    bill_id: &str,
) -> Result<Option<(String, String, String, i64)>, StoreError> {
    let Some((book, i)) = book_with_bill(conn, bill_id).await? else {
        return Ok(None);
    };
    let b = book.bill(i);
    Ok(Some((
        book.bill_id(i).to_string(),
        book.account_no(b.account).to_string(),
        b.currency.to_string(),
        book.total_due(p, i, policy),
    )))
}

/// A bill settled in full by a payment, the difference written off.
#[derive(Debug, Clone)]
pub struct Settled {
    pub account_no: String,
    pub allocations: Vec<NewAllocation>,
    pub fees: Vec<NewLateFee>,
    pub bill_deltas: Vec<BillDelta>,
    /// What the payment applied, write-off rows included.
    pub applied_minor: i64,
    /// Signed: a surplus kept (positive), a shortfall absorbed (negative, its rows under
    /// `write_off`).
    pub written_off_minor: i64,
}

/// Settles a bill in full with a payment (a supervisor's write-off): the payment goes to the
/// bill by the policy's order; a surplus is kept, a shortfall of principal and late fee is
/// absorbed under rule `write_off`.
pub async fn settle_bill(
    conn: &mut AnyConnection,
    policy: &FeePolicy,
    p: &PendingPayment,
    bill_id: &str,
) -> Result<Option<Settled>, StoreError> {
    let Some((mut book, i)) = book_with_bill(conn, bill_id).await? else {
        return Ok(None);
    };
    let due = book.total_due(p, i, policy);
    let (mut allocations, fees, _) =
        book.allocate_to_bill(p, p.amount_minor.min(due), i, Rule::Manual, policy);
    let (principal, fee) = book.shortfall(i);
    let account_no = book.account_no(book.bill(i).account).to_string();
    for (amount, part) in [(principal, Part::Principal), (fee, Part::LateFee)] {
        if amount > 0 {
            book.absorb(i, part, amount);
            allocations.push(Alloc {
                bill_id: book.bill_id(i).to_string(),
                account_no: account_no.clone(),
                amount,
                rule: Rule::WriteOff,
                part,
            });
        }
    }
    let applied: i64 = allocations.iter().map(|a| a.amount).sum();
    Ok(Some(Settled {
        account_no,
        allocations: news(&allocations, p.id, &p.currency),
        fees,
        bill_deltas: book.drain_deltas(),
        applied_minor: applied,
        written_off_minor: p.amount_minor - applied,
    }))
}

/// What to do when undoing a payment's late-fee charges leaves another payment's fee money on
/// a bill with nothing to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Give it back to that payment, as its customer's credit (a bank reversal cannot wait).
    ToCredit,
    /// Refuse the undo (a person's reopening: the money moved on since).
    Refuse,
}

/// The exact undo of a payment's money on bills.
#[derive(Debug, Clone, Default)]
pub struct Undo {
    /// The negative allocations, and those of other payments' released late-fee money.
    pub allocations: Vec<NewAllocation>,
    pub fees: Vec<NewLateFee>,
    pub bill_deltas: Vec<BillDelta>,
    /// Other payments whose late-fee money went back to their customers' credit:
    /// (account, payment, amount, currency, kind) credit rows and the payments' shifts.
    pub credits: Vec<(String, i64, i64, String, &'static str)>,
    pub shifts: Vec<PaymentShift>,
    /// What the undone payment had applied (negative of it).
    pub applied_minor: i64,
}

/// Undoes payment `payment_id`'s money on bills: negative allocations per bill and part under
/// `rule`, written for `as_payment` (the reversal's own line, or the payment itself), its
/// standing late-fee charges undone (`reason`), waivers given back where what they waived is
/// gone. `Ok(Err(why))` when another payment's late-fee money would have to move and
/// `overflow` refuses it.
pub async fn undo_payment(
    conn: &mut AnyConnection,
    payment_id: i64,
    as_payment: i64,
    rule: Rule,
    reason: &str,
    overflow: Overflow,
) -> Result<Result<Undo, String>, StoreError> {
    let net = q::net_allocations(conn, payment_id).await?;
    let charges = q::live_charges(conn, payment_id).await?;
    let mut book = Book::lazy();
    let mut ids: Vec<String> = net.iter().map(|n| n.bill_id.clone()).collect();
    ids.extend(charges.iter().map(|c| c.bill_id.clone()));
    book.ensure_bills(conn, &ids).await?;
    let mut undo_net = Vec::new();
    let mut currency = String::new();
    for n in &net {
        if n.amount_minor == 0 {
            continue;
        }
        let Some(i) = book.bill_by_id(&n.bill_id) else {
            return Err(StoreError::Inconsistent(format!(
                "payment {payment_id} was allocated to bill {}, which does not exist",
                n.bill_id
            )));
        };
        currency = n.currency.clone();
        undo_net.push((i, Part::parse(&n.part), n.amount_minor));
    }
    let by = (as_payment != payment_id).then_some(as_payment);
    let Undone {
        allocations,
        fees,
        overflow: over,
    } = book.undo(&undo_net, &charges, rule, reason, by);
    let mut out = Undo {
        applied_minor: allocations.iter().map(|a| a.amount).sum(),
        allocations: news(&allocations, as_payment, &currency),
        fees,
        ..Undo::default()
    };
    if !over.is_empty() {
        if overflow == Overflow::Refuse {
            let (i, amount) = over[0];
            return Ok(Err(format!(
                "a late fee this payment was charged on bill {} was paid since by another payment ({}): the money moved on",
                book.bill_id(i),
                crate::domain::money_text(amount, &currency)
            )));
        }
        let bills: Vec<String> = over
            .iter()
            .map(|(i, _)| book.bill_id(*i).to_string())
            .collect();
        let on_bills = q::allocations_on_bills(conn, &bills).await?;
        for (i, mut amount) in over {
            let bill_id = book.bill_id(i).to_string();
            let account = book.account_no(book.bill(i).account).to_string();
            let cur = book.bill(i).currency.to_string();
            for (b, other, part, _, net) in on_bills.iter().rev() {
                if amount == 0 {
                    break;
                }
                if *b != bill_id || *other == payment_id || part != "late_fee" || *net <= 0 {
                    continue;
                }
                let t = (*net).min(amount);
                out.allocations.push(NewAllocation {
                    payment_id: *other,
                    bill_id: bill_id.clone(),
                    account_no: account.clone(),
                    amount_minor: -t,
                    currency: cur.clone(),
                    rule: Rule::LateFeeReleased.as_str(),
                    part: Part::LateFee.as_str(),
                });
                out.credits
                    .push((account.clone(), *other, t, cur.clone(), "late_fee_released"));
                out.shifts.push(PaymentShift {
                    payment_id: *other,
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
        }
    }
    out.bill_deltas = book.drain_deltas();
    Ok(Ok(out))
}

/// A bill the billing system changed after money reached it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillChange {
    /// Cancelled: all its money moves.
    Cancelled,
    /// Its amount lowered below what was paid on it: the difference moves.
    Lowered,
}

/// One payment's money moved off a changed bill: undone there exactly and allocated again by
/// the core's rules (a lowered bill first, then the account's other bills oldest first), the
/// rest to the customer's credit.
#[derive(Debug, Clone)]
pub struct Moved {
    pub payment_id: i64,
    pub account_no: String,
    pub currency: String,
    /// What came off the changed bill (principal and late fee; the customer's money only,
    /// not a written-off shortfall).
    pub released_minor: i64,
    /// Of it, what went back to the changed bill (a lowered one keeps what its new amount
    /// takes), to the account's other bills, and to credit.
    pub back_minor: i64,
    pub to_bills_minor: i64,
    pub credit_minor: i64,
    pub allocations: Vec<NewAllocation>,
    pub fees: Vec<NewLateFee>,
    pub bill_deltas: Vec<BillDelta>,
    pub shift: PaymentShift,
    /// Other payments' late-fee money released (a charge they paid was undone).
    pub credits: Vec<(String, i64, i64, String, &'static str)>,
    pub shifts: Vec<PaymentShift>,
}

impl Moved {
    /// The bills touched, in id order.
    pub fn bills(&self) -> Vec<String> {
        let mut b: Vec<String> = self.allocations.iter().map(|a| a.bill_id.clone()).collect();
        b.extend(self.fees.iter().map(|f| f.bill_id.clone()));
        b.sort();
        b.dedup();
        b
    }

    /// Writes it (allocations, late fees, bills, the payments' buckets, credit).
    pub async fn write(&self, conn: &mut AnyConnection, at: &str) -> Result<(), StoreError> {
        crate::store::workbench::insert_allocations(conn, &self.allocations, at).await?;
        q::insert_late_fees(conn, &self.fees, at).await?;
        q::apply_bill_deltas(conn, &self.bill_deltas, at).await?;
        let mut shifts = vec![self.shift.clone()];
        shifts.extend(self.shifts.iter().cloned());
        q::shift_payments(conn, &shifts).await?;
        if self.credit_minor != 0 {
            crate::store::workbench::insert_credit(
                conn,
                &self.account_no,
                self.payment_id,
                self.credit_minor,
                &self.currency,
                "bill_changed",
                at,
            )
            .await?;
        }
        for (account, pid, amount, cur, kind) in &self.credits {
            crate::store::workbench::insert_credit(conn, account, *pid, *amount, cur, kind, at)
                .await?;
        }
        Ok(())
    }
}

/// Moves money off bills the billing system changed, one payment at a time, inside the
/// import's transaction (see [`Moved`]).
pub struct Mover {
    policy: FeePolicy,
}

impl Mover {
    pub fn new(policy: FeePolicy) -> Mover {
        Mover { policy }
    }

    /// The payments with money on `bill_id` that must move, in payment order: every one for a
    /// cancelled bill; for a lowered one the latest first until their principal covers what
    /// was paid above the new amount.
    pub async fn payments_to_move(
        &self,
        conn: &mut AnyConnection,
        bill_id: &str,
        change: &BillChange,
        excess_minor: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = q::allocations_on_bills(conn, &[bill_id.to_string()]).await?;
        let mut per: Vec<(i64, i64)> = Vec::new();
        for (_, pid, part, _, net) in &rows {
            let principal = if part == "principal" { *net } else { 0 };
            match per.iter_mut().find(|x| x.0 == *pid) {
                Some(x) => x.1 += principal,
                None => per.push((*pid, principal)),
            }
        }
        let mut out: Vec<i64> = match change {
            BillChange::Cancelled => per.iter().map(|x| x.0).collect(),
            BillChange::Lowered => {
                let mut left = excess_minor;
                let mut chosen = Vec::new();
                for (pid, principal) in per.iter().rev() {
                    if left <= 0 {
                        break;
                    }
                    if *principal > 0 {
                        chosen.push(*pid);
                        left -= principal;
                    }
                }
                chosen
            }
        };
        out.sort_unstable();
        Ok(out)
    }

    /// Moves payment `p`'s money off `bill_id` (see [`Moved`]). Nothing is written.
    pub async fn move_off(
        &mut self,
        conn: &mut AnyConnection,
        p: &PendingPayment,
        bill_id: &str,
        change: &BillChange,
    ) -> Result<Moved, StoreError> {
        let (rule, reason) = match change {
            BillChange::Cancelled => (Rule::BillCancelled, "bill_cancelled"),
            BillChange::Lowered => (Rule::BillLowered, "bill_lowered"),
        };
        let net = q::net_allocations(conn, p.id).await?;
        let charges: Vec<_> = q::live_charges(conn, p.id)
            .await?
            .into_iter()
            .filter(|c| c.bill_id == bill_id)
            .collect();
        let on_bill = q::allocations_on_bills(conn, &[bill_id.to_string()]).await?;
        let write_off: i64 = on_bill
            .iter()
            .filter(|r| r.1 == p.id && r.3)
            .map(|r| r.4)
            .sum();
        let mut book = Book::lazy();
        book.ensure_bills(conn, &[bill_id.to_string()]).await?;
        let Some(i) = book.bill_by_id(bill_id) else {
            return Err(StoreError::Inconsistent(format!("no bill {bill_id}")));
        };
        let account = book.bill(i).account;
        book.load_open_bills(conn, &[account]).await?;
        let undo_net: Vec<(u32, Part, i64)> = net
            .iter()
            .filter(|n| n.bill_id == bill_id && n.amount_minor != 0)
            .map(|n| (i, Part::parse(&n.part), n.amount_minor))
            .collect();
        let undone = book.undo(&undo_net, &charges, rule, reason, None);
        let taken: i64 = -undone.allocations.iter().map(|a| a.amount).sum::<i64>();
        // a shortfall a supervisor wrote off is the utility's, not the customer's money
        let released = taken - write_off;
        let mut news_all: Vec<NewAllocation> = news(&undone.allocations, p.id, &p.currency);
        let mut fees = undone.fees;
        let mut credits = Vec::new();
        let mut shifts = Vec::new();
        for (bi, mut amount) in undone.overflow {
            let b = book.bill_id(bi).to_string();
            let acct = book.account_no(book.bill(bi).account).to_string();
            let cur = book.bill(bi).currency.to_string();
            for (ob, other, part, _, net) in on_bill.iter().rev() {
                if amount == 0 {
                    break;
                }
                if *ob != b || *other == p.id || part != "late_fee" || *net <= 0 {
                    continue;
                }
                let t = (*net).min(amount);
                news_all.push(NewAllocation {
                    payment_id: *other,
                    bill_id: b.clone(),
                    account_no: acct.clone(),
                    amount_minor: -t,
                    currency: cur.clone(),
                    rule: Rule::LateFeeReleased.as_str(),
                    part: Part::LateFee.as_str(),
                });
                credits.push((acct.clone(), *other, t, cur.clone(), "late_fee_released"));
                shifts.push(PaymentShift {
                    payment_id: *other,
                    applied_minor: -t,
                    credit_minor: t,
                    written_off_minor: 0,
                });
                book.release_fee(bi, t);
                amount -= t;
            }
            if amount != 0 {
                return Err(StoreError::Inconsistent(format!(
                    "bill {b}: late fee over-paid by {amount} with no payment to give it back to"
                )));
            }
        }
        let named = match change {
            BillChange::Lowered => vec![i],
            BillChange::Cancelled => vec![],
        };
        let d = book.allocate_amount(p, released, account, &named, &self.policy);
        let reallocated: i64 = d.allocations.iter().map(|a| a.amount).sum();
        let back: i64 = d
            .allocations
            .iter()
            .filter(|a| a.bill_id == bill_id)
            .map(|a| a.amount)
            .sum();
        news_all.extend(news(&d.allocations, p.id, &p.currency));
        fees.extend(d.fees);
        Ok(Moved {
            payment_id: p.id,
            account_no: book.account_no(account).to_string(),
            currency: p.currency.clone(),
            released_minor: released,
            back_minor: back,
            to_bills_minor: reallocated - back,
            credit_minor: d.credit,
            allocations: news_all,
            fees,
            bill_deltas: book.drain_deltas(),
            shift: PaymentShift {
                payment_id: p.id,
                applied_minor: reallocated - taken,
                credit_minor: d.credit,
                written_off_minor: write_off,
            },
            credits,
            shifts,
        })
    }
}

/// A bill's late fee waived: what was owed of it written off (a `waiver` row), no more
/// charged from now on.
#[derive(Debug, Clone)]
pub struct WaivedFee {
    pub bill_id: String,
    pub written_off_minor: i64,
    pub currency: String,
    pub fees: Vec<NewLateFee>,
    pub bill_deltas: Vec<BillDelta>,
}

/// Waives bill `bill_id`'s late fee for `actor` with `reason` (nothing is written). `None`
/// when there is no such bill.
pub async fn waive_fee(
    conn: &mut AnyConnection,
    bill_id: &str,
    actor: &str,
    reason: &str,
) -> Result<Option<WaivedFee>, StoreError> {
    let key = crate::domain::normalize_key(bill_id);
    let mut book = Book::lazy();
    book.prepare(conn, std::slice::from_ref(&key)).await?;
    let Some(i) = book.bill_by_key(&key) else {
        return Ok(None);
    };
    let owed = book.waive(i);
    let b = book.bill(i);
    let (id, account, currency) = (
        book.bill_id(i).to_string(),
        book.account_no(b.account).to_string(),
        b.currency.to_string(),
    );
    let fees = if owed > 0 {
        vec![NewLateFee {
            bill_id: id.clone(),
            account_no: account,
            currency: currency.clone(),
            kind: "waiver",
            payment_id: None,
            by_payment_id: None,
            reason: reason.to_string(),
            actor: actor.to_string(),
            due_on: None,
            from_on: None,
            to_on: None,
            days: 0,
            rate: "0".into(),
            base_minor: 0,
            computed_minor: 0,
            amount_minor: -owed,
            minimum_minor: 0,
        }]
    } else {
        vec![]
    };
    Ok(Some(WaivedFee {
        bill_id: id,
        written_off_minor: owed,
        currency,
        fees,
        bill_deltas: book.drain_deltas(),
    }))
}
