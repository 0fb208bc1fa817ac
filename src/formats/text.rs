//! Delimited and fixed-width text files (e.g. Chinese banks' daily 对账文件), laid out as the
//! bank's `[bank.layout]` table in the config describes.
//!
//! A file is one statement: optional skipped lines, an optional header line, one line per
//! payment, an optional trailer line (the last non-blank line). The reader streams the file
//! line by line (one line of look-ahead when there is a trailer) and never holds it whole; a
//! line longer than [`MAX_LINE`] bytes is an error. Blank lines are skipped anywhere.
//!
//! Counts and totals the header or trailer declare are checked against the lines before
//! `StatementEnd`. The header's go into the `Statement` event's `declared`; the trailer comes
//! after the entries, so its values are checked but cannot be in the already-yielded event.
//!
//! ```toml
//! [bank.layout]
//! kind = "delimited"
//! encoding = "gbk"
//! delimiter = "|"
//! header = { fields = ["date", "count", "total"] }
//! columns = ["date", "bank_ref", "reference", "payer_name", "amount", "remittance"]
//! currency = "CNY"
//! account = "1100000000000000001"
//! ```

use super::check::{finding, Severity};
use super::{Event, FileHeader, Format, ParseError};
pub use crate::config::layout::*;
use crate::domain::{Currency, Direction, Entry, EntryStatus, Money, Statement, StatementTotals};
use chrono::NaiveDate;
use encoding_rs::{DecoderResult, Encoding};
use rust_decimal::Decimal;
use std::collections::VecDeque;
use std::io::BufRead;

/// Splits a delimited line. Quotes open a field only at its start (after blanks).
fn split_delimited(line: &str, delim: char, quote: Option<char>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if Some(c) == quote {
                if chars.peek() == Some(&c) {
                    cur.push(c);
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == delim {
            out.push(std::mem::take(&mut cur));
        } else if Some(c) == quote && cur.trim().is_empty() {
            cur.clear();
            in_quotes = true;
        } else {
            cur.push(c);
        }
    }
    if in_quotes {
        return Err("a quoted field is not closed before the end of the line".into());
    }
    out.push(cur);
    Ok(out)
}

fn parse_amount(text: &str, unit: AmountUnit, ccy: Currency) -> Result<Money, String> {
    match unit {
        AmountUnit::Major => Money::parse(text, ccy).map_err(|e| e.to_string()),
        AmountUnit::Minor => text
            .parse::<i64>()
            .map(|m| Money::from_minor(m, ccy))
            .map_err(|_| format!("`{text}` is not a whole amount in minor units (fen/cents)")),
    }
}

fn parse_date(text: &str, fmt: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, fmt)
        .map_err(|e| format!("`{text}` is not a date in the format `{fmt}` ({e})"))
}

#[derive(Default)]
struct Computed {
    entries: u64,
    sum: Decimal,
    credits: u64,
    credit_sum: Decimal,
    debits: u64,
    debit_sum: Decimal,
}

/// A count or total declared by the header or trailer.
struct Declared {
    loc: String,
    what: &'static str,
    field: String,
    count: Option<u64>,
    amount: Option<Decimal>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Body,
    Done,
}

/// Streaming reader: yields `File`, `Statement`, each `Entry`, `StatementEnd`.
pub struct TextReader<R> {
    reader: R,
    file: String,
    layout: TextLayout,
    invalid: Option<String>,
    enc: &'static Encoding,
    buf: Vec<u8>,
    /// Physical lines read so far.
    line_no: u64,
    phase: Phase,
    queue: VecDeque<Event>,
    lookahead: Option<(u64, String)>,
    header_date: Option<NaiveDate>,
    account: Option<String>,
    declared: Vec<Declared>,
    computed: Computed,
    entry_seq: u32,
}

impl<R: BufRead> TextReader<R> {
    /// A layout that does not validate makes the first item an error.
    pub fn new(reader: R, file: &str, layout: &TextLayout) -> Self {
        let invalid = layout.validate().err();
        TextReader {
            reader,
            file: file.to_string(),
            layout: layout.clone(),
            invalid,
            enc: layout.encoding().unwrap_or(encoding_rs::UTF_8),
            buf: Vec::new(),
            line_no: 0,
            phase: Phase::Start,
            queue: VecDeque::new(),
            lookahead: None,
            header_date: None,
            account: layout.account.clone(),
            declared: Vec::new(),
            computed: Computed::default(),
            entry_seq: 0,
        }
    }

