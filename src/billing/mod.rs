//! The billing system's daily exports: the customer master and the bills.
//!
//! Each import is one transaction: a file with any bad row is rejected whole, with the line
//! number and reason of every bad row (up to [`MAX_REPORTED`]), and nothing is stored.
//! Re-importing the same export is a no-op; a later export updates what changed (see
//! [`import_bills`] for the rules). Money on a bill the export cancels, or lowers below what
//! was paid, moves by the core's allocation rules in the same transaction
//! ([`crate::matching::Mover`]), each move audited with the export's line.

use crate::domain::{money_text, AccountNo, BillId, Currency, CustomerClass, Money};
use crate::matching::{BillChange, FeePolicy, Mover};
use crate::store::bills::BillRow;
use crate::store::customers::CustomerRow;
use crate::store::workbench::NewAudit;
use crate::store::{self, Store, StoreError};
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// At most this many bad rows are listed in one error.
pub const MAX_REPORTED: usize = 20;

/// One bad row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: header: {reason}")]
    Header { file: String, reason: String },
    #[error("{file}: rejected, nothing imported:\n{}", list(.rows))]
    Rows { file: String, rows: Vec<RowError> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn list(rows: &[RowError]) -> String {
    rows.iter()
        .map(|r| format!("  line {}: {}", r.line, r.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub cancelled: u64,
    /// Of the cancelled bills, those that had money on them (it moved).
    pub cancelled_paid: u64,
    /// Bills whose amount was lowered below what was paid on them (the difference moved).
    pub lowered_paid: u64,
    /// Payments whose money moved off those bills.
    pub payments_moved: u64,
    /// Per currency: (moved to other bills, moved to the customers' credit), minor units
    /// (what went back to a lowered bill within its new amount is not counted).
    pub moved: BTreeMap<String, (i64, i64)>,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows: {} new, {} updated, {} unchanged, {} cancelled",
            self.rows, self.inserted, self.updated, self.unchanged, self.cancelled
        )?;
        if self.cancelled_paid + self.lowered_paid > 0 {
            write!(
                f,
                "; money moved off {} cancelled and {} lowered bill(s): {} payment(s)",
                self.cancelled_paid, self.lowered_paid, self.payments_moved
            )?;
            for (cur, (bills, credit)) in &self.moved {
                write!(
                    f,
                    ", {cur} {} to other bills and {} to credit",
                    money_text(*bills, cur),
                    money_text(*credit, cur)
                )?;
            }
        }
        Ok(())
    }
}

/// A bill of this import whose money must move (see [`import_bills`]).
struct Changed {
    line: u64,
    bill_id: String,
    change: BillChange,
    /// principal paid above the new amount (lowered)
    excess: i64,
    /// the new amount, for the audit
    amount: i64,
    currency: String,
}

struct Csv {
    file: String,
    reader: csv::Reader<std::fs::File>,
    idx: HashMap<String, usize>,
}

impl Csv {
    fn open(path: &Path, required: &[&str]) -> Result<Csv, ImportError> {
        let file = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|source| ImportError::Read {
            file: file.clone(),
            source,
        })?;
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(f);
        let headers = reader.headers().map_err(|e| ImportError::Header {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let idx: HashMap<String, usize> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase(),
                    i,
                )
            })
            .collect();
        let missing: Vec<&str> = required
            .iter()
            .filter(|c| !idx.contains_key(**c))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(ImportError::Header {
                file,
                reason: format!(
                    "missing column(s) {}; expected {}",
                    missing.join(", "),
                    required.join(",")
                ),
            });
        }
        Ok(Csv { file, reader, idx })
    }

    /// The next record with its line number; a malformed record is a row error.
    fn next(&mut self) -> Option<Result<(u64, csv::StringRecord), RowError>> {
        let mut rec = csv::StringRecord::new();
        match self.reader.read_record(&mut rec) {
            Ok(true) => {
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                Some(Ok((line, rec)))
            }
            Ok(false) => None,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                Some(Err(RowError {
                    line,
                    reason: format!("malformed CSV: {e}"),
                }))
            }
        }
    }

    fn get<'r>(&self, rec: &'r csv::StringRecord, col: &str) -> &'r str {
        self.idx
            .get(col)
            .and_then(|i| rec.get(*i))
            .map(str::trim)
            .unwrap_or("")
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn parse_date(col: &str, s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{col} `{s}` is not a date (YYYY-MM-DD)"))
}

