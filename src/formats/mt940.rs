//! SWIFT MT940 (customer statement) and MT942 (interim transaction report), read as a stream.
//!
//! A file holds one or more messages, each optionally wrapped in SWIFT blocks
//! (`{1:…}{2:I940…}{4:` … `-}`), separated by `-` lines or by nothing at all, and optionally
//! preceded by a bank's own header lines (ABN AMRO's `ABNANL2A` / `940` / `ABNANL2A`, ING's
//! `0000 01INGBNL2AXXXX00001`, mBank's control characters, a byte-order mark, blank lines):
//! lines that are not fields outside a field are skipped. A message holds one statement
//! (`:20:` to the next `:20:`); fields before any `:20:` (a fragment) form a statement without
//! one. The reader holds one statement at a time (its closing balance comes after its entries
//! and belongs in the `Statement` event), so memory is bounded by the largest statement,
//! which is itself bounded ([`MAX_ENTRIES`], [`MAX_FIELD`], [`MAX_LINE`]).
//!
//! Fields end at the next line starting with a tag `:NN:`, `:NNA:` or `:NS:`; continuation
//! lines (even ones starting with `:` that are not tags) are joined without a separator, as
//! banks wrap fields mid-word; a tag split after its `:` (`:` / `86:…`) is joined. The `:86:`
//! narrative is read in three dialects: `?NN` sub-fields (German/Dutch), `/TAG/` slash tags
//! (ING, Rabobank) and free text.
//!
//! `:61:` variants read: an entry date or not; marks `C`, `D`, `RC`, `RD`, `EC`, `ED`; a funds
//! code letter after the mark; the amount on the next line; amounts without a decimal comma
//! (`500`) or with a decimal point (`000000001000.12`); any transaction type of a letter and
//! three letters, digits or spaces (`NTRF`, `NMSC`, `S   `, `MCI0`) or none.
//!
//! Bytes that are not UTF-8 are decoded as Windows-1252 (a superset of the SWIFT charset).
//!
//! Syntax that cannot be read (a date such as February 30, an amount with more decimals than
//! its currency, a line that is not SWIFT before any field) is an error naming the line. The
//! statement's declared figures are checked and each failed check is a
//! [`Finding`](super::Finding): opening balance plus entries must be the closing balance
//! (`balance`, per `:20:` page), a page opened with `:60M:` must open where the previous one
//! closed with `:62M:` (`balance_chain`) and a statement over several pages must close as a
//! whole (`statement_balance`); `:90D:`/`:90C:` must count and add up the entries
//! (`debit_count`, `debit_sum`, `credit_count`, `credit_sum`, MT942); all balances must be in
//! one currency (`currency`); `:20:`, `:25:`, `:60F:` and `:62F:` must be there
//! (`mandatory_field`).

use super::check::{finding, Severity};
use super::{Event, FileHeader, Finding, Format, ParseError};
use crate::domain::{
    Currency, Direction, Entry, EntryStatus, Money, StatedBalance, Statement, StatementTotals,
};
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

/// Tags a statement may start with when the file is sniffed (a fragment may lack `:20:`).
const FIRST_TAGS: &[&str] = &[
    "20", "21", "25", "28", "28C", "60F", "60M", "61", "NS", "13D",
];

