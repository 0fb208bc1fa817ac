//! The normalized statement: what every bank file format is turned into.
//!
//! A file holds one or more statements (camt `Stmt`/`Ntfctn`/`Rpt`, an MT940 `:20:` block);
//! a statement holds entries. An entry here is one *transaction*: a camt `Ntry` with several
//! `TxDtls` (a batch) becomes several entries sharing `entry_seq`, because each is a payment.

use super::{Currency, Money};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Credit,
    Debit,
}

impl Direction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::Credit => "credit",
            Direction::Debit => "debit",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "credit" => Some(Direction::Credit),
            "debit" => Some(Direction::Debit),
            _ => None,
        }
    }
}

/// Booking status of an entry. Only booked entries are payments; pending and informational
/// entries are reported by `parse` but not ingested as money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    Booked,
    Pending,
    Info,
}

/// Totals a statement declares about itself (camt `TxsSummry`, batch totals, MT940 balances).
/// `None` where the file does not declare it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatementTotals {
    /// Number of entries (camt `Ntry`, not transactions).
    pub entry_count: Option<u64>,
    /// Sum of the absolute entry amounts.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub sum: Option<Decimal>,
    /// Credits minus debits.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub net: Option<Decimal>,
    pub credit_count: Option<u64>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub credit_sum: Option<Decimal>,
    pub debit_count: Option<u64>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub debit_sum: Option<Decimal>,
}

/// One statement of a bank file, with its header and (when collected) its entries.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Statement {
    /// Statement id (camt `Stmt/Id`, MT940 `:20:`).
    pub statement_id: Option<String>,
    /// The account the statement is about (IBAN or other id).
    pub account: String,
    pub currency: Option<Currency>,
    pub created_at: Option<String>,
    /// Opening and closing booked balances, signed (debit balance negative).
    #[serde(with = "rust_decimal::serde::str_option")]
    pub opening_balance: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub closing_balance: Option<Decimal>,
    /// What the statement declares about itself.
    pub declared: StatementTotals,
    /// Every balance the statement states, in file order (the opening and closing balances
    /// above are taken from these).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub balances: Vec<StatedBalance>,
    /// The statement's number and page as the bank writes it (MT940 `:28C:`, e.g. `999/2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
    /// Filled by `formats::parse_all`; empty while streaming.
    pub entries: Vec<Entry>,
}

/// A balance as the file states it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatedBalance {
    /// The kind as the format names it: camt `OPBD`, `PRCD`, `CLBD`, `ITBD`, `CLAV`, ...;
    /// MT940 `60F`, `60M` (intermediate opening), `62F`, `62M`, `64`, `65`; BAI2 status codes
    /// `010` (opening ledger), `015` (closing ledger), `040`, `045`, ...
    pub kind: String,
    /// Signed: a debit balance is negative.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Where the file names one (it may differ from the statement's: that is a finding).
    pub currency: Option<Currency>,
    pub date: Option<NaiveDate>,
    /// The line it is stated on.
    pub line: u64,
}

/// One transaction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// 1-based position of the entry (camt `Ntry`) within its statement.
    pub entry_seq: u32,
    /// 1-based position of the transaction within its entry.
    pub tx_seq: u32,
    /// Number of transactions in the entry (more than one for a batch).
    pub tx_count: u32,
    /// Always positive; `direction` gives the sign.
    #[serde(serialize_with = "ser_money_amount")]
    pub amount: Money,
    pub currency: Currency,
    pub direction: Direction,
    /// The entry reverses an earlier one (camt `RvslInd`, MT940 `RC`/`RD`).
    pub reversal: bool,
    pub status: EntryStatus,
    pub booking_date: Option<NaiveDate>,
    pub value_date: Option<NaiveDate>,
    /// The bank's own reference of the transaction: camt `TxDtls/Refs/AcctSvcrRef`, else the
    /// entry's `AcctSvcrRef`.
    pub bank_ref: Option<String>,
    /// The entry's own `AcctSvcrRef` (same as `bank_ref` for single-transaction entries).
    pub entry_ref: Option<String>,
    /// `EndToEndId`; the SEPA placeholder `NOTPROVIDED` is dropped.
    pub end_to_end_id: Option<String>,
    pub tx_id: Option<String>,
    pub payer_name: Option<String>,
    pub payer_account: Option<String>,
    /// Structured creditor reference (`CdtrRefInf/Ref`).
    pub reference: Option<String>,
    /// Unstructured remittance text (`Ustrd` lines joined by a space).
    pub remittance: Option<String>,
    /// Bank-added narrative (`AddtlTxInf`, else `AddtlNtryInf`).
    pub additional_info: Option<String>,
    /// Return reason code of a returned or reversed transaction (`RtrInf/Rsn/Cd`).
    pub return_reason: Option<String>,
    /// The transaction's own amount when it differs from the booked `amount` (for instance a
    /// returned direct debit booked with charges). Informational.
    #[serde(serialize_with = "ser_opt_money_amount")]
    pub instructed_amount: Option<Money>,
    /// Bank transaction code (e.g. `PMNT/RCDT/ESCT`).
    pub bank_tx_code: Option<String>,
}

impl Entry {
    /// Signed amount: credits positive, debits negative.
    pub fn signed(&self) -> Money {
        match self.direction {
            Direction::Credit => self.amount,
            Direction::Debit => self.amount.negated(),
        }
    }
}

fn ser_money_amount<S: serde::Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&m.amount().to_string())
}
fn ser_opt_money_amount<S: serde::Serializer>(m: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.serialize_str(&m.amount().to_string()),
        None => s.serialize_none(),
    }
}
