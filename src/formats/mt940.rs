//! SWIFT MT940 (customer statement) and MT942 (interim transaction report), read as a stream.
//!
//! A file holds one or more messages, each optionally wrapped in SWIFT blocks
//! (`{1:…}{2:I940…}{4:` … `-}`) or separated by `-` lines; a message holds one statement
//! (`:20:` to the next `:20:`). The reader holds one statement at a time (its closing balance
//! comes after its entries and belongs in the `Statement` event), so memory is bounded by the
//! largest statement, which is itself bounded ([`MAX_ENTRIES`], [`MAX_FIELD`], [`MAX_LINE`]).
//!
//! Fields end at the next line starting with a tag `:NN:` or `:NNA:`; continuation lines are
//! joined without a separator, as banks wrap fields mid-word. The `:86:` narrative is read in
//! three dialects: `?NN` sub-fields (German/Dutch), `/TAG/` slash tags (ING, Rabobank) and
//! free text.
//!
//! Bytes that are not UTF-8 are decoded as Windows-1252 (a superset of the SWIFT charset).
//!
//! A statement that contradicts itself is an error: opening balance plus entries must be the
//! closing balance (MT940), `:90D:`/`:90C:` must count and add up the entries (MT942), and all
//! balances and entries must be in one currency.

use super::{Event, FileHeader, Format, ParseError};
use crate::domain::{Currency, Direction, Entry, EntryStatus, Money, Statement, StatementTotals};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::VecDeque;
use std::io::BufRead;
use std::str::FromStr;

/// A longer line is not SWIFT (lines are at most 65 characters).
pub const MAX_LINE: usize = 64 * 1024;
/// A longer field is not SWIFT (the longest, `:86:`, is 6 × 65 characters).
pub const MAX_FIELD: usize = 1024 * 1024;
/// Entries one statement may hold (the statement is held in memory until its closing balance).
pub const MAX_ENTRIES: usize = 200_000;

/// Recognizes an MT940/MT942 file from its first bytes.
pub fn sniff(head: &[u8]) -> Option<Format> {
    let head = &head[..head.len().min(8192)];
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}');
    let trimmed = text.trim_start();
    if trimmed.starts_with('<') || trimmed.starts_with("01,") {
        return None;
    }
    let mut block_format = None;
    let mut body = trimmed;
    if body.starts_with("{1:") || body.starts_with("{2:") {
        if let Some(p) = body.find("{2:") {
            let b2 = &body[p + 3..];
            let ty = b2.get(1..4).unwrap_or("");
            block_format = match ty {
                "940" => Some(Format::Mt940),
                "942" => Some(Format::Mt942),
                _ => return None,
            };
        }
        let p = body.find("{4:")?;
        body = &body[p + 3..];
    }
    let mut tags = body
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && *l != ":940:" && *l != ":942:")
        .filter_map(tag_of);
    if tags.next().map(|(t, _)| t) != Some("20") {
        return None;
    }
    let tags: Vec<&str> = tags.map(|(t, _)| t).collect();
    if !tags.contains(&"25") {
        return None;
    }
    if let Some(f) = block_format {
        return Some(f);
    }
    let has = |t: &str| tags.contains(&t);
    if (has("34F") || has("13D") || has("90D") || has("90C")) && !has("60F") && !has("60M") {
        Some(Format::Mt942)
    } else {
        Some(Format::Mt940)
    }
}

/// The tag of a line starting with `:NN:` or `:NNA:`, and the rest of the line.
fn tag_of(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    if b.len() < 4 || b[0] != b':' || !b[1].is_ascii_digit() || !b[2].is_ascii_digit() {
        return None;
    }
    if b[3] == b':' {
        return Some((&line[1..3], &line[4..]));
    }
    if b.len() >= 5 && b[3].is_ascii_uppercase() && b[4] == b':' {
        return Some((&line[1..4], &line[5..]));
    }
    None
}

/// One field: its tag, its lines (the first without the tag) and the line it starts on.
#[derive(Debug)]
struct Field {
    tag: String,
    lines: Vec<String>,
    line: u64,
    size: usize,
}

impl Field {
    fn joined(&self) -> String {
        self.lines.concat()
    }
    fn loc(&self) -> String {
        format!("line {}, field :{}:", self.line, self.tag)
    }
}

enum Item {
    Field(Field),
    /// `-}` or a `-` line ending a message.
    MessageEnd,
    Eof,
}

/// A balance field (`:60F:`, `:62F:`, `:64:`, `:65:`).
#[derive(Clone, Debug)]
struct Balance {
    signed: Decimal,
    currency: Currency,
}

