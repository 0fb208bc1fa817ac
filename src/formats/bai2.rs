//! BAI2 (BAI Cash Management Balance Reporting Specifications, Version 2), read record by
//! record as a stream.
//!
//! A file is `01` file header, then groups (`02` … `98`) of accounts (`03` … `49`) holding
//! transaction details (`16`); `88` continues the previous record; `99` ends the file. Each
//! account becomes one [`Statement`]: the `03` record gives the account, currency, opening
//! (`010`) and closing (`015`) ledger balances and the declared totals (`100` total credits,
//! `400` total debits); each `16` becomes one [`Entry`].
//!
//! Every control total and record count of the `49`, `98` and `99` trailers is checked, as
//! are the record order, dates, amounts and the `100`/`400` summaries against the details
//! (when the account has details). Memory is bounded: a physical line is at most
//! [`MAX_LINE`] bytes and a record at most [`MAX_CONTINUATIONS`] `88` continuations and
//! [`MAX_RECORD`] bytes.
//!
//! Decisions where the standard leaves room:
//! - a record ends at its first `/` except a `16` (and its `88`s), whose text may hold `/`:
//!   there only one trailing `/` is stripped; a missing `/` is accepted;
//! - a `16`'s text continued in an `88` is joined with a space; other continuations continue
//!   the field list;
//! - years `YY` are 20YY, except 80–99 which are 19YY;
//! - detail type codes 100–399 are credits, 400–699 debits, every other code from 700 up is
//!   informational (status `Info`, not money, not in the credit/debit sums); 001–099 are
//!   status codes and may not appear in a `16`;
//! - amounts of `16` records are unsigned digits; `03` amounts and trailer totals may be
//!   signed; an empty amount counts as zero in control totals.

use super::check::{finding, Severity};
use super::{Event, FileHeader, Format, ParseError};
use crate::domain::{
    Currency, Direction, Entry, EntryStatus, Money, StatedBalance, Statement, StatementTotals,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::VecDeque;
use std::io::BufRead;

/// Longest physical line accepted.
pub const MAX_LINE: usize = 64 * 1024;
/// Most `88` continuations of one record.
pub const MAX_CONTINUATIONS: usize = 1000;
/// Longest logical record (a record and its continuations).
pub const MAX_RECORD: usize = 1024 * 1024;

/// Recognizes a BAI2 file: after an optional BOM and whitespace, a `01` file header whose
/// version field (the 9th) is `2`.
pub fn sniff(head: &[u8]) -> Option<Format> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &head[start..];
    if !head.starts_with(b"01,") {
        return None;
    }
    let end = head
        .iter()
        .position(|b| *b == b'\n' || *b == b'\r' || *b == b'/')
        .unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..end]).ok()?;
    let version = line.split(',').nth(8)?.trim();
    (version == "2").then_some(Format::Bai2)
}

/// One logical record: a physical record and its `88` continuations.
struct Record {
    code: u8,
    line: u64,
    /// The content of each physical record, without the record code.
    parts: Vec<String>,
    bytes: usize,
    /// Not ended by `/`: a next line without a record code continues it.
    open: bool,
    /// The last part is a 16's text continued in an 88 (a wrapped line joins with a space).
    text_continuation: bool,
}

impl Record {
    fn loc(&self) -> String {
        format!("line {}, record {:02}", self.line, self.code)
    }
    fn physical(&self) -> u64 {
        self.parts.len() as u64
    }
}

/// Walks the comma-separated fields of a record across its continuations (the end of a
/// physical record ends a field).
struct Fields<'a> {
    parts: &'a [String],
    part: usize,
    /// Byte offset in the current part; past its end once its last field is taken.
    offset: usize,
}

impl<'a> Fields<'a> {
    fn new(parts: &'a [String]) -> Self {
        Fields {
            parts,
            part: 0,
            offset: 0,
        }
    }

    fn next_field(&mut self) -> Option<&'a str> {
        loop {
            let s = self.parts.get(self.part)?;
            if self.offset > s.len() {
                self.part += 1;
                self.offset = 0;
                continue;
            }
            let rest = &s[self.offset..];
            return Some(match rest.find(',') {
                Some(i) => {
                    self.offset += i + 1;
                    rest[..i].trim()
                }
                None => {
                    self.offset = s.len() + 1;
                    rest.trim()
                }
            });
        }
    }

    /// A field that may be missing at the end of the record (then empty).
    fn field(&mut self) -> &'a str {
        self.next_field().unwrap_or("")
    }

    /// Everything left: the rest of the current part, then the later parts, joined by a
    /// space (the `16` text field).
    fn rest_text(&mut self) -> String {
        let mut out = String::new();
        while let Some(s) = self.parts.get(self.part) {
            if self.offset <= s.len() {
                let t = s[self.offset..].trim();
                if !t.is_empty() {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(t);
                }
            }
            self.part += 1;
            self.offset = 0;
        }
        out
    }

    /// The field just taken was the last of its physical record.
    fn at_part_end(&self) -> bool {
        self.parts
            .get(self.part)
            .is_none_or(|s| self.offset > s.len())
    }

    fn exhausted(&self) -> bool {
        match self.parts.get(self.part) {
            None => true,
            Some(s) => self.offset > s.len() && self.part + 1 >= self.parts.len(),
        }
    }
}