/// Recognizes an MT940/MT942 file from its first bytes.
pub fn sniff(head: &[u8]) -> Option<Format> {
    let head = &head[..head.len().min(8192)];
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches(|c: char| c == '\u{feff}' || c.is_control() || c == ' ');
    if text.starts_with('<') || text.starts_with("01,") {
        return None;
    }
    let mut block_format = None;
    let mut body = text;
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
    let mut lines = body
        .lines()
        .map(clean_line)
        .filter(|l| !l.trim().is_empty());
    // a bank's header lines before the first field: at most a few, none of them XML or BAI2
    let mut first = None;
    for l in lines.by_ref().take(6) {
        if let Some((t, _)) = tag_of(l) {
            first = Some(t);
            break;
        }
        if l.starts_with('<') || l.starts_with("01,") || l.contains('\0') {
            return None;
        }
    }
    let first = first?;
    if !FIRST_TAGS.contains(&first) {
        return None;
    }
    let mut tags: Vec<&str> = vec![first];
    tags.extend(lines.filter_map(tag_of).map(|(t, _)| t));
    let has = |t: &str| tags.contains(&t);
    if !(has("25") || has("61") || has("60F") || has("60M") || has("62F") || has("34F")) {
        return None;
    }
    if let Some(f) = block_format {
        return Some(f);
    }
    if (has("34F") || has("13D") || has("90D") || has("90C")) && !has("60F") && !has("60M") {
        Some(Format::Mt942)
    } else {
        Some(Format::Mt940)
    }
}

/// A line without a bank's transmission control characters (SOH, STX, ETX, SUB, NUL) at its
/// start or end, nor trailing blanks.
fn clean_line(l: &str) -> &str {
    l.trim_start_matches(|c: char| c.is_control() && c != '\t')
        .trim_end_matches(|c: char| c.is_control() || c == ' ')
}