#[derive(Default)]
struct StmtState {
    id: String,
    id_line: u64,
    account: Option<String>,
    currency: Option<(Currency, String)>,
    created_at: Option<String>,
    opening: Option<Balance>,
    closing: Option<Balance>,
    closing_loc: String,
    is_942: bool,
    d90: Option<(u64, Decimal, String)>,
    c90: Option<(u64, Decimal, String)>,
    entries: Vec<Entry>,
    /// The previous field was a `:61:`: a `:86:` now belongs to its entry.
    after_61: bool,
    credit_sum: Decimal,
    debit_sum: Decimal,
    credits: u64,
    debits: u64,
}

/// Streaming reader of MT940 / MT942 files.
pub struct Mt940Reader<R> {
    reader: R,
    file: String,
    hint: Format,
    line_no: u64,
    peeked: Option<String>,
    in_block: bool,
    block_line: u64,
    block_format: Option<Format>,
    cur: Option<Field>,
    items: VecDeque<Item>,
    stash: Option<Field>,
    queue: VecDeque<Event>,
    file_emitted: bool,
    statements: u64,
    done: bool,
}

impl<R: BufRead> Mt940Reader<R> {
    pub fn new(reader: R, file: &str, format: Format) -> Self {
        Mt940Reader {
            reader,
            file: file.to_string(),
            hint: format,
            line_no: 0,
            peeked: None,
            in_block: false,
            block_line: 0,
            block_format: None,
            cur: None,
            items: VecDeque::new(),
            stash: None,
            queue: VecDeque::new(),
            file_emitted: false,
            statements: 0,
            done: false,
        }
    }

    fn err_at(&self, loc: impl Into<String>, reason: impl Into<String>) -> ParseError {
        ParseError::new(&self.file, loc, reason)
    }

    fn err_line(&self, reason: impl Into<String>) -> ParseError {
        self.err_at(format!("line {}", self.line_no.max(1)), reason)
    }

    /// One raw line, bounded, without its line ending; `None` at end of file.
    fn read_line(&mut self) -> Result<Option<String>, ParseError> {
        if let Some(l) = self.peeked.take() {
            self.line_no += 1;
            return Ok(Some(l));
        }
        let l = self.read_raw()?;
        if l.is_some() {
            self.line_no += 1;
        }
        Ok(l)
    }

    fn peek_line(&mut self) -> Result<Option<&str>, ParseError> {
        if self.peeked.is_none() {
            self.peeked = self.read_raw()?;
        }
        Ok(self.peeked.as_deref())
    }