struct FileState {
    records: u64,
    groups: u64,
    control: i128,
}

struct GroupState {
    line: u64,
    currency: Currency,
    as_of: NaiveDate,
    as_of_text: String,
    accounts: u64,
    records: u64,
    /// The sum of the account control totals (as declared; as computed where blank).
    control: i128,
    /// Opened by an account record without a group header; ends at the next 02 or 99.
    implicit: bool,
}

/// A summary (`100`, `400`) declared in the `03` record.
struct Summary {
    amount: Option<i64>,
    count: Option<u64>,
    loc: String,
}

struct AccountState {
    account: String,
    line: u64,
    currency: Currency,
    records: u64,
    control: i128,
    details: u64,
    credits: u64,
    credit_sum: i128,
    debits: u64,
    debit_sum: i128,
    total_credits: Option<Summary>,
    total_debits: Option<Summary>,
    entry_seq: u32,
}

/// Streaming BAI2 reader: yields `File`, then per account `Statement`, its `Entry`s and
/// `StatementEnd`. After an error it yields nothing more.
pub struct Bai2Reader<R> {
    reader: R,
    file: String,
    line_no: u64,
    buf: Vec<u8>,
    pending: Option<Record>,
    header_seen: bool,
    trailer_seen: bool,
    any_record: bool,
    file_state: FileState,
    group: Option<GroupState>,
    account: Option<AccountState>,
    file_date: Option<NaiveDate>,
    queue: VecDeque<Event>,
    done: bool,
}

impl<R: BufRead> Bai2Reader<R> {
    pub fn new(reader: R, file: &str, _format: Format) -> Self {
        Bai2Reader {
            reader,
            file: file.to_string(),
            line_no: 0,
            buf: Vec::with_capacity(256),
            pending: None,
            header_seen: false,
            trailer_seen: false,
            any_record: false,
            file_state: FileState {
                records: 0,
                groups: 0,
                control: 0,
            },
            group: None,
            account: None,
            file_date: None,
            queue: VecDeque::new(),
            done: false,
        }
    }

    fn err_at(&self, line: u64, what: &str, reason: impl Into<String>) -> ParseError {
        ParseError::new(&self.file, format!("line {line}, {what}"), reason)
    }

