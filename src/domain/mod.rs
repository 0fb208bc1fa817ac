//! Domain types: money, currencies, account numbers, bill ids, RF creditor references, the
//! normalized bank statement every format produces, and late-fee arithmetic.
//!
//! Pure: no I/O, no SQL. Every type keeps its invariant in its constructor, so a value that
//! exists is valid.

mod ids;
pub mod late_fee;
mod money;
mod rf;
pub mod statement;

pub use ids::{mask_accounts, normalize_key, AccountNo, BillId, CustomerClass, IdError};
pub use money::{format_minor, money_text, Currency, Money, MoneyError};
pub use rf::{RfError, RfReference};
pub use statement::{Direction, Entry, EntryStatus, StatedBalance, Statement, StatementTotals};