    fn read_raw(&mut self) -> Result<Option<String>, ParseError> {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ParseError::io(&self.file, &e)),
            };
            if avail.is_empty() {
                if buf.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let (take, end) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if buf.len() + take > MAX_LINE {
                return Err(self.err_at(
                    format!("line {}", self.line_no + 1),
                    format!("line longer than {MAX_LINE} bytes: not an MT940/MT942 file"),
                ));
            }
            buf.extend_from_slice(&avail[..take]);
            self.reader.consume(take);
            if end {
                break;
            }
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let mut s = match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(e.as_bytes())
                .0
                .into_owned(),
        };
        if s.starts_with('\u{feff}') {
            s.drain(..3);
        }
        Ok(Some(s))
    }

    fn finish_field(&mut self) {
        if let Some(f) = self.cur.take() {
            self.items.push_back(Item::Field(f));
        }
    }

    /// Reads lines until at least one item is complete.
    fn pump(&mut self) -> Result<(), ParseError> {
        while self.items.is_empty() {
            let Some(line) = self.read_line()? else {
                self.finish_field();
                if self.in_block {
                    return Err(self.err_line(format!(
                        "truncated file: the block {{4: opened on line {} is never closed with -}}",
                        self.block_line
                    )));
                }
                self.items.push_back(Item::Eof);
                return Ok(());
            };
            self.process_line(line)?;
        }
        Ok(())
    }

    fn process_line(&mut self, line: String) -> Result<(), ParseError> {
        let t = line.trim_end();
        if t.trim().is_empty() {
            return Ok(());
        }
        if t.starts_with("{1:")
            || t.starts_with("{2:")
            || t.starts_with("{3:")
            || t.starts_with("{4:")
            || t.starts_with("{5:")
        {
            if let Some(p) = t.find("{2:") {
                match t.get(p + 4..p + 7) {
                    Some("940") => self.block_format = Some(Format::Mt940),
                    Some("942") => self.block_format = Some(Format::Mt942),
                    Some(other) => {
                        return Err(self.err_line(format!(
                            "block 2 names message type MT{other}, not MT940 or MT942"
                        )))
                    }
                    None => {}
                }
            }
            if let Some(p) = t.find("{4:") {
                self.finish_field();
                if self.in_block {
                    return Err(self.err_line(format!(
                        "a new block {{4: starts before the one opened on line {} is closed with -}}",
                        self.block_line
                    )));
                }
                self.in_block = true;
                self.block_line = self.line_no;
                let rest = t[p + 3..].to_string();
                if !rest.trim().is_empty() {
                    return self.process_line(rest);
                }
            }
            return Ok(());
        }
        if t.starts_with("-}") {
            self.finish_field();
            if !self.in_block {
                return Err(self.err_line("`-}` closes a block that was never opened with {4:"));
            }
            self.in_block = false;
            self.items.push_back(Item::MessageEnd);
            return Ok(());
        }
        if t.trim() == "-" && !self.in_block {
            let ends = match self.peek_line()? {
                None => true,
                Some(n) => {
                    let n = n.trim();
                    n.is_empty()
                        || n.starts_with(":20:")
                        || n.starts_with('{')
                        || n.starts_with('-')
                        || n == ":940:"
                        || n == ":942:"
                }
            };
            if ends {
                self.finish_field();
                self.items.push_back(Item::MessageEnd);
                return Ok(());
            }
        }
        if let Some((tag, rest)) = tag_of(t) {
            self.finish_field();
            self.cur = Some(Field {
                tag: tag.to_string(),
                lines: vec![rest.to_string()],
                line: self.line_no,
                size: rest.len(),
            });
            return Ok(());
        }
        let line_no = self.line_no;
        match self.cur.as_mut() {
            Some(f) => {
                f.size += t.len();
                if f.size > MAX_FIELD {
                    let loc = f.loc();
                    return Err(self.err_at(loc, format!("field longer than {MAX_FIELD} bytes")));
                }
                f.lines.push(t.to_string());
                Ok(())
            }
            None if t == ":940:" || t == ":942:" => Ok(()),
            None => {
                let shown: String = t.chars().take(40).collect();
                Err(self.err_at(
                    format!("line {line_no}"),
                    format!(
                        "not an MT940/MT942 file: expected a field tag such as :20: but found `{shown}`"
                    ),
                ))
            }
        }
    }

    fn next_item(&mut self) -> Result<Item, ParseError> {
        if let Some(f) = self.stash.take() {
            return Ok(Item::Field(f));
        }
        self.pump()?;
        Ok(self.items.pop_front().unwrap_or(Item::Eof))
    }

    /// Reads one statement and queues its events; `false` at the end of the file.
    fn read_statement(&mut self) -> Result<bool, ParseError> {
        let mut st: Option<StmtState> = None;
        let at_eof;
        loop {
            match self.next_item()? {
                Item::Eof => {
                    at_eof = true;
                    break;
                }
                Item::MessageEnd => {
                    if st.is_some() {
                        at_eof = false;
                        break;
                    }
                }
                Item::Field(f) => match st.as_mut() {
                    None => {
                        if f.tag != "20" {
                            return Err(self.err_at(
                                f.loc(),
                                format!(
                                    "missing mandatory field :20: (a statement starts with :20:, found :{}:)",
                                    f.tag
                                ),
                            ));
                        }
                        let id = f.joined().trim().to_string();
                        if id.is_empty() {
                            return Err(self.err_at(f.loc(), "empty transaction reference :20:"));
                        }
                        st = Some(StmtState {
                            id,
                            id_line: f.line,
                            ..StmtState::default()
                        });
                    }
                    Some(s) => {
                        if f.tag == "20" {
                            self.stash = Some(f);
                            at_eof = false;
                            break;
                        }
                        self.apply(s, f)?;
                    }
                },
            }
        }
        let Some(st) = st else {
            if self.statements == 0 {
                return Err(self.err_at(
                    if self.line_no == 0 {
                        "start of file".to_string()
                    } else {
                        format!("end of file, line {}", self.line_no)
                    },
                    if self.line_no == 0 {
                        "the file is empty: no statement found".to_string()
                    } else {
                        "no statement found".to_string()
                    },
                ));
            }
            return Ok(false);
        };
        self.finish(st, at_eof)?;
        Ok(true)
    }

    fn set_currency(&self, s: &mut StmtState, c: Currency, f: &Field) -> Result<(), ParseError> {
        match &s.currency {
            Some((have, from)) if *have != c => Err(self.err_at(
                f.loc(),
                format!("currency {c} differs from the statement's currency {have} ({from})"),
            )),
            Some(_) => Ok(()),
            None => {
                s.currency = Some((c, f.loc()));
                Ok(())
            }
        }
    }

    fn apply(&self, s: &mut StmtState, f: Field) -> Result<(), ParseError> {
        let was_61 = std::mem::replace(&mut s.after_61, false);
        let err = |reason: String| self.err_at(f.loc(), reason);
        match f.tag.as_str() {
            "25" => {
                let a = f.joined().trim().to_string();
                if a.is_empty() {
                    return Err(err("empty account identification :25:".into()));
                }
                s.account = Some(a);
            }
            "60F" | "60M" => {
                let b = parse_balance(&f.joined()).map_err(err)?;
                self.set_currency(s, b.currency, &f)?;
                if s.opening.is_none() {
                    s.opening = Some(b);
                }
            }
            "62F" | "62M" => {
                let b = parse_balance(&f.joined()).map_err(err)?;
                self.set_currency(s, b.currency, &f)?;
                s.closing = Some(b);
                s.closing_loc = f.loc();
            }
            "64" | "65" => {
                let b = parse_balance(&f.joined()).map_err(err)?;
                self.set_currency(s, b.currency, &f)?;
            }
            "34F" => {
                s.is_942 = true;
                let v = f.joined();
                let v = v.trim();
                let ccy = v.get(..3).unwrap_or("");
                let c = Currency::parse(ccy)
                    .map_err(|_| err(format!("`{v}` does not start with a currency code")))?;
                let rest = &v[3..];
                let rest = rest.strip_prefix(['D', 'C']).unwrap_or(rest);
                parse_amount(rest, c).map_err(err)?;
                self.set_currency(s, c, &f)?;
            }
            "13D" | "13" => {
                s.created_at = Some(parse_datetime(f.joined().trim()).map_err(err)?);
            }
            "90D" | "90C" => {
                s.is_942 = true;
                let v = f.joined();
                let v = v.trim();
                let n = v.bytes().take_while(|b| b.is_ascii_digit()).count();
                let count: u64 = v[..n]
                    .parse()
                    .map_err(|_| err(format!("`{v}` does not start with a number of entries")))?;
                let ccy = v.get(n..n + 3).unwrap_or("");
                let c = Currency::parse(ccy)
                    .map_err(|_| err(format!("`{v}`: no currency code after the count")))?;
                let amount = parse_amount(&v[n + 3..], c).map_err(err)?;
                self.set_currency(s, c, &f)?;
                let d = Some((count, amount.amount(), f.loc()));
                if f.tag == "90D" {
                    s.d90 = d;
                } else {
                    s.c90 = d;
                }
            }
            "61" => {
                if s.closing.is_some() {
                    return Err(err("statement line after the closing balance".into()));
                }
                let Some((ccy, _)) = s.currency.clone() else {
                    return Err(err(
                        "statement line before the opening balance :60F: or floor limit :34F: that names the currency".into(),
                    ));
                };
                if s.entries.len() >= MAX_ENTRIES {
                    return Err(err(format!(
                        "more than {MAX_ENTRIES} entries in one statement"
                    )));
                }
                let line = parse_61(&f.lines, ccy).map_err(err)?;
                let e = line.entry(s.entries.len() as u32 + 1, ccy);
                let overflow = || err("the statement's totals overflow".into());
                match e.direction {
                    Direction::Credit => {
                        s.credits += 1;
                        s.credit_sum = s
                            .credit_sum
                            .checked_add(e.amount.amount())
                            .ok_or_else(overflow)?;
                    }
                    Direction::Debit => {
                        s.debits += 1;
                        s.debit_sum = s
                            .debit_sum
                            .checked_add(e.amount.amount())
                            .ok_or_else(overflow)?;
                    }
                }
                s.entries.push(e);
                s.after_61 = true;
            }
            "86" if was_61 => {
                if let Some(e) = s.entries.last_mut() {
                    apply_86(e, &f.joined());
                }
            }
            // :21: related reference, :28C: statement number, others: not in the model.
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, mut s: StmtState, at_eof: bool) -> Result<(), ParseError> {
        let loc20 = format!("line {}, field :20:", s.id_line);
        let Some(account) = s.account.take() else {
            return Err(self.err_at(
                loc20,
                format!("missing mandatory field :25: in statement {}", s.id),
            ));
        };
        let is_942 = s.opening.is_none()
            && (s.is_942
                || self.block_format == Some(Format::Mt942)
                || (self.block_format.is_none() && self.hint == Format::Mt942));
        if !is_942 {
            if s.opening.is_none() {
                return Err(self.err_at(
                    loc20,
                    format!(
                        "missing mandatory field :60F:/:60M: (opening balance) in statement {}",
                        s.id
                    ),
                ));
            }
            if s.closing.is_none() {
                let reason = if at_eof {
                    format!(
                        "truncated file: statement {} ends at the end of the file without a closing balance :62F:/:62M:",
                        s.id
                    )
                } else {
                    format!(
                        "missing mandatory field :62F:/:62M: (closing balance) in statement {}",
                        s.id
                    )
                };
                return Err(self.err_line(reason));
            }
        }
        let net = s.credit_sum - s.debit_sum;
        if let (Some(o), Some(c)) = (&s.opening, &s.closing) {
            if o.signed + net != c.signed {
                return Err(self.err_at(
                    s.closing_loc.clone(),
                    format!(
                        "opening {} + entries {} != closing {} (statement {})",
                        o.signed, net, c.signed, s.id
                    ),
                ));
            }
        }
        for (decl, count, sum, what) in [
            (&s.d90, s.debits, s.debit_sum, "debit"),
            (&s.c90, s.credits, s.credit_sum, "credit"),
        ] {
            if let Some((n, amount, loc)) = decl {
                if *n != count || *amount != sum {
                    return Err(self.err_at(
                        loc.clone(),
                        format!(
                            "declares {n} {what} entries of {amount} but the statement has {count} adding up to {sum}"
                        ),
                    ));
                }
            }
        }
        if is_942 && s.currency.is_none() {
            return Err(self.err_at(
                loc20,
                format!(
                    "statement {} names no currency (no :34F:, :90D:/:90C: or balance)",
                    s.id
                ),
            ));
        }
        let currency = s.currency.as_ref().map(|(c, _)| *c);
        let account = strip_currency(&account, currency);
        if !self.file_emitted {
            self.file_emitted = true;
            let format = if is_942 { Format::Mt942 } else { Format::Mt940 };
            self.queue
                .push_back(Event::File(format, FileHeader::default()));
        }
        self.statements += 1;
        let declared = StatementTotals {
            credit_count: s.c90.as_ref().map(|d| d.0),
            credit_sum: s.c90.as_ref().map(|d| d.1),
            debit_count: s.d90.as_ref().map(|d| d.0),
            debit_sum: s.d90.as_ref().map(|d| d.1),
            ..StatementTotals::default()
        };
        self.queue.push_back(Event::Statement(Statement {
            statement_id: Some(s.id),
            account,
            currency,
            created_at: s.created_at,
            opening_balance: s.opening.map(|b| b.signed),
            closing_balance: s.closing.map(|b| b.signed),
            declared,
            entries: vec![],
        }));
        for e in s.entries {
            self.queue.push_back(Event::Entry(e));
        }
        self.queue.push_back(Event::StatementEnd);
        Ok(())
    }
}