    /// Reads one physical line into `buf` (without the line end); `false` at the end.
    fn read_line(&mut self) -> Result<bool, ParseError> {
        self.buf.clear();
        let mut any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ParseError::io(&self.file, &e)),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, found) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if self.buf.len() + take > MAX_LINE + 2 {
                return Err(self.err_at(
                    self.line_no + 1,
                    "record ?",
                    format!("line longer than {MAX_LINE} bytes"),
                ));
            }
            self.buf.extend_from_slice(&chunk[..take]);
            self.reader.consume(take);
            if found {
                break;
            }
        }
        if any {
            self.line_no += 1;
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(any)
    }

    /// Reads one physical line and acts on each record on it.
    fn step(&mut self) -> Result<(), ParseError> {
        if !self.read_line()? {
            self.done = true;
            if let Some(rec) = self.pending.take() {
                self.process(rec)?;
            }
            return self.finish();
        }
        let line_no = self.line_no;
        let mut bytes: &[u8] = &self.buf;
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let text = String::from_utf8_lossy(bytes).into_owned();
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        for segment in split_records(text) {
            self.segment(line_no, segment)?;
        }
        Ok(())
    }

    /// One record of a physical line (a line may hold several, each ended by `/`).
    fn segment(&mut self, line_no: u64, text: &str) -> Result<(), ParseError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        let (code_text, content) = match text.find(',') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text.trim_end_matches('/'), ""),
        };
        let code = match code_text.trim() {
            c if c.len() == 2 && c.bytes().all(|b| b.is_ascii_digit()) => {
                c.parse::<u8>().unwrap_or(0)
            }
            _ => {
                // a line without a record code continues a record not ended by `/` (a
                // 16's text wrapped onto the next line)
                if let Some(rec) = self.pending.as_mut().filter(|r| r.open) {
                    if rec.bytes + text.len() > MAX_RECORD {
                        return Err(ParseError::new(
                            &self.file,
                            format!("line {line_no}, record {:02}", rec.code),
                            format!(
                                "the record of line {} is longer than {MAX_RECORD} bytes",
                                rec.line
                            ),
                        ));
                    }
                    let part = clean(text, rec.code == 16 || rec.code == 88);
                    rec.open = !text.ends_with('/');
                    rec.bytes += part.len();
                    if let Some(last) = rec.parts.last_mut() {
                        if rec.code == 16 || rec.text_continuation {
                            last.push(' ');
                        }
                        last.push_str(&part);
                    }
                    return Ok(());
                }
                let reason = if self.any_record {
                    "the line does not start with a BAI2 record code".to_string()
                } else {
                    "not a BAI2 file: it does not start with a 01 file header record".to_string()
                };
                return Err(self.err_at(line_no, "record ?", reason));
            }
        };
        if !matches!(code, 1 | 2 | 3 | 16 | 49 | 88 | 98 | 99) {
            return Err(self.err_at(
                line_no,
                &format!("record {code:02}"),
                format!("unknown record code {code:02}"),
            ));
        }
        if !self.any_record && code != 1 && code != 88 {
            return Err(self.err_at(
                line_no,
                &format!("record {code:02}"),
                "not a BAI2 file: it does not start with a 01 file header record",
            ));
        }
        self.any_record = true;
        if code == 88 {
            let Some(rec) = self.pending.as_mut() else {
                return Err(self.err_at(
                    line_no,
                    "record 88",
                    "88 continuation record without a previous record",
                ));
            };
            if rec.parts.len() > MAX_CONTINUATIONS {
                return Err(ParseError::new(
                    &self.file,
                    format!("line {line_no}, record 88"),
                    format!(
                        "more than {MAX_CONTINUATIONS} continuation records for the record of line {}",
                        rec.line
                    ),
                ));
            }
            if rec.bytes + content.len() > MAX_RECORD {
                return Err(ParseError::new(
                    &self.file,
                    format!("line {line_no}, record 88"),
                    format!(
                        "the record of line {} is longer than {MAX_RECORD} bytes",
                        rec.line
                    ),
                ));
            }
            let part = clean(content, rec.code == 16);
            rec.bytes += part.len();
            rec.parts.push(part);
            rec.open = !text.ends_with('/');
            rec.text_continuation = rec.code == 16;
            return Ok(());
        }
        let part = clean(content, code == 16);
        let rec = Record {
            code,
            line: line_no,
            bytes: part.len(),
            parts: vec![part],
            open: !text.ends_with('/'),
            text_continuation: false,
        };
        if let Some(prev) = self.pending.replace(rec) {
            self.process(prev)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ParseError> {
        let line = self.line_no;
        if !self.any_record {
            return Err(self.err_at(line.max(1), "end of file", "the file is empty"));
        }
        if let Some(a) = &self.account {
            return Err(self.err_at(
                line,
                "end of file",
                format!(
                    "truncated file: the account {} of line {} has no 49 account trailer",
                    a.account, a.line
                ),
            ));
        }
        if let Some(g) = &self.group {
            return Err(self.err_at(
                line,
                "end of file",
                format!(
                    "truncated file: the group of line {} has no 98 group trailer",
                    g.line
                ),
            ));
        }
        if !self.trailer_seen {
            return Err(self.err_at(line, "end of file", "truncated file: no 99 file trailer"));
        }
        Ok(())
    }

    /// Acts on a complete logical record.
    fn process(&mut self, rec: Record) -> Result<(), ParseError> {
        if self.trailer_seen {
            return Err(ParseError::new(
                &self.file,
                rec.loc(),
                "record after the 99 file trailer",
            ));
        }
        let n = rec.physical();
        self.file_state.records += n;
        if let Some(g) = self.group.as_mut() {
            g.records += n;
        }
        if let Some(a) = self.account.as_mut() {
            a.records += n;
        }
        match rec.code {
            1 => self.on_file_header(&rec),
            2 => self.on_group_header(&rec),
            3 => self.on_account(&rec),
            16 => self.on_detail(&rec),
            49 => self.on_account_trailer(&rec),
            98 => self.on_group_trailer(&rec),
            99 => self.on_file_trailer(&rec),
            code => Err(ParseError::new(
                &self.file,
                rec.loc(),
                format!("unexpected record code {code:02}"),
            )),
        }
    }

    fn on_file_header(&mut self, rec: &Record) -> Result<(), ParseError> {
        let ctx = Ctx::new(&self.file, rec);
        if self.header_seen {
            return Err(ctx.err("a second 01 file header"));
        }
        self.header_seen = true;
        let mut f = Fields::new(&rec.parts);
        let _sender = f.field();
        let _receiver = f.field();
        let date = parse_date(&ctx, f.field(), "creation date")?;
        self.file_date = Some(date);
        let time = parse_time(&ctx, f.field(), "creation time")?;
        let file_id = opt(f.field());
        parse_count(&ctx, f.field(), "physical record length")?;
        parse_count(&ctx, f.field(), "block size")?;
        let version = f.field();
        if version != "2" {
            return Err(ctx.err(format!(
                "version field is `{version}`: only BAI version 2 files are read"
            )));
        }
        let header = FileHeader {
            file_id,
            created_at: Some(datetime_text(date, time)),
            version: Some("2".into()),
        };
        self.queue.push_back(Event::File(Format::Bai2, header));
        Ok(())
    }

    fn on_group_header(&mut self, rec: &Record) -> Result<(), ParseError> {
        self.end_implicit_group();
        let ctx = Ctx::new(&self.file, rec);
        if let Some(g) = &self.group {
            return Err(ctx.err(format!(
                "02 group header inside the group of line {} (missing 98 group trailer)",
                g.line
            )));
        }
        let mut f = Fields::new(&rec.parts);
        let _receiver = f.field();
        let _originator = f.field();
        let status = f.field();
        if !matches!(status, "1" | "2" | "3" | "4") {
            return Err(ctx.err(format!("group status `{status}` is not 1, 2, 3 or 4")));
        }
        let as_of = parse_date(&ctx, f.field(), "as-of date")?;
        let time = parse_time(&ctx, f.field(), "as-of time")?;
        let currency = parse_currency(&ctx, f.field(), Currency::USD)?;
        let modifier = f.field();
        if !matches!(modifier, "" | "1" | "2" | "3" | "4") {
            return Err(ctx.err(format!(
                "as-of-date modifier `{modifier}` is not 1, 2, 3 or 4"
            )));
        }
        self.file_state.groups += 1;
        self.group = Some(GroupState {
            line: rec.line,
            currency,
            as_of,
            as_of_text: datetime_text(as_of, time),
            accounts: 0,
            records: rec.physical(),
            control: 0,
            implicit: false,
        });
        Ok(())
    }

    fn on_account(&mut self, rec: &Record) -> Result<(), ParseError> {
        let ctx = Ctx::new(&self.file, rec);
        if self.group.is_none() {
            // an account record without a group header: read in a group of its own
            let currency = {
                let mut f = Fields::new(&rec.parts);
                let _account = f.field();
                parse_currency(&ctx, f.field(), Currency::USD)?
            };
            let as_of = self.file_date.unwrap_or_default();
            self.queue.push_back(Event::Finding(finding(
                "structure",
                Severity::Warning,
                rec.loc(),
                "02",
                "none",
                None,
                "03 account record outside a group (no 02 group header): read as a group of its own, dated as the file, in the account's currency",
            )));
            self.group = Some(GroupState {
                line: rec.line,
                currency,
                as_of,
                as_of_text: as_of.to_string(),
                accounts: 0,
                // the 03 itself (counted before the group existed)
                records: rec.physical(),
                control: 0,
                implicit: true,
            });
        }
        let Some(g) = self.group.as_mut() else {
            return Err(ctx.err("03 account record outside a group (no 02 group header)"));
        };
        if let Some(a) = &self.account {
            return Err(ctx.err(format!(
                "03 account record inside the account {} of line {} (missing 49 account trailer)",
                a.account, a.line
            )));
        }
        let mut f = Fields::new(&rec.parts);
        let account = f.field().to_string();
        if account.is_empty() {
            return Err(ctx.err("the account number is empty"));
        }
        let currency = parse_currency(&ctx, f.field(), g.currency)?;
        let exp = currency.exponent();
        let mut control: i128 = 0;
        let (mut opening, mut closing) = (None, None);
        let (mut total_credits, mut total_debits) = (None, None);
        let mut balances = Vec::new();
        while let Some(code) = f.next_field() {
            if code.is_empty() && f.exhausted() {
                break;
            }
            if code.is_empty() && f.at_part_end() {
                // a trailing `,` before the `/` of a record continued by an 88
                continue;
            }
            if code.is_empty() {
                // an empty summary (`,,,,`): no type code, amount, count or funds type
                let amount = f.field();
                let _count = f.field();
                let funds = f.field();
                if !amount.is_empty() || !matches!(funds, "" | "0" | "1" | "2" | "Z") {
                    return Err(ctx.err(format!("a summary amount `{amount}` without a type code")));
                }
                continue;
            }
            let code_n = parse_type_code(&ctx, code)?;
            let amount = parse_amount(&ctx, f.field(), true, code)?;
            let count = parse_count(&ctx, f.field(), "item count")?;
            parse_funds(&ctx, &mut f, code)?;
            control += i128::from(amount.unwrap_or(0));
            if code_n < 100 {
                if let Some(m) = amount {
                    balances.push(StatedBalance {
                        kind: code.to_string(),
                        amount: Decimal::new(m, exp),
                        currency: Some(currency),
                        date: Some(g.as_of),
                        line: rec.line,
                    });
                }
            }
            match code_n {
                10 => opening = amount.map(|m| Decimal::new(m, exp)),
                15 => closing = amount.map(|m| Decimal::new(m, exp)),
                100 | 400 => {
                    let s = Summary {
                        amount,
                        count,
                        loc: rec.loc(),
                    };
                    if code_n == 100 {
                        total_credits = Some(s);
                    } else {
                        total_debits = Some(s);
                    }
                }
                _ => {}
            }
        }
        g.accounts += 1;
        // The 100/400 summaries are checked against the account's details by this reader
        // (when the account has details), but they are not the statement's declared totals:
        // a summary-only account declares credits it does not itemize, and informational
        // details (700+) are outside the summaries. Stored lines are checked against the
        // control totals instead (49/98/99, above).
        self.queue.push_back(Event::Statement(Statement {
            statement_id: None,
            account: account.clone(),
            currency: Some(currency),
            created_at: Some(g.as_of_text.clone()),
            opening_balance: opening,
            closing_balance: closing,
            declared: StatementTotals::default(),
            balances,
            sequence: None,
            entries: Vec::new(),
        }));
        self.account = Some(AccountState {
            account,
            line: rec.line,
            currency,
            records: rec.physical(),
            control,
            details: 0,
            credits: 0,
            credit_sum: 0,
            debits: 0,
            debit_sum: 0,
            total_credits,
            total_debits,
            entry_seq: 0,
        });
        Ok(())
    }

    fn on_detail(&mut self, rec: &Record) -> Result<(), ParseError> {
        let ctx = Ctx::new(&self.file, rec);
        let (Some(g), Some(a)) = (self.group.as_ref(), self.account.as_mut()) else {
            return Err(ctx.err("16 transaction detail outside an account (no 03 record)"));
        };
        let mut f = Fields::new(&rec.parts);
        let code = f.field();
        let code_n = parse_type_code(&ctx, code)?;
        if code_n < 100 {
            return Err(ctx.err(format!(
                "type code {code} is a status code, not a transaction detail code"
            )));
        }
        let direction = match code_n {
            100..=399 => Some(Direction::Credit),
            400..=699 => Some(Direction::Debit),
            _ => None,
        };
        let amount_text = f.field();
        let amount = match parse_amount(&ctx, amount_text, false, code)? {
            Some(m) => m,
            None if direction.is_none() => 0,
            None => return Err(ctx.err(format!("type code {code}: the amount is empty"))),
        };
        let value_date = parse_funds(&ctx, &mut f, code)?;
        let bank_ref = opt(f.field());
        let customer_ref = opt(f.field()).filter(|r| !r.eq_ignore_ascii_case("NONREF"));
        let text = opt(&f.rest_text());

        let overflow = || ctx.err("the account's totals overflow".to_string());
        a.control = a.control.checked_add(amount.into()).ok_or_else(overflow)?;
        a.details += 1;
        match direction {
            Some(Direction::Credit) => {
                a.credits += 1;
                a.credit_sum += i128::from(amount);
            }
            Some(Direction::Debit) => {
                a.debits += 1;
                a.debit_sum += i128::from(amount);
            }
            None => {}
        }
        a.entry_seq = a.entry_seq.saturating_add(1);
        let payer_name = text.as_deref().and_then(payer_name);
        let entry = Entry {
            entry_seq: a.entry_seq,
            tx_seq: 1,
            tx_count: 1,
            amount: Money::from_minor(amount, a.currency),
            currency: a.currency,
            direction: direction.unwrap_or(Direction::Credit),
            reversal: false,
            status: if direction.is_some() {
                EntryStatus::Booked
            } else {
                EntryStatus::Info
            },
            booking_date: Some(g.as_of),
            value_date: Some(value_date.unwrap_or(g.as_of)),
            bank_ref: bank_ref.clone(),
            entry_ref: bank_ref,
            end_to_end_id: customer_ref.clone(),
            tx_id: customer_ref,
            payer_name,
            payer_account: None,
            reference: None,
            remittance: text.clone(),
            additional_info: text,
            return_reason: None,
            instructed_amount: None,
            bank_tx_code: Some(code.to_string()),
        };
        self.queue.push_back(Event::Entry(entry));
        Ok(())
    }

    /// Queues a failed check.
    #[allow(clippy::too_many_arguments)]
    fn note(
        &mut self,
        check: &'static str,
        severity: Severity,
        loc: String,
        declared: impl ToString,
        computed: impl ToString,
        statement: Option<&str>,
        message: String,
    ) {
        self.queue.push_back(Event::Finding(finding(
            check, severity, loc, declared, computed, statement, message,
        )));
    }

    fn on_account_trailer(&mut self, rec: &Record) -> Result<(), ParseError> {
        let ctx = Ctx::new(&self.file, rec);
        let Some(a) = self.account.take() else {
            return Err(ctx.err("49 account trailer without a 03 account record"));
        };
        let mut f = Fields::new(&rec.parts);
        let control = parse_amount(&ctx, f.field(), true, "49")?;
        let records = parse_count(&ctx, f.field(), "number of records")?;
        let exp = a.currency.exponent();
        let loc = rec.loc();
        let acct = Some(a.account.as_str());
        if let Some(control) = control {
            if i128::from(control) != a.control {
                self.note(
                    "account_control_total",
                    Severity::Error,
                    loc.clone(),
                    dec(control.into(), exp),
                    dec(a.control, exp),
                    acct,
                    format!(
                        "account control total is {} but the amounts of account {} add up to {}",
                        dec(control.into(), exp),
                        a.account,
                        dec(a.control, exp)
                    ),
                );
            }
        }
        if let Some(records) = records {
            if records != a.records {
                self.note(
                    "account_record_count",
                    Severity::Error,
                    loc.clone(),
                    records,
                    a.records,
                    acct,
                    format!(
                        "number of records is {records} but account {} has {} records (03 to 49 with 88s)",
                        a.account, a.records
                    ),
                );
            }
        }
        if a.details > 0 {
            let checks = [
                (
                    &a.total_credits,
                    a.credits,
                    a.credit_sum,
                    "100 (total credits)",
                    "credit",
                ),
                (
                    &a.total_debits,
                    a.debits,
                    a.debit_sum,
                    "400 (total debits)",
                    "debit",
                ),
            ];
            let mut found = Vec::new();
            for (summary, count, sum, what, kind) in checks {
                let Some(s) = summary else { continue };
                let count_ok = s.count.is_none_or(|c| c == count);
                let sum_ok = s.amount.is_none_or(|m| i128::from(m) == sum);
                if !sum_ok || !count_ok {
                    let message = format!(
                        "summary {what} declares {}{} but the {kind} details add up to {} in {count} items",
                        s.amount
                            .map(|m| dec(m.into(), exp))
                            .unwrap_or_else(|| "no amount".into()),
                        s.count.map(|c| format!(" in {c} items")).unwrap_or_default(),
                        dec(sum, exp)
                    );
                    let (sum_check, count_check) = if kind == "credit" {
                        ("credit_sum", "credit_count")
                    } else {
                        ("debit_sum", "debit_count")
                    };
                    if let (false, Some(m)) = (sum_ok, s.amount) {
                        found.push((
                            sum_check,
                            s.loc.clone(),
                            dec(m.into(), exp),
                            dec(sum, exp),
                            message.clone(),
                        ));
                    }
                    if let (false, Some(c)) = (count_ok, s.count) {
                        found.push((
                            count_check,
                            s.loc.clone(),
                            c.to_string(),
                            count.to_string(),
                            message,
                        ));
                    }
                }
            }
            for (check, loc, declared, computed, message) in found {
                self.note(
                    check,
                    Severity::Error,
                    loc,
                    declared,
                    computed,
                    acct,
                    message,
                );
            }
        }
        if let Some(g) = self.group.as_mut() {
            g.control += control.map(i128::from).unwrap_or(a.control);
        }
        self.queue.push_back(Event::StatementEnd);
        Ok(())
    }

    /// A group opened by an account record without a group header ends (it has no trailer).
    fn end_implicit_group(&mut self) {
        if self.account.is_none() && self.group.as_ref().is_some_and(|g| g.implicit) {
            if let Some(g) = self.group.take() {
                self.file_state.control += g.control;
            }
        }
    }

    fn on_group_trailer(&mut self, rec: &Record) -> Result<(), ParseError> {
        let ctx = Ctx::new(&self.file, rec);
        if let Some(a) = &self.account {
            return Err(ctx.err(format!(
                "98 group trailer inside the account {} of line {} (missing 49 account trailer)",
                a.account, a.line
            )));
        }
        let Some(g) = self.group.take() else {
            return Err(ctx.err("98 group trailer without a 02 group header"));
        };
        let mut f = Fields::new(&rec.parts);
        let control = parse_amount(&ctx, f.field(), true, "98")?;
        let accounts = parse_count(&ctx, f.field(), "number of accounts")?;
        let records = parse_count(&ctx, f.field(), "number of records")?;
        let loc = rec.loc();
        if let Some(control) = control.filter(|c| i128::from(*c) != g.control) {
            self.note(
                "group_control_total",
                Severity::Error,
                loc.clone(),
                control,
                g.control,
                None,
                format!(
                    "group control total is {control} but the account control totals add up to {}",
                    g.control
                ),
            );
        }
        if let Some(accounts) = accounts.filter(|a| *a != g.accounts) {
            self.note(
                "group_account_count",
                Severity::Error,
                loc.clone(),
                accounts,
                g.accounts,
                None,
                format!(
                    "number of accounts is {accounts} but the group has {}",
                    g.accounts
                ),
            );
        }
        if let Some(records) = records.filter(|r| *r != g.records) {
            self.note(
                "group_record_count",
                Severity::Error,
                loc,
                records,
                g.records,
                None,
                format!(
                    "number of records is {records} but the group has {} records (02 to 98 with 88s)",
                    g.records
                ),
            );
        }
        self.file_state.control += control.map(i128::from).unwrap_or(g.control);
        Ok(())
    }

    fn on_file_trailer(&mut self, rec: &Record) -> Result<(), ParseError> {
        self.end_implicit_group();
        let ctx = Ctx::new(&self.file, rec);
        if let Some(a) = &self.account {
            return Err(ctx.err(format!(
                "99 file trailer inside the account {} of line {} (missing 49 account trailer)",
                a.account, a.line
            )));
        }
        if let Some(g) = &self.group {
            return Err(ctx.err(format!(
                "99 file trailer inside the group of line {} (missing 98 group trailer)",
                g.line
            )));
        }
        let mut f = Fields::new(&rec.parts);
        let control = parse_amount(&ctx, f.field(), true, "99")?;
        let groups = parse_count(&ctx, f.field(), "number of groups")?;
        let records = parse_count(&ctx, f.field(), "number of records")?;
        let (fs_control, fs_groups, fs_records) = (
            self.file_state.control,
            self.file_state.groups,
            self.file_state.records,
        );
        let loc = rec.loc();
        if let Some(control) = control.filter(|c| i128::from(*c) != fs_control) {
            self.note(
                "file_control_total",
                Severity::Error,
                loc.clone(),
                control,
                fs_control,
                None,
                format!(
                    "file control total is {control} but the group control totals add up to {fs_control}"
                ),
            );
        }
        if let Some(groups) = groups.filter(|g| *g != fs_groups) {
            self.note(
                "file_group_count",
                Severity::Error,
                loc.clone(),
                groups,
                fs_groups,
                None,
                format!("number of groups is {groups} but the file has {fs_groups}"),
            );
        }
        if let Some(records) = records.filter(|r| *r != fs_records) {
            self.note(
                "file_record_count",
                Severity::Error,
                loc,
                records,
                fs_records,
                None,
                format!("number of records is {records} but the file has {fs_records} records"),
            );
        }
        self.trailer_seen = true;
        Ok(())
    }
}