/// The tag of a line starting with `:NN:`, `:NNA:` or `:NS:`, and the rest of the line.
fn tag_of(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    if b.len() < 4 || b[0] != b':' {
        return None;
    }
    if b[1] == b'N' && b[2] == b'S' && b[3] == b':' {
        return Some((&line[1..3], &line[4..]));
    }
    if !b[1].is_ascii_digit() || !b[2].is_ascii_digit() {
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

/// `NN:`, `NNA:` or `NS:` at the start of a line (the rest of a tag split after its `:`).
fn tag_rest(line: &str) -> bool {
    let b = line.as_bytes();
    (b.len() >= 3 && b[0].is_ascii_digit() && b[1].is_ascii_digit() && b[2] == b':')
        || (b.len() >= 4
            && b[0].is_ascii_digit()
            && b[1].is_ascii_digit()
            && b[2].is_ascii_uppercase()
            && b[3] == b':')
        || line.starts_with("NS:")
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
    fn is_balance(&self) -> bool {
        matches!(
            self.tag.as_str(),
            "60F" | "60M" | "62F" | "62M" | "64" | "65"
        )
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
    /// `None` when the field names no currency (read in the statement's).
    currency: Option<Currency>,
    date: NaiveDate,
}

/// A balance as the statement holds it, with its field.
#[derive(Clone, Debug)]
struct HeldBalance {
    kind: String,
    signed: Decimal,
    loc: String,
}

#[derive(Default)]
struct StmtState {
    id: Option<String>,
    id_line: u64,
    account: Option<String>,
    sequence: Option<String>,
    currency: Option<(Currency, String)>,
    created_at: Option<String>,
    opening: Option<HeldBalance>,
    closing: Option<HeldBalance>,
    balances: Vec<StatedBalance>,
    is_942: bool,
    d90: Option<(u64, Decimal, String)>,
    c90: Option<(u64, Decimal, String)>,
    entries: Vec<Entry>,
    findings: Vec<Finding>,
    /// The previous field was a `:61:`: a `:86:` now belongs to its entry.
    after_61: bool,
    credit_sum: Decimal,
    debit_sum: Decimal,
    credits: u64,
    debits: u64,
}

impl StmtState {
    fn id_text(&self) -> &str {
        self.id.as_deref().unwrap_or("(without :20:)")
    }
    fn note(&mut self, f: Finding) {
        self.findings.push(f);
    }
}

/// A statement split over pages (`:62M:` … `:60M:`): where its chain stands.
struct Chain {
    account: String,
    /// The last page's closing balance, if intermediate (`:62M:`).
    open_end: Option<HeldBalance>,
    /// The first page's opening balance and the entries of all pages so far.
    start: Option<HeldBalance>,
    net: Decimal,
    pages: u32,
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
    /// The first line skipped as not SWIFT (a bank's header): the error when no field follows.
    first_skipped: Option<(u64, String)>,
    /// Findings about skipped lines, given to the next statement.
    pending_notes: Vec<Finding>,
    chain: Option<Chain>,
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
            first_skipped: None,
            pending_notes: Vec::new(),
            chain: None,
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
                let at = self.line_no + 1 + u64::from(self.peeked.is_some());
                return Err(self.err_at(
                    format!("line {at}"),
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

    /// A line that is not a field outside any field: a bank's header, skipped. One that looks
    /// like a field (`:9401:`) but is not is said (a warning of the next statement).
    fn skip(&mut self, t: &str) {
        if self.first_skipped.is_none() {
            self.first_skipped = Some((self.line_no, t.chars().take(40).collect()));
        }
        // Rabobank's `:940:` header is a known one
        let message_type = t.len() == 5 && t.starts_with(":9") && t.ends_with(':');
        if t.starts_with(':') && !message_type && self.pending_notes.len() < 100 {
            let shown: String = t.chars().take(40).collect();
            self.pending_notes.push(finding(
                "structure",
                Severity::Warning,
                format!("line {}", self.line_no),
                shown.clone(),
                "skipped",
                None,
                format!(
                    "`{shown}` looks like a field but is not an MT940/MT942 field tag: skipped"
                ),
            ));
        }
    }

    fn process_line(&mut self, line: String) -> Result<(), ParseError> {
        let t = clean_line(&line);
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
        if t.trim() == "}" && self.in_block {
            // `-` and `}` on lines of their own: the block ends
            if let Some(f) = self.cur.as_mut() {
                if f.lines.len() > 1 && f.lines.last().is_some_and(|l| l.trim() == "-") {
                    f.lines.pop();
                }
            }
            self.finish_field();
            self.in_block = false;
            self.items.push_back(Item::MessageEnd);
            return Ok(());
        }
        if t.starts_with("-}") {
            // without a {4: before it, a message end all the same
            self.finish_field();
            self.in_block = false;
            self.items.push_back(Item::MessageEnd);
            // the trailer and the next message's blocks may follow on the same line:
            // `-}{5:{CHK:…}}{1:…}{2:O940…}{4:`
            let rest = t.strip_prefix("-}").unwrap_or("").trim();
            if rest.contains("{4:") {
                if let Some(p) = rest.find('{') {
                    let rest = rest[p..].to_string();
                    return self.process_line(rest);
                }
            }
            return Ok(());
        }
        if t.trim() == "-" && !self.in_block {
            // a message end, unless a field other than :20: follows, or a line of text inside
            // a :61:/:86: (ING wraps a `-` of the narrative onto a line of its own)
            let in_narrative = self
                .cur
                .as_ref()
                .is_some_and(|f| f.tag == "86" || f.tag == "61");
            let content = match self.peek_line()? {
                None => false,
                Some(n) => {
                    let n = clean_line(n);
                    match tag_of(n) {
                        Some((tag, _)) => tag != "20",
                        None => {
                            in_narrative
                                && !n.trim().is_empty()
                                && !n.starts_with('{')
                                && !n.starts_with('-')
                        }
                    }
                }
            };
            if !content {
                self.finish_field();
                self.items.push_back(Item::MessageEnd);
                return Ok(());
            }
        }
        let mut t = t.to_string();
        if t == ":" {
            // a tag split after its colon: `:` / `86:…`
            if let Some(n) = self.peek_line()? {
                if tag_rest(clean_line(n)) {
                    let n = clean_line(n).to_string();
                    self.read_line()?;
                    t.push_str(&n);
                }
            }
        }
        let tagged = tag_of(&t).or_else(|| tag_of(t.trim_start()));
        if let Some((tag, rest)) = tagged {
            self.finish_field();
            self.cur = Some(Field {
                tag: tag.to_string(),
                lines: vec![rest.to_string()],
                line: self.line_no,
                size: rest.len(),
            });
            return Ok(());
        }
        // after a complete balance, a line of text is a bank's header of the next message
        let after_balance = self.cur.as_ref().is_some_and(|f| {
            f.is_balance() && f.lines.len() == 1 && parse_balance(&f.lines[0]).is_ok()
        });
        if after_balance {
            self.finish_field();
        }
        match self.cur.as_mut() {
            Some(f) => {
                f.size += t.len();
                if f.size > MAX_FIELD {
                    let loc = f.loc();
                    return Err(self.err_at(loc, format!("field longer than {MAX_FIELD} bytes")));
                }
                f.lines.push(t);
                Ok(())
            }
            None => {
                self.skip(&t);
                Ok(())
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
                        let mut s = StmtState {
                            id_line: f.line,
                            findings: std::mem::take(&mut self.pending_notes),
                            ..StmtState::default()
                        };
                        if f.tag == "20" {
                            let id = f.joined().trim().to_string();
                            if id.is_empty() {
                                s.note(finding(
                                    "mandatory_field",
                                    Severity::Error,
                                    f.loc(),
                                    ":20:",
                                    "empty",
                                    None,
                                    "empty transaction reference :20:",
                                ));
                            } else {
                                s.id = Some(id);
                            }
                            st = Some(s);
                        } else {
                            s.note(finding(
                                "mandatory_field",
                                Severity::Error,
                                f.loc(),
                                ":20:",
                                "missing",
                                None,
                                format!(
                                    "missing mandatory field :20: (a statement starts with :20:, found :{}:)",
                                    f.tag
                                ),
                            ));
                            self.apply(&mut s, f)?;
                            st = Some(s);
                        }
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
                if let Some((line, text)) = &self.first_skipped {
                    return Err(self.err_at(
                        format!("line {line}"),
                        format!(
                            "not an MT940/MT942 file: expected a field tag such as :20: but found `{text}` (and no field after it)"
                        ),
                    ));
                }
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

    fn set_currency(&self, s: &mut StmtState, c: Currency, f: &Field) {
        match &s.currency {
            Some((have, from)) if *have != c => {
                let (have, from) = (*have, from.clone());
                let id = s.id.clone();
                s.note(finding(
                    "currency",
                    Severity::Error,
                    f.loc(),
                    c,
                    have,
                    id.as_deref(),
                    format!("currency {c} differs from the statement's currency {have} ({from})"),
                ));
            }
            Some(_) => {}
            None => s.currency = Some((c, f.loc())),
        }
    }

    fn apply(&self, s: &mut StmtState, f: Field) -> Result<(), ParseError> {
        let was_61 = std::mem::replace(&mut s.after_61, false);
        let err = |reason: String| self.err_at(f.loc(), reason);
        match f.tag.as_str() {
            "25" => {
                let a = f.joined().trim().to_string();
                if !a.is_empty() {
                    s.account = Some(a);
                }
            }
            "28C" | "28" => s.sequence = nonempty(&f.joined()),
            "60F" | "60M" | "62F" | "62M" | "64" | "65" => {
                let b = parse_balance(&f.joined()).map_err(err)?;
                match b.currency {
                    Some(c) => self.set_currency(s, c, &f),
                    None => {
                        let have = s.currency.as_ref().map(|(c, _)| c.to_string());
                        let id = s.id.clone();
                        s.note(finding(
                            "currency",
                            Severity::Warning,
                            f.loc(),
                            "none",
                            have.clone().unwrap_or_else(|| "none".into()),
                            id.as_deref(),
                            match have {
                                Some(c) => format!(
                                    "the balance names no currency: read in the statement's currency {c}"
                                ),
                                None => "the balance names no currency".to_string(),
                            },
                        ));
                    }
                }
                s.balances.push(StatedBalance {
                    kind: f.tag.clone(),
                    amount: b.signed,
                    currency: b.currency.or(s.currency.as_ref().map(|(c, _)| *c)),
                    date: Some(b.date),
                    line: f.line,
                });
                let held = HeldBalance {
                    kind: f.tag.clone(),
                    signed: b.signed,
                    loc: f.loc(),
                };
                match f.tag.as_str() {
                    "60F" | "60M" if s.opening.is_none() => s.opening = Some(held),
                    "62F" | "62M" => s.closing = Some(held),
                    _ => {}
                }
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
                self.set_currency(s, c, &f);
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
                self.set_currency(s, c, &f);
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
                if s.entries.len() >= MAX_ENTRIES {
                    return Err(err(format!(
                        "more than {MAX_ENTRIES} entries in one statement"
                    )));
                }
                let ccy = s.currency.as_ref().map(|(c, _)| *c);
                let line = parse_61(&f.lines, ccy.unwrap_or(Currency::XXX)).map_err(err)?;
                if let (Some(code), Some(c)) = (line.funds_code, ccy) {
                    if c.as_str().as_bytes()[2] != code as u8 {
                        let id = s.id.clone();
                        s.note(finding(
                            "funds_code",
                            Severity::Warning,
                            f.loc(),
                            code,
                            c.as_str().chars().nth(2).unwrap_or(' '),
                            id.as_deref(),
                            format!(
                                "funds code `{code}` is not the last letter of the currency {c}"
                            ),
                        ));
                    }
                }
                let e = line.entry(s.entries.len() as u32 + 1, ccy.unwrap_or(Currency::XXX));
                let overflow = || err("the statement's totals overflow".into());
                if e.status == EntryStatus::Booked {
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
                }
                s.entries.push(e);
                s.after_61 = true;
            }
            "86" if was_61 => {
                if let Some(e) = s.entries.last_mut() {
                    apply_86(e, &f.joined());
                }
            }
            // :21: related reference, :NS: non-SWIFT data: not in the model
            "21" | "25P" | "NS" | "86" => {}
            other => {
                let id = s.id.clone();
                s.note(finding(
                    "structure",
                    Severity::Warning,
                    f.loc(),
                    format!(":{other}:"),
                    "ignored",
                    id.as_deref(),
                    format!("field :{other}: is not an MT940/MT942 field: ignored"),
                ));
            }
        }
        Ok(())
    }

    fn finish(&mut self, mut s: StmtState, at_eof: bool) -> Result<(), ParseError> {
        let loc20 = format!("line {}, field :20:", s.id_line);
        let id = s.id.clone();
        let idt = s.id_text().to_string();
        if s.account.is_none() {
            s.note(finding(
                "mandatory_field",
                Severity::Error,
                loc20.clone(),
                ":25:",
                "missing",
                id.as_deref(),
                format!("missing mandatory field :25: in statement {idt}"),
            ));
        }
        let is_942 = s.opening.is_none()
            && (s.is_942
                || self.block_format == Some(Format::Mt942)
                || (self.block_format.is_none() && self.hint == Format::Mt942));
        if !is_942 {
            if s.opening.is_none() {
                s.note(finding(
                    "mandatory_field",
                    Severity::Error,
                    loc20.clone(),
                    ":60F:",
                    "missing",
                    id.as_deref(),
                    format!(
                        "missing mandatory field :60F:/:60M: (opening balance) in statement {idt}"
                    ),
                ));
            }
            if s.closing.is_none() {
                let reason = if at_eof {
                    format!(
                        "truncated file: statement {idt} ends at the end of the file without a closing balance :62F:/:62M:"
                    )
                } else {
                    format!(
                        "missing mandatory field :62F:/:62M: (closing balance) in statement {idt}"
                    )
                };
                s.note(finding(
                    "mandatory_field",
                    Severity::Error,
                    format!("line {}", self.line_no.max(1)),
                    ":62F:",
                    "missing",
                    id.as_deref(),
                    reason,
                ));
            }
        }
        let net = s.credit_sum - s.debit_sum;
        if let (Some(o), Some(c)) = (&s.opening, &s.closing) {
            let computed = o.signed + net;
            if computed != c.signed {
                let f = finding(
                    "balance",
                    Severity::Error,
                    c.loc.clone(),
                    c.signed,
                    computed,
                    id.as_deref(),
                    format!(
                        "opening {} + entries {} != closing {} (statement {idt})",
                        o.signed, net, c.signed
                    ),
                );
                s.note(f);
            }
        }
        self.check_chain(&mut s, net);
        for (decl, count, sum, what) in [
            (s.d90.clone(), s.debits, s.debit_sum, "debit"),
            (s.c90.clone(), s.credits, s.credit_sum, "credit"),
        ] {
            if let Some((n, amount, loc)) = decl {
                let message = format!(
                    "declares {n} {what} entries of {amount} but the statement has {count} adding up to {sum}"
                );
                let (count_check, sum_check) = if what == "debit" {
                    ("debit_count", "debit_sum")
                } else {
                    ("credit_count", "credit_sum")
                };
                if n != count {
                    s.note(finding(
                        count_check,
                        Severity::Error,
                        loc.clone(),
                        n,
                        count,
                        id.as_deref(),
                        message.clone(),
                    ));
                }
                if amount != sum {
                    s.note(finding(
                        sum_check,
                        Severity::Error,
                        loc,
                        amount,
                        sum,
                        id.as_deref(),
                        message,
                    ));
                }
            }
        }
        if s.currency.is_none() {
            s.note(finding(
                "mandatory_field",
                Severity::Error,
                loc20.clone(),
                "currency",
                "missing",
                id.as_deref(),
                format!(
                    "statement {idt} names no currency (no balance, :34F: or :90D:/:90C:): its entries are read in XXX"
                ),
            ));
        }
        let currency = s.currency.as_ref().map(|(c, _)| *c);
        let account = strip_currency(s.account.as_deref().unwrap_or(""), currency);
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
            statement_id: s.id,
            account,
            currency,
            created_at: s.created_at,
            opening_balance: s.opening.map(|b| b.signed),
            closing_balance: s.closing.map(|b| b.signed),
            declared,
            balances: s.balances,
            sequence: s.sequence,
            entries: vec![],
        }));
        for e in s.entries {
            self.queue.push_back(Event::Entry(e));
        }
        // in file order
        let mut findings = s.findings;
        findings.sort_by_key(|f| f.line);
        for f in findings {
            self.queue.push_back(Event::Finding(f));
        }
        self.queue.push_back(Event::StatementEnd);
        Ok(())
    }

    /// Pages of one statement (`:62M:` then `:60M:`): each page opens where the previous one
    /// closed, and the whole statement, from its `:60F:` to its `:62F:`, closes.
    fn check_chain(&mut self, s: &mut StmtState, net: Decimal) {
        let account = s.account.clone().unwrap_or_default();
        let id = s.id.clone();
        let idt = s.id_text().to_string();
        let chain = self
            .chain
            .take()
            .filter(|c| c.account == account && c.open_end.is_some());
        let mut chain = match (chain, &s.opening) {
            (Some(mut c), Some(o)) => {
                if let Some(prev) = c.open_end.take() {
                    if prev.signed != o.signed {
                        s.note(finding(
                            "balance_chain",
                            Severity::Error,
                            o.loc.clone(),
                            o.signed,
                            prev.signed,
                            id.as_deref(),
                            format!(
                                "opening :{}: {} of statement {idt} is not the closing :{}: {} of the page before ({})",
                                o.kind, o.signed, prev.kind, prev.signed, prev.loc
                            ),
                        ));
                    }
                }
                c.pages += 1;
                c
            }
            (_, o) => Chain {
                account,
                open_end: None,
                start: o.clone().filter(|o| o.kind == "60F"),
                net: Decimal::ZERO,
                pages: 1,
            },
        };
        chain.net += net;
        match &s.closing {
            Some(c) if c.kind == "62M" => {
                chain.open_end = Some(c.clone());
                self.chain = Some(chain);
            }
            Some(c) => {
                if let (Some(start), true) = (&chain.start, chain.pages > 1) {
                    let computed = start.signed + chain.net;
                    if computed != c.signed {
                        s.note(finding(
                            "statement_balance",
                            Severity::Error,
                            c.loc.clone(),
                            c.signed,
                            computed,
                            id.as_deref(),
                            format!(
                                "the statement over {} pages does not close: opening {} ({}) + entries {} != closing {} (statement {idt})",
                                chain.pages, start.signed, start.loc, chain.net, c.signed
                            ),
                        ));
                    }
                }
            }
            None => {}
        }
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

/// A SWIFT amount: digits with at most one decimal comma (`1234,5`, `500`, `0,`), or, in
/// legacy files, one decimal point (`000000001000.12`); at most the currency's decimals.
fn parse_amount(s: &str, c: Currency) -> Result<Money, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a SWIFT amount (digits with one decimal comma)");
    let commas = s.bytes().filter(|b| *b == b',').count();
    let points = s.bytes().filter(|b| *b == b'.').count();
    if s.is_empty()
        || s.len() > 24
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b',' || b == b'.')
        || !s.as_bytes()[0].is_ascii_digit()
        || commas + points > 1
    {
        return Err(bad());
    }
    let (int, frac) = s.split_once([',', '.']).unwrap_or((s, ""));
    if frac.len() > c.exponent() as usize
        && frac.trim_end_matches('0').len() > c.exponent() as usize
    {
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

/// `D140220EUR1,56`; legacy files may leave out the currency (`C020315105000,00`).
fn parse_balance(v: &str) -> Result<Balance, String> {
    let v = v.trim();
    let mark = v.get(..1).unwrap_or("");
    let negative = match mark {
        "C" => false,
        "D" => true,
        _ => return Err(format!("`{v}`: the debit/credit mark must be C or D")),
    };
    let date = parse_date(v.get(1..7).unwrap_or(""))?;
    let ccy = v.get(7..10).unwrap_or("");
    let (currency, amount) = if ccy.bytes().all(|b| b.is_ascii_digit()) && !ccy.is_empty() {
        (None, &v[7..])
    } else {
        let c = Currency::parse(ccy).map_err(|_| format!("`{ccy}` is not a currency code"))?;
        (Some(c), &v[10..])
    };
    let m = parse_amount(amount, currency.unwrap_or(Currency::XXX))?;
    let a = m.amount();
    Ok(Balance {
        signed: if negative { -a } else { a },
        currency,
        date,
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
#[derive(Debug)]
struct Line61 {
    value_date: NaiveDate,
    entry_date: Option<NaiveDate>,
    direction: Direction,
    reversal: bool,
    /// `EC`/`ED` (expected, MT942): not booked.
    expected: bool,
    funds_code: Option<char>,
    amount: Money,
    tx_type: Option<String>,
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
            status: if self.expected {
                EntryStatus::Pending
            } else {
                EntryStatus::Booked
            },
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
            additional_info: self.supplementary,
            return_reason: None,
            instructed_amount: None,
            bank_tx_code: self.tx_type,
        }
    }
}

/// `6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]` and, on the next line, `[34x]`: value date, entry
/// date, mark, funds code, amount, transaction type, customer and bank references,
/// supplementary details. Banks wrap it anywhere (the amount may start the second line).
fn parse_61(lines: &[String], ccy: Currency) -> Result<Line61, String> {
    let first = lines.first().map(|l| l.trim()).unwrap_or("");
    // the lines up to the one where the amount ends form the head
    let mut head = first.to_string();
    let mut used = 1;
    let shown = |h: &str| h.chars().take(80).collect::<String>();
    let b = |h: &str, i: usize| h.as_bytes().get(i).copied();
    let digits_at = |h: &str, r: std::ops::Range<usize>| {
        h.get(r.clone())
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .is_some()
    };
    if !digits_at(&head, 0..6) {
        return Err(format!(
            "`{}` does not start with a value date YYMMDD",
            shown(&head)
        ));
    }
    let value_date = parse_date(&head[..6])?;
    let mut i = 6;
    // the mark (and what follows) may be on the next line
    while head.len() <= i + 1 && used < lines.len() {
        head.push_str(lines[used].trim());
        used += 1;
    }
    let mut entry_date = None;
    if digits_at(&head, 6..10) {
        entry_date = Some(entry_date_near(&head[6..10], value_date)?);
        i = 10;
    }
    let rest = &head.as_bytes()[i.min(head.len())..];
    let (direction, reversal, expected, n) = if rest.starts_with(b"RC") {
        (Direction::Debit, true, false, 2)
    } else if rest.starts_with(b"RD") {
        (Direction::Credit, true, false, 2)
    } else if rest.starts_with(b"EC") {
        (Direction::Credit, false, true, 2)
    } else if rest.starts_with(b"ED") {
        (Direction::Debit, false, true, 2)
    } else if rest.starts_with(b"C") {
        (Direction::Credit, false, false, 1)
    } else if rest.starts_with(b"D") {
        (Direction::Debit, false, false, 1)
    } else {
        return Err(format!(
            "`{}`: the debit/credit mark must be C, D, RC or RD",
            shown(&head)
        ));
    };
    i += n;
    let mut funds_code = None;
    if b(&head, i).is_some_and(|c| c.is_ascii_uppercase()) {
        funds_code = b(&head, i).map(char::from);
        i += 1;
    }
    // the amount may start on the next line (Sparkassen)
    while head.len() <= i && used < lines.len() {
        head.push_str(lines[used].trim());
        used += 1;
    }
    let start = i;
    while b(&head, i).is_some_and(|c| c.is_ascii_digit() || c == b',' || c == b'.') {
        i += 1;
    }
    if i == start {
        return Err(format!("`{}`: no amount after the mark", shown(&head)));
    }
    let amount =
        parse_amount(&head[start..i], ccy).map_err(|e| format!("`{}`: {e}", shown(&head)))?;
    // the transaction type: a letter and three letters, digits or spaces
    let mut tx_type = None;
    if let Some(t) = head.get(i..i + 4) {
        let tb = t.as_bytes();
        if tb[0].is_ascii_uppercase()
            && tb[1..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b' ')
        {
            tx_type = Some(t.trim_end().to_string());
            i += 4;
        }
    } else if let Some(t) = head.get(i..).filter(|t| {
        !t.is_empty()
            && t.len() < 4
            && t.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    }) {
        tx_type = Some(t.to_string());
        i = head.len();
    }
    let refs = head.get(i..).unwrap_or("");
    let (cust, mut bank) = match refs.find("//") {
        Some(p) => (refs[..p].to_string(), Some(refs[p + 2..].to_string())),
        None => (refs.to_string(), None),
    };
    // without `//`, the customer reference is at most 16 characters; the rest is detail
    let (cust, mut extra) = if bank.is_none() && cust.chars().count() > 16 {
        let cut = cust
            .char_indices()
            .nth(16)
            .map(|(p, _)| p)
            .unwrap_or(cust.len());
        (cust[..cut].to_string(), cust[cut..].trim().to_string())
    } else {
        (cust, String::new())
    };
    let mut rest = &lines[used.min(lines.len())..];
    if let (Some(bref), Some(first)) = (bank.as_mut(), rest.first()) {
        let f = first.trim();
        if !f.starts_with('/') && bref.len() + f.len() <= 16 {
            bref.push_str(f);
            rest = &rest[1..];
        }
    }
    let supplementary: String = rest.concat();
    if !supplementary.trim().is_empty() {
        if !extra.is_empty() {
            extra.push(' ');
        }
        extra.push_str(supplementary.trim());
    }
    let opt = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s != "NONREF").then(|| s.to_string())
    };
    Ok(Line61 {
        value_date,
        entry_date,
        direction,
        reversal,
        expected,
        funds_code,
        amount,
        tx_type,
        customer_ref: opt(&cust),
        bank_ref: bank.as_deref().and_then(opt),
        supplementary: opt(&extra),
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
    if text.is_empty() {
        return;
    }
    e.additional_info = nonempty(text);
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