impl<R: BufRead> Iterator for Mt940Reader<R> {
    type Item = Result<Event, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            match self.read_statement() {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    self.queue.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

/// `NL34RABO0142623393 EUR` or `NL77INGB0574908765EUR` (an IBAN followed by the
/// statement's currency): the account without the currency.
fn strip_currency(account: &str, currency: Option<Currency>) -> String {
    let Some(c) = currency else {
        return account.to_string();
    };
    if let Some(rest) = account.strip_suffix(c.as_str()) {
        let trimmed = rest.trim_end();
        if trimmed.len() < rest.len() && !trimmed.is_empty() {
            return trimmed.to_string();
        }
        if iban_shaped(rest) {
            return rest.to_string();
        }
    }
    account.to_string()
}

/// Two letters, two check digits, then 11 to 30 letters or digits (the check digits are not
/// verified: test files carry made-up IBANs).
fn iban_shaped(s: &str) -> bool {
    let b = s.as_bytes();
    (15..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// A SWIFT amount: digits, one comma, at most the currency's decimals.
fn parse_amount(s: &str, c: Currency) -> Result<Money, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a SWIFT amount (digits with one decimal comma)");
    if s.is_empty()
        || s.len() > 15
        || !s.bytes().all(|b| b.is_ascii_digit() || b == b',')
        || s.bytes().filter(|b| *b == b',').count() != 1
        || !s.as_bytes()[0].is_ascii_digit()
    {
        return Err(bad());
    }
    let (int, frac) = s.split_once(',').ok_or_else(bad)?;
    if frac.len() > c.exponent() as usize {
        return Err(format!(
            "amount `{s}` has more decimals than {c} allows ({})",
            c.exponent()
        ));
    }
    let text = if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    };
    let d = Decimal::from_str(&text).map_err(|_| bad())?;
    Money::from_decimal(d, c).map_err(|e| e.to_string())
}

fn yymmdd(s: &str) -> Option<NaiveDate> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i32 = s[..2].parse().ok()?;
    let year = if yy < 80 { 2000 + yy } else { 1900 + yy };
    NaiveDate::from_ymd_opt(year, s[2..4].parse().ok()?, s[4..6].parse().ok()?)
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    yymmdd(s).ok_or_else(|| format!("`{s}` is not a valid date (YYMMDD)"))
}

/// `D140220EUR1,56`.
fn parse_balance(v: &str) -> Result<Balance, String> {
    let v = v.trim();
    let mark = v.get(..1).unwrap_or("");
    let negative = match mark {
        "C" => false,
        "D" => true,
        _ => return Err(format!("`{v}`: the debit/credit mark must be C or D")),
    };
    parse_date(v.get(1..7).unwrap_or(""))?;
    let ccy = v.get(7..10).unwrap_or("");
    let currency = Currency::parse(ccy).map_err(|_| format!("`{ccy}` is not a currency code"))?;
    let m = parse_amount(&v[10..], currency)?;
    let a = m.amount();
    Ok(Balance {
        signed: if negative { -a } else { a },
        currency,
    })
}

/// `2610151230+0800` → `2026-10-15T12:30:00+08:00`.
fn parse_datetime(v: &str) -> Result<String, String> {
    let bad = || format!("`{v}` is not a date-time (YYMMDDHHMM and an optional +HHMM offset)");
    let d = yymmdd(v.get(..6).ok_or_else(bad)?).ok_or_else(bad)?;
    let hm = v
        .get(6..10)
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(bad)?;
    let (h, m): (u32, u32) = (
        hm[..2].parse().map_err(|_| bad())?,
        hm[2..].parse().map_err(|_| bad())?,
    );
    if h > 23 || m > 59 {
        return Err(bad());
    }
    let zone = &v[10..];
    let zone = if zone.is_empty() {
        String::new()
    } else {
        let b = zone.as_bytes();
        if b.len() != 5 || !(b[0] == b'+' || b[0] == b'-') || !b[1..].iter().all(u8::is_ascii_digit)
        {
            return Err(bad());
        }
        format!("{}:{}", &zone[..3], &zone[3..])
    };
    Ok(format!("{}T{h:02}:{m:02}:00{zone}", d.format("%Y-%m-%d")))
}

/// A parsed `:61:` statement line.
struct Line61 {
    value_date: NaiveDate,
    entry_date: Option<NaiveDate>,
    direction: Direction,
    reversal: bool,
    amount: Money,
    tx_type: String,
    customer_ref: Option<String>,
    bank_ref: Option<String>,
    supplementary: Option<String>,
}

impl Line61 {
    fn entry(self, entry_seq: u32, ccy: Currency) -> Entry {
        let account = self.supplementary.as_deref().filter(|s| {
            s.len() >= 8 && s.len() <= 34 && s.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        let bank_ref = self.bank_ref.clone().or_else(|| self.customer_ref.clone());
        Entry {
            entry_seq,
            tx_seq: 1,
            tx_count: 1,
            amount: self.amount,
            currency: ccy,
            direction: self.direction,
            reversal: self.reversal,
            status: EntryStatus::Booked,
            booking_date: self.entry_date.or(Some(self.value_date)),
            value_date: Some(self.value_date),
            bank_ref: bank_ref.clone(),
            entry_ref: bank_ref,
            end_to_end_id: None,
            tx_id: self.customer_ref,
            payer_name: None,
            payer_account: account.map(str::to_string),
            reference: None,
            remittance: None,
            additional_info: None,
            return_reason: None,
            instructed_amount: None,
            bank_tx_code: Some(self.tx_type),
        }
    }
}

fn parse_61(lines: &[String], ccy: Currency) -> Result<Line61, String> {
    let main = lines.first().map(|l| l.trim()).unwrap_or("");
    let b = main.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .filter(|s| s.iter().all(u8::is_ascii_digit))
            .map(|_| &main[r])
    };
    let vd =
        digits(0..6).ok_or_else(|| format!("`{main}` does not start with a value date YYMMDD"))?;
    let value_date = parse_date(vd)?;
    let mut i = 6;
    let mut entry_date = None;
    if let Some(md) = digits(6..10) {
        entry_date = Some(entry_date_near(md, value_date)?);
        i = 10;
    }
    let (direction, reversal, n) = if b[i..].starts_with(b"RC") {
        (Direction::Debit, true, 2)
    } else if b[i..].starts_with(b"RD") {
        (Direction::Credit, true, 2)
    } else if b[i..].starts_with(b"C") {
        (Direction::Credit, false, 1)
    } else if b[i..].starts_with(b"D") {
        (Direction::Debit, false, 1)
    } else {
        return Err(format!(
            "`{main}`: the debit/credit mark must be C, D, RC or RD"
        ));
    };
    i += n;
    if b.get(i).is_some_and(u8::is_ascii_alphabetic) {
        let code = b[i];
        if code != ccy.as_str().as_bytes()[2] {
            return Err(format!(
                "`{main}`: funds code `{}` is not the last letter of the currency {ccy}",
                code as char
            ));
        }
        i += 1;
    }
    let start = i;
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b',') {
        i += 1;
    }
    let amount = parse_amount(&main[start..i], ccy).map_err(|e| format!("`{main}`: {e}"))?;
    let ty = b
        .get(i..i + 4)
        .filter(|t| matches!(t[0], b'N' | b'F' | b'S') && t.iter().all(u8::is_ascii_alphanumeric))
        .ok_or_else(|| {
            format!("`{main}`: no transaction type (N, F or S and 3 characters) after the amount")
        })?;
    let tx_type = String::from_utf8_lossy(ty).into_owned();
    let refs = &main[i + 4..];
    let (cust, mut bank) = match refs.find("//") {
        Some(p) => (&refs[..p], Some(refs[p + 2..].to_string())),
        None => (refs, None),
    };
    let mut rest = &lines[1.min(lines.len())..];
    if let (Some(bref), Some(first)) = (bank.as_mut(), rest.first()) {
        let f = first.trim();
        if !f.starts_with('/') && bref.len() + f.len() <= 16 {
            bref.push_str(f);
            rest = &rest[1..];
        }
    }
    let supplementary = rest.concat();
    let opt = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s != "NONREF").then(|| s.to_string())
    };
    Ok(Line61 {
        value_date,
        entry_date,
        direction,
        reversal,
        amount,
        tx_type,
        customer_ref: opt(cust),
        bank_ref: bank.as_deref().and_then(opt),
        supplementary: opt(&supplementary),
    })
}