impl<R: BufRead> Iterator for Bai2Reader<R> {
    type Item = Result<Event, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.step() {
                self.done = true;
                self.queue.clear();
                return Some(Err(e));
            }
        }
    }
}

/// The records of a physical line: a record ends at a `/` followed by blanks and the next
/// record's code (`01,…,2/   02,…`), also inside a `16`'s text (`…PPD/ 16,142,…`).
fn split_records(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' {
            let mut j = i + 1;
            while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                j += 1;
            }
            let code_follows = j > i + 1
                && j + 2 < b.len()
                && b[j].is_ascii_digit()
                && b[j + 1].is_ascii_digit()
                && b[j + 2] == b','
                && matches!(
                    &b[j..j + 2],
                    b"01" | b"02" | b"03" | b"16" | b"49" | b"88" | b"98" | b"99"
                );
            if code_follows {
                out.push(&text[start..=i]);
                start = j;
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out.push(&text[start..]);
    out
}

/// The content of a physical record: a `16`'s keeps inner `/` (its text may hold them) and
/// loses one trailing `/`; other records end at the first `/`.
fn clean(content: &str, text_record: bool) -> String {
    let c = content.trim_end();
    let c = if text_record {
        c.strip_suffix('/').unwrap_or(c)
    } else {
        c.split('/').next().unwrap_or("")
    };
    c.to_string()
}