/// Imports `customers.csv`: `account_no,name,class,key_account,manager,phone,email`.
pub async fn import_customers(store: &Store, path: &Path) -> Result<ImportSummary, ImportError> {
    let mut csv = Csv::open(
        path,
        &[
            "account_no",
            "name",
            "class",
            "key_account",
            "manager",
            "phone",
            "email",
        ],
    )?;
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    while let Some(next) = csv.next() {
        let (line, rec) = match next {
            Ok(x) => x,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match customer_row(&csv, &rec) {
            Ok(c) => {
                if let Some(first) = seen.insert(c.account_key.clone(), line) {
                    errors.push(RowError {
                        line,
                        reason: format!(
                            "account_no `{}` already given on line {first}",
                            c.account_no
                        ),
                    });
                } else {
                    rows.push(c);
                }
            }
            Err(reason) => errors.push(RowError { line, reason }),
        }
        if errors.len() >= MAX_REPORTED {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(ImportError::Rows {
            file: csv.file,
            rows: errors,
        });
    }
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    // An account number whose normalized form collides with a different stored one is refused.
    let keys: Vec<String> = rows.iter().map(|c| c.account_key.clone()).collect();
    let existing: HashMap<String, String> = store::customers::accounts_by_key(&mut tx, &keys)
        .await?
        .into_iter()
        .collect();
    let mut summary = ImportSummary::default();
    for c in &rows {
        summary.rows += 1;
        match existing.get(&c.account_key) {
            Some(a) if a != &c.account_no => {
                return Err(ImportError::Rows {
                    file: csv.file,
                    rows: vec![RowError {
                        line: seen.get(&c.account_key).copied().unwrap_or(0),
                        reason: format!(
                            "account_no `{}` collides with stored account `{a}` (same after removing spaces and dashes)",
                            c.account_no
                        ),
                    }],
                });
            }
            Some(_) => summary.updated += 1,
            None => summary.inserted += 1,
        }
    }
    store::customers::upsert(&mut tx, &rows).await?;
    tx.commit().await.map_err(|source| StoreError::Db {
        op: "committing customers",
        source,
    })?;
    Ok(summary)
}

fn customer_row(csv: &Csv, rec: &csv::StringRecord) -> Result<CustomerRow, String> {
    let account = AccountNo::parse(csv.get(rec, "account_no")).map_err(|e| e.to_string())?;
    let name = csv.get(rec, "name");
    if name.is_empty() {
        return Err("name is empty".into());
    }
    let class = CustomerClass::parse(csv.get(rec, "class")).map_err(|e| e.to_string())?;
    let key_account = match csv.get(rec, "key_account").to_ascii_lowercase().as_str() {
        "true" | "1" => true,
        "false" | "0" | "" => false,
        other => return Err(format!("key_account `{other}` is not true or false")),
    };
    let language = match csv.get(rec, "language").to_ascii_lowercase().as_str() {
        "" => None,
        l @ ("zh" | "en") => Some(l.to_string()),
        other => return Err(format!("language `{other}` is not zh or en")),
    };
    let email = csv.get(rec, "email");
    if !email.is_empty() && !email.contains('@') {
        return Err(format!("email `{email}` is not an e-mail address"));
    }
    Ok(CustomerRow {
        account_key: account.key(),
        account_no: account.as_str().to_string(),
        name: name.to_string(),
        class: class.as_str().to_string(),
        key_account,
        manager: opt(csv.get(rec, "manager")),
        phone: opt(csv.get(rec, "phone")),
        email: opt(email),
        language,
    })
}

struct ParsedBill {
    line: u64,
    row: BillRow,
}

fn bill_row(csv: &Csv, rec: &csv::StringRecord, has_status: bool) -> Result<BillRow, String> {
    let bill = BillId::parse(csv.get(rec, "bill_id")).map_err(|e| e.to_string())?;
    let account = AccountNo::parse(csv.get(rec, "account_no")).map_err(|e| e.to_string())?;
    let period = csv.get(rec, "period");
    if NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").is_err() || period.len() != 7
    {
        return Err(format!("period `{period}` is not a month (YYYY-MM)"));
    }
    let currency = Currency::parse(csv.get(rec, "currency")).map_err(|e| e.to_string())?;
    let amount =
        Money::parse(csv.get(rec, "amount"), currency).map_err(|e| format!("amount: {e}"))?;
    if !amount.is_positive() {
        return Err(format!("amount {} must be positive", amount.amount()));
    }
    let issued = parse_date("issued_on", csv.get(rec, "issued_on"))?;
    let due = parse_date("due_on", csv.get(rec, "due_on"))?;
    if due < issued {
        return Err(format!("due_on {due} is before issued_on {issued}"));
    }
    let status = if has_status {
        match csv.get(rec, "status").to_ascii_lowercase().as_str() {
            "" | "open" => "open",
            "cancelled" | "canceled" => "cancelled",
            other => return Err(format!("status `{other}` is not open or cancelled")),
        }
    } else {
        "open"
    };
    Ok(BillRow {
        bill_key: bill.key(),
        bill_id: bill.as_str().to_string(),
        account_no: account.as_str().to_string(),
        period: period.to_string(),
        amount_minor: amount.minor(),
        currency: currency.to_string(),
        issued_on: issued.to_string(),
        due_on: due.to_string(),
        paid_minor: 0,
        status: status.to_string(),
        fee: Default::default(),
    })
}

/// Imports `bills.csv` with the built-in allocation rules (see [`import_bills_with`]).
pub async fn import_bills(store: &Store, path: &Path) -> Result<ImportSummary, ImportError> {
    import_bills_with(store, path, &FeePolicy::default()).await
}

/// Imports `bills.csv`: `bill_id,account_no,period,amount,currency,issued_on,due_on[,status]`.
///
/// A bill seen before: the same values is a no-op; dates and period are updated; a changed
/// amount is an update, whatever was paid; a changed currency on a bill with money on it is
/// refused; `status = cancelled` cancels it; a bill missing from a later export is left as it
/// is. Money follows the export, in the import's transaction:
/// - a cancelled bill's money (principal and late fee; its late-fee charges undone) moves, per
///   payment, to the account's other bills by the core's rules (`policy`), the rest to the
///   customer's credit;
/// - a bill lowered below what was paid on it gives back the difference the same way: the
///   latest payments on it, until their principal covers the difference, are taken off it
///   and allocated again, the lowered bill first;
/// - each payment moved gets an audit entry naming the export's file and line.
pub async fn import_bills_with(
    store: &Store,
    path: &Path,
    policy: &FeePolicy,
) -> Result<ImportSummary, ImportError> {
    const CHUNK: usize = 2000;
    let mut csv = Csv::open(
        path,
        &[
            "bill_id",
            "account_no",
            "period",
            "amount",
            "currency",
            "issued_on",
            "due_on",
        ],
    )?;
    let has_status = csv.idx.contains_key("status");
    let mut errors: Vec<RowError> = Vec::new();
    let mut seen_keys: HashMap<String, u64> = HashMap::new();
    let mut summary = ImportSummary::default();

    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let mut changed: Vec<Changed> = Vec::new();
    let mut chunk: Vec<ParsedBill> = Vec::with_capacity(CHUNK);
    loop {
        let next = csv.next();
        let done = next.is_none();
        if let Some(next) = next {
            match next {
                Err(e) => errors.push(e),
                Ok((line, rec)) => match bill_row(&csv, &rec, has_status) {
                    Err(reason) => errors.push(RowError { line, reason }),
                    Ok(row) => {
                        if let Some(first) = seen_keys.insert(row.bill_key.clone(), line) {
                            errors.push(RowError {
                                line,
                                reason: format!(
                                    "bill_id `{}` already given on line {first}",
                                    row.bill_id
                                ),
                            });
                        } else {
                            chunk.push(ParsedBill { line, row });
                        }
                    }
                },
            }
        }
        if errors.len() >= MAX_REPORTED {
            break;
        }
        if chunk.len() >= CHUNK || (done && !chunk.is_empty()) {
            let batch = std::mem::take(&mut chunk);
            apply_bill_chunk(&mut tx, batch, &mut errors, &mut summary, &mut changed).await?;
        }
        if done {
            break;
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        errors.truncate(MAX_REPORTED);
        tx.rollback().await.map_err(|source| StoreError::Db {
            op: "rolling back bills",
            source,
        })?;
        return Err(ImportError::Rows {
            file: csv.file,
            rows: errors,
        });
    }
    move_money(&mut tx, &csv.file, policy, changed, &mut summary).await?;
    tx.commit().await.map_err(|source| StoreError::Db {
        op: "committing bills",
        source,
    })?;
    Ok(summary)
}

/// Moves the money off the bills this import cancelled or lowered below what was paid, one
/// payment at a time, each with its audit entry.
async fn move_money(
    conn: &mut sqlx::AnyConnection,
    file: &str,
    policy: &FeePolicy,
    changed: Vec<Changed>,
    summary: &mut ImportSummary,
) -> Result<(), StoreError> {
    let mut mover = Mover::new(policy.clone());
    for c in changed {
        let pids = mover
            .payments_to_move(conn, &c.bill_id, &c.change, c.excess)
            .await?;
        if pids.is_empty() {
            continue;
        }
        match c.change {
            BillChange::Cancelled => summary.cancelled_paid += 1,
            BillChange::Lowered => summary.lowered_paid += 1,
        }
        for pid in pids {
            let Some(row) = store::workbench::payment(conn, pid).await? else {
                return Err(StoreError::Inconsistent(format!(
                    "bill {} has money of payment {pid}, which does not exist",
                    c.bill_id
                )));
            };
            let pending = row.pending();
            let moved = mover
                .move_off(conn, &pending, &c.bill_id, &c.change)
                .await?;
            if moved.allocations.is_empty() && moved.fees.is_empty() {
                // its money here went back to it already (late-fee money released when an
                // earlier payment's charge was undone)
                continue;
            }
            let bills = moved.bills();
            let snap = |p: Option<store::workbench::PaymentRow>,
                        b: Vec<store::workbench::BillState>| {
                serde_json::json!({"payment": p.map(|p| p.state), "bills": b})
            };
            let before = snap(
                Some(row),
                store::workbench::bill_states(conn, &bills).await?,
            );
            let at = store::now();
            moved.write(conn, &at).await?;
            let after = snap(
                store::workbench::payment(conn, pid).await?,
                store::workbench::bill_states(conn, &bills).await?,
            );
            let cur = moved.currency.as_str();
            let what = match c.change {
                BillChange::Cancelled => "cancelled".to_string(),
                BillChange::Lowered => format!(
                    "lowered to {} {}",
                    money_text(c.amount, &c.currency),
                    c.currency
                ),
            };
            let comment = format!(
                "{file} line {}: bill {} {what}; {} {cur} of payment {pid} taken off it and allocated again: {} back to it, {} to other bills, {} to the customer's credit",
                c.line,
                c.bill_id,
                money_text(moved.released_minor, cur),
                money_text(moved.back_minor, cur),
                money_text(moved.to_bills_minor, cur),
                money_text(moved.credit_minor, cur),
            );
            store::workbench::append_audit(
                conn,
                &NewAudit {
                    at: &at,
                    actor: "billing_import",
                    action: match c.change {
                        BillChange::Cancelled => "bill_cancelled",
                        BillChange::Lowered => "bill_lowered",
                    },
                    payment_id: Some(pid),
                    exception_id: None,
                    resolution_id: None,
                    comment: &comment,
                    before: &before,
                    after: &after,
                    bill_ids: &bills,
                },
            )
            .await?;
            tracing::info!(%comment, "money moved off a changed bill");
            summary.payments_moved += 1;
            let m = summary.moved.entry(moved.currency.clone()).or_default();
            m.0 += moved.to_bills_minor;
            m.1 += moved.credit_minor;
        }
    }
    Ok(())
}

async fn apply_bill_chunk(
    conn: &mut sqlx::AnyConnection,
    batch: Vec<ParsedBill>,
    errors: &mut Vec<RowError>,
    summary: &mut ImportSummary,
    changed: &mut Vec<Changed>,
) -> Result<(), StoreError> {
    let accounts: Vec<String> = batch
        .iter()
        .map(|b| b.row.account_no.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let known = store::customers::existing_accounts(conn, &accounts).await?;
    let ids: Vec<String> = batch.iter().map(|b| b.row.bill_id.clone()).collect();
    let existing: HashMap<String, BillRow> = store::bills::by_ids(conn, &ids)
        .await?
        .into_iter()
        .map(|b| (b.bill_id.clone(), b))
        .collect();
    let keys: Vec<String> = batch.iter().map(|b| b.row.bill_key.clone()).collect();
    let by_key: HashMap<String, String> = store::bills::by_keys(conn, &keys)
        .await?
        .into_iter()
        .map(|b| (b.bill_key, b.bill_id))
        .collect();

    let mut inserts = Vec::new();
    for ParsedBill { line, mut row } in batch {
        summary.rows += 1;
        if !known.contains(&row.account_no) {
            errors.push(RowError {
                line,
                reason: format!(
                    "account_no `{}` is not in the customer master (import customers first)",
                    row.account_no
                ),
            });
            continue;
        }
        if let Some(other) = by_key.get(&row.bill_key) {
            if other != &row.bill_id {
                errors.push(RowError {
                    line,
                    reason: format!(
                        "bill_id `{}` collides with stored bill `{other}` (same after removing spaces and dashes)",
                        row.bill_id
                    ),
                });
                continue;
            }
        }
        match existing.get(&row.bill_id) {
            None => {
                if row.status == "cancelled" {
                    summary.cancelled += 1;
                }
                summary.inserted += 1;
                inserts.push(row);
            }
            Some(old) => {
                if old.account_no != row.account_no {
                    errors.push(RowError {
                        line,
                        reason: format!(
                            "bill `{}` belongs to account `{}`; moving it to `{}` is refused",
                            row.bill_id, old.account_no, row.account_no
                        ),
                    });
                    continue;
                }
                let has_money = old.paid_minor != 0 || old.fee.paid != 0 || old.fee.charged != 0;
                if has_money && old.currency != row.currency {
                    errors.push(RowError {
                        line,
                        reason: format!(
                            "bill `{}` already has {} {} applied; changing its currency to {} is refused (cancel it and issue a new bill)",
                            row.bill_id,
                            money_text(old.paid_minor + old.fee.paid, &old.currency),
                            old.currency,
                            row.currency
                        ),
                    });
                    continue;
                }
                if has_money && row.status == "cancelled" && old.status != "cancelled" {
                    changed.push(Changed {
                        line,
                        bill_id: row.bill_id.clone(),
                        change: BillChange::Cancelled,
                        excess: old.paid_minor,
                        amount: row.amount_minor,
                        currency: row.currency.clone(),
                    });
                } else if row.status != "cancelled" && old.paid_minor > row.amount_minor {
                    changed.push(Changed {
                        line,
                        bill_id: row.bill_id.clone(),
                        change: BillChange::Lowered,
                        excess: old.paid_minor - row.amount_minor,
                        amount: row.amount_minor,
                        currency: row.currency.clone(),
                    });
                }
                row.paid_minor = old.paid_minor;
                if row.status != "cancelled" {
                    row.status = if old.paid_minor >= row.amount_minor {
                        "paid".into()
                    } else {
                        "open".into()
                    };
                }
                let same = old.period == row.period
                    && old.amount_minor == row.amount_minor
                    && old.currency == row.currency
                    && old.issued_on == row.issued_on
                    && old.due_on == row.due_on
                    && old.status == row.status;
                if same {
                    summary.unchanged += 1;
                } else {
                    if row.status == "cancelled" && old.status != "cancelled" {
                        summary.cancelled += 1;
                    }
                    summary.updated += 1;
                    store::bills::update(conn, &row).await?;
                }
            }
        }
    }
    if errors.is_empty() && !inserts.is_empty() {
        store::bills::insert(conn, inserts).await?;
    }
    Ok(())
}