/// The entry date `MMDD` in the year (of the value date, or the one before or after) that
/// puts it nearest the value date.
fn entry_date_near(md: &str, value: NaiveDate) -> Result<NaiveDate, String> {
    use chrono::Datelike;
    let (m, d): (u32, u32) = (
        md[..2].parse().map_err(|_| "bad entry date")?,
        md[2..].parse().map_err(|_| "bad entry date")?,
    );
    [value.year(), value.year() - 1, value.year() + 1]
        .into_iter()
        .filter_map(|y| NaiveDate::from_ymd_opt(y, m, d))
        .min_by_key(|d| (*d - value).num_days().abs())
        .ok_or_else(|| format!("`{md}` is not a valid entry date (MMDD)"))
}

/// Slash tags of the `:86:` narrative known to ING, Rabobank, ABN AMRO and others.
const SLASH_TAGS: &[&str] = &[
    "EREF", "REMI", "ORDP", "BENM", "NAME", "IBAN", "RTRN", "CNTP", "PREF", "MARF", "CSID", "ADDR",
    "ISDT", "BIC", "TRCD", "SUM", "IREF", "PURP", "ULTC", "ULTD", "ULTB", "EXCH", "CHGS", "BUSP",
    "RREF", "ACCW", "KREF", "SVWZ", "ID", "CDTR", "DBTR",
];