/// Where an error is reported.
struct Ctx<'a> {
    file: &'a str,
    loc: String,
}

impl<'a> Ctx<'a> {
    fn new(file: &'a str, rec: &Record) -> Self {
        Ctx {
            file,
            loc: rec.loc(),
        }
    }
    fn err(&self, reason: impl Into<String>) -> ParseError {
        ParseError::new(self.file, self.loc.clone(), reason)
    }
}

fn opt(t: &str) -> Option<String> {
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn dec(minor: i128, exp: u32) -> String {
    match i64::try_from(minor) {
        Ok(m) => Decimal::new(m, exp).to_string(),
        Err(_) => format!("{minor} (minor units)"),
    }
}

fn digits(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// An amount in minor units; `None` when empty. `signed`: a leading `+` or `-` is allowed.
fn parse_amount(ctx: &Ctx, t: &str, signed: bool, what: &str) -> Result<Option<i64>, ParseError> {
    if t.is_empty() {
        return Ok(None);
    }
    let (neg, body) = match t.as_bytes()[0] {
        b'-' if signed => (true, &t[1..]),
        b'+' if signed => (false, &t[1..]),
        _ => (false, t),
    };
    if !digits(body) || body.len() > 18 {
        return Err(ctx.err(format!(
            "amount `{t}` of {what} is not {}minor units (digits without a decimal point)",
            if signed { "signed " } else { "" }
        )));
    }
    let v: i64 = body
        .parse()
        .map_err(|_| ctx.err(format!("amount `{t}` of {what} is too large")))?;
    Ok(Some(if neg { -v } else { v }))
}

fn parse_count(ctx: &Ctx, t: &str, what: &str) -> Result<Option<u64>, ParseError> {
    if t.is_empty() {
        return Ok(None);
    }
    if !digits(t) || t.len() > 18 {
        return Err(ctx.err(format!("{what} `{t}` is not a number")));
    }
    t.parse()
        .map(Some)
        .map_err(|_| ctx.err(format!("{what} `{t}` is not a number")))
}

fn parse_type_code(ctx: &Ctx, t: &str) -> Result<u16, ParseError> {
    if t.len() != 3 || !digits(t) {
        return Err(ctx.err(format!("type code `{t}` is not three digits")));
    }
    t.parse()
        .map_err(|_| ctx.err(format!("type code `{t}` is not three digits")))
}

fn parse_currency(ctx: &Ctx, t: &str, default: Currency) -> Result<Currency, ParseError> {
    if t.is_empty() {
        return Ok(default);
    }
    Currency::parse(t).map_err(|_| ctx.err(format!("currency `{t}` is not an ISO 4217 code")))
}

/// `YYMMDD`: 80–99 are 19YY, the others 20YY.
fn parse_date(ctx: &Ctx, t: &str, what: &str) -> Result<NaiveDate, ParseError> {
    let bad = || ctx.err(format!("{what} `{t}` is not a valid YYMMDD date"));
    if t.len() != 6 || !digits(t) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| t[r].parse::<u32>().unwrap_or(0);
    let yy = n(0..2) as i32;
    let year = if yy >= 80 { 1900 + yy } else { 2000 + yy };
    NaiveDate::from_ymd_opt(year, n(2..4), n(4..6)).ok_or_else(bad)
}

/// `HHMM` (`2400` and `9999`, end of day, allowed), also written `HH:MM`, `HH:MM:SS` or
/// `HHMMSS` by some banks; `None` when empty or `9999`.
fn parse_time(ctx: &Ctx, t: &str, what: &str) -> Result<Option<(u32, u32)>, ParseError> {
    if t.is_empty() || t == "9999" {
        return Ok(None);
    }
    let bad = || ctx.err(format!("{what} `{t}` is not a valid HHMM time"));
    let compact: String = match t.len() {
        4 | 6 => t.to_string(),
        5 | 8 if t.as_bytes()[2] == b':' && (t.len() == 5 || t.as_bytes()[5] == b':') => {
            t.replace(':', "")
        }
        _ => return Err(bad()),
    };
    if !digits(&compact) {
        return Err(bad());
    }
    let (h, m) = (
        compact[..2].parse::<u32>().unwrap_or(99),
        compact[2..4].parse::<u32>().unwrap_or(99),
    );
    let sec = compact
        .get(4..6)
        .map(|s| s.parse::<u32>().unwrap_or(99))
        .unwrap_or(0);
    if h > 24 || m > 59 || sec > 59 || (h == 24 && (m != 0 || sec != 0)) {
        return Err(bad());
    }
    Ok(Some((h, m)))
}

fn datetime_text(date: NaiveDate, time: Option<(u32, u32)>) -> String {
    match time {
        Some((h, m)) if h < 24 => format!("{date}T{h:02}:{m:02}:00"),
        _ => date.to_string(),
    }
}

/// Reads the funds type and its extra fields; returns the value date of funds type `V`.
fn parse_funds(ctx: &Ctx, f: &mut Fields, code: &str) -> Result<Option<NaiveDate>, ParseError> {
    let funds = f.field();
    match funds {
        "" | "0" | "1" | "2" | "Z" => Ok(None),
        "V" => {
            let date = parse_date(ctx, f.field(), "value date")?;
            parse_time(ctx, f.field(), "value time")?;
            Ok(Some(date))
        }
        "S" => {
            for _ in 0..3 {
                parse_amount(ctx, f.field(), true, "funds type S")?;
            }
            Ok(None)
        }
        "D" => {
            let n = parse_count(ctx, f.field(), "number of distributions")?.ok_or_else(|| {
                ctx.err(format!(
                    "type code {code}: funds type D without a number of distributions"
                ))
            })?;
            for i in 0..n {
                let (Some(days), Some(amount)) = (f.next_field(), f.next_field()) else {
                    return Err(ctx.err(format!(
                        "type code {code}: funds type D declares {n} distributions but the record has {i}"
                    )));
                };
                parse_count(ctx, days, "distribution days")?;
                parse_amount(ctx, amount, true, "a funds type D distribution")?;
            }
            Ok(None)
        }
        other => Err(ctx.err(format!(
            "type code {code}: unknown funds type `{other}` (0, 1, 2, V, S, D or Z)"
        ))),
    }
}

/// Tags after which a text names the payer.
const PAYER_TAGS: &[&str] = &[
    "ORIG CO NAME:",
    "ORIG NAME:",
    "ORIGINATOR NAME:",
    "ORIGINATOR:",
    "BY ORDER OF:",
    "B/O:",
];

/// Tags that end a payer name.
const END_TAGS: &[&str] = &[
    "ORIG ID:",
    "ORIG CO ID:",
    "ORIG BK:",
    "ORIG CO NAME:",
    "ORIG NAME:",
    "DESC DATE:",
    "CO ENTRY DESCR:",
    "ENTRY DESCR:",
    "ENTRY DESC:",
    "SEC:",
    "IND ID:",
    "IND NAME:",
    "TRACE #:",
    "TRACE:",
    "EED:",
    "REF:",
    "OBI:",
    "BBI:",
    "BNF:",
    "SND BK:",
    "CUST ID:",
    "ACCT:",
    "ADDENDA:",
    "B/O:",
];

/// The payer's name from an `ORIG NAME:`, `ORIG CO NAME:`, `B/O:` … tag of a detail text.
fn payer_name(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    let (start, tag) = PAYER_TAGS
        .iter()
        .filter_map(|t| upper.find(t).map(|i| (i, *t)))
        .min_by_key(|(i, _)| *i)?;
    let from = start + tag.len();
    let rest_upper = &upper[from..];
    let end = END_TAGS
        .iter()
        .filter_map(|t| rest_upper.find(t))
        .chain(rest_upper.find("  "))
        .min()
        .unwrap_or(rest_upper.len());
    // `to_ascii_uppercase` keeps byte offsets, so they index `text` too.
    let name = text
        .get(from..from + end)?
        .trim()
        .trim_end_matches(',')
        .trim();
    opt(name)
}

#[cfg(test)]
#[path = "bai2_tests.rs"]
mod tests;