    fn err(&self, loc: impl Into<String>, reason: impl Into<String>) -> ParseError {
        ParseError::new(&self.file, loc, reason)
    }

    /// Reads one physical line into `buf` (without `\n`); `false` at the end of the file.
    fn read_raw(&mut self) -> Result<bool, ParseError> {
        self.buf.clear();
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ParseError::io(&self.file, &e)),
            };
            if avail.is_empty() {
                if self.buf.is_empty() {
                    return Ok(false);
                }
                self.line_no += 1;
                return Ok(true);
            }
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            if self.buf.len() + take > MAX_LINE {
                let n = self.line_no + 1;
                return Err(self.err(
                    format!("line {n}"),
                    format!("the line is longer than {MAX_LINE} bytes"),
                ));
            }
            self.buf.extend_from_slice(&avail[..take]);
            self.reader.consume(take + usize::from(done));
            if done {
                self.line_no += 1;
                return Ok(true);
            }
        }
    }

    /// The next non-blank line, decoded, with its number.
    fn next_line(&mut self) -> Result<Option<(u64, String)>, ParseError> {
        loop {
            if !self.read_raw()? {
                return Ok(None);
            }
            let mut bytes = &self.buf[..];
            if let Some(b) = bytes.strip_suffix(b"\r") {
                bytes = b;
            }
            if self.line_no == 1 && self.enc == encoding_rs::UTF_8 {
                if let Some(b) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                    bytes = b;
                }
            }
            let mut dec = self.enc.new_decoder_without_bom_handling();
            let cap = dec
                .max_utf8_buffer_length_without_replacement(bytes.len())
                .unwrap_or(usize::MAX);
            let mut s = String::with_capacity(cap.min(4 * MAX_LINE + 16));
            let (res, read) = dec.decode_to_string_without_replacement(bytes, &mut s, true);
            match res {
                DecoderResult::InputEmpty => {}
                DecoderResult::Malformed(bad, extra) => {
                    let at = read.saturating_sub(bad as usize + extra as usize);
                    return Err(self.err(
                        format!("line {}", self.line_no),
                        format!(
                            "the line is not valid {} (undecodable bytes at byte {})",
                            self.enc.name(),
                            at + 1
                        ),
                    ));
                }
                DecoderResult::OutputFull => {
                    return Err(self.err(
                        format!("line {}", self.line_no),
                        "the line cannot be decoded",
                    ))
                }
            }
            if !s.trim().is_empty() {
                return Ok(Some((self.line_no, s)));
            }
        }
    }

    /// The named values of a line's fields (`-` left out), trimmed.
    fn fields(
        &self,
        loc: &str,
        line: &str,
        specs: &[ColumnSpec],
        what: &str,
    ) -> Result<Vec<(String, String)>, ParseError> {
        let mut out = Vec::with_capacity(specs.len());
        match self.layout.kind {
            LayoutKind::Delimited => {
                let delim = self
                    .layout
                    .delimiter
                    .as_deref()
                    .and_then(|d| d.chars().next())
                    .unwrap_or('|');
                let quote = self.layout.quote.as_deref().and_then(|q| q.chars().next());
                let mut vals = split_delimited(line, delim, quote).map_err(|e| self.err(loc, e))?;
                if vals.len() == specs.len() + 1 && vals.last().is_some_and(|v| v.trim().is_empty())
                {
                    vals.pop();
                }
                if vals.len() != specs.len() {
                    return Err(self.err(
                        loc,
                        format!(
                            "the line has {} field(s) separated by `{delim}`, the layout's `{what}` lists {}",
                            vals.len(),
                            specs.len()
                        ),
                    ));
                }
                for (s, v) in specs.iter().zip(vals) {
                    if s.name() != "-" {
                        out.push((s.name().to_string(), v.trim().to_string()));
                    }
                }
            }
            LayoutKind::FixedWidth => {
                let idx: Vec<usize> = line
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain(std::iter::once(line.len()))
                    .collect();
                let nchars = idx.len() - 1;
                for s in specs {
                    let ColumnSpec::Fixed(f) = s else { continue };
                    let start = f.start.unwrap_or(1).max(1) - 1;
                    let end = start.saturating_add(f.len.unwrap_or(1));
                    if end > nchars {
                        return Err(self.err(
                            format!("{loc}, column `{}`", f.name),
                            format!(
                                "the line is {nchars} characters long, too short for `{}` (characters {}-{end})",
                                f.name,
                                start + 1
                            ),
                        ));
                    }
                    if f.name != "-" {
                        out.push((
                            f.name.clone(),
                            line[idx[start]..idx[end]].trim().to_string(),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Parses the header or trailer line into `declared` (and the date and account).
    fn parse_record(&mut self, n: u64, line: &str, header: bool) -> Result<(), ParseError> {
        let what = if header { "header" } else { "trailer" };
        let rec = if header {
            &self.layout.header
        } else {
            &self.layout.trailer
        };
        let Some(rec) = rec.clone() else {
            return Ok(());
        };
        let loc = format!("line {n} ({what})");
        if let Some(m) = &rec.marker {
            if !line.starts_with(m.as_str()) {
                let why = if header {
                    format!("the header line does not start with `{m}`")
                } else {
                    format!("the last line does not start with the trailer's `{m}`: the trailer is missing (truncated file?)")
                };
                return Err(self.err(loc, why));
            }
        }
        let fields = self
            .fields(&loc, line, &rec.fields, &format!("{what}.fields"))
            .map_err(|mut e| {
                if !header && rec.marker.is_none() {
                    e.reason.push_str(" (is the trailer missing?)");
                }
                e
            })?;
        let ccy = self.layout.currency.unwrap_or(Currency::XXX);
        for (name, v) in fields {
            if v.is_empty() {
                continue;
            }
            let floc = format!("{loc}, field `{name}`");
            match name.as_str() {
                "date" => {
                    let f = rec
                        .date_format
                        .as_deref()
                        .unwrap_or(&self.layout.date_format);
                    let d = parse_date(&v, f).map_err(|e| self.err(&floc, e))?;
                    if header {
                        self.header_date = Some(d);
                    }
                }
                "account" => {
                    if header {
                        self.account = Some(v);
                    }
                }
                "count" | "credit_count" | "debit_count" => {
                    let c: u64 = v
                        .parse()
                        .map_err(|_| self.err(&floc, format!("`{v}` is not a count of records")))?;
                    self.declared.push(Declared {
                        loc: floc,
                        what,
                        field: name,
                        count: Some(c),
                        amount: None,
                    });
                }
                _ => {
                    let m = parse_amount(&v, self.layout.amount_unit, ccy)
                        .map_err(|e| self.err(&floc, e))?;
                    self.declared.push(Declared {
                        loc: floc,
                        what,
                        field: name,
                        count: None,
                        amount: Some(m.amount()),
                    });
                }
            }
        }
        Ok(())
    }

    fn parse_entry(&mut self, n: u64, line: &str) -> Result<Entry, ParseError> {
        let loc = format!("line {n}");
        let fields = self.fields(&loc, line, &self.layout.columns, "columns")?;
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let cloc = |c: &str| format!("line {n}, column `{c}`");
        let currency = match get("currency") {
            Some(c) => Currency::parse(c).map_err(|e| self.err(cloc("currency"), e.to_string()))?,
            None => self
                .layout
                .currency
                .ok_or_else(|| self.err(cloc("currency"), "the currency is empty"))?,
        };
        let raw = get("amount").ok_or_else(|| self.err(cloc("amount"), "the amount is empty"))?;
        let signed = parse_amount(raw, self.layout.amount_unit, currency)
            .map_err(|e| self.err(cloc("amount"), e))?;
        if signed.is_zero() {
            return Err(self.err(cloc("amount"), format!("the amount `{raw}` is zero")));
        }
        let amount = if signed.is_positive() {
            signed
        } else {
            signed.negated()
        };
        let direction = if self.layout.has_column("direction") {
            if !signed.is_positive() {
                return Err(self.err(
                    cloc("amount"),
                    format!(
                        "the amount `{raw}` is negative but the `direction` column gives the sign"
                    ),
                ));
            }
            let d = get("direction").unwrap_or("");
            if self
                .layout
                .credit_values()
                .iter()
                .any(|c| c.eq_ignore_ascii_case(d))
            {
                Direction::Credit
            } else if self
                .layout
                .debit_values()
                .iter()
                .any(|c| c.eq_ignore_ascii_case(d))
            {
                Direction::Debit
            } else {
                return Err(self.err(
                    cloc("direction"),
                    format!(
                        "`{d}` is neither a credit value ({}) nor a debit value ({})",
                        self.layout.credit_values().join(" "),
                        self.layout.debit_values().join(" ")
                    ),
                ));
            }
        } else if signed.is_positive() {
            Direction::Credit
        } else {
            Direction::Debit
        };
        let date = |col: &str| -> Result<Option<NaiveDate>, ParseError> {
            get(col)
                .map(|v| {
                    parse_date(v, &self.layout.date_format).map_err(|e| self.err(cloc(col), e))
                })
                .transpose()
        };
        let booking_date = date("date")?.or(self.header_date);
        let value_date = date("value_date")?;
        let s = |col: &str| get(col).map(str::to_string);

        let file = &self.file;
        let overflow = || ParseError::new(file, &loc, "the file's totals overflow");
        let c = &mut self.computed;
        let a = amount.amount();
        c.entries += 1;
        c.sum = c.sum.checked_add(a).ok_or_else(overflow)?;
        match direction {
            Direction::Credit => {
                c.credits += 1;
                c.credit_sum = c.credit_sum.checked_add(a).ok_or_else(overflow)?;
            }
            Direction::Debit => {
                c.debits += 1;
                c.debit_sum = c.debit_sum.checked_add(a).ok_or_else(overflow)?;
            }
        }
        self.entry_seq = self
            .entry_seq
            .checked_add(1)
            .ok_or_else(|| ParseError::new(&self.file, &loc, "too many lines"))?;
        Ok(Entry {
            entry_seq: self.entry_seq,
            tx_seq: 1,
            tx_count: 1,
            amount,
            currency,
            direction,
            reversal: false,
            status: EntryStatus::Booked,
            booking_date,
            value_date,
            bank_ref: s("bank_ref"),
            entry_ref: s("bank_ref"),
            end_to_end_id: s("end_to_end_id"),
            tx_id: None,
            payer_name: s("payer_name"),
            payer_account: s("payer_account"),
            reference: s("reference"),
            remittance: s("remittance"),
            additional_info: s("additional_info"),
            return_reason: None,
            instructed_amount: None,
            bank_tx_code: None,
        })
    }

    /// What the header and trailer declare must be what the lines add up to: each failure is
    /// a finding (`entry_count`, `entries_sum`, `credit_count`, `credit_sum`, `debit_count`,
    /// `debit_sum`), queued before the statement's end.
    fn check_totals(&mut self) {
        let c = &self.computed;
        let mut found = Vec::new();
        for d in &self.declared {
            let (count, sum, what, checks) = match d.field.as_str() {
                "count" | "total" => (c.entries, c.sum, "records", ("entry_count", "entries_sum")),
                "credit_count" | "credit_total" => (
                    c.credits,
                    c.credit_sum,
                    "credit records",
                    ("credit_count", "credit_sum"),
                ),
                _ => (
                    c.debits,
                    c.debit_sum,
                    "debit records",
                    ("debit_count", "debit_sum"),
                ),
            };
            if let Some(n) = d.count {
                if n != count {
                    found.push(finding(
                        checks.0,
                        Severity::Error,
                        d.loc.clone(),
                        n,
                        count,
                        None,
                        format!("the {} declares {n} {what}, the file has {count}", d.what),
                    ));
                }
            }
            if let Some(a) = d.amount {
                if a != sum {
                    found.push(finding(
                        checks.1,
                        Severity::Error,
                        d.loc.clone(),
                        a,
                        sum,
                        None,
                        format!(
                            "the {} declares a total of {a}, the {what} add up to {sum}",
                            d.what
                        ),
                    ));
                }
            }
        }
        self.queue.extend(found.into_iter().map(Event::Finding));
    }

    fn totals(&self) -> StatementTotals {
        let mut t = StatementTotals::default();
        for d in &self.declared {
            match d.field.as_str() {
                "count" => t.entry_count = d.count,
                "total" => t.sum = d.amount,
                "credit_count" => t.credit_count = d.count,
                "credit_total" => t.credit_sum = d.amount,
                "debit_count" => t.debit_count = d.count,
                "debit_total" => t.debit_sum = d.amount,
                _ => {}
            }
        }
        t
    }

    fn start(&mut self) -> Result<(), ParseError> {
        if let Some(msg) = &self.invalid {
            return Err(self.err("layout", format!("invalid [bank.layout]: {msg}")));
        }
        let mut skipped = 0;
        for _ in 0..self.layout.skip_lines {
            if !self.read_raw()? {
                break;
            }
            skipped += 1;
        }
        let Some((n, first)) = self.next_line()? else {
            return Err(if skipped == 0 {
                self.err("start of file", "the file is empty")
            } else {
                self.err(
                    format!("line {}", self.line_no + 1),
                    "the file has nothing after the skipped lines",
                )
            });
        };
        if self.layout.header.is_some() {
            self.parse_record(n, &first, true)?;
        } else {
            self.lookahead = Some((n, first));
        }
        let created_at = self.header_date.map(|d| d.format("%Y-%m-%d").to_string());
        let Some(account) = self.account.clone() else {
            let at = if self.layout.header.is_some() {
                format!("line {n} (header)")
            } else {
                "start of file".into()
            };
            return Err(self.err(
                at,
                "the statement has no account (the header's `account` is empty)",
            ));
        };
        self.queue.push_back(Event::File(
            Format::Text,
            FileHeader {
                file_id: None,
                created_at: created_at.clone(),
                version: None,
            },
        ));
        self.queue.push_back(Event::Statement(Statement {
            statement_id: None,
            account,
            currency: self.layout.currency,
            created_at,
            opening_balance: None,
            closing_balance: None,
            declared: self.totals(),
            balances: Vec::new(),
            sequence: None,
            entries: Vec::new(),
        }));
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Event>, ParseError> {
        match self.phase {
            Phase::Done => Ok(None),
            Phase::Start => {
                self.start()?;
                self.phase = Phase::Body;
                Ok(self.queue.pop_front())
            }
            Phase::Body => {
                let cur = match self.lookahead.take() {
                    Some(l) => Some(l),
                    None => self.next_line()?,
                };
                let Some((n, line)) = cur else {
                    if self.layout.trailer.is_some() {
                        return Err(self.err(
                            format!("line {}", self.line_no),
                            "the file ends without its trailer line (truncated file?)",
                        ));
                    }
                    self.check_totals();
                    self.queue.push_back(Event::StatementEnd);
                    self.phase = Phase::Done;
                    return Ok(self.queue.pop_front());
                };
                if self.layout.trailer.is_some() {
                    match self.next_line()? {
                        None => {
                            self.parse_record(n, &line, false)?;
                            self.check_totals();
                            self.queue.push_back(Event::StatementEnd);
                            self.phase = Phase::Done;
                            return Ok(self.queue.pop_front());
                        }
                        Some(next) => self.lookahead = Some(next),
                    }
                }
                self.parse_entry(n, &line).map(|e| Some(Event::Entry(e)))
            }
        }
    }
}

impl<R: BufRead> Iterator for TextReader<R> {
    type Item = Result<Event, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(ev) = self.queue.pop_front() {
            return Some(Ok(ev));
        }
        match self.step() {
            Ok(Some(ev)) => Some(Ok(ev)),
            Ok(None) => {
                self.phase = Phase::Done;
                None
            }
            Err(e) => {
                self.phase = Phase::Done;
                self.queue.clear();
                self.lookahead = None;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