/// `(tag, value)` pairs of a slash-tagged narrative; each value runs to the next known tag.
fn slash_tags(t: &str) -> Vec<(&'static str, String)> {
    let b = t.as_bytes();
    let mut marks: Vec<(usize, usize, &'static str)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' {
            if let Some(tag) = SLASH_TAGS.iter().find(|tag| {
                let end = i + 1 + tag.len();
                b.get(i + 1..end) == Some(tag.as_bytes()) && b.get(end) == Some(&b'/')
            }) {
                marks.push((i, i + tag.len() + 2, tag));
                i += tag.len() + 1;
                continue;
            }
        }
        i += 1;
    }
    let mut out = Vec::new();
    for (k, (_, vstart, tag)) in marks.iter().enumerate() {
        let vend = marks
            .get(k + 1)
            .map(|m| m.0)
            .unwrap_or(b.len())
            .max(*vstart);
        let v = String::from_utf8_lossy(&b[*vstart..vend]);
        out.push((*tag, v.trim_end_matches('/').trim().to_string()));
    }
    out
}

fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Fills an entry from its `:86:` information to account owner.
fn apply_86(e: &mut Entry, text: &str) {
    let text = text.trim();
    e.additional_info = nonempty(text);
    if text.is_empty() {
        return;
    }
    let b = text.as_bytes();
    let structured =
        (b.len() >= 3 && b[0] == b'?' && b[1].is_ascii_digit() && b[2].is_ascii_digit())
            || (b.len() >= 6
                && b[..3].iter().all(u8::is_ascii_digit)
                && b[3] == b'?'
                && b[4].is_ascii_digit()
                && b[5].is_ascii_digit());
    if structured {
        apply_question_fields(e, text);
        return;
    }
    if text.starts_with('/') {
        let tags = slash_tags(text);
        if !tags.is_empty() {
            apply_slash_tags(e, &tags);
            return;
        }
    }
    e.remittance = nonempty(text);
}

fn apply_slash_tags(e: &mut Entry, tags: &[(&str, String)]) {
    let mut name = None;
    let mut cntp_name = None;
    let mut party = None;
    for (tag, v) in tags {
        match *tag {
            "EREF" => {
                e.end_to_end_id = nonempty(v).filter(|v| v != "NOTPROVIDED");
            }
            "REMI" => {
                let (r, structured) = if let Some(r) = v.strip_prefix("USTD//") {
                    (r, false)
                } else if let Some(r) = v.strip_prefix("STRD/CUR/") {
                    (r, true)
                } else {
                    (v.as_str(), false)
                };
                let r = r.trim_end_matches('/');
                e.remittance = nonempty(r);
                if structured {
                    e.reference = nonempty(r);
                }
            }
            "NAME" => name = nonempty(v),
            "IBAN" => e.payer_account = nonempty(v),
            "RTRN" => e.return_reason = nonempty(v),
            "CNTP" => {
                let mut parts = v.split('/');
                if let Some(acct) = parts.next().and_then(nonempty) {
                    e.payer_account.get_or_insert(acct);
                }
                let _bic = parts.next();
                cntp_name = parts.next().and_then(nonempty);
            }
            "ORDP" | "BENM" => party = nonempty(v),
            _ => {}
        }
    }
    if let Some(n) = name.or(cntp_name).or(party) {
        e.payer_name = Some(n);
    }
}

fn apply_question_fields(e: &mut Entry, text: &str) {
    let b = text.as_bytes();
    let mut subs: Vec<(u32, usize, usize)> = Vec::new();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'?' && b[i + 1].is_ascii_digit() && b[i + 2].is_ascii_digit() {
            if let Some(last) = subs.last_mut() {
                last.2 = i;
            }
            let code = ((b[i + 1] - b'0') * 10 + (b[i + 2] - b'0')) as u32;
            subs.push((code, i + 3, b.len()));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut remi = String::new();
    let mut name = String::new();
    for (code, s, t) in subs {
        let v = String::from_utf8_lossy(&b[s..t]);
        match code {
            20..=29 | 60..=63 => remi.push_str(&v),
            31 => e.payer_account = nonempty(&v),
            32 | 33 => name.push_str(&v),
            _ => {}
        }
    }
    e.payer_name = nonempty(&name);
    // German SEPA keywords inside the remittance lines: EREF+…, SVWZ+…
    let keys = [
        "EREF+", "KREF+", "MREF+", "CRED+", "DEBT+", "SVWZ+", "ABWA+", "ABWE+",
    ];
    let mut found: Vec<(usize, &str)> = keys
        .iter()
        .filter_map(|k| remi.find(k).map(|p| (p, *k)))
        .collect();
    found.sort();
    let value = |k: &str| {
        let idx = found.iter().position(|(_, key)| *key == k)?;
        let start = found[idx].0 + k.len();
        let end = found.get(idx + 1).map(|f| f.0).unwrap_or(remi.len());
        remi.get(start..end).and_then(nonempty)
    };
    if let Some(eref) = value("EREF+") {
        e.end_to_end_id = Some(eref).filter(|v| v != "NOTPROVIDED");
    }
    e.remittance = value("SVWZ+").or_else(|| nonempty(&remi));
}

#[cfg(test)]
#[path = "mt940_tests.rs"]
mod tests;
